package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/internal/fixture"
	"github.com/google/uuid"
)

// The screens' tests: the processors' and managers' lists, details and commands, over HTTP with
// the real database. Fixtures are written with SQL where a test needs a record in a given state
// (a claim paid at a known time, a document uploaded); what is under test goes through the API.

// screenWorld is a branch with a manager, two processors and two reps, and another branch with a
// manager and a rep of its own.
type screenWorld struct {
	t *testing.T
	b *bundle
	// other is the other branch.
	other                                     uuid.UUID
	manager, processor, processor2, rep, rep2 screenUser
	otherManager, otherRep                    screenUser
}

type screenUser struct {
	id    uuid.UUID
	name  string
	token string
}

func newScreenWorld(t *testing.T) *screenWorld {
	t.Helper()
	b := setup(t)
	w := &screenWorld{t: t, b: b}
	br, err := b.accounts.CreateBranch(context.Background(), "Other "+uuid.NewString()[:8])
	if err != nil {
		t.Fatal(err)
	}
	w.other = br.ID
	w.manager = w.user(b.branchID, "manager", "")
	w.processor = w.user(b.branchID, "processor", "")
	w.processor2 = w.user(b.branchID, "processor", "")
	w.rep = w.user(b.branchID, "rep", "hospital")
	w.rep2 = w.user(b.branchID, "rep", "agent")
	w.otherManager = w.user(w.other, "manager", "")
	w.otherRep = w.user(w.other, "rep", "agent")
	return w
}

// with returns w for the subtest t, so that its helpers fail t rather than the parent test.
func (w *screenWorld) with(t *testing.T) *screenWorld {
	c := *w
	c.t = t
	return &c
}

func (w *screenWorld) user(branch uuid.UUID, role, repKind string) screenUser {
	w.t.Helper()
	login := role + "-" + uuid.NewString()[:8]
	name := "Screen " + login
	id, err := w.b.accounts.CreateUser(context.Background(), account.NewUser{BranchID: branch, Role: role, RepKind: repKind,
		Login: login, Name: name, Password: testPassword})
	if err != nil {
		w.t.Fatal(err)
	}
	return screenUser{id: id, name: name, token: w.b.login(w.t, login).AccessToken}
}

func (w *screenWorld) exec(sql string, args ...any) {
	w.t.Helper()
	if _, err := w.b.db.Pool.Exec(context.Background(), sql, args...); err != nil {
		w.t.Fatalf("%s: %v", sql, err)
	}
}

func (w *screenWorld) customer(branch uuid.UUID, name string) uuid.UUID {
	w.t.Helper()
	return fixture.New(w.t, w.b.db.Pool).Customer(fixture.Customer{Branch: branch, Name: name})
}

// screenClaimSpec is a claim to insert; zero fields take defaults (the test branch, a new customer,
// status under_review, created now, and fixture.Claim's).
type screenClaimSpec struct {
	branch     uuid.UUID
	customer   uuid.UUID
	status     string
	policy     string
	created    time.Time
	paidAt     time.Time
	amountPaid int64
	premium    *int64
	settled    time.Time
}

func (w *screenWorld) claim(s screenClaimSpec) (uuid.UUID, string) {
	w.t.Helper()
	if s.branch == uuid.Nil {
		s.branch = w.b.branchID
	}
	if s.customer == uuid.Nil {
		s.customer = w.customer(s.branch, "Customer "+uuid.NewString()[:6])
	}
	return fixture.New(w.t, w.b.db.Pool).Claim(fixture.Claim{Branch: s.branch, Customer: s.customer, Status: s.status,
		Policy: s.policy, CreatedAt: s.created, PaidAt: s.paidAt, AmountPaid: s.amountPaid, Premium: s.premium, SettledAt: s.settled})
}

// task inserts a follow-up of claim; assignee may be uuid.Nil (for open and cancelled tasks).
func (w *screenWorld) task(claim uuid.UUID, assignee uuid.UUID, status string, created time.Time) uuid.UUID {
	w.t.Helper()
	return fixture.New(w.t, w.b.db.Pool).Task(fixture.Task{Claim: claim, Assignee: assignee, Status: status, CreatedAt: created})
}

func (w *screenWorld) document(claim, uploader uuid.UUID, status string) uuid.UUID {
	w.t.Helper()
	return fixture.New(w.t, w.b.db.Pool).Document(claim, uploader, status)
}

func (w *screenWorld) note(task, author uuid.UUID, body string) uuid.UUID {
	w.t.Helper()
	return fixture.New(w.t, w.b.db.Pool).Note(task, author, body)
}

// get fetches path as u and decodes a 200 answer into v.
func (w *screenWorld) get(u screenUser, path string, v any) {
	w.t.Helper()
	r := w.b.do(w.t, "GET", path, u.token, nil)
	expect(w.t, r, http.StatusOK, "")
	r.json(w.t, v)
}

// screenWantError fails unless r is the error shape with status, code and, when field is not empty,
// details.field.
func screenWantError(t *testing.T, r response, status int, code, field string) {
	t.Helper()
	expect(t, r, status, code)
	if field == "" {
		return
	}
	var e struct {
		Error struct {
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	r.json(t, &e)
	if e.Error.Details["field"] != field {
		t.Fatalf("details.field %v, want %q: %s", e.Error.Details["field"], field, r.body)
	}
}

type screenPage[T any] struct {
	Items   []T    `json:"items"`
	HasMore bool   `json:"has_more"`
	Next    string `json:"next"`
}

// screenAllPages follows a list's pages of limit items from path (which has a query string) and returns
// every item, checking that each page but the last is full and says so.
func screenAllPages[T any](w *screenWorld, u screenUser, path string, limit int) []T {
	w.t.Helper()
	var out []T
	after := ""
	for range 100 {
		p := fmt.Sprintf("%s&limit=%d", path, limit)
		if after != "" {
			p += "&after=" + url.QueryEscape(after)
		}
		var page screenPage[T]
		w.get(u, p, &page)
		out = append(out, page.Items...)
		if !page.HasMore {
			if page.Next != "" {
				w.t.Fatalf("last page of %s has a next cursor", path)
			}
			return out
		}
		if len(page.Items) != limit || page.Next == "" {
			w.t.Fatalf("page of %s with more to come has %d items (limit %d) and next %q", path, len(page.Items), limit, page.Next)
		}
		after = page.Next
	}
	w.t.Fatalf("%s does not end", path)
	return nil
}

type screenClaimItem struct {
	Claim    map[string]any `json:"claim"`
	Customer map[string]any `json:"customer"`
}

type screenQueueItem struct {
	Claim    map[string]any `json:"claim"`
	Customer map[string]any `json:"customer"`
	Awaiting int            `json:"documents_awaiting_review"`
	Docs     int            `json:"documents"`
}

type screenTaskItem struct {
	Task         map[string]any `json:"task"`
	ClaimNumber  string         `json:"claim_number"`
	AssigneeName *string        `json:"assignee_name"`
}

// screenIDs returns the "id" of each record that key picks out of the items.
func screenIDs[T any](items []T, key func(T) map[string]any) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i], _ = key(it)["id"].(string)
	}
	return out
}

func screenClaimOf(it screenClaimItem) map[string]any { return it.Claim }
func screenQueueClaimOf(it screenQueueItem) map[string]any {
	return it.Claim
}
func screenTaskOf(it screenTaskItem) map[string]any { return it.Task }

// screenWantOrder fails unless got holds exactly want, in that order, without repeats.
func screenWantOrder(t *testing.T, what string, got []string, want ...uuid.UUID) {
	t.Helper()
	ws := make([]string, len(want))
	for i, id := range want {
		ws[i] = id.String()
	}
	if !slices.Equal(got, ws) {
		t.Fatalf("%s: got %v, want %v", what, got, ws)
	}
}

