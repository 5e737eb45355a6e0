package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
)

// Act does one thing the device's user might do at this moment, connected or not, the way the
// app does it: it changes the device only (the outbox, the photo queue, the intake queue), and
// the next Sync sends it. It returns what the user did, for logs, or "" when there was nothing
// to do. Every choice is drawn from rng, over records taken in id order, so a seed replays the
// same choices over the same data.
//
// What each role does follows the product's story (BRIEF.md):
//   - a rep accepts an assigned task (rarely: cannot complete it), starts it, photographs a
//     document for each checklist item and ticks the item, writes notes, completes the task when
//     the list is done, photographs again a document the processor rejected, corrects a
//     customer's phone, reads notifications;
//   - a manager keeps work coming (customers, claims through intake, tasks for reps), assigns
//     open tasks, reassigns, edits instructions and checklists, cancels, reopens finished tasks,
//     edits claims, writes notes, reads notifications;
//   - a processor reviews uploaded documents (approves, or rejects with a reason), decides claims
//     under review, records payments, reads notifications.
func (d *Device) Act(rng *rand.Rand) string {
	if !d.signedIn {
		return "" // the app shows its sign-in screen until the first sync
	}
	var what string
	switch d.client.User().Role {
	case "rep":
		what = d.actRep(rng)
	case "manager":
		what = d.actManager(rng)
	case "processor":
		what = d.actProcessor(rng)
	}
	if what != "" {
		d.log.Debug(what, "online", d.Online())
	}
	return what
}

func str(v map[string]any, k string) string { s, _ := v[k].(string); return s }

func idOf(v map[string]any, k string) uuid.UUID {
	id, _ := uuid.Parse(str(v, k))
	return id
}

func num(v map[string]any, k string) float64 { f, _ := v[k].(float64); return f }

// where returns the records of s for which keep is true.
func where(s []map[string]any, keep func(map[string]any) bool) []map[string]any {
	var out []map[string]any
	for _, v := range s {
		if keep(v) {
			out = append(out, v)
		}
	}
	return out
}

// statusIn keeps the records in one of statuses.
func statusIn[S ~string](statuses ...S) func(map[string]any) bool {
	return func(v map[string]any) bool { return slices.Contains(statuses, S(str(v, "status"))) }
}

// taskStatus is a task's status, as its record says.
func taskStatus(v map[string]any) sync.TaskStatus { return sync.TaskStatus(str(v, "status")) }

// checklist returns a task's checklist items.
func checklist(task map[string]any) []map[string]any {
	return asItems(task["checklist"])
}

// docKind is the kind of document a checklist item asks for.
func docKind(key string) string {
	switch sync.DocumentKind(key) {
	case sync.DocumentIDCard, sync.DocumentMedicalRecord, sync.DocumentDischargeSummary:
		return key
	case "invoices":
		return string(sync.DocumentInvoice)
	}
	return string(sync.DocumentPhoto)
}

// readNotification marks one of the user's unread notifications read.
func (d *Device) readNotification(rng *rand.Rand) string {
	unread := where(d.list("notification"), func(v map[string]any) bool { return v["read"] != true })
	n := pick(rng, unread)
	if n == nil || !d.queue("notification", "update", idOf(n, "id"), map[string]any{"read": true}) {
		return ""
	}
	return fmt.Sprintf("read notification %q", str(n, "title"))
}

func (d *Device) note(rng *rand.Rand, task map[string]any) string {
	bodies := []string{"Customer asleep, came back an hour later.", "Spoke with the ward nurse; records at the desk.",
		"Family member present, signed the consent.", "Waiting for the invoice from accounts.", "No signal on this floor."}
	d.queue("task_note", "create", uuid.Must(uuid.NewV7()), map[string]any{"task_id": task["id"], "body": bodies[rng.IntN(len(bodies))]})
	return fmt.Sprintf("wrote a note on %q", str(task, "title"))
}

