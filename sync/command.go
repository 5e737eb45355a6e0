package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Command applies one mutation for a screen (a processor's or manager's) or for the server itself
// (SystemIdentity), through the same write as a push (Engine.write: its transaction, retry and
// hooks), and returns its result. A rejection is returned as the error. An update or delete
// without a base version is taken against the record as it is now: the caller is looking at the
// current record.
func (e *Engine) Command(ctx context.Context, id *fieldsync.Identity, m Mutation) (Result, error) {
	if m.ID == uuid.Nil {
		m.ID = uuid.Must(uuid.NewV7())
	}
	var r Result
	err := e.write(ctx, func(tx pgx.Tx) error {
		attempt := m // a retried attempt starts again from the mutation as given
		attempt.command = true
		if err := baseOnCurrent(ctx, tx, &attempt); err != nil {
			return err
		}
		var err error
		// A rejection returned as a result is committed all the same: it may carry a recorded
		// conflict.
		r, err = e.apply(ctx, tx, id, &attempt)
		return err
	})
	if err == nil && r.Error != nil {
		return r, &fieldsync.Error{Kind: fieldsync.ECONFLICT, Code: r.Error.Code, Message: r.Error.Message, Details: r.Error.Details}
	}
	return r, err
}

// baseOnCurrent gives an update or delete without a base version the version of the record as it
// is now. A record that does not exist is not_found.
func baseOnCurrent(ctx context.Context, tx pgx.Tx, m *Mutation) error {
	ent, ok := entities[m.Type]
	if !ok || m.BaseVersion != nil || m.Op == "create" {
		return nil
	}
	var v int64
	err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT version FROM %s WHERE id = $1`, ent.table), m.EntityID).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return fieldErr("not_found", "id", "No %s has id %s.", m.Type, m.EntityID)
	}
	if err != nil {
		return fmt.Errorf("read version: %w", err)
	}
	m.BaseVersion = &v
	return nil
}

// The screens' commands. Each is an update of one record, made through Command, so that it is
// checked exactly as the same change pushed from a device would be. Values given as
// json.RawMessage are passed on as sent, and checked by the entity's rules. base is the version of
// the record the caller saw (nil: the record as it is now). A record that does not exist is
// ENOTFOUND; a rejection is the error, with the engine's code.

// AssignTask assigns task to a rep of the branch, or reassigns it to another.
func (e *Engine) AssignTask(ctx context.Context, id *fieldsync.Identity, task uuid.UUID, assignee json.RawMessage, base *int64) (Result, error) {
	if isNull(assignee) {
		return Result{}, fieldsync.InvalidField("assignee_id", "assignee_id must be the id of a rep of the branch.")
	}
	return e.screenCommand(ctx, id, TypeTask, task, base, "", map[string]any{"assignee_id": assignee})
}

// CancelTask cancels task.
func (e *Engine) CancelTask(ctx context.Context, id *fieldsync.Identity, task uuid.UUID, base *int64) (Result, error) {
	return e.screenCommand(ctx, id, TypeTask, task, base, "", map[string]any{"status": TaskCancelled})
}

// ReopenTask reopens a finished task: assigned to assignee when given, else to whoever held it,
// else open; an assignee of JSON null reopens it open, for nobody. The engine records who reopened
// the task and why (reason, which may be empty) as a note on it (see applier.recordReopen).
func (e *Engine) ReopenTask(ctx context.Context, id *fieldsync.Identity, task uuid.UUID, assignee json.RawMessage, reason string, base *int64) (Result, error) {
	if utf8.RuneCountInString(reason) > maxReopenReason || strings.ContainsRune(reason, 0) {
		return Result{}, fieldErr("invalid_value", "reason", "reason must be at most %d characters, without U+0000.", maxReopenReason)
	}
	fields := map[string]any{"status": TaskOpen}
	if len(assignee) > 0 {
		fields["assignee_id"] = assignee
	}
	return e.screenCommand(ctx, id, TypeTask, task, base, reason, fields)
}

// maxReopenReason is the longest reason a reopening takes (characters).
const maxReopenReason = 2000

// Decision is a processor's decision on a document or a claim: approved or rejected, with a note
// (JSON as sent; a rejected document needs one, for the rep is told why).
type Decision struct {
	Decision string
	Note     json.RawMessage
}

// fields are the mutation's fields of the decision, which must name one of the two statuses of
// the record's state machine that decide it (approve, reject).
func (d Decision) fields(noteField, approve, reject string) (map[string]any, error) {
	if d.Decision != approve && d.Decision != reject {
		return nil, fieldsync.InvalidField("decision", "decision must be %s or %s.", approve, reject)
	}
	fields := map[string]any{"status": d.Decision}
	if !isNull(d.Note) {
		fields[noteField] = d.Note
	}
	return fields, nil
}

// ReviewDocument approves or rejects an uploaded document. A document already decided keeps its
// first decision (a conflict).
func (e *Engine) ReviewDocument(ctx context.Context, id *fieldsync.Identity, doc uuid.UUID, d Decision, base *int64) (Result, error) {
	fields, err := d.fields("review_note", string(DocumentApproved), string(DocumentRejected))
	if err != nil {
		return Result{}, err
	}
	return e.screenCommand(ctx, id, TypeDocument, doc, base, "", fields)
}

// DecideClaim approves or rejects a claim, by the claim's state machine.
func (e *Engine) DecideClaim(ctx context.Context, id *fieldsync.Identity, claim uuid.UUID, d Decision, base *int64) (Result, error) {
	fields, err := d.fields("decision_note", string(ClaimApproved), string(ClaimRejected))
	if err != nil {
		return Result{}, err
	}
	return e.screenCommand(ctx, id, TypeClaim, claim, base, "", fields)
}

// RecordPayment records the payment of an approved claim: it becomes paid, with amount (cents, JSON
// as sent) and the time.
func (e *Engine) RecordPayment(ctx context.Context, id *fieldsync.Identity, claim uuid.UUID, amount json.RawMessage, base *int64) (Result, error) {
	if isNull(amount) {
		return Result{}, fieldsync.InvalidField("amount_paid", "amount_paid is required: the amount paid, in cents.")
	}
	return e.screenCommand(ctx, id, TypeClaim, claim, base, "", map[string]any{"status": ClaimPaid, "amount_paid": amount})
}

// screenCommand applies a screen's update of record entityID (of type typ) through Command.
func (e *Engine) screenCommand(ctx context.Context, id *fieldsync.Identity, typ string, entityID uuid.UUID, base *int64, reason string, fields map[string]any) (Result, error) {
	raw := make(map[string]json.RawMessage, len(fields))
	for name, v := range fields {
		if r, ok := v.(json.RawMessage); ok {
			raw[name] = r
			continue
		}
		data, err := json.Marshal(v)
		if err != nil {
			return Result{}, err
		}
		raw[name] = data
	}
	if base != nil && *base < 1 {
		return Result{}, fieldsync.InvalidField("base_version", "base_version must be a version of the record (1 or more).")
	}
	r, err := e.Command(ctx, id, Mutation{Type: typ, Op: "update", EntityID: entityID, BaseVersion: base, Fields: raw, reason: reason})
	var fe *fieldsync.Error
	if errors.As(err, &fe) && fe.Code == "not_found" && (fe.Details["field"] == "id" || fe.Details["field"] == "entity_id") {
		return r, &fieldsync.Error{Kind: fieldsync.ENOTFOUND, Code: "not_found", Message: fe.Message, Details: map[string]any{"field": "id"}}
	}
	return r, err
}

// isNull reports whether a raw JSON value is absent or null.
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}
