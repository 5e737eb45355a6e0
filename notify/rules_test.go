package notify_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	gosync "sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/internal/fakefcm"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// world is a branch with its people, each signed in on devices with push tokens.
type world struct {
	manager, processor1, processor2 uuid.UUID
	hospital, hospital2, agent      uuid.UUID
	otherManager                    uuid.UUID // of another branch
	customer                        uuid.UUID
	tokens                          map[uuid.UUID][]string
	devices                         map[uuid.UUID][]uuid.UUID
}

func (b *bundle) world(t testing.TB) *world {
	t.Helper()
	w := &world{tokens: map[uuid.UUID][]string{}, devices: map[uuid.UUID][]uuid.UUID{}}
	w.manager = b.user(t, fieldsync.RoleManager, "", "Maria Manager")
	w.processor1 = b.user(t, fieldsync.RoleProcessor, "", "Paul Processor")
	w.processor2 = b.user(t, fieldsync.RoleProcessor, "", "Petra Processor")
	w.hospital = b.user(t, fieldsync.RoleRep, "hospital", "Hugo Hospital")
	w.hospital2 = b.user(t, fieldsync.RoleRep, "hospital", "Hanna Hospital")
	w.agent = b.user(t, fieldsync.RoleRep, "agent", "Alice Agent")
	// Hanna is off duty, so that intake dispatches to Hugo.
	if _, err := b.db.Pool.Exec(context.Background(), `UPDATE users SET on_duty = false WHERE id = $1`, w.hospital2); err != nil {
		t.Fatal(err)
	}
	other := b.fx.Branch()
	w.otherManager = b.userIn(t, other, fieldsync.RoleManager, "", "Otto Other")
	for _, u := range []uuid.UUID{w.manager, w.processor1, w.processor2, w.hospital, w.hospital2, w.agent, w.agent, w.otherManager} {
		d, tok := b.device(t, u)
		w.devices[u] = append(w.devices[u], d)
		w.tokens[u] = append(w.tokens[u], tok)
	}
	w.customer = b.customer(t, "Jane Doe", w.agent)
	return w
}

// byToken groups messages by the token they were sent to.
func byToken(calls []fakefcm.Message) map[string][]fakefcm.Message {
	out := map[string][]fakefcm.Message{}
	for _, c := range calls {
		out[c.Token] = append(out[c.Token], c)
	}
	return out
}

// checkPush checks that each token of user got exactly one message, and that it carries n: its
// texts, the data to open the record, and the record's collapse key on every platform.
func checkPush(t *testing.T, w *world, msgs map[string][]fakefcm.Message, user uuid.UUID, n storedNotification) {
	t.Helper()
	for _, tok := range w.tokens[user] {
		got := msgs[tok]
		if len(got) != 1 {
			t.Errorf("token of %s got %d messages, want 1", user, len(got))
			continue
		}
		m := got[0]
		if m.Title == "" || !strings.HasPrefix(n.Title, strings.TrimSuffix(m.Title, "…")) {
			t.Errorf("push title %q, want the notification's %q", m.Title, n.Title)
		}
		if m.Body == "" || len([]rune(m.Body)) > 240 {
			t.Errorf("push body %q: want 1 to 240 characters", m.Body)
		}
		want := map[string]string{"notification_id": n.ID.String(), "kind": n.Kind, "entity_type": n.EntityType, "entity_id": n.EntityID.String()}
		for k, v := range want {
			if m.Data[k] != v {
				t.Errorf("data[%s] = %q, want %q (data %v)", k, m.Data[k], v, m.Data)
			}
		}
		key := n.EntityType + ":" + n.EntityID.String()
		if m.AndroidCollapseKey != key || m.AndroidTag != key || m.APNSHeaders["apns-collapse-id"] != key ||
			m.APNSThreadID != key || m.WebpushTag != key || len(m.WebpushHeaders["Topic"]) != 32 {
			t.Errorf("collapse keys: android %q/%q, apns %q/%q, web %q/%q; want %q", m.AndroidCollapseKey, m.AndroidTag,
				m.APNSHeaders["apns-collapse-id"], m.APNSThreadID, m.WebpushTag, m.WebpushHeaders["Topic"], key)
		}
		if m.AndroidPriority != "high" || m.APNSHeaders["apns-priority"] != "10" {
			t.Errorf("priority: android %q, apns %q", m.AndroidPriority, m.APNSHeaders["apns-priority"])
		}
	}
}

