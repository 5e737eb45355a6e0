package notify_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"firebase.google.com/go/v4/messaging"
	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/fieldsync/fieldsync/internal/fakefcm"
	"github.com/fieldsync/fieldsync/internal/fixture"
	"github.com/fieldsync/fieldsync/internal/testenv"
	"github.com/fieldsync/fieldsync/notify"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"golang.org/x/oauth2"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// newFakeFCM starts the fake FCM (internal/fakefcm) until the test ends.
func newFakeFCM(t testing.TB) *fakefcm.Server {
	f := fakefcm.New()
	t.Cleanup(f.Close)
	return f
}

// sender is the real firebase SDK's messaging client, pointed at the fake f.
func sender(t testing.TB, f *fakefcm.Server) *messaging.Client {
	t.Helper()
	c, err := notify.NewFCM(context.Background(), notify.FCMConfig{
		TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: fakefcm.AccessToken, TokenType: "Bearer"}),
		ProjectID:   f.Project(),
		Endpoint:    f.Endpoint(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitAccepted waits until f accepted at least n messages and returns them, failing the test
// after timeout.
func waitAccepted(t testing.TB, f *fakefcm.Server, n int, timeout time.Duration) []fakefcm.Message {
	t.Helper()
	msgs, err := f.WaitCount(n, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// pushKey names one notification's push to one phone.
func pushKey(m fakefcm.Message) string { return m.Token + " " + m.Data["notification_id"] }

// bundle is what a test gets from setup: a database of its own, the sync engine with the
// notification hook, one replica delivering through the real firebase SDK to a fake FCM, and a
// branch to work in.
type bundle struct {
	db          *testenv.Database
	engine      *sync.Engine
	fcm         *fakefcm.Server
	svc         *notify.Service
	jobs        *river.Client[pgx.Tx]
	fx          *fixture.Factory
	branch      uuid.UUID
	integration *fieldsync.Identity
}

type options struct {
	pushOff  bool
	noWorker bool // queue deliveries, but work none (River not started)
	wake     bool // send wake-ups (wake.go) too; the other tests count alerts only
}

func pushOff(o *options)  { o.pushOff = true }
func noWorker(o *options) { o.noWorker = true }
func withWake(o *options) { o.wake = true }

// setup builds the service (apptest.New, as serve does) with its notifications delivering
// through the real firebase SDK to a fake FCM, and a branch with the call centre's integration.
func setup(t testing.TB, opts ...func(*options)) *bundle {
	t.Helper()
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	b := &bundle{db: testenv.DB(t), fcm: newFakeFCM(t)}
	via := []func(*apptest.Setup){func(s *apptest.Setup) { s.NoPushWake = !o.wake }}
	if !o.pushOff {
		via = append(via, pushVia(sender(t, b.fcm)))
	}
	a := b.replica(t, "replica-a", !o.noWorker, via...)
	b.engine, b.svc, b.jobs = a.Engine, a.Notify, a.Jobs

	b.fx = fixture.New(t, b.db.Pool)
	b.branch = b.fx.Branch()
	integ := b.fx.User(fixture.User{Role: fieldsync.RoleIntegration, Name: "Call centre"})
	b.integration = &fieldsync.Identity{UserID: integ, Role: fieldsync.RoleIntegration, Name: "Call centre"}
	return b
}

// pushVia is a replica option: push through sender.
func pushVia(sender notify.Sender) func(*apptest.Setup) {
	return func(s *apptest.Setup) { s.Deps.Sender = sender }
}

// replica starts another replica over the test's database, with a pool of 6 connections of its
// own, as another server process would have; its background workers stay stopped, and its job
// queue works deliveries when start is set. name is its job client's, in river_job.attempted_by.
func (b *bundle) replica(t testing.TB, name string, start bool, opts ...func(*apptest.Setup)) *apptest.App {
	t.Helper()
	return b.replicaWith(t, name, start, 6, opts...)
}

// replicaWith is replica with a pool of conns connections.
func (b *bundle) replicaWith(t testing.TB, name string, start bool, conns int32, opts ...func(*apptest.Setup)) *apptest.App {
	t.Helper()
	pcfg, err := pgxpool.ParseConfig(b.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	pcfg.MaxConns = conns
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return b.replicaOver(t, pool, name, start, opts...)
}

// replicaOver is replica over pool.
func (b *bundle) replicaOver(t testing.TB, pool *pgxpool.Pool, name string, start bool, opts ...func(*apptest.Setup)) *apptest.App {
	t.Helper()
	a := apptest.New(t, append([]func(*apptest.Setup){func(s *apptest.Setup) {
		s.Deps.Pool, s.JobsID, s.NoNotifications, s.Idle = pool, name, false, true
		s.NoPushWake = true // unless a test asks for them (withWake)
	}}, opts...)...)
	if start {
		b.start(t, a.Jobs)
	}
	return a
}

// start starts a River client and stops it when the test ends.
func (b *bundle) start(t testing.TB, jobs *river.Client[pgx.Tx]) {
	t.Helper()
	if err := jobs.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = jobs.StopAndCancel(ctx)
	})
}

// user creates an enabled user of the branch (repKind "agent" or "hospital" for reps).
func (b *bundle) user(t testing.TB, role, repKind, name string) uuid.UUID {
	t.Helper()
	return b.userIn(t, b.branch, role, repKind, name)
}

func (b *bundle) userIn(t testing.TB, branch uuid.UUID, role, repKind, name string) uuid.UUID {
	t.Helper()
	return b.fx.User(fixture.User{Branch: branch, Role: role, RepKind: repKind, Name: name})
}

// device signs user in on a new device with a push token, and returns the device and token.
func (b *bundle) device(t testing.TB, user uuid.UUID) (uuid.UUID, string) {
	t.Helper()
	token := "token-" + uuid.NewString()
	return b.fx.Device(fixture.Device{User: user, PushToken: token, Session: true}), token
}

// customer creates a customer of the branch looked after by agent.
func (b *bundle) customer(t testing.TB, name string, agent uuid.UUID) uuid.UUID {
	t.Helper()
	return b.fx.Customer(fixture.Customer{Branch: b.branch, Name: name, Agent: agent})
}

// report reports a hospitalised claim for customer, as the call centre does, and returns the
// claim and the dispatched hospital visit.
func (b *bundle) report(t testing.TB, customer uuid.UUID) (claim, task uuid.UUID) {
	t.Helper()
	r, err := b.engine.ReportClaim(context.Background(), b.integration, sync.ClaimReport{CustomerID: customer, PolicyNumber: "POL-1",
		Kind: "hospitalisation", Hospitalised: true, Hospital: "St Mary's Hospital", Description: "Admitted last night"})
	if err != nil {
		t.Fatal(err)
	}
	var c, k struct {
		ID uuid.UUID `json:"id"`
	}
	if err := json.Unmarshal(r.Claim, &c); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(r.Task, &k); err != nil {
		t.Fatal(err)
	}
	return c.ID, k.ID
}

func (b *bundle) as(user uuid.UUID, role string) *fieldsync.Identity {
	return &fieldsync.Identity{UserID: user, Role: role, BranchID: b.branch, Name: role}
}

// command applies one update as id and fails the test if it is not applied.
func (b *bundle) command(t testing.TB, id *fieldsync.Identity, typ, op string, entity uuid.UUID, fields map[string]any) sync.Result {
	t.Helper()
	raw := map[string]json.RawMessage{}
	for k, v := range fields {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		raw[k] = data
	}
	r, err := b.engine.Command(context.Background(), id, sync.Mutation{Type: typ, Op: op, EntityID: entity, Fields: raw})
	if err != nil {
		t.Fatalf("%s %s %s: %v", op, typ, entity, err)
	}
	if r.Status == sync.StatusRejected || r.Status == sync.StatusConflict {
		t.Fatalf("%s %s %s: %s %+v %+v", op, typ, entity, r.Status, r.Error, r.Conflicts)
	}
	return r
}

// storedNotification is a row of the notifications table.
type storedNotification struct {
	ID         uuid.UUID
	UserID     uuid.UUID
	Kind       string
	Title      string
	Body       string
	EntityType string
	EntityID   uuid.UUID
	Data       map[string]any
}

// notifications returns the notifications written so far, oldest first.
func (b *bundle) notifications(t testing.TB) []storedNotification {
	t.Helper()
	rows, err := b.db.Pool.Query(context.Background(), `SELECT id, user_id, kind, title, body, entity_type, entity_id, data
		FROM notifications ORDER BY created_at, id`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[storedNotification])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// forUser returns the notifications of user.
func forUser(ns []storedNotification, user uuid.UUID) []storedNotification {
	var out []storedNotification
	for _, n := range ns {
		if n.UserID == user {
			out = append(out, n)
		}
	}
	return out
}

// pushJobs counts the push jobs by state.
func (b *bundle) pushJobs(t testing.TB) map[string]int {
	t.Helper()
	rows, err := b.db.Pool.Query(context.Background(), `SELECT state::text, count(*)::int FROM river_job WHERE queue = $1 GROUP BY 1`, notify.QueuePush)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatal(err)
		}
		out[s] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitIdle waits until no push job is left to work (every one completed, cancelled or discarded).
func (b *bundle) waitIdle(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		jobs := b.pushJobs(t)
		if jobs["available"]+jobs["running"]+jobs["retryable"]+jobs["scheduled"]+jobs["pending"] == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("push jobs still waiting after %s: %v", timeout, jobs)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// deliveryState returns the recorded outcome of pushing notification to device ("" if none).
func (b *bundle) deliveryState(t testing.TB, notification, device uuid.UUID) string {
	t.Helper()
	var state string
	err := b.db.Pool.QueryRow(context.Background(), `SELECT state FROM notification_deliveries WHERE notification_id = $1 AND device_id = $2`,
		notification, device).Scan(&state)
	if err != nil && err != pgx.ErrNoRows {
		t.Fatal(err)
	}
	return state
}
