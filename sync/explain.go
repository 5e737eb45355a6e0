package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// "Why does rep X not see record Y": the answer a manager gets, worked out from the one scope
// table (scope.go) and its SQL functions, never from a second copy of the rules. Each rule that
// can keep a record out (or let it in) has a stable code, which the console puts in words.

// Rules that let a record into a scope.
const (
	RuleManagerBranch  = "manager_branch"   // a manager holds the whole branch
	RuleBranchUser     = "branch_user"      // every role holds the users of its branch
	RuleOwnInbox       = "own_notification" // every role holds its own inbox
	RuleRootHeld       = "root_held"        // the record is a root of theirs (their task, a queued claim)
	RuleBroughtByRoots = "brought_by_root"  // a root of theirs brings it (Roots says which)
)

// Rules that keep a record out.
const (
	RuleRecordDeleted   = "record_deleted"     // the record is a tombstone: nobody holds it
	RuleRoleDoesNotSync = "role_does_not_sync" // admins and integrations have no device scope
	RuleNotTheirInbox   = "not_their_notification"
	RuleReadPastWindow  = "notification_read_past_window"
	RuleTypeNotHeld     = "type_not_held" // the role holds no record of this type

	// A rep's: the task is assigned to someone else (or nobody), or finished longer ago than the
	// scope window; a record a task brings (claim, customer, documents, notes) has no task of
	// theirs, or only ones finished past the window, or deleted.
	RuleTaskNotAssigned              = "task_not_assigned_to_them"
	RuleTaskFinishedPastWindow       = "task_finished_past_window"
	RuleNoTaskOfTheirs               = "no_task_of_theirs"
	RuleTheirTasksFinishedPastWindow = "their_tasks_finished_past_window"
	RuleTheirTasksDeleted            = "their_tasks_deleted"

	// A processor's: the claim is not in the review queue (still reported, or settled longer ago
	// than the window); a record a claim brings has no claim, or its claim is not queued or deleted.
	RuleClaimNotQueued = "claim_not_in_review_queue"
	RuleNoClaim        = "no_claim"
	RuleClaimDeleted   = "claim_deleted"
	RuleOtherBranch    = "other_branch"
)

// outRules are the codes a root's rules give for what they keep out: the root itself, not the
// caller's (notOwned) or not held now (notHeld); a record it would bring, with no root at all
// (noRoot), or none of the caller's, none held, or only deleted ones.
type outRules struct {
	notOwned, notHeld                                 string
	noRoot, rootsNotOwned, rootsNotHeld, rootsDeleted string
}

// maxExplainRoots caps the roots an answer lists.
const maxExplainRoots = 20

// ScopeAnswer says whether a user's scope holds a record, and by which rule.
type ScopeAnswer struct {
	UserID     uuid.UUID `json:"user_id"`
	UserName   string    `json:"user_name"`
	Role       string    `json:"role"`
	Disabled   bool      `json:"disabled"`
	EntityType string    `json:"entity_type"`
	EntityID   uuid.UUID `json:"entity_id"`
	// Visible is whether their devices hold the record (the rule pulls select by).
	Visible bool `json:"visible"`
	// Rule is the code of the rule that lets it in or keeps it out (the Rule* constants).
	Rule string `json:"rule"`
	// RootType is the type the user's scope grows from (task for reps, claim for processors),
	// and Roots the ones that would bring the record, as far as they exist (at most 20).
	RootType string      `json:"root_type,omitempty"`
	Roots    []ScopeRoot `json:"roots,omitempty"`
	// Window is the scope window finished records stay in.
	Window time.Duration `json:"window"`
}

// ScopeRoot is a root that would bring a record: whether it is the user's (Owned), held now
// (Held: open, or finished within the window), deleted, and its data as a pull sends it.
type ScopeRoot struct {
	ID      uuid.UUID       `json:"id"`
	Owned   bool            `json:"owned"`
	Held    bool            `json:"held"`
	Deleted bool            `json:"deleted"`
	Record  json.RawMessage `json:"record"`
}

