package sync_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/internal/fixture"
	"github.com/fieldsync/fieldsync/internal/testenv"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// engineFixture is one branch over an engine of its own migrated schema: what the engine's
// black-box tests and benchmarks (gap, convergence, throughput) start from. Records are made
// with plain SQL, so the database's triggers version and log them as they do every write.
type engineFixture struct {
	db *testenv.Database
	// pool is the engine's pool, larger than testenv's default: the gap test holds many
	// transactions open at once while others pull.
	pool   *pgxpool.Pool
	engine *sync.Engine
	branch uuid.UUID
	// newID makes the ids of what the fixture creates: uuid.New, unless a test that replays a
	// seed wants them from its random source.
	newID func() uuid.UUID
}

// newEngineFixture returns a fixture whose pool holds up to maxConns connections, with the
// engine's listener running until the test ends.
func newEngineFixture(t testing.TB, maxConns int32) *engineFixture {
	t.Helper()
	return newEngineFixtureAt(t, maxConns, time.Now)
}

// newEngineFixtureAt is newEngineFixture with the engine on the clock now (Engine.NowFunc), which
// its SQL follows too: a test's apptest.Clock lets time pass without sleeping.
func newEngineFixtureAt(t testing.TB, maxConns int32, now func() time.Time) *engineFixture {
	t.Helper()
	f := &engineFixture{db: testenv.DB(t), newID: uuid.New}
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(f.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns, cfg.MinConns = maxConns, 0
	if f.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.pool.Close)
	f.engine = sync.New(f.pool, sync.Config{ScopeWindow: 30 * 24 * time.Hour}, slog.New(slog.DiscardHandler))
	f.engine.NowFunc = now
	if err := f.engine.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	run, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = f.engine.Run(run); close(done) }()
	t.Cleanup(func() { stop(); <-done })

	f.branch = fixture.New(t, f.pool).Branch()
	return f
}

func (f *engineFixture) exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := f.pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// newUser adds a user of the branch with a device of their own, and returns them as the engine
// sees a signed-in device. repKind is "agent" or "hospital" for reps, "" otherwise.
func (f *engineFixture) newUser(t testing.TB, role, repKind string) *fieldsync.Identity {
	t.Helper()
	id := &fieldsync.Identity{UserID: f.newID(), DeviceID: f.newID(), SessionID: f.newID(), Role: role, BranchID: f.branch}
	id.Name = role + " " + id.UserID.String()[:8]
	fx := fixture.New(t, f.pool)
	fx.User(fixture.User{ID: id.UserID, Branch: f.branch, Role: role, RepKind: repKind, Name: id.Name, Login: "u-" + id.UserID.String()})
	fx.Device(fixture.Device{ID: id.DeviceID, User: id.UserID})
	return id
}

// newCustomer adds a customer of the branch looked after by agent (uuid.Nil for none).
func (f *engineFixture) newCustomer(t testing.TB, agent uuid.UUID) uuid.UUID {
	t.Helper()
	return fixture.New(t, f.pool).Customer(fixture.Customer{ID: f.newID(), Branch: f.branch, Phone: "+1 555 0100",
		Address: "Main St 1", Agent: agent})
}

// newClaim adds a claim of customer in status (reported, collecting, ...; not paid or rejected).
func (f *engineFixture) newClaim(t testing.TB, customer uuid.UUID, status string) uuid.UUID {
	t.Helper()
	id, _ := fixture.New(t, f.pool).Claim(fixture.Claim{ID: f.newID(), Branch: f.branch, Customer: customer, Policy: "POL-1",
		Status: status, Hospitalised: true, Hospital: "General Hospital", AmountClaimed: 100000})
	return id
}

// fixtureChecklist is the checklist every fixture task starts with.
const fixtureChecklist = `[{"key":"id_card","label":"Photograph the ID card","done":false},
	{"key":"invoices","label":"Photograph the invoices","done":false},
	{"key":"discharge","label":"Photograph the discharge summary","done":false}]`

