package sync_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
)

// TestWokenLongPollDoesNotQueueBehindAWave: a long-poll woken by a commit in its scope looks at
// the log on looks of its own, so its change reaches it while a wave of devices coming back
// (every first look taken) holds the others.
func TestWokenLongPollDoesNotQueueBehindAWave(t *testing.T) {
	t.Parallel()
	f := newEngineFixture(t, 8)
	ctx := context.Background()
	rep, manager := f.newUser(t, fieldsync.RoleRep, "hospital"), f.newUser(t, fieldsync.RoleManager, "")
	task := f.newTask(t, f.newClaim(t, f.newCustomer(t, uuid.Nil), string(sync.ClaimCollecting)), rep.UserID)
	cursor := f.pullUntilCaughtUp(t, rep, "", func(sync.Change) error { return nil })

	got := make(chan string, 1)
	go func() {
		var title string
		_, _, err := f.engine.Pull(ctx, rep, sync.PullRequest{Cursor: cursor, Wait: 30 * time.Second}, func(ch sync.Change) error {
			if ch.ID == task {
				var tk sync.Task
				_ = json.Unmarshal(ch.Data, &tk)
				title = tk.Title
			}
			return nil
		})
		if err != nil {
			title = "error: " + err.Error()
		}
		got <- title
	}()
	time.Sleep(300 * time.Millisecond) // the long-poll has looked once and waits
	release := sync.HoldFirstLooks(f.engine)
	defer release()

	base := f.versionOf(t, sync.TypeTask, task)
	if _, err := f.engine.Push(ctx, manager, []sync.Mutation{{ID: uuid.New(), Type: sync.TypeTask, Op: "update", EntityID: task,
		BaseVersion: &base, Fields: map[string]json.RawMessage{"title": mustJSON(t, "Bring the discharge summary")}}}); err != nil {
		t.Fatal(err)
	}
	select {
	case title := <-got:
		if title != "Bring the discharge summary" {
			t.Fatalf("the woken long-poll answered %q", title)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the woken long-poll waited behind the wave's looks")
	}
}
