package server_test

import (
	"context"
	"math"
	"net/http"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
)

// The service-level tests (issue 14): the target check re-dispatches a visit nobody accepted and
// reminds an overdue task's assignee, once, whichever replicas run it; the branch figures give
// cycle times from the records' history.

// visitOf reports a hospitalised claim of a new customer as mgr and returns its visit's id, its
// assignee and when the claim was reported (the server's clock).
func visitOf(t *testing.T, e *evEnv, mgr *syncUser) (task, assignee uuid.UUID, reported time.Time) {
	t.Helper()
	claim, visit := e.reportClaim(t, mgr, e.newCustomer(t, mgr), true)
	if visit == nil {
		t.Fatalf("no visit dispatched for %v", claim)
	}
	task = uuid.MustParse(visit["id"].(string))
	err := e.db.Pool.QueryRow(context.Background(), `SELECT t.assignee_id, c.created_at FROM tasks t JOIN claims c ON c.id = t.claim_id WHERE t.id = $1`,
		task).Scan(&assignee, &reported)
	if err != nil {
		t.Fatal(err)
	}
	return task, assignee, reported
}

// notes counts the notifications of kind about task that user has.
func (e *evEnv) notes(t *testing.T, user, task uuid.UUID, kind string) int {
	t.Helper()
	return e.countRows(t, "notifications", "user_id = $1 AND entity_id = $2 AND kind = $3", user, task, kind)
}

