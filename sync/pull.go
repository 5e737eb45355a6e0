package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/internal/branchwake"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
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

// Pull is PullPage for callers that need only the cursor and whether more is waiting.
func (e *Engine) Pull(ctx context.Context, id *fieldsync.Identity, req PullRequest, emit func(Change) error) (string, bool, error) {
	p, err := e.PullPage(ctx, id, req, emit)
	return p.Cursor, p.HasMore, err
}

// PullEnd is how a pull page ends: the cursor to continue from, whether more is waiting, and, when
// known, an estimate of what is still to come (docs/protocol.md §4).
type PullEnd struct {
	Cursor  string
	HasMore bool
	// Remaining estimates the records still to come: during a snapshot, the records the caller's
	// scope held when it began less those sent since (counted once, at its first page, and carried
	// in the cursor); 0 on a page with nothing more after it; nil otherwise (following the change
	// log with more waiting: counting it would cost a read of the backlog at every page).
	Remaining *int64
}

// endPage is the PullEnd of a page that ends at c.
func endPage(c cursor, more bool) PullEnd {
	p := PullEnd{Cursor: c.String(), HasMore: more}
	switch {
	case !more:
		p.Remaining = new(int64)
	case c.snapshot:
		left := max(c.total-c.sent, 0)
		p.Remaining = &left
	}
	return p
}

// PullPage sends the caller's changes since req.Cursor to emit, oldest first, one page, and
// returns the cursor to continue from and whether more is waiting. Without a cursor it walks a
// snapshot of the caller's whole scope. When nothing is new and req.Wait is set, it waits for a
// commit in the caller's branch (on any replica) or for the wait to end. Records are streamed from
// the database to emit one by one, so memory does not grow with the page.
func (e *Engine) PullPage(ctx context.Context, id *fieldsync.Identity, req PullRequest, emit func(Change) error) (PullEnd, error) {
	if !pullRoles[id.Role] {
		return PullEnd{}, fieldsync.Errorf(fieldsync.EFORBIDDEN, "forbidden", "The %s role does not sync.", id.Role)
	}
	limit := req.Limit
	switch {
	case limit == 0:
		limit = DefaultPullLimit
	case limit < 0:
		return PullEnd{}, fieldsync.InvalidField("limit", "limit must be positive.")
	case limit > e.cfg.MaxPullLimit:
		limit = e.cfg.MaxPullLimit
	}
	wait := min(max(req.Wait, 0), e.cfg.MaxWait)

	var c cursor
	var db querier = e.read
	if req.Cursor == "" {
		xmin, err := e.currentXmin(ctx, db)
		if err != nil {
			return PullEnd{}, err
		}
		total, err := e.scopeSize(ctx, db, id)
		if err != nil {
			return PullEnd{}, err
		}
		c = cursor{user: id.UserID, role: id.Role, snapshot: true, xid: xmin, total: total}
	} else {
		var err error
		if c, err = parseCursor(req.Cursor, id); err != nil {
			return PullEnd{}, err
		}
		if db, err = e.pageDB(ctx, c); err != nil {
			return PullEnd{}, err
		}
	}

	deadline := time.NewTimer(jittered(wait))
	defer deadline.Stop()
	backoff := 25 * time.Millisecond
	var watcher *branchwake.Watcher
	if wait > 0 && !c.snapshot {
		release, err := e.waits.Acquire(id.UserID, "long-polls")
		if err != nil {
			return PullEnd{}, err
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
		emitted, next, more, pending, err := e.look(ctx, db, id, req, c, limit, emit, watcher != nil, waited)
		if err != nil {
			return PullEnd{}, err
		}
		if emitted > 0 || more || wait == 0 || c.snapshot {
			return endPage(next, more), nil
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
					return PullEnd{}, err
				}
			}
			return endPage(c, false), nil
		case <-ctx.Done():
			return PullEnd{}, ctx.Err()
		}
		waited = true
	}
}

// waitJitter is the most an empty long-poll's answer comes before its wait runs out.
const waitJitter = 5 * time.Second

// jittered is the time a long-poll with nothing to serve is held: its wait, less a random part
// of up to a fifth of it (at most waitJitter). Devices that started waiting together (a shift
// starting, the network coming back) would otherwise come back together at every wait, each
// wave of re-polls taking the database pool from the writers at once; the protocol lets the
// server answer before the wait runs out.
func jittered(wait time.Duration) time.Duration {
	spread := min(wait/5, waitJitter)
	if spread <= 0 {
		return wait
	}
	return wait - rand.N(spread)
}

