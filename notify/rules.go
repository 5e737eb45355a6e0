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
	"time"
	"unicode/utf8"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/i18n"
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

// note is one notification to write: for one user, about one record. Its title and body are
// written by text in the recipient's language, times in their branch's zone and amounts in its
// currency (write gives each recipient their Printer).
type note struct {
	user       uuid.UUID
	kind       string
	text       func(p *i18n.Printer) (title, body string)
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
			text: func(p *i18n.Printer) (string, string) {
				return p.T("notify.reported.rep.title", c.customer),
					p.T("notify.reported.rep.body", c.customer, orUnknown(c.hospital, p.T("notify.a_hospital")), c.number)
			},
		})
	}
	if c.agent != uuid.Nil && c.agent != rep {
		text := func(p *i18n.Printer) (string, string) {
			hospital := orUnknown(c.hospital, p.T("notify.a_hospital"))
			body := p.T("notify.reported.agent.body", c.number, c.customer, hospital, names[rep])
			if rep == uuid.Nil {
				body = p.T("notify.reported.agent.body_nobody", c.number, c.customer, hospital)
			}
			return p.T("notify.reported.agent.title", c.customer), body
		}
		agentData := maps.Clone(data)
		if rep != uuid.Nil {
			agentData["hospital_rep_id"], agentData["hospital_rep_name"] = rep, names[rep]
		}
		notes = append(notes, note{
			user: c.agent, kind: KindClaimReported, entityType: sync.TypeClaim, entityID: c.id, data: agentData, text: text,
		})
	}
	return notes, nil
}