// only fails the test if a message went to a token of anyone but users.
func only(t *testing.T, w *world, msgs map[string][]fakefcm.Message, users ...uuid.UUID) {
	t.Helper()
	allowed := map[string]bool{}
	for _, u := range users {
		for _, tok := range w.tokens[u] {
			allowed[tok] = true
		}
	}
	for tok, ms := range msgs {
		if !allowed[tok] {
			t.Errorf("%d message(s) to token %s, who is not to be told (first: %q)", len(ms), tok, ms[0].Title)
		}
	}
}

func one(t *testing.T, ns []storedNotification, user uuid.UUID, kind string) storedNotification {
	t.Helper()
	got := forUser(ns, user)
	if len(got) != 1 || got[0].Kind != kind {
		t.Fatalf("notifications of %s: %+v, want one %s", user, got, kind)
	}
	return got[0]
}

func contains(t *testing.T, what, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Errorf("%s %q does not say %q", what, s, p)
		}
	}
}

func TestClaimReportedTellsTheDispatchedRepAndTheAgent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.world(t)
	claim, task := b.report(t, w.customer)

	calls := waitAccepted(t, b.fcm, 3, 10*time.Second) // Hugo's phone and Alice's two
	b.waitIdle(t, 10*time.Second)
	ns := b.notifications(t)
	if len(ns) != 2 {
		t.Fatalf("%d notifications, want 2: %+v", len(ns), ns)
	}
	rep := one(t, ns, w.hospital, "claim_reported")
	if rep.EntityType != "task" || rep.EntityID != task || rep.Data["claim_id"] != claim.String() || rep.Data["task_id"] != task.String() {
		t.Errorf("rep's notification is about %s %s (data %v), want task %s of claim %s", rep.EntityType, rep.EntityID, rep.Data, task, claim)
	}
	contains(t, "rep's title", rep.Title, "Jane Doe")
	contains(t, "rep's body", rep.Body, "St Mary's Hospital", "CLM-")
	agent := one(t, ns, w.agent, "claim_reported")
	if agent.EntityType != "claim" || agent.EntityID != claim || agent.Data["hospital_rep_name"] != "Hugo Hospital" {
		t.Errorf("agent's notification is about %s %s (data %v), want claim %s", agent.EntityType, agent.EntityID, agent.Data, claim)
	}
	contains(t, "agent's body", agent.Body, "Hugo Hospital", "St Mary's Hospital")

	msgs := byToken(calls)
	checkPush(t, w, msgs, w.hospital, rep)
	checkPush(t, w, msgs, w.agent, agent)
	only(t, w, msgs, w.hospital, w.agent)
	if len(b.fcm.Requests()) != 3 {
		t.Errorf("%d requests to FCM, want 3", len(b.fcm.Requests()))
	}
}

func TestTaskReassignedTellsTheNewAndTheFormerAssignee(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.world(t)
	_, task := b.report(t, w.customer)
	waitAccepted(t, b.fcm, 3, 10*time.Second)
	b.waitIdle(t, 10*time.Second)
	before := len(b.fcm.Requests())

	b.command(t, b.as(w.manager, fieldsync.RoleManager), sync.TypeTask, "update", task, map[string]any{"assignee_id": w.hospital2})
	calls := waitAccepted(t, b.fcm, before+2, 10*time.Second)[before:]
	b.waitIdle(t, 10*time.Second)
	ns := b.notifications(t)
	assigned := one(t, ns, w.hospital2, "task_assigned")
	contains(t, "assigned title", assigned.Title, "New task", "Visit Jane Doe")
	var taken storedNotification
	for _, n := range forUser(ns, w.hospital) {
		if n.Kind == "task_unassigned" {
			taken = n
		}
	}
	if taken.ID == uuid.Nil {
		t.Fatal("the former assignee was not told")
	}
	contains(t, "unassigned body", taken.Body, "Hanna Hospital")
	msgs := byToken(calls)
	checkPush(t, w, msgs, w.hospital2, assigned)
	checkPush(t, w, msgs, w.hospital, taken)
	only(t, w, msgs, w.hospital, w.hospital2)
	if assigned.EntityID != task || taken.EntityID != task {
		t.Errorf("notifications about %s and %s, want task %s", assigned.EntityID, taken.EntityID, task)
	}
}

