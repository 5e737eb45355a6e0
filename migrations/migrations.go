// Package migrations holds the database schema as numbered, append-only SQL files and applies them
// with goose. The binary (fieldsync migrate, serve, dev) and the tests share this one code path, so
// the schema a test runs against is exactly the one production gets.
//
// Never edit a file that has landed: add a new one with the next number.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed *.sql
var files embed.FS

// FS returns the embedded migration files.
func FS() fs.FS { return files }

// provider returns a goose provider over db that holds a PostgreSQL advisory lock while it
// migrates, so that replicas starting together apply each migration once. The lock id is derived
// from the schema: replicas of one deployment share it, while tests, each in a schema of its own,
// do not wait for each other.
func provider(ctx context.Context, db *sql.DB) (*goose.Provider, error) {
	var schema string
	if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return nil, fmt.Errorf("read current schema: %w", err)
	}
	h := fnv.New64a()
	h.Write([]byte("fieldsync migrations " + schema))
	// Poll every second for up to five minutes: a long migration on another replica is waited for.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(int64(h.Sum64())), lock.WithLockTimeout(1, 300))
	if err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, files, goose.WithSessionLocker(locker))
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return p, nil
}

// Up applies every migration not yet applied to db, in order, each in its own transaction. The
// schema used is the connection's search_path, which lets tests give each test a schema of its own.
func Up(ctx context.Context, db *sql.DB) error {
	p, err := provider(ctx, db)
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// Status writes one line per known migration (version, state, when applied, file) to w.
func Status(ctx context.Context, db *sql.DB, w io.Writer) error {
	p, err := provider(ctx, db)
	if err != nil {
		return err
	}
	statuses, err := p.Status(ctx)
	if err != nil {
		return fmt.Errorf("read migration status: %w", err)
	}
	for _, s := range statuses {
		applied := "pending"
		if s.State == goose.StatePending {
			fmt.Fprintf(w, "%05d  %-8s  %-25s  %s\n", s.Source.Version, applied, "-", s.Source.Path)
			continue
		}
		applied = "applied"
		fmt.Fprintf(w, "%05d  %-8s  %-25s  %s\n", s.Source.Version, applied, s.AppliedAt.UTC().Format("2006-01-02T15:04:05Z"), s.Source.Path)
	}
	return nil
}
