package server_test

import (
	"fmt"
	"testing"

	"github.com/google/uuid"
)

// conflictFixture is a task of a rep's, with what it belongs to.
type conflictFixture struct {
	mgr, rep *syncUser
	customer uuid.UUID
	claim    uuid.UUID
	task     uuid.UUID
}

func newConflictFixture(t *testing.T, b *bundle) conflictFixture {
	t.Helper()
	f := conflictFixture{mgr: b.signIn(t, "manager", ""), rep: b.signIn(t, "rep", "")}
	f.customer = b.newCustomer(t, f.mgr)
	f.claim = b.newClaim(t, f.mgr, f.customer)
	f.task = b.newTask(t, f.mgr, f.claim, f.rep.id)
	return f
}

// TestSyncMergesDifferentFields: offline edits of different fields of one record merge; nobody
// loses a field they did not touch, and nothing is recorded as a conflict.
func TestSyncMergesDifferentFields(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := newConflictFixture(t, b)

	base := b.version(t, "tasks", f.task)
	b.pushOne(t, f.mgr, "applied", updateOp("task", f.task, base, syncFields{"title": "Collect the invoices", "instructions": "Ask at reception."}))
	res := b.pushOne(t, f.rep, "merged", updateOp("task", f.task, base, syncFields{"status": "accepted"}))
	if len(res.Conflicts) != 0 {
		t.Fatalf("conflicts: %s", res)
	}
	if res.Entity["title"] != "Collect the invoices" || res.Entity["instructions"] != "Ask at reception." || res.Entity["status"] != "accepted" {
		t.Fatalf("merged task: %v", res.Entity)
	}
	if res.Version != b.version(t, "tasks", f.task) || syncInt(res.Entity["version"]) != res.Version {
		t.Fatalf("result version %d, entity %v, stored %d", res.Version, res.Entity["version"], b.version(t, "tasks", f.task))
	}

	// The same on a customer: the manager renames, the rep (offline) fixes the phone.
	cbase := b.version(t, "customers", f.customer)
	b.pushOne(t, f.mgr, "applied", updateOp("customer", f.customer, cbase, syncFields{"name": "Jane Doe"}))
	res = b.pushOne(t, f.rep, "merged", updateOp("customer", f.customer, cbase, syncFields{"phone": "+49 170 000000"}))
	if res.Entity["name"] != "Jane Doe" || res.Entity["phone"] != "+49 170 000000" || res.Entity["address"] != "Main St 1" {
		t.Fatalf("merged customer: %v", res.Entity)
	}
	// Against an up-to-date base, the same kind of write is applied, not merged.
	b.pushOne(t, f.rep, "applied", updateOp("customer", f.customer, res.Version, syncFields{"address": "Side St 2"}))

	if rows := b.conflictsOf(t, f.task); len(rows) != 0 {
		t.Fatalf("recorded conflicts on the task: %+v", rows)
	}
	if rows := b.conflictsOf(t, f.customer); len(rows) != 0 {
		t.Fatalf("recorded conflicts on the customer: %+v", rows)
	}
}

// TestSyncSameFieldLastWriteWins: two sides change one field from the same base: the write the
// server takes last wins (whatever the device clocks say); the result says so and the conflict is
// recorded.
func TestSyncSameFieldLastWriteWins(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := newConflictFixture(t, b)

	base := b.version(t, "customers", f.customer)
	b.pushOne(t, f.mgr, "applied", updateOp("customer", f.customer, base, syncFields{"phone": "+1 111"}))
	m := updateOp("customer", f.customer, base, syncFields{"phone": "+2 222"})
	m["client_time"] = "2020-01-01T00:00:00Z" // an old device clock does not matter
	res := b.pushOne(t, f.rep, "merged", m)
	if res.Entity["phone"] != "+2 222" {
		t.Fatalf("customer: %v", res.Entity)
	}
	if len(res.Conflicts) != 1 {
		t.Fatalf("conflicts: %s", res)
	}
	c := res.Conflicts[0]
	if c.Field != "phone" || c.Yours != "+2 222" || c.Theirs != "+1 111" || c.Kept != "yours" || c.Rule != "last_write_wins" {
		t.Fatalf("conflict: %+v", c)
	}
	row := wantConflictRow(t, b.conflictsOf(t, f.customer), "phone", "last_write_wins", "yours", f.rep.id)
	if row.Yours != "+2 222" || row.Theirs != "+1 111" || row.ClientTime == nil || row.ClientTime.Year() != 2020 {
		t.Fatalf("recorded conflict: %+v", row)
	}
}

