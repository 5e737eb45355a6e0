package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/client"
	"github.com/fieldsync/fieldsync/internal/fakefcm"
	"github.com/fieldsync/fieldsync/internal/testenv"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestScenarioHospitalisedCustomer plays BRIEF.md's scenario, the one the product exists for,
// against `fieldsync serve` as deployed (run's own wiring, configured by the environment) over
// real PostgreSQL and MinIO, pushing through the real firebase SDK to a fake FCM:
//
// the hotline reports a claim for a hospitalised customer; the hospital rep and the customer's
// agent are told; the rep's phone pulls the visit, goes offline, accepts it, ticks the checklist,
// writes notes, photographs four documents and completes it, while the manager edits the task's
// instructions and records the policy's premium; back on a flaky network the phone's pushes are
// retried and its uploads cut off and resumed; the processor reviews and rejects one document,
// the rep is told why and photographs it again; the processor approves everything and records
// the payment; the agent is told the claim is settled and the manager gets the payout with the
// branch's figures for the month. Every device's copy then equals the server's.
func TestScenarioHospitalisedCustomer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env := startServe(t)
	fcm := env.fcm

	// --- The branch, as an operator sets it up with the command line. ---
	const password = "a long enough password"
	branch := cliID(t, "", "branch", "create", "--name", "Porto Norte", "--currency", "EUR")
	newUser := func(role, repKind, login, name string) uuid.UUID {
		args := []string{"user", "create", "--role", role, "--login", login, "--name", name, "--password-stdin"}
		if role != "integration" {
			args = append(args, "--branch", branch.String())
		}
		if repKind != "" {
			args = append(args, "--rep-kind", repKind)
		}
		return cliID(t, password+"\n", args...)
	}
	managerID := newUser("manager", "", "maria", "Maria Lopes")
	processorID := newUser("processor", "", "paul", "Paul Sousa")
	agentID := newUser("rep", "agent", "alice", "Alice Agent")
	repID := newUser("rep", "hospital", "hugo", "Hugo Hospital")
	newUser("integration", "", "hotline", "Claims hotline")

	// Each person signs in on their device, which registers its push token.
	const (
		repToken       = "fcm-token-hugo-phone"
		agentToken     = "fcm-token-alice-phone"
		managerToken   = "fcm-token-maria-tablet"
		processorToken = "fcm-token-paul-browser"
	)
	phoneNet := newFlakyNet()
	rep := newDevice(t, env.base, "hugo", password, phoneNet)
	agent := newDevice(t, env.base, "alice", password, nil)
	manager := newDevice(t, env.base, "maria", password, nil)
	processor := newDevice(t, env.base, "paul", password, nil)
	rep.signIn(ctx, repToken)
	agent.signIn(ctx, agentToken)
	manager.signIn(ctx, managerToken)
	processor.signIn(ctx, processorToken)
	for d, want := range map[*device]uuid.UUID{rep: repID, agent: agentID, manager: managerID, processor: processorID} {
		if d.id() != want {
			t.Fatalf("%s signed in as %s, want %s", d.name, d.id(), want)
		}
	}
	hotline := client.New(env.base, nil, client.Device{ID: uuid.New(), Platform: "web", Name: "call-centre system"})
	if err := hotline.Login(ctx, "hotline", password); err != nil {
		t.Fatal(err)
	}

	// The manager keeps the branch's customers: Ana, Alice's customer, and Rui, whose claim
	// was paid earlier this month (seeded as history).
	ana, rui := uuid.New(), uuid.New()
	manager.queue("customer", "create", ana, map[string]any{"name": "Ana Costa", "phone": "+351 912 000 111",
		"address": "Rua das Flores 12, Porto", "agent_id": agentID})
	manager.queue("customer", "create", rui, map[string]any{"name": "Rui Lima", "agent_id": agentID})
	for id, r := range manager.mustSync(ctx) {
		if r.Status != "applied" {
			t.Fatalf("customer mutation %s: %+v", id, r)
		}
	}
	const (
		earlierPaid, earlierPremium = 1_000_000, 4_000_000 // 10,000.00 of a 40,000.00 premium
		amountClaimed, amountPaid   = 250_000, 240_000
		premium                     = 1_200_000
	)
	earlierPaidAt := seedPaidClaim(t, env.db, branch, rui, earlierPaid, earlierPremium)
	if n := len(fcm.Messages()); n != 0 {
		t.Fatalf("%d pushes before the story starts", n)
	}

	// --- 1. The hotline reports the claim; the visit is dispatched; the rep and the agent are
	// told. FCM is overloaded for the agent's first push: the SDK sends it again. ---
	fcm.SetRespond(func(m fakefcm.Message, attempt int) *fakefcm.Error {
		if m.Token == agentToken && m.Data["kind"] == "claim_reported" && attempt == 1 {
			return fakefcm.Unavailable()
		}
		return nil
	})
	claimID := uuid.New()
	report := map[string]any{"id": claimID, "customer_id": ana, "policy_number": "POL-2024-88231", "kind": "hospitalisation",
		"hospitalised": true, "hospital": "Hospital de Santo António", "description": "Admitted after a fall at home; hip fracture.",
		"amount_claimed": amountClaimed}
	var intake struct {
		Claim map[string]any `json:"claim"`
		Task  map[string]any `json:"task"`
	}
	if err := hotline.Do(ctx, http.MethodPost, "/v1/claims", report, &intake); err != nil {
		t.Fatalf("claim intake: %v", err)
	}
	number, _ := intake.Claim["number"].(string)
	if intake.Claim["status"] != "reported" || !regexp.MustCompile(`^CLM-\d{4}-\d{6}$`).MatchString(number) {
		t.Fatalf("reported claim: %v", intake.Claim)
	}
	if intake.Task == nil {
		t.Fatal("no hospital visit was dispatched")
	}
	taskID := uuid.MustParse(intake.Task["id"].(string))
	if intake.Task["assignee_id"] != repID.String() || intake.Task["status"] != "assigned" || intake.Task["kind"] != "hospital_visit" ||
		len(intake.Task["checklist"].([]any)) != 4 {
		t.Fatalf("dispatched visit: %v", intake.Task)
	}
	// The hotline never saw the answer and reports again: the same claim, nothing twice.
	var again struct {
		Claim map[string]any `json:"claim"`
		Task  map[string]any `json:"task"`
	}
	if err := hotline.Do(ctx, http.MethodPost, "/v1/claims", report, &again); err != nil {
		t.Fatal(err)
	}
	if again.Claim["number"] != number || again.Task["id"] != taskID.String() {
		t.Fatalf("a retried report made claim %v, task %v", again.Claim["number"], again.Task["id"])
	}

	repReported := waitPush(t, fcm, repToken, "claim_reported", "task", taskID)
	agentReported := waitPush(t, fcm, agentToken, "claim_reported", "claim", claimID)
	wantData(t, repReported, map[string]string{"task_id": taskID.String(), "claim_id": claimID.String(), "claim_number": number})
	wantData(t, agentReported, map[string]string{"task_id": taskID.String(), "claim_id": claimID.String(), "claim_number": number})
	if repReported.Title != "Hospital visit: Ana Costa" || !strings.Contains(repReported.Body, "Hospital de Santo António") ||
		repReported.AndroidCollapseKey != "task:"+taskID.String() {
		t.Errorf("the rep's push: %q / %q / %q", repReported.Title, repReported.Body, repReported.AndroidCollapseKey)
	}
	if agentReported.Title != "Your customer Ana Costa is in hospital" || !strings.Contains(agentReported.Body, "Hugo Hospital") ||
		agentReported.Attempt != 2 {
		t.Errorf("the agent's push (attempt %d): %q / %q", agentReported.Attempt, agentReported.Title, agentReported.Body)
	}
	fcm.SetRespond(nil)

	// The rep's phone pulls the visit whole; each inbox has the notification its push named.
	rep.syncUntil(ctx, "holding the visit", func() bool {
		return rep.has("task", taskID) && rep.has("claim", claimID) && rep.has("customer", ana) && len(rep.inbox("claim_reported", taskID)) == 1
	})
	agent.syncUntil(ctx, "told of the claim", func() bool { return len(agent.inbox("claim_reported", claimID)) == 1 })
	task := rep.record("task", taskID)
	if task["status"] != "assigned" || rep.record("claim", claimID)["number"] != number || rep.record("customer", ana)["name"] != "Ana Costa" {
		t.Fatalf("the rep's copy of the visit: task %v", task)
	}
	wantInbox(t, rep, "claim_reported", taskID, repReported)
	wantInbox(t, agent, "claim_reported", claimID, agentReported)
	if agent.has("claim", claimID) {
		t.Error("the agent's device holds the claim: it is in no task of theirs")
	}

	// --- 2. At the hospital, offline: the rep does the whole visit on the phone. ---
	phoneNet.setOffline(true)
	accept := rep.queue("task", "update", taskID, map[string]any{"status": "accepted"})
	var checklist []map[string]any
	for _, it := range task["checklist"].([]any) {
		item := it.(map[string]any)
		checklist = append(checklist, map[string]any{"key": item["key"], "label": item["label"], "done": true})
	}
	tick := rep.queue("task", "update", taskID, map[string]any{"checklist": checklist})
	noteIDs := []uuid.UUID{uuid.New(), uuid.New()}
	notes := []string{"Ana is in ward 3, bed 12; conscious and talking.", "The ward nurse gave me the invoices; discharge expected Friday."}
	for i, id := range noteIDs {
		rep.queue("task_note", "create", id, map[string]any{"task_id": taskID, "body": notes[i]})
	}
	kinds := []string{"id_card", "medical_record", "invoice", "discharge_summary"}
	docIDs := make([]uuid.UUID, len(kinds))
	photos := make([][]byte, len(kinds))
	for i, kind := range kinds {
		docIDs[i], photos[i] = uuid.New(), photo(int64(i+1))
		sum := sha256.Sum256(photos[i])
		rep.queue("document", "create", docIDs[i], map[string]any{"claim_id": claimID, "task_id": taskID, "kind": kind,
			"file_name": kind + ".jpg", "content_type": "image/jpeg", "size_bytes": len(photos[i]), "sha256": hex.EncodeToString(sum[:])})
	}
	const completionNote = "All four documents photographed; Ana signed the claim form."
	complete := rep.queue("task", "update", taskID, map[string]any{"status": "completed", "completion_note": completionNote})
	if _, err := rep.sync(ctx); err == nil || rep.sim.Pending() != 9 {
		t.Fatalf("a sync with no network: %v; %d writes queued", err, rep.sim.Pending())
	}

	// Meanwhile, online, the manager adds to the visit's instructions and records the premium.
	const instructions = "Collect the ID card, medical record, invoices and discharge summary. Ask for the itemised invoice."
	manager.syncUntil(ctx, "holding the visit", func() bool { return manager.has("task", taskID) && manager.has("claim", claimID) })
	editInstructions := manager.queue("task", "update", taskID, map[string]any{"instructions": instructions})
	setPremium := manager.queue("claim", "update", claimID, map[string]any{"premium": premium})
	res := manager.mustSync(ctx)
	if res[editInstructions].Status != "applied" || res[setPremium].Status != "applied" {
		t.Fatalf("the manager's edits: %+v, %+v", res[editInstructions], res[setPremium])
	}

	// --- 3. Back in signal, a bad one: the first push does not get out; the second is applied
	// but its answer is lost; the third gets the same answer. ---
	phoneNet.inject(fault{kind: refused, method: http.MethodPost, path: "/v1/sync/push"})
	phoneNet.inject(fault{kind: answerLost, method: http.MethodPost, path: "/v1/sync/push"})
	phoneNet.setOffline(false)
	before := rep.pushAttempts()
	res = rep.syncUntil(ctx, "seeing the claim under review", func() bool { return rep.field("claim", claimID, "status") == "under_review" })
	if n := rep.pushAttempts() - before; n != 3 {
		t.Errorf("%d push attempts, want 3", n)
	}
	lost := phoneNet.lostAnswers()
	if len(lost) != 1 || lost[0].status != http.StatusOK {
		t.Fatalf("lost answers: %+v", lost)
	}
	var lostPush struct {
		Results []client.Result `json:"results"`
	}
	if err := json.Unmarshal(lost[0].body, &lostPush); err != nil {
		t.Fatal(err)
	}
	for _, was := range lostPush.Results {
		now := res[was.ID]
		if now.Status != was.Status || now.Version != was.Version || !sameJSON(now.Entity, was.Entity) {
			t.Errorf("mutation %s: the retried push answered %s v%d %s, the lost answer was %s v%d %s",
				was.ID, now.Status, now.Version, now.Entity, was.Status, was.Version, was.Entity)
		}
	}
	// The manager's edit came in between: the rep's writes merge with it, nothing is lost.
	for _, id := range []uuid.UUID{accept, tick, complete} {
		if res[id].Status != "merged" || len(res[id].Conflicts) != 0 {
			t.Errorf("task write %s: %s, conflicts %s", id, res[id].Status, res[id].Conflicts)
		}
	}
	for id, r := range res {
		if !slices.Contains([]uuid.UUID{accept, tick, complete}, id) && r.Status != "applied" {
			t.Errorf("create %s: %+v", id, r)
		}
	}
	if e := decode(t, res[accept].Entity); e["status"] != "accepted" || e["instructions"] != instructions {
		t.Errorf("the accepted task: %v", e)
	}
	task = rep.record("task", taskID)
	if task["status"] != "completed" || task["instructions"] != instructions || task["completion_note"] != completionNote ||
		!allDone(task["checklist"]) {
		t.Fatalf("the completed task: %v", task)
	}
	for table, want := range map[string]int{"task_notes": 2, "documents": 4} {
		if n := countRows(t, env.db.Pool, table, "task_id = $1", taskID); n != want {
			t.Errorf("%d %s after a retried push, want %d", n, table, want)
		}
	}
	var conflicts struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := manager.c.Do(ctx, http.MethodGet, "/v1/conflicts", nil, &conflicts); err != nil {
		t.Fatal(err)
	}
	if len(conflicts.Items) != 0 {
		t.Errorf("conflicts recorded: %s", conflicts.Items)
	}
	if c := rep.record("claim", claimID); c["status"] != "under_review" || jsonInt(c["premium"]) != premium {
		t.Errorf("the claim after the visit: %v", c)
	}
	for i, id := range noteIDs {
		if n := rep.record("task_note", id); n["body"] != notes[i] || n["author_id"] != repID.String() {
			t.Errorf("note %d: %v", i, n)
		}
	}

	// The manager and the processor are told the visit is done and the claim ready for review.
	for d, token := range map[*device]string{manager: managerToken, processor: processorToken} {
		m := waitPush(t, fcm, token, "task_completed", "task", taskID)
		wantData(t, m, map[string]string{"task_id": taskID.String(), "claim_id": claimID.String(), "claim_number": number})
		d.syncUntil(ctx, "told of the completed visit", func() bool { return len(d.inbox("task_completed", taskID)) == 1 })
		n := wantInbox(t, d, "task_completed", taskID, m)
		if data, _ := n["data"].(map[string]any); data["ready_for_review"] != true || data["rep_id"] != repID.String() {
			t.Errorf("%s's task_completed notification: %v", d.name, n)
		}
	}

	// --- 4. The photos go up, resumably, over the same bad connection. ---
	const chunk = 16 << 10
	upload := func(i int, faults ...fault) int {
		for _, f := range faults {
			phoneNet.inject(f)
		}
		resumes := rep.upload(ctx, docIDs[i], photos[i], kinds[i]+".jpg", chunk)
		if n := phoneNet.pending(); n != 0 {
			t.Fatalf("upload of %s: %d faults did not strike", kinds[i], n)
		}
		return resumes
	}
	patch := func(kind faultKind, skip int) fault {
		return fault{kind: kind, method: http.MethodPatch, path: "/v1/uploads/", skip: skip, cutAfter: 5000}
	}
	resumes := []int{
		upload(0, patch(bodyCut, 1)),    // the connection drops in the middle of the second chunk
		upload(1, patch(answerLost, 1)), // the second chunk is stored, but its answer is lost
		upload(2, fault{kind: refused, method: http.MethodPost, path: "/v1/uploads/"}), // no signal to start
		upload(3, patch(answerLost, (len(photos[3])-1)/chunk)),                         // the last chunk's answer is lost
	}
	// Each interrupted upload resumed (twice at times: the request cut off may still take the
	// upload over from its successor on the server, which then answers upload_superseded).
	if resumes[0] < 1 || resumes[1] < 1 || resumes[3] < 1 {
		t.Errorf("resumes per upload: %v", resumes)
	}
	rep.syncUntil(ctx, "seeing the photos uploaded", func() bool {
		for _, id := range docIDs {
			if rep.field("document", id, "status") != "uploaded" {
				return false
			}
		}
		return true
	})
	for i, id := range docIDs {
		d := rep.record("document", id)
		sum := sha256.Sum256(photos[i])
		if d["status"] != "uploaded" || d["sha256"] != hex.EncodeToString(sum[:]) || jsonInt(d["size_bytes"]) != int64(len(photos[i])) ||
			d["content_type"] != "image/jpeg" || d["uploader_id"] != repID.String() {
			t.Errorf("document %s after its upload: %v", kinds[i], d)
		}
	}

	// --- 5. The processor reviews: three documents are fine, the invoice is cut off. ---
	processor.syncUntil(ctx, "holding the claim's four uploaded documents", func() bool {
		for _, id := range docIDs {
			if processor.field("document", id, "status") != "uploaded" {
				return false
			}
		}
		return processor.field("claim", claimID, "status") == "under_review"
	})
	var queue struct {
		Items []struct {
			Claim                   map[string]any `json:"claim"`
			DocumentsAwaitingReview int            `json:"documents_awaiting_review"`
			Documents               int            `json:"documents"`
		} `json:"items"`
	}
	if err := processor.c.Do(ctx, http.MethodGet, "/v1/review-queue", nil, &queue); err != nil {
		t.Fatal(err)
	}
	if len(queue.Items) != 1 || queue.Items[0].Claim["id"] != claimID.String() || queue.Items[0].DocumentsAwaitingReview != 4 {
		t.Fatalf("review queue: %+v", queue.Items)
	}
	for i, id := range docIDs {
		if got := env.download(t, processor, id); !bytes.Equal(got, photos[i]) {
			t.Errorf("document %s: %d bytes stored, want the %d uploaded", kinds[i], len(got), len(photos[i]))
		}
	}
	const reason = "The invoice is cut off at the bottom: the total is missing. Photograph the whole page."
	for i, id := range docIDs {
		body := map[string]any{"decision": "approved", "base_version": processor.version("document", id)}
		if kinds[i] == "invoice" {
			body = map[string]any{"decision": "rejected", "note": reason, "base_version": processor.version("document", id)}
		}
		processor.command(ctx, "document", "/v1/documents/"+id.String()+"/review", body)
	}
	invoice := docIDs[2]
	rejected := waitPush(t, fcm, repToken, "document_rejected", "document", invoice)
	wantData(t, rejected, map[string]string{"document_id": invoice.String(), "task_id": taskID.String(), "claim_id": claimID.String()})
	if !strings.Contains(rejected.Body, "The invoice is cut off at the bottom") || rejected.Title != "Document rejected: invoice for Ana Costa" {
		t.Errorf("the rejection's push: %q / %q", rejected.Title, rejected.Body)
	}

	// The rep sees why, photographs the invoice again, and reads the notification.
	rep.syncUntil(ctx, "seeing the rejection", func() bool {
		return rep.field("document", invoice, "status") == "rejected" && len(rep.inbox("document_rejected", invoice)) == 1
	})
	if d := rep.record("document", invoice); d["status"] != "rejected" || d["review_note"] != reason || d["reviewer_id"] != processorID.String() {
		t.Fatalf("the rejected invoice on the rep's phone: %v", d)
	}
	inboxRejected := wantInbox(t, rep, "document_rejected", invoice, rejected)
	if data, _ := inboxRejected["data"].(map[string]any); data["reason"] != reason {
		t.Errorf("the rejection in the inbox: %v", inboxRejected)
	}
	retake := photo(99)
	photos[2] = retake
	if n := upload(2, patch(bodyCut, 0)); n < 1 {
		t.Errorf("the retaken invoice resumed %d times, want 1", n)
	}
	rep.queue("notification", "update", uuid.MustParse(inboxRejected["id"].(string)), map[string]any{"read": true})
	sum := sha256.Sum256(retake)
	rep.syncUntil(ctx, "seeing the retake uploaded", func() bool { return rep.field("document", invoice, "sha256") == hex.EncodeToString(sum[:]) })
	if d := rep.record("document", invoice); d["status"] != "uploaded" || d["review_note"] != "" || d["sha256"] != hex.EncodeToString(sum[:]) {
		t.Fatalf("the retaken invoice: %v", d)
	}

	// --- 6. The processor approves the retake and the claim, and records the payment. ---
	processor.syncUntil(ctx, "holding the retake", func() bool {
		return processor.field("document", invoice, "sha256") == hex.EncodeToString(sum[:])
	})
	if got := env.download(t, processor, invoice); !bytes.Equal(got, retake) {
		t.Errorf("the stored invoice is not the retake (%d bytes)", len(got))
	}
	processor.command(ctx, "document", "/v1/documents/"+invoice.String()+"/review",
		map[string]any{"decision": "approved", "base_version": processor.version("document", invoice)})
	// FCM fails the manager's payout alert once (500): the delivery job tries again later.
	fcm.SetRespond(func(m fakefcm.Message, attempt int) *fakefcm.Error {
		if m.Token == managerToken && m.Data["kind"] == "claim_paid" && attempt == 1 {
			return fakefcm.Internal()
		}
		return nil
	})
	approved := processor.command(ctx, "claim", "/v1/claims/"+claimID.String()+"/decision",
		map[string]any{"decision": "approved", "note": "Hospitalisation covered by the policy.", "base_version": processor.version("claim", claimID)})
	if approved["status"] != "approved" || approved["processor_id"] != processorID.String() {
		t.Fatalf("the approved claim: %v", approved)
	}
	paid := processor.command(ctx, "claim", "/v1/claims/"+claimID.String()+"/payment",
		map[string]any{"amount_paid": amountPaid, "base_version": processor.version("claim", claimID)})
	if paid["status"] != "paid" || jsonInt(paid["amount_paid"]) != amountPaid || paid["paid_at"] == nil {
		t.Fatalf("the paid claim: %v", paid)
	}
	paidAt, err := time.Parse(time.RFC3339Nano, paid["paid_at"].(string))
	if err != nil {
		t.Fatal(err)
	}

	// The agent is told the claim is settled; the manager gets the payout and the month's totals.
	settled := waitPush(t, fcm, agentToken, "claim_paid", "claim", claimID)
	if settled.Title != "Claim settled: "+number || !strings.Contains(settled.Body, "€2,400.00") {
		t.Errorf("the agent's push: %q / %q", settled.Title, settled.Body)
	}
	alert := waitPush(t, fcm, managerToken, "claim_paid", "claim", claimID)
	fcm.SetRespond(nil)
	wantTotal, wantCount := int64(amountPaid), int64(1)
	wantPremiums, wantPaidWithPremium := int64(premium), int64(amountPaid)
	if sameMonth(earlierPaidAt, paidAt) { // always, but at the stroke of midnight on the 1st
		wantTotal, wantCount = wantTotal+earlierPaid, 2
		wantPremiums, wantPaidWithPremium = wantPremiums+earlierPremium, wantPaidWithPremium+earlierPaid
	}
	period := paidAt.UTC().Format("January 2006")
	if alert.Title != "Claim paid: "+number+", €2,400.00" || alert.Attempt != 2 ||
		!strings.Contains(alert.Body, "€2,400.00 paid to Ana Costa (20% of the €12,000.00 premium)") ||
		!strings.Contains(alert.Body, fmt.Sprintf("Paid in %s: %s on %d claim(s)", period, money(wantTotal), wantCount)) {
		t.Errorf("the manager's alert (attempt %d): %q / %q", alert.Attempt, alert.Title, alert.Body)
	}
	manager.syncUntil(ctx, "told of the payout", func() bool { return len(manager.inbox("claim_paid", claimID)) == 1 })
	agent.syncUntil(ctx, "told of the settlement", func() bool { return len(agent.inbox("claim_paid", claimID)) == 1 })
	wantInbox(t, agent, "claim_paid", claimID, settled)
	inboxAlert := wantInbox(t, manager, "claim_paid", claimID, alert)
	data, _ := inboxAlert["data"].(map[string]any)
	for key, want := range map[string]int64{"amount_paid": amountPaid, "premium": premium, "period_total_paid": wantTotal,
		"period_claims_paid": wantCount, "period_premiums": wantPremiums, "period_paid_with_premium": wantPaidWithPremium} {
		if got := jsonInt(data[key]); got != want {
			t.Errorf("the alert's %s: %d, want %d (%v)", key, got, want, data)
		}
	}
	if data["period"] != paidAt.UTC().Format("2006-01") {
		t.Errorf("the alert's period: %v", data["period"])
	}
	// The figures screen agrees with the alert.
	var figures struct {
		Paid struct {
			Claims, Amount, Premium int64
		} `json:"paid"`
	}
	month := paidAt.UTC().Format("2006-01") + "-01"
	if err := manager.c.Do(ctx, http.MethodGet, "/v1/branch/figures?from="+month, nil, &figures); err != nil {
		t.Fatal(err)
	}
	if figures.Paid.Claims != wantCount || figures.Paid.Amount != wantTotal || figures.Paid.Premium != wantPremiums {
		t.Errorf("branch figures: %+v, want %d claims, %d paid, %d premiums", figures.Paid, wantCount, wantTotal, wantPremiums)
	}

	// Every push went to the right person, once: nobody was told of their own doing, nor of the
	// manager's edits, the uploads or the approvals.
	want := []string{
		repToken + " claim_reported", agentToken + " claim_reported",
		managerToken + " task_completed", processorToken + " task_completed",
		repToken + " document_rejected",
		agentToken + " claim_paid", managerToken + " claim_paid",
	}
	var got []string
	ids := map[string]bool{}
	for _, m := range fcm.Messages() {
		if m.Data["type"] == "sync" {
			continue // a wake-up, not an alert (notify's TestATaskReassignedToARepWakesTheirPhonesOnce)
		}
		got = append(got, m.Token+" "+m.Data["kind"])
		if ids[m.Data["notification_id"]] {
			t.Errorf("notification %s pushed twice", m.Data["notification_id"])
		}
		ids[m.Data["notification_id"]] = true
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("pushes:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}

	// --- 7. The end: once the photos' processing has synced, every device holds exactly what a
	// fresh install of its user would pull. ---
	waitUntil(t, 30*time.Second, "thumbnails of every document", func() bool {
		manager.mustSync(ctx)
		for _, id := range docIDs {
			if d := manager.record("document", id); d["has_thumbnail"] != true || jsonInt(d["width"]) == 0 {
				return false
			}
		}
		return true
	})
	for _, d := range []*device{rep, agent, manager, processor} {
		if s := d.converged(ctx, 15*time.Second); s != "" {
			t.Errorf("%s's device differs from the server:\n%s", d.name, s)
		}
	}
	task = rep.record("task", taskID)
	claim := rep.record("claim", claimID)
	if task["status"] != "completed" || task["instructions"] != instructions || claim["status"] != "paid" || jsonInt(claim["amount_paid"]) != amountPaid {
		t.Errorf("the rep's phone at the end: task %v, claim %v", task, claim)
	}
	for i, id := range docIDs {
		if d := rep.record("document", id); d["status"] != "approved" {
			t.Errorf("document %s at the end: %v", kinds[i], d)
		}
	}
	if n := rep.inbox("document_rejected", invoice); len(n) != 1 || n[0]["read"] != true {
		t.Errorf("the read rejection: %v", n)
	}

	// --- 8. A second visit nobody accepts in time is re-dispatched; the cycle times match the
	// story's timestamps (scenario_sla_test.go). ---
	visitNotAcceptedInTime(ctx, t, slaStory{env: env, hotline: hotline, manager: manager, rep: rep, repToken: repToken,
		customer: rui, password: password, newUser: newUser})
}

// scenarioEnv is a running `fieldsync serve` and what it runs over.
type scenarioEnv struct {
	base string
	db   *testenv.Database
	fcm  *fakefcm.Server
	logs *syncBuffer
}

// startServe runs `fieldsync serve` in-process, configured through the environment exactly as in
// production, over a fresh schema and bucket, with push through the fake FCM. It stops at the
// end of the test.
func startServe(t *testing.T) *scenarioEnv {
	t.Helper()
	db := testenv.DB(t)
	s3 := testenv.S3(t)
	fcm := fakefcm.New()
	t.Cleanup(fcm.Close)
	dir := t.TempDir()
	creds := filepath.Join(dir, "firebase-service-account.json")
	if err := fcm.WriteCredentials(creds); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	for k, v := range map[string]string{
		"DATABASE_URL":                        db.URL,
		"FIELDSYNC_ADDR":                      addr,
		"FIELDSYNC_JWT_KEY_FILE":              filepath.Join(dir, "keys", "jwt.pem"),
		"FIELDSYNC_JWT_GENERATE_KEY":          "true",
		"FIELDSYNC_S3_ENDPOINT":               s3.Endpoint,
		"FIELDSYNC_S3_ACCESS_KEY":             s3.AccessKey,
		"FIELDSYNC_S3_SECRET_KEY":             s3.SecretKey,
		"FIELDSYNC_S3_BUCKET":                 s3.Bucket,
		"FIELDSYNC_S3_REGION":                 s3.Region,
		"FIELDSYNC_S3_USE_SSL":                strconv.FormatBool(s3.UseSSL),
		"FIELDSYNC_FIREBASE_CREDENTIALS_FILE": creds,
		"FIELDSYNC_FCM_ENDPOINT":              fcm.Endpoint(),
		"FIELDSYNC_SHUTDOWN_TIMEOUT":          "5s",
		"FIELDSYNC_LOG_LEVEL":                 "info",
		"FIELDSYNC_LOG_FORMAT":                "text",
		"FIELDSYNC_TARGETS_EVERY":             "1s", // the service-level step (scenario_sla_test.go)
	} {
		t.Setenv(k, v)
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, strings.NewReader(""), io.Discard, logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop within 20s of being told to")
		}
		if t.Failed() {
			t.Logf("the server's warnings and errors:\n%s", logLines(logs.String(), "level=WARN", "level=ERROR"))
		}
	})
	env := &scenarioEnv{base: "http://" + addr, db: db, fcm: fcm, logs: logs}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("serve stopped at start: %v\n%s", err, logs.String())
		default:
		}
		res, err := http.Get(env.base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready within 30s (%v)\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "push notifications are on, through FIELDSYNC_FCM_ENDPOINT") {
		t.Fatalf("serve did not turn push on:\n%s", logs.String())
	}
	return env
}

