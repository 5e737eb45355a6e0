package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/fieldsync/fieldsync/internal/fixture"
	"github.com/google/uuid"
)

// httpBrowser is a cookie-keeping HTTP client that does not follow redirects: the tests of the
// session's rules look at each answer.
type httpBrowser struct {
	t    testing.TB
	base string
	c    *http.Client
}

func newHTTPBrowser(t testing.TB, base string) *httpBrowser {
	jar, _ := cookiejar.New(nil)
	return &httpBrowser{t: t, base: base, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *httpBrowser) do(method, path string, form url.Values, header ...string) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res, string(data)
}

var csrfInput = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// signIn signs in through the form and returns the CSRF token of the page it lands on.
func (b *httpBrowser) signIn(login, pw string) (*http.Response, string) {
	b.t.Helper()
	_, page := b.do("GET", "/console/sign-in", nil)
	m := csrfInput.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("no CSRF field on the sign-in page:\n%s", page)
	}
	return b.do("POST", "/console/sign-in", url.Values{"_csrf": {m[1]}, "login": {login}, "password": {pw}, "next": {"/console/queue"}})
}

func (b *httpBrowser) csrf(path string) string {
	b.t.Helper()
	_, page := b.do("GET", path, nil)
	m := csrfInput.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("no CSRF field on %s:\n%s", path, page)
	}
	return m[1]
}

func newSessionWorld(t *testing.T) (*apptest.App, string) {
	a := apptest.New(t, func(s *apptest.Setup) { s.ConsoleIdleTimeout = 10 * time.Minute; s.LoginFailuresPerLogin = 3 })
	login := "proc-" + uuid.NewString()[:8]
	if _, err := a.Accounts.CreateUser(context.Background(), account.NewUser{BranchID: a.Branch(t), Role: "processor",
		Login: login, Name: "Paul Processor", Password: password}); err != nil {
		t.Fatal(err)
	}
	return a, login
}

// TestConsoleSession: the cookie's attributes, the CSRF token every POST needs, the idle
// timeout, and the login throttle of the API.
func TestConsoleSession(t *testing.T) {
	a, login := newSessionWorld(t)
	b := newHTTPBrowser(t, a.URL)

	res, _ := b.do("GET", "/console/queue", nil)
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/console/sign-in?next=%2Fconsole%2Fqueue") {
		t.Fatalf("signed out, the queue answers %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	// A sign-in form without its CSRF token is refused before the password is checked.
	res, _ = b.do("POST", "/console/sign-in", url.Values{"login": {login}, "password": {password}})
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in without its token: %d", res.StatusCode)
	}
	res, page := b.signIn(login, "wrong")
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "The login or password is wrong.") {
		t.Fatalf("wrong password: %d", res.StatusCode)
	}
	res, _ = b.signIn(login, password)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/queue" {
		t.Fatalf("sign-in: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "fs_session" {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/console" || session.Secure {
		t.Fatalf("session cookie over plain HTTP: %+v", session)
	}
	res, page = b.do("GET", "/console/queue", nil)
	if res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != "no-store" || !strings.Contains(page, `<html lang="en">`) {
		t.Fatalf("queue: %d, Cache-Control %q", res.StatusCode, res.Header.Get("Cache-Control"))
	}

	// A command without the CSRF token, or with another, is refused; the engine is not reached.
	claim := uuid.NewString()
	for _, token := range []string{"", "forged-token-forged-token-forged-token"} {
		res, _ = b.do("POST", "/console/claims/"+claim+"/decision", url.Values{"_csrf": {token}, "decision": {"approved"}})
		if res.StatusCode != http.StatusForbidden {
			t.Fatalf("a command with CSRF token %q: %d", token, res.StatusCode)
		}
	}
	token := b.csrf("/console/queue")
	res, _ = b.do("POST", "/console/claims/"+claim+"/decision", url.Values{"decision": {"approved"}}, "X-CSRF-Token", token)
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("a command with the token (htmx header) on an unknown claim: %d, want the engine's 404", res.StatusCode)
	}

	// Idle past the timeout: the session has ended, on the server.
	a.Clock.Advance(11 * time.Minute)
	res, _ = b.do("GET", "/console/queue", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("after the idle timeout the queue answers %d", res.StatusCode)
	}
	var revoked string
	if err := a.DB.Pool.QueryRow(context.Background(), `SELECT coalesce(revoke_reason, '') FROM sessions s JOIN devices d ON d.id = s.device_id
		WHERE d.platform = 'web' ORDER BY s.created_at DESC LIMIT 1`).Scan(&revoked); err != nil || revoked != "idle" {
		t.Fatalf("the account session after the idle timeout: %q (%v)", revoked, err)
	}

	// The login throttle is the API's: after three failures even the right password waits.
	for range 3 {
		b.signIn(login, "wrong")
	}
	res, page = b.signIn(login, password)
	if res.StatusCode != http.StatusTooManyRequests || !strings.Contains(page, "Too many attempts") {
		t.Fatalf("sign-in past the throttle: %d", res.StatusCode)
	}
}

