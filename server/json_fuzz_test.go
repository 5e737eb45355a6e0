package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
)

// FuzzDecodeJSON feeds arbitrary bodies to the decoder every JSON endpoint uses. It must never
// panic, and every failure must be a client error with a stable code, never an internal one.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{
		`{"login":"a","password":"b","device":{"id":"0190a8a0-0000-7000-8000-000000000001","platform":"ios"}}`,
		`{"refresh_token":"x"}`, `{"token":"t","platform":"android"}`, `{"login": 1}`, `{"x":1}`, `[]`, `null`,
		`{"device":{"id":"nope"}}`, `{} {}`, `{"login":"\ud800"}`, "", "{",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		targets := []any{&account.LoginRequest{}, &account.PushToken{}, &struct {
			RefreshToken string `json:"refresh_token"`
		}{}}
		for _, v := range targets {
			err := decodeJSONFrom(bytes.NewReader(body), v)
			if err == nil {
				continue
			}
			var fe *fieldsync.Error
			var he *echo.HTTPError
			if errors.As(err, &he) {
				t.Fatalf("echo error outside the body limit: %v", err)
			}
			if !errors.As(err, &fe) || fe.Kind != fieldsync.EINVALID || fe.Code == "" {
				t.Fatalf("body %q: error %#v is not a client error with a code", body, err)
			}
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
