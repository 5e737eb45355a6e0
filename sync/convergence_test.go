package sync_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/internal/client"
	"github.com/fieldsync/fieldsync/internal/sim"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
)

// The convergence test simulates a branch's devices working offline: reps, a manager and two
// processors each keep a local store of what they hold, edit it at random while offline (queueing
// mutations in an outbox), and reconnect in random order to push (sometimes losing the response
// and pushing the same mutations again later) and pull. The server also acts on its own: uploads
// complete. At the end every device must hold exactly what a fresh snapshot of its scope holds,
// no mutation may have been applied twice, and every recorded conflict must follow the rules of
// BRIEF.md.
//
// Everything runs in one goroutine from one seed, so a failure replays: FIELDSYNC_SEED=<seed>.

// convDevice is one phone or screen: the simulator's device (sim.Device: its store, outbox,
// cursor and the rules for taking results), reaching the engine through an engineLink instead of
// HTTP, so that everything stays in this goroutine and a seed replays.
type convDevice struct {
	*sim.Device
	id   *fieldsync.Identity
	link *engineLink
}

// idOf is the id of a record as a device shows it.
func idOf(v map[string]any) uuid.UUID { return uuid.MustParse(v["id"].(string)) }

// heldKeys returns the type:id names of the records of type typ d holds, in order.
func heldKeys(d *convDevice, typ string) []string {
	var out []string
	for k := range d.Store() {
		if k.Type == typ {
			out = append(out, k.Type+":"+k.ID.String())
		}
	}
	slices.Sort(out)
	return out
}

// engineLink is a device's connection straight to the engine (a sim.Protocol). It records every
// mutation the device sent and the first result of each (a lost one included), which every replay
// must repeat, and loses the answer of a push when told to.
type engineLink struct {
	w *convWorld
	d *convDevice
	// lose makes the next push's answer never reach the device: the engine applies the
	// mutations, the device keeps its outbox and sends the same mutations again later.
	lose bool
	// waitingSince is when the pull under way found itself short of the log's end.
	waitingSince time.Time
}

// Push hands the mutations to the engine as the API does: decoded from their JSON.
func (l *engineLink) Push(ctx context.Context, muts []client.Mutation) ([]client.Result, error) {
	w := l.w
	var in []sync.Mutation
	viaJSON(w.t, muts, &in)
	for _, m := range in {
		w.mutations[m.ID] = m
	}
	results, err := w.f.engine.Push(ctx, l.d.id, in)
	if err != nil {
		w.t.Fatalf("push of %s: %v", l.d.id.Name, err)
	}
	for _, r := range results {
		if _, ok := w.original[r.ID]; !ok {
			w.original[r.ID] = r
		}
	}
	var out []client.Result
	viaJSON(w.t, results, &out)
	if l.lose {
		l.lose = false
		return nil, &sim.LostPush{Results: out}
	}
	return out, nil
}

// Pull serves one page from the engine. The page says has_more until the device's cursor has
// reached the end of the log as it is now: a change is served once every older transaction has
// ended (the database is shared with other tests), so a pull that comes up short asks again a
// moment later. It also checks that a pull never sends a record older than the device holds.
func (l *engineLink) Pull(ctx context.Context, cursor string, limit int, _ time.Duration) (*client.Page, error) {
	t, d := l.w.t, l.d
	target := l.w.f.lastLogPos(t, d.id)
	held := d.Store()
	page := &client.Page{}
	next, more, err := l.w.f.engine.Pull(ctx, d.id, sync.PullRequest{Cursor: cursor, Limit: limit}, func(ch sync.Change) error {
		if h, ok := held[sim.Key{Type: ch.Type, ID: ch.ID}]; ok && ch.Op == "upsert" && h.Version > ch.Version {
			return fmt.Errorf("%s: pull sent %s %s at version %d, older than the %d the device holds", d.id.Name, ch.Type, ch.ID, ch.Version, h.Version)
		}
		page.Changes = append(page.Changes, client.Change{Type: ch.Type, ID: ch.ID, Op: ch.Op, Version: ch.Version, Reason: ch.Reason, Data: ch.Data})
		return nil
	})
	if fieldsync.ErrorCode(err) == "cursor_expired" {
		return nil, &client.Error{Status: http.StatusGone, Code: "cursor_expired", Message: err.Error()}
	}
	if err != nil {
		t.Fatalf("pull for %s: %v", d.id.Name, err)
	}
	snapshot, pos := cursorPos(t, next, d.id)
	page.Cursor, page.HasMore = next, more || snapshot || pos.less(target)
	switch {
	case !page.HasMore || more:
		l.waitingSince = time.Time{}
	case l.waitingSince.IsZero():
		l.waitingSince = time.Now()
	case time.Since(l.waitingSince) > 30*time.Second:
		t.Fatalf("pull for %s: cursor %v still short of %v after 30 s", d.id.Name, pos, target)
	default:
		time.Sleep(5 * time.Millisecond)
	}
	return page, nil
}

