package tsclient_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/apitest"
	"github.com/fieldsync/fieldsync/internal/testenv"
	"github.com/fieldsync/fieldsync/server"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// clientDir is clients/typescript, from this package's directory.
var clientDir = filepath.Join("..", "..", "clients", "typescript")

// needNode fails the test, saying what to do, when Node or the package's dependencies are missing.
// Nothing is installed here: tests never download (make ts-deps does, from the lockfile).
func needNode(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install Node.js 20 and npm (Debian: apt-get install nodejs npm), then run `npm ci --prefix clients/typescript` (make ts-deps)", tool)
		}
	}
	lock, err := os.Stat(filepath.Join(clientDir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	mods, err := os.Stat(filepath.Join(clientDir, "node_modules", ".package-lock.json"))
	if err != nil {
		t.Fatal("clients/typescript/node_modules is missing: run `npm ci --prefix clients/typescript` (make ts-deps does it)")
	}
	if mods.ModTime().Before(lock.ModTime()) {
		t.Fatal("clients/typescript/node_modules is older than package-lock.json: run `npm ci --prefix clients/typescript` (make ts-deps does it)")
	}
}

// TestTypeScriptClient builds the client and runs its tests, the conformance kit included, against
// a server of the test's own.
func TestTypeScriptClient(t *testing.T) {
	needNode(t)
	srv := apitest.Start(t, apitest.Options{Media: true, Notifications: true})
	manager := srv.NewUser(t, "manager", "")
	rep := srv.NewUser(t, "rep", "agent")
	rep2 := srv.NewUser(t, "rep", "agent")
	// The tests expire tokens by moving the server's clock, not by waiting for them.
	clock := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("by"))
		if r.Method != http.MethodPost || err != nil || d <= 0 {
			http.Error(w, "POST ?by=DURATION", http.StatusBadRequest)
			return
		}
		srv.Advance(d)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(clock.Close)
	env := []string{
		"FIELDSYNC_TEST_CLOCK=" + clock.URL,
		"FIELDSYNC_URL=" + srv.URL,
		"FIELDSYNC_MANAGER=" + manager.Login,
		"FIELDSYNC_REP=" + rep.Login,
		"FIELDSYNC_REP2=" + rep2.Login,
		"FIELDSYNC_PASSWORD=" + apitest.Password,
	}
	run(t, env, "npm", "run", "--silent", "build")
	// One test file at a time: the machine running `make test` is busy with Go tests too.
	args := []string{"--test", "--test-concurrency=1"}
	if p := os.Getenv("FIELDSYNC_TS_TESTS"); p != "" {
		// While working on the client: run only the tests whose names match.
		args = append(args, "--test-name-pattern="+p)
	}
	run(t, env, "node", append(args, "dist/test/")...)
}

// TestGeneratedTypesAreCurrent fails when the server's description changed and the client's copy
// of it (clients/typescript/openapi.json, from which `npm run gen` writes the types) was not
// regenerated. The node test generated.test.ts checks the types against that copy.
func TestGeneratedTypesAreCurrent(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(clientDir, "openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	var committed, served any
	if err := json.Unmarshal(data, &committed); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(server.OpenAPI(), &served); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(committed, served) {
		t.Fatal("clients/typescript/openapi.json differs from the description the server serves: run `npm run gen --prefix clients/typescript` and commit the result")
	}
}

// run runs a command in clients/typescript, its output going to the test's log line by line, and
// fails the test if it fails.
func run(t *testing.T, env []string, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = clientDir
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env, "NO_COLOR=1", "NODE_OPTIONS=--enable-source-maps")
	var out lineLogger
	out.t = t
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	out.flush()
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
}

// lineLogger writes what it is given to t.Log, a line at a time.
type lineLogger struct {
	t   *testing.T
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadString('\n')
		if err == io.EOF {
			l.buf.WriteString(line)
			return len(p), nil
		}
		l.t.Log(strings.TrimRight(line, "\r\n"))
	}
}

func (l *lineLogger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	sc := bufio.NewScanner(&l.buf)
	for sc.Scan() {
		l.t.Log(sc.Text())
	}
}
