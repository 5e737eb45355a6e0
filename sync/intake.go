package sync

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ClaimReport is what the claims hotline (or a processor or manager) reports.
type ClaimReport struct {
	// ID is made by the caller, so that a retried report creates one claim. Optional.
	ID            uuid.UUID `json:"id"`
	CustomerID    uuid.UUID `json:"customer_id"`
	PolicyNumber  string    `json:"policy_number"`
	Kind          string    `json:"kind"`
	Hospitalised  bool      `json:"hospitalised"`
	Hospital      string    `json:"hospital"`
	Description   string    `json:"description"`
	AmountClaimed *int64    `json:"amount_claimed"`
}

// ReportedClaim is the claim created, and the hospital visit dispatched for it, if any.
type ReportedClaim struct {
	Claim json.RawMessage `json:"claim"`
	Task  json.RawMessage `json:"task"`
}

var claimKinds = stringsOf(ClaimKinds)

// intakeRoles may report claims: the call-centre integration for any branch, processors and
// managers for their own.
var intakeRoles = []string{fieldsync.RoleIntegration, processor, manager}

func (r *ClaimReport) validate() error {
	switch {
	case r.CustomerID == uuid.Nil:
		return fieldErr("invalid_value", "customer_id", "customer_id must be the customer's id.")
	case strings.TrimSpace(r.PolicyNumber) == "" || utf8.RuneCountInString(r.PolicyNumber) > 100:
		return fieldErr("invalid_value", "policy_number", "policy_number must be 1 to 100 characters.")
	case !slices.Contains(claimKinds, r.Kind):
		return fieldErr("invalid_value", "kind", "kind must be one of %s.", strings.Join(claimKinds, ", "))
	case utf8.RuneCountInString(r.Hospital) > 300:
		return fieldErr("invalid_value", "hospital", "hospital must be at most 300 characters.")
	case r.Hospitalised && strings.TrimSpace(r.Hospital) == "":
		return fieldErr("invalid_value", "hospital", "Name the hospital of a hospitalised customer.")
	case utf8.RuneCountInString(r.Description) > 10000:
		return fieldErr("invalid_value", "description", "description must be at most 10000 characters.")
	case r.AmountClaimed != nil && (*r.AmountClaimed < 0 || *r.AmountClaimed > 1<<50):
		return fieldErr("invalid_value", "amount_claimed", "amount_claimed must be a non-negative amount in cents.")
	}
	// PostgreSQL text cannot hold U+0000: refused here as the caller's mistake, not a 500.
	for name, s := range map[string]string{"policy_number": r.PolicyNumber, "hospital": r.Hospital, "description": r.Description} {
		if strings.ContainsRune(s, 0) {
			return fieldErr("invalid_value", name, "%s must not contain U+0000.", name)
		}
	}
	return nil
}

