package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is everything one run measured. It is written as JSON (--out) and as a table.
type Report struct {
	Started     time.Time   `json:"started"`
	Seconds     float64     `json:"seconds"`
	Options     Options     `json:"options"`
	Environment Environment `json:"environment"`

	// Push is pushes through the API at the first branch size against raw pgx writing the same
	// rows a statement each; PushSet the same pushes against the rows written a set at a time
	// (a statement per table): issue 13's raw baseline. PushSizes are every size's figures.
	Push      Throughput `json:"push"`
	PushSet   Throughput `json:"push_set"`
	PushSizes []PushSize `json:"push_sizes,omitempty"`
	Pull      Throughput `json:"pull"`
	// PullStandby is the pull rate with a standby's server beside the primary's against the
	// primary's alone (FIELDSYNC_READ_DATABASE_URL); zero when no standby could be made.
	PullStandby Throughput `json:"pull_standby"`
	// InitialSync is a rep's first sync at the default size; InitialSyncLarge the same at
	// Options.SnapshotLargeRecords (issue 13: 100,000 in ≤ 1.5 s, memory flat).
	InitialSync      InitialSync `json:"initial_sync"`
	InitialSyncLarge InitialSync `json:"initial_sync_large"`
	// Upload is ours against an unsigned, parallel-part PutObject; UploadTusd ours (API) against
	// tusd v2 with its S3 store (Baseline), the same client, file and chunk size.
	Upload       Throughput   `json:"upload"`
	UploadTusd   Throughput   `json:"upload_tusd"`
	Notification Notification `json:"notification"`
	// LongPoll is the long-poll load at the size the goals are held to (Options.Devices);
	// LongPollSmall the same at Options.DevicesSmall, so that growth shows.
	LongPoll      LongPoll    `json:"long_poll"`
	LongPollSmall LongPoll    `json:"long_poll_small"`
	Server        ServerUsage `json:"server"`

	// Growth is each figure measured at two sizes (issue 13): each phase that measures one at
	// two sizes appends its rows.
	Growth []Growth `json:"growth,omitempty"`

	// Goals are the targets (goals.go), each met or missed.
	Goals []Goal `json:"goals"`
}

// Growth is one figure at a small and a large size.
type Growth struct {
	Figure string  `json:"figure"` // what: "push", "writers' p99", ...
	Unit   string  `json:"unit"`
	Small  Sized   `json:"small"`
	Large  Sized   `json:"large"`
	Ratio  float64 `json:"ratio"` // Large.Value / Small.Value
}

// Sized is a figure at one size, the size said for a person ("1,000 devices").
type Sized struct {
	Size  string  `json:"size"`
	Value float64 `json:"value"`
}

// grow appends a growth row.
func (r *Report) grow(figure, unit string, small, large Sized) {
	g := Growth{Figure: figure, Unit: unit, Small: small, Large: large}
	if small.Value != 0 {
		g.Ratio = round(large.Value/small.Value, 2)
	}
	r.Growth = append(r.Growth, g)
}

// Environment is where the run happened.
type Environment struct {
	CPUs     int    `json:"cpus"`
	GOOS     string `json:"goos"`
	GOARCH   string `json:"goarch"`
	Go       string `json:"go"`
	Postgres string `json:"postgres"`
	// PoolConns is the server's PostgreSQL pool size (20 unless DATABASE_URL sets pool_max_conns);
	// the raw baselines get a pool of the same size and as many workers.
	PoolConns int `json:"pool_conns"`
	// Server says how the server ran: a child process (`fieldsync serve`), measured from /proc.
	Server string `json:"server"`
}

// Throughput is one operation through the API next to the same work done directly (raw pgx, or
// minio-go), with the same concurrency, for the same time.
type Throughput struct {
	Unit        string  `json:"unit"`
	API         float64 `json:"api"`
	Baseline    float64 `json:"baseline"`
	Ratio       float64 `json:"ratio"` // API / Baseline
	APIName     string  `json:"api_name"`
	BaseName    string  `json:"baseline_name"`
	Concurrency int     `json:"concurrency"`
	// Size is what one operation carries: mutations per push, changes per pull, bytes per file.
	Size int64 `json:"size"`
	// Ops are how many operations each side completed.
	APIOps  int64 `json:"api_ops"`
	BaseOps int64 `json:"baseline_ops"`
	// ServerCPUPerUnit is the server's CPU time per mutation, change or MB through the API, in
	// microseconds: steadier than the rates when other work shares the machine.
	ServerCPUPerUnit float64 `json:"server_cpu_us_per_unit"`
	// Server is what the server process used while the API side ran.
	Server Usage `json:"server"`
}