// taskAssigned tells the new assignee (or, reopened, the same one) that the task is theirs.
func taskAssigned(task *sync.Task, c *claimInfo, assignee uuid.UUID, reopened bool) note {
	text := func(p *i18n.Printer) (string, string) {
		title := p.T("notify.assigned.title", task.Title)
		if reopened {
			title = p.T("notify.reopened.title", task.Title)
		}
		body := p.T("notify.assigned.body", c.customer, c.number)
		if task.DueAt != nil {
			body += p.T("notify.assigned.due", p.Time(*task.DueAt))
		}
		if task.LocationAddress != "" {
			body += p.T("notify.assigned.at", task.LocationAddress)
		}
		return title, body
	}
	return note{user: assignee, kind: KindTaskAssigned, entityType: sync.TypeTask, entityID: task.ID, text: text,
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
		kind := KindTaskUnassigned
		text := func(p *i18n.Printer) (string, string) {
			if is == uuid.Nil {
				return p.T("notify.unassigned.title", after.Title), p.T("notify.unassigned.body_nobody", c.number, c.customer)
			}
			return p.T("notify.unassigned.title", after.Title), p.T("notify.unassigned.body", names[is], c.number, c.customer)
		}
		if ev.Actor != nil && ev.Actor.Role == sync.RoleSystem && ev.Actor.Name == sync.TargetsActor {
			// Re-dispatched by the target check: the first rep learns why it went.
			kind = KindTaskRedispatched
			text = func(p *i18n.Printer) (string, string) {
				return p.T("notify.redispatched.title", after.Title),
					p.T("notify.redispatched.body", orUnknown(names[is], p.T("notify.another_rep")), c.number, c.customer)
			}
		}
		notes = append(notes, note{user: was, kind: kind, entityType: sync.TypeTask, entityID: ev.ID, text: text,
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
			text: func(p *i18n.Printer) (string, string) {
				return p.T("notify.overdue.title", task.Title), p.T("notify.overdue.rep.body", c.number, c.customer)
			}})
	}
	toManager := func(p *i18n.Printer) (string, string) {
		who := orUnknown(names[task.AssigneeID], p.T("notify.nobody"))
		return p.T("notify.overdue.title", task.Title), p.T("notify.overdue.manager.body", who, c.number, c.customer)
	}
	for _, m := range managers {
		notes = append(notes, note{user: m, kind: KindTaskOverdue, entityType: sync.TypeTask, entityID: task.ID, data: data, text: toManager})
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
	staff, err := branchStaff(ctx, tx, c.branch, fieldsync.RoleManager, fieldsync.RoleProcessor)
	if err != nil {
		return nil, err
	}
	data := map[string]any{"task_id": task.ID, "claim_id": c.id, "claim_number": c.number, "customer_name": c.customer, "rep_id": nullUUID(rep)}
	who := func(p *i18n.Printer) string { return orUnknown(names[rep], p.T("notify.the_rep")) }
	var kind string
	var text func(p *i18n.Printer) (string, string)
	if task.Status == sync.TaskCompleted {
		kind = KindTaskCompleted
		var open int
		err := tx.QueryRow(ctx, `SELECT count(*) FROM tasks WHERE claim_id = $1 AND deleted_at IS NULL
			AND status IN ('open', 'assigned', 'accepted', 'in_progress')`, c.id).Scan(&open)
		if err != nil {
			return nil, fmt.Errorf("count open tasks: %w", err)
		}
		data["ready_for_review"] = open == 0
		text = func(p *i18n.Printer) (string, string) {
			if open > 0 {
				return p.T("notify.completed.title", task.Title), p.T("notify.completed.body_open", who(p), c.number, c.customer, open)
			}
			return p.T("notify.completed.title", task.Title), p.T("notify.completed.body_ready", who(p), c.number, c.customer)
		}
	} else {
		reason := task.CannotCompleteReason
		kind = KindTaskCannotComplete
		data["reason"] = reason
		text = func(p *i18n.Printer) (string, string) {
			return p.T("notify.cannot.title", task.Title),
				p.T("notify.cannot.body", who(p), strings.TrimRight(reason, ". 。"), c.number, c.customer)
		}
	}
	notes := make([]note, 0, len(staff))
	for _, u := range staff {
		notes = append(notes, note{user: u, kind: kind, entityType: sync.TypeTask, entityID: task.ID, text: text, data: data})
	}
	return notes, nil
}

// documentKind names a kind of document in p's language.
func documentKind(p *i18n.Printer, kind sync.DocumentKind) string {
	switch kind {
	case sync.DocumentIDCard, sync.DocumentMedicalRecord, sync.DocumentInvoice, sync.DocumentDischargeSummary, sync.DocumentPhoto:
		return p.T("notify.doc." + string(kind))
	}
	return p.T("notify.doc.other")
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
	reason := doc.ReviewNote
	data := map[string]any{"document_id": doc.ID, "claim_id": c.id, "claim_number": c.number, "customer_name": c.customer,
		"document_kind": doc.Kind, "reason": reason}
	if doc.TaskID != uuid.Nil {
		data["task_id"] = doc.TaskID
	}
	return []note{{
		user: doc.UploaderID, kind: KindDocumentRejected, entityType: sync.TypeDocument, entityID: doc.ID, data: data,
		text: func(p *i18n.Printer) (string, string) {
			kind := documentKind(p, doc.Kind)
			return p.T("notify.rejected.title", kind, c.customer),
				p.T("notify.rejected.body", strings.TrimRight(reason, ". 。"), kind, c.number)
		},
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
			text: func(p *i18n.Printer) (string, string) {
				return p.T("notify.settled.title", c.number), p.T("notify.settled.body", c.customer, kindLabel(p, c.kind), p.Money(paid))
			},
			data: map[string]any{"claim_id": c.id, "claim_number": c.number, "customer_name": c.customer, "amount_paid": paid},
		})
	}
	managers, err := branchStaff(ctx, tx, c.branch, fieldsync.RoleManager)
	if err != nil || len(managers) == 0 {
		return notes, err
	}
	// The month of the payment in the branch's time zone (a payment at 07:00 on the 1st in
	// Shanghai is that month's, though still the last month's in UTC); this claim's payment is
	// part of it (same transaction).
	var total, count int64
	var withPremiumPaid, premiums *int64
	var tz string
	err = tx.QueryRow(ctx, `
		SELECT coalesce(sum(c.amount_paid), 0)::bigint, count(c.id),
			sum(c.amount_paid) FILTER (WHERE c.premium > 0)::bigint, sum(c.premium) FILTER (WHERE c.premium > 0)::bigint, b.time_zone
		FROM branches b LEFT JOIN claims c ON c.branch_id = b.id AND c.status = 'paid' AND c.deleted_at IS NULL
			AND c.paid_at >= date_trunc('month', $2::timestamptz AT TIME ZONE b.time_zone) AT TIME ZONE b.time_zone
			AND c.paid_at < (date_trunc('month', $2::timestamptz AT TIME ZONE b.time_zone) + interval '1 month') AT TIME ZONE b.time_zone
		WHERE b.id = $1
		GROUP BY b.time_zone`,
		c.branch, paidAt).Scan(&total, &count, &withPremiumPaid, &premiums, &tz)
	if err != nil {
		return nil, fmt.Errorf("branch totals: %w", err)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		loc = time.UTC
	}
	month := paidAt.In(loc)
	data := map[string]any{"claim_id": c.id, "claim_number": c.number, "customer_name": c.customer, "amount_paid": paid,
		"period": month.Format("2006-01"), "period_total_paid": total, "period_claims_paid": count}
	premium := claim.Premium
	if premium != nil && *premium > 0 {
		data["premium"] = *premium
	}
	withPremiums := withPremiumPaid != nil && premiums != nil && *premiums > 0
	if withPremiums {
		data["period_premiums"], data["period_paid_with_premium"] = *premiums, *withPremiumPaid
	}
	text := func(p *i18n.Printer) (string, string) {
		body := p.T("notify.paid.body", p.Money(paid), c.customer)
		if premium != nil && *premium > 0 {
			body += p.T("notify.paid.premium", percent(paid, *premium), p.Money(*premium))
		}
		body += p.T("notify.paid.period", month.Format(p.T("notify.month_layout")), p.Money(total), count)
		if withPremiums {
			body += p.T("notify.paid.ratio", percent(*withPremiumPaid, *premiums))
		}
		return p.T("notify.paid.title", c.number, p.Money(paid)), body + p.T("notify.end")
	}
	for _, m := range managers {
		notes = append(notes, note{user: m, kind: KindClaimPaid, entityType: sync.TypeClaim, entityID: c.id, data: data, text: text})
	}
	return notes, nil
}

