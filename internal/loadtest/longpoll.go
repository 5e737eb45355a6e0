package loadtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/fieldsync/fieldsync/internal/client"
	"github.com/google/uuid"
)

// sentNote is a note a writer pushed, for the delivery latency: when, and which device's
// long-poll is to be timed receiving it (the writer's own, which its scope holds).
type sentNote struct {
	device int
	at     time.Time
}

// longPoll is the load test. Devices sign in (reps of branches of RepsPerBranch, DevicesPerRep
// each), pull their snapshot, then long-poll (wait=Wait) without pause; once every one is
// waiting, Writers of them push one small mutation (a note on one of their tasks) every Think
// for Duration, and the latency of those pushes is what is held to the goal. Each write wakes
// every long-poll of its branch on the server; only the writer's own devices get the note.
func (r *run) longPoll(ctx context.Context) error {
	o := r.o
	reps := (o.Devices + o.DevicesPerRep - 1) / o.DevicesPerRep
	branches := (reps + o.RepsPerBranch - 1) / o.RepsPerBranch
	var users []seededUser
	taskOf := map[uuid.UUID]uuid.UUID{}
	for b := range branches {
		branch, err := r.seed.branch(ctx, "Bench load")
		if err != nil {
			return err
		}
		us, err := r.seed.users(ctx, branch, "rep", min(o.RepsPerBranch, reps-b*o.RepsPerBranch))
		if err != nil {
			return err
		}
		// Two tasks each: a scope of a few records besides the branch's users.
		var assignees []uuid.UUID
		for _, u := range us {
			assignees = append(assignees, u.ID, u.ID)
		}
		w, err := r.seed.tasks(ctx, branch, assignees)
		if err != nil {
			return err
		}
		for i, u := range us {
			taskOf[u.ID] = w.Tasks[2*i]
		}
		users = append(users, us...)
	}

	startup := r.begin()
	loginStart := time.Now()
	clients, err := r.login(ctx, users, o.DevicesPerRep)
	if err != nil {
		return err
	}
	clients = clients[:o.Devices]
	loginTime := time.Since(loginStart)
	r.progress("long-poll: %d devices signed in in %.1f s", len(clients), loginTime.Seconds())

	// The devices: a snapshot (a few at a time, as phones coming online), then long-polls.
	pollCtx, stopPolls := context.WithCancel(ctx)
	defer stopPolls()
	var sent gosync.Map // note id → sentNote
	var delivery latencies
	var answers, pollErrs, held atomic.Int64
	var polling, ready gosync.WaitGroup
	ready.Add(len(clients))
	snapshots := make(chan struct{}, 16)
	for i, c := range clients {
		polling.Go(func() {
			var once gosync.Once
			defer once.Do(ready.Done)
			cursor := ""
			for cursor == "" && pollCtx.Err() == nil {
				snapshots <- struct{}{}
				next, _, err := catchUp(pollCtx, c, "", 500, nil)
				<-snapshots
				if err != nil {
					if pollCtx.Err() == nil {
						pollErrs.Add(1)
						sleep(pollCtx, time.Second)
					}
					continue
				}
				cursor = next
			}
			for pollCtx.Err() == nil {
				once.Do(ready.Done)
				held.Add(1)
				page, err := c.Pull(pollCtx, cursor, 0, o.Wait)
				held.Add(-1)
				if err != nil {
					if pollCtx.Err() == nil {
						pollErrs.Add(1)
						sleep(pollCtx, time.Second)
					}
					continue
				}
				answers.Add(1)
				now := time.Now()
				for _, ch := range page.Changes {
					if ch.Type != "task_note" {
						continue
					}
					if v, ok := sent.Load(ch.ID); ok && v.(sentNote).device == i {
						delivery.add(now.Sub(v.(sentNote).at))
					}
				}
				cursor = page.Cursor
			}
		})
	}
	allReady := make(chan struct{})
	go func() { ready.Wait(); close(allReady) }()
	select {
	case <-allReady:
	case <-time.After(5 * time.Minute):
		return fmt.Errorf("the devices were not all long-polling after 5 minutes (%d errors)", pollErrs.Load())
	case <-ctx.Done():
		return ctx.Err()
	}
	// Let the last long-polls reach the server.
	sleep(ctx, min(time.Second, o.Wait/4))
	startupUsage := r.end(startup)
	if err := ctx.Err(); err != nil {
		return err
	}
	answers.Store(0)
	r.progress("long-poll: %d devices waiting (%d errors getting there); %d writers start", held.Load(), pollErrs.Load(), o.Writers)

	// The writers: spread over the devices, and so over the branches.
	var lat latencies
	var pushes, pushErrs atomic.Int64
	var firstErr atomic.Value
	xacts0, err := r.dbTransactions(ctx)
	if err != nil {
		return err
	}
	p := r.begin()
	wait := r.profile(ctx, "longpoll", o.Duration)
	start := time.Now()
	deadline := start.Add(o.Duration)
	var writing gosync.WaitGroup
	for j := range o.Writers {
		device := j * len(clients) / o.Writers
		c, task := clients[device], taskOf[users[device/o.DevicesPerRep].ID]
		writing.Go(func() {
			sleep(ctx, rand.N(o.Think+time.Millisecond)) // not all at once
			for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				note := uuid.Must(uuid.NewV7())
				m := client.Mutation{ID: uuid.Must(uuid.NewV7()), Type: "task_note", Op: "create", EntityID: note,
					Fields: map[string]any{"task_id": task, "body": fmt.Sprintf("Writer %d, note %d: waiting for the doctor.", j, n)}, ClientTime: time.Now()}
				sent.Store(note, sentNote{device: device, at: time.Now()})
				t0 := time.Now()
				res, err := c.Push(ctx, []client.Mutation{m})
				d := time.Since(t0)
				pushes.Add(1)
				switch {
				case err != nil:
					pushErrs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				case res[0].Status != "applied":
					pushErrs.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%s %+v", res[0].Status, res[0].Error))
				default:
					lat.add(d)
				}
				sleep(ctx, o.Think)
			}
		})
	}
	writing.Wait()
	elapsed := time.Since(start)
	usage := r.end(p)
	xacts1, err := r.dbTransactions(ctx)
	if err != nil {
		return err
	}
	stillHeld := held.Load()
	stopPolls()
	polling.Wait()
	wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if e, ok := firstErr.Load().(string); ok {
		r.progress("long-poll: first push error: %s", e)
	}

	sum := lat.summary()
	r.report.LongPoll = LongPoll{Devices: len(clients), Users: len(users), Branches: branches, Writers: o.Writers,
		WaitSeconds: int(o.Wait / time.Second), Seconds: round(elapsed.Seconds(), 2), LoginSeconds: round(loginTime.Seconds(), 2),
		Pushes: pushes.Load(), PushesPerSec: round(float64(pushes.Load())/elapsed.Seconds(), 1), PushErrors: pushErrs.Load(),
		Latency: sum, PollAnswers: answers.Load(), PollErrors: pollErrs.Load(), PollsHeld: stillHeld,
		Delivery: delivery.summary(), Server: usage, ServerStartup: startupUsage,
		DBTransactionsPerSec: round(float64(xacts1-xacts0)/elapsed.Seconds(), 0)}
	r.progress("long-poll: %d pushes, p50 %.1f ms, p99 %.1f ms, max %.0f ms; %d errors", sum.Count, sum.P50, sum.P99, sum.Max, pushErrs.Load())
	return nil
}

// dbTransactions returns how many transactions the database has run (each statement outside a
// transaction is one), as PostgreSQL's statistics count them: they lag by up to a second.
func (r *run) dbTransactions(ctx context.Context) (int64, error) {
	var n int64
	err := r.pool.QueryRow(ctx, `SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("read the database's statistics: %w", err)
	}
	return n, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
