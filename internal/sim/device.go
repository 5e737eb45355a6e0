package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/internal/client"
	"github.com/google/uuid"
)

// Key names a record: its type and id.
type Key struct {
	Type string
	ID   uuid.UUID
}

func (k Key) String() string { return k.Type + "/" + k.ID.String() }

// Record is a record as a device holds it: the server's copy as of the last pull or push result.
type Record struct {
	Version int64
	Data    json.RawMessage
}

// Protocol is what a device needs of the server to sync: push its outbox, pull the changes since
// its cursor. A *client.Client is one (over HTTP, signed in); the engine's tests give another that
// calls the engine directly, so that one device serves the simulator, the end-to-end scenario and
// the engine's convergence test alike.
type Protocol interface {
	Push(ctx context.Context, mutations []client.Mutation) ([]client.Result, error)
	Pull(ctx context.Context, cursor string, limit int, wait time.Duration) (*client.Page, error)
}

// LostPush is the error of a push the server answered but whose answer never reached the device
// (it Is ErrDropped). Results is that answer: an app never sees it; a simulation keeps it to check
// that the same mutations, sent again, get the same results (applied once).
type LostPush struct {
	Results []client.Result
}

func (e *LostPush) Error() string { return ErrDropped.Error() + " (a push's answer)" }

// Is makes a lost push an ErrDropped.
func (e *LostPush) Is(target error) bool { return target == ErrDropped }

// Config is how a Device signs in and behaves.
type Config struct {
	// Server is the API's base URL, e.g. http://127.0.0.1:8080.
	Server string
	// Protocol, when set, carries the device's pushes and pulls instead of a client of Server: the
	// device then neither signs in nor uploads photos nor reports claims (Act does nothing; the
	// caller queues the user's writes with Queue).
	Protocol Protocol
	// Login and Password sign the device in. Several devices may share a login: each is its own
	// install, with its own device id, session, store and outbox.
	Login, Password string
	// Name names the device in logs and reports (its login when empty).
	Name string
	// Transport carries the device's requests (http.DefaultTransport when nil). The device wraps
	// it in its Network.
	Transport http.RoundTripper
	// Seed draws the device's network losses; the device's actions draw from the rng given to Act.
	Seed uint64
	// Stats counts what the device does; devices of a fleet share one. Nil: the device's own.
	Stats *Stats
	// PullLimit is the limit of each pull (the server's default when zero). A small one exercises
	// paging.
	PullLimit int
	// ChunkSize is the size of each upload request (16 KiB when zero, small so that photos go up
	// in several chunks and interruptions fall between them).
	ChunkSize int
	// Log receives what the device does, at debug level, and its unexpected errors.
	Log *slog.Logger
	// NewID and Now make the ids and client times of the device's mutations (uuid.NewV7 and the
	// clock when nil): a test that replays from a seed gives its own.
	NewID func() uuid.UUID
	Now   func() time.Time
	// OnResult, when set, is told every result a push brings (replays included), with its
	// mutation, before the device takes it.
	OnResult func(client.Mutation, client.Result)
}

// Device is one simulated phone (or a processor's or manager's screen that works offline the
// same way). It holds what a real client holds:
//
//   - a store: the server's copy of every record in its user's scope, by type and id, each with
//     its version;
//   - an outbox: the mutations its user made that the server has not answered yet, in the order
//     they were made;
//   - a cursor: where its last complete pull ended;
//   - a photo queue: documents photographed offline, whose record is created by push and whose
//     bytes go up afterwards, resumably;
//   - an intake queue: claims a manager reported while offline (claim intake is its own endpoint,
//     not a mutation, but is made idempotent the same way, by a client-made id).
//
// What the user sees is the store with the outbox applied over it (see view): the store itself
// only ever holds what the server said, so a mutation the server rejects needs no undoing.
//
// A Device is used by one goroutine at a time.
type Device struct {
	cfg  Config
	name string
	// proto carries pushes and pulls: client, or the Protocol the device was given.
	proto Protocol
	// client and net are nil for a device given a Protocol.
	client *client.Client
	net    *Network
	stats  *Stats
	log    *slog.Logger

	signedIn bool
	store    *Store
	outbox   []client.Mutation
	cursor   string
	// seen is non-nil while a snapshot is being pulled: the records it brought. When it ends,
	// whatever the store holds that it did not bring is gone from the scope and is dropped.
	seen    map[Key]bool
	photos  []*photo
	reports []*report
	// retakes are the rejected documents the user photographed again.
	retakes []uuid.UUID
	// lost holds the results of pushes whose answer the network dropped, by mutation id, to check
	// that sending them again changes nothing.
	lost map[uuid.UUID]client.Result
}

