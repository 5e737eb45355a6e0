package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/google/uuid"
)

// TestSyncReassignMovesScope: a manager reassigns two of rep A's tasks to rep B. A's next pull
// removes, as out_of_scope, the tasks, their notes, and the claim, customer and documents A no
// longer needs, but not the claim A still holds through another task; B's next pull brings them
// all whole, though B's cursor is newer than every one of them.
func TestSyncReassignMovesScope(t *testing.T) {
	t.Parallel()
	b := setup(t)
	mgr := b.signIn(t, "manager", "")
	repA := b.signIn(t, "rep", "")
	repB := b.signIn(t, "rep", "")

	cust1, cust2 := b.newCustomer(t, mgr), b.newCustomer(t, mgr)
	claim1, claim2 := b.newClaim(t, mgr, cust1), b.newClaim(t, mgr, cust2)
	task1a := b.newTask(t, mgr, claim1, repA.id) // moves to B
	task1b := b.newTask(t, mgr, claim1, repA.id) // stays with A: A keeps claim 1
	task2 := b.newTask(t, mgr, claim2, repA.id)  // moves to B: A loses claim 2
	note1a, note1b, note2 := b.newNote(t, repA, task1a), b.newNote(t, repA, task1b), b.newNote(t, repA, task2)
	doc1, doc2 := b.newDocument(t, repA, claim1, task1a), b.newDocument(t, repA, claim2, task2)

	snapA := b.pullAll(t, repA)
	for _, r := range []struct {
		typ string
		id  uuid.UUID
	}{{"task", task1a}, {"task", task1b}, {"task", task2}, {"task_note", note1a}, {"task_note", note2}, {"claim", claim1},
		{"claim", claim2}, {"customer", cust1}, {"customer", cust2}, {"document", doc1}, {"document", doc2}} {
		wantUpsert(t, "A's snapshot", snapA, r.typ, r.id)
	}
	snapB := b.pullAll(t, repB)
	for _, ch := range snapB {
		if ch.Type != "user" {
			t.Fatalf("B's snapshot holds %s %s before anything is theirs", ch.Type, ch.ID)
		}
	}

	for _, task := range []uuid.UUID{task1a, task2} {
		res := b.pushOne(t, mgr, "applied", updateOp("task", task, b.version(t, "tasks", task), syncFields{"assignee_id": repB.id}))
		if res.Entity["assignee_id"] != repB.id.String() || res.Entity["status"] != "assigned" {
			t.Fatalf("reassigned task: %v", res.Entity)
		}
	}

	a := b.pullAll(t, repA)
	for _, r := range []struct {
		typ string
		id  uuid.UUID
	}{{"task", task1a}, {"task", task2}, {"task_note", note1a}, {"task_note", note2}, {"claim", claim2},
		{"customer", cust2}, {"document", doc2}} {
		wantDelete(t, "A", a, r.typ, r.id, "out_of_scope")
	}
	// Claim 1 is still A's through task 1b: it, its customer and its documents stay.
	for _, r := range []struct {
		typ string
		id  uuid.UUID
	}{{"claim", claim1}, {"customer", cust1}, {"document", doc1}, {"task", task1b}, {"task_note", note1b}} {
		wantNoDelete(t, "A", a, r.typ, r.id)
	}

	bc := b.pullAll(t, repB)
	for _, r := range []struct {
		typ string
		id  uuid.UUID
	}{{"task", task1a}, {"task", task2}, {"task_note", note1a}, {"task_note", note2}, {"claim", claim1},
		{"claim", claim2}, {"customer", cust1}, {"customer", cust2}, {"document", doc1}, {"document", doc2}} {
		data := wantUpsert(t, "B", bc, r.typ, r.id)
		if r.typ == "document" && data["claim_id"] == nil {
			t.Fatalf("B got a partial document: %v", data)
		}
	}
	if data := wantUpsert(t, "B", bc, "task", task1a); data["assignee_id"] != repB.id.String() || data["title"] != "Collect the papers" {
		t.Fatalf("B's task: %v", data)
	}
	// What is A's alone never reaches B.
	wantAbsent(t, "B", bc, "task", task1b)
	wantAbsent(t, "B", bc, "task_note", note1b)

	// A's device has caught up: nothing more comes, and A can no longer write to the moved task.
	if more := b.pullAll(t, repA); len(more) != 0 {
		t.Fatalf("A got more: %s", changeSummary(more))
	}
	b.wantRejected(t, repA, updateOp("task", task2, b.version(t, "tasks", task2), syncFields{"status": "accepted"}), "forbidden", "")
	b.pushOne(t, repB, "applied", updateOp("task", task2, b.version(t, "tasks", task2), syncFields{"status": "accepted"}))

	// Moving it back brings it back to A whole, and takes it off B.
	b.pushOne(t, mgr, "applied", updateOp("task", task2, b.version(t, "tasks", task2), syncFields{"assignee_id": repA.id}))
	a = b.pullAll(t, repA)
	for _, r := range []struct {
		typ string
		id  uuid.UUID
	}{{"task", task2}, {"task_note", note2}, {"claim", claim2}, {"customer", cust2}, {"document", doc2}} {
		wantUpsert(t, "A again", a, r.typ, r.id)
	}
	bc = b.pullAll(t, repB)
	for _, r := range []struct {
		typ string
		id  uuid.UUID
	}{{"task", task2}, {"task_note", note2}, {"claim", claim2}, {"customer", cust2}, {"document", doc2}} {
		wantDelete(t, "B again", bc, r.typ, r.id, "out_of_scope")
	}
	wantNoDelete(t, "B again", bc, "task", task1a)
	wantNoDelete(t, "B again", bc, "claim", claim1)
}