// write stores the notifications and, when push is on, a pending delivery to each active device of
// each recipient (a device not revoked, with a push token, signed in by that user) and the job
// that delivers them. Disabled users are told nothing.
func (s *Service) write(ctx context.Context, tx pgx.Tx, notes []note) error {
	n := len(notes)
	printers, err := recipientPrinters(ctx, tx, notes)
	if err != nil {
		return err
	}
	ids, users, entityIDs := make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n)
	kinds, titles, bodies, entityTypes, data := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, nt := range notes {
		ids[i], users[i], entityIDs[i] = uuid.Must(uuid.NewV7()), nt.user, nt.entityID
		kinds[i], entityTypes[i] = nt.kind, nt.entityType
		title, body := nt.text(printers[nt.user])
		titles[i], bodies[i] = clip(title, maxTitle), clip(body, maxBody)
		raw, err := json.Marshal(nt.data)
		if err != nil {
			return fmt.Errorf("encode notification data: %w", err)
		}
		data[i] = string(raw)
	}
	batch := uuid.Must(uuid.NewV7())
	var deliveries int
	err = tx.QueryRow(ctx, `
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

// recipientPrinters returns the Printer of each recipient of notes: their language (English when
// they chose none: a push has no browser to ask), their branch's time zone and currency. A
// recipient whose row is gone gets English in UTC; write then skips them anyway.
func recipientPrinters(ctx context.Context, tx pgx.Tx, notes []note) (map[uuid.UUID]*i18n.Printer, error) {
	users := make([]uuid.UUID, 0, len(notes))
	for _, nt := range notes {
		users = append(users, nt.user)
	}
	rows, err := tx.Query(ctx, `
		SELECT u.id, coalesce(u.locale, ''), coalesce(b.time_zone, 'UTC'), coalesce(b.currency, '')
		FROM users u LEFT JOIN branches b ON b.id = u.branch_id WHERE u.id = ANY($1)`, users)
	if err != nil {
		return nil, fmt.Errorf("read recipients' languages: %w", err)
	}
	type format struct{ lang, tz, currency string }
	shared := map[format]*i18n.Printer{}
	out := map[uuid.UUID]*i18n.Printer{}
	var id uuid.UUID
	var f format
	_, err = pgx.ForEachRow(rows, []any{&id, &f.lang, &f.tz, &f.currency}, func() error {
		p, ok := shared[f]
		if !ok {
			loc, err := time.LoadLocation(f.tz)
			if err != nil {
				loc = time.UTC
			}
			p = i18n.New(i18n.Match(f.lang, ""), loc, f.currency)
			shared[f] = p
		}
		out[id] = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read recipients' languages: %w", err)
	}
	english := i18n.New(i18n.English, time.UTC, "")
	for _, u := range users {
		if out[u] == nil {
			out[u] = english
		}
	}
	return out, nil
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

// kindLabel names a kind of claim in p's language.
func kindLabel(p *i18n.Printer, kind sync.ClaimKind) string {
	switch kind {
	case sync.ClaimHospitalisation, sync.ClaimAccident, sync.ClaimIllness, sync.ClaimDeath:
		return p.T("notify.claim_kind." + string(kind))
	}
	return p.T("notify.claim_kind.other")
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

// percent formats part/whole as a whole percentage.
func percent(part, whole int64) string {
	return strconv.FormatInt((part*100+whole/2)/whole, 10) + "%"
}