// screenWantSet fails unless got and want hold the same ids, in any order, got without repeats.
func screenWantSet(t *testing.T, what string, got []string, want ...uuid.UUID) {
	t.Helper()
	g := slices.Clone(got)
	slices.Sort(g)
	if len(slices.Compact(slices.Clone(g))) != len(g) {
		t.Fatalf("%s: repeated screenIDs in %v", what, got)
	}
	ws := make([]string, len(want))
	for i, id := range want {
		ws[i] = id.String()
	}
	slices.Sort(ws)
	if !slices.Equal(g, ws) {
		t.Fatalf("%s: got %v, want %v", what, g, ws)
	}
}

// screenResult is a command's answer: a push result.
type screenResult struct {
	ID        string           `json:"id"`
	Status    string           `json:"status"`
	Version   int64            `json:"version"`
	Entity    map[string]any   `json:"entity"`
	Conflicts []screenConflict `json:"conflicts"`
}

type screenConflict struct {
	Field  string `json:"field"`
	Yours  any    `json:"yours"`
	Theirs any    `json:"theirs"`
	Kept   string `json:"kept"`
	Rule   string `json:"rule"`
}

// command posts body to path as u and returns the 200 result.
func (w *screenWorld) command(u screenUser, path string, body any) screenResult {
	w.t.Helper()
	r := w.b.do(w.t, "POST", path, u.token, body)
	expect(w.t, r, http.StatusOK, "")
	var res screenResult
	r.json(w.t, &res)
	if res.Entity == nil || res.Version == 0 || res.ID == "" {
		w.t.Fatalf("result without entity, version or id: %s", r.body)
	}
	return res
}

// screenWantConflict fails unless res is a conflict with an entry for field kept as theirs by rule.
func screenWantConflict(t *testing.T, res screenResult, field, rule string) {
	t.Helper()
	if res.Status != "conflict" {
		t.Fatalf("status %q, want conflict: %+v", res.Status, res)
	}
	for _, c := range res.Conflicts {
		if c.Field == field {
			if c.Rule != rule || c.Kept != "theirs" {
				t.Fatalf("conflict on %s: %+v, want rule %s kept theirs", field, c, rule)
			}
			return
		}
	}
	t.Fatalf("no conflict on %s: %+v", field, res.Conflicts)
}

func screenStr(v any) string {
	s, _ := v.(string)
	return s
}

// stateOf reads a record's current row as JSON, to check what a command wrote.
func (w *screenWorld) stateOf(table string, id uuid.UUID) map[string]any {
	w.t.Helper()
	var data []byte
	if err := w.b.db.Pool.QueryRow(context.Background(), `SELECT to_jsonb(t) FROM `+table+` t WHERE id = $1`, id).Scan(&data); err != nil {
		w.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		w.t.Fatal(err)
	}
	return m
}

func TestScreensRoles(t *testing.T) {
	t.Parallel()
	w := newScreenWorld(t)
	claim, _ := w.claim(screenClaimSpec{})
	task := w.task(claim, w.rep.id, "assigned", time.Time{})
	doc := w.document(claim, w.rep.id, "uploaded")
	reads := []string{"/v1/review-queue", "/v1/claims", "/v1/claims/" + claim.String(), "/v1/tasks", "/v1/conflicts", "/v1/branch/figures"}
	taskCommands := []string{"/v1/tasks/" + task.String() + "/assign", "/v1/tasks/" + task.String() + "/cancel", "/v1/tasks/" + task.String() + "/reopen"}
	processorCommands := []string{"/v1/documents/" + doc.String() + "/review", "/v1/claims/" + claim.String() + "/decision", "/v1/claims/" + claim.String() + "/payment"}

	for _, p := range reads {
		expect(t, w.b.do(t, "GET", p, "", nil), http.StatusUnauthorized, "token_invalid")
		expect(t, w.b.do(t, "GET", p, w.rep.token, nil), http.StatusForbidden, "forbidden")
		expect(t, w.b.do(t, "GET", p, w.manager.token, nil), http.StatusOK, "")
		if p == "/v1/conflicts" {
			expect(t, w.b.do(t, "GET", p, w.processor.token, nil), http.StatusForbidden, "forbidden")
		} else {
			expect(t, w.b.do(t, "GET", p, w.processor.token, nil), http.StatusOK, "")
		}
	}
	body := map[string]any{"assignee_id": w.rep2.id, "decision": "approved", "amount_paid": 10}
	for _, p := range append(taskCommands, processorCommands...) {
		expect(t, w.b.do(t, "POST", p, "", body), http.StatusUnauthorized, "token_invalid")
		expect(t, w.b.do(t, "POST", p, w.rep.token, body), http.StatusForbidden, "forbidden")
	}
	for _, p := range taskCommands {
		expect(t, w.b.do(t, "POST", p, w.processor.token, body), http.StatusForbidden, "forbidden")
	}
	for _, p := range processorCommands {
		expect(t, w.b.do(t, "POST", p, w.manager.token, body), http.StatusForbidden, "forbidden")
	}
	// Nothing of it was written.
	if s := w.stateOf("tasks", task); s["assignee_id"] != w.rep.id.String() || s["status"] != "assigned" {
		t.Fatalf("task changed by refused commands: %v", s)
	}
	if s := w.stateOf("claims", claim); s["status"] != "under_review" {
		t.Fatalf("claim changed by refused commands: %v", s)
	}
}