// PushSize is the push phase in a branch of Tasks tasks: mutations/s through the API, and rows/s
// of raw pgx writing the same rows a row at a time (a statement each) and a set at a time (a
// statement per table), in the same run.
type PushSize struct {
	Tasks       int     `json:"tasks"`
	Concurrency int     `json:"concurrency"`
	Size        int64   `json:"size"` // mutations a push
	API         float64 `json:"api"`
	RowBaseline float64 `json:"row_baseline"`
	SetBaseline float64 `json:"set_baseline"`
	RowRatio    float64 `json:"row_ratio"`
	SetRatio    float64 `json:"set_ratio"`
	APIOps      int64   `json:"api_ops"`
	RowOps      int64   `json:"row_ops"`
	SetOps      int64   `json:"set_ops"`
	// ServerCPUPerUnit is the server's CPU time per mutation, in microseconds.
	ServerCPUPerUnit float64 `json:"server_cpu_us_per_unit"`
	Server           Usage   `json:"server"`
}

// row is the size's figures against the baseline a row at a time.
func (p PushSize) row() Throughput {
	return Throughput{Unit: "mutations/s", API: p.API, Baseline: p.RowBaseline, Ratio: p.RowRatio,
		APIName: "POST /v1/sync/push", BaseName: "raw pgx UPDATE/INSERT a row at a time, a transaction per batch",
		Concurrency: p.Concurrency, Size: p.Size, APIOps: p.APIOps, BaseOps: p.RowOps, ServerCPUPerUnit: p.ServerCPUPerUnit, Server: p.Server}
}

// set is the size's figures against the baseline a set at a time.
func (p PushSize) set() Throughput {
	t := p.row()
	t.Baseline, t.Ratio, t.BaseOps = p.SetBaseline, p.SetRatio, p.SetOps
	t.BaseName = "raw pgx UPDATE/INSERT from unnest, a statement per table, a transaction per batch"
	return t
}

// perUnit sets ServerCPUPerUnit from the server's CPU time over units of work.
func (t *Throughput) perUnit(units float64) {
	if units > 0 {
		t.ServerCPUPerUnit = round(t.Server.CPUSeconds*1e6/units, 1)
	}
}

// InitialSync is a rep's first sync: the snapshot of their whole scope, through the API in
// pages, against reading the same rows' JSON straight from PostgreSQL.
type InitialSync struct {
	Records    int     `json:"records"`
	Pages      int     `json:"pages"`
	PageLimit  int     `json:"page_limit"`
	Runs       int     `json:"runs"`
	APISeconds float64 `json:"api_seconds"` // median of Runs: the client's loop, pages decoded
	// ServerSeconds is the server's own time serving the pages of one run (the mean of Runs,
	// from its request-duration metric): what issue 13's goal holds, without the client's.
	ServerSeconds float64 `json:"server_seconds"`
	BaseSeconds   float64 `json:"baseline_seconds"` // median of Runs
	Ratio         float64 `json:"ratio"`            // baseline time / API time: the API's speed as a fraction of raw
	Server        Usage   `json:"server"`
}

// Notification is the delay from a change's commit to the fake FCM receiving its push.
type Notification struct {
	Events   int     `json:"events"`
	Messages int     `json:"messages"`
	Missing  int     `json:"missing"`
	Latency  Latency `json:"latency"`
	Server   Usage   `json:"server"`
}

