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
	"golang.org/x/sync/errgroup"
)

// sentNote is a note a writer pushed, for the delivery latency: when, and which device's
// long-poll is to be timed receiving it (the writer's own, which its scope holds).
type sentNote struct {
	device   int
	sent     time.Time
	answered atomic.Int64 // the push's answer received (its commit acknowledged), UnixNano
	received atomic.Int64 // the note reaching the device's long-poll, UnixNano
}

// longPollDevices are the devices of the long-poll phase, signed in once for both sizes.
type longPollDevices struct {
	users   []seededUser
	taskOf  map[uuid.UUID]uuid.UUID // a task of each user's own, for the writers' notes
	clients []*client.Client
}

// longPoll is the load test, at two sizes (DevicesSmall, then Devices) so that growth shows.
// Every device signs in first, once, as phones at the start of a shift: that storm's memory is
// measured on its own, and the tokens serve both sizes. Each size is then longPollAt.
func (r *run) longPoll(ctx context.Context) error {
	o := r.o
	d, err := r.longPollSeed(ctx)
	if err != nil {
		return err
	}
	// The storm: the first SignInStorm users' devices sign in at once, each login an argon2id
	// hash at the production cost. The peak it makes depends on how many hashes run at once (the
	// server's slots), not on how many wait: a few hundred logins reach it. The other users have a
	// cheap hash (seeded so), so that 5,000 devices sign in within a minute on a small machine.
	storm := min(o.SignInStorm, len(d.users))
	if err := r.seed.cheapen(ctx, d.users[storm:]); err != nil {
		return err
	}
	signIn := r.begin()
	loginStart := time.Now()
	clients, err := r.loginStorm(ctx, d.users[:storm], o.DevicesPerRep)
	if err != nil {
		return err
	}
	loginTime := time.Since(loginStart)
	signInUsage := r.end(signIn)
	r.progress("long-poll: %d devices signed in (argon2id at the production cost) in %.1f s, server RSS peak %.0f MB",
		len(clients), loginTime.Seconds(), signInUsage.PeakRSSMB)
	rest, err := r.loginStorm(ctx, d.users[storm:], o.DevicesPerRep)
	if err != nil {
		return err
	}
	d.clients = append(clients, rest...)[:o.Devices]

	sizes := []int{o.Devices}
	if o.DevicesSmall > 0 && o.DevicesSmall < o.Devices {
		sizes = []int{o.DevicesSmall, o.Devices}
	}
	for _, n := range sizes {
		l, err := r.longPollAt(ctx, d, n)
		if err != nil {
			return err
		}
		l.SignIn, l.SignInDevices, l.LoginSeconds = signInUsage, storm*o.DevicesPerRep, round(loginTime.Seconds(), 2)
		if n == o.Devices {
			r.report.LongPoll = l
		} else {
			r.report.LongPollSmall = l
		}
	}
	if s, l := r.report.LongPollSmall, r.report.LongPoll; s.Devices > 0 {
		at := func(l LongPoll, v float64) Sized { return Sized{Size: fmt.Sprintf("%d devices", l.Devices), Value: v} }
		r.report.grow("writers' push p99", "ms", at(s, s.Latency.P99), at(l, l.Latency.P99))
		r.report.grow("commit → wake p99", "ms", at(s, s.Wake.P99), at(l, l.Wake.P99))
		r.report.grow("server memory a waiting device", "KB", at(s, s.Memory.PerDeviceKB), at(l, l.Memory.PerDeviceKB))
		r.report.grow("server memory, every device waiting", "MB", at(s, s.Memory.WaitingMB), at(l, l.Memory.WaitingMB))
	}
	return nil
}

// longPollSeed makes the reps of the long-poll phase: branches of RepsPerBranch, enough for
// Devices devices, each rep with two tasks of their own.
func (r *run) longPollSeed(ctx context.Context) (*longPollDevices, error) {
	o := r.o
	reps := (o.Devices + o.DevicesPerRep - 1) / o.DevicesPerRep
	branches := (reps + o.RepsPerBranch - 1) / o.RepsPerBranch
	d := &longPollDevices{taskOf: map[uuid.UUID]uuid.UUID{}}
	for b := range branches {
		branch, err := r.seed.branch(ctx, "Bench load")
		if err != nil {
			return nil, err
		}
		us, err := r.seed.users(ctx, branch, "rep", min(o.RepsPerBranch, reps-b*o.RepsPerBranch))
		if err != nil {
			return nil, err
		}
		// Two tasks each: a scope of a few records besides the branch's users.
		var assignees []uuid.UUID
		for _, u := range us {
			assignees = append(assignees, u.ID, u.ID)
		}
		w, err := r.seed.tasks(ctx, branch, assignees)
		if err != nil {
			return nil, err
		}
		for i, u := range us {
			d.taskOf[u.ID] = w.Tasks[2*i]
		}
		d.users = append(d.users, us...)
	}
	return d, nil
}