func TestScreenClaimsFilterSearchAndPage(t *testing.T) {
	t.Parallel()
	w := newScreenWorld(t)
	base := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	ana := w.customer(w.b.branchID, "Ana Lima")
	bruno := w.customer(w.b.branchID, "Bruno 100% Silva")
	// Eight claims; three share a creation time, so the id orders them.
	type made struct {
		id     uuid.UUID
		number string
	}
	var claims []made
	specs := []screenClaimSpec{
		{customer: ana, status: "reported", created: base},
		{customer: ana, status: "collecting", created: base.Add(time.Hour)},
		{customer: bruno, status: "under_review", created: base.Add(2 * time.Hour), policy: "POL-77-ABC"},
		{status: "under_review", created: base.Add(2 * time.Hour)},
		{status: "approved", created: base.Add(2 * time.Hour)},
		{status: "paid", created: base.Add(3 * time.Hour)},
		{status: "rejected", created: base.Add(4 * time.Hour)},
		{customer: bruno, status: "paid", created: base.Add(5 * time.Hour), settled: time.Now().Add(-60 * 24 * time.Hour), paidAt: time.Now().Add(-60 * 24 * time.Hour)},
	}
	for _, s := range specs {
		id, number := w.claim(s)
		claims = append(claims, made{id, number})
	}
	// Another branch's claim, matching every filter, is never listed.
	w.claim(screenClaimSpec{branch: w.other, customer: w.customer(w.other, "Ana Lima"), status: "under_review", created: base.Add(2 * time.Hour)})

	// Newest first; ties by id, descending.
	order := make([]int, len(claims))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := specs[b].created.Compare(specs[a].created); c != 0 {
			return c
		}
		return strings.Compare(claims[b].id.String(), claims[a].id.String())
	})
	want := make([]uuid.UUID, len(order))
	for i, k := range order {
		want[i] = claims[k].id
	}

	t.Run("pages chain in order without repeats", func(t *testing.T) {
		w := w.with(t)
		for _, limit := range []int{1, 3, 8, 200} {
			got := screenAllPages[screenClaimItem](w, w.manager, "/v1/claims?", limit)
			screenWantOrder(t, fmt.Sprintf("limit %d", limit), screenIDs(got, screenClaimOf), want...)
		}
		var page screenPage[screenClaimItem]
		w.get(w.manager, "/v1/claims", &page)
		if len(page.Items) != 8 || page.HasMore || page.Next != "" {
			t.Fatalf("default page: %d items, has_more %v", len(page.Items), page.HasMore)
		}
		it := page.Items[0]
		if it.Customer["id"] != it.Claim["customer_id"] || it.Customer["name"] == nil || it.Claim["number"] == nil || it.Claim["version"] == nil {
			t.Fatalf("item: %+v", it)
		}
		if _, hidden := it.Claim["field_versions"]; hidden {
			t.Fatalf("the claim carries the server's bookkeeping: %v", it.Claim)
		}
	})

	t.Run("status filter", func(t *testing.T) {
		w := w.with(t)
		paidOrRejected := screenAllPages[screenClaimItem](w, w.manager, "/v1/claims?status=paid,rejected", 2)
		screenWantSet(t, "comma list", screenIDs(paidOrRejected, screenClaimOf), claims[5].id, claims[6].id, claims[7].id)
		repeated := screenAllPages[screenClaimItem](w, w.manager, "/v1/claims?status=paid&status=rejected", 2)
		screenWantOrder(t, "repeated parameter", screenIDs(repeated, screenClaimOf), screenUUIDs(screenIDs(paidOrRejected, screenClaimOf))...)
		var one screenPage[screenClaimItem]
		w.get(w.manager, "/v1/claims?status=collecting", &one)
		screenWantOrder(t, "collecting", screenIDs(one.Items, screenClaimOf), claims[1].id)
	})

	t.Run("text search", func(t *testing.T) {
		w := w.with(t)
		cases := []struct {
			q    string
			want []uuid.UUID
		}{
			{"ana", []uuid.UUID{claims[0].id, claims[1].id}},
			{"  LIMA ", []uuid.UUID{claims[0].id, claims[1].id}},
			{"pol-77", []uuid.UUID{claims[2].id}},
			{strings.ToLower(claims[4].number), []uuid.UUID{claims[4].id}},
			{"100%", []uuid.UUID{claims[2].id, claims[7].id}},
			{"%", []uuid.UUID{claims[2].id, claims[7].id}}, // a literal %, not a wildcard
			{"_", nil},
			{"nobody", nil},
		}
		for _, c := range cases {
			var page screenPage[screenClaimItem]
			w.get(w.manager, "/v1/claims?q="+url.QueryEscape(c.q), &page)
			screenWantSet(t, "q="+c.q, screenIDs(page.Items, screenClaimOf), c.want...)
		}
		var page screenPage[screenClaimItem]
		w.get(w.manager, "/v1/claims?q=ana&status=collecting", &page)
		screenWantOrder(t, "q and status", screenIDs(page.Items, screenClaimOf), claims[1].id)
	})

	t.Run("a processor sees their queue and recent settlements", func(t *testing.T) {
		w := w.with(t)
		got := screenAllPages[screenClaimItem](w, w.processor, "/v1/claims?", 2)
		// Not the reported claim, nor the one settled 60 days ago (the window is 30).
		screenWantSet(t, "processor", screenIDs(got, screenClaimOf), claims[1].id, claims[2].id, claims[3].id, claims[4].id, claims[5].id, claims[6].id)
		var page screenPage[screenClaimItem]
		w.get(w.otherManager, "/v1/claims", &page)
		if len(page.Items) != 1 || page.Items[0].Claim["branch_id"] != w.other.String() {
			t.Fatalf("the other branch's manager sees: %+v", page.Items)
		}
	})

	t.Run("bad parameters", func(t *testing.T) {
		w := w.with(t)
		var page screenPage[screenClaimItem]
		w.get(w.manager, "/v1/claims?limit=2", &page)
		var tasks screenPage[screenTaskItem]
		w.get(w.manager, "/v1/tasks?limit=1", &tasks)
		w.task(claims[0].id, uuid.Nil, "open", time.Time{})
		w.task(claims[0].id, uuid.Nil, "open", time.Time{})
		w.get(w.manager, "/v1/tasks?limit=1", &tasks)
		cases := []struct{ query, code, field string }{
			{"limit=0", "invalid_value", "limit"},
			{"limit=201", "invalid_value", "limit"},
			{"limit=ten", "invalid_value", "limit"},
			{"status=lost", "invalid_value", "status"},
			{"status=paid,lost", "invalid_value", "status"},
			{"q=" + strings.Repeat("x", 101), "invalid_value", "q"},
			{"q=a%00b", "invalid_value", "q"},
			{"after=garbage", "invalid_value", "after"},
			{"after=" + url.QueryEscape(page.Next[:len(page.Next)-2]), "invalid_value", "after"},
			{"after=" + url.QueryEscape(tasks.Next), "invalid_value", "after"}, // another list's cursor
			{"stauts=paid", "unknown_field", "stauts"},
		}
		for _, c := range cases {
			screenWantError(t, w.b.do(t, "GET", "/v1/claims?"+c.query, w.manager.token, nil), http.StatusBadRequest, c.code, c.field)
		}
	})

	t.Run("a page stays put when newer claims arrive", func(t *testing.T) {
		w := w.with(t)
		var first screenPage[screenClaimItem]
		w.get(w.manager, "/v1/claims?limit=4", &first)
		w.claim(screenClaimSpec{created: base.Add(10 * time.Hour)})
		var second screenPage[screenClaimItem]
		w.get(w.manager, "/v1/claims?limit=4&after="+url.QueryEscape(first.Next), &second)
		screenWantOrder(t, "second page", screenIDs(second.Items, screenClaimOf), want[4:]...)
	})
}

func screenUUIDs(s []string) []uuid.UUID {
	out := make([]uuid.UUID, len(s))
	for i, v := range s {
		out[i] = uuid.MustParse(v)
	}
	return out
}

func TestScreenReviewQueue(t *testing.T) {
	t.Parallel()
	w := newScreenWorld(t)
	t0 := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	q1, _ := w.claim(screenClaimSpec{status: "under_review", created: t0})
	w.document(q1, w.rep.id, "uploaded")
	w.document(q1, w.rep.id, "uploaded")
	w.document(q1, w.rep.id, "approved")
	deleted := w.document(q1, w.rep.id, "uploaded")
	w.exec(`UPDATE documents SET deleted_at = now() WHERE id = $1`, deleted)
	q6, _ := w.claim(screenClaimSpec{status: "under_review", created: t0}) // ties with q1
	q2, _ := w.claim(screenClaimSpec{status: "collecting", created: t0.Add(time.Hour)})
	w.document(q2, w.rep.id, "uploaded")
	q3, _ := w.claim(screenClaimSpec{status: "collecting", created: t0.Add(2 * time.Hour)}) // nothing uploaded yet
	w.document(q3, w.rep.id, "pending_upload")
	w.document(q3, w.rep.id, "approved")
	q4, _ := w.claim(screenClaimSpec{status: "under_review", created: t0.Add(3 * time.Hour)})
	q5, _ := w.claim(screenClaimSpec{status: "approved", created: t0.Add(-time.Hour)}) // decided
	w.document(q5, w.rep.id, "uploaded")
	w.claim(screenClaimSpec{branch: w.other, status: "under_review", created: t0})

	first, second := q1, q6
	if q6.String() < q1.String() {
		first, second = q6, q1
	}
	for _, u := range []screenUser{w.processor, w.manager} {
		for _, limit := range []int{1, 2, 50} {
			got := screenAllPages[screenQueueItem](w, u, "/v1/review-queue?", limit)
			// Oldest first: not the collecting claim with nothing uploaded, nor the approved one.
			screenWantOrder(t, fmt.Sprintf("queue, limit %d", limit), screenIDs(got, screenQueueClaimOf), first, second, q2, q4)
			counts := map[string][2]int{}
			for _, it := range got {
				counts[screenStr(it.Claim["id"])] = [2]int{it.Awaiting, it.Docs}
				if it.Customer["id"] != it.Claim["customer_id"] {
					t.Fatalf("customer %v of claim %v", it.Customer["id"], it.Claim["customer_id"])
				}
			}
			if counts[q1.String()] != [2]int{2, 3} || counts[q6.String()] != [2]int{0, 0} || counts[q2.String()] != [2]int{1, 1} || counts[q4.String()] != [2]int{0, 0} {
				t.Fatalf("document counts: %v", counts)
			}
		}
	}
	screenWantError(t, w.b.do(t, "GET", "/v1/review-queue?limit=500", w.processor.token, nil), http.StatusBadRequest, "invalid_value", "limit")
	screenWantError(t, w.b.do(t, "GET", "/v1/review-queue?status=collecting", w.processor.token, nil), http.StatusBadRequest, "unknown_field", "status")
}

