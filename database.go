package fieldsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// databaseRetryAfter is what a client is told to wait before trying again while PostgreSQL is
// unreachable: long enough not to hammer a database coming back, short enough for a phone.
const databaseRetryAfter = 5 * time.Second

// FromDatabase returns the *Error a client is shown for a failure reported by PostgreSQL or by
// the connection to it, or nil when err is neither. It is the one place such failures are
// translated (the storage packages and the HTTP error handler both call it), so that:
//   - an unreachable database (a refused or cut connection, a pool that cannot connect in time, a
//     server shutting down) is EUNAVAILABLE database_unavailable with a Retry-After, and a client
//     retries instead of treating a passing outage as a bug;
//   - a value the database refuses (a CHECK, a length, a malformed text, a unique or foreign key)
//     is EINVALID or ECONFLICT with a sentence for a person naming the field where the schema
//     tells it, never the constraint's name or PostgreSQL's own text.
func FromDatabase(err error) *Error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return fromPgError(pgErr)
	}
	if databaseUnreachable(err) {
		return &Error{Kind: EUNAVAILABLE, Code: "database_unavailable",
			Message: "The database is unreachable for the moment; try again shortly.", RetryAfter: databaseRetryAfter}
	}
	return nil
}

// databaseUnreachable reports whether err says the connection to PostgreSQL failed, rather than
// the database refusing what was asked.
func databaseUnreachable(err error) bool {
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	// pgconn marks its own connection-level failures (a write that never reached the server, a
	// lost connection, a timeout) with SafeToRetry; a *net.OpError is a socket's failure.
	var retryable interface{ SafeToRetry() bool }
	return errors.As(err, &connectErr) || errors.As(err, &retryable) || errors.As(err, &netErr) ||
		// A connection cut while a result is read comes back from pgx as a bare unexpected EOF.
		errors.Is(err, io.ErrUnexpectedEOF) ||
		// The pool waits for a connection under the request's deadline; when it passes, the
		// database did not answer in time.
		errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err)
}

// fromPgError translates an error PostgreSQL answered, by its SQLSTATE class.
func fromPgError(pgErr *pgconn.PgError) *Error {
	code := pgErr.Code
	switch {
	case strings.HasPrefix(code, "08"), // connection exception
		code == "57P01", code == "57P02", code == "57P03", // admin, crash shutdown; cannot connect now
		code == "53300": // too many connections
		return &Error{Kind: EUNAVAILABLE, Code: "database_unavailable",
			Message: "The database is unreachable for the moment; try again shortly.", RetryAfter: databaseRetryAfter}
	}
	field := constraintField(pgErr)
	invalid := func(message string) *Error {
		return &Error{Kind: EINVALID, Code: "invalid_value", Message: message, Details: fieldDetails(field)}
	}
	// about names the field in a sentence when it is known.
	about := func(known, unknown string) string {
		if field != "" {
			return fmt.Sprintf(known, field)
		}
		return unknown
	}
	switch code {
	case "23514": // check_violation
		return invalid(about("%s has a value that is not allowed.",
			"The values sent do not go together (a rule spanning several fields refuses them)."))
	case "23502": // not_null_violation
		return invalid(about("%s is required.", "A required value is missing."))
	case "22001": // string_data_right_truncation
		return invalid(about("%s is too long.", "A text value is too long."))
	case "22003": // numeric_value_out_of_range
		return invalid(about("%s is out of range.", "A number is out of range."))
	case "22007", "22008": // invalid_datetime_format, datetime_field_overflow
		return invalid(about("%s must be an RFC 3339 time.", "A time is not a valid RFC 3339 time."))
	case "22P02": // invalid_text_representation
		return invalid(about("%s is not in the expected form.", "A value is not in the expected form (for example a UUID or a number)."))
	case "22021", "22P05": // character_not_in_repertoire, untranslatable_character (e.g. U+0000)
		return invalid(about("%s holds a character that is not allowed (such as U+0000).",
			"A text value holds a character that is not allowed (such as U+0000)."))
	case "23503": // foreign_key_violation
		e := invalid(about("%s refers to a record that does not exist.", "A record this one refers to does not exist."))
		e.Code = "not_found"
		return e
	case "23505": // unique_violation
		return &Error{Kind: ECONFLICT, Code: "already_exists",
			Message: about("A record with that %s already exists.", "A record with those values already exists."),
			Details: fieldDetails(field)}
	}
	return nil
}

// fieldDetails is the details of an error about field: {"field": field}, or none.
func fieldDetails(field string) map[string]any {
	if field == "" {
		return nil
	}
	return map[string]any{"field": field}
}

// constraintField returns the field a constraint guards, when PostgreSQL says it (a not-null
// column) or the constraint carries PostgreSQL's default name for a one-column constraint:
// <table>_<column>_check, _key, _fkey. A constraint over several columns (<table>_check) names no
// field, and its name is never shown.
func constraintField(pgErr *pgconn.PgError) string {
	if pgErr.ColumnName != "" {
		return pgErr.ColumnName
	}
	name, table := pgErr.ConstraintName, pgErr.TableName
	if name == "" || table == "" || !strings.HasPrefix(name, table+"_") {
		return ""
	}
	rest := strings.TrimPrefix(name, table+"_")
	if rest == "pkey" {
		return "id"
	}
	for _, suffix := range []string{"_check", "_fkey", "_key"} {
		if column, ok := strings.CutSuffix(rest, suffix); ok && column != "" {
			return column
		}
	}
	return ""
}