// viaJSON decodes into out what v encodes to, as the API and the client do on the wire.
func viaJSON(t *testing.T, v, out any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err == nil {
		err = json.Unmarshal(data, out)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// convWorld is one simulation.
type convWorld struct {
	t          *testing.T
	f          *engineFixture
	rng        *rand.Rand
	clock      time.Time // the devices' clock, for client_time
	manager    *convDevice
	processors []*convDevice
	reps       []*convDevice
	devices    []*convDevice
	// mutations are every mutation a device queued; original is the first result the server
	// gave each (a lost response included), which every replay must repeat.
	mutations map[uuid.UUID]sync.Mutation
	original  map[uuid.UUID]sync.Result
	// system are the results of the server's own writes (uploads completing).
	system []sync.Result
	// setupVersion is the newest change version before the devices started.
	setupVersion int64
	// stats are the devices' counts: pushes, lost answers, replays checked, pulls.
	stats *sim.Stats
}

func (w *convWorld) newID() uuid.UUID {
	var u uuid.UUID
	for i := range u {
		u[i] = byte(w.rng.Uint32())
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

func (w *convWorld) pick(n int) int { return w.rng.IntN(n) }

func (w *convWorld) chance(p float64) bool { return w.rng.Float64() < p }

func newConvWorld(t *testing.T, seed uint64) *convWorld {
	w := &convWorld{t: t, rng: rand.New(rand.NewPCG(seed, 0x5eed)), clock: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC),
		mutations: map[uuid.UUID]sync.Mutation{}, original: map[uuid.UUID]sync.Result{}, stats: &sim.Stats{}}
	w.f = newEngineFixture(t, 8)
	w.f.newID = w.newID
	dev := func(role, repKind string) *convDevice {
		d := &convDevice{id: w.f.newUser(t, role, repKind)}
		d.link = &engineLink{w: w, d: d}
		d.Device = sim.NewDevice(sim.Config{Name: d.id.Name, Protocol: d.link, Stats: w.stats, PullLimit: 500,
			NewID: w.newID, Now: func() time.Time { return w.clock }})
		w.devices = append(w.devices, d)
		return d
	}
	w.manager = dev(fieldsync.RoleManager, "")
	w.processors = []*convDevice{dev(fieldsync.RoleProcessor, ""), dev(fieldsync.RoleProcessor, "")}
	w.reps = []*convDevice{dev(fieldsync.RoleRep, "hospital"), dev(fieldsync.RoleRep, "hospital"), dev(fieldsync.RoleRep, "agent")}
	agent := w.reps[2].id.UserID
	for i := range 4 {
		claim := w.f.newClaim(t, w.f.newCustomer(t, agent), []string{"reported", "reported", "collecting", "under_review"}[i])
		for j := range 2 {
			w.f.newTask(t, claim, w.reps[(i+j)%len(w.reps)].id.UserID)
		}
	}
	if err := w.f.pool.QueryRow(context.Background(), `SELECT max(version) FROM changes`).Scan(&w.setupVersion); err != nil {
		t.Fatal(err)
	}
	return w
}

// queue records an offline edit in d's outbox, made a while after the last one (the device's
// clock gives client_time). An edit of a record the device does not hold yet (its create is still
// in the outbox) is not made.
func (w *convWorld) queue(d *convDevice, typ, op string, entity uuid.UUID, fields map[string]any) {
	w.clock = w.clock.Add(time.Duration(1+w.pick(600)) * time.Second)
	d.Queue(typ, op, entity, fields)
}

var (
	docKinds = []string{"id_card", "medical_record", "invoice", "discharge_summary", "photo", "other"}
	finished = map[string]bool{"completed": true, "cannot_complete": true, "cancelled": true}
)

// repEdit is a field rep working a task of theirs offline.
func (w *convWorld) repEdit(d *convDevice) {
	me := d.id.UserID.String()
	var mine []map[string]any
	for _, task := range d.List(sync.TypeTask) {
		if task["assignee_id"] == me {
			mine = append(mine, task)
		}
	}
	if len(mine) == 0 {
		return
	}
	task := mine[w.pick(len(mine))]
	taskID := idOf(task)
	switch w.pick(11) {
	case 0, 1, 2: // move the task along
		next := ""
		switch task["status"] {
		case "assigned":
			next = "accepted"
			if w.chance(0.15) {
				next = "cannot_complete"
			}
		case "accepted":
			next = []string{"in_progress", "completed"}[w.pick(2)]
		case "in_progress":
			next = "completed"
			if w.chance(0.2) {
				next = "cannot_complete"
			}
		default:
			if w.chance(0.3) {
				next = "in_progress" // not allowed from where the task is: a conflict
			}
		}
		fields := map[string]any{"status": next}
		switch next {
		case "":
			return
		case "completed":
			fields["completion_note"] = "All documents collected " + strconv.Itoa(w.pick(1000))
		case "cannot_complete":
			fields["cannot_complete_reason"] = "Patient discharged before the visit"
		}
		w.queue(d, sync.TypeTask, "update", taskID, fields)
	case 3, 4: // tick or untick a checklist item
		items, _ := task["checklist"].([]any)
		if len(items) == 0 {
			return
		}
		i := w.pick(len(items))
		item := maps.Clone(items[i].(map[string]any))
		item["done"] = item["done"] != true
		if w.chance(0.5) {
			w.queue(d, sync.TypeTask, "update", taskID, map[string]any{"checklist": []any{item}})
		} else {
			list := slices.Clone(items)
			list[i] = item
			w.queue(d, sync.TypeTask, "update", taskID, map[string]any{"checklist": list})
		}
	case 5:
		w.queue(d, sync.TypeTaskNote, "create", w.newID(), map[string]any{"task_id": taskID, "body": "Note " + strconv.Itoa(w.pick(1e6))})
	case 6:
		w.queue(d, sync.TypeDocument, "create", w.newID(), map[string]any{"claim_id": task["claim_id"], "task_id": taskID,
			"kind": docKinds[w.pick(len(docKinds))], "file_name": "IMG_" + strconv.Itoa(w.pick(10000)) + ".jpg",
			"content_type": "image/jpeg", "size_bytes": 1000 + w.pick(1e6)})
	case 7: // throw away a photo not yet reviewed
		var docs []map[string]any
		for _, doc := range d.List(sync.TypeDocument) {
			if doc["uploader_id"] == me && (doc["status"] == "pending_upload" || doc["status"] == "rejected") {
				docs = append(docs, doc)
			}
		}
		if len(docs) > 0 {
			w.queue(d, sync.TypeDocument, "delete", idOf(docs[w.pick(len(docs))]), nil)
		}
	case 8, 9: // the customer gave a new phone number or address
		customers := d.List(sync.TypeCustomer)
		if len(customers) == 0 {
			return
		}
		field := []string{"phone", "address"}[w.pick(2)]
		w.queue(d, sync.TypeCustomer, "update", idOf(customers[w.pick(len(customers))]), map[string]any{field: field + " " + strconv.Itoa(w.pick(1e6))})
	case 10: // a field that is the manager's: rejected
		if w.chance(0.3) {
			w.queue(d, sync.TypeTask, "update", taskID, map[string]any{"title": "My own title"})
		}
	}
}

// managerEdit is the branch manager at their screen, also offline at times.
func (w *convWorld) managerEdit(d *convDevice) {
	tasks := d.List(sync.TypeTask)
	if len(tasks) == 0 {
		return
	}
	task := tasks[w.pick(len(tasks))]
	taskID := idOf(task)
	otherRep := func() string {
		for {
			r := w.reps[w.pick(len(w.reps))].id.UserID.String()
			if r != task["assignee_id"] {
				return r
			}
		}
	}
	done := finished[fmt.Sprint(task["status"])]
	switch w.pick(12) {
	case 0, 1: // reassign (a finished task too, sometimes: a conflict)
		if done && w.chance(0.7) {
			return
		}
		w.queue(d, sync.TypeTask, "update", taskID, map[string]any{"assignee_id": otherRep()})
	case 2:
		if !done {
			w.queue(d, sync.TypeTask, "update", taskID, map[string]any{"status": "cancelled"})
		}
	case 3: // reopen, perhaps for someone else
		if done {
			fields := map[string]any{"status": "assigned"}
			if task["assignee_id"] == nil || w.chance(0.5) {
				fields["assignee_id"] = otherRep()
			}
			w.queue(d, sync.TypeTask, "update", taskID, fields)
		}
	case 4:
		field := []string{"title", "instructions", "due_at"}[w.pick(3)]
		var v any = field + " " + strconv.Itoa(w.pick(1e6))
		if field == "due_at" {
			v = w.clock.Add(time.Duration(w.pick(72)) * time.Hour)
		}
		w.queue(d, sync.TypeTask, "update", taskID, map[string]any{field: v})
	case 5: // change the checklist: add, drop or relabel an item
		items, _ := task["checklist"].([]any)
		list := slices.Clone(items)
		switch {
		case len(list) < 2 || w.chance(0.4):
			list = append(list, map[string]any{"key": "extra_" + strconv.Itoa(w.pick(1000)), "label": "Also photograph this", "done": false})
		case w.chance(0.5):
			i := w.pick(len(list))
			list = slices.Delete(list, i, i+1)
		default:
			i := w.pick(len(list))
			item := maps.Clone(list[i].(map[string]any))
			item["label"] = "Relabelled " + strconv.Itoa(w.pick(1000))
			list[i] = item
		}
		seen := map[any]bool{}
		list = slices.DeleteFunc(list, func(it any) bool {
			k := it.(map[string]any)["key"]
			dup := seen[k]
			seen[k] = true
			return dup
		})
		w.queue(d, sync.TypeTask, "update", taskID, map[string]any{"checklist": list})
	case 6:
		customers := d.List(sync.TypeCustomer)
		field := []string{"name", "phone"}[w.pick(2)]
		w.queue(d, sync.TypeCustomer, "update", idOf(customers[w.pick(len(customers))]), map[string]any{field: "M " + strconv.Itoa(w.pick(1e6))})
	case 7: // a new task on a claim still being worked
		var claims []map[string]any
		for _, claim := range d.List(sync.TypeClaim) {
			if s := claim["status"]; s != "paid" && s != "rejected" && s != "approved" {
				claims = append(claims, claim)
			}
		}
		if len(claims) == 0 {
			return
		}
		w.queue(d, sync.TypeTask, "create", w.newID(), map[string]any{"claim_id": idOf(claims[w.pick(len(claims))]), "kind": "follow_up",
			"title": "Follow up " + strconv.Itoa(w.pick(1000)), "assignee_id": otherRep(),
			"checklist": []any{map[string]any{"key": "call", "label": "Call the customer", "done": false}}})
	case 8:
		w.queue(d, sync.TypeTaskNote, "create", w.newID(), map[string]any{"task_id": taskID, "body": "Manager note " + strconv.Itoa(w.pick(1000))})
	case 9:
		docs := d.List(sync.TypeDocument)
		if len(docs) > 0 && w.chance(0.5) {
			w.queue(d, sync.TypeDocument, "delete", idOf(docs[w.pick(len(docs))]), nil)
		}
	case 10:
		claims := d.List(sync.TypeClaim)
		w.queue(d, sync.TypeClaim, "update", idOf(claims[w.pick(len(claims))]), map[string]any{"description": "Manager says " + strconv.Itoa(w.pick(1000))})
	case 11: // a field that is the processor's: rejected
		claims := d.List(sync.TypeClaim)
		w.queue(d, sync.TypeClaim, "update", idOf(claims[w.pick(len(claims))]), map[string]any{"amount_paid": 100})
	}
}

// processorEdit is a claims processor working the review queue.
func (w *convWorld) processorEdit(d *convDevice) {
	switch w.pick(8) {
	case 0, 1, 2, 3: // review an uploaded document
		var docs []map[string]any
		for _, doc := range d.List(sync.TypeDocument) {
			if doc["status"] == "uploaded" {
				docs = append(docs, doc)
			}
		}
		if len(docs) == 0 {
			return
		}
		fields := map[string]any{"status": "approved"}
		if w.chance(0.4) {
			fields = map[string]any{"status": "rejected", "review_note": "Blurred, photograph it again"}
		}
		w.queue(d, sync.TypeDocument, "update", idOf(docs[w.pick(len(docs))]), fields)
	case 4:
		claims := d.List(sync.TypeClaim)
		if len(claims) > 0 {
			w.queue(d, sync.TypeClaim, "update", idOf(claims[w.pick(len(claims))]), map[string]any{"description": "Processor says " + strconv.Itoa(w.pick(1000))})
		}
	case 5, 6: // decide a claim
		claims := d.List(sync.TypeClaim)
		if len(claims) == 0 {
			return
		}
		claim := claims[w.pick(len(claims))]
		switch claim["status"] {
		case "under_review":
			next := "approved"
			if w.chance(0.2) {
				next = "collecting"
			}
			w.queue(d, sync.TypeClaim, "update", idOf(claim), map[string]any{"status": next})
		case "approved":
			w.queue(d, sync.TypeClaim, "update", idOf(claim), map[string]any{"status": "paid", "amount_paid": 50000 + w.pick(1e5)})
		}
	case 7: // a field that is the manager's: rejected
		tasks := d.List(sync.TypeTask)
		if len(tasks) > 0 && w.chance(0.2) {
			w.queue(d, sync.TypeTask, "update", idOf(tasks[w.pick(len(tasks))]), map[string]any{"title": "Processor title"})
		}
	}
}

func (w *convWorld) edit(d *convDevice) {
	switch d.id.Role {
	case fieldsync.RoleRep:
		w.repEdit(d)
	case fieldsync.RoleManager:
		w.managerEdit(d)
	case fieldsync.RoleProcessor:
		w.processorEdit(d)
	}
}

// uploadsComplete is the server finishing some pending uploads, as the upload server does: a
// system command that sets the document uploaded.
func (w *convWorld) uploadsComplete() {
	ctx := context.Background()
	rows, err := w.f.pool.Query(ctx, `SELECT id, uploader_id FROM documents WHERE status = 'pending_upload' AND deleted_at IS NULL ORDER BY id`)
	if err != nil {
		w.t.Fatal(err)
	}
	type doc struct{ id, uploader uuid.UUID }
	var docs []doc
	for rows.Next() {
		var d doc
		if err := rows.Scan(&d.id, &d.uploader); err != nil {
			w.t.Fatal(err)
		}
		docs = append(docs, d)
	}
	rows.Close()
	for _, d := range docs {
		if !w.chance(0.6) {
			continue
		}
		fields := map[string]json.RawMessage{"status": json.RawMessage(`"uploaded"`), "object_key": json.RawMessage(`"documents/` + d.id.String() + `"`),
			"uploaded_at": json.RawMessage(`"` + w.clock.Format(time.RFC3339) + `"`)}
		r, err := w.f.engine.Command(ctx, sync.SystemIdentity(w.f.branch, d.uploader), sync.Mutation{ID: w.newID(), Type: sync.TypeDocument,
			Op: "update", EntityID: d.id, Fields: fields})
		if err != nil {
			w.t.Fatalf("complete the upload of %s: %v", d.id, err)
		}
		w.system = append(w.system, r)
	}
}

// push sends d's outbox. With lose set the device never sees the answer: it keeps its outbox
// and will push the same mutations again.
func (w *convWorld) push(d *convDevice, lose bool) {
	d.link.lose = lose
	err := d.Push(context.Background())
	if err != nil && !(lose && errors.Is(err, sim.ErrDropped)) {
		w.t.Fatalf("push of %s: %v", d.id.Name, err)
	}
	d.link.lose = false // an empty outbox sent nothing to lose
}

// pull brings d up to date, applying every change to its store.
func (w *convWorld) pull(d *convDevice) {
	if err := d.Pull(context.Background(), 0); err != nil {
		w.t.Fatalf("pull of %s: %v", d.id.Name, err)
	}
}

// run plays rounds of offline work and reconnections, then brings everyone online.
func (w *convWorld) run(rounds int) {
	for _, d := range w.devices {
		w.pull(d)
	}
	for range rounds {
		for _, d := range w.devices {
			if w.chance(0.75) {
				for range 1 + w.pick(3) {
					w.edit(d)
				}
			}
		}
		w.uploadsComplete()
		for _, i := range w.rng.Perm(len(w.devices)) {
			d := w.devices[i]
			if !w.chance(0.7) {
				continue // still offline
			}
			w.push(d, w.chance(0.25))
			if w.chance(0.85) {
				w.pull(d)
			}
		}
	}
	// Everyone comes back online for good: every outbox is delivered, then every device pulls.
	for _, i := range w.rng.Perm(len(w.devices)) {
		w.push(w.devices[i], false)
	}
	for _, d := range w.devices {
		w.pull(d)
	}
}

func jsonOf(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(data)
}

// sameJSON reports whether a and b encode to the same JSON value, whatever the key order and
// spacing (records come back from jsonb re-encoded).
func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(jsonOf(a)), &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(jsonOf(b)), &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}

// checkConverged compares every device's store with a fresh snapshot of its scope, and with
// the database for the records that define the scope.
func (w *convWorld) checkConverged() {
	t := w.t
	for _, d := range w.devices {
		want := w.f.snapshotOf(t, d.id)
		held := d.Store()
		for k, rec := range held {
			key := k.Type + ":" + k.ID.String()
			data, ok := want[key]
			switch {
			case !ok:
				t.Errorf("%s holds %s, which is not in its scope (anymore)", d.id.Name, key)
			case !sameJSON(t, rec.Data, data):
				t.Errorf("%s holds %s as\n%s\nthe server has\n%s", d.id.Name, key, rec.Data, data)
			}
		}
		for key := range want {
			i := strings.IndexByte(key, ':')
			if _, ok := held[sim.Key{Type: key[:i], ID: uuid.MustParse(key[i+1:])}]; !ok {
				t.Errorf("%s lacks %s", d.id.Name, key)
			}
		}
		// The scope itself, from the tables rather than the engine's predicates.
		typ, sql, args := sync.TypeTask, `SELECT 'task:' || id FROM tasks WHERE branch_id = $1 AND deleted_at IS NULL`, []any{w.f.branch}
		switch d.id.Role {
		case fieldsync.RoleRep:
			sql, args = `SELECT 'task:' || id FROM tasks WHERE assignee_id = $1 AND deleted_at IS NULL`, []any{d.id.UserID}
		case fieldsync.RoleProcessor:
			typ, sql = sync.TypeClaim, `SELECT 'claim:' || id FROM claims WHERE branch_id = $1 AND status <> 'reported' AND deleted_at IS NULL`
		}
		rows, err := w.f.pool.Query(context.Background(), sql, args...)
		if err != nil {
			t.Fatal(err)
		}
		var scope []string
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				t.Fatal(err)
			}
			scope = append(scope, k)
		}
		rows.Close()
		slices.Sort(scope)
		if got := heldKeys(d, typ); !slices.Equal(got, scope) {
			t.Errorf("%s holds the %ss %v, its scope is %v", d.id.Name, typ, got, scope)
		}
	}
}

