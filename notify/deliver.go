package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	gosync "sync"
	"time"

	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"github.com/fieldsync/fieldsync/internal/jobqueue"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
)

// DeliveryArgs is the job that pushes a group of deliveries: those written together by one rule,
// in one transaction (notification_deliveries.batch_id).
type DeliveryArgs struct {
	Batch uuid.UUID `json:"batch"`
}

// Kind names the job in River.
func (DeliveryArgs) Kind() string { return "push_delivery" }

// InsertOpts puts the job in the push queue.
func (DeliveryArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: QueuePush} }

// Delivery states, as recorded in notification_deliveries.
const (
	statePending      = "pending"
	stateSent         = "sent"
	stateSkipped      = "skipped"
	stateTokenDropped = "token_dropped"
	stateFailed       = "failed"
)

// maxBackoff caps the wait between two attempts of a delivery.
const maxBackoff = 30 * time.Minute

type deliveryWorker struct {
	river.WorkerDefaults[DeliveryArgs]
	s *Service
}

// deliveryTimeout bounds one attempt of a delivery job. River rescues a running job only after
// its kind's timeout, so it stays below jobqueue.RescueAfter: a job whose replica died then runs
// again elsewhere within a minute (see package jobqueue). A large group (a rule that told a whole
// branch) that needs longer is not lost: an attempt stopped by the timeout keeps what it sent,
// and the next attempt sends the rest.
const deliveryTimeout = jobqueue.Timeout

// Timeout bounds one attempt of the job.
func (w *deliveryWorker) Timeout(*river.Job[DeliveryArgs]) time.Duration { return deliveryTimeout }

// NextRetry backs off exponentially: 1 s after the first failure, doubling to at most 30 minutes,
// with a tenth of jitter so that a burst of failures does not come back as a burst. An attempt
// given back by River's rescuer (its replica died) is run again at once: it failed for want of a
// replica, not of FCM.
func (w *deliveryWorker) NextRetry(job *river.Job[DeliveryArgs]) time.Time {
	now := time.Now()
	if jobqueue.Rescued(job.JobRow, now) {
		return now
	}
	return now.Add(backoff(job.Attempt))
}

func backoff(attempt int) time.Duration {
	d := maxBackoff
	if attempt >= 1 && attempt <= 12 {
		d = min(time.Second<<(attempt-1), maxBackoff)
	}
	jitter := time.Duration(rand.Int64N(int64(d)/5+1)) - d/10
	return d + jitter
}

// Delivery kinds (notification_deliveries.kind): a notification's alert, or a wake-up, a
// data-only "sync now" with no notification (wake.go).
const (
	kindNotification = "notification"
	kindSync         = "sync"
)

// delivery is one pending push, read when its job runs: a token that changed since the
// notification was written is the one used. A wake-up (kind sync) has no notification: its
// notification fields are empty.
type delivery struct {
	id                       int64
	kind                     string
	notificationID, deviceID uuid.UUID
	noteKind, title, body    string
	entityType               string
	entityID                 uuid.UUID
	data                     map[string]any
	read                     bool
	token                    string
	active                   bool
}

// pending returns the deliveries of batch not yet ended.
func (s *Service) pending(ctx context.Context, batch uuid.UUID) ([]*delivery, error) {
	// A wake-up has no notification (the LEFT JOIN's nulls): it goes to whoever holds the device
	// signed in, since it says nothing but "sync".
	rows, err := s.db.Query(ctx, `
		SELECT x.id, x.kind, coalesce(x.notification_id, '00000000-0000-0000-0000-000000000000'), x.device_id,
			coalesce(n.kind, ''), coalesce(n.title, ''), coalesce(n.body, ''), coalesce(n.entity_type, 'notification'),
			coalesce(n.entity_id, n.id, '00000000-0000-0000-0000-000000000000'), coalesce(n.data, '{}'),
			n.read_at IS NOT NULL, coalesce(d.push_token, ''),
			d.user_id = coalesce(n.user_id, d.user_id) AND `+liveDevice+`
		FROM notification_deliveries x
		LEFT JOIN notifications n ON n.id = x.notification_id
		JOIN devices d ON d.id = x.device_id
		WHERE x.batch_id = $1 AND x.state = 'pending'
		ORDER BY x.id`, batch)
	if err != nil {
		return nil, fmt.Errorf("read pending deliveries: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*delivery, error) {
		d := &delivery{}
		var data []byte
		if err := r.Scan(&d.id, &d.kind, &d.notificationID, &d.deviceID, &d.noteKind, &d.title, &d.body, &d.entityType, &d.entityID, &data,
			&d.read, &d.token, &d.active); err != nil {
			return nil, fmt.Errorf("read pending deliveries: %w", err)
		}
		if err := json.Unmarshal(data, &d.data); err != nil {
			return nil, fmt.Errorf("decode notification data: %w", err)
		}
		return d, nil
	})
}

