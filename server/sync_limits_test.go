package server_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/google/uuid"
)

// TestClaimReplayAnswersOnlyWhoMaySee: reporting a claim again with its id answers with the claim
// only the caller who reported it, or one whose scope holds it. A processor re-posting a claim of
// their branch that is not in their queue learns nothing of it.
func TestClaimReplayAnswersOnlyWhoMaySee(t *testing.T) {
	t.Parallel()
	b := setup(t)
	mgr, proc, proc2 := b.signIn(t, "manager", ""), b.signIn(t, "processor", ""), b.signIn(t, "processor", "")
	cust := b.newCustomer(t, mgr)
	report := map[string]any{"id": uuid.New(), "customer_id": cust, "policy_number": "POL-77", "kind": "accident",
		"description": "Private details of the accident."}

	r := b.do(t, "POST", "/v1/claims", mgr.token, report)
	expect(t, r, http.StatusCreated, "")
	var made struct {
		Claim map[string]any `json:"claim"`
	}
	r.json(t, &made)
	number := made.Claim["number"].(string)

	// A reported claim is not yet in the processors' queue: a processor's replay is an id taken.
	r = b.do(t, "POST", "/v1/claims", proc.token, report)
	expect(t, r, http.StatusConflict, "already_exists")
	if strings.Contains(string(r.body), number) || strings.Contains(string(r.body), "Private") {
		t.Fatalf("the replay leaked the claim: %s", r.body)
	}
	// The manager who reported it (and holds the whole branch) is answered with it.
	r = b.do(t, "POST", "/v1/claims", mgr.token, report)
	expect(t, r, http.StatusCreated, "")
	if !strings.Contains(string(r.body), number) {
		t.Fatalf("the reporter's replay: %s", r.body)
	}

	// A processor's own report is answered to them, though their queue does not hold it yet; not
	// to another processor.
	own := map[string]any{"id": uuid.New(), "customer_id": cust, "policy_number": "POL-78", "kind": "illness"}
	expect(t, b.do(t, "POST", "/v1/claims", proc.token, own), http.StatusCreated, "")
	expect(t, b.do(t, "POST", "/v1/claims", proc.token, own), http.StatusCreated, "")
	expect(t, b.do(t, "POST", "/v1/claims", proc2.token, own), http.StatusConflict, "already_exists")

	// Once the claim is in the queue, every processor of the branch holds it.
	if _, err := b.db.Pool.Exec(context.Background(), `UPDATE claims SET status = 'under_review' WHERE id = $1`, own["id"]); err != nil {
		t.Fatal(err)
	}
	expect(t, b.do(t, "POST", "/v1/claims", proc2.token, own), http.StatusCreated, "")
	if n := b.countRows(t, "claims", "customer_id = $1", cust); n != 2 {
		t.Fatalf("%d claims, want 2", n)
	}
}

