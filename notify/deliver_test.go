package notify_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/fieldsync/fieldsync/internal/fakefcm"
	"github.com/fieldsync/fieldsync/internal/fixture"
	"github.com/fieldsync/fieldsync/internal/jobqueue"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// failFirst answers the first request for each message to token with reply, and accepts the rest.
func failFirst(token string, reply *fakefcm.Error) func(fakefcm.Message, int) *fakefcm.Error {
	return func(c fakefcm.Message, attempt int) *fakefcm.Error {
		if c.Token == token && attempt == 1 {
			return reply
		}
		return nil
	}
}

// metric returns the value of a counter (or a histogram's count) of reg, summed over labels that
// match label (name=value), or over all when label is empty.
func metric(t testing.TB, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.Metric {
			if label != "" && !hasLabel(m, label) {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

func hasLabel(m *dto.Metric, label string) bool {
	name, value, _ := strings.Cut(label, "=")
	for _, l := range m.Label {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

func (b *bundle) registry(t testing.TB) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := b.svc.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	return reg
}

// sentTo returns the requests for token.
func sentTo(calls []fakefcm.Message, token string) []fakefcm.Message {
	var out []fakefcm.Message
	for _, c := range calls {
		if c.Token == token {
			out = append(out, c)
		}
	}
	return out
}

func TestUnavailableThenAcceptedDeliversOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reg := b.registry(t)
	w := b.world(t)
	hugo := w.tokens[w.hospital][0]
	b.fcm.SetRespond(failFirst(hugo, fakefcm.Unavailable()))
	b.report(t, w.customer)
	b.waitIdle(t, 15*time.Second)

	calls := sentTo(b.fcm.Requests(), hugo)
	if len(calls) != 2 || calls[0].Status != 503 || calls[1].Status != 200 {
		t.Fatalf("requests for Hugo's phone: %+v, want a 503 then a 200", statuses(calls))
	}
	if got := len(sentTo(b.fcm.Messages(), hugo)); got != 1 {
		t.Errorf("Hugo's phone was sent %d messages, want 1", got)
	}
	n := one(t, b.notifications(t), w.hospital, "claim_reported")
	if s := b.deliveryState(t, n.ID, w.devices[w.hospital][0]); s != "sent" {
		t.Errorf("delivery recorded %q, want sent", s)
	}
	if got := metric(t, reg, "fieldsync_push_sent_total", ""); got != 3 {
		t.Errorf("sent metric %v, want 3", got)
	}
	if got := metric(t, reg, "fieldsync_push_delivery_latency_seconds", ""); got != 3 {
		t.Errorf("latency observed %v times, want 3", got)
	}
}

func statuses(calls []fakefcm.Message) []int {
	var out []int
	for _, c := range calls {
		out = append(out, c.Status)
	}
	return out
}

func TestInternalErrorIsRetriedByTheQueueWithBackoff(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reg := b.registry(t)
	w := b.world(t)
	hugo := w.tokens[w.hospital][0]
	// The SDK does not retry a 500 itself: the job is retried, after the first backoff (1 s).
	b.fcm.SetRespond(failFirst(hugo, fakefcm.Internal()))
	b.report(t, w.customer)
	b.waitIdle(t, 15*time.Second)

	calls := sentTo(b.fcm.Requests(), hugo)
	if len(calls) != 2 || calls[0].Status != 500 || calls[1].Status != 200 {
		t.Fatalf("requests for Hugo's phone: %v, want a 500 then a 200", statuses(calls))
	}
	if gap := calls[1].At.Sub(calls[0].At); gap < 800*time.Millisecond {
		t.Errorf("retried after %s, want the backoff of about 1 s", gap)
	}
	if got := metric(t, reg, "fieldsync_push_retried_total", "reason=internal"); got != 1 {
		t.Errorf("retried{internal} = %v, want 1", got)
	}
	if got := metric(t, reg, "fieldsync_push_sent_total", ""); got != 3 {
		t.Errorf("sent = %v, want 3", got)
	}
}

func TestQuotaExceededHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reg := b.registry(t)
	w := b.world(t)
	hugo := w.tokens[w.hospital][0]
	b.fcm.SetRespond(failFirst(hugo, fakefcm.QuotaExceeded(3*time.Second)))
	b.report(t, w.customer)
	b.waitIdle(t, 20*time.Second)

	calls := sentTo(b.fcm.Requests(), hugo)
	if len(calls) != 2 || calls[0].Status != 429 || calls[1].Status != 200 {
		t.Fatalf("requests for Hugo's phone: %v, want a 429 then a 200", statuses(calls))
	}
	// Not before FCM said (3 s, more than the 1 s backoff), and not much later.
	if gap := calls[1].At.Sub(calls[0].At); gap < 3*time.Second || gap > 8*time.Second {
		t.Errorf("retried after %s, want about the 3 s of Retry-After", gap)
	}
	if got := metric(t, reg, "fieldsync_push_retried_total", "reason=quota"); got != 1 {
		t.Errorf("retried{quota} = %v, want 1", got)
	}
	// The other phones were not held up by Hugo's.
	for _, tok := range w.tokens[w.agent] {
		if c := sentTo(b.fcm.Requests(), tok); len(c) != 1 || c[0].At.After(calls[1].At) {
			t.Errorf("Alice's phone: %v", statuses(c))
		}
	}
}

func TestDeadTokensAreDropped(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		reply  *fakefcm.Error
		reason string
	}{
		{"unregistered", fakefcm.Unregistered(), "unregistered"},
		{"invalid", fakefcm.InvalidArgument("The registration token is not a valid FCM registration token"), "invalid"},
		{"another sender's", fakefcm.SenderIDMismatch(), "sender_mismatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			reg := b.registry(t)
			w := b.world(t)
			dead, alive := w.tokens[w.agent][0], w.tokens[w.agent][1]
			b.fcm.SetRespond(func(c fakefcm.Message, _ int) *fakefcm.Error {
				if c.Token == dead {
					return tc.reply
				}
				return nil
			})
			b.report(t, w.customer)
			b.waitIdle(t, 15*time.Second)

			if n := len(sentTo(b.fcm.Requests(), dead)); n != 1 {
				t.Errorf("the dead token was tried %d times, want once", n)
			}
			if n := len(sentTo(b.fcm.Messages(), alive)); n != 1 {
				t.Errorf("Alice's other phone got %d messages, want 1", n)
			}
			var token *string
			var dropped bool
			if err := b.db.Pool.QueryRow(context.Background(), `SELECT push_token, push_token_dropped_at IS NOT NULL FROM devices WHERE id = $1`,
				w.devices[w.agent][0]).Scan(&token, &dropped); err != nil {
				t.Fatal(err)
			}
			if token != nil || !dropped {
				t.Errorf("the dead token is still on its device, or its drop is not recorded (the device list's push_token: dropped)")
			}
			n := one(t, b.notifications(t), w.agent, "claim_reported")
			if s := b.deliveryState(t, n.ID, w.devices[w.agent][0]); s != "token_dropped" {
				t.Errorf("delivery recorded %q, want token_dropped", s)
			}
			if got := metric(t, reg, "fieldsync_push_tokens_dropped_total", "reason="+tc.reason); got != 1 {
				t.Errorf("tokens_dropped{%s} = %v, want 1", tc.reason, got)
			}

			// The next notification is not even tried on that device.
			before := len(b.fcm.Requests())
			b.command(t, b.as(w.manager, fieldsync.RoleManager), sync.TypeTask, "update", b.anyTask(t), map[string]any{"assignee_id": w.agent})
			b.waitIdle(t, 10*time.Second)
			for _, c := range b.fcm.Requests()[before:] {
				if c.Token == dead {
					t.Error("a dropped token was sent to again")
				}
			}
		})
	}
}

