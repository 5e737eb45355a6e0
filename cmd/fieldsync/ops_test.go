package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/testenv"
	"github.com/fieldsync/fieldsync/server"
)

// TestVersionPrintsTheStampedVersion checks that `fieldsync version` prints what the build stamped
// with -X main.version, alone, and something when nothing was stamped; and that the builds that
// stamp (make build, the Dockerfile) name this variable.
func TestVersionPrintsTheStampedVersion(t *testing.T) {
	defer func(v string) { version = v }(version)

	version = "v1.4.0-3-g0123abc-dirty"
	out, err := runCLI(t, "", "version")
	if err != nil || out != "v1.4.0-3-g0123abc-dirty\n" {
		t.Fatalf("version printed %q, %v; want the stamped version alone", out, err)
	}

	version = "" // go run, go test: what the toolchain recorded, or devel
	out, err = runCLI(t, "", "version")
	if err != nil || strings.TrimSpace(out) == "" || strings.Count(out, "\n") != 1 {
		t.Fatalf("unstamped version printed %q, %v; want one non-empty line", out, err)
	}

	if _, err := runCLI(t, "", "version", "--verbose"); !errors.Is(err, errUsage) {
		t.Errorf("version --verbose: %v, want a usage error", err)
	}

	for file, want := range map[string]string{
		"Makefile":   `-ldflags "-X main.version=$(VERSION)"`,
		"Dockerfile": `-X main.version=${VERSION}`,
	} {
		data, err := os.ReadFile(filepath.Join("..", "..", file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), want) {
			t.Errorf("%s does not stamp the version with %s", file, want)
		}
	}
}

// TestHealthcheckPassesOnlyWhenReady runs `fieldsync healthcheck` against a real server: ready,
// then one whose object store is down (its /readyz answers 503), then no server at all, then one
// that never answers. Only the first passes, and none makes it hang.
func TestHealthcheckPassesOnlyWhenReady(t *testing.T) {
	t.Run("ready", func(t *testing.T) {
		env := startServe(t) // sets FIELDSYNC_ADDR, which healthcheck asks by default
		if out, err := runCLI(t, "", "healthcheck"); err != nil || out != "ready\n" {
			t.Fatalf("healthcheck of a ready server: %q, %v", out, err)
		}
		if _, err := runCLI(t, "", "healthcheck", "--url", env.base+"/readyz"); err != nil {
			t.Fatalf("healthcheck --url of a ready server: %v", err)
		}
	})

	t.Run("object store down", func(t *testing.T) {
		base := startServeWithoutObjectStore(t)
		_, err := runCLI(t, "", "healthcheck", "--url", base+"/readyz")
		if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), "503") {
			t.Fatalf("healthcheck of a server whose object store is down: %v, want a 503 failure", err)
		}
	})

	t.Run("no server", func(t *testing.T) {
		_, err := runCLI(t, "", "healthcheck", "--url", "http://"+freeAddr(t)+"/readyz")
		if err == nil || errors.Is(err, errUsage) {
			t.Fatalf("healthcheck with nothing listening: %v, want a failure", err)
		}
	})

	t.Run("no answer", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() { // accepts, reads nothing, answers nothing; lets go when the listener closes
			var conns []net.Conn
			for {
				conn, err := ln.Accept()
				if err != nil {
					for _, c := range conns {
						c.Close()
					}
					return
				}
				conns = append(conns, conn)
			}
		}()
		_, err = runCLI(t, "", "healthcheck", "--timeout", "200ms", "--url", "http://"+ln.Addr().String()+"/readyz")
		if err == nil || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("healthcheck of a server that never answers: %v, want the deadline exceeded", err)
		}
	})
}

func TestReadyzURLFollowsTheListenAddress(t *testing.T) {
	for addr, want := range map[string]string{
		":8080":          "http://127.0.0.1:8080/readyz",
		"0.0.0.0:9000":   "http://127.0.0.1:9000/readyz",
		"[::]:9000":      "http://127.0.0.1:9000/readyz",
		"10.1.2.3:8081":  "http://10.1.2.3:8081/readyz",
		"[::1]:8082":     "http://[::1]:8082/readyz",
		"localhost:8083": "http://localhost:8083/readyz",
	} {
		if got := readyzURL(addr); got != want {
			t.Errorf("readyzURL(%q) = %q, want %q", addr, got, want)
		}
	}
}

// startServeWithoutObjectStore runs `fieldsync serve` over a fresh schema with the object store
// pointed at a port nothing listens on: serve starts (the store may come later) and stays not
// ready. It returns the server's base URL once it answers /healthz.
func startServeWithoutObjectStore(t *testing.T) string {
	t.Helper()
	db := testenv.DB(t)
	addr := freeAddr(t)
	for k, v := range map[string]string{
		"DATABASE_URL":               db.URL,
		"FIELDSYNC_ADDR":             addr,
		"FIELDSYNC_JWT_KEY_FILE":     filepath.Join(t.TempDir(), "jwt.pem"),
		"FIELDSYNC_JWT_GENERATE_KEY": "true",
		"FIELDSYNC_S3_ENDPOINT":      freeAddr(t),
		"FIELDSYNC_S3_ACCESS_KEY":    "nobody",
		"FIELDSYNC_S3_SECRET_KEY":    "nothing-listens-there",
		"FIELDSYNC_S3_BUCKET":        "fieldsync",
		"FIELDSYNC_SHUTDOWN_TIMEOUT": "5s",
	} {
		t.Setenv(k, v)
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, strings.NewReader(""), io.Discard, logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop within 20s of being told to")
		}
	})
	base := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; {
		select {
		case err := <-done:
			t.Fatalf("serve stopped at start: %v\n%s", err, logs.String())
		default:
		}
		res, err := http.Get(base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not alive within 30s (%v)\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOpenAPIPrintsTheServedDescription checks that `fieldsync openapi` prints the description the
// server serves at /openapi.json, byte for byte (clients generate their types from it).
func TestOpenAPIPrintsTheServedDescription(t *testing.T) {
	out, err := runCLI(t, "", "openapi")
	if err != nil || out != string(server.OpenAPI()) {
		t.Fatalf("openapi printed %d bytes, %v; want the served description (%d bytes)", len(out), err, len(server.OpenAPI()))
	}
	if _, err := runCLI(t, "", "openapi", "--yaml"); !errors.Is(err, errUsage) {
		t.Errorf("openapi --yaml: %v, want a usage error", err)
	}
}
