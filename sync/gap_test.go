package sync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The gap tests check docs/protocol.md's "no gaps, ever": a change that commits is delivered to every
// client whose scope it touches before any cursor that is past it, however transactions
// interleave and commit. Writers commit in shuffled order (some hold their transaction open a
// while after writing, others commit at once, some roll back) while readers pull in a loop; every
// writer transaction records the (xid, version) of each change it made, and the checker then
// replays each reader's history: whenever a reader's cursor was past a committed change, the
// change (that record at that version or a later one) must already have been delivered to it.
//
// The same harness runs a naive reader that uses the change log's version sequence as its cursor
// (SELECT ... WHERE version > $last ORDER BY version): the checker catches it losing changes,
// which shows the harness is strong enough to catch the bug it exists for.

// gapChange is one change a writer's transaction made: the record, and its place in the log.
type gapChange struct {
	key string // type:id
	pos logPos // (the transaction's xid, the version the triggers gave the record)
}

// gapTx is one writer transaction and how it ended.
type gapTx struct {
	changes   []gapChange
	committed bool
}

// gapDelivery is a record a reader was sent: at which version, by its pull number pull.
type gapDelivery struct {
	pull    int
	version int64
}

// gapReader is what one reader saw, pull by pull.
type gapReader struct {
	name string
	// inScope says whether the reader's scope holds the record (type:id).
	inScope func(key string) bool
	// passes says whether a cursor at cur is past a change at c.
	passes func(cur, c logPos) bool
	// cursors[i] is where the cursor stood after pull i; snapshot[i] is true while the reader
	// was still walking its first snapshot (then the cursor is past nothing yet).
	cursors  []logPos
	snapshot []bool
	// delivered holds, per record, what it was sent, in pull order.
	delivered map[string][]gapDelivery
}

func newGapReader(name string, inScope func(string) bool, passes func(cur, c logPos) bool) *gapReader {
	return &gapReader{name: name, inScope: inScope, passes: passes, delivered: map[string][]gapDelivery{}}
}

func (r *gapReader) deliver(key string, version int64) {
	r.delivered[key] = append(r.delivered[key], gapDelivery{pull: len(r.cursors), version: version})
}

// endPull records the cursor after the pull whose deliveries were just recorded.
func (r *gapReader) endPull(pos logPos, snapshot bool) {
	r.cursors = append(r.cursors, pos)
	r.snapshot = append(r.snapshot, snapshot)
}

// gapVerdict is what the checker found for one reader.
type gapVerdict struct {
	changes int // committed changes in the reader's scope
	// gaps are changes the cursor passed before the change was delivered (the bug docs/protocol.md §4 warns of).
	gaps int
	// lost are changes never delivered at all, not even by a later version of the record.
	lost     int
	examples []string
}

// check replays the reader's history against every writer transaction.
func (r *gapReader) check(txs []*gapTx) gapVerdict {
	var v gapVerdict
	for _, tx := range txs {
		if !tx.committed {
			continue
		}
		for _, c := range tx.changes {
			if !r.inScope(c.key) {
				continue
			}
			v.changes++
			deliveredAt := -1
			for _, d := range r.delivered[c.key] {
				if d.version >= c.pos.version {
					deliveredAt = d.pull
					break
				}
			}
			passedAt := -1
			for i, cur := range r.cursors {
				if !r.snapshot[i] && r.passes(cur, c.pos) {
					passedAt = i
					break
				}
			}
			switch {
			case deliveredAt == -1:
				v.lost++
				if len(v.examples) < 5 {
					v.examples = append(v.examples, fmt.Sprintf("%s at %v never delivered", c.key, c.pos))
				}
			case passedAt != -1 && passedAt < deliveredAt:
				v.gaps++
				if len(v.examples) < 5 {
					v.examples = append(v.examples, fmt.Sprintf("%s at %v: cursor %v (pull %d) passed it before it was delivered (pull %d)",
						c.key, c.pos, r.cursors[passedAt], passedAt, deliveredAt))
				}
			}
		}
	}
	return v
}