func (b *bundle) anyTask(t testing.TB) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT id FROM tasks LIMIT 1`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestAMessageFCMRefusesIsNotRetriedAndKeepsTheToken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reg := b.registry(t)
	w := b.world(t)
	hugo := w.tokens[w.hospital][0]
	b.fcm.SetRespond(func(c fakefcm.Message, _ int) *fakefcm.Error {
		if c.Token == hugo {
			return fakefcm.InvalidArgument("Invalid value at 'message.data'")
		}
		return nil
	})
	b.report(t, w.customer)
	b.waitIdle(t, 10*time.Second)
	if n := len(sentTo(b.fcm.Requests(), hugo)); n != 1 {
		t.Errorf("a refused message was tried %d times, want once", n)
	}
	if toks := b.tokensOf(t, w.hospital); len(toks) != 1 {
		t.Error("the token was dropped for a refused message")
	}
	n := one(t, b.notifications(t), w.hospital, "claim_reported")
	if s := b.deliveryState(t, n.ID, w.devices[w.hospital][0]); s != "failed" {
		t.Errorf("delivery recorded %q, want failed", s)
	}
	if got := metric(t, reg, "fieldsync_push_failed_total", "reason=refused"); got != 1 {
		t.Errorf("failed{refused} = %v, want 1", got)
	}
}

// staff adds n processors to the branch, each signed in on one phone, and returns their tokens.
func (b *bundle) staff(t testing.TB, n int) []string {
	t.Helper()
	var toks []string
	for range n {
		u := b.fx.User(fixture.User{Branch: b.branch, Role: fieldsync.RoleProcessor})
		_, tok := b.device(t, u)
		toks = append(toks, tok)
	}
	return toks
}

// completeVisits reports n hospitalised claims and has the hospital rep complete each visit: each
// completion tells the branch's manager and processors.
func (b *bundle) completeVisits(t testing.TB, w *world, n int) {
	t.Helper()
	rep := b.as(w.hospital, fieldsync.RoleRep)
	for range n {
		_, task := b.report(t, w.customer)
		b.command(t, rep, sync.TypeTask, "update", task, map[string]any{"status": "accepted"})
		b.command(t, rep, sync.TypeTask, "update", task, map[string]any{"status": "completed"})
	}
}

// queued returns the (token, notification) of every push delivery queued so far.
func (b *bundle) queued(t testing.TB) map[string]bool {
	t.Helper()
	rows, err := b.db.Pool.Query(context.Background(), `
		SELECT d.push_token || ' ' || x.notification_id FROM notification_deliveries x JOIN devices d ON d.id = x.device_id`)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, k := range keys {
		out[k] = true
	}
	return out
}

// checkOnce fails the test unless FCM accepted every queued message exactly once, and nothing else.
func checkOnce(t *testing.T, want map[string]bool, accepted []fakefcm.Message) {
	t.Helper()
	got := map[string]int{}
	for _, c := range accepted {
		got[pushKey(c)]++
	}
	for k := range want {
		if got[k] != 1 {
			t.Errorf("message %s accepted %d times, want once", k, got[k])
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("message %s was not queued", k)
		}
	}
}

func TestTwoReplicasSendEachMessageOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, noWorker)
	w := b.world(t)
	b.staff(t, 20)
	b.completeVisits(t, w, 15) // 30 jobs: 15 reports, 15 completions telling the manager and 22 processors
	want := b.queued(t)
	if len(want) < 300 {
		t.Fatalf("%d messages queued, want at least 300", len(want))
	}
	b.fcm.SetDelay(2 * time.Millisecond) // so that both replicas get a share
	sender := sender(t, b.fcm)
	for _, name := range []string{"replica-b", "replica-c"} {
		b.replica(t, name, true, pushVia(sender), func(s *apptest.Setup) { s.PushWorkers = 2 })
	}
	waitAccepted(t, b.fcm, len(want), 30*time.Second)
	b.waitIdle(t, 10*time.Second)
	checkOnce(t, want, b.fcm.Messages())
	if n := len(b.fcm.Requests()); n != len(want) {
		t.Errorf("%d requests to FCM for %d messages", n, len(want))
	}
	var workers int
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT count(DISTINCT attempted_by[1]) FROM river_job WHERE queue = 'push'`).Scan(&workers); err != nil {
		t.Fatal(err)
	}
	if workers != 2 {
		t.Errorf("the messages were sent by %d replicas, want both", workers)
	}
}

func TestARestartMidDeliveryLosesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, noWorker)
	w := b.world(t)
	b.staff(t, 10)
	b.completeVisits(t, w, 8) // 16 jobs
	want := b.queued(t)
	sender := sender(t, b.fcm)

	// Replica A takes jobs, and FCM does not answer: A is stopped with sends in flight, which
	// it cancels (nothing is accepted).
	hold := make(chan struct{})
	b.fcm.SetHold(hold)
	a := b.replica(t, "replica-a2", true, pushVia(sender)).Jobs
	waitFor(t, 10*time.Second, func() bool { return b.pushJobs(t)["running"] >= 5 })
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := a.StopAndCancel(stopCtx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if n := len(b.fcm.Messages()); n != 0 {
		t.Fatalf("%d accepted while FCM held every request", n)
	}

	// And some jobs were taken by a replica that was killed outright: they stay "running",
	// attempted by nobody alive, until a live replica's rescuer gives them back.
	tag, err := b.db.Pool.Exec(context.Background(), `
		UPDATE river_job SET state = 'running', attempt = attempt + 1, attempted_at = now() - interval '2 hours',
			attempted_by = ARRAY['killed-replica']
		WHERE id IN (SELECT id FROM river_job WHERE queue = 'push' AND state = 'available' ORDER BY id LIMIT 5)`)
	if err != nil {
		t.Fatal(err)
	}
	if tag.RowsAffected() == 0 {
		t.Fatal("no job left to orphan")
	}

	close(hold)
	b.fcm.SetHold(nil)
	bj := b.replica(t, "replica-b2", true, pushVia(sender)).Jobs
	waitAccepted(t, b.fcm, len(want), 60*time.Second)
	b.waitIdle(t, 30*time.Second)
	checkOnce(t, want, b.fcm.Messages())

	// Every job run again (as after a crash between FCM's answer and River's record) finds its
	// delivery recorded and sends nothing.
	before := len(b.fcm.Requests())
	rows, err := b.db.Pool.Query(context.Background(), `SELECT id FROM river_job WHERE queue = 'push'`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := bj.JobRetry(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, func() bool { return b.pushJobs(t)["completed"] == len(ids) })
	if n := len(b.fcm.Requests()); n != before {
		t.Errorf("%d messages sent again by jobs run a second time", n-before)
	}
}

// TestDeliveriesOfAKilledReplicaAreSentByAnother: replica A takes every delivery job and dies
// with them while FCM has not answered (its database connections cut, as by kill -9: the jobs stay
// "running", attempted by A). Replica B, with production's job settings, gives them back and
// sends every message once, within a minute of A taking them, not the hour of River's defaults.
func TestDeliveriesOfAKilledReplicaAreSentByAnother(t *testing.T) {
	t.Parallel()
	b := setup(t, noWorker)
	w := b.world(t)
	b.staff(t, 3)
	b.completeVisits(t, w, 2)
	want := b.queued(t)
	jobs := b.pushJobs(t)["available"]

	// A reaches FCM through a network that dies with it: its requests are never answered, and
	// nothing it sends after its death arrives (it lives on in this process, a dead one would not).
	unreachable := newFakeFCM(t)
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) }) // before the fake closes, which waits for its requests
	unreachable.SetHold(hold)
	pool, kill := b.db.KillablePool(t, 6)
	b.replicaOver(t, pool, "replica-killed", true, pushVia(sender(t, unreachable)))
	var taken *time.Time
	waitFor(t, 10*time.Second, func() bool {
		err := b.db.Pool.QueryRow(context.Background(), `SELECT min(attempted_at) FROM river_job
			WHERE queue = 'push' AND state = 'running' AND attempted_by = ARRAY['replica-killed'] HAVING count(*) = $1`, jobs).Scan(&taken)
		return err == nil && taken != nil
	})
	kill()

	b.replica(t, "replica-b", true, pushVia(sender(t, b.fcm)))
	waitAccepted(t, b.fcm, len(want), time.Until(taken.Add(time.Minute)))
	t.Logf("every message sent %s after A took the jobs (at most %s + a send expected)", time.Since(*taken).Round(time.Second), jobqueue.MaxRescueDelay)
	b.waitIdle(t, 10*time.Second)
	checkOnce(t, want, b.fcm.Messages())
	var rescued int
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job
		WHERE queue = 'push' AND attempted_by[1] = 'replica-killed' AND attempted_by[array_length(attempted_by, 1)] = 'replica-b'`).Scan(&rescued); err != nil {
		t.Fatal(err)
	}
	if rescued != jobs {
		t.Errorf("%d of %d jobs attempted by A then B", rescued, jobs)
	}
}

func waitFor(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAGracefulRestartHandsOverWithoutDuplicates(t *testing.T) {
	t.Parallel()
	b := setup(t, noWorker)
	w := b.world(t)
	b.staff(t, 30)
	b.completeVisits(t, w, 4)
	want := b.queued(t)
	sender := sender(t, b.fcm)
	b.fcm.SetDelay(100 * time.Millisecond) // FCM is slow today: draining takes a while

	ra := b.replica(t, "replica-a3", true, pushVia(sender), func(s *apptest.Setup) { s.PushSends = 10 })
	svc, a := ra.Notify, ra.Jobs
	run, stopRun := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(run) }()
	waitAccepted(t, b.fcm, 20, 10*time.Second)

	// SIGTERM: the server stops its background work, then the job queue.
	started := time.Now()
	stopRun()
	<-ran
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(started); took > 2*time.Second {
		t.Errorf("stopping took %s: the jobs kept sending", took)
	}
	if sent := len(b.fcm.Messages()); sent >= len(want) {
		t.Fatalf("everything (%d) was sent before the stop; the test proves nothing", sent)
	}

	b.fcm.SetDelay(0)
	b.replica(t, "replica-b3", true, pushVia(sender))
	waitAccepted(t, b.fcm, len(want), 30*time.Second)
	b.waitIdle(t, 30*time.Second)
	checkOnce(t, want, b.fcm.Messages())
	if n := len(b.fcm.Requests()); n != len(want) {
		t.Errorf("%d requests for %d messages: what was in flight at the stop was sent again", n, len(want))
	}
}