// TestSyncTaskStatusStateMachine: a rep completes offline a task the manager cancelled meanwhile:
// the cancellation stands, the rep is told why and given the server's record, and the rest of the
// mutation (the completion note) is applied.
func TestSyncTaskStatusStateMachine(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := newConflictFixture(t, b)

	accepted := b.pushOne(t, f.rep, "applied", updateOp("task", f.task, b.version(t, "tasks", f.task), syncFields{"status": "accepted"}))
	b.pushOne(t, f.mgr, "applied", updateOp("task", f.task, accepted.Version, syncFields{"status": "cancelled"}))

	res := b.pushOne(t, f.rep, "conflict", updateOp("task", f.task, accepted.Version, syncFields{"status": "completed", "completion_note": "Got everything."}))
	if res.Entity["status"] != "cancelled" || res.Entity["completion_note"] != "Got everything." {
		t.Fatalf("task after the conflict: %v", res.Entity)
	}
	if len(res.Conflicts) != 1 {
		t.Fatalf("conflicts: %s", res)
	}
	if c := res.Conflicts[0]; c.Field != "status" || c.Yours != "completed" || c.Theirs != "cancelled" || c.Kept != "theirs" || c.Rule != "status_state_machine" {
		t.Fatalf("conflict: %+v", c)
	}
	wantConflictRow(t, b.conflictsOf(t, f.task), "status", "status_state_machine", "theirs", f.rep.id)
	if res.Version != b.version(t, "tasks", f.task) {
		t.Fatalf("result version %d, stored %d", res.Version, b.version(t, "tasks", f.task))
	}

	// A status the rep may never take a task to, not even by moves in order, is held the same way.
	task2 := b.newTask(t, f.mgr, f.claim, f.rep.id)
	res = b.pushOne(t, f.rep, "conflict", updateOp("task", task2, b.version(t, "tasks", task2), syncFields{"status": "cancelled"}))
	if res.Entity["status"] != "assigned" || res.Conflicts[0].Rule != "status_state_machine" {
		t.Fatalf("a rep's cancellation: %s", res)
	}
	// Giving up needs a reason.
	b.wantRejected(t, f.rep, updateOp("task", task2, b.version(t, "tasks", task2), syncFields{"status": "cannot_complete"}), "invalid_value", "cannot_complete_reason")
	res = b.pushOne(t, f.rep, "applied", updateOp("task", task2, b.version(t, "tasks", task2),
		syncFields{"status": "cannot_complete", "cannot_complete_reason": "Patient discharged."}))
	if res.Entity["finished_at"] == nil {
		t.Fatalf("finished task: %v", res.Entity)
	}
}

