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
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// LocalPostgresAddr is where a PostgreSQL installed from the system's packages listens by default.
const LocalPostgresAddr = "127.0.0.1:5432"

// errPostgresNotFound is what a newcomer sees when no PostgreSQL can be found or started.
var errPostgresNotFound = errors.New("PostgreSQL not found: set DATABASE_URL to a PostgreSQL 13+ server, " +
	"or install it (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql@16)")

// PostgresServer is a PostgreSQL database ready for use, found or started by Postgres.
type PostgresServer struct {
	// URL is a postgres:// URL for the database, usable by pgx, libpq and psql.
	URL string

	closeOnce sync.Once
	closeFunc func() error // nil when the server was found rather than started
	closeErr  error
}

// Close stops the server and removes its files if Postgres started it; for a server that was found
// running it does nothing. It returns an error if the server could not be stopped or its files
// removed. Calling it more than once is safe.
func (s *PostgresServer) Close() error {
	s.closeOnce.Do(func() {
		if s.closeFunc != nil {
			s.closeErr = s.closeFunc()
		}
	})
	return s.closeErr
}

// Postgres returns a PostgreSQL database named dbName, looking in this order:
//
//  1. the DATABASE_URL environment variable, used as is;
//  2. a server at LocalPostgresAddr that accepts user postgres, where dbName is created if missing;
//  3. a throwaway cluster created in a temporary directory from the newest PostgreSQL binaries on
//     PATH or under /usr/lib/postgresql, started on a free loopback port and removed by Close.
//
// It returns an error telling the user what to install or set if none of these works.
func Postgres(ctx context.Context, log *slog.Logger, dbName string) (*PostgresServer, error) {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		log.Info("using PostgreSQL from DATABASE_URL")
		return &PostgresServer{URL: u}, nil
	}

	local := PostgresURL(LocalPostgresAddr, dbName)
	probeCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := CreateDatabase(probeCtx, local, dbName)
	cancel()
	if err == nil {
		log.Info("using local PostgreSQL", "addr", LocalPostgresAddr, "database", dbName)
		return &PostgresServer{URL: local}, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	log.Info("no usable PostgreSQL on "+LocalPostgresAddr+", starting a throwaway one", "reason", err)

	bin, err := findPostgresBin()
	if err != nil {
		return nil, err
	}
	return startPostgres(ctx, log, bin, dbName)
}

// PostgresURL returns the URL of database dbName on the server at addr (host:port) for user
// postgres with trust authentication and no TLS, the way a local development server is set up.
func PostgresURL(addr, dbName string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     addr,
		Path:     "/" + dbName,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// CreateDatabase creates database name on the PostgreSQL server that serverURL points to (the
// database named in serverURL does not matter), unless it already exists. When it has to create it,
// it connects to the server's "postgres" database; another process creating the same database at
// the same moment counts as success. It returns an error if the server cannot be reached or the
// database cannot be created.
func CreateDatabase(ctx context.Context, serverURL, name string) error {
	cfg, err := pgx.ParseConfig(serverURL)
	if err != nil {
		return fmt.Errorf("parse PostgreSQL URL: %w", err)
	}

	// Connecting to the database itself first needs no access to the "postgres" database and
	// is the common case: it exists from the previous run.
	cfg.Database = name
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		closeConn(conn)
		return nil
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name: no such database
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}

	cfg.Database = "postgres"
	conn, err = pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer closeConn(conn)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	// Two processes racing to create the database: the loser gets duplicate_database, or a
	// unique_violation on pg_database's name index if both got past the existence check.
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// closeConn closes conn even if the caller's context is already done.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn.Close(ctx)
}

// postgresBinDirs are where packaged PostgreSQL versions install their server binaries, each with
// the version as the part matched by the *.
var postgresBinDirs = []string{
	"/usr/lib/postgresql/*/bin",          // Debian, Ubuntu
	"/usr/pgsql-*/bin",                   // RHEL, Fedora (PGDG)
	"/opt/homebrew/opt/postgresql@*/bin", // macOS, Apple silicon
	"/usr/local/opt/postgresql@*/bin",    // macOS, Intel
}

var versionPattern = regexp.MustCompile(`(\d+)(?:\.(\d+))?`)

