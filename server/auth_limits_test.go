package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// send is do without the testing.T, for requests made from several goroutines at once.
func (b *bundle) send(method, path, token string, body any) (response, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return response{}, err
	}
	req, err := http.NewRequest(method, b.srv.URL+path, bytes.NewReader(data))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := b.srv.Client().Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: out}, err
}

// loginAtOnce sends every body to /v1/auth/login at the same moment and counts the answers by
// status and error code ("200", "401 invalid_credentials", ...).
func (b *bundle) loginAtOnce(t *testing.T, bodies []map[string]any) map[string]int {
	t.Helper()
	start := make(chan struct{})
	results := make([]response, len(bodies))
	errs := make([]error, len(bodies))
	var wg gosync.WaitGroup
	for i, body := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = b.send("POST", "/v1/auth/login", "", body)
		}()
	}
	close(start)
	wg.Wait()
	counts := map[string]int{}
	for i, r := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		key := strconv.Itoa(r.status)
		if r.status != http.StatusOK {
			key += " " + r.errorCode(t)
		}
		counts[key]++
	}
	return counts
}

// Wrong passwords sent at once must not all be checked: the limit counts an attempt before its
// password is hashed, not after, so no more guesses than the limit get an answer.
func TestConcurrentWrongPasswordsStopAtTheLoginLimit(t *testing.T) {
	t.Parallel()
	b := setup(t) // 5 failures per login
	login, _ := b.newUser(t, "rep")
	bodies := make([]map[string]any, 20)
	for i := range bodies {
		bodies[i] = loginBody(login, "guess "+strconv.Itoa(i), uuid.New())
	}
	got := b.loginAtOnce(t, bodies)
	if got["401 invalid_credentials"] != 5 || got["429 too_many_attempts"] != 15 || len(got) != 2 {
		t.Fatalf("answers %v, want 5 invalid_credentials and 15 too_many_attempts", got)
	}
	expect(t, b.do(t, "POST", "/v1/auth/login", "", loginBody(login, testPassword, uuid.New())), 429, "too_many_attempts")
}

func TestConcurrentFailuresStopAtTheAddressLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *apptest.Setup) { o.LoginFailuresPerLogin, o.LoginFailuresPerAddress = 100, 10 })
	login, _ := b.newUser(t, "rep")
	bodies := make([]map[string]any, 40)
	for i := range bodies {
		// Half of them existing logins with a wrong password, half made-up ones: both are failures.
		bodies[i] = loginBody("sprayed-"+strconv.Itoa(i), "guess", uuid.New())
		if i%2 == 0 {
			bodies[i] = loginBody(login, "guess "+strconv.Itoa(i), uuid.New())
		}
	}
	got := b.loginAtOnce(t, bodies)
	if got["401 invalid_credentials"] != 10 || got["429 too_many_attempts"] != 30 || len(got) != 2 {
		t.Fatalf("answers %v, want 10 invalid_credentials and 30 too_many_attempts", got)
	}
	other, _ := b.newUser(t, "rep")
	expect(t, b.do(t, "POST", "/v1/auth/login", "", loginBody(other, testPassword, uuid.New())), 429, "too_many_attempts")
}

// An attempt is counted before its password is checked; one that succeeds must give that count
// back, or an office of people signing in behind one address would lock itself out. (While it is
// being checked it does count: that is what stops concurrent guesses.)
func TestSuccessfulLoginsDoNotCountAgainstTheAddress(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *apptest.Setup) { o.LoginFailuresPerLogin, o.LoginFailuresPerAddress = 100, 3 })
	login, _ := b.newUser(t, "rep")
	expect(t, b.do(t, "POST", "/v1/auth/login", "", loginBody(login, "guess", uuid.New())), 401, "invalid_credentials")
	for range 8 {
		b.login(t, login)
	}
	// Two at once still fit beside the one failure.
	both := []map[string]any{loginBody(login, testPassword, uuid.New()), loginBody(login, testPassword, uuid.New())}
	if got := b.loginAtOnce(t, both); got["200"] != 2 {
		t.Fatalf("answers %v, want 2 successes", got)
	}
	expect(t, b.do(t, "POST", "/v1/auth/login", "", loginBody(login, "guess", uuid.New())), 401, "invalid_credentials")
	expect(t, b.do(t, "POST", "/v1/auth/login", "", loginBody(login, "guess", uuid.New())), 401, "invalid_credentials")
	expect(t, b.do(t, "POST", "/v1/auth/login", "", loginBody(login, "guess", uuid.New())), 429, "too_many_attempts")
}

