package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/internal/branchwake"
	"github.com/google/uuid"
)

// PullRequest is a device's request for what changed.
type PullRequest struct {
	Cursor string
	Limit  int
	Wait   time.Duration
	// RecheckFunc, when set, is called before a pull that waited answers: the caller's session may
	// have ended meanwhile (a logout, a revoked device), and its error is then the pull's answer
	// instead of the changes.
	RecheckFunc func(context.Context) error
}

// Change is one entry of a pull: a record to store (upsert) or to remove (delete).
type Change struct {
	Type    string          `json:"type"`
	ID      uuid.UUID       `json:"id"`
	Op      string          `json:"op"`
	Version int64           `json:"version,omitempty"`
	Reason  string          `json:"reason,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// DefaultPullLimit is the page size when a pull names none (docs/protocol.md).
const DefaultPullLimit = 500

// pullRoles are the roles with a device scope; admins and integrations do not sync.
var pullRoles = map[string]bool{rep: true, processor: true, manager: true}

// Pull sends the caller's changes since req.Cursor to emit, oldest first, one page, and returns
// the cursor to continue from and whether more is waiting. Without a cursor it walks a snapshot of
// the caller's whole scope. When nothing is new and req.Wait is set, it waits for a commit in the
// caller's branch (on any replica) or for the wait to end. Records are streamed from the database
// to emit one by one, so memory does not grow with the page.
func (e *Engine) Pull(ctx context.Context, id *fieldsync.Identity, req PullRequest, emit func(Change) error) (string, bool, error) {
	if !pullRoles[id.Role] {
		return "", false, fieldsync.Errorf(fieldsync.EFORBIDDEN, "forbidden", "The %s role does not sync.", id.Role)
	}
	limit := req.Limit
	switch {
	case limit == 0:
		limit = DefaultPullLimit
	case limit < 0:
		return "", false, fieldsync.InvalidField("limit", "limit must be positive.")
	case limit > e.cfg.MaxPullLimit:
		limit = e.cfg.MaxPullLimit
	}
	wait := min(max(req.Wait, 0), e.cfg.MaxWait)

	var c cursor
	if req.Cursor == "" {
		xmin, err := e.currentXmin(ctx)
		if err != nil {
			return "", false, err
		}
		c = cursor{user: id.UserID, role: id.Role, snapshot: true, xid: xmin}
	} else {
		var err error
		if c, err = parseCursor(req.Cursor, id); err != nil {
			return "", false, err
		}
		if err := e.checkServable(ctx, c); err != nil {
			return "", false, err
		}
	}

	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	backoff := 25 * time.Millisecond
	var watcher *branchwake.Watcher
	if wait > 0 && !c.snapshot {
		release, err := e.waits.Acquire(id.UserID, "long-polls")
		if err != nil {
			return "", false, err
		}
		defer release()
		watcher = e.Watch(id)
		defer watcher.Close()
	}
	waited := false
	for {
		var wake <-chan struct{}
		if watcher != nil {
			watcher.Rearm()
			wake = watcher.Ready()
		}
		emitted, next, more, pending, err := e.look(ctx, id, req, c, limit, emit, watcher != nil, waited)
		if err != nil {
			return "", false, err
		}
		if emitted > 0 || more || wait == 0 || c.snapshot {
			return next.String(), more, nil
		}
		c = next
		// Nothing for this caller yet. A change may be committed but still behind an older open
		// transaction (pending); if so, look again shortly (it is served the moment that one
		// ends), else sleep until the next commit in the branch. (Waking pending long-polls at
		// every commit announced instead was tried: under steady writes most long-polls are
		// pending, and each commit woke all of them.)
		var retry <-chan time.Time
		if pending {
			retry = time.After(backoff)
			backoff = min(backoff*2, time.Second)
		}
		select {
		case <-wake:
		case <-retry:
		case <-deadline.C:
			if req.RecheckFunc != nil {
				if err := req.RecheckFunc(ctx); err != nil {
					return "", false, err
				}
			}
			return c.String(), false, nil
		case <-ctx.Done():
			return "", false, ctx.Err()
		}
		waited = true
	}
}

// look is one look at the log for Pull: the session rechecked if the pull waited, a page, and
// when it is empty and the pull waits, whether a change is pending behind an open transaction. A
// long-poll's look takes one of the engine's looks first.
func (e *Engine) look(ctx context.Context, id *fieldsync.Identity, req PullRequest, c cursor, limit int, emit func(Change) error,
	longPoll, waited bool) (emitted int, next cursor, more, pending bool, err error) {
	if longPoll {
		if err := e.looks.Acquire(ctx, 1); err != nil {
			return 0, c, false, false, err
		}
		defer e.looks.Release(1)
	}
	if waited && req.RecheckFunc != nil {
		if err := req.RecheckFunc(ctx); err != nil {
			return 0, c, false, false, err
		}
	}
	emitted, next, more, err = e.pullPage(ctx, id, c, limit, emit)
	if err != nil || emitted > 0 || more || !longPoll {
		return emitted, next, more, false, err
	}
	pending, err = e.pendingBehindXmin(ctx, id, next)
	return emitted, next, more, pending, err
}

func (e *Engine) currentXmin(ctx context.Context) (uint64, error) {
	var s string
	if err := e.db.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text`).Scan(&s); err != nil {
		return 0, fmt.Errorf("read snapshot: %w", err)
	}
	return strconv.ParseUint(s, 10, 64)
}

