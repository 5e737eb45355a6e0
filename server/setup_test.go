package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/internal/testenv"
	"github.com/fieldsync/fieldsync/media"
	"github.com/fieldsync/fieldsync/server"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// testPassword is every test user's password.
const testPassword = "correct horse battery"

// bundle is what a test gets from setup: a server over its own database, and ways to reach in.
type bundle struct {
	db       *testenv.Database
	accounts *account.Service
	engine   *sync.Engine
	keys     *account.Keys
	keyPEM   []byte
	srv      *httptest.Server
	branchID uuid.UUID
	// clockOffset moves the accounts service's clock, to expire tokens without waiting.
	clockOffset atomic.Int64
}

type setupOptions struct {
	perLogin, perAddress int
	hashSlots            int
	hashWait             time.Duration
	password             account.PasswordParams // the cheapest argon2id parameters if zero
	maxBody              int64
	bodyIdle, bodyRead   time.Duration
	ready                map[string]server.ReadyCheck
}

func setup(t testing.TB, opts ...func(*setupOptions)) *bundle {
	t.Helper()
	o := setupOptions{perLogin: 5, perAddress: 50, maxBody: 64 << 10, bodyIdle: 30 * time.Second, bodyRead: 60 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if o.password == (account.PasswordParams{}) {
		// The cheapest argon2id parameters: tests log in hundreds of times.
		o.password = account.PasswordParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1}
	}
	b := &bundle{db: testenv.DB(t)}
	var err error
	if b.keyPEM, err = account.GenerateKeyPEM(); err != nil {
		t.Fatal(err)
	}
	if b.keys, err = account.ParseKeys(b.keyPEM); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	b.accounts, err = account.NewService(b.db.Pool, b.keys, account.Config{
		Tokens:          account.TokenConfig{Issuer: "fieldsync-test", Audience: "fieldsync-api", TTL: 15 * time.Minute},
		RefreshTokenTTL: 24 * time.Hour,
		Password:        o.password,
		Throttle:        account.ThrottleConfig{PerLogin: o.perLogin, PerAddress: o.perAddress, Window: time.Minute},
		HashConcurrency: o.hashSlots,
		HashWait:        o.hashWait,
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	b.accounts.NowFunc = func() time.Time { return time.Now().Add(time.Duration(b.clockOffset.Load())) }
	if o.ready == nil {
		o.ready = map[string]server.ReadyCheck{"database": b.db.Pool.Ping}
	}
	b.engine = sync.New(b.db.Pool, sync.Config{ScopeWindow: 30 * 24 * time.Hour}, log)
	if err := b.engine.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	workers, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = b.engine.Run(workers); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	s := server.New(server.Config{MaxBodyBytes: o.maxBody, ShutdownTimeout: 5 * time.Second,
		BodyIdleTimeout: o.bodyIdle, BodyReadTimeout: o.bodyRead},
		server.Deps{Accounts: b.accounts, Engine: b.engine, Ready: o.ready}, log)
	b.srv = httptest.NewServer(s.Handler())
	t.Cleanup(b.srv.Close)

	branch, err := b.accounts.CreateBranch(context.Background(), "Branch "+uuid.NewString()[:8])
	if err != nil {
		t.Fatal(err)
	}
	b.branchID = branch.ID
	return b
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

// s3Ready is a ready check against a real MinIO bucket.
func s3Ready(t *testing.T) server.ReadyCheck {
	store, err := media.NewStore(testenv.S3(t))
	if err != nil {
		t.Fatal(err)
	}
	return store.Ping
}