// findPostgresBin returns the directory holding initdb and postgres: the one on PATH, else the
// newest packaged version. It returns errPostgresNotFound if there is none.
func findPostgresBin() (string, error) {
	hasServer := func(dir string) bool {
		for _, name := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if initdb, err := exec.LookPath("initdb"); err == nil {
		if dir := filepath.Dir(initdb); hasServer(dir) {
			return dir, nil
		}
	}

	type candidate struct {
		dir          string
		major, minor int
	}
	var found []candidate
	for _, pattern := range postgresBinDirs {
		prefix := pattern[:strings.Index(pattern, "*")]
		dirs, _ := filepath.Glob(pattern) // the patterns are constant and valid
		for _, dir := range dirs {
			if !hasServer(dir) {
				continue
			}
			m := versionPattern.FindStringSubmatch(dir[len(prefix):])
			if m == nil {
				continue
			}
			major, _ := strconv.Atoi(m[1])
			minor, _ := strconv.Atoi(m[2])
			found = append(found, candidate{dir, major, minor})
		}
	}
	if len(found) == 0 {
		return "", errPostgresNotFound
	}
	newest := slices.MaxFunc(found, func(a, b candidate) int {
		if a.major != b.major {
			return a.major - b.major
		}
		return a.minor - b.minor
	})
	return newest.dir, nil
}

// startPostgres creates a cluster in a temporary directory with the binaries in bin, starts it on a
// free loopback port, creates dbName and returns it. Close stops the server and removes the
// directory. It returns an error, with the server's last output, if any step fails.
func startPostgres(ctx context.Context, log *slog.Logger, bin, dbName string) (*PostgresServer, error) {
	d, err := makeClusterDir(log, "fieldsync-postgres-")
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL directory: %w (or set DATABASE_URL)", err)
	}
	data := filepath.Join(d.path, "data")

	log.Info("creating throwaway PostgreSQL cluster", "bin", bin, "dir", d.path)
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync")
	d.prepare(initdb)
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(d.path)
		return nil, fmt.Errorf("initdb: %w: %s", err, tail(out, 4<<10))
	}
	p, serverURL, err := serveOnFreePort(ctx, d, "PostgreSQL", func(port int) *exec.Cmd {
		return exec.Command(filepath.Join(bin, "postgres"), "-D", data,
			"-c", "listen_addresses=127.0.0.1", "-p", strconv.Itoa(port), "-k", d.path,
			// The cluster is deleted on Close: crash safety buys nothing here.
			"-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off")
	}, func(port int) string {
		return PostgresURL(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dbName)
	}, func(serverURL string) error { return CreateDatabase(ctx, serverURL, dbName) })
	if err != nil {
		os.RemoveAll(d.path)
		return nil, err
	}
	log.Info("started throwaway PostgreSQL", "addr", hostOf(serverURL), "database", dbName)
	return &PostgresServer{URL: serverURL, closeFunc: func() error {
		stopErr := p.stop(syscall.SIGINT, 10*time.Second) // SIGINT: fast shutdown
		if err := os.RemoveAll(d.path); err != nil {
			return errors.Join(stopErr, fmt.Errorf("remove PostgreSQL directory: %w", err))
		}
		return stopErr
	}}, nil
}

// waitPostgres waits until the server started as p accepts connections at serverURL, for up to 30
// seconds. It returns an error if the server exits, the time runs out or ctx is done.
func waitPostgres(ctx context.Context, p *process, serverURL string) error {
	cfg, err := pgx.ParseConfig(serverURL)
	if err != nil {
		return fmt.Errorf("parse PostgreSQL URL: %w", err)
	}
	cfg.Database = "postgres" // dbName does not exist yet
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		attemptCtx, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.ConnectConfig(attemptCtx, cfg)
		cancelAttempt()
		if err == nil {
			closeConn(conn)
			return nil
		}
		if p.exited() {
			return fmt.Errorf("postgres exited: %v", p.err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for PostgreSQL to accept connections: %w (last error: %w)", ctx.Err(), err)
		case <-p.done:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tail returns the last max bytes of out, trimmed.
func tail(out []byte, max int) string {
	if len(out) > max {
		out = out[len(out)-max:]
	}
	return strings.TrimSpace(string(out))
}