func TestTaskCompletedTellsTheManagerAndTheProcessors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.world(t)
	_, task := b.report(t, w.customer)
	rep := b.as(w.hospital, fieldsync.RoleRep)
	b.command(t, rep, sync.TypeTask, "update", task, map[string]any{"status": "accepted"})
	waitAccepted(t, b.fcm, 3, 10*time.Second)
	b.waitIdle(t, 10*time.Second)
	before := len(b.fcm.Requests())

	b.command(t, rep, sync.TypeTask, "update", task, map[string]any{"status": "completed", "completion_note": "All four collected."})
	calls := waitAccepted(t, b.fcm, before+3, 10*time.Second)[before:]
	b.waitIdle(t, 10*time.Second)
	ns := b.notifications(t)
	for _, u := range []uuid.UUID{w.manager, w.processor1, w.processor2} {
		n := one(t, ns, u, "task_completed")
		contains(t, "completed body", n.Body, "Hugo Hospital", "ready for review")
		if n.Data["ready_for_review"] != true {
			t.Errorf("data %v: want ready_for_review", n.Data)
		}
		checkPush(t, w, byToken(calls), u, n)
	}
	only(t, w, byToken(calls), w.manager, w.processor1, w.processor2)

	// The second claim's visit cannot be done: they learn why.
	customer2 := b.customer(t, "John Roe", w.agent)
	_, task2 := b.report(t, customer2)
	b.command(t, rep, sync.TypeTask, "update", task2, map[string]any{"status": "cannot_complete", "cannot_complete_reason": "The patient was discharged"})
	b.waitIdle(t, 10*time.Second)
	var cannot []storedNotification
	for _, n := range b.notifications(t) {
		if n.Kind == "task_cannot_complete" {
			cannot = append(cannot, n)
			contains(t, "cannot body", n.Body, "The patient was discharged", "John Roe")
		}
	}
	if len(cannot) != 3 {
		t.Errorf("%d task_cannot_complete notifications, want 3 (manager and two processors)", len(cannot))
	}
}

func TestDocumentRejectedTellsTheUploaderWhy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.world(t)
	claim, task := b.report(t, w.customer)
	rep := b.as(w.hospital, fieldsync.RoleRep)
	b.command(t, rep, sync.TypeTask, "update", task, map[string]any{"status": "accepted"})
	doc := uuid.New()
	b.command(t, rep, sync.TypeDocument, "create", doc, map[string]any{"claim_id": claim, "task_id": task, "kind": "invoice", "file_name": "invoice.jpg"})
	b.command(t, sync.SystemIdentity(b.branch, w.hospital), sync.TypeDocument, "update", doc, map[string]any{"status": "uploaded", "object_key": "documents/" + doc.String()})
	waitAccepted(t, b.fcm, 3, 10*time.Second)
	b.waitIdle(t, 10*time.Second)
	before := len(b.fcm.Requests())

	b.command(t, b.as(w.processor1, fieldsync.RoleProcessor), sync.TypeDocument, "update", doc,
		map[string]any{"status": "rejected", "review_note": "The total is cut off at the bottom."})
	calls := waitAccepted(t, b.fcm, before+1, 10*time.Second)[before:]
	b.waitIdle(t, 10*time.Second)
	var n storedNotification
	for _, x := range forUser(b.notifications(t), w.hospital) {
		if x.Kind == "document_rejected" {
			n = x
		}
	}
	if n.ID == uuid.Nil {
		t.Fatal("the uploader was not told")
	}
	if n.EntityType != "document" || n.EntityID != doc || n.Data["reason"] != "The total is cut off at the bottom." || n.Data["task_id"] != task.String() {
		t.Errorf("notification about %s %s with data %v", n.EntityType, n.EntityID, n.Data)
	}
	contains(t, "title", n.Title, "invoice", "Jane Doe")
	contains(t, "body", n.Body, "The total is cut off at the bottom", "collect the invoice again")
	checkPush(t, w, byToken(calls), w.hospital, n)
	only(t, w, byToken(calls), w.hospital)
}

