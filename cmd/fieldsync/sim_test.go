package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/internal/apitest"
)

// `fieldsync sim` against a running server: the devices work, settle, and the command says they
// converged.
func TestSimAgainstARunningServerConverges(t *testing.T) {
	srv := apitest.Start(t, apitest.Options{Media: true})
	logins := []string{srv.NewUser(t, "rep", "hospital").Login, srv.NewUser(t, "manager", "").Login, srv.NewUser(t, "processor", "").Login}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"sim", "--server", srv.URL, "--devices", "4", "--duration", "3s", "--every", "1s",
		"--seed", "3", "--flaky", "0.1", "--login", strings.Join(logins, ","), "--password", apitest.Password}, nil, &stdout, &stderr)
	if err != nil {
		t.Fatalf("fieldsync sim: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	out := stdout.String()
	for _, want := range []string{"seed 3", "online", "final after", "OK: every device holds exactly its user's snapshot"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestSimRefusesBadFlagsAndAMissingServer(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"sim", "--devices", "0", "--flaky", "1.5"}, nil, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--devices") || !strings.Contains(err.Error(), "--flaky") {
		t.Fatalf("bad flags: %v, want both named", err)
	}
	err = run(context.Background(), []string{"sim", "--server", "http://127.0.0.1:1", "--devices", "1"}, nil, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "make dev") {
		t.Fatalf("no server: %v, want a hint to start one", err)
	}
}
