package sync

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
)

// pushSeeds are push bodies as phones and screens send them, and some they should not.
var pushSeeds = []string{
	`{"mutations":[]}`,
	`{"mutations":[{"id":"0190b6a0-0000-7000-8000-000000000001","type":"task","op":"update","entity_id":"0190b6a0-0000-7000-8000-000000000002",
	  "base_version":1200,"fields":{"status":"completed","completion_note":"All collected."},"client_time":"2026-11-23T08:15:00Z"}]}`,
	`{"mutations":[{"id":"0190b6a0-0000-7000-8000-000000000003","type":"task","op":"create","entity_id":"0190b6a0-0000-7000-8000-000000000004",
	  "fields":{"claim_id":"0190b6a0-0000-7000-8000-000000000005","kind":"hospital_visit","title":"Visit","assignee_id":null,
	  "due_at":"2026-12-01T10:00:00+01:00","location_lat":52.52,"location_lng":13.405,
	  "checklist":[{"key":"id_card","label":"ID card","done":false},{"key":"invoices","label":"Invoices","done":true}]}}]}`,
	`{"mutations":[{"id":"0190b6a0-0000-7000-8000-000000000006","type":"document","op":"create","entity_id":"0190b6a0-0000-7000-8000-000000000007",
	  "fields":{"claim_id":"0190b6a0-0000-7000-8000-000000000005","task_id":null,"kind":"invoice","file_name":"a.jpg","content_type":"image/jpeg",
	  "size_bytes":123456,"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}}]}`,
	`{"mutations":[{"id":"0190b6a0-0000-7000-8000-000000000008","type":"document","op":"delete","entity_id":"0190b6a0-0000-7000-8000-000000000007","base_version":3}]}`,
	`{"mutations":[{"id":"0190b6a0-0000-7000-8000-000000000009","type":"claim","op":"update","entity_id":"0190b6a0-0000-7000-8000-000000000005",
	  "base_version":9,"fields":{"status":"paid","amount_paid":4503599627370496,"decision_note":"\u0000"}}]}`,
	`{"mutations":[{"id":"0190b6a0-0000-7000-8000-00000000000a","type":"notification","op":"update","entity_id":"0190b6a0-0000-7000-8000-00000000000b",
	  "base_version":1,"fields":{"read":true}}]}`,
	`{"mutations":[{"id":"0190b6a0-0000-7000-8000-00000000000c","type":"task_note","op":"create","entity_id":"0190b6a0-0000-7000-8000-00000000000d",
	  "fields":{"task_id":"0190b6a0-0000-7000-8000-000000000002","body":"é\ud83d\ude00","st\u0000atus":1}}]}`,
	`{"mutations":[{"id":"0190b6a0-0000-7000-8000-00000000000e","type":"customer","op":"update","entity_id":"0190b6a0-0000-7000-8000-00000000000f",
	  "base_version":-1,"fields":{"phone":"+49","agent_id":"00000000-0000-0000-0000-000000000000","name":""}}]}`,
	`{"mutations":[{"id":"0190b6a0-0000-7000-8000-000000000010","type":"task","op":"update","entity_id":"0190b6a0-0000-7000-8000-000000000002",
	  "base_version":1,"fields":{"checklist":[{"key":"a","label":"x\u0000","done":true}]}}]}`,
	`{"mutations":[{"id":"0190b6a0-0000-7000-8000-000000000011","type":"task","op":"update","entity_id":"0190b6a0-0000-7000-8000-000000000002",
	  "base_version":1,"fields":{"location_lat":1e400,"due_at":"0001-01-01T00:00:00Z"}}]}`,
	`{"mutations":[{"type":"user","op":"upsert","fields":null}]}`,
}

// FuzzPushDecoder feeds arbitrary bytes through the push decoder (the handler's: unknown fields
// refused) and checks every decoded mutation for every role: the checks never panic, every refusal
// is a client error with a stable code whose stored result PostgreSQL can hold, and every accepted
// value is one the database can store.
func FuzzPushDecoder(f *testing.F) {
	for _, s := range pushSeeds {
		f.Add([]byte(s))
	}
	roles := []string{rep, processor, manager, RoleSystem}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req struct {
			Mutations []Mutation `json:"mutations"`
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if dec.Decode(&req) != nil {
			return
		}
		for i := range req.Mutations {
			m := &req.Mutations[i]
			if _, err := mutationHash(m); err != nil {
				t.Fatalf("hash of a decoded mutation: %v", err)
			}
			for _, role := range roles {
				values, forbidden, err := validateShape(m, role)
				if err != nil {
					checkRejection(t, m, role, err)
					continue
				}
				checkAccepted(t, m, role, values, forbidden)
			}
		}
	})
}

func checkRejection(t *testing.T, m *Mutation, role string, err error) {
	t.Helper()
	var fe *fieldsync.Error
	if !errors.As(err, &fe) {
		t.Fatalf("%s: %T %v is not a *fieldsync.Error", role, err, err)
	}
	if (fe.Kind != fieldsync.EINVALID && fe.Kind != fieldsync.EFORBIDDEN) || fe.Code == "" || fe.Message == "" {
		t.Fatalf("%s: error %+v", role, fe)
	}
	// The result is stored in applied_mutations as jsonb, which refuses U+0000 and bad UTF-8: a
	// result that cannot be stored fails the whole push, again on every retry.
	stored, err := json.Marshal(rejected(m, fe))
	if err != nil {
		t.Fatalf("%s: marshal result: %v", role, err)
	}
	if bytes.Contains(stored, []byte(`\u0000`)) || !utf8.Valid(stored) {
		t.Fatalf("%s: a result PostgreSQL cannot store: %s", role, stored)
	}
}

