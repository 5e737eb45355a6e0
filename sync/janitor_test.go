package sync_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
)

// TestPrunePastRetention: the sweep prunes what is past the retention (30 days by default) and
// keeps what is inside: the change log below the horizon, the stored results of mutations and the
// finished push deliveries (a sync wake-up's, which has no notification, included). A
// device whose cursor is behind the horizon gets cursor_expired, and a fresh snapshot brings it
// back in step; a replay inside the retention still returns the stored result.
func TestPrunePastRetention(t *testing.T) {
	t.Parallel()
	clock := &apptest.Clock{}
	f := newEngineFixtureAt(t, 4, clock.Now)
	ctx := context.Background()
	rep, manager := f.newUser(t, fieldsync.RoleRep, "hospital"), f.newUser(t, fieldsync.RoleManager, "")
	claim := f.newClaim(t, f.newCustomer(t, uuid.Nil), string(sync.ClaimCollecting))
	task := f.newTask(t, claim, rep.UserID)
	behind := f.pullUntilCaughtUp(t, rep, "", func(sync.Change) error { return nil })

	rename := func(title string) sync.Mutation {
		base := f.versionOf(t, sync.TypeTask, task)
		return sync.Mutation{ID: uuid.New(), Type: sync.TypeTask, Op: "update", EntityID: task, BaseVersion: &base,
			Fields: map[string]json.RawMessage{"title": mustJSON(t, title)}}
	}
	// Finished push deliveries, a sync wake-up's each: one finished before the retention, one
	// inside it, and one still pending (never pruned, however old).
	delivery := func(state string, finished time.Time) (id int64) {
		t.Helper()
		var at *time.Time
		if state != "pending" {
			at = &finished
		}
		if err := f.pool.QueryRow(ctx, `INSERT INTO notification_deliveries (device_id, batch_id, kind, state, queued_at, finished_at)
			VALUES ($1, $2, 'sync', $3, $4, $5) RETURNING id`, rep.DeviceID, uuid.New(), state, finished, at).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	oldDelivery, pendingDelivery := delivery("sent", clock.Now()), delivery("pending", clock.Now())
	old := rename("Before the retention")
	if _, err := f.engine.Push(ctx, manager, []sync.Mutation{old}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(31 * 24 * time.Hour)
	recentDelivery := delivery("sent", clock.Now())
	recent := rename("Inside the retention")
	first, err := f.engine.Push(ctx, manager, []sync.Mutation{recent})
	if err != nil {
		t.Fatal(err)
	}

	// The horizon stops below the oldest transaction running on the server (other tests' too):
	// sweep until it passes what is past the retention.
	count := func(sql string, args ...any) int {
		t.Helper()
		var n int
		if err := f.pool.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err := f.engine.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if count(`SELECT count(*) FROM changes WHERE created_at < $1`, clock.Now().Add(-30*24*time.Hour)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("changes past the retention still logged after 30 s of sweeps")
		}
	}
	if n := count(`SELECT count(*) FROM applied_mutations WHERE id = $1`, old.ID); n != 0 {
		t.Error("the result of a mutation past the retention is still stored")
	}
	if n := count(`SELECT count(*) FROM applied_mutations WHERE id = $1`, recent.ID); n != 1 {
		t.Error("the result of a mutation inside the retention was pruned")
	}
	if n := count(`SELECT count(*) FROM changes WHERE entity_id = $1 AND version = $2`, task, first[0].Version); n != 1 {
		t.Error("the change inside the retention was pruned")
	}
	for _, d := range []struct {
		id   int64
		what string
		want int
	}{{oldDelivery, "a delivery finished before the retention", 0}, {recentDelivery, "a delivery finished inside it", 1},
		{pendingDelivery, "a pending delivery", 1}} {
		if n := count(`SELECT count(*) FROM notification_deliveries WHERE id = $1`, d.id); n != d.want {
			t.Errorf("%s: %d rows, want %d", d.what, n, d.want)
		}
	}

	// Inside the retention, a replay is still answered from the stored result.
	again, err := f.engine.Push(ctx, manager, []sync.Mutation{recent})
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Version != first[0].Version || f.versionOf(t, sync.TypeTask, task) != first[0].Version {
		t.Fatalf("a replay inside the retention: version %d, first %d, stored %d", again[0].Version, first[0].Version,
			f.versionOf(t, sync.TypeTask, task))
	}

	// The device behind the horizon starts again from a snapshot, and follows the log from there.
	_, _, err = f.engine.Pull(ctx, rep, sync.PullRequest{Cursor: behind}, func(sync.Change) error { return nil })
	var fe *fieldsync.Error
	if !errors.As(err, &fe) || fe.Code != "cursor_expired" {
		t.Fatalf("a pull from behind the horizon: %v, want cursor_expired", err)
	}
	snap := f.snapshotOf(t, rep)
	var got sync.Task
	if err := json.Unmarshal(snap[sync.TypeTask+":"+task.String()], &got); err != nil || got.Title != "Inside the retention" {
		t.Fatalf("the fresh snapshot's task: %s (%v)", snap[sync.TypeTask+":"+task.String()], err)
	}
	cursor := f.pullUntilCaughtUp(t, rep, "", func(sync.Change) error { return nil })
	if _, err := f.engine.Push(ctx, manager, []sync.Mutation{rename("After the snapshot")}); err != nil {
		t.Fatal(err)
	}
	var seen string
	f.pullUntilCaughtUp(t, rep, cursor, func(ch sync.Change) error {
		if ch.Type == sync.TypeTask && ch.ID == task {
			var tk sync.Task
			_ = json.Unmarshal(ch.Data, &tk)
			seen = tk.Title
		}
		return nil
	})
	if seen != "After the snapshot" {
		t.Fatalf("after the snapshot the device saw %q", seen)
	}
}
