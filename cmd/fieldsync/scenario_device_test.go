package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/client"
	"github.com/fieldsync/fieldsync/internal/sim"
	"github.com/google/uuid"
)

// The scenario's phones and screens are the simulator's devices (sim.Device: the records of a
// scope, the pull cursor, the outbox of queued writes, the rules for taking results), driven step
// by step by the story instead of at random. A phone may have a flaky network in front of it.

// pullLimit is small so that every pull of the scenario, snapshots included, comes in pages.
const pullLimit = 7

// device is one app install, with the test's helpers to drive and read it.
type device struct {
	t    *testing.T
	name string
	sim  *sim.Device
	c    *client.Client
	// results collects the push results of the sync under way, by mutation id.
	results map[uuid.UUID]client.Result
}

// newDevice makes the device of the user login (whose name it takes) with password, over link
// (nil: a steady connection).
func newDevice(t *testing.T, baseURL, login, password string, link *flakyNet) *device {
	d := &device{t: t, name: login}
	cfg := sim.Config{Server: baseURL, Login: login, Password: password, PullLimit: pullLimit,
		OnResult: func(_ client.Mutation, r client.Result) {
			if d.results != nil {
				d.results[r.ID] = r
			}
		}}
	if link != nil {
		cfg.Transport = link
	}
	d.sim = sim.NewDevice(cfg)
	d.c = d.sim.Client()
	return d
}

// signIn logs the device in, registers its push token and takes its first snapshot.
func (d *device) signIn(ctx context.Context, pushToken string) {
	d.t.Helper()
	if err := d.sim.SignIn(ctx); err != nil {
		d.t.Fatalf("%s: %v", d.name, err)
	}
	if pushToken != "" {
		err := d.c.Do(ctx, http.MethodPut, "/v1/devices/current/push-token", map[string]string{"token": pushToken, "platform": "android"}, nil)
		if err != nil {
			d.t.Fatalf("%s: push token: %v", d.name, err)
		}
	}
	d.mustSync(ctx)
}

// id is the signed-in user's id.
func (d *device) id() uuid.UUID { return d.c.User().ID }

// queue puts a write in the outbox, as an app does whether or not it is online.
func (d *device) queue(typ, op string, entity uuid.UUID, fields map[string]any) uuid.UUID {
	d.t.Helper()
	id, ok := d.sim.Queue(typ, op, entity, fields)
	if !ok {
		d.t.Fatalf("%s's device holds no %s %s to write to", d.name, typ, entity)
	}
	return id
}

// pushAttempts counts every push request sent, retries included.
func (d *device) pushAttempts() int {
	st := d.sim.Stats()
	return st.Pushes + st.PushesLost
}

// sync pushes the outbox, then pulls until the device is up to date. A push whose answer does not
// arrive is sent again, the same mutations with the same ids, as long as the network is to blame.
// It returns the push's results by mutation id.
func (d *device) sync(ctx context.Context) (map[uuid.UUID]client.Result, error) {
	d.results = map[uuid.UUID]client.Result{}
	defer func() { d.results = nil }()
	var err error
	for attempt := 1; ; attempt++ {
		err = d.sim.Push(ctx)
		if err == nil || !client.Retryable(err) || attempt == 5 || ctx.Err() != nil {
			break
		}
		select { // an app backs off; the scenario need not wait long
		case <-time.After(time.Duration(attempt) * 20 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	if err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	results := d.results
	return results, d.sim.Pull(ctx, 0)
}

func (d *device) mustSync(ctx context.Context) map[uuid.UUID]client.Result {
	d.t.Helper()
	res, err := d.sync(ctx)
	if err != nil {
		d.t.Fatalf("%s: sync: %v", d.name, err)
	}
	return res
}

// syncUntil syncs until cond holds. A change is served to pulls once every transaction older than
// its own has ended (sync/doc.go), so a change that has committed (and been pushed about) may
// reach a pull a moment later: a device told of it pulls, long-polling, until it has it.
func (d *device) syncUntil(ctx context.Context, what string, cond func() bool) map[uuid.UUID]client.Result {
	d.t.Helper()
	res := d.mustSync(ctx)
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			d.t.Fatalf("%s's device: still not %s after 20s", d.name, what)
		}
		if err := d.sim.Pull(ctx, time.Second); err != nil {
			d.t.Fatalf("%s: %v", d.name, err)
		}
	}
	return res
}

// converged waits until the device holds exactly what a fresh install of its user would pull,
// and returns how its copy differs from the server's if it never does.
func (d *device) converged(ctx context.Context, timeout time.Duration) string {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if err := d.sim.Pull(ctx, 0); err != nil {
			d.t.Fatalf("%s: %v", d.name, err)
		}
		fresh, err := d.sim.Snapshot(ctx)
		if err != nil {
			d.t.Fatalf("%s: snapshot: %v", d.name, err)
		}
		s := strings.Join(sim.Diff(d.sim.Store(), fresh), "\n")
		if s == "" || time.Now().After(deadline) {
			return s
		}
		// The snapshot reads the tables; the change log may still hold back a change behind an
		// older open transaction (anyone's: the database is shared): pull again when it is served.
		if err := d.sim.Pull(ctx, time.Second); err != nil {
			d.t.Fatalf("%s: %v", d.name, err)
		}
	}
}