// longPollAt is the load test with the first n devices. They pull their snapshot (a few at a
// time, as phones coming online), their connections are closed, and the server's memory is
// read; then every one long-polls (wait=Wait) without pause, the server's memory is read again
// once it holds them all, and Writers of them push one small mutation (a note on one of their
// tasks) every Think for Duration. The latency of those pushes is what is held to the goal; a
// write wakes only the long-polls it concerns (the writer's own devices get the note).
func (r *run) longPollAt(ctx context.Context, d *longPollDevices, n int) (LongPoll, error) {
	o := r.o
	clients := d.clients[:n]
	users := d.users[:(n+o.DevicesPerRep-1)/o.DevicesPerRep]
	branches := (len(users) + o.RepsPerBranch - 1) / o.RepsPerBranch
	writers := min(o.Writers, n)
	r.progress("long-poll, %d devices: first sync", n)

	// The snapshots.
	startup := r.begin()
	cursors := make([]string, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, c := range clients {
		g.Go(func() error {
			var err error
			for attempt := 0; attempt < 5; attempt++ {
				if cursors[i], _, err = catchUp(gctx, c, "", 500, nil); err == nil || !client.Retryable(err) {
					break
				}
				sleep(gctx, time.Second)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return LongPoll{}, fmt.Errorf("first sync: %w", err)
	}
	startupUsage := r.end(startup)

	// The server's memory with no device connected (the idle connections the snapshots left are
	// closed, and the server given a moment to see them go).
	r.http.CloseIdleConnections()
	sleep(ctx, 500*time.Millisecond)
	before, err := r.serverMemory(ctx)
	if err != nil {
		return LongPoll{}, err
	}

	// The devices long-poll.
	pollCtx, stopPolls := context.WithCancel(ctx)
	defer stopPolls()
	var sent gosync.Map // note id → *sentNote
	var answers, pollErrs, held atomic.Int64
	var polling gosync.WaitGroup
	for i, c := range clients {
		cursor := cursors[i]
		polling.Go(func() {
			for pollCtx.Err() == nil {
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
				now := time.Now().UnixNano()
				for _, ch := range page.Changes {
					if ch.Type != "task_note" {
						continue
					}
					if v, ok := sent.Load(ch.ID); ok && v.(*sentNote).device == i {
						v.(*sentNote).received.CompareAndSwap(0, now)
					}
				}
				cursor = page.Cursor
			}
		})
	}
	// Every device waiting: the server holds a request (and so at least a goroutine) for each.
	waiting, err := r.awaitWaiting(ctx, before.goroutines+n, &held, n)
	if err != nil {
		return LongPoll{}, err
	}
	mem := WaitMemory{BeforeMB: mb(before.live), WaitingMB: mb(waiting.live), Goroutines: waiting.goroutines,
		StacksKB:    round(float64(waiting.stacks-before.stacks)/1e3/float64(n), 1),
		PerDeviceKB: round(float64(waiting.live-before.live)/1e3/float64(n), 1),
		RSSBeforeMB: mb(before.rss), RSSWaitingMB: mb(waiting.rss), RSSPerDeviceKB: round(float64(waiting.rss-before.rss)/1e3/float64(n), 1)}
	answers.Store(0)
	r.progress("long-poll, %d devices: all waiting (%d errors getting there), server memory %.0f → %.0f MB heap and stacks (%.1f KB a device, %.1f KB of it stacks), RSS %.0f → %.0f MB; %d writers start",
		n, pollErrs.Load(), mem.BeforeMB, mem.WaitingMB, mem.PerDeviceKB, mem.StacksKB, mem.RSSBeforeMB, mem.RSSWaitingMB, writers)

	// The writers: spread over the devices, and so over the branches.
	var lat latencies
	var pushes, pushErrs atomic.Int64
	var firstErr atomic.Value
	xacts0, err := r.dbTransactions(ctx)
	if err != nil {
		return LongPoll{}, err
	}
	p := r.begin()
	wait := r.profile(ctx, fmt.Sprintf("longpoll%d", n), o.Duration)
	start := time.Now()
	deadline := start.Add(o.Duration)
	var writing gosync.WaitGroup
	for j := range writers {
		device := j * n / writers
		c, task := clients[device], d.taskOf[users[device/o.DevicesPerRep].ID]
		writing.Go(func() {
			sleep(ctx, rand.N(o.Think+time.Millisecond)) // not all at once
			for k := 0; time.Now().Before(deadline) && ctx.Err() == nil; k++ {
				id := uuid.Must(uuid.NewV7())
				m := client.Mutation{ID: uuid.Must(uuid.NewV7()), Type: "task_note", Op: "create", EntityID: id,
					Fields: map[string]any{"task_id": task, "body": fmt.Sprintf("Writer %d, note %d: waiting for the doctor.", j, k)}, ClientTime: time.Now()}
				note := &sentNote{device: device, sent: time.Now()}
				sent.Store(id, note)
				res, err := c.Push(ctx, []client.Mutation{m})
				took := time.Since(note.sent)
				answered := time.Now().UnixNano()
				pushes.Add(1)
				switch {
				case err != nil:
					pushErrs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				case res[0].Status != "applied":
					pushErrs.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%s %+v", res[0].Status, res[0].Error))
				default:
					lat.add(took)
					note.answered.Store(answered) // applied: its note is to be delivered
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
		return LongPoll{}, err
	}
	// The last notes reach their long-polls: wait for every note pushed to arrive, for as long as
	// a long-poll waits (a note not there by then counts as not delivered), so that a late one is
	// counted in the tail, not left out of it.
	stillHeld := held.Load()
	for end := time.Now().Add(o.Wait + time.Second); time.Now().Before(end) && ctx.Err() == nil; sleep(ctx, 50*time.Millisecond) {
		missing := false
		sent.Range(func(_, v any) bool {
			note := v.(*sentNote)
			missing = note.answered.Load() != 0 && note.received.Load() == 0
			return !missing
		})
		if !missing {
			break
		}
	}
	stopPolls()
	polling.Wait()
	wait()
	r.http.CloseIdleConnections()
	if err := ctx.Err(); err != nil {
		return LongPoll{}, err
	}
	if e, ok := firstErr.Load().(string); ok {
		r.progress("long-poll: first push error: %s", e)
	}
	var delivery, wake latencies
	sent.Range(func(_, v any) bool {
		note := v.(*sentNote)
		recv, ans := note.received.Load(), note.answered.Load()
		if recv == 0 || ans == 0 {
			return true
		}
		delivery.add(time.Duration(recv - note.sent.UnixNano()))
		wake.add(max(time.Duration(recv-ans), 0))
		return true
	})

	sum := lat.summary()
	l := LongPoll{Devices: n, Users: len(users), Branches: branches, Writers: writers,
		WaitSeconds: int(o.Wait / time.Second), Seconds: round(elapsed.Seconds(), 2),
		Pushes: pushes.Load(), PushesPerSec: round(float64(pushes.Load())/elapsed.Seconds(), 1), PushErrors: pushErrs.Load(),
		Latency: sum, PollAnswers: answers.Load(), PollErrors: pollErrs.Load(), PollsHeld: stillHeld,
		Delivery: delivery.summary(), Wake: wake.summary(), Memory: mem, Server: usage, ServerStartup: startupUsage,
		DBTransactionsPerSec: round(float64(xacts1-xacts0)/elapsed.Seconds(), 0)}
	r.progress("long-poll, %d devices: %d pushes, p50 %.1f ms, p99 %.1f ms, max %.0f ms; %d errors; wake p99 %.1f ms (%d of %d notes delivered)",
		n, sum.Count, sum.P50, sum.P99, sum.Max, pushErrs.Load(), l.Wake.P99, l.Wake.Count, pushes.Load())
	return l, nil
}

// awaitWaiting waits until every one of n devices is in a long-poll (held) and the server runs
// at least goroutines goroutines (a waiting request holds one), steady over half a second, and
// returns the server's memory then.
func (r *run) awaitWaiting(ctx context.Context, goroutines int, held *atomic.Int64, n int) (serverMemory, error) {
	deadline := time.Now().Add(5 * time.Minute)
	last := -1
	for {
		sleep(ctx, 500*time.Millisecond)
		if err := ctx.Err(); err != nil {
			return serverMemory{}, err
		}
		g, err := r.serverGoroutines(ctx)
		if err != nil {
			return serverMemory{}, err
		}
		if held.Load() >= int64(n) && g >= goroutines && g == last {
			return r.serverMemory(ctx)
		}
		last = g
		if time.Now().After(deadline) {
			return serverMemory{}, fmt.Errorf("the devices were not all long-polling after 5 minutes (%d of %d in a long-poll; the server runs %d goroutines, want %d)",
				held.Load(), n, g, goroutines)
		}
	}
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
