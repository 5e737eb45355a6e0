package sync_test

import (
	"context"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
)

// TestCheckTargetsPerBranchAndOwnDueDate: a branch's own targets override the defaults; a task's
// own due date overrides its kind's; an accepted visit is not re-dispatched; each happens once.
func TestCheckTargetsPerBranchAndOwnDueDate(t *testing.T) {
	t.Parallel()
	f := newEngineFixture(t, 4)
	ctx := context.Background()
	rep, second := f.newUser(t, "rep", "hospital"), f.newUser(t, "rep", "hospital")
	claim := f.newClaim(t, f.newCustomer(t, uuid.Nil), "reported")
	late := f.newTask(t, claim, rep.UserID)
	accepted := f.newTask(t, claim, second.UserID)
	f.exec(t, `UPDATE tasks SET status = 'accepted' WHERE id = $1`, accepted)
	var reported time.Time
	if err := f.pool.QueryRow(ctx, `SELECT created_at FROM claims WHERE id = $1`, claim).Scan(&reported); err != nil {
		t.Fatal(err)
	}
	f.exec(t, `UPDATE tasks SET due_at = $2 WHERE id = $1`, accepted, reported.Add(3*time.Hour))
	f.exec(t, `INSERT INTO task_targets (branch_id, kind, accept_within, done_within) VALUES ($1, 'hospital_visit', '10 minutes', '1 hour')`, f.branch)

	check := func(at time.Duration, want sync.TargetsReport) {
		t.Helper()
		got, err := f.engine.CheckTargets(ctx, reported.Add(at))
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("at +%s: %+v, want %+v", at, got, want)
		}
	}
	check(9*time.Minute, sync.TargetsReport{})
	check(11*time.Minute, sync.TargetsReport{Redispatched: 1}) // the branch's 10 minutes, not 30
	check(12*time.Minute, sync.TargetsReport{})
	var assignee uuid.UUID
	if err := f.pool.QueryRow(ctx, `SELECT assignee_id FROM tasks WHERE id = $1`, late).Scan(&assignee); err != nil {
		t.Fatal(err)
	}
	if assignee != second.UserID {
		t.Fatalf("re-dispatched to %s, want the other on-duty hospital rep %s", assignee, second.UserID)
	}
	check(61*time.Minute, sync.TargetsReport{Overdue: 1}) // the re-dispatched visit: the branch's hour
	check(2*time.Hour, sync.TargetsReport{})
	check(3*time.Hour, sync.TargetsReport{Overdue: 1}) // the accepted one, by its own due date
	check(10*time.Hour, sync.TargetsReport{})
}
