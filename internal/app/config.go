package app

import (
	"log/slog"
	"net"
	"time"

	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/media"
)

// Config is everything the server is told at start: cmd/fieldsync reads it from the environment
// and flags; tests set the values they need. A zero value means the part's own default, except
// where a field says otherwise.
type Config struct {
	DatabaseURL string
	// ReadDatabaseURL, if set, is a hot standby of DatabaseURL (a streaming replica) that serves
	// pulls and the screens' reads (FIELDSYNC_READ_DATABASE_URL; opened by cmd/fieldsync, given
	// to New as Deps.ReadPool).
	ReadDatabaseURL string
	Addr            string
	JWTKeyFile      string
	JWTGenerateKey  bool
	JWTIssuer       string
	JWTAudience     string
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	// RefreshGrace is how long a used refresh token may be presented again, once, for the same
	// new pair (its answer was lost); zero: account.DefaultRefreshGrace.
	RefreshGrace time.Duration

	// S3 is the object store of documents. An empty Endpoint builds no documents service (tests
	// of other parts; serve requires one).
	S3                      media.Config
	FirebaseCredentialsFile string
	// FCMEndpoint replaces FCM's endpoint (an emulator, or a test server); empty: Google's.
	FCMEndpoint string
	// PprofAddr, if set, is a loopback address where serve exposes net/http/pprof (profiling; the
	// load tool's --cpuprofile). Empty: no profiling endpoint.
	PprofAddr string

	MaxBodyBytes            int64
	BodyIdleTimeout         time.Duration
	BodyReadTimeout         time.Duration
	MaxUploadBytes          int64
	MaxDecodeBytes          int64
	LoginFailuresPerLogin   int
	LoginFailuresPerAddress int
	LoginWindow             time.Duration
	LoginConcurrency        int
	// MinAppVersion is the oldest app version served, by platform (FIELDSYNC_MIN_APP_VERSION_*).
	MinAppVersion map[string]string

	ScopeWindow time.Duration
	// LongPollsPerUser and StreamsPerUser cap one user's open long-polls and event streams on a
	// replica (429 too_many_waits beyond).
	LongPollsPerUser int
	StreamsPerUser   int

	CORSOrigins    []string
	TrustedProxies []*net.IPNet
	// ConsoleIdleTimeout ends a console session unused for this long (console's default when
	// zero). Amounts are in each branch's own currency (branches.currency).
	ConsoleIdleTimeout time.Duration
	ShutdownTimeout    time.Duration
	MigrateOnStart     bool

	LogLevel  slog.Level
	LogFormat string

	// Uploads: caps per user and device, part buffers and how long to wait for one, and the
	// address upload URLs are built on. (The idle deadline of a body is BodyIdleTimeout, above.)
	UploadsPerUser   int
	UploadsPerDevice int
	UploadBuffers    int64
	UploadBufferWait time.Duration
	PublicURL        string

	// The settings below have no environment variable: their defaults are production's, and
	// tests change them.

	// Password is the argon2id cost of new password hashes (account.DefaultPasswordParams when
	// zero; tests use the cheapest).
	Password account.PasswordParams
	// LoginWait is how long a login waits for a hashing slot (account's default when zero).
	LoginWait time.Duration
	// TargetsEvery is how often the service-level check runs (jobqueue.DefaultTargetsEvery when
	// zero; never when negative: tests call sync.Engine.CheckTargets with the time they mean).
	TargetsEvery time.Duration
	// ChangeRetention is how long the change log, the stored results of mutations and finished
	// push deliveries are kept (FIELDSYNC_RETENTION; the sync engine's default when zero).
	ChangeRetention time.Duration
	// Heartbeat is how often an idle event stream gets a comment (notify's default when zero).
	Heartbeat time.Duration
	// PushWorkers and PushSends are how many delivery jobs this replica works at once and how
	// many pushes it sends at once (notify's defaults when zero).
	PushWorkers int
	PushSends   int
	// StoreTimeout bounds each call to the object store (media's default when zero).
	StoreTimeout time.Duration
	// JobsID names this replica's job client in river_job.attempted_by (River's own when empty).
	JobsID string
	// NoNotifications builds no notifications service: no rules, no push, no event stream (tests
	// of other parts, whose pulls then hold no notifications).
	NoNotifications bool
	// NoPushWake sends no wake-up pushes (a data-only "sync now" to a rep's phones when a task
	// enters their scope): tests of the alerts, which count every message FCM gets.
	NoPushWake bool
}
