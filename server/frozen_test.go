package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The fields that freeze once a record reaches a status (the Frozen fields of sync's state
// machines): a paid claim's amounts and decision, a reviewed document's review and description, a
// finished task's completion. Each is written before the status (allowed), then refused after it,
// over push.

// screenPush pushes one update of the record typ/id as u, against its current version, and
// returns the result.
func (w *screenWorld) screenPush(u screenUser, typ string, id uuid.UUID, fields syncFields) syncResult {
	w.t.Helper()
	table := map[string]string{"claim": "claims", "document": "documents", "task": "tasks"}[typ]
	version := int64(w.stateOf(table, id)["version"].(float64))
	r := w.b.do(w.t, "POST", "/v1/sync/push", u.token, map[string]any{"mutations": []syncMutation{updateOp(typ, id, version, fields)}})
	expect(w.t, r, http.StatusOK, "")
	var out struct {
		Results []syncResult `json:"results"`
	}
	r.json(w.t, &out)
	if len(out.Results) != 1 {
		w.t.Fatalf("results: %s", r.body)
	}
	return out.Results[0]
}

// wantApplied fails unless res was taken.
func wantApplied(t *testing.T, what string, res syncResult) {
	t.Helper()
	if res.Status != "applied" && res.Status != "merged" {
		t.Fatalf("%s: %s, want applied", what, res)
	}
}

// wantFrozen fails unless res was rejected with field_frozen naming field.
func wantFrozen(t *testing.T, what string, res syncResult, field string) {
	t.Helper()
	if res.Status != "rejected" || res.Error == nil || res.Error.Code != "field_frozen" || res.Error.Details["field"] != field {
		t.Fatalf("%s: %s, want rejected field_frozen on %s", what, res, field)
	}
}

func TestFrozenFieldsOfAPaidClaim(t *testing.T) {
	t.Parallel()
	w := newScreenWorld(t)
	claim, _ := w.claim(screenClaimSpec{status: "under_review"})

	// Before the decision every one of them may change.
	wantApplied(t, "amount_claimed under review", w.screenPush(w.processor, "claim", claim, syncFields{"amount_claimed": 5000}))
	wantApplied(t, "decision_note under review", w.screenPush(w.processor, "claim", claim, syncFields{"decision_note": "Draft."}))
	w.command(w.processor, "/v1/claims/"+claim.String()+"/decision", map[string]any{"decision": "approved", "note": "Covered."})

	// Approved: the approved amount and the decision's reason stand.
	wantFrozen(t, "amount_claimed approved", w.screenPush(w.processor, "claim", claim, syncFields{"amount_claimed": 9000}), "amount_claimed")
	wantFrozen(t, "decision_note approved", w.screenPush(w.processor2, "claim", claim, syncFields{"decision_note": "Rewritten."}), "decision_note")
	// On the screens too: approving again with another note is refused (409), with the same is no change.
	screenWantError(t, w.b.do(t, "POST", "/v1/claims/"+claim.String()+"/decision", w.processor.token,
		map[string]any{"decision": "approved", "note": "Rewritten."}), http.StatusConflict, "field_frozen", "decision_note")
	if res := w.command(w.processor, "/v1/claims/"+claim.String()+"/decision", map[string]any{"decision": "approved", "note": "Covered."}); res.Status != "applied" {
		t.Fatalf("approving again as approved: %+v", res)
	}
	// The amount to pay is still open until the payment.
	wantApplied(t, "amount_paid approved", w.screenPush(w.processor, "claim", claim, syncFields{"amount_paid": 900}))

	res := w.command(w.processor, "/v1/claims/"+claim.String()+"/payment", map[string]any{"amount_paid": 1000})
	if res.Status != "applied" || res.Entity["status"] != "paid" {
		t.Fatalf("payment: %+v", res)
	}
	paid := w.stateOf("claims", claim)

	// Paid: the amounts and the decision are frozen, whoever writes them.
	wantFrozen(t, "amount_paid paid", w.screenPush(w.processor, "claim", claim, syncFields{"amount_paid": 99999999}), "amount_paid")
	wantFrozen(t, "amount_paid paid, another processor", w.screenPush(w.processor2, "claim", claim, syncFields{"amount_paid": 1}), "amount_paid")
	wantFrozen(t, "decision_note paid", w.screenPush(w.processor, "claim", claim, syncFields{"decision_note": "Rewritten."}), "decision_note")
	wantFrozen(t, "amount_claimed paid", w.screenPush(w.processor, "claim", claim, syncFields{"amount_claimed": 1}), "amount_claimed")
	wantFrozen(t, "processor_id paid", w.screenPush(w.manager, "claim", claim, syncFields{"processor_id": w.processor2.id}), "processor_id")
	// Writing the value it has changes nothing, and is no error; fields not frozen still change.
	wantApplied(t, "the same amount_paid", w.screenPush(w.processor, "claim", claim, syncFields{"amount_paid": 1000}))
	wantApplied(t, "description paid", w.screenPush(w.processor, "claim", claim, syncFields{"description": "Typo fixed."}))

	after := w.stateOf("claims", claim)
	for _, f := range []string{"amount_paid", "amount_claimed", "decision_note", "processor_id", "paid_at"} {
		if after[f] != paid[f] {
			t.Errorf("%s changed after payment: %v → %v", f, paid[f], after[f])
		}
	}
	var notes int
	if err := w.b.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM conflicts WHERE entity_id = $1`, claim).Scan(&notes); err != nil {
		t.Fatal(err)
	}
	if notes != 0 {
		t.Errorf("refused writes recorded %d conflicts; a rejection changes nothing", notes)
	}
}

func TestFrozenFieldsOfAReviewedDocument(t *testing.T) {
	t.Parallel()
	w := newScreenWorld(t)
	claim, _ := w.claim(screenClaimSpec{status: "under_review"})
	w.task(claim, w.rep.id, "in_progress", time.Time{})
	approved := w.document(claim, w.rep.id, "uploaded")
	rejected := w.document(claim, w.rep.id, "uploaded")

	for _, doc := range []uuid.UUID{approved, rejected} {
		wantApplied(t, "file_name uploaded", w.screenPush(w.rep, "document", doc, syncFields{"file_name": "renamed.jpg"}))
		wantApplied(t, "kind uploaded", w.screenPush(w.rep, "document", doc, syncFields{"kind": "photo"}))
		wantApplied(t, "review_note uploaded", w.screenPush(w.processor, "document", doc, syncFields{"review_note": "Draft."}))
	}
	w.command(w.processor, "/v1/documents/"+approved.String()+"/review", map[string]any{"decision": "approved", "note": "Readable."})
	w.command(w.processor, "/v1/documents/"+rejected.String()+"/review", map[string]any{"decision": "rejected", "note": "Blurred."})

	for _, doc := range []uuid.UUID{approved, rejected} {
		before := w.stateOf("documents", doc)
		wantFrozen(t, "file_name reviewed", w.screenPush(w.rep, "document", doc, syncFields{"file_name": "other.jpg"}), "file_name")
		wantFrozen(t, "kind reviewed", w.screenPush(w.rep, "document", doc, syncFields{"kind": "invoice"}), "kind")
		wantFrozen(t, "review_note reviewed", w.screenPush(w.processor2, "document", doc, syncFields{"review_note": "Rewritten."}), "review_note")
		after := w.stateOf("documents", doc)
		for _, f := range []string{"file_name", "kind", "review_note", "reviewer_id", "version"} {
			if after[f] != before[f] {
				t.Errorf("%s of a reviewed document changed: %v → %v", f, before[f], after[f])
			}
		}
	}
}

func TestFrozenFieldsOfAFinishedTaskAndTheReopening(t *testing.T) {
	t.Parallel()
	w := newScreenWorld(t)
	claim, _ := w.claim(screenClaimSpec{status: "collecting"})
	task := w.task(claim, w.rep.id, "in_progress", time.Time{})
	failed := w.task(claim, w.rep.id, "in_progress", time.Time{})

	wantApplied(t, "completion_note in progress", w.screenPush(w.rep, "task", task, syncFields{"completion_note": "Draft."}))
	wantApplied(t, "complete", w.screenPush(w.rep, "task", task, syncFields{"status": "completed", "completion_note": "All collected."}))
	wantApplied(t, "cannot complete", w.screenPush(w.rep, "task", failed, syncFields{"status": "cannot_complete", "cannot_complete_reason": "Discharged."}))

	wantFrozen(t, "completion_note completed", w.screenPush(w.rep, "task", task, syncFields{"completion_note": "Rewritten."}), "completion_note")
	// Repeating the status does not open the note again.
	wantFrozen(t, "completion_note with the same status", w.screenPush(w.rep, "task", task,
		syncFields{"status": "completed", "completion_note": "Rewritten."}), "completion_note")
	wantFrozen(t, "cannot_complete_reason", w.screenPush(w.rep, "task", failed, syncFields{"cannot_complete_reason": "Rewritten."}), "cannot_complete_reason")
	if s := w.stateOf("tasks", task); s["completion_note"] != "All collected." {
		t.Fatalf("the completion note changed: %v", s["completion_note"])
	}

	// The correction that is allowed: a manager reopens the task, and the reopening is recorded
	// with who did it and why, as a note on the task.
	res := w.command(w.manager, "/v1/tasks/"+task.String()+"/reopen", map[string]any{"reason": "The invoice is missing."})
	if res.Status != "applied" || res.Entity["status"] != "assigned" {
		t.Fatalf("reopen: %+v", res)
	}
	var author uuid.UUID
	var body string
	err := w.b.db.Pool.QueryRow(context.Background(), `SELECT author_id, body FROM task_notes WHERE task_id = $1`, task).Scan(&author, &body)
	if err != nil {
		t.Fatalf("the reopening left no note: %v", err)
	}
	if author != w.manager.id || body != "Reopened: The invoice is missing." {
		t.Fatalf("reopening note by %s: %q", author, body)
	}
	// Reopened, the completion is the rep's to write again.
	wantApplied(t, "completion_note reopened", w.screenPush(w.rep, "task", task, syncFields{"completion_note": "Invoice added."}))

	// A reopening without a reason still records who; a reason too long is refused, nothing changed.
	screenWantError(t, w.b.do(t, "POST", "/v1/tasks/"+failed.String()+"/reopen", w.manager.token,
		map[string]any{"reason": strings.Repeat("x", 2001)}), 400, "invalid_value", "reason")
	if s := w.stateOf("tasks", failed); s["status"] != "cannot_complete" {
		t.Fatalf("a refused reopen changed the task: %v", s["status"])
	}
	w.command(w.manager, "/v1/tasks/"+failed.String()+"/reopen", nil)
	if err := w.b.db.Pool.QueryRow(context.Background(), `SELECT author_id, body FROM task_notes WHERE task_id = $1`, failed).Scan(&author, &body); err != nil ||
		author != w.manager.id || body != "Reopened." {
		t.Fatalf("reopening note: %s %q %v", author, body, err)
	}
	// A manager's reopening pushed from a device is recorded the same way, without a reason.
	pushed := w.task(claim, w.rep.id, "completed", time.Time{})
	wantApplied(t, "reopen by push", w.screenPush(w.manager, "task", pushed, syncFields{"status": "assigned"}))
	if err := w.b.db.Pool.QueryRow(context.Background(), `SELECT author_id, body FROM task_notes WHERE task_id = $1`, pushed).Scan(&author, &body); err != nil ||
		author != w.manager.id || body != "Reopened." {
		t.Fatalf("pushed reopening note: %s %q %v", author, body, err)
	}
	// A reopening that changes nothing (of an open task) records nothing.
	open := w.task(claim, uuid.Nil, "open", time.Time{})
	if res := w.command(w.manager, "/v1/tasks/"+open.String()+"/reopen", map[string]any{"reason": "Nothing."}); res.Status != "applied" {
		t.Fatalf("reopening an open task: %+v", res)
	}
	var notes int
	if err := w.b.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM task_notes WHERE task_id = $1`, open).Scan(&notes); err != nil || notes != 0 {
		t.Fatalf("reopening an open task left %d notes (%v)", notes, err)
	}
}