// checkServable returns cursor_expired if changes the cursor still needs were pruned, or if the
// cursor is from the future: past the oldest running transaction (no cursor this server made can
// be: a snapshot's starts at it, a change's is below it) or past the last version handed out. A
// made-up cursor like that would skip every change until the server caught up with it.
func (e *Engine) checkServable(ctx context.Context, c cursor) error {
	var expired bool
	err := e.db.QueryRow(ctx, `
		SELECT s.pruned_through_xid >= $1::text::xid8
			OR $1::text::xid8 > pg_snapshot_xmin(pg_current_snapshot())
			OR $2::bigint > (SELECT last_value FROM change_version_seq)
		FROM sync_settings s`, xid8(c.xid), c.version).Scan(&expired)
	if err != nil {
		return fmt.Errorf("read pruning horizon: %w", err)
	}
	if expired {
		return errCursorExpired
	}
	return nil
}

// pendingBehindXmin reports whether the log holds, past c, a change a page for id would read. Called
// after a page that read every change it could serve, it finds those that were behind an open
// transaction when the page was read. Whether they are still behind it does not matter: one that
// became servable between the page and this look had its commit announced already, and waiting for
// the next announcement could sleep through the whole wait.
func (e *Engine) pendingBehindXmin(ctx context.Context, id *fieldsync.Identity, c cursor) (bool, error) {
	var pending bool
	err := e.db.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM changes c WHERE c.branch_id = $1 AND (c.xid, c.version) > ($2::text::xid8, $3::bigint)
			AND (c.op IN ('upsert', 'delete') OR c.target_user_id = $4 OR c.target_role = $5))`,
		id.BranchID, xid8(c.xid), c.version, id.UserID, id.Role).Scan(&pending)
	if err != nil {
		return false, fmt.Errorf("look for pending changes: %w", err)
	}
	return pending, nil
}

// pullPage emits one page and returns how many changes it emitted, the cursor after it, and
// whether more is waiting.
func (e *Engine) pullPage(ctx context.Context, id *fieldsync.Identity, c cursor, limit int, emit func(Change) error) (int, cursor, bool, error) {
	if c.snapshot {
		return e.snapshotPage(ctx, id, c, limit, emit)
	}
	return e.changesPage(ctx, id, c, limit, emit)
}

// params is joined into every scope query so that each of its parameters has a type, whichever
// of them the query's predicates use.
const params = `(SELECT $1::uuid AS me, $2::uuid AS branch, $3::interval AS win, $4::timestamptz AS asof) AS params`

func (e *Engine) snapshotPage(ctx context.Context, id *fieldsync.Identity, c cursor, limit int, emit func(Change) error) (int, cursor, bool, error) {
	emitted := 0
	for c.typeIdx < len(snapshotOrder) && emitted < limit {
		typ := snapshotOrder[c.typeIdx]
		ent := entities[typ]
		pred, err := scopeOf(id.Role, typ)
		if err != nil {
			return 0, c, false, err
		}
		want := limit - emitted
		// The page's ids are chosen first, and only the page's records are made into JSON. In one
		// query, a plan that sorts the scope (a big branch, or statistics not yet gathered after a
		// bulk load) made every remaining record into JSON and sorted that, at each page, so a
		// snapshot's cost grew with the square of its size. The page comes in no particular
		// order; the cursor takes the highest id.
		rows, err := e.db.Query(ctx, fmt.Sprintf(`
			WITH page AS MATERIALIZED (SELECT t.id FROM %[2]s t, %[3]s WHERE (%[4]s) AND %[5]s AND t.id > $5 ORDER BY t.id LIMIT $6)
			SELECT p.id, x.version, x.data FROM page p
			CROSS JOIN LATERAL (SELECT t.version, %[1]s AS data FROM %[2]s t WHERE t.id = p.id OFFSET 0) AS x`,
			ent.data, ent.table, params, pred, ent.alive), id.UserID, id.BranchID, e.cfg.ScopeWindow, e.sqlNow(), c.lastID, want)
		if err != nil {
			return 0, c, false, fmt.Errorf("snapshot %s: %w", typ, err)
		}
		n := 0
		for rows.Next() {
			ch := Change{Type: typ, Op: "upsert"}
			var data []byte
			if err := rows.Scan(&ch.ID, &ch.Version, &data); err != nil {
				rows.Close()
				return 0, c, false, fmt.Errorf("snapshot %s: %w", typ, err)
			}
			ch.Data = data
			if err := emit(ch); err != nil {
				rows.Close()
				return 0, c, false, err
			}
			if bytes.Compare(ch.ID[:], c.lastID[:]) > 0 {
				c.lastID = ch.ID // uuid order is byte order, in PostgreSQL as here
			}
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, c, false, fmt.Errorf("snapshot %s: %w", typ, err)
		}
		emitted += n
		if n < want {
			c.typeIdx++
			c.lastID = uuid.Nil
		}
	}
	if c.typeIdx < len(snapshotOrder) {
		return emitted, c, true, nil
	}
	// The snapshot is complete. From here on the device follows the change log, from the oldest
	// transaction that was running when the snapshot began: whatever it may have missed.
	next := cursor{user: c.user, role: c.role, xid: c.xid}
	var more bool
	err := e.db.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM changes c WHERE c.branch_id = $1 AND (c.xid, c.version) > ($2::text::xid8, 0)
			AND c.xid < pg_snapshot_xmin(pg_current_snapshot()))`, id.BranchID, xid8(c.xid)).Scan(&more)
	if err != nil {
		return 0, c, false, fmt.Errorf("look for changes after the snapshot: %w", err)
	}
	return emitted, next, more, nil
}