// get is the device's copy of a record.
func (d *device) get(typ string, id uuid.UUID) (json.RawMessage, bool) {
	r, ok := d.sim.Record(typ, id)
	return r.Data, ok
}

// record returns the device's copy of a record, failing the test if it has none.
func (d *device) record(typ string, id uuid.UUID) map[string]any {
	d.t.Helper()
	data, ok := d.get(typ, id)
	if !ok {
		d.t.Fatalf("%s's device holds no %s %s", d.name, typ, id)
	}
	return decode(d.t, data)
}

func (d *device) has(typ string, id uuid.UUID) bool {
	_, ok := d.get(typ, id)
	return ok
}

// field returns a field of the device's copy of a record (nil when it holds none).
func (d *device) field(typ string, id uuid.UUID, name string) any {
	data, ok := d.get(typ, id)
	if !ok {
		return nil
	}
	return decode(d.t, data)[name]
}

func (d *device) version(typ string, id uuid.UUID) int64 {
	d.t.Helper()
	r, ok := d.sim.Record(typ, id)
	if !ok {
		d.t.Fatalf("%s's device holds no %s %s to write to", d.name, typ, id)
	}
	return r.Version
}

// records returns the device's records of a type that match, in no particular order.
func (d *device) records(typ string, match func(map[string]any) bool) []map[string]any {
	var out []map[string]any
	for k, rec := range d.sim.Store() {
		if k.Type != typ {
			continue
		}
		r := decode(d.t, rec.Data)
		if match == nil || match(r) {
			out = append(out, r)
		}
	}
	return out
}

// inbox returns the device's notifications of kind about an entity.
func (d *device) inbox(kind string, entity uuid.UUID) []map[string]any {
	return d.records("notification", func(n map[string]any) bool {
		return n["kind"] == kind && n["entity_id"] == entity.String()
	})
}

// command sends a screen's command and keeps the record it answers with, by the store's rules.
func (d *device) command(ctx context.Context, typ, path string, body any) map[string]any {
	d.t.Helper()
	var res client.Result
	if err := d.c.Do(ctx, http.MethodPost, path, body, &res); err != nil {
		d.t.Fatalf("%s: POST %s: %v", d.name, path, err)
	}
	if res.Status != "applied" && res.Status != "merged" {
		d.t.Fatalf("%s: POST %s: %s %+v", d.name, path, res.Status, res)
	}
	entity := decode(d.t, res.Entity)
	if _, err := uuid.Parse(fmt.Sprint(entity["id"])); err != nil {
		d.t.Fatalf("%s: POST %s answered a record without an id: %s", d.name, path, res.Entity)
	}
	d.sim.Keep(typ, res.Entity) // res.ID is the command's mutation id
	return entity
}

func decode(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return m
}

