// Package branchwake wakes whoever waits on a branch (long-polls, event streams) when a change that
// may concern them commits, on any replica: the change log's trigger announces every commit with
// pg_notify on Channel, with the branch id and the change's audience (user ids, and m, p, r for
// the branch's managers, processors and reps) as payload (migrations/00002_sync_triggers.sql).
// Waking only those concerned matters: with fifty reps in a branch, waking every long-poll of the
// branch at each commit costs fifty pulls a write.
package branchwake

import (
	"context"
	"log/slog"
	"strings"
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

// Hub wakes watchers when a commit may concern them.
type Hub struct {
	mu       gosync.Mutex
	watchers map[uuid.UUID]map[*Watcher]struct{}
}

// New returns a hub; Listen feeds it.
func New() *Hub { return &Hub{watchers: map[uuid.UUID]map[*Watcher]struct{}{}} }

// Watcher is one waiter (a long-poll, an event stream): a user of a branch, with a role.
type Watcher struct {
	h      *Hub
	branch uuid.UUID
	user   string
	tag    string // the role's audience tag: m, p or r
	ch     chan struct{}
}

var roleTags = map[string]string{"manager": "m", "processor": "p", "rep": "r"}

// Watch registers a waiter of branch. Close it when done.
func (h *Hub) Watch(branch, user uuid.UUID, role string) *Watcher {
	w := &Watcher{h: h, branch: branch, user: user.String(), tag: roleTags[role], ch: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.watchers[branch] == nil {
		h.watchers[branch] = map[*Watcher]struct{}{}
	}
	h.watchers[branch][w] = struct{}{}
	return w
}

// Ready returns a channel closed at the next commit that may concern the watcher (since the last
// Rearm).
func (w *Watcher) Ready() <-chan struct{} {
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	return w.ch
}

// Rearm readies the watcher for the next commit, if the last one fired. Call it before looking for
// changes, so that a commit between the look and the wait is not missed.
func (w *Watcher) Rearm() {
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	select {
	case <-w.ch:
		w.ch = make(chan struct{})
	default:
	}
}

// Close unregisters the watcher.
func (w *Watcher) Close() {
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	delete(w.h.watchers[w.branch], w)
	if len(w.h.watchers[w.branch]) == 0 {
		delete(w.h.watchers, w.branch)
	}
}

// concerns reports whether a commit announced for audience may concern the watcher. A nil
// audience is the whole branch.
func (w *Watcher) concerns(audience []string) bool {
	if audience == nil {
		return true
	}
	for _, a := range audience {
		if a == w.user || (w.tag != "" && a == w.tag) {
			return true
		}
	}
	return false
}

func (w *Watcher) fire() {
	select {
	case <-w.ch:
	default:
		close(w.ch)
	}
}

// wake fires the watchers of branch that audience concerns.
func (h *Hub) wake(branch uuid.UUID, audience []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers[branch] {
		if w.concerns(audience) {
			w.fire()
		}
	}
}

// wakeAll fires every watcher: after a lost connection to the database, any branch may have
// changed unannounced.
func (h *Hub) wakeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ws := range h.watchers {
		for w := range ws {
			w.fire()
		}
	}
}

// parsePayload reads "branch" or "branch;audience,...".
func parsePayload(payload string) (uuid.UUID, []string, error) {
	branch, audience, found := strings.Cut(payload, ";")
	id, err := uuid.Parse(branch)
	if err != nil || !found {
		return id, nil, err
	}
	return id, strings.Split(audience, ","), nil
}

// HandleNotification wakes the branch a notification names (pgxlisten.Handler).
func (h *Hub) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	if branch, audience, err := parsePayload(n.Payload); err == nil {
		h.wake(branch, audience)
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