// createdBy reports whether a device's mutation created the record typ:id.
func (w *convWorld) createdBy(typ string, id uuid.UUID) bool {
	for _, m := range w.mutations {
		if m.Type == typ && m.Op == "create" && m.EntityID == id {
			return true
		}
	}
	return false
}

// checkAppliedOnce checks that every mutation was applied at most once: one stored result per
// mutation id, every version bump of a record explained by exactly one recorded result, every
// created note and document there once.
func (w *convWorld) checkAppliedOnce() {
	t, ctx := w.t, context.Background()
	var stored int
	if err := w.f.pool.QueryRow(ctx, `SELECT count(*) FROM applied_mutations`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != len(w.original) {
		t.Errorf("applied_mutations holds %d results, the devices pushed %d distinct mutations", stored, len(w.original))
	}
	// Every record version after setup, of the types only mutations write (claims also move
	// on their own as their tasks progress).
	versions := map[string]map[int64]bool{}
	rows, err := w.f.pool.Query(ctx, `SELECT entity_type || ':' || entity_id, version FROM changes
		WHERE op IN ('upsert', 'delete') AND entity_type IN ('task', 'task_note', 'document', 'customer')`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var key string
		var v int64
		if err := rows.Scan(&key, &v); err != nil {
			t.Fatal(err)
		}
		if versions[key] == nil {
			versions[key] = map[int64]bool{}
		}
		versions[key][v] = true
	}
	rows.Close()
	explained := map[string]map[int64]bool{}
	explain := func(typ string, id uuid.UUID, r sync.Result) {
		if r.Status == sync.StatusRejected {
			return
		}
		key := typ + ":" + id.String()
		if !versions[key][r.Version] && strings.Contains("task task_note document customer", typ) {
			t.Errorf("%s %s answered version %d of %s, which was never written", r.Status, r.ID, r.Version, key)
		}
		if explained[key] == nil {
			explained[key] = map[int64]bool{}
		}
		explained[key][r.Version] = true
	}
	creates := map[string]int{}
	for id, r := range w.original {
		m := w.mutations[id]
		explain(m.Type, m.EntityID, r)
		if m.Op == "create" && r.Status != sync.StatusRejected {
			creates[m.Type]++
		}
	}
	for _, r := range w.system {
		explain(sync.TypeDocument, uuidOfEntity(t, r.Entity), r)
	}
	// A reopening of a finished task writes a note of its own (who reopened it, and why) in the
	// same transaction: a note no device created. Each is written once, at its first version.
	notes, err := w.f.pool.Query(ctx, `SELECT id, body, version FROM task_notes`)
	if err != nil {
		t.Fatal(err)
	}
	for notes.Next() {
		var id uuid.UUID
		var body string
		var v int64
		if err := notes.Scan(&id, &body, &v); err != nil {
			t.Fatal(err)
		}
		if w.createdBy(sync.TypeTaskNote, id) {
			continue
		}
		if !strings.HasPrefix(body, "Reopened") {
			t.Errorf("task note %s (%q) was created by no device and is no reopening's", id, body)
		}
		explain(sync.TypeTaskNote, id, sync.Result{Status: sync.StatusApplied, Version: v})
		creates[sync.TypeTaskNote]++
	}
	notes.Close()
	for key, vs := range versions {
		for v := range vs {
			if v > w.setupVersion && !explained[key][v] {
				t.Errorf("%s was written at version %d by no mutation's result: applied twice?", key, v)
			}
		}
	}
	for typ, table := range map[string]string{sync.TypeTaskNote: "task_notes", sync.TypeDocument: "documents"} {
		var n int
		if err := w.f.pool.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != creates[typ] {
			t.Errorf("%d %s rows for %d applied creates", n, typ, creates[typ])
		}
	}
}

func uuidOfEntity(t *testing.T, entity json.RawMessage) uuid.UUID {
	var e struct {
		ID uuid.UUID `json:"id"`
	}
	if err := json.Unmarshal(entity, &e); err != nil {
		t.Fatal(err)
	}
	return e.ID
}

// convConflict is a row of the conflicts table.
type convConflict struct {
	typ, field, rule, kept string
	yours, theirs          json.RawMessage
	mutation               uuid.UUID
}

// checkConflicts checks that every recorded conflict follows BRIEF.md's rules, and that the
// table and the results tell the same story.
func (w *convWorld) checkConflicts() map[string]int {
	t := w.t
	rows, err := w.f.pool.Query(context.Background(), `SELECT entity_type, field, rule, kept #>> '{}', coalesce(yours, 'null'), coalesce(theirs, 'null'), mutation_id FROM conflicts`)
	if err != nil {
		t.Fatal(err)
	}
	byMutation := map[uuid.UUID][]convConflict{}
	byRule := map[string]int{}
	for rows.Next() {
		var c convConflict
		if err := rows.Scan(&c.typ, &c.field, &c.rule, &c.kept, &c.yours, &c.theirs, &c.mutation); err != nil {
			t.Fatal(err)
		}
		byMutation[c.mutation] = append(byMutation[c.mutation], c)
		byRule[c.rule]++
		if err := checkConflictRule(c); err != nil {
			t.Errorf("conflict on %s.%s (rule %s, kept %s, yours %s, theirs %s): %v", c.typ, c.field, c.rule, c.kept, c.yours, c.theirs, err)
		}
	}
	rows.Close()

	results := maps.Clone(w.original)
	for _, r := range w.system {
		results[r.ID] = r
	}
	for id, cs := range byMutation {
		if _, ok := results[id]; !ok {
			t.Errorf("conflicts %v recorded for mutation %s, which no one sent", cs, id)
		}
	}
	for id, r := range results {
		recorded := byMutation[id]
		var want, got []string
		for _, c := range r.Conflicts {
			want = append(want, c.Field+" "+c.Rule+" "+c.Kept)
		}
		for _, c := range recorded {
			got = append(got, c.field+" "+c.rule+" "+c.kept)
		}
		if r.Status == sync.StatusRejected && r.Error.Code == "deleted" {
			want = []string{"* delete_wins theirs"}
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(want, got) {
			t.Errorf("mutation %s (%s) reported conflicts %v, the table holds %v", id, r.Status, want, got)
		}
		keptTheirs := slices.ContainsFunc(r.Conflicts, func(c sync.Conflict) bool { return c.Kept == "theirs" })
		if (r.Status == sync.StatusConflict) != keptTheirs {
			t.Errorf("mutation %s is %s with conflicts %v", id, r.Status, want)
		}
	}
	return byRule
}

// checkConflictRule checks one recorded conflict against the rules of BRIEF.md.
func checkConflictRule(c convConflict) error {
	var yours, theirs any
	if err := json.Unmarshal(c.yours, &yours); err != nil {
		return err
	}
	if err := json.Unmarshal(c.theirs, &theirs); err != nil {
		return err
	}
	switch {
	case c.kept != "yours" && c.kept != "theirs":
		return fmt.Errorf("kept must be yours or theirs")
	case c.field == "*":
		switch {
		case c.rule == sync.RuleDeleteWins && theirs == "deleted" && c.kept == "theirs":
		case c.rule == sync.RuleUpdateWins && yours == "deleted" && c.kept == "theirs":
		default:
			return fmt.Errorf("a whole-record conflict is delete_wins or update_wins, and the server's side stands")
		}
	case c.field == "status":
		if c.kept != "theirs" {
			return fmt.Errorf("a status the state machine refuses never replaces the server's")
		}
		switch c.rule {
		case sync.RuleStateMachine:
		case sync.RuleFirstDecisionWins:
			decided, _ := theirs.(string)
			if c.typ != sync.TypeDocument || !sync.DocumentMachine.IsDecided(sync.DocumentStatus(decided)) {
				return fmt.Errorf("first_decision_wins is for a document already decided")
			}
		default:
			return fmt.Errorf("a status conflict follows the state machine")
		}
	case c.field == "assignee_id":
		if c.typ != sync.TypeTask || c.rule != sync.RuleStateMachine || c.kept != "theirs" {
			return fmt.Errorf("reassigning a finished task is refused by the state machine")
		}
	case strings.HasPrefix(c.field, "checklist."):
		switch {
		case c.typ != sync.TypeTask || c.rule != sync.RuleChecklistItem:
			return fmt.Errorf("checklist items merge by the checklist_item rule")
		case theirs == nil && c.kept != "theirs":
			return fmt.Errorf("an item the server no longer has stays gone")
		case theirs != nil && (yours == theirs || reflect.TypeOf(yours) != reflect.TypeFor[bool]() || reflect.TypeOf(theirs) != reflect.TypeFor[bool]()):
			// Either side's flag may stand (the engine keeps the server's: the device's
			// whole list may carry a flag it never touched), but only when they differ.
			return fmt.Errorf("an item conflicts on its done flag, when the two sides differ")
		}
	case c.rule == sync.RuleStateMachine || c.rule == sync.RuleFirstDecisionWins:
		// A decision's companion (its reason, a payment's amount) is refused with the decision.
		companion := (c.typ == sync.TypeDocument && c.field == "review_note") ||
			(c.typ == sync.TypeClaim && (c.field == "decision_note" || c.field == "amount_paid"))
		if !companion || c.kept != "theirs" || (c.rule == sync.RuleFirstDecisionWins) != (c.typ == sync.TypeDocument) {
			return fmt.Errorf("only a refused decision's reason or amount goes with the decision")
		}
	default:
		if c.rule != sync.RuleLastWriteWins || c.kept != "yours" {
			return fmt.Errorf("a plain field is last_write_wins, and the later write (yours) stands")
		}
		if !slices.Contains(sync.WritableFields(c.typ), c.field) {
			return fmt.Errorf("no such writable field")
		}
		if reflect.DeepEqual(yours, theirs) {
			return fmt.Errorf("both sides wrote the same value: no conflict")
		}
	}
	return nil
}

// TestDevicesConvergeAfterWorkingOffline runs the simulation for a handful of seeds (or the one
// in FIELDSYNC_SEED, to replay a failure).
func TestDevicesConvergeAfterWorkingOffline(t *testing.T) {
	seeds := []uint64{uint64(time.Now().UnixNano())}
	if s := os.Getenv("FIELDSYNC_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FIELDSYNC_SEED=%q: %v", s, err)
		}
		seeds = []uint64{seed}
	} else {
		for range envInt(t, "FIELDSYNC_CONVERGENCE_SEEDS", 4) - 1 {
			seeds = append(seeds, seeds[len(seeds)-1]+1)
		}
	}
	rounds := envInt(t, "FIELDSYNC_CONVERGENCE_ROUNDS", 12)
	for _, seed := range seeds {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			t.Logf("seed %d (replay with FIELDSYNC_SEED=%d)", seed, seed)
			w := newConvWorld(t, seed)
			w.run(rounds)
			w.checkConverged()
			w.checkAppliedOnce()
			byRule := w.checkConflicts()
			st := w.stats.Totals()
			if st.ReplayMismatches != 0 {
				t.Errorf("%d replayed mutations got another result than the first time; the last: %s", st.ReplayMismatches, st.LastError)
			}
			t.Logf("%d mutations, %d system writes; %s; rejections %v; conflicts %v", len(w.original), len(w.system), st, st.Rejections, byRule)
		})
	}
}

