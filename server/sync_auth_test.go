package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// world is two branches with their people and work, for the authorisation tests.
type syncWorld struct {
	mgr1, repA, repB, proc1 *syncUser
	mgr2, rep2, proc2       *syncUser
	// records of each: type → ids
	onlyB, branch2 map[string][]uuid.UUID
	claimA, taskA  uuid.UUID
	claimB, taskB  uuid.UUID
	claim2, task2  uuid.UUID
}

func (w *syncWorld) add(m map[string][]uuid.UUID, typ string, id uuid.UUID) uuid.UUID {
	m[typ] = append(m[typ], id)
	return id
}

func newSyncWorld(t *testing.T, b *bundle) *syncWorld {
	t.Helper()
	w := &syncWorld{onlyB: map[string][]uuid.UUID{}, branch2: map[string][]uuid.UUID{}}
	w.mgr1, w.repA, w.repB, w.proc1 = b.signIn(t, "manager", ""), b.signIn(t, "rep", ""), b.signIn(t, "rep", ""), b.signIn(t, "processor", "")
	br2 := b.newBranch(t)
	w.mgr2, w.rep2, w.proc2 = b.signInAt(t, br2, "manager", ""), b.signInAt(t, br2, "rep", ""), b.signInAt(t, br2, "processor", "")
	w.branch2["user"] = []uuid.UUID{w.mgr2.id, w.rep2.id, w.proc2.id}

	custA := b.newCustomer(t, w.mgr1)
	w.claimA = b.newClaim(t, w.mgr1, custA)
	w.taskA = b.newTask(t, w.mgr1, w.claimA, w.repA.id)
	b.newNote(t, w.repA, w.taskA)
	b.newDocument(t, w.repA, w.claimA, w.taskA)

	custB := w.add(w.onlyB, "customer", b.newCustomer(t, w.mgr1))
	w.claimB = w.add(w.onlyB, "claim", b.newClaim(t, w.mgr1, custB))
	w.taskB = w.add(w.onlyB, "task", b.newTask(t, w.mgr1, w.claimB, w.repB.id))
	w.add(w.onlyB, "task_note", b.newNote(t, w.repB, w.taskB))
	w.add(w.onlyB, "document", b.newDocument(t, w.repB, w.claimB, w.taskB))
	// An unassigned task of A's claim is not A's either.
	w.add(w.onlyB, "task", b.newTask(t, w.mgr1, w.claimA, uuid.Nil))

	cust2 := w.add(w.branch2, "customer", b.newCustomer(t, w.mgr2))
	w.claim2 = w.add(w.branch2, "claim", b.newClaim(t, w.mgr2, cust2))
	w.task2 = w.add(w.branch2, "task", b.newTask(t, w.mgr2, w.claim2, w.rep2.id))
	w.add(w.branch2, "task_note", b.newNote(t, w.rep2, w.task2))
	w.add(w.branch2, "document", b.newDocument(t, w.rep2, w.claim2, w.task2))
	return w
}

// wantNone fails if changes mention any of ids.
func wantNoneOf(t *testing.T, who string, changes []syncChange, ids map[string][]uuid.UUID) {
	t.Helper()
	for typ, list := range ids {
		for _, id := range list {
			wantAbsent(t, who, changes, typ, id)
		}
	}
}

// wantOwnBranch fails unless every record in changes that names a branch names branch.
func wantOwnBranch(t *testing.T, who string, changes []syncChange, branch uuid.UUID) {
	t.Helper()
	for _, ch := range changes {
		if b, ok := ch.Data["branch_id"]; ok && b != nil && b != branch.String() {
			t.Fatalf("%s got %s %s of branch %v", who, ch.Type, ch.ID, b)
		}
	}
}

