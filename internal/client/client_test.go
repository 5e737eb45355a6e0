package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"net/http"
	gosync "sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/apitest"
	"github.com/fieldsync/fieldsync/internal/client"
	"github.com/fieldsync/fieldsync/internal/testenv"
	"github.com/google/uuid"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newClient(srv *apitest.Server) *client.Client {
	return client.New(srv.URL, nil, client.Device{ID: uuid.New(), Platform: "android", Name: "test phone"})
}

func signIn(t *testing.T, srv *apitest.Server, u apitest.User) *client.Client {
	t.Helper()
	c := newClient(srv)
	if err := c.Login(context.Background(), u.Login, apitest.Password); err != nil {
		t.Fatal(err)
	}
	return c
}

// wantError fails the test unless err is the server's answer with status and code.
func wantError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) || e.Status != status || e.Code != code {
		t.Fatalf("error %v, want %d %s", err, status, code)
	}
}

// pullAll pulls from cursor until has_more is false and returns the changes and the last cursor.
func pullAll(t *testing.T, c *client.Client, cursor string) ([]client.Change, string) {
	t.Helper()
	var all []client.Change
	for {
		p, err := c.Pull(context.Background(), cursor, 2, 0)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p.Changes...)
		cursor = p.Cursor
		if !p.HasMore {
			return all, cursor
		}
	}
}

func pushOne(t *testing.T, c *client.Client, m client.Mutation) client.Result {
	t.Helper()
	res, err := c.Push(context.Background(), []client.Mutation{m})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].ID != m.ID {
		t.Fatalf("results %+v for mutation %s", res, m.ID)
	}
	if res[0].Status == "rejected" {
		t.Fatalf("%s %s rejected: %+v", m.Op, m.Type, res[0].Error)
	}
	return res[0]
}

func TestLoginKnowsTheUserAndRefusesAWrongPassword(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{})
	rep := srv.NewUser(t, "rep", "hospital")
	c := signIn(t, srv, rep)
	if u := c.User(); u.ID != rep.ID || u.Role != "rep" || u.BranchID != srv.BranchID {
		t.Fatalf("signed in as %+v, want %s, rep of %s", u, rep.ID, srv.BranchID)
	}
	err := newClient(srv).Login(context.Background(), rep.Login, "wrong")
	wantError(t, err, http.StatusUnauthorized, "invalid_credentials")
	if client.Retryable(err) {
		t.Fatal("a wrong password is not worth retrying")
	}
}

// Push, pull with a cursor, a replayed push, and a 410 for a cursor the server does not know.
func TestPushThenPullSinceTheCursor(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{})
	mgr := srv.NewUser(t, "manager", "")
	c := signIn(t, srv, mgr)

	snapshot, cursor := pullAll(t, c, "")
	if len(snapshot) == 0 {
		t.Fatal("the manager's snapshot is empty: it holds at least the branch's users")
	}
	m := client.Mutation{ID: uuid.New(), Type: "customer", Op: "create", EntityID: uuid.New(),
		Fields: map[string]any{"name": "Ana Costa", "phone": "+351 912 345 678"}, ClientTime: time.Now().UTC()}
	res := pushOne(t, c, m)
	if res.Status != "applied" || res.Version == 0 || len(res.Entity) == 0 {
		t.Fatalf("create: %+v, want applied with version and entity", res)
	}

	// A change is served once every older transaction has ended, on the whole database server
	// (other tests' included): long-poll until it comes. Records the snapshot held may come
	// again (the snapshot's cursor goes on from the oldest transaction running when it began).
	var got *client.Change
	for deadline := time.Now().Add(30 * time.Second); got == nil && time.Now().Before(deadline); {
		p, err := c.Pull(context.Background(), cursor, 0, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for i, ch := range p.Changes {
			if ch.ID == m.EntityID {
				got = &p.Changes[i]
			}
		}
		cursor = p.Cursor
	}
	if got == nil || got.Type != "customer" || got.Op != "upsert" || got.Version != res.Version {
		t.Fatalf("change of the customer since the cursor: %+v, want an upsert at version %d", got, res.Version)
	}

	again := pushOne(t, c, m)
	if again.Status != res.Status || again.Version != res.Version {
		t.Fatalf("replayed push: %+v, want the first result %+v", again, res)
	}

	_, err := c.Pull(context.Background(), "bogus", 0, 0)
	wantError(t, err, http.StatusGone, "cursor_expired")
}