// liveDevice is the SQL condition (over alias d, a device) of a device pushes may go to: not
// revoked, and signed in by its user (a session not ended). The writers and the job share it.
const liveDevice = `d.revoked_at IS NULL
	AND EXISTS (SELECT 1 FROM sessions s WHERE s.device_id = d.id AND s.user_id = d.user_id AND s.revoked_at IS NULL)`

// queueDelivery queues, in tx, the job that pushes the pending deliveries of batch.
func (s *Service) queueDelivery(ctx context.Context, tx pgx.Tx, batch uuid.UUID) error {
	if _, err := s.jobs.InsertTx(ctx, tx, DeliveryArgs{Batch: batch}, &river.InsertOpts{Queue: QueuePush, MaxAttempts: s.cfg.MaxAttempts}); err != nil {
		return fmt.Errorf("queue push delivery: %w", err)
	}
	return nil
}

// result is how one delivery of a run ended.
type result struct {
	retry  bool
	reason string
	after  time.Duration // FCM's Retry-After, if it gave one
	err    error
}

// Work sends each pending delivery of the group once, several at a time, recording each outcome
// as it comes. Deliveries to retry stay pending and the job is retried: after FCM's Retry-After
// when it gave one, else with backoff; only they are sent again.
func (w *deliveryWorker) Work(ctx context.Context, job *river.Job[DeliveryArgs]) error {
	s := w.s
	ds, err := s.pending(ctx, job.Args.Batch)
	if err != nil {
		return err
	}
	results := make([]result, len(ds))
	next := make(chan int, len(ds))
	for i := range ds {
		next <- i
	}
	close(next)
	var wg gosync.WaitGroup
	for range min(len(ds), s.cfg.MaxSends) {
		wg.Go(func() {
			for i := range next {
				if err := s.stopped(ctx); err != nil {
					results[i] = result{retry: true, reason: "stopped", err: err}
					continue
				}
				results[i] = s.deliver(ctx, job, ds[i])
			}
		})
	}
	wg.Wait()

	var retry []int
	var after time.Duration
	var firstErr error
	for i, r := range results {
		switch {
		case r.retry:
			retry = append(retry, i)
			after = max(after, r.after)
			if firstErr == nil {
				firstErr = r.err
			}
		case r.err != nil:
			return r.err // the database failed us: try the whole job again
		}
	}
	if len(retry) == 0 {
		return nil
	}
	if job.Attempt+snoozes(job) >= job.MaxAttempts {
		for _, i := range retry {
			s.metrics.failed.WithLabelValues("exhausted").Inc()
			s.log.ErrorContext(ctx, "push given up", "kind", ds[i].kind, "notification_id", ds[i].notificationID, "device_id", ds[i].deviceID,
				"attempts", job.Attempt, "reason", results[i].reason)
			if err := s.record(ctx, ds[i], stateFailed, "", "exhausted: "+results[i].reason, false); err != nil {
				return err
			}
		}
		return river.JobCancel(firstErr)
	}
	if after > 0 {
		// FCM said when: come back then, not on our schedule. Snoozes count against MaxAttempts
		// (above), so a server that always says "later" cannot keep a job forever.
		return river.JobSnooze(min(after, maxBackoff))
	}
	return fmt.Errorf("%d of %d pushes to retry: %w", len(retry), len(ds), firstErr)
}

// errStopping is why a delivery was left for later when its replica stopped.
var errStopping = errors.New("the replica is stopping")

// stopped returns why no new push may start: the job's end, or the replica's.
func (s *Service) stopped(ctx context.Context) error {
	select {
	case <-s.stopping:
		return errStopping
	default:
		return ctx.Err()
	}
}