// report is a claim the manager reported, waiting to reach the intake endpoint. Its body holds
// the id the device made for the claim.
type report struct {
	body map[string]any
}

// NewDevice returns a device that is online and not yet signed in (Sync signs it in).
func NewDevice(cfg Config) *Device {
	if cfg.Name == "" {
		cfg.Name = cfg.Login
	}
	if cfg.Stats == nil {
		cfg.Stats = &Stats{}
	}
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = 16 << 10
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.NewID == nil {
		cfg.NewID = func() uuid.UUID { return uuid.Must(uuid.NewV7()) }
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }
	}
	d := &Device{cfg: cfg, name: cfg.Name, stats: cfg.Stats, log: cfg.Log.With("device", cfg.Name),
		store: NewStore(), lost: map[uuid.UUID]client.Result{}}
	if cfg.Protocol != nil {
		d.proto = cfg.Protocol
		return d
	}
	d.net = NewNetwork(cfg.Transport, cfg.Seed)
	dev := client.Device{ID: uuid.New(), Platform: "android", Name: "sim " + cfg.Name, AppVersion: "sim"}
	d.client = client.New(strings.TrimSuffix(cfg.Server, "/"), &http.Client{Transport: d.net, Timeout: 2 * time.Minute}, dev)
	d.proto = d.client
	return d
}

// Name returns the device's name.
func (d *Device) Name() string { return d.name }

// Client returns the device's protocol client (nil for a device given a Protocol).
func (d *Device) Client() *client.Client { return d.client }

// Network returns the device's network, to make it flaky (nil for a device given a Protocol).
func (d *Device) Network() *Network { return d.net }

// GoOffline cuts the device off: its requests fail at once, and its user keeps working. A device
// given a Protocol has no network to cut: its caller decides when it syncs.
func (d *Device) GoOffline() {
	if d.net != nil {
		d.net.SetOnline(false)
	}
}

// GoOnline connects the device again. Nothing is sent until the next Sync.
func (d *Device) GoOnline() {
	if d.net != nil {
		d.net.SetOnline(true)
	}
}

// Online reports whether the device is connected (a device given a Protocol always is: its
// caller decides when it syncs).
func (d *Device) Online() bool { return d.net == nil || d.net.Online() }

// Stats returns the counts of what the device (or its fleet) did so far.
func (d *Device) Stats() Totals { return d.stats.Totals() }

// Idle reports whether the device has nothing left to send: no mutation, photo or claim report.
func (d *Device) Idle() bool { return len(d.outbox) == 0 && len(d.photos) == 0 && len(d.reports) == 0 }

// Pending returns how many mutations wait in the outbox.
func (d *Device) Pending() int { return len(d.outbox) }

// Record returns the device's copy of a record, as the server last said it (without the outbox).
func (d *Device) Record(typ string, id uuid.UUID) (Record, bool) {
	r, ok := d.store.Records[Key{typ, id}]
	return r, ok
}

// Store returns a copy of the device's store.
func (d *Device) Store() map[Key]Record { return maps.Clone(d.store.Records) }

// Sync does what an app does when it has a connection: it signs in if it must, pushes the outbox,
// sends the reported claims, uploads the photos whose document the server holds, and pulls until
// it is up to date. It stops at the first failure (the network is the usual one) and returns it;
// nothing is lost, the next Sync carries on from where this one stopped.
func (d *Device) Sync(ctx context.Context) error {
	if !d.Online() {
		return ErrOffline
	}
	pull := func(ctx context.Context) error { return d.pull(ctx, 0) }
	for _, step := range []func(context.Context) error{d.push, d.report, d.upload, pull} {
		if err := d.signedInDo(ctx, step); err != nil {
			d.count(err)
			return err
		}
	}
	return nil
}

// count adds err to the statistics: a network failure is expected, anything else is not.
func (d *Device) count(err error) {
	switch {
	case isNetwork(err):
		d.stats.add(func(t *Totals) { t.NetworkErrors++ })
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
	default:
		d.log.Warn("sync failed", "err", err)
		d.stats.add(func(t *Totals) { t.Errors++; t.LastError = d.name + ": " + err.Error() })
	}
}

