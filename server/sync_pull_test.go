package server_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestSyncCursorExpired: a cursor the server cannot serve is 410 cursor_expired: garbage, another
// user's, or one older than the pruned change log; the client starts again without a cursor.
func TestSyncCursorExpired(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := newConflictFixture(t, b)
	other := b.signIn(t, "rep", "")
	b.pullAll(t, f.rep)
	b.pullAll(t, other)

	raw, err := base64.RawURLEncoding.DecodeString(f.rep.cursor)
	if err != nil {
		t.Fatalf("the cursor is not what this test expects: %v", err)
	}
	tampered := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(raw), "|rep|", "|manager|", 1)))
	for name, cursor := range map[string]string{
		"garbage":          "garbage",
		"not base64":       "!!!",
		"empty parts":      base64.RawURLEncoding.EncodeToString([]byte("1|||||")),
		"over-long":        strings.Repeat("A", 401),
		"another version":  base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(raw), "1|", "9|", 1))),
		"another role":     tampered,
		"another user's":   other.cursor,
		"negative version": base64.RawURLEncoding.EncodeToString([]byte(string(raw[:strings.LastIndexByte(string(raw), '|')]) + "|-1")),
	} {
		t.Run(name, func(t *testing.T) {
			expect(t, b.do(t, "GET", pullPath(cursor, 0, 0), f.rep.token, nil), http.StatusGone, "cursor_expired")
		})
	}
	// Bad parameters are the client's mistake, not an expired cursor.
	for _, q := range []string{"limit=0", "limit=-1", "limit=x", "wait=-1", "wait=x", "wait=3601"} {
		expect(t, b.do(t, "GET", "/v1/sync/pull?"+q, f.rep.token, nil), http.StatusBadRequest, "invalid_value")
	}
	// Limits over the cap are capped, not refused.
	expect(t, b.do(t, "GET", "/v1/sync/pull?limit=1000000", f.rep.token, nil), http.StatusOK, "")

	// The change log was pruned past the cursor.
	old := f.rep.cursor
	b.pushOne(t, f.mgr, "applied", updateOp("task", f.task, b.version(t, "tasks", f.task), syncFields{"title": "After the cursor"}))
	b.waitUntilServable(t)
	if _, err := b.db.Pool.Exec(context.Background(), `UPDATE sync_settings SET pruned_through_xid = (SELECT max(xid) FROM changes)`); err != nil {
		t.Fatal(err)
	}
	expect(t, b.do(t, "GET", pullPath(old, 0, 0), f.rep.token, nil), http.StatusGone, "cursor_expired")
	// Starting again works, snapshot and what follows.
	fresh := &syncUser{token: f.rep.token}
	if data := wantUpsert(t, "fresh snapshot", b.pullAll(t, fresh), "task", f.task); data["title"] != "After the cursor" {
		t.Fatalf("task: %v", data)
	}
	b.pullAll(t, fresh)
}

// TestSyncPruningExpiresOldCursors: the janitor prunes the change log past its retention; a cursor
// that still needed a pruned change gets 410, and a device that starts again is served, snapshot
// and changes after it, without ever meeting 410 itself.
func TestSyncPruningExpiresOldCursors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.useEngine(t, func(s *apptest.Setup) { s.ChangeRetention = time.Millisecond })
	f := newConflictFixture(t, b)
	b.pullAll(t, f.rep)
	behind := f.rep.cursor
	b.pushOne(t, f.mgr, "applied", updateOp("task", f.task, b.version(t, "tasks", f.task), syncFields{"title": "Pruned soon"}))
	b.waitUntilServable(t)
	b.clock.Advance(time.Second) // past the retention
	if err := b.engine.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := b.countRows(t, "changes", "true"); n != 0 {
		t.Fatalf("%d changes left after pruning everything", n)
	}
	expect(t, b.do(t, "GET", pullPath(behind, 0, 0), f.rep.token, nil), http.StatusGone, "cursor_expired")

	fresh := &syncUser{token: f.rep.token}
	if data := wantUpsert(t, "fresh snapshot", b.pullAll(t, fresh), "task", f.task); data["title"] != "Pruned soon" {
		t.Fatalf("task: %v", data)
	}
	b.pushOne(t, f.mgr, "applied", updateOp("task", f.task, b.version(t, "tasks", f.task), syncFields{"title": "After pruning"}))
	if data := wantUpsert(t, "after the snapshot", b.pullAll(t, fresh), "task", f.task); data["title"] != "After pruning" {
		t.Fatalf("task: %v", data)
	}

	// Pruning never reaches a transaction still running, nor past one: while an older transaction
	// is open, a device starting afresh (whose cursor starts at that transaction) is served.
	ctx := context.Background()
	older, err := b.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = older.Rollback(ctx) }()
	if _, err := older.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	b.pushOne(t, f.mgr, "applied", updateOp("task", f.task, b.version(t, "tasks", f.task), syncFields{"title": "While it runs"}))
	b.clock.Advance(time.Second)
	if err := b.engine.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	late := &syncUser{token: f.rep.token}
	p := b.pullOnce(t, late, "", 0)
	wantUpsert(t, "snapshot beside an open transaction", p.Changes, "task", f.task)
	for range 3 {
		p = b.pullOnce(t, late, p.Cursor, 0)
	}
	if err := older.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	late.cursor = p.Cursor
	b.pullAll(t, late)
}