// deliver sends one delivery and records its outcome, unless it is to be retried.
func (s *Service) deliver(ctx context.Context, job *river.Job[DeliveryArgs], d *delivery) result {
	skip := ""
	switch {
	case s.cfg.Sender == nil:
		skip = "push_off"
	case d.token == "":
		skip = "no_token"
	case !d.active:
		skip = "inactive_device"
	case d.read:
		skip = "read" // read on another device or screen while the push waited
	}
	if skip != "" {
		s.metrics.skipped.WithLabelValues(skip).Inc()
		return result{err: s.record(ctx, d, stateSkipped, "", skip, false)}
	}

	msg := s.message(d)
	select {
	case s.sends <- struct{}{}:
	case <-ctx.Done():
		return result{retry: true, reason: "stopped", err: ctx.Err()}
	case <-s.stopping:
		return result{retry: true, reason: "stopped", err: errStopping}
	}
	sendCtx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
	name, err := s.cfg.Sender.Send(sendCtx, msg)
	timedOut := sendCtx.Err() != nil
	cancel()
	<-s.sends
	if err == nil {
		s.metrics.sent.Inc()
		s.metrics.latency.Observe(time.Since(job.CreatedAt).Seconds())
		return result{err: s.record(ctx, d, stateSent, name, "", true)}
	}

	v := classify(err, timedOut, time.Now())
	attrs := []any{"kind", d.kind, "notification_id", d.notificationID, "device_id", d.deviceID, "attempt", job.Attempt, "reason", v.reason, "err", err}
	switch v.action {
	case "drop":
		s.metrics.dropped.WithLabelValues(v.reason).Inc()
		s.log.InfoContext(ctx, "push token dropped", attrs...)
		return result{err: s.dropToken(ctx, d, v.reason)}
	case "retry":
		s.metrics.retried.WithLabelValues(v.reason).Inc()
		s.log.InfoContext(ctx, "push to retry", append(attrs, "retry_after", v.after)...)
		// The try is counted, and why it failed kept, for whoever looks at the delivery.
		if rerr := s.record(ctx, d, statePending, "", v.reason+": "+err.Error(), true); rerr != nil {
			return result{err: rerr}
		}
		return result{retry: true, reason: v.reason, after: v.after, err: fmt.Errorf("push to device %s: %s: %w", d.deviceID, v.reason, err)}
	default:
		s.metrics.failed.WithLabelValues("refused").Inc()
		s.log.ErrorContext(ctx, "push refused", attrs...)
		return result{err: s.record(ctx, d, stateFailed, "", "refused: "+err.Error(), true)}
	}
}

// dropToken clears the device's token (only the one that failed: the app may have registered a
// new one meanwhile) and ends the delivery.
func (s *Service) dropToken(ctx context.Context, d *delivery, reason string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE devices SET push_token = NULL, push_platform = NULL, push_token_at = NULL,
			push_token_dropped_at = now() WHERE id = $1 AND push_token = $2`, d.deviceID, d.token); err != nil {
			return fmt.Errorf("drop push token: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE notification_deliveries SET state = $2, reason = $3, attempts = attempts + 1, finished_at = now()
			WHERE id = $1 AND state = 'pending'`, d.id, stateTokenDropped, reason); err != nil {
			return fmt.Errorf("record delivery: %w", err)
		}
		return nil
	})
}

// verdict is what to do about an FCM error.
type verdict struct {
	action string // "retry", "drop" (the token is dead) or "refuse" (the message will never go)
	reason string
	after  time.Duration // FCM's Retry-After, if it gave one
}

// classify maps an error of the firebase SDK to a verdict. The SDK has already retried a 503 (and
// a failed connection) a few times, honouring Retry-After, before it returns one.
func classify(err error, timedOut bool, now time.Time) verdict {
	resp := errorutils.HTTPResponse(err)
	var after time.Duration
	if resp != nil {
		after = retryAfter(resp.Header.Get("Retry-After"), now)
	}
	switch {
	case messaging.IsUnregistered(err):
		return verdict{action: "drop", reason: "unregistered"}
	case messaging.IsSenderIDMismatch(err):
		return verdict{action: "drop", reason: "sender_mismatch"} // the token is another Firebase project's
	case messaging.IsInvalidArgument(err) && strings.Contains(strings.ToLower(err.Error()), "registration token"):
		return verdict{action: "drop", reason: "invalid"}
	case timedOut:
		return verdict{action: "retry", reason: "network"}
	case resp == nil && (errorutils.IsUnknown(err) || errorutils.IsDeadlineExceeded(err) || errorutils.IsUnavailable(err)):
		return verdict{action: "retry", reason: "network"} // no answer from FCM
	case resp == nil:
		return verdict{action: "refuse", reason: "refused"} // the SDK refused the message before sending it
	case messaging.IsQuotaExceeded(err) || resp.StatusCode == 429:
		return verdict{action: "retry", reason: "quota", after: after}
	case messaging.IsInternal(err) || resp.StatusCode == 500:
		return verdict{action: "retry", reason: "internal", after: after}
	case resp.StatusCode >= 500:
		return verdict{action: "retry", reason: "unavailable", after: after}
	case resp.StatusCode == 400:
		return verdict{action: "refuse", reason: "refused"}
	default:
		// 401, 403, 404: our credentials or project are wrong (or APNs' are, at FCM). Retried, so
		// that fixing the configuration delivers what waited meanwhile.
		return verdict{action: "retry", reason: "auth", after: after}
	}
}

