package server_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestClaimIntakeDispatches: the hotline (an integration user of no branch) and managers report
// claims; a hospitalised customer's claim gets a hospital visit dispatched to the least loaded
// on-duty, enabled hospital rep of the customer's branch; a retried report makes nothing twice.
func TestClaimIntakeDispatches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	mgr := b.signIn(t, "manager", "")
	b.signIn(t, "rep", "agent") // reps who are agents are never dispatched
	integ := b.signInAt(t, uuid.Nil, "integration", "")
	busy, idle := b.signIn(t, "rep", "hospital"), b.signIn(t, "rep", "hospital")
	cust := b.newCustomer(t, mgr)
	// The busy rep already holds an open task.
	b.newTask(t, mgr, b.newClaim(t, mgr, cust), busy.id)
	b.pullAll(t, idle)

	report := map[string]any{"id": uuid.New(), "customer_id": cust, "policy_number": "POL-1", "kind": "hospitalisation",
		"hospitalised": true, "hospital": "St. Mary's", "description": "Admitted after a fall.", "amount_claimed": 250000}
	r := b.do(t, "POST", "/v1/claims", integ.token, report)
	expect(t, r, http.StatusCreated, "")
	var out struct {
		Claim map[string]any `json:"claim"`
		Task  map[string]any `json:"task"`
	}
	r.json(t, &out)
	if out.Claim["id"] != report["id"].(uuid.UUID).String() || out.Claim["status"] != "reported" || out.Claim["branch_id"] != b.branchID.String() ||
		!regexp.MustCompile(`^CLM-\d{4}-\d{6}$`).MatchString(out.Claim["number"].(string)) || syncInt(out.Claim["amount_claimed"]) != 250000 {
		t.Fatalf("claim: %v", out.Claim)
	}
	task := out.Task
	if task == nil || task["assignee_id"] != idle.id.String() || task["status"] != "assigned" || task["kind"] != "hospital_visit" ||
		task["claim_id"] != out.Claim["id"] || !strings.Contains(task["title"].(string), "St. Mary's") || len(task["checklist"].([]any)) != 4 {
		t.Fatalf("dispatched task: %v", task)
	}
	// It reaches the rep's device whole.
	got := b.pullAll(t, idle)
	taskID := uuid.MustParse(task["id"].(string))
	wantUpsert(t, "hospital rep", got, "task", taskID)
	wantUpsert(t, "hospital rep", got, "claim", uuid.MustParse(out.Claim["id"].(string)))
	wantUpsert(t, "hospital rep", got, "customer", cust)

	// The hotline retries (it never saw the answer): the same claim and task, nothing new.
	again := b.do(t, "POST", "/v1/claims", integ.token, report)
	expect(t, again, http.StatusCreated, "")
	var out2 struct {
		Claim map[string]any `json:"claim"`
		Task  map[string]any `json:"task"`
	}
	again.json(t, &out2)
	if out2.Claim["number"] != out.Claim["number"] || out2.Task["id"] != task["id"] || syncInt(out2.Task["version"]) != syncInt(task["version"]) {
		t.Fatalf("retry: %s, first: %s", again.body, r.body)
	}
	if n := b.countRows(t, "tasks", "claim_id = $1", report["id"]); n != 1 {
		t.Fatalf("%d tasks after a retried report", n)
	}

	// Both hospital reps hold one task now. Off duty, the idle one is skipped: the busy one gets it.
	if _, err := b.db.Pool.Exec(context.Background(), `UPDATE users SET on_duty = false WHERE id = $1`, idle.id); err != nil {
		t.Fatal(err)
	}
	_, task2 := b.reportClaim(t, mgr, cust, true)
	if task2 == nil || task2["assignee_id"] != busy.id.String() {
		t.Fatalf("with the idle rep off duty: %v", task2)
	}
	// Disabled too: nobody is on duty; the visit stays open for a manager to assign.
	if err := b.accounts.DisableUser(context.Background(), busy.id); err != nil {
		t.Fatal(err)
	}
	_, task3 := b.reportClaim(t, mgr, cust, true)
	if task3 == nil || task3["assignee_id"] != nil || task3["status"] != "open" {
		t.Fatalf("with no hospital rep on duty: %v", task3)
	}

	// Not hospitalised: a claim, no task.
	claim4, task4 := b.reportClaim(t, mgr, cust, false)
	if task4 != nil {
		t.Fatalf("a task for a claim without hospitalisation: %v", task4)
	}
	if n := b.countRows(t, "tasks", "claim_id = $1", claim4["id"]); n != 0 {
		t.Fatalf("%d tasks", n)
	}
}

