// Package app is fieldsync's composition root: the one place that builds the service's parts
// (accounts, the sync engine, documents, notifications, the job queue) from a Config and hands
// them to the HTTP layer. `fieldsync serve` and `fieldsync dev` run what New builds, and every
// test harness builds its server with New too, its needs expressed as Config values and Deps.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/console"
	"github.com/fieldsync/fieldsync/internal/jobqueue"
	"github.com/fieldsync/fieldsync/media"
	"github.com/fieldsync/fieldsync/notify"
	"github.com/fieldsync/fieldsync/server"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"golang.org/x/sync/errgroup"
)

// Deps are what New is given rather than builds: the open database, the signing keys, where to
// log, and the clock.
type Deps struct {
	Pool *pgxpool.Pool
	// ReadPool, when set, is a hot standby of Pool's database: pulls and the screens' reads are
	// served from it (sync.Engine.ReadFrom), everything else from Pool.
	ReadPool *pgxpool.Pool
	Keys     *account.Keys
	Log      *slog.Logger
	// Now is every part's clock (time.Now when nil): a test moves it to expire tokens and leave
	// scope windows without waiting.
	Now func() time.Time
	// Sender delivers push messages. Nil: FCM when Config.FirebaseCredentialsFile is set, else
	// push is off.
	Sender notify.Sender
	// Accounts, when set, is used instead of a new accounts service: another replica in a test,
	// sharing the first one's sessions and login throttles.
	Accounts *account.Service
}

// App is the built service: its parts, for the tests that reach behind the API, and the HTTP
// server over them.
type App struct {
	Accounts *account.Service
	Engine   *sync.Engine
	// Store and Media are nil without an object store (Config.S3.Endpoint).
	Store *media.Store
	Media *media.Service
	// Notify is nil with Config.NoNotifications.
	Notify *notify.Service
	// Jobs is the job queue's client, nil when no part has job workers.
	Jobs   *river.Client[pgx.Tx]
	Server *server.Server

	cfg     Config
	log     *slog.Logger
	workers []func(context.Context) error
}

