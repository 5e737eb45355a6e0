package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/internal/branchwake"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The feed is the change log of a branch read live, as the event stream (notify) reads it: every
// change that concerns the reader, the moment it commits. A pull reads the same log, but only up
// to the oldest running transaction, so that a device's cursor never passes a change still to
// commit; the feed instead reads what has committed, wherever it lies, and remembers what was
// running (FeedCursor).

// FeedCursor is where a reader is in the change log of its branch.
//
// A change becomes readable when its transaction commits, and transactions commit in any order: a
// transaction that wrote before another may commit after it, its change landing behind what a
// reader has already read. A cursor therefore remembers, besides the furthest position read (hi),
// the transactions that were still running when it read (running): the next read takes what lies
// beyond hi and whatever those transactions wrote, wherever it lies. So a change is served the
// moment its transaction commits, never held back by another one.
//
// A client resuming cannot hand that set back, only a token. A token carries the horizon (h):
// every change of a transaction below it had been read when the token was made. Resuming reads
// everything from the horizon on: nothing is missed, and a few changes may come again.
type FeedCursor struct {
	h       uint64
	hi      position
	running []string // xids, as text
}

// Token is what a client hands back (FeedStart) to resume from the cursor.
func (c FeedCursor) Token() string { return feedToken(c.h, c.hi) }

// FeedChange is one change of the log that concerns its reader: a change of their scope, or of
// their own notifications.
type FeedChange struct {
	// Token is the feed's place at this change, for a client to resume after it.
	Token string
	Type  string
	ID    uuid.UUID
	// Op is the log's: upsert, delete, or enter and leave for a change of scope.
	Op string
	// Data is the record as the reader's devices see it, for the reader's own notification when
	// this change wrote the version it is at; nil otherwise.
	Data json.RawMessage
}

// feedPage is how many changes of the log the feed reads at a time.
const feedPage = 1000

// FeedStart returns the cursor a reader of branch starts at, and whether it resumes from token.
// Without a token it is the end of the log as it is now: what has committed is the reader's to
// pull, what is running is to come. With a token the feed made, it is the place the token names,
// if the log still reaches back that far; if not (pruned, or a token of another database), it is
// the end of the log, and resumed is false. A malformed token is ErrFeedToken.
func (e *Engine) FeedStart(ctx context.Context, branch uuid.UUID, token string) (c FeedCursor, resumed bool, err error) {
	if token != "" {
		h, err := parseFeedToken(token)
		if err != nil {
			return FeedCursor{}, false, err
		}
		if resumed, err = e.feedReaches(ctx, h); err != nil {
			return FeedCursor{}, false, err
		}
		if resumed {
			// Everything of the transactions from the horizon on, read before or not.
			return FeedCursor{h: h, hi: position{xid: h}}, true, nil
		}
	}
	c, err = e.feedEnd(ctx, branch)
	return c, false, err
}

// feedReaches reports whether the log still holds everything from horizon h on: it was not
// pruned, and h is not from the future (a token from another database).
func (e *Engine) feedReaches(ctx context.Context, h uint64) (bool, error) {
	var ok bool
	err := e.db.QueryRow(ctx, `
		SELECT $1::text::xid8 > pruned_through_xid AND $1::text::xid8 <= pg_snapshot_xmax(pg_current_snapshot())
		FROM sync_settings`, xid8(h)).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("read pruning horizon: %w", err)
	}
	return ok, nil
}

// feedEnd returns a cursor at the end of branch's log as it is now: past every change committed,
// waiting for the transactions running.
func (e *Engine) feedEnd(ctx context.Context, branch uuid.UUID) (FeedCursor, error) {
	var snapText, xid string
	var version int64
	err := e.db.QueryRow(ctx, `
		SELECT pg_current_snapshot()::text, coalesce(l.xid::text, '0'), coalesce(l.version, 0)
		FROM (SELECT 1) one
		LEFT JOIN LATERAL (SELECT c.xid, c.version FROM changes c WHERE c.branch_id = $1
			ORDER BY c.xid DESC, c.version DESC LIMIT 1) l ON true`, branch).Scan(&snapText, &xid, &version)
	if err != nil {
		return FeedCursor{}, fmt.Errorf("read the end of the change log: %w", err)
	}
	snap, err := parseSnapshot(snapText)
	if err != nil {
		return FeedCursor{}, err
	}
	last, err := strconv.ParseUint(xid, 10, 64)
	if err != nil {
		return FeedCursor{}, fmt.Errorf("read the end of the change log: xid %q", xid)
	}
	return FeedCursor{h: snap.xmin, hi: position{xid: last, version: version}, running: snap.running}, nil
}