// TestSyncSkippedStatusesAreWalked: a rep's offline accept then complete, sent as one status
// change by a state-based client (assigned → completed), is applied as the moves in order: the
// task is completed with its note, its acceptance is on record, and the manager is told it was
// completed, as if the two writes had been pushed one after the other.
func TestSyncSkippedStatusesAreWalked(t *testing.T) {
	t.Parallel()
	b := setup(t, withNotifications)
	f := newConflictFixture(t, b)

	base := b.version(t, "tasks", f.task)
	b.pushOne(t, f.mgr, "applied", updateOp("task", f.task, base, syncFields{"instructions": "Ring three times."}))
	res := b.pushOne(t, f.rep, "merged", updateOp("task", f.task, base, syncFields{"status": "completed", "completion_note": "All signed."}))
	if res.Entity["status"] != "completed" || res.Entity["completion_note"] != "All signed." || res.Entity["instructions"] != "Ring three times." ||
		res.Entity["finished_at"] == nil || len(res.Conflicts) != 0 {
		t.Fatalf("assigned → completed: %s", res)
	}
	if n := b.countRows(t, "tasks", "id = $1 AND accepted_at IS NOT NULL", f.task); n != 1 {
		t.Fatal("the task's acceptance is not on record")
	}
	if n := b.countRows(t, "changes", "entity_id = $1 AND version > $2 AND op = 'upsert'", f.task, base); n != 3 {
		t.Fatalf("%d changes of the task logged since the base, want 3: the manager's edit, the acceptance, the completion", n)
	}
	if n := b.countRows(t, "notifications", "user_id = $1 AND kind = 'task_completed' AND entity_id = $2", f.mgr.id, f.task); n != 1 {
		t.Fatalf("the manager has %d task_completed notifications, want 1", n)
	}
	if rows := b.conflictsOf(t, f.task); len(rows) != 0 {
		t.Fatalf("recorded conflicts: %+v", rows)
	}
}

// checklistOf returns a task record's checklist as key → done.
func checklistOf(t *testing.T, task map[string]any) map[string]bool {
	t.Helper()
	items, ok := task["checklist"].([]any)
	if !ok {
		t.Fatalf("checklist: %v", task["checklist"])
	}
	out := map[string]bool{}
	for _, it := range items {
		m := it.(map[string]any)
		out[m["key"].(string)] = m["done"].(bool)
	}
	return out
}

func fullChecklist(done map[string]bool, keys ...string) []map[string]any {
	var out []map[string]any
	for _, k := range keys {
		out = append(out, map[string]any{"key": k, "label": "Item " + k, "done": done[k]})
	}
	return out
}

// TestSyncChecklistMergesItemByItem: a checklist merges item by item. Two devices that each tick
// a different item, each sending the whole list as they last saw it, both keep their tick; a
// manager's stale list does not untick what a rep ticked; a rep who ticks an item the manager
// removed meanwhile gets a conflict, and the removal stands.
func TestSyncChecklistMergesItemByItem(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := newConflictFixture(t, b)

	base := b.version(t, "tasks", f.task)
	// Device 1 ticks a, device 2 (offline, same base) ticks b; both send the whole list.
	b.pushOne(t, f.rep, "applied", updateOp("task", f.task, base, syncFields{"checklist": fullChecklist(map[string]bool{"a": true}, "a", "b", "c")}))
	res := b.push(t, f.rep, updateOp("task", f.task, base, syncFields{"checklist": fullChecklist(map[string]bool{"b": true}, "a", "b", "c")}))[0]
	if res.Status == "rejected" {
		t.Fatalf("second tick: %s", res)
	}
	if got := checklistOf(t, res.Entity); !got["a"] || !got["b"] || got["c"] || len(got) != 3 {
		t.Fatalf("checklist after two ticks: %v (%s)", got, res)
	}
	for _, c := range res.Conflicts {
		if c.Kept == "yours" {
			t.Fatalf("the stale flag of a was taken over the other device's tick: %+v", c)
		}
	}
	// Only done is the rep's: the labels they send are not taken.
	res = b.pushOne(t, f.rep, "applied", updateOp("task", f.task, res.Version,
		syncFields{"checklist": []map[string]any{{"key": "c", "label": "Renamed by the rep", "done": true}}}))
	if got := checklistOf(t, res.Entity); !got["a"] || !got["b"] || !got["c"] {
		t.Fatalf("checklist after ticking c alone: %v", got)
	}
	for _, it := range res.Entity["checklist"].([]any) {
		if it.(map[string]any)["label"] == "Renamed by the rep" {
			t.Fatal("a rep renamed a checklist item")
		}
	}

	// The manager, looking at a list from before the ticks, renames c and adds d: the ticks stay.
	res = b.push(t, f.mgr, updateOp("task", f.task, base, syncFields{"checklist": []map[string]any{
		{"key": "a", "label": "Item a", "done": false}, {"key": "b", "label": "Item b", "done": false},
		{"key": "c", "label": "Item c, renamed", "done": false}, {"key": "d", "label": "Item d", "done": false}}}))[0]
	if res.Status == "rejected" {
		t.Fatalf("the manager's edit: %s", res)
	}
	got := checklistOf(t, res.Entity)
	if !got["a"] || !got["b"] || !got["c"] || got["d"] || len(got) != 4 {
		t.Fatalf("checklist after the manager's stale edit: %v (%s)", got, res)
	}

	// The manager removes c; the rep, who has not seen that, unticks c.
	before := b.version(t, "tasks", f.task)
	b.pushOne(t, f.mgr, "applied", updateOp("task", f.task, before, syncFields{"checklist": []map[string]any{
		{"key": "a", "label": "Item a", "done": true}, {"key": "b", "label": "Item b", "done": true}, {"key": "d", "label": "Item d", "done": false}}}))
	res = b.pushOne(t, f.rep, "conflict", updateOp("task", f.task, before, syncFields{"checklist": []map[string]any{{"key": "c", "label": "Item c", "done": false}}}))
	if got := checklistOf(t, res.Entity); len(got) != 3 || !got["a"] || !got["b"] {
		t.Fatalf("checklist after ticking a removed item: %v", got)
	}
	if len(res.Conflicts) != 1 || res.Conflicts[0].Field != "checklist.c" || res.Conflicts[0].Kept != "theirs" || res.Conflicts[0].Rule != "checklist_item" {
		t.Fatalf("conflicts: %s", res)
	}
	wantConflictRow(t, b.conflictsOf(t, f.task), "checklist.c", "checklist_item", "theirs", f.rep.id)
}

