package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/google/uuid"
)

// The devices tests: what the server keeps of each phone's sync (read by the branch manager and
// counted in the metrics), the remote wipe of a lost phone, and the minimum app version, over HTTP
// against the real PostgreSQL and MinIO.

// deviceOf returns the one device the user signed in on.
func (b *bundle) deviceOf(t *testing.T, user uuid.UUID) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT id FROM devices WHERE user_id = $1`, user).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// devicesOf lists the devices of user as the manager holding token sees them.
func (b *bundle) devicesOf(t *testing.T, token string, user uuid.UUID) (response, account.DevicePage) {
	t.Helper()
	r := b.do(t, "GET", "/v1/branch/devices?user_id="+user.String(), token, nil)
	var page account.DevicePage
	if r.status == http.StatusOK {
		r.json(t, &page)
	}
	return r, page
}

func TestDeviceSyncStateIsTheManagersToRead(t *testing.T) {
	t.Parallel()
	e := upSetup(t)
	c := e.newCase(t)
	rep, mgr := c.rep, c.mgr

	// A rep's device pulls to the end, pushes, and uploads a photo.
	page := e.pullOnce(t, &syncUser{token: rep.token}, "", 1000)
	if page.HasMore {
		t.Fatal("a small scope took more than one page")
	}
	e.pullOnce(t, &syncUser{token: rep.token}, page.Cursor, 1000)
	expect(t, e.do(t, "POST", "/v1/sync/push", rep.token, map[string]any{"mutations": []any{}}), http.StatusOK, "")
	e.upload(t, rep.token, e.newDocument(t, c, nil), jpegFile(2000, 1))

	r, devices := e.devicesOf(t, mgr.token, rep.id)
	expect(t, r, http.StatusOK, "")
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", r.header.Get("Cache-Control"))
	}
	e.wireSchemas(t).response(t, "GET", "/v1/branch/devices", r)
	if len(devices.Items) != 1 || devices.HasMore {
		t.Fatalf("the rep's devices: %s", r.body)
	}
	d := devices.Items[0]
	if d.ID != e.deviceOf(t, rep.id) || d.UserID != rep.id || d.Platform != "android" || d.PushToken != "none" {
		t.Errorf("device %+v", d)
	}
	if d.LastPullAt == nil || d.LastPushAt == nil || d.LastUploadAt == nil {
		t.Errorf("sync times not recorded: pull %v push %v upload %v", d.LastPullAt, d.LastPushAt, d.LastUploadAt)
	}
	// The second pull was throttled; the first one's cursor was at the head, nothing since.
	if d.PullLag == nil || *d.PullLag > 100 {
		t.Errorf("pull lag %v", d.PullLag)
	}

	// Paging: the manager's own device and the rep's, one at a time.
	r = e.do(t, "GET", "/v1/branch/devices?limit=1", mgr.token, nil)
	expect(t, r, http.StatusOK, "")
	var first account.DevicePage
	r.json(t, &first)
	if !first.HasMore || first.Next == "" || len(first.Items) != 1 {
		t.Fatalf("first page %s", r.body)
	}
	r = e.do(t, "GET", "/v1/branch/devices?limit=1&after="+first.Next, mgr.token, nil)
	expect(t, r, http.StatusOK, "")
	var second account.DevicePage
	r.json(t, &second)
	if len(second.Items) != 1 || second.Items[0].ID == first.Items[0].ID {
		t.Fatalf("second page %s", r.body)
	}

	// Not the rep's to read.
	r, _ = e.devicesOf(t, rep.token, rep.id)
	expect(t, r, http.StatusForbidden, "forbidden")
	expect(t, e.do(t, "GET", "/v1/branch/devices?device=x", mgr.token, nil), http.StatusBadRequest, "unknown_field")

	// A day without a sync shows in the gauge of the rep's branch; the manager's device, which
	// synced nothing but registered now, does not.
	if _, err := e.db.Pool.Exec(context.Background(), `UPDATE devices SET last_pull_at = now() - interval '25 hours',
		last_push_at = now() - interval '25 hours' WHERE user_id = $1`, rep.id); err != nil {
		t.Fatal(err)
	}
	r = e.do(t, "GET", "/metrics", "", nil)
	want := `fieldsync_devices_unsynced{branch_id="` + e.branchID.String() + `"} 1`
	if !strings.Contains(string(r.body), want) {
		t.Errorf("metrics lack %s", want)
	}
}

func TestWipedDeviceIsToldSignedOutAndItsUploadAborted(t *testing.T) {
	t.Parallel()
	e := upSetup(t)
	login, repID := e.newUser(t, "rep")
	device := uuid.New()
	tokens := e.loginOn(t, login, device)
	rep := &upActor{id: repID, token: tokens.AccessToken, ident: &fieldsync.Identity{UserID: repID, Role: "rep", BranchID: e.branchID}}
	c := e.newCaseFor(t, rep)
	doc := e.newDocument(t, c, nil)
	file := jpegFile(12<<20, 2)
	url := e.create(t, e.srv.URL, rep.token, doc, len(file))
	expect(t, patch(t, url, rep.token, 0, file[:6<<20]), http.StatusNoContent, "")
	if n := e.multipartUploads(t); n != 1 {
		t.Fatalf("%d multipart uploads before the wipe", n)
	}

	// Only the manager of the device's branch, or an admin, may wipe it.
	other := e.signInAt(t, e.newBranch(t), "manager", "")
	expect(t, e.do(t, "POST", "/v1/devices/"+device.String()+"/wipe", other.token, nil), http.StatusNotFound, "device_not_found")
	expect(t, e.do(t, "POST", "/v1/devices/"+device.String()+"/wipe", rep.token, nil), http.StatusForbidden, "forbidden")
	expect(t, e.do(t, "POST", "/v1/devices/"+device.String()+"/wipe", c.mgr.token, nil), http.StatusNoContent, "")

	// At its next contact, whatever it is, it is told; its session is over.
	expect(t, e.do(t, "GET", "/v1/me", rep.token, nil), http.StatusUnauthorized, "device_wiped")
	expect(t, e.do(t, "POST", "/v1/sync/push", rep.token, map[string]any{"mutations": []any{}}), http.StatusUnauthorized, "device_wiped")
	expect(t, e.do(t, "POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": tokens.RefreshToken}), http.StatusUnauthorized, "device_wiped")
	expect(t, e.do(t, "POST", "/v1/auth/login", "", loginBody(login, testPassword, device)), http.StatusForbidden, "device_wiped")
	// The app erases and signs in again as a new install.
	e.login(t, login)

	// Its upload in progress is gone, parts and row.
	if n := e.multipartUploads(t); n != 0 {
		t.Errorf("%d multipart uploads after the wipe", n)
	}
	if n := e.countRows(t, "uploads", "device_id = $1", device); n != 0 {
		t.Errorf("%d uploads of the wiped device left", n)
	}
	// The event is kept: who and when.
	_, devices := e.devicesOf(t, c.mgr.token, repID)
	var wiped *account.DeviceState
	for i := range devices.Items {
		if devices.Items[i].ID == device {
			wiped = &devices.Items[i]
		}
	}
	if wiped == nil || wiped.WipedAt == nil || wiped.WipedBy == nil || *wiped.WipedBy != c.mgr.id {
		t.Fatalf("wiped device as listed: %+v", wiped)
	}

	// An admin may wipe any device; a second wipe keeps the first's record.
	admin := e.signInAt(t, uuid.Nil, "admin", "")
	expect(t, e.do(t, "POST", "/v1/admin/devices/"+device.String()+"/wipe", admin.token, nil), http.StatusNoContent, "")
	var by uuid.UUID
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT wiped_by FROM devices WHERE id = $1`, device).Scan(&by); err != nil || by != c.mgr.id {
		t.Errorf("wiped_by %s after a second wipe (%v), want the first's %s", by, err, c.mgr.id)
	}
}

