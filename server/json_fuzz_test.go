package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
)

// jsonBodies makes a fresh value of every type a JSON endpoint decodes its body into, each with
// the checks of its shape the handler runs right after decoding (nil when it runs none).
// refreshBody, branchBody and userBody mirror the anonymous structs of handleRefresh,
// handleCreateBranch and handleCreateUser field for field.
func jsonBodies() map[string]func() (any, func() error) {
	plain := func(v any) func() (any, func() error) {
		return func() (any, func() error) { return reflect.New(reflect.TypeOf(v)).Interface(), nil }
	}
	type refreshBody struct {
		RefreshToken string `json:"refresh_token"`
	}
	type branchBody struct {
		Name string `json:"name"`
	}
	type userBody struct {
		BranchID uuid.UUID `json:"branch_id"`
		Role     string    `json:"role"`
		RepKind  string    `json:"rep_kind"`
		Login    string    `json:"login"`
		Name     string    `json:"name"`
		Password string    `json:"password"`
	}
	decision := func() (any, func() error) {
		var r decisionRequest
		return &r, func() error { _, err := r.fields("review_note", "approved", "rejected"); return err }
	}
	return map[string]func() (any, func() error){
		"login":         plain(account.LoginRequest{}),
		"refresh":       plain(refreshBody{}),
		"push-token":    plain(account.PushToken{}),
		"create branch": plain(branchBody{}),
		"create user":   plain(userBody{}),
		"push": func() (any, func() error) {
			var r pushRequest
			return &r, func() error {
				if r.Mutations == nil {
					return fieldsync.InvalidField("mutations", "mutations must be a list.")
				}
				return nil
			}
		},
		"intake": plain(sync.ClaimReport{}),
		"assign": func() (any, func() error) {
			var r assignRequest
			return &r, func() error {
				if isNull(r.AssigneeID) {
					return fieldsync.InvalidField("assignee_id", "assignee_id must be the id of a rep of the branch.")
				}
				return nil
			}
		},
		"review":   decision,
		"decision": decision,
		"payment": func() (any, func() error) {
			var r paymentRequest
			return &r, func() error {
				if isNull(r.AmountPaid) {
					return fieldsync.InvalidField("amount_paid", "amount_paid is required: the amount paid, in cents.")
				}
				return nil
			}
		},
	}
}

// optionalJSONBodies are the bodies a command may leave out (cancel, reopen), read by
// decodeOptionalJSON.
func optionalJSONBodies() map[string]func() any {
	return map[string]func() any{
		"cancel": func() any { return &baseRequest{} },
		"reopen": func() any { return &reopenRequest{} },
	}
}

// FuzzDecodeJSON feeds arbitrary bodies to the decoder every JSON endpoint uses, into each type an
// endpoint decodes, followed by the handler's own checks of the shape. It must never panic, every
// failure must be a client error with a stable code and a message without Go's own text, and a
// body that is not UTF-8 is never taken.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{
		`{"login":"a","password":"b","device":{"id":"0190a8a0-0000-7000-8000-000000000001","platform":"ios"}}`,
		`{"refresh_token":"x"}`, `{"token":"t","platform":"android"}`, `{"login": 1}`, `{"x":1}`, `[]`, `null`,
		`{"device":{"id":"nope"}}`, `{} {}`, `{"login":"\ud800"}`, "", "{", "{\"name\":\"\xff\"}",
		`{"name":"Branch"}`, `{"branch_id":"0190a8a0-0000-7000-8000-000000000001","role":"rep","rep_kind":"agent","login":"l","name":"n","password":"p"}`,
		`{"mutations":[{"id":"0190a8a0-0000-7000-8000-000000000001","type":"task","op":"update","entity_id":"0190a8a0-0000-7000-8000-000000000002","base_version":3,"client_time":"2026-01-01T00:00:00Z","fields":{"title":"x"}}]}`,
		`{"mutations":[{"id":"abc","client_time":"yesterday"}]}`, `{"mutations":null}`,
		`{"id":"0190a8a0-0000-7000-8000-000000000001","customer_id":"0190a8a0-0000-7000-8000-000000000002","policy_number":"P","kind":"other","hospitalised":true,"hospital":"H","amount_claimed":5}`,
		`{"assignee_id":"0190a8a0-0000-7000-8000-000000000001","base_version":2}`, `{"assignee_id":null}`,
		`{"decision":"approved","note":"ok","base_version":1}`, `{"decision":"maybe"}`, `{"amount_paid":100}`, `{"amount_paid":"1"}`,
		`{"base_version":-1}`, `{"base_version":1e400}`, "  ",
	} {
		f.Add([]byte(seed))
	}
	check := func(t *testing.T, name string, body []byte, err error) {
		t.Helper()
		if err == nil {
			if !utf8.Valid(body) {
				t.Fatalf("%s: a body that is not UTF-8 was taken: %q", name, body)
			}
			return
		}
		var fe *fieldsync.Error
		var he *echo.HTTPError
		if errors.As(err, &he) {
			t.Fatalf("%s: echo error outside the body limit: %v", name, err)
		}
		if !errors.As(err, &fe) || fe.Kind != fieldsync.EINVALID || fe.Code == "" || fe.Message == "" {
			t.Fatalf("%s: body %q: error %#v is not a client error with a code", name, body, err)
		}
		for _, internal := range []string{"json:", "invalid UUID", "parsing time", "Go value", "cannot unmarshal"} {
			if strings.Contains(fe.Message, internal) {
				t.Fatalf("%s: body %q: message %q carries Go's text", name, body, fe.Message)
			}
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for name, newBody := range jsonBodies() {
			v, validate := newBody()
			err := decodeJSONFrom(bytes.NewReader(body), v)
			if err == nil && validate != nil {
				err = validate()
			}
			check(t, name, body, err)
		}
		e := echo.New()
		for name, newBody := range optionalJSONBodies() {
			c := e.NewContext(httptest.NewRequest("POST", "/", bytes.NewReader(body)), httptest.NewRecorder())
			err := decodeOptionalJSON(c, newBody())
			if err == nil && len(bytes.TrimSpace(body)) == 0 {
				continue // left out: taken as {}
			}
			check(t, name, body, err)
		}
	})
}

// TestAppendChangeIsTheSameJSON: the hand-written pull entry decodes to exactly what
// json.Marshal of the change would.
func TestAppendChangeIsTheSameJSON(t *testing.T) {
	for _, ch := range []sync.Change{
		{Type: "task", ID: uuid.New(), Op: "upsert", Version: 42, Data: json.RawMessage(`{"id": "x", "title": "Visit \"Ana\"", "n": [1, 2]}`)},
		{Type: "document", ID: uuid.New(), Op: "delete", Reason: "out_of_scope"},
	} {
		want, err := json.Marshal(ch)
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		if err := json.Unmarshal(appendChange(nil, ch), &a); err != nil {
			t.Fatalf("not JSON: %s", appendChange(nil, ch))
		}
		if err := json.Unmarshal(want, &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("got %s, want %s", appendChange(nil, ch), want)
		}
	}
}