// TestSyncNotesAreAppendOnly: a note is written once; updating or deleting one is rejected, and a
// rep writes notes only on their own tasks.
func TestSyncNotesAreAppendOnly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := newConflictFixture(t, b)
	note := b.newNote(t, f.rep, f.task)
	v := b.version(t, "task_notes", note)

	b.wantRejected(t, f.rep, updateOp("task_note", note, v, syncFields{"body": "Edited"}), "forbidden_field", "body")
	b.wantRejected(t, f.mgr, updateOp("task_note", note, v, syncFields{"body": "Edited"}), "forbidden_field", "body")
	b.wantRejected(t, f.rep, deleteOp("task_note", note, v), "forbidden", "")
	b.wantRejected(t, f.mgr, deleteOp("task_note", note, v), "forbidden", "")
	if b.version(t, "task_notes", note) != v {
		t.Fatal("the note changed")
	}

	// Two notes written offline on one task at once never conflict.
	n1 := b.pushOne(t, f.rep, "applied", createOp("task_note", uuid.New(), syncFields{"task_id": f.task, "body": "First"}))
	n2 := b.pushOne(t, f.mgr, "applied", createOp("task_note", uuid.New(), syncFields{"task_id": f.task, "body": "Second"}))
	if n1.Entity["author_id"] != f.rep.id.String() || n2.Entity["author_id"] != f.mgr.id.String() {
		t.Fatalf("authors: %v, %v", n1.Entity, n2.Entity)
	}

	other := b.signIn(t, "rep", "")
	b.wantRejected(t, other, createOp("task_note", uuid.New(), syncFields{"task_id": f.task, "body": "Not mine"}), "forbidden", "task_id")
	// The author is the caller, never a field.
	b.wantRejected(t, f.rep, createOp("task_note", uuid.New(), syncFields{"task_id": f.task, "body": "x", "author_id": other.id}), "unknown_field", "author_id")
}