// pullSnapshot pulls u's whole scope, without a cursor, and returns the records by id.
func (w *screenWorld) pullSnapshot(u screenUser) map[string]map[string]any {
	w.t.Helper()
	out := map[string]map[string]any{}
	cursor := ""
	for range 100 {
		path := "/v1/sync/pull?limit=1000"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		var page struct {
			Changes []struct {
				ID   string         `json:"id"`
				Op   string         `json:"op"`
				Data map[string]any `json:"data"`
			} `json:"changes"`
			Cursor  string `json:"cursor"`
			HasMore bool   `json:"has_more"`
		}
		w.get(u, path, &page)
		for _, ch := range page.Changes {
			if ch.Op == "upsert" {
				out[ch.ID] = ch.Data
			}
		}
		if !page.HasMore {
			return out
		}
		cursor = page.Cursor
	}
	w.t.Fatal("the snapshot does not end")
	return nil
}

func TestScreenClaimDetail(t *testing.T) {
	t.Parallel()
	w := newScreenWorld(t)
	claim, number := w.claim(screenClaimSpec{status: "under_review"})
	t1 := w.task(claim, w.rep.id, "completed", time.Now().Add(-time.Hour))
	t2 := w.task(claim, w.rep2.id, "in_progress", time.Now())
	gone := w.task(claim, uuid.Nil, "open", time.Now())
	w.exec(`UPDATE tasks SET deleted_at = now() WHERE id = $1`, gone)
	n1 := w.note(t1, w.rep.id, "Customer asleep; came back later.")
	n2 := w.note(t2, w.rep2.id, "Invoice missing a stamp.")
	d1 := w.document(claim, w.rep.id, "uploaded")
	d2 := w.document(claim, w.rep.id, "approved")
	deletedDoc := w.document(claim, w.rep.id, "uploaded")
	w.exec(`UPDATE documents SET deleted_at = now() WHERE id = $1`, deletedDoc)
	// Another claim's records are not this one's.
	other, _ := w.claim(screenClaimSpec{status: "under_review"})
	w.note(w.task(other, w.rep.id, "assigned", time.Time{}), w.rep.id, "elsewhere")
	w.document(other, w.rep.id, "uploaded")

	type detail struct {
		Claim     map[string]any   `json:"claim"`
		Customer  map[string]any   `json:"customer"`
		Tasks     []map[string]any `json:"tasks"`
		Notes     []map[string]any `json:"notes"`
		Documents []map[string]any `json:"documents"`
		Truncated []string         `json:"truncated"`
	}
	list := func(items []map[string]any) []string {
		return screenIDs(items, func(m map[string]any) map[string]any { return m })
	}

	var d detail
	w.get(w.manager, "/v1/claims/"+claim.String(), &d)
	if d.Claim["id"] != claim.String() || d.Claim["number"] != number || d.Customer["id"] != d.Claim["customer_id"] || d.Truncated != nil {
		t.Fatalf("detail: %+v", d)
	}
	screenWantOrder(t, "tasks", list(d.Tasks), t1, t2)
	screenWantSet(t, "notes", list(d.Notes), n1, n2)
	screenWantSet(t, "documents", list(d.Documents), d1, d2)

	// The records are those a device receives.
	synced := w.pullSnapshot(w.manager)
	for _, rec := range append(append(append([]map[string]any{d.Claim, d.Customer}, d.Tasks...), d.Notes...), d.Documents...) {
		if !reflect.DeepEqual(rec, synced[screenStr(rec["id"])]) {
			t.Fatalf("screen record %v\ndiffers from the synced one %v", rec, synced[screenStr(rec["id"])])
		}
	}

	// A processor reviewing the claim reads the field's notes too, the rest the same.
	var pd detail
	w.get(w.processor, "/v1/claims/"+claim.String(), &pd)
	if len(pd.Notes) != len(d.Notes) || len(pd.Notes) == 0 {
		t.Fatalf("a processor sees notes %v, the manager %v", pd.Notes, d.Notes)
	}
	screenWantOrder(t, "processor's tasks", list(pd.Tasks), t1, t2)
	screenWantSet(t, "processor's documents", list(pd.Documents), d1, d2)

	// Outside the caller's scope is as if it did not exist.
	foreign, _ := w.claim(screenClaimSpec{branch: w.other, status: "under_review"})
	reported, _ := w.claim(screenClaimSpec{status: "reported"})
	for _, c := range []struct {
		u  screenUser
		id uuid.UUID
	}{{w.manager, foreign}, {w.processor, foreign}, {w.processor, reported}, {w.manager, uuid.New()}, {w.otherManager, claim}} {
		screenWantError(t, w.b.do(t, "GET", "/v1/claims/"+c.id.String(), c.u.token, nil), http.StatusNotFound, "not_found", "")
	}
	w.get(w.manager, "/v1/claims/"+reported.String(), &d)
	if d.Claim["status"] != "reported" || len(d.Tasks) != 0 || len(d.Documents) != 0 {
		t.Fatalf("reported claim: %+v", d)
	}
	screenWantError(t, w.b.do(t, "GET", "/v1/claims/not-a-uuid", w.manager.token, nil), http.StatusBadRequest, "invalid_value", "id")
	screenWantError(t, w.b.do(t, "GET", "/v1/claims/"+claim.String()+"?expand=all", w.manager.token, nil), http.StatusBadRequest, "unknown_field", "expand")
}

func TestScreenTasksFilterAndPage(t *testing.T) {
	t.Parallel()
	w := newScreenWorld(t)
	base := time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC)
	a, numberA := w.claim(screenClaimSpec{status: "collecting"})
	b, _ := w.claim(screenClaimSpec{status: "under_review"})
	reported, _ := w.claim(screenClaimSpec{status: "reported"})
	tasks := []uuid.UUID{
		w.task(a, uuid.Nil, "open", base),
		w.task(a, w.rep.id, "assigned", base.Add(time.Minute)),
		w.task(a, w.rep.id, "accepted", base.Add(2*time.Minute)),
		w.task(a, w.rep2.id, "completed", base.Add(2*time.Minute)),
		w.task(a, w.rep2.id, "cancelled", base.Add(3*time.Minute)),
		w.task(b, w.rep.id, "in_progress", base.Add(4*time.Minute)),
		w.task(b, w.rep2.id, "assigned", base.Add(5*time.Minute)),
		w.task(reported, w.rep.id, "assigned", base.Add(6*time.Minute)),
	}
	foreign, _ := w.claim(screenClaimSpec{branch: w.other, status: "under_review"})
	w.task(foreign, w.otherRep.id, "assigned", base)

	all := screenAllPages[screenTaskItem](w, w.manager, "/v1/tasks?", 200)
	if len(all) != 8 {
		t.Fatalf("manager sees %d tasks, want 8", len(all))
	}
	want := screenIDs(all, screenTaskOf)
	for _, limit := range []int{1, 3, 7} {
		screenWantOrder(t, fmt.Sprintf("limit %d", limit), screenIDs(screenAllPages[screenTaskItem](w, w.manager, "/v1/tasks?", limit), screenTaskOf), screenUUIDs(want)...)
	}
	if want[0] != tasks[7].String() || want[7] != tasks[0].String() {
		t.Fatalf("not newest first: %v", want)
	}
	for _, it := range all {
		if it.Task["id"] == tasks[1].String() && (it.ClaimNumber != numberA || it.AssigneeName == nil || *it.AssigneeName != w.rep.name) {
			t.Fatalf("item: %+v", it)
		}
		if it.Task["id"] == tasks[0].String() && it.AssigneeName != nil {
			t.Fatalf("an open task has an assignee name: %+v", it)
		}
	}

	cases := []struct {
		query string
		want  []uuid.UUID
	}{
		{"status=assigned", []uuid.UUID{tasks[1], tasks[6], tasks[7]}},
		{"status=assigned,accepted&status=open", []uuid.UUID{tasks[0], tasks[1], tasks[2], tasks[6], tasks[7]}},
		{"assignee_id=" + w.rep2.id.String(), []uuid.UUID{tasks[3], tasks[4], tasks[6]}},
		{"claim_id=" + b.String(), []uuid.UUID{tasks[5], tasks[6]}},
		{"claim_id=" + a.String() + "&assignee_id=" + w.rep.id.String() + "&status=accepted", []uuid.UUID{tasks[2]}},
		{"claim_id=" + foreign.String(), nil},
		{"assignee_id=" + w.otherRep.id.String(), nil},
	}
	for _, c := range cases {
		screenWantSet(t, c.query, screenIDs(screenAllPages[screenTaskItem](w, w.manager, "/v1/tasks?"+c.query, 2), screenTaskOf), c.want...)
	}
	// A processor sees the tasks of the claims in their queue: not those of the reported claim.
	screenWantSet(t, "processor", screenIDs(screenAllPages[screenTaskItem](w, w.processor, "/v1/tasks?", 3), screenTaskOf), tasks[:7]...)

	for _, c := range []struct{ query, code, field string }{
		{"status=done", "invalid_value", "status"},
		{"assignee_id=me", "invalid_value", "assignee_id"},
		{"claim_id=00000000-0000-0000-0000-000000000000", "invalid_value", "claim_id"},
		{"limit=-1", "invalid_value", "limit"},
		{"after=e30", "invalid_value", "after"},
		{"assignee=x", "unknown_field", "assignee"},
	} {
		screenWantError(t, w.b.do(t, "GET", "/v1/tasks?"+c.query, w.manager.token, nil), http.StatusBadRequest, c.code, c.field)
	}
}

