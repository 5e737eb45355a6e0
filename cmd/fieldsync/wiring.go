package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/internal/jobqueue"
	"github.com/fieldsync/fieldsync/media"
	"github.com/fieldsync/fieldsync/migrations"
	"github.com/fieldsync/fieldsync/server"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"golang.org/x/sync/errgroup"
)

func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// poolConns is the server's pool size for DATABASE_URL: pool_max_conns when the URL sets it, else
// 20. pgxpool's own default (the number of CPUs, at least 4) throttles pushes and job delivery on
// small machines; long-polls hold no connection while they wait.
func poolConns(url string, parsed int32) int32 {
	if strings.Contains(url, "pool_max_conns") {
		return parsed
	}
	return 20
}

// openDB connects to PostgreSQL and checks the connection, so a wrong DATABASE_URL fails at start.
// The error never contains the URL, which may hold a password.
func openDB(ctx context.Context, url string) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("DATABASE_URL could not be parsed")
	}
	pcfg.MaxConns = poolConns(url, pcfg.MaxConns)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s: %w", pcfg.ConnConfig.Host, err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL at %s:%d: %w", pcfg.ConnConfig.Host, pcfg.ConnConfig.Port, err)
	}
	return pool, nil
}

// migrate applies pending migrations through the pool.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	return migrations.Up(ctx, db)
}

// loadKeys reads the JWT key file, creating it first when allowed and missing.
func loadKeys(cfg config, log *slog.Logger) (*account.Keys, error) {
	if cfg.JWTGenerateKey {
		if _, err := os.Stat(cfg.JWTKeyFile); errors.Is(err, os.ErrNotExist) {
			if err := writeNewKey(cfg.JWTKeyFile); err != nil {
				return nil, err
			}
			log.Info("created a new JWT signing key", "file", cfg.JWTKeyFile)
		}
	}
	keys, err := account.LoadKeysFile(cfg.JWTKeyFile)
	if err != nil {
		return nil, fmt.Errorf("FIELDSYNC_JWT_KEY_FILE: %w", err)
	}
	return keys, nil
}

// writeNewKey writes a new signing key to path, readable by its owner only. It never overwrites.
func writeNewKey(path string) error {
	pem, err := account.GenerateKeyPEM()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create key directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create key file: %w", err)
	}
	if _, err := f.Write(pem); err != nil {
		f.Close()
		return fmt.Errorf("write key file: %w", err)
	}
	return f.Close()
}

func accountConfig(cfg config) account.Config {
	return account.Config{
		Tokens:          account.TokenConfig{Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, TTL: cfg.AccessTokenTTL},
		RefreshTokenTTL: cfg.RefreshTokenTTL,
		Password:        account.DefaultPasswordParams,
		Throttle: account.ThrottleConfig{PerLogin: cfg.LoginFailuresPerLogin, PerAddress: cfg.LoginFailuresPerAddress,
			Window: cfg.LoginWindow},
		HashConcurrency: cfg.LoginConcurrency,
	}
}

// serve runs the API server on ln over an open database until ctx ends.
func serve(ctx context.Context, cfg config, pool *pgxpool.Pool, keys *account.Keys, log *slog.Logger, ln net.Listener) error {
	store, err := media.NewStore(cfg.S3)
	if err != nil {
		return fmt.Errorf("FIELDSYNC_S3_ENDPOINT: %w", err)
	}
	if err := store.EnsureBucket(ctx); err != nil {
		// Not fatal: the store may come up after us. /readyz reports it until it does.
		log.Warn("object store not ready", "err", err)
	}
	accounts, err := account.NewService(pool, keys, accountConfig(cfg), log)
	if err != nil {
		return err
	}
	engine := sync.New(pool, sync.Config{ScopeWindow: cfg.ScopeWindow, MaxWaitsPerUser: cfg.LongPollsPerUser}, log)
	if err := engine.Prepare(ctx); err != nil {
		return err
	}
	// One job queue (River, in PostgreSQL) serves every background job; each part registers its
	// workers and inserts its jobs in the transactions that cause them.
	workers := river.NewWorkers()
	jobs, err := river.NewClient(riverpgxv5.New(pool), jobqueue.Config(workers, log))
	if err != nil {
		return fmt.Errorf("job queue: %w", err)
	}
	mediaService, runMedia, err := newMedia(ctx, cfg, pool, engine, store, jobs, workers, log)
	if err != nil {
		return err
	}
	notifyService, runNotify, err := newNotify(ctx, cfg, pool, engine, jobs, workers, log)
	if err != nil {
		return err
	}
	runJobs := func(ctx context.Context) error {
		if err := jobs.Start(ctx); err != nil {
			return fmt.Errorf("start job queue: %w", err)
		}
		<-ctx.Done()
		stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		return jobs.Stop(stopCtx)
	}
	srv := server.New(server.Config{
		Addr:            cfg.Addr,
		MaxBodyBytes:    cfg.MaxBodyBytes,
		BodyIdleTimeout: cfg.BodyIdleTimeout,
		BodyReadTimeout: cfg.BodyReadTimeout,
		CORSOrigins:     cfg.CORSOrigins,
		TrustedProxies:  cfg.TrustedProxies,
		ShutdownTimeout: cfg.ShutdownTimeout,
	}, server.Deps{
		Accounts: accounts,
		Engine:   engine,
		Media:    mediaService,
		Notify:   notifyService,
		Ready:    map[string]server.ReadyCheck{"database": pool.Ping, "object_store": store.Ping},
	}, log)
	if err := notifyService.RegisterMetrics(srv.Registry()); err != nil {
		return err
	}
	if err := accounts.RegisterMetrics(srv.Registry()); err != nil {
		return err
	}

	// The background workers stop after the server has drained its requests.
	background, stopWorkers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWorkers()
	if runMedia == nil && runNotify == nil {
		runJobs = nil // no part has registered a job worker, and River will not start without one
	}
	running := runWorkers(background, log, engine.Run, runJobs, runMedia, runNotify)
	err = srv.Serve(ctx, ln)
	stopWorkers()
	if werr := running.Wait(); werr != nil && err == nil {
		err = werr
	}
	return err
}

// jobClient is the job queue's client, as the parts of the service insert jobs with it.
type jobClient = *river.Client[pgx.Tx]

// runFunc runs background work until its context ends.
type runFunc func(ctx context.Context) error

// runWorkers starts each non-nil worker; Wait returns the first error other than cancellation.
func runWorkers(ctx context.Context, log *slog.Logger, workers ...runFunc) *errgroup.Group {
	var g errgroup.Group
	for _, run := range workers {
		if run == nil {
			continue
		}
		g.Go(func() error {
			err := run(ctx)
			if err != nil && !errors.Is(err, context.Canceled) {
				log.Error("background worker stopped", "err", err)
				return err
			}
			return nil
		})
	}
	return &g
}

// listen opens the listening socket early, so a port in use is reported before anything else.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("FIELDSYNC_ADDR: listen on %s: %w", addr, err)
	}
	return ln, nil
}