// isNetwork reports whether err is the network's fault (offline, a lost answer, a cut body, a
// refused or reset connection, a server that could not answer, an upload chunk that arrived
// damaged or incomplete): what a client retries later.
func isNetwork(err error) bool {
	var e *client.Error
	if errors.As(err, &e) {
		switch e.Code {
		case "checksum_mismatch", "request_incomplete", "upload_superseded":
			return true
		}
		return e.Status >= 500 || e.Status == http.StatusTooManyRequests
	}
	return err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) &&
		!errors.Is(err, errProtocol)
}

// errProtocol marks an answer that breaks the protocol (a result for another mutation, …).
var errProtocol = errors.New("protocol violation")

// signedInDo runs step with a signed-in client. An expired access token is refreshed by the
// client itself; a session that ended (refresh token spent by a refresh whose answer was lost,
// device replaced, session revoked) means signing in again, as an app does with the credentials it
// keeps, and running the step once more.
func (d *Device) signedInDo(ctx context.Context, step func(context.Context) error) error {
	if d.client == nil {
		return step(ctx) // the Protocol is the caller's, signed in if it must be
	}
	if !d.signedIn {
		if err := d.signIn(ctx); err != nil {
			return err
		}
	}
	err := step(ctx)
	var e *client.Error
	if errors.As(err, &e) && e.Status == http.StatusUnauthorized {
		d.log.Debug("session ended; signing in again", "code", e.Code)
		d.signedIn = false
		if err := d.signIn(ctx); err != nil {
			return err
		}
		err = step(ctx)
	}
	return err
}

// SignIn signs the device in now (Sync does when it must), for a caller that has more to do with
// a signed-in client before the first sync (register a push token).
func (d *Device) SignIn(ctx context.Context) error { return d.signIn(ctx) }

// Push sends the outbox and takes the results (the first step of Sync), signing in if it must.
func (d *Device) Push(ctx context.Context) error { return d.signedInDo(ctx, d.push) }

// Pull brings the device up to date (the last step of Sync), signing in if it must. With wait,
// the first page long-polls for a change when there is none yet.
func (d *Device) Pull(ctx context.Context, wait time.Duration) error {
	return d.signedInDo(ctx, func(ctx context.Context) error { return d.pull(ctx, wait) })
}

func (d *Device) signIn(ctx context.Context) error {
	if err := d.client.Login(ctx, d.cfg.Login, d.cfg.Password); err != nil {
		return fmt.Errorf("sign in as %s: %w", d.cfg.Login, err)
	}
	d.signedIn = true
	d.stats.add(func(t *Totals) { t.SignIns++ })
	return nil
}

// maxPush is how many mutations one push carries (the server takes up to 1,000).
const maxPush = 100

// push sends the outbox, oldest first, and applies the results.
//
// Each mutation keeps its id from the moment it is made. If the answer to a push is lost, the
// device cannot know whether the server applied it, so it sends the very same mutations again
// later: the server applies a mutation id at most once and answers a replay with the stored
// result. A new id would apply the write twice (two notes instead of one); the same id with other
// content is refused (mutation_id_reused), which is why a mutation in the outbox is never edited:
// a later change of the same record is a mutation of its own.
func (d *Device) push(ctx context.Context) error {
	for len(d.outbox) > 0 {
		muts := d.outbox[:min(len(d.outbox), maxPush)]
		results, err := d.proto.Push(ctx, muts)
		if err != nil {
			if isNetwork(err) {
				d.stats.add(func(t *Totals) { t.PushesLost++ })
			}
			// The server may have applied them: keep its answer, to check the replay's against.
			var lost *LostPush
			if errors.As(err, &lost) {
				for _, r := range lost.Results {
					d.lost[r.ID] = r
				}
			}
			return err
		}
		if len(results) != len(muts) {
			return fmt.Errorf("%w: %d results for %d mutations", errProtocol, len(results), len(muts))
		}
		d.stats.add(func(t *Totals) { t.Pushes++ })
		for i, r := range results {
			if r.ID != muts[i].ID {
				return fmt.Errorf("%w: result %d is for mutation %s, not %s", errProtocol, i, r.ID, muts[i].ID)
			}
			d.applyResult(muts[i], r)
		}
		d.outbox = slices.Delete(d.outbox, 0, len(muts))
	}
	return nil
}

