package notify

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/sync"
)

// Types of the events of a live stream.
const (
	// EventReady opens every stream; its id is where the stream starts.
	EventReady = "ready"
	// EventNotification carries one of the caller's notifications, as the inbox syncs it.
	EventNotification = "notification"
	// EventSync says that something that may be in the caller's scope changed: pull now.
	EventSync = "sync"
	// EventHeartbeat is no event for the client: the HTTP layer writes it as an SSE comment, so
	// that proxies keep an idle stream open (and checks the caller's session meanwhile).
	EventHeartbeat = "heartbeat"
)

// Event is one message of a live stream. ID, when set, is what the client sends back as
// Last-Event-ID to resume after it.
type Event struct {
	ID   string
	Type string
	Data json.RawMessage
}

// streamRoles are the roles with an inbox.
var streamRoles = map[string]bool{fieldsync.RoleRep: true, fieldsync.RoleProcessor: true, fieldsync.RoleManager: true}

// maxReplay is how many notifications a stream replays when it cannot resume from the client's
// Last-Event-ID (a position pruned from the log): the newest of the inbox, then a sync event.
const maxReplay = 1000

// Stream sends the caller's live events to send until ctx ends or send fails: EventReady first,
// then each of the caller's notifications as soon as it commits, and EventSync when a change that
// may be in their scope commits, with heartbeats between. With lastEventID (an id this stream
// gave) it first sends what was written since that event (and maybe some events again); if the
// log no longer reaches back that far, it sends the caller's inbox instead (its newest 1,000
// notifications and a sync event). It returns an error before sending anything for a malformed
// lastEventID or a role without an inbox, and send's error once it fails; nil when ctx ends.
func (s *Service) Stream(ctx context.Context, id *fieldsync.Identity, lastEventID string, send func(Event) error) error {
	if !streamRoles[id.Role] {
		return fieldsync.Errorf(fieldsync.EFORBIDDEN, "forbidden", "The %s role has no inbox to stream.", id.Role)
	}
	release, err := s.streams.Acquire(id.UserID, "event streams")
	if err != nil {
		return err
	}
	defer release()
	// Where the stream starts: after the client's last event, if the log still reaches back
	// to it; else from now, what has committed being the client's to pull.
	cur, resume, err := s.engine.FeedStart(ctx, id.BranchID, lastEventID)
	if errors.Is(err, sync.ErrFeedToken) {
		return fieldsync.InvalidField("Last-Event-ID", "Last-Event-ID must be the id of an event this stream sent.")
	}
	if err != nil {
		return err
	}
	st := &stream{s: s, id: id, send: send, cur: cur}
	s.metrics.streams.Inc()
	defer s.metrics.streams.Dec()
	watcher := s.engine.Watch(id)
	defer watcher.Close()
	wake := watcher.Ready()
	if lastEventID != "" && !resume {
		if err := st.replay(ctx); err != nil {
			return err
		}
	}
	ready, _ := json.Marshal(map[string]any{"heartbeat_seconds": int(s.cfg.Heartbeat.Seconds()), "resumed": resume})
	if err := send(Event{ID: st.cur.Token(), Type: EventReady, Data: ready}); err != nil {
		return err
	}

	heartbeat := time.NewTicker(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	for {
		more, err := st.read(ctx)
		if err != nil {
			return streamErr(ctx, err)
		}
		if more {
			watcher.Rearm()
			wake = watcher.Ready()
			continue
		}
		select {
		case <-wake:
		case <-heartbeat.C:
			// Also a read of the log, should the listener have missed an announcement.
			if err := send(Event{Type: EventHeartbeat}); err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		}
		watcher.Rearm()
		wake = watcher.Ready()
	}
}

// streamErr turns the end of the request into a clean end of the stream.
func streamErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

type stream struct {
	s    *Service
	id   *fieldsync.Identity
	send func(Event) error
	cur  sync.FeedCursor
}

// read sends the caller's events among the changes of the log the stream has not read yet (one
// page of the sync engine's feed), advances the cursor, and reports whether more are waiting.
func (st *stream) read(ctx context.Context) (bool, error) {
	changes, next, more, err := st.s.engine.Feed(ctx, st.id, st.cur)
	if err != nil {
		return false, err
	}
	changed := false
	for _, c := range changes {
		switch {
		case c.Type != sync.TypeNotification:
			changed = true
		case c.Data != nil:
			if err := st.send(Event{ID: c.Token, Type: EventNotification, Data: c.Data}); err != nil {
				return false, err
			}
		case c.Op != "upsert":
			changed = true // it left the inbox (read long enough ago)
		}
	}
	st.cur = next
	if changed {
		if err := st.send(Event{ID: st.cur.Token(), Type: EventSync, Data: json.RawMessage(`{}`)}); err != nil {
			return false, err
		}
	}
	return more, nil
}

// replay sends the caller's inbox (the newest maxReplay notifications they hold) and a sync event,
// for a client whose Last-Event-ID the log no longer reaches.
func (st *stream) replay(ctx context.Context) error {
	inbox, err := st.s.engine.Inbox(ctx, st.id, maxReplay)
	if err != nil {
		return err
	}
	for _, data := range inbox {
		if err := st.send(Event{Type: EventNotification, Data: data}); err != nil {
			return err
		}
	}
	return st.send(Event{Type: EventSync, Data: json.RawMessage(`{}`)})
}
