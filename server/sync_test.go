package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The helpers of the sync tests: signed-in users with their device's cursor, fixtures made
// through the API the way managers and phones make them, and pushes and pulls.

// syncUser is a signed-in user with the cursor of their device.
type syncUser struct {
	id     uuid.UUID
	login  string
	role   string
	branch uuid.UUID
	token  string
	cursor string
}

// signIn creates a user of the test branch and signs them in on a new device. repKind is for reps
// (agent when empty).
func (b *bundle) signIn(t *testing.T, role, repKind string) *syncUser {
	t.Helper()
	return b.signInAt(t, b.branchID, role, repKind)
}

// signInAt is signIn in another branch (uuid.Nil: no branch, for integrations).
func (b *bundle) signInAt(t *testing.T, branch uuid.UUID, role, repKind string) *syncUser {
	t.Helper()
	login := role + "-" + uuid.NewString()[:8]
	id, err := b.accounts.CreateUser(context.Background(), account.NewUser{BranchID: branch, Role: role, RepKind: repKind,
		Login: login, Name: "User " + login, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	return &syncUser{id: id, login: login, role: role, branch: branch, token: b.login(t, login).AccessToken}
}

// newBranch creates another branch.
func (b *bundle) newBranch(t *testing.T) uuid.UUID {
	t.Helper()
	br, err := b.accounts.CreateBranch(context.Background(), "Branch "+uuid.NewString()[:8])
	if err != nil {
		t.Fatal(err)
	}
	return br.ID
}

// useEngine replaces the bundle's engine and server by a replica's with opts, over the same
// database: for the tests that need a short scope window or a short change retention.
func (b *bundle) useEngine(t *testing.T, opts ...func(*apptest.Setup)) {
	t.Helper()
	r := b.replica(t, opts...)
	b.engine, b.srv = r.Engine, r.HTTP
}

// overPool is a replica option: the replica's database connections are pool's.
func overPool(pool *pgxpool.Pool) func(*apptest.Setup) {
	return func(s *apptest.Setup) { s.Deps.Pool = pool }
}

// fields is the fields object of a mutation.
type syncFields map[string]any

// mutation is one mutation of a push, as a phone sends it.
type syncMutation map[string]any

func createOp(typ string, id uuid.UUID, f syncFields) syncMutation {
	return syncMutation{"id": uuid.New(), "type": typ, "op": "create", "entity_id": id, "fields": f}
}

func updateOp(typ string, id uuid.UUID, base int64, f syncFields) syncMutation {
	return syncMutation{"id": uuid.New(), "type": typ, "op": "update", "entity_id": id, "base_version": base, "fields": f,
		"client_time": time.Now().UTC().Format(time.RFC3339)}
}

func deleteOp(typ string, id uuid.UUID, base int64) syncMutation {
	return syncMutation{"id": uuid.New(), "type": typ, "op": "delete", "entity_id": id, "base_version": base}
}

// conflict is one entry of a result's conflicts.
type syncConflict struct {
	Field  string `json:"field"`
	Yours  any    `json:"yours"`
	Theirs any    `json:"theirs"`
	Kept   string `json:"kept"`
	Rule   string `json:"rule"`
}

// syncResult is one result of a push.
type syncResult struct {
	ID        uuid.UUID      `json:"id"`
	Status    string         `json:"status"`
	Version   int64          `json:"version"`
	Entity    map[string]any `json:"entity"`
	Gone      string         `json:"gone"`
	Conflicts []syncConflict `json:"conflicts"`
	Error     *struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Details map[string]any `json:"details"`
	} `json:"error"`
}

func (r syncResult) String() string {
	data, _ := json.Marshal(r)
	return string(data)
}

// push sends mutations as u and returns the results, failing unless the push is answered 200
// with one result per mutation, in order.
func (b *bundle) push(t *testing.T, u *syncUser, muts ...syncMutation) []syncResult {
	t.Helper()
	r := b.do(t, "POST", "/v1/sync/push", u.token, map[string]any{"mutations": muts})
	expect(t, r, http.StatusOK, "")
	var out struct {
		Results []syncResult `json:"results"`
	}
	r.json(t, &out)
	if len(out.Results) != len(muts) {
		t.Fatalf("%d results for %d mutations: %s", len(out.Results), len(muts), r.body)
	}
	for i, res := range out.Results {
		want := fmt.Sprint(muts[i]["id"])
		if _, ok := muts[i]["id"]; !ok {
			want = uuid.Nil.String()
		}
		if res.ID.String() != want {
			t.Fatalf("result %d is for %s, want %v", i, res.ID, muts[i]["id"])
		}
	}
	return out.Results
}

// pushOne pushes one mutation and returns its result, failing unless its status is want.
func (b *bundle) pushOne(t *testing.T, u *syncUser, want string, m syncMutation) syncResult {
	t.Helper()
	res := b.push(t, u, m)[0]
	if res.Status != want {
		t.Fatalf("%s %s %v: status %s, want %s: %s", m["op"], m["type"], m["fields"], res.Status, want, res)
	}
	if want != "rejected" && (res.Version == 0 || res.Entity == nil) {
		t.Fatalf("a %s result without version or entity: %s", want, res)
	}
	return res
}

// wantRejected pushes m and fails unless it is rejected with code (and, when field is not empty,
// details.field).
func (b *bundle) wantRejected(t *testing.T, u *syncUser, m syncMutation, code, field string) syncResult {
	t.Helper()
	res := b.pushOne(t, u, "rejected", m)
	if res.Error == nil || res.Error.Code != code || res.Error.Message == "" {
		t.Fatalf("%s %s %v: want error %s: %s", m["op"], m["type"], m["fields"], code, res)
	}
	if field != "" && res.Error.Details["field"] != field {
		t.Fatalf("%s %s %v: details.field %v, want %s: %s", m["op"], m["type"], m["fields"], res.Error.Details["field"], field, res)
	}
	// Nothing applied, and the device is told what the server holds: the record, or why none.
	switch {
	case res.Entity != nil:
		if res.Gone != "" || res.Version == 0 || syncInt(res.Entity["version"]) != res.Version {
			t.Fatalf("a rejection's record: %s", res)
		}
	case res.Gone == "not_found":
		if res.Version != 0 {
			t.Fatalf("a rejection of a record that does not exist, with a version: %s", res)
		}
	case res.Gone == "deleted" || res.Gone == "out_of_scope":
		if res.Version == 0 {
			t.Fatalf("a rejection of a record gone, without its version: %s", res)
		}
	default:
		t.Fatalf("a rejection without the record or word that it is gone: %s", res)
	}
	return res
}

// change is one entry of a pull.
type syncChange struct {
	Type    string         `json:"type"`
	ID      uuid.UUID      `json:"id"`
	Op      string         `json:"op"`
	Version int64          `json:"version"`
	Reason  string         `json:"reason"`
	Data    map[string]any `json:"data"`
}

type syncPage struct {
	Changes   []syncChange `json:"changes"`
	Cursor    string       `json:"cursor"`
	HasMore   bool         `json:"has_more"`
	Remaining *int64       `json:"remaining"`
}

func pullPath(cursor string, limit, wait int) string {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if wait > 0 {
		q.Set("wait", strconv.Itoa(wait))
	}
	return "/v1/sync/pull?" + q.Encode()
}

// pullOnce pulls one page as u from cursor, failing unless it is answered 200 with the page shape.
func (b *bundle) pullOnce(t *testing.T, u *syncUser, cursor string, limit int) syncPage {
	t.Helper()
	r := b.do(t, "GET", pullPath(cursor, limit, 0), u.token, nil)
	expect(t, r, http.StatusOK, "")
	return decodeSyncPage(t, r.body)
}

func decodeSyncPage(t *testing.T, body []byte) syncPage {
	t.Helper()
	var p syncPage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("decode page %s: %v", body, err)
	}
	if p.Changes == nil || p.Cursor == "" {
		t.Fatalf("not a page: %s", body)
	}
	for _, ch := range p.Changes {
		switch {
		case ch.Op == "upsert" && (ch.Data == nil || ch.Version == 0 || ch.Reason != ""):
			t.Fatalf("upsert without data or version: %+v", ch)
		case ch.Op == "upsert" && fmt.Sprint(ch.Data["id"]) != ch.ID.String():
			t.Fatalf("upsert of %s carries the record %v", ch.ID, ch.Data["id"])
		case ch.Op == "upsert" && syncInt(ch.Data["version"]) != ch.Version:
			t.Fatalf("upsert version %d, record version %v", ch.Version, ch.Data["version"])
		case ch.Op == "delete" && (ch.Data != nil || (ch.Reason != "deleted" && ch.Reason != "out_of_scope")):
			t.Fatalf("bad delete: %+v", ch)
		case ch.Op != "upsert" && ch.Op != "delete":
			t.Fatalf("bad op: %+v", ch)
		}
	}
	return p
}

