package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

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
// exactly the mutation at fault. A mutation whose effects reach past its own record (a status
// write: skipped statuses walked, the claim moving along, a reopening's note; a task's
// reassignment) is applied alone, as is a delete.

// groupSavepoint is the savepoint of a group's writes.
const groupSavepoint = "push_group"

// member is a mutation of a group, with its decoded fields.
type member struct {
	m      *Mutation
	index  int // in the push
	values map[string]any
	// forbidden are its fields the caller may not write (validateShape).
	forbidden map[string]any
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
		values, forbidden, shape := validateShape(m, id.Role)
		if shape == nil && alone(m, values) {
			break
		}
		reads := []refKey{{m.Type, m.EntityID}}
		if shape == nil {
			reads = append(reads, parents(m, values)...)
		}
		if slices.ContainsFunc(reads, func(k refKey) bool { return written[k] }) {
			break
		}
		ids[m.ID] = true
		written[refKey{m.Type, m.EntityID}] = true
		out = append(out, member{m: m, index: offset + i, values: values, forbidden: forbidden, shape: shape, hash: hash})
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

// alone reports whether m is applied alone, outside any group: a status write, which may be
// walked through the statuses it skipped, each a write of its own (walkSteps), and move a task's
// claim along or reopen it with a note; and a task's reassignment, which resets its status.
func alone(m *Mutation, values map[string]any) bool {
	_, status := values["status"]
	_, assignee := values["assignee_id"]
	return status || (m.Type == TypeTask && assignee)
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

// readGroup reads ahead what the group's mutations read, in one batch (after the statements in
// first): each table's records in id order, locked as load locks them, and the users named.
func (e *Engine) readGroup(ctx context.Context, tx pgx.Tx, id *fieldsync.Identity, g []member, first []string) (*readAhead, error) {
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
	cols   map[string]any // of a create
	update *merged        // nil for a create
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
	ra, err := e.readGroup(ctx, tx, id, g, first)
	if err != nil {
		return err
	}

	// 2. Decide, in order.
	ds := make([]decided, len(g))
	for i, mb := range g {
		a := &applier{e: e, tx: tx, id: id, m: mb.m, ent: entities[mb.m.Type], pre: ra, forbidden: mb.forbidden}
		ds[i].a = a
		if mb.shape != nil {
			r := rejectedBy(mb.m, mb.shape)
			ds[i].done = &r
			continue
		}
		var res Result
		switch mb.m.Op {
		case "create":
			ds[i].cols, err = a.createColumns(ctx, mb.values)
		default:
			var u *merged
			u, res, err = a.merge(ctx, mb.values)
			switch {
			case err == nil && u == nil:
				ds[i].done = &res
			case err == nil && len(a.steps) > 0:
				// Moves to make before the write (walkSteps): never in a group (alone), but
				// should one come, it is applied as alone.
				return e.oneByOneGroup(ctx, tx, id, g, results, p)
			case err == nil:
				ds[i].update = u
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
		return e.oneByOneGroup(ctx, tx, id, g, results, p)
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

// oneByOneGroup applies the group's mutations one by one (pushOne), as if never grouped.
func (e *Engine) oneByOneGroup(ctx context.Context, tx pgx.Tx, id *fieldsync.Identity, g []member, results []Result, p *pushState) error {
	for _, mb := range g {
		r, err := e.pushOne(ctx, tx, id, mb.m, p)
		if err != nil {
			return err
		}
		results[mb.index] = r
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

// writeGroup sends the group's conflict records and writes in one batch under the group's
// savepoint, the writes a statement per table and set of columns (setWrites), then finishes each
// mutation (hooks, results). It returns nil results, with the group rolled back, if the database
// refused a write or a hook rejected a mutation.
func (e *Engine) writeGroup(ctx context.Context, tx pgx.Tx, ds []decided) ([]Result, error) {
	types, err := e.columnTypes(ctx, tx)
	if err != nil {
		return nil, err
	}
	sets, ok := setWrites(ds, types)
	if !ok {
		return nil, nil
	}
	var b pgx.Batch
	b.Queue(`SAVEPOINT ` + groupSavepoint)
	for _, d := range ds {
		for _, q := range d.a.deferred {
			b.Queue(q.sql, q.args...)
		}
	}
	// A rejected mutation's result carries its record as it is (withRecord): read before the
	// group's writes, as it is when the mutation's turn comes (no earlier one of the group writes
	// it).
	rejects := map[int]bool{}
	for i, d := range ds {
		if d.done == nil || d.done.Status != StatusRejected {
			continue
		}
		q, ok, err := e.recordQuery(d.a.id, d.a.m)
		if err != nil {
			return nil, err
		}
		if !ok {
			d.done.Gone = GoneNotFound
			continue
		}
		rejects[i] = true
		b.Queue(q.sql, q.args...)
	}
	for _, st := range sets {
		b.Queue(st.sql, st.args...)
	}
	type written struct {
		entity  json.RawMessage
		version int64
		ok      bool
	}
	ws := make([]written, len(ds))
	refused := false
	err = func() error {
		br := tx.SendBatch(ctx, &b)
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("savepoint: %w", err)
		}
		for _, d := range ds {
			for range d.a.deferred {
				if _, err := br.Exec(); err != nil {
					return fmt.Errorf("record conflict: %w", err)
				}
			}
		}
		for i, d := range ds {
			if !rejects[i] {
				continue
			}
			r, err := takeRecord(br.QueryRow(), d.a.m, *d.done)
			if err != nil {
				return err
			}
			*d.done = r
		}
		for _, st := range sets {
			rows, err := br.Query()
			if err == nil {
				for rows.Next() {
					var id uuid.UUID
					var w written
					if err = rows.Scan(&id, &w.entity, &w.version); err != nil {
						break
					}
					if i, ok := st.members[id]; ok {
						w.ok = true
						ws[i] = w
					}
				}
				rows.Close()
				if err == nil {
					err = rows.Err()
				}
			}
			if err != nil {
				if st.create {
					err = ds[st.first].a.insertError(err)
				} else {
					err = translateWriteError(err)
				}
				var fe *fieldsync.Error
				if errors.As(err, &fe) {
					refused = true
					return nil
				}
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
		if d.done == nil && !ws[i].ok {
			// Not written: a record that went away under its lock cannot, but if it did, alone
			// the mutation says what became of it.
			refused = true
			break
		}
		var err error
		switch {
		case d.done != nil:
			out[i] = *d.done
			continue
		case d.update == nil:
			d.a.pre = nil // what follows the write reads the database
			out[i], err = d.a.created(ctx, d.cols, ws[i].entity, ws[i].version)
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

// setWrite is one statement of a group's writes: the records of one table, all created or all
// updated in the same columns (or read, when the update changed nothing), each returning its id,
// the device's view of it and its version.
type setWrite struct {
	sql     string
	args    []any
	create  bool
	members map[uuid.UUID]int // record id → index in the group
	first   int
}

// setWrites turns the group's writes into a statement per table and set of columns: the values
// go as text arrays, unnested and cast to the columns' types, so that a hundred writes cost the
// database three statements, not a hundred, and run the same triggers.
//
// It returns false if a value has no text form (no decoded value lacks one): the group is then
// applied mutation by mutation.
func setWrites(ds []decided, types map[string]map[string]string) ([]setWrite, bool) {
	type shape struct {
		table, op, cols string
	}
	var order []shape
	byShape := map[shape][]int{}
	for i, d := range ds {
		if d.done != nil {
			continue
		}
		var sh shape
		switch {
		case d.update == nil:
			sh = shape{d.a.ent.table, "insert", strings.Join(sortedKeys(d.cols), ",")}
		case len(d.update.set) == 0:
			sh = shape{d.a.ent.table, "read", ""}
		default:
			sh = shape{d.a.ent.table, "update", strings.Join(sortedKeys(d.update.set), ",")}
		}
		if _, ok := byShape[sh]; !ok {
			order = append(order, sh)
		}
		byShape[sh] = append(byShape[sh], i)
	}
	var out []setWrite
	for _, sh := range order {
		idx := byShape[sh]
		a := ds[idx[0]].a
		st := setWrite{create: sh.op == "insert", members: map[uuid.UUID]int{}, first: idx[0]}
		ids := make([]uuid.UUID, len(idx))
		for j, i := range idx {
			ids[j] = ds[i].a.m.EntityID
			st.members[ids[j]] = i
		}
		var names []string
		if sh.cols != "" {
			names = strings.Split(sh.cols, ",")
		}
		cols := make([][]*string, len(names))
		for c, name := range names {
			cols[c] = make([]*string, len(idx))
			for j, i := range idx {
				v := ds[i].cols[name]
				if ds[i].update != nil {
					v = ds[i].update.set[name]
				}
				var ok bool
				if cols[c][j], ok = textValue(v); !ok {
					return nil, false
				}
			}
		}
		cast := func(c int) string {
			return fmt.Sprintf("v.c%d::%s", c, types[a.ent.table][names[c]])
		}
		aliases := make([]string, len(names))
		unnest := make([]string, len(names))
		for c := range names {
			aliases[c] = fmt.Sprintf("c%d", c)
			unnest[c] = fmt.Sprintf("$%d::text[]", c+2)
		}
		switch sh.op {
		case "read":
			st.sql = fmt.Sprintf(`SELECT t.id, %s, t.version FROM %s t WHERE t.id = ANY($1)`, a.ent.data, a.ent.table)
			st.args = []any{ids}
		case "insert":
			values := make([]string, len(names))
			for c := range names {
				values[c] = cast(c)
			}
			// In the group's order, so that the versions follow the mutations.
			st.sql = fmt.Sprintf(`INSERT INTO %s AS t (%s) SELECT %s FROM unnest($1::uuid[], %s) WITH ORDINALITY AS v(id, %s, ord) ORDER BY v.ord
				RETURNING t.id, %s, t.version`,
				a.ent.table, strings.Join(names, ", "), strings.Join(values, ", "), strings.Join(unnest, ", "), strings.Join(aliases, ", "), a.ent.data)
		default:
			assigns := make([]string, len(names))
			for c, name := range names {
				assigns[c] = name + " = " + cast(c)
			}
			st.sql = fmt.Sprintf(`UPDATE %s AS t SET %s FROM unnest($1::uuid[], %s) AS v(id, %s) WHERE t.id = v.id RETURNING t.id, %s, t.version`,
				a.ent.table, strings.Join(assigns, ", "), strings.Join(unnest, ", "), strings.Join(aliases, ", "), a.ent.data)
		}
		if sh.op != "read" {
			st.args = append([]any{ids}, func() []any {
				out := make([]any, len(cols))
				for c := range cols {
					out[c] = cols[c]
				}
				return out
			}()...)
		}
		out = append(out, st)
	}
	return out, true
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// textValue is a decoded value (what the applier writes) as PostgreSQL's text input of it: the
// column's type reads it back to the same value (floats are written shortest-exact, times to the
// microsecond they were cut to).
func textValue(v any) (*string, bool) {
	var s string
	switch x := v.(type) {
	case nil:
		return nil, true
	case string:
		s = x
	case int64:
		s = strconv.FormatInt(x, 10)
	case float64:
		s = strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		s = strconv.FormatBool(x)
	case time.Time:
		s = x.UTC().Format(time.RFC3339Nano)
	case uuid.UUID:
		s = x.String()
	default:
		return nil, false
	}
	return &s, true
}

// columnTypes returns the SQL type of every column of the synced tables, read once. The types
// are without their modifiers: an explicit cast to varchar(n) would cut a value the column's own
// assignment refuses.
func (e *Engine) columnTypes(ctx context.Context, tx pgx.Tx) (map[string]map[string]string, error) {
	if t := e.columns.Load(); t != nil {
		return *t, nil
	}
	tables := make([]string, 0, len(entities))
	for _, ent := range entities {
		tables = append(tables, ent.table)
	}
	rows, err := tx.Query(ctx, `
		SELECT c.relname, a.attname, format_type(a.atttypid, NULL)
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		WHERE a.attrelid IN (SELECT to_regclass(n) FROM unnest($1::text[]) AS n) AND a.attnum > 0 AND NOT a.attisdropped`, tables)
	if err != nil {
		return nil, fmt.Errorf("read column types: %w", err)
	}
	defer rows.Close()
	types := map[string]map[string]string{}
	for rows.Next() {
		var table, column, typ string
		if err := rows.Scan(&table, &column, &typ); err != nil {
			return nil, fmt.Errorf("read column types: %w", err)
		}
		if types[table] == nil {
			types[table] = map[string]string{}
		}
		types[table][column] = typ
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read column types: %w", err)
	}
	e.columns.Store(&types)
	return types, nil
}
