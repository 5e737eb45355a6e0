package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Notification kinds (the notifications table's kind).
const (
	KindClaimReported      = "claim_reported"
	KindTaskAssigned       = "task_assigned"
	KindTaskUnassigned     = "task_unassigned"
	KindTaskCompleted      = "task_completed"
	KindTaskCannotComplete = "task_cannot_complete"
	KindDocumentRejected   = "document_rejected"
	KindClaimPaid          = "claim_paid"
	KindTaskRedispatched   = "task_redispatched"
	KindTaskOverdue        = "task_overdue"
)

// Limits of the stored texts: short enough for a lock screen's title; the body of the inbox may
// carry a whole rejection reason (the table allows 200 and 2,000 characters).
const (
	maxTitle = 120
	maxBody  = 2000
)

// note is one notification to write: for one user, about one record.
type note struct {
	user       uuid.UUID
	kind       string
	title      string
	body       string
	entityType string
	entityID   uuid.UUID
	data       map[string]any
}

// Hook is the sync engine hook (sync.HookFunc) that applies the rules of BRIEF.md's notification
// table to an applied write, in its transaction: it writes each recipient's notification and, when
// push is on, one delivery job per active device. An error aborts the write.
func (s *Service) Hook(ctx context.Context, tx pgx.Tx, ev sync.Event) error {
	if err := s.wake(ctx, tx, ev); err != nil {
		return fmt.Errorf("wake-up push: %w", err)
	}
	notes, err := s.rules(ctx, tx, ev)
	if err != nil {
		return fmt.Errorf("notification rules: %w", err)
	}
	if ev.Actor != nil && ev.Actor.UserID != uuid.Nil {
		// Nobody is told of what they did themselves.
		notes = slices.DeleteFunc(notes, func(n note) bool { return n.user == ev.Actor.UserID })
	}
	if len(notes) == 0 {
		return nil
	}
	return s.write(ctx, tx, notes)
}

// rules returns the notifications ev causes. Writes that no rule concerns (most of them: checklist
// ticks, notes, uploads) return before any query.
func (s *Service) rules(ctx context.Context, tx pgx.Tx, ev sync.Event) ([]note, error) {
	if ev.Op == sync.OpOverdue {
		_, task, err := ev.Task()
		if err != nil {
			return nil, err
		}
		return s.taskOverdue(ctx, tx, task)
	}
	if ev.Op != "create" && ev.Op != "update" {
		return nil, nil
	}
	switch ev.Type {
	case sync.TypeTask:
		before, after, err := ev.Task()
		if err != nil {
			return nil, err
		}
		if before == nil {
			return s.taskCreated(ctx, tx, ev, after)
		}
		return s.taskUpdated(ctx, tx, ev, before, after)
	case sync.TypeDocument:
		before, after, err := ev.Document()
		if err != nil {
			return nil, err
		}
		if before != nil && before.Status != sync.DocumentRejected && after.Status == sync.DocumentRejected {
			return s.documentRejected(ctx, tx, after)
		}
	case sync.TypeClaim:
		before, after, err := ev.Claim()
		if err != nil {
			return nil, err
		}
		if before != nil && before.Status != sync.ClaimPaid && after.Status == sync.ClaimPaid {
			return s.claimPaid(ctx, tx, after)
		}
	}
	return nil, nil
}

// taskCreated: the hospital visit that claim intake dispatches tells its rep and the customer's
// agent that the claim was reported; any other task created with an assignee tells the assignee.
func (s *Service) taskCreated(ctx context.Context, tx pgx.Tx, ev sync.Event, task *sync.Task) ([]note, error) {
	assignee := task.AssigneeID
	dispatched := ev.Actor != nil && ev.Actor.Role == sync.RoleSystem && task.Kind == sync.TaskHospitalVisit
	if !dispatched && assignee == uuid.Nil {
		return nil, nil
	}
	c, err := loadClaim(ctx, tx, task.ClaimID)
	if err != nil {
		return nil, err
	}
	if dispatched {
		return s.claimReported(ctx, tx, ev, c, assignee)
	}
	return []note{taskAssigned(task, c, assignee, false)}, nil
}

// claimReported is the first row of the table: the on-duty hospital rep the visit went to, and
// the customer's agent.
func (s *Service) claimReported(ctx context.Context, tx pgx.Tx, ev sync.Event, c *claimInfo, rep uuid.UUID) ([]note, error) {
	names, err := userNames(ctx, tx, rep)
	if err != nil {
		return nil, err
	}
	data := map[string]any{"claim_id": c.id, "claim_number": c.number, "task_id": ev.ID, "customer_id": c.customerID,
		"customer_name": c.customer, "hospital": c.hospital}
	var notes []note
	if rep != uuid.Nil {
		notes = append(notes, note{
			user: rep, kind: KindClaimReported, entityType: sync.TypeTask, entityID: ev.ID, data: data,
			title: "Hospital visit: " + c.customer,
			body: fmt.Sprintf("%s is in hospital at %s (claim %s). Collect the ID card, medical record, invoices and discharge summary.",
				c.customer, orUnknown(c.hospital, "a hospital"), c.number),
		})
	}
	if c.agent != uuid.Nil && c.agent != rep {
		body := fmt.Sprintf("Claim %s was reported: %s is at %s. %s is on the way.", c.number, c.customer, orUnknown(c.hospital, "a hospital"),
			names[rep])
		if rep == uuid.Nil {
			body = fmt.Sprintf("Claim %s was reported: %s is at %s. No hospital rep is on duty; the branch will assign the visit.",
				c.number, c.customer, orUnknown(c.hospital, "a hospital"))
		}
		agentData := maps.Clone(data)
		if rep != uuid.Nil {
			agentData["hospital_rep_id"], agentData["hospital_rep_name"] = rep, names[rep]
		}
		notes = append(notes, note{
			user: c.agent, kind: KindClaimReported, entityType: sync.TypeClaim, entityID: c.id, data: agentData,
			title: "Your customer " + c.customer + " is in hospital", body: body,
		})
	}
	return notes, nil
}

// taskAssigned tells the new assignee (or, reopened, the same one) that the task is theirs.
func taskAssigned(task *sync.Task, c *claimInfo, assignee uuid.UUID, reopened bool) note {
	title := "New task: " + task.Title
	if reopened {
		title = "Task reopened: " + task.Title
	}
	body := fmt.Sprintf("For %s, claim %s.", c.customer, c.number)
	if task.DueAt != nil {
		body += " Due " + task.DueAt.UTC().Format("Mon 2 Jan, 15:04 UTC") + "."
	}
	if task.LocationAddress != "" {
		body += " At " + task.LocationAddress + "."
	}
	return note{user: assignee, kind: KindTaskAssigned, entityType: sync.TypeTask, entityID: task.ID, title: title, body: body,
		data: map[string]any{"task_id": task.ID, "claim_id": c.id, "claim_number": c.number, "customer_name": c.customer, "reopened": reopened}}
}

// taskUpdated: a reassignment tells the new assignee and the former one; a reopened task tells its
// assignee; a task completed or given up tells the branch's manager and processors.
func (s *Service) taskUpdated(ctx context.Context, tx pgx.Tx, ev sync.Event, before, after *sync.Task) ([]note, error) {
	was, is := before.AssigneeID, after.AssigneeID
	from, to := before.Status, after.Status
	reassigned := was != is
	reopened := !reassigned && is != uuid.Nil && from.Finished() && !to.Finished()
	ended := from != to && (to == sync.TaskCompleted || to == sync.TaskCannotComplete)
	if !reassigned && !reopened && !ended {
		return nil, nil
	}
	c, err := loadClaim(ctx, tx, after.ClaimID)
	if err != nil {
		return nil, err
	}
	var notes []note
	if is != uuid.Nil && (reassigned || reopened) {
		notes = append(notes, taskAssigned(after, c, is, reopened))
	}
	if reassigned && was != uuid.Nil {
		names, err := userNames(ctx, tx, is)
		if err != nil {
			return nil, err
		}
		body := fmt.Sprintf("It was given to %s (claim %s, %s). It leaves your device at the next sync.", names[is], c.number, c.customer)
		if is == uuid.Nil {
			body = fmt.Sprintf("It is unassigned now (claim %s, %s). It leaves your device at the next sync.", c.number, c.customer)
		}
		kind, title := KindTaskUnassigned, "Task taken off you: "+after.Title
		if ev.Actor != nil && ev.Actor.Role == sync.RoleSystem && ev.Actor.Name == sync.TargetsActor {
			// Re-dispatched by the target check: the first rep learns why it went.
			kind, title = KindTaskRedispatched, "Not accepted in time: "+after.Title
			body = fmt.Sprintf("It was not accepted within its target, so it was given to %s (claim %s, %s). It leaves your device at the next sync.",
				orUnknown(names[is], "another rep"), c.number, c.customer)
		}
		notes = append(notes, note{user: was, kind: kind, entityType: sync.TypeTask, entityID: ev.ID,
			title: title, body: body,
			data: map[string]any{"task_id": ev.ID, "claim_id": c.id, "claim_number": c.number, "new_assignee_id": nullUUID(is)}})
	}
	if ended {
		more, err := s.taskEnded(ctx, tx, ev, after, c)
		if err != nil {
			return nil, err
		}
		notes = append(notes, more...)
	}
	return notes, nil
}

// taskOverdue: a task past its due time (sync.Engine.CheckTargets) reminds its assignee and
// alerts the branch's managers.
func (s *Service) taskOverdue(ctx context.Context, tx pgx.Tx, task *sync.Task) ([]note, error) {
	c, err := loadClaim(ctx, tx, task.ClaimID)
	if err != nil {
		return nil, err
	}
	names, err := userNames(ctx, tx, task.AssigneeID)
	if err != nil {
		return nil, err
	}
	managers, err := branchStaff(ctx, tx, c.branch, fieldsync.RoleManager)
	if err != nil {
		return nil, err
	}
	data := map[string]any{"task_id": task.ID, "claim_id": c.id, "claim_number": c.number, "customer_name": c.customer,
		"assignee_id": nullUUID(task.AssigneeID)}
	var notes []note
	if task.AssigneeID != uuid.Nil {
		notes = append(notes, note{user: task.AssigneeID, kind: KindTaskOverdue, entityType: sync.TypeTask, entityID: task.ID, data: data,
			title: "Overdue: " + task.Title, body: fmt.Sprintf("This task is past its due time (claim %s, %s).", c.number, c.customer)})
	}
	who := orUnknown(names[task.AssigneeID], "nobody")
	for _, m := range managers {
		notes = append(notes, note{user: m, kind: KindTaskOverdue, entityType: sync.TypeTask, entityID: task.ID, data: data,
			title: "Overdue: " + task.Title, body: fmt.Sprintf("Assigned to %s, past its due time (claim %s, %s).", who, c.number, c.customer)})
	}
	return notes, nil
}

// taskEnded is the third row: the branch's manager and processors learn that a task was completed
// (and whether the claim is now ready for review) or cannot be completed, and why.
func (s *Service) taskEnded(ctx context.Context, tx pgx.Tx, ev sync.Event, task *sync.Task, c *claimInfo) ([]note, error) {
	rep := task.AssigneeID
	if rep == uuid.Nil && ev.Actor != nil {
		rep = ev.Actor.UserID
	}
	names, err := userNames(ctx, tx, rep)
	if err != nil {
		return nil, err
	}
	who := orUnknown(names[rep], "The rep")
	staff, err := branchStaff(ctx, tx, c.branch, fieldsync.RoleManager, fieldsync.RoleProcessor)
	if err != nil {
		return nil, err
	}
	title := task.Title
	data := map[string]any{"task_id": task.ID, "claim_id": c.id, "claim_number": c.number, "customer_name": c.customer, "rep_id": nullUUID(rep)}
	var kind, body string
	if task.Status == sync.TaskCompleted {
		kind, title = KindTaskCompleted, "Task completed: "+title
		var open int
		err := tx.QueryRow(ctx, `SELECT count(*) FROM tasks WHERE claim_id = $1 AND deleted_at IS NULL
			AND status IN ('open', 'assigned', 'accepted', 'in_progress')`, c.id).Scan(&open)
		if err != nil {
			return nil, fmt.Errorf("count open tasks: %w", err)
		}
		data["ready_for_review"] = open == 0
		body = fmt.Sprintf("%s completed it (claim %s, %s). The claim is ready for review.", who, c.number, c.customer)
		if open > 0 {
			body = fmt.Sprintf("%s completed it (claim %s, %s). %d other task(s) of the claim are still open.", who, c.number, c.customer, open)
		}
	} else {
		reason := task.CannotCompleteReason
		kind, title = KindTaskCannotComplete, "Task cannot be completed: "+title
		data["reason"] = reason
		body = fmt.Sprintf("%s: %s (claim %s, %s).", who, strings.TrimRight(reason, ". "), c.number, c.customer)
	}
	notes := make([]note, 0, len(staff))
	for _, u := range staff {
		notes = append(notes, note{user: u, kind: kind, entityType: sync.TypeTask, entityID: task.ID, title: title, body: body, data: data})
	}
	return notes, nil
}

var documentKinds = map[sync.DocumentKind]string{
	sync.DocumentIDCard: "ID card", sync.DocumentMedicalRecord: "medical record", sync.DocumentInvoice: "invoice",
	sync.DocumentDischargeSummary: "discharge summary", sync.DocumentPhoto: "photo", sync.DocumentOther: "document",
}

// documentRejected is the fourth row: the rep who uploaded the document, with the reviewer's reason.
func (s *Service) documentRejected(ctx context.Context, tx pgx.Tx, doc *sync.Document) ([]note, error) {
	if doc.UploaderID == uuid.Nil {
		return nil, nil
	}
	c, err := loadClaim(ctx, tx, doc.ClaimID)
	if err != nil {
		return nil, err
	}
	kind := orUnknown(documentKinds[doc.Kind], "document")
	reason := doc.ReviewNote
	data := map[string]any{"document_id": doc.ID, "claim_id": c.id, "claim_number": c.number, "customer_name": c.customer,
		"document_kind": doc.Kind, "reason": reason}
	if doc.TaskID != uuid.Nil {
		data["task_id"] = doc.TaskID
	}
	return []note{{
		user: doc.UploaderID, kind: KindDocumentRejected, entityType: sync.TypeDocument, entityID: doc.ID, data: data,
		title: "Document rejected: " + kind + " for " + c.customer,
		body:  fmt.Sprintf("%s. Please collect the %s again (claim %s).", strings.TrimRight(reason, ". "), kind, c.number),
	}}, nil
}

// claimPaid is the last row: the customer's agent learns the claim is settled; the branch's
// managers get the payout and what it does to the branch's figures for the month.
func (s *Service) claimPaid(ctx context.Context, tx pgx.Tx, claim *sync.Claim) ([]note, error) {
	c, err := loadClaim(ctx, tx, claim.ID)
	if err != nil {
		return nil, err
	}
	var paid int64
	if claim.AmountPaid != nil {
		paid = *claim.AmountPaid
	}
	paidAt := s.NowFunc()
	if claim.PaidAt != nil {
		paidAt = *claim.PaidAt
	}
	var notes []note
	if c.agent != uuid.Nil {
		notes = append(notes, note{
			user: c.agent, kind: KindClaimPaid, entityType: sync.TypeClaim, entityID: c.id,
			title: "Claim settled: " + c.number,
			body:  fmt.Sprintf("%s's %s claim was paid: %s.", c.customer, kindLabel(c.kind), money(paid)),
			data:  map[string]any{"claim_id": c.id, "claim_number": c.number, "customer_name": c.customer, "amount_paid": paid},
		})
	}
	managers, err := branchStaff(ctx, tx, c.branch, fieldsync.RoleManager)
	if err != nil || len(managers) == 0 {
		return notes, err
	}
	// The month of the payment, in UTC; this claim's payment is part of it (same transaction).
	var total, count int64
	var withPremiumPaid, premiums *int64
	err = tx.QueryRow(ctx, `
		SELECT coalesce(sum(amount_paid), 0)::bigint, count(*),
			sum(amount_paid) FILTER (WHERE premium > 0)::bigint, sum(premium) FILTER (WHERE premium > 0)::bigint
		FROM claims
		WHERE branch_id = $1 AND status = 'paid' AND deleted_at IS NULL
			AND paid_at >= date_trunc('month', $2::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
			AND paid_at < (date_trunc('month', $2::timestamptz AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'`,
		c.branch, paidAt).Scan(&total, &count, &withPremiumPaid, &premiums)
	if err != nil {
		return nil, fmt.Errorf("branch totals: %w", err)
	}
	period := paidAt.UTC().Format("January 2006")
	data := map[string]any{"claim_id": c.id, "claim_number": c.number, "customer_name": c.customer, "amount_paid": paid,
		"period": paidAt.UTC().Format("2006-01"), "period_total_paid": total, "period_claims_paid": count}
	body := fmt.Sprintf("%s paid to %s", money(paid), c.customer)
	if premium := claim.Premium; premium != nil && *premium > 0 {
		data["premium"] = *premium
		body += fmt.Sprintf(" (%s of the %s premium)", percent(paid, *premium), money(*premium))
	}
	body += fmt.Sprintf(". Paid in %s: %s on %d claim(s)", period, money(total), count)
	if withPremiumPaid != nil && premiums != nil && *premiums > 0 {
		data["period_premiums"], data["period_paid_with_premium"] = *premiums, *withPremiumPaid
		body += fmt.Sprintf("; %s of the premiums where known", percent(*withPremiumPaid, *premiums))
	}
	body += "."
	for _, m := range managers {
		notes = append(notes, note{user: m, kind: KindClaimPaid, entityType: sync.TypeClaim, entityID: c.id, data: data,
			title: fmt.Sprintf("Claim paid: %s, %s", c.number, money(paid)), body: body})
	}
	return notes, nil
}

// write stores the notifications and, when push is on, a pending delivery to each active device of
// each recipient (a device not revoked, with a push token, signed in by that user) and the job
// that delivers them. Disabled users are told nothing.
func (s *Service) write(ctx context.Context, tx pgx.Tx, notes []note) error {
	n := len(notes)
	ids, users, entityIDs := make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n)
	kinds, titles, bodies, entityTypes, data := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, nt := range notes {
		ids[i], users[i], entityIDs[i] = uuid.Must(uuid.NewV7()), nt.user, nt.entityID
		kinds[i], entityTypes[i] = nt.kind, nt.entityType
		titles[i], bodies[i] = clip(nt.title, maxTitle), clip(nt.body, maxBody)
		raw, err := json.Marshal(nt.data)
		if err != nil {
			return fmt.Errorf("encode notification data: %w", err)
		}
		data[i] = string(raw)
	}
	batch := uuid.Must(uuid.NewV7())
	var deliveries int
	err := tx.QueryRow(ctx, `
		WITH written AS (
			INSERT INTO notifications (id, user_id, branch_id, kind, title, body, entity_type, entity_id, data)
			SELECT x.id, x.user_id, u.branch_id, x.kind, x.title, x.body, x.entity_type, x.entity_id, x.data::jsonb
			FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::uuid[], $8::text[])
				AS x(id, user_id, kind, title, body, entity_type, entity_id, data)
			JOIN users u ON u.id = x.user_id AND u.disabled_at IS NULL
			RETURNING id, user_id
		),
		queued AS (
			INSERT INTO notification_deliveries (notification_id, device_id, batch_id)
			SELECT w.id, d.id, $10 FROM written w JOIN devices d ON d.user_id = w.user_id
			WHERE $9 AND d.push_token IS NOT NULL AND `+liveDevice+`
			RETURNING 1
		)
		SELECT count(*) FROM queued`,
		ids, users, kinds, titles, bodies, entityTypes, entityIDs, data, s.PushEnabled(), batch).Scan(&deliveries)
	if err != nil {
		return fmt.Errorf("write notifications: %w", err)
	}
	if deliveries == 0 {
		return nil
	}
	return s.queueDelivery(ctx, tx, batch)
}