// checkAtOnce runs the target check as of now on every engine at the same moment and sums what
// they did.
func checkAtOnce(t *testing.T, now time.Time, engines ...*sync.Engine) sync.TargetsReport {
	t.Helper()
	var mu stdsync.Mutex
	var sum sync.TargetsReport
	var wg stdsync.WaitGroup
	start := make(chan struct{})
	for _, eng := range engines {
		wg.Go(func() {
			<-start
			r, err := eng.CheckTargets(context.Background(), now)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			sum.Redispatched += r.Redispatched
			sum.Overdue += r.Overdue
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return sum
}

func TestUnacceptedVisitIsRedispatchedOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	e := evSetup(t)
	other := e.eventsReplica(t)
	mgr := e.bundle.signIn(t, "manager", "")
	reps := map[uuid.UUID]*syncUser{}
	for range 2 {
		r := e.bundle.signIn(t, "rep", "hospital")
		reps[r.id] = r
	}
	task, first, reported := visitOf(t, e, mgr)

	// Within its 30 minutes (the default target), nothing happens.
	if got := checkAtOnce(t, reported.Add(29*time.Minute), e.engine, other.Engine); got != (sync.TargetsReport{}) {
		t.Fatalf("before the target: %+v", got)
	}
	// Past it, the two replicas check at once: one re-dispatch.
	if got := checkAtOnce(t, reported.Add(31*time.Minute), e.engine, other.Engine, e.engine, other.Engine); got.Redispatched != 1 {
		t.Fatalf("re-dispatched %d times", got.Redispatched)
	}
	var next uuid.UUID
	for id := range reps {
		if id != first {
			next = id
		}
	}
	var assignee uuid.UUID
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT assignee_id FROM tasks WHERE id = $1`, task).Scan(&assignee); err != nil {
		t.Fatal(err)
	}
	if assignee != next {
		t.Fatalf("assignee %s, want the other rep %s", assignee, next)
	}
	// The first rep is told why it went (and not twice); the new one gets it as an assignment.
	if n, m := e.notes(t, first, task, "task_redispatched"), e.notes(t, first, task, "task_unassigned"); n != 1 || m != 0 {
		t.Fatalf("first rep: %d task_redispatched, %d task_unassigned", n, m)
	}
	if n := e.notes(t, next, task, "task_assigned"); n != 1 {
		t.Fatalf("new rep: %d task_assigned", n)
	}
	// It syncs: the new rep's pull brings the task, theirs now.
	got := wantUpsert(t, "new rep", e.pullAll(t, reps[next]), "task", task)
	if got["assignee_id"] != next.String() || got["status"] != "assigned" {
		t.Fatalf("pulled task: %v", got)
	}
	// Later rounds do not send it round again.
	if got := checkAtOnce(t, reported.Add(2*time.Hour), e.engine, other.Engine); got.Redispatched != 0 {
		t.Fatalf("a second round re-dispatched %d", got.Redispatched)
	}
}

func TestOverdueTaskRemindsAndAlertsOnceNeverForFinished(t *testing.T) {
	t.Parallel()
	e := evSetup(t)
	mgr := e.bundle.signIn(t, "manager", "")
	e.bundle.signIn(t, "rep", "hospital") // the only one on duty: nobody to re-dispatch to
	open, rep, reported := visitOf(t, e, mgr)
	cancelled, _, _ := visitOf(t, e, mgr)
	completed, _, _ := visitOf(t, e, mgr)
	ctx := context.Background()
	for id, status := range map[uuid.UUID]string{cancelled: "cancelled", completed: "completed"} {
		if _, err := e.db.Pool.Exec(ctx, `UPDATE tasks SET status = $2, finished_at = now() WHERE id = $1`, id, status); err != nil {
			t.Fatal(err)
		}
	}

	var versionBefore int64
	if err := e.db.Pool.QueryRow(ctx, `SELECT version FROM tasks WHERE id = $1`, open).Scan(&versionBefore); err != nil {
		t.Fatal(err)
	}
	late := reported.Add(5 * time.Hour) // past the 4 hours of a visit
	for round := range 2 {
		got, err := e.engine.CheckTargets(ctx, late)
		if err != nil {
			t.Fatal(err)
		}
		if want := 1 - round; got.Overdue != want {
			t.Fatalf("round %d: %d overdue, want %d", round, got.Overdue, want)
		}
	}
	if n := e.notes(t, rep, open, "task_overdue"); n != 1 {
		t.Fatalf("assignee reminded %d times", n)
	}
	if n := e.notes(t, mgr.id, open, "task_overdue"); n != 1 {
		t.Fatalf("manager alerted %d times", n)
	}
	// The check's marks are its own bookkeeping, sent to no device: the task is not a new version
	// (no change logged, no phone woken for nothing).
	var versionAfter int64
	if err := e.db.Pool.QueryRow(ctx, `SELECT version FROM tasks WHERE id = $1`, open).Scan(&versionAfter); err != nil {
		t.Fatal(err)
	}
	if versionAfter != versionBefore {
		t.Fatalf("the overdue check moved the task from version %d to %d", versionBefore, versionAfter)
	}
	// With nobody else on duty the visit stayed with its rep, and nobody was told it went.
	if n := e.countRows(t, "notifications", "kind = 'task_redispatched'"); n != 0 {
		t.Fatalf("%d task_redispatched with nobody to re-dispatch to", n)
	}
	for _, id := range []uuid.UUID{cancelled, completed} {
		if n := e.countRows(t, "notifications", "entity_id = $1 AND kind IN ('task_overdue', 'task_redispatched')", id); n != 0 {
			t.Fatalf("%d service-level notifications for a finished task", n)
		}
		if n := e.countRows(t, "tasks", "id = $1 AND (reminded_at IS NOT NULL OR redispatched_at IS NOT NULL)", id); n != 0 {
			t.Fatal("a finished task was marked")
		}
	}
}

// figures is GET /v1/branch/figures for a period, as token's caller.
func (b *bundle) figures(t *testing.T, token string, from, to time.Time) sync.BranchFigures {
	t.Helper()
	r := b.do(t, "GET", "/v1/branch/figures?from="+from.Format(time.RFC3339)+"&to="+to.Format(time.RFC3339), token, nil)
	expect(t, r, http.StatusOK, "")
	var f sync.BranchFigures
	r.json(t, &f)
	return f
}

func TestBranchFiguresCycleTimes(t *testing.T) {
	t.Parallel()
	e := evSetup(t)
	mgr := e.bundle.signIn(t, "manager", "")
	e.bundle.signIn(t, "rep", "hospital")
	ctx := context.Background()
	day := time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)
	// Three claims of March with known histories: accepted after 10, 20 and 60 minutes; the
	// first two through to payment, the third not yet decided.
	steps := []struct {
		accepted, documents, decided, paid time.Duration
	}{
		{10 * time.Minute, 2 * time.Hour, 26 * time.Hour, 50 * time.Hour},
		{20 * time.Minute, 4 * time.Hour, 28 * time.Hour, 30 * time.Hour},
		{60 * time.Minute, 3 * time.Hour, 0, 0},
	}
	for i, s := range steps {
		task, _, _ := visitOf(t, e, mgr)
		reported := day.Add(time.Duration(i) * time.Hour)
		at := func(d time.Duration) any {
			if d == 0 {
				return nil
			}
			return reported.Add(d)
		}
		_, err := e.db.Pool.Exec(ctx, `UPDATE claims SET created_at = $2, review_at = $3, decided_at = $4, paid_at = $5
			WHERE id = (SELECT claim_id FROM tasks WHERE id = $1)`, task, reported, at(s.documents), at(s.decided), at(s.paid))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.Pool.Exec(ctx, `UPDATE tasks SET accepted_at = $2, reminded_at = CASE WHEN $3 THEN $2::timestamptz END WHERE id = $1`,
			task, reported.Add(s.accepted), i == 2); err != nil {
			t.Fatal(err)
		}
	}
	f := e.figures(t, mgr.token, day.AddDate(0, 0, -9), day.AddDate(0, 0, 22))
	want := map[string]struct {
		claims      int64
		median, p90 float64
	}{
		// percentile_cont over 600, 1200, 3600: the median is 1200; the 90th is 1200 + 0.8 * 2400.
		"report_to_accepted": {3, 1200, 3120},
		// 110, 220, 120 minutes: sorted 110, 120, 220.
		"accepted_to_documents": {3, 120 * 60, (120 + 0.8*100) * 60},
		// 24 h each.
		"documents_to_decision": {2, 24 * 3600, 24 * 3600},
		// 24 h and 2 h.
		"decision_to_payment": {2, 13 * 3600, (2 + 0.9*22) * 3600},
		"report_to_payment":   {2, 40 * 3600, (30 + 0.9*20) * 3600},
	}
	if len(f.CycleTimes) != len(sync.CycleStages) {
		t.Fatalf("cycle times: %+v", f.CycleTimes)
	}
	for i, ct := range f.CycleTimes {
		w := want[ct.Stage]
		if ct.Stage != sync.CycleStages[i] || ct.Claims != w.claims || ct.Median == nil || ct.P90 == nil ||
			math.Abs(*ct.Median-w.median) > 0.5 || math.Abs(*ct.P90-w.p90) > 0.5 {
			t.Errorf("%s: %d claims, median %v, p90 %v; want %+v", ct.Stage, ct.Claims, deref(ct.Median), deref(ct.P90), w)
		}
	}
	if f.TargetsBreached != 1 {
		t.Errorf("targets breached %d, want 1", f.TargetsBreached)
	}
	// A period without claims has every stage, with nothing in it.
	empty := e.figures(t, mgr.token, day.AddDate(-1, 0, 0), day.AddDate(-1, 1, 0))
	for _, ct := range empty.CycleTimes {
		if ct.Claims != 0 || ct.Median != nil || ct.P90 != nil {
			t.Errorf("empty period: %+v", ct)
		}
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestAdminSetsBranchTargets(t *testing.T) {
	t.Parallel()
	b := setup(t)
	admin := b.signInAt(t, uuid.Nil, "admin", "")
	mgr := b.signIn(t, "manager", "")
	path := "/v1/admin/branches/" + b.branchID.String() + "/targets"
	body := map[string]any{"targets": []map[string]any{{"kind": "hospital_visit", "accept_within_minutes": 20, "done_within_minutes": 180}}}
	r := b.do(t, "PUT", path, admin.token, body)
	expect(t, r, http.StatusOK, "")
	var out struct {
		Targets []sync.Target `json:"targets"`
	}
	r.json(t, &out)
	if len(out.Targets) != 3 || out.Targets[0].Kind != "hospital_visit" || out.Targets[0].AcceptWithin == nil ||
		*out.Targets[0].AcceptWithin != 20 || out.Targets[0].DoneWithin != 180 ||
		out.Targets[1].Kind != "document_collection" || out.Targets[1].AcceptWithin != nil || out.Targets[1].DoneWithin != 2*24*60 {
		t.Fatalf("targets: %s", r.body)
	}
	expect(t, b.do(t, "PUT", path, mgr.token, body), http.StatusForbidden, "forbidden")
	expect(t, b.do(t, "PUT", "/v1/admin/branches/"+uuid.NewString()+"/targets", admin.token, body), http.StatusNotFound, "branch_not_found")
	bad := map[string]any{"targets": []map[string]any{{"kind": "hospital_visit", "done_within_minutes": 0}}}
	expect(t, b.do(t, "PUT", path, admin.token, bad), http.StatusBadRequest, "invalid_value")
	// One entry per kind: a kind given twice (which would silently take the last) is refused.
	twice := map[string]any{"targets": []map[string]any{
		{"kind": "follow_up", "done_within_minutes": 60}, {"kind": "follow_up", "done_within_minutes": 90}}}
	r = b.do(t, "PUT", path, admin.token, twice)
	expect(t, r, http.StatusBadRequest, "invalid_value")
	if !strings.Contains(string(r.body), "twice") {
		t.Fatalf("a kind given twice: %s", r.body)
	}
}
