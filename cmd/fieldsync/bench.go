package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fieldsync/fieldsync/internal/devenv"
	"github.com/fieldsync/fieldsync/internal/fakefcm"
	"github.com/fieldsync/fieldsync/internal/loadtest"
	"github.com/fieldsync/fieldsync/media"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
)

// benchChildEnv marks the environment of the server the load tool starts. The binary itself
// ignores it; a test binary standing in for fieldsync (cmd/fieldsync's tests) reads it to act as
// `fieldsync serve`.
const benchChildEnv = "FIELDSYNC_BENCH_CHILD"

// cmdBench is the load tool: it runs `fieldsync serve` as a child process over a database and a
// bucket of its own (made for the run on the configured or local PostgreSQL and object store,
// removed after), with push on through a fake FCM, measures it (internal/loadtest), and prints
// the table; --out writes the JSON too.
func cmdBench(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	var o loadtest.Options
	var out, cpuprofile string
	fs := newFlags("bench", stderr)
	fs.BoolVar(&o.Quick, "quick", false, "small sizes: a run of seconds, for CI and tests")
	fs.IntVar(&o.Devices, "devices", 0, "devices long-polling during the load, the size the goals are held to (default 5000)")
	fs.IntVar(&o.DevicesSmall, "devices-small", 0, "devices long-polling in the load's first, smaller run, so that growth shows (default 1000)")
	fs.IntVar(&o.SignInStorm, "sign-in-storm", 0, "users of those who sign in at the production password-hash cost, all at once (default 500; the others' hash is cheap)")
	fs.IntVar(&o.Writers, "writers", 0, "devices of those that push small mutations meanwhile (default 100)")
	fs.DurationVar(&o.Duration, "duration", 0, "how long the writers write while the devices long-poll (default 60s)")
	fs.DurationVar(&o.Phase, "phase", 0, "how long each throughput measurement runs, API and baseline each (default 10s)")
	fs.DurationVar(&o.Think, "think", 0, "a writer's pause between two pushes (default 1s)")
	fs.DurationVar(&o.Wait, "wait", 0, "the long-polls' wait (default 25s)")
	fs.IntVar(&o.RepsPerBranch, "reps-per-branch", 0, "reps per branch: every commit wakes the long-polls of its branch (default 50)")
	fs.IntVar(&o.DevicesPerRep, "devices-per-rep", 0, "devices each rep signs in on (default 1)")
	fs.IntVar(&o.SnapshotRecords, "snapshot-records", 0, "records in the rep's scope for the initial sync (default 1000)")
	fs.IntVar(&o.SnapshotLargeRecords, "snapshot-large-records", 0, "records in the rep's scope for the larger initial sync (default 100000)")
	pushTasks := fs.String("push-tasks", "", "the sizes of branch the push phase runs at, in tasks, comma-separated (default 1000,100000)")
	phases := fs.String("phases", "", "run only these phases, comma-separated: "+strings.Join(loadtest.PhaseNames, ","))
	fs.StringVar(&out, "out", "", "also write the report as JSON to this file")
	fs.StringVar(&cpuprofile, "cpuprofile", "", "write CPU profiles of the server, one per phase (FILE-push.pprof, ...)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("fieldsync bench takes no arguments: %w", errUsage)
	}
	o.CPUProfile = cpuprofile
	if *phases != "" {
		o.Phases = strings.Split(*phases, ",")
	}
	for _, t := range strings.Split(*pushTasks, ",") {
		if t == "" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(t))
		if err != nil || n < 1 {
			return fmt.Errorf("--push-tasks: %q is not a number of tasks: %w", t, errUsage)
		}
		o.PushTasks = append(o.PushTasks, n)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	dir, err := os.MkdirTemp("", "fieldsync-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Whatever was made is removed even when the run is interrupted.
	cleanup := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	}
	name := "bench" + devenv.RandomHex(4)

	// A database of its own on the configured PostgreSQL (DATABASE_URL), else on the one `dev`
	// would use; dropped at the end.
	pg, err := devenv.Postgres(ctx, log, "fieldsync_"+name)
	if err != nil {
		return err
	}
	defer pg.Close()
	dbURL, err := createBenchDatabase(ctx, pg.URL, "fieldsync_"+name)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := cleanup()
		defer cancel()
		if err := dropDatabase(ctx, pg.URL, "fieldsync_"+name); err != nil {
			fmt.Fprintf(stderr, "bench: drop database fieldsync_%s: %v\n", name, err)
		}
	}()

	// A bucket of its own on the configured store (FIELDSYNC_S3_*), else on a throwaway MinIO.
	s3 := cfg.S3
	s3.Bucket = "fieldsync-" + name
	if s3.Endpoint == "" {
		store, err := devenv.StartMinIO(ctx, log, s3.Bucket)
		if err != nil {
			return err
		}
		defer store.Close()
		s3 = store.Config
	} else {
		defer func() {
			ctx, cancel := cleanup()
			defer cancel()
			if err := removeBucket(ctx, s3); err != nil {
				fmt.Fprintf(stderr, "bench: remove bucket %s: %v\n", s3.Bucket, err)
			}
		}()
	}

	fcm := fakefcm.New()
	defer fcm.Close()
	credentials := filepath.Join(dir, "firebase.json")
	if err := fcm.WriteCredentials(credentials); err != nil {
		return err
	}
	keyFile := filepath.Join(dir, "jwt.pem")
	if err := writeNewKey(keyFile); err != nil {
		return err
	}
	port, err := devenv.FreePort()
	if err != nil {
		return err
	}
	env := map[string]string{
		benchChildEnv:                         "1",
		"DATABASE_URL":                        dbURL,
		"FIELDSYNC_ADDR":                      "127.0.0.1:" + strconv.Itoa(port),
		"FIELDSYNC_JWT_KEY_FILE":              keyFile,
		"FIELDSYNC_JWT_GENERATE_KEY":          "false",
		"FIELDSYNC_MIGRATE_ON_START":          "true",
		"FIELDSYNC_S3_ENDPOINT":               s3.Endpoint,
		"FIELDSYNC_S3_ACCESS_KEY":             s3.AccessKey,
		"FIELDSYNC_S3_SECRET_KEY":             s3.SecretKey,
		"FIELDSYNC_S3_BUCKET":                 s3.Bucket,
		"FIELDSYNC_S3_REGION":                 s3.Region,
		"FIELDSYNC_S3_USE_SSL":                strconv.FormatBool(s3.UseSSL),
		"FIELDSYNC_FIREBASE_CREDENTIALS_FILE": credentials,
		"FIELDSYNC_FCM_ENDPOINT":              fcm.Endpoint(),
		"FIELDSYNC_LOG_LEVEL":                 "warn",
		"FIELDSYNC_LOG_FORMAT":                "text",
		"FIELDSYNC_PPROF_ADDR":                "",
	}
	target := loadtest.Target{BaseURL: fmt.Sprintf("http://127.0.0.1:%d", port), DatabaseURL: dbURL, S3: s3, FCM: fcm, Progress: stderr}
	if pcfg, err := pgxpool.ParseConfig(dbURL); err == nil {
		target.PoolConns = int(poolConns(dbURL, pcfg.MaxConns))
	}
	// The server's pprof listener (loopback only): CPU profiles when asked, and its live heap
	// and goroutines for the long-poll phase's memory a device, always.
	pport, err := devenv.FreePort()
	if err != nil {
		return err
	}
	env["FIELDSYNC_PPROF_ADDR"] = "127.0.0.1:" + strconv.Itoa(pport)
	target.PprofURL = "http://" + env["FIELDSYNC_PPROF_ADDR"]
	server, err := startServer(ctx, env, filepath.Join(dir, "server.log"), target.BaseURL)
	if err != nil {
		return err
	}
	defer server.stop(stderr)
	target.ServerPID = server.cmd.Process.Pid
	fmt.Fprintf(stderr, "bench: server (pid %d) at %s over database fieldsync_%s and bucket %s\n", target.ServerPID, target.BaseURL, name, s3.Bucket)
	fmt.Fprintf(stderr, "bench: the server's profiles: %s/debug/pprof/\n", target.PprofURL)

	if len(o.Phases) == 0 || slices.Contains(o.Phases, "pull") {
		// A second server reading from a hot standby, for the pull rate with two databases
		// reading; skipped, saying why, where no standby can be made.
		standby, err := devenv.StartStandby(ctx, log, withoutPoolSettings(dbURL))
		switch {
		case errors.Is(err, devenv.ErrNoReplication):
			fmt.Fprintf(stderr, "bench: no standby, so pulls from a standby are not measured: %v\n", err)
		case err != nil:
			return err
		default:
			defer standby.Close()
			port, err := devenv.FreePort()
			if err != nil {
				return err
			}
			env2 := maps.Clone(env)
			env2["FIELDSYNC_ADDR"] = "127.0.0.1:" + strconv.Itoa(port)
			env2["FIELDSYNC_READ_DATABASE_URL"] = standby.URL
			env2["FIELDSYNC_PPROF_ADDR"] = ""
			target.StandbyBaseURL, target.StandbyDatabaseURL = "http://"+env2["FIELDSYNC_ADDR"], standby.URL
			second, err := startServer(ctx, env2, filepath.Join(dir, "server-standby.log"), target.StandbyBaseURL)
			if err != nil {
				return err
			}
			defer second.stop(stderr)
			fmt.Fprintf(stderr, "bench: a second server (pid %d) at %s reads pulls from a standby\n", second.cmd.Process.Pid, target.StandbyBaseURL)
		}
	}

	report, err := loadtest.Run(ctx, target, o)
	if err != nil {
		if server.exited() {
			return fmt.Errorf("%w; the server exited: %s", err, server.logTail())
		}
		return err
	}
	fmt.Fprintln(stdout)
	if err := report.WriteTable(stdout); err != nil {
		return err
	}
	if out != "" {
		if err := report.WriteJSON(out); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	}
	return nil
}

