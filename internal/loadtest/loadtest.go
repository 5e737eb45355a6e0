package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/internal/fakefcm"
	"github.com/fieldsync/fieldsync/media"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Options size a run. Zero fields take the defaults of a full run, or of a quick one.
type Options struct {
	// Quick shrinks everything to a run of seconds, for CI and tests: the figures show the tool
	// works, not how fast the server is.
	Quick bool `json:"quick"`
	// Devices long-poll during the load phase; Writers of them also push small mutations. The
	// phase runs with DevicesSmall first, then Devices, so that growth shows; the goals are held
	// to Devices.
	Devices      int `json:"devices"`
	DevicesSmall int `json:"devices_small"`
	Writers      int `json:"writers"`
	// DevicesPerRep and RepsPerBranch lay the devices out: a long-poll wakes at every commit in
	// its user's branch, so the branch size decides how many wake per write.
	DevicesPerRep int `json:"devices_per_rep"`
	RepsPerBranch int `json:"reps_per_branch"`
	// SignInStorm is how many of the long-poll phase's users sign in at the production argon2id
	// cost, all at once: the storm whose memory is measured. The others sign in cheaply.
	SignInStorm int `json:"sign_in_storm"`
	// Duration is how long the writers write while the devices long-poll.
	Duration time.Duration `json:"duration"`
	// Phase is how long each throughput measurement runs (push, pull, upload; API and baseline
	// each).
	Phase time.Duration `json:"phase"`
	// Think is a writer's pause between two pushes.
	Think time.Duration `json:"think"`
	// Wait is the long-polls' wait.
	Wait time.Duration `json:"wait"`
	// SnapshotRecords is the size of the rep's scope for the initial sync.
	SnapshotRecords int `json:"snapshot_records"`
	// SnapshotLargeRecords is the larger scope the initial sync is measured at too.
	SnapshotLargeRecords int `json:"snapshot_large_records"`
	// UploadBytes is the size of each uploaded file.
	UploadBytes int `json:"upload_bytes"`
	// NotifyEvents is how many reassignments the notification latency is measured over.
	NotifyEvents int `json:"notify_events"`
	// PushTasks are the sizes of branch (tasks) the push phase runs at, one measurement each:
	// how the figures grow with the tables. The goals are held at the first.
	PushTasks []int `json:"push_tasks,omitempty"`
	// Phases are the phases to run, by name (notify, push, pull, snapshot, upload, longpoll);
	// empty runs every one. The goals of a phase not run are reported as not run.
	Phases []string `json:"phases,omitempty"`
	// CPUProfile, if set, is where the server's CPU profiles go: one file per phase, the phase's
	// name before the extension (bench.pprof: bench-push.pprof, ...). It needs Target.PprofURL.
	CPUProfile string `json:"cpu_profile,omitempty"`
}

func (o *Options) setDefaults() {
	def := func(v *int, full, quick int) {
		if *v <= 0 {
			*v = full
			if o.Quick {
				*v = quick
			}
		}
	}
	defd := func(v *time.Duration, full, quick time.Duration) {
		if *v <= 0 {
			*v = full
			if o.Quick {
				*v = quick
			}
		}
	}
	def(&o.Devices, GoalDevices, 12)
	def(&o.DevicesSmall, 1000, 6)
	def(&o.SignInStorm, 500, 12)
	def(&o.Writers, 100, 4)
	def(&o.DevicesPerRep, 1, 1)
	def(&o.RepsPerBranch, 50, 4)
	def(&o.SnapshotRecords, 1000, 250)
	def(&o.SnapshotLargeRecords, 100000, 1000)
	def(&o.UploadBytes, 20<<20, 1<<20)
	def(&o.NotifyEvents, 200, 5)
	defd(&o.Duration, 60*time.Second, 2*time.Second)
	defd(&o.Phase, 10*time.Second, 500*time.Millisecond)
	defd(&o.Think, time.Second, 200*time.Millisecond)
	defd(&o.Wait, 25*time.Second, 2*time.Second)
	o.Writers = min(o.Writers, o.Devices)
	o.DevicesSmall = min(o.DevicesSmall, o.Devices)
	if len(o.PushTasks) == 0 {
		// Quick: as few as the workers need (push raises it to that).
		o.PushTasks = []int{1000, 100000}
		if o.Quick {
			o.PushTasks = []int{1}
		}
	}
}

