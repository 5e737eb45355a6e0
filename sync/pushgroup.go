package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// A push applied as a set. Applying mutation after mutation costs a round trip to PostgreSQL for
// each read and each write of each one, and a savepoint each; a phone back from a day offline
// sends a hundred. So a push is cut into groups of mutations that do not depend on each other
// (none reads or writes a record an earlier one of the group writes), and a group is applied in
// three steps:
//
//  1. read ahead: every record its mutations change or refer to, locked, with whether the
//     caller's scope holds it, and every user they name, in one batch: a query per table;
//  2. decide: each mutation goes through the same rules as alone (applier.merge,
//     applier.createColumns), answered from what was read, in order;
//  3. write: every write and conflict record in one batch, under one savepoint; then the hooks
//     and the results, in order.
//
// If anything of step 3 fails (a value the database refuses, a hook's rejection), the group is
// rolled back to its savepoint and applied again mutation by mutation (pushOne), which rejects
// exactly the mutation at fault. A mutation whose effects reach past its own record (a task's
// status or assignee: the claim moves along, a reopening leaves a note) ends its group, so that
// the next group reads what it did; a delete is applied alone.

// groupSavepoint is the savepoint of a group's writes.
const groupSavepoint = "push_group"

// member is a mutation of a group, with its decoded fields.
type member struct {
	m      *Mutation
	index  int // in the push
	values map[string]any
	// shape is the mutation's rejection before any read (validateShape), if any.
	shape error
	hash  []byte
}

// refKey names a record.
type refKey struct {
	typ string
	id  uuid.UUID
}

// group returns the mutations, from the first of ms on, that are applied as one group: none when
// the first is to be applied alone.
func (p *pushState) group(id *fieldsync.Identity, ms []Mutation, offset int) []member {
	var out []member
	written := map[refKey]bool{}
	ids := map[uuid.UUID]bool{}
	for i := range ms {
		m := &ms[i]
		if ids[m.ID] {
			break // the same id again: it waits for the first's result
		}
		hash, err := mutationHash(m)
		if err != nil || m.ID == uuid.Nil {
			break // rejected alone, as pushOne does
		}
		if _, ok := p.stored[m.ID]; ok {
			break // a replay: answered alone
		}
		if m.Op != "create" && m.Op != "update" {
			break
		}
		values, shape := validateShape(m, id.Role)
		reads := []refKey{{m.Type, m.EntityID}}
		if shape == nil {
			reads = append(reads, parents(m, values)...)
		}
		if slices.ContainsFunc(reads, func(k refKey) bool { return written[k] }) {
			break
		}
		ids[m.ID] = true
		written[refKey{m.Type, m.EntityID}] = true
		out = append(out, member{m: m, index: offset + i, values: values, shape: shape, hash: hash})
		if shape == nil && reachesFurther(m, values) {
			break
		}
	}
	if len(out) < 2 {
		return nil // alone costs no more round trips than a group
	}
	return out
}

// parents are the records a create refers to, which it reads (applier.createColumns).
func parents(m *Mutation, values map[string]any) []refKey {
	if m.Op != "create" {
		return nil
	}
	var out []refKey
	for name, typ := range map[string]string{"claim_id": TypeClaim, "task_id": TypeTask} {
		if id, ok := values[name].(uuid.UUID); ok {
			out = append(out, refKey{typ, id})
		}
	}
	return out
}

// reachesFurther reports whether applying m may write records other than its own (a task's
// claim, a reopening's note): what follows it in the push must read what it did.
func reachesFurther(m *Mutation, values map[string]any) bool {
	if m.Type != TypeTask || m.Op != "update" {
		return false
	}
	_, status := values["status"]
	_, assignee := values["assignee_id"]
	return status || assignee
}

// readAhead is what a group read before deciding: records by type and id, and users.
type readAhead struct {
	rows map[refKey]readRow
	// asked are the records read for: one of them not in rows does not exist.
	asked map[refKey]bool
	users map[uuid.UUID]readUser
	// usersAsked are the users read for.
	usersAsked map[uuid.UUID]bool
}

type readRow struct {
	r       row
	visible bool
}

type readUser struct {
	branch uuid.UUID
	role   string
	active bool
}

// row returns the record read ahead: ok is false when it was not read for (the caller reads it),
// found is false when it does not exist.
func (ra *readAhead) row(typ string, id uuid.UUID) (r row, visible, found, ok bool) {
	if ra == nil || !ra.asked[refKey{typ, id}] {
		return nil, false, false, false
	}
	rr, found := ra.rows[refKey{typ, id}]
	return rr.r, rr.visible, found, true
}

// userOf reports whether user is an active user of branch with role: known is false when the
// user was not read for (the caller asks the database).
func (ra *readAhead) userOf(user uuid.UUID, branch, role string) (ok, known bool) {
	if ra == nil || !ra.usersAsked[user] {
		return false, false
	}
	u, found := ra.users[user]
	b, err := uuid.Parse(branch)
	return found && err == nil && u.branch == b && u.role == role && u.active, true
}

