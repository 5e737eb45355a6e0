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
	"github.com/fieldsync/fieldsync/internal/app"
	"github.com/fieldsync/fieldsync/migrations"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
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
	return openNamedDB(ctx, "DATABASE_URL", url)
}

// openNamedDB is openDB for the URL of the setting name.
func openNamedDB(ctx context.Context, name, url string) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("%s could not be parsed", name)
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

func accountConfig(cfg config) account.Config { return app.AccountConfig(cfg.Config) }

// serve runs the API server on ln over an open database until ctx ends: the service as the
// composition root (internal/app) builds it.
func serve(ctx context.Context, cfg config, pool *pgxpool.Pool, keys *account.Keys, log *slog.Logger, ln net.Listener) error {
	deps := app.Deps{Pool: pool, Keys: keys, Log: log}
	if cfg.ReadDatabaseURL != "" {
		read, err := openNamedDB(ctx, "FIELDSYNC_READ_DATABASE_URL", cfg.ReadDatabaseURL)
		if err != nil {
			return err
		}
		defer read.Close()
		deps.ReadPool = read
	}
	a, err := app.New(ctx, cfg.Config, deps)
	if err != nil {
		return err
	}
	return a.Serve(ctx, ln)
}

// listen opens the listening socket early, so a port in use is reported before anything else.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("FIELDSYNC_ADDR: listen on %s: %w", addr, err)
	}
	return ln, nil
}
