package sync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The benchmarks put the engine next to raw pgx doing the same work, so that its overhead (the
// rules, idempotency, scope, the savepoint per mutation) shows as a ratio:
//
//	go test -run XXX -bench . -benchtime 30x -count 3 ./sync/
//	FIELDSYNC_BIG=1 go test -run XXX -bench Snapshot -benchtime 3x ./sync/  # and 100,000 records
//
// The goals: a push at least half as fast as raw writes of the same rows, a pull at least 60% as
// fast as a raw read of the same rows' JSON.

// pushBatch is how many mutations one benchmarked push holds: a phone that was offline a while.
const pushBatch = 100

// pushBench is a branch with tasks and customers to update and notes to add, for the manager
// (who may write all of them).
type pushBench struct {
	f         *engineFixture
	manager   *fieldsync.Identity
	tasks     []uuid.UUID
	customers []uuid.UUID
	// versions are the records' versions as the pushing device last saw them.
	versions map[uuid.UUID]int64
	rep      uuid.UUID // every task's assignee
}

func newPushBench(b testing.TB) *pushBench {
	f := newEngineFixture(b, 8)
	p := &pushBench{f: f, manager: f.newUser(b, fieldsync.RoleManager, ""), versions: map[uuid.UUID]int64{}}
	p.rep = f.newUser(b, fieldsync.RoleRep, "hospital").UserID
	for range 40 {
		cust := f.newCustomer(b, uuid.Nil)
		p.customers = append(p.customers, cust)
		claim := f.newClaim(b, cust, "collecting")
		for range 2 {
			p.tasks = append(p.tasks, f.newTask(b, claim, p.rep))
		}
	}
	for _, q := range []string{`SELECT id, version FROM tasks`, `SELECT id, version FROM customers`} {
		rows, err := f.pool.Query(context.Background(), q)
		if err != nil {
			b.Fatal(err)
		}
		for rows.Next() {
			var id uuid.UUID
			var v int64
			if err := rows.Scan(&id, &v); err != nil {
				b.Fatal(err)
			}
			p.versions[id] = v
		}
		rows.Close()
	}
	return p
}

// pushWrite is one row write of a batch: a task retitled, a customer's phone changed, or a note.
type pushWrite struct {
	kind  int // 0 task title, 1 customer phone, 2 note
	id    uuid.UUID
	task  uuid.UUID // of a note
	value string
}

// batch returns the i-th batch of writes: 40% task updates, 30% customer updates, 30% notes,
// no record twice in a batch.
func (p *pushBench) batch(i int) []pushWrite {
	out := make([]pushWrite, pushBatch)
	tasks, customers := i*pushBatch*4/10, i*pushBatch*3/10
	for j := range out {
		n := i*pushBatch + j
		switch j % 10 {
		case 0, 1, 2, 3:
			out[j] = pushWrite{kind: 0, id: p.tasks[tasks%len(p.tasks)], value: fmt.Sprintf("Visit %d", n)}
			tasks++
		case 4, 5, 6:
			out[j] = pushWrite{kind: 1, id: p.customers[customers%len(p.customers)], value: fmt.Sprintf("+1 555 %07d", n)}
			customers++
		default:
			out[j] = pushWrite{kind: 2, id: uuid.New(), task: p.tasks[n%len(p.tasks)], value: fmt.Sprintf("Note %d", n)}
		}
	}
	return out
}

func (p *pushBench) mutations(ws []pushWrite) []sync.Mutation {
	ms := make([]sync.Mutation, len(ws))
	for j, w := range ws {
		value, _ := json.Marshal(w.value)
		m := sync.Mutation{ID: uuid.New(), Op: "update", EntityID: w.id}
		switch w.kind {
		case 0:
			m.Type, m.Fields = sync.TypeTask, map[string]json.RawMessage{"title": value}
		case 1:
			m.Type, m.Fields = sync.TypeCustomer, map[string]json.RawMessage{"phone": value}
		default:
			task, _ := json.Marshal(w.task)
			m.Type, m.Op, m.Fields = sync.TypeTaskNote, "create", map[string]json.RawMessage{"task_id": task, "body": value}
		}
		if m.Op == "update" {
			v := p.versions[w.id]
			m.BaseVersion = &v
		}
		ms[j] = m
	}
	return ms
}

// BenchmarkPush is engine.Push of batches of task and customer updates and note creates, each
// against the version the device last saw (so applied, not merged).
func BenchmarkPush(b *testing.B) {
	p := newPushBench(b)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		b.StopTimer()
		ms := p.mutations(p.batch(i))
		b.StartTimer()
		results, err := p.f.engine.Push(ctx, p.manager, ms)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		for j, r := range results {
			if r.Status != sync.StatusApplied {
				b.Fatalf("mutation %d: %s %+v", j, r.Status, r.Error)
			}
			p.versions[ms[j].EntityID] = r.Version
		}
		b.StartTimer()
		i++
	}
	b.ReportMetric(float64(i*pushBatch)/b.Elapsed().Seconds(), "mutations/s")
}

