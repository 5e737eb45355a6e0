package devenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNoReplication is wrapped by StartStandby's error when the primary cannot have a standby here:
// no PostgreSQL server binaries of its version, or the primary refuses replication connections
// (pg_hba.conf, wal_level, max_wal_senders). Any other error is a standby that should have
// started and did not.
var ErrNoReplication = errors.New("no streaming replica can be made of this PostgreSQL")

// Standby is a hot standby of a PostgreSQL server: a streaming replica in a temporary directory,
// made by pg_basebackup and run by the server binaries of the primary's version.
type Standby struct {
	// URL is the URL it was started for (its database, user and parameters) pointing at the
	// standby instead of the primary.
	URL string
	p   *process
	dir string
}

// Close stops the standby (an immediate shutdown: its files go with it) and removes its directory.
func (s *Standby) Close() error {
	stopErr := s.p.stop(syscall.SIGQUIT, 10*time.Second)
	if err := os.RemoveAll(s.dir); err != nil {
		return errors.Join(stopErr, fmt.Errorf("remove standby directory: %w", err))
	}
	return stopErr
}

// StartStandby makes a hot standby of the server primaryURL points at (the whole cluster, with
// pg_basebackup -R, streaming without a replication slot so that a standby left behind holds no
// WAL on the primary) and starts it on a free loopback port, with hot_standby_feedback on. As
// root, pg_basebackup and postgres run as the postgres system user (postgres refuses root). The
// error wraps ErrNoReplication when replication is impossible here. settings are more of the
// standby's, name=value (a test's recovery_min_apply_delay, say).
func StartStandby(ctx context.Context, log *slog.Logger, primaryURL string, settings ...string) (_ *Standby, err error) {
	primary, err := primarySettings(ctx, primaryURL)
	if err != nil {
		return nil, err
	}
	if primary["wal_level"] == "minimal" || primary["max_wal_senders"] == "0" {
		return nil, fmt.Errorf("%w: the primary has wal_level=%s and max_wal_senders=%s", ErrNoReplication,
			primary["wal_level"], primary["max_wal_senders"])
	}
	num, err := strconv.Atoi(primary["server_version_num"])
	if err != nil {
		return nil, fmt.Errorf("the primary's server_version_num %q", primary["server_version_num"])
	}
	bin, err := findPostgresBinOf(strconv.Itoa(num / 10000))
	if err != nil {
		return nil, err
	}

	d, err := makeClusterDir(log, "fieldsync-standby-")
	if errors.Is(err, errNoPostgresUser) {
		return nil, fmt.Errorf("%w: %w", ErrNoReplication, err)
	} else if err != nil {
		return nil, fmt.Errorf("standby directory: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(d.path)
		}
	}()
	data := filepath.Join(d.path, "data")

	backup := exec.CommandContext(ctx, filepath.Join(bin, "pg_basebackup"), "-d", primaryURL, "-D", data,
		"-R", "-X", "stream", "-c", "fast", "--no-sync")
	d.prepare(backup)
	if out, err := backup.CombinedOutput(); err != nil {
		msg := tail(out, 4<<10)
		if strings.Contains(msg, "pg_hba.conf") || strings.Contains(msg, "replication connection") ||
			strings.Contains(msg, "max_wal_senders") || strings.Contains(msg, "password authentication failed") {
			return nil, fmt.Errorf("%w: pg_basebackup: %s (allow it with `host replication all 127.0.0.1/32 trust` "+
				"in pg_hba.conf, as .ci/run does)", ErrNoReplication, msg)
		}
		return nil, fmt.Errorf("pg_basebackup: %w: %s", err, msg)
	}
	// Our own configuration: a packaged cluster keeps its files elsewhere (/etc/postgresql), and
	// one copied from the primary would name the primary's port and paths.
	files := map[string]string{
		"postgresql.conf": "# fieldsync test standby: settings are on the command line\n",
		"pg_hba.conf":     "local all all trust\nhost all all 127.0.0.1/32 trust\n",
		"pg_ident.conf":   "",
	}
	for name, text := range files {
		path := filepath.Join(data, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			return nil, fmt.Errorf("standby %s: %w", name, err)
		}
		if err := d.own(path); err != nil {
			return nil, fmt.Errorf("standby %s: %w", name, err)
		}
	}

	u, err := url.Parse(primaryURL)
	if err != nil {
		return nil, fmt.Errorf("parse PostgreSQL URL: %w", err)
	}
	p, standbyURL, err := serveOnFreePort(ctx, d, "standby", func(port int) *exec.Cmd {
		args := []string{"-D", data, "-p", strconv.Itoa(port), "-k", d.path,
			"-c", "listen_addresses=127.0.0.1", "-c", "hot_standby=on", "-c", "hot_standby_feedback=on",
			"-c", "fsync=off", "-c", "shared_buffers=32MB"}
		// A standby may not have fewer of these than its primary.
		for _, name := range standbyAtLeast {
			args = append(args, "-c", name+"="+primary[name])
		}
		for _, setting := range settings {
			args = append(args, "-c", setting)
		}
		return exec.Command(filepath.Join(bin, "postgres"), args...)
	}, func(port int) string {
		su := *u
		su.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		return su.String()
	}, nil)
	if err != nil {
		return nil, err
	}
	log.Info("started a standby", "addr", hostOf(standbyURL), "dir", d.path)
	return &Standby{URL: standbyURL, p: p, dir: d.path}, nil
}

