package testenv

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/fieldsync/fieldsync/internal/devenv"
	"github.com/fieldsync/fieldsync/media"
)

var (
	// mainCalled is set by Main; a MinIO started without it would outlive the tests' cleanup.
	mainCalled bool

	storeMu  sync.Mutex
	store    *devenv.MinIOServer // started on first use, stopped by Main
	storeErr error               // why store could not be started
)

// Main runs the package's tests, stops the services started for them and exits with the tests'
// exit code. Call it from TestMain in every package whose tests use S3.
func Main(m *testing.M) {
	mainCalled = true
	code := m.Run()
	atExitMu.Lock()
	for i := len(atExit) - 1; i >= 0; i-- {
		atExit[i]()
	}
	atExitMu.Unlock()
	storeMu.Lock()
	if store != nil {
		if err := store.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: stop MinIO: %v\n", err)
		}
		store = nil
	}
	storeMu.Unlock()
	closeAdmin()
	os.Exit(code)
}

var (
	atExitMu sync.Mutex
	atExit   []func()
)

// AtExit runs f when Main has run the tests, before it exits: for what a package's tests share
// (a browser), started by the first test that needs it.
func AtExit(f func()) {
	atExitMu.Lock()
	defer atExitMu.Unlock()
	atExit = append(atExit, f)
}

// s3Server returns the store the tests use: from TEST_S3_ENDPOINT, TEST_S3_ACCESS_KEY,
// TEST_S3_SECRET_KEY, TEST_S3_REGION and TEST_S3_USE_SSL if set, else this process's MinIO,
// started on first use.
func s3Server(ctx context.Context) (media.Config, error) {
	if endpoint := os.Getenv("TEST_S3_ENDPOINT"); endpoint != "" {
		cfg := media.Config{
			Endpoint:  endpoint,
			AccessKey: os.Getenv("TEST_S3_ACCESS_KEY"),
			SecretKey: os.Getenv("TEST_S3_SECRET_KEY"),
			Region:    os.Getenv("TEST_S3_REGION"),
		}
		if s := os.Getenv("TEST_S3_USE_SSL"); s != "" {
			useSSL, err := strconv.ParseBool(s)
			if err != nil {
				return media.Config{}, fmt.Errorf("TEST_S3_USE_SSL=%q: want true or false", s)
			}
			cfg.UseSSL = useSSL
		}
		return cfg, nil
	}

	if !mainCalled {
		return media.Config{}, fmt.Errorf("TEST_S3_ENDPOINT is not set, so S3 starts MinIO, which needs " +
			"testenv.Main to stop it: add `func TestMain(m *testing.M) { testenv.Main(m) }` to the package's tests")
	}
	storeMu.Lock()
	defer storeMu.Unlock()
	// A MinIO that failed to start is not retried: each test would wait for it in vain.
	if store == nil && storeErr == nil {
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		// StartMinIO, not MinIO: a developer's FIELDSYNC_S3_* store is not for tests.
		store, storeErr = devenv.StartMinIO(ctx, log, "")
	}
	if storeErr != nil {
		return media.Config{}, storeErr
	}
	cfg := store.Config
	cfg.Bucket = ""
	return cfg, nil
}

// S3 returns the configuration of a fresh, empty bucket named test-<random hex> in the tests'
// object store: the one at TEST_S3_ENDPOINT (with TEST_S3_ACCESS_KEY, TEST_S3_SECRET_KEY and
// optional TEST_S3_REGION and TEST_S3_USE_SSL) if set, else a MinIO started for this test process
// (see Main). Its objects and the bucket are removed when the test ends. It calls t.Fatalf if the
// store cannot be started or reached; tests never skip for want of a store.
func S3(t testing.TB) media.Config {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cfg, err := s3Server(ctx)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	cfg.Bucket = "test-" + devenv.RandomHex(8)
	store, err := media.NewStore(cfg)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := store.EnsureBucket(ctx); err != nil {
		t.Fatalf("testenv: create bucket %s on %s: %v", cfg.Bucket, cfg.Endpoint, err)
	}
	client := store.Client()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := removeBucket(ctx, client, cfg.Bucket); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	return cfg
}

// removeBucket removes every object, object version and unfinished upload in bucket, then the
// bucket.
func removeBucket(ctx context.Context, client *minio.Client, bucket string) error {
	for upload := range client.ListIncompleteUploads(ctx, bucket, "", true) {
		if upload.Err != nil {
			return fmt.Errorf("list unfinished uploads in bucket %s: %w", bucket, upload.Err)
		}
		if err := client.RemoveIncompleteUpload(ctx, bucket, upload.Key); err != nil {
			return fmt.Errorf("abort upload of %s in bucket %s: %w", upload.Key, bucket, err)
		}
	}

	// A test's bucket holds few objects: list them all, then remove them in batches.
	var objects []minio.ObjectInfo
	for obj := range client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true, WithVersions: true}) {
		if obj.Err != nil {
			return fmt.Errorf("list bucket %s: %w", bucket, obj.Err)
		}
		objects = append(objects, obj)
	}
	toRemove := make(chan minio.ObjectInfo, len(objects))
	for _, obj := range objects {
		toRemove <- obj
	}
	close(toRemove)
	for rerr := range client.RemoveObjects(ctx, bucket, toRemove, minio.RemoveObjectsOptions{}) {
		if rerr.Err != nil {
			return fmt.Errorf("remove %s from bucket %s: %w", rerr.ObjectName, bucket, rerr.Err)
		}
	}
	if err := client.RemoveBucket(ctx, bucket); err != nil {
		return fmt.Errorf("remove bucket %s: %w", bucket, err)
	}
	return nil
}
