package main

import (
	"context"
	"log/slog"

	"github.com/fieldsync/fieldsync/media"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
)

// newMedia builds the documents service and returns it with the function that runs its
// background work until ctx ends: the cleanup loop that finishes interrupted completions and
// removes expired uploads. Its processing jobs run on River's media queue.
func newMedia(_ context.Context, cfg config, pool *pgxpool.Pool, engine *sync.Engine, store *media.Store, jobs jobClient, workers *river.Workers, log *slog.Logger) (*media.Service, runFunc, error) {
	svc, err := media.NewService(media.Options{
		DB:               pool,
		Engine:           engine,
		Store:            store,
		Jobs:             jobs,
		Log:              log.With("component", "media"),
		MaxUploadBytes:   cfg.MaxUploadBytes,
		MaxDecodeBytes:   cfg.MaxDecodeBytes,
		MaxBufferedParts: cfg.UploadBuffers,
		BufferWait:       cfg.UploadBufferWait,
		UploadsPerUser:   cfg.UploadsPerUser,
		UploadsPerDevice: cfg.UploadsPerDevice,
		BodyIdleTimeout:  cfg.BodyIdleTimeout,
		PublicURL:        cfg.PublicURL,
		TrustedProxies:   cfg.TrustedProxies,
	})
	if err != nil {
		return nil, nil, err
	}
	svc.RegisterWorkers(workers)
	return svc, svc.Run, nil
}
