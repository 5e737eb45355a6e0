package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
)

// decodeJSON reads the request body into v. Unknown fields are rejected, never dropped; so are
// trailing data and bodies over the limit. Errors carry stable codes: malformed_json,
// unknown_field, invalid_value, payload_too_large.
func decodeJSON(c echo.Context, v any) error {
	return decodeJSONFrom(c.Request().Body, v)
}

func decodeJSONFrom(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var he *echo.HTTPError
		if errors.As(err, &he) {
			return he
		}
		return fieldsync.Errorf(fieldsync.EINVALID, "malformed_json", "The body must hold exactly one JSON value.")
	}
	return nil
}

func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &he):
		return he // the body limit, mapped to payload_too_large by the error handler
	case errors.Is(err, io.EOF):
		return fieldsync.Errorf(fieldsync.EINVALID, "malformed_json", "The request body is empty; it must be JSON.")
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return fieldsync.Errorf(fieldsync.EINVALID, "malformed_json", "The request body is not valid JSON.")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(body)"
		}
		if typ.Type == reflect.TypeFor[uuid.UUID]() {
			return fieldsync.InvalidField(field, "%s must be a UUID string.", field)
		}
		return fieldsync.InvalidField(field, "%s must be a JSON %s.", field, typ.Type.Kind())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &fieldsync.Error{Kind: fieldsync.EINVALID, Code: "unknown_field",
			Message: fmt.Sprintf("The field %q is not known.", name), Details: map[string]any{"field": name}}
	}
	// Values that fail their own decoding (a malformed UUID, a bad time) land here.
	return fieldsync.Errorf(fieldsync.EINVALID, "invalid_value", "A value in the request body is not valid: %v", err)
}