// TestSyncPullStaysInScope: a rep never receives another rep's task or what only that task brings,
// and nobody receives anything of another branch, in a snapshot or in the changes after it.
func TestSyncPullStaysInScope(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := newSyncWorld(t, b)

	// Everyone's processors see the review queue: start collection of every claim.
	for _, p := range []struct {
		rep  *syncUser
		task uuid.UUID
	}{{w.repA, w.taskA}, {w.repB, w.taskB}, {w.rep2, w.task2}} {
		b.pushOne(t, p.rep, "applied", updateOp("task", p.task, b.version(t, "tasks", p.task), syncFields{"status": "accepted"}))
	}

	snapshots := map[*syncUser][]syncChange{}
	for _, u := range []*syncUser{w.repA, w.mgr1, w.proc1, w.rep2, w.mgr2, w.proc2} {
		snapshots[u] = b.pullAll(t, u)
	}
	wantNoneOf(t, "rep A's snapshot", snapshots[w.repA], w.onlyB)
	wantNoneOf(t, "rep A's snapshot", snapshots[w.repA], w.branch2)
	wantUpsert(t, "rep A's snapshot", snapshots[w.repA], "task", w.taskA)
	wantUpsert(t, "rep A's snapshot", snapshots[w.repA], "user", w.repB.id) // names of the branch's users
	for _, u := range []*syncUser{w.mgr1, w.proc1} {
		wantNoneOf(t, u.role+" 1's snapshot", snapshots[u], w.branch2)
		wantUpsert(t, u.role+" 1's snapshot", snapshots[u], "task", w.taskB)
		wantOwnBranch(t, u.role+" 1", snapshots[u], b.branchID)
	}
	for _, u := range []*syncUser{w.rep2, w.mgr2, w.proc2} {
		wantUpsert(t, u.role+" 2's snapshot", snapshots[u], "task", w.task2)
		wantAbsent(t, u.role+" 2's snapshot", snapshots[u], "task", w.taskA)
		wantAbsent(t, u.role+" 2's snapshot", snapshots[u], "user", w.repA.id)
		wantOwnBranch(t, u.role+" 2", snapshots[u], u.branch)
	}
	wantOwnBranch(t, "rep A", snapshots[w.repA], b.branchID)

	// Then everyone works: B's and branch 2's changes never reach A, branch 1's never branch 2.
	b.pushOne(t, w.repB, "applied", updateOp("task", w.taskB, b.version(t, "tasks", w.taskB), syncFields{"status": "in_progress"}))
	w.add(w.onlyB, "task_note", b.newNote(t, w.repB, w.taskB))
	w.add(w.onlyB, "document", b.newDocument(t, w.repB, w.claimB, w.taskB))
	b.pushOne(t, w.mgr1, "applied", updateOp("task", w.taskB, b.version(t, "tasks", w.taskB), syncFields{"title": "B's, renamed"}))
	b.pushOne(t, w.rep2, "applied", updateOp("task", w.task2, b.version(t, "tasks", w.task2), syncFields{"status": "in_progress"}))
	w.add(w.branch2, "task_note", b.newNote(t, w.rep2, w.task2))
	b.pushOne(t, w.mgr2, "applied", updateOp("claim", w.claim2, b.version(t, "claims", w.claim2), syncFields{"description": "Branch 2's"}))
	b.pushOne(t, w.repA, "applied", updateOp("task", w.taskA, b.version(t, "tasks", w.taskA), syncFields{"status": "in_progress"}))

	changesA := b.pullAll(t, w.repA)
	wantUpsert(t, "rep A", changesA, "task", w.taskA)
	wantNoneOf(t, "rep A", changesA, w.onlyB)
	wantNoneOf(t, "rep A", changesA, w.branch2)
	for _, u := range []*syncUser{w.rep2, w.mgr2, w.proc2} {
		ch := b.pullAll(t, u)
		wantAbsent(t, u.role+" 2", ch, "task", w.taskA)
		wantAbsent(t, u.role+" 2", ch, "task", w.taskB)
		wantOwnBranch(t, u.role+" 2", ch, u.branch)
	}
	ch := b.pullAll(t, w.mgr1)
	wantUpsert(t, "manager 1", ch, "task", w.taskB)
	wantNoneOf(t, "manager 1", ch, w.branch2)

	// Roles without a device scope do not sync.
	integ := b.signInAt(t, uuid.Nil, "integration", "")
	expect(t, b.do(t, "GET", "/v1/sync/pull", integ.token, nil), http.StatusForbidden, "forbidden")
	expect(t, b.do(t, "POST", "/v1/sync/push", integ.token, map[string]any{"mutations": []any{}}), http.StatusForbidden, "forbidden")
	admin := b.signInAt(t, uuid.Nil, "admin", "")
	expect(t, b.do(t, "GET", "/v1/sync/pull", admin.token, nil), http.StatusForbidden, "forbidden")
	expect(t, b.do(t, "GET", "/v1/sync/pull", "", nil), http.StatusUnauthorized, "token_invalid")
}