// newTask adds a hospital visit of claim, assigned to assignee (uuid.Nil: open, unassigned).
func (f *engineFixture) newTask(t testing.TB, claim, assignee uuid.UUID) uuid.UUID {
	t.Helper()
	id := f.newID()
	return fixture.New(t, f.pool).Task(fixture.Task{ID: id, Claim: claim, Assignee: assignee, Kind: "hospital_visit",
		Title: "Visit " + id.String()[:8], Checklist: fixtureChecklist})
}

// logPos is a position in the change log: the order pulls serve changes in.
type logPos struct {
	xid     uint64
	version int64
}

func (p logPos) less(q logPos) bool {
	return p.xid < q.xid || (p.xid == q.xid && p.version < q.version)
}

func (p logPos) String() string { return fmt.Sprintf("(%d, %d)", p.xid, p.version) }

// cursorPos decodes where cursor stands; snapshot is true while the first snapshot is unfinished.
func cursorPos(t testing.TB, cursor string, id *fieldsync.Identity) (snapshot bool, pos logPos) {
	t.Helper()
	snapshot, xid, version, err := sync.CursorPosition(cursor, id)
	if err != nil {
		t.Fatalf("decode cursor %q: %v", cursor, err)
	}
	return snapshot, logPos{xid, version}
}

// lastLogPos returns the position of the newest change in the log that a pull by id reads (every
// record change of the branch, and the scope moves aimed at id), or the zero position.
func (f *engineFixture) lastLogPos(t testing.TB, id *fieldsync.Identity) logPos {
	t.Helper()
	var xid *string
	var version *int64
	err := f.pool.QueryRow(context.Background(), `
		SELECT xid::text, version FROM changes
		WHERE branch_id = $1 AND (op IN ('upsert', 'delete') OR target_user_id = $2 OR target_role = $3)
		ORDER BY xid DESC, version DESC LIMIT 1`, f.branch, id.UserID, id.Role).Scan(&xid, &version)
	if err != nil {
		t.Fatalf("read the newest change: %v", err)
	}
	if xid == nil {
		return logPos{}
	}
	x, err := strconv.ParseUint(*xid, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return logPos{x, *version}
}

// pullUntilCaughtUp pulls for id from cursor, giving every change to emit, until its cursor is
// past every change committed before the call and nothing more is waiting, and returns the
// cursor. A transaction left open anywhere on the server delays this (pulls serve changes only
// below the oldest running transaction), so it retries for up to 30 seconds.
func (f *engineFixture) pullUntilCaughtUp(t testing.TB, id *fieldsync.Identity, cursor string, emit func(sync.Change) error) string {
	t.Helper()
	target := f.lastLogPos(t, id)
	deadline := time.Now().Add(30 * time.Second)
	for {
		next, more, err := f.engine.Pull(context.Background(), id, sync.PullRequest{Cursor: cursor, Limit: 500}, emit)
		if err != nil {
			t.Fatalf("pull for %s: %v", id.Name, err)
		}
		cursor = next
		snapshot, pos := cursorPos(t, cursor, id)
		if !more && !snapshot && !pos.less(target) {
			return cursor
		}
		if !more {
			if time.Now().After(deadline) {
				t.Fatalf("pull for %s: cursor %v still short of %v after 30 s", id.Name, pos, target)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// snapshotOf pulls a fresh snapshot of id's whole scope: "type:id" to the record's data.
func (f *engineFixture) snapshotOf(t testing.TB, id *fieldsync.Identity) map[string]json.RawMessage {
	t.Helper()
	out := map[string]json.RawMessage{}
	cursor := ""
	for {
		next, more, err := f.engine.Pull(context.Background(), id, sync.PullRequest{Cursor: cursor, Limit: 5000}, func(ch sync.Change) error {
			if ch.Op != "upsert" {
				return errors.New("a snapshot sent " + ch.Op)
			}
			out[ch.Type+":"+ch.ID.String()] = ch.Data
			return nil
		})
		if err != nil {
			t.Fatalf("snapshot for %s: %v", id.Name, err)
		}
		cursor = next
		if snapshot, _ := cursorPos(t, cursor, id); !snapshot {
			return out
		}
		if !more {
			t.Fatalf("snapshot for %s: unfinished snapshot without has_more", id.Name)
		}
	}
}
