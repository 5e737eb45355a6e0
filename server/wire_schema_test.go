package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The wire tests hold what the server sends to what /openapi.json says it sends: real pull and
// push responses are validated against the served document's schemas by a JSON Schema validator
// (OpenAPI 3.1 schemas are JSON Schema 2020-12). The record schemas forbid properties they do not
// name and require every one they do, so a column sent to devices that the description does not
// name, or a field it names that is not sent, fails here.

// wireSchemas validates bodies against the schemas of the served OpenAPI document.
type wireSchemas struct {
	c     *jsonschema.Compiler
	byLoc map[string]*jsonschema.Schema
}

// docURL is where the served document is registered with the validator (never fetched).
const docURL = "https://fieldsync.test/openapi.json"

func (b *bundle) wireSchemas(t *testing.T) *wireSchemas {
	t.Helper()
	r := b.do(t, "GET", "/openapi.json", "", nil)
	expect(t, r, http.StatusOK, "")
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat() // uuid and date-time are checked, not only described
	if err := c.AddResource(docURL, doc); err != nil {
		t.Fatal(err)
	}
	return &wireSchemas{c: c, byLoc: map[string]*jsonschema.Schema{}}
}

// pointer escapes a JSON pointer token.
func pointer(token string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(token)
}

func (w *wireSchemas) schema(t *testing.T, ptr string) *jsonschema.Schema {
	t.Helper()
	if s, ok := w.byLoc[ptr]; ok {
		return s
	}
	s, err := w.c.Compile(docURL + "#" + ptr)
	if err != nil {
		t.Fatalf("compile %s: %v", ptr, err)
	}
	w.byLoc[ptr] = s
	return s
}

func (w *wireSchemas) validate(t *testing.T, ptr string, body []byte) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if err := w.schema(t, ptr).Validate(v); err != nil {
		if len(body) > 400 {
			body = append(body[:400:400], "..."...)
		}
		t.Errorf("%s does not hold %s:\n%v", ptr, body, err)
	}
}

// response validates r against the document's schema of the route's answer with r's status.
func (w *wireSchemas) response(t *testing.T, method, path string, r response) {
	t.Helper()
	ptr := "/paths/" + pointer(path) + "/" + strings.ToLower(method) + "/responses/" + fmt.Sprint(r.status) +
		"/content/" + pointer("application/json") + "/schema"
	w.validate(t, ptr, r.body)
}

// recordSchemas names the schema of each record type, which the pull's and push's oneOf does not
// tie to the change's type.
var recordSchemas = map[string]string{
	"task": "SyncTask", "task_note": "SyncTaskNote", "claim": "SyncClaim", "customer": "SyncCustomer",
	"document": "SyncDocument", "notification": "SyncNotification", "user": "SyncUser",
}

func (w *wireSchemas) record(t *testing.T, typ string, data json.RawMessage) {
	t.Helper()
	name, ok := recordSchemas[typ]
	if !ok {
		t.Fatalf("no schema for records of type %q", typ)
	}
	w.validate(t, "/components/schemas/"+name, data)
}

// wirePull pulls as u until caught up, validating every page, and every record against its
// type's schema. It returns the changes seen by type and op ("task upsert", "task delete
// out_of_scope").
func (b *bundle) wirePull(t *testing.T, w *wireSchemas, u *syncUser) map[string]int {
	t.Helper()
	b.waitUntilServable(t)
	seen := map[string]int{}
	for range 1000 {
		q := url.Values{}
		if u.cursor != "" {
			q.Set("cursor", u.cursor)
		}
		path := "/v1/sync/pull?" + q.Encode()
		r := b.do(t, "GET", path, u.token, nil)
		expect(t, r, http.StatusOK, "")
		w.response(t, "GET", "/v1/sync/pull", r)
		var page struct {
			Changes []struct {
				Type   string          `json:"type"`
				Op     string          `json:"op"`
				Reason string          `json:"reason"`
				Data   json.RawMessage `json:"data"`
			} `json:"changes"`
			Cursor  string `json:"cursor"`
			HasMore bool   `json:"has_more"`
		}
		r.json(t, &page)
		for _, ch := range page.Changes {
			if ch.Op == "upsert" {
				w.record(t, ch.Type, ch.Data)
				seen[ch.Type+" upsert"]++
			} else {
				seen[ch.Type+" delete "+ch.Reason]++
			}
		}
		u.cursor = page.Cursor
		if !page.HasMore {
			return seen
		}
	}
	t.Fatal("pull never ended")
	return nil
}