func checkAccepted(t *testing.T, m *Mutation, role string, values, forbidden map[string]any) {
	t.Helper()
	ent := entities[m.Type]
	if ent == nil || m.ID == uuid.Nil || m.EntityID == uuid.Nil {
		t.Fatalf("%s: accepted %+v", role, m)
	}
	switch m.Op {
	case "create":
	case "update":
		if m.BaseVersion == nil || *m.BaseVersion < 1 || len(values) == 0 {
			t.Fatalf("%s: accepted an update without base version or fields: %+v", role, m)
		}
	case "delete":
		if m.BaseVersion == nil || *m.BaseVersion < 1 || len(values) != 0 {
			t.Fatalf("%s: accepted a delete without base version, or with fields: %+v", role, m)
		}
	default:
		t.Fatalf("%s: accepted op %q", role, m.Op)
	}
	if len(values)+len(forbidden) != len(m.Fields) || (len(forbidden) > 0 && len(values) == 0) {
		t.Fatalf("%s: %d values and %d forbidden for %d fields", role, len(values), len(forbidden), len(m.Fields))
	}
	for name, v := range forbidden {
		// A refused field is echoed back in its conflict, which is stored as jsonb: its value was
		// checked as an accepted one's is.
		fd, ok := ent.fields[name]
		if _, dup := values[name]; !ok || dup {
			t.Fatalf("%s: forbidden field %s.%s unknown, or accepted too", role, m.Type, name)
		}
		checkStorable(t, name, fd, v)
	}
	for name, v := range values {
		fd, ok := ent.fields[name]
		if !ok {
			t.Fatalf("%s: accepted unknown field %s.%s", role, m.Type, name)
		}
		allowed := fd.update
		if m.Op == "create" {
			allowed = fd.create
		}
		if role != RoleSystem && !contains(allowed, role) {
			t.Fatalf("%s: accepted %s.%s, which is not theirs", role, m.Type, name)
		}
		checkStorable(t, name, fd, v)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// storableText reports whether PostgreSQL's text and jsonb can hold s.
func storableText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// checkStorable fails unless v, accepted for field name, is what the database column can hold.
func checkStorable(t *testing.T, name string, fd field, v any) {
	t.Helper()
	switch v := v.(type) {
	case nil:
		if !fd.nullable {
			t.Fatalf("null accepted for %s", name)
		}
	case string:
		n := utf8.RuneCountInString(v)
		if !storableText(v) || (fd.kind == kindText && (n > fd.max || n < int(fd.min))) || (fd.kind == kindEnum && !contains(fd.enum, v)) {
			t.Fatalf("%s: accepted %q", name, v)
		}
	case int64:
		if v < 0 || v > int64(fd.max) {
			t.Fatalf("%s: accepted %d", name, v)
		}
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) || v < fd.min || v > fd.maxf {
			t.Fatalf("%s: accepted %g", name, v)
		}
	case bool:
	case time.Time:
		if v.Year() < 2000 || v.Year() > 2200 || v.Location() != time.UTC {
			t.Fatalf("%s: accepted %s", name, v)
		}
	case uuid.UUID:
		if v == uuid.Nil {
			t.Fatalf("%s: accepted the nil UUID", name)
		}
	case []checklistItem:
		if len(v) > maxChecklistItems {
			t.Fatalf("%s: accepted %d items", name, len(v))
		}
		keys := map[string]bool{}
		for _, it := range v {
			if !checklistKey.MatchString(it.Key) || keys[it.Key] || !storableText(it.Label) || utf8.RuneCountInString(it.Label) > 200 {
				t.Fatalf("%s: accepted item %+v", name, it)
			}
			keys[it.Key] = true
		}
		// It is stored as jsonb.
		if data, _ := json.Marshal(v); bytes.Contains(data, []byte(`\u0000`)) {
			t.Fatalf("%s: accepted %s", name, data)
		}
	default:
		t.Fatalf("%s: accepted a %T", name, v)
	}
}

// FuzzCursor feeds arbitrary tokens to the cursor decoder: it never panics, refuses with
// cursor_expired, never accepts a cursor made for someone else, and what it accepts encodes back
// to a token that decodes to the same place.
func FuzzCursor(f *testing.F) {
	me := &fieldsync.Identity{UserID: uuid.MustParse("0190b6a0-0000-7000-8000-000000000001"), Role: rep}
	f.Add(cursor{user: me.UserID, role: rep, xid: 1234, version: 99}.String())
	f.Add(cursor{user: me.UserID, role: rep, snapshot: true, xid: 7, typeIdx: 3, lastID: uuid.MustParse("0190b6a0-0000-7000-8000-000000000002")}.String())
	f.Add(cursor{user: uuid.New(), role: manager, xid: 1}.String())
	f.Add("garbage")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := parseCursor(token, me)
		if err != nil {
			if !errors.Is(err, errCursorExpired) {
				t.Fatalf("parse %q: %v", token, err)
			}
			return
		}
		if c.user != me.UserID || c.role != me.Role {
			t.Fatalf("accepted another's cursor: %+v", c)
		}
		if c.snapshot && (c.typeIdx < 0 || c.typeIdx > len(snapshotOrder)) || !c.snapshot && c.version < 0 {
			t.Fatalf("accepted %+v", c)
		}
		again, err := parseCursor(c.String(), me)
		if err != nil || again != c {
			t.Fatalf("%+v encodes to %q, which decodes to %+v, %v", c, c.String(), again, err)
		}
	})
}