// TestSyncFieldOwnership: a mutation whose every field is owned by another role is rejected
// (forbidden_field), never merged: nothing of it is applied.
func TestSyncFieldOwnership(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := newConflictFixture(t, b)
	proc := b.signIn(t, "processor", "")
	other := b.signIn(t, "rep", "")
	doc := b.newDocument(t, f.rep, f.claim, f.task)
	b.markUploaded(t, doc)
	// The claim enters review so the processor may see it.
	b.pushOne(t, f.rep, "applied", updateOp("task", f.task, b.version(t, "tasks", f.task), syncFields{"status": "accepted"}))

	tv, dv, cv := b.version(t, "tasks", f.task), b.version(t, "documents", doc), b.version(t, "claims", f.claim)
	for _, tc := range []struct {
		who   *syncUser
		m     syncMutation
		field string
	}{
		{f.rep, updateOp("task", f.task, tv, syncFields{"assignee_id": other.id}), "assignee_id"},
		{f.rep, updateOp("task", f.task, tv, syncFields{"instructions": "Do less."}), "instructions"},
		{f.rep, updateOp("task", f.task, tv, syncFields{"due_at": "2030-01-01T00:00:00Z"}), "due_at"},
		// Every field forbidden: the first by name is named.
		{f.rep, updateOp("task", f.task, tv, syncFields{"title": "Mine now", "kind": "follow_up"}), "kind"},
		{proc, updateOp("task", f.task, tv, syncFields{"title": "Processor's title"}), "title"},
		{proc, updateOp("task", f.task, tv, syncFields{"status": "cancelled"}), "status"},
		{f.rep, updateOp("document", doc, dv, syncFields{"status": "approved"}), "status"},
		{f.rep, updateOp("document", doc, dv, syncFields{"review_note": "Looks fine"}), "review_note"},
		{f.mgr, updateOp("document", doc, dv, syncFields{"status": "approved"}), "status"},
		{f.rep, updateOp("claim", f.claim, cv, syncFields{"status": "under_review"}), "status"},
		{f.mgr, updateOp("claim", f.claim, cv, syncFields{"amount_paid": 100}), "amount_paid"},
		{f.mgr, updateOp("claim", f.claim, cv, syncFields{"status": "approved"}), "status"},
		{f.rep, updateOp("customer", f.customer, b.version(t, "customers", f.customer), syncFields{"agent_id": f.rep.id}), "agent_id"},
		{f.rep, createOp("task", uuid.New(), syncFields{"claim_id": f.claim, "kind": "follow_up", "title": "Self-assigned"}), "claim_id"},
		{proc, updateOp("customer", f.customer, b.version(t, "customers", f.customer), syncFields{"name": "Renamed"}), "name"},
	} {
		t.Run(fmt.Sprintf("%s writes %s.%s", tc.who.role, tc.m["type"], tc.field), func(t *testing.T) {
			b.wantRejected(t, tc.who, tc.m, "forbidden_field", tc.field)
		})
	}
	if b.version(t, "tasks", f.task) != tv || b.version(t, "documents", doc) != dv || b.version(t, "claims", f.claim) != cv {
		t.Fatal("a rejected mutation changed a record")
	}

	// The owners may.
	b.pushOne(t, f.mgr, "applied", updateOp("task", f.task, tv, syncFields{"instructions": "Do more.", "due_at": "2030-01-01T00:00:00Z"}))
	b.pushOne(t, proc, "applied", updateOp("document", doc, dv, syncFields{"status": "approved"}))
	b.pushOne(t, proc, "applied", updateOp("claim", f.claim, cv, syncFields{"amount_claimed": 50000}))
}

