package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// SystemIdentity is the server acting on its own (derived changes, upload completion, intake's
// dispatch) in branch; cause, when known, is the user whose action led to it, for hooks and the
// conflict record. Its mutations may write every field, including the server's own.
func SystemIdentity(branch, cause uuid.UUID) *fieldsync.Identity {
	return &fieldsync.Identity{Role: RoleSystem, BranchID: branch, UserID: cause, Name: "fieldsync"}
}

// advanceClaim moves a claim along as its tasks progress: to collecting when a rep takes up one of
// its tasks, to under_review when every task has finished and at least one was completed. It is a
// mutation like any other, so it is versioned, logged and notified the same way.
func (e *Engine) advanceClaim(ctx context.Context, tx pgx.Tx, claimID string, actor *fieldsync.Identity) error {
	var status string
	var version int64
	var branch uuid.UUID
	var started, open, completed int
	err := tx.QueryRow(ctx, `
		SELECT c.status, c.version, c.branch_id,
			count(t.id) FILTER (WHERE t.status IN ('accepted', 'in_progress', 'completed', 'cannot_complete')),
			count(t.id) FILTER (WHERE t.status IN ('open', 'assigned', 'accepted', 'in_progress')),
			count(t.id) FILTER (WHERE t.status = 'completed')
		FROM claims c LEFT JOIN tasks t ON t.claim_id = c.id AND t.deleted_at IS NULL
		WHERE c.id = $1::uuid AND c.deleted_at IS NULL
		GROUP BY c.id`, claimID).Scan(&status, &version, &branch, &started, &open, &completed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read claim progress: %w", err)
	}
	next := ""
	switch {
	case (status == "reported" || status == "collecting") && open == 0 && completed > 0:
		next = "under_review"
	case status == "reported" && started > 0:
		next = "collecting"
	}
	if next == "" {
		return nil
	}
	value, _ := json.Marshal(next)
	m := &Mutation{ID: uuid.Must(uuid.NewV7()), Type: TypeClaim, Op: "update", EntityID: uuid.MustParse(claimID),
		BaseVersion: &version, Fields: map[string]json.RawMessage{"status": value}}
	sys := SystemIdentity(branch, actor.UserID)
	if _, err := e.apply(ctx, tx, sys, m); err != nil {
		return fmt.Errorf("advance claim %s to %s: %w", claimID, next, err)
	}
	return nil
}

// translateWriteError turns a value the database refused into the client's error, through the
// one translation of database errors (fieldsync.FromDatabase). An unreachable database is not the
// mutation's fault: it fails the push as a whole, to be retried, and is never stored as a rejection.
func translateWriteError(err error) error {
	if fe := fieldsync.FromDatabase(err); fe != nil && fe.Kind != fieldsync.EUNAVAILABLE {
		return fe
	}
	return fmt.Errorf("write: %w", err)
}

// frozenFields are the fields that stop changing once a record reaches a status, by type and
// status: a decision, a payment, a finished piece of work stand as they were made. A later write
// that would change one is rejected with field_frozen (conflict, 409 on the screens), and nothing
// of it is applied. The server's own writes are not held back, and neither is a mutation that
// moves the record to another status by its state machine (a manager's reopen, a processor's
// rejection after an approval): that move is the recorded change that may correct them, and it
// writes the fields of the status it leads to. A decision repeated with its fields (paying a
// paid claim again) stays a conflict by the state machine's rules, as before.
var frozenFields = map[string]map[string][]string{
	TypeClaim: {
		"approved": {"amount_claimed", "decision_note"},
		"paid":     {"amount_claimed", "amount_paid", "decision_note", "processor_id"},
		"rejected": {"amount_claimed", "amount_paid", "decision_note", "processor_id"},
	},
	TypeDocument: {
		"approved": {"kind", "file_name", "review_note"},
		"rejected": {"kind", "file_name", "review_note"},
	},
	TypeTask: {
		"completed":       {"completion_note", "cannot_complete_reason", "checklist"},
		"cannot_complete": {"completion_note", "cannot_complete_reason", "checklist"},
	},
}
