package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fieldsync/fieldsync/internal/demo"
	"github.com/fieldsync/fieldsync/internal/sim"
)

// demoDeviceLogins are the demo users (internal/demo) that sync, in the order devices take them:
// with three devices the whole story runs (a hospital rep, a manager, a processor).
var demoDeviceLogins = []string{"hospital", "manager", "processor", "agent"}

// simOptions are the simulator's flags.
type simOptions struct {
	server   string
	devices  int
	duration time.Duration
	seed     uint64
	flaky    float64
	logins   string
	password string
	every    time.Duration
	verbose  bool
}

// cmdSim runs simulated phones against a running server (`make dev` in another terminal): they
// work offline and online at random, over a flaky network, for a while; then every device comes
// online and syncs, and each device's store is compared with a fresh snapshot of its user's
// scope. It fails if any differs, or if a mutation sent again after a lost answer got another
// result than the first time.
func cmdSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o simOptions
	fs := newFlags("sim", stderr)
	fs.StringVar(&o.server, "server", "http://127.0.0.1:8080", "the server's base URL")
	fs.IntVar(&o.devices, "devices", 8, "simulated devices, taking the logins in turn (several devices may share a user)")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long the devices work before they settle and are checked")
	fs.Uint64Var(&o.seed, "seed", 0, "seed of the devices' choices and network losses, to replay a run (0: from the clock)")
	fs.Float64Var(&o.flaky, "flaky", 0.1, "fraction of answers lost after the server handled the request, and of upload bodies cut midway")
	fs.StringVar(&o.logins, "login", "", "comma-separated logins to sign in as (default: the demo users "+strings.Join(demoDeviceLogins, ", ")+")")
	fs.StringVar(&o.password, "password", "", "the password of the --login users (default: the demo password)")
	fs.DurationVar(&o.every, "every", 3*time.Second, "how often to print the summary line")
	fs.BoolVar(&o.verbose, "v", false, "log what every device does")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("fieldsync sim takes no arguments: %w", errUsage)
	}
	if err := o.validate(); err != nil {
		return err
	}
	return runSim(ctx, o, stdout, stderr)
}

func (o *simOptions) validate() error {
	var problems []string
	if o.devices < 1 {
		problems = append(problems, "--devices must be at least 1")
	}
	if o.duration <= 0 {
		problems = append(problems, "--duration must be positive")
	}
	if o.flaky < 0 || o.flaky >= 1 {
		problems = append(problems, "--flaky must be from 0 to less than 1")
	}
	if o.every <= 0 {
		problems = append(problems, "--every must be positive")
	}
	if !strings.HasPrefix(o.server, "http://") && !strings.HasPrefix(o.server, "https://") {
		problems = append(problems, "--server must be an http:// or https:// URL")
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	return nil
}

func (o *simOptions) fleetLogins() []sim.Login {
	names, password := demoDeviceLogins, demo.Password
	if o.logins != "" {
		names = strings.Split(o.logins, ",")
		if o.password != "" {
			password = o.password
		}
	}
	var out []sim.Login
	for _, n := range names {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, sim.Login{Login: n, Password: password})
		}
	}
	return out
}

func runSim(ctx context.Context, o simOptions, stdout, stderr io.Writer) error {
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 2 * o.devices
	fleet, err := sim.NewFleet(sim.FleetConfig{Server: strings.TrimSuffix(o.server, "/"), Logins: o.fleetLogins(),
		Devices: o.devices, Seed: o.seed, Flaky: o.flaky, Transport: transport, Log: log,
		SettleRoundFunc: func(round, differences int) {
			fmt.Fprintf(stdout, "  round %d: %d differences left\n", round, differences)
		}})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "fieldsync sim: %d devices against %s for %s, %.0f%% of answers lost, seed %d (--seed %d replays the choices)\n",
		o.devices, o.server, o.duration, 100*o.flaky, o.seed, o.seed)
	if err := fleet.Start(ctx); err != nil {
		return fmt.Errorf("start the devices (is the server running? `make dev` starts one): %w", err)
	}
	for _, d := range fleet.Devices() {
		u := d.Client().User()
		fmt.Fprintf(stdout, "  %-14s %-10s %d records\n", d.Name(), u.Role, len(d.Store()))
	}

	started := time.Now()
	done, printed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(printed)
		tick := time.NewTicker(o.every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				fmt.Fprintf(stdout, "%4.0fs online %d/%d | %s\n", time.Since(started).Seconds(), fleet.Online(), o.devices, fleet.Stats())
			}
		}
	}()
	fleet.Run(ctx, o.duration)
	close(done)
	<-printed

	// Settle even after Ctrl-C (a second one quits): the check is the point of the run.
	settleCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if ctx.Err() != nil {
		fmt.Fprintln(stdout, "interrupted; settling (Ctrl-C again to quit)")
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sig)
		go func() {
			select {
			case <-sig:
				cancel()
			case <-settleCtx.Done():
			}
		}()
	}
	fmt.Fprintln(stdout, "settling: every device online on a reliable network, syncing until it has nothing to send")
	mismatches, err := fleet.Settle(settleCtx, 20)
	if err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	st := fleet.Stats()
	fmt.Fprintf(stdout, "\nfinal after %.0fs: %s\n%s", time.Since(started).Seconds(), st, st.Details())

	const show = 50
	for i, m := range mismatches {
		if i == show {
			fmt.Fprintf(stdout, "  … and %d more\n", len(mismatches)-show)
			break
		}
		fmt.Fprintf(stdout, "  MISMATCH %s\n", m)
	}
	switch {
	case len(mismatches) > 0:
		return fmt.Errorf("%d differences between the devices and their users' snapshots (seed %d)", len(mismatches), o.seed)
	case st.ReplayMismatches > 0:
		return fmt.Errorf("%d mutations sent again after a lost answer got another result than the first time (seed %d)", st.ReplayMismatches, o.seed)
	}
	fmt.Fprintf(stdout, "OK: every device holds exactly its user's snapshot; %d mutations sent again after a lost answer were applied once\n", st.Replays)
	return nil
}