// ExplainScope answers a manager: does the scope of user (of their branch) hold the record of
// type typ with id entityID, and by which rule is it in or out. Other roles are forbidden; a user
// or record not of the manager's branch is not_found, as if it did not exist.
func (e *Engine) ExplainScope(ctx context.Context, caller *fieldsync.Identity, user uuid.UUID, typ string, entityID uuid.UUID) (*ScopeAnswer, error) {
	if err := requireRole(caller, manager); err != nil {
		return nil, err
	}
	ent, ok := entities[typ]
	if !ok {
		return nil, fieldsync.InvalidField("type", "type must be one of the record types a device holds.")
	}
	a := &ScopeAnswer{UserID: user, EntityType: typ, EntityID: entityID, Window: e.cfg.ScopeWindow}
	err := pgx.BeginTxFunc(ctx, e.db, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var branch *uuid.UUID
		err := tx.QueryRow(ctx, `SELECT name, role, branch_id, disabled_at IS NOT NULL FROM users WHERE id = $1`, user).
			Scan(&a.UserName, &a.Role, &branch, &a.Disabled)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && (branch == nil || *branch != caller.BranchID)) {
			return fieldsync.Errorf(fieldsync.ENOTFOUND, "user_not_found", "No user of your branch has id %s.", user)
		}
		if err != nil {
			return fmt.Errorf("read user %s: %w", user, err)
		}
		var alive bool
		inBranch := "t.branch_id = $2"
		if typ == TypeNotification {
			// A notification is of its user's branch, whoever wrote it.
			inBranch = "EXISTS (SELECT 1 FROM users u WHERE u.id = t.user_id AND u.branch_id = $2)"
		}
		err = tx.QueryRow(ctx, fmt.Sprintf(`SELECT %s FROM %s t WHERE t.id = $1 AND %s`, ent.alive, ent.table, inBranch),
			entityID, caller.BranchID).Scan(&alive)
		if errors.Is(err, pgx.ErrNoRows) {
			return fieldsync.Errorf(fieldsync.ENOTFOUND, "not_found", "No %s of your branch has id %s.", typ, entityID)
		}
		if err != nil {
			return fmt.Errorf("read %s %s: %w", typ, entityID, err)
		}
		who := &fieldsync.Identity{UserID: user, BranchID: caller.BranchID, Role: a.Role}
		if a.Visible, err = e.canSee(ctx, tx, who, typ, entityID); err != nil {
			return err
		}
		switch {
		case !pullRoles[a.Role]:
			a.Rule = RuleRoleDoesNotSync
		case !alive:
			a.Rule = RuleRecordDeleted
		default:
			a.Rule, err = e.explain(ctx, tx, who, typ, entityID, a)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// explain finds the rule that lets the live record (typ, entityID) into who's scope, or keeps it
// out, by asking the parts of the scope table one at a time.
func (e *Engine) explain(ctx context.Context, tx pgx.Tx, who *fieldsync.Identity, typ string, entityID uuid.UUID, a *ScopeAnswer) (string, error) {
	args := []any{who.UserID, who.BranchID, e.cfg.ScopeWindow, e.sqlNow(), entityID}
	switch typ {
	case TypeUser:
		return RuleBranchUser, nil
	case TypeNotification:
		var mine, kept bool
		err := tx.QueryRow(ctx, `SELECT t.user_id = $1, fieldsync_notification_kept(t, $3, $4) FROM notifications t, `+params+
			` WHERE t.id = $5`, args...).Scan(&mine, &kept)
		switch {
		case err != nil:
			return "", fmt.Errorf("explain notification %s: %w", entityID, err)
		case !mine:
			return RuleNotTheirInbox, nil
		case !kept:
			return RuleReadPastWindow, nil
		}
		return RuleOwnInbox, nil
	}
	if who.Role == manager {
		return RuleManagerBranch, nil
	}
	r := roots[who.Role]
	a.RootType = r.typ
	if typ == r.typ {
		var owned, held bool
		err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT %s, %s FROM %s t, %s WHERE t.id = $5`, r.owner("t"), r.when("t"), r.table, params),
			args...).Scan(&owned, &held)
		switch {
		case err != nil:
			return "", fmt.Errorf("explain %s %s: %w", typ, entityID, err)
		case !owned:
			return r.out.notOwned, nil
		case !held:
			return r.out.notHeld, nil
		}
		return RuleRootHeld, nil
	}
	edge, ok := r.brings[typ]
	if !ok {
		return RuleTypeNotHeld, nil
	}
	// The roots that would bring the record, whoever's they are: the caller's first, held first.
	from := fmt.Sprintf("%s r, %s t", r.table, entities[typ].table)
	if edge.via != "" {
		from += ", " + edge.via
	}
	rows, err := tx.Query(ctx, fmt.Sprintf(`
		SELECT r.id, %[1]s, %[2]s, r.deleted_at IS NOT NULL, (SELECT %[3]s FROM %[4]s t WHERE t.id = r.id)
		FROM %[5]s, %[6]s WHERE t.id = $5 AND %[7]s
		ORDER BY (%[1]s AND %[2]s AND r.deleted_at IS NULL) DESC, 2 DESC, 3 DESC, r.created_at DESC, r.id LIMIT %[8]d`,
		r.owner("r"), r.when("r"), entities[r.typ].data, r.table, from, params, edge.on, maxExplainRoots), args...)
	if err != nil {
		return "", fmt.Errorf("explain %s %s: %w", typ, entityID, err)
	}
	a.Roots, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (ScopeRoot, error) {
		var sr ScopeRoot
		err := row.Scan(&sr.ID, &sr.Owned, &sr.Held, &sr.Deleted, &sr.Record)
		return sr, err
	})
	if err != nil {
		return "", fmt.Errorf("explain %s %s: %w", typ, entityID, err)
	}
	var owned, ownedLive bool
	for _, sr := range a.Roots {
		if sr.Owned && sr.Held && !sr.Deleted {
			return RuleBroughtByRoots, nil
		}
		owned = owned || sr.Owned
		ownedLive = ownedLive || (sr.Owned && !sr.Deleted)
	}
	switch {
	case len(a.Roots) == 0:
		return r.out.noRoot, nil
	case !owned:
		return r.out.rootsNotOwned, nil
	case !ownedLive:
		return r.out.rootsDeleted, nil
	}
	return r.out.rootsNotHeld, nil
}