func TestScreenAssignTask(t *testing.T) {
	t.Parallel()
	w := newScreenWorld(t)
	claim, _ := w.claim(screenClaimSpec{status: "collecting"})
	open := w.task(claim, uuid.Nil, "open", time.Time{})
	done := w.task(claim, w.rep.id, "completed", time.Time{})

	// rep2's device is in sync before the assignment.
	cursor := w.snapshotCursor(w.rep2)

	res := w.command(w.manager, "/v1/tasks/"+open.String()+"/assign", map[string]any{"assignee_id": w.rep.id})
	if res.Status != "applied" || res.Entity["assignee_id"] != w.rep.id.String() || res.Entity["status"] != "assigned" {
		t.Fatalf("assign: %+v", res)
	}
	// Reassigning with the version the screen shows.
	res = w.command(w.manager, "/v1/tasks/"+open.String()+"/assign", map[string]any{"assignee_id": w.rep2.id, "base_version": res.Version})
	if res.Status != "applied" || res.Entity["assignee_id"] != w.rep2.id.String() || res.Entity["status"] != "assigned" {
		t.Fatalf("reassign: %+v", res)
	}
	if s := w.stateOf("tasks", open); s["assignee_id"] != w.rep2.id.String() || int64(s["version"].(float64)) != res.Version {
		t.Fatalf("stored: %v", s)
	}
	// The same path as a push: the change log carries it to the new assignee's device.
	if got := w.pullChangesSince(w.rep2, cursor, open.String()); got[open.String()]["assignee_id"] != w.rep2.id.String() {
		t.Fatalf("rep2's pull after the assignment: %v", got)
	}

	// A finished task is not reassigned: reopen it.
	res = w.command(w.manager, "/v1/tasks/"+done.String()+"/assign", map[string]any{"assignee_id": w.rep2.id})
	screenWantConflict(t, res, "assignee_id", "status_state_machine")
	if res.Entity["assignee_id"] != w.rep.id.String() || res.Entity["status"] != "completed" {
		t.Fatalf("finished task changed: %+v", res.Entity)
	}

	path := "/v1/tasks/" + open.String() + "/assign"
	for _, c := range []struct {
		body        any
		status      int
		code, field string
	}{
		{map[string]any{"assignee_id": w.otherRep.id}, 400, "invalid_value", "assignee_id"},  // a rep of another branch
		{map[string]any{"assignee_id": w.processor.id}, 400, "invalid_value", "assignee_id"}, // not a rep
		{map[string]any{"assignee_id": uuid.New()}, 400, "invalid_value", "assignee_id"},
		{map[string]any{}, 400, "invalid_value", "assignee_id"},
		{map[string]any{"assignee_id": "rep-1"}, 400, "invalid_value", "assignee_id"},
		{map[string]any{"assignee_id": w.rep.id, "due": "today"}, 400, "unknown_field", "due"},
		{map[string]any{"assignee_id": w.rep.id, "base_version": 1 << 40}, 400, "invalid_value", "base_version"},
		{map[string]any{"assignee_id": w.rep.id, "base_version": 0}, 400, "invalid_value", "base_version"},
		{"", 400, "malformed_json", ""},
	} {
		screenWantError(t, w.b.do(t, "POST", path, w.manager.token, c.body), c.status, c.code, c.field)
	}
	if s := w.stateOf("tasks", open); s["assignee_id"] != w.rep2.id.String() {
		t.Fatalf("a refused assignment changed the task: %v", s)
	}
	foreign, _ := w.claim(screenClaimSpec{branch: w.other, status: "collecting"})
	foreignTask := w.task(foreign, w.otherRep.id, "assigned", time.Time{})
	screenWantError(t, w.b.do(t, "POST", "/v1/tasks/"+foreignTask.String()+"/assign", w.manager.token, map[string]any{"assignee_id": w.rep.id}), 403, "forbidden", "")
	screenWantError(t, w.b.do(t, "POST", "/v1/tasks/"+uuid.NewString()+"/assign", w.manager.token, map[string]any{"assignee_id": w.rep.id}), 404, "not_found", "id")
	screenWantError(t, w.b.do(t, "POST", "/v1/tasks/42/assign", w.manager.token, map[string]any{"assignee_id": w.rep.id}), 400, "invalid_value", "id")
}

// snapshotCursor pulls u's whole scope and returns the cursor after it.
func (w *screenWorld) snapshotCursor(u screenUser) string {
	w.t.Helper()
	cursor := ""
	for range 100 {
		path := "/v1/sync/pull?limit=1000"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		var page struct {
			Cursor  string `json:"cursor"`
			HasMore bool   `json:"has_more"`
		}
		w.get(u, path, &page)
		cursor = page.Cursor
		if !page.HasMore {
			return cursor
		}
	}
	w.t.Fatal("the snapshot does not end")
	return ""
}

// pullChangesSince pulls u's changes since cursor until the record waitFor has arrived and no page
// is left, and returns the upserted records by id. Every pull must answer 200.
func (w *screenWorld) pullChangesSince(u screenUser, cursor, waitFor string) map[string]map[string]any {
	w.t.Helper()
	out := map[string]map[string]any{}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var page struct {
			Changes []struct {
				ID   string         `json:"id"`
				Op   string         `json:"op"`
				Data map[string]any `json:"data"`
			} `json:"changes"`
			Cursor  string `json:"cursor"`
			HasMore bool   `json:"has_more"`
		}
		w.get(u, "/v1/sync/pull?wait=1&cursor="+url.QueryEscape(cursor), &page)
		for _, ch := range page.Changes {
			if ch.Op == "upsert" {
				out[ch.ID] = ch.Data
			}
		}
		cursor = page.Cursor
		if out[waitFor] != nil && !page.HasMore {
			return out
		}
	}
	w.t.Fatalf("%s did not arrive: %v", waitFor, out)
	return nil
}

