package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/fieldsync/fieldsync/notify"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
)

// newNotify builds the notifications service (rules as engine hooks, push delivery, the event
// stream) and returns it with the function that runs its background workers until ctx ends (nil
// when it has none; a part that registers job workers has one).
//
// Without FIELDSYNC_FIREBASE_CREDENTIALS_FILE push is off, and it says so once: notifications are
// still written, synced to the inbox and streamed to screens.
func newNotify(ctx context.Context, cfg config, pool *pgxpool.Pool, engine *sync.Engine, jobs jobClient, workers *river.Workers, log *slog.Logger) (*notify.Service, runFunc, error) {
	ncfg := notify.Config{MaxStreamsPerUser: cfg.StreamsPerUser}
	if cfg.FirebaseCredentialsFile == "" {
		log.Info("push notifications are off: FIELDSYNC_FIREBASE_CREDENTIALS_FILE is not set; the in-app inbox and the event stream still work")
	} else {
		fcm, err := notify.NewFCM(ctx, notify.FCMConfig{CredentialsFile: cfg.FirebaseCredentialsFile, Endpoint: cfg.FCMEndpoint})
		if err != nil {
			return nil, nil, fmt.Errorf("FIELDSYNC_FIREBASE_CREDENTIALS_FILE: %w", err)
		}
		ncfg.Sender = fcm
		if cfg.FCMEndpoint != "" {
			log.Info("push notifications are on, through FIELDSYNC_FCM_ENDPOINT", "endpoint", cfg.FCMEndpoint)
		} else {
			log.Info("push notifications are on")
		}
	}
	svc, err := notify.New(pool, engine, jobs, workers, ncfg, log)
	if err != nil {
		return nil, nil, err
	}
	engine.AddHook(svc.Hook)
	return svc, svc.Run, nil
}
