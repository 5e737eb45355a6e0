package sync

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
)

// Mutation is one queued write of a device (docs/protocol.md, push).
type Mutation struct {
	ID          uuid.UUID                  `json:"id"`
	Type        string                     `json:"type"`
	Op          string                     `json:"op"`
	EntityID    uuid.UUID                  `json:"entity_id"`
	BaseVersion *int64                     `json:"base_version,omitempty"`
	Fields      map[string]json.RawMessage `json:"fields,omitempty"`
	// ClientTime is when the device made the change. It is kept for people reading a conflict,
	// never used for ordering: device clocks are not trusted.
	ClientTime *time.Time `json:"client_time,omitempty"`
	// reason is why a screen's command made the change, where the engine records one (a task's
	// reopening). Devices do not send it.
	reason string
	// command: a screen's command (Engine.Command), made on the record as it is now. A status it
	// asks for is one move: the statuses a device's write may have skipped offline are walked only
	// for pushes (mergeStatus); a screen asking for a status the record cannot reach in one move
	// (paying a claim not yet approved) is refused.
	command bool
}

// Result is the outcome of one mutation. Every result carries the server's record as the caller
// may see it (Version and Entity), a rejected one too, or says why there is none (Gone), so that
// the device can always correct its copy.
type Result struct {
	ID        uuid.UUID       `json:"id"`
	Status    string          `json:"status"`
	Version   int64           `json:"version,omitempty"`
	Entity    json.RawMessage `json:"entity,omitempty"`
	Gone      string          `json:"gone,omitempty"`
	Conflicts []Conflict      `json:"conflicts,omitempty"`
	Error     *ResultError    `json:"error,omitempty"`
}

// Why a result carries no record (Result.Gone): the record was deleted, is not in the caller's
// scope, or does not exist (a rejected create). With deleted and out_of_scope, Version is the
// record's current version.
const (
	GoneDeleted    = "deleted"
	GoneOutOfScope = "out_of_scope"
	GoneNotFound   = "not_found"
)

// Result statuses.
const (
	StatusApplied  = "applied"
	StatusMerged   = "merged"
	StatusConflict = "conflict"
	StatusRejected = "rejected"
)

// ResultError says why a mutation was rejected.
type ResultError struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

// Conflict is one field the server could not take as sent, or took over a concurrent change.
type Conflict struct {
	Field  string `json:"field"`
	Yours  any    `json:"yours"`
	Theirs any    `json:"theirs"`
	Kept   string `json:"kept"` // "yours" or "theirs"
	Rule   string `json:"rule"`
}

// Conflict rules, as recorded.
const (
	RuleLastWriteWins     = "last_write_wins"
	RuleStateMachine      = "status_state_machine"
	RuleChecklistItem     = "checklist_item"
	RuleFirstDecisionWins = "first_decision_wins"
	RuleDeleteWins        = "delete_wins"
	RuleUpdateWins        = "update_wins"
	RuleForbiddenField    = "forbidden_field"
)

// Limits of a push (docs/protocol.md).
const (
	MaxMutationsPerPush = 1000
	maxChecklistItems   = 50
)

