package sim

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/apitest"
	"github.com/google/uuid"
)

// The device's protocol steps, one at a time, against a real server.

func newTestDevice(t *testing.T, srv *apitest.Server, login string) *Device {
	t.Helper()
	d := NewDevice(Config{Server: srv.URL, Login: login, Password: apitest.Password, PullLimit: 3})
	if err := d.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d
}

// checkConverged fails the test unless the device's store equals a fresh snapshot after a sync.
// A pull serves a change once every older transaction on the database server has ended (other
// tests' too), so a change may come a moment after the snapshot shows it: it tries for a while.
func checkConverged(t *testing.T, d *Device) {
	t.Helper()
	var diffs []string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err := d.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		snap, err := d.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(snap) == 0 {
			t.Fatal("empty snapshot: nothing was compared")
		}
		if diffs = Diff(d.Store(), snap); len(diffs) == 0 {
			return
		}
	}
	for _, diff := range diffs {
		t.Error(diff)
	}
}

// A push whose answer is lost is sent again, with the same mutation ids, and the server answers
// with the results it gave the first time: the customer is created once, at one version.
func TestLostPushAnswerIsSentAgainAndAppliedOnce(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{})
	mgr := srv.NewUser(t, "manager", "")
	d := newTestDevice(t, srv, mgr.Login)
	ctx := context.Background()

	id := uuid.New()
	d.queue("customer", "create", id, map[string]any{"name": "Ana Costa"})
	d.queue("customer", "update", uuid.New(), map[string]any{"name": "nobody"}) // not held: not queued
	if d.Pending() != 1 {
		t.Fatalf("%d mutations queued, want 1: an update needs the device's copy for its base_version", d.Pending())
	}
	d.Network().SetFlaky(1, 0)
	if err := d.Sync(ctx); !errors.Is(err, ErrDropped) {
		t.Fatalf("sync over a network that loses every answer: %v, want ErrDropped", err)
	}
	if d.Pending() != 1 || d.confirmed("customer", id) {
		t.Fatal("a push whose answer was lost must stay in the outbox, unconfirmed")
	}
	d.Network().SetFlaky(0, 0)
	if err := d.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	st := d.stats.Totals()
	if st.Replays != 1 || st.ReplayMismatches != 0 || st.Mutations["applied"] != 1 {
		t.Fatalf("replays %d (differed %d), applied %d; want the one replay, answered as the first time", st.Replays, st.ReplayMismatches, st.Mutations["applied"])
	}
	var n int
	if err := srv.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM changes WHERE entity_id = $1`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("the customer has %d changes, want 1: the replay was applied again", n)
	}
	checkConverged(t, d)
}

// A cursor the server does not know (410) makes the device start again with a snapshot, and drop
// what the snapshot does not bring.
func TestExpiredCursorStartsAgainWithASnapshot(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{})
	mgr := srv.NewUser(t, "manager", "")
	d := newTestDevice(t, srv, mgr.Login)
	stale := Key{"customer", uuid.New()}
	d.store.Records[stale] = Record{Version: 7, Data: json.RawMessage(`{"id":"` + stale.ID.String() + `","name":"gone"}`)}
	d.cursor = "not-a-cursor"
	if err := d.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := d.stats.Totals(); st.Snapshots != 1 {
		t.Fatalf("%d snapshots after a 410, want 1", st.Snapshots)
	}
	if _, ok := d.store.Records[stale]; ok {
		t.Fatal("a record the snapshot did not bring is still on the device")
	}
	checkConverged(t, d)
}

// A rep's offline edit of a task the manager cancelled meanwhile: the result is a conflict, the
// device's copy becomes the server's record (cancelled), and the rep's view shows it.
func TestConflictReplacesTheLocalCopy(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{})
	mgr, rep := srv.NewUser(t, "manager", ""), srv.NewUser(t, "rep", "hospital")
	ctx := context.Background()
	m := newTestDevice(t, srv, mgr.Login)
	customer, task := uuid.New(), uuid.New()
	m.queue("customer", "create", customer, map[string]any{"name": "Ana Costa"})
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	claim := uuid.New()
	m.reports = append(m.reports, &report{body: map[string]any{"id": claim, "customer_id": customer, "policy_number": "POL-1", "kind": "accident"}})
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	m.queue("task", "create", task, map[string]any{"claim_id": claim, "kind": "follow_up", "title": "Visit", "assignee_id": rep.ID})
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	r := newTestDevice(t, srv, rep.Login)
	r.GoOffline()
	r.queue("task", "update", task, map[string]any{"status": "accepted"})
	if got := str(r.view(Key{"task", task}), "status"); got != "accepted" {
		t.Fatalf("the rep sees status %q while offline, want their own accepted", got)
	}
	m.queue("task", "update", task, map[string]any{"status": "cancelled"})
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	r.GoOnline()
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if st := r.stats.Totals(); st.Mutations["conflict"] != 1 || st.Conflicts["status_state_machine"] != 1 {
		t.Fatalf("results %v, conflicts %v; want one status_state_machine conflict", st.Mutations, st.Conflicts)
	}
	if got := str(r.view(Key{"task", task}), "status"); got != "cancelled" {
		t.Fatalf("after the conflict the rep sees status %q, want the server's cancelled", got)
	}
	checkConverged(t, r)
	checkConverged(t, m)
}

// A rejected write corrects the device's copy at once, before any pull: the result carries the
// record as the server holds it (a title renamed meanwhile), or says it is gone (the task given
// to another rep meanwhile), and the device takes it.
func TestRejectionCorrectsTheLocalCopy(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{})
	mgr, rep, rep2 := srv.NewUser(t, "manager", ""), srv.NewUser(t, "rep", "hospital"), srv.NewUser(t, "rep", "hospital")
	ctx := context.Background()
	m := newTestDevice(t, srv, mgr.Login)
	customer, claim, task := uuid.New(), uuid.New(), uuid.New()
	m.queue("customer", "create", customer, map[string]any{"name": "Ana Costa"})
	m.reports = append(m.reports, &report{body: map[string]any{"id": claim, "customer_id": customer, "policy_number": "POL-1", "kind": "accident"}})
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	m.queue("task", "create", task, map[string]any{"claim_id": claim, "kind": "follow_up", "title": "Visit", "assignee_id": rep.ID})
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	r := newTestDevice(t, srv, rep.Login)
	k := Key{"task", task}
	if _, ok := r.store.Records[k]; !ok {
		t.Fatal("the rep's device does not hold the task")
	}

	m.queue("task", "update", task, map[string]any{"title": "Visit, renamed"})
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	r.queue("task", "update", task, map[string]any{"status": "cannot_complete"}) // without the reason it needs
	if err := r.Push(ctx); err != nil {
		t.Fatal(err)
	}
	if st := r.stats.Totals(); st.Rejections["invalid_value"] != 1 {
		t.Fatalf("rejections %v, want one invalid_value", st.Rejections)
	}
	if got := str(r.view(k), "title"); got != "Visit, renamed" {
		t.Fatalf("after the rejection the rep sees title %q, want the server's", got)
	}

	m.queue("task", "update", task, map[string]any{"assignee_id": rep2.ID})
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	r.queue("task", "update", task, map[string]any{"status": "accepted"})
	if err := r.Push(ctx); err != nil {
		t.Fatal(err)
	}
	if st := r.stats.Totals(); st.Rejections["forbidden"] != 1 {
		t.Fatalf("rejections %v, want one forbidden", st.Rejections)
	}
	if _, ok := r.store.Records[k]; ok {
		t.Fatal("the task given to another rep is still on the device after the rejection said it is gone")
	}
	checkConverged(t, r)
}

func TestDiff(t *testing.T) {
	t.Parallel()
	a, b, c := Key{"task", uuid.New()}, Key{"task", uuid.New()}, Key{"claim", uuid.New()}
	server := map[Key]Record{
		a: {Version: 2, Data: json.RawMessage(`{"x": 1, "y": [1, 2]}`)},
		b: {Version: 3, Data: json.RawMessage(`{"x": 1}`)},
	}
	same := map[Key]Record{
		a: {Version: 2, Data: json.RawMessage(`{"y":[1,2],"x":1}`)},
		b: {Version: 3, Data: json.RawMessage(`{"x":1}`)},
	}
	if d := Diff(same, server); len(d) != 0 {
		t.Fatalf("equal stores differ: %v", d)
	}
	other := map[Key]Record{
		a: {Version: 2, Data: json.RawMessage(`{"x": 1, "y": [2, 1]}`)}, // data differs
		c: {Version: 1, Data: json.RawMessage(`{}`)},                    // extra; b missing
	}
	if d := Diff(other, server); len(d) != 3 {
		t.Fatalf("want 3 differences, got %q", d)
	}
	older := map[Key]Record{a: server[a], b: {Version: 2, Data: server[b].Data}}
	if d := Diff(older, server); len(d) != 1 {
		t.Fatalf("want the version difference, got %q", d)
	}
}
