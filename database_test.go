package fieldsync_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestFromDatabase(t *testing.T) {
	for _, c := range []struct {
		name        string
		err         error
		kind, code  string
		field, says string
	}{
		{"a one-column check", &pgconn.PgError{Code: "23514", TableName: "claims", ConstraintName: "claims_amount_paid_check"},
			fieldsync.EINVALID, "invalid_value", "amount_paid", "amount_paid"},
		{"a check over several columns", &pgconn.PgError{Code: "23514", TableName: "claims", ConstraintName: "claims_check1"},
			fieldsync.EINVALID, "invalid_value", "", "do not go together"},
		{"a value too long", &pgconn.PgError{Code: "22001", Message: "value too long for type character varying(200)"},
			fieldsync.EINVALID, "invalid_value", "", "too long"},
		{"U+0000", &pgconn.PgError{Code: "22021", Message: "invalid byte sequence for encoding \"UTF8\": 0x00"},
			fieldsync.EINVALID, "invalid_value", "", "U+0000"},
		{"a missing value", &pgconn.PgError{Code: "23502", TableName: "tasks", ColumnName: "title"},
			fieldsync.EINVALID, "invalid_value", "title", "required"},
		{"a foreign key", fmt.Errorf("insert: %w", &pgconn.PgError{Code: "23503", TableName: "tasks", ConstraintName: "tasks_claim_id_fkey"}),
			fieldsync.EINVALID, "not_found", "claim_id", "does not exist"},
		{"a unique key", &pgconn.PgError{Code: "23505", TableName: "claims", ConstraintName: "claims_number_key"},
			fieldsync.ECONFLICT, "already_exists", "number", "already exists"},
		{"an administrator's shutdown", &pgconn.PgError{Code: "57P01"}, fieldsync.EUNAVAILABLE, "database_unavailable", "", "unreachable"},
		{"a refused connection", fmt.Errorf("acquire: %w", &pgconn.ConnectError{}), fieldsync.EUNAVAILABLE, "database_unavailable", "", "unreachable"},
		{"a socket's failure", fmt.Errorf("query: %w", &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}),
			fieldsync.EUNAVAILABLE, "database_unavailable", "", "unreachable"},
		{"a result cut short", fmt.Errorf("read snapshot: %w", io.ErrUnexpectedEOF), fieldsync.EUNAVAILABLE, "database_unavailable", "", "unreachable"},
		{"a pool that cannot connect in time", fmt.Errorf("acquire: %w", context.DeadlineExceeded),
			fieldsync.EUNAVAILABLE, "database_unavailable", "", "unreachable"},
	} {
		fe := fieldsync.FromDatabase(c.err)
		if fe == nil {
			t.Errorf("%s: not translated", c.name)
			continue
		}
		if fe.Kind != c.kind || fe.Code != c.code || !strings.Contains(fe.Message, c.says) {
			t.Errorf("%s: %s %s %q", c.name, fe.Kind, fe.Code, fe.Message)
		}
		if got, _ := fe.Details["field"].(string); got != c.field {
			t.Errorf("%s: details.field %q, want %q", c.name, got, c.field)
		}
		if strings.Contains(fe.Message, "_check") || strings.Contains(fe.Message, "_key") || strings.Contains(fe.Message, "0x00") {
			t.Errorf("%s: message %q carries the database's text", c.name, fe.Message)
		}
		if c.kind == fieldsync.EUNAVAILABLE && fe.RetryAfter <= 0 {
			t.Errorf("%s: no Retry-After", c.name)
		}
	}
	for _, err := range []error{nil, errors.New("something else"), &pgconn.PgError{Code: "42P01"}} {
		if fe := fieldsync.FromDatabase(err); fe != nil {
			t.Errorf("%v: translated to %v", err, fe)
		}
	}
}
