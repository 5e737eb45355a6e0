package notify

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

// changesChannel is the channel the change log's trigger announces every commit on, with the
// branch id as payload (migrations/00002_sync_triggers.sql). A notification is a change like any
// other, so one channel wakes streams for both their notifications and their scope.
const changesChannel = "fieldsync_changes"

// hub wakes the event streams of a branch when a change of that branch commits, on any replica.
type hub struct {
	mu      gosync.Mutex
	waiting map[uuid.UUID]chan struct{}
}

func newHub() *hub { return &hub{waiting: map[uuid.UUID]chan struct{}{}} }

// subscribe returns a channel closed at the next commit in branch. Subscribe before reading the
// log, so that a commit between the read and the wait is not missed.
func (h *hub) subscribe(branch uuid.UUID) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch, ok := h.waiting[branch]
	if !ok {
		ch = make(chan struct{})
		h.waiting[branch] = ch
	}
	return ch
}

func (h *hub) wake(branch uuid.UUID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ch, ok := h.waiting[branch]; ok {
		close(ch)
		delete(h.waiting, branch)
	}
}

func (h *hub) wakeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for branch, ch := range h.waiting {
		close(ch)
		delete(h.waiting, branch)
	}
}

func (h *hub) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	if branch, err := uuid.Parse(n.Payload); err == nil {
		h.wake(branch)
	}
	return nil
}

// HandleBacklog runs on every (re)connection: what was announced meanwhile is unknown, so every
// stream looks again.
func (h *hub) HandleBacklog(context.Context, string, *pgx.Conn) error {
	h.wakeAll()
	return nil
}

// listen runs the LISTEN connection until ctx ends, reconnecting after failures.
func (h *hub) listen(ctx context.Context, db *pgxpool.Pool, log *slog.Logger) error {
	l := &pgxlisten.Listener{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			return pgx.ConnectConfig(ctx, db.Config().ConnConfig)
		},
		LogError: func(ctx context.Context, err error) {
			if ctx.Err() == nil {
				log.WarnContext(ctx, "event stream listener", "err", err)
			}
		},
		ReconnectDelay: 2 * time.Second,
	}
	l.Handle(changesChannel, h)
	return l.Listen(ctx)
}