// LongPoll is the load test: devices long-polling while writers push small mutations.
type LongPoll struct {
	Devices     int     `json:"devices"`
	Users       int     `json:"users"`
	Branches    int     `json:"branches"`
	Writers     int     `json:"writers"`
	WaitSeconds int     `json:"wait_seconds"`
	Seconds     float64 `json:"seconds"`
	// LoginSeconds is how long the sign-in storm took: SignInDevices devices signing in at once,
	// an argon2id hash at the production cost each.
	LoginSeconds  float64 `json:"login_seconds"`
	SignInDevices int     `json:"sign_in_devices"`
	// Pushes are the writers' requests; Latency is theirs.
	Pushes       int64   `json:"pushes"`
	PushesPerSec float64 `json:"pushes_per_second"`
	PushErrors   int64   `json:"push_errors"`
	Latency      Latency `json:"latency"`
	PollAnswers  int64   `json:"poll_answers"`
	PollErrors   int64   `json:"poll_errors"`
	PollsHeld    int64   `json:"polls_held"` // long-polls open when the writers stopped
	Delivery     Latency `json:"delivery"`   // writer's push sent → the note reaching the writer's long-poll
	// Wake is a commit → the long-poll concerned answering: from the writer's push answered (its
	// commit acknowledged) to the note reaching the writer's long-poll, zero when the long-poll
	// answered first.
	Wake Latency `json:"wake"`
	// Memory is what the waiting devices cost the server.
	Memory WaitMemory `json:"memory"`
	// DBTransactionsPerSec is the database's transactions (statements, mostly) per second while
	// the writers wrote: what the long-polls woken by each write cost it.
	DBTransactionsPerSec float64 `json:"db_transactions_per_second"`
	Server               Usage   `json:"server"`
	ServerStartup        Usage   `json:"server_startup"` // the first snapshots of every device
	// SignIn is the server while every device signed in (an argon2id hash each): the storm that
	// must not be the server's memory peak.
	SignIn Usage `json:"sign_in"`
}

// WaitMemory is the server's memory before the devices long-poll (signed in, their snapshots
// pulled, their connections closed) and while every one waits: live heap and goroutine stacks
// after a forced collection (the server's /debug/pprof/heap?gc=1), and its resident set.
type WaitMemory struct {
	BeforeMB     float64 `json:"before_mb"`
	WaitingMB    float64 `json:"waiting_mb"`
	PerDeviceKB  float64 `json:"per_device_kb"` // (WaitingMB − BeforeMB) / devices
	StacksKB     float64 `json:"stacks_kb"`     // of PerDeviceKB, goroutine stacks
	Goroutines   int     `json:"goroutines"`    // the server's, while every device waits
	RSSBeforeMB  float64 `json:"rss_before_mb"`
	RSSWaitingMB float64 `json:"rss_waiting_mb"`
	// RSSPerDeviceKB is the resident set's growth a device: it also holds what the collector
	// has not yet returned to the system, so it is an upper bound.
	RSSPerDeviceKB float64 `json:"rss_per_device_kb"`
}

// Usage is what the server process used during a phase.
type Usage struct {
	WallSeconds float64 `json:"wall_seconds"`
	CPUSeconds  float64 `json:"cpu_seconds"`
	CPUCores    float64 `json:"cpu_cores"` // CPU seconds per second
	// BenchCores is what the load tool's own process used (clients, baselines, the fake FCM);
	// MachineCores is every process's, PostgreSQL and the object store among them.
	BenchCores   float64 `json:"bench_cores"`
	MachineCores float64 `json:"machine_cores"`
	PeakRSSMB    float64 `json:"peak_rss_mb"`
}

// ServerUsage is what the server process used over the whole run.
type ServerUsage struct {
	PID        int     `json:"pid"`
	CPUSeconds float64 `json:"cpu_seconds"`
	// PeakRSSMB is the kernel's high-water mark of the process's resident memory (VmHWM), from
	// start to end: no peak between samples escapes it.
	PeakRSSMB float64 `json:"peak_rss_mb"`
	Error     string  `json:"error,omitempty"`
}

// Missed returns the names of the goals the run missed.
func (r *Report) Missed() []string {
	var out []string
	for _, g := range r.Goals {
		if !g.Met && !g.NotRun {
			out = append(out, g.Name)
		}
	}
	return out
}

// WriteJSON writes the report to path, indented.
func (r *Report) WriteJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

func metStr(g Goal) string {
	switch {
	case g.NotRun:
		return "not run"
	case g.Met:
		return "met"
	}
	return "MISSED"
}

