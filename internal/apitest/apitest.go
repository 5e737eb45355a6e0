// Package apitest starts a real fieldsync server in-process for the tests of clients (the
// protocol client, the device simulator): the HTTP API over a migrated PostgreSQL schema of the
// test's own, with the sync engine's workers running and, when asked, the documents service over
// a fresh MinIO bucket with its processing jobs. Push notifications are off.
//
// A package that asks for Media must call testenv.Main from its TestMain.
package apitest

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/internal/jobqueue"
	"github.com/fieldsync/fieldsync/internal/testenv"
	"github.com/fieldsync/fieldsync/media"
	"github.com/fieldsync/fieldsync/server"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

// Password is every test user's password.
const Password = "correct horse battery"

// Options choose what the server has.
type Options struct {
	// TokenTTL is the access tokens' lifetime (15 minutes when zero).
	TokenTTL time.Duration
	// Media adds the documents service (tus uploads, processing jobs) over a fresh bucket.
	Media bool
}

// Server is a running server and what a test needs to reach behind it.
type Server struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:41234.
	URL      string
	DB       *testenv.Database
	Accounts *account.Service
	Engine   *sync.Engine
	// BranchID is the branch NewUser puts users in.
	BranchID uuid.UUID

	clockOffset atomic.Int64
}

// Start starts a server for the test; everything stops when the test ends. It calls t.Fatal if
// anything cannot be started.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.TokenTTL == 0 {
		o.TokenTTL = 15 * time.Minute
	}
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	s := &Server{DB: testenv.DB(t)}
	keyPEM, err := account.GenerateKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := account.ParseKeys(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	s.Accounts, err = account.NewService(s.DB.Pool, keys, account.Config{
		Tokens:          account.TokenConfig{Issuer: "fieldsync-test", Audience: "fieldsync-api", TTL: o.TokenTTL},
		RefreshTokenTTL: 24 * time.Hour,
		// The cheapest argon2id parameters: simulated devices sign in again and again.
		Password: account.PasswordParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1},
		Throttle: account.ThrottleConfig{PerLogin: 50, PerAddress: 500, Window: time.Minute},
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	s.Accounts.NowFunc = func() time.Time { return time.Now().Add(time.Duration(s.clockOffset.Load())) }

	s.Engine = sync.New(s.DB.Pool, sync.Config{ScopeWindow: 30 * 24 * time.Hour}, log)
	if err := s.Engine.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	background, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Engine.Run(background); close(done) }()
	t.Cleanup(func() { stop(); <-done })

	deps := server.Deps{Accounts: s.Accounts, Engine: s.Engine}
	if o.Media {
		deps.Media = startMedia(t, s, log)
	}
	h := server.New(server.Config{MaxBodyBytes: 5 << 20, ShutdownTimeout: 5 * time.Second,
		BodyIdleTimeout: 30 * time.Second, BodyReadTimeout: 60 * time.Second}, deps, log)
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(srv.Close)
	s.URL = srv.URL

	branch, err := s.Accounts.CreateBranch(context.Background(), "Branch "+uuid.NewString()[:8])
	if err != nil {
		t.Fatal(err)
	}
	s.BranchID = branch.ID
	return s
}

// startMedia builds the documents service over a fresh bucket and runs its processing jobs
// until the test ends.
func startMedia(t testing.TB, s *Server, log *slog.Logger) *media.Service {
	t.Helper()
	store, err := media.NewStore(testenv.S3(t))
	if err != nil {
		t.Fatal(err)
	}
	workers := river.NewWorkers()
	jobs, err := river.NewClient(riverpgxv5.New(s.DB.Pool), jobqueue.Config(workers, log))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := media.NewService(media.Options{DB: s.DB.Pool, Engine: s.Engine, Store: store, Jobs: jobs, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	svc.RegisterWorkers(workers)
	ctx, cancel := context.WithCancel(context.Background())
	if err := jobs.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		stopCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
		defer stop()
		_ = jobs.Stop(stopCtx)
	})
	return svc
}

// User is a user NewUser made.
type User struct {
	ID    uuid.UUID
	Login string
	Role  string
}

// NewUser creates a user of the server's branch whose password is Password. repKind is "agent"
// or "hospital" for reps (agent when empty) and ignored otherwise.
func (s *Server) NewUser(t testing.TB, role, repKind string) User {
	t.Helper()
	login := role + "-" + uuid.NewString()[:8]
	nu := account.NewUser{BranchID: s.BranchID, Role: role, Login: login, Name: "User " + login, Password: Password}
	if role == "rep" {
		if repKind == "" {
			repKind = "agent"
		}
		nu.RepKind = repKind
	}
	id, err := s.Accounts.CreateUser(context.Background(), nu)
	if err != nil {
		t.Fatal(err)
	}
	return User{ID: id, Login: login, Role: role}
}

// Advance moves the accounts service's clock forward by d, to expire access tokens without
// waiting for them.
func (s *Server) Advance(d time.Duration) { s.clockOffset.Add(int64(d)) }
