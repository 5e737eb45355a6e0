package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/fieldsync/fieldsync/internal/testenv"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// testPassword is every test user's password.
const testPassword = "correct horse battery"

// bundle is what a test gets from setup: a server over its own database (apptest.New, as serve
// builds it), and ways to reach in.
type bundle struct {
	app      *apptest.App
	db       *testenv.Database
	accounts *account.Service
	engine   *sync.Engine
	keys     *account.Keys
	keyPEM   []byte
	srv      *httptest.Server
	branchID uuid.UUID
	// clock is every part's clock, moved to expire tokens without waiting.
	clock *apptest.Clock
}

// setup builds the service with apptest's defaults, stricter login throttles and a 64 KiB body
// cap, changed by opts, and a branch.
func setup(t testing.TB, opts ...func(*apptest.Setup)) *bundle {
	t.Helper()
	a := apptest.New(t, append([]func(*apptest.Setup){func(s *apptest.Setup) {
		s.LoginFailuresPerLogin, s.LoginFailuresPerAddress, s.MaxBodyBytes = 5, 50, 64<<10
	}}, opts...)...)
	return newBundle(t, a)
}

// newBundle is the bundle of a built service, with a new branch.
func newBundle(t testing.TB, a *apptest.App) *bundle {
	return &bundle{app: a, db: a.DB, accounts: a.Accounts, engine: a.Engine, keys: a.Keys, keyPEM: a.KeyPEM,
		srv: a.HTTP, branchID: a.Branch(t), clock: a.Clock}
}

// replica builds another instance of the service over the bundle's database, as another replica
// behind a load balancer: apptest's defaults changed by opts, sharing the bundle's keys, accounts
// service and clock.
func (b *bundle) replica(t testing.TB, opts ...func(*apptest.Setup)) *apptest.App {
	t.Helper()
	return apptest.New(t, append([]func(*apptest.Setup){func(s *apptest.Setup) {
		s.Deps.Pool, s.Deps.Keys, s.Deps.Accounts, s.Deps.Now = b.db.Pool, b.keys, b.accounts, b.clock.Now
	}}, opts...)...)
}

// newUser creates a user of the test branch with testPassword and returns its login and id.
func (b *bundle) newUser(t *testing.T, role string) (string, uuid.UUID) {
	t.Helper()
	login := role + "-" + uuid.NewString()[:8]
	nu := account.NewUser{BranchID: b.branchID, Role: role, Login: login, Name: "Test " + role, Password: testPassword}
	if role == "admin" {
		nu.BranchID = uuid.Nil
	}
	id, err := b.accounts.CreateUser(context.Background(), nu)
	if err != nil {
		t.Fatal(err)
	}
	return login, id
}

// response is a decoded HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// errorCode returns the code of an error-shaped body, failing the test if it is not one.
func (r response) errorCode(t *testing.T) string {
	t.Helper()
	var e struct {
		Error struct {
			Code    string         `json:"code"`
			Message string         `json:"message"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	r.json(t, &e)
	if e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not the error shape: %s", r.body)
	}
	return e.Error.Code
}

// do sends a request; body is JSON-encoded unless it is a string or []byte.
func (b *bundle) do(t *testing.T, method, path, token string, body any) response {
	t.Helper()
	return b.doWith(t, method, path, token, body)
}

// doWith is do with extra request headers (name, value, ...).
func (b *bundle) doWith(t *testing.T, method, path, token string, body any, headers ...string) response {
	t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	case []byte:
		rd = bytes.NewReader(v)
	default:
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, b.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: data}
}

// expect fails the test unless r has the status and, when code is not empty, the error code.
func expect(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if code != "" {
		if got := r.errorCode(t); got != code {
			t.Fatalf("code %q, want %q: %s", got, code, r.body)
		}
	}
}

func loginBody(login, password string, device uuid.UUID) map[string]any {
	return map[string]any{"login": login, "password": password,
		"device": map[string]any{"id": device, "platform": "android", "name": "Pixel", "app_version": "1.0.0"}}
}

// login signs in on a new device and returns the tokens.
func (b *bundle) login(t *testing.T, login string) account.Tokens {
	t.Helper()
	return b.loginOn(t, login, uuid.New())
}

func (b *bundle) loginOn(t *testing.T, login string, device uuid.UUID) account.Tokens {
	t.Helper()
	r := b.do(t, "POST", "/v1/auth/login", "", loginBody(login, testPassword, device))
	expect(t, r, http.StatusOK, "")
	var tokens account.Tokens
	r.json(t, &tokens)
	return tokens
}