// queued is a statement to send later, in a batch.
type queued struct {
	sql  string
	args []any
}

// read reads ahead what the group's mutations read, in one batch (after the statements in
// first): each table's records in id order, locked as load locks them, and the users named.
func (e *Engine) read(ctx context.Context, tx pgx.Tx, id *fieldsync.Identity, g []member, first []string) (*readAhead, error) {
	ra := &readAhead{rows: map[refKey]readRow{}, asked: map[refKey]bool{}, users: map[uuid.UUID]readUser{}, usersAsked: map[uuid.UUID]bool{}}
	byType := map[string][]uuid.UUID{}
	var users []uuid.UUID
	for _, mb := range g {
		if mb.shape != nil {
			continue
		}
		keys := parents(mb.m, mb.values)
		if mb.m.Op == "update" {
			keys = append(keys, refKey{mb.m.Type, mb.m.EntityID})
		}
		for _, k := range keys {
			if !ra.asked[k] {
				ra.asked[k] = true
				byType[k.typ] = append(byType[k.typ], k.id)
			}
		}
		for _, name := range []string{"assignee_id", "agent_id", "processor_id"} {
			if u, ok := mb.values[name].(uuid.UUID); ok && !ra.usersAsked[u] {
				ra.usersAsked[u] = true
				users = append(users, u)
			}
		}
	}
	var b pgx.Batch
	for _, s := range first {
		b.Queue(s)
	}
	types := make([]string, 0, len(byType))
	for typ := range byType {
		types = append(types, typ)
	}
	// In a fixed order, as every group locks, so that two pushes wait rather than deadlock.
	slices.Sort(types)
	for _, typ := range types {
		visible := "true"
		if id.Role != RoleSystem {
			pred, err := scopeOf(id.Role, typ)
			if err != nil {
				return nil, err
			}
			visible = pred
		}
		b.Queue(fmt.Sprintf(`SELECT t.id, to_jsonb(t), (%s) FROM %s t, %s WHERE t.id = ANY($5) ORDER BY t.id FOR UPDATE OF t`,
			visible, entities[typ].table, params), id.UserID, id.BranchID, e.cfg.ScopeWindow, e.sqlNow(), byType[typ])
	}
	if len(users) > 0 {
		b.Queue(`SELECT id, branch_id, role, disabled_at IS NULL FROM users WHERE id = ANY($1)`, users)
	}
	if b.Len() == 0 {
		return ra, nil
	}
	br := tx.SendBatch(ctx, &b)
	defer br.Close()
	for range first {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("read ahead: %w", err)
		}
	}
	for _, typ := range types {
		rows, err := br.Query()
		if err != nil {
			return nil, fmt.Errorf("read ahead %s: %w", typ, err)
		}
		for rows.Next() {
			var rid uuid.UUID
			var data []byte
			var visible bool
			if err := rows.Scan(&rid, &data, &visible); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read ahead %s: %w", typ, err)
			}
			r, err := decodeRow(data)
			if err != nil {
				rows.Close()
				return nil, err
			}
			ra.rows[refKey{typ, rid}] = readRow{r: r, visible: visible}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read ahead %s: %w", typ, err)
		}
	}
	if len(users) > 0 {
		rows, err := br.Query()
		if err != nil {
			return nil, fmt.Errorf("read ahead users: %w", err)
		}
		for rows.Next() {
			var uid uuid.UUID
			var u readUser
			var branch *uuid.UUID
			if err := rows.Scan(&uid, &branch, &u.role, &u.active); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read ahead users: %w", err)
			}
			if branch != nil {
				u.branch = *branch
			}
			ra.users[uid] = u
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read ahead users: %w", err)
		}
	}
	return ra, br.Close()
}

// decided is a member after step 2: its result if it is already known (a rejection), or the
// write to make and how to finish it.
type decided struct {
	a      *applier
	done   *Result
	write  queued
	update *merged // nil for a create
}