// upload sends a document's bytes with tus in chunks, resuming from the server's offset after
// every failure the network causes. It returns how many times it had to resume.
func (d *device) upload(ctx context.Context, doc uuid.UUID, data []byte, fileName string, chunk int) int {
	d.t.Helper()
	var u *client.Upload
	var err error
	for attempt := 1; attempt <= 5; attempt++ {
		if u, err = d.c.CreateUpload(ctx, doc, int64(len(data)), fileName); err == nil || !client.Retryable(err) {
			break
		}
	}
	if err != nil {
		d.t.Fatalf("%s: create upload of %s: %v", d.name, doc, err)
	}
	resumes := 0
	for {
		err := d.c.Resume(ctx, u, bytes.NewReader(data), chunk)
		if err == nil {
			return resumes
		}
		if !client.Retryable(err) || resumes == 5 {
			d.t.Fatalf("%s: upload of %s: %v (after %d resumes)", d.name, doc, err, resumes)
		}
		resumes++
	}
}

// flakyNet is a phone's bad connection: while offline nothing gets through; otherwise it lets
// requests through except for the faults queued for them, each striking the next matching
// request once.
type flakyNet struct {
	base http.RoundTripper

	mu      gosync.Mutex
	offline bool
	faults  []*fault
	lost    []lostResponse
}

// faultKind is how a request goes wrong.
type faultKind int

const (
	// refused: the request never reaches the server (no signal, connection refused).
	refused faultKind = iota
	// answerLost: the server handles the request and answers, but the answer never arrives.
	answerLost
	// bodyCut: the connection drops partway through the request's body.
	bodyCut
)

// fault is one failure waiting for the request it will strike.
type fault struct {
	kind     faultKind
	method   string
	path     string // prefix of the request's path
	cutAfter int64  // bodyCut: bytes of the body that get through
	skip     int    // matching requests to let through first
}

// lostResponse is an answer the server gave that the phone never saw.
type lostResponse struct {
	method, path string
	status       int
	body         []byte
}

var errNoNetwork = errors.New("dial tcp: connect: network is unreachable")

func newFlakyNet() *flakyNet { return &flakyNet{base: http.DefaultTransport.(*http.Transport).Clone()} }

func (n *flakyNet) setOffline(off bool) {
	n.mu.Lock()
	n.offline = off
	n.mu.Unlock()
}

func (n *flakyNet) inject(f fault) {
	n.mu.Lock()
	n.faults = append(n.faults, &f)
	n.mu.Unlock()
}

// pending returns how many injected faults have not struck yet.
func (n *flakyNet) pending() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.faults)
}

func (n *flakyNet) lostAnswers() []lostResponse {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.lost)
}

func (n *flakyNet) RoundTrip(req *http.Request) (*http.Response, error) {
	n.mu.Lock()
	offline := n.offline
	var f *fault
	if !offline {
		for i, c := range n.faults {
			if c.method == req.Method && strings.HasPrefix(req.URL.Path, c.path) {
				if c.skip > 0 {
					c.skip--
					break
				}
				f = c
				n.faults = slices.Delete(n.faults, i, i+1)
				break
			}
		}
	}
	n.mu.Unlock()

	closeBody := func() {
		if req.Body != nil {
			req.Body.Close()
		}
	}
	switch {
	case offline:
		closeBody()
		return nil, errNoNetwork
	case f == nil:
		return n.base.RoundTrip(req)
	case f.kind == refused:
		closeBody()
		return nil, errors.New("dial tcp: connect: connection refused")
	case f.kind == answerLost:
		res, err := n.base.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		n.mu.Lock()
		n.lost = append(n.lost, lostResponse{method: req.Method, path: req.URL.Path, status: res.StatusCode, body: body})
		n.mu.Unlock()
		return nil, errors.New("read tcp: connection reset by peer")
	default: // bodyCut
		cut := req.Clone(req.Context())
		cut.Body = &cutBody{r: req.Body, left: f.cutAfter}
		cut.GetBody = nil // the transport must not send the whole body again on its own
		res, err := n.base.RoundTrip(cut)
		if err == nil {
			// The server answered before noticing: the phone still lost the connection.
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			return nil, errors.New("write tcp: broken pipe")
		}
		return nil, err
	}
}

// cutBody is a request body whose connection drops after left bytes.
type cutBody struct {
	r    io.ReadCloser
	left int64
}

var errCut = errors.New("write tcp: connection reset by peer")

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errCut
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cutBody) Close() error { return b.r.Close() }