// download fetches a document's bytes as d may: the server answers with a presigned URL of the
// object store, which the app follows without its access token.
func (env *scenarioEnv) download(t *testing.T, d *device, doc uuid.UUID) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, env.base+"/v1/documents/"+doc.String()+"/content", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+d.c.AccessToken())
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound {
		t.Fatalf("content of %s: %s", doc, res.Status)
	}
	obj, err := http.Get(res.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Body.Close()
	data, err := io.ReadAll(obj.Body)
	if err != nil || obj.StatusCode != http.StatusOK {
		t.Fatalf("presigned download of %s: %s %v", doc, obj.Status, err)
	}
	return data
}

// cliID runs a fieldsync command that prints a new id.
func cliID(t *testing.T, stdin string, args ...string) uuid.UUID {
	t.Helper()
	out, err := runCLI(t, stdin, args...)
	if err != nil {
		t.Fatalf("fieldsync %s: %v", strings.Join(args, " "), err)
	}
	id, err := uuid.Parse(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("fieldsync %s printed %q", strings.Join(args, " "), out)
	}
	return id
}

// seedPaidClaim writes a claim of the branch paid now, as history for the month's figures, and
// returns when it was paid.
func seedPaidClaim(t *testing.T, db *testenv.Database, branch, customer uuid.UUID, paid, premium int64) time.Time {
	t.Helper()
	var at time.Time
	err := db.Pool.QueryRow(context.Background(), `
		INSERT INTO claims (id, number, branch_id, customer_id, policy_number, kind, status, amount_claimed, amount_paid, premium, paid_at, settled_at)
		VALUES ($1, 'CLM-' || extract(year FROM now())::int || '-' || lpad(nextval('claim_number_seq')::text, 6, '0'),
			$2, $3, 'POL-2019-00417', 'accident', 'paid', $4, $4, $5, now(), now())
		RETURNING paid_at`, uuid.New(), branch, customer, paid, premium).Scan(&at)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

func countRows(t *testing.T, pool *pgxpool.Pool, table, where string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM `+table+` WHERE `+where, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitPush waits for FCM to accept a push of kind about an entity for a device's token.
func waitPush(t *testing.T, fcm *fakefcm.Server, token, kind, entityType string, entity uuid.UUID) fakefcm.Message {
	t.Helper()
	m, err := fcm.WaitFor(func(m fakefcm.Message) bool {
		return m.Token == token && m.Data["kind"] == kind && m.Data["entity_type"] == entityType && m.Data["entity_id"] == entity.String()
	}, 20*time.Second)
	if err != nil {
		var seen []string
		for _, m := range fcm.Requests() {
			seen = append(seen, fmt.Sprintf("%s %s %d", m.Token, m.Data["kind"], m.Status))
		}
		t.Fatalf("no %s push for %s about %s %s: %v; requests: %v", kind, token, entityType, entity, err, seen)
	}
	return m
}

func wantData(t *testing.T, m fakefcm.Message, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if m.Data[k] != v {
			t.Errorf("%s push to %s: data %s = %q, want %q (%v)", m.Data["kind"], m.Token, k, m.Data[k], v, m.Data)
		}
	}
	if _, err := uuid.Parse(m.Data["notification_id"]); err != nil {
		t.Errorf("%s push to %s names no notification: %v", m.Data["kind"], m.Token, m.Data)
	}
}

// wantInbox checks that the device's inbox holds the notification a push was for, with the same
// texts, and returns it.
func wantInbox(t *testing.T, d *device, kind string, entity uuid.UUID, push fakefcm.Message) map[string]any {
	t.Helper()
	got := d.inbox(kind, entity)
	if len(got) != 1 {
		t.Fatalf("%s's inbox holds %d %s notifications about %s, want 1", d.name, len(got), kind, entity)
	}
	n := got[0]
	if n["id"] != push.Data["notification_id"] || n["title"] != push.Title || n["user_id"] != d.id().String() ||
		!strings.HasPrefix(n["body"].(string), strings.TrimSuffix(push.Body, "…")) {
		t.Errorf("%s's %s notification %v\ndoes not match its push %+v", d.name, kind, n, push)
	}
	return n
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// photo makes a JPEG of noise (about 60 KB, so that it goes up in several chunks), different for
// every seed.
func photo(seed int64) []byte {
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	img := image.NewRGBA(image.Rect(0, 0, 240, 180))
	for i := range img.Pix {
		img.Pix[i] = byte(rng.IntN(256))
		if i%4 == 3 {
			img.Pix[i] = 255
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80}); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func allDone(checklist any) bool {
	items, _ := checklist.([]any)
	for _, it := range items {
		if it.(map[string]any)["done"] != true {
			return false
		}
	}
	return len(items) > 0
}

func jsonInt(v any) int64 {
	switch n := v.(type) {
	case float64:
		return int64(n)
	case json.Number:
		i, _ := n.Int64()
		return i
	}
	return -1
}

func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func sameMonth(a, b time.Time) bool {
	a, b = a.UTC(), b.UTC()
	return a.Year() == b.Year() && a.Month() == b.Month()
}

// money formats cents of the branch's euros as the alerts do: €12,400.00.
func money(cents int64) string {
	whole := strconv.FormatInt(cents/100, 10)
	var b strings.Builder
	for i, d := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return fmt.Sprintf("€%s.%02d", b.String(), cents%100)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// logLines returns the lines of a log that contain any of subs.
func logLines(log string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		for _, s := range subs {
			if strings.Contains(l, s) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