// holdHashes makes every password check wait until release is closed, and records how many ran
// at once. entered receives one value per check that started.
func holdHashes(b *bundle) (entered <-chan struct{}, release chan struct{}, most *atomic.Int32) {
	in := make(chan struct{}, 100)
	release = make(chan struct{})
	most = new(atomic.Int32)
	var running atomic.Int32
	b.accounts.VerifyPasswordFunc = func(password, hash string) (bool, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		in <- struct{}{}
		<-release
		return account.VerifyPassword(password, hash)
	}
	return in, release, most
}

// A login beyond the hash bound waits for a slot rather than hashing alongside: the hashes (19 MiB
// each in production) never run more at once than the bound, whatever arrives.
func TestPasswordHashesWaitForAFreeSlot(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *apptest.Setup) { o.LoginConcurrency, o.LoginWait = 1, time.Minute })
	first, _ := b.newUser(t, "rep")
	entered, release, most := holdHashes(b)

	answers := make(chan response, 3)
	go func() {
		r, _ := b.send("POST", "/v1/auth/login", "", loginBody(first, testPassword, uuid.New()))
		answers <- r
	}()
	<-entered
	// A right password and an unknown login: the dummy hash of an unknown login waits too.
	go func() {
		r, _ := b.send("POST", "/v1/auth/login", "", loginBody(first, testPassword, uuid.New()))
		answers <- r
	}()
	go func() {
		r, _ := b.send("POST", "/v1/auth/login", "", loginBody("nobody", "guess", uuid.New()))
		answers <- r
	}()
	waitUntil(t, time.Minute, "two logins waiting for a hash slot", func() bool { return b.accounts.HashesWaiting() == 2 })
	close(release)
	got := map[int]int{}
	for range 3 {
		got[(<-answers).status]++
	}
	if got[200] != 2 || got[401] != 1 {
		t.Fatalf("statuses %v, want two 200 and one 401", got)
	}
	if m := most.Load(); m != 1 {
		t.Fatalf("%d password hashes ran at once, want 1", m)
	}
}

