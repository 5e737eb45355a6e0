package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	gosync "sync"
	"testing"
	"time"

	"firebase.google.com/go/v4/messaging"
	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
)

// The delivery benchmarks. Run them alone, without the race detector:
//
//	go test -run '^$' -bench . -benchtime 200x ./notify/
//
// BenchmarkPushLatencyIdle: one change at a time on an idle server, from the commit of the change
// to the fake FCM receiving its messages. BenchmarkDrain: 10,000 deliveries queued while no
// replica works, then one replica started: how fast it drains them, against how fast the fake FCM
// accepts the same messages sent straight from the SDK with as many senders.

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

func BenchmarkPushLatencyIdle(b *testing.B) {
	bb := setup(b)
	w := bb.world(b)
	_, task := bb.report(b, w.customer)
	waitAccepted(b, bb.fcm, 3, 10*time.Second)
	bb.waitIdle(b, 10*time.Second)
	mgr := bb.as(w.manager, fieldsync.RoleManager)
	reps := []uuid.UUID{w.hospital2, w.hospital}

	var latencies []time.Duration
	b.ResetTimer()
	for i := range b.N {
		before := len(bb.fcm.Requests())
		raw := json.RawMessage(`"` + reps[i%2].String() + `"`)
		if _, err := bb.engine.Command(context.Background(), mgr, sync.Mutation{Type: sync.TypeTask, Op: "update", EntityID: task,
			Fields: map[string]json.RawMessage{"assignee_id": raw}}); err != nil {
			b.Fatal(err)
		}
		committed := time.Now()
		calls := waitAccepted(b, bb.fcm, before+2, 10*time.Second)
		for _, c := range calls[before:] {
			latencies = append(latencies, c.At.Sub(committed))
		}
		// Idle between changes, as a branch is most of the time.
		time.Sleep(50 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(percentile(latencies, 0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(latencies, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(percentile(latencies, 1).Microseconds())/1000, "max-ms")
}

const drainMessages = 10000

// drainConns is the draining replica's pool: a server's (pgxpool's default is 4, or the number of
// CPUs; a server sending push at this rate is given more).
var drainConns int32 = 40

func BenchmarkDrain(b *testing.B) {
	for _, latency := range []time.Duration{0, 20 * time.Millisecond} {
		b.Run(fmt.Sprintf("fcm-latency=%s", latency), func(b *testing.B) {
			for range b.N {
				benchmarkDrain(b, latency)
			}
		})
	}
}

func benchmarkDrain(b *testing.B, latency time.Duration) {
	b.StopTimer()
	bb := setup(b, noWorker)
	w := bb.world(b)
	// The manager and 499 processors, one phone each: each completed visit tells all 500.
	if _, err := bb.db.Pool.Exec(context.Background(), `UPDATE devices SET push_token = NULL, push_platform = NULL
		WHERE user_id <> $1`, w.manager); err != nil {
		b.Fatal(err)
	}
	bb.staff(b, 499)
	// 20 visits: 10,000 deliveries.
	rep := bb.as(w.hospital, fieldsync.RoleRep)
	for range drainMessages / 500 {
		_, task := bb.report(b, w.customer)
		bb.command(b, rep, sync.TypeTask, "update", task, map[string]any{"status": "accepted"})
		bb.command(b, rep, sync.TypeTask, "update", task, map[string]any{"status": "completed"})
	}
	if n := len(bb.queued(b)); n != drainMessages {
		b.Fatalf("%d deliveries queued, want %d", n, drainMessages)
	}
	bb.fcm.SetDelay(latency)
	sender := sender(b, bb.fcm)
	const sends = 50 // the replica's MaxSends

	// What the fake accepts from the SDK alone, with as many senders as the replica sends at once.
	direct := sendDirect(b, sender, drainMessages, sends)
	bb.fcm.Reset()

	b.StartTimer()
	start := time.Now()
	bb.replicaWith(b, "drainer", true, drainConns, pushVia(sender), func(s *apptest.Setup) { s.PushSends = sends })
	calls := waitAccepted(b, bb.fcm, drainMessages, 5*time.Minute)
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(drainMessages)/elapsed.Seconds(), "queue-msgs/s")
	// The same, from the first message FCM received (without the replica's start).
	first, last := calls[0].At, calls[0].At
	for _, c := range calls {
		first, last = minTime(first, c.At), maxTime(last, c.At)
	}
	b.ReportMetric(float64(drainMessages)/last.Sub(first).Seconds(), "queue-steady-msgs/s")
	b.ReportMetric(float64(drainMessages)/direct.Seconds(), "fcm-direct-msgs/s")
	b.ReportMetric(elapsed.Seconds(), "drain-s")
}

// sendDirect sends n messages to the fake from senders goroutines, and returns how long it took.
func sendDirect(b *testing.B, sender *messaging.Client, n, senders int) time.Duration {
	b.Helper()
	var wg gosync.WaitGroup
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	start := time.Now()
	for range senders {
		wg.Go(func() {
			for i := range next {
				_, err := sender.Send(context.Background(), &messaging.Message{Token: fmt.Sprintf("direct-%d", i),
					Notification: &messaging.Notification{Title: "Task completed: Visit Jane Doe", Body: "Hugo Hospital completed it."},
					Data:         map[string]string{"notification_id": uuid.NewString(), "kind": "task_completed"}})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
