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
	var status ClaimStatus
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
	var next ClaimStatus
	switch {
	case (status == ClaimReported || status == ClaimCollecting) && open == 0 && completed > 0:
		next = ClaimUnderReview
	case status == ClaimReported && started > 0:
		next = ClaimCollecting
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
