package console_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/fieldsync/fieldsync/internal/fixture"
	"github.com/google/uuid"
)

// BenchmarkConsolePages measures the server's time and the bytes of a page load of the review
// queue and of a claim with 20 documents, in a branch of 10,000 claims, beside the API's answers
// to the same reads (GET /v1/review-queue, GET /v1/claims/{id}) as the baseline of the same run.
// The handler is called in process: the time is the server's, without a network.
//
//	go test -run '^$' -bench BenchmarkConsolePages -benchtime 200x ./console/
func BenchmarkConsolePages(b *testing.B) {
	a := apptest.New(b)
	branch := a.Branch(b)
	ctx := context.Background()
	login := "proc-" + uuid.NewString()[:8]
	if _, err := a.Accounts.CreateUser(ctx, account.NewUser{BranchID: branch, Role: "processor", Login: login,
		Name: "Paul Processor", Password: password}); err != nil {
		b.Fatal(err)
	}
	// 10,000 claims of 1,000 customers, a tenth of them in the queue, created over the past year.
	if _, err := a.DB.Pool.Exec(ctx, `
		INSERT INTO customers (id, branch_id, name) SELECT gen_random_uuid(), $1, 'Customer ' || i FROM generate_series(1, 1000) i;
		`, branch); err != nil {
		b.Fatal(err)
	}
	if _, err := a.DB.Pool.Exec(ctx, `
		INSERT INTO claims (id, number, branch_id, customer_id, policy_number, kind, status, hospital, amount_claimed,
			amount_paid, paid_at, settled_at, created_at)
		SELECT gen_random_uuid(), 'CLM-B-' || i, $1, c.id, 'P-' || i, 'hospitalisation', s.status, 'Hospital ' || (i % 37),
			100000 + i, CASE WHEN s.status = 'paid' THEN 90000 END, CASE WHEN s.status = 'paid' THEN now() END,
			CASE WHEN s.status IN ('paid', 'rejected') THEN now() END, now() - (i || ' minutes')::interval
		FROM generate_series(1, 10000) i
		CROSS JOIN LATERAL (SELECT (ARRAY['under_review','collecting','approved','paid','rejected','reported','paid','paid',
			'rejected','approved'])[i % 10 + 1] AS status) s
		JOIN LATERAL (SELECT id FROM customers WHERE branch_id = $1 ORDER BY id OFFSET (i % 1000) LIMIT 1) c ON true`, branch); err != nil {
		b.Fatal(err)
	}
	f := fixture.New(b, a.DB.Pool)
	rep := f.User(fixture.User{Branch: branch, Role: "rep", RepKind: "agent"})
	var customer uuid.UUID
	if err := a.DB.Pool.QueryRow(ctx, `SELECT id FROM customers WHERE branch_id = $1 LIMIT 1`, branch).Scan(&customer); err != nil {
		b.Fatal(err)
	}
	claim, _ := f.Claim(fixture.Claim{Branch: branch, Customer: customer, Hospital: "Shanghai General Hospital", AmountClaimed: 1250000})
	for i := range 20 {
		status := []string{"uploaded", "approved", "rejected", "pending_upload"}[i%4]
		f.Document(claim, rep, status)
	}
	if _, err := a.DB.Pool.Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}

	// The console's cookie, and the API's bearer token, of the same processor.
	get := signedInGetter(b, a, login)
	cases := []pageCase{
		{"queue/api", "/v1/review-queue", false},
		{"queue/console", "/console/queue", true},
		{"claim20/api", "/v1/claims/" + claim.String(), false},
		{"claim20/console", "/console/claims/" + claim.String(), true},
	}
	// The pages hold what they should, once.
	if page := get("/console/claims/"+claim.String(), true, false).Body.String(); strings.Count(page, `class="doc"`) != 20 {
		b.Fatalf("the claim page shows %d documents, want 20", strings.Count(page, `class="doc"`))
	}
	var queue struct{ Items []json.RawMessage }
	if err := json.Unmarshal(get("/v1/review-queue", false, false).Body.Bytes(), &queue); err != nil || len(queue.Items) != 50 {
		b.Fatalf("the queue's first page has %d claims (%v), want 50", len(queue.Items), err)
	}
	benchPages(b, get, cases)
}