var (
	checklistKey = regexp.MustCompile(`^[a-z0-9_]{1,50}$`)
	sha256Hex    = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// checklistItem is one line of a task's checklist.
type checklistItem struct {
	Key   string `json:"key"`
	Label string `json:"label"`
	Done  bool   `json:"done"`
}

// rejectErr builds the *fieldsync.Error a rejected mutation reports.
func rejectErr(code, format string, args ...any) *fieldsync.Error {
	return &fieldsync.Error{Kind: fieldsync.EINVALID, Code: code, Message: fmt.Sprintf(format, args...)}
}

func fieldErr(code, field, format string, args ...any) *fieldsync.Error {
	e := rejectErr(code, format, args...)
	e.Details = map[string]any{"field": field}
	return e
}

// validateShape checks what can be checked of a mutation without the database: known type and
// op, ids, base version, and that every field is known and well typed. It returns the decoded
// values of the fields role may write, ready for SQL, and those of the fields it may not: those
// are refused one by one, as forbidden_field conflicts, unless every field of the mutation is one
// of them, which rejects it (docs/protocol.md §5.5).
func validateShape(m *Mutation, role string) (map[string]any, map[string]any, error) {
	values, forbidden, err := validateFields(m, role)
	if err != nil {
		return nil, nil, err
	}
	if len(forbidden) > 0 && len(values) == 0 {
		name := slices.Min(slices.Collect(maps.Keys(forbidden)))
		return nil, nil, fieldErr("forbidden_field", name, "A %s may not write %s.%s.", role, m.Type, name)
	}
	return values, forbidden, nil
}

func validateFields(m *Mutation, role string) (map[string]any, map[string]any, error) {
	if m.ID == uuid.Nil {
		return nil, nil, fieldErr("invalid_value", "id", "id must be a UUID made by the device.")
	}
	ent, ok := entities[m.Type]
	if !ok {
		return nil, nil, fieldErr("unknown_type", "type", "type %q is not a synced type.", m.Type)
	}
	if m.EntityID == uuid.Nil {
		return nil, nil, fieldErr("invalid_value", "entity_id", "entity_id must be a UUID.")
	}
	switch m.Op {
	case "create":
		if m.BaseVersion != nil && *m.BaseVersion != 0 {
			return nil, nil, fieldErr("invalid_value", "base_version", "A create has no base_version.")
		}
	case "update", "delete":
		if m.BaseVersion == nil || *m.BaseVersion < 1 {
			return nil, nil, fieldErr("invalid_value", "base_version", "An %s needs the base_version the device last saw.", m.Op)
		}
		if m.Op == "delete" && len(m.Fields) > 0 {
			return nil, nil, fieldErr("invalid_value", "fields", "A delete carries no fields.")
		}
	default:
		return nil, nil, fieldErr("invalid_value", "op", "op must be create, update or delete.")
	}
	if m.Op == "update" && len(m.Fields) == 0 {
		return nil, nil, fieldErr("invalid_value", "fields", "An update needs at least one field.")
	}
	values := make(map[string]any, len(m.Fields))
	var forbidden map[string]any
	// In name order, so that a mutation with several bad fields is always refused for the same one.
	for _, name := range slices.Sorted(maps.Keys(m.Fields)) {
		raw := m.Fields[name]
		f, ok := ent.fields[name]
		if !ok {
			// The name is echoed back, and the result is stored as jsonb, which cannot hold U+0000.
			return nil, nil, fieldErr("unknown_field", strings.ToValidUTF8(strings.ReplaceAll(name, "\x00", "\uFFFD"), "\uFFFD"),
				"%s has no writable field %q.", m.Type, name)
		}
		allowed := f.update
		if m.Op == "create" {
			allowed = f.create
		}
		// A forbidden field's value is checked all the same: it is echoed back in its conflict,
		// which is stored as jsonb.
		v, err := decodeValue(name, f, raw)
		if err != nil {
			return nil, nil, err
		}
		if role != RoleSystem && !slices.Contains(allowed, role) {
			if forbidden == nil {
				forbidden = map[string]any{}
			}
			forbidden[name] = v
			continue
		}
		values[name] = v
	}
	if m.Op == "create" {
		for _, name := range ent.required {
			if _, ok := forbidden[name]; ok {
				// Without it there is nothing to create: the role may not create one.
				return nil, nil, fieldErr("forbidden_field", name, "A %s may not write %s.%s.", role, m.Type, name)
			}
			if values[name] == nil {
				return nil, nil, fieldErr("invalid_value", name, "%s is required to create a %s.", name, m.Type)
			}
		}
	}
	return values, forbidden, nil
}

// decodeValue checks one field's JSON value against its kind and limits.
func decodeValue(name string, f field, raw json.RawMessage) (any, error) {
	if isNull(raw) {
		if !f.nullable {
			return nil, fieldErr("invalid_value", name, "%s cannot be null.", name)
		}
		return nil, nil
	}
	bad := func(want string) error { return fieldErr("invalid_value", name, "%s must be %s.", name, want) }
	switch f.kind {
	case kindText, kindEnum:
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, bad("a string")
		}
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			return nil, bad("valid UTF-8 text")
		}
		if f.kind == kindEnum && !slices.Contains(f.enum, s) {
			return nil, bad("one of " + strings.Join(f.enum, ", "))
		}
		if f.kind == kindText && utf8.RuneCountInString(s) > f.max {
			return nil, bad(fmt.Sprintf("at most %d characters", f.max))
		}
		if f.kind == kindText && utf8.RuneCountInString(s) < int(f.min) {
			return nil, bad(fmt.Sprintf("at least %d characters", int(f.min)))
		}
		if name == "sha256" && !sha256Hex.MatchString(s) {
			return nil, bad("64 lowercase hex digits")
		}
		if f.clean != nil {
			s = f.clean(s)
		}
		return s, nil
	case kindInt:
		var n int64
		if json.Unmarshal(raw, &n) != nil || n < 0 || n > int64(f.max) {
			return nil, bad(fmt.Sprintf("a whole number from 0 to %d", f.max))
		}
		return n, nil
	case kindFloat:
		var x float64
		if json.Unmarshal(raw, &x) != nil || math.IsNaN(x) || x < f.min || x > f.maxf {
			return nil, bad(fmt.Sprintf("a number from %g to %g", f.min, f.maxf))
		}
		return x, nil
	case kindBool:
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			return nil, bad("true or false")
		}
		return b, nil
	case kindTime:
		var t time.Time
		if json.Unmarshal(raw, &t) != nil || t.Year() < 2000 || t.Year() > 2200 {
			return nil, bad("an RFC 3339 time")
		}
		return t.UTC().Truncate(time.Microsecond), nil
	case kindUUID:
		var id uuid.UUID
		if json.Unmarshal(raw, &id) != nil || id == uuid.Nil {
			return nil, bad("a UUID")
		}
		return id, nil
	case kindChecklist:
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var items []checklistItem
		if dec.Decode(&items) != nil {
			return nil, bad(`a list of {"key", "label", "done"}`)
		}
		if len(items) > maxChecklistItems {
			return nil, bad(fmt.Sprintf("at most %d items", maxChecklistItems))
		}
		seen := map[string]bool{}
		for _, it := range items {
			if !checklistKey.MatchString(it.Key) || seen[it.Key] {
				return nil, bad("items with unique keys of 1 to 50 characters a-z, 0-9 and _")
			}
			if !utf8.ValidString(it.Label) || strings.ContainsRune(it.Label, 0) || utf8.RuneCountInString(it.Label) > 200 {
				return nil, bad("items with labels of at most 200 characters")
			}
			seen[it.Key] = true
		}
		if items == nil {
			items = []checklistItem{}
		}
		return items, nil
	}
	return nil, bad("valid")
}
