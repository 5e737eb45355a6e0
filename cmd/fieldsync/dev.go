package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"github.com/fieldsync/fieldsync/internal/app"
	"github.com/fieldsync/fieldsync/internal/demo"
	"github.com/fieldsync/fieldsync/internal/devenv"
)

// cmdDev is the newcomer's one command: it finds or starts PostgreSQL and MinIO, applies the
// migrations, seeds the demo branch, prints how to sign in, and serves until Ctrl-C. Whatever it
// started, it stops on the way out.
func cmdDev(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	if _, set := os.LookupEnv("FIELDSYNC_ADDR"); !set {
		cfg.Addr = "127.0.0.1:8080"
	}
	if _, set := os.LookupEnv("FIELDSYNC_LOG_FORMAT"); !set {
		cfg.LogFormat = "text"
	}
	fs := newFlags("dev", stderr)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address (FIELDSYNC_ADDR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	ln, err := listen(cfg.Addr)
	if err != nil {
		return err
	}
	defer ln.Close()

	pg, err := devenv.Postgres(ctx, log, "fieldsync")
	if err != nil {
		return err
	}
	defer pg.Close()
	cfg.DatabaseURL = pg.URL
	if cfg.S3.Endpoint == "" {
		store, err := devenv.StartMinIO(ctx, log, cfg.S3.Bucket)
		if err != nil {
			return err
		}
		defer store.Close()
		cfg.S3 = store.Config
	} else {
		log.Info("using the object store from FIELDSYNC_S3_ENDPOINT", "endpoint", cfg.S3.Endpoint, "bucket", cfg.S3.Bucket)
	}

	if cfg.JWTKeyFile == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			dir = os.TempDir()
		}
		cfg.JWTKeyFile, cfg.JWTGenerateKey = filepath.Join(dir, "fieldsync", "dev-jwt-key.pem"), true
	}
	if err := cfg.validateServe(); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	pool, err := openDB(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := migrate(ctx, pool); err != nil {
		return err
	}
	keys, err := loadKeys(cfg, log)
	if err != nil {
		return err
	}
	a, err := app.New(ctx, cfg.Config, app.Deps{Pool: pool, Keys: keys, Log: log})
	if err != nil {
		return err
	}
	d, err := demo.Seed(ctx, pool, a.Accounts)
	if err != nil {
		return err
	}
	d.Print(stdout, baseURL(ln))
	return a.Serve(ctx, ln)
}

// baseURL is the URL a person on this machine reaches the listener at.
func baseURL(ln net.Listener) string {
	addr := ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "localhost"
	}
	return fmt.Sprintf("http://%s", net.JoinHostPort(host, fmt.Sprint(addr.Port)))
}