func TestScreenCancelAndReopenTask(t *testing.T) {
	t.Parallel()
	w := newScreenWorld(t)
	claim, _ := w.claim(screenClaimSpec{status: "collecting"})
	assigned := w.task(claim, w.rep.id, "assigned", time.Time{})
	completed := w.task(claim, w.rep.id, "completed", time.Time{})
	open := w.task(claim, uuid.Nil, "open", time.Time{})

	// A rep in sync before the commands below, which touch tasks that are not theirs.
	cursor := w.snapshotCursor(w.rep2)

	// Cancel takes no body, or an empty object.
	r := w.b.do(t, "POST", "/v1/tasks/"+assigned.String()+"/cancel", w.manager.token, nil)
	expect(t, r, http.StatusOK, "")
	var res screenResult
	r.json(t, &res)
	if res.Status != "applied" || res.Entity["status"] != "cancelled" || res.Entity["finished_at"] == nil {
		t.Fatalf("cancel: %s", r.body)
	}
	again := w.command(w.manager, "/v1/tasks/"+assigned.String()+"/cancel", map[string]any{})
	if again.Status != "applied" || again.Version != res.Version {
		t.Fatalf("cancelling a cancelled task changed it: %+v", again)
	}
	// A finished task is not cancelled: the state machine keeps it completed.
	res = w.command(w.manager, "/v1/tasks/"+completed.String()+"/cancel", map[string]any{})
	screenWantConflict(t, res, "status", "status_state_machine")
	if res.Entity["status"] != "completed" {
		t.Fatalf("completed task: %+v", res.Entity)
	}
	screenWantError(t, w.b.do(t, "POST", "/v1/tasks/"+completed.String()+"/cancel", w.manager.token, `{"reason": "x"}`), 400, "unknown_field", "reason")

	// Reopening a cancelled task gives it back to whoever held it.
	res = w.command(w.manager, "/v1/tasks/"+assigned.String()+"/reopen", nil)
	if res.Status != "applied" || res.Entity["status"] != "assigned" || res.Entity["assignee_id"] != w.rep.id.String() || res.Entity["finished_at"] != nil {
		t.Fatalf("reopen: %+v", res)
	}
	// A completed one, to another rep.
	res = w.command(w.manager, "/v1/tasks/"+completed.String()+"/reopen", map[string]any{"assignee_id": w.rep2.id})
	if res.Status != "applied" || res.Entity["status"] != "assigned" || res.Entity["assignee_id"] != w.rep2.id.String() {
		t.Fatalf("reopen to rep2: %+v", res)
	}
	// A cancelled task nobody held reopens open.
	w.command(w.manager, "/v1/tasks/"+open.String()+"/cancel", nil)
	res = w.command(w.manager, "/v1/tasks/"+open.String()+"/reopen", map[string]any{})
	if res.Status != "applied" || res.Entity["status"] != "open" || res.Entity["assignee_id"] != nil {
		t.Fatalf("reopen open: %+v", res)
	}
	// Changes of tasks nobody holds reach the branch's change log; a rep's pull passes over them.
	if got := w.pullChangesSince(w.rep2, cursor, completed.String()); got[open.String()] != nil || got[assigned.String()] != nil {
		t.Fatalf("rep2 received tasks not theirs: %v", got)
	}

	// An unfinished task is not reopened.
	res = w.command(w.manager, "/v1/tasks/"+assigned.String()+"/reopen", map[string]any{})
	screenWantConflict(t, res, "status", "status_state_machine")
	w.command(w.manager, "/v1/tasks/"+assigned.String()+"/cancel", nil)
	screenWantError(t, w.b.do(t, "POST", "/v1/tasks/"+assigned.String()+"/reopen", w.manager.token, map[string]any{"assignee_id": w.otherRep.id}),
		400, "invalid_value", "assignee_id")
	if s := w.stateOf("tasks", assigned); s["status"] != "cancelled" {
		t.Fatalf("a refused reopen changed the task: %v", s)
	}
}

