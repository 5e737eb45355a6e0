package notify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	gosync "sync"
	"time"

	"firebase.google.com/go/v4/messaging"
	"github.com/fieldsync/fieldsync/internal/waitcap"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
)

// QueuePush is the job queue push deliveries run in. It is a queue of its own so that sending,
// which waits on the network, neither waits behind nor starves the other parts' jobs.
const QueuePush = "push"

// Sender sends one message through FCM and returns FCM's name for it. *messaging.Client is one.
type Sender interface {
	Send(ctx context.Context, m *messaging.Message) (string, error)
}

// Config are the notification service's settings.
type Config struct {
	// Sender delivers push messages. Nil turns push off: notifications are still written, synced
	// and streamed, and no delivery jobs are queued.
	Sender Sender
	// MaxWorkers is how many delivery jobs (each a group of pushes written together) this replica
	// works at once (default 10).
	MaxWorkers int
	// MaxSends is how many pushes this replica sends at once, all jobs together (default 50).
	MaxSends int
	// SendTimeout bounds one push's FCM request, the SDK's own quick retries included
	// (default 6 s: a send fits within a delivery job's attempt, jobqueue.Timeout).
	SendTimeout time.Duration
	// MaxAttempts is how many times a delivery is tried before it is given up (default 25:
	// about 7 hours with the backoff, 1 s doubling to 30 min).
	MaxAttempts int
	// PushTTL is how long FCM keeps a message for a phone that is off (default 72 h; the inbox
	// has it for longer).
	PushTTL time.Duration
	// NoWake turns the wake-ups off: no data-only "sync now" push when a task enters a rep's
	// scope (wake.go); notifications are pushed as ever.
	NoWake bool
	// Heartbeat is how often an idle event stream gets a comment, so that proxies keep it open,
	// and the caller's session is checked again (default 20 s).
	Heartbeat time.Duration
	// MaxStreamsPerUser caps the event streams one user holds open at once on this replica
	// (default 4); one more is refused with 429 too_many_waits.
	MaxStreamsPerUser int
	// FetchCooldown is how soon after a job is queued a push worker may pick it up (River's
	// FetchCooldown for the push queue; default 10 ms).
	FetchCooldown time.Duration
	// FetchPollInterval is how often the push queue looks for jobs when no insert woke it
	// (default 100 ms). River wakes a queue on insert at most once per its client's
	// FetchCooldown: a job queued just after another waits for this poll, so it bounds the
	// latency of a burst.
	FetchPollInterval time.Duration
}

func (c *Config) setDefaults() {
	c.MaxWorkers = cmp.Or(c.MaxWorkers, 10)
	c.MaxSends = cmp.Or(c.MaxSends, 50)
	c.SendTimeout = cmp.Or(c.SendTimeout, 6*time.Second)
	c.MaxAttempts = cmp.Or(c.MaxAttempts, 25)
	c.PushTTL = cmp.Or(c.PushTTL, 72*time.Hour)
	c.Heartbeat = cmp.Or(c.Heartbeat, 20*time.Second)
	c.MaxStreamsPerUser = cmp.Or(c.MaxStreamsPerUser, 4)
	c.FetchCooldown = cmp.Or(c.FetchCooldown, 10*time.Millisecond)
	c.FetchPollInterval = cmp.Or(c.FetchPollInterval, 100*time.Millisecond)
}

// Service writes notifications (Hook), delivers them to phones (its River worker), and streams
// them to screens (Stream).
type Service struct {
	db       *pgxpool.Pool
	jobs     *river.Client[pgx.Tx]
	cfg      Config
	log      *slog.Logger
	metrics  *metrics
	engine   *sync.Engine // its feed is what the event stream reads
	streams  *waitcap.Cap // each user's open streams (MaxStreamsPerUser)
	outcomes outcomeWriter
	sends    chan struct{} // a slot per push in flight
	stopping chan struct{} // closed when Run ends: send nothing new
	stopOnce gosync.Once
	// NowFunc returns the current time, for tests.
	NowFunc func() time.Time
}