// applyResult takes the server's answer to one mutation.
//
//   - applied, merged: the write was taken (merged: with other fields changed meanwhile on the
//     server); the result's entity is the record as it now is, which replaces the device's copy.
//   - conflict: part of the write could not be taken (a task cancelled meanwhile cannot be
//     completed; a document decided by another processor keeps the first decision). The server's
//     value stands, and the device replaces its copy with the entity: the user sees what really
//     happened. The conflicts say what was kept and why, for the app to tell the user.
//   - rejected: nothing was taken (the task was reassigned away meanwhile, …). The device drops
//     the mutation; since its store only holds the server's copies, the user's view falls back to
//     the server's record by itself. The result carries the record as the server now holds it,
//     which the device keeps as any other (its own copy may be older), or says it is gone: the
//     device removes its copy, unless it holds a newer version than the one it is gone at.
func (d *Device) applyResult(m client.Mutation, r client.Result) {
	if d.cfg.OnResult != nil {
		d.cfg.OnResult(m, r)
	}
	if lost, ok := d.lost[m.ID]; ok {
		d.checkReplay(m, lost, r)
		delete(d.lost, m.ID)
	}
	d.stats.add(func(t *Totals) {
		t.Mutations[r.Status]++
		for _, c := range r.Conflicts {
			var cf struct{ Rule string }
			_ = json.Unmarshal(c, &cf)
			t.Conflicts[cf.Rule]++
		}
		if r.Error != nil {
			t.Rejections[r.Error.Code]++
		}
	})
	k := Key{m.Type, m.EntityID}
	if r.Status == "rejected" {
		code := ""
		if r.Error != nil {
			code = r.Error.Code
		}
		d.log.Debug("mutation rejected", "type", m.Type, "op", m.Op, "id", m.EntityID, "code", code)
		if m.Type == "document" && m.Op == "create" {
			d.dropPhoto(m.EntityID)
		}
		if r.Gone != "" {
			d.store.Forget(k, r.Version)
		} else {
			d.keep(k, r.Version, r.Entity)
		}
		return
	}
	if m.Type == "document" && m.Op == "create" {
		for _, ph := range d.photos {
			if ph.doc == m.EntityID {
				ph.created = true
			}
		}
	}
	if m.Op == "delete" && r.Status == "applied" {
		d.store.Drop(k)
		return
	}
	d.keep(k, r.Version, r.Entity)
}

// keep stores a record from a push result or an intake answer, unless the device already holds a
// newer version (a replayed push answers with the result stored when it was first applied).
func (d *Device) keep(k Key, version int64, data json.RawMessage) {
	if d.store.Keep(k, version, data) && d.seen != nil {
		d.seen[k] = true
	}
}

// checkReplay compares the result of a mutation sent again with the answer the network lost: the
// same result, whole (status, version, entity, conflicts, error), means the server applied it once
// and answered the replay with what it stored.
func (d *Device) checkReplay(m client.Mutation, lost, got client.Result) {
	a, errA := json.Marshal(lost)
	b, errB := json.Marshal(got)
	same := errA == nil && errB == nil && sameJSON(a, b)
	d.stats.add(func(t *Totals) {
		t.Replays++
		if !same {
			t.ReplayMismatches++
			t.LastError = fmt.Sprintf("%s: replay of %s %s %s answered %s v%d, first answer was %s v%d",
				d.name, m.Op, m.Type, m.EntityID, got.Status, got.Version, lost.Status, lost.Version)
		}
	})
	if !same {
		d.log.Warn("a replayed mutation got another result", "mutation", m.ID, "first", lost.Status, "replay", got.Status)
	}
}

// sameJSON reports whether a and b hold the same JSON value (key order and spacing aside).
func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return bytes.Equal(a, b)
	}
	return equalJSON(va, vb)
}

func equalJSON(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, v := range a {
			w, ok := b[k]
			if !ok || !equalJSON(v, w) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !equalJSON(a[i], b[i]) {
				return false
			}
		}
		return true
	default:
		return a == b
	}
}