// Target is the server under test and what stands behind it.
type Target struct {
	// BaseURL is the server's address, such as http://127.0.0.1:41234.
	BaseURL string
	// DatabaseURL is the server's database. It must be one of the tool's own: the tool writes
	// its fixtures there, and the raw baselines run on it.
	DatabaseURL string
	// S3 is the server's object store and bucket: the direct PutObject baseline writes there.
	S3 media.Config
	// FCM is the fake push service the server sends to.
	FCM *fakefcm.Server
	// PoolConns is the server's PostgreSQL pool size (0: pgxpool's default for DatabaseURL).
	PoolConns int
	// ServerPID is the server's process, whose CPU time and memory are read from /proc.
	ServerPID int
	// PprofURL is the server's net/http/pprof listener (FIELDSYNC_PPROF_ADDR), for
	// Options.CPUProfile; empty when it has none.
	PprofURL string
	// StandbyBaseURL, if set, is a second server over the same database that reads pulls from a
	// hot standby of it, StandbyDatabaseURL (FIELDSYNC_READ_DATABASE_URL): the pull phase then
	// also measures pulls spread over both servers against the first alone.
	StandbyBaseURL     string
	StandbyDatabaseURL string
	// Progress, if set, gets a line as each phase starts and ends.
	Progress io.Writer
}

// run is one run's state.
type run struct {
	t      Target
	o      Options
	pool   *pgxpool.Pool // the baselines' and fixtures' pool, as large as the server's
	conns  int
	http   *http.Client
	proc   *sampler
	seed   *seeder
	report *Report
}

