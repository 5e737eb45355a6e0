package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/fieldsync/fieldsync/internal/devenv"
	"github.com/fieldsync/fieldsync/migrations"
)

// defaultDatabase is the database tests use on the local server when TEST_DATABASE_URL is unset.
const defaultDatabase = "fieldsync_test"

// Database is a migrated PostgreSQL schema that belongs to one test.
type Database struct {
	// Pool is a small pool whose connections use Schema as their search_path.
	Pool *pgxpool.Pool
	// URL leads to the same schema (through the options parameter), for a second server or a
	// subprocess under test. pgx, libpq and psql all understand it.
	URL string
	// Schema is the schema's name, test_ followed by random hex digits.
	Schema string
}

// admin is this process's connection to the test server, used to create and drop schemas.
type admin struct {
	serverURL string
	pool      *pgxpool.Pool
}

var (
	adminMu   sync.Mutex
	adminConn *admin
)

// getAdmin connects to the test server on first use. Unlike sync.Once, a failure is not
// remembered, so a test run that starts PostgreSQL midway recovers.
func getAdmin(ctx context.Context) (*admin, error) {
	adminMu.Lock()
	defer adminMu.Unlock()
	if adminConn != nil {
		return adminConn, nil
	}
	serverURL := os.Getenv("TEST_DATABASE_URL")
	if serverURL == "" {
		serverURL = devenv.PostgresURL(devenv.LocalPostgresAddr, defaultDatabase)
		if err := devenv.CreateDatabase(ctx, serverURL, defaultDatabase); err != nil {
			return nil, fmt.Errorf("TEST_DATABASE_URL is not set and the local default %s is not usable: %w\n"+
				"Start PostgreSQL (Debian/Ubuntu: pg_ctlcluster $(ls /etc/postgresql | sort -V | tail -1) main start; "+
				"macOS: brew services start postgresql@16) or set TEST_DATABASE_URL to a postgres:// URL of a "+
				"database tests may create schemas in", serverURL, err)
		}
	}
	if !strings.HasPrefix(serverURL, "postgres://") && !strings.HasPrefix(serverURL, "postgresql://") {
		return nil, fmt.Errorf("TEST_DATABASE_URL must be a postgres:// URL (tests derive per-schema URLs from it)")
	}
	cfg, err := pgxpool.ParseConfig(serverURL)
	if err != nil {
		return nil, fmt.Errorf("parse TEST_DATABASE_URL: %w", err)
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		if pool != nil {
			pool.Close()
		}
		return nil, fmt.Errorf("connect to test database %s (set TEST_DATABASE_URL, or start PostgreSQL "+
			"on %s): %w", redact(serverURL), devenv.LocalPostgresAddr, err)
	}
	adminConn = &admin{serverURL: serverURL, pool: pool}
	return adminConn, nil
}

// closeAdmin closes the admin pool, if it was opened.
func closeAdmin() {
	adminMu.Lock()
	defer adminMu.Unlock()
	if adminConn != nil {
		adminConn.pool.Close()
		adminConn = nil
	}
}

// DB returns a fresh schema, with every migration applied, on the server at TEST_DATABASE_URL
// (default: database fieldsync_test on the local server, created if missing). The schema is
// dropped and the pool closed when the test ends. It calls t.Fatalf, naming TEST_DATABASE_URL, if
// the server cannot be reached or the migrations fail.
func DB(t testing.TB) *Database {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	a, err := getAdmin(ctx)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}

	schema := "test_" + devenv.RandomHex(8)
	if _, err := a.pool.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("testenv: create schema %s: %v", schema, err)
	}
	// Registered first so it runs last: after the pool below is closed.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := a.pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("testenv: drop schema %s: %v", schema, err)
		}
	})

	schemaURL, err := withSearchPath(a.serverURL, schema)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := migrate(ctx, schemaURL); err != nil {
		t.Fatalf("testenv: migrate schema %s: %v", schema, err)
	}

	cfg, err := pgxpool.ParseConfig(schemaURL)
	if err != nil {
		t.Fatalf("testenv: parse schema URL: %v", err)
	}
	// Many parallel tests each hold a pool, across several test processes: keep them small.
	cfg.MaxConns = 8
	cfg.MinConns = 0
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("testenv: connect to schema %s: %v", schema, err)
	}
	t.Cleanup(pool.Close)

	return &Database{Pool: pool, URL: schemaURL, Schema: schema}
}

// migrate applies the migrations over a database/sql connection to dbURL.
func migrate(ctx context.Context, dbURL string) error {
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return fmt.Errorf("parse URL: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	return migrations.Up(ctx, db)
}

// withSearchPath returns serverURL with the options parameter extended so that every connection
// made through it uses schema as its search_path.
func withSearchPath(serverURL, schema string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", fmt.Errorf("parse TEST_DATABASE_URL: %w", err)
	}
	q := u.Query()
	q.Set("options", strings.TrimSpace(q.Get("options")+" -csearch_path="+schema))
	// libpq decodes only %XX escapes, not "+" as a space.
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	return u.String(), nil
}

// redact returns serverURL without its password, fit for a message.
func redact(serverURL string) string {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
