package sync

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

// changesChannel is the PostgreSQL notification channel the change-log trigger announces commits
// on, with the branch id as payload. Every replica listens, so a long-poll wakes wherever the
// change was written.
const changesChannel = "fieldsync_changes"

// hub wakes the long-polls of a branch when a change of that branch commits.
type hub struct {
	mu      gosync.Mutex
	waiting map[uuid.UUID]chan struct{}
}

func newHub() *hub { return &hub{waiting: map[uuid.UUID]chan struct{}{}} }

// subscribe returns a channel closed at the next commit in branch. Subscribe before looking for
// changes, so that a commit between the look and the wait is not missed.
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

// wake closes the channel of branch.
func (h *hub) wake(branch uuid.UUID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ch, ok := h.waiting[branch]; ok {
		close(ch)
		delete(h.waiting, branch)
	}
}

// wakeAll closes every channel: after a lost connection to the database, any branch may have
// changed unannounced.
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

// HandleBacklog runs on every (re)connection of the listener: whatever was announced while it was
// away is unknown, so everyone looks again.
func (h *hub) HandleBacklog(context.Context, string, *pgx.Conn) error {
	h.wakeAll()
	return nil
}

// listen runs the hub's LISTEN connection until ctx ends, reconnecting after failures.
func (h *hub) listen(ctx context.Context, db *pgxpool.Pool, log *slog.Logger) error {
	l := &pgxlisten.Listener{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			return pgx.ConnectConfig(ctx, db.Config().ConnConfig)
		},
		LogError: func(ctx context.Context, err error) {
			if ctx.Err() == nil {
				log.WarnContext(ctx, "change listener", "err", err)
			}
		},
		ReconnectDelay: 2 * time.Second,
	}
	l.Handle(changesChannel, h)
	return l.Listen(ctx)
}
