package testenv

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldsync/fieldsync/internal/devenv"
)

// RequireStandbyEnv, when set to 1, makes Standby fail a test instead of skipping it when no
// streaming replica can be made here: .ci/run sets it, having allowed replication.
const RequireStandbyEnv = "FIELDSYNC_TEST_REQUIRE_STANDBY"

// Standby starts a hot standby of the test server (a real streaming replica, see
// devenv.StartStandby) and returns db's schema as read there: a read-only Database whose pool and
// URL lead to the standby. The standby is stopped and removed when the test ends. It skips the
// test, saying why, only when replication is impossible here (no server binaries of the
// primary's version, or the primary refuses replication connections), and fails it instead when
// RequireStandbyEnv is set. settings are more of the standby's, name=value.
func Standby(t testing.TB, db *Database, settings ...string) *Database {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, err := getAdmin(ctx)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	s, err := devenv.StartStandby(ctx, slog.New(slog.DiscardHandler), a.serverURL, settings...)
	if errors.Is(err, devenv.ErrNoReplication) && os.Getenv(RequireStandbyEnv) != "1" {
		t.Skipf("testenv: no standby can be made here, so reads from a standby are not tested: %v", err)
	}
	if err != nil {
		t.Fatalf("testenv: start a standby: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("testenv: stop the standby: %v", err)
		}
	})
	schemaURL, err := withSearchPath(s.URL, db.Schema)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	cfg, err := pgxpool.ParseConfig(schemaURL)
	if err != nil {
		t.Fatalf("testenv: parse standby URL: %v", err)
	}
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("testenv: connect to the standby: %v", err)
	}
	t.Cleanup(pool.Close)
	return &Database{Pool: pool, URL: schemaURL, Schema: db.Schema}
}

// WaitReplay waits until standby has replayed everything primary had written when it was called.
func WaitReplay(t testing.TB, primary, standby *Database) {
	t.Helper()
	if err := devenv.WaitReplay(context.Background(), primary.Pool, standby.Pool); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}
