// Package apitest starts a real fieldsync server in-process for the tests of clients (the
// protocol client, the device simulator): the HTTP API over a migrated PostgreSQL schema of the
// test's own, with the sync engine's workers running and, when asked, the documents service over
// a fresh MinIO bucket with its processing jobs. Push notifications are off. It is the service as
// apptest builds it (internal/app), with a branch and users made through the accounts service.
//
// A package that asks for Media must call testenv.Main from its TestMain.
package apitest

import (
	"context"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/fieldsync/fieldsync/internal/testenv"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
)

// Password is every test user's password.
const Password = "correct horse battery"

// Options choose what the server has.
type Options struct {
	// TokenTTL is the access tokens' lifetime (15 minutes when zero).
	TokenTTL time.Duration
	// Media adds the documents service (tus uploads, processing jobs) over a fresh bucket.
	Media bool
	// Notifications turns the notifications service on, and with it the event stream
	// (GET /v1/events); its rules then add notifications to the users' pulls.
	Notifications bool
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

	clock *apptest.Clock
}

// Start starts a server for the test (apptest.New); everything stops when the test ends. It
// calls t.Fatal if anything cannot be started.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	a := apptest.New(t, func(s *apptest.Setup) {
		if o.TokenTTL != 0 {
			s.AccessTokenTTL = o.TokenTTL
		}
		if o.Media {
			s.S3 = testenv.S3(t)
		}
		if o.Notifications {
			s.NoNotifications = false
		}
	})
	return &Server{URL: a.URL, DB: a.DB, Accounts: a.Accounts, Engine: a.Engine, BranchID: a.Branch(t), clock: a.Clock}
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

// Advance moves the server's clock forward by d, to expire access tokens without waiting for
// them.
func (s *Server) Advance(d time.Duration) { s.clock.Advance(d) }
