// Package apptest builds the service for tests the way fieldsync serve does (app.New) over a
// migrated PostgreSQL schema of the test's own, and serves it on an httptest server. A test says
// what it needs as Config values and Deps (a killable or proxied pool, a shared accounts service,
// a push sender); there is no other assembly code. Everything stops when the test ends.
//
// A test that sets Config.S3 (testenv.S3) must call testenv.Main from its package's TestMain.
package apptest

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/internal/app"
	"github.com/fieldsync/fieldsync/internal/testenv"
	"github.com/google/uuid"
)

// Setup is what a test chooses.
type Setup struct {
	app.Config
	// Deps are given to app.New. Pool is the test database's when nil, Keys new ones, Now the
	// test's Clock, Log discarded (warnings to stderr with -v).
	Deps app.Deps
	// Idle leaves the background workers (engine, job queue, cleanup, event stream listener)
	// stopped: the test runs what it needs itself.
	Idle bool
}

// Defaults are the settings of a test server: production's, with the cheapest password hashes
// (tests sign in hundreds of times), loose login throttles, and no notifications service (its
// rules would add notifications to every pull).
func Defaults() app.Config {
	return app.Config{
		JWTIssuer:               "fieldsync-test",
		JWTAudience:             "fieldsync-api",
		AccessTokenTTL:          15 * time.Minute,
		RefreshTokenTTL:         24 * time.Hour,
		Password:                account.PasswordParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1},
		LoginFailuresPerLogin:   50,
		LoginFailuresPerAddress: 500,
		LoginWindow:             time.Minute,
		MaxBodyBytes:            5 << 20,
		BodyIdleTimeout:         30 * time.Second,
		BodyReadTimeout:         60 * time.Second,
		ShutdownTimeout:         5 * time.Second,
		ScopeWindow:             30 * 24 * time.Hour,
		NoNotifications:         true,
		// Tests run the service-level check themselves, at the time they mean.
		TargetsEvery: -1,
	}
}

// App is a built, served service and what a test needs to reach behind it.
type App struct {
	*app.App
	// HTTP serves App.Server's handler; URL is its base URL.
	HTTP *httptest.Server
	URL  string
	// DB is the test's database (nil when the test gave its own pool).
	DB *testenv.Database
	// Keys sign the access tokens; KeyPEM is their PEM form.
	Keys   *account.Keys
	KeyPEM []byte
	// Clock is every part's clock, unless the test gave its own Deps.Now.
	Clock *Clock
}

// New builds and serves the service with Defaults changed by configure.
func New(t testing.TB, configure ...func(*Setup)) *App {
	t.Helper()
	s := Setup{Config: Defaults()}
	for _, c := range configure {
		c(&s)
	}
	a := &App{Clock: &Clock{}, Keys: s.Deps.Keys}
	if s.Deps.Pool == nil {
		a.DB = testenv.DB(t)
		s.Deps.Pool = a.DB.Pool
	}
	if a.Keys == nil {
		var err error
		if a.KeyPEM, err = account.GenerateKeyPEM(); err != nil {
			t.Fatal(err)
		}
		if a.Keys, err = account.ParseKeys(a.KeyPEM); err != nil {
			t.Fatal(err)
		}
		s.Deps.Keys = a.Keys
	}
	if s.Deps.Now == nil {
		s.Deps.Now = a.Clock.Now
	}
	if s.Deps.Log == nil {
		s.Deps.Log = Logger()
	}
	built, err := app.New(context.Background(), s.Config, s.Deps)
	if err != nil {
		t.Fatal(err)
	}
	a.App = built
	if !s.Idle {
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = built.Run(ctx); close(done) }()
		t.Cleanup(func() { stop(); <-done })
	}
	a.HTTP = httptest.NewServer(built.Server.Handler())
	t.Cleanup(a.HTTP.Close)
	a.URL = a.HTTP.URL
	return a
}

// Logger discards the service's log, or writes its warnings to stderr under go test -v.
func Logger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.DiscardHandler)
}

// Branch creates a branch with a fresh name.
func (a *App) Branch(t testing.TB) uuid.UUID {
	t.Helper()
	b, err := a.Accounts.CreateBranch(context.Background(), "Branch "+uuid.NewString()[:8])
	if err != nil {
		t.Fatal(err)
	}
	return b.ID
}

// Clock is the time.Now of a test, moved forward by Advance instead of waiting. The sync engine
// tells SQL its time (sync.Engine.NowFunc), so the scope windows and the change log's retention
// pass with it too: a test advances past a window and sweeps.
type Clock struct{ offset atomic.Int64 }

// Now is time.Now moved by every Advance so far.
func (c *Clock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// Set puts the clock d after the real time.
func (c *Clock) Set(d time.Duration) { c.offset.Store(int64(d)) }