// TestSyncForbiddenFieldBesideAllowed: a field the role may not write, sent beside fields it may,
// is refused on its own (a forbidden_field conflict, recorded, the server's value kept) and the
// rest applies: the rep's phone change is not lost with the manager's field.
func TestSyncForbiddenFieldBesideAllowed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := newConflictFixture(t, b)
	other := b.signIn(t, "rep", "")

	cv := b.version(t, "customers", f.customer)
	res := b.pushOne(t, f.rep, "conflict", updateOp("customer", f.customer, cv,
		syncFields{"phone": "+49 170 111111", "name": "Renamed by the rep", "agent_id": other.id}))
	if res.Entity["phone"] != "+49 170 111111" || res.Entity["name"] == "Renamed by the rep" || res.Entity["agent_id"] == other.id.String() {
		t.Fatalf("customer after a mixed write: %v", res.Entity)
	}
	if res.Version != b.version(t, "customers", f.customer) || res.Version <= cv {
		t.Fatalf("result version %d, stored %d, before %d", res.Version, b.version(t, "customers", f.customer), cv)
	}
	if len(res.Conflicts) != 2 {
		t.Fatalf("conflicts: %s", res)
	}
	for i, field := range []string{"agent_id", "name"} {
		c := res.Conflicts[i]
		if c.Field != field || c.Kept != "theirs" || c.Rule != "forbidden_field" || c.Theirs != res.Entity[field] {
			t.Fatalf("conflict %d: %+v, want %s refused (the server's value kept)", i, c, field)
		}
	}
	if res.Conflicts[1].Yours != "Renamed by the rep" {
		t.Fatalf("the refused value: %+v", res.Conflicts[1])
	}
	rows := b.conflictsOf(t, f.customer)
	wantConflictRow(t, rows, "agent_id", "forbidden_field", "theirs", f.rep.id)
	wantConflictRow(t, rows, "name", "forbidden_field", "theirs", f.rep.id)

	// A task: the rep's status applies, the manager's title does not.
	b.pushOne(t, f.rep, "applied", updateOp("task", f.task, b.version(t, "tasks", f.task), syncFields{"status": "accepted"}))
	res = b.pushOne(t, f.rep, "conflict", updateOp("task", f.task, b.version(t, "tasks", f.task),
		syncFields{"status": "in_progress", "title": "Mine now"}))
	if res.Entity["status"] != "in_progress" || res.Entity["title"] == "Mine now" {
		t.Fatalf("task after a mixed write: %v", res.Entity)
	}
	if len(res.Conflicts) != 1 || res.Conflicts[0].Field != "title" || res.Conflicts[0].Rule != "forbidden_field" {
		t.Fatalf("conflicts: %s", res)
	}

	// A create: the document is made, without the status a rep may not give it.
	doc := uuid.New()
	res = b.pushOne(t, f.rep, "conflict", createOp("document", doc, syncFields{"claim_id": f.claim, "task_id": f.task, "kind": "invoice",
		"file_name": "invoice.jpg", "content_type": "image/jpeg", "status": "approved"}))
	if res.Entity["status"] != "pending_upload" || res.Entity["file_name"] != "invoice.jpg" {
		t.Fatalf("document created beside a forbidden field: %v", res.Entity)
	}
	if len(res.Conflicts) != 1 || res.Conflicts[0].Field != "status" || res.Conflicts[0].Theirs != "pending_upload" {
		t.Fatalf("conflicts: %s", res)
	}
	wantConflictRow(t, b.conflictsOf(t, doc), "status", "forbidden_field", "theirs", f.rep.id)

	// A field no role may write is refused the same way, and what the server keeps of it is not
	// said: the device is not sent it.
	res = b.pushOne(t, f.rep, "conflict", updateOp("document", doc, res.Version, syncFields{"kind": "photo", "object_key": "x/y"}))
	if res.Entity["kind"] != "photo" || len(res.Conflicts) != 1 || res.Conflicts[0].Field != "object_key" || res.Conflicts[0].Theirs != nil {
		t.Fatalf("a server-only field beside an allowed one: %s", res)
	}
}