func TestClaimPaidTellsTheAgentAndTheManagerWithTheBranchTotals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.world(t)
	rep := b.as(w.hospital, fieldsync.RoleRep)
	proc := b.as(w.processor1, fieldsync.RoleProcessor)
	pay := func(customer uuid.UUID, amount, premium int64) uuid.UUID {
		claim, task := b.report(t, customer)
		b.command(t, rep, sync.TypeTask, "update", task, map[string]any{"status": "accepted"})
		b.command(t, rep, sync.TypeTask, "update", task, map[string]any{"status": "completed"})
		b.command(t, proc, sync.TypeClaim, "update", claim, map[string]any{"status": "approved", "premium": premium})
		b.command(t, proc, sync.TypeClaim, "update", claim, map[string]any{"status": "paid", "amount_paid": amount})
		return claim
	}
	// The branch is Shanghai's, in yuan; its manager reads Chinese, the agent English (no choice).
	for _, q := range []struct {
		sql string
		arg uuid.UUID
	}{{`UPDATE branches SET time_zone = 'Asia/Shanghai', currency = 'CNY' WHERE id = $1`, b.branch},
		{`UPDATE users SET locale = 'zh-CN' WHERE id = $1`, w.manager}} {
		if _, err := b.db.Pool.Exec(context.Background(), q.sql, q.arg); err != nil {
			t.Fatal(err)
		}
	}
	first := pay(w.customer, 120000, 50000)
	second := pay(b.customer(t, "John Roe", w.agent), 30050, 0)
	b.waitIdle(t, 15*time.Second)

	paid := func(user, claim uuid.UUID) storedNotification {
		t.Helper()
		for _, n := range forUser(b.notifications(t), user) {
			if n.Kind == "claim_paid" && n.EntityID == claim {
				return n
			}
		}
		t.Fatalf("%s was not told that claim %s was paid", user, claim)
		return storedNotification{}
	}
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	month := time.Now().In(shanghai).Format("2006年1月")
	m1 := paid(w.manager, first)
	contains(t, "manager's title", m1.Title, "理赔已赔付", "￥1,200.00")
	contains(t, "manager's body", m1.Body, "赔付 ￥1,200.00 给 Jane Doe", "（为 240%，保费 ￥500.00）", month+" 已赔付：￥1,200.00，共 1 笔理赔")
	m2 := paid(w.manager, second)
	contains(t, "manager's body", m2.Body, "赔付 ￥300.50 给 John Roe", month+" 已赔付：￥1,500.50，共 2 笔理赔", "已知保费的赔付率为 240%")
	if m2.Data["period"] != time.Now().In(shanghai).Format("2006-01") {
		t.Errorf("period %v: want the month in the branch's time zone", m2.Data["period"])
	}
	if m2.Data["period_total_paid"] != float64(150050) || m2.Data["period_claims_paid"] != float64(2) {
		t.Errorf("manager's data %v: want the period's totals", m2.Data)
	}
	a := paid(w.agent, first)
	contains(t, "agent's body", a.Body, "Jane Doe", "hospitalisation claim was paid: CN¥1,200.00.")
	if a.EntityType != "claim" || a.Data["claim_number"] == "" {
		t.Errorf("agent's notification %+v", a)
	}
	for _, u := range []uuid.UUID{w.processor1, w.processor2, w.otherManager} {
		for _, n := range forUser(b.notifications(t), u) {
			if n.Kind == "claim_paid" {
				t.Errorf("%s was told a claim was paid", u)
			}
		}
	}
	for _, n := range []storedNotification{m1, m2, a} {
		got := 0
		for _, c := range b.fcm.Messages() {
			if c.Data["notification_id"] == n.ID.String() {
				got++
			}
		}
		if want := len(b.tokensOf(t, n.UserID)); got != want {
			t.Errorf("notification %s pushed %d times, want %d (one per device)", n.Title, got, want)
		}
	}
}