// gapWorld is the branch the writers write to: tasks, customers and the notes writers add.
type gapWorld struct {
	f       *engineFixture
	manager *fieldsync.Identity
	reps    []*fieldsync.Identity
	// tasks and customers, with the rep each task is assigned to and the customer of its claim.
	tasks     []uuid.UUID
	customers []uuid.UUID
	taskRep   map[uuid.UUID]uuid.UUID
	taskCust  map[uuid.UUID]uuid.UUID
	// noteTask maps each note a writer made to its task, for scope; guarded by mu.
	mu       gosync.Mutex
	noteTask map[uuid.UUID]uuid.UUID
}

func newGapWorld(t *testing.T, f *engineFixture, customers int) *gapWorld {
	w := &gapWorld{f: f, manager: f.newUser(t, fieldsync.RoleManager, ""), taskRep: map[uuid.UUID]uuid.UUID{},
		taskCust: map[uuid.UUID]uuid.UUID{}, noteTask: map[uuid.UUID]uuid.UUID{}}
	for range 3 {
		w.reps = append(w.reps, f.newUser(t, fieldsync.RoleRep, "hospital"))
	}
	for i := range customers {
		cust := f.newCustomer(t, uuid.Nil)
		w.customers = append(w.customers, cust)
		claim := f.newClaim(t, cust, "reported")
		for j := range 2 {
			rep := w.reps[(2*i+j)%len(w.reps)].UserID
			task := f.newTask(t, claim, rep)
			w.tasks = append(w.tasks, task)
			w.taskRep[task], w.taskCust[task] = rep, cust
		}
	}
	return w
}

// repScope says which records (type:id) the writers touch that rep holds: their tasks, the notes
// of those, and the customers of their tasks' claims. The writers move nothing in or out of scope.
func (w *gapWorld) repScope(rep uuid.UUID) func(string) bool {
	tasks, customers := map[string]bool{}, map[string]bool{}
	for task, r := range w.taskRep {
		if r == rep {
			tasks[task.String()] = true
			customers[w.taskCust[task].String()] = true
		}
	}
	return func(key string) bool {
		typ, id := key[:len(key)-37], key[len(key)-36:]
		switch typ {
		case sync.TypeTask:
			return tasks[id]
		case sync.TypeCustomer:
			return customers[id]
		case sync.TypeTaskNote:
			w.mu.Lock()
			defer w.mu.Unlock()
			return tasks[w.noteTask[uuid.MustParse(id)].String()]
		}
		return false
	}
}

// gapWriterConfig shapes the writers' transactions.
type gapWriterConfig struct {
	writers, txPerWriter   int
	holdProb, rollbackProb float64
	maxHold                time.Duration
}

// runWriters runs cfg.writers writers, each with its own share of the records (so they never
// wait for each other's row locks), and returns every transaction they ran.
func (w *gapWorld) runWriters(t *testing.T, seed uint64, cfg gapWriterConfig) []*gapTx {
	var mu gosync.Mutex
	var all []*gapTx
	var wg gosync.WaitGroup
	errs := make(chan error, cfg.writers)
	for n := range cfg.writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(n)))
			var tasks, customers []uuid.UUID
			for i, task := range w.tasks {
				if i%cfg.writers == n {
					tasks = append(tasks, task)
				}
			}
			for i, c := range w.customers {
				if i%cfg.writers == n {
					customers = append(customers, c)
				}
			}
			for range cfg.txPerWriter {
				tx, err := w.writeTx(rng, tasks, customers, cfg)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				all = append(all, tx)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return all
}