func (d *Device) actRep(rng *rand.Rand) string {
	me := d.client.User().ID
	mine := where(d.list("task"), func(v map[string]any) bool {
		return idOf(v, "assignee_id") == me && statusIn(sync.TaskAssigned, sync.TaskAccepted, sync.TaskInProgress)(v) && d.confirmed("task", idOf(v, "id"))
	})
	if rng.Float64() < 0.1 || len(mine) == 0 {
		return d.readNotification(rng)
	}
	t := pick(rng, mine)
	id, title := idOf(t, "id"), str(t, "title")
	r := rng.Float64()
	switch taskStatus(t) {
	case sync.TaskAssigned:
		if r < 0.04 {
			d.queue("task", "update", id, map[string]any{"status": sync.TaskCannotComplete, "cannot_complete_reason": "The customer was discharged before the visit."})
			return fmt.Sprintf("could not complete %q", title)
		}
		d.queue("task", "update", id, map[string]any{"status": sync.TaskAccepted})
		return fmt.Sprintf("accepted %q", title)
	case sync.TaskAccepted:
		if r < 0.15 {
			return d.note(rng, t)
		}
		d.queue("task", "update", id, map[string]any{"status": sync.TaskInProgress})
		return fmt.Sprintf("started %q", title)
	}
	// In progress: work through the checklist.
	var undone []map[string]any
	for _, it := range checklist(t) {
		if it["done"] != true {
			undone = append(undone, it)
		}
	}
	claim := idOf(t, "claim_id")
	rejected := where(d.list("document"), func(v map[string]any) bool {
		return idOf(v, "claim_id") == claim && idOf(v, "uploader_id") == me && sync.DocumentStatus(str(v, "status")) == sync.DocumentRejected && !d.retaken(v)
	})
	switch {
	case len(rejected) > 0 && r < 0.5:
		doc := pick(rng, rejected)
		d.takePhoto(rng, claim, id, str(doc, "kind"))
		d.retakes = append(d.retakes, idOf(doc, "id"))
		return fmt.Sprintf("photographed again the %s the processor rejected", str(doc, "kind"))
	case len(undone) == 0 && r < 0.7:
		d.queue("task", "update", id, map[string]any{"status": sync.TaskCompleted, "completion_note": "All documents collected."})
		return fmt.Sprintf("completed %q", title)
	case r < 0.02:
		d.queue("task", "update", id, map[string]any{"status": sync.TaskCannotComplete, "cannot_complete_reason": "The customer refused the visit."})
		return fmt.Sprintf("could not complete %q", title)
	case r < 0.12:
		return d.note(rng, t)
	case r < 0.16:
		return d.editCustomerPhone(rng, claim)
	case r < 0.19:
		return d.discardPhoto(rng)
	case len(undone) > 0:
		it := pick(rng, undone)
		key := str(it, "key")
		d.takePhoto(rng, claim, id, docKind(key))
		// Only the item changed is sent: items merge one by one, and sending the others would
		// conflict with a tick made meanwhile on another device.
		d.queue("task", "update", id, map[string]any{"checklist": []map[string]any{{"key": key, "label": it["label"], "done": true}}})
		return fmt.Sprintf("photographed the %s and ticked %q on %q", docKind(key), str(it, "label"), title)
	}
	return d.note(rng, t)
}

// retaken reports whether the device already photographed a rejected document again.
func (d *Device) retaken(doc map[string]any) bool {
	return slices.Contains(d.retakes, idOf(doc, "id"))
}

// editCustomerPhone corrects the phone of the claim's customer (a rep may write phone and
// address).
func (d *Device) editCustomerPhone(rng *rand.Rand, claimID uuid.UUID) string {
	claim := d.view(Key{"claim", claimID})
	if claim == nil {
		return ""
	}
	cust := idOf(claim, "customer_id")
	phone := fmt.Sprintf("+351 91%d %03d %03d", rng.IntN(10), rng.IntN(1000), rng.IntN(1000))
	if !d.queue("customer", "update", cust, map[string]any{"phone": phone}) {
		return ""
	}
	return "corrected a customer's phone to " + phone
}

// discardPhoto deletes a blurry photo that has not gone up yet (a rep may delete their own
// document while it is pending upload).
func (d *Device) discardPhoto(rng *rand.Rand) string {
	var waiting []*photo
	for _, p := range d.photos {
		if p.created && d.confirmed("document", p.doc) {
			waiting = append(waiting, p)
		}
	}
	if len(waiting) == 0 {
		return ""
	}
	p := waiting[rng.IntN(len(waiting))]
	doc := d.view(Key{"document", p.doc})
	if doc == nil || sync.DocumentStatus(str(doc, "status")) != sync.DocumentPendingUpload || !d.queue("document", "delete", p.doc, nil) {
		return ""
	}
	d.dropPhoto(p.doc)
	return "discarded a blurry photo before it went up"
}

