package testenv_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"

	"github.com/fieldsync/fieldsync/internal/testenv"
	"github.com/fieldsync/fieldsync/media"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestDBIsMigrated(t *testing.T) {
	t.Parallel()
	db := testenv.DB(t)

	var versions int
	if err := db.Pool.QueryRow(t.Context(), "SELECT count(*) FROM goose_db_version").Scan(&versions); err != nil {
		t.Fatalf("read goose_db_version: %v", err)
	}
	if versions < 2 { // goose's own row 0 plus at least one migration
		t.Errorf("goose_db_version has %d rows, want at least 2", versions)
	}
	var schema string
	if err := db.Pool.QueryRow(t.Context(), "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if schema != db.Schema {
		t.Errorf("current_schema() = %q, want %q", schema, db.Schema)
	}
}

func TestDBIsolatesTests(t *testing.T) {
	t.Parallel()
	a, b := testenv.DB(t), testenv.DB(t)
	if a.Schema == b.Schema {
		t.Fatalf("both databases use schema %s", a.Schema)
	}

	if _, err := a.Pool.Exec(t.Context(), "CREATE TABLE probe (n int); INSERT INTO probe VALUES (1)"); err != nil {
		t.Fatalf("create table in a: %v", err)
	}
	var found *string
	if err := b.Pool.QueryRow(t.Context(), "SELECT to_regclass('probe')::text").Scan(&found); err != nil {
		t.Fatal(err)
	}
	if found != nil {
		t.Errorf("table probe created in %s is visible in %s as %s", a.Schema, b.Schema, *found)
	}
	// The same name is free in b.
	if _, err := b.Pool.Exec(t.Context(), "CREATE TABLE probe (n int)"); err != nil {
		t.Errorf("create table probe in b: %v", err)
	}
}

func TestDBURLReachesTheSameSchema(t *testing.T) {
	t.Parallel()
	db := testenv.DB(t)
	if _, err := db.Pool.Exec(t.Context(), "CREATE TABLE probe (n int); INSERT INTO probe VALUES (42)"); err != nil {
		t.Fatal(err)
	}

	conn, err := pgx.Connect(t.Context(), db.URL)
	if err != nil {
		t.Fatalf("connect to %s: %v", db.URL, err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT n FROM probe").Scan(&n); err != nil {
		t.Fatalf("read probe through URL: %v", err)
	}
	if n != 42 {
		t.Errorf("probe.n = %d through URL, want 42", n)
	}
}

func TestDBDropsSchemaAtCleanup(t *testing.T) {
	t.Parallel()
	var schema string
	t.Run("use", func(t *testing.T) {
		schema = testenv.DB(t).Schema
	})

	other := testenv.DB(t)
	var exists bool
	err := other.Pool.QueryRow(t.Context(),
		"SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists)
	if err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("schema %s still exists after its test ended", schema)
	}
}

func TestDBInParallel(t *testing.T) {
	t.Parallel()
	for i := range 6 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			db := testenv.DB(t)
			if _, err := db.Pool.Exec(t.Context(), "CREATE TABLE probe (n int)"); err != nil {
				t.Errorf("create table probe: %v", err)
			}
		})
	}
}

func newClient(t *testing.T, cfg media.Config) *minio.Client {
	t.Helper()
	store, err := media.NewStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return store.Client()
}

func TestS3GivesAWorkingBucket(t *testing.T) {
	t.Parallel()
	cfg := testenv.S3(t)
	client := newClient(t, cfg)

	want := []byte("hello from fieldsync")
	_, err := client.PutObject(t.Context(), cfg.Bucket, "a/b.txt", bytes.NewReader(want), int64(len(want)),
		minio.PutObjectOptions{ContentType: "text/plain"})
	if err != nil {
		t.Fatalf("put object: %v", err)
	}
	obj, err := client.GetObject(t.Context(), cfg.Bucket, "a/b.txt", minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("get object: %v", err)
	}
	defer obj.Close()
	got, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("read object: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("object = %q, want %q", got, want)
	}
}

func TestS3GivesEachCallItsOwnBucket(t *testing.T) {
	t.Parallel()
	a, b := testenv.S3(t), testenv.S3(t)
	if a.Bucket == b.Bucket {
		t.Errorf("both calls got bucket %s", a.Bucket)
	}
}

func TestS3RemovesBucketAtCleanup(t *testing.T) {
	t.Parallel()
	var cfg media.Config
	t.Run("use", func(t *testing.T) {
		cfg = testenv.S3(t)
		client := newClient(t, cfg)
		// Objects, and an upload left unfinished, must not stop the bucket's removal.
		for _, name := range []string{"one", "dir/two"} {
			if _, err := client.PutObject(t.Context(), cfg.Bucket, name, bytes.NewReader([]byte(name)), int64(len(name)),
				minio.PutObjectOptions{}); err != nil {
				t.Fatalf("put %s: %v", name, err)
			}
		}
		core := minio.Core{Client: client}
		if _, err := core.NewMultipartUpload(t.Context(), cfg.Bucket, "unfinished", minio.PutObjectOptions{}); err != nil {
			t.Fatalf("start multipart upload: %v", err)
		}
	})

	exists, err := newClient(t, cfg).BucketExists(t.Context(), cfg.Bucket)
	if err != nil {
		t.Fatalf("check bucket: %v", err)
	}
	if exists {
		t.Errorf("bucket %s still exists after its test ended", cfg.Bucket)
	}
}