// TestSyncPageMayExceedLimitOnScopeMove: a page's limit counts change-log entries; the entry of a
// task entering a rep's scope brings the task's dependents with it in the same page.
func TestSyncPageMayExceedLimitOnScopeMove(t *testing.T) {
	t.Parallel()
	b := setup(t)
	mgr := b.signIn(t, "manager", "")
	repA := b.signIn(t, "rep", "")
	repB := b.signIn(t, "rep", "")
	cust := b.newCustomer(t, mgr)
	claim := b.newClaim(t, mgr, cust)
	task := b.newTask(t, mgr, claim, repA.id)
	b.newNote(t, repA, task)
	b.newDocument(t, repA, claim, task)
	b.pullAll(t, repB)

	b.pushOne(t, mgr, "applied", updateOp("task", task, b.version(t, "tasks", task), syncFields{"assignee_id": repB.id}))
	b.waitUntilServable(t)
	biggest, total := 0, 0
	for range 100 {
		p := b.pullOnce(t, repB, repB.cursor, 1)
		repB.cursor = p.Cursor
		biggest, total = max(biggest, len(p.Changes)), total+len(p.Changes)
		if !p.HasMore {
			break
		}
	}
	// task, note, claim, customer, document: the enter entry carries all five.
	if biggest < 5 || total < 5 {
		t.Fatalf("largest page %d, total %d: want the task's dependents in the page of its entry", biggest, total)
	}
}

// TestSyncFinishedTaskLeavesAfterWindow: a finished task stays on its rep's device for the scope
// window, then the janitor's sweep takes it off, with everything it brought; reopening it brings
// it back whole. The window passes on the clock, not in real time.
func TestSyncFinishedTaskLeavesAfterWindow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const window = time.Minute
	b.useEngine(t, func(s *apptest.Setup) { s.ScopeWindow = window })
	mgr := b.signIn(t, "manager", "")
	rep := b.signIn(t, "rep", "")
	cust := b.newCustomer(t, mgr)
	claim := b.newClaim(t, mgr, cust)
	task := b.newTask(t, mgr, claim, rep.id)
	note := b.newNote(t, rep, task)
	doc := b.newDocument(t, rep, claim, task)
	b.pullAll(t, rep)

	b.pushOne(t, rep, "applied", updateOp("task", task, b.version(t, "tasks", task), syncFields{"status": "accepted"}))
	done := b.pushOne(t, rep, "applied", updateOp("task", task, b.version(t, "tasks", task),
		syncFields{"status": "completed", "completion_note": "All collected."}))
	if done.Entity["finished_at"] == nil {
		t.Fatalf("completed task without finished_at: %v", done.Entity)
	}
	// Within the window the finished task is still the rep's.
	if data := wantUpsert(t, "rep", b.pullAll(t, rep), "task", task); data["status"] != "completed" {
		t.Fatalf("task: %v", data)
	}

	b.clock.Advance(window + time.Second)
	if err := b.engine.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	gone := b.pullAll(t, rep)
	for _, r := range []struct {
		typ string
		id  uuid.UUID
	}{{"task", task}, {"task_note", note}, {"claim", claim}, {"customer", cust}, {"document", doc}} {
		wantDelete(t, "rep after the window", gone, r.typ, r.id, "out_of_scope")
	}
	// A second sweep emits nothing again.
	if err := b.engine.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if more := b.pullAll(t, rep); len(more) != 0 {
		t.Fatalf("second sweep: %s", changeSummary(more))
	}
	// A fresh snapshot agrees.
	fresh := &syncUser{token: rep.token}
	for _, ch := range b.pullAll(t, fresh) {
		if ch.Type != "user" {
			t.Fatalf("fresh snapshot holds %s %s after the window", ch.Type, ch.ID)
		}
	}

	// The manager reopens it: it comes back whole.
	b.pushOne(t, mgr, "applied", updateOp("task", task, b.version(t, "tasks", task), syncFields{"status": "assigned"}))
	back := b.pullAll(t, rep)
	for _, r := range []struct {
		typ string
		id  uuid.UUID
	}{{"task", task}, {"task_note", note}, {"claim", claim}, {"customer", cust}, {"document", doc}} {
		wantUpsert(t, "rep after reopening", back, r.typ, r.id)
	}
	if data := wantUpsert(t, "rep", back, "task", task); data["status"] != "assigned" || data["finished_at"] != nil {
		t.Fatalf("reopened task: %v", data)
	}
}