func (d *Device) actManager(rng *rand.Rand) string {
	tasks := d.list("task")
	reps := where(d.list("user"), func(v map[string]any) bool { return str(v, "role") == "rep" && v["disabled"] != true })
	open := where(tasks, statusIn(sync.TaskOpen))
	active := where(tasks, statusIn(sync.TaskAssigned, sync.TaskAccepted, sync.TaskInProgress))
	done := where(tasks, func(v map[string]any) bool { return taskStatus(v).Finished() })
	target := min(max(3, 2*len(reps)), 12)
	r := rng.Float64()
	switch {
	case len(reps) > 0 && len(open) > 0 && r < 0.5:
		t, rep := pick(rng, open), pick(rng, reps)
		if !d.queue("task", "update", idOf(t, "id"), map[string]any{"assignee_id": rep["id"]}) {
			return ""
		}
		return fmt.Sprintf("assigned %q to %s", str(t, "title"), str(rep, "name"))
	case len(open)+len(active) < target && r < 0.6:
		return d.newWork(rng, reps)
	case r < 0.62:
		return d.newWork(rng, reps)
	case len(active) > 0 && r < 0.7:
		t := pick(rng, active)
		text := []string{"Call the customer before going.", "Ask for the original invoices.", "Ward moved to the 2nd floor.",
			"Bring the claim form for signature."}[rng.IntN(4)]
		if !d.queue("task", "update", idOf(t, "id"), map[string]any{"instructions": text}) {
			return ""
		}
		return fmt.Sprintf("changed the instructions of %q", str(t, "title"))
	case len(active) > 0 && len(reps) > 1 && r < 0.76:
		t := pick(rng, active)
		others := where(reps, func(v map[string]any) bool { return str(v, "id") != str(t, "assignee_id") })
		rep := pick(rng, others)
		if !d.queue("task", "update", idOf(t, "id"), map[string]any{"assignee_id": rep["id"]}) {
			return ""
		}
		return fmt.Sprintf("reassigned %q to %s", str(t, "title"), str(rep, "name"))
	case len(active) > 0 && r < 0.79:
		t := pick(rng, active)
		if !d.queue("task", "update", idOf(t, "id"), map[string]any{"status": sync.TaskCancelled}) {
			return ""
		}
		return fmt.Sprintf("cancelled %q", str(t, "title"))
	case len(done) > 0 && r < 0.82:
		t := pick(rng, done)
		if !d.queue("task", "update", idOf(t, "id"), map[string]any{"status": sync.TaskAssigned}) {
			return ""
		}
		return fmt.Sprintf("reopened %q", str(t, "title"))
	case len(active) > 0 && r < 0.86:
		t := pick(rng, active)
		items := checklist(t)
		key := fmt.Sprintf("extra_%d", rng.IntN(1000))
		items = append(items, map[string]any{"key": key, "label": "Photograph the prescription", "done": false})
		if len(items) > 10 || !d.queue("task", "update", idOf(t, "id"), map[string]any{"checklist": items}) {
			return ""
		}
		return fmt.Sprintf("added a checklist item to %q", str(t, "title"))
	case r < 0.9:
		c := pick(rng, d.list("claim"))
		if c == nil || !d.queue("claim", "update", idOf(c, "id"), map[string]any{"premium": 10000 * (1 + rng.IntN(50))}) {
			return ""
		}
		return fmt.Sprintf("recorded the premium of claim %s", str(c, "number"))
	case r < 0.95:
		return d.readNotification(rng)
	}
	if t := pick(rng, active); t != nil {
		return d.note(rng, t)
	}
	return ""
}