// createBenchDatabase creates database name on the server serverURL reaches and returns its URL
// (serverURL's settings, pool size among them, with the database replaced).
func createBenchDatabase(ctx context.Context, serverURL, name string) (string, error) {
	if err := devenv.CreateDatabase(ctx, withoutPoolSettings(serverURL), name); err != nil {
		return "", err
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", errors.New("DATABASE_URL could not be parsed")
	}
	u.Path = "/" + name
	return u.String(), nil
}

// withoutPoolSettings returns the URL without pgxpool's settings (pool_max_conns, ...), which a
// plain connection would send to the server as unknown parameters.
func withoutPoolSettings(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		return dbURL
	}
	q := u.Query()
	for k := range q {
		if strings.HasPrefix(k, "pool_") {
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// dropDatabase drops the bench's database, from the database serverURL names (or postgres, if
// that is the bench's own), ending the connections still in it.
func dropDatabase(ctx context.Context, serverURL, name string) error {
	cfg, err := pgx.ParseConfig(withoutPoolSettings(serverURL))
	if err != nil {
		return err
	}
	if cfg.Database == name {
		cfg.Database = "postgres"
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}

// removeBucket removes every object and unfinished upload of the bench's bucket, then the bucket.
func removeBucket(ctx context.Context, cfg media.Config) error {
	store, err := media.NewStore(cfg)
	if err != nil {
		return err
	}
	client := store.Client()
	for upload := range client.ListIncompleteUploads(ctx, cfg.Bucket, "", true) {
		if upload.Err != nil {
			return upload.Err
		}
		if err := client.RemoveIncompleteUpload(ctx, cfg.Bucket, upload.Key); err != nil {
			return err
		}
	}
	objects := client.ListObjects(ctx, cfg.Bucket, minio.ListObjectsOptions{Recursive: true})
	for res := range client.RemoveObjects(ctx, cfg.Bucket, objects, minio.RemoveObjectsOptions{}) {
		if res.Err != nil {
			return res.Err
		}
	}
	return client.RemoveBucket(ctx, cfg.Bucket)
}

// benchServer is the `fieldsync serve` child process under test.
type benchServer struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// startServer starts this binary as `fieldsync serve` with env added to this process's
// environment (overriding what it names), its output to logFile, and waits until base answers
// /readyz. It returns an error with the end of the server's log if it exits or is not ready
// within a minute.
func startServer(ctx context.Context, env map[string]string, logFile, base string) (*benchServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this program to run the server: %w", err)
	}
	logOut, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	defer logOut.Close() // the child has its own descriptor
	cmd := exec.Command(exe, "serve")
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v) // the last of a name wins
	}
	cmd.Stdout, cmd.Stderr = logOut, logOut
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the server: %w", err)
	}
	s := &benchServer{cmd: cmd, log: logFile, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()

	deadline := time.Now().Add(time.Minute)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if s.exited() {
			return nil, fmt.Errorf("the server exited at start: %s", s.logTail())
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			s.stop(io.Discard)
			return nil, fmt.Errorf("the server was not ready within a minute: %s", s.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *benchServer) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// logTail returns the end of the server's log.
func (s *benchServer) logTail() string {
	data, _ := os.ReadFile(s.log)
	if len(data) > 4<<10 {
		data = data[len(data)-4<<10:]
	}
	return string(data)
}

// stop asks the server to shut down (SIGTERM), and kills it if it has not within 15 seconds.
// Errors and warnings it logged are copied to w.
func (s *benchServer) stop(w io.Writer) {
	if !s.exited() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	if tail := s.logTail(); tail != "" {
		fmt.Fprintf(w, "bench: the server logged (warnings and errors):\n%s", tail)
	}
}