// TestSyncFirstDocumentDecisionWins: two processors decide the same document at once: the first
// decision stands, and the second is told, with the conflict recorded.
func TestSyncFirstDocumentDecisionWins(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := newConflictFixture(t, b)
	p1, p2 := b.signIn(t, "processor", ""), b.signIn(t, "processor", "")
	doc := b.newDocument(t, f.rep, f.claim, f.task)
	b.markUploaded(t, doc)
	b.pushOne(t, f.rep, "applied", updateOp("task", f.task, b.version(t, "tasks", f.task), syncFields{"status": "accepted"}))

	base := b.version(t, "documents", doc)
	first := b.pushOne(t, p1, "applied", updateOp("document", doc, base, syncFields{"status": "approved"}))
	if first.Entity["reviewer_id"] != p1.id.String() || first.Entity["reviewed_at"] == nil {
		t.Fatalf("approved document: %v", first.Entity)
	}
	res := b.pushOne(t, p2, "conflict", updateOp("document", doc, base, syncFields{"status": "rejected", "review_note": "Blurry."}))
	if res.Entity["status"] != "approved" || res.Entity["reviewer_id"] != p1.id.String() {
		t.Fatalf("document after the second decision: %v", res.Entity)
	}
	// The reason belongs to the refused decision: it is not left on the approved document.
	if res.Entity["review_note"] != "" {
		t.Fatalf("the refused rejection's reason was kept: %v", res.Entity)
	}
	var status *syncConflict
	for i, c := range res.Conflicts {
		if c.Field == "status" {
			status = &res.Conflicts[i]
		}
	}
	if status == nil || status.Yours != "rejected" || status.Theirs != "approved" || status.Kept != "theirs" || status.Rule != "first_decision_wins" {
		t.Fatalf("conflicts: %s", res)
	}
	wantConflictRow(t, b.conflictsOf(t, doc), "status", "first_decision_wins", "theirs", p2.id)

	// The same decision twice is no conflict.
	b.pushOne(t, p2, "merged", updateOp("document", doc, base, syncFields{"status": "approved"}))
}

// TestSyncDeleteAgainstUpdate: a delete made against an old version loses to the update made
// meanwhile (update_wins); an update of a record deleted meanwhile is rejected (deleted, with
// delete_wins recorded); both are recorded.
func TestSyncDeleteAgainstUpdate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := newConflictFixture(t, b)
	doc := b.newDocument(t, f.rep, f.claim, f.task)
	b.pullAll(t, f.mgr)
	b.pullAll(t, f.rep)

	base := b.version(t, "documents", doc)
	renamed := b.pushOne(t, f.rep, "applied", updateOp("document", doc, base, syncFields{"file_name": "invoice-2.jpg"}))
	res := b.pushOne(t, f.rep, "conflict", deleteOp("document", doc, base))
	if res.Entity["file_name"] != "invoice-2.jpg" || res.Version != renamed.Version {
		t.Fatalf("stale delete: %s", res)
	}
	if len(res.Conflicts) != 1 || res.Conflicts[0].Field != "*" || res.Conflicts[0].Kept != "theirs" || res.Conflicts[0].Rule != "update_wins" {
		t.Fatalf("conflicts: %s", res)
	}
	wantConflictRow(t, b.conflictsOf(t, doc), "*", "update_wins", "theirs", f.rep.id)

	// A delete against the current version goes through; everyone holding it is told.
	b.pushOne(t, f.rep, "applied", deleteOp("document", doc, renamed.Version))
	wantDelete(t, "rep", b.pullAll(t, f.rep), "document", doc, "deleted")
	wantDelete(t, "manager", b.pullAll(t, f.mgr), "document", doc, "deleted")

	// An offline edit of it arrives afterwards.
	b.wantRejected(t, f.mgr, updateOp("document", doc, renamed.Version, syncFields{"kind": "photo"}), "deleted", "")
	rows := b.conflictsOf(t, doc)
	wantConflictRow(t, rows, "*", "update_wins", "theirs", f.rep.id)
	var deleteWins []conflictRow
	for _, c := range rows {
		if c.Rule == "delete_wins" {
			deleteWins = append(deleteWins, c)
		}
	}
	if len(deleteWins) != 1 || deleteWins[0].Kept != "theirs" || *deleteWins[0].User != f.mgr.id {
		t.Fatalf("delete_wins conflicts: %+v", deleteWins)
	}
	// Deleting it again changes nothing.
	b.pushOne(t, f.rep, "applied", deleteOp("document", doc, b.version(t, "documents", doc)))

	// Tasks are not deleted through push: managers cancel them.
	b.wantRejected(t, f.mgr, deleteOp("task", f.task, b.version(t, "tasks", f.task)), "forbidden", "")
}