func TestScreenReviewDocument(t *testing.T) {
	t.Parallel()
	w := newScreenWorld(t)
	claim, _ := w.claim(screenClaimSpec{status: "under_review"})
	doc := w.document(claim, w.rep.id, "uploaded")
	doc2 := w.document(claim, w.rep.id, "uploaded")
	pending := w.document(claim, w.rep.id, "pending_upload")
	path := func(id uuid.UUID) string { return "/v1/documents/" + id.String() + "/review" }

	res := w.command(w.processor, path(doc), map[string]any{"decision": "approved", "note": "Readable."})
	if res.Status != "applied" || res.Entity["status"] != "approved" || res.Entity["review_note"] != "Readable." ||
		res.Entity["reviewer_id"] != w.processor.id.String() || res.Entity["reviewed_at"] == nil {
		t.Fatalf("approve: %+v", res)
	}
	// A second processor deciding the same document: the first decision stands, with its note.
	second := w.command(w.processor2, path(doc), map[string]any{"decision": "rejected", "note": "Blurred."})
	screenWantConflict(t, second, "status", "first_decision_wins")
	screenWantConflict(t, second, "review_note", "first_decision_wins")
	if second.Entity["status"] != "approved" || second.Entity["review_note"] != "Readable." || second.Entity["reviewer_id"] != w.processor.id.String() {
		t.Fatalf("the second decision changed the document: %+v", second.Entity)
	}
	// The same decision again, without a note, changes nothing.
	same := w.command(w.processor2, path(doc), map[string]any{"decision": "approved"})
	if same.Status != "applied" || same.Version != res.Version {
		t.Fatalf("repeating the decision: %+v", same)
	}
	var recorded int
	if err := w.b.db.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM conflicts WHERE entity_id = $1 AND rule = 'first_decision_wins' AND user_id = $2`, doc, w.processor2.id).Scan(&recorded); err != nil {
		t.Fatal(err)
	}
	if recorded != 2 {
		t.Fatalf("%d conflicts recorded for the second decision, want 2 (status and note)", recorded)
	}

	// A rejection says why.
	screenWantError(t, w.b.do(t, "POST", path(doc2), w.processor.token, map[string]any{"decision": "rejected"}), 400, "invalid_value", "review_note")
	screenWantError(t, w.b.do(t, "POST", path(doc2), w.processor.token, map[string]any{"decision": "rejected", "note": strings.Repeat("x", 2001)}),
		400, "invalid_value", "review_note")
	res = w.command(w.processor, path(doc2), map[string]any{"decision": "rejected", "note": "Blurred; photograph it again."})
	if res.Entity["status"] != "rejected" || res.Entity["review_note"] != "Blurred; photograph it again." {
		t.Fatalf("reject: %+v", res)
	}
	// Nothing to review before the upload.
	res = w.command(w.processor, path(pending), map[string]any{"decision": "approved"})
	screenWantConflict(t, res, "status", "status_state_machine")
	if res.Entity["status"] != "pending_upload" {
		t.Fatalf("pending document: %+v", res.Entity)
	}

	for _, c := range []struct {
		body        any
		code, field string
	}{
		{map[string]any{"decision": "maybe"}, "invalid_value", "decision"},
		{map[string]any{"decision": "uploaded"}, "invalid_value", "decision"},
		{map[string]any{}, "invalid_value", "decision"},
		{map[string]any{"decision": "approved", "note": 7}, "invalid_value", "review_note"},
		{map[string]any{"decision": "approved", "status": "approved"}, "unknown_field", "status"},
	} {
		screenWantError(t, w.b.do(t, "POST", path(doc2), w.processor.token, c.body), 400, c.code, c.field)
	}
	// Documents of a claim outside the processor's queue, or of another branch, are not theirs.
	reported, _ := w.claim(screenClaimSpec{status: "reported"})
	early := w.document(reported, w.rep.id, "uploaded")
	foreign, _ := w.claim(screenClaimSpec{branch: w.other, status: "under_review"})
	foreignDoc := w.document(foreign, w.otherRep.id, "uploaded")
	for _, id := range []uuid.UUID{early, foreignDoc} {
		screenWantError(t, w.b.do(t, "POST", path(id), w.processor.token, map[string]any{"decision": "approved"}), 403, "forbidden", "")
		if s := w.stateOf("documents", id); s["status"] != "uploaded" {
			t.Fatalf("a refused review changed the document: %v", s)
		}
	}
	screenWantError(t, w.b.do(t, "POST", path(uuid.New()), w.processor.token, map[string]any{"decision": "approved"}), 404, "not_found", "id")
}

func TestScreenClaimDecisionAndPayment(t *testing.T) {
	t.Parallel()
	w := newScreenWorld(t)
	claim, _ := w.claim(screenClaimSpec{status: "under_review"})
	decide := "/v1/claims/" + claim.String() + "/decision"
	pay := "/v1/claims/" + claim.String() + "/payment"

	// Not approved yet: the payment is a conflict, and neither status nor amount is taken.
	res := w.command(w.processor, pay, map[string]any{"amount_paid": 125000})
	screenWantConflict(t, res, "status", "status_state_machine")
	screenWantConflict(t, res, "amount_paid", "status_state_machine")
	if res.Entity["status"] != "under_review" || res.Entity["amount_paid"] != nil || res.Entity["paid_at"] != nil {
		t.Fatalf("unapproved claim after a payment: %+v", res.Entity)
	}

	res = w.command(w.processor, decide, map[string]any{"decision": "approved", "note": "Covered by the policy."})
	if res.Status != "applied" || res.Entity["status"] != "approved" || res.Entity["decision_note"] != "Covered by the policy." ||
		res.Entity["processor_id"] != w.processor.id.String() {
		t.Fatalf("approve: %+v", res)
	}
	for _, c := range []struct {
		body        any
		code, field string
	}{
		{map[string]any{}, "invalid_value", "amount_paid"},
		{map[string]any{"amount_paid": nil}, "invalid_value", "amount_paid"},
		{map[string]any{"amount_paid": -5}, "invalid_value", "amount_paid"},
		{map[string]any{"amount_paid": 10.5}, "invalid_value", "amount_paid"},
		{map[string]any{"amount_paid": "100"}, "invalid_value", "amount_paid"},
		{map[string]any{"amount_paid": 100, "paid_at": "2026-01-01T00:00:00Z"}, "unknown_field", "paid_at"},
	} {
		screenWantError(t, w.b.do(t, "POST", pay, w.processor.token, c.body), 400, c.code, c.field)
	}
	before := time.Now().Add(-time.Minute)
	res = w.command(w.processor, pay, map[string]any{"amount_paid": 125000})
	if res.Status != "applied" || res.Entity["status"] != "paid" || res.Entity["amount_paid"] != float64(125000) {
		t.Fatalf("payment: %+v", res)
	}
	paidAt, err := time.Parse(time.RFC3339Nano, screenStr(res.Entity["paid_at"]))
	if err != nil || paidAt.Before(before) || res.Entity["settled_at"] == nil {
		t.Fatalf("paid_at %v settled_at %v", res.Entity["paid_at"], res.Entity["settled_at"])
	}
	// Paying again: the same amount changes nothing; another amount is refused.
	same := w.command(w.processor, pay, map[string]any{"amount_paid": 125000})
	if same.Status != "applied" || same.Version != res.Version {
		t.Fatalf("paying again: %+v", same)
	}
	other := w.command(w.processor2, pay, map[string]any{"amount_paid": 1})
	screenWantConflict(t, other, "amount_paid", "status_state_machine")
	if other.Entity["amount_paid"] != float64(125000) {
		t.Fatalf("a second payment changed the amount: %+v", other.Entity)
	}
	// A paid claim is not decided again.
	screenWantConflict(t, w.command(w.processor, decide, map[string]any{"decision": "rejected", "note": "No."}), "status", "status_state_machine")

	// Collecting: not ready to approve, but it may be rejected.
	collecting, _ := w.claim(screenClaimSpec{status: "collecting"})
	res = w.command(w.processor, "/v1/claims/"+collecting.String()+"/decision", map[string]any{"decision": "approved", "note": "Early."})
	screenWantConflict(t, res, "status", "status_state_machine")
	screenWantConflict(t, res, "decision_note", "status_state_machine")
	if res.Entity["decision_note"] != "" {
		t.Fatalf("the refused decision's note was taken: %+v", res.Entity)
	}
	res = w.command(w.processor, "/v1/claims/"+collecting.String()+"/decision", map[string]any{"decision": "rejected", "note": "Policy lapsed."})
	if res.Entity["status"] != "rejected" || res.Entity["settled_at"] == nil || res.Entity["decision_note"] != "Policy lapsed." {
		t.Fatalf("reject: %+v", res)
	}

	screenWantError(t, w.b.do(t, "POST", decide, w.processor.token, map[string]any{"decision": "paid"}), 400, "invalid_value", "decision")
	foreign, _ := w.claim(screenClaimSpec{branch: w.other, status: "approved"})
	screenWantError(t, w.b.do(t, "POST", "/v1/claims/"+foreign.String()+"/payment", w.processor.token, map[string]any{"amount_paid": 5}), 403, "forbidden", "")
	if s := w.stateOf("claims", foreign); s["status"] != "approved" {
		t.Fatalf("another branch's claim was paid: %v", s)
	}
	screenWantError(t, w.b.do(t, "POST", "/v1/claims/"+uuid.NewString()+"/decision", w.processor.token, map[string]any{"decision": "approved"}), 404, "not_found", "id")
}

func TestScreenConflicts(t *testing.T) {
	t.Parallel()
	w := newScreenWorld(t)
	claim, _ := w.claim(screenClaimSpec{status: "under_review"})
	doc := w.document(claim, w.rep.id, "uploaded")
	task := w.task(claim, w.rep.id, "completed", time.Time{})
	w.command(w.processor, "/v1/documents/"+doc.String()+"/review", map[string]any{"decision": "approved"})
	w.command(w.processor2, "/v1/documents/"+doc.String()+"/review", map[string]any{"decision": "rejected", "note": "Blurred."})
	w.command(w.manager, "/v1/tasks/"+task.String()+"/cancel", nil)
	// Another branch's conflict is not this branch's.
	foreign, _ := w.claim(screenClaimSpec{branch: w.other, status: "collecting"})
	foreignTask := w.task(foreign, w.otherRep.id, "completed", time.Time{})
	w.command(w.otherManager, "/v1/tasks/"+foreignTask.String()+"/cancel", nil)

	type record struct {
		ID         string    `json:"id"`
		EntityType string    `json:"entity_type"`
		EntityID   string    `json:"entity_id"`
		Field      string    `json:"field"`
		Yours      any       `json:"yours"`
		Theirs     any       `json:"theirs"`
		Kept       string    `json:"kept"`
		Rule       string    `json:"rule"`
		MutationID *string   `json:"mutation_id"`
		UserID     *string   `json:"user_id"`
		UserName   *string   `json:"user_name"`
		DeviceID   *string   `json:"device_id"`
		ClientTime *string   `json:"client_time"`
		CreatedAt  time.Time `json:"created_at"`
	}
	var all []record
	for _, limit := range []int{1, 2, 50} {
		got := screenAllPages[record](w, w.manager, "/v1/conflicts?", limit)
		if all != nil && !reflect.DeepEqual(got, all) {
			t.Fatalf("limit %d pages differ: %+v vs %+v", limit, got, all)
		}
		all = got
	}
	if len(all) != 3 {
		t.Fatalf("%d conflicts, want 3: %+v", len(all), all)
	}
	// Newest first: the cancellation, then the second review's status and note.
	c := all[0]
	if c.EntityType != "task" || c.EntityID != task.String() || c.Field != "status" || c.Yours != "cancelled" || c.Theirs != "completed" ||
		c.Kept != "theirs" || c.Rule != "status_state_machine" || c.UserID == nil || *c.UserID != w.manager.id.String() ||
		c.UserName == nil || *c.UserName != w.manager.name || c.DeviceID == nil || c.MutationID == nil || c.CreatedAt.IsZero() {
		t.Fatalf("cancellation conflict: %+v", c)
	}
	fieldsSeen := []string{all[1].Field, all[2].Field}
	slices.Sort(fieldsSeen)
	for _, c := range all[1:] {
		if c.EntityType != "document" || c.EntityID != doc.String() || c.Rule != "first_decision_wins" || c.Kept != "theirs" ||
			c.UserID == nil || *c.UserID != w.processor2.id.String() {
			t.Fatalf("review conflict: %+v", c)
		}
		if c.Field == "status" && (c.Yours != "rejected" || c.Theirs != "approved") {
			t.Fatalf("review conflict values: %+v", c)
		}
	}
	if !slices.Equal(fieldsSeen, []string{"review_note", "status"}) {
		t.Fatalf("review conflict fields: %v", fieldsSeen)
	}
	if all[0].CreatedAt.Before(all[1].CreatedAt) {
		t.Fatalf("not newest first: %+v", all)
	}
	var otherPage screenPage[record]
	w.get(w.otherManager, "/v1/conflicts", &otherPage)
	if len(otherPage.Items) != 1 || otherPage.Items[0].EntityID != foreignTask.String() {
		t.Fatalf("the other branch's manager sees: %+v", otherPage.Items)
	}
	screenWantError(t, w.b.do(t, "GET", "/v1/conflicts?limit=1000", w.manager.token, nil), 400, "invalid_value", "limit")
}

func TestScreenBranchFigures(t *testing.T) {
	t.Parallel()
	w := newScreenWorld(t)
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	premium := func(n int64) *int64 { return &n }
	// Paid in March 2026: A (reported in February, premium known) and B (the last hour of March).
	w.claim(screenClaimSpec{status: "paid", created: at("2026-02-20T10:00:00Z"), paidAt: at("2026-03-05T00:00:00Z"), amountPaid: 1000, premium: premium(4000)})
	w.claim(screenClaimSpec{status: "paid", created: at("2026-03-02T10:00:00Z"), paidAt: at("2026-03-31T23:00:00Z"), amountPaid: 500})
	// Paid just outside March.
	w.claim(screenClaimSpec{status: "paid", created: at("2026-03-10T10:00:00Z"), paidAt: at("2026-04-01T00:00:00Z"), amountPaid: 700, premium: premium(1000)})
	w.claim(screenClaimSpec{status: "paid", created: at("2026-02-10T10:00:00Z"), paidAt: at("2026-02-28T23:59:59Z"), amountPaid: 300})
	// Reported in March, not paid.
	w.claim(screenClaimSpec{status: "under_review", created: at("2026-03-15T10:00:00Z")})
	w.claim(screenClaimSpec{status: "rejected", created: at("2026-03-20T10:00:00Z")})
	deleted, _ := w.claim(screenClaimSpec{status: "paid", created: at("2026-03-21T10:00:00Z"), paidAt: at("2026-03-22T00:00:00Z"), amountPaid: 50000})
	w.exec(`UPDATE claims SET deleted_at = now() WHERE id = $1`, deleted)
	// Another branch's March payout.
	w.claim(screenClaimSpec{branch: w.other, status: "paid", created: at("2026-03-03T10:00:00Z"), paidAt: at("2026-03-10T00:00:00Z"), amountPaid: 9999})

	type figures struct {
		BranchID       string           `json:"branch_id"`
		From           time.Time        `json:"from"`
		To             time.Time        `json:"to"`
		ClaimsReported int64            `json:"claims_reported"`
		ClaimsByStatus map[string]int64 `json:"claims_by_status"`
		Paid           struct {
			Claims            int64    `json:"claims"`
			Amount            int64    `json:"amount"`
			ClaimsWithPremium int64    `json:"claims_with_premium"`
			AmountWithPremium int64    `json:"amount_with_premium"`
			Premium           int64    `json:"premium"`
			PayoutRatio       *float64 `json:"payout_ratio"`
		} `json:"paid"`
	}
	var f figures
	// Dates: the end date is included.
	w.get(w.manager, "/v1/branch/figures?from=2026-03-01&to=2026-03-31", &f)
	if !f.From.Equal(at("2026-03-01T00:00:00Z")) || !f.To.Equal(at("2026-04-01T00:00:00Z")) || f.BranchID != w.b.branchID.String() {
		t.Fatalf("period: %+v", f)
	}
	if f.Paid.Claims != 2 || f.Paid.Amount != 1500 || f.Paid.ClaimsWithPremium != 1 || f.Paid.AmountWithPremium != 1000 ||
		f.Paid.Premium != 4000 || f.Paid.PayoutRatio == nil || *f.Paid.PayoutRatio != 0.25 {
		t.Fatalf("paid: %+v", f.Paid)
	}
	wantByStatus := map[string]int64{"reported": 0, "collecting": 0, "under_review": 1, "approved": 0, "paid": 2, "rejected": 1}
	if f.ClaimsReported != 4 || !reflect.DeepEqual(f.ClaimsByStatus, wantByStatus) {
		t.Fatalf("claims reported %d by status %v, want 4 %v", f.ClaimsReported, f.ClaimsByStatus, wantByStatus)
	}
	// A processor gets the same totals.
	var pf figures
	w.get(w.processor, "/v1/branch/figures?from=2026-03-01&to=2026-03-31", &pf)
	if !reflect.DeepEqual(pf, f) {
		t.Fatalf("processor's figures %+v differ from the manager's %+v", pf, f)
	}
	// Times: from inclusive, to exclusive.
	w.get(w.manager, "/v1/branch/figures?from=2026-03-05T00:00:00Z&to=2026-03-05T00:00:00.000001Z", &f)
	if f.Paid.Claims != 1 || f.Paid.Amount != 1000 {
		t.Fatalf("the instant of A: %+v", f.Paid)
	}
	w.get(w.manager, "/v1/branch/figures?from=2026-03-31T23:00:00.000001Z&to=2026-04-01T00:00:00Z", &f)
	if f.Paid.Claims != 0 || f.Paid.Amount != 0 || f.Paid.PayoutRatio != nil {
		t.Fatalf("an empty span: %+v", f.Paid)
	}
	// One end: a calendar month from it.
	w.get(w.manager, "/v1/branch/figures?from=2026-03-01", &f)
	if !f.To.Equal(at("2026-04-01T00:00:00Z")) || f.Paid.Amount != 1500 {
		t.Fatalf("from only: %+v", f)
	}
	w.get(w.manager, "/v1/branch/figures?to=2026-03-31", &f)
	if !f.From.Equal(at("2026-03-01T00:00:00Z")) || f.Paid.Amount != 1500 {
		t.Fatalf("to only: %+v", f)
	}

	// Without a period: this calendar month, which a payment made now joins.
	now := time.Now().UTC()
	monthStart := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	var before, after, explicit figures
	w.get(w.manager, "/v1/branch/figures", &before)
	if !before.From.Equal(monthStart) || !before.To.Equal(monthStart.AddDate(0, 1, 0)) {
		t.Fatalf("default period %v to %v, want the month from %v", before.From, before.To, monthStart)
	}
	approved, _ := w.claim(screenClaimSpec{status: "approved"})
	w.exec(`UPDATE claims SET premium = 10000 WHERE id = $1`, approved)
	w.command(w.processor, "/v1/claims/"+approved.String()+"/payment", map[string]any{"amount_paid": 2500})
	w.get(w.manager, "/v1/branch/figures", &after)
	if after.Paid.Claims != before.Paid.Claims+1 || after.Paid.Amount != before.Paid.Amount+2500 ||
		after.Paid.Premium != before.Paid.Premium+10000 || after.ClaimsByStatus["paid"] != before.ClaimsByStatus["paid"]+1 {
		t.Fatalf("a payment now: before %+v after %+v", before, after)
	}
	w.get(w.manager, "/v1/branch/figures?from="+monthStart.Format(time.RFC3339)+"&to="+monthStart.AddDate(0, 1, 0).Format(time.RFC3339), &explicit)
	if !reflect.DeepEqual(explicit, after) {
		t.Fatalf("explicit month %+v differs from the default %+v", explicit, after)
	}

	for _, c := range []struct{ query, code, field string }{
		{"from=yesterday", "invalid_value", "from"},
		{"to=2026-13-01", "invalid_value", "to"},
		{"from=1999-12-31", "invalid_value", "from"},
		{"from=2026-03-05&to=2026-03-01", "invalid_value", "to"},
		{"from=2026-03-02T00:00:00Z&to=2026-03-02T00:00:00Z", "invalid_value", "to"},
		{"period=march", "unknown_field", "period"},
	} {
		screenWantError(t, w.b.do(t, "GET", "/v1/branch/figures?"+c.query, w.manager.token, nil), 400, c.code, c.field)
	}
}
