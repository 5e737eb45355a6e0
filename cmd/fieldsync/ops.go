package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/fieldsync/fieldsync/server"
)

// version is the release this binary was built from, stamped by the build:
//
//	go build -ldflags "-X main.version=$(git describe --always --dirty)" ./cmd/fieldsync
//
// as `make build` and the Dockerfile do. Unstamped (go run, go build, go install), buildVersion
// falls back on what the Go toolchain recorded.
var version string

// buildVersion returns the stamped version, else the commit the toolchain recorded (with -dirty
// when the work tree had changes), else the module version of `go install ...@version`, else
// "devel".
func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	var revision string
	var modified bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if revision != "" {
		if len(revision) > 12 {
			revision = revision[:12]
		}
		if modified {
			revision += "-dirty"
		}
		return revision
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	return "devel"
}

// cmdVersion prints the version alone on stdout, for scripts and bug reports.
func cmdVersion(args []string, stdout io.Writer) error {
	if len(args) != 0 {
		return errUsage
	}
	fmt.Fprintln(stdout, buildVersion())
	return nil
}

// cmdOpenAPI prints the OpenAPI description the server serves, for the tools that generate
// clients' types from it (clients/typescript: npm run gen) without a running server.
func cmdOpenAPI(args []string, stdout io.Writer) error {
	if len(args) != 0 {
		return errUsage
	}
	_, err := stdout.Write(server.OpenAPI())
	return err
}

// healthcheckTimeout bounds `fieldsync healthcheck`. It is longer than the 2 seconds /readyz gives
// its own dependency checks, so a slow dependency is reported as the server's 503, not as a
// timeout here.
const healthcheckTimeout = 5 * time.Second

// cmdHealthcheck asks a running server whether it is ready (GET /readyz) and fails unless it
// answers 200. It exists for Docker's HEALTHCHECK: the distroless image has no shell, curl or
// wget. By default it asks the server this environment configures (FIELDSYNC_ADDR) on loopback.
func cmdHealthcheck(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("healthcheck", stderr)
	url := fs.String("url", readyzURL(cfg.Addr), "the server's readiness endpoint")
	timeout := fs.Duration("timeout", healthcheckTimeout, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return errUsage
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck --url: %w", err)
	}
	// No proxy: the server asked about is this host's (or the container's) own.
	client := &http.Client{Transport: &http.Transport{}}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("not ready: %w", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready: %s answered %s: %s", *url, res.Status, bytes.TrimSpace(body))
	}
	fmt.Fprintln(stdout, "ready")
	return nil
}

// readyzURL is the /readyz of a server listening on addr (FIELDSYNC_ADDR), reached over loopback
// when it listens on every interface.
func readyzURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		// serve refuses such an address, so no server is there to ask; the default port is.
		host, port = "", "8080"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz"
}
