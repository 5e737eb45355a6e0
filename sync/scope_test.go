package sync_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// TestScopeLogAgreesWithPull checks, for every role, that the two halves of the scope rule agree:
// the scope moves the triggers and the window sweep log (enter, leave), and the scope predicates
// pulls and snapshots select by. It builds a branch at random (users of every role, claims in
// every status, tasks, documents, notes, notifications), makes random moves (assigning,
// reassigning, finishing and reopening tasks, claims moving through the queue, settling and
// reopening, documents added and deleted, time passing a record out of the window), and after
// each step checks for every user that
//   - the roots their log says they hold (replaying the enter and leave rows aimed at them) are
//     the roots a fresh snapshot sends them, and
//   - the records their device holds, following the log from their first snapshot by incremental
//     pulls, are the records (with the same data) a fresh snapshot sends.
//
// Tasks are never deleted here: no write path deletes one, and a task deleted by hand would leave
// its notes on processors' devices (no move is logged for them, and their scope drops the notes
// of a deleted task).
//
// Seeded: the seed is logged, and FIELDSYNC_SEED replays it. FIELDSYNC_SCOPE_STEPS sets the steps.
func TestScopeLogAgreesWithPull(t *testing.T) {
	seed := gapSeed(t) // FIELDSYNC_SEED, or the clock; logged
	w := newScopeWorld(t, seed)
	steps := envInt(t, "FIELDSYNC_SCOPE_STEPS", 40)
	for step := range steps {
		for range 1 + w.rng.IntN(3) {
			w.move()
		}
		if step%8 == 7 {
			w.timePasses()
		}
		w.check(step)
	}
	t.Logf("%d steps, moves %v", steps, w.moves)
}

// scopeWindow is the fixture engine's scope window, as an SQL interval.
const scopeWindow = "interval '720 hours'"

type scopeWorld struct {
	t   *testing.T
	f   *engineFixture
	rng *rand.Rand
	// clock is the engine's, and the writes' (exec): time passes by moving it.
	clock *apptest.Clock

	users   []*fieldsync.Identity
	reps    []*fieldsync.Identity
	devices map[uuid.UUID]*scopeDevice

	customers, claims, tasks, documents, notifications []uuid.UUID
	moves                                              map[string]int
}

// scopeDevice is what one user's device holds, following the log by incremental pulls.
type scopeDevice struct {
	id     *fieldsync.Identity
	cursor string
	held   map[string]json.RawMessage // "type:id" to the record's data
}

func newScopeWorld(t *testing.T, seed uint64) *scopeWorld {
	w := &scopeWorld{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x5c0be)), devices: map[uuid.UUID]*scopeDevice{}, moves: map[string]int{}}
	w.clock = &apptest.Clock{}
	w.f = newEngineFixtureAt(t, 8, w.clock.Now)
	w.f.newID = w.newID
	for _, u := range []struct{ role, kind string }{
		{fieldsync.RoleManager, ""}, {fieldsync.RoleProcessor, ""}, {fieldsync.RoleProcessor, ""},
		{fieldsync.RoleRep, "hospital"}, {fieldsync.RoleRep, "hospital"}, {fieldsync.RoleRep, "agent"}, {fieldsync.RoleRep, "agent"},
	} {
		id := w.f.newUser(t, u.role, u.kind)
		w.users = append(w.users, id)
		if u.role == fieldsync.RoleRep {
			w.reps = append(w.reps, id)
		}
	}
	for range 3 {
		w.customers = append(w.customers, w.f.newCustomer(t, w.pick(w.reps).UserID))
	}
	for range 5 {
		w.newClaim()
	}
	for range 8 {
		w.newTask()
	}
	for _, id := range w.users {
		d := &scopeDevice{id: id, held: map[string]json.RawMessage{}}
		d.cursor = w.f.pullUntilCaughtUp(t, id, "", d.apply)
		w.devices[id.UserID] = d
	}
	w.check(-1)
	return w
}

