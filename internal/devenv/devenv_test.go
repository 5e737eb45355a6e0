package devenv

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// queryDatabase returns current_database() over a connection to dbURL.
func queryDatabase(ctx context.Context, dbURL string) (string, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var name string
	err = conn.QueryRow(ctx, "SELECT current_database()").Scan(&name)
	return name, err
}

func TestPostgresUsesDatabaseURL(t *testing.T) {
	const want = "postgres://someone@db.example:5433/elsewhere"
	t.Setenv("DATABASE_URL", want)
	pg, err := Postgres(t.Context(), testLogger(t), "fieldsync")
	if err != nil {
		t.Fatal(err)
	}
	if pg.URL != want {
		t.Errorf("URL = %q, want DATABASE_URL %q", pg.URL, want)
	}
	if err := pg.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestPostgresFindsOrStartsAServer(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	pg, err := Postgres(t.Context(), testLogger(t), "fieldsync_test")
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	name, err := queryDatabase(t.Context(), pg.URL)
	if err != nil {
		t.Fatalf("connect to %s: %v", pg.URL, err)
	}
	if name != "fieldsync_test" {
		t.Errorf("current_database() = %q, want fieldsync_test", name)
	}
}

func TestStartPostgresRunsAThrowawayCluster(t *testing.T) {
	bin, err := findPostgresBin()
	if err != nil {
		t.Fatalf("this test needs PostgreSQL's server binaries: %v", err)
	}
	pg, err := startPostgres(t.Context(), testLogger(t), bin, "throwaway")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(pg.URL, LocalPostgresAddr) {
		t.Errorf("throwaway cluster URL %s uses the default address", pg.URL)
	}
	name, err := queryDatabase(t.Context(), pg.URL)
	if err != nil {
		t.Fatalf("connect to %s: %v", pg.URL, err)
	}
	if name != "throwaway" {
		t.Errorf("current_database() = %q, want throwaway", name)
	}

	if err := pg.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if _, err := queryDatabase(ctx, pg.URL); err == nil {
		t.Errorf("%s still accepts connections after Close", pg.URL)
	}
}

func TestCreateDatabaseRace(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	pg, err := Postgres(t.Context(), testLogger(t), "fieldsync_test")
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()

	name := "devenv_race_" + RandomHex(4)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() { errs[i] = CreateDatabase(t.Context(), pg.URL, name) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Errorf("concurrent CreateDatabase: %v", err)
	}

	conn, err := pgx.Connect(t.Context(), pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), "DROP DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Errorf("drop the database CreateDatabase made: %v", err)
	}
}

func TestMinIOReportsAMissingBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("GOBIN", "")
	t.Setenv("GOPATH", t.TempDir())
	_, err := StartMinIO(t.Context(), testLogger(t), "fieldsync")
	if !errors.Is(err, errMinIONotFound) {
		t.Fatalf("MinIO without a binary: error %v, want %v", err, errMinIONotFound)
	}
	if !strings.Contains(err.Error(), "make minio") || !strings.Contains(err.Error(), MinIOModule) {
		t.Errorf("error %q does not say how to install MinIO", err)
	}
}

func TestMinIOStartsAServerWithABucket(t *testing.T) {
	s, err := StartMinIO(t.Context(), testLogger(t), "devenv-test")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cfg := s.Config
	if len(cfg.AccessKey) < 8 || len(cfg.SecretKey) < 8 {
		t.Errorf("credentials %q/%q are shorter than MinIO accepts", cfg.AccessKey, cfg.SecretKey)
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Region: cfg.Region,
	})
	if err != nil {
		t.Fatal(err)
	}
	exists, err := client.BucketExists(t.Context(), "devenv-test")
	if err != nil {
		t.Fatalf("check bucket: %v", err)
	}
	if !exists {
		t.Errorf("bucket devenv-test was not created")
	}

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if conn, err := net.DialTimeout("tcp", cfg.Endpoint, time.Second); err == nil {
		conn.Close()
		t.Errorf("MinIO at %s still accepts connections after Close", cfg.Endpoint)
	}
}

func TestFindPostgresBinPicksTheNewest(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"9.6", "13", "16", "15"} {
		dir := root + "/lib/postgresql/" + v + "/bin"
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"initdb", "postgres"} {
			if err := os.WriteFile(dir+"/"+name, []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	saved := postgresBinDirs
	postgresBinDirs = []string{root + "/lib/postgresql/*/bin"}
	t.Cleanup(func() { postgresBinDirs = saved })
	t.Setenv("PATH", t.TempDir())

	got, err := findPostgresBin()
	if err != nil {
		t.Fatal(err)
	}
	if want := root + "/lib/postgresql/16/bin"; got != want {
		t.Errorf("findPostgresBin() = %s, want %s", got, want)
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	b := newTailBuffer(8)
	for _, s := range []string{"hello ", "wonderful ", "world"} {
		if _, err := b.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := b.String(), "ul world"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestMakefilePinsTheSameMinIO(t *testing.T) {
	makefile, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if want := "MINIO_MODULE := " + MinIOModule + "\n"; !strings.Contains(string(makefile), want) {
		t.Errorf("Makefile does not contain %q: `make minio` would install another MinIO than devenv.MinIOModule", want)
	}
}

func TestStartMinIORejectsABadBucketName(t *testing.T) {
	start := time.Now()
	_, err := StartMinIO(t.Context(), testLogger(t), "x")
	if err == nil || !strings.Contains(err.Error(), `bucket "x"`) {
		t.Errorf("StartMinIO with bucket x: error %v, want one about the bucket name", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("StartMinIO took %v to reject a bad bucket name", d)
	}
}

func TestMakeTempDirRemovesDirectoriesOfDeadProcesses(t *testing.T) {
	prefix := "fieldsync-devenvtest-" + RandomHex(4) + "-"
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	mkdir := func(owner int) string {
		dir, err := os.MkdirTemp("", prefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(owner)), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	abandoned, live := mkdir(dead.Process.Pid), mkdir(os.Getpid())

	dir, err := makeTempDir(testLogger(t), prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if _, err := os.Stat(abandoned); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("directory of a dead process %s: Stat error %v, want it removed", abandoned, err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("directory of a live process %s: %v, want it kept", live, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, ownerFile)); err != nil || string(b) != strconv.Itoa(os.Getpid()) {
		t.Errorf("%s in the new directory = %q, %v; want this process's pid", ownerFile, b, err)
	}
}