// pullAll pulls as u from u's cursor until has_more is false, keeps the new cursor, and returns every
// change received. It first waits until every change committed so far can be served (see
// waitUntilServable), so that it asserts delivery, not latency.
func (b *bundle) pullAll(t *testing.T, u *syncUser) []syncChange {
	t.Helper()
	b.waitUntilServable(t)
	var all []syncChange
	for range 1000 {
		p := b.pullOnce(t, u, u.cursor, 0)
		all = append(all, p.Changes...)
		u.cursor = p.Cursor
		if !p.HasMore {
			return all
		}
	}
	t.Fatal("pull never ended")
	return nil
}

// lastChange returns the last change of (typ, id) in changes.
func lastChange(changes []syncChange, typ string, id uuid.UUID) (syncChange, bool) {
	for i := len(changes) - 1; i >= 0; i-- {
		if changes[i].Type == typ && changes[i].ID == id {
			return changes[i], true
		}
	}
	return syncChange{}, false
}

// wantUpsert fails unless the last change of (typ, id) is an upsert, and returns its record.
func wantUpsert(t *testing.T, who string, changes []syncChange, typ string, id uuid.UUID) map[string]any {
	t.Helper()
	ch, ok := lastChange(changes, typ, id)
	if !ok || ch.Op != "upsert" {
		t.Fatalf("%s: want an upsert of %s %s, got %+v (found %v) among %s", who, typ, id, ch, ok, changeSummary(changes))
	}
	return ch.Data
}