// standbyAtLeast are the settings a hot standby must have at least as high as its primary.
var standbyAtLeast = []string{"max_connections", "max_worker_processes", "max_wal_senders",
	"max_prepared_transactions", "max_locks_per_transaction"}

// primarySettings reads what StartStandby needs to know of the primary.
func primarySettings(ctx context.Context, primaryURL string) (map[string]string, error) {
	conn, err := pgx.Connect(ctx, primaryURL)
	if err != nil {
		return nil, fmt.Errorf("connect to the primary: %w", err)
	}
	defer closeConn(conn)
	names := append([]string{"wal_level", "server_version_num"}, standbyAtLeast...)
	rows, err := conn.Query(ctx, `SELECT name, setting FROM pg_settings WHERE name = ANY($1)`, names)
	if err != nil {
		return nil, fmt.Errorf("read the primary's settings: %w", err)
	}
	out := map[string]string{}
	var name, setting string
	if _, err := pgx.ForEachRow(rows, []any{&name, &setting}, func() error {
		out[name] = setting
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read the primary's settings: %w", err)
	}
	return out, nil
}

// findPostgresBinOf returns the directory of the server binaries of PostgreSQL major (a standby
// runs the primary's major version): a packaged one, else the one on PATH if it is that version.
func findPostgresBinOf(major string) (string, error) {
	has := func(dir string) bool {
		for _, name := range []string{"postgres", "pg_basebackup"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	for _, pattern := range postgresBinDirs {
		if dir := strings.Replace(pattern, "*", major, 1); has(dir) {
			return dir, nil
		}
	}
	if path, err := exec.LookPath("postgres"); err == nil {
		out, err := exec.Command(path, "--version").Output()
		if m := versionPattern.FindStringSubmatch(string(out)); err == nil && m != nil && m[1] == major && has(filepath.Dir(path)) {
			return filepath.Dir(path), nil
		}
	}
	return "", fmt.Errorf("%w: no PostgreSQL %s server binaries (postgres, pg_basebackup) found", ErrNoReplication, major)
}

// WaitReplay waits until standby has replayed everything primary had written when it was called,
// for up to a minute. It returns an error if the time runs out or ctx is done.
func WaitReplay(ctx context.Context, primary, standby *pgxpool.Pool) error {
	var lsn string
	if err := primary.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsn); err != nil {
		return fmt.Errorf("read the primary's WAL position: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		var done bool
		err := standby.QueryRow(ctx, `SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)`, lsn).Scan(&done)
		if err != nil {
			return fmt.Errorf("read the standby's replay position: %w", err)
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the standby to replay %s: %w", lsn, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
