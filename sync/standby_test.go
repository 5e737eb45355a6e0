package sync_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/internal/testenv"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
)

// The standby tests read from a real hot standby of the test server (testenv.Standby: a
// streaming replica started from the PostgreSQL binaries), through an engine that reads pulls
// there (Engine.ReadFrom) and writes and listens on the primary.

// standbyEngine returns an engine over f's primary that reads pulls from standby, its listener
// running until the test ends.
func standbyEngine(t *testing.T, f *engineFixture, standby *testenv.Database) *sync.Engine {
	t.Helper()
	e := sync.New(f.pool, sync.Config{ScopeWindow: 30 * 24 * time.Hour}, slog.New(slog.DiscardHandler))
	e.ReadFrom(standby.Pool)
	run, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = e.Run(run); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	return e
}

// pullIDs pulls one page for id from cursor with e and returns the cursor after it and the ids
// of the records it upserted.
func pullIDs(t *testing.T, e *sync.Engine, id *fieldsync.Identity, req sync.PullRequest) (string, map[uuid.UUID]bool) {
	t.Helper()
	got := map[uuid.UUID]bool{}
	next, _, err := e.Pull(context.Background(), id, req, func(ch sync.Change) error {
		if ch.Op == "upsert" {
			got[ch.ID] = true
		}
		return nil
	})
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	return next, got
}

// pullUntil pulls for id with e from cursor until a page brings want (a change may wait for a
// transaction open anywhere on the server), and returns the ids of every record upserted.
func pullUntil(t *testing.T, e *sync.Engine, id *fieldsync.Identity, cursor string, want uuid.UUID) map[uuid.UUID]bool {
	t.Helper()
	all := map[uuid.UUID]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for !all[want] {
		if time.Now().After(deadline) {
			t.Fatalf("no pull brought %s in 30 s; got %v", want, all)
		}
		next, got := pullIDs(t, e, id, sync.PullRequest{Cursor: cursor})
		for k := range got {
			all[k] = true
		}
		if next == cursor {
			time.Sleep(5 * time.Millisecond)
		}
		cursor = next
	}
	return all
}

