package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/fieldsync/fieldsync/internal/branchwake"
	"github.com/fieldsync/fieldsync/internal/fixture"
	"github.com/fieldsync/fieldsync/internal/testenv"
	"github.com/fieldsync/fieldsync/notify"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// evEnv is a server with the event stream and the notification rules (push off), over a database
// of its own, as the event tests need it. It reuses the bundle of setup_test.go for requests and
// sign-ins.
type evEnv struct {
	*bundle
	notify *notify.Service
}

// evSetup builds the service with its notifications (push off), changed by opts, over a
// database of its own.
func evSetup(t *testing.T, opts ...func(*apptest.Setup)) *evEnv {
	t.Helper()
	db := testenv.DB(t)
	a := apptest.New(t, append([]func(*apptest.Setup){withNotifications, overPool(streamsPool(t, db.URL))}, opts...)...)
	a.DB = db
	return &evEnv{bundle: newBundle(t, a), notify: a.Notify}
}

// withNotifications is an apptest option: the notifications service (rules, event stream) is on.
func withNotifications(s *apptest.Setup) {
	s.NoNotifications = false
	s.MaxBodyBytes = 1 << 20
}

// streamsPool is a pool of its own over the database at url, larger than testenv's: streams and
// long-polls hold connections while they wait.
func streamsPool(t *testing.T, url string) *pgxpool.Pool { return namedStreamsPool(t, url, "") }

// namedStreamsPool is streamsPool with its connections named appName in pg_stat_activity.
func namedStreamsPool(t *testing.T, url, appName string) *pgxpool.Pool {
	t.Helper()
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	pcfg.MaxConns = 10
	if appName != "" {
		pcfg.ConnConfig.RuntimeParams["application_name"] = appName
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// eventsReplica builds another replica with notifications over the env's database.
func (e *evEnv) eventsReplica(t *testing.T) *apptest.App {
	t.Helper()
	return e.replica(t, withNotifications, overPool(streamsPool(t, e.db.URL)))
}

// evUser is a signed-in user.
type evUser struct {
	id    uuid.UUID
	token string
}

func (e *evEnv) signIn(t *testing.T, role, repKind, name string) evUser {
	t.Helper()
	login := role + "-" + uuid.NewString()[:8]
	id, err := e.accounts.CreateUser(context.Background(), account.NewUser{BranchID: e.branchID, Role: role, RepKind: repKind,
		Login: login, Name: name, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	return evUser{id: id, token: e.login(t, login).AccessToken}
}

// customer creates a customer of the branch looked after by agent.
func (e *evEnv) customer(t *testing.T, name string, agent uuid.UUID) uuid.UUID {
	t.Helper()
	return fixture.New(t, e.db.Pool).Customer(fixture.Customer{Branch: e.branchID, Name: name, Agent: agent})
}

// report reports a hospitalised claim through engine and returns when it has committed.
func (e *evEnv) report(t *testing.T, engine *sync.Engine, customer uuid.UUID) {
	t.Helper()
	_, err := engine.ReportClaim(context.Background(), &fieldsync.Identity{Role: fieldsync.RoleIntegration},
		sync.ClaimReport{CustomerID: customer, PolicyNumber: "POL-1", Kind: "hospitalisation", Hospitalised: true, Hospital: "St Mary's"})
	if err != nil {
		t.Fatal(err)
	}
}

// sseEvent is one event read from a stream ("comment" for a comment line).
type sseEvent struct {
	id, typ string
	data    json.RawMessage
	at      time.Time
}

// sseStream is an open GET /v1/events.
type sseStream struct {
	res    *http.Response
	events chan sseEvent
	cancel context.CancelFunc
}

// openEvents opens the event stream with token, resuming after lastID when it is not empty, and
// fails the test unless it is answered 200 with text/event-stream.
func openEvents(t *testing.T, baseURL, token, lastID string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", baseURL+"/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept-Encoding", "gzip") // the stream must not be compressed all the same
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") ||
		res.Header.Get("Content-Encoding") != "" {
		cancel()
		t.Fatalf("GET /v1/events: %d %s (%s)", res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Content-Encoding"))
	}
	s := &sseStream{res: res, events: make(chan sseEvent, 1000), cancel: cancel}
	go func() {
		defer close(s.events)
		r := bufio.NewReader(res.Body)
		var ev sseEvent
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "":
				if ev.typ != "" {
					ev.at = time.Now()
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				s.events <- sseEvent{typ: "comment", data: json.RawMessage(strings.TrimSpace(line[1:])), at: time.Now()}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.typ = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = json.RawMessage(line[6:])
			}
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *sseStream) close() {
	s.cancel()
	s.res.Body.Close()
}

// next returns the next event of one of types (skipping others), failing the test after timeout.
func (s *sseStream) next(t *testing.T, timeout time.Duration, types ...string) sseEvent {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("the stream ended while waiting for %v", types)
			}
			for _, typ := range types {
				if ev.typ == typ {
					return ev
				}
			}
		case <-deadline:
			t.Fatalf("no %v event within %s", types, timeout)
		}
	}
}

// none fails the test if an event of one of types comes within d.
func (s *sseStream) none(t *testing.T, d time.Duration, types ...string) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return
			}
			for _, typ := range types {
				if ev.typ == typ {
					t.Fatalf("unexpected %s event: %s", ev.typ, ev.data)
				}
			}
		case <-deadline:
			return
		}
	}
}

