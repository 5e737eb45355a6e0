package sync

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The screens' reads: the lists and details processors and managers look at. They go through the
// same scope predicates as pulls (scope.go), so a screen never shows a record its user's devices
// would not hold, and records have the same JSON as in a pull (the entities' data expressions).

// Limits of the screens' lists.
const (
	// DefaultListLimit is a list page's size when the caller names none.
	DefaultListLimit = 50
	// MaxListLimit is the largest page a list serves.
	MaxListLimit = 200
	// maxDetailItems caps each list of a claim's detail (tasks, notes, documents).
	maxDetailItems = 500
	// maxSearchRunes caps a text search.
	maxSearchRunes = 100
	// maxCursorBytes caps an `after` cursor before it is decoded.
	maxCursorBytes = 200
)

// screenRoles may read the screens: a rep's device holds what a rep needs, through pulls.
var screenRoles = []string{processor, manager}

func requireRole(id *fieldsync.Identity, allowed ...string) error {
	if id == nil || !slices.Contains(allowed, id.Role) {
		role := "caller"
		if id != nil {
			role = id.Role
		}
		return errForbidden("A %s may not read this.", role)
	}
	return nil
}

// Page is one page of a screen's list. Next is the cursor of the following page, given as
// `after`; it is empty on the last page.
type Page[T any] struct {
	Items   []T    `json:"items"`
	HasMore bool   `json:"has_more"`
	Next    string `json:"next,omitempty"`
}

// listCursor is a position in a keyset-paged list: the (time, id) of the last item served, and
// the list it belongs to, so that a cursor of one list is refused by another.
type listCursor struct {
	List string    `json:"l"`
	At   int64     `json:"t"` // Unix microseconds, PostgreSQL's precision
	ID   uuid.UUID `json:"i"`
}

func (c listCursor) String() string {
	data, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(data)
}

func (c listCursor) time() time.Time { return time.UnixMicro(c.At).UTC() }

// parseListCursor decodes an `after` parameter of list; nil when there is none.
func parseListCursor(s, list string) (*listCursor, error) {
	if s == "" {
		return nil, nil
	}
	bad := fieldsync.InvalidField("after", "after must be the `next` cursor of a previous page of this list.")
	if len(s) > maxCursorBytes {
		return nil, bad
	}
	data, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	var c listCursor
	if err := json.Unmarshal(data, &c); err != nil || c.List != list || c.ID == uuid.Nil {
		return nil, bad
	}
	return &c, nil
}

// pageLimit checks a page size: 0 is the default.
func pageLimit(n int) (int, error) {
	switch {
	case n == 0:
		return DefaultListLimit, nil
	case n < 1 || n > MaxListLimit:
		return 0, fieldsync.InvalidField("limit", "limit must be a whole number from 1 to %d.", MaxListLimit)
	}
	return n, nil
}