// claimInfo is what the texts say about a claim.
type claimInfo struct {
	id, branch, customerID, agent uuid.UUID
	number, hospital, customer    string
	kind                          sync.ClaimKind
}

func loadClaim(ctx context.Context, tx pgx.Tx, id uuid.UUID) (*claimInfo, error) {
	c := &claimInfo{id: id}
	var agent *uuid.UUID
	err := tx.QueryRow(ctx, `
		SELECT c.number, c.branch_id, c.hospital, c.kind, cu.id, cu.name, cu.agent_id
		FROM claims c JOIN customers cu ON cu.id = c.customer_id WHERE c.id = $1`, id).
		Scan(&c.number, &c.branch, &c.hospital, &c.kind, &c.customerID, &c.customer, &agent)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("claim %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read claim %s: %w", id, err)
	}
	if agent != nil {
		c.agent = *agent
	}
	return c, nil
}

// userNames returns the names of ids (uuid.Nil is skipped).
func userNames(ctx context.Context, tx pgx.Tx, ids ...uuid.UUID) (map[uuid.UUID]string, error) {
	names := map[uuid.UUID]string{}
	ids = slices.DeleteFunc(ids, func(id uuid.UUID) bool { return id == uuid.Nil })
	if len(ids) == 0 {
		return names, nil
	}
	rows, err := tx.Query(ctx, `SELECT id, name FROM users WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read user names: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, err
		}
		names[id] = name
	}
	return names, rows.Err()
}

// branchStaff returns the enabled users of branch with one of roles.
func branchStaff(ctx context.Context, tx pgx.Tx, branch uuid.UUID, roles ...string) ([]uuid.UUID, error) {
	rows, err := tx.Query(ctx, `SELECT id FROM users WHERE branch_id = $1 AND role = ANY($2) AND disabled_at IS NULL ORDER BY id`, branch, roles)
	if err != nil {
		return nil, fmt.Errorf("read branch staff: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("read branch staff: %w", err)
	}
	return ids, nil
}

func nullUUID(id uuid.UUID) any {
	if id == uuid.Nil {
		return nil
	}
	return id
}

func orUnknown(s, fallback string) string {
	if strings.TrimSpace(s) == "" {
		return fallback
	}
	return s
}

func kindLabel(kind sync.ClaimKind) string {
	switch kind {
	case sync.ClaimHospitalisation, sync.ClaimAccident, sync.ClaimIllness, sync.ClaimDeath:
		return string(kind)
	}
	return "insurance"
}

// clip shortens s to at most n characters, ending it with an ellipsis when cut.
func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:n-1])) + "…"
}

// money formats an amount in minor units (cents) as 1,234.56. The currency is the branch's.
func money(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	whole := strconv.FormatInt(cents/100, 10)
	var b strings.Builder
	for i, d := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return fmt.Sprintf("%s%s.%02d", sign, b.String(), cents%100)
}

// percent formats part/whole as a whole percentage.
func percent(part, whole int64) string {
	return strconv.FormatInt((part*100+whole/2)/whole, 10) + "%"
}