// TestSyncPushAuthorisation: a push is authorised per record: a rep cannot write to another rep's
// task or claim, and nobody to another branch.
func TestSyncPushAuthorisation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := newSyncWorld(t, b)
	tb, cb := b.version(t, "tasks", w.taskB), b.version(t, "claims", w.claimB)

	b.wantRejected(t, w.repA, updateOp("task", w.taskB, tb, syncFields{"status": "accepted"}), "forbidden", "")
	b.wantRejected(t, w.repA, updateOp("task", w.taskB, tb, syncFields{"checklist": []map[string]any{{"key": "a", "label": "", "done": true}}}), "forbidden", "")
	b.wantRejected(t, w.repA, createOp("task_note", uuid.New(), syncFields{"task_id": w.taskB, "body": "Sneaky"}), "forbidden", "task_id")
	b.wantRejected(t, w.repA, createOp("document", uuid.New(), syncFields{"claim_id": w.claimB, "kind": "photo"}), "forbidden", "claim_id")
	// A document of A's own claim cannot name B's task.
	b.wantRejected(t, w.repA, createOp("document", uuid.New(), syncFields{"claim_id": w.claimA, "task_id": w.taskB, "kind": "photo"}), "forbidden", "task_id")
	b.wantRejected(t, w.repA, updateOp("claim", w.claimB, cb, syncFields{"description": "x"}), "forbidden_field", "description")
	// Another branch's manager sees nothing of this one.
	b.wantRejected(t, w.mgr2, updateOp("task", w.taskB, tb, syncFields{"title": "Taken over"}), "forbidden", "")
	b.wantRejected(t, w.mgr2, createOp("task", uuid.New(), syncFields{"claim_id": w.claimB, "kind": "follow_up", "title": "x"}), "forbidden", "claim_id")
	b.wantRejected(t, w.mgr2, updateOp("task", w.task2, b.version(t, "tasks", w.task2), syncFields{"assignee_id": w.repA.id}), "invalid_value", "assignee_id")
	b.wantRejected(t, w.mgr1, createOp("task", uuid.New(), syncFields{"claim_id": w.claimA, "kind": "follow_up", "title": "x", "assignee_id": w.mgr1.id}), "invalid_value", "assignee_id")
	if b.version(t, "tasks", w.taskB) != tb || b.version(t, "claims", w.claimB) != cb {
		t.Fatal("a forbidden write changed a record")
	}
	// The owner of the task can.
	b.pushOne(t, w.repB, "applied", updateOp("task", w.taskB, tb, syncFields{"status": "accepted"}))
}