// Run measures the server at t, phase after phase, and returns the report with every goal
// judged. It returns an error if a phase could not be run at all; figures of a phase that ran
// badly (errors, missed goals) are in the report.
func Run(ctx context.Context, t Target, o Options) (*Report, error) {
	o.setDefaults()
	for _, p := range o.Phases {
		if !slices.Contains(PhaseNames, p) {
			return nil, fmt.Errorf("no phase is named %q (the phases: %s)", p, strings.Join(PhaseNames, ", "))
		}
	}
	if o.CPUProfile != "" && t.PprofURL == "" {
		return nil, errors.New("a CPU profile needs the server's pprof listener")
	}
	// Each device holds a connection, as does each writer, in this process and in the server.
	if err := ensureFiles(uint64(o.Devices+o.Writers) + 256); err != nil {
		return nil, err
	}
	pcfg, err := pgxpool.ParseConfig(t.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse the database URL: %w", err)
	}
	// The baselines get a pool as large as the server's.
	conns := t.PoolConns
	if conns <= 0 {
		conns = int(pcfg.MaxConns)
	}
	pcfg.MaxConns = int32(conns)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the database: %w", err)
	}
	defer pool.Close()

	transport := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        0, // no limit
		MaxIdleConnsPerHost: o.Devices + o.Writers + 64,
		IdleConnTimeout:     2 * time.Minute,
	}
	defer transport.CloseIdleConnections()
	r := &run{
		t: t, o: o, pool: pool, conns: conns,
		http:   &http.Client{Transport: transport},
		report: &Report{Started: time.Now(), Options: o},
	}
	r.report.Environment = Environment{CPUs: runtime.NumCPU(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, Go: runtime.Version(),
		PoolConns: conns, Server: "child process (fieldsync serve)"}
	if err := pool.QueryRow(ctx, `SELECT split_part(version(), ' ', 1) || ' ' || split_part(version(), ' ', 2)`).Scan(&r.report.Environment.Postgres); err != nil {
		return nil, fmt.Errorf("ask PostgreSQL its version: %w", err)
	}
	if r.seed, err = newSeeder(pool); err != nil {
		return nil, err
	}
	if t.ServerPID > 0 {
		r.proc = startSampler(t.ServerPID)
	}

	for _, p := range phases(r) {
		if !r.runs(p.name) {
			continue
		}
		r.progress("%s ...", p.name)
		start := time.Now()
		if err := p.run(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		r.progress("%s done in %.1f s", p.name, time.Since(start).Seconds())
	}

	r.report.Seconds = round(time.Since(r.report.Started).Seconds(), 1)
	r.report.Server = ServerUsage{PID: t.ServerPID}
	if r.proc != nil {
		st, err := r.proc.close()
		r.report.Server.CPUSeconds = round(st.CPU.Seconds(), 2)
		r.report.Server.PeakRSSMB = mb(st.PeakRSS)
		if err != nil {
			r.report.Server.Error = err.Error()
		}
	} else {
		r.report.Server.Error = "the server's process is unknown"
	}
	r.report.judge(r.runs)
	return r.report, nil
}

// PhaseNames are the phases of a run, in order.
var PhaseNames = []string{"notify", "push", "pull", "snapshot", "upload", "longpoll"}

type phase struct {
	name string
	run  func(context.Context) error
}

func phases(r *run) []phase {
	return []phase{
		{"notify", r.notifications},
		{"push", r.push},
		{"pull", r.pull},
		{"snapshot", r.initialSync},
		{"upload", r.upload},
		{"longpoll", r.longPoll},
	}
}

// runs reports whether the run includes the phase named name.
func (r *run) runs(name string) bool {
	return len(r.o.Phases) == 0 || slices.Contains(r.o.Phases, name)
}

func (r *run) progress(format string, args ...any) {
	if r.t.Progress != nil {
		fmt.Fprintf(r.t.Progress, "bench: "+format+"\n", args...)
	}
}

// begin starts measuring the server for a phase.
func (r *run) begin() phaseStart {
	if r.proc == nil {
		return phaseStart{at: time.Now()}
	}
	return r.proc.begin()
}

// end returns what the server used since p.
func (r *run) end(p phaseStart) Usage {
	if r.proc == nil {
		return Usage{WallSeconds: round(time.Since(p.at).Seconds(), 2)}
	}
	return r.proc.end(p)
}

// profile takes a CPU profile of the server over the next d (whole seconds, at least one) when
// asked to, and returns a function that waits for it to be written.
func (r *run) profile(ctx context.Context, phase string, d time.Duration) func() {
	if r.o.CPUProfile == "" {
		return func() {}
	}
	secs := max(int(d/time.Second), 1)
	ext := filepath.Ext(r.o.CPUProfile)
	path := strings.TrimSuffix(r.o.CPUProfile, ext) + "-" + phase + ext
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := fetchProfile(ctx, r.t.PprofURL, secs, path); err != nil {
			r.progress("CPU profile of %s: %v", phase, err)
			return
		}
		r.progress("CPU profile of the server during %s: %s", phase, path)
	}()
	return func() { <-done }
}

func fetchProfile(ctx context.Context, base string, secs int, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, secs), nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
		return fmt.Errorf("%s: %s", res.Status, msg)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// timed runs work on n goroutines until d has passed, each call of work doing one operation,
// and returns how many operations completed and the time from the start until the last one
// ended (operations under way at the deadline finish and count). The first error stops the
// run.
func timed(ctx context.Context, n int, d time.Duration, work func(ctx context.Context, worker int) error) (int64, time.Duration, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	start := time.Now()
	deadline := start.Add(d)
	counts := make([]int64, n)
	errc := make(chan error, n)
	for w := range n {
		go func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if err := work(ctx, w); err != nil {
					cancel(err)
					errc <- err
					return
				}
				counts[w]++
			}
			errc <- nil
		}()
	}
	var first error
	for range n {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		// The error that stopped the run, rather than another worker's cancellation.
		first = context.Cause(ctx)
	}
	elapsed := time.Since(start)
	var total int64
	for _, c := range counts {
		total += c
	}
	return total, elapsed, first
}