// wantDelete fails unless the last change of (typ, id) is a delete with reason.
func wantDelete(t *testing.T, who string, changes []syncChange, typ string, id uuid.UUID, reason string) {
	t.Helper()
	ch, ok := lastChange(changes, typ, id)
	if !ok || ch.Op != "delete" || ch.Reason != reason {
		t.Fatalf("%s: want a delete (%s) of %s %s, got %+v (found %v) among %s", who, reason, typ, id, ch, ok, changeSummary(changes))
	}
}

// wantNoDelete fails if changes delete (typ, id).
func wantNoDelete(t *testing.T, who string, changes []syncChange, typ string, id uuid.UUID) {
	t.Helper()
	for _, ch := range changes {
		if ch.Type == typ && ch.ID == id && ch.Op == "delete" {
			t.Fatalf("%s: %s %s was deleted (%s) though still in scope", who, typ, id, ch.Reason)
		}
	}
}

// wantAbsent fails if changes mention (typ, id) at all.
func wantAbsent(t *testing.T, who string, changes []syncChange, typ string, id uuid.UUID) {
	t.Helper()
	if ch, ok := lastChange(changes, typ, id); ok {
		t.Fatalf("%s: got %+v of %s %s, which is not theirs", who, ch, typ, id)
	}
}

func changeSummary(changes []syncChange) string {
	var buf bytes.Buffer
	for _, ch := range changes {
		fmt.Fprintf(&buf, "\n  %s %s %s %s", ch.Op, ch.Type, ch.ID, ch.Reason)
	}
	return buf.String()
}

func syncInt(v any) int64 {
	switch n := v.(type) {
	case float64:
		return int64(n)
	case json.Number:
		i, _ := n.Int64()
		return i
	}
	return -1
}

// Fixtures, made through the API as managers and phones make them.

// newCustomer has mgr create a customer and returns its id.
func (b *bundle) newCustomer(t *testing.T, mgr *syncUser) uuid.UUID {
	t.Helper()
	id := uuid.New()
	b.pushOne(t, mgr, "applied", createOp("customer", id, syncFields{"name": "Customer " + id.String()[:6], "phone": "+49 30 1234567", "address": "Main St 1"}))
	return id
}

// reportClaim reports a claim of customer as caller through POST /v1/claims and returns the
// claim and the dispatched task (nil when none).
func (b *bundle) reportClaim(t *testing.T, caller *syncUser, customer uuid.UUID, hospitalised bool) (map[string]any, map[string]any) {
	t.Helper()
	body := map[string]any{"id": uuid.New(), "customer_id": customer, "policy_number": "POL-" + uuid.NewString()[:6],
		"kind": "hospitalisation", "hospitalised": hospitalised, "description": "Fell off a ladder."}
	if hospitalised {
		body["hospital"] = "St. Mary's"
	}
	r := b.do(t, "POST", "/v1/claims", caller.token, body)
	expect(t, r, http.StatusCreated, "")
	var out struct {
		Claim map[string]any `json:"claim"`
		Task  map[string]any `json:"task"`
	}
	r.json(t, &out)
	if out.Claim == nil {
		t.Fatalf("no claim: %s", r.body)
	}
	return out.Claim, out.Task
}

// newClaim reports a claim (not hospitalised) of customer as mgr and returns its id.
func (b *bundle) newClaim(t *testing.T, mgr *syncUser, customer uuid.UUID) uuid.UUID {
	t.Helper()
	claim, _ := b.reportClaim(t, mgr, customer, false)
	return uuid.MustParse(claim["id"].(string))
}