// pageQuery returns the query that turns a page of change-log rows into the records to send, in
// the order of the log, for role: each record once, its current state, and whether the caller's
// scope holds it.
func pageQuery(role string) (string, error) {
	var branches []string
	for _, typ := range snapshotOrder {
		ent := entities[typ]
		pred, err := scopeOf(role, typ)
		if err != nil {
			return "", err
		}
		branches = append(branches, fmt.Sprintf(`SELECT t.version, %s AS data, (%s) AS visible, (%s) AS alive FROM %s t WHERE d.type = '%s' AND t.id = d.id`,
			ent.data, pred, ent.alive, ent.table, typ))
	}
	return `
		WITH page AS (SELECT * FROM unnest($5::int[], $6::text[], $7::uuid[], $8::text[]) AS p(pos, type, id, op)),
		cand AS (
			SELECT pos, type, id, false AS leaving FROM page WHERE op IN ('upsert', 'delete')
			UNION ALL
			SELECT p.pos, dep.type, dep.id, p.op = 'leave' FROM page p
			CROSS JOIN LATERAL (` + dependents + `) AS dep(type, id)
			WHERE p.op IN ('enter', 'leave')
		),
		dedup AS (SELECT type, id, min(pos) AS pos, bool_or(leaving) AS leaving FROM cand WHERE id IS NOT NULL GROUP BY type, id)
		SELECT d.type, d.id, x.version, x.data, x.visible, x.alive, d.leaving
		FROM dedup d, ` + params + `
		CROSS JOIN LATERAL (` + strings.Join(branches, "\n UNION ALL ") + `) AS x
		ORDER BY d.pos`, nil
}