// wirePush pushes muts as u, validates the answer and each result's records, and returns the
// results' statuses in order.
func (b *bundle) wirePush(t *testing.T, w *wireSchemas, u *syncUser, muts ...syncMutation) []string {
	t.Helper()
	r := b.do(t, "POST", "/v1/sync/push", u.token, map[string]any{"mutations": muts})
	expect(t, r, http.StatusOK, "")
	w.response(t, "POST", "/v1/sync/push", r)
	var out struct {
		Results []struct {
			Status    string          `json:"status"`
			Entity    json.RawMessage `json:"entity"`
			Conflicts []struct {
				Field  string          `json:"field"`
				Theirs json.RawMessage `json:"theirs"`
			} `json:"conflicts"`
		} `json:"results"`
	}
	r.json(t, &out)
	if len(out.Results) != len(muts) {
		t.Fatalf("%d results for %d mutations: %s", len(out.Results), len(muts), r.body)
	}
	statuses := make([]string, len(out.Results))
	for i, res := range out.Results {
		statuses[i] = res.Status
		typ := fmt.Sprint(muts[i]["type"])
		if res.Entity != nil {
			w.record(t, typ, res.Entity)
		}
		for _, c := range res.Conflicts {
			if c.Field == "*" && bytes.HasPrefix(c.Theirs, []byte("{")) {
				w.record(t, typ, c.Theirs) // update wins over a delete: the record kept
			}
		}
	}
	return statuses
}