// ReportClaim creates a claim and, for a hospitalised customer, dispatches a hospital visit to the
// least loaded on-duty hospital rep of the customer's branch, in one transaction with the hooks
// (the rep and the customer's agent are told), through the same write as a push. Reporting the same
// id again returns the claim made the first time.
func (e *Engine) ReportClaim(ctx context.Context, id *fieldsync.Identity, r ClaimReport) (*ReportedClaim, error) {
	if !slices.Contains(intakeRoles, id.Role) {
		return nil, errForbidden("A %s may not report claims.", id.Role)
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	if r.ID == uuid.Nil {
		r.ID = uuid.Must(uuid.NewV7())
	}
	var out ReportedClaim
	// The same write as a push's (Engine.write): a deadlock or serialization failure of the
	// dispatch is retried, not answered with a 500.
	err := e.write(ctx, func(tx pgx.Tx) error {
		var branch uuid.UUID
		var customerName string
		err := tx.QueryRow(ctx, `SELECT branch_id, name FROM customers WHERE id = $1 AND deleted_at IS NULL`, r.CustomerID).Scan(&branch, &customerName)
		if errors.Is(err, pgx.ErrNoRows) {
			return fieldErr("not_found", "customer_id", "No customer has id %s.", r.CustomerID)
		}
		if err != nil {
			return fmt.Errorf("find customer: %w", err)
		}
		if id.Role != fieldsync.RoleIntegration && branch != id.BranchID {
			return errForbidden("That customer belongs to another branch.")
		}
		sys := SystemIdentity(branch, id.UserID)
		a := &applier{e: e, tx: tx, id: sys, m: &Mutation{ID: r.ID, Type: TypeClaim, Op: "create", EntityID: r.ID}, ent: entities[TypeClaim]}

		var existing, same bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM claims WHERE id = $1), EXISTS (SELECT 1 FROM claims WHERE id = $1 AND customer_id = $2)`,
			r.ID, r.CustomerID).Scan(&existing, &same); err != nil {
			return fmt.Errorf("look up claim: %w", err)
		}
		if existing {
			// A retry of a report is answered with the claim only to whoever may read it: the
			// caller who reported it, or a caller whose scope holds it. Anyone else learns no more
			// than of an id taken by another customer's claim.
			replay := same
			if replay {
				if replay, err = e.mayReplayReport(ctx, tx, id, r.ID); err != nil {
					return err
				}
			}
			if !replay {
				return &fieldsync.Error{Kind: fieldsync.ECONFLICT, Code: "already_exists",
					Message: "A claim with that id already exists.", Details: map[string]any{"field": "id"}}
			}
		}
		if !existing {
			_, err = tx.Exec(ctx, `
				INSERT INTO claims (id, number, branch_id, customer_id, policy_number, kind, description, hospitalised, hospital, status, amount_claimed)
				VALUES ($1, 'CLM-' || extract(year FROM now())::int || '-' || lpad(nextval('claim_number_seq')::text, 6, '0'),
					$2, $3, $4, $5, $6, $7, $8, 'reported', $9)`,
				r.ID, branch, r.CustomerID, r.PolicyNumber, r.Kind, r.Description, r.Hospitalised, r.Hospital, r.AmountClaimed)
			if err != nil {
				return translateWriteError(err)
			}
			claim, _, err := a.entityOf(ctx, TypeClaim, r.ID)
			if err != nil {
				return err
			}
			if err := a.runHooks(ctx, "create", nil, claim); err != nil {
				return err
			}
			if r.Hospitalised {
				if err := e.dispatchVisit(ctx, tx, sys, branch, r, customerName); err != nil {
					return err
				}
			}
			if err := recordReport(ctx, tx, id, r); err != nil {
				return err
			}
		}
		if out.Claim, _, err = a.entityOf(ctx, TypeClaim, r.ID); err != nil {
			return err
		}
		var task []byte
		err = tx.QueryRow(ctx, `SELECT `+entities[TypeTask].data+` FROM tasks t WHERE t.claim_id = $1 AND t.kind = 'hospital_visit' ORDER BY t.created_at LIMIT 1`, r.ID).Scan(&task)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("read dispatched task: %w", err)
		}
		out.Task = task
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// dispatchVisit creates the hospital-visit task of a claim and assigns it to the on-duty hospital
// rep of the branch with the fewest unfinished tasks (the task stays open, for a manager to
// assign, when there is none). Dispatches of one branch take turns, so two claims at once do not
// both see the same rep as least loaded.
func (e *Engine) dispatchVisit(ctx context.Context, tx pgx.Tx, sys *fieldsync.Identity, branch uuid.UUID, r ClaimReport, customer string) error {
	if err := lockDispatch(ctx, tx, branch); err != nil {
		return err
	}
	rep, err := leastLoadedRep(ctx, tx, branch, uuid.Nil)
	if err != nil {
		return err
	}
	checklist := []checklistItem{
		{Key: "id_card", Label: "Photograph the ID card"},
		{Key: "medical_record", Label: "Photograph the medical record"},
		{Key: "invoices", Label: "Photograph the invoices"},
		{Key: "discharge_summary", Label: "Photograph the discharge summary"},
	}
	fields := map[string]any{
		"claim_id":         r.ID,
		"kind":             TaskHospitalVisit,
		"title":            truncate("Visit "+customer+" at "+r.Hospital, 200),
		"instructions":     "Collect the ID card, medical record, invoices and discharge summary.",
		"location_address": truncate(r.Hospital, 500),
		"checklist":        checklist,
	}
	if rep != nil {
		fields["assignee_id"] = *rep
	}
	raw := map[string]json.RawMessage{}
	for name, v := range fields {
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		raw[name] = data
	}
	taskID := uuid.NewSHA1(r.ID, []byte(TaskHospitalVisit)) // the same on a retried report
	_, err = e.apply(ctx, tx, sys, &Mutation{ID: uuid.Must(uuid.NewV7()), Type: TypeTask, Op: "create", EntityID: taskID, Fields: raw})
	return err
}

// leastLoadedRep is the on-duty hospital rep of branch, other than except, with the fewest
// unfinished tasks (nil when there is none): whom a visit is dispatched to, at intake and when
// its first rep does not accept it in time (CheckTargets). The caller holds the branch's dispatch
// lock.
func leastLoadedRep(ctx context.Context, tx pgx.Tx, branch, except uuid.UUID) (*uuid.UUID, error) {
	var rep *uuid.UUID
	err := tx.QueryRow(ctx, `
		SELECT u.id FROM users u
		LEFT JOIN tasks t ON t.assignee_id = u.id AND t.deleted_at IS NULL AND t.status IN ('assigned', 'accepted', 'in_progress')
		WHERE u.branch_id = $1 AND u.role = 'rep' AND u.rep_kind = 'hospital' AND u.on_duty AND u.disabled_at IS NULL
			AND u.id <> $2
		GROUP BY u.id ORDER BY count(t.id), u.id LIMIT 1`, branch, except).Scan(&rep)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("find a hospital rep: %w", err)
	}
	return rep, nil
}

// lockDispatch makes the dispatches of one branch take turns until the transaction ends.
func lockDispatch(ctx context.Context, tx pgx.Tx, branch uuid.UUID) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('dispatch ' || $1::text, 0))`, branch); err != nil {
		return fmt.Errorf("lock dispatch: %w", err)
	}
	return nil
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// recordReport remembers who reported claim r.ID, under that id among the applied mutations (a
// report's id is its idempotency key, as a mutation's is), so that their retry is answered even
// when their scope does not hold the claim (a processor's does not hold a reported one, an
// integration holds none). Should a device have used the id already for a mutation of its own, the
// report is not remembered: its retry is then answered by scope alone.
func recordReport(ctx context.Context, tx pgx.Tx, id *fieldsync.Identity, r ClaimReport) error {
	if id.UserID == uuid.Nil {
		return nil // the server's own report (tools, tests): nobody to answer a retry to
	}
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	hash := sha256.Sum256(data)
	result, err := json.Marshal(Result{ID: r.ID, Status: StatusApplied})
	if err != nil {
		return err
	}
	var device any
	if id.DeviceID != uuid.Nil {
		device = id.DeviceID
	}
	_, err = tx.Exec(ctx, `INSERT INTO applied_mutations (id, user_id, device_id, request_hash, result) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO NOTHING`, r.ID, id.UserID, device, hash[:], result)
	if err != nil {
		return fmt.Errorf("record report of claim %s: %w", r.ID, err)
	}
	return nil
}

// mayReplayReport reports whether the caller may be answered with the existing claim claimID on a
// retried report: they reported it, or their scope holds it.
func (e *Engine) mayReplayReport(ctx context.Context, tx pgx.Tx, id *fieldsync.Identity, claimID uuid.UUID) (bool, error) {
	var reporter bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM applied_mutations WHERE id = $1 AND user_id = $2)`, claimID, id.UserID).Scan(&reporter)
	if err != nil {
		return false, fmt.Errorf("look up report of claim %s: %w", claimID, err)
	}
	if reporter {
		return true, nil
	}
	return e.canSee(ctx, tx, id, TypeClaim, claimID)
}
