package sync

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Push applies a device's queued mutations in order, each atomically, and returns one result per
// mutation. A mutation id is applied at most once: a replay returns the stored result and changes
// nothing, and the same id with other content is rejected with mutation_id_reused. A rejected
// mutation does not stop the ones after it. The whole push commits at once, so a push that fails
// midway (the server dies) leaves nothing behind, and the device's retry applies it all.
func (e *Engine) Push(ctx context.Context, id *fieldsync.Identity, mutations []Mutation) ([]Result, error) {
	if !pullRoles[id.Role] {
		return nil, fieldsync.Errorf(fieldsync.EFORBIDDEN, "forbidden", "The %s role does not sync.", id.Role)
	}
	if len(mutations) > MaxMutationsPerPush {
		return nil, fieldsync.Errorf(fieldsync.ETOOLARGE, "payload_too_large", "A push holds at most %d mutations.", MaxMutationsPerPush)
	}
	results := make([]Result, len(mutations))
	err := e.write(ctx, func(tx pgx.Tx) error {
		// The push's bookkeeping costs two round trips, not two per mutation: the results of
		// mutations seen before are read at once (with the user's lock), and the new ones are
		// stored at once.
		p, err := e.startPush(ctx, tx, id, mutations)
		if err != nil {
			return err
		}
		for i := 0; i < len(mutations); {
			// Mutations that do not depend on each other are applied as a set (pushgroup.go);
			// the others one by one.
			if g := p.group(id, mutations[i:], i); g != nil && !e.oneByOne {
				if err := e.pushGroup(ctx, tx, id, g, results, p); err != nil {
					return err
				}
				i += len(g)
				continue
			}
			r, err := e.pushOne(ctx, tx, id, &mutations[i], p)
			if err != nil {
				return err
			}
			results[i] = r
			i++
		}
		return p.store(ctx, tx, id)
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// mutationHash identifies a mutation's content, to tell a replay from a reused id.
func mutationHash(m *Mutation) ([]byte, error) {
	fields := make(map[string]json.RawMessage, len(m.Fields))
	for name, raw := range m.Fields {
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return nil, fmt.Errorf("compact field %s: %w", name, err)
		}
		fields[name] = buf.Bytes()
	}
	canonical := *m
	canonical.Fields = fields
	data, err := json.Marshal(canonical)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	return sum[:], nil
}

// pushState is a push's bookkeeping: the stored result and request hash of every mutation id seen
// before (in earlier pushes, or earlier in this one), and the results to store.
type pushState struct {
	stored map[uuid.UUID]storedResult
	// ids, hashes and results are the rows of applied_mutations to write when the push ends.
	ids     []uuid.UUID
	hashes  [][]byte
	results []string
	// savepoint says whether the push's savepoint is set (see applyInSavepoint).
	savepoint bool
	// grouped says whether the savepoint of a group's writes is set and not released yet
	// (pushGroup).
	grouped bool
}

type storedResult struct {
	hash   []byte
	result []byte
	// user pushed it: a mutation id is the device's, and another user's id is never replayed
	// (its stored result holds the other user's records).
	user uuid.UUID
}

// startPush takes the user's push lock and reads the stored results of the push's mutation ids
// that were applied before, in one round trip.
func (e *Engine) startPush(ctx context.Context, tx pgx.Tx, id *fieldsync.Identity, mutations []Mutation) (*pushState, error) {
	p := &pushState{stored: map[uuid.UUID]storedResult{}}
	ids := make([]uuid.UUID, len(mutations))
	for i := range mutations {
		ids[i] = mutations[i].ID
	}
	var b pgx.Batch
	// One push per user at a time: a retry racing its own original waits for it, then finds its
	// mutations applied. The lock is taken before the look-up, in the same batch.
	b.Queue(`SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))`, id.UserID)
	b.Queue(`SELECT id, request_hash, result, user_id FROM applied_mutations WHERE id = ANY($1)`, ids)
	br := tx.SendBatch(ctx, &b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("lock pushes of user: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("look up mutations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		var s storedResult
		if err := rows.Scan(&id, &s.hash, &s.result, &s.user); err != nil {
			return nil, fmt.Errorf("look up mutations: %w", err)
		}
		p.stored[id] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up mutations: %w", err)
	}
	rows.Close()
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("look up mutations: %w", err)
	}
	return p, nil
}

// store writes the results of the mutations the push applied, so that a replay finds them.
func (p *pushState) store(ctx context.Context, tx pgx.Tx, id *fieldsync.Identity) error {
	if len(p.ids) == 0 {
		return nil
	}
	var device any
	if id.DeviceID != [16]byte{} {
		device = id.DeviceID
	}
	_, err := tx.Exec(ctx, `INSERT INTO applied_mutations (id, user_id, device_id, request_hash, result)
		SELECT m.id, $4::uuid, $5::uuid, m.hash, m.result FROM unnest($1::uuid[], $2::bytea[], $3::jsonb[]) AS m(id, hash, result)`,
		p.ids, p.hashes, p.results, id.UserID, device)
	if err != nil {
		return fmt.Errorf("store results of %d mutations: %w", len(p.ids), err)
	}
	return nil
}

func (e *Engine) pushOne(ctx context.Context, tx pgx.Tx, id *fieldsync.Identity, m *Mutation, p *pushState) (Result, error) {
	hash, err := mutationHash(m)
	if err != nil {
		return e.withRecord(ctx, tx, id, m, rejected(m, fieldsync.Errorf(fieldsync.EINVALID, "invalid_value", "The mutation's fields are not valid JSON.")))
	}
	if m.ID == uuid.Nil {
		// Nothing to remember it by: it is rejected afresh each time, never stored.
		return e.withRecord(ctx, tx, id, m, rejected(m, fieldErr("invalid_value", "id", "id must be a UUID made by the device.")))
	}
	if s, ok := p.stored[m.ID]; ok {
		if !bytes.Equal(s.hash, hash) || s.user != id.UserID {
			return e.withRecord(ctx, tx, id, m, rejected(m, fieldsync.Errorf(fieldsync.ECONFLICT, "mutation_id_reused",
				"This mutation id was already used for a different change.")))
		}
		var r Result
		if err := json.Unmarshal(s.result, &r); err != nil {
			return Result{}, fmt.Errorf("read stored result of %s: %w", m.ID, err)
		}
		return r, nil
	}

	r, err := e.applyInSavepoint(ctx, tx, id, m, p)
	if err != nil {
		return Result{}, err
	}
	return r, p.remember(m, hash, r, id)
}

// remember keeps the result of m, applied now, to be stored with the push and found by a replay
// later in it.
func (p *pushState) remember(m *Mutation, hash []byte, r Result, id *fieldsync.Identity) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	p.stored[m.ID] = storedResult{hash: hash, result: data, user: id.UserID}
	p.ids, p.hashes, p.results = append(p.ids, m.ID), append(p.hashes, hash), append(p.results, string(data))
	return nil
}

// applyInSavepoint applies m so that a rejection undoes all of it and nothing else. The push's
// mutations take turns with one savepoint: each releases the one before it and sets its own, and a
// rejection rolls back to it. Setting it costs no round trip of its own: the statements go to the
// server with the mutation's first query (see savepointTx).
func (e *Engine) applyInSavepoint(ctx context.Context, tx pgx.Tx, id *fieldsync.Identity, m *Mutation, p *pushState) (Result, error) {
	st := &savepointTx{Tx: tx, ahead: []string{`SAVEPOINT mutation`}}
	if p.savepoint {
		st.ahead = []string{`RELEASE SAVEPOINT mutation`, `SAVEPOINT mutation`}
	}
	if p.grouped {
		// The group before this mutation is done with its savepoint.
		st.ahead = append([]string{`RELEASE SAVEPOINT ` + groupSavepoint}, st.ahead...)
	}
	r, err := e.apply(ctx, st, id, m)
	set := len(st.ahead) == 0
	if set {
		p.savepoint = true
		p.grouped = false
	}
	var fe *fieldsync.Error
	switch {
	case err == nil && r.Status == StatusRejected:
		// Rejected with a conflict to keep (delete_wins): nothing to undo.
		return e.withRecord(ctx, tx, id, m, r)
	case err == nil:
		return r, nil
	case errors.As(err, &fe):
		// A mutation rejected before its first query (its shape) set no savepoint and wrote
		// nothing: there is nothing to undo, and the savepoint before it stands.
		if set {
			if _, rbErr := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT mutation`); rbErr != nil {
				return Result{}, fmt.Errorf("roll back rejected mutation: %w", rbErr)
			}
		}
		return e.withRecord(ctx, tx, id, m, rejected(m, fe))
	default:
		return Result{}, err
	}
}

// savepointTx is the push's transaction as one mutation sees it: the statements in ahead (setting
// the mutation's savepoint) have not been sent yet, and go to the server in one batch with the
// mutation's first query, which then costs one round trip for both. Every way of running a
// statement sends them first; the transaction's connection (Conn) must not be used before a first
// query, and is not: the engine's applier and its hooks only run statements through the Tx.
type savepointTx struct {
	pgx.Tx
	ahead []string
}

// send sends the statements ahead, and sql after them when it is not empty, in one batch, and
// returns the batch's results positioned at sql's.
func (t *savepointTx) send(ctx context.Context, sql string, args []any) (pgx.BatchResults, error) {
	var b pgx.Batch
	for _, s := range t.ahead {
		b.Queue(s)
	}
	if sql != "" {
		b.Queue(sql, args...)
	}
	n := len(t.ahead)
	t.ahead = nil
	br := t.Tx.SendBatch(ctx, &b)
	for range n {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return nil, fmt.Errorf("savepoint: %w", err)
		}
	}
	return br, nil
}

// flush sends the statements ahead on their own.
func (t *savepointTx) flush(ctx context.Context) error {
	if len(t.ahead) == 0 {
		return nil
	}
	br, err := t.send(ctx, "", nil)
	if err != nil {
		return err
	}
	return br.Close()
}

func (t *savepointTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if len(t.ahead) == 0 {
		return t.Tx.Exec(ctx, sql, args...)
	}
	br, err := t.send(ctx, sql, args)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

func (t *savepointTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if len(t.ahead) == 0 {
		return t.Tx.QueryRow(ctx, sql, args...)
	}
	br, err := t.send(ctx, sql, args)
	if err != nil {
		return errRow{err}
	}
	return batchRow{row: br.QueryRow(), br: br}
}

func (t *savepointTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	return t.Tx.Query(ctx, sql, args...)
}

func (t *savepointTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	// Should the savepoint fail, the transaction is aborted and the batch reports it.
	_ = t.flush(ctx)
	return t.Tx.SendBatch(ctx, b)
}

func (t *savepointTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if err := t.flush(ctx); err != nil {
		return 0, err
	}
	return t.Tx.CopyFrom(ctx, table, columns, src)
}

func (t *savepointTx) Begin(ctx context.Context) (pgx.Tx, error) {
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	return t.Tx.Begin(ctx)
}

// batchRow is the row of a query sent in a batch: scanning it ends the batch. The query's own
// error comes first, so that callers see the *pgconn.PgError or pgx.ErrNoRows they expect.
type batchRow struct {
	row pgx.Row
	br  pgx.BatchResults
}

func (r batchRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if cerr := r.br.Close(); err == nil {
		err = cerr
	}
	return err
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

func rejected(m *Mutation, fe *fieldsync.Error) Result {
	return Result{ID: m.ID, Status: StatusRejected, Error: &ResultError{Code: fe.Code, Message: fe.Message, Details: fe.Details}}
}

// withRecord gives a rejected result the record as it now is, as id may see it (the entity's
// allow-list, as pulls send it), or says why there is none: nothing of the mutation applied, and
// the device replaces its copy (which may hold its own edit) with the server's, without waiting
// for a pull. It reads after the mutation's rollback, in the push's transaction.
func (e *Engine) withRecord(ctx context.Context, tx pgx.Tx, id *fieldsync.Identity, m *Mutation, r Result) (Result, error) {
	q, ok, err := e.recordQuery(id, m)
	if err != nil {
		return Result{}, err
	}
	if !ok {
		r.Gone = GoneNotFound
		return r, nil
	}
	return takeRecord(tx.QueryRow(ctx, q.sql, q.args...), m, r)
}

// recordQuery is withRecord's query of m's record; ok is false when m names none.
func (e *Engine) recordQuery(id *fieldsync.Identity, m *Mutation) (q queued, ok bool, err error) {
	ent, ok := entities[m.Type]
	if !ok || m.EntityID == uuid.Nil {
		return queued{}, false, nil
	}
	visible := "true"
	if id.Role != RoleSystem {
		pred, err := scopeOf(id.Role, m.Type)
		if err != nil {
			return queued{}, false, err
		}
		visible = pred
	}
	return queued{sql: fmt.Sprintf(`SELECT t.version, %s, (%s), (%s) FROM %s t, %s WHERE t.id = $5`, ent.data, ent.alive, visible, ent.table, params),
		args: []any{id.UserID, id.BranchID, e.cfg.ScopeWindow, e.sqlNow(), m.EntityID}}, true, nil
}

// takeRecord gives r the record recordQuery read into row, or says why there is none.
func takeRecord(row pgx.Row, m *Mutation, r Result) (Result, error) {
	var data []byte
	var alive, seen bool
	err := row.Scan(&r.Version, &data, &alive, &seen)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		r.Version, r.Gone = 0, GoneNotFound
	case err != nil:
		return Result{}, fmt.Errorf("read %s %s for its rejected mutation: %w", m.Type, m.EntityID, err)
	case !seen:
		r.Gone = GoneOutOfScope
	case !alive:
		r.Gone = GoneDeleted
	default:
		r.Entity = data
	}
	return r, nil
}