// Feed reads one page of the log of id's branch after c and returns the changes among it that
// concern id, oldest first, the cursor after the page, and whether more is waiting.
func (e *Engine) Feed(ctx context.Context, id *fieldsync.Identity, c FeedCursor) ([]FeedChange, FeedCursor, bool, error) {
	type entry struct {
		pos        position
		typ, op    string
		entityID   uuid.UUID
		targetUser *uuid.UUID
		targetRole *string
		owner      *uuid.UUID
		data       []byte
	}
	// The snapshot is the statement's own: what it read is exactly what had committed then.
	rows, err := e.db.Query(ctx, `
		WITH snap AS MATERIALIZED (SELECT pg_current_snapshot() AS s),
		page AS (
			SELECT c.xid, c.version, c.entity_type, c.entity_id, c.op, c.target_user_id, c.target_role, t.user_id,
				CASE WHEN t.user_id = $2 AND t.version = c.version AND c.op = 'upsert' THEN `+entities[TypeNotification].data+` END AS data
			FROM changes c
			LEFT JOIN notifications t ON c.entity_type = 'notification' AND t.id = c.entity_id
			WHERE c.branch_id = $1
				AND ((c.xid, c.version) > ($3::text::xid8, $4::bigint) OR c.xid = ANY($5::text[]::xid8[]))
			ORDER BY c.xid, c.version
			LIMIT $6
		)
		SELECT snap.s::text, p.xid::text, p.version, p.entity_type, p.entity_id, p.op, p.target_user_id, p.target_role, p.user_id, p.data
		FROM snap LEFT JOIN page p ON true
		ORDER BY p.xid, p.version`,
		id.BranchID, id.UserID, xid8(c.hi.xid), c.hi.version, c.running, feedPage)
	if err != nil {
		return nil, c, false, fmt.Errorf("read change log: %w", err)
	}
	var snapText string
	var entries []entry
	for rows.Next() {
		var en entry
		var xid, typ, op *string
		var version *int64
		var entityID *uuid.UUID
		if err := rows.Scan(&snapText, &xid, &version, &typ, &entityID, &op, &en.targetUser, &en.targetRole, &en.owner, &en.data); err != nil {
			rows.Close()
			return nil, c, false, fmt.Errorf("read change log: %w", err)
		}
		if xid == nil {
			continue // no change: the snapshot alone
		}
		if en.pos.xid, err = strconv.ParseUint(*xid, 10, 64); err != nil {
			rows.Close()
			return nil, c, false, fmt.Errorf("read change log: xid %q", *xid)
		}
		en.pos.version, en.typ, en.op, en.entityID = *version, *typ, *op, *entityID
		entries = append(entries, en)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, c, false, fmt.Errorf("read change log: %w", err)
	}
	snap, err := parseSnapshot(snapText)
	if err != nil {
		return nil, c, false, err
	}

	var out []FeedChange
	for _, en := range entries {
		switch {
		case en.typ == TypeNotification && (en.owner == nil || *en.owner != id.UserID):
			continue // someone else's
		case en.targetUser != nil && *en.targetUser != id.UserID:
			continue // a change of another user's scope
		case en.targetRole != nil && *en.targetRole != id.Role:
			continue // a change of another role's scope
		}
		out = append(out, FeedChange{Token: feedToken(c.h, en.pos), Type: en.typ, ID: en.entityID, Op: en.op, Data: en.data})
	}
	more := len(entries) == feedPage
	next := FeedCursor{h: snap.xmin, hi: c.hi, running: snap.running}
	if len(entries) > 0 && entries[len(entries)-1].pos.after(next.hi) {
		next.hi = entries[len(entries)-1].pos
	}
	if more {
		// What lies beyond the page is unread: the horizon may not pass it.
		next.h = min(next.h, next.hi.xid)
	}
	next.h = max(next.h, c.h)
	return out, next, more, nil
}

// Watch registers a waiter for the commits that may concern id (a change of their branch with
// them in its audience), on any replica; the feed's readers and the long-polls share the engine's
// one listener. Close it when done.
func (e *Engine) Watch(id *fieldsync.Identity) *branchwake.Watcher {
	return e.hub.Watch(id.BranchID, id.UserID, id.Role)
}

// Inbox returns the notifications id's scope holds (those not read, or read within the scope
// window), the newest limit of them, oldest first, as their devices see them: what a reader of the
// feed is sent instead when the log no longer reaches back to its token.
func (e *Engine) Inbox(ctx context.Context, id *fieldsync.Identity, limit int) ([]json.RawMessage, error) {
	scope, err := scopeOf(id.Role, TypeNotification)
	if err != nil {
		return nil, err
	}
	rows, err := e.db.Query(ctx, `
		SELECT d FROM (
			SELECT `+entities[TypeNotification].data+` AS d, t.created_at, t.id FROM notifications t, `+params+`
			WHERE `+scope+`
			ORDER BY t.created_at DESC, t.id DESC LIMIT $5
		) x ORDER BY created_at, id`, id.UserID, id.BranchID, e.cfg.ScopeWindow, e.sqlNow(), limit)
	if err != nil {
		return nil, fmt.Errorf("read inbox: %w", err)
	}
	inbox, err := pgx.CollectRows(rows, pgx.RowTo[json.RawMessage])
	if err != nil {
		return nil, fmt.Errorf("read inbox: %w", err)
	}
	return inbox, nil
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
