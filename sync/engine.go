package sync

import (
	"context"
	"errors"
	"fmt"
	"golang.org/x/sync/semaphore"
	"log/slog"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/fieldsync/fieldsync/internal/branchwake"
	"github.com/fieldsync/fieldsync/internal/waitcap"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config are the sync engine's settings.
type Config struct {
	// ScopeWindow is how long finished tasks stay on reps' devices, settled claims in processors'
	// queues, and read notifications in inboxes (30 days by default).
	ScopeWindow time.Duration
	// MaxPullLimit caps a pull's limit (default 5,000).
	MaxPullLimit int
	// MaxWait caps a pull's wait (default 60 s).
	MaxWait time.Duration
	// ChangeRetention is how long the change log, the stored results of mutations (idempotent
	// replays) and finished push deliveries are kept (30 days by default): cursors older than the
	// change log's prune horizon expire (410).
	ChangeRetention time.Duration
	// MaxWaitsPerUser caps the long-polls (pulls that wait) one user holds open at once on this
	// replica (default 8); one more is refused with 429 too_many_waits.
	MaxWaitsPerUser int
}

// Engine applies mutations and serves pulls.
type Engine struct {
	db *pgxpool.Pool
	// read serves pulls and the screens' reads: a hot standby's pool (ReadFrom), or db.
	read    *pgxpool.Pool
	standby bool
	cfg     Config
	log     *slog.Logger
	hub     *branchwake.Hub
	hooks   []HookFunc
	// columns are the SQL types of the synced tables' columns, read when first needed
	// (Engine.columnTypes).
	columns atomic.Pointer[map[string]map[string]string]
	// oneByOne turns off applying pushes as sets (pushgroup.go), for the tests that compare.
	oneByOne bool
	// waits counts each user's long-polls (MaxWaitsPerUser).
	waits *waitcap.Cap
	// looks bounds the long-polls looking at the change log at once to half the database pool:
	// thousands of devices coming back together (a wait ending for all, a replica restarting)
	// otherwise take every connection, and the writers wait behind them.
	looks *semaphore.Weighted
	// wokenLooks bounds, apart, the looks of long-polls a commit woke (a quarter of the pool): a
	// change on its way to a device does not queue behind a wave of devices coming back with
	// nothing to get.
	wokenLooks *semaphore.Weighted
	// NowFunc returns the current time: time.Now, or a test's clock. It stamps when things end
	// (finished_at, settled_at, read_at), and when it is not time.Now the windows are decided by
	// it too (sqlNow).
	NowFunc func() time.Time
}

// sqlNow is the now the engine's SQL decides windows at, given as asof to the scope functions
// (migrations/00008_one_clock.sql) and as fieldsync.now to its writes: nil under the real clock,
// where the database's transaction time is that now at no cost; NowFunc's time under any other
// clock, so that a test moves SQL's time with its clock instead of sleeping through a window.
func (e *Engine) sqlNow() *time.Time {
	if reflect.ValueOf(e.NowFunc).Pointer() == reflect.ValueOf(time.Now).Pointer() {
		return nil
	}
	now := e.NowFunc()
	return &now
}

// New returns an engine over db. Call Run to start its listener and janitor.
func New(db *pgxpool.Pool, cfg Config, log *slog.Logger) *Engine {
	if cfg.ScopeWindow <= 0 {
		cfg.ScopeWindow = 30 * 24 * time.Hour
	}
	if cfg.MaxPullLimit <= 0 {
		cfg.MaxPullLimit = 5000
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 60 * time.Second
	}
	if cfg.ChangeRetention <= 0 {
		cfg.ChangeRetention = 30 * 24 * time.Hour
	}
	if cfg.MaxWaitsPerUser <= 0 {
		cfg.MaxWaitsPerUser = 8
	}
	// A long-poll's looks at the log may take half the pool; the rest is the writers'.
	looks, woken := int64(1), int64(1)
	if db != nil {
		looks, woken = max(int64(db.Config().MaxConns)/2, 1), max(int64(db.Config().MaxConns)/4, 1)
	}
	return &Engine{db: db, read: db, cfg: cfg, log: log, hub: branchwake.New(), waits: waitcap.New(cfg.MaxWaitsPerUser),
		looks: semaphore.NewWeighted(looks), wokenLooks: semaphore.NewWeighted(woken), NowFunc: time.Now}
}

// ReadFrom has pulls and the screens' reads served by standby, a hot standby of db (a streaming
// replica), from then on; writes, the long-polls' wake-ups (LISTEN), the event streams and the
// checks that guard access stay on db. Call it before serving. A standby answers the snapshot
// questions a pull asks as the primary does, only later: see pageDB for how a pull stays gap-free
// on one that lags.
func (e *Engine) ReadFrom(standby *pgxpool.Pool) {
	if standby != nil {
		e.read, e.standby = standby, true
	}
}

// HookFunc runs inside the transaction of every applied mutation, after the write: notification
// rules live in hooks, so an alert is written exactly when its cause commits.
type HookFunc func(ctx context.Context, tx pgx.Tx, ev Event) error

// AddHook registers a hook. Call it before serving.
func (e *Engine) AddHook(h HookFunc) { e.hooks = append(e.hooks, h) }

// Prepare stores the engine's settings where the triggers read them. Call it once at start.
func (e *Engine) Prepare(ctx context.Context) error {
	_, err := e.db.Exec(ctx, `UPDATE sync_settings SET scope_window = $1`, e.cfg.ScopeWindow)
	if err != nil {
		return fmt.Errorf("store sync settings: %w", err)
	}
	return nil
}

// Run listens for commits, to wake long-polls and the feed's readers (the event streams): the
// replica's one LISTEN connection. It also runs the janitor (scope-window expiries, change-log
// pruning). It returns when ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	errc := make(chan error, 2)
	go func() { errc <- e.hub.Listen(ctx, e.db, e.log, "change listener") }()
	go func() { errc <- e.runJanitor(ctx) }()
	var first error
	for range 2 {
		if err := <-errc; err != nil && !errors.Is(err, context.Canceled) && first == nil {
			first = err
		}
	}
	return first
}