// snoozes is how many times the job was snoozed (River keeps the count in its metadata).
func snoozes(job *river.Job[DeliveryArgs]) int {
	var m struct {
		Snoozes int `json:"snoozes"`
	}
	_ = json.Unmarshal(job.Metadata, &m)
	return m.Snoozes
}

// record writes the outcome of a delivery (state pending: a try that is to be retried), and
// returns once it is committed. tried counts a send.
//
// Outcomes are committed in groups: while one group is being written, the outcomes that arrive
// queue, and the next writer takes them all in one statement. A busy replica commits once per
// group instead of once per message (each commit waits for the disk), and an idle one commits
// at once: nothing waits for a group to fill. A sent delivery is recorded before the next send
// of its sender begins, so a replica that dies resends at most what it had in flight.
func (s *Service) record(ctx context.Context, d *delivery, state, messageID, reason string, tried bool) error {
	return s.outcomes.write(ctx, s.db, outcome{d.id, state, messageID, reason, tried})
}

// outcome is the end (or a failed try) of a delivery.
type outcome struct {
	delivery         int64
	state, messageID string
	reason           string
	tried            bool
}

// outcomeWriter groups the outcomes written at once into one statement (see record).
type outcomeWriter struct {
	mu      gosync.Mutex
	queue   []*outcomeReq
	writing bool
}

type outcomeReq struct {
	o    outcome
	done chan error // buffered: errLead, or the group's result
}

// errLead tells a waiting writer that it writes the next group.
var errLead = errors.New("lead the next group")

func (w *outcomeWriter) write(ctx context.Context, db *pgxpool.Pool, o outcome) error {
	req := &outcomeReq{o: o, done: make(chan error, 1)}
	w.mu.Lock()
	w.queue = append(w.queue, req)
	if w.writing {
		w.mu.Unlock()
		if err := <-req.done; err != errLead {
			return err
		}
		w.mu.Lock()
	}
	w.writing = true
	group := w.queue
	w.queue = nil
	w.mu.Unlock()

	// The group is others' as well as this job's: a cancelled job does not cancel it.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	err := writeOutcomes(wctx, db, group)
	cancel()
	for _, r := range group {
		if r != req {
			r.done <- err
		}
	}
	w.mu.Lock()
	if len(w.queue) > 0 {
		w.queue[0].done <- errLead
	} else {
		w.writing = false
	}
	w.mu.Unlock()
	return err
}

func writeOutcomes(ctx context.Context, db *pgxpool.Pool, group []*outcomeReq) error {
	n := len(group)
	ids := make([]int64, n)
	states, messages, reasons, tried := make([]string, n), make([]*string, n), make([]*string, n), make([]bool, n)
	for i, r := range group {
		o := r.o
		ids[i], states[i], tried[i] = o.delivery, o.state, o.tried
		if o.messageID != "" {
			m := clip(o.messageID, 500)
			messages[i] = &m
		}
		if o.reason != "" {
			why := clip(o.reason, 1000)
			reasons[i] = &why
		}
	}
	_, err := db.Exec(ctx, `
		UPDATE notification_deliveries d
		SET state = x.state, fcm_message_id = x.message, reason = x.reason,
			attempts = d.attempts + CASE WHEN x.tried THEN 1 ELSE 0 END,
			finished_at = CASE WHEN x.state = 'pending' THEN NULL ELSE now() END
		FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bool[]) AS x(id, state, message, reason, tried)
		WHERE d.id = x.id AND d.state = 'pending'`,
		ids, states, messages, reasons, tried)
	if err != nil {
		return fmt.Errorf("record deliveries: %w", err)
	}
	return nil
}