// writeTx runs one transaction of one to three record writes: begin, write, perhaps hold the
// transaction open a while and write again, then commit (or roll back).
func (w *gapWorld) writeTx(rng *rand.Rand, tasks, customers []uuid.UUID, cfg gapWriterConfig) (*gapTx, error) {
	ctx := context.Background()
	tx, err := w.f.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var xidText string
	if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id()::text`).Scan(&xidText); err != nil {
		return nil, err
	}
	xid, err := strconv.ParseUint(xidText, 10, 64)
	if err != nil {
		return nil, err
	}
	out := &gapTx{}
	hold := rng.Float64() < cfg.holdProb
	writes := 1 + rng.IntN(3)
	for i := range writes {
		if hold && i == writes-1 {
			time.Sleep(time.Duration(rng.Int64N(int64(cfg.maxHold))))
		}
		c, err := w.writeOne(ctx, tx, rng, tasks, customers)
		if err != nil {
			return nil, err
		}
		c.pos.xid = xid
		out.changes = append(out.changes, c)
	}
	if hold {
		time.Sleep(time.Duration(rng.Int64N(int64(cfg.maxHold))))
	}
	if rng.Float64() < cfg.rollbackProb {
		return out, tx.Rollback(ctx)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	out.committed = true
	return out, nil
}

func (w *gapWorld) writeOne(ctx context.Context, tx pgx.Tx, rng *rand.Rand, tasks, customers []uuid.UUID) (gapChange, error) {
	var c gapChange
	var err error
	switch rng.IntN(3) {
	case 0:
		task := tasks[rng.IntN(len(tasks))]
		c.key = sync.TypeTask + ":" + task.String()
		err = tx.QueryRow(ctx, `UPDATE tasks SET title = $2 WHERE id = $1 RETURNING version`, task, "Visit "+uuid.NewString()).Scan(&c.pos.version)
	case 1:
		cust := customers[rng.IntN(len(customers))]
		c.key = sync.TypeCustomer + ":" + cust.String()
		err = tx.QueryRow(ctx, `UPDATE customers SET phone = $2 WHERE id = $1 RETURNING version`, cust, fmt.Sprintf("+1 555 %07d", rng.IntN(1e7))).Scan(&c.pos.version)
	default:
		task, note := tasks[rng.IntN(len(tasks))], uuid.New()
		w.mu.Lock()
		w.noteTask[note] = task
		w.mu.Unlock()
		c.key = sync.TypeTaskNote + ":" + note.String()
		err = tx.QueryRow(ctx, `INSERT INTO task_notes (id, task_id, branch_id, author_id, body) VALUES ($1, $2, $3, $4, 'seen') RETURNING version`,
			note, task, w.f.branch, w.taskRep[task]).Scan(&c.pos.version)
	}
	if err != nil {
		return c, fmt.Errorf("write %s: %w", c.key, err)
	}
	return c, nil
}

// pullLoop is an engine reader (a device): from a fresh snapshot, it pulls with varied page
// sizes, some pulls long polls, each through one of engines at random, until the writers are
// done and it has caught up with the last change they made. held, if not nil, keeps the records
// it is sent (upserts in, deletes out).
func pullLoop(id *fieldsync.Identity, r *gapReader, engines []*sync.Engine, held map[string]json.RawMessage,
	rng *rand.Rand, done <-chan logPos) error {
	limits := []int{1, 3, 7, 50, 500}
	cursor := ""
	var target *logPos
	for {
		if target == nil {
			select {
			case pos := <-done:
				target = &pos
			default:
			}
		}
		req := sync.PullRequest{Cursor: cursor, Limit: limits[rng.IntN(len(limits))]}
		if rng.IntN(5) == 0 {
			req.Wait = 100 * time.Millisecond // a long poll, woken by commits
		}
		e := engines[rng.IntN(len(engines))]
		next, more, err := e.Pull(context.Background(), id, req, func(ch sync.Change) error {
			key := ch.Type + ":" + ch.ID.String()
			if ch.Op == "upsert" {
				r.deliver(key, ch.Version)
			}
			if held != nil {
				if ch.Op == "upsert" {
					held[key] = ch.Data
				} else {
					delete(held, key)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("%s: pull: %w", r.name, err)
		}
		cursor = next
		snapshot, xid, version, err := sync.CursorPosition(cursor, id)
		if err != nil {
			return err
		}
		pos := logPos{xid, version}
		if n := len(r.cursors); n > 0 && !snapshot && !r.snapshot[n-1] && pos.less(r.cursors[n-1]) {
			return fmt.Errorf("%s: cursor went back from %v to %v", r.name, r.cursors[n-1], pos)
		}
		r.endPull(pos, snapshot)
		if target != nil && !more && !snapshot && !pos.less(*target) {
			return nil
		}
		if !more {
			time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
		}
	}
}

// naiveLoop is the reader docs/protocol.md warns about: its cursor is the highest change version it
// has read, so a transaction that took a version earlier but commits later is skipped forever.
func (w *gapWorld) naiveLoop(r *gapReader, rng *rand.Rand, done <-chan logPos) error {
	ctx := context.Background()
	var last int64
	var target *logPos
	for {
		if target == nil {
			select {
			case pos := <-done:
				target = &pos
			default:
			}
		}
		rows, err := w.f.pool.Query(ctx, `SELECT version, entity_type || ':' || entity_id FROM changes
			WHERE branch_id = $1 AND op IN ('upsert', 'delete') AND version > $2 ORDER BY version LIMIT $3`, w.f.branch, last, 1+rng.IntN(50))
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			var version int64
			var key string
			if err := rows.Scan(&version, &key); err != nil {
				rows.Close()
				return err
			}
			r.deliver(key, version)
			last = version
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		r.endPull(logPos{version: last}, false)
		if n == 0 {
			if target != nil && last >= target.version {
				return nil
			}
			time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
		}
	}
}

// gapSeed returns the seed of the writers' and readers' choices, from FIELDSYNC_SEED or the clock.
// A seed replays the shape of a run (which records, which transactions held or rolled back), not
// its timing.
func gapSeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("FIELDSYNC_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("FIELDSYNC_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (replay with FIELDSYNC_SEED=%d)", seed, seed)
	return seed
}

// envInt reads a positive whole number from the environment, or returns def.
func envInt(t testing.TB, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive whole number", name, s)
	}
	return n
}

// TestPullHasNoGapsWhileTransactionsCommitOutOfOrder runs writers whose transactions commit in
// shuffled order against readers pulling in a loop: managers (the whole branch) and a rep (their
// tasks, the tasks' notes and customers), from a first snapshot taken while the writers write,
// with page sizes from 1 up. No engine reader may ever have its cursor pass a change it was not
// yet sent, and each ends with every record's last version. A naive sequence-cursor reader in the
// same run must be caught losing changes, or the harness proves nothing.
func TestPullHasNoGapsWhileTransactionsCommitOutOfOrder(t *testing.T) {
	seed := gapSeed(t)
	cfg := gapWriterConfig{
		writers:      envInt(t, "FIELDSYNC_GAP_WRITERS", 8),
		txPerWriter:  envInt(t, "FIELDSYNC_GAP_TX", 60),
		holdProb:     0.3,
		rollbackProb: 0.1,
		maxHold:      80 * time.Millisecond,
	}
	f := newEngineFixture(t, int32(cfg.writers+8))
	w := newGapWorld(t, f, 24)

	everything := func(string) bool { return true }
	afterPos := func(cur, c logPos) bool { return c.less(cur) || c == cur }
	afterVersion := func(cur, c logPos) bool { return c.version <= cur.version }
	managers := []*gapReader{newGapReader("manager reader 1", everything, afterPos), newGapReader("manager reader 2", everything, afterPos)}
	rep := newGapReader("rep reader", w.repScope(w.reps[0].UserID), afterPos)
	naive := newGapReader("naive sequence-cursor reader", everything, afterVersion)

	type reader struct {
		r    *gapReader
		run  func(rng *rand.Rand, done <-chan logPos) error
		done chan logPos
	}
	readers := []reader{
		{r: managers[0], run: func(rng *rand.Rand, done <-chan logPos) error {
			return pullLoop(w.manager, managers[0], []*sync.Engine{w.f.engine}, nil, rng, done)
		}},
		{r: managers[1], run: func(rng *rand.Rand, done <-chan logPos) error {
			return pullLoop(w.manager, managers[1], []*sync.Engine{w.f.engine}, nil, rng, done)
		}},
		{r: rep, run: func(rng *rand.Rand, done <-chan logPos) error {
			return pullLoop(w.reps[0], rep, []*sync.Engine{w.f.engine}, nil, rng, done)
		}},
		{r: naive, run: func(rng *rand.Rand, done <-chan logPos) error { return w.naiveLoop(naive, rng, done) }},
	}
	var wg gosync.WaitGroup
	errs := make(chan error, len(readers))
	var running atomic.Int32
	for i := range readers {
		readers[i].done = make(chan logPos, 1)
		wg.Add(1)
		running.Add(1)
		go func() {
			defer wg.Done()
			defer running.Add(-1)
			if err := readers[i].run(rand.New(rand.NewPCG(seed, 1000+uint64(i))), readers[i].done); err != nil {
				errs <- err
			}
		}()
	}

	start := time.Now()
	txs := w.runWriters(t, seed, cfg)
	writing := time.Since(start)
	// Every writer has committed or rolled back: each reader now pulls until its cursor is past
	// the last change it reads.
	readers[0].done <- f.lastLogPos(t, w.manager)
	readers[1].done <- f.lastLogPos(t, w.manager)
	readers[2].done <- f.lastLogPos(t, w.reps[0])
	var maxVersion int64
	if err := f.pool.QueryRow(context.Background(), `SELECT max(version) FROM changes WHERE branch_id = $1`, f.branch).Scan(&maxVersion); err != nil {
		t.Fatal(err)
	}
	readers[3].done <- logPos{version: maxVersion}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(45 * time.Second):
		t.Fatalf("%d readers still not caught up 45 s after the writers finished", running.Load())
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	committed, rolledBack, changes := 0, 0, 0
	for _, tx := range txs {
		if tx.committed {
			committed++
			changes += len(tx.changes)
		} else {
			rolledBack++
		}
	}
	t.Logf("%d writers: %d transactions (%d committed with %d changes, %d rolled back) in %v",
		cfg.writers, len(txs), committed, changes, rolledBack, writing.Round(time.Millisecond))

	// The records' versions as they are now, for the end state of every engine reader.
	final := map[string]int64{}
	for _, q := range []struct{ typ, sql string }{
		{sync.TypeTask, `SELECT id, version FROM tasks`},
		{sync.TypeCustomer, `SELECT id, version FROM customers`},
		{sync.TypeTaskNote, `SELECT id, version FROM task_notes`},
	} {
		rows, err := f.pool.Query(context.Background(), q.sql)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id uuid.UUID
			var version int64
			if err := rows.Scan(&id, &version); err != nil {
				t.Fatal(err)
			}
			final[q.typ+":"+id.String()] = version
		}
		rows.Close()
	}
	// Versions and notes of rolled-back transactions never existed for anyone.
	rolledBackVersion := map[string]map[int64]bool{}
	for _, tx := range txs {
		if !tx.committed {
			for _, c := range tx.changes {
				if rolledBackVersion[c.key] == nil {
					rolledBackVersion[c.key] = map[int64]bool{}
				}
				rolledBackVersion[c.key][c.pos.version] = true
			}
		}
	}

	for _, r := range []*gapReader{managers[0], managers[1], rep} {
		v := r.check(txs)
		t.Logf("%s: %d pulls, %d committed changes in scope, %d passed before delivery, %d never delivered",
			r.name, len(r.cursors), v.changes, v.gaps, v.lost)
		if v.changes == 0 {
			t.Errorf("%s: no changes in scope: the test checks nothing", r.name)
		}
		if v.gaps > 0 || v.lost > 0 {
			t.Errorf("%s: the cursor moved past changes it had not delivered:\n%v", r.name, v.examples)
		}
		stale := 0
		for key, version := range final {
			if !r.inScope(key) {
				continue
			}
			if got := r.delivered[key]; len(got) == 0 || got[len(got)-1].version != version {
				if stale++; stale <= 5 {
					t.Errorf("%s: %s ends with the deliveries %v, want version %d", r.name, key, got, version)
				}
			}
		}
		if stale > 5 {
			t.Errorf("%s: %d records in all end short of their last version", r.name, stale)
		}
		for key, ds := range r.delivered {
			if _, written := final[key]; written && !r.inScope(key) {
				t.Errorf("%s: was sent %s, which is not in its scope", r.name, key)
			}
			for _, d := range ds {
				if rolledBackVersion[key][d.version] {
					t.Errorf("%s: %s was delivered at version %d, written by a rolled-back transaction", r.name, key, d.version)
				}
			}
		}
	}
	v := naive.check(txs)
	t.Logf("%s: %d pulls, %d committed changes, %d passed before delivery, %d never delivered (e.g. %v)",
		naive.name, len(naive.cursors), v.changes, v.gaps, v.lost, v.examples)
	if v.gaps == 0 && v.lost == 0 {
		t.Errorf("the naive reader lost nothing: the harness does not make transactions commit out of order")
	}
}

// TestNaiveSequenceCursorLosesWhatPullDelivers is the failure mode, step by step: transaction T1
// takes a version and stays open while T2 takes the next one and commits. A reader whose cursor
// is the highest version it has read moves to T2's version and never sees T1's change once T1
// commits; Pull serves neither while T1 is open, then both.
func TestNaiveSequenceCursorLosesWhatPullDelivers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newEngineFixture(t, 8)
	manager := f.newUser(t, fieldsync.RoleManager, "")
	claim := f.newClaim(t, f.newCustomer(t, uuid.Nil), "reported")
	task1, task2 := f.newTask(t, claim, uuid.Nil), f.newTask(t, claim, uuid.Nil)

	seen := map[uuid.UUID]int64{}
	record := func(ch sync.Change) error {
		if ch.Type == sync.TypeTask {
			seen[ch.ID] = ch.Version
		}
		return nil
	}
	cursor := f.pullUntilCaughtUp(t, manager, "", record)
	var naiveLast int64
	if err := f.pool.QueryRow(ctx, `SELECT max(version) FROM changes`).Scan(&naiveLast); err != nil {
		t.Fatal(err)
	}
	naiveSeen := map[uuid.UUID]int64{}
	naivePull := func() {
		rows, err := f.pool.Query(ctx, `SELECT version, entity_id FROM changes WHERE branch_id = $1 AND version > $2 ORDER BY version`, f.branch, naiveLast)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id uuid.UUID
			if err := rows.Scan(&naiveLast, &id); err != nil {
				t.Fatal(err)
			}
			naiveSeen[id] = naiveLast
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}

	retitle := func(tx pgx.Tx, task uuid.UUID) int64 {
		var v int64
		if err := tx.QueryRow(ctx, `UPDATE tasks SET title = $2 WHERE id = $1 RETURNING version`, task, "Retitled "+uuid.NewString()[:8]).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	t1, err := f.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = t1.Rollback(ctx) }()
	v1 := retitle(t1, task1)
	t2, err := f.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v2 := retitle(t2, task2)
	if err := t2.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if v2 <= v1 {
		t.Fatalf("T2's version %d is not after T1's %d", v2, v1)
	}

	naivePull()
	if naiveLast != v2 {
		t.Fatalf("the naive reader's cursor is %d, want T2's version %d", naiveLast, v2)
	}
	// Pull serves nothing past T1 while T1 is open: T2's change waits behind it.
	next, _, err := f.engine.Pull(ctx, manager, sync.PullRequest{Cursor: cursor}, record)
	if err != nil {
		t.Fatal(err)
	}
	if seen[task2] >= v2 || seen[task1] >= v1 {
		t.Fatalf("Pull served a change while an older transaction was open: %v", seen)
	}
	if _, pos := cursorPos(t, next, manager); pos.version >= v1 {
		t.Fatalf("the cursor %v moved past T1's version %d while T1 was open", pos, v1)
	}

	if err := t1.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	naivePull()
	f.pullUntilCaughtUp(t, manager, next, record)

	if _, ok := naiveSeen[task1]; ok {
		t.Fatalf("the naive reader saw T1's change: the construction did not reproduce the gap")
	}
	t.Logf("T1 wrote version %d and committed after T2 (version %d): the naive reader never saw it; Pull delivered both", v1, v2)
	if seen[task1] != v1 || seen[task2] != v2 {
		t.Fatalf("Pull delivered task 1 at %d (want %d) and task 2 at %d (want %d)", seen[task1], v1, seen[task2], v2)
	}
}