type evNotification struct {
	ID     uuid.UUID `json:"id"`
	UserID uuid.UUID `json:"user_id"`
	Kind   string    `json:"kind"`
	Title  string    `json:"title"`
	Read   bool      `json:"read"`
}

func decodeNotification(t *testing.T, ev sseEvent) evNotification {
	t.Helper()
	var n evNotification
	if err := json.Unmarshal(ev.data, &n); err != nil {
		t.Fatalf("notification event %s: %v", ev.data, err)
	}
	return n
}

func TestEventStreamSendsANewNotificationWithinASecond(t *testing.T) {
	t.Parallel()
	e := evSetup(t)
	rep := e.signIn(t, fieldsync.RoleRep, "hospital", "Hugo Hospital")
	agent := e.signIn(t, fieldsync.RoleRep, "agent", "Alice Agent")
	customer := e.customer(t, "Jane Doe", agent.id)

	stream := openEvents(t, e.srv.URL, rep.token, "")
	ready := stream.next(t, 5*time.Second, "ready")
	if ready.id == "" {
		t.Fatal("the ready event has no id to resume from")
	}
	committed := time.Now()
	e.report(t, e.engine, customer)
	ev := stream.next(t, time.Second, "notification")
	n := decodeNotification(t, ev)
	if n.UserID != rep.id || n.Kind != "claim_reported" || !strings.Contains(n.Title, "Jane Doe") || n.Read {
		t.Errorf("event %s", ev.data)
	}
	t.Logf("commit to event: %s", ev.at.Sub(committed))
	if ev.id == "" || ev.id == ready.id {
		t.Errorf("event id %q (ready was %q)", ev.id, ready.id)
	}
	// The visit entered the rep's scope: a pull now brings it.
	stream.next(t, time.Second, "sync")
	// The agent's notification is not the rep's.
	stream.none(t, 300*time.Millisecond, "notification")
}

func TestEventStreamResumesWithLastEventID(t *testing.T) {
	t.Parallel()
	e := evSetup(t)
	rep := e.signIn(t, fieldsync.RoleRep, "hospital", "Hugo Hospital")
	agent := e.signIn(t, fieldsync.RoleRep, "agent", "Alice Agent")

	first := openEvents(t, e.srv.URL, rep.token, "")
	first.next(t, 5*time.Second, "ready")
	e.report(t, e.engine, e.customer(t, "Jane Doe", agent.id))
	seen := first.next(t, 2*time.Second, "notification")
	first.close()

	// Written while the screen was away: two for the rep, one for the agent only.
	e.report(t, e.engine, e.customer(t, "John Roe", agent.id))
	e.report(t, e.engine, e.customer(t, "Mary Major", agent.id))

	again := openEvents(t, e.srv.URL, rep.token, seen.id)
	if r := again.next(t, 5*time.Second, "ready"); !strings.Contains(string(r.data), `"resumed":true`) {
		t.Errorf("ready %s, want to resume", r.data)
	}
	got := map[string]bool{}
	for !got["John Roe"] || !got["Mary Major"] {
		ev := again.next(t, 2*time.Second, "notification")
		n := decodeNotification(t, ev)
		if n.UserID != rep.id {
			t.Fatalf("another user's notification: %s", ev.data)
		}
		name := strings.TrimPrefix(n.Title, "Hospital visit: ")
		if name != "Jane Doe" && got[name] {
			t.Errorf("%s's notification came twice", name)
		}
		got[name] = true // Jane Doe's may come again: resuming may repeat, never miss
	}
	again.next(t, 2*time.Second, "sync")
}