// pollResult is what a long-poll made in the background came back with, and when.
type pollResult struct {
	res response
	err error
	at  time.Time
}

// longPoll starts a pull with wait on base (a server's URL) as u and returns where its answer
// will arrive.
func longPoll(base string, u *syncUser, wait int) <-chan pollResult {
	out := make(chan pollResult, 1)
	go func() {
		res, err := rawGet(base, pullPath(u.cursor, 0, wait), u.token)
		out <- pollResult{res: res, err: err, at: time.Now()}
	}()
	return out
}

// wantWoken waits for a long-poll's answer and fails unless it came well before its wait ran out,
// soon after the change committed at committed became servable, holding the task's change. A
// change is servable once every transaction older than it has ended: other tests' transactions
// on the same database server may hold it back a little, and that is not the poll's doing.
func wantWoken(t *testing.T, b *bundle, poll <-chan pollResult, committed time.Time, task uuid.UUID, title string) {
	t.Helper()
	b.waitUntilServable(t)
	servable := time.Now()
	var r pollResult
	select {
	case r = <-poll:
	case <-time.After(70 * time.Second):
		t.Fatal("the long-poll never answered")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	expect(t, r.res, http.StatusOK, "")
	if took := r.at.Sub(servable); took > 5*time.Second {
		t.Fatalf("the long-poll answered %s after the change became servable (%s after its commit): it was not woken",
			took, servable.Sub(committed))
	}
	page := decodeSyncPage(t, r.res.body)
	if data := wantUpsert(t, "long-poll", page.Changes, "task", task); data["title"] != title {
		t.Fatalf("task: %v", data)
	}
}

// TestSyncLongPollWakesOnCommit: a pull with wait on an up-to-date cursor is held, ignores changes
// outside the caller's scope, and answers as soon as a change in scope commits.
func TestSyncLongPollWakesOnCommit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := newConflictFixture(t, b)
	otherRep := b.signIn(t, "rep", "")
	otherTask := b.newTask(t, f.mgr, f.claim, otherRep.id)
	b.pullAll(t, f.rep)

	// Nothing comes: the wait runs out, with an empty page, within the wait's last fifth
	// (docs/protocol.md §4: spread, so that devices that began together come back apart).
	start := time.Now()
	p := decodeSyncPage(t, b.do(t, "GET", pullPath(f.rep.cursor, 0, 1), f.rep.token, nil).body)
	if len(p.Changes) != 0 || p.HasMore || time.Since(start) < 800*time.Millisecond {
		t.Fatalf("idle long-poll: %+v after %s", p, time.Since(start))
	}
	f.rep.cursor = p.Cursor

	poll := longPoll(b.srv.URL, f.rep, 30)
	time.Sleep(300 * time.Millisecond)
	// Another rep's work wakes the branch's polls, but is not this rep's: the poll goes on.
	b.pushOne(t, f.mgr, "applied", updateOp("task", otherTask, b.version(t, "tasks", otherTask), syncFields{"title": "Not yours"}))
	time.Sleep(500 * time.Millisecond)
	select {
	case r := <-poll:
		t.Fatalf("the long-poll answered before a change in scope: %d %s", r.res.status, r.res.body)
	default:
	}
	b.pushOne(t, f.mgr, "applied", updateOp("task", f.task, b.version(t, "tasks", f.task), syncFields{"title": "Wake up"}))
	wantWoken(t, b, poll, time.Now(), f.task, "Wake up")
}