// write runs fn as one write of the engine, in a transaction. Every write goes through it: a
// push, a screen's command, a reported claim. The rules and the hooks (notifications) run inside
// fn, through apply, so what they write commits with the write; the long-polls and event streams
// concerned are woken by the change log's triggers when it commits (branchwake). Its SQL tells
// time by the engine's clock (sqlNow). When PostgreSQL aborts the transaction for a deadlock or a
// serialization failure, fn runs again, up to three times in all: two pushes that lock the same
// task and claim in opposite orders are both served, one after the other, instead of one failing. fn must therefore keep nothing of an attempt but
// what it returns through the transaction.
func (e *Engine) write(ctx context.Context, fn func(pgx.Tx) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = pgx.BeginFunc(ctx, e.db, func(tx pgx.Tx) error {
			if now := e.sqlNow(); now != nil {
				// The triggers and the sweep ask fieldsync_now(), which reads this setting.
				if _, err := tx.Exec(ctx, `SELECT set_config('fieldsync.now', $1::timestamptz::text, true)`, *now); err != nil {
					return fmt.Errorf("set the clock: %w", err)
				}
			}
			return fn(tx)
		})
		var pgErr *pgconn.PgError
		if attempt == maxWriteAttempts || !errors.As(err, &pgErr) || (pgErr.Code != "40P01" && pgErr.Code != "40001") {
			return err
		}
		e.log.WarnContext(ctx, "transaction retried", "sqlstate", pgErr.Code, "attempt", attempt)
	}
}

// maxWriteAttempts is how many times write runs a transaction PostgreSQL keeps aborting.
const maxWriteAttempts = 3