var pageQueries = func() map[string]string {
	m := map[string]string{}
	for role := range pullRoles {
		q, err := pageQuery(role)
		if err != nil {
			panic(err)
		}
		m[role] = q
	}
	return m
}()

func (e *Engine) changesPage(ctx context.Context, id *fieldsync.Identity, c cursor, limit int, emit func(Change) error) (int, cursor, bool, error) {
	rows, err := e.db.Query(ctx, `
		SELECT c.xid::text, c.version, c.entity_type, c.entity_id, c.op FROM changes c
		WHERE c.branch_id = $1 AND (c.xid, c.version) > ($2::text::xid8, $3::bigint)
			AND c.xid < pg_snapshot_xmin(pg_current_snapshot())
			AND (c.op IN ('upsert', 'delete') OR c.target_user_id = $4 OR c.target_role = $5)
		ORDER BY c.xid, c.version
		LIMIT $6`, id.BranchID, xid8(c.xid), c.version, id.UserID, id.Role, limit)
	if err != nil {
		return 0, c, false, fmt.Errorf("read change log: %w", err)
	}
	var pos []int32
	var types, ops []string
	var ids []uuid.UUID
	next := c
	for rows.Next() {
		var xid, typ, op string
		var entityID uuid.UUID
		if err := rows.Scan(&xid, &next.version, &typ, &entityID, &op); err != nil {
			rows.Close()
			return 0, c, false, fmt.Errorf("read change log: %w", err)
		}
		if next.xid, err = strconv.ParseUint(xid, 10, 64); err != nil {
			rows.Close()
			return 0, c, false, fmt.Errorf("read change log: xid %q: %w", xid, err)
		}
		pos = append(pos, int32(len(pos)))
		types, ids, ops = append(types, typ), append(ids, entityID), append(ops, op)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, c, false, fmt.Errorf("read change log: %w", err)
	}
	if len(pos) == 0 {
		return 0, c, false, nil
	}
	more := len(pos) == limit

	rows, err = e.db.Query(ctx, pageQueries[id.Role], id.UserID, id.BranchID, e.cfg.ScopeWindow, e.sqlNow(), pos, types, ids, ops)
	if err != nil {
		return 0, c, false, fmt.Errorf("read page records: %w", err)
	}
	defer rows.Close()
	emitted := 0
	for rows.Next() {
		var ch Change
		var data []byte
		var visible, alive, leaving bool
		if err := rows.Scan(&ch.Type, &ch.ID, &ch.Version, &data, &visible, &alive, &leaving); err != nil {
			return 0, c, false, fmt.Errorf("read page records: %w", err)
		}
		switch {
		case visible && alive:
			ch.Op, ch.Data = "upsert", data
		case visible || (leaving && !alive):
			ch.Op, ch.Reason, ch.Version = "delete", "deleted", 0
		case leaving:
			ch.Op, ch.Reason, ch.Version = "delete", "out_of_scope", 0
		default:
			continue // never in this caller's scope
		}
		if err := emit(ch); err != nil {
			return 0, c, false, err
		}
		emitted++
	}
	if err := rows.Err(); err != nil {
		return 0, c, false, fmt.Errorf("read page records: %w", err)
	}
	return emitted, next, more, nil
}