// New returns the service over db. It registers the push worker in workers and adds the push
// queue to jobs, which must be a client that works jobs (its Start runs them); register Hook with
// engine, whose feed the event stream reads, and run Run. It fails if the queue cannot be added.
func New(db *pgxpool.Pool, engine *sync.Engine, jobs *river.Client[pgx.Tx], workers *river.Workers, cfg Config, log *slog.Logger) (*Service, error) {
	cfg.setDefaults()
	s := &Service{db: db, engine: engine, jobs: jobs, cfg: cfg, log: log, metrics: newMetrics(), NowFunc: time.Now,
		streams: waitcap.New(cfg.MaxStreamsPerUser), sends: make(chan struct{}, cfg.MaxSends), stopping: make(chan struct{})}
	if engine == nil || jobs == nil || workers == nil {
		return nil, errors.New("notify: the sync engine, a job queue client and its workers are required")
	}
	river.AddWorker(workers, &deliveryWorker{s: s})
	err := jobs.Queues().Add(QueuePush, river.QueueConfig{MaxWorkers: cfg.MaxWorkers,
		FetchCooldown: cfg.FetchCooldown, FetchPollInterval: cfg.FetchPollInterval})
	if err != nil {
		return nil, fmt.Errorf("add push queue: %w", err)
	}
	return s, nil
}

// PushEnabled reports whether notifications are pushed to phones (a Sender is configured).
func (s *Service) PushEnabled() bool { return s.cfg.Sender != nil }

// RegisterMetrics adds the service's collectors to reg (the server's registry).
func (s *Service) RegisterMetrics(reg prometheus.Registerer) error {
	for _, c := range s.metrics.collectors() {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register notification metrics: %w", err)
		}
	}
	return nil
}

// Run runs until ctx ends, and returns ctx's error. When it ends, the replica is stopping:
// delivery jobs finish the pushes they have in flight, send no more, and return the rest to the
// queue at once, for another replica (or this one, restarted), rather than keep the job until
// they have sent everything. The event streams need no listener of their own: the sync engine's
// (Engine.Run) wakes them, as it wakes long-polls.
func (s *Service) Run(ctx context.Context) error {
	<-ctx.Done()
	s.stopOnce.Do(func() { close(s.stopping) })
	return ctx.Err()
}

// metrics are the Prometheus collectors of push delivery and the event stream.
type metrics struct {
	sent    prometheus.Counter
	failed  *prometheus.CounterVec
	retried *prometheus.CounterVec
	dropped *prometheus.CounterVec
	skipped *prometheus.CounterVec
	latency prometheus.Histogram
	streams prometheus.Gauge
}

func newMetrics() *metrics {
	return &metrics{
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fieldsync_push_sent_total",
			Help: "Push messages FCM accepted.",
		}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldsync_push_failed_total",
			Help: "Push messages given up, by reason (refused: FCM refused the message; exhausted: every attempt failed).",
		}, []string{"reason"}),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldsync_push_retried_total",
			Help: "Push attempts that failed and were scheduled again, by reason (unavailable, internal, quota, network, auth).",
		}, []string{"reason"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldsync_push_tokens_dropped_total",
			Help: "Device push tokens cleared because FCM said they are dead, by reason (unregistered, invalid, sender_mismatch).",
		}, []string{"reason"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldsync_push_skipped_total",
			Help: "Push deliveries not sent, by reason (no_token, inactive_device, read, push_off).",
		}, []string{"reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fieldsync_push_delivery_latency_seconds",
			Help:    "Time from the transaction that wrote a notification to FCM accepting its push, retries included.",
			Buckets: []float64{.01, .025, .05, .1, .2, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 28800},
		}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fieldsync_event_streams",
			Help: "Open event streams (GET /v1/events) on this replica.",
		}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.sent, m.failed, m.retried, m.dropped, m.skipped, m.latency, m.streams}
}
