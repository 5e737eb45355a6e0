package console_test

import (
	"context"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/google/uuid"
)

// BenchmarkManagerPages measures the server's time and the bytes of the manager's main pages in
// a branch of 10,000 claims, each with a task among 20 reps: the board (a page of 100 tasks), the
// claims list and the month's figures with their weekly charts, beside the API's answers to the
// same reads (GET /v1/tasks?limit=100, GET /v1/claims, GET /v1/branch/figures) as the baseline of
// the same run. The handler is called in process: the time is the server's, without a network.
//
//	go test -run '^$' -bench BenchmarkManagerPages -benchtime 100x ./console/
func BenchmarkManagerPages(b *testing.B) {
	a := apptest.New(b)
	ctx := context.Background()
	br, err := a.Accounts.AddBranch(ctx, account.NewBranch{Name: "Bench " + uuid.NewString()[:6], TimeZone: "Asia/Shanghai", Currency: "CNY"})
	if err != nil {
		b.Fatal(err)
	}
	branch := br.ID
	login := "mgr-" + uuid.NewString()[:8]
	if _, err := a.Accounts.CreateUser(ctx, account.NewUser{BranchID: branch, Role: "manager", Login: login,
		Name: "Maria Manager", Password: password}); err != nil {
		b.Fatal(err)
	}
	for i := range 20 {
		if _, err := a.Accounts.CreateUser(ctx, account.NewUser{BranchID: branch, Role: "rep", RepKind: "hospital",
			Login: "rep-" + uuid.NewString()[:8], Name: "Rep " + string(rune('A'+i)), Password: password}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := a.DB.Pool.Exec(ctx, `
		INSERT INTO customers (id, branch_id, name) SELECT gen_random_uuid(), $1, 'Customer ' || i FROM generate_series(1, 1000) i`, branch); err != nil {
		b.Fatal(err)
	}
	if _, err := a.DB.Pool.Exec(ctx, `
		INSERT INTO claims (id, number, branch_id, customer_id, policy_number, kind, status, hospital, amount_claimed,
			amount_paid, premium, paid_at, settled_at, created_at)
		SELECT gen_random_uuid(), 'CLM-M-' || i, $1, c.id, 'P-' || i, 'hospitalisation', s.status, 'Hospital ' || (i % 37),
			100000 + i, CASE WHEN s.status = 'paid' THEN 90000 END, CASE WHEN s.status = 'paid' AND i % 2 = 0 THEN 300000 END,
			CASE WHEN s.status = 'paid' THEN now() - (i || ' minutes')::interval END,
			CASE WHEN s.status IN ('paid', 'rejected') THEN now() - (i || ' minutes')::interval END, now() - (i || ' minutes')::interval
		FROM generate_series(1, 10000) i
		CROSS JOIN LATERAL (SELECT (ARRAY['under_review','collecting','approved','paid','rejected','reported','paid','paid',
			'rejected','approved'])[i % 10 + 1] AS status) s
		JOIN LATERAL (SELECT id FROM customers WHERE branch_id = $1 ORDER BY id OFFSET (i % 1000) LIMIT 1) c ON true`, branch); err != nil {
		b.Fatal(err)
	}
	if _, err := a.DB.Pool.Exec(ctx, `
		INSERT INTO tasks (id, claim_id, branch_id, assignee_id, kind, title, status, checklist, finished_at, created_at)
		SELECT gen_random_uuid(), c.id, c.branch_id, r.id, 'hospital_visit', 'Visit ' || c.number,
			CASE WHEN c.status IN ('paid', 'rejected') THEN 'completed' ELSE 'assigned' END, '[]',
			CASE WHEN c.status IN ('paid', 'rejected') THEN c.created_at END, c.created_at
		FROM claims c
		JOIN LATERAL (SELECT id FROM users WHERE branch_id = $1 AND role = 'rep' ORDER BY id OFFSET (abs(hashtext(c.number)) % 20) LIMIT 1) r ON true
		WHERE c.branch_id = $1`, branch); err != nil {
		b.Fatal(err)
	}
	if _, err := a.DB.Pool.Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}

	get := signedInGetter(b, a, login)
	if page := get("/console/board", true, false).Body.String(); strings.Count(page, `class="card"`) != 100 {
		b.Fatalf("the board shows %d tasks, want 100", strings.Count(page, `class="card"`))
	}
	cases := []pageCase{
		{"board/api", "/v1/tasks?limit=100", false},
		{"board/console", "/console/board", true},
		{"claims/api", "/v1/claims", false},
		{"claims/console", "/console/claims", true},
		{"figures/api", "/v1/branch/figures", false},
		{"figures/console", "/console/figures", true},
	}
	benchPages(b, get, cases)
}