// New builds the service over deps.Pool. It starts nothing: Serve (or Run, for a test that serves
// the handler itself) does.
func New(ctx context.Context, cfg Config, deps Deps) (*App, error) {
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	a := &App{cfg: cfg, log: log}

	if cfg.S3.Endpoint != "" {
		store, err := media.NewStore(cfg.S3)
		if err != nil {
			return nil, fmt.Errorf("FIELDSYNC_S3_ENDPOINT: %w", err)
		}
		if err := store.EnsureBucket(ctx); err != nil {
			// Not fatal: the store may come up after us. /readyz reports it until it does.
			log.Warn("object store not ready", "err", err)
		}
		a.Store = store
	}

	a.Accounts = deps.Accounts
	if a.Accounts == nil {
		accounts, err := account.NewService(deps.Pool, deps.Keys, accountConfig(cfg), log)
		if err != nil {
			return nil, err
		}
		accounts.NowFunc = now
		a.Accounts = accounts
	}

	a.Engine = sync.New(deps.Pool, sync.Config{ScopeWindow: cfg.ScopeWindow, MaxWaitsPerUser: cfg.LongPollsPerUser,
		ChangeRetention: cfg.ChangeRetention}, log)
	a.Engine.NowFunc = now
	a.Engine.ReadFrom(deps.ReadPool)
	if err := a.Engine.Prepare(ctx); err != nil {
		return nil, err
	}
	a.workers = append(a.workers, a.Engine.Run)

	// One job queue (River, in PostgreSQL) serves every background job; each part registers its
	// workers and inserts its jobs in the transactions that cause them.
	workers := river.NewWorkers()
	if a.Store != nil || !cfg.NoNotifications {
		rcfg := jobqueue.Config(workers, log)
		rcfg.ID = cfg.JobsID
		if cfg.TargetsEvery >= 0 {
			jobqueue.AddCheckTargets(rcfg, workers, cmp.Or(cfg.TargetsEvery, jobqueue.DefaultTargetsEvery), func(ctx context.Context) error {
				_, err := a.Engine.CheckTargets(ctx, now())
				return err
			})
		}
		jobs, err := river.NewClient(riverpgxv5.New(deps.Pool), rcfg)
		if err != nil {
			return nil, fmt.Errorf("job queue: %w", err)
		}
		a.Jobs = jobs
		a.workers = append(a.workers, a.runJobs)
	}
	if a.Store != nil {
		if err := a.newMedia(deps, workers, now); err != nil {
			return nil, err
		}
	}
	if !cfg.NoNotifications {
		if err := a.newNotify(ctx, deps, workers, now); err != nil {
			return nil, err
		}
	}

	ready := map[string]server.ReadyCheck{"database": deps.Pool.Ping}
	if deps.ReadPool != nil {
		ready["read_database"] = deps.ReadPool.Ping
	}
	if a.Store != nil {
		ready["object_store"] = a.Store.Ping
	}
	a.Server = server.New(server.Config{
		Addr:            cfg.Addr,
		MaxBodyBytes:    cfg.MaxBodyBytes,
		BodyIdleTimeout: cfg.BodyIdleTimeout,
		BodyReadTimeout: cfg.BodyReadTimeout,
		CORSOrigins:     cfg.CORSOrigins,
		TrustedProxies:  cfg.TrustedProxies,
		ShutdownTimeout: cfg.ShutdownTimeout,
	}, server.Deps{
		Accounts: a.Accounts,
		Engine:   a.Engine,
		Media:    a.Media,
		Notify:   a.Notify,
		Ready:    ready,
	}, log)
	cons, err := console.New(console.Config{IdleTimeout: cfg.ConsoleIdleTimeout, TrustedProxies: cfg.TrustedProxies,
		ClientAddr: a.Server.ClientAddr},
		console.Deps{Accounts: a.Accounts, Engine: a.Engine, Media: a.Media, Notify: a.Notify, Log: log.With("component", "console"), Now: now})
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	a.Server.Mount(console.Prefix, cons)
	if a.Notify != nil {
		if err := a.Notify.RegisterMetrics(a.Server.Registry()); err != nil {
			return nil, err
		}
	}
	if err := a.Engine.RegisterMetrics(a.Server.Registry()); err != nil {
		return nil, err
	}
	if err := a.Accounts.RegisterMetrics(a.Server.Registry()); err != nil {
		return nil, err
	}
	return a, nil
}

func accountConfig(cfg Config) account.Config {
	password := cfg.Password
	if password == (account.PasswordParams{}) {
		password = account.DefaultPasswordParams
	}
	return account.Config{
		Tokens:          account.TokenConfig{Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, TTL: cfg.AccessTokenTTL},
		RefreshTokenTTL: cfg.RefreshTokenTTL,
		RefreshGrace:    cfg.RefreshGrace,
		Password:        password,
		Throttle: account.ThrottleConfig{PerLogin: cfg.LoginFailuresPerLogin, PerAddress: cfg.LoginFailuresPerAddress,
			Window: cfg.LoginWindow},
		HashConcurrency: cfg.LoginConcurrency,
		HashWait:        cfg.LoginWait,
		MinAppVersion:   cfg.MinAppVersion,
	}
}

// AccountConfig is the accounts service's configuration from cfg, for the admin commands that
// use accounts without the rest of the service.
func AccountConfig(cfg Config) account.Config { return accountConfig(cfg) }

