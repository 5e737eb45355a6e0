package devenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// clusterDir is a temporary directory a PostgreSQL cluster of ours lives in (a throwaway server,
// a test's standby), and whom its programs run as there.
type clusterDir struct {
	path string
	// asRoot: initdb, pg_basebackup and postgres refuse to run as root, so a root caller runs
	// them as the postgres system user (uid, gid), who owns the directory.
	asRoot   bool
	uid, gid uint32
}

// makeClusterDir makes the directory, given to user postgres when the caller is root. It
// returns errNoPostgresUser (wrapped) when that is needed and there is no such user.
func makeClusterDir(log *slog.Logger, prefix string) (*clusterDir, error) {
	dir, err := makeTempDir(log, prefix)
	if err != nil {
		return nil, err
	}
	d := &clusterDir{path: dir, asRoot: os.Geteuid() == 0}
	if d.asRoot {
		if d.uid, d.gid, err = postgresUser(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("%w: %w", errNoPostgresUser, err)
		}
		if err := chownTree(dir, d.uid, d.gid); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("give %s to user postgres: %w", dir, err)
		}
	}
	return d, nil
}

// errNoPostgresUser: the caller is root and the machine has no postgres user to run the
// cluster's programs as.
var errNoPostgresUser = errors.New("PostgreSQL's programs refuse to run as root and there is no postgres user")

// prepare has cmd run in the directory (the postgres user may not be able to enter the
// caller's), as user postgres when the caller is root.
func (d *clusterDir) prepare(cmd *exec.Cmd) {
	cmd.Dir = d.path
	if d.asRoot {
		runAs(cmd, d.uid, d.gid)
	}
}

// own gives a file the caller wrote in the directory to the cluster's user.
func (d *clusterDir) own(path string) error {
	if !d.asRoot {
		return nil
	}
	return os.Chown(path, int(d.uid), int(d.gid))
}

// serveOnFreePort starts postgres, the command postgres(port) makes, on a free loopback port and
// waits until it accepts connections at urlOf(port) and ready (if any) succeeds there. A free
// port can be taken by someone else before postgres binds it, so it tries a few. what names the
// server in errors.
func serveOnFreePort(ctx context.Context, d *clusterDir, what string, postgres func(port int) *exec.Cmd, urlOf func(port int) string,
	ready func(url string) error) (*process, string, error) {
	var last error
	for range 3 {
		port, err := FreePort()
		if err != nil {
			return nil, "", err
		}
		cmd := postgres(port)
		d.prepare(cmd)
		dieWithParent(cmd, syscall.SIGQUIT) // SIGQUIT: immediate shutdown, children included
		p, err := startProcess(cmd)
		if err != nil {
			return nil, "", err
		}
		u := urlOf(port)
		err = waitPostgres(ctx, p, u)
		if err == nil && ready != nil {
			err = ready(u)
		}
		if err == nil {
			return p, u, nil
		}
		_ = p.stop(syscall.SIGQUIT, 5*time.Second)
		last = fmt.Errorf("start %s on port %d: %w; its output: %s", what, port, err, p.out)
		if ctx.Err() != nil || !strings.Contains(p.out.String(), "already in use") {
			return nil, "", last
		}
	}
	return nil, "", last
}

// hostOf is the host:port of a server URL, for logs (the URL may hold a password).
func hostOf(serverURL string) string {
	u, err := url.Parse(serverURL)
	if err != nil {
		return ""
	}
	return u.Host
}
