package migrations_test

import (
	"context"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/fieldsync/fieldsync/internal/testenv"
	"github.com/fieldsync/fieldsync/migrations"
)

// restoredEdits is the migration that holds the edits once made to 00001 and 00002 after they
// landed.
const restoredEdits = 6

// releasedDir holds 00001 and 00002 as the last release had them, edited: every deployment of it
// was migrated with these. They are the test's data, not migrations, and never change either.
const releasedDir = "testdata/released"

// TestRestoredMigrationsReachTodaysSchema checks that a database ends with one schema whichever
// 00001 and 00002 it was migrated with: A, the restored ones (a fresh database, or one migrated
// before the edits); B, the released, edited ones (a deployment of the last release), both
// followed by every later migration up to and including 00006; C, what the released files made
// without 00006. Then A and B take every migration after 00006 too and must still be equal.
func TestRestoredMigrationsReachTodaysSchema(t *testing.T) {
	t.Parallel()
	released := releasedFiles(t)

	c := emptySchema(t)
	migrateWith(t, c, withFiles(embeddedFiles(t, 3, restoredEdits-1), released))
	want := dumpCatalog(t, c)

	a := emptySchema(t)
	migrateWith(t, a, embeddedFiles(t, 1, restoredEdits-1))
	// Proof that the dump sees what the edits changed: without 00006 the restored files fall short.
	if got := dumpCatalog(t, a); slices.Equal(got, want) {
		t.Fatal("the restored 00001 and 00002 alone already give the released schema: the dump misses the edits, or they were not restored")
	}
	migrateWith(t, a, embeddedFiles(t, 1, restoredEdits))
	assertSameCatalog(t, "restored files and 00006 (A)", dumpCatalog(t, a), "released files (C)", want)

	b := emptySchema(t)
	migrateWith(t, b, withFiles(embeddedFiles(t, 3, restoredEdits), released))
	assertSameCatalog(t, "released files and 00006 (B)", dumpCatalog(t, b), "released files (C)", want)

	// The migrations after 00006 must hold either start too.
	migrateWith(t, a, embeddedFiles(t, 1, 1<<30))
	migrateWith(t, b, withFiles(embeddedFiles(t, 3, 1<<30), released))
	assertSameCatalog(t, "restored files, all migrations (A)", dumpCatalog(t, a), "released files, all migrations (B)", dumpCatalog(t, b))
}