// TestSyncReviewQueueMovesForProcessors: a claim enters the processors' queue when its collection
// starts, bringing its tasks, documents and customer; it stays through review and payment, and
// leaves the scope window after it was paid, its customer staying while another claim of theirs
// is in the queue. The window passes on the clock, not in real time.
func TestSyncReviewQueueMovesForProcessors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const window = time.Minute
	b.useEngine(t, func(s *apptest.Setup) { s.ScopeWindow = window })
	mgr := b.signIn(t, "manager", "")
	rep := b.signIn(t, "rep", "")
	proc := b.signIn(t, "processor", "")
	cust := b.newCustomer(t, mgr)
	claim1, claim2 := b.newClaim(t, mgr, cust), b.newClaim(t, mgr, cust)
	task1, task2 := b.newTask(t, mgr, claim1, rep.id), b.newTask(t, mgr, claim2, rep.id)
	note := b.newNote(t, rep, task1)
	doc := b.newDocument(t, rep, claim1, task1)
	b.markUploaded(t, doc)

	// Reported claims are not the processors' yet.
	for _, ch := range b.pullAll(t, proc) {
		if ch.Type != "user" {
			t.Fatalf("processor's snapshot holds %s %s before review", ch.Type, ch.ID)
		}
	}

	// The rep takes up both tasks: both claims start collecting and enter the queue.
	for _, task := range []uuid.UUID{task1, task2} {
		b.pushOne(t, rep, "applied", updateOp("task", task, b.version(t, "tasks", task), syncFields{"status": "accepted"}))
	}
	in := b.pullAll(t, proc)
	for _, r := range []struct {
		typ string
		id  uuid.UUID
	}{{"claim", claim1}, {"claim", claim2}, {"task", task1}, {"task", task2}, {"document", doc}, {"customer", cust}} {
		wantUpsert(t, "processor", in, r.typ, r.id)
	}
	if data := wantUpsert(t, "processor", in, "claim", claim1); data["status"] != "collecting" {
		t.Fatalf("claim: %v", data)
	}
	wantUpsert(t, "processor", in, "task_note", note) // the field's notes come with the claim under review

	// Completing the only task puts claim 1 under review; the processor reviews and pays it.
	b.pushOne(t, rep, "applied", updateOp("task", task1, b.version(t, "tasks", task1), syncFields{"status": "completed"}))
	if data := wantUpsert(t, "processor", b.pullAll(t, proc), "claim", claim1); data["status"] != "under_review" {
		t.Fatalf("claim after completion: %v", data)
	}
	b.pushOne(t, proc, "applied", updateOp("document", doc, b.version(t, "documents", doc), syncFields{"status": "approved"}))
	b.pushOne(t, proc, "applied", updateOp("claim", claim1, b.version(t, "claims", claim1), syncFields{"status": "approved"}))
	paid := b.pushOne(t, proc, "applied", updateOp("claim", claim1, b.version(t, "claims", claim1), syncFields{"status": "paid", "amount_paid": 125000}))
	if paid.Entity["paid_at"] == nil || paid.Entity["processor_id"] != proc.id.String() {
		t.Fatalf("paid claim: %v", paid.Entity)
	}
	if data := wantUpsert(t, "processor", b.pullAll(t, proc), "claim", claim1); data["status"] != "paid" {
		t.Fatalf("paid claim: %v", data)
	}

	b.clock.Advance(window + time.Second)
	if err := b.engine.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := b.pullAll(t, proc)
	for _, r := range []struct {
		typ string
		id  uuid.UUID
	}{{"claim", claim1}, {"task", task1}, {"document", doc}} {
		wantDelete(t, "processor after the window", out, r.typ, r.id, "out_of_scope")
	}
	// Claim 2 keeps the customer in the queue.
	wantNoDelete(t, "processor after the window", out, "customer", cust)
	wantNoDelete(t, "processor after the window", out, "claim", claim2)
	wantNoDelete(t, "processor after the window", out, "task", task2)
}
