package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
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

// logPage is how many change-log rows a stream reads at a time.
const logPage = 1000

// maxReplay is how many notifications a stream replays when it cannot resume from the client's
// Last-Event-ID (a position pruned from the log): the newest of the inbox, then a sync event.
const maxReplay = 1000

// position is a place in the change log: a transaction id and a version, the order the log is
// read in.
type position struct {
	xid     uint64
	version int64
}

func (p position) after(q position) bool {
	return p.xid > q.xid || (p.xid == q.xid && p.version > q.version)
}

// cursor is where a stream is in the change log of its branch.
//
// A change becomes readable when its transaction commits, and transactions commit in any order: a
// transaction that wrote before another may commit after it, its change landing behind what a
// stream has already read. A stream therefore remembers, besides the furthest position it read
// (hi), the transactions that were still running when it read (running): the next read takes
// what lies beyond hi and whatever those transactions wrote, wherever it lies. So a notification
// is sent the moment its transaction commits, never held back by another one.
//
// A client resuming cannot hand that set back, only an event id. An id carries the horizon (h):
// every change of a transaction below it had been read when the event was sent. Resuming reads
// everything from the horizon on: nothing is missed, and a few events may come again.
type cursor struct {
	h       uint64
	hi      position
	running []string // xids, as text
}

// eventID is the id of an event sent at the cursor, about the change at p.
func (c cursor) eventID(p position) string {
	return strconv.FormatUint(c.h, 10) + "-" + strconv.FormatUint(p.xid, 10) + "-" + strconv.FormatInt(p.version, 10)
}

// parseEventID returns the horizon of an event id.
func parseEventID(s string) (uint64, error) {
	parts := strings.Split(s, "-")
	if len(s) > 80 || len(parts) != 3 {
		return 0, fmt.Errorf("malformed event id")
	}
	var nums [3]uint64
	for i, part := range parts {
		n, err := strconv.ParseUint(part, 10, 63)
		if err != nil {
			return 0, fmt.Errorf("malformed event id")
		}
		nums[i] = n
	}
	return nums[0], nil
}

// snapshot is what PostgreSQL said was running when a statement read: xmin (every transaction
// below it had ended), and the transactions still running.
type snapshot struct {
	xmin    uint64
	running []string
}

// parseSnapshot reads pg_snapshot's text form, xmin:xmax:xip,xip...
func parseSnapshot(s string) (snapshot, error) {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) != 3 {
		return snapshot{}, fmt.Errorf("snapshot %q", s)
	}
	xmin, err := strconv.ParseUint(parts[0], 10, 64)
	if err != nil {
		return snapshot{}, fmt.Errorf("snapshot %q", s)
	}
	snap := snapshot{xmin: xmin}
	if parts[2] != "" {
		snap.running = strings.Split(parts[2], ",")
	}
	return snap, nil
}

// notificationData is the SQL of a notification as devices see it: the sync engine's record, so
// that the stream sends what the inbox syncs and no column the engine does not name.
var notificationData = sync.RecordSQL(sync.TypeNotification, "n")

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
	st := &stream{s: s, id: id, send: send}
	resume := false
	if lastEventID != "" {
		h, err := parseEventID(lastEventID)
		if err != nil {
			return fieldsync.InvalidField("Last-Event-ID", "Last-Event-ID must be the id of an event this stream sent.")
		}
		if resume, err = s.resumable(ctx, h); err != nil {
			return err
		}
		// Everything of the transactions from the horizon on, read before or not.
		st.cur = cursor{h: h, hi: position{xid: h}}
	}
	s.metrics.streams.Inc()
	defer s.metrics.streams.Dec()

	watcher := s.hub.Watch(id.BranchID, id.UserID, id.Role)
	defer watcher.Close()
	wake := watcher.Ready()
	if !resume {
		// From now: what has committed is the client's to pull; what is running is to come.
		cur, err := s.frontier(ctx, id.BranchID)
		if err != nil {
			return err
		}
		st.cur = cur
		if lastEventID != "" {
			if err := st.replay(ctx); err != nil {
				return err
			}
		}
	}
	ready, _ := json.Marshal(map[string]any{"heartbeat_seconds": int(s.cfg.Heartbeat.Seconds()), "resumed": resume})
	if err := send(Event{ID: st.cur.eventID(st.cur.hi), Type: EventReady, Data: ready}); err != nil {
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
	cur  cursor
}

