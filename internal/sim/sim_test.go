package sim_test

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/apitest"
	"github.com/fieldsync/fieldsync/internal/sim"
	"github.com/fieldsync/fieldsync/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func testLog(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.DiscardHandler)
}

// TestFleetConverges runs a small branch (a hospital rep and an agent, a manager, a processor,
// the reps and the manager each on two devices) for a few seconds over a network that loses a
// sixth of the answers and cuts upload bodies, with access tokens expiring along the way. Then
// every device must hold exactly what a fresh snapshot of its user's scope holds, every mutation
// sent again after a lost answer must have got the same result as the first time (applied once),
// and no mutation may have been refused for a reason that is the client's mistake.
func TestFleetConverges(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{Media: true})
	var logins []sim.Login
	for _, u := range []apitest.User{srv.NewUser(t, "rep", "hospital"), srv.NewUser(t, "rep", "agent"),
		srv.NewUser(t, "manager", ""), srv.NewUser(t, "processor", "")} {
		logins = append(logins, sim.Login{Login: u.Login, Password: apitest.Password})
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	fleet, err := sim.NewFleet(sim.FleetConfig{Server: srv.URL, Logins: logins, Devices: 7, Seed: seed, Flaky: 0.15,
		Think: 120 * time.Millisecond, OfflineRate: 0.08, PullLimit: 40, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := fleet.Start(ctx); err != nil {
		t.Fatal(err)
	}

	// Expire every access token twice during the run: devices refresh (and sign in again when a
	// refresh's answer was lost).
	go func() {
		for range 2 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(2 * time.Second):
				srv.Advance(20 * time.Minute)
			}
		}
	}()
	fleet.Run(ctx, 6*time.Second)
	mismatches, err := fleet.Settle(ctx, 20)
	if err != nil {
		t.Fatal(err)
	}
	st := fleet.Stats()
	t.Logf("%s\n%s", st, st.Details())
	for _, m := range mismatches {
		t.Error(m)
	}

	if st.Replays == 0 {
		t.Error("no push was replayed after a lost answer: the flaky network did not exercise idempotency")
	}
	if st.ReplayMismatches != 0 {
		t.Errorf("%d replayed mutations got another result than the first time", st.ReplayMismatches)
	}
	// Refusals a correct client never causes: its own mistakes, or a mutation applied twice.
	for _, code := range []string{"invalid_value", "unknown_field", "forbidden_field", "unknown_type", "not_found",
		"already_exists", "mutation_id_reused"} {
		if n := st.Rejections[code]; n > 0 {
			t.Errorf("%d mutations rejected with %s", n, code)
		}
	}
	if st.Errors != 0 {
		t.Errorf("%d unexpected errors; the last: %s", st.Errors, st.LastError)
	}
	// The run must have done the product's work, not idled.
	if st.Mutations["applied"] < 50 || st.Uploads == 0 || st.Reports == 0 {
		t.Errorf("too little happened: %s", st)
	}
}

// TestSameSeedSameChoices: two devices given the same data and the same seed act alike, which is
// what lets a run be replayed.
func TestSameSeedSameChoices(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{})
	mgr := srv.NewUser(t, "manager", "")
	srv.NewUser(t, "rep", "agent")
	ctx := context.Background()
	var got [2][]string
	for i := range got {
		d := sim.NewDevice(sim.Config{Server: srv.URL, Login: mgr.Login, Password: apitest.Password})
		if err := d.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(42, 0))
		for range 20 {
			got[i] = append(got[i], d.Act(rng))
		}
	}
	for j := range got[0] {
		if got[0][j] != got[1][j] {
			t.Fatalf("action %d: %q, then %q", j, got[0][j], got[1][j])
		}
	}
}