// TestClaimIntakeIsAuthorised: reps may not report claims; managers and processors only for their
// branch's customers; a claim id is not a key to someone else's claim.
func TestClaimIntakeIsAuthorised(t *testing.T) {
	t.Parallel()
	b := setup(t)
	mgr, proc, rep := b.signIn(t, "manager", ""), b.signIn(t, "processor", ""), b.signIn(t, "rep", "")
	cust := b.newCustomer(t, mgr)
	br2 := b.newBranch(t)
	mgr2 := b.signInAt(t, br2, "manager", "")
	cust2 := b.newCustomer(t, mgr2)
	body := func(customer uuid.UUID) map[string]any {
		return map[string]any{"id": uuid.New(), "customer_id": customer, "policy_number": "POL-9", "kind": "accident"}
	}

	expect(t, b.do(t, "POST", "/v1/claims", rep.token, body(cust)), http.StatusForbidden, "forbidden")
	expect(t, b.do(t, "POST", "/v1/claims", mgr2.token, body(cust)), http.StatusForbidden, "forbidden")
	expect(t, b.do(t, "POST", "/v1/claims", proc.token, body(cust)), http.StatusCreated, "")
	if n := b.countRows(t, "claims", "customer_id = $1", cust); n != 1 {
		t.Fatalf("%d claims", n)
	}

	// Branch 2's manager reports with the id of branch 1's claim: that claim is not theirs to see.
	first := body(cust)
	expect(t, b.do(t, "POST", "/v1/claims", mgr.token, first), http.StatusCreated, "")
	reuse := body(cust2)
	reuse["id"] = first["id"]
	r := b.do(t, "POST", "/v1/claims", mgr2.token, reuse)
	expect(t, r, http.StatusConflict, "already_exists")
	if strings.Contains(string(r.body), cust.String()) {
		t.Fatalf("another branch's claim leaked: %s", r.body)
	}

	for _, tc := range []struct {
		change func(map[string]any)
		status int
		code   string
	}{
		{func(m map[string]any) { delete(m, "policy_number") }, 400, "invalid_value"},
		{func(m map[string]any) { m["kind"] = "theft" }, 400, "invalid_value"},
		{func(m map[string]any) { m["hospitalised"] = true }, 400, "invalid_value"}, // no hospital named
		{func(m map[string]any) { m["amount_claimed"] = -1 }, 400, "invalid_value"},
		{func(m map[string]any) { m["description"] = strings.Repeat("d", 10001) }, 400, "invalid_value"},
		{func(m map[string]any) { m["customer_id"] = uuid.New() }, 400, "not_found"},
		{func(m map[string]any) { m["status"] = "paid" }, 400, "unknown_field"},
	} {
		m := body(cust)
		tc.change(m)
		expect(t, b.do(t, "POST", "/v1/claims", mgr.token, m), tc.status, tc.code)
	}
}

// TestClaimIntakeRetriedOnSerializationFailure: a report whose transaction PostgreSQL aborts for a
// serialization failure (provoked here by a trigger that fails the dispatch's first insert of the
// visit) is run again, as a push is: the hotline gets its claim, made once, with one visit.
func TestClaimIntakeRetriedOnSerializationFailure(t *testing.T) {
	t.Parallel()
	b := setup(t)
	mgr := b.signIn(t, "manager", "")
	integ := b.signInAt(t, uuid.Nil, "integration", "")
	rep := b.signIn(t, "rep", "hospital")
	cust := b.newCustomer(t, mgr)
	claimID := uuid.New()

	ctx := context.Background()
	name := "fail_once_" + strings.ReplaceAll(claimID.String(), "-", "")
	for _, sql := range []string{
		`CREATE SEQUENCE ` + name,
		`CREATE FUNCTION ` + name + `() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF nextval('` + name + `') = 1 THEN
				RAISE EXCEPTION 'provoked serialization failure' USING ERRCODE = 'serialization_failure';
			END IF;
			RETURN NEW;
		END $$`,
		`CREATE TRIGGER ` + name + ` AFTER INSERT ON tasks FOR EACH ROW
			WHEN (NEW.claim_id = '` + claimID.String() + `') EXECUTE FUNCTION ` + name + `()`,
	} {
		if _, err := b.db.Pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_, _ = b.db.Pool.Exec(context.Background(), `DROP TRIGGER `+name+` ON tasks; DROP FUNCTION `+name+`(); DROP SEQUENCE `+name)
	})

	r := b.do(t, "POST", "/v1/claims", integ.token, map[string]any{"id": claimID, "customer_id": cust, "policy_number": "POL-1",
		"kind": "hospitalisation", "hospitalised": true, "hospital": "St. Mary's"})
	expect(t, r, http.StatusCreated, "")
	var out struct {
		Task map[string]any `json:"task"`
	}
	r.json(t, &out)
	if out.Task == nil || out.Task["assignee_id"] != rep.id.String() {
		t.Fatalf("dispatched task: %s", r.body)
	}
	var calls int64
	if err := b.db.Pool.QueryRow(ctx, `SELECT last_value FROM `+name).Scan(&calls); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Fatalf("the visit was inserted %d times, want 2 (a failed attempt, then the retry)", calls)
	}
	if n := b.countRows(t, "claims", "id = $1", claimID); n != 1 {
		t.Fatalf("%d claims", n)
	}
	if n := b.countRows(t, "tasks", "claim_id = $1", claimID); n != 1 {
		t.Fatalf("%d tasks", n)
	}
}
