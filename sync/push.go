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
	err := e.inTx(ctx, func(tx pgx.Tx) error {
		// One push per user at a time: a retry racing its own original waits for it, then
		// finds its mutations applied.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))`, id.UserID); err != nil {
			return fmt.Errorf("lock pushes of user: %w", err)
		}
		for i := range mutations {
			r, err := e.pushOne(ctx, tx, id, &mutations[i])
			if err != nil {
				return err
			}
			results[i] = r
		}
		return nil
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

func (e *Engine) pushOne(ctx context.Context, tx pgx.Tx, id *fieldsync.Identity, m *Mutation) (Result, error) {
	hash, err := mutationHash(m)
	if err != nil {
		return rejected(m, fieldsync.Errorf(fieldsync.EINVALID, "invalid_value", "The mutation's fields are not valid JSON.")), nil
	}
	var storedHash, stored []byte
	err = tx.QueryRow(ctx, `SELECT request_hash, result FROM applied_mutations WHERE id = $1`, m.ID).Scan(&storedHash, &stored)
	switch {
	case err == nil:
		if !bytes.Equal(storedHash, hash) {
			return rejected(m, fieldsync.Errorf(fieldsync.ECONFLICT, "mutation_id_reused",
				"This mutation id was already used for a different change.")), nil
		}
		var r Result
		if err := json.Unmarshal(stored, &r); err != nil {
			return Result{}, fmt.Errorf("read stored result of %s: %w", m.ID, err)
		}
		return r, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return Result{}, fmt.Errorf("look up mutation %s: %w", m.ID, err)
	}

	r, err := e.applyInSavepoint(ctx, tx, id, m)
	if err != nil {
		return Result{}, err
	}
	data, err := json.Marshal(r)
	if err != nil {
		return Result{}, err
	}
	var device any
	if id.DeviceID != [16]byte{} {
		device = id.DeviceID
	}
	if _, err := tx.Exec(ctx, `INSERT INTO applied_mutations (id, user_id, device_id, request_hash, result) VALUES ($1, $2, $3, $4, $5)`,
		m.ID, id.UserID, device, hash, data); err != nil {
		return Result{}, fmt.Errorf("store result of %s: %w", m.ID, err)
	}
	return r, nil
}

// applyInSavepoint applies m so that a rejection undoes all of it and nothing else.
func (e *Engine) applyInSavepoint(ctx context.Context, tx pgx.Tx, id *fieldsync.Identity, m *Mutation) (Result, error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("savepoint: %w", err)
	}
	r, err := e.apply(ctx, sp, id, m)
	var fe *fieldsync.Error
	switch {
	case err == nil:
		if err := sp.Commit(ctx); err != nil {
			return Result{}, fmt.Errorf("release savepoint: %w", err)
		}
		return r, nil
	case errors.As(err, &fe):
		if rbErr := sp.Rollback(ctx); rbErr != nil {
			return Result{}, fmt.Errorf("roll back rejected mutation: %w", rbErr)
		}
		return rejected(m, fe), nil
	default:
		_ = sp.Rollback(ctx)
		return Result{}, err
	}
}

func rejected(m *Mutation, fe *fieldsync.Error) Result {
	return Result{ID: m.ID, Status: StatusRejected, Error: &ResultError{Code: fe.Code, Message: fe.Message, Details: fe.Details}}
}

// Command applies one mutation for a screen (a processor's or manager's) or for the server itself
// (SystemIdentity), through the same path as a push, and returns its result. A rejection is
// returned as the error. An update or delete without a base version is taken against the record as
// it is now: the caller is looking at the current record.
func (e *Engine) Command(ctx context.Context, id *fieldsync.Identity, m Mutation) (Result, error) {
	if m.ID == uuid.Nil {
		m.ID = uuid.Must(uuid.NewV7())
	}
	var r Result
	err := e.inTx(ctx, func(tx pgx.Tx) error {
		ent, ok := entities[m.Type]
		if ok && m.BaseVersion == nil && m.Op != "create" {
			var v int64
			err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT version FROM %s WHERE id = $1`, ent.table), m.EntityID).Scan(&v)
			if errors.Is(err, pgx.ErrNoRows) {
				return fieldErr("not_found", "id", "No %s has id %s.", m.Type, m.EntityID)
			}
			if err != nil {
				return fmt.Errorf("read version: %w", err)
			}
			m.BaseVersion = &v
		}
		var err error
		if r, err = e.apply(ctx, tx, id, &m); err != nil {
			return err
		}
		// A rejection returned as a result is committed all the same: it may carry a recorded
		// conflict.
		return nil
	})
	if err == nil && r.Error != nil {
		return r, &fieldsync.Error{Kind: fieldsync.ECONFLICT, Code: r.Error.Code, Message: r.Error.Message, Details: r.Error.Details}
	}
	return r, err
}

// inTx runs fn in a transaction, and runs it again (up to three times in all) when PostgreSQL
// aborts it for a deadlock or a serialization failure: two pushes that lock the same task and
// claim in opposite orders are both served, one after the other, instead of one failing.
func (e *Engine) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = pgx.BeginFunc(ctx, e.db, fn)
		var pgErr *pgconn.PgError
		if attempt == 3 || !errors.As(err, &pgErr) || (pgErr.Code != "40P01" && pgErr.Code != "40001") {
			return err
		}
		e.log.WarnContext(ctx, "transaction retried", "sqlstate", pgErr.Code, "attempt", attempt)
	}
}