// newID makes ids from the seed, so a replay makes the same ones (and so the same uuid order).
func (w *scopeWorld) newID() uuid.UUID {
	var id uuid.UUID
	binary.BigEndian.PutUint64(id[:8], w.rng.Uint64())
	binary.BigEndian.PutUint64(id[8:], w.rng.Uint64())
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

func (w *scopeWorld) pick(ids []*fieldsync.Identity) *fieldsync.Identity {
	return ids[w.rng.IntN(len(ids))]
}

func (w *scopeWorld) pickID(ids []uuid.UUID) uuid.UUID {
	if len(ids) == 0 {
		return uuid.Nil
	}
	return ids[w.rng.IntN(len(ids))]
}

// openStatuses are the claim statuses a claim can be written into without a settlement.
var openStatuses = []string{"reported", "collecting", "under_review", "approved"}

func (w *scopeWorld) newClaim() {
	customer := w.pickID(w.customers)
	if w.rng.IntN(3) == 0 {
		customer = w.f.newCustomer(w.t, w.pick(w.reps).UserID)
		w.customers = append(w.customers, customer)
	}
	w.claims = append(w.claims, w.f.newClaim(w.t, customer, openStatuses[w.rng.IntN(len(openStatuses))]))
}

func (w *scopeWorld) newTask() {
	assignee := uuid.Nil
	if w.rng.IntN(4) > 0 {
		assignee = w.pick(w.reps).UserID
	}
	w.tasks = append(w.tasks, w.f.newTask(w.t, w.pickID(w.claims), assignee))
}

// move makes one random write, as plain SQL: the triggers see every writer alike. A move that
// does not apply to the record picked (finishing a finished task) changes nothing.
func (w *scopeWorld) move() {
	f := w.f
	task, claim := w.pickID(w.tasks), w.pickID(w.claims)
	var name string
	switch n := w.rng.IntN(16); n {
	case 0:
		name = "new claim"
		w.newClaim()
	case 1, 2:
		name = "new task"
		w.newTask()
	case 3, 4:
		name = "reassign task"
		w.exec(`UPDATE tasks SET assignee_id = $2, status = CASE WHEN status = 'open' THEN 'assigned' ELSE status END
			WHERE id = $1 AND status <> 'cancelled'`, task, w.pick(w.reps).UserID)
	case 5:
		name = "unassign task"
		w.exec(`UPDATE tasks SET assignee_id = NULL, status = 'open' WHERE id = $1 AND finished_at IS NULL`, task)
	case 6, 7:
		name = "finish task"
		status := []string{"completed", "cannot_complete", "cancelled"}[w.rng.IntN(3)]
		w.exec(`UPDATE tasks SET status = $2, finished_at = fieldsync_now()
			WHERE id = $1 AND finished_at IS NULL AND (assignee_id IS NOT NULL OR $2 = 'cancelled')`, task, status)
	case 8:
		name = "reopen task"
		w.exec(`UPDATE tasks SET status = CASE WHEN assignee_id IS NULL THEN 'open' ELSE 'assigned' END, finished_at = NULL
			WHERE id = $1 AND finished_at IS NOT NULL`, task)
	case 9, 10:
		name = "claim status"
		w.exec(`UPDATE claims SET status = $2, settled_at = NULL, paid_at = NULL, amount_paid = NULL WHERE id = $1`,
			claim, openStatuses[w.rng.IntN(len(openStatuses))])
	case 11:
		name = "settle claim"
		if w.rng.IntN(2) == 0 {
			w.exec(`UPDATE claims SET status = 'paid', paid_at = fieldsync_now(), amount_paid = 50000, settled_at = fieldsync_now()
				WHERE id = $1 AND settled_at IS NULL`, claim)
		} else {
			w.exec(`UPDATE claims SET status = 'rejected', settled_at = fieldsync_now() WHERE id = $1 AND settled_at IS NULL`, claim)
		}
	case 12:
		name = "document"
		if w.rng.IntN(4) == 0 && len(w.documents) > 0 {
			name = "delete document"
			w.exec(`UPDATE documents SET deleted_at = fieldsync_now() WHERE id = $1 AND deleted_at IS NULL`, w.pickID(w.documents))
			break
		}
		id := w.newID()
		w.exec(`INSERT INTO documents (id, claim_id, branch_id, kind, status, uploader_id) VALUES ($1, $2, $3, 'photo', 'pending_upload', $4)`,
			id, claim, f.branch, w.pick(w.users).UserID)
		w.documents = append(w.documents, id)
	case 13:
		name = "note"
		w.exec(`INSERT INTO task_notes (id, task_id, branch_id, author_id, body) VALUES ($1, $2, $3, $4, 'seen')`,
			w.newID(), task, f.branch, w.pick(w.users).UserID)
	case 14:
		name = "notification"
		if w.rng.IntN(2) == 0 && len(w.notifications) > 0 {
			name = "read notification"
			w.exec(`UPDATE notifications SET read_at = fieldsync_now() WHERE id = $1 AND read_at IS NULL`, w.pickID(w.notifications))
			break
		}
		id := w.newID()
		w.exec(`INSERT INTO notifications (id, user_id, branch_id, kind, title, body) VALUES ($1, $2, $3, 'task_assigned', 'New task', '')`,
			id, w.pick(w.users).UserID, f.branch)
		w.notifications = append(w.notifications, id)
	case 15:
		// A write that puts the end past the window: the trigger itself logs the leave.
		name = "backdate past the window"
		w.exec(`UPDATE tasks SET finished_at = fieldsync_now() - `+scopeWindow+` - interval '1 hour' WHERE id = $1 AND finished_at IS NOT NULL`, task)
		w.exec(`UPDATE claims SET settled_at = fieldsync_now() - `+scopeWindow+` - interval '1 hour' WHERE id = $1 AND settled_at IS NOT NULL`, claim)
	default:
		panic(n)
	}
	w.moves[name]++
}

// timePasses moves a few finished tasks, settled claims and read notifications to the edge of the
// window, moves the clock past it, and sweeps: only the sweep logs their leave.
func (w *scopeWorld) timePasses() {
	f, t := w.f, w.t
	edge := `fieldsync_now() - ` + scopeWindow + ` + interval '300 milliseconds'`
	w.exec(`UPDATE tasks SET finished_at = `+edge+` WHERE id = ANY($1) AND finished_at > fieldsync_now() - `+scopeWindow,
		[]uuid.UUID{w.pickID(w.tasks), w.pickID(w.tasks)})
	w.exec(`UPDATE claims SET settled_at = `+edge+` WHERE id = ANY($1) AND settled_at > fieldsync_now() - `+scopeWindow,
		[]uuid.UUID{w.pickID(w.claims), w.pickID(w.claims)})
	w.exec(`UPDATE notifications SET read_at = `+edge+` WHERE id = ANY($1) AND read_at > fieldsync_now() - `+scopeWindow,
		[]uuid.UUID{w.pickID(w.notifications), w.pickID(w.notifications)})
	w.clock.Advance(400 * time.Millisecond)
	if err := f.engine.Sweep(context.Background()); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	w.moves["time passes"]++
}

// exec runs one write, as plain SQL, at the world's clock: its triggers and its fieldsync_now()
// tell time as the engine does.
func (w *scopeWorld) exec(sql string, args ...any) {
	w.t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, w.f.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('fieldsync.now', $1::timestamptz::text, true)`, w.clock.Now()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, sql, args...)
		return err
	})
	if err != nil {
		w.t.Fatalf("%s: %v", sql, err)
	}
}

// apply stores a change of a pull, as a device does.
func (d *scopeDevice) apply(ch sync.Change) error {
	key := ch.Type + ":" + ch.ID.String()
	switch ch.Op {
	case "upsert":
		d.held[key] = ch.Data
	case "delete":
		delete(d.held, key)
	default:
		return fmt.Errorf("op %q", ch.Op)
	}
	return nil
}

// loggedRoots replays the scope moves aimed at id: the roots (tasks of a rep, claims of a
// processor) whose last move is an enter.
func (w *scopeWorld) loggedRoots(id *fieldsync.Identity) map[string]bool {
	rows, err := w.f.pool.Query(context.Background(), `
		SELECT entity_type || ':' || entity_id FROM (
			SELECT DISTINCT ON (entity_type, entity_id) entity_type, entity_id, op FROM changes
			WHERE branch_id = $1 AND op IN ('enter', 'leave') AND (target_user_id = $2 OR target_role = $3)
			ORDER BY entity_type, entity_id, xid DESC, version DESC
		) x WHERE op = 'enter'`, w.f.branch, id.UserID, id.Role)
	if err != nil {
		w.t.Fatalf("replay scope moves: %v", err)
	}
	keys := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			w.t.Fatal(err)
		}
		keys[k] = true
	}
	if err := rows.Err(); err != nil {
		w.t.Fatal(err)
	}
	return keys
}

// rootType is the type of the records whose enter and leave the log holds for role.
var rootType = map[string]string{fieldsync.RoleRep: sync.TypeTask, fieldsync.RoleProcessor: sync.TypeClaim}

func (w *scopeWorld) check(step int) {
	t := w.t
	for _, id := range w.users {
		snap := w.f.snapshotOf(t, id)

		if typ, ok := rootType[id.Role]; ok {
			want := map[string]bool{}
			for k := range snap {
				if len(k) > len(typ) && k[:len(typ)+1] == typ+":" {
					want[k] = true
				}
			}
			if got := w.loggedRoots(id); !maps.Equal(got, want) {
				t.Fatalf("step %d, %s: the log's enter and leave say %s holds %v; a snapshot sends %v",
					step, id.Name, id.Role, sortedKeys(got), sortedKeys(want))
			}
		}

		d := w.devices[id.UserID]
		d.cursor = w.f.pullUntilCaughtUp(t, id, d.cursor, d.apply)
		for k, data := range snap {
			held, ok := d.held[k]
			if !ok {
				t.Fatalf("step %d, %s (%s): a snapshot sends %s, which incremental pulls never delivered (or took away)", step, id.Name, id.Role, k)
			}
			if !sameJSON(t, held, data) {
				t.Fatalf("step %d, %s (%s): %s is\n%s\non the device and\n%s\nin a snapshot", step, id.Name, id.Role, k, held, data)
			}
		}
		for k := range d.held {
			if _, ok := snap[k]; !ok {
				t.Fatalf("step %d, %s (%s): the device still holds %s, which a snapshot does not send", step, id.Name, id.Role, k)
			}
		}
	}
}

func sortedKeys(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }
