package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/fieldsync/fieldsync/internal/browsertest"
	"github.com/google/uuid"
)

// newUser makes a user of branch with the tests' password and returns its login and id.
func newUser(t testing.TB, a *apptest.App, branch uuid.UUID, role, repKind, name string) (string, uuid.UUID) {
	t.Helper()
	login := role + "-" + uuid.NewString()[:8]
	id, err := a.Accounts.CreateUser(context.Background(), account.NewUser{BranchID: branch, Role: role, RepKind: repKind,
		Login: login, Name: name, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return login, id
}

// signInTab opens a tab on the console page at path, signs in as login through the sign-in form
// it is sent to, and, unless lang is "en" (the browser's language), chooses lang with the
// language form.
func signInTab(t *testing.T, baseURL, path, login, lang string) context.Context {
	t.Helper()
	tab := browsertest.Shared(t).Tab(t)
	browsertest.Do(t, tab, "sign in as "+login,
		chromedp.Navigate(baseURL+path),
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.SendKeys(chromedp.ID("login"), login),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.ID("sign-out")),
	)
	if lang != "en" {
		browsertest.Do(t, tab, "choose "+lang,
			chromedp.SetValue(chromedp.ID("lang"), lang),
			chromedp.Submit(chromedp.ID("lang")),
			chromedp.WaitVisible(chromedp.CSS(`html[lang="`+lang+`"]`)),
		)
	}
	return tab
}

// pageCase is a page of a benchmark: a console page (the session's cookie) or the API's answer
// to the same read (a bearer token).
type pageCase struct {
	name, path string
	console    bool
}

// pageGetter serves GET path in process, as the console's signed-in browser or as the API's
// client, gzipped if asked; anything but 200 fails the benchmark.
type pageGetter func(path string, console, gzip bool) *httptest.ResponseRecorder

// signedInGetter signs login in to the console (a cookie) and to the API (a token), and returns
// the getter of both.
func signedInGetter(b *testing.B, a *apptest.App, login string) pageGetter {
	b.Helper()
	cb := newHTTPBrowser(b, a.URL)
	jarURL, _ := url.Parse(a.URL + "/console/")
	if res, _ := cb.signIn(login, password); res.StatusCode != http.StatusSeeOther {
		b.Fatalf("sign in: %d", res.StatusCode)
	}
	cookies := cb.c.Jar.Cookies(jarURL)
	tokens, err := a.Accounts.Login(context.Background(), account.LoginRequest{Login: login, Password: password,
		Device: account.Device{ID: uuid.New(), Platform: "android"}}, "127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	h := a.Server.Handler()
	return func(path string, console, gzip bool) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		if console {
			for _, c := range cookies {
				req.AddCookie(c)
			}
		} else {
			req.Header.Set("Authorization", "Bearer "+tokens.AccessToken)
		}
		if gzip {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body.String()[:min(300, rec.Body.Len())])
		}
		return rec
	}
}

// benchPages runs a sub-benchmark per case: the time of a page load, and its bytes plain and
// gzipped.
func benchPages(b *testing.B, get pageGetter, cases []pageCase) {
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			raw, zipped := get(c.path, c.console, false).Body.Len(), get(c.path, c.console, true).Body.Len()
			b.ResetTimer()
			for b.Loop() {
				get(c.path, c.console, false)
			}
			b.ReportMetric(float64(raw), "bytes/page")
			b.ReportMetric(float64(zipped), "gzip-bytes/page")
		})
	}
}