// TestSyncCursorFromTheFuture: a cursor past anything the server has handed out (a transaction not
// yet begun, a version not yet made) is expired, not served as if nothing had happened.
func TestSyncCursorFromTheFuture(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := newConflictFixture(t, b)
	b.pullAll(t, f.rep)
	raw, err := base64.RawURLEncoding.DecodeString(f.rep.cursor)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 6 || parts[3] != "c" {
		t.Fatalf("the cursor is not what this test expects: %q", raw)
	}
	xid, err := strconv.ParseUint(parts[4], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	cursorOf := func(kind, xid, last string) string {
		return base64.RawURLEncoding.EncodeToString([]byte(strings.Join([]string{parts[0], parts[1], parts[2], kind, xid, last}, "|")))
	}
	future := strconv.FormatUint(xid+1_000_000_000, 10)
	for name, cursor := range map[string]string{
		"transaction":          cursorOf("c", future, "0"),
		"version":              cursorOf("c", parts[4], strconv.FormatInt(1<<60, 10)),
		"snapshot transaction": base64.RawURLEncoding.EncodeToString([]byte(strings.Join([]string{parts[0], parts[1], parts[2], "s", future, "0", uuid.Nil.String()}, "|"))),
	} {
		t.Run(name, func(t *testing.T) {
			expect(t, b.do(t, "GET", pullPath(cursor, 0, 0), f.rep.token, nil), http.StatusGone, "cursor_expired")
		})
	}
	// The real cursor is served.
	expect(t, b.do(t, "GET", pullPath(f.rep.cursor, 0, 0), f.rep.token, nil), http.StatusOK, "")
}

// TestSyncLongPollEndsWithTheSession: a long-poll opened before its session was revoked answers
// 401, with the code any request of that session gets, not the change that woke it.
func TestSyncLongPollEndsWithTheSession(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := newConflictFixture(t, b)
	b.pullAll(t, f.rep)

	poll := longPoll(b.srv.URL, f.rep, 30)
	// Let the poll pass authentication and start waiting (were it later, it is refused all the same).
	time.Sleep(300 * time.Millisecond)
	expect(t, b.do(t, "POST", "/v1/auth/logout", f.rep.token, nil), http.StatusNoContent, "")
	b.pushOne(t, f.mgr, "applied", updateOp("task", f.task, b.version(t, "tasks", f.task), syncFields{"title": "After the logout"}))

	var r pollResult
	select {
	case r = <-poll:
	case <-time.After(70 * time.Second):
		t.Fatal("the long-poll never answered")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	revoked := b.do(t, "GET", "/v1/me", f.rep.token, nil)
	expect(t, revoked, http.StatusUnauthorized, "")
	expect(t, r.res, http.StatusUnauthorized, revoked.errorCode(t))
	if strings.Contains(string(r.res.body), "After the logout") {
		t.Fatalf("the revoked session's poll carried data: %s", r.res.body)
	}
}

// openPull starts a long-poll as u that lasts until it is cancelled, and returns where its answer
// will arrive and the function that cancels it.
func openPull(base string, u *syncUser, wait int) (<-chan response, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan response, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+pullPath(u.cursor, 0, wait), nil)
		req.Header.Set("Authorization", "Bearer "+u.token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			out <- response{}
			return
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		out <- response{status: res.StatusCode, header: res.Header, body: body}
	}()
	return out, cancel
}

// TestSyncLongPollsPerUserAreCapped: one user holds at most MaxWaitsPerUser long-polls at once on a
// replica; one more is refused 429 too_many_waits with Retry-After, at once. Other users, and pulls
// that do not wait, are not counted; a place frees when a poll ends.
func TestSyncLongPollsPerUserAreCapped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.useEngine(t, func(s *apptest.Setup) { s.LongPollsPerUser = 2 })
	f := newConflictFixture(t, b)
	other := b.signIn(t, "rep", "")
	b.pullAll(t, f.rep)
	b.pullAll(t, other)

	// Three polls of one user with nothing to bring: two wait, whichever came last is refused.
	answers := make(chan response, 3)
	var cancels []func()
	for range 3 {
		answer, cancel := openPull(b.srv.URL, f.rep, 60)
		t.Cleanup(cancel)
		cancels = append(cancels, cancel)
		go func() { answers <- <-answer }()
	}
	refused := <-answers
	expect(t, refused, http.StatusTooManyRequests, "too_many_waits")
	if refused.header.Get("Retry-After") == "" {
		t.Fatalf("429 without Retry-After: %v", refused.header)
	}
	expect(t, b.do(t, "GET", pullPath(f.rep.cursor, 0, 0), f.rep.token, nil), http.StatusOK, "")
	expect(t, b.do(t, "GET", pullPath(other.cursor, 0, 1), other.token, nil), http.StatusOK, "")
	select {
	case r := <-answers:
		t.Fatalf("a waiting poll answered %d while nothing changed: %s", r.status, r.body)
	default:
	}

	for _, cancel := range cancels {
		cancel()
	}
	for i := 0; ; i++ {
		r := b.do(t, "GET", pullPath(f.rep.cursor, 0, 1), f.rep.token, nil)
		if r.status == http.StatusOK {
			break
		}
		expect(t, r, http.StatusTooManyRequests, "too_many_waits")
		if i == 50 {
			t.Fatal("the places of ended long-polls were never freed")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestEventStreamsPerUserAreCapped: one user holds at most MaxStreamsPerUser event streams at once
// on a replica; one more is refused 429 too_many_waits with Retry-After, and a place frees when a
// stream ends.
func TestEventStreamsPerUserAreCapped(t *testing.T) {
	t.Parallel()
	e := evSetup(t, func(s *apptest.Setup) { s.StreamsPerUser = 1 })
	rep := e.signIn(t, fieldsync.RoleRep, "agent", "Alice Agent")
	other := e.signIn(t, fieldsync.RoleRep, "agent", "Bob Agent")

	first := openEvents(t, e.srv.URL, rep.token, "")
	first.next(t, 10*time.Second, "ready")

	open := func(token string) *http.Response {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/v1/events", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	res := open(rep.token)
	body, _ := io.ReadAll(res.Body)
	r := response{status: res.StatusCode, header: res.Header, body: body}
	expect(t, r, http.StatusTooManyRequests, "too_many_waits")
	if res.Header.Get("Retry-After") == "" {
		t.Fatalf("429 without Retry-After: %v", res.Header)
	}
	openEvents(t, e.srv.URL, other.token, "").next(t, 10*time.Second, "ready")

	first.close()
	for i := 0; ; i++ {
		res := open(rep.token)
		if res.StatusCode == http.StatusOK {
			break
		}
		if res.StatusCode != http.StatusTooManyRequests || i == 50 {
			t.Fatalf("after the first stream ended: %d", res.StatusCode)
		}
		res.Body.Close()
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPersonalReadsAreNotStored: the screens' reads and pulls carry personal data for one caller:
// no cache may keep them, answers and errors alike.
func TestPersonalReadsAreNotStored(t *testing.T) {
	t.Parallel()
	w := newScreenWorld(t)
	claim, _ := w.claim(screenClaimSpec{status: "under_review"})
	for _, tc := range []struct {
		path   string
		who    screenUser
		status int
	}{
		{"/v1/review-queue", w.processor, 200},
		{"/v1/claims", w.processor, 200},
		{"/v1/claims/" + claim.String(), w.processor, 200},
		{"/v1/claims/" + uuid.NewString(), w.processor, 404},
		{"/v1/tasks", w.manager, 200},
		{"/v1/tasks?bogus=1", w.manager, 400},
		{"/v1/conflicts", w.manager, 200},
		{"/v1/branch/figures", w.manager, 200},
		{"/v1/sync/pull", w.rep, 200},
		{"/v1/sync/pull?cursor=garbage", w.rep, 410},
	} {
		r := w.b.do(t, "GET", tc.path, tc.who.token, nil)
		expect(t, r, tc.status, "")
		if got := r.header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("GET %s: Cache-Control %q, want no-store", tc.path, got)
		}
	}
}