// scopeSize counts the records the caller's scope holds, for a snapshot's estimate of what is
// left (PullEnd.Remaining): once per snapshot, with the snapshot's own predicates, reading ids only.
func (e *Engine) scopeSize(ctx context.Context, db querier, id *fieldsync.Identity) (int64, error) {
	var counts []string
	for _, typ := range snapshotOrder {
		ent := entities[typ]
		pred, err := scopeOf(id.Role, typ)
		if err != nil {
			return 0, err
		}
		counts = append(counts, fmt.Sprintf(`(SELECT count(*) FROM %s t WHERE (%s) AND %s)`, ent.table, pred, ent.alive))
	}
	var n int64
	err := db.QueryRow(ctx, `SELECT `+strings.Join(counts, " + ")+` FROM `+params,
		id.UserID, id.BranchID, e.cfg.ScopeWindow, e.sqlNow()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count the scope: %w", err)
	}
	return n, nil
}

// look is one look at the log for Pull: the session rechecked if the pull waited, a page, and
// when it is empty and the pull waits, whether a change is pending behind an open transaction. A
// long-poll's look takes one of the engine's looks first: its first look one of looks, a look
// after it waited (woken, or looking again for a pending change) one of wokenLooks.
func (e *Engine) look(ctx context.Context, db querier, id *fieldsync.Identity, req PullRequest, c cursor, limit int, emit func(Change) error,
	longPoll, waited bool) (emitted int, next cursor, more, pending bool, err error) {
	if longPoll {
		sem := e.looks
		if waited {
			sem = e.wokenLooks
		}
		if err := sem.Acquire(ctx, 1); err != nil {
			return 0, c, false, false, err
		}
		defer sem.Release(1)
	}
	if waited && req.RecheckFunc != nil {
		if err := req.RecheckFunc(ctx); err != nil {
			return 0, c, false, false, err
		}
	}
	emitted, next, more, err = e.pullPage(ctx, db, id, c, limit, emit)
	if err != nil || emitted > 0 || more || !longPoll {
		return emitted, next, more, false, err
	}
	pending, err = e.pendingBehindXmin(ctx, id, next)
	return emitted, next, more, pending, err
}