// TestSyncRejectedCarriesRecord: a rejected result carries the server's record as the caller may
// see it, as the other results do, or says it is gone (deleted, out of the caller's scope, or never
// made), so that the device corrects its copy at once: its edit is not what the server holds.
func TestSyncRejectedCarriesRecord(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := newConflictFixture(t, b)
	other := b.signIn(t, "rep", "")

	// A bad value: the record as it is.
	b.pushOne(t, f.mgr, "applied", updateOp("task", f.task, b.version(t, "tasks", f.task), syncFields{"title": "Renamed meanwhile"}))
	res := b.wantRejected(t, f.rep, updateOp("task", f.task, b.version(t, "tasks", f.task)-1,
		syncFields{"status": "cannot_complete"}), "invalid_value", "cannot_complete_reason")
	if res.Version != b.version(t, "tasks", f.task) || res.Entity["title"] != "Renamed meanwhile" || res.Entity["status"] != "assigned" {
		t.Fatalf("a rejection's record: %s", res)
	}
	if _, hidden := res.Entity["field_versions"]; hidden {
		t.Fatalf("a rejection's record is not the allow-list's: %v", res.Entity)
	}

	// An update of a record deleted meanwhile: gone, deleted, at its version.
	doc := b.newDocument(t, f.rep, f.claim, f.task)
	dv := b.version(t, "documents", doc)
	b.pushOne(t, f.rep, "applied", deleteOp("document", doc, dv))
	res = b.wantRejected(t, f.rep, updateOp("document", doc, dv, syncFields{"file_name": "late.jpg"}), "deleted", "")
	if res.Gone != "deleted" || res.Version != b.version(t, "documents", doc) {
		t.Fatalf("an update of a deleted record: %s", res)
	}

	// Another rep's task: out of scope, and nothing of it is told.
	res = b.wantRejected(t, other, updateOp("task", f.task, 1, syncFields{"status": "accepted"}), "forbidden", "")
	if res.Gone != "out_of_scope" || res.Entity != nil {
		t.Fatalf("a rejection on a record out of scope: %s", res)
	}

	// A create refused: there is no record.
	res = b.wantRejected(t, f.rep, createOp("document", uuid.New(), syncFields{"claim_id": f.claim, "kind": "nonsense"}), "invalid_value", "kind")
	if res.Gone != "not_found" {
		t.Fatalf("a refused create: %s", res)
	}

	// A create with an id in use, and a reused mutation id: the record under that id.
	res = b.wantRejected(t, f.mgr, createOp("task", f.task, syncFields{"claim_id": f.claim, "kind": "follow_up", "title": "Again"}),
		"already_exists", "entity_id")
	if res.Entity["id"] != f.task.String() || res.Version != b.version(t, "tasks", f.task) {
		t.Fatalf("a create with a used id: %s", res)
	}
	m := updateOp("customer", f.customer, b.version(t, "customers", f.customer), syncFields{"phone": "+1 000"})
	first := b.pushOne(t, f.rep, "applied", m)
	m["fields"] = syncFields{"phone": "+1 999"}
	res = b.wantRejected(t, f.rep, m, "mutation_id_reused", "")
	if res.Version != first.Version || res.Entity["phone"] != "+1 000" {
		t.Fatalf("a reused mutation id: %s", res)
	}

	// A replay returns the rejection as stored, record included.
	m = updateOp("task", f.task, 1, syncFields{"status": "cannot_complete"})
	replay := b.push(t, f.rep, m)[0]
	b.pushOne(t, f.mgr, "applied", updateOp("task", f.task, b.version(t, "tasks", f.task), syncFields{"title": "Renamed again"}))
	again := b.push(t, f.rep, m)[0]
	if replay.String() != again.String() || again.Entity == nil {
		t.Fatalf("a replayed rejection: %s, first %s", again, replay)
	}
}
