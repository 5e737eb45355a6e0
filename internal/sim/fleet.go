package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	gosync "sync"
	"time"
)

// Login is a user the fleet's devices sign in as.
type Login struct {
	Login, Password string
}

// FleetConfig is a fleet's make-up and behaviour.
type FleetConfig struct {
	// Server is the API's base URL.
	Server string
	// Logins are the users; devices take them in turn, so several devices may share a user
	// (each its own install: own device id, session, store and outbox).
	Logins []Login
	// Devices is how many devices run (one per login when zero).
	Devices int
	// Seed draws every device's choices and network losses. The same seed against the same data
	// makes the same choices; the timing of the server and of goroutines still varies.
	Seed uint64
	// Flaky is the fraction of answers lost after the server handled the request, and of upload
	// bodies cut midway, while the fleet runs (not while it settles).
	Flaky float64
	// Think is the mean pause between two steps of a device (250 ms when zero).
	Think time.Duration
	// OfflineRate is the chance that a step takes an online device offline, for 1 to 20 steps
	// (0.05 when zero; negative: never).
	OfflineRate float64
	// Transport carries the requests (http.DefaultTransport when nil).
	Transport http.RoundTripper
	// PullLimit and ChunkSize are the devices' (see Config).
	PullLimit, ChunkSize int
	// Log receives what devices do (debug) and their unexpected errors (warn).
	Log *slog.Logger
	// SettleRoundFunc, when set, is told the differences left after each round of Settle.
	SettleRoundFunc func(round, differences int)
}

// Fleet is a set of simulated devices working against one server.
type Fleet struct {
	cfg     FleetConfig
	devices []*Device
	rngs    []*rand.Rand
	stats   *Stats
}

// NewFleet makes the fleet's devices, offline of nothing and signed in to nothing yet. It returns
// an error if the configuration cannot make a fleet.
func NewFleet(cfg FleetConfig) (*Fleet, error) {
	if cfg.Server == "" {
		return nil, errors.New("sim: no server")
	}
	if len(cfg.Logins) == 0 {
		return nil, errors.New("sim: no logins")
	}
	if cfg.Devices <= 0 {
		cfg.Devices = len(cfg.Logins)
	}
	if cfg.Think <= 0 {
		cfg.Think = 250 * time.Millisecond
	}
	if cfg.OfflineRate == 0 {
		cfg.OfflineRate = 0.05
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	f := &Fleet{cfg: cfg, stats: &Stats{}}
	perLogin := map[string]int{}
	for i := range cfg.Devices {
		l := cfg.Logins[i%len(cfg.Logins)]
		perLogin[l.Login]++
		f.devices = append(f.devices, NewDevice(Config{
			Server: cfg.Server, Login: l.Login, Password: l.Password, Name: l.Login + "#" + strconv.Itoa(perLogin[l.Login]),
			Transport: cfg.Transport, Seed: cfg.Seed ^ uint64(i+1)*0x9e3779b97f4a7c15, Stats: f.stats,
			PullLimit: cfg.PullLimit, ChunkSize: cfg.ChunkSize, Log: cfg.Log,
		}))
		f.rngs = append(f.rngs, rand.New(rand.NewPCG(cfg.Seed, uint64(i))))
	}
	return f, nil
}

// Devices returns the fleet's devices.
func (f *Fleet) Devices() []*Device { return f.devices }

// Stats returns the counts so far.
func (f *Fleet) Stats() Totals { return f.stats.Totals() }

// Online returns how many devices are online.
func (f *Fleet) Online() int {
	n := 0
	for _, d := range f.devices {
		if d.Online() {
			n++
		}
	}
	return n
}

// each runs fn for every device at once and returns the first error.
func (f *Fleet) each(fn func(i int, d *Device) error) error {
	var wg gosync.WaitGroup
	errs := make([]error, len(f.devices))
	for i, d := range f.devices {
		wg.Go(func() { errs[i] = fn(i, d) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Start signs every device in and pulls its first snapshot. It returns an error if a device
// cannot (a wrong password, a server that is not there).
func (f *Fleet) Start(ctx context.Context) error {
	return f.each(func(_ int, d *Device) error {
		if err := d.Sync(ctx); err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
		return nil
	})
}

// Run lets every device live for duration: pause, maybe lose or regain the connection, act, and
// sync when online. The network is flaky as configured. It returns when duration has passed (each
// device finishes the step it is in) or ctx ends.
func (f *Fleet) Run(ctx context.Context, duration time.Duration) {
	until := time.Now().Add(duration)
	_ = f.each(func(i int, d *Device) error {
		d.net.SetFlaky(f.cfg.Flaky, f.cfg.Flaky)
		f.live(ctx, d, f.rngs[i], until)
		return nil
	})
}

func (f *Fleet) live(ctx context.Context, d *Device, rng *rand.Rand, until time.Time) {
	offlineFor := 0
	for {
		pause := time.Duration(rng.ExpFloat64() * float64(f.cfg.Think))
		if time.Now().Add(pause).After(until) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		if d.Online() {
			if rng.Float64() < f.cfg.OfflineRate {
				d.GoOffline()
				offlineFor = 1 + rng.IntN(20)
			}
		} else if offlineFor--; offlineFor <= 0 {
			d.GoOnline()
		}
		d.Act(rng)
		if d.Online() {
			_ = d.Sync(ctx)
		}
	}
}

// Mismatch is a difference between a device's store and a fresh snapshot of its user's scope.
type Mismatch struct {
	Device string
	Diff   string
}

func (m Mismatch) String() string { return m.Device + ": " + m.Diff }

// Settle brings every device online on a reliable network and syncs it until it has nothing left
// to send, then compares each device's store with a fresh snapshot of its user's scope. Work the
// server does on its own (processing an upload, another device's last push landing after this
// one's pull) can make a device one change behind, so it tries up to rounds times, a moment apart,
// and returns the differences of the last round: none when every device converged. It returns an
// error only if ctx ends.
func (f *Fleet) Settle(ctx context.Context, rounds int) ([]Mismatch, error) {
	for _, d := range f.devices {
		d.net.SetFlaky(0, 0)
		d.GoOnline()
	}
	var out []Mismatch
	for round := 1; ; round++ {
		var mu gosync.Mutex
		out = nil
		err := f.each(func(_ int, d *Device) error {
			diffs, err := d.settle(ctx)
			mu.Lock()
			defer mu.Unlock()
			for _, s := range diffs {
				out = append(out, Mismatch{Device: d.name, Diff: s})
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if f.cfg.SettleRoundFunc != nil {
			f.cfg.SettleRoundFunc(round, len(out))
		}
		if len(out) == 0 || round >= rounds {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// settle syncs the device until it has nothing left to send (or a few tries failed), then returns
// how its store differs from a fresh snapshot of its user's scope. It returns an error only if ctx
// ends.
func (d *Device) settle(ctx context.Context) ([]string, error) {
	for try := 0; try < 5; try++ {
		if err := d.Sync(ctx); err == nil && d.Idle() {
			break
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	var snap map[Key]Record
	err := d.signedInDo(ctx, func(ctx context.Context) error {
		var err error
		snap, err = d.Snapshot(ctx)
		return err
	})
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var diffs []string
	if err != nil {
		diffs = append(diffs, "no snapshot: "+err.Error())
	} else {
		diffs = Diff(d.store.Records, snap)
	}
	if !d.Idle() {
		diffs = append(diffs, fmt.Sprintf("still has %d mutations, %d photos and %d claim reports to send",
			len(d.outbox), len(d.photos), len(d.reports)))
	}
	return diffs, nil
}