// pull brings the device up to date: it asks for the changes since its cursor, applies them, and
// asks again until the server says has_more is false. Only then is the store consistent with the
// server (a task whose claim is on the next page would be an orphan meanwhile), so a pull cut
// short is carried on from the last cursor, never treated as done.
//
// Without a cursor (a new device, or after a 410) the server sends a snapshot of the whole scope.
// A 410 cursor_expired means the server no longer has the changes since that cursor (the change
// log was pruned, or the cursor is not this user's): the device drops its cursor and starts again
// with a snapshot, and whatever the snapshot does not bring is dropped from the store at its end.
func (d *Device) pull(ctx context.Context, wait time.Duration) error {
	for {
		if d.cursor == "" && d.seen == nil {
			d.seen = map[Key]bool{}
		}
		page, err := d.proto.Pull(ctx, d.cursor, d.cfg.PullLimit, wait)
		wait = 0
		var e *client.Error
		if errors.As(err, &e) && e.Status == http.StatusGone {
			d.log.Debug("cursor expired; pulling a snapshot")
			d.stats.add(func(t *Totals) { t.Snapshots++ })
			d.cursor, d.seen = "", nil
			continue
		}
		if err != nil {
			return err
		}
		d.stats.add(func(t *Totals) { t.Pulls++; t.Changes += len(page.Changes) })
		for _, c := range page.Changes {
			if c.Op != "upsert" && c.Op != "delete" {
				return fmt.Errorf("%w: a pull's change of %s %s has op %q", errProtocol, c.Type, c.ID, c.Op)
			}
			d.store.Apply(c)
			if d.seen != nil && c.Op == "upsert" {
				d.seen[Key{c.Type, c.ID}] = true
			}
		}
		d.cursor = page.Cursor
		if page.HasMore {
			continue
		}
		if d.seen != nil {
			for k := range d.store.Records {
				if !d.seen[k] {
					d.store.Drop(k)
				}
			}
			d.seen = nil
		}
		return nil
	}
}

// report sends the claims the manager reported offline. Each carries an id the device made, so a
// report sent again after a lost answer makes one claim, not two.
func (d *Device) report(ctx context.Context) error {
	for len(d.reports) > 0 {
		r := d.reports[0]
		var out struct {
			Claim json.RawMessage `json:"claim"`
			Task  json.RawMessage `json:"task"`
		}
		err := d.client.Do(ctx, http.MethodPost, "/v1/claims", r.body, &out)
		var e *client.Error
		if errors.As(err, &e) && e.Status < 500 && e.Status != http.StatusUnauthorized && e.Status != http.StatusTooManyRequests {
			// The report itself is wrong (the customer is gone): nothing to retry.
			d.log.Warn("claim report refused", "err", err)
			d.stats.add(func(t *Totals) { t.Errors++; t.LastError = d.name + ": claim report: " + err.Error() })
			d.reports = d.reports[1:]
			continue
		}
		if err != nil {
			return err
		}
		d.stats.add(func(t *Totals) { t.Reports++ })
		d.keepRaw("claim", out.Claim)
		d.keepRaw("task", out.Task)
		d.reports = d.reports[1:]
	}
	return nil
}

// Keep stores a record of type typ that a write outside the outbox answered with (a screen's
// command, an intake), given as JSON with its id and version inside, by the store's rules.
func (d *Device) Keep(typ string, data json.RawMessage) { d.keepRaw(typ, data) }

// keepRaw keeps a record given as JSON with its id and version inside.
func (d *Device) keepRaw(typ string, data json.RawMessage) {
	var head struct {
		ID      uuid.UUID `json:"id"`
		Version int64     `json:"version"`
	}
	if len(data) == 0 || string(data) == "null" || json.Unmarshal(data, &head) != nil {
		return
	}
	d.keep(Key{typ, head.ID}, head.Version, data)
}

// Snapshot pulls a fresh snapshot of the device's user's scope (without the device's cursor,
// leaving the device as it is), in pages of the device's pull limit, and returns it as a store,
// for comparison.
func (d *Device) Snapshot(ctx context.Context) (map[Key]Record, error) {
	store := NewStore()
	cursor := ""
	for {
		page, err := d.proto.Pull(ctx, cursor, d.cfg.PullLimit, 0)
		if err != nil {
			return nil, err
		}
		for _, c := range page.Changes {
			if c.Op != "upsert" {
				return nil, fmt.Errorf("%w: a snapshot holds a %s of %s %s", errProtocol, c.Op, c.Type, c.ID)
			}
			store.Apply(c)
		}
		cursor = page.Cursor
		if !page.HasMore {
			return store.Records, nil
		}
	}
}

// Diff returns the differences of a device's store from the server's snapshot, one line each,
// sorted; none when they are equal.
func Diff(device, server map[Key]Record) []string {
	var out []string
	for k, s := range server {
		l, ok := device[k]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s (version %d): missing on the device", k, s.Version))
		case l.Version != s.Version:
			out = append(out, fmt.Sprintf("%s: the device has version %d, the server %d", k, l.Version, s.Version))
		case !sameJSON(l.Data, s.Data):
			out = append(out, fmt.Sprintf("%s (version %d): the device's data differs: %s, the server's %s", k, s.Version, l.Data, s.Data))
		}
	}
	for k, l := range device {
		if _, ok := server[k]; !ok {
			out = append(out, fmt.Sprintf("%s (version %d): on the device, not in its user's scope", k, l.Version))
		}
	}
	slices.Sort(out)
	return out
}