// TestWireMatchesOpenAPI validates real pulls (snapshots and the change log, every record type,
// every role that syncs, tombstones of both reasons), pushes (results of every status), the
// records of the screens and of the event stream against the served OpenAPI document. The server
// runs with the notification rules, so the inbox holds what they write.
func TestWireMatchesOpenAPI(t *testing.T) {
	b := evSetup(t).bundle
	w := b.wireSchemas(t)
	ctx := context.Background()
	mgr := b.signIn(t, "manager", "")
	proc := b.signIn(t, "processor", "")
	rep := b.signIn(t, "rep", "hospital")
	other := b.signIn(t, "rep", "agent")
	stream := openEvents(t, b.srv.URL, rep.token, "")
	stream.next(t, 5*time.Second, "ready")

	// A claim reported through the API, as its answer describes it.
	customer := b.newCustomer(t, mgr)
	r := b.do(t, "POST", "/v1/claims", mgr.token, map[string]any{"id": uuid.New(), "customer_id": customer,
		"policy_number": "POL-1", "kind": "hospitalisation", "hospitalised": true, "hospital": "St. Mary's"})
	expect(t, r, http.StatusCreated, "")
	w.response(t, "POST", "/v1/claims", r)
	var reported struct {
		Claim struct {
			ID uuid.UUID `json:"id"`
		} `json:"claim"`
	}
	r.json(t, &reported)
	claim := reported.Claim.ID

	// Every type in everyone's scope: the processor's through a claim being collected.
	task := b.newTask(t, mgr, claim, rep.id)
	gone := b.newTask(t, mgr, claim, other.id) // leaves the other rep's scope below
	b.newNote(t, rep, task)
	doc := b.newDocument(t, rep, claim, task)
	b.markUploaded(t, doc)
	pending := b.newDocument(t, rep, claim, task) // a rep deletes only what is not uploaded
	if _, err := b.db.Pool.Exec(ctx, `UPDATE documents SET thumbnail_key = 'thumbs/' || id, width = 640, height = 480 WHERE id = $1`, doc); err != nil {
		t.Fatal(err)
	}
	if _, err := b.db.Pool.Exec(ctx, `UPDATE claims SET status = 'collecting' WHERE id = $1 AND status = 'reported'`, claim); err != nil {
		t.Fatal(err)
	}
	notices := map[*syncUser]uuid.UUID{}
	for _, u := range []*syncUser{mgr, proc, rep, other} {
		notices[u] = uuid.New()
		if _, err := b.db.Pool.Exec(ctx, `INSERT INTO notifications (id, user_id, branch_id, kind, title, body, entity_type, entity_id, data)
			VALUES ($1, $2, $3, 'task_assigned', 'New task', 'Collect the papers.', 'task', $4, '{"claim_number": "CLM-1"}')`,
			notices[u], u.id, b.branchID, task); err != nil {
			t.Fatal(err)
		}
	}
	all := []string{"task", "task_note", "claim", "customer", "document", "notification", "user"}
	for _, u := range []*syncUser{mgr, proc, rep} {
		seen := b.wirePull(t, w, u)
		for _, typ := range all {
			if seen[typ+" upsert"] == 0 {
				t.Errorf("%s's snapshot has no %s: %v", u.role, typ, seen)
			}
		}
	}
	b.wirePull(t, w, other)

	// Results of every status, and what they change, through the change log.
	version := func(table string, id uuid.UUID) int64 { return b.version(t, table, id) }
	base := version("tasks", task)
	got := b.wirePush(t, w, mgr, updateOp("task", task, base, syncFields{"title": "Collect every paper"}))
	got = append(got, b.wirePush(t, w, rep, updateOp("task", task, base, syncFields{"status": "accepted"}))...)
	base = version("documents", pending)
	got = append(got, b.wirePush(t, w, rep, updateOp("document", pending, base, syncFields{"file_name": "bill.jpg"}))...)
	got = append(got, b.wirePush(t, w, rep,
		deleteOp("document", pending, base),
		updateOp("task", task, version("tasks", task), syncFields{"title": "Mine now"}),
		createOp("customer", uuid.New(), syncFields{"name": "Not a rep's to make"}),
		updateOp("customer", customer, version("customers", customer), syncFields{"phone": "+1 555 0199", "name": "Not a rep's to rename"}))...)
	want := []string{"applied", "merged", "applied", "conflict", "rejected", "rejected", "conflict"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
	b.wirePush(t, w, rep, deleteOp("document", pending, version("documents", pending)))
	b.wirePush(t, w, mgr, updateOp("task", gone, version("tasks", gone), syncFields{"assignee_id": nil}))
	b.wirePush(t, w, proc, updateOp("claim", claim, version("claims", claim), syncFields{"decision_note": "Looks fine."}))
	b.wirePush(t, w, rep, updateOp("notification", notices[rep], version("notifications", notices[rep]), syncFields{"read": true}))

	for _, u := range []*syncUser{mgr, proc, rep} {
		seen := b.wirePull(t, w, u)
		if seen["document delete deleted"] == 0 {
			t.Errorf("%s: no tombstone of the deleted document: %v", u.role, seen)
		}
	}
	if seen := b.wirePull(t, w, other); seen["task delete out_of_scope"] == 0 {
		t.Errorf("the unassigned rep: no out_of_scope delete of the task: %v", seen)
	}

	// The screens send the same records.
	for _, u := range []*syncUser{mgr, proc} {
		for _, path := range []string{"/v1/review-queue", "/v1/claims", "/v1/tasks", "/v1/claims/{id}"} {
			r := b.do(t, "GET", strings.Replace(path, "{id}", claim.String(), 1), u.token, nil)
			expect(t, r, http.StatusOK, "")
			w.response(t, "GET", path, r)
		}
	}

	// The stream sends the rep's notifications (the rules' and the one written above) as the
	// inbox syncs them.
	w.record(t, "notification", stream.next(t, 5*time.Second, "notification").data)
	for {
		select {
		case ev := <-stream.events:
			if ev.typ == "notification" {
				w.record(t, "notification", ev.data)
			}
			continue
		case <-time.After(500 * time.Millisecond):
		}
		break
	}
}

// TestNewColumnReachesNoDevice adds a column to every synced table and gives it a value: no
// pull (snapshot or change log), push result, screen or event stream sends it, until the entity
// names it.
func TestNewColumnReachesNoDevice(t *testing.T) {
	b := evSetup(t).bundle
	ctx := context.Background()
	mgr := b.signIn(t, "manager", "")
	proc := b.signIn(t, "processor", "")
	rep := b.signIn(t, "rep", "hospital")
	claim := b.newClaim(t, mgr, b.newCustomer(t, mgr))
	task := b.newTask(t, mgr, claim, rep.id)
	b.newNote(t, rep, task)
	b.newDocument(t, rep, claim, task)
	b.pullAll(t, mgr) // a cursor from before the new columns
	stream := openEvents(t, b.srv.URL, rep.token, "")
	stream.next(t, 5*time.Second, "ready")

	for _, table := range []string{"tasks", "task_notes", "claims", "customers", "documents", "notifications", "users"} {
		if _, err := b.db.Pool.Exec(ctx, `ALTER TABLE `+table+` ADD COLUMN secret text NOT NULL DEFAULT 'leaked'`); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.db.Pool.Exec(ctx, `UPDATE claims SET status = 'collecting' WHERE id = $1`, claim); err != nil {
		t.Fatal(err)
	}
	if _, err := b.db.Pool.Exec(ctx, `INSERT INTO notifications (id, user_id, branch_id, kind, title, body) VALUES ($1, $2, $3, 'task_assigned', 'New task', 'Go.')`,
		uuid.New(), rep.id, b.branchID); err != nil {
		t.Fatal(err)
	}
	leaks := func(what string, body []byte) {
		t.Helper()
		if bytes.Contains(body, []byte("leaked")) || bytes.Contains(body, []byte(`"secret"`)) {
			t.Errorf("%s sends the new column: %s", what, body)
		}
	}

	b.waitUntilServable(t)
	for _, u := range []*syncUser{mgr, proc, rep} { // the manager from its cursor, the others from scratch
		for range 100 {
			r := b.do(t, "GET", pullPath(u.cursor, 0, 0), u.token, nil)
			expect(t, r, http.StatusOK, "")
			leaks(u.role+"'s pull", r.body)
			page := decodeSyncPage(t, r.body)
			if u.cursor = page.Cursor; !page.HasMore {
				break
			}
		}
	}
	r := b.do(t, "POST", "/v1/sync/push", mgr.token, map[string]any{"mutations": []syncMutation{
		updateOp("task", task, b.version(t, "tasks", task), syncFields{"title": "Collect the secret"})}})
	expect(t, r, http.StatusOK, "")
	leaks("a push result", r.body)
	for _, path := range []string{"/v1/review-queue", "/v1/claims", "/v1/tasks", "/v1/claims/" + claim.String()} {
		r := b.do(t, "GET", path, mgr.token, nil)
		expect(t, r, http.StatusOK, "")
		leaks(path, r.body)
	}
	leaks("the event stream", stream.next(t, 5*time.Second, "notification").data)
}