// TestPullFromALaggingStandby pauses the standby's replay, so that it lags the primary by as
// much as the test writes, and checks each answer of docs/protocol.md §4 to a lagging standby: a
// cursor the standby made is served by the standby (a change it has not replayed does not come
// yet, and comes once it has); a cursor made further on (by the primary) is served by the primary
// instead of expiring or waiting for the standby; and a long-poll woken by a commit the standby
// has not replayed yet gets it once replayed, instead of sleeping through its wait.
func TestPullFromALaggingStandby(t *testing.T) {
	f := newEngineFixture(t, 8)
	manager := f.newUser(t, fieldsync.RoleManager, "")
	claim := f.newClaim(t, f.newCustomer(t, uuid.Nil), "reported")
	tasks := []uuid.UUID{f.newTask(t, claim, uuid.Nil), f.newTask(t, claim, uuid.Nil), f.newTask(t, claim, uuid.Nil)}
	standby := testenv.Standby(t, f.db)
	e := standbyEngine(t, f, standby)
	ctx := context.Background()
	testenv.WaitReplay(t, f.db, standby)
	replay := func(on bool) {
		t.Helper()
		fn := "pg_wal_replay_pause()"
		if on {
			fn = "pg_wal_replay_resume()"
		}
		if _, err := standby.Pool.Exec(ctx, "SELECT "+fn); err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		if !on { // wait until it has paused
			for {
				var state string
				if err := standby.Pool.QueryRow(ctx, `SELECT pg_get_wal_replay_pause_state()`).Scan(&state); err != nil {
					t.Fatal(err)
				}
				if state == "paused" {
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	touch := func(task uuid.UUID) {
		t.Helper()
		f.exec(t, `UPDATE tasks SET title = $2 WHERE id = $1`, task, "Visit "+uuid.NewString()[:8])
	}

	// A snapshot from the standby, then its log to the end.
	cursor := f.pullUntilCaughtUpWith(t, e, manager, "")

	replay(false)
	touch(tasks[0])
	next, got := pullIDs(t, e, manager, sync.PullRequest{Cursor: cursor})
	if len(got) != 0 {
		t.Fatalf("a standby that had not replayed the change served %v", got)
	}
	if next != cursor {
		t.Fatalf("a page with nothing moved the cursor")
	}

	// The primary serves the change and a cursor past it; with that cursor the lagging standby's
	// engine must serve what comes next, from the primary.
	pullUntil(t, f.engine, manager, cursor, tasks[0])
	touch(tasks[1])
	primaryCursor := f.pullUntilCaughtUpWith(t, f.engine, manager, cursor) // past tasks[0] and [1]
	touch(tasks[2])
	got = pullUntil(t, e, manager, primaryCursor, tasks[2])
	if got[tasks[0]] || got[tasks[1]] {
		t.Fatalf("a cursor past the standby's replay: got %v, want only task %s (from the primary)", got, tasks[2])
	}

	// A snapshot begun on the primary goes on, a page at a time, on the lagging standby's engine:
	// its pages come from the primary, records as they are now, not as the standby has them.
	snap, got := pullIDs(t, f.engine, manager, sync.PullRequest{Limit: 1})
	touch(tasks[0])
	var want int64
	if err := f.pool.QueryRow(ctx, `SELECT version FROM tasks WHERE id = $1`, tasks[0]).Scan(&want); err != nil {
		t.Fatal(err)
	}
	for {
		var more bool
		var err error
		snap, more, err = e.Pull(ctx, manager, sync.PullRequest{Cursor: snap, Limit: 1}, func(ch sync.Change) error {
			if ch.ID == tasks[0] && ch.Version != want {
				return errors.New("the snapshot sent a task older than the snapshot's start")
			}
			got[ch.ID] = true
			return nil
		})
		if err != nil {
			t.Fatalf("snapshot on the lagging standby: %v", err)
		}
		if !more {
			break
		}
	}
	for _, task := range tasks {
		if !got[task] {
			t.Fatalf("the snapshot lacks task %s", task)
		}
	}

	// A long-poll from the standby's own cursor, woken by a commit the standby has not replayed:
	// it gets the change once the standby replays it.
	replay(true)
	testenv.WaitReplay(t, f.db, standby)
	cursor = f.pullUntilCaughtUpWith(t, e, manager, cursor)
	replay(false)
	result := make(chan map[uuid.UUID]bool, 1)
	go func() {
		got := map[uuid.UUID]bool{}
		_, _, err := e.Pull(ctx, manager, sync.PullRequest{Cursor: cursor, Wait: 55 * time.Second}, func(ch sync.Change) error {
			got[ch.ID] = true
			return nil
		})
		if err != nil {
			t.Errorf("long-poll: %v", err)
		}
		result <- got
	}()
	time.Sleep(200 * time.Millisecond) // the long-poll reads, finds nothing new, waits
	touch(tasks[1])
	time.Sleep(200 * time.Millisecond) // woken; the standby has not replayed it
	replay(true)
	if got := <-result; !got[tasks[1]] {
		t.Fatalf("the long-poll returned %v without the change that woke it", got)
	}
}

// pullUntilCaughtUpWith is pullUntilCaughtUp through engine e.
func (f *engineFixture) pullUntilCaughtUpWith(t *testing.T, e *sync.Engine, id *fieldsync.Identity, cursor string) string {
	t.Helper()
	saved := f.engine
	f.engine = e
	defer func() { f.engine = saved }()
	return f.pullUntilCaughtUp(t, id, cursor, func(sync.Change) error { return nil })
}

// TestPullFromAStandbyHasNoGaps is the gap test (TestPullHasNoGapsWhileTransactionsCommitOutOfOrder)
// with readers on a standby that lags (replay delayed): writers on the primary, a manager's device
// pulling from the standby only, and a rep's device whose pulls go to the primary's engine or the
// standby's at random, so its cursor is often further on than the standby (served by the
// primary). Neither may ever have its cursor pass a change it was not sent, and at the end each
// device holds exactly what a fresh snapshot from the primary sends.
func TestPullFromAStandbyHasNoGaps(t *testing.T) {
	seed := gapSeed(t)
	cfg := gapWriterConfig{
		writers:      envInt(t, "FIELDSYNC_GAP_WRITERS", 6),
		txPerWriter:  envInt(t, "FIELDSYNC_GAP_TX", 40),
		holdProb:     0.3,
		rollbackProb: 0.1,
		maxHold:      60 * time.Millisecond,
	}
	f := newEngineFixture(t, int32(cfg.writers+6))
	w := newGapWorld(t, f, 16)
	standby := testenv.Standby(t, f.db, "recovery_min_apply_delay=30ms")
	e := standbyEngine(t, f, standby)

	afterPos := func(cur, c logPos) bool { return c.less(cur) || c == cur }
	everything := func(string) bool { return true }
	type device struct {
		id      *fieldsync.Identity
		r       *gapReader
		engines []*sync.Engine
		held    map[string]json.RawMessage
	}
	devices := []*device{
		{id: w.manager, r: newGapReader("manager on the standby", everything, afterPos), engines: []*sync.Engine{e}},
		{id: w.reps[0], r: newGapReader("rep on either", w.repScope(w.reps[0].UserID), afterPos), engines: []*sync.Engine{e, f.engine}},
	}
	dones := make([]chan logPos, len(devices))
	errs := make(chan error, len(devices))
	for i, d := range devices {
		d.held = map[string]json.RawMessage{}
		dones[i] = make(chan logPos, 1)
		go func() {
			errs <- pullLoop(d.id, d.r, d.engines, d.held, rand.New(rand.NewPCG(seed, uint64(100+i))), dones[i])
		}()
	}
	txs := w.runWriters(t, seed, cfg)
	for i, d := range devices {
		dones[i] <- f.lastLogPos(t, d.id)
	}
	for range devices {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range devices {
		v := d.r.check(txs)
		t.Logf("%s: %d pulls, %d committed changes in scope", d.r.name, len(d.r.cursors), v.changes)
		if v.gaps > 0 || v.lost > 0 {
			t.Errorf("%s: %d gaps, %d lost: %v", d.r.name, v.gaps, v.lost, v.examples)
		}
		want := f.snapshotOf(t, d.id)
		if len(want) != len(d.held) {
			t.Errorf("%s holds %d records, a fresh snapshot from the primary sends %d", d.r.name, len(d.held), len(want))
		}
		for key, data := range want {
			if !jsonEqual(d.held[key], data) {
				t.Errorf("%s: %s is %s, the primary's snapshot sends %s", d.r.name, key, d.held[key], data)
			}
		}
	}
}

// jsonEqual reports whether a and b are the same JSON value.
func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ax, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	return string(ax) == string(by)
}