// TestConsoleAssetsCacheable: assets are served at content-hashed URLs for a year; a stale hash
// is not found.
func TestConsoleAssetsCacheable(t *testing.T) {
	a, _ := newSessionWorld(t)
	b := newHTTPBrowser(t, a.URL)
	_, page := b.do("GET", "/console/sign-in", nil)
	m := regexp.MustCompile(`src="(/console/assets/[0-9a-f]+/vendor/htmx\.min\.js)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the page does not load htmx from a hashed URL:\n%s", page)
	}
	res, body := b.do("GET", m[1], nil)
	if res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" ||
		!strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") || !strings.Contains(body, "htmx") {
		t.Fatalf("htmx: %d %q %q", res.StatusCode, res.Header.Get("Cache-Control"), res.Header.Get("Content-Type"))
	}
	res, _ = b.do("GET", "/console/assets/000000000000/vendor/htmx.min.js", nil)
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("a stale hash: %d", res.StatusCode)
	}
	res, page = b.do("GET", "/console/sign-in", nil, "Accept-Language", "zh-CN,zh;q=0.9,en;q=0.5")
	if !strings.Contains(page, `<html lang="zh-CN">`) || !strings.Contains(page, "登录控制台") {
		t.Fatalf("a Chinese browser gets: %d\n%s", res.StatusCode, page)
	}
}

// TestConsoleCommandRefusals: a refused command is told on the page in the person's words (a
// rejection without a reason); for htmx the answer is the main element alone.
func TestConsoleCommandRefusals(t *testing.T) {
	a, login := newSessionWorld(t)
	var branch, rep uuid.UUID
	if err := a.DB.Pool.QueryRow(context.Background(), `SELECT branch_id FROM users WHERE login = $1`, login).Scan(&branch); err != nil {
		t.Fatal(err)
	}
	f := fixture.New(t, a.DB.Pool)
	rep = f.User(fixture.User{Branch: branch, Role: "rep", RepKind: "agent"})
	claim, _ := f.Claim(fixture.Claim{Branch: branch, Customer: f.Customer(fixture.Customer{Branch: branch, Agent: rep})})
	doc := f.Document(claim, rep, "uploaded")

	b := newHTTPBrowser(t, a.URL)
	b.signIn(login, password)
	token := b.csrf("/console/claims/" + claim.String())
	res, page := b.do("POST", "/console/documents/"+doc.String()+"/review",
		url.Values{"claim_id": {claim.String()}, "decision": {"rejected"}}, "X-CSRF-Token", token, "HX-Request", "true", "HX-Target", "main")
	if res.StatusCode != http.StatusOK || strings.Contains(page, "<html") || !strings.HasPrefix(page, `<main id="main"`) ||
		!strings.Contains(page, "Say why the document is rejected: the rep is told.") {
		t.Fatalf("a rejection without a reason: %d\n%s", res.StatusCode, page)
	}
	var status string
	if err := a.DB.Pool.QueryRow(context.Background(), `SELECT status FROM documents WHERE id = $1`, doc).Scan(&status); err != nil || status != "uploaded" {
		t.Fatalf("the document after a refused rejection: %s (%v)", status, err)
	}
	// A claim that is not there is the error page, its main element for htmx to swap.
	res, page = b.do("POST", "/console/claims/"+uuid.NewString()+"/decision", url.Values{"decision": {"approved"}},
		"X-CSRF-Token", token, "HX-Request", "true", "HX-Target", "main")
	if res.StatusCode != http.StatusNotFound || !strings.HasPrefix(page, `<main id="main"`) {
		t.Fatalf("a decision on no claim: %d\n%s", res.StatusCode, page)
	}
}