// newMedia builds the documents service. Its processing jobs run on River's media queue, and its
// background work is the cleanup loop that finishes interrupted completions and removes expired
// uploads.
func (a *App) newMedia(deps Deps, workers *river.Workers, now func() time.Time) error {
	cfg := a.cfg
	svc, err := media.NewService(media.Options{
		DB:               deps.Pool,
		Engine:           a.Engine,
		Store:            a.Store,
		Jobs:             a.Jobs,
		Log:              a.log.With("component", "media"),
		MaxUploadBytes:   cfg.MaxUploadBytes,
		MaxDecodeBytes:   cfg.MaxDecodeBytes,
		MaxBufferedParts: cfg.UploadBuffers,
		BufferWait:       cfg.UploadBufferWait,
		UploadsPerUser:   cfg.UploadsPerUser,
		UploadsPerDevice: cfg.UploadsPerDevice,
		BodyIdleTimeout:  cfg.BodyIdleTimeout,
		PublicURL:        cfg.PublicURL,
		TrustedProxies:   cfg.TrustedProxies,
		StoreTimeout:     cfg.StoreTimeout,
	})
	if err != nil {
		return err
	}
	svc.NowFunc = now
	svc.RegisterWorkers(workers)
	a.Media = svc
	a.workers = append(a.workers, svc.Run)
	return nil
}

// newNotify builds the notifications service (rules as engine hooks, push delivery, the event
// stream).
//
// Without FIELDSYNC_FIREBASE_CREDENTIALS_FILE push is off, and it says so once: notifications are
// still written, synced to the inbox and streamed to screens.
func (a *App) newNotify(ctx context.Context, deps Deps, workers *river.Workers, now func() time.Time) error {
	cfg := a.cfg
	ncfg := notify.Config{MaxStreamsPerUser: cfg.StreamsPerUser, Heartbeat: cfg.Heartbeat,
		MaxWorkers: cfg.PushWorkers, MaxSends: cfg.PushSends, Sender: deps.Sender, NoWake: cfg.NoPushWake}
	switch {
	case ncfg.Sender != nil:
	case cfg.FirebaseCredentialsFile == "":
		a.log.Info("push notifications are off: FIELDSYNC_FIREBASE_CREDENTIALS_FILE is not set; the in-app inbox and the event stream still work")
	default:
		fcm, err := notify.NewFCM(ctx, notify.FCMConfig{CredentialsFile: cfg.FirebaseCredentialsFile, Endpoint: cfg.FCMEndpoint})
		if err != nil {
			return fmt.Errorf("FIELDSYNC_FIREBASE_CREDENTIALS_FILE: %w", err)
		}
		ncfg.Sender = fcm
		if cfg.FCMEndpoint != "" {
			a.log.Info("push notifications are on, through FIELDSYNC_FCM_ENDPOINT", "endpoint", cfg.FCMEndpoint)
		} else {
			a.log.Info("push notifications are on")
		}
	}
	svc, err := notify.New(deps.Pool, a.Engine, a.Jobs, workers, ncfg, a.log)
	if err != nil {
		return err
	}
	svc.NowFunc = now
	a.Engine.AddHook(svc.Hook)
	a.Notify = svc
	a.workers = append(a.workers, svc.Run)
	return nil
}

// runJobs works the job queue until ctx ends, then stops it within the shutdown timeout.
func (a *App) runJobs(ctx context.Context) error {
	if err := a.Jobs.Start(ctx); err != nil {
		return fmt.Errorf("start job queue: %w", err)
	}
	<-ctx.Done()
	timeout := a.cfg.ShutdownTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return a.Jobs.Stop(stopCtx)
}

// Run runs the background workers (the engine's listener and janitor, the job queue, the
// documents' cleanup, the event stream's listener) until ctx ends. It returns the first error
// other than cancellation, once every worker has stopped.
func (a *App) Run(ctx context.Context) error {
	var g errgroup.Group
	for _, run := range a.workers {
		g.Go(func() error {
			err := run(ctx)
			if err != nil && !errors.Is(err, context.Canceled) {
				a.log.Error("background worker stopped", "err", err)
				return err
			}
			return nil
		})
	}
	return g.Wait()
}

// Serve serves the API on ln until ctx ends, with the background workers running; they stop after
// the server has drained its requests.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	background, stopWorkers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWorkers()
	running := make(chan error, 1)
	go func() { running <- a.Run(background) }()
	err := a.Server.Serve(ctx, ln)
	stopWorkers()
	if werr := <-running; werr != nil && err == nil {
		err = werr
	}
	return err
}
