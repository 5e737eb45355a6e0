// Package migrations holds the database schema as numbered, append-only SQL files and applies them
// with goose. The binary (fieldsync migrate, serve, dev) and the tests share this one code path, so
// the schema a test runs against is exactly the one production gets.
//
// Never edit a file that has landed: add a new one with the next number. checksums.txt holds the
// sha256 of every landed file, and TestLandedMigrationsNeverChange fails when one changes or a new
// one is not listed yet (`go test ./migrations -run TestLandedMigrationsNeverChange -update` lists it).
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"

	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed *.sql
var files embed.FS

// FS returns the embedded migration files.
func FS() fs.FS { return files }

func provider(db *sql.DB, fsys fs.FS) (*goose.Provider, error) {
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys)
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return p, nil
}

// Up applies every migration not yet applied to db, in order, each in its own transaction: first
// ours (goose), then the job queue's (River's own migrations, which it versions itself). The
// schema used is the connection's search_path, which lets tests give each test a schema of its
// own.
//
// A PostgreSQL advisory lock is held throughout, so replicas starting together migrate one after
// the other. The lock id is derived from the schema: replicas of one deployment share it, while
// tests, each in a schema of its own, do not wait for each other.
func Up(ctx context.Context, db *sql.DB) error {
	return up(ctx, db, files)
}

// up is Up with the migration files of fsys: the tests migrate with files of the past too.
func up(ctx context.Context, db *sql.DB, fsys fs.FS) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	var schema string
	if err := conn.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return fmt.Errorf("read current schema: %w", err)
	}
	h := fnv.New64a()
	h.Write([]byte("fieldsync migrations " + schema))
	lockID := int64(h.Sum64())
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, lockID); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	// Released with the connection in any case; unlocking early lets the next replica go.
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockID) //nolint:errcheck

	p, err := provider(db, fsys)
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	migrator, err := rivermigrate.New(riverdatabasesql.New(db), &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("job queue migrations: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("apply job queue migrations: %w", err)
	}
	return nil
}

// Status writes one line per known migration (version, state, when applied, file) to w.
func Status(ctx context.Context, db *sql.DB, w io.Writer) error {
	p, err := provider(db, files)
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
