package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
)

// decodeJSON reads the request body into v. Unknown fields are rejected, never dropped; so are
// trailing data, bytes that are not UTF-8 and bodies over the limit. Errors carry stable codes:
// malformed_json, unknown_field, invalid_value (naming the field), payload_too_large, and
// request_timeout for a body that stops arriving (see boundBodyReads).
func decodeJSON(c echo.Context, v any) error {
	return decodeJSONFrom(c.Request().Body, v)
}

func decodeJSONFrom(r io.Reader, v any) error {
	// The whole body is read first, as json.Decoder would buffer it anyway: a failure of the
	// read (the limit, the deadline, a client gone) is told apart from bad JSON, and a value that
	// fails its own decoding can be found again to name its field.
	data, err := io.ReadAll(r)
	if err != nil {
		return jsonError(err)
	}
	return decodeJSONBytes(data, v)
}

// decodeJSONBytes decodes a body read whole into v, with decodeJSON's rules and errors.
func decodeJSONBytes(data []byte, v any) error {
	// JSON is UTF-8 (RFC 8259). encoding/json would quietly turn each invalid byte inside a
	// string into U+FFFD, storing text the client never sent.
	if !utf8.Valid(data) {
		return fieldsync.Errorf(fieldsync.EINVALID, "malformed_json", "The request body is not valid JSON: it is not UTF-8.")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err, data, v)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return fieldsync.Errorf(fieldsync.EINVALID, "malformed_json", "The body must hold exactly one JSON value.")
	}
	return nil
}

// jsonError is the client's error for a JSON body that could not be read whole.
func jsonError(err error) error {
	var he *echo.HTTPError
	var fe *fieldsync.Error
	switch {
	case errors.As(err, &he):
		return he // the body limit, mapped to payload_too_large by the error handler
	case errors.As(err, &fe):
		return fe // the body's deadline (boundBodyReads)
	}
	// The connection broke or the chunked framing was bad: nobody may be there to read this.
	return fieldsync.Errorf(fieldsync.EINVALID, "bad_request", "The request body could not be read whole.")
}

// decodeError translates a failure of decoding data into v into the client's error, in words for
// a person: Go's own text (decoder messages, parser errors of UUIDs and times) is never shown.
func decodeError(err error, data []byte, v any) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return fieldsync.Errorf(fieldsync.EINVALID, "malformed_json", "The request body is empty; it must be JSON.")
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return fieldsync.Errorf(fieldsync.EINVALID, "malformed_json", "The request body is not valid JSON.")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(body)"
		}
		return fieldsync.InvalidField(field, "%s must be %s.", field, describeType(typ.Type))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &fieldsync.Error{Kind: fieldsync.EINVALID, Code: "unknown_field",
			Message: fmt.Sprintf("The field %q is not known.", name), Details: map[string]any{"field": name}}
	}
	// A value that failed its own decoding (a malformed UUID, a bad time): encoding/json does not
	// say where, so it is looked for.
	if field, t, ok := findBadValue(data, reflect.TypeOf(v)); ok {
		return fieldsync.InvalidField(field, "%s must be %s.", field, describeType(t))
	}
	return fieldsync.Errorf(fieldsync.EINVALID, "invalid_value", "A value in the request body is not valid.")
}

// describeType says in words what a JSON value of type t must be.
func describeType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case reflect.TypeFor[uuid.UUID]():
		return "a UUID string"
	case reflect.TypeFor[time.Time]():
		return "an RFC 3339 time string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a JSON string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number in range"
	case reflect.Float32, reflect.Float64:
		return "a JSON number"
	case reflect.Slice, reflect.Array:
		return "a JSON list"
	case reflect.Struct, reflect.Map:
		return "a JSON object"
	}
	return "a valid value"
}

// findBadValue walks data along the type t it was decoded into, and returns the path (the dotted
// field names, as json.UnmarshalTypeError.Field has them) and type of the first value that
// decodes on its own to an error. It is only run after a decode failed.
func findBadValue(data []byte, t reflect.Type) (string, reflect.Type, bool) {
	var whole any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if dec.Decode(&whole) != nil {
		return "", nil, false
	}
	return badValueAt("", whole, t)
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[interface{ UnmarshalText([]byte) error }]()
)

func badValueAt(path string, v any, t reflect.Type) (string, reflect.Type, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil {
		return "", nil, false
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		raw, err := json.Marshal(v)
		if err == nil && json.Unmarshal(raw, reflect.New(t).Interface()) != nil {
			return path, t, true
		}
		return "", nil, false
	}
	join := func(name string) string {
		if path == "" {
			return name
		}
		return path + "." + name
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, _ := v.(map[string]any)
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if f.Anonymous && f.Tag.Get("json") == "" {
				if p, bt, ok := badValueAt(path, v, f.Type); ok {
					return p, bt, true
				}
				continue
			}
			for _, key := range slices.Sorted(maps.Keys(obj)) {
				if x := obj[key]; strings.EqualFold(key, name) {
					if p, bt, ok := badValueAt(join(name), x, f.Type); ok {
						return p, bt, true
					}
				}
			}
		}
	case reflect.Slice, reflect.Array:
		list, _ := v.([]any)
		for _, x := range list {
			if p, bt, ok := badValueAt(path, x, t.Elem()); ok {
				return p, bt, true
			}
		}
	case reflect.Map:
		obj, _ := v.(map[string]any)
		// In key order, so that a body with two bad values names the same one every time.
		for _, key := range slices.Sorted(maps.Keys(obj)) {
			if p, bt, ok := badValueAt(join(key), obj[key], t.Elem()); ok {
				return p, bt, true
			}
		}
	}
	return "", nil, false
}