// A login that finds no slot free within the wait is refused with 503 server_busy and Retry-After,
// and its attempt is not counted as a failure.
func TestLoginIsRefusedWhenNoHashSlotFrees(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *apptest.Setup) {
		o.LoginConcurrency, o.LoginWait, o.LoginFailuresPerLogin = 1, 50*time.Millisecond, 1
	})
	first, _ := b.newUser(t, "rep")
	second, _ := b.newUser(t, "rep")
	entered, release, _ := holdHashes(b)

	answer := make(chan response, 1)
	go func() {
		r, _ := b.send("POST", "/v1/auth/login", "", loginBody(first, testPassword, uuid.New()))
		answer <- r
	}()
	<-entered
	r := b.do(t, "POST", "/v1/auth/login", "", loginBody(second, testPassword, uuid.New()))
	expect(t, r, http.StatusServiceUnavailable, "server_busy")
	if wait, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || wait < 1 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	close(release)
	expect(t, <-answer, http.StatusOK, "")
	reg := prometheus.NewRegistry()
	if err := b.accounts.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	busy := -1.0
	for _, f := range families {
		if f.GetName() == "fieldsync_login_busy_total" {
			busy = f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if busy != 1 {
		t.Fatalf("fieldsync_login_busy_total %v, want 1", busy)
	}
	// With one failure allowed per login, a busy refusal that had counted would lock this out.
	b.login(t, second)
}

// PostgreSQL refuses NUL in text; every text the account package stores must refuse it first,
// as a client error naming the field, and write nothing.
func TestNULIsRefusedInEveryAccountText(t *testing.T) {
	t.Parallel()
	b := setup(t)
	adminLogin, _ := b.newUser(t, "admin")
	admin := b.login(t, adminLogin)
	login, _ := b.newUser(t, "rep")
	rep := b.loginOn(t, login, uuid.New())

	count := func(table string) int {
		var n int
		if err := b.db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	newUser := func(field string) map[string]any {
		u := map[string]any{"branch_id": b.branchID, "role": "rep", "login": "nina", "name": "Nina", "password": "long enough password"}
		u[field] = "ni\x00na"
		return u
	}
	loginWith := func(set func(body, device map[string]any)) map[string]any {
		body := loginBody(login, testPassword, uuid.New())
		set(body, body["device"].(map[string]any))
		return body
	}
	cases := []struct {
		name, method, path, token string
		body                      any
		field                     string
	}{
		{"login", "POST", "/v1/auth/login", "", loginWith(func(b, _ map[string]any) { b["login"] = login + "\x00" }), "login"},
		{"device name", "POST", "/v1/auth/login", "", loginWith(func(_, d map[string]any) { d["name"] = "Pixel\x00" }), "device.name"},
		{"app version", "POST", "/v1/auth/login", "", loginWith(func(_, d map[string]any) { d["app_version"] = "1.0\x00" }), "device.app_version"},
		{"push token", "PUT", "/v1/devices/current/push-token", rep.AccessToken, map[string]string{"token": "tok\x00en", "platform": "android"}, "token"},
		{"branch name", "POST", "/v1/admin/branches", admin.AccessToken, map[string]string{"name": "North\x00"}, "name"},
		{"user login", "POST", "/v1/admin/users", admin.AccessToken, newUser("login"), "login"},
		{"user name", "POST", "/v1/admin/users", admin.AccessToken, newUser("name"), "name"},
	}
	tables := []string{"users", "branches", "devices", "sessions", "login_throttle", "devices WHERE push_token IS NOT NULL"}
	before := map[string]int{}
	for _, table := range tables {
		before[table] = count(table)
	}
	for _, c := range cases {
		r := b.do(t, c.method, c.path, c.token, c.body)
		expect(t, r, http.StatusBadRequest, "invalid_value")
		var e struct {
			Error struct{ Details map[string]any }
		}
		r.json(t, &e)
		if e.Error.Details["field"] != c.field {
			t.Errorf("%s: details %v, want field %q", c.name, e.Error.Details, c.field)
		}
	}
	for _, table := range tables {
		if n := count(table); n != before[table] {
			t.Errorf("%s: %d rows, had %d", table, n, before[table])
		}
	}
}

// Tokens and the signed-in user must not be kept by any cache between the app and the server.
func TestTokenResponsesAreNotCached(t *testing.T) {
	t.Parallel()
	b := setup(t)
	login, _ := b.newUser(t, "rep")
	r := b.do(t, "POST", "/v1/auth/login", "", loginBody(login, testPassword, uuid.New()))
	expect(t, r, http.StatusOK, "")
	var tokens account.Tokens
	r.json(t, &tokens)
	refreshed := b.do(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": tokens.RefreshToken})
	expect(t, refreshed, http.StatusOK, "")
	refreshed.json(t, &tokens)
	me := b.do(t, "GET", "/v1/me", tokens.AccessToken, nil)
	expect(t, me, http.StatusOK, "")
	for name, res := range map[string]response{"login": r, "refresh": refreshed, "me": me} {
		if got := res.header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", name, got)
		}
	}
}