// TestSyncLongPollWakesAcrossReplicas: the poll is held by one replica and the change is pushed
// through another, over the same database: PostgreSQL's LISTEN/NOTIFY wakes it.
func TestSyncLongPollWakesAcrossReplicas(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := newConflictFixture(t, b)
	pool, err := pgxpool.New(context.Background(), b.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	replica := b.replica(t, overPool(pool)).HTTP
	b.pullAll(t, f.rep)

	poll := longPoll(replica.URL, f.rep, 30)
	time.Sleep(500 * time.Millisecond)
	select {
	case r := <-poll:
		t.Fatalf("the long-poll answered before any change: %d %s", r.res.status, r.res.body)
	default:
	}
	b.pushOne(t, f.mgr, "applied", updateOp("task", f.task, b.version(t, "tasks", f.task), syncFields{"title": "From the other replica"}))
	wantWoken(t, b, poll, time.Now(), f.task, "From the other replica")
}

// TestSyncSnapshotPages: a snapshot in pages of two chains by has_more until false; together the
// pages hold every record of the scope exactly once, what others refer to first; each page says
// how many records are still to come (remaining), none on the last.
func TestSyncSnapshotPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := newConflictFixture(t, b) // users: manager, rep
	task2 := b.newTask(t, f.mgr, f.claim, f.rep.id)
	notes := []uuid.UUID{b.newNote(t, f.rep, f.task), b.newNote(t, f.mgr, task2)}
	doc := b.newDocument(t, f.rep, f.claim, f.task)
	b.newCustomer(t, f.mgr) // not the rep's
	want := map[string][]uuid.UUID{"user": {f.mgr.id, f.rep.id}, "customer": {f.customer}, "claim": {f.claim},
		"task": {f.task, task2}, "task_note": notes, "document": {doc}}

	b.waitUntilServable(t)
	var all []syncChange
	cursor, pages := "", 0
	for {
		p := b.pullOnce(t, f.rep, cursor, 2)
		pages++
		if len(p.Changes) > 2 {
			t.Fatalf("page %d holds %d changes, over the limit", pages, len(p.Changes))
		}
		if p.Cursor == cursor {
			t.Fatalf("page %d did not move the cursor", pages)
		}
		all = append(all, p.Changes...)
		cursor = p.Cursor
		if p.Remaining == nil || *p.Remaining != int64(9-len(all)) {
			t.Fatalf("page %d, after %d of 9 records: remaining %v", pages, len(all), p.Remaining)
		}
		if !p.HasMore {
			break
		}
		if pages > 20 {
			t.Fatal("the snapshot never ended")
		}
	}
	if pages < 5 {
		t.Fatalf("9 records in %d pages of 2", pages)
	}
	seen := map[string]int{}
	for _, ch := range all {
		if ch.Op != "upsert" {
			t.Fatalf("a snapshot holds only upserts: %+v", ch)
		}
		seen[ch.Type+" "+ch.ID.String()]++
	}
	count := 0
	for typ, ids := range want {
		for _, id := range ids {
			if seen[typ+" "+id.String()] != 1 {
				t.Errorf("%s %s seen %d times", typ, id, seen[typ+" "+id.String()])
			}
			count++
		}
	}
	if len(all) != count {
		t.Fatalf("%d changes for %d records: %s", len(all), count, changeSummary(all))
	}
	order := []string{"user", "customer", "claim", "task", "task_note", "document"}
	if !slices.IsSortedFunc(all, func(a, b syncChange) int { return slices.Index(order, a.Type) - slices.Index(order, b.Type) }) {
		t.Fatalf("snapshot order: %s", changeSummary(all))
	}
	// The last cursor follows the change log from the snapshot on: nothing is new.
	if p := b.pullOnce(t, f.rep, cursor, 2); len(p.Changes) != 0 || p.HasMore {
		t.Fatalf("after the snapshot: %+v", p)
	}
}

// TestSyncLongPollServesChangeBehindOpenTransaction: a change that commits while an older
// transaction is still open is not served yet (serving it would let a cursor pass the older one's
// changes); it is served as soon as that transaction ends, to a poll already waiting.
func TestSyncLongPollServesChangeBehindOpenTransaction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := newConflictFixture(t, b)
	b.pullAll(t, f.rep)

	ctx := context.Background()
	older, err := b.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = older.Rollback(ctx) }()                                // committed below; this is for failures
	if _, err := older.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil { // it now holds a transaction id
		t.Fatal(err)
	}
	poll := longPoll(b.srv.URL, f.rep, 30)
	b.pushOne(t, f.mgr, "applied", updateOp("task", f.task, b.version(t, "tasks", f.task), syncFields{"title": "Behind"}))
	time.Sleep(time.Second)
	select {
	case r := <-poll:
		t.Fatalf("served past an open transaction: %d %s", r.res.status, r.res.body)
	default:
	}
	if err := older.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wantWoken(t, b, poll, time.Now(), f.task, "Behind")
}

// TestMetricsOfTheHorizon: /metrics says how old the oldest open transaction is (it holds back
// every pull), how far back the change log reaches, and the retention.
func TestMetricsOfTheHorizon(t *testing.T) {
	t.Parallel()
	b := setup(t)
	newConflictFixture(t, b) // some changes in the log
	tx, err := b.db.Pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck
	if _, err := tx.Exec(context.Background(), `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(2 * time.Hour)
	r := b.do(t, "GET", "/metrics", "", nil)
	expect(t, r, http.StatusOK, "")
	gauge := func(name string) float64 {
		t.Helper()
		for _, line := range strings.Split(string(r.body), "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				x, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				return x
			}
		}
		t.Fatalf("metrics lack %s", name)
		return 0
	}
	if got := gauge("fieldsync_oldest_transaction_age_seconds"); got <= 0 {
		t.Errorf("oldest transaction age %g with one open", got)
	}
	if got := gauge("fieldsync_prune_horizon_age_seconds"); got < 7200 {
		t.Errorf("prune horizon age %g, want at least the 2 h the clock moved", got)
	}
	if got := gauge("fieldsync_retention_seconds"); got <= 0 {
		t.Errorf("retention %g", got)
	}
}