// pushGroup applies a group (see the top of this file) and stores its results in results (of
// the whole push) and p.
func (e *Engine) pushGroup(ctx context.Context, tx pgx.Tx, id *fieldsync.Identity, g []member, results []Result, p *pushState) error {
	// A group's savepoint is released when the next statement goes: a mutation applied alone
	// releases its own savepoint, which takes every later one with it, and the next group's read
	// releases it first.
	var first []string
	if p.grouped {
		first = []string{`RELEASE SAVEPOINT ` + groupSavepoint}
		p.grouped = false
	}
	ra, err := e.read(ctx, tx, id, g, first)
	if err != nil {
		return err
	}

	// 2. Decide, in order.
	ds := make([]decided, len(g))
	for i, mb := range g {
		a := &applier{e: e, tx: tx, id: id, m: mb.m, ent: entities[mb.m.Type], pre: ra}
		ds[i].a = a
		if mb.shape != nil {
			r := rejectedBy(mb.m, mb.shape)
			ds[i].done = &r
			continue
		}
		var res Result
		switch mb.m.Op {
		case "create":
			var cols map[string]any
			cols, err = a.createColumns(ctx, mb.values)
			if err == nil {
				ds[i].write.sql, ds[i].write.args = a.insert(cols)
			}
		default:
			var u *merged
			u, res, err = a.merge(ctx, mb.values)
			switch {
			case err == nil && u == nil:
				ds[i].done = &res
			case err == nil && len(u.set) > 0:
				ds[i].update = u
				ds[i].write.sql, ds[i].write.args = a.updateStatement(u.set)
			case err == nil:
				ds[i].update = u
				ds[i].write = queued{sql: entityQuery(mb.m.Type), args: []any{mb.m.EntityID}}
			}
		}
		var fe *fieldsync.Error
		switch {
		case errors.As(err, &fe):
			r := rejected(mb.m, fe)
			ds[i].done = &r
			a.deferred = nil // a rejected mutation records nothing
		case err != nil:
			return err
		}
	}

	// 3. Write, then finish in order.
	out, err := e.writeGroup(ctx, tx, ds)
	if err != nil {
		return err
	}
	if out == nil {
		// The database refused a write, or a hook the mutation: mutation by mutation, each
		// rejected or applied as alone.
		for _, mb := range g {
			r, err := e.pushOne(ctx, tx, id, mb.m, p)
			if err != nil {
				return err
			}
			results[mb.index] = r
		}
		return nil
	}
	p.grouped = true
	for i, mb := range g {
		if err := p.remember(mb.m, mb.hash, out[i], id); err != nil {
			return err
		}
		results[mb.index] = out[i]
	}
	return nil
}

// rejectedBy is the result of a mutation rejected by err, a *fieldsync.Error.
func rejectedBy(m *Mutation, err error) Result {
	var fe *fieldsync.Error
	if errors.As(err, &fe) {
		return rejected(m, fe)
	}
	return rejected(m, fieldsync.Errorf(fieldsync.EINVALID, "invalid_value", "%s", err.Error()))
}

// writeGroup sends the group's writes and conflict records in one batch under the group's
// savepoint, then finishes each mutation (hooks, results). It returns nil results, with the
// group rolled back, if the database refused a write or a hook rejected a mutation.
func (e *Engine) writeGroup(ctx context.Context, tx pgx.Tx, ds []decided) ([]Result, error) {
	var b pgx.Batch
	b.Queue(`SAVEPOINT ` + groupSavepoint)
	for _, d := range ds {
		for _, q := range d.a.deferred {
			b.Queue(q.sql, q.args...)
		}
		if d.done == nil {
			b.Queue(d.write.sql, d.write.args...)
		}
	}
	type written struct {
		entity  json.RawMessage
		version int64
	}
	ws := make([]written, len(ds))
	refused := false
	err := func() error {
		br := tx.SendBatch(ctx, &b)
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("savepoint: %w", err)
		}
		for i, d := range ds {
			for range d.a.deferred {
				if _, err := br.Exec(); err != nil {
					return fmt.Errorf("record conflict: %w", err)
				}
			}
			if d.done != nil {
				continue
			}
			err := br.QueryRow().Scan(&ws[i].entity, &ws[i].version)
			if d.update == nil {
				err = d.a.insertError(err)
			} else if err != nil {
				err = translateWriteError(err)
			}
			var fe *fieldsync.Error
			if errors.As(err, &fe) {
				refused = true
				return nil
			}
			if err != nil {
				return err
			}
		}
		return br.Close()
	}()
	if err != nil {
		return nil, err
	}
	out := make([]Result, len(ds))
	for i, d := range ds {
		if refused {
			break
		}
		var err error
		switch {
		case d.done != nil:
			out[i] = *d.done
			continue
		case d.update == nil:
			d.a.pre = nil // what follows the write reads the database
			out[i], err = d.a.created(ctx, ws[i].entity, ws[i].version)
		default:
			d.a.pre = nil
			out[i], err = d.a.updated(ctx, d.update, ws[i].entity, ws[i].version)
		}
		var fe *fieldsync.Error
		if errors.As(err, &fe) {
			refused = true
		} else if err != nil {
			return nil, err
		}
	}
	if refused {
		if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT `+groupSavepoint); err != nil {
			return nil, fmt.Errorf("roll back group: %w", err)
		}
		if _, err := tx.Exec(ctx, `RELEASE SAVEPOINT `+groupSavepoint); err != nil {
			return nil, fmt.Errorf("release group: %w", err)
		}
		return nil, nil
	}
	return out, nil
}
