package loadtest

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/fieldsync/fieldsync/internal/client"
	"github.com/fieldsync/fieldsync/internal/fakefcm"
	"github.com/google/uuid"
)

// notifications measures how long a notification takes from the commit of its cause to FCM: a
// manager reassigns tasks one at a time, on an otherwise idle server, and each reassignment
// tells the new assignee (task_assigned) and the former one (task_unassigned) on their phones.
// The clock starts when the manager's push is answered (the commit is just before) and stops
// when the fake FCM receives the message.
func (r *run) notifications(ctx context.Context) error {
	branch, err := r.seed.branch(ctx, "Bench notify")
	if err != nil {
		return err
	}
	managers, err := r.seed.users(ctx, branch, "manager", 1)
	if err != nil {
		return err
	}
	reps, err := r.seed.users(ctx, branch, "rep", 2)
	if err != nil {
		return err
	}
	assignees := make([]uuid.UUID, r.o.NotifyEvents)
	for i := range assignees {
		assignees[i] = reps[0].ID
	}
	w, err := r.seed.tasks(ctx, branch, assignees)
	if err != nil {
		return err
	}
	versions, err := r.seed.versions(ctx, "tasks", w.Tasks)
	if err != nil {
		return err
	}
	clients, err := r.login(ctx, append(managers, reps...), 1)
	if err != nil {
		return err
	}
	manager, from, to := clients[0], clients[1], clients[2]
	var tokens [2]string
	for i, c := range []*client.Client{from, to} {
		tokens[i] = "bench-token-" + uuid.NewString()
		if err := c.Do(ctx, http.MethodPut, "/v1/devices/current/push-token", map[string]string{"token": tokens[i], "platform": "android"}, nil); err != nil {
			return fmt.Errorf("register a push token: %w", err)
		}
	}

	var lat latencies
	missing := 0
	p := r.begin()
	for _, task := range w.Tasks {
		m := client.Mutation{ID: uuid.Must(uuid.NewV7()), Type: "task", Op: "update", EntityID: task, BaseVersion: versions[task],
			Fields: map[string]any{"assignee_id": reps[1].ID.String()}, ClientTime: time.Now()}
		res, err := manager.Push(ctx, []client.Mutation{m})
		if err != nil {
			return fmt.Errorf("reassign a task: %w", err)
		}
		answered := time.Now()
		if res[0].Status != "applied" && res[0].Status != "merged" {
			return fmt.Errorf("reassign a task: %s %+v", res[0].Status, res[0].Error)
		}
		for _, want := range []struct{ token, kind string }{{tokens[1], "task_assigned"}, {tokens[0], "task_unassigned"}} {
			msg, err := r.t.FCM.WaitFor(func(m fakefcm.Message) bool {
				return m.Token == want.token && m.Data["entity_id"] == task.String() && m.Data["kind"] == want.kind
			}, 10*time.Second)
			if err != nil {
				missing++
				continue
			}
			// A message can reach the fake before the push's answer reaches the client; it
			// cannot precede the commit.
			lat.add(max(msg.At.Sub(answered), 0))
		}
		// Idle between changes, as a branch is most of the time.
		time.Sleep(25 * time.Millisecond)
	}
	sum := lat.summary()
	r.report.Notification = Notification{Events: len(w.Tasks), Messages: sum.Count, Missing: missing, Latency: sum, Server: r.end(p)}
	r.progress("notifications: %d messages, p50 %.1f ms, p99 %.1f ms, %d missing", sum.Count, sum.P50, sum.P99, missing)
	return nil
}
