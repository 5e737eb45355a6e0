// Package fieldsync holds what every part of the service shares: the domain error type with its
// stable codes. The packages beneath it (sync, media, account, notify) return *Error for anything a
// client did wrong, and the HTTP layer maps Kind to a status once, in one table.
package fieldsync

import (
	"errors"
	"fmt"
	"time"
)

// Kinds of domain error. Each maps to one HTTP status at the edge (server.statusByKind).
const (
	EINVALID      = "invalid"                // 400: the request is malformed or a value is wrong
	EUNAUTHORIZED = "unauthorized"           // 401: no valid credentials
	EFORBIDDEN    = "forbidden"              // 403: credentials are fine, the action is not allowed
	ENOTFOUND     = "not_found"              // 404
	ECONFLICT     = "conflict"               // 409: the state on the server does not allow it
	EGONE         = "gone"                   // 410: e.g. a cursor the server can no longer serve
	ETIMEOUT      = "timeout"                // 408: the request's body did not arrive in time
	ETOOLARGE     = "too_large"              // 413
	EMETHOD       = "method_not_allowed"     // 405: the endpoint does not take the request's method
	EPRECONDITION = "precondition_failed"    // 412: e.g. a tus version this server does not speak
	EMEDIATYPE    = "unsupported_media_type" // 415: a body of a type the endpoint does not take
	ECHECKSUM     = "checksum_mismatch"      // 460: the body does not match its checksum (tus)
	ERATELIMIT    = "rate_limited"           // 429
	EUNAVAILABLE  = "unavailable"            // 503: a dependency is down; retry later
	EINTERNAL     = "internal"               // 500: a bug or an unexpected failure; never shown in detail
)

// Error is a failure a client can act on. Code is the stable snake_case code of the protocol's
// error shape ("invalid_credentials", "token_expired", ...); Message is a sentence for a person.
type Error struct {
	Kind    string
	Code    string
	Message string
	Details map[string]any
	// RetryAfter, when set, is sent as the Retry-After header (rate limits, unavailable stores).
	RetryAfter time.Duration
}

// Error returns the message with its code, for logs.
func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns an *Error of the given kind and code with a formatted message.
func Errorf(kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// InvalidField returns an EINVALID error with code invalid_value naming the field at fault, so a
// client can point at the field it sent wrong.
func InvalidField(field, format string, args ...any) *Error {
	return &Error{Kind: EINVALID, Code: "invalid_value", Message: fmt.Sprintf(format, args...),
		Details: map[string]any{"field": field}}
}

// ErrorKind returns the kind of err if it is (or wraps) an *Error, and EINTERNAL otherwise.
func ErrorKind(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return EINTERNAL
}

// ErrorCode returns the code of err if it is (or wraps) an *Error, and "internal" otherwise.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return "internal"
}