// BenchmarkPushRawBaseline writes the same rows as BenchmarkPush with raw pgx: the same UPDATE and
// INSERT statements on the same tables, a transaction per batch. The tables keep their triggers:
// versioning and the change log are part of every write to them, whoever writes (a trigger-free
// copy would measure a table no one uses). "statements" sends them one at a time, as the engine
// does; "pipelined" sends the whole batch in one round trip (pgx.Batch), the fastest raw pgx
// can go, for reference.
func BenchmarkPushRawBaseline(b *testing.B) {
	for _, pipelined := range []bool{false, true} {
		name := "statements"
		if pipelined {
			name = "pipelined"
		}
		b.Run(name, func(b *testing.B) {
			p := newPushBench(b)
			ctx := context.Background()
			i := 0
			for b.Loop() {
				b.StopTimer()
				ws := p.batch(i)
				b.StartTimer()
				err := pgx.BeginFunc(ctx, p.f.pool, func(tx pgx.Tx) error {
					var batch pgx.Batch
					for _, w := range ws {
						var sql string
						var args []any
						switch w.kind {
						case 0:
							sql, args = `UPDATE tasks SET title = $2 WHERE id = $1`, []any{w.id, w.value}
						case 1:
							sql, args = `UPDATE customers SET phone = $2 WHERE id = $1`, []any{w.id, w.value}
						default:
							sql, args = `INSERT INTO task_notes (id, task_id, branch_id, author_id, body) VALUES ($1, $2, $3, $4, $5)`,
								[]any{w.id, w.task, p.f.branch, p.manager.UserID, w.value}
						}
						if pipelined {
							batch.Queue(sql, args...)
						} else if _, err := tx.Exec(ctx, sql, args...); err != nil {
							return err
						}
					}
					if pipelined {
						return tx.SendBatch(ctx, &batch).Close()
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(i*pushBatch)/b.Elapsed().Seconds(), "mutations/s")
		})
	}
}

// pullChanges is how many changes (of as many records) one benchmarked pull serves.
const pullChanges = 1000

// pullBench is a branch where pullChanges tasks changed after a manager's cursor.
type pullBench struct {
	f       *engineFixture
	manager *fieldsync.Identity
	cursor  string // before the changes
	since   int64  // the change log's last version before them
}

func newPullBench(b testing.TB) *pullBench {
	f := newEngineFixture(b, 8)
	p := &pullBench{f: f, manager: f.newUser(b, fieldsync.RoleManager, "")}
	rep := f.newUser(b, fieldsync.RoleRep, "hospital").UserID
	claim := f.newClaim(b, f.newCustomer(b, rep), "collecting")
	ctx := context.Background()
	f.exec(b, `INSERT INTO tasks (id, claim_id, branch_id, assignee_id, kind, title, checklist, status)
		SELECT gen_random_uuid(), $1, $2, $3, 'hospital_visit', 'Visit ' || i, $4, 'assigned' FROM generate_series(1, $5) i`,
		claim, f.branch, rep, fixtureChecklist, pullChanges)
	p.cursor = f.pullUntilCaughtUp(b, p.manager, "", func(sync.Change) error { return nil })
	if err := f.pool.QueryRow(ctx, `SELECT max(version) FROM changes`).Scan(&p.since); err != nil {
		b.Fatal(err)
	}
	f.exec(b, `UPDATE tasks SET instructions = 'Ward 3, bed ' || version`)
	// Wait until the changes are served (no older transaction anywhere holds them back).
	f.pullUntilCaughtUp(b, p.manager, p.cursor, func(sync.Change) error { return nil })
	return p
}

// BenchmarkPull is engine.Pull, from a cursor, of a page of pullChanges changed tasks, each
// encoded as the HTTP handler does.
func BenchmarkPull(b *testing.B) {
	p := newPullBench(b)
	ctx := context.Background()
	for b.Loop() {
		n := 0
		_, _, err := p.f.engine.Pull(ctx, p.manager, sync.PullRequest{Cursor: p.cursor, Limit: pullChanges}, func(ch sync.Change) error {
			if _, err := json.Marshal(ch); err != nil {
				return err
			}
			n++
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		if n != pullChanges {
			b.Fatalf("pulled %d changes, want %d", n, pullChanges)
		}
	}
	b.ReportMetric(float64(b.N*pullChanges)/b.Elapsed().Seconds(), "changes/s")
}

// BenchmarkPullRawBaseline reads the same rows' JSON with raw pgx: the change log after the same
// point, joined to the tasks it names, the record as a device sees it, encoded the same way.
func BenchmarkPullRawBaseline(b *testing.B) {
	p := newPullBench(b)
	ctx := context.Background()
	for b.Loop() {
		rows, err := p.f.pool.Query(ctx, `
			SELECT c.entity_id, t.version, to_jsonb(t) - '{field_versions,deleted_at}'::text[]
			FROM changes c JOIN tasks t ON t.id = c.entity_id
			WHERE c.branch_id = $1 AND c.version > $2 AND c.entity_type = 'task' AND c.op = 'upsert'
			ORDER BY c.xid, c.version LIMIT $3`, p.f.branch, p.since, pullChanges)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for rows.Next() {
			ch := sync.Change{Type: sync.TypeTask, Op: "upsert"}
			var data []byte
			if err := rows.Scan(&ch.ID, &ch.Version, &data); err != nil {
				b.Fatal(err)
			}
			ch.Data = data
			if _, err := json.Marshal(ch); err != nil {
				b.Fatal(err)
			}
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		if n != pullChanges {
			b.Fatalf("read %d rows, want %d", n, pullChanges)
		}
	}
	b.ReportMetric(float64(b.N*pullChanges)/b.Elapsed().Seconds(), "changes/s")
}

// snapshotFixture is a branch whose manager's scope holds n tasks (and a handful of other
// records), made in one statement.
func snapshotFixture(tb testing.TB, n int) (*engineFixture, *fieldsync.Identity) {
	f := newEngineFixture(tb, 8)
	manager := f.newUser(tb, fieldsync.RoleManager, "")
	rep := f.newUser(tb, fieldsync.RoleRep, "hospital").UserID
	claim := f.newClaim(tb, f.newCustomer(tb, rep), "collecting")
	f.exec(tb, `INSERT INTO tasks (id, claim_id, branch_id, assignee_id, kind, title, instructions, checklist, status)
		SELECT gen_random_uuid(), $1, $2, $3, 'hospital_visit', 'Visit ' || i, repeat('Ward 3, bed 12. ', 8), $4, 'assigned'
		FROM generate_series(1, $5) i`, claim, f.branch, rep, fixtureChecklist, n)
	return f, manager
}

// heapSampler records the peak of the heap while a measurement runs: the bytes of heap objects
// (live, or garbage not yet collected), sampled every millisecond. It is what the process holds,
// and so depends on when the collector runs; liveHeap measures what is retained.
type heapSampler struct {
	stop chan struct{}
	done gosync.WaitGroup
	peak atomic.Uint64
}

func startHeapSampler() *heapSampler {
	liveHeap() // start from what is reachable
	s := &heapSampler{stop: make(chan struct{})}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() {
		metrics.Read(sample)
		if v := sample[0].Value.Uint64(); v > s.peak.Load() {
			s.peak.Store(v)
		}
	}
	read()
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				read()
				return
			case <-t.C:
				read()
			}
		}
	}()
	return s
}

// end stops sampling and returns the peak, in MiB.
func (s *heapSampler) end() float64 {
	close(s.stop)
	s.done.Wait()
	return float64(s.peak.Load()) / (1 << 20)
}

// liveHeap returns the bytes of the heap that are still reachable, in MiB. It collects twice:
// what sync.Pools hold survives one collection (the migrations' parser pools 16 MiB buffers).
func liveHeap() float64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / (1 << 20)
}

// pullSnapshot pulls id's whole snapshot in pages of the largest size, each record encoded as
// the HTTP handler does and thrown away, and returns how many records came. Every 5,000 records it
// calls each, if not nil.
func pullSnapshot(tb testing.TB, f *engineFixture, id *fieldsync.Identity, each func()) int {
	n, cursor := 0, ""
	for {
		next, more, err := f.engine.Pull(context.Background(), id, sync.PullRequest{Cursor: cursor, Limit: 5000}, func(ch sync.Change) error {
			_, err := json.Marshal(ch)
			if n++; n%5000 == 0 && each != nil {
				each()
			}
			return err
		})
		if err != nil {
			tb.Fatal(err)
		}
		cursor = next
		if snapshot, _ := cursorPos(tb, cursor, id); !snapshot {
			return n
		}
		if !more {
			tb.Fatal("unfinished snapshot without has_more")
		}
	}
}

// BenchmarkSnapshot pulls the whole snapshot of a manager's scope of 10,000 records, and of
// 100,000 with FIELDSYNC_BIG=1, reporting records/s and the peak heap while pulling.
func BenchmarkSnapshot(b *testing.B) {
	sizes := []int{10_000}
	if os.Getenv("FIELDSYNC_BIG") != "" {
		sizes = append(sizes, 100_000)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			f, manager := snapshotFixture(b, n)
			var peak float64
			for b.Loop() {
				s := startHeapSampler()
				if got := pullSnapshot(b, f, manager, nil); got < n {
					b.Fatalf("snapshot of %d records, want at least %d", got, n)
				}
				peak = max(peak, s.end())
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(peak, "peak-heap-MiB")
		})
	}
}

// TestSnapshotMemoryIsFlat (FIELDSYNC_BIG=1) pulls snapshots of 10,000 and 100,000 records and
// checks that pulling retains no more memory for the larger one: the live heap, measured after a
// collection every 5,000 records, may not grow by more than 2 MiB for ten times the records
// (holding the 100,000 records would take some 70 MiB).
func TestSnapshotMemoryIsFlat(t *testing.T) {
	if os.Getenv("FIELDSYNC_BIG") == "" {
		t.Skip("set FIELDSYNC_BIG=1 to pull a snapshot of 100,000 records")
	}
	var live [2]float64
	for i, n := range []int{10_000, 100_000} {
		f, manager := snapshotFixture(t, n)
		start := time.Now()
		got := pullSnapshot(t, f, manager, func() { live[i] = max(live[i], liveHeap()) })
		elapsed := time.Since(start)
		s := startHeapSampler()
		pullSnapshot(t, f, manager, nil)
		t.Logf("%d records: snapshot of %d in %v (with a collection every 5,000), live heap at most %.2f MiB; peak heap %.1f MiB",
			n, got, elapsed.Round(time.Millisecond), live[i], s.end())
	}
	if live[1] > live[0]+2 {
		t.Errorf("pulling 10,000 records retained up to %.2f MiB, 100,000 up to %.2f MiB", live[0], live[1])
	}
}
