package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	gosync "sync"
	"testing"

	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/google/uuid"
)

// countRows returns how many rows of table match where.
func (b *bundle) countRows(t *testing.T, table, where string, args ...any) int {
	t.Helper()
	var n int
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM `+table+` WHERE `+where, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// asJSON decodes data into a generic value, for comparing answers whatever their key order.
func asJSON(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return v
}

// TestSyncPushIsIdempotent: a push sent again (the phone never saw the answer) returns the same
// results and changes nothing; a mutation id is applied at most once, even by two pushes racing;
// the same id with other content is mutation_id_reused, and so is another user's id.
func TestSyncPushIsIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := newConflictFixture(t, b)
	note, doc := uuid.New(), uuid.New()
	base := b.version(t, "tasks", f.task)
	muts := []syncMutation{
		createOp("task_note", note, syncFields{"task_id": f.task, "body": "Arrived."}),
		updateOp("task", f.task, base, syncFields{"status": "accepted"}),
		updateOp("task", f.task, base, syncFields{"colour": "red"}), // rejected
		createOp("document", doc, syncFields{"claim_id": f.claim, "task_id": f.task, "kind": "id_card"}),
		updateOp("task", f.task, base, syncFields{"completion_note": "Merged against a stale base."}),
	}
	body := map[string]any{"mutations": muts}
	first := b.do(t, "POST", "/v1/sync/push", f.rep.token, body)
	expect(t, first, http.StatusOK, "")
	var res struct {
		Results []syncResult `json:"results"`
	}
	first.json(t, &res)
	for i, want := range []string{"applied", "applied", "rejected", "applied", "merged"} {
		if res.Results[i].Status != want {
			t.Fatalf("result %d: %s, want %s", i, res.Results[i], want)
		}
	}
	versions := map[string]int64{"tasks": b.version(t, "tasks", f.task), "task_notes": b.version(t, "task_notes", note),
		"documents": b.version(t, "documents", doc), "claims": b.version(t, "claims", f.claim)}
	changes := b.countRows(t, "changes", "true")

	again := b.do(t, "POST", "/v1/sync/push", f.rep.token, body)
	expect(t, again, http.StatusOK, "")
	if !reflect.DeepEqual(asJSON(t, first.body), asJSON(t, again.body)) {
		t.Fatalf("replay answered\n%s\nthe first answer was\n%s", again.body, first.body)
	}
	for table, v := range versions {
		id := map[string]uuid.UUID{"tasks": f.task, "task_notes": note, "documents": doc, "claims": f.claim}[table]
		if got := b.version(t, table, id); got != v {
			t.Fatalf("replay changed %s: version %d, was %d", table, got, v)
		}
	}
	if n := b.countRows(t, "changes", "true"); n != changes {
		t.Fatalf("replay logged %d changes", n-changes)
	}
	for _, m := range muts {
		if n := b.countRows(t, "applied_mutations", "id = $1", m["id"]); n != 1 {
			t.Fatalf("mutation %v stored %d times", m["id"], n)
		}
	}
	if n := b.countRows(t, "task_notes", "task_id = $1", f.task); n != 1 {
		t.Fatalf("%d notes", n)
	}

	// The same id with other content.
	reused := updateOp("task", f.task, base, syncFields{"status": "in_progress"})
	reused["id"] = muts[1]["id"]
	b.wantRejected(t, f.rep, reused, "mutation_id_reused", "")
	// Field values are compared as JSON, not as bytes: spacing does not make a new mutation.
	spaced := `{"mutations":[{"id":"` + muts[0]["id"].(uuid.UUID).String() + `","type":"task_note","op":"create","entity_id":"` + note.String() +
		`","fields":{"task_id":  "` + f.task.String() + `" ,"body":"Arrived."}}]}`
	r := b.do(t, "POST", "/v1/sync/push", f.rep.token, spaced)
	expect(t, r, http.StatusOK, "")
	if !strings.Contains(string(r.body), `"status":"applied"`) {
		t.Fatalf("respaced replay: %s", r.body)
	}
	// Someone else (here of another branch) sending this user's mutation, content and all, gets
	// nothing of theirs.
	other := b.signInAt(t, b.newBranch(t), "manager", "")
	stolen := b.do(t, "POST", "/v1/sync/push", other.token, map[string]any{"mutations": muts[3:4]})
	expect(t, stolen, http.StatusOK, "")
	if strings.Contains(string(stolen.body), `"entity"`) || !strings.Contains(string(stolen.body), "mutation_id_reused") {
		t.Fatalf("another user's replay: %s", stolen.body)
	}
	if b.version(t, "tasks", f.task) != versions["tasks"] {
		t.Fatal("a reused id changed the task")
	}

	// A retry racing its original: both answer the same, and it is applied once.
	race := []syncMutation{createOp("task_note", uuid.New(), syncFields{"task_id": f.task, "body": "Raced."})}
	var wg gosync.WaitGroup
	answers := make([]response, 2)
	errs := make([]error, 2)
	for i := range answers {
		wg.Go(func() {
			data, _ := json.Marshal(map[string]any{"mutations": race})
			req, err := http.NewRequest("POST", b.srv.URL+"/v1/sync/push", strings.NewReader(string(data)))
			if err != nil {
				errs[i] = err
				return
			}
			req.Header.Set("Authorization", "Bearer "+f.rep.token)
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			defer res.Body.Close()
			data, errs[i] = io.ReadAll(res.Body)
			answers[i] = response{status: res.StatusCode, body: data}
		})
	}
	wg.Wait()
	for i := range answers {
		if errs[i] != nil || answers[i].status != http.StatusOK {
			t.Fatalf("racing push %d: %v %d %s", i, errs[i], answers[i].status, answers[i].body)
		}
	}
	if !reflect.DeepEqual(asJSON(t, answers[0].body), asJSON(t, answers[1].body)) {
		t.Fatalf("racing pushes answered differently:\n%s\n%s", answers[0].body, answers[1].body)
	}
	if n := b.countRows(t, "task_notes", "task_id = $1 AND body = 'Raced.'", f.task); n != 1 {
		t.Fatalf("the raced note was written %d times", n)
	}
}

// TestSyncPushLimits: at most 1,000 mutations and 5 MB per push (413 payload_too_large beyond);
// every string has a length cap (invalid_value).
func TestSyncPushLimits(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *apptest.Setup) { o.MaxBodyBytes = 5 << 20 })
	f := newConflictFixture(t, b)
	tv := b.version(t, "tasks", f.task)

	many := func(n int) map[string]any {
		muts := make([]syncMutation, n)
		for i := range muts {
			muts[i] = createOp("task_note", uuid.New(), syncFields{"task_id": f.task, "body": "n"})
		}
		return map[string]any{"mutations": muts}
	}
	expect(t, b.do(t, "POST", "/v1/sync/push", f.rep.token, many(1001)), http.StatusRequestEntityTooLarge, "payload_too_large")
	if n := b.countRows(t, "task_notes", "task_id = $1", f.task); n != 0 {
		t.Fatalf("a push over the limit wrote %d notes", n)
	}
	r := b.do(t, "POST", "/v1/sync/push", f.rep.token, many(1000))
	expect(t, r, http.StatusOK, "")
	if n := b.countRows(t, "task_notes", "task_id = $1", f.task); n != 1000 {
		t.Fatalf("a push of 1,000 wrote %d notes", n)
	}

	huge := map[string]any{"mutations": []syncMutation{updateOp("task", f.task, tv, syncFields{"completion_note": strings.Repeat("x", 5<<20)})}}
	expect(t, b.do(t, "POST", "/v1/sync/push", f.rep.token, huge), http.StatusRequestEntityTooLarge, "payload_too_large")

	for _, tc := range []struct {
		who   *syncUser
		field string
		value any
	}{
		{f.mgr, "title", strings.Repeat("t", 201)},
		{f.mgr, "instructions", strings.Repeat("i", 10001)},
		{f.rep, "completion_note", strings.Repeat("é", 10001)},
		{f.rep, "cannot_complete_reason", strings.Repeat("r", 2001)},
		{f.mgr, "location_address", strings.Repeat("a", 501)},
		{f.mgr, "checklist", []map[string]any{{"key": "a", "label": strings.Repeat("l", 201)}}},
		{f.mgr, "checklist", func() []map[string]any {
			items := make([]map[string]any, 51)
			for i := range items {
				items[i] = map[string]any{"key": "k" + strings.Repeat("x", i), "label": "x"}
			}
			return items
		}()},
		{f.mgr, "checklist", []map[string]any{{"key": strings.Repeat("k", 51), "label": "x"}}},
	} {
		b.wantRejected(t, tc.who, updateOp("task", f.task, tv, syncFields{tc.field: tc.value}), "invalid_value", tc.field)
	}
	// At the cap is fine; the cap counts characters, not bytes.
	b.pushOne(t, f.rep, "applied", updateOp("task", f.task, tv, syncFields{"completion_note": strings.Repeat("é", 10000)}))
	b.wantRejected(t, f.mgr, updateOp("customer", f.customer, b.version(t, "customers", f.customer), syncFields{"phone": strings.Repeat("1", 51)}), "invalid_value", "phone")
	b.wantRejected(t, f.rep, createOp("task_note", uuid.New(), syncFields{"task_id": f.task, "body": strings.Repeat("b", 10001)}), "invalid_value", "body")
	b.wantRejected(t, f.rep, createOp("task_note", uuid.New(), syncFields{"task_id": f.task, "body": ""}), "invalid_value", "body")
	b.wantRejected(t, f.mgr, updateOp("task", f.task, tv, syncFields{"title": ""}), "invalid_value", "title")
}

// TestSyncPushSurvivesHostileText: text PostgreSQL cannot store (U+0000) is rejected as the
// client's mistake, wherever it hides: a field's value, a checklist label, a field's name (echoed
// in the stored result). Never a 500, which would wedge the phone's queue for good.
func TestSyncPushSurvivesHostileText(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := newConflictFixture(t, b)
	tv := b.version(t, "tasks", f.task)
	b.wantRejected(t, f.mgr, updateOp("task", f.task, tv, syncFields{"title": "a\u0000b"}), "invalid_value", "title")
	b.wantRejected(t, f.mgr, updateOp("task", f.task, tv, syncFields{"checklist": []map[string]any{{"key": "a", "label": "x\u0000"}}}), "invalid_value", "checklist")
	res := b.wantRejected(t, f.rep, updateOp("task", f.task, tv, syncFields{"st\u0000atus": "accepted"}), "unknown_field", "")
	if name, _ := res.Error.Details["field"].(string); name == "" || strings.ContainsRune(name, 0) {
		t.Fatalf("details: %s", res)
	}
	b.wantRejected(t, f.rep, syncMutation{"id": uuid.New(), "type": "ta\u0000sk", "op": "update", "entity_id": f.task, "base_version": tv,
		"fields": syncFields{"status": "accepted"}}, "unknown_type", "type")
	// The replay of such a push answers the same.
	m := updateOp("task", f.task, tv, syncFields{"\u0000": 1})
	first := b.push(t, f.rep, m)[0]
	again := b.push(t, f.rep, m)[0]
	if first.String() != again.String() || first.Status != "rejected" {
		t.Fatalf("replay: %s, then %s", first, again)
	}
	b.pushOne(t, f.rep, "applied", updateOp("task", f.task, tv, syncFields{"status": "accepted"}))

	// Claim intake too.
	r := b.do(t, "POST", "/v1/claims", f.mgr.token, map[string]any{"customer_id": f.customer, "policy_number": "P-1",
		"kind": "accident", "description": "broken\u0000"})
	expect(t, r, http.StatusBadRequest, "invalid_value")
}