// Queue adds a mutation to the outbox, as a user's action does offline. An update or delete
// carries the base_version of the device's copy: the version the user saw when they made the
// change. The server uses it to tell which fields changed on its side meanwhile, so that edits
// to different fields merge and edits to the same field, a status change against the server's
// current status, or a checklist item someone else ticked are settled by the conflict rules
// instead of one side silently overwriting the other. Records the device created and the server
// has not answered for yet have no version and are not edited until it has.
//
// Queue returns the mutation's id, or false when it cannot be made: an update or delete of a
// record the device holds no copy of.
func (d *Device) Queue(typ, op string, id uuid.UUID, fields map[string]any) (uuid.UUID, bool) {
	m := client.Mutation{ID: d.cfg.NewID(), Type: typ, Op: op, EntityID: id, Fields: fields, ClientTime: d.cfg.Now()}
	if op != "create" {
		rec, ok := d.store.Records[Key{typ, id}]
		if !ok {
			return uuid.Nil, false
		}
		m.BaseVersion = rec.Version
	}
	d.outbox = append(d.outbox, m)
	return m.ID, true
}

func (d *Device) queue(typ, op string, id uuid.UUID, fields map[string]any) bool {
	_, ok := d.Queue(typ, op, id, fields)
	return ok
}

// View returns a record as the device's user sees it: the server's copy with the outbox's
// mutations of it applied over it, or nil when there is none (or it was deleted on the device).
func (d *Device) View(typ string, id uuid.UUID) map[string]any { return d.view(Key{typ, id}) }

func (d *Device) view(k Key) map[string]any {
	var v map[string]any
	if rec, ok := d.store.Records[k]; ok {
		if err := json.Unmarshal(rec.Data, &v); err != nil {
			return nil
		}
	}
	for _, p := range d.outbox {
		if p.Type != k.Type || p.EntityID != k.ID {
			continue
		}
		switch p.Op {
		case "create":
			v = map[string]any{"id": k.ID.String()}
			overlay(v, p.Fields)
		case "update":
			if v != nil {
				overlay(v, p.Fields)
			}
		case "delete":
			v = nil
		}
	}
	return v
}

// overlay applies fields over v the way the server would: a checklist merges item by item.
func overlay(v map[string]any, fields map[string]any) {
	for name, val := range fields {
		if name != "checklist" {
			v[name] = normalise(val)
			continue
		}
		cur, _ := v["checklist"].([]any)
		items := slices.Clone(cur)
		for _, it := range asItems(val) {
			found := false
			for i, c := range items {
				if cm, ok := c.(map[string]any); ok && cm["key"] == it["key"] {
					items[i], found = it, true
				}
			}
			if !found {
				items = append(items, it)
			}
		}
		v["checklist"] = items
	}
}

// normalise turns a value made in Go into what JSON decoding would give (uuid.UUID into string,
// …), so views compare alike.
func normalise(v any) any {
	data, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	_ = json.Unmarshal(data, &out)
	return out
}

func asItems(v any) []map[string]any {
	var out []map[string]any
	data, _ := json.Marshal(v)
	_ = json.Unmarshal(data, &out)
	return out
}

// List returns every record of typ the user sees (View), in id order, so that a seeded run
// chooses the same way each time.
func (d *Device) List(typ string) []map[string]any { return d.list(typ) }

func (d *Device) list(typ string) []map[string]any {
	ids := map[uuid.UUID]bool{}
	for k := range d.store.Records {
		if k.Type == typ {
			ids[k.ID] = true
		}
	}
	for _, p := range d.outbox {
		if p.Type == typ && p.Op == "create" {
			ids[p.EntityID] = true
		}
	}
	sorted := slices.SortedFunc(maps.Keys(ids), func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	var out []map[string]any
	for _, id := range sorted {
		if v := d.view(Key{typ, id}); v != nil {
			out = append(out, v)
		}
	}
	return out
}

// confirmed reports whether the server holds the record (the device has its copy).
func (d *Device) confirmed(typ string, id uuid.UUID) bool {
	_, ok := d.store.Records[Key{typ, id}]
	return ok
}

// pick returns a random element of s, or nil when s is empty.
func pick(rng *rand.Rand, s []map[string]any) map[string]any {
	if len(s) == 0 {
		return nil
	}
	return s[rng.IntN(len(s))]
}
