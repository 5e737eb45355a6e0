// Package branchwake wakes whoever waits on a branch (long-polls, event streams) when a change of
// that branch commits, on any replica: the change log's trigger announces every commit with
// pg_notify on Channel, with the branch id as payload (migrations/00002_sync_triggers.sql).
package branchwake

import (
	"context"
	"log/slog"
	gosync "sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgxlisten"
)

// Channel is the PostgreSQL notification channel commits are announced on.
const Channel = "fieldsync_changes"

// Hub hands out one channel per branch, closed at the branch's next commit.
type Hub struct {
	mu      gosync.Mutex
	waiting map[uuid.UUID]chan struct{}
}

// New returns a hub; Listen feeds it.
func New() *Hub { return &Hub{waiting: map[uuid.UUID]chan struct{}{}} }

// Subscribe returns a channel closed at the next commit in branch. Subscribe before looking for
// changes, so that a commit between the look and the wait is not missed.
func (h *Hub) Subscribe(branch uuid.UUID) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch, ok := h.waiting[branch]
	if !ok {
		ch = make(chan struct{})
		h.waiting[branch] = ch
	}
	return ch
}

func (h *Hub) wake(branch uuid.UUID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ch, ok := h.waiting[branch]; ok {
		close(ch)
		delete(h.waiting, branch)
	}
}

// wakeAll closes every channel: after a lost connection to the database, any branch may have
// changed unannounced.
func (h *Hub) wakeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for branch, ch := range h.waiting {
		close(ch)
		delete(h.waiting, branch)
	}
}

// HandleNotification wakes the branch a notification names (pgxlisten.Handler).
func (h *Hub) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	if branch, err := uuid.Parse(n.Payload); err == nil {
		h.wake(branch)
	}
	return nil
}

// HandleBacklog runs on every (re)connection of the listener: whatever was announced while it was
// away is unknown, so everyone looks again (pgxlisten.BacklogHandler).
func (h *Hub) HandleBacklog(context.Context, string, *pgx.Conn) error {
	h.wakeAll()
	return nil
}

// Listen holds a LISTEN connection until ctx ends, reconnecting after failures; name says whose
// listener it is in logs.
func (h *Hub) Listen(ctx context.Context, db *pgxpool.Pool, log *slog.Logger, name string) error {
	l := &pgxlisten.Listener{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			return pgx.ConnectConfig(ctx, db.Config().ConnConfig)
		},
		LogError: func(ctx context.Context, err error) {
			if ctx.Err() == nil {
				log.WarnContext(ctx, name, "err", err)
			}
		},
		ReconnectDelay: 2 * time.Second,
	}
	l.Handle(Channel, h)
	return l.Listen(ctx)
}