func goal(r *Report, name string) Goal {
	for _, g := range r.Goals {
		if g.Name == name {
			return g
		}
	}
	return Goal{}
}

// WriteTable writes the report for a person: each figure next to its baseline, the ratio, and
// where the CPU went meanwhile (the server; the load tool's own process, clients and baselines;
// the whole machine, PostgreSQL and the object store included); then how the figures grow from
// one size to the next, and every goal with its target, figure and baseline, met or missed.
func (r *Report) WriteTable(w io.Writer) error {
	e := r.Environment
	fmt.Fprintf(w, "fieldsync bench, %s: %d CPUs, %s/%s, %s, %s; server: %s, %d database connections\n\n",
		r.Started.UTC().Format("2006-01-02 15:04 UTC"), e.CPUs, e.GOOS, e.GOARCH, e.Go, e.Postgres, e.Server, e.PoolConns)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tfieldsync\traw baseline\tratio\tserver CPU per unit\tCPU cores: server/tool/machine\tserver RSS")
	use := func(u Usage) string {
		return fmt.Sprintf("%.2f / %.2f / %.2f\t%.0f MB", u.CPUCores, u.BenchCores, u.MachineCores, u.PeakRSSMB)
	}
	row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")) }
	ran := func(name string) bool { return !goal(r, name).NotRun }
	tp := func(label string, t Throughput, unitAPI, unitBase, unit string) {
		row(label, num(t.API)+" "+unitAPI, num(t.Baseline)+" "+unitBase, pct(t.Ratio),
			fmt.Sprintf("%.0f µs per %s", t.ServerCPUPerUnit, unit), use(t.Server))
	}
	if ran("push") {
		for _, p := range r.PushSizes {
			tp(fmt.Sprintf("push (%d mutations a push, %d at once, %d tasks a branch)", p.Size, p.Concurrency, p.Tasks), p.row(),
				"mutations/s", "rows/s pgx, a row at a time", "mutation")
			if t := p.set(); t.Baseline > 0 {
				tp("  the same, against rows written in sets", t, "mutations/s", "rows/s pgx, a set at a time", "mutation")
			}
		}
	}
	if ran("pull") {
		tp(fmt.Sprintf("pull (%d changes a page, %d at once)", r.Pull.Size, r.Pull.Concurrency), r.Pull, "changes/s", "rows/s pgx", "change")
	}
	for _, s := range []InitialSync{r.InitialSync, r.InitialSyncLarge} {
		if s.Records > 0 {
			row(fmt.Sprintf("initial sync of a rep (%d records, %d pages of %d)", s.Records, s.Pages, s.PageLimit),
				fmt.Sprintf("%.3f s (server %.3f s)", s.APISeconds, s.ServerSeconds), fmt.Sprintf("%.3f s pgx", s.BaseSeconds), pct(s.Ratio),
				fmt.Sprintf("%.1f µs per record", s.Server.CPUSeconds*1e6/float64(max(s.Records*s.Runs, 1))), use(s.Server))
		}
	}
	if p := r.PullStandby; p.Baseline > 0 {
		row(fmt.Sprintf("pull, primary + standby servers vs primary alone (%d at once)", p.Concurrency),
			num(p.API)+" changes/s", num(p.Baseline)+" changes/s primary", pct(p.Ratio), "", use(p.Server))
	}
	if ran("upload") {
		tp(fmt.Sprintf("upload (%s files, %d at once)", size(r.Upload.Size), r.Upload.Concurrency), r.Upload, "MB/s tus", "MB/s PutObject", "MB")
		if t := r.UploadTusd; t.Baseline > 0 {
			tp("  upload against tusd v2 (S3 store)", t, "MB/s tus", "MB/s tusd", "MB")
		}
	}
	if n := r.Notification; n.Events > 0 {
		row(fmt.Sprintf("notification, commit → FCM request (%d messages, %d missing)", n.Messages, n.Missing),
			fmt.Sprintf("p50 %.1f ms, p99 %.1f ms", n.Latency.P50, n.Latency.P99), "", "", "", use(n.Server))
	}
	if ran("writers_p99") {
		for _, l := range []LongPoll{r.LongPollSmall, r.LongPoll} {
			if l.Devices == 0 {
				continue
			}
			row(fmt.Sprintf("writers' pushes (%d devices long-polling, %d writers, %.0f pushes/s)", l.Devices, l.Writers, l.PushesPerSec),
				fmt.Sprintf("p50 %.1f ms, p99 %.1f ms", l.Latency.P50, l.Latency.P99), "", "", "", use(l.Server))
			row("  commit → the long-poll's answer", fmt.Sprintf("p50 %.1f ms, p99 %.1f ms", l.Wake.P50, l.Wake.P99), "", "", "", "\t")
			row("  a note's delivery, push sent → the writer's long-poll", fmt.Sprintf("p50 %.1f ms, p99 %.1f ms", l.Delivery.P50, l.Delivery.P99), "", "", "", "\t")
			m := l.Memory
			row("  server memory a waiting device", fmt.Sprintf("%.1f KB heap and stacks", m.PerDeviceKB),
				fmt.Sprintf("%.0f → %.0f MB", m.BeforeMB, m.WaitingMB), "", fmt.Sprintf("RSS %.1f KB a device", m.RSSPerDeviceKB),
				fmt.Sprintf("\t%.0f → %.0f MB", m.RSSBeforeMB, m.RSSWaitingMB))
			if l.SignIn.WallSeconds > 0 {
				row(fmt.Sprintf("  sign-in storm (%d devices, argon2id each)", l.SignInDevices), fmt.Sprintf("%.1f s", l.SignIn.WallSeconds), "", "", "", use(l.SignIn))
			}
			row("  first sync of the devices", fmt.Sprintf("%.1f s", l.ServerStartup.WallSeconds), "", "", "", use(l.ServerStartup))
		}
	}
	row("server memory, whole run (VmHWM)", fmt.Sprintf("%.0f MB", r.Server.PeakRSSMB), "", "", fmt.Sprintf("%.1f s CPU in all", r.Server.CPUSeconds), "\t")
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, l := range []LongPoll{r.LongPollSmall, r.LongPoll} {
		if l.Devices > 0 {
			fmt.Fprintf(w, "\nlong-poll load, %d devices: %d users in %d branches, wait=%ds, %.0f s; %d pushes (%d errors), %d poll answers (%d errors), %d long-polls open at the end, %d server goroutines waiting; database: %.0f transactions/s (%.0f a push)",
				l.Devices, l.Users, l.Branches, l.WaitSeconds, l.Seconds, l.Pushes, l.PushErrors, l.PollAnswers, l.PollErrors, l.PollsHeld, l.Memory.Goroutines,
				l.DBTransactionsPerSec, l.DBTransactionsPerSec/max(l.PushesPerSec, 1))
		}
	}
	fmt.Fprintln(w)
	if len(r.Growth) > 0 {
		fmt.Fprintln(w, "\nhow the figures grow")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "figure\tsmall\tlarge\tlarge / small")
		for _, g := range r.Growth {
			fmt.Fprintf(tw, "%s (%s)\t%s at %s\t%s at %s\t%.2f\n", g.Figure, g.Unit, num(g.Small.Value), g.Small.Size, num(g.Large.Value), g.Large.Size, g.Ratio)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w, "\ngoals")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "goal\ttarget\tmeasured\tbaseline (same run)\t")
	for _, g := range r.Goals {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", g.Name, g.Target, g.Measured, g.Baseline, metStr(g))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Server.Error != "" {
		fmt.Fprintf(w, "server CPU and memory not measured: %s\n", r.Server.Error)
	}
	if missed := r.Missed(); len(missed) > 0 {
		fmt.Fprintf(w, "goals missed: %s\n", strings.Join(missed, ", "))
	} else {
		fmt.Fprintln(w, "every goal run was met")
	}
	return nil
}

func pct(x float64) string { return fmt.Sprintf("%.0f%%", x*100) }

// num formats a rate for the table: no decimals above 100, one below.
func num(x float64) string {
	if x >= 100 {
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.1f", x)
}

func size(bytes int64) string {
	if bytes >= 1<<20 {
		return fmt.Sprintf("%d MiB", bytes>>20)
	}
	return fmt.Sprintf("%d KiB", bytes>>10)
}
