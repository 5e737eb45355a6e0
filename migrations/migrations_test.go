package migrations_test

import (
	"context"
	"io/fs"
	"testing"

	"github.com/fieldsync/fieldsync/internal/testenv"
	"github.com/fieldsync/fieldsync/migrations"
	"github.com/jackc/pgx/v5/stdlib"
	"golang.org/x/sync/errgroup"
)

// TestReplicasMigrateTogether starts several migrations of one schema at once, as replicas starting
// together do: the lock makes them take turns, and every one succeeds.
func TestReplicasMigrateTogether(t *testing.T) {
	t.Parallel()
	db := testenv.DB(t) // migrated already; start again from nothing in the same schema
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `DROP SCHEMA `+db.Schema+` CASCADE; CREATE SCHEMA `+db.Schema); err != nil {
		t.Fatal(err)
	}
	var g errgroup.Group
	for range 4 {
		g.Go(func() error {
			sqlDB := stdlib.OpenDBFromPool(db.Pool)
			defer sqlDB.Close()
			return migrations.Up(ctx, sqlDB)
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	var applied int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	files, _ := fs.Glob(migrations.FS(), "*.sql")
	if applied != len(files) {
		t.Fatalf("%d migrations recorded, want %d", applied, len(files))
	}
}

// TestSchemaEnforcesDomainRules checks that the database itself refuses what the domain forbids,
// whatever code writes to it.
func TestSchemaEnforcesDomainRules(t *testing.T) {
	t.Parallel()
	db := testenv.DB(t)
	ctx := context.Background()
	mustExec := func(sql string) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	mustExec(`INSERT INTO branches (id, name) VALUES ('00000000-0000-0000-0000-00000000000b', 'B')`)
	for name, sql := range map[string]string{
		"unknown role":           `INSERT INTO users (id, branch_id, role, name, login, password_hash) VALUES (gen_random_uuid(), '00000000-0000-0000-0000-00000000000b', 'boss', 'n', 'l1', 'h')`,
		"rep without a kind":     `INSERT INTO users (id, branch_id, role, name, login, password_hash) VALUES (gen_random_uuid(), '00000000-0000-0000-0000-00000000000b', 'rep', 'n', 'l2', 'h')`,
		"manager without branch": `INSERT INTO users (id, role, name, login, password_hash) VALUES (gen_random_uuid(), 'manager', 'n', 'l3', 'h')`,
		"unknown branch":         `INSERT INTO customers (id, branch_id, name) VALUES (gen_random_uuid(), gen_random_uuid(), 'c')`,
		"duplicate branch name":  `INSERT INTO branches (id, name) VALUES (gen_random_uuid(), 'b')`,
	} {
		if _, err := db.Pool.Exec(ctx, sql); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