// checkEnum checks every value of a repeatable filter against an entity field's values.
func checkEnum(param string, values []string, typ, field string) error {
	allowed := entities[typ].fields[field].enum
	for _, v := range values {
		if !slices.Contains(allowed, v) {
			return fieldsync.InvalidField(param, "%s must be one of %s.", param, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// screenQuery builds a read over the caller's scope: $1 to $4 are the caller, their branch, the
// scope window and the time asked about, as the scope predicates expect; conditions and further
// arguments follow.
type screenQuery struct {
	args  []any
	conds []string
}

func (e *Engine) newScreenQuery(id *fieldsync.Identity) *screenQuery {
	return &screenQuery{args: []any{id.UserID, id.BranchID, e.cfg.ScopeWindow, e.sqlNow()}}
}

// arg adds an argument and returns its placeholder.
func (q *screenQuery) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

func (q *screenQuery) where(conds ...string) { q.conds = append(q.conds, conds...) }

// scoped adds the conditions that hold for a live record of typ in the caller's scope and branch.
func (q *screenQuery) scoped(role, typ string) error {
	pred, err := scopeOf(role, typ)
	if err != nil {
		return err
	}
	q.where("("+pred+")", entities[typ].alive, "t.branch_id = $2")
	return nil
}

func (q *screenQuery) condition() string { return strings.Join(q.conds, " AND ") }

// escapeLike makes s match literally inside a LIKE pattern.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// ClaimItem is a claim of a list, with its customer.
type ClaimItem struct {
	Claim    json.RawMessage `json:"claim"`
	Customer json.RawMessage `json:"customer"`
}

// ClaimFilter selects the claims of a list. Zero values select everything.
type ClaimFilter struct {
	// Statuses keeps the claims in any of these statuses.
	Statuses []string
	// Search keeps the claims whose number, policy number or customer's name contains it,
	// ignoring case.
	Search string
	Limit  int
	After  string
}

// ListClaims returns a page of the claims in the caller's scope, newest first (by creation, then
// id). Only processors and managers may list; a bad filter is an invalid_value naming it.
func (e *Engine) ListClaims(ctx context.Context, id *fieldsync.Identity, f ClaimFilter) (*Page[ClaimItem], error) {
	if err := requireRole(id, screenRoles...); err != nil {
		return nil, err
	}
	limit, err := pageLimit(f.Limit)
	if err != nil {
		return nil, err
	}
	after, err := parseListCursor(f.After, "claims")
	if err != nil {
		return nil, err
	}
	if err := checkEnum("status", f.Statuses, TypeClaim, "status"); err != nil {
		return nil, err
	}
	search, err := searchTerm(f.Search)
	if err != nil {
		return nil, err
	}

	q := e.newScreenQuery(id)
	if err := q.scoped(id.Role, TypeClaim); err != nil {
		return nil, err
	}
	if len(f.Statuses) > 0 {
		q.where("t.status = ANY(" + q.arg(f.Statuses) + "::text[])")
	}
	if search != "" {
		p := q.arg("%" + escapeLike(search) + "%")
		q.where(fmt.Sprintf(`(t.number ILIKE %[1]s OR t.policy_number ILIKE %[1]s
			OR EXISTS (SELECT 1 FROM customers cu WHERE cu.id = t.customer_id AND cu.name ILIKE %[1]s))`, p))
	}
	if after != nil {
		q.where(fmt.Sprintf("(t.created_at, t.id) < (%s::timestamptz, %s::uuid)", q.arg(after.time()), q.arg(after.ID)))
	}
	sql := fmt.Sprintf(`
		SELECT q.created_at, q.id, q.data, (SELECT %s FROM customers t WHERE t.id = q.customer_id)
		FROM (
			SELECT t.created_at, t.id, t.customer_id, %s AS data FROM claims t, %s
			WHERE %s ORDER BY t.created_at DESC, t.id DESC LIMIT %s
		) q
		ORDER BY q.created_at DESC, q.id DESC`,
		entities[TypeCustomer].data, entities[TypeClaim].data, params, q.condition(), q.arg(limit+1))
	return collectPage(ctx, e, sql, q.args, "claims", limit, func(rows pgx.Rows) (ClaimItem, time.Time, uuid.UUID, error) {
		var it ClaimItem
		var at time.Time
		var claimID uuid.UUID
		err := rows.Scan(&at, &claimID, &it.Claim, &it.Customer)
		return it, at, claimID, err
	})
}

// collectPage runs a keyset-paged list query that asks for limit+1 rows, and turns its rows into
// a page whose Next cursor is the (time, id) of the last item kept.
func collectPage[T any](ctx context.Context, e *Engine, sql string, args []any, list string, limit int,
	scan func(pgx.Rows) (T, time.Time, uuid.UUID, error)) (*Page[T], error) {
	rows, err := e.read.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", list, err)
	}
	defer rows.Close()
	page := &Page[T]{Items: []T{}}
	var last listCursor
	for rows.Next() {
		if len(page.Items) == limit {
			page.HasMore = true
			break
		}
		it, at, itemID, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", list, err)
		}
		page.Items = append(page.Items, it)
		last = listCursor{List: list, At: at.UnixMicro(), ID: itemID}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", list, err)
	}
	if page.HasMore {
		page.Next = last.String()
	}
	return page, nil
}

// QueueItem is a claim of the processors' review queue, with its customer and how many of its
// documents wait for a review.
type QueueItem struct {
	Claim                   json.RawMessage `json:"claim"`
	Customer                json.RawMessage `json:"customer"`
	DocumentsAwaitingReview int64           `json:"documents_awaiting_review"`
	Documents               int64           `json:"documents"`
}

// ReviewQueue returns a page of the review queue: the claims of the caller's scope that are under
// review, and those still collecting that already have an uploaded document to review, oldest
// first (by creation, then id).
func (e *Engine) ReviewQueue(ctx context.Context, id *fieldsync.Identity, limit int, afterCursor string) (*Page[QueueItem], error) {
	if err := requireRole(id, screenRoles...); err != nil {
		return nil, err
	}
	limit, err := pageLimit(limit)
	if err != nil {
		return nil, err
	}
	after, err := parseListCursor(afterCursor, "review_queue")
	if err != nil {
		return nil, err
	}
	q := e.newScreenQuery(id)
	if err := q.scoped(id.Role, TypeClaim); err != nil {
		return nil, err
	}
	q.where(`(t.status = 'under_review' OR (t.status = 'collecting' AND EXISTS (
		SELECT 1 FROM documents d WHERE d.claim_id = t.id AND d.deleted_at IS NULL AND d.status = 'uploaded')))`)
	if after != nil {
		q.where(fmt.Sprintf("(t.created_at, t.id) > (%s::timestamptz, %s::uuid)", q.arg(after.time()), q.arg(after.ID)))
	}
	sql := fmt.Sprintf(`
		SELECT q.created_at, q.id, q.data, (SELECT %s FROM customers t WHERE t.id = q.customer_id), docs.awaiting, docs.total
		FROM (
			SELECT t.created_at, t.id, t.customer_id, %s AS data FROM claims t, %s
			WHERE %s ORDER BY t.created_at, t.id LIMIT %s
		) q,
		LATERAL (SELECT count(*) FILTER (WHERE d.status = 'uploaded') AS awaiting, count(*) AS total
			FROM documents d WHERE d.claim_id = q.id AND d.deleted_at IS NULL) docs
		ORDER BY q.created_at, q.id`,
		entities[TypeCustomer].data, entities[TypeClaim].data, params, q.condition(), q.arg(limit+1))
	return collectPage(ctx, e, sql, q.args, "review_queue", limit, func(rows pgx.Rows) (QueueItem, time.Time, uuid.UUID, error) {
		var it QueueItem
		var at time.Time
		var claimID uuid.UUID
		err := rows.Scan(&at, &claimID, &it.Claim, &it.Customer, &it.DocumentsAwaitingReview, &it.Documents)
		return it, at, claimID, err
	})
}

// TaskItem is a task of a list, with the number of its claim and the name of its assignee.
type TaskItem struct {
	Task         json.RawMessage `json:"task"`
	ClaimNumber  string          `json:"claim_number"`
	AssigneeName *string         `json:"assignee_name"`
}

// TaskFilter selects the tasks of a list. Zero values select everything.
type TaskFilter struct {
	Statuses   []string
	AssigneeID uuid.UUID
	ClaimID    uuid.UUID
	// Search keeps the tasks whose title or claim number contains it, ignoring case.
	Search string
	Limit  int
	After  string
}

// ListTasks returns a page of the tasks in the caller's scope, newest first (by creation, then
// id). Only processors and managers may list.
func (e *Engine) ListTasks(ctx context.Context, id *fieldsync.Identity, f TaskFilter) (*Page[TaskItem], error) {
	if err := requireRole(id, screenRoles...); err != nil {
		return nil, err
	}
	limit, err := pageLimit(f.Limit)
	if err != nil {
		return nil, err
	}
	after, err := parseListCursor(f.After, "tasks")
	if err != nil {
		return nil, err
	}
	if err := checkEnum("status", f.Statuses, TypeTask, "status"); err != nil {
		return nil, err
	}
	q := e.newScreenQuery(id)
	if err := q.scoped(id.Role, TypeTask); err != nil {
		return nil, err
	}
	if len(f.Statuses) > 0 {
		q.where("t.status = ANY(" + q.arg(f.Statuses) + "::text[])")
	}
	if f.AssigneeID != uuid.Nil {
		q.where("t.assignee_id = " + q.arg(f.AssigneeID) + "::uuid")
	}
	if f.ClaimID != uuid.Nil {
		q.where("t.claim_id = " + q.arg(f.ClaimID) + "::uuid")
	}
	search, err := searchTerm(f.Search)
	if err != nil {
		return nil, err
	}
	if search != "" {
		q.where(fmt.Sprintf("(t.title ILIKE %[1]s OR c.number ILIKE %[1]s)", q.arg("%"+escapeLike(search)+"%")))
	}
	if after != nil {
		q.where(fmt.Sprintf("(t.created_at, t.id) < (%s::timestamptz, %s::uuid)", q.arg(after.time()), q.arg(after.ID)))
	}
	sql := fmt.Sprintf(`
		SELECT t.created_at, t.id, %s, c.number, u.name
		FROM tasks t JOIN claims c ON c.id = t.claim_id LEFT JOIN users u ON u.id = t.assignee_id, %s
		WHERE %s ORDER BY t.created_at DESC, t.id DESC LIMIT %s`,
		entities[TypeTask].data, params, q.condition(), q.arg(limit+1))
	return collectPage(ctx, e, sql, q.args, "tasks", limit, func(rows pgx.Rows) (TaskItem, time.Time, uuid.UUID, error) {
		var it TaskItem
		var at time.Time
		var taskID uuid.UUID
		err := rows.Scan(&at, &taskID, &it.Task, &it.ClaimNumber, &it.AssigneeName)
		return it, at, taskID, err
	})
}

// ClaimDetail is one claim with everything of it the caller's scope holds: its customer, tasks,
// the notes of those tasks and its documents, each oldest first. Truncated names the lists cut at
// their limit (500), which a claim reaches only in error.
type ClaimDetail struct {
	Claim     json.RawMessage   `json:"claim"`
	Customer  json.RawMessage   `json:"customer"`
	Tasks     []json.RawMessage `json:"tasks"`
	Notes     []json.RawMessage `json:"notes"`
	Documents []json.RawMessage `json:"documents"`
	Truncated []string          `json:"truncated,omitempty"`
}

// FindClaim returns the claim claimID with its customer, tasks, notes and documents, as far as
// the caller's scope holds them, read from one snapshot. A claim outside the caller's scope (of
// another branch, or not in a processor's queue) is not_found, as if it did not exist.
func (e *Engine) FindClaim(ctx context.Context, id *fieldsync.Identity, claimID uuid.UUID) (*ClaimDetail, error) {
	if err := requireRole(id, screenRoles...); err != nil {
		return nil, err
	}
	out := &ClaimDetail{}
	err := pgx.BeginTxFunc(ctx, e.read, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		q := e.newScreenQuery(id)
		if err := q.scoped(id.Role, TypeClaim); err != nil {
			return err
		}
		q.where("t.id = " + q.arg(claimID) + "::uuid")
		err := tx.QueryRow(ctx, fmt.Sprintf(`
			SELECT q.data, (SELECT %s FROM customers t WHERE t.id = q.customer_id)
			FROM (SELECT %s AS data, t.customer_id FROM claims t, %s WHERE %s) q`,
			entities[TypeCustomer].data, entities[TypeClaim].data, params, q.condition()), q.args...).
			Scan(&out.Claim, &out.Customer)
		if errors.Is(err, pgx.ErrNoRows) {
			return fieldsync.Errorf(fieldsync.ENOTFOUND, "not_found", "No claim of yours has id %s.", claimID)
		}
		if err != nil {
			return fmt.Errorf("read claim %s: %w", claimID, err)
		}
		lists := []struct {
			name string
			typ  string
			dst  *[]json.RawMessage
			// cond ties a record (t) to the claim ($5, the first argument after the scope's).
			cond string
		}{
			{"tasks", TypeTask, &out.Tasks, "t.claim_id = $5"},
			{"notes", TypeTaskNote, &out.Notes, "EXISTS (SELECT 1 FROM tasks tk WHERE tk.id = t.task_id AND tk.claim_id = $5 AND tk.deleted_at IS NULL)"},
			{"documents", TypeDocument, &out.Documents, "t.claim_id = $5"},
		}
		for _, l := range lists {
			q := e.newScreenQuery(id)
			q.arg(claimID)
			if err := q.scoped(id.Role, l.typ); err != nil {
				return err
			}
			q.where(l.cond)
			rows, err := tx.Query(ctx, fmt.Sprintf(`SELECT %s FROM %s t, %s WHERE %s ORDER BY t.created_at, t.id LIMIT %s`,
				entities[l.typ].data, entities[l.typ].table, params, q.condition(), q.arg(maxDetailItems+1)), q.args...)
			if err != nil {
				return fmt.Errorf("read %s of claim %s: %w", l.name, claimID, err)
			}
			items, err := pgx.CollectRows(rows, pgx.RowTo[json.RawMessage])
			if err != nil {
				return fmt.Errorf("read %s of claim %s: %w", l.name, claimID, err)
			}
			if len(items) > maxDetailItems {
				items = items[:maxDetailItems]
				out.Truncated = append(out.Truncated, l.name)
			}
			if items == nil {
				items = []json.RawMessage{}
			}
			*l.dst = items
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ConflictRecord is a conflict the engine resolved, as managers see it: the field, both values,
// what was kept by which rule, who wrote the side that met it, and when.
type ConflictRecord struct {
	ID         uuid.UUID       `json:"id"`
	EntityType string          `json:"entity_type"`
	EntityID   uuid.UUID       `json:"entity_id"`
	Field      string          `json:"field"`
	Yours      json.RawMessage `json:"yours"`
	Theirs     json.RawMessage `json:"theirs"`
	Kept       string          `json:"kept"`
	Rule       string          `json:"rule"`
	MutationID *uuid.UUID      `json:"mutation_id"`
	UserID     *uuid.UUID      `json:"user_id"`
	UserName   *string         `json:"user_name"`
	DeviceID   *uuid.UUID      `json:"device_id"`
	ClientTime *time.Time      `json:"client_time"`
	CreatedAt  time.Time       `json:"created_at"`
}

// ListConflicts returns a page of the conflicts recorded in the caller's branch, newest first.
// Managers only.
func (e *Engine) ListConflicts(ctx context.Context, id *fieldsync.Identity, limit int, afterCursor string) (*Page[ConflictRecord], error) {
	if err := requireRole(id, manager); err != nil {
		return nil, err
	}
	limit, err := pageLimit(limit)
	if err != nil {
		return nil, err
	}
	after, err := parseListCursor(afterCursor, "conflicts")
	if err != nil {
		return nil, err
	}
	q := &screenQuery{}
	q.where("k.branch_id = " + q.arg(id.BranchID) + "::uuid")
	if after != nil {
		q.where(fmt.Sprintf("(k.created_at, k.id) < (%s::timestamptz, %s::uuid)", q.arg(after.time()), q.arg(after.ID)))
	}
	sql := fmt.Sprintf(`
		SELECT k.id, k.entity_type, k.entity_id, k.field, k.yours, k.theirs, coalesce(k.kept #>> '{}', ''), k.rule,
			k.mutation_id, k.user_id, u.name, k.device_id, k.client_time, k.created_at
		FROM conflicts k LEFT JOIN users u ON u.id = k.user_id
		WHERE %s ORDER BY k.created_at DESC, k.id DESC LIMIT %s`, q.condition(), q.arg(limit+1))
	return collectPage(ctx, e, sql, q.args, "conflicts", limit, func(rows pgx.Rows) (ConflictRecord, time.Time, uuid.UUID, error) {
		var c ConflictRecord
		var yours, theirs []byte
		err := rows.Scan(&c.ID, &c.EntityType, &c.EntityID, &c.Field, &yours, &theirs, &c.Kept, &c.Rule,
			&c.MutationID, &c.UserID, &c.UserName, &c.DeviceID, &c.ClientTime, &c.CreatedAt)
		if yours != nil {
			c.Yours = yours
		}
		if theirs != nil {
			c.Theirs = theirs
		}
		c.CreatedAt = c.CreatedAt.UTC()
		if c.ClientTime != nil {
			*c.ClientTime = c.ClientTime.UTC()
		}
		return c, c.CreatedAt, c.ID, err
	})
}

// Period is a span of time, from inclusive to exclusive. A zero end is one calendar month (UTC)
// from the other; with both zero it is the current calendar month.
type Period struct {
	From, To time.Time
}

// resolve fills in a period's missing ends and checks it is not empty.
func (p Period) resolve(now time.Time) (Period, error) {
	switch {
	case p.From.IsZero() && p.To.IsZero():
		now = now.UTC()
		p.From = time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
		p.To = p.From.AddDate(0, 1, 0)
	case p.To.IsZero():
		p.To = p.From.AddDate(0, 1, 0)
	case p.From.IsZero():
		p.From = p.To.AddDate(0, -1, 0)
	}
	p.From, p.To = p.From.UTC(), p.To.UTC()
	if !p.From.Before(p.To) {
		return p, fieldsync.InvalidField("to", "to must be after from.")
	}
	return p, nil
}

// BranchFigures are a branch's figures for a period. Amounts are in minor units (cents).
type BranchFigures struct {
	BranchID uuid.UUID `json:"branch_id"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	// ClaimsReported is how many claims were reported in the period; ClaimsByStatus counts them
	// by their status now (every status is present, 0 when none).
	ClaimsReported int64            `json:"claims_reported"`
	ClaimsByStatus map[string]int64 `json:"claims_by_status"`
	// Paid are the claims paid in the period, whenever reported.
	Paid PaidFigures `json:"paid"`
	// CycleTimes are how long the claims reported in the period took from step to step, from the
	// records' own history (the server's clock at each transition), in CycleStages' order.
	CycleTimes []CycleTime `json:"cycle_times"`
	// TargetsBreached is how many tasks of those claims missed a target: re-dispatched for want
	// of acceptance, or past their due time.
	TargetsBreached int64 `json:"targets_breached"`
}

// CycleTime is one step of a claim's life over the claims that made it: how many, and the
// median and 90th percentile of its duration in seconds (null when none made it).
type CycleTime struct {
	Stage  string   `json:"stage"`
	Claims int64    `json:"claims"`
	Median *float64 `json:"median_seconds"`
	P90    *float64 `json:"p90_seconds"`
}

// CycleStages are the steps cycle times measure, from the claim's report (claims.created_at) to
// its hospital visit's first acceptance (tasks.accepted_at), to its documents complete (the claim
// under review: claims.review_at), to its decision (claims.decided_at), to its payment
// (claims.paid_at); and the whole, report to payment.
var CycleStages = []string{"report_to_accepted", "accepted_to_documents", "documents_to_decision", "decision_to_payment", "report_to_payment"}

// cycleSQL gives, per stage of CycleStages, its claims, median and 90th percentile over the
// claims of branch $1 reported in [$2, $3).
const cycleSQL = `
	WITH c AS (
		SELECT c.created_at AS reported, v.accepted AS accepted, c.review_at AS documents, c.decided_at AS decided, c.paid_at AS paid
		FROM claims c
		LEFT JOIN LATERAL (SELECT min(t.accepted_at) AS accepted FROM tasks t
			WHERE t.claim_id = c.id AND t.kind = 'hospital_visit' AND t.deleted_at IS NULL) v ON true
		WHERE c.branch_id = $1 AND c.deleted_at IS NULL AND c.created_at >= $2 AND c.created_at < $3
	), d AS (
		SELECT s.stage, s.ord, extract(epoch FROM s.took)::float8 AS took FROM c, LATERAL (VALUES
			('report_to_accepted', 1, accepted - reported),
			('accepted_to_documents', 2, documents - accepted),
			('documents_to_decision', 3, decided - documents),
			('decision_to_payment', 4, paid - decided),
			('report_to_payment', 5, paid - reported)) s (stage, ord, took)
		WHERE s.took IS NOT NULL
	)
	SELECT stage, count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY took),
		percentile_cont(0.9) WITHIN GROUP (ORDER BY took)
	FROM d GROUP BY stage`

// PaidFigures are the payouts of a period, and the payout against premium of those whose
// premium is known.
type PaidFigures struct {
	Claims int64 `json:"claims"`
	Amount int64 `json:"amount"`
	// ClaimsWithPremium of the paid claims have a known premium; AmountWithPremium is what they
	// paid out, Premium their premiums, and PayoutRatio AmountWithPremium / Premium (null when no
	// premium is known).
	ClaimsWithPremium int64    `json:"claims_with_premium"`
	AmountWithPremium int64    `json:"amount_with_premium"`
	Premium           int64    `json:"premium"`
	PayoutRatio       *float64 `json:"payout_ratio"`
}

// Figures returns the figures of the caller's branch for period: claims reported in it by
// status, and claims paid in it with their payout against premium. Processors and managers
// only; they are the branch's totals, not records, so a processor sees the whole branch's.
func (e *Engine) Figures(ctx context.Context, id *fieldsync.Identity, period Period) (*BranchFigures, error) {
	if err := requireRole(id, screenRoles...); err != nil {
		return nil, err
	}
	p, err := period.resolve(e.NowFunc())
	if err != nil {
		return nil, err
	}
	out := &BranchFigures{BranchID: id.BranchID, From: p.From, To: p.To, ClaimsByStatus: map[string]int64{}}
	for _, s := range entities[TypeClaim].fields["status"].enum {
		out.ClaimsByStatus[s] = 0
	}
	err = pgx.BeginTxFunc(ctx, e.read, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT status, count(*) FROM claims
			WHERE branch_id = $1 AND deleted_at IS NULL AND created_at >= $2 AND created_at < $3
			GROUP BY status`, id.BranchID, p.From, p.To)
		if err != nil {
			return fmt.Errorf("count claims by status: %w", err)
		}
		var status string
		var n int64
		_, err = pgx.ForEachRow(rows, []any{&status, &n}, func() error {
			out.ClaimsByStatus[status] = n
			out.ClaimsReported += n
			return nil
		})
		if err != nil {
			return fmt.Errorf("count claims by status: %w", err)
		}
		pf := &out.Paid
		err = tx.QueryRow(ctx, `
			SELECT count(*), coalesce(sum(amount_paid), 0)::bigint,
				count(*) FILTER (WHERE premium IS NOT NULL),
				coalesce(sum(amount_paid) FILTER (WHERE premium IS NOT NULL), 0)::bigint,
				coalesce(sum(premium), 0)::bigint
			FROM claims
			WHERE branch_id = $1 AND deleted_at IS NULL AND status = 'paid' AND paid_at >= $2 AND paid_at < $3`,
			id.BranchID, p.From, p.To).Scan(&pf.Claims, &pf.Amount, &pf.ClaimsWithPremium, &pf.AmountWithPremium, &pf.Premium)
		if err != nil {
			return fmt.Errorf("sum payouts: %w", err)
		}
		if pf.Premium > 0 {
			ratio := float64(pf.AmountWithPremium) / float64(pf.Premium)
			pf.PayoutRatio = &ratio
		}
		return e.cycleTimes(ctx, tx, out)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// cycleTimes fills in out's cycle times and breached targets.
func (e *Engine) cycleTimes(ctx context.Context, tx pgx.Tx, out *BranchFigures) error {
	byStage := map[string]CycleTime{}
	rows, err := tx.Query(ctx, cycleSQL, out.BranchID, out.From, out.To)
	if err != nil {
		return fmt.Errorf("cycle times: %w", err)
	}
	var stage string
	var claims int64
	var median, p90 float64
	_, err = pgx.ForEachRow(rows, []any{&stage, &claims, &median, &p90}, func() error {
		m, p := median, p90 // each stage its own copies
		byStage[stage] = CycleTime{Stage: stage, Claims: claims, Median: &m, P90: &p}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cycle times: %w", err)
	}
	out.CycleTimes = make([]CycleTime, 0, len(CycleStages))
	for _, s := range CycleStages {
		got := byStage[s]
		got.Stage = s
		out.CycleTimes = append(out.CycleTimes, got)
	}
	err = tx.QueryRow(ctx, `
		SELECT count(*) FROM tasks t JOIN claims c ON c.id = t.claim_id
		WHERE c.branch_id = $1 AND c.deleted_at IS NULL AND c.created_at >= $2 AND c.created_at < $3
			AND t.deleted_at IS NULL AND (t.redispatched_at IS NOT NULL OR t.reminded_at IS NOT NULL)`,
		out.BranchID, out.From, out.To).Scan(&out.TargetsBreached)
	if err != nil {
		return fmt.Errorf("count breached targets: %w", err)
	}
	return nil
}

// searchTerm is a screen's text search (q), trimmed: at most maxSearchRunes characters of text.
func searchTerm(q string) (string, error) {
	search := strings.TrimSpace(q)
	if !utf8.ValidString(search) || strings.ContainsRune(search, 0) || utf8.RuneCountInString(search) > maxSearchRunes {
		return "", fieldsync.InvalidField("q", "q must be text of at most %d characters.", maxSearchRunes)
	}
	return search, nil
}