// insertNotification writes a notification for user in tx, as a rule would.
func insertNotification(t *testing.T, tx pgx.Tx, user uuid.UUID, title string) {
	t.Helper()
	fixture.New(t, tx).Notification(user, title)
}

func TestEventStreamSendsAtCommitAndResumingMissesNothingCommittedLate(t *testing.T) {
	t.Parallel()
	e := evSetup(t)
	rep := e.signIn(t, fieldsync.RoleRep, "hospital", "Hugo Hospital")
	stream := openEvents(t, e.srv.URL, rep.token, "")
	stream.next(t, 5*time.Second, "ready")
	ctx := context.Background()

	// The first transaction writes and stays open; the second writes after it and commits first.
	slow, err := e.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Rollback(ctx) //nolint:errcheck
	insertNotification(t, slow, rep.id, "first written")
	fast, err := e.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	insertNotification(t, fast, rep.id, "second written")
	if err := fast.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// The second is sent at once: an open transaction holds nobody's notifications back.
	second := stream.next(t, time.Second, "notification")
	if n := decodeNotification(t, second); n.Title != "second written" {
		t.Fatalf("got %q", n.Title)
	}
	// The screen goes away; the first commits, behind the second in the log.
	stream.close()
	if err := slow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	again := openEvents(t, e.srv.URL, rep.token, second.id)
	again.next(t, 5*time.Second, "ready")
	for {
		n := decodeNotification(t, again.next(t, 2*time.Second, "notification"))
		if n.Title == "first written" {
			break
		}
		if n.Title != "second written" { // may come again
			t.Fatalf("got %q", n.Title)
		}
	}

	// Live, the same: the late one is sent when it commits.
	live := openEvents(t, e.srv.URL, rep.token, "")
	live.next(t, 5*time.Second, "ready")
	slow2, err := e.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer slow2.Rollback(ctx) //nolint:errcheck
	insertNotification(t, slow2, rep.id, "third written")
	fast2, err := e.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	insertNotification(t, fast2, rep.id, "fourth written")
	if err := fast2.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := decodeNotification(t, live.next(t, time.Second, "notification")); n.Title != "fourth written" {
		t.Fatalf("got %q", n.Title)
	}
	if err := slow2.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := decodeNotification(t, live.next(t, time.Second, "notification")); n.Title != "third written" {
		t.Fatalf("got %q, want the one committed late", n.Title)
	}
}

func TestEventStreamAcrossReplicas(t *testing.T) {
	t.Parallel()
	e := evSetup(t)
	engineB := e.eventsReplica(t).Engine
	manager := e.signIn(t, fieldsync.RoleManager, "", "Maria Manager")
	rep := e.signIn(t, fieldsync.RoleRep, "hospital", "Hugo Hospital")
	agent := e.signIn(t, fieldsync.RoleRep, "agent", "Alice Agent")

	screen := openEvents(t, e.srv.URL, manager.token, "") // connected to replica A
	screen.next(t, 5*time.Second, "ready")
	phone := openEvents(t, e.srv.URL, rep.token, "")
	phone.next(t, 5*time.Second, "ready")

	e.report(t, engineB, e.customer(t, "Jane Doe", agent.id)) // written through replica B
	// The manager holds the whole branch: the new claim and task are theirs to pull.
	screen.next(t, time.Second, "sync")
	if n := decodeNotification(t, phone.next(t, time.Second, "notification")); n.Kind != "claim_reported" {
		t.Errorf("rep got %s", n.Kind)
	}
}