// read sends the caller's events among the changes of their branch the stream has not read yet
// (one page), advances the cursor, and reports whether more are waiting.
func (st *stream) read(ctx context.Context) (bool, error) {
	type change struct {
		pos        position
		typ, op    string
		targetUser *uuid.UUID
		targetRole *string
		owner      *uuid.UUID
		data       []byte
	}
	// The snapshot is the statement's own: what it read is exactly what had committed then.
	rows, err := st.s.db.Query(ctx, `
		WITH snap AS MATERIALIZED (SELECT pg_current_snapshot() AS s),
		page AS (
			SELECT c.xid, c.version, c.entity_type, c.op, c.target_user_id, c.target_role, n.user_id,
				CASE WHEN n.user_id = $2 AND n.version = c.version AND c.op = 'upsert' THEN `+notificationData+` END AS data
			FROM changes c
			LEFT JOIN notifications n ON c.entity_type = 'notification' AND n.id = c.entity_id
			WHERE c.branch_id = $1
				AND ((c.xid, c.version) > ($3::text::xid8, $4::bigint) OR c.xid = ANY($5::text[]::xid8[]))
			ORDER BY c.xid, c.version
			LIMIT $6
		)
		SELECT snap.s::text, p.xid::text, p.version, p.entity_type, p.op, p.target_user_id, p.target_role, p.user_id, p.data
		FROM snap LEFT JOIN page p ON true
		ORDER BY p.xid, p.version`,
		st.id.BranchID, st.id.UserID, strconv.FormatUint(st.cur.hi.xid, 10), st.cur.hi.version, st.cur.running, logPage)
	if err != nil {
		return false, fmt.Errorf("read change log: %w", err)
	}
	var snapText string
	var changes []change
	for rows.Next() {
		var c change
		var xid, typ, op *string
		var version *int64
		if err := rows.Scan(&snapText, &xid, &version, &typ, &op, &c.targetUser, &c.targetRole, &c.owner, &c.data); err != nil {
			rows.Close()
			return false, fmt.Errorf("read change log: %w", err)
		}
		if xid == nil {
			continue // no change: the snapshot alone
		}
		if c.pos.xid, err = strconv.ParseUint(*xid, 10, 64); err != nil {
			rows.Close()
			return false, fmt.Errorf("read change log: xid %q", *xid)
		}
		c.pos.version, c.typ, c.op = *version, *typ, *op
		changes = append(changes, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("read change log: %w", err)
	}
	snap, err := parseSnapshot(snapText)
	if err != nil {
		return false, err
	}

	me := st.id.UserID
	changed := false
	for _, c := range changes {
		switch {
		case c.typ == "notification" && c.owner != nil && *c.owner == me:
			if c.data != nil {
				if err := st.send(Event{ID: st.cur.eventID(c.pos), Type: EventNotification, Data: c.data}); err != nil {
					return false, err
				}
			} else if c.op != "upsert" {
				changed = true // it left the inbox (read long enough ago)
			}
		case c.typ == "notification":
			// someone else's
		case c.targetUser != nil && *c.targetUser != me:
		case c.targetRole != nil && *c.targetRole != st.id.Role:
		default:
			changed = true
		}
	}

	more := len(changes) == logPage
	next := cursor{h: snap.xmin, hi: st.cur.hi, running: snap.running}
	if len(changes) > 0 && changes[len(changes)-1].pos.after(next.hi) {
		next.hi = changes[len(changes)-1].pos
	}
	if more {
		// What lies beyond the page is unread: the horizon may not pass it.
		next.h = min(next.h, next.hi.xid)
	}
	next.h = max(next.h, st.cur.h)
	st.cur = next
	if changed {
		if err := st.send(Event{ID: st.cur.eventID(st.cur.hi), Type: EventSync, Data: json.RawMessage(`{}`)}); err != nil {
			return false, err
		}
	}
	return more, nil
}

// frontier returns a cursor at the end of branch's log as it is now: past every change committed,
// waiting for the transactions running.
func (s *Service) frontier(ctx context.Context, branch uuid.UUID) (cursor, error) {
	var snapText, xid string
	var version int64
	err := s.db.QueryRow(ctx, `
		SELECT pg_current_snapshot()::text, coalesce(l.xid::text, '0'), coalesce(l.version, 0)
		FROM (SELECT 1) one
		LEFT JOIN LATERAL (SELECT c.xid, c.version FROM changes c WHERE c.branch_id = $1
			ORDER BY c.xid DESC, c.version DESC LIMIT 1) l ON true`, branch).Scan(&snapText, &xid, &version)
	if err != nil {
		return cursor{}, fmt.Errorf("read the end of the change log: %w", err)
	}
	snap, err := parseSnapshot(snapText)
	if err != nil {
		return cursor{}, err
	}
	last, err := strconv.ParseUint(xid, 10, 64)
	if err != nil {
		return cursor{}, fmt.Errorf("read the end of the change log: xid %q", xid)
	}
	return cursor{h: snap.xmin, hi: position{xid: last, version: version}, running: snap.running}, nil
}

// replay sends the caller's inbox (the newest maxReplay notifications they hold) and a sync event,
// for a client whose Last-Event-ID the log no longer reaches.
func (st *stream) replay(ctx context.Context) error {
	rows, err := st.s.db.Query(ctx, `
		SELECT d FROM (
			SELECT `+notificationData+` AS d, n.created_at, n.id FROM notifications n
			WHERE n.user_id = $1 AND (n.read_at IS NULL OR n.read_at > now() - $2::interval)
			ORDER BY n.created_at DESC, n.id DESC LIMIT $3
		) x ORDER BY created_at, id`, st.id.UserID, st.s.cfg.ScopeWindow, maxReplay)
	if err != nil {
		return fmt.Errorf("read inbox: %w", err)
	}
	inbox, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return fmt.Errorf("read inbox: %w", err)
	}
	for _, data := range inbox {
		if err := st.send(Event{Type: EventNotification, Data: data}); err != nil {
			return err
		}
	}
	return st.send(Event{Type: EventSync, Data: json.RawMessage(`{}`)})
}

// resumable reports whether the log still holds everything from horizon h on: it was not pruned,
// and h is not from the future (an id from another database).
func (s *Service) resumable(ctx context.Context, h uint64) (bool, error) {
	var ok bool
	err := s.db.QueryRow(ctx, `
		SELECT $1::text::xid8 > pruned_through_xid AND $1::text::xid8 <= pg_snapshot_xmax(pg_current_snapshot())
		FROM sync_settings`, strconv.FormatUint(h, 10)).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("read pruning horizon: %w", err)
	}
	return ok, nil
}