// newTask has mgr create a task of claim assigned to assignee (uuid.Nil: unassigned), with a
// checklist of items a, b and c, and returns its id.
func (b *bundle) newTask(t *testing.T, mgr *syncUser, claim, assignee uuid.UUID) uuid.UUID {
	t.Helper()
	id := uuid.New()
	f := syncFields{"claim_id": claim, "kind": "document_collection", "title": "Collect the papers", "instructions": "Ring twice.",
		"checklist": []map[string]any{{"key": "a", "label": "Item A"}, {"key": "b", "label": "Item B"}, {"key": "c", "label": "Item C"}}}
	if assignee != uuid.Nil {
		f["assignee_id"] = assignee
	}
	b.pushOne(t, mgr, "applied", createOp("task", id, f))
	return id
}

// newNote has u write a note on task and returns its id.
func (b *bundle) newNote(t *testing.T, u *syncUser, task uuid.UUID) uuid.UUID {
	t.Helper()
	id := uuid.New()
	b.pushOne(t, u, "applied", createOp("task_note", id, syncFields{"task_id": task, "body": "Patient asleep, came back later."}))
	return id
}

// newDocument has u create a document (pending upload) of claim, taken for task, and returns its id.
func (b *bundle) newDocument(t *testing.T, u *syncUser, claim, task uuid.UUID) uuid.UUID {
	t.Helper()
	id := uuid.New()
	b.pushOne(t, u, "applied", createOp("document", id, syncFields{"claim_id": claim, "task_id": task, "kind": "invoice",
		"file_name": "invoice.jpg", "content_type": "image/jpeg"}))
	return id
}

// markUploaded completes a document's upload the way the upload server does: a command of the
// server's own, through the engine.
func (b *bundle) markUploaded(t *testing.T, doc uuid.UUID) {
	t.Helper()
	raw := func(v any) json.RawMessage {
		data, _ := json.Marshal(v)
		return data
	}
	_, err := b.engine.Command(context.Background(), sync.SystemIdentity(b.branchID, uuid.Nil), sync.Mutation{
		Type: sync.TypeDocument, Op: "update", EntityID: doc,
		Fields: map[string]json.RawMessage{"status": raw("uploaded"), "object_key": raw("documents/" + doc.String()),
			"uploaded_at": raw(time.Now().UTC())},
	})
	if err != nil {
		t.Fatalf("mark %s uploaded: %v", doc, err)
	}
}

// version returns the stored version of a record.
func (b *bundle) version(t *testing.T, table string, id uuid.UUID) int64 {
	t.Helper()
	var v int64
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT version FROM `+table+` WHERE id = $1`, id).Scan(&v); err != nil {
		t.Fatalf("version of %s %s: %v", table, id, err)
	}
	return v
}

// conflictRow is a row of the conflicts table.
type conflictRow struct {
	Field, Rule, Kept string
	Yours, Theirs     any
	User              *uuid.UUID
	Mutation          *uuid.UUID
	ClientTime        *time.Time
}

// conflictsOf returns the recorded conflicts of a record, oldest first.
func (b *bundle) conflictsOf(t *testing.T, entity uuid.UUID) []conflictRow {
	t.Helper()
	rows, err := b.db.Pool.Query(context.Background(), `SELECT field, rule, kept #>> '{}', yours, theirs, user_id, mutation_id, client_time
		FROM conflicts WHERE entity_id = $1 ORDER BY created_at, id`, entity)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []conflictRow
	for rows.Next() {
		var c conflictRow
		if err := rows.Scan(&c.Field, &c.Rule, &c.Kept, &c.Yours, &c.Theirs, &c.User, &c.Mutation, &c.ClientTime); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// wantConflictRow fails unless rows hold exactly one conflict of user's on field by rule, and it
// kept kept.
func wantConflictRow(t *testing.T, rows []conflictRow, field, rule, kept string, user uuid.UUID) conflictRow {
	t.Helper()
	var found []conflictRow
	for _, c := range rows {
		if c.Field == field && c.Rule == rule && c.User != nil && *c.User == user {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one recorded conflict of %s on %s by %s, got %+v", user, field, rule, rows)
	}
	c := found[0]
	if c.Kept != kept || c.Mutation == nil {
		t.Fatalf("recorded conflict on %s: %+v (user %v), want rule %s, kept %s, user %s", field, c, c.User, rule, kept, user)
	}
	return c
}

// waitUntilServable waits until every change committed so far is below the oldest running
// transaction of the database server, so that a snapshot started now covers them all and no
// change from before it is sent again after it. Other tests' transactions hold it back a little.
func (b *bundle) waitUntilServable(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ready bool
		err := b.db.Pool.QueryRow(context.Background(), `SELECT coalesce(max(xid) < pg_snapshot_xmin(pg_current_snapshot()), true) FROM changes`).Scan(&ready)
		if err != nil {
			t.Fatal(err)
		}
		if ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("changes stayed behind an open transaction for 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rawGet is a GET made outside the test's goroutine: it returns errors instead of failing.
func rawGet(base, path, token string) (response, error) {
	req, err := http.NewRequest("GET", base+path, nil)
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: data}, err
}
