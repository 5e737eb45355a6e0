package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
)

// errorOf is the error shape of an answer.
type errorOf struct {
	Error struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Details map[string]any `json:"details"`
	} `json:"error"`
}

// wantForPeople fails if message carries the server's own text rather than a sentence for a
// person: Go's decoder or parser text, PostgreSQL's messages or constraint names.
func wantForPeople(t *testing.T, message string, details map[string]any) {
	t.Helper()
	for _, internal := range []string{"invalid UUID", "json:", "parsing time", "cannot parse", "_check", "_fkey", "_key",
		"_pkey", "constraint", "SQLSTATE", "violates", "Go value", "cannot unmarshal", "0x00"} {
		if strings.Contains(message, internal) {
			t.Errorf("message %q carries %q", message, internal)
		}
	}
	if _, ok := details["constraint"]; ok {
		t.Errorf("details name a constraint: %v", details)
	}
}

func TestDecoderErrorsNameTheFieldInWords(t *testing.T) {
	t.Parallel()
	b := setup(t)
	mgr := b.signIn(t, "manager", "")
	cust := b.newCustomer(t, mgr)
	for _, c := range []struct {
		name, path, body, field, says string
	}{
		{"a bad UUID in a push", "/v1/sync/push",
			`{"mutations":[{"id":"abc","type":"customer","op":"create","entity_id":"` + uuid.NewString() + `","fields":{"name":"x"}}]}`,
			"mutations.id", "UUID"},
		{"a bad time in a push", "/v1/sync/push",
			`{"mutations":[{"id":"` + uuid.NewString() + `","type":"customer","op":"update","entity_id":"` + cust.String() + `","base_version":1,"client_time":"yesterday","fields":{"name":"x"}}]}`,
			"mutations.client_time", "RFC 3339"},
		{"a bad UUID in an intake", "/v1/claims",
			`{"id":"` + uuid.NewString() + `","customer_id":"abc","policy_number":"P","kind":"other"}`, "customer_id", "UUID"},
		{"a number for a UUID", "/v1/claims",
			`{"id":"` + uuid.NewString() + `","customer_id":12,"policy_number":"P","kind":"other"}`, "customer_id", "UUID"},
	} {
		r := b.do(t, "POST", c.path, mgr.token, c.body)
		expect(t, r, http.StatusBadRequest, "invalid_value")
		var e errorOf
		r.json(t, &e)
		wantForPeople(t, e.Error.Message, e.Error.Details)
		if e.Error.Details["field"] != c.field || !strings.Contains(e.Error.Message, c.field) || !strings.Contains(e.Error.Message, c.says) {
			t.Errorf("%s: %s", c.name, r.body)
		}
	}
}

func TestDatabaseRefusalsAreToldInWords(t *testing.T) {
	t.Parallel()
	w := newScreenWorld(t)
	b := w.b

	// A paid claim must have its amount: the database's check over several columns refuses a
	// payment without one. The rejection says so in words, without the constraint's name.
	claim, _ := w.claim(screenClaimSpec{status: "approved"})
	res := b.push(t, &syncUser{token: w.processor.token}, updateOp(sync.TypeClaim, claim, 1, syncFields{"status": "paid", "amount_paid": nil}))[0]
	if res.Status != "rejected" || res.Error == nil || res.Error.Code != "invalid_value" {
		t.Fatalf("a claim paid without an amount: %s", res)
	}
	wantForPeople(t, res.Error.Message, res.Error.Details)

	// U+0000, which PostgreSQL text cannot hold, in an admin's branch name: the database refuses
	// it, and the caller is told, not a 500.
	admin := b.signInAt(t, uuid.Nil, "admin", "")
	r := b.do(t, "POST", "/v1/admin/branches", admin.token, `{"name":"a\u0000b"}`)
	expect(t, r, http.StatusBadRequest, "invalid_value")
	var e errorOf
	r.json(t, &e)
	wantForPeople(t, e.Error.Message, e.Error.Details)
}

func TestInvalidUTF8IsMalformedJSON(t *testing.T) {
	t.Parallel()
	b := setup(t)
	mgr := b.signIn(t, "manager", "")
	// Inside a string, where encoding/json would have stored U+FFFD in its place.
	r := b.do(t, "POST", "/v1/sync/push", mgr.token, []byte(`{"mutations":[{"id":"`+uuid.NewString()+
		`","type":"customer","op":"create","entity_id":"`+uuid.NewString()+"\",\"fields\":{\"name\":\"Jo\xffe\"}}]}"))
	expect(t, r, http.StatusBadRequest, "malformed_json")
	r = b.do(t, "POST", "/v1/auth/login", "", []byte("{\"login\":\"\xc3\x28\",\"password\":\"p\",\"device\":{\"id\":\""+uuid.NewString()+"\",\"platform\":\"ios\"}}"))
	expect(t, r, http.StatusBadRequest, "malformed_json")
	if n := b.countRows(t, "customers", "name LIKE 'Jo%'"); n != 0 {
		t.Fatalf("%d customers stored", n)
	}
}

// TestSyncAnswers503WhileTheDatabaseIsDown: push and pull through an engine whose database
// connection is cut answer 503 database_unavailable with Retry-After, never 500, and work again
// once the database is back, with no restart.
func TestSyncAnswers503WhileTheDatabaseIsDown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	proxy, pool := proxiedPool(t, b.db)
	// The accounts service stays on the direct pool: the outage is the engine's.
	b.srv = b.replica(t, overPool(pool)).HTTP
	mgr := b.signIn(t, "manager", "")
	b.newCustomer(t, mgr)
	pull := pullPath("", 0, 0)
	expect(t, b.do(t, "GET", pull, mgr.token, nil), http.StatusOK, "")

	proxy.cut()
	for _, try := range []func() response{
		func() response {
			return b.do(t, "POST", "/v1/sync/push", mgr.token, map[string]any{"mutations": []syncMutation{
				createOp("customer", uuid.New(), syncFields{"name": "Offline customer"})}})
		},
		func() response { return b.do(t, "GET", pull, mgr.token, nil) },
	} {
		r := try()
		expect(t, r, http.StatusServiceUnavailable, "database_unavailable")
		if r.header.Get("Retry-After") == "" {
			t.Errorf("503 without Retry-After: %s", r.body)
		}
	}

	proxy.restore()
	// The pool may hand out a connection the cut broke before it notices: such a request is
	// still a 503, and the next is served.
	for _, path := range []string{"/v1/sync/push", pull} {
		for attempt := 1; ; attempt++ {
			var r response
			if path == pull {
				r = b.do(t, "GET", pull, mgr.token, nil)
			} else {
				r = b.do(t, "POST", path, mgr.token, map[string]any{"mutations": []syncMutation{
					createOp("customer", uuid.New(), syncFields{"name": "Back online"})}})
			}
			if r.status == http.StatusOK {
				break
			}
			expect(t, r, http.StatusServiceUnavailable, "database_unavailable")
			if attempt == 5 {
				t.Fatalf("%s still %d after the database came back: %s", path, r.status, r.body)
			}
		}
	}
}