func (b *bundle) tokensOf(t testing.TB, user uuid.UUID) []string {
	t.Helper()
	rows, err := b.db.Pool.Query(context.Background(), `SELECT push_token FROM devices WHERE user_id = $1 AND push_token IS NOT NULL`, user)
	if err != nil {
		t.Fatal(err)
	}
	toks, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

func TestAChangeThatRollsBackNotifiesNobody(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.world(t)
	// A later part of the same transaction fails after the notification rules ran.
	var failing gosync.Bool
	failing.Store(true)
	b.engine.AddHook(func(ctx context.Context, tx pgx.Tx, ev sync.Event) error {
		if failing.Load() {
			return errors.New("a later step failed")
		}
		return nil
	})
	if _, err := b.engine.ReportClaim(context.Background(), b.integration, sync.ClaimReport{CustomerID: w.customer,
		PolicyNumber: "POL-1", Kind: "hospitalisation", Hospitalised: true, Hospital: "St Mary's"}); err == nil {
		t.Fatal("the report succeeded, want the failing hook's error")
	}
	// The notifications and their push jobs were written in its transaction: none is left.
	if ns := b.notifications(t); len(ns) != 0 {
		t.Errorf("%d notifications written for a change that rolled back", len(ns))
	}
	if jobs := b.pushJobs(t); len(jobs) != 0 {
		t.Errorf("push jobs %v queued for a change that rolled back", jobs)
	}

	// The same report, committed, is told: the test could have seen a message. By the time its
	// messages are sent, the worker has had the time to send anything the rolled-back one might
	// have queued: every message is of a notification the committed one wrote.
	failing.Store(false)
	b.report(t, w.customer)
	waitAccepted(t, b.fcm, 3, 10*time.Second)
	written := map[string]bool{}
	for _, n := range b.notifications(t) {
		written[n.ID.String()] = true
	}
	for _, m := range b.fcm.Requests() {
		if !written[m.Data["notification_id"]] {
			t.Errorf("message %v sent of no committed notification", m.Data)
		}
	}
}

func TestPushOffStillFillsTheInbox(t *testing.T) {
	t.Parallel()
	b := setup(t, pushOff)
	w := b.world(t)
	b.report(t, w.customer)
	time.Sleep(500 * time.Millisecond)
	if ns := b.notifications(t); len(ns) != 2 {
		t.Errorf("%d notifications, want 2", len(ns))
	}
	if jobs := b.pushJobs(t); len(jobs) != 0 {
		t.Errorf("push jobs %v queued with push off", jobs)
	}
	if calls := b.fcm.Requests(); len(calls) != 0 {
		t.Errorf("%d messages sent with push off", len(calls))
	}
}

func TestOnlyActiveDevicesOfEnabledUsersArePushed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.world(t)
	ctx := context.Background()
	// Alice signed out of her second phone (its session is revoked, its token kept); Hugo's phone
	// was revoked by an administrator.
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := b.db.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`UPDATE sessions SET revoked_at = now(), revoke_reason = 'logout' WHERE device_id = $1`, w.devices[w.agent][1])
	exec(`UPDATE devices SET revoked_at = now() WHERE id = $1`, w.devices[w.hospital][0])
	b.report(t, w.customer)
	b.waitIdle(t, 10*time.Second)
	msgs := byToken(b.fcm.Messages())
	if len(msgs) != 1 || len(msgs[w.tokens[w.agent][0]]) != 1 {
		t.Errorf("pushed to %d tokens, want only Alice's signed-in phone: %v", len(msgs), msgs)
	}
	if n := len(b.notifications(t)); n != 2 {
		t.Errorf("%d notifications, want 2: the inbox does not depend on devices", n)
	}

	// A disabled user is told nothing at all.
	exec(`UPDATE users SET disabled_at = now() WHERE id = $1`, w.processor2)
	rep := b.as(w.hospital, fieldsync.RoleRep)
	_, task := b.report(t, b.customer(t, "John Roe", w.agent))
	b.command(t, rep, sync.TypeTask, "update", task, map[string]any{"status": "accepted"})
	b.command(t, rep, sync.TypeTask, "update", task, map[string]any{"status": "completed"})
	b.waitIdle(t, 10*time.Second)
	if got := forUser(b.notifications(t), w.processor2); len(got) != 0 {
		t.Errorf("a disabled user got %d notifications", len(got))
	}
}