func TestOldAppIsRefusedWhole(t *testing.T) {
	t.Parallel()
	b := setup(t, func(s *apptest.Setup) {
		s.MinAppVersion = map[string]string{"android": "2.0.0", "ios": "3.1"}
	})
	login, _ := b.newUser(t, "manager")
	device := uuid.New()

	// Sign-in: refused with the minimum in the details, before the password is even checked.
	old := loginBody(login, testPassword, device)
	old["device"].(map[string]any)["app_version"] = "1.9.7"
	r := b.do(t, "POST", "/v1/auth/login", "", old)
	expect(t, r, http.StatusForbidden, "upgrade_required")
	var e struct {
		Error struct {
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	r.json(t, &e)
	if d := e.Error.Details; d["platform"] != "android" || d["minimum"] != "2.0.0" || d["yours"] != "1.9.7" {
		t.Errorf("details %v", d)
	}
	if n := b.countRows(t, "devices", "id = $1", device); n != 0 {
		t.Errorf("a refused login registered its device")
	}

	current := loginBody(login, testPassword, device)
	current["device"].(map[string]any)["app_version"] = "2.0.0"
	r = b.do(t, "POST", "/v1/auth/login", "", current)
	expect(t, r, http.StatusOK, "")
	var tokens account.Tokens
	r.json(t, &tokens)

	// The app says it is older now (a downgrade): its push is refused whole, nothing applied.
	customer := uuid.New()
	push := map[string]any{"mutations": []syncMutation{createOp("customer", customer, syncFields{"name": "Ann"})}}
	expect(t, b.doWith(t, "POST", "/v1/sync/push", tokens.AccessToken, push, "X-App-Version", "1.9.9"), http.StatusForbidden, "upgrade_required")
	if n := b.countRows(t, "customers", "id = $1", customer); n != 0 {
		t.Fatal("a refused push was applied")
	}
	if n := b.countRows(t, "applied_mutations", "true"); n != 0 {
		t.Fatalf("%d mutations recorded after a refused push", n)
	}
	// The device row keeps the version it said; a pull without the header is refused too.
	expect(t, b.do(t, "GET", "/v1/sync/pull", tokens.AccessToken, nil), http.StatusForbidden, "upgrade_required")

	// Updated in place, it says so and the same push goes through.
	r = b.doWith(t, "POST", "/v1/sync/push", tokens.AccessToken, push, "X-App-Version", "2.1.0-beta.1")
	expect(t, r, http.StatusOK, "")
	if n := b.countRows(t, "customers", "id = $1", customer); n != 1 {
		t.Fatal("the push of a current app was not applied")
	}
	expect(t, b.do(t, "GET", "/v1/sync/pull", tokens.AccessToken, nil), http.StatusOK, "")
}

func TestSyncRecordIsThrottled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u := b.signIn(t, "manager", "")
	device := b.deviceOf(t, u.id)
	pullAt := func() time.Time {
		var at time.Time
		if err := b.db.Pool.QueryRow(context.Background(), `SELECT last_pull_at FROM devices WHERE id = $1`, device).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	b.pullOnce(t, u, "", 100)
	first := pullAt()
	b.pullOnce(t, u, "", 100)
	if got := pullAt(); !got.Equal(first) {
		t.Errorf("a pull within %s wrote again: %s, then %s", account.SyncThrottle, first, got)
	}
	b.clock.Advance(account.SyncThrottle + time.Second)
	b.pullOnce(t, u, "", 100)
	if got := pullAt(); !got.After(first) {
		t.Errorf("a pull after %s was not recorded: %s, then %s", account.SyncThrottle, first, got)
	}
}