// embeddedFiles returns the embedded migrations numbered from..to.
func embeddedFiles(t *testing.T, from, to int) fstest.MapFS {
	t.Helper()
	names, err := fs.Glob(migrations.FS(), "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	out := fstest.MapFS{}
	for _, name := range names {
		prefix, _, _ := strings.Cut(name, "_")
		n, err := strconv.Atoi(prefix)
		if err != nil {
			t.Fatalf("migration %s has no number", name)
		}
		if n < from || n > to {
			continue
		}
		data, err := fs.ReadFile(migrations.FS(), name)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = &fstest.MapFile{Data: data}
	}
	return out
}

// releasedFiles returns the released 00001 and 00002.
func releasedFiles(t *testing.T) fstest.MapFS {
	t.Helper()
	out := fstest.MapFS{}
	for _, name := range []string{"00001_schema.sql", "00002_sync_triggers.sql"} {
		data, err := os.ReadFile(path.Join(releasedDir, name))
		if err != nil {
			t.Fatal(err)
		}
		out[name] = &fstest.MapFile{Data: data}
	}
	return out
}

// withFiles returns the union of the file sets.
func withFiles(sets ...fstest.MapFS) fstest.MapFS {
	out := fstest.MapFS{}
	for _, set := range sets {
		for name, f := range set {
			out[name] = f
		}
	}
	return out
}

// emptySchema returns a schema of the test's own with nothing in it.
func emptySchema(t *testing.T) *testenv.Database {
	t.Helper()
	db := testenv.DB(t) // migrated already; start again from nothing in the same schema
	if _, err := db.Pool.Exec(context.Background(), `DROP SCHEMA `+db.Schema+` CASCADE; CREATE SCHEMA `+db.Schema); err != nil {
		t.Fatal(err)
	}
	return db
}

// migrateWith applies the migrations of fsys not yet applied to db's schema, the way Up does.
func migrateWith(t *testing.T, db *testenv.Database, fsys fs.FS) {
	t.Helper()
	sqlDB := stdlib.OpenDBFromPool(db.Pool)
	defer sqlDB.Close()
	if err := migrations.UpFrom(context.Background(), sqlDB, fsys); err != nil {
		t.Fatal(err)
	}
}

// catalogQueries list, one text per object, what the schema's catalog says of its relations,
// columns, constraints, indexes, sequences, types, functions and triggers: what migrations make.
// $1 is the schema.
var catalogQueries = []string{
	`SELECT format('relation %s kind %s', c.relname, c.relkind)
	   FROM pg_class c WHERE c.relnamespace = $1::text::regnamespace`,
	`SELECT format('column %s #%s %s %s%s%s%s', c.relname,
	               row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum), a.attname,
	               format_type(a.atttypid, a.atttypmod),
	               CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END,
	               ' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid),
	               CASE WHEN a.attidentity <> '' THEN ' IDENTITY ' || a.attidentity::text ELSE '' END
	                 || CASE WHEN a.attgenerated <> '' THEN ' GENERATED ' || a.attgenerated::text ELSE '' END)
	   FROM pg_attribute a
	   JOIN pg_class c ON c.oid = a.attrelid
	   LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	  WHERE c.relnamespace = $1::text::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
	    AND a.attnum > 0 AND NOT a.attisdropped`,
	`SELECT format('constraint %s %s %s', c.relname, k.conname, pg_get_constraintdef(k.oid))
	   FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
	  WHERE c.relnamespace = $1::text::regnamespace`,
	`SELECT 'index ' || pg_get_indexdef(i.indexrelid)
	   FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
	  WHERE c.relnamespace = $1::text::regnamespace`,
	`SELECT format('sequence %s %s start %s min %s max %s increment %s cycle %s', sequencename, data_type,
	               start_value, min_value, max_value, increment_by, cycle)
	   FROM pg_sequences WHERE schemaname = $1`,
	`SELECT format('type %s %s %s', t.typname, t.typtype,
	               (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid))
	   FROM pg_type t WHERE t.typnamespace = $1::text::regnamespace AND t.typtype IN ('e', 'd')`,
	`SELECT 'function ' || pg_get_functiondef(p.oid)
	   FROM pg_proc p WHERE p.pronamespace = $1::text::regnamespace AND p.prokind IN ('f', 'p')`,
	`SELECT 'trigger ' || pg_get_triggerdef(g.oid)
	   FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
	  WHERE c.relnamespace = $1::text::regnamespace AND NOT g.tgisinternal`,
}

// dumpCatalog returns the catalog's account of db's schema, sorted, with the schema's name taken
// out so that two schemas compare.
func dumpCatalog(t *testing.T, db *testenv.Database) []string {
	t.Helper()
	var out []string
	for _, q := range catalogQueries {
		rows, err := db.Pool.Query(context.Background(), q, db.Schema)
		if err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, strings.ReplaceAll(s, db.Schema+".", ""))
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	slices.Sort(out)
	return out
}

// assertSameCatalog fails with what is only in one of two catalog dumps.
func assertSameCatalog(t *testing.T, gotName string, got []string, wantName string, want []string) {
	t.Helper()
	onlyIn := func(a, b []string) []string {
		var only []string
		for _, s := range a {
			if _, found := slices.BinarySearch(b, s); !found {
				only = append(only, s)
			}
		}
		return only
	}
	if !slices.Equal(got, want) {
		extra, missing := onlyIn(got, want), onlyIn(want, got)
		t.Errorf("schema of %s differs from that of %s\nonly in %s:\n  %s\nonly in %s:\n  %s", gotName, wantName,
			gotName, strings.Join(extra, "\n  "), wantName, strings.Join(missing, "\n  "))
	}
}