func (e *Engine) currentXmin(ctx context.Context, db querier) (uint64, error) {
	var s string
	if err := db.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text`).Scan(&s); err != nil {
		return 0, fmt.Errorf("read snapshot: %w", err)
	}
	return strconv.ParseUint(s, 10, 64)
}

// querier is a database a pull reads: the primary's pool or a standby's.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// pageDB returns the database the pages after c are read from (e.read unless it cannot serve c
// yet, then the primary), or cursor_expired if c cannot be served at all.
//
// A page is read up to the oldest transaction still running where it is read (its xmin): every
// transaction below it has ended, so all of their changes are there. A hot standby's snapshots
// keep that rule: it replays commits in the primary's order, and counts a transaction it has not
// seen end as running. A page read on a standby is therefore one the primary could have served a
// moment earlier, and a cursor it makes can only be behind, never past a commit.
//
// What a lagging standby cannot do is serve a cursor made further on than it has replayed: one
// from the primary, or from another replica's standby that is ahead (a device moves between
// replicas). Its xmin is then at or below the cursor's xid. A page of the change log would come
// back empty, which is safe but holds the device back by the lag, and a long-poll would go to
// sleep on a change the primary has announced; a snapshot page would be wrong: records older than
// the snapshot's start, whose changes the log after the snapshot does not send again. So a standby
// serves a cursor only once it has replayed past it, and until then the primary serves that
// device. Waiting for the standby instead would hold a device for a lag with no bound; falling back
// costs the primary one pull for each device caught out, which is rare, because a cursor the
// standby served is one it has replayed past, and a standby only moves forward.
func (e *Engine) pageDB(ctx context.Context, c cursor) (querier, error) {
	ahead, err := e.checkServable(ctx, e.read, c)
	switch {
	case err != nil:
		return nil, err
	case !ahead:
		return e.read, nil
	case !e.standby:
		return nil, errCursorExpired // past the primary's own present: made up
	}
	if ahead, err = e.checkServable(ctx, e.db, c); err != nil {
		return nil, err
	}
	if ahead {
		return nil, errCursorExpired
	}
	return e.db, nil
}

// checkServable returns cursor_expired if changes the cursor still needs were pruned (on db), and
// reports whether the cursor is ahead of db: past the oldest transaction running there, or past
// the last version db has handed out. On the primary, no cursor the server made can be (a
// snapshot's starts at the oldest running transaction, a change's is below it), so one that is,
// is made up, and would skip every change until the server caught up with it: cursor_expired. On
// a standby it is a cursor made further on than the standby has replayed (pageDB).
func (e *Engine) checkServable(ctx context.Context, db querier, c cursor) (ahead bool, err error) {
	var pruned bool
	err = db.QueryRow(ctx, `
		SELECT s.pruned_through_xid >= $1::text::xid8,
			$1::text::xid8 > pg_snapshot_xmin(pg_current_snapshot())
			OR $2::bigint > (SELECT last_value FROM change_version_seq)
		FROM sync_settings s`, xid8(c.xid), c.version).Scan(&pruned, &ahead)
	if err != nil {
		return false, fmt.Errorf("read pruning horizon: %w", err)
	}
	if pruned {
		return false, errCursorExpired
	}
	return ahead, nil
}

// pendingBehindXmin reports whether the log holds, past c, a change a page for id would read. Called
// after a page that read every change it could serve, it finds those that were behind an open
// transaction when the page was read. Whether they are still behind it does not matter: one that
// became servable between the page and this look had its commit announced already, and waiting for
// the next announcement could sleep through the whole wait.
//
// It asks the primary, even when the pages come from a standby: the change whose commit woke a
// long-poll may not have been replayed there yet, and a look at the standby would put the
// long-poll back to sleep with the change on its way. The primary has it, so the long-poll looks
// again shortly, and is served once the standby has it.
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
func (e *Engine) pullPage(ctx context.Context, db querier, id *fieldsync.Identity, c cursor, limit int, emit func(Change) error) (int, cursor, bool, error) {
	if c.snapshot {
		return e.snapshotPage(ctx, db, id, c, limit, emit)
	}
	return e.changesPage(ctx, db, id, c, limit, emit)
}

// params is joined into every scope query so that each of its parameters has a type, whichever
// of them the query's predicates use.
const params = `(SELECT $1::uuid AS me, $2::uuid AS branch, $3::interval AS win, $4::timestamptz AS asof) AS params`

func (e *Engine) snapshotPage(ctx context.Context, db querier, id *fieldsync.Identity, c cursor, limit int, emit func(Change) error) (int, cursor, bool, error) {
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
		rows, err := db.Query(ctx, fmt.Sprintf(`
			WITH page AS MATERIALIZED (SELECT t.id FROM %[2]s t, %[3]s WHERE (%[4]s) AND %[5]s AND t.id > $5 ORDER BY t.id LIMIT $6)
			SELECT p.id, x.version, x.data FROM page p
			CROSS JOIN LATERAL (SELECT t.version, %[1]s AS data FROM %[2]s t WHERE t.id = p.id OFFSET 0) AS x`,
			ent.wire, ent.table, params, pred, ent.alive), id.UserID, id.BranchID, e.cfg.ScopeWindow, e.sqlNow(), c.lastID, want)
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
		c.sent += int64(n)
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
	err := db.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM changes c WHERE c.branch_id = $1 AND (c.xid, c.version) > ($2::text::xid8, 0)
			AND c.xid < pg_snapshot_xmin(pg_current_snapshot()))`, id.BranchID, xid8(c.xid)).Scan(&more)
	if err != nil {
		return 0, c, false, fmt.Errorf("look for changes after the snapshot: %w", err)
	}
	return emitted, next, more, nil
}