// TestOneListenerPerReplica: a replica's long-polls and event streams are woken through one LISTEN
// connection on the commits' channel (River listens for its jobs on its own), the sync engine's, which the notification service's streams share.
func TestOneListenerPerReplica(t *testing.T) {
	t.Parallel()
	name := "fieldsync-replica-" + uuid.NewString()[:8]
	e := evSetup(t)
	e.replica(t, withNotifications, overPool(namedStreamsPool(t, e.db.URL, name)))
	listeners := func() int {
		var n int
		err := e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND query ILIKE 'listen %' AND query LIKE '%'||$2||'%'`, name, branchwake.Channel).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	deadline := time.Now().Add(5 * time.Second)
	for listeners() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	// Listeners start together: a second one would be up by now.
	time.Sleep(300 * time.Millisecond)
	if n := listeners(); n != 1 {
		t.Fatalf("%d LISTEN connections for one replica, want 1", n)
	}
}

func TestEventStreamRefusals(t *testing.T) {
	t.Parallel()
	e := evSetup(t)
	rep := e.signIn(t, fieldsync.RoleRep, "agent", "Alice Agent")
	expect(t, e.do(t, "GET", "/v1/events", "", nil), http.StatusUnauthorized, "token_invalid")

	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+rep.token)
	req.Header.Set("Last-Event-ID", "not-an-id")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("a malformed Last-Event-ID: %d, want 400", res.StatusCode)
	}

	login := "admin-" + uuid.NewString()[:8]
	if _, err := e.accounts.CreateUser(context.Background(), account.NewUser{Role: "admin", Login: login, Name: "Ada", Password: testPassword}); err != nil {
		t.Fatal(err)
	}
	expect(t, e.do(t, "GET", "/v1/events", e.login(t, login).AccessToken, nil), http.StatusForbidden, "forbidden")

	// An id the log no longer reaches (here: one from the future) replays the inbox.
	stream := openEvents(t, e.srv.URL, rep.token, "99999999999-1-1")
	stream.next(t, 5*time.Second, "sync")
	if r := stream.next(t, 2*time.Second, "ready"); !strings.Contains(string(r.data), `"resumed":false`) {
		t.Errorf("ready %s", r.data)
	}
}

func TestEventStreamHeartbeatsAndEndsWithTheSession(t *testing.T) {
	t.Parallel()
	e := evSetup(t, func(s *apptest.Setup) { s.Heartbeat = 200 * time.Millisecond })
	rep := e.signIn(t, fieldsync.RoleRep, "agent", "Alice Agent")
	stream := openEvents(t, e.srv.URL, rep.token, "")
	stream.next(t, 5*time.Second, "ready")
	for range 3 {
		if c := stream.next(t, time.Second, "comment"); string(c.data) != "heartbeat" {
			t.Errorf("comment %q", c.data)
		}
	}
	expect(t, e.do(t, "POST", "/v1/auth/logout", rep.token, nil), http.StatusNoContent, "")
	ev := stream.next(t, 2*time.Second, "error")
	if !strings.Contains(string(ev.data), "session_revoked") {
		t.Errorf("error event %s, want session_revoked", ev.data)
	}
	select {
	case _, open := <-stream.events:
		if open {
			t.Error("the stream went on after its session ended")
		}
	case <-time.After(2 * time.Second):
		t.Error("the stream did not end with its session")
	}
}

// evPull pulls as token until the page with has_more false, and returns the changes and the
// cursor. With a cursor it waits (up to 5 s) for a change: one committed may be held back by an
// older transaction still running, of this test or of another.
func (e *evEnv) evPull(t *testing.T, token, cursor string) ([]sync.Change, string) {
	t.Helper()
	var all []sync.Change
	wait := cursor != ""
	for {
		path := "/v1/sync/pull?limit=5000"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		if wait {
			path += "&wait=5"
		}
		r := e.do(t, "GET", path, token, nil)
		expect(t, r, http.StatusOK, "")
		var page struct {
			Changes []sync.Change `json:"changes"`
			Cursor  string        `json:"cursor"`
			HasMore bool          `json:"has_more"`
		}
		r.json(t, &page)
		all, cursor = append(all, page.Changes...), page.Cursor
		if !page.HasMore {
			return all, cursor
		}
		wait = false
	}
}

// pullUntil pulls from cursor until a change satisfies want (failing the test after 30 s: a
// pull serves nothing past a transaction still running anywhere on the server), and
// returns the cursor after it.
func (e *evEnv) pullUntil(t *testing.T, token, cursor string, want func(sync.Change) bool) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var seen []sync.Change
	for time.Now().Before(deadline) {
		var changes []sync.Change
		changes, cursor = e.evPull(t, token, cursor)
		seen = append(seen, changes...)
		for _, c := range changes {
			if want(c) {
				return cursor
			}
		}
	}
	t.Fatalf("the pulls brought %s, not the change awaited", changeList(seen))
	return ""
}

// notificationChanges returns the last change of each notification among changes (a pull may
// bring a record again), in order.
func notificationChanges(changes []sync.Change) []sync.Change {
	var out []sync.Change
	at := map[uuid.UUID]int{}
	for _, c := range changes {
		if c.Type != sync.TypeNotification {
			continue
		}
		if i, ok := at[c.ID]; ok {
			out[i] = c
			continue
		}
		at[c.ID] = len(out)
		out = append(out, c)
	}
	return out
}

func TestInboxSyncsIsMarkedReadByPushAndExpiresAfterTheWindow(t *testing.T) {
	t.Parallel()
	// Long enough for the pull of the read notification to come before it expires, even on a busy
	// machine (a pull serves nothing past a transaction still running anywhere on the server): it
	// passes on the clock, not in real time.
	const window = time.Minute
	e := evSetup(t, func(s *apptest.Setup) { s.ScopeWindow = window })
	rep := e.signIn(t, fieldsync.RoleRep, "hospital", "Hugo Hospital")
	agent := e.signIn(t, fieldsync.RoleRep, "agent", "Alice Agent")
	e.report(t, e.engine, e.customer(t, "Jane Doe", agent.id))
	e.report(t, e.engine, e.customer(t, "John Roe", agent.id))

	// The inbox arrives with the snapshot, as records.
	changes, cursor := e.evPull(t, rep.token, "")
	inbox := notificationChanges(changes)
	if len(inbox) != 2 {
		t.Fatalf("%d notifications in the snapshot, want 2", len(inbox))
	}
	var n struct {
		ID      uuid.UUID `json:"id"`
		Read    bool      `json:"read"`
		Version int64     `json:"version"`
		Kind    string    `json:"kind"`
	}
	if err := json.Unmarshal(inbox[0].Data, &n); err != nil {
		t.Fatal(err)
	}
	if n.Read || n.Kind != "claim_reported" {
		t.Fatalf("notification %s", inbox[0].Data)
	}
	stream := openEvents(t, e.srv.URL, rep.token, "")
	stream.next(t, 5*time.Second, "ready")

	// Read on the phone: a push.
	r := e.do(t, "POST", "/v1/sync/push", rep.token, map[string]any{"mutations": []map[string]any{{
		"id": uuid.New(), "type": "notification", "op": "update", "entity_id": n.ID, "base_version": n.Version,
		"fields": map[string]any{"read": true},
	}}})
	expect(t, r, http.StatusOK, "")
	if !strings.Contains(string(r.body), `"status":"applied"`) || !strings.Contains(string(r.body), `"read":true`) {
		t.Fatalf("push: %s", r.body)
	}
	// Every device and screen of the user learns it. (A stream or a pull may send again a
	// notification it sent already, written about when the snapshot began: the client keeps one
	// per id.)
	for {
		ev := decodeNotification(t, stream.next(t, 2*time.Second, "notification"))
		if ev.ID == n.ID && ev.Read {
			break
		}
	}
	cursor = e.pullUntil(t, rep.token, cursor, func(c sync.Change) bool {
		var d struct {
			Read bool `json:"read"`
		}
		return c.ID == n.ID && c.Op == "upsert" && json.Unmarshal(c.Data, &d) == nil && d.Read
	})

	// A window later the janitor takes the read one off the device; the unread one stays.
	e.clock.Advance(window + time.Second)
	if err := e.engine.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.pullUntil(t, rep.token, cursor, func(c sync.Change) bool {
		return c.ID == n.ID && c.Op == "delete" && c.Reason == "out_of_scope"
	})
	stream.next(t, 2*time.Second, "sync") // it left the inbox: pull
	changes, _ = e.evPull(t, rep.token, "")
	if inbox := notificationChanges(changes); len(inbox) != 1 || inbox[0].ID == n.ID {
		t.Errorf("a fresh snapshot holds %d notifications, want only the unread one", len(inbox))
	}
}

func changeList(changes []sync.Change) string {
	var parts []string
	for _, c := range changes {
		parts = append(parts, c.Type+" "+c.ID.String()+" "+c.Op+" "+c.Reason)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func TestEventStreamsEndWhenTheServerShutsDown(t *testing.T) {
	t.Parallel()
	e := evSetup(t)
	rep := e.signIn(t, fieldsync.RoleRep, "agent", "Alice Agent")
	s := e.replica(t, withNotifications, overPool(streamsPool(t, e.db.URL)),
		func(s *apptest.Setup) { s.ShutdownTimeout = 20 * time.Second }).Server
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()

	stream := openEvents(t, "http://"+ln.Addr().String(), rep.token, "")
	stream.next(t, 5*time.Second, "ready")
	started := time.Now()
	stop()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the shutdown waited for the open stream")
	}
	if took := time.Since(started); took > 2*time.Second {
		t.Errorf("the shutdown took %s", took)
	}
	select {
	case _, open := <-stream.events:
		for open {
			_, open = <-stream.events
		}
	case <-time.After(2 * time.Second):
		t.Error("the stream is still open")
	}
}