// An expired access token is refreshed by the client on its own, once, even when two requests
// find it expired at the same time (spending the refresh token twice would end the session).
func TestExpiredAccessTokenIsRefreshedOnce(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{})
	mgr := srv.NewUser(t, "manager", "")
	c := signIn(t, srv, mgr)
	before := c.AccessToken()

	srv.Advance(20 * time.Minute)
	var wg gosync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { _, errs[i] = c.Pull(context.Background(), "", 0, 0) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("pull after the access token expired: %v", err)
		}
	}
	if c.AccessToken() == before {
		t.Fatal("the access token was not refreshed")
	}
	// The session lives on: another expiry is refreshed again.
	srv.Advance(20 * time.Minute)
	if _, err := c.Pull(context.Background(), "", 0, 0); err != nil {
		t.Fatalf("pull after a second expiry: %v", err)
	}
}

// jpegOf returns a real JPEG of about 20 KB, several chunks of 4 KiB.
func jpegOf(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 200, 150))
	for y := range 150 {
		for x := range 200 {
			img.Set(x, y, color.RGBA{uint8(x * y), uint8(x + 3*y), uint8(7 * x), 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// failAfter is a network that fails every PATCH after the first n.
type failAfter struct {
	mu      gosync.Mutex
	patches int
	n       int
}

func (f *failAfter) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPatch {
		f.mu.Lock()
		f.patches++
		over := f.patches > f.n
		f.mu.Unlock()
		if over {
			return nil, errors.New("connection lost")
		}
	}
	return http.DefaultTransport.RoundTrip(req)
}

// A photo goes up in chunks over a connection that drops, and is resumed from the server's offset
// with a new access token: the document ends uploaded, with the declared bytes.
func TestUploadResumesAfterAnInterruption(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{Media: true})
	ctx := context.Background()
	mgrUser, repUser := srv.NewUser(t, "manager", ""), srv.NewUser(t, "rep", "hospital")
	mgr := signIn(t, srv, mgrUser)

	// A case, through the protocol: a customer, a claim reported for them, a task for the rep.
	customer, claim, task := uuid.New(), uuid.New(), uuid.New()
	pushOne(t, mgr, client.Mutation{ID: uuid.New(), Type: "customer", Op: "create", EntityID: customer, Fields: map[string]any{"name": "Ana"}})
	if err := mgr.Do(ctx, http.MethodPost, "/v1/claims", map[string]any{"id": claim, "customer_id": customer, "policy_number": "POL-1",
		"kind": "accident"}, nil); err != nil {
		t.Fatal(err)
	}
	pushOne(t, mgr, client.Mutation{ID: uuid.New(), Type: "task", Op: "create", EntityID: task,
		Fields: map[string]any{"claim_id": claim, "kind": "document_collection", "title": "Collect", "assignee_id": repUser.ID}})

	net := &failAfter{n: 2}
	rep := client.New(srv.URL, &http.Client{Transport: net}, client.Device{ID: uuid.New(), Platform: "android"})
	if err := rep.Login(ctx, repUser.Login, apitest.Password); err != nil {
		t.Fatal(err)
	}
	data := jpegOf(t)
	sum := sha256.Sum256(data)
	doc := uuid.New()
	pushOne(t, rep, client.Mutation{ID: uuid.New(), Type: "document", Op: "create", EntityID: doc, Fields: map[string]any{
		"claim_id": claim, "task_id": task, "kind": "invoice", "file_name": "invoice.jpg", "content_type": "image/jpeg",
		"size_bytes": len(data), "sha256": hex.EncodeToString(sum[:])}})

	const chunk = 4 << 10
	if len(data) <= 3*chunk {
		t.Fatalf("the photo has %d bytes: too few chunks to interrupt", len(data))
	}
	u, err := rep.CreateUpload(ctx, doc, int64(len(data)), "invoice.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Resume(ctx, u, bytes.NewReader(data), chunk); err == nil {
		t.Fatal("the upload finished over a connection that drops after two chunks")
	}
	off, err := rep.Offset(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if off != 2*chunk {
		t.Fatalf("the server holds %d bytes, want the two chunks that arrived (%d)", off, 2*chunk)
	}

	net.mu.Lock()
	net.n = 1 << 30
	net.mu.Unlock()
	srv.Advance(20 * time.Minute) // tus requests refresh an expired token too
	if err := rep.Resume(ctx, u, bytes.NewReader(data), chunk); err != nil {
		t.Fatalf("resume: %v", err)
	}

	changes, _ := pullAll(t, rep, "")
	for _, c := range changes {
		if c.Type != "document" || c.ID != doc {
			continue
		}
		var d struct {
			Status    string `json:"status"`
			SizeBytes int64  `json:"size_bytes"`
			SHA256    string `json:"sha256"`
		}
		if err := json.Unmarshal(c.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d.Status != "uploaded" || d.SizeBytes != int64(len(data)) || d.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("document after the upload: %+v, want uploaded with the photo's size and SHA-256", d)
		}
		return
	}
	t.Fatal("the rep's snapshot has no document")
}
