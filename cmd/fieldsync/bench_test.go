package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/fieldsync/fieldsync/internal/testenv"
)

// The load tool starts the server as os.Executable() serve, which in this package's tests is the
// test binary: started so (with benchChildEnv set), it is `fieldsync serve`, before any test
// runs.
func init() {
	if os.Getenv(benchChildEnv) == "" || len(os.Args) < 2 || os.Args[1] != "serve" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fieldsync:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// TestBenchQuick runs `fieldsync bench --quick` end to end, over the tests' PostgreSQL and object
// store (in a database and a bucket of its own), and checks that the JSON report has every
// figure, each baseline measured. It asserts nothing about speed: the figures of a quick run
// under the race detector say only that the tool works.
func TestBenchQuick(t *testing.T) {
	dbURL := os.Getenv("TEST_DATABASE_URL")
	if dbURL == "" {
		dbURL = "postgres://postgres@127.0.0.1:5432/fieldsync_test?sslmode=disable"
	}
	s3 := testenv.S3(t) // the tests' store; the bench makes and removes a bucket of its own there
	for k, v := range map[string]string{
		"DATABASE_URL": dbURL, "FIELDSYNC_S3_ENDPOINT": s3.Endpoint, "FIELDSYNC_S3_ACCESS_KEY": s3.AccessKey,
		"FIELDSYNC_S3_SECRET_KEY": s3.SecretKey, "FIELDSYNC_S3_REGION": s3.Region, "FIELDSYNC_S3_USE_SSL": strconv.FormatBool(s3.UseSSL),
	} {
		t.Setenv(k, v)
	}
	out := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"bench", "--quick", "--out", out}, nil, &stdout, &stderr); err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr.String())
	}
	t.Logf("the table:\n%s", stdout.String())

	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var report map[string]any
	if err := json.Unmarshal(data, &report); err != nil {
		t.Fatalf("the report is not JSON: %v", err)
	}
	figure := func(path string) float64 {
		var v any = report
		for _, k := range strings.Split(path, ".") {
			m, ok := v.(map[string]any)
			if !ok {
				return -1
			}
			if v, ok = m[k]; !ok {
				return -1
			}
		}
		f, ok := v.(float64)
		if !ok {
			return -1
		}
		return f
	}
	// Every measurement and every baseline: present, and more than zero.
	for _, path := range []string{
		"push.api", "push.baseline", "push.ratio", "push.server_cpu_us_per_unit",
		"pull.api", "pull.baseline", "pull.ratio", "pull.server_cpu_us_per_unit",
		"initial_sync.records", "initial_sync.api_seconds", "initial_sync.baseline_seconds", "initial_sync.ratio",
		"upload.api", "upload.baseline", "upload.ratio", "upload.server_cpu_us_per_unit",
		"notification.messages", "notification.latency.count", "notification.latency.max_ms",
		"long_poll.devices", "long_poll.pushes", "long_poll.latency.count", "long_poll.latency.p50_ms", "long_poll.latency.p99_ms",
		"long_poll.poll_answers", "long_poll.delivery.count", "long_poll.login_seconds", "long_poll.db_transactions_per_second",
		"server.pid", "server.cpu_seconds", "server.peak_rss_mb",
		"push.server.cpu_seconds", "long_poll.server.peak_rss_mb", "long_poll.server.machine_cores",
	} {
		if v := figure(path); v <= 0 {
			t.Errorf("%s: %v, want a figure above zero", path, v)
		}
	}
	// Zero is a fine figure for these, but they must be there.
	for _, path := range []string{"notification.missing", "notification.latency.p50_ms", "long_poll.push_errors", "long_poll.poll_errors"} {
		if v := figure(path); v < 0 {
			t.Errorf("%s missing from the report", path)
		}
	}
	if v := figure("notification.missing"); v != 0 {
		t.Errorf("%v notifications never reached the fake FCM", v)
	}
	if figure("notification.messages") != 2*figure("notification.events") {
		t.Errorf("%v messages for %v reassignments, want two each", figure("notification.messages"), figure("notification.events"))
	}
	goals, _ := report["goals"].([]any)
	names := map[string]bool{}
	for _, g := range goals {
		g, _ := g.(map[string]any)
		name, _ := g["name"].(string)
		if _, ok := g["met"].(bool); !ok || g["measured"] == "" || g["measured"] == "not run" {
			t.Errorf("goal %q was not judged: %v", name, g)
		}
		names[name] = true
	}
	for _, want := range []string{"push", "pull", "upload", "writers_p99", "server_memory"} {
		if !names[want] {
			t.Errorf("the report has no goal %q", want)
		}
	}
	for _, want := range []string{"push (", "pull (", "initial sync", "upload (", "notification", "writers' pushes", "server memory"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the table has no row %q", want)
		}
	}
}

func TestPprofAddrMustBeLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"": true, "127.0.0.1:6060": true, "localhost:6060": true, "[::1]:6060": true,
		":6060": false, "0.0.0.0:6060": false, "10.0.0.5:6060": false, "6060": false,
	} {
		if err := validPprofAddr(addr); (err == nil) != ok {
			t.Errorf("FIELDSYNC_PPROF_ADDR=%q: error %v, want accepted %v", addr, err, ok)
		}
	}
}