// TestPushRejectsATakenIDAndGoesOn pushes creates of ids already taken (first in the push, and
// after other mutations), between mutations that apply and one rejected for its shape: each
// rejection undoes only itself, the rest applies once, and a replay changes nothing.
func TestPushRejectsATakenIDAndGoesOn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newEngineFixture(t, 4)
	manager := f.newUser(t, fieldsync.RoleManager, "")
	taken, other := f.newCustomer(t, uuid.Nil), f.newCustomer(t, uuid.Nil)
	task := f.newTask(t, f.newClaim(t, taken, "reported"), uuid.Nil)
	fresh, note := uuid.New(), uuid.New()
	var otherVersion int64
	if err := f.pool.QueryRow(ctx, `SELECT version FROM customers WHERE id = $1`, other).Scan(&otherVersion); err != nil {
		t.Fatal(err)
	}
	raw := func(v any) json.RawMessage {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	mutations := []sync.Mutation{
		{ID: uuid.New(), Type: sync.TypeCustomer, Op: "create", EntityID: taken, Fields: map[string]json.RawMessage{"name": raw("Again")}},
		{ID: uuid.New(), Type: sync.TypeCustomer, Op: "update", EntityID: other, BaseVersion: &otherVersion, Fields: map[string]json.RawMessage{"phone": raw("+1 555 0199")}},
		{ID: uuid.New(), Type: sync.TypeCustomer, Op: "create", EntityID: fresh, Fields: map[string]json.RawMessage{"name": raw("New customer")}},
		{ID: uuid.New(), Type: sync.TypeTask, Op: "update", EntityID: task, BaseVersion: &otherVersion, Fields: map[string]json.RawMessage{"colour": raw("red")}},
		{ID: uuid.New(), Type: sync.TypeCustomer, Op: "create", EntityID: fresh, Fields: map[string]json.RawMessage{"name": raw("New customer, again")}},
		{ID: uuid.New(), Type: sync.TypeTaskNote, Op: "create", EntityID: note, Fields: map[string]json.RawMessage{"task_id": raw(task), "body": raw("Called.")}},
		{ID: uuid.New(), Type: sync.TypeCustomer, Op: "create", EntityID: taken, Fields: map[string]json.RawMessage{"name": raw("Again and again")}},
	}
	want := []string{"rejected already_exists", "applied", "applied", "rejected unknown_field", "rejected already_exists", "applied", "rejected already_exists"}
	outcome := func(results []sync.Result) []string {
		var out []string
		for _, r := range results {
			s := r.Status
			if r.Error != nil {
				s += " " + r.Error.Code
			}
			out = append(out, s)
		}
		return out
	}
	changes := func() int {
		var n int
		if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM changes`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := changes()
	first, err := f.engine.Push(ctx, manager, mutations)
	if err != nil {
		t.Fatal(err)
	}
	if got := outcome(first); !slices.Equal(got, want) {
		t.Fatalf("results %v, want %v", got, want)
	}
	if n := changes() - before; n != 3 {
		t.Errorf("the push logged %d changes, want 3 (an update and two creates)", n)
	}
	var name, phone string
	if err := f.pool.QueryRow(ctx, `SELECT c.name, o.phone FROM customers c, customers o WHERE c.id = $1 AND o.id = $2`, fresh, other).Scan(&name, &phone); err != nil {
		t.Fatal(err)
	}
	if name != "New customer" || phone != "+1 555 0199" {
		t.Errorf("customer %q, phone %q", name, phone)
	}

	before = changes()
	again, err := f.engine.Push(ctx, manager, mutations)
	if err != nil {
		t.Fatal(err)
	}
	if !sameJSON(t, first, again) {
		t.Errorf("the replay answered\n%s\nthe push answered\n%s", jsonOf(again), jsonOf(first))
	}
	if n := changes() - before; n != 0 {
		t.Errorf("the replay logged %d changes", n)
	}
	var stored int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM applied_mutations`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != len(mutations) {
		t.Errorf("%d stored results for %d mutations", stored, len(mutations))
	}
}