func TestAStormOfChangesToOneTaskCollapses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.world(t)
	_, task := b.report(t, w.customer)
	mgr := b.as(w.manager, fieldsync.RoleManager)
	for i := range 6 {
		to := w.hospital2
		if i%2 == 1 {
			to = w.hospital
		}
		b.command(t, mgr, sync.TypeTask, "update", task, map[string]any{"assignee_id": to})
	}
	b.waitIdle(t, 15*time.Second)
	key := "task:" + task.String()
	for _, c := range b.fcm.Messages() {
		if c.Data["entity_id"] == task.String() && (c.AndroidCollapseKey != key || c.APNSHeaders["apns-collapse-id"] != key) {
			t.Fatalf("a message about the task has collapse key %q, want %q", c.AndroidCollapseKey, key)
		}
	}
	if n := len(b.fcm.Messages()); n != 3+12 {
		t.Errorf("%d messages, want 15 (each one collapses on the phone into the task's latest)", n)
	}
}

func TestLongTextsFitALockScreenAndFCMsLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.world(t)
	claim, task := b.report(t, w.customer)
	rep := b.as(w.hospital, fieldsync.RoleRep)
	b.command(t, rep, sync.TypeTask, "update", task, map[string]any{"status": "accepted"})
	doc := uuid.New()
	b.command(t, rep, sync.TypeDocument, "create", doc, map[string]any{"claim_id": claim, "task_id": task, "kind": "medical_record"})
	b.command(t, sync.SystemIdentity(b.branch, w.hospital), sync.TypeDocument, "update", doc, map[string]any{"status": "uploaded", "object_key": "k"})
	reason := strings.Repeat("Ошибка в документе 𝄞 ", 100)[:1990] // multi-byte, near the 2,000 limit
	reason = strings.ToValidUTF8(reason, "")
	b.command(t, b.as(w.processor1, fieldsync.RoleProcessor), sync.TypeDocument, "update", doc, map[string]any{"status": "rejected", "review_note": reason})
	b.waitIdle(t, 10*time.Second)
	for _, c := range b.fcm.Messages() {
		if c.Data["kind"] != "document_rejected" {
			continue
		}
		size := len(c.Title) + len(c.Body)
		for k, v := range c.Data {
			size += len(k) + len(v)
		}
		if size > 4096 || len([]rune(c.Body)) > 240 || len([]rune(c.Title)) > 65 {
			t.Errorf("payload %d bytes, body %d characters, title %d characters", size, len([]rune(c.Body)),
				len([]rune(c.Title)))
		}
		return
	}
	t.Fatal("no document_rejected message")
}

func TestATaskCreatedWithAnAssigneeOrReopenedTellsTheAssignee(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.world(t)
	claim, _ := b.report(t, w.customer)
	mgr := b.as(w.manager, fieldsync.RoleManager)
	due := time.Date(2026, 11, 24, 14, 0, 0, 0, time.UTC)
	task := uuid.New()
	b.command(t, mgr, sync.TypeTask, "create", task, map[string]any{"claim_id": claim, "kind": "follow_up", "title": "Call the family",
		"assignee_id": w.agent, "due_at": due, "location_address": "12 Rose Street"})
	b.waitIdle(t, 10*time.Second)
	var created storedNotification
	for _, n := range forUser(b.notifications(t), w.agent) {
		if n.Kind == "task_assigned" {
			created = n
		}
	}
	if created.EntityID != task {
		t.Fatalf("the assignee of a new task was not told")
	}
	contains(t, "body", created.Body, "Jane Doe", "Due 2026-11-24 14:00 UTC", "12 Rose Street")

	// Given up, then reopened by the manager: the assignee is told it is theirs again.
	agent := b.as(w.agent, fieldsync.RoleRep)
	b.command(t, agent, sync.TypeTask, "update", task, map[string]any{"status": "cannot_complete", "cannot_complete_reason": "No answer"})
	b.command(t, mgr, sync.TypeTask, "update", task, map[string]any{"status": "assigned"})
	b.waitIdle(t, 10*time.Second)
	reopened := 0
	for _, n := range forUser(b.notifications(t), w.agent) {
		if n.Kind == "task_assigned" && strings.HasPrefix(n.Title, "Task reopened: Call the family") {
			reopened++
		}
	}
	if reopened != 1 {
		t.Errorf("%d reopened notifications, want 1", reopened)
	}
}