// pageQuery returns the one statement that reads a page of the change log after a cursor and
// turns it into the records to send, in the order of the log, for role: each record once, its
// current state, and whether the caller's scope holds it. Records no longer in the caller's scope
// and not leaving it are left out. Every row also carries how many log entries the page read and
// the last one's place (the cursor after the page); a page whose entries send nothing is one row
// of those alone. One statement, not a read of the log and then of the records, spares a round
// trip and sending the page's entries back as parameters, which was a quarter of a pull's CPU.
func pageQuery(role string) (string, error) {
	var branches []string
	for _, typ := range snapshotOrder {
		ent := entities[typ]
		pred, err := scopeOf(role, typ)
		if err != nil {
			return "", err
		}
		branches = append(branches, fmt.Sprintf(`SELECT t.version, %s AS data, (%s) AS visible, (%s) AS alive FROM %s t WHERE d.type = '%s' AND t.id = d.id`,
			ent.wire, pred, ent.alive, ent.table, typ))
	}
	return `
		WITH page AS MATERIALIZED (
			SELECT c.xid, c.version, c.entity_type AS type, c.entity_id AS id, c.op,
				row_number() OVER (ORDER BY c.xid, c.version) AS pos
			FROM changes c
			WHERE c.branch_id = $2 AND (c.xid, c.version) > ($5::text::xid8, $6::bigint)
				AND c.xid < pg_snapshot_xmin(pg_current_snapshot())
				AND (c.op IN ('upsert', 'delete') OR c.target_user_id = $1 OR c.target_role = $7)
				-- Pruning may have begun below this cursor since checkServable: the horizon commits
				-- before any deletion, so this statement sees it then, and sends nothing (the next
				-- pull gets 410) rather than a page with a hole.
				AND NOT coalesce((SELECT s.pruned_through_xid >= $5::text::xid8 FROM sync_settings s), false)
			ORDER BY c.xid, c.version
			LIMIT $8
		),
		tail AS (SELECT xid::text AS xid, version, pos AS n FROM page ORDER BY pos DESC LIMIT 1),
		cand AS (
			SELECT pos, type, id, false AS leaving FROM page WHERE op IN ('upsert', 'delete')
			UNION ALL
			SELECT p.pos, dep.type, dep.id, p.op = 'leave' FROM page p
			CROSS JOIN LATERAL (` + dependents + `) AS dep(type, id)
			WHERE p.op IN ('enter', 'leave')
		),
		dedup AS (SELECT type, id, min(pos) AS pos, bool_or(leaving) AS leaving FROM cand WHERE id IS NOT NULL GROUP BY type, id),
		records AS (
			SELECT d.pos, d.type, d.id, x.version, x.data, x.visible, x.alive, d.leaving
			FROM dedup d, ` + params + `
			CROSS JOIN LATERAL (` + strings.Join(branches, "\n UNION ALL ") + `) AS x
			WHERE x.visible OR d.leaving
		)
		SELECT tail.xid, tail.version, tail.n, r.type, r.id, r.version, r.data, r.visible, r.alive, r.leaving
		FROM tail LEFT JOIN records r ON true
		ORDER BY r.pos`, nil
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

func (e *Engine) changesPage(ctx context.Context, db querier, id *fieldsync.Identity, c cursor, limit int, emit func(Change) error) (int, cursor, bool, error) {
	rows, err := db.Query(ctx, pageQueries[id.Role], id.UserID, id.BranchID, e.cfg.ScopeWindow, e.sqlNow(),
		xid8(c.xid), c.version, id.Role, limit)
	if err != nil {
		return 0, c, false, fmt.Errorf("read changes: %w", err)
	}
	defer rows.Close()
	next := c
	var read int64
	emitted, first := 0, true
	for rows.Next() {
		var xid string
		var typ *string
		var ch Change
		var data []byte
		var visible, alive, leaving *bool
		var version *int64
		if err := rows.Scan(&xid, &next.version, &read, &typ, &ch.ID, &version, &data, &visible, &alive, &leaving); err != nil {
			return 0, c, false, fmt.Errorf("read changes: %w", err)
		}
		if first { // the same on every row
			if next.xid, err = strconv.ParseUint(xid, 10, 64); err != nil {
				return 0, c, false, fmt.Errorf("read changes: xid %q: %w", xid, err)
			}
			first = false
		}
		if typ == nil {
			continue // a page whose entries send nothing
		}
		ch.Type = *typ
		switch {
		case *visible && *alive:
			ch.Op, ch.Data = "upsert", data
			if version != nil {
				ch.Version = *version
			}
		case *visible || (*leaving && !*alive):
			ch.Op, ch.Reason = "delete", "deleted"
		default: // leaving
			ch.Op, ch.Reason = "delete", "out_of_scope"
		}
		if err := emit(ch); err != nil {
			return 0, c, false, err
		}
		emitted++
	}
	if err := rows.Err(); err != nil {
		return 0, c, false, fmt.Errorf("read changes: %w", err)
	}
	return emitted, next, read == int64(limit), nil
}