// newWork is the manager keeping the branch busy: a new customer, a claim reported for one (a
// hospitalised customer gets a hospital visit dispatched by the server), or a task for a rep on a
// claim still being worked.
func (d *Device) newWork(rng *rand.Rand, reps []map[string]any) string {
	customers := where(d.list("customer"), func(v map[string]any) bool { return d.confirmed("customer", idOf(v, "id")) })
	claims := where(d.list("claim"), statusIn(sync.ClaimReported, sync.ClaimCollecting, sync.ClaimUnderReview))
	tasked := map[string]bool{}
	for _, t := range d.list("task") {
		tasked[str(t, "claim_id")] = true
	}
	untasked := where(claims, func(v map[string]any) bool { return !tasked[str(v, "id")] })
	r := rng.Float64()
	switch {
	case len(untasked) > 0 && len(reps) > 0 && r < 0.7:
		claims = untasked // a claim nobody works on yet comes first
	case len(customers) == 0 || r < 0.15:
		names := []string{"Ana", "Bruno", "Carla", "Diogo", "Elisa", "Filipe", "Gabriela", "Hugo", "Inês", "João"}
		surnames := []string{"Costa", "Silva", "Ferreira", "Santos", "Oliveira", "Pereira", "Rodrigues", "Martins"}
		name := names[rng.IntN(len(names))] + " " + surnames[rng.IntN(len(surnames))]
		fields := map[string]any{"name": name, "phone": fmt.Sprintf("+351 93%d %03d %03d", rng.IntN(10), rng.IntN(1000), rng.IntN(1000)),
			"address": fmt.Sprintf("Rua %d, Porto", 1+rng.IntN(300))}
		if agents := where(reps, func(v map[string]any) bool { return str(v, "rep_kind") == fieldsync.RepAgent }); len(agents) > 0 {
			fields["agent_id"] = pick(rng, agents)["id"]
		}
		d.queue("customer", "create", uuid.Must(uuid.NewV7()), fields)
		return "added customer " + name
	case len(claims) == 0 || r < 0.65:
		c := pick(rng, customers)
		hospitalised := rng.Float64() < 0.6
		body := map[string]any{"id": uuid.Must(uuid.NewV7()), "customer_id": c["id"], "policy_number": fmt.Sprintf("POL-%06d", rng.IntN(1000000)),
			"kind": sync.ClaimAccident, "description": "Reported by the simulator.", "amount_claimed": 1000 * (50 + rng.IntN(5000))}
		if hospitalised {
			body["kind"], body["hospitalised"], body["hospital"] = sync.ClaimHospitalisation, true, "Hospital de São João"
		}
		d.reports = append(d.reports, &report{body: body})
		return fmt.Sprintf("reported a claim of %s (hospitalised: %t)", str(c, "name"), hospitalised)
	}
	if len(reps) == 0 {
		return ""
	}
	c, rep := pick(rng, claims), pick(rng, reps)
	kind := []sync.TaskKind{sync.TaskDocumentCollection, sync.TaskFollowUp}[rng.IntN(2)]
	items := []map[string]any{{"key": "invoices", "label": "Photograph the invoices", "done": false}}
	if rng.IntN(2) == 0 {
		items = append(items, map[string]any{"key": "medical_record", "label": "Photograph the medical record", "done": false})
	}
	title := fmt.Sprintf("Collect documents for %s", str(c, "number"))
	d.queue("task", "create", uuid.Must(uuid.NewV7()), map[string]any{"claim_id": c["id"], "kind": kind, "title": title,
		"instructions": "Meet the customer at home.", "assignee_id": rep["id"], "checklist": items})
	return fmt.Sprintf("created %q for %s", title, str(rep, "name"))
}

func (d *Device) actProcessor(rng *rand.Rand) string {
	docs := where(d.list("document"), func(v map[string]any) bool {
		return sync.DocumentStatus(str(v, "status")) == sync.DocumentUploaded && d.confirmed("document", idOf(v, "id"))
	})
	claims := d.list("claim")
	r := rng.Float64()
	if len(docs) > 0 && r < 0.5 {
		doc := pick(rng, docs)
		if rng.Float64() < 0.15 {
			d.queue("document", "update", idOf(doc, "id"), map[string]any{"status": sync.DocumentRejected, "review_note": "Blurred; photograph it again in better light."})
			return fmt.Sprintf("rejected the %s %s", str(doc, "kind"), str(doc, "file_name"))
		}
		d.queue("document", "update", idOf(doc, "id"), map[string]any{"status": sync.DocumentApproved})
		return fmt.Sprintf("approved the %s %s", str(doc, "kind"), str(doc, "file_name"))
	}
	// A claim under review is decided once none of its documents waits for review.
	waiting := map[string]bool{}
	for _, doc := range docs {
		waiting[str(doc, "claim_id")] = true
	}
	review := where(claims, func(v map[string]any) bool {
		return sync.ClaimStatus(str(v, "status")) == sync.ClaimUnderReview && !waiting[str(v, "id")]
	})
	approved := where(claims, statusIn(sync.ClaimApproved))
	switch {
	case len(review) > 0 && r < 0.8:
		c := pick(rng, review)
		id := idOf(c, "id")
		switch x := rng.Float64(); {
		case x < 0.08:
			d.queue("claim", "update", id, map[string]any{"status": sync.ClaimRejected, "decision_note": "Not covered by the policy."})
			return fmt.Sprintf("rejected claim %s", str(c, "number"))
		case x < 0.16:
			d.queue("claim", "update", id, map[string]any{"status": sync.ClaimCollecting, "decision_note": "The discharge summary is missing."})
			return fmt.Sprintf("sent claim %s back to collecting", str(c, "number"))
		}
		d.queue("claim", "update", id, map[string]any{"status": sync.ClaimApproved, "decision_note": "Documents complete."})
		return fmt.Sprintf("approved claim %s", str(c, "number"))
	case len(approved) > 0 && r < 0.9:
		c := pick(rng, approved)
		amount := int64(num(c, "amount_claimed"))
		if amount == 0 {
			amount = 100000
		}
		amount = amount * int64(80+rng.IntN(21)) / 100
		d.queue("claim", "update", idOf(c, "id"), map[string]any{"status": sync.ClaimPaid, "amount_paid": amount})
		return fmt.Sprintf("paid claim %s: %d.%02d", str(c, "number"), amount/100, amount%100)
	}
	return d.readNotification(rng)
}