// wakes returns the wake-ups (data-only "sync" messages) among msgs, by token.
func wakes(msgs []fakefcm.Message) map[string][]fakefcm.Message {
	var out []fakefcm.Message
	for _, m := range msgs {
		if m.Data["type"] == "sync" {
			out = append(out, m)
		}
	}
	return byToken(out)
}

func TestATaskReassignedToARepWakesTheirPhonesOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, withWake)
	w := b.world(t)
	// Hanna has a second phone; the manager reassigns from the console.
	d2, tok2 := b.device(t, w.hospital2)
	w.devices[w.hospital2] = append(w.devices[w.hospital2], d2)
	w.tokens[w.hospital2] = append(w.tokens[w.hospital2], tok2)
	_, task := b.report(t, w.customer)
	b.waitIdle(t, 10*time.Second)
	// The dispatch brought the visit to Hugo: his phone was woken too.
	if got := wakes(b.fcm.Messages())[w.tokens[w.hospital][0]]; len(got) != 1 {
		t.Fatalf("Hugo's phone got %d wake-ups at dispatch, want 1", len(got))
	}
	before := len(b.fcm.Messages())

	b.command(t, b.as(w.manager, fieldsync.RoleManager), sync.TypeTask, "update", task, map[string]any{"assignee_id": w.hospital2})
	b.waitIdle(t, 10*time.Second)
	after := b.fcm.Messages()[before:]
	woken := wakes(after)
	for _, tok := range w.tokens[w.hospital2] {
		got := woken[tok]
		if len(got) != 1 {
			t.Errorf("Hanna's phone %s got %d wake-ups, want 1", tok, len(got))
			continue
		}
		m := got[0]
		if m.Title != "" || m.Body != "" || len(m.Data) != 1 || strings.Contains(string(m.Raw), `"notification"`) {
			t.Errorf("a wake-up is data only: title %q, body %q, data %v, raw %s", m.Title, m.Body, m.Data, m.Raw)
		}
		if m.AndroidCollapseKey != "sync" || m.APNSHeaders["apns-collapse-id"] != "sync" || m.WebpushHeaders["Topic"] != "sync" {
			t.Errorf("collapse keys: android %q, apns %q, web %q; want sync", m.AndroidCollapseKey, m.APNSHeaders["apns-collapse-id"], m.WebpushHeaders["Topic"])
		}
		if m.APNSHeaders["apns-push-type"] != "background" || m.APNSHeaders["apns-priority"] != "5" ||
			!strings.Contains(string(m.Raw), `"content-available":1`) || m.AndroidPriority != "normal" {
			t.Errorf("not a background push: apns %v, android priority %q, raw %s", m.APNSHeaders, m.AndroidPriority, m.Raw)
		}
	}
	// The former assignee and everyone else: no wake-up. Hanna's alert is pushed as ever.
	for tok := range woken {
		if !slices.Contains(w.tokens[w.hospital2], tok) {
			t.Errorf("a wake-up went to %s, not Hanna's", tok)
		}
	}
	assigned := one(t, b.notifications(t), w.hospital2, "task_assigned")
	for _, tok := range w.tokens[w.hospital2] {
		alerts := 0
		for _, m := range sentTo(after, tok) {
			if m.Data["notification_id"] == assigned.ID.String() {
				alerts++
			}
		}
		if alerts != 1 {
			t.Errorf("Hanna's phone %s got %d alerts, want 1", tok, alerts)
		}
	}
	// No inbox entry of its own: the notifications are the alerts'.
	for _, n := range b.notifications(t) {
		if n.Kind == "sync" {
			t.Errorf("a wake-up is in the inbox: %+v", n)
		}
	}
	var rows int
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM notification_deliveries WHERE kind = 'sync' AND state = 'sent'`).Scan(&rows); err != nil || rows != 3 {
		t.Errorf("%d sent wake-up deliveries (%v), want 3: Hugo's at dispatch, Hanna's two", rows, err)
	}
}