// TestSyncPushRejectsBadMutations: unknown types and fields, and bad values, are rejected with
// stable codes naming the field; each rejection stops only its own mutation.
func TestSyncPushRejectsBadMutations(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := newConflictFixture(t, b)
	tv := b.version(t, "tasks", f.task)

	cases := []struct {
		m            syncMutation
		code, field  string
		who          *syncUser
		messageHints string
	}{
		{syncMutation{"id": uuid.New(), "type": "invoice", "op": "create", "entity_id": uuid.New(), "fields": syncFields{"x": 1}}, "unknown_type", "type", f.rep, ""},
		{updateOp("task", f.task, tv, syncFields{"colour": "red"}), "unknown_field", "colour", f.rep, "colour"},
		{updateOp("task", f.task, tv, syncFields{"finished_at": "2030-01-01T00:00:00Z"}), "unknown_field", "finished_at", f.mgr, ""},
		{updateOp("task", f.task, tv, syncFields{"version": 1}), "unknown_field", "version", f.mgr, ""},
		{updateOp("task", f.task, tv, syncFields{"status": "done"}), "invalid_value", "status", f.rep, "one of"},
		{updateOp("task", f.task, tv, syncFields{"status": 3}), "invalid_value", "status", f.rep, ""},
		{updateOp("task", f.task, tv, syncFields{"status": nil}), "invalid_value", "status", f.rep, ""},
		{updateOp("task", f.task, tv, syncFields{"due_at": "tomorrow"}), "invalid_value", "due_at", f.mgr, ""},
		{updateOp("task", f.task, tv, syncFields{"location_lat": 91}), "invalid_value", "location_lat", f.mgr, ""},
		{updateOp("task", f.task, tv, syncFields{"assignee_id": "not-a-uuid"}), "invalid_value", "assignee_id", f.mgr, ""},
		{updateOp("task", f.task, tv, syncFields{"checklist": []map[string]any{{"key": "Bad Key", "label": "x"}}}), "invalid_value", "checklist", f.mgr, ""},
		{updateOp("task", f.task, tv, syncFields{"checklist": []map[string]any{{"key": "a", "label": "x", "extra": 1}}}), "invalid_value", "checklist", f.mgr, ""},
		{updateOp("task", f.task, tv, syncFields{"checklist": []map[string]any{{"key": "a", "label": "x"}, {"key": "a", "label": "y"}}}), "invalid_value", "checklist", f.mgr, ""},
		{updateOp("task", f.task, tv, syncFields{}), "invalid_value", "fields", f.mgr, ""},
		{updateOp("task", f.task, tv+1000, syncFields{"title": "From the future"}), "invalid_value", "base_version", f.mgr, ""},
		{syncMutation{"id": uuid.New(), "type": "task", "op": "update", "entity_id": f.task, "fields": syncFields{"title": "x"}}, "invalid_value", "base_version", f.mgr, ""},
		{syncMutation{"id": uuid.New(), "type": "task", "op": "upsert", "entity_id": f.task, "base_version": tv}, "invalid_value", "op", f.mgr, ""},
		{syncMutation{"type": "task", "op": "update", "entity_id": f.task, "base_version": tv, "fields": syncFields{"title": "x"}}, "invalid_value", "id", f.mgr, ""},
		{syncMutation{"id": uuid.New(), "type": "task", "op": "update", "base_version": tv, "fields": syncFields{"title": "x"}}, "invalid_value", "entity_id", f.mgr, ""},
		{updateOp("task", uuid.New(), 1, syncFields{"title": "Nobody's"}), "not_found", "entity_id", f.mgr, ""},
		{createOp("task", f.task, syncFields{"claim_id": f.claim, "kind": "follow_up", "title": "Same id"}), "already_exists", "entity_id", f.mgr, ""},
		{createOp("task", uuid.New(), syncFields{"claim_id": f.claim, "kind": "follow_up"}), "invalid_value", "title", f.mgr, ""},
		{createOp("task", uuid.New(), syncFields{"claim_id": uuid.New(), "kind": "follow_up", "title": "x"}), "not_found", "claim_id", f.mgr, ""},
		{createOp("document", uuid.New(), syncFields{"claim_id": f.claim, "kind": "invoice", "sha256": "ABC"}), "invalid_value", "sha256", f.rep, ""},
		{deleteOp("document", uuid.New(), 1), "not_found", "entity_id", f.rep, ""},
		{syncMutation{"id": uuid.New(), "type": "document", "op": "delete", "entity_id": uuid.New(), "base_version": 1, "fields": syncFields{"kind": "x"}}, "invalid_value", "fields", f.rep, ""},
	}
	// All in one push per user, each rejection followed by a good mutation: a rejection stops only
	// itself. want[i] is nil for the good ones.
	type expectation struct{ code, field, hint string }
	pushes := map[*syncUser][]syncMutation{}
	wants := map[*syncUser][]*expectation{}
	notes := 0
	for _, c := range cases {
		pushes[c.who] = append(pushes[c.who], c.m)
		wants[c.who] = append(wants[c.who], &expectation{c.code, c.field, c.messageHints})
		pushes[c.who] = append(pushes[c.who], createOp("task_note", uuid.New(), syncFields{"task_id": f.task, "body": fmt.Sprint("note ", notes)}))
		wants[c.who] = append(wants[c.who], nil)
		notes++
	}
	for _, u := range []*syncUser{f.rep, f.mgr} {
		for i, r := range b.push(t, u, pushes[u]...) {
			w := wants[u][i]
			switch {
			case w == nil && r.Status != "applied":
				t.Errorf("the good mutation after a rejected one: %s", r)
			case w != nil && (r.Status != "rejected" || r.Error == nil || r.Error.Code != w.code || r.Error.Details["field"] != w.field ||
				!strings.Contains(r.Error.Message, w.hint)):
				t.Errorf("%v: want rejected %s (field %s), got %s", pushes[u][i], w.code, w.field, r)
			}
		}
	}
	if b.version(t, "tasks", f.task) != tv {
		t.Fatal("a rejected mutation changed the task")
	}
	var stored int
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM task_notes WHERE task_id = $1`, f.task).Scan(&stored); err != nil || stored != notes {
		t.Fatalf("%d notes, want %d (%v)", stored, notes, err)
	}

	// What is wrong with the push itself rejects the whole push.
	expect(t, b.do(t, "POST", "/v1/sync/push", f.rep.token, `{"mutations":[{"id":"`+uuid.NewString()+`","type":"task","op":"update","entity_id":"`+
		f.task.String()+`","base_version":1,"fields":{"title":"x"},"priority":1}]}`), http.StatusBadRequest, "unknown_field")
	expect(t, b.do(t, "POST", "/v1/sync/push", f.rep.token, `{"mutations":[{"id":"nope"}]}`), http.StatusBadRequest, "invalid_value")
	expect(t, b.do(t, "POST", "/v1/sync/push", f.rep.token, `{"mutations":`), http.StatusBadRequest, "malformed_json")
	expect(t, b.do(t, "POST", "/v1/sync/push", f.rep.token, `{}`), http.StatusBadRequest, "invalid_value")
	expect(t, b.do(t, "POST", "/v1/sync/push", f.rep.token, `{"mutations":[],"extra":true}`), http.StatusBadRequest, "unknown_field")
	r := b.do(t, "POST", "/v1/sync/push", f.rep.token, `{"mutations":[]}`)
	expect(t, r, http.StatusOK, "")
	if strings.TrimSpace(string(r.body)) != `{"results":[]}` {
		t.Fatalf("empty push: %s", r.body)
	}
}

// TestSyncPeopleNamedOnRecordsAreOfTheirBranch: a customer's agent is a rep of the customer's
// branch, a claim's processor a processor of it, on update as on create.
func TestSyncPeopleNamedOnRecordsAreOfTheirBranch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := newSyncWorld(t, b)
	cust := b.newCustomer(t, w.mgr1)
	cv := b.version(t, "customers", cust)
	b.wantRejected(t, w.mgr1, updateOp("customer", cust, cv, syncFields{"agent_id": w.rep2.id}), "invalid_value", "agent_id")
	b.wantRejected(t, w.mgr1, updateOp("customer", cust, cv, syncFields{"agent_id": w.proc1.id}), "invalid_value", "agent_id")
	b.wantRejected(t, w.mgr1, createOp("customer", uuid.New(), syncFields{"name": "X", "agent_id": w.rep2.id}), "invalid_value", "agent_id")
	b.pushOne(t, w.mgr1, "applied", updateOp("customer", cust, cv, syncFields{"agent_id": w.repA.id}))

	b.pushOne(t, w.repA, "applied", updateOp("task", w.taskA, b.version(t, "tasks", w.taskA), syncFields{"status": "accepted"}))
	kv := b.version(t, "claims", w.claimA)
	b.wantRejected(t, w.proc1, updateOp("claim", w.claimA, kv, syncFields{"processor_id": w.repA.id}), "invalid_value", "processor_id")
	b.wantRejected(t, w.proc1, updateOp("claim", w.claimA, kv, syncFields{"processor_id": w.proc2.id}), "invalid_value", "processor_id")
	other := b.signIn(t, "processor", "")
	res := b.pushOne(t, w.mgr1, "applied", updateOp("claim", w.claimA, kv, syncFields{"processor_id": other.id}))
	if res.Entity["processor_id"] != other.id.String() {
		t.Fatalf("claim: %v", res.Entity)
	}
}
