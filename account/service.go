package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Config are the account service's settings.
type Config struct {
	Tokens          TokenConfig
	RefreshTokenTTL time.Duration
	// RefreshGrace is how long after its use a refresh token may be presented again, once, and
	// get the same new refresh token (its answer was lost). Zero means DefaultRefreshGrace.
	RefreshGrace time.Duration
	Password     PasswordParams
	Throttle     ThrottleConfig
	// HashConcurrency bounds the argon2id hashes running at once in this process, each holding
	// Password.MemoryKiB of memory: a flood of logins then waits for a slot instead of taking the
	// server's memory. Zero means DefaultHashConcurrency.
	HashConcurrency int
	// HashWait is how long a login waits for a hash slot before it is refused with 503
	// server_busy. Zero means DefaultHashWait.
	HashWait time.Duration
	// MinAppVersion is the oldest app version served, by platform (android, ios, web); a platform
	// missing or empty has no minimum. Older apps get upgrade_required at login, pull and push.
	MinAppVersion map[string]string
}

// DefaultHashConcurrency returns the default bound on concurrent password hashes: one a CPU the
// process may use, at most 4 (4 × 19 MiB with the default parameters, about 130 logins a second at
// 30 ms each, far more than field staff need). A hash (argon2id, one lane) keeps one core busy:
// more at once than there are cores sign no one in sooner, yet each holds its 19 MiB the longer,
// and the heap grows to twice what is live before it is collected. On 2 cores, 4 slots made a
// sign-in storm the server's memory peak, above 5,000 devices long-polling (`fieldsync bench`).
func DefaultHashConcurrency() int { return min(4, runtime.GOMAXPROCS(0)) }

// DefaultHashWait is how long a login waits for a hash slot by default: long enough to ride out a
// burst (a shift starting), short enough that a flood is refused before it piles up requests.
const DefaultHashWait = 2 * time.Second

// Service logs people in and out, rotates their tokens, and authenticates their requests.
type Service struct {
	db       *pgxpool.Pool
	keys     *Keys
	cfg      Config
	log      *slog.Logger
	throttle *throttle
	// dummyHash is verified against when a login does not exist, so that an unknown login takes as
	// long to refuse as a wrong password and logins cannot be discovered by timing.
	dummyHash string
	// hashSlots holds a token for each password hash running (see Config.HashConcurrency).
	hashSlots   chan struct{}
	hashWait    time.Duration
	hashWaiting atomic.Int64
	hashBusy    prometheus.Counter
	// synced remembers, per device and kind of contact, when this replica last wrote it
	// (RecordSync), so that a pull within SyncThrottle costs no round trip at all.
	synced sync.Map
	// NowFunc returns the current time; tests move it to expire tokens.
	NowFunc func() time.Time
	// VerifyPasswordFunc checks a password against a stored hash (VerifyPassword); tests replace
	// it to hold a hash slot while they look.
	VerifyPasswordFunc func(password, hash string) (bool, error)
}

// NewService returns a Service over db signing with keys.
func NewService(db *pgxpool.Pool, keys *Keys, cfg Config, log *slog.Logger) (*Service, error) {
	dummy, err := HashPassword("not a real password", cfg.Password)
	if err != nil {
		return nil, err
	}
	slots, wait := cfg.HashConcurrency, cfg.HashWait
	if slots <= 0 {
		slots = DefaultHashConcurrency()
	}
	if wait <= 0 {
		wait = DefaultHashWait
	}
	if cfg.RefreshGrace <= 0 {
		cfg.RefreshGrace = DefaultRefreshGrace
	}
	return &Service{db: db, keys: keys, cfg: cfg, log: log, throttle: &throttle{db: db, cfg: cfg.Throttle},
		dummyHash: dummy, hashSlots: make(chan struct{}, slots), hashWait: wait,
		hashBusy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fieldsync_login_busy_total",
			Help: "Logins refused with 503 server_busy: no password-hash slot freed up in time.",
		}),
		NowFunc: time.Now, VerifyPasswordFunc: VerifyPassword}, nil
}

// withHashSlot runs hash once one of the process's hash slots is free. If none frees up within
// the wait, it returns 503 server_busy with Retry-After: the client retries later, and the
// server's memory stays bounded whatever the number of logins in flight.
func (s *Service) withHashSlot(ctx context.Context, hash func()) error {
	select {
	case s.hashSlots <- struct{}{}:
	default:
		if err := s.waitHashSlot(ctx); err != nil {
			return err
		}
	}
	defer func() { <-s.hashSlots }()
	hash()
	return nil
}

// waitHashSlot takes a hash slot when one frees up, or fails after the wait.
func (s *Service) waitHashSlot(ctx context.Context) error {
	s.hashWaiting.Add(1)
	defer s.hashWaiting.Add(-1)
	wait := time.NewTimer(s.hashWait)
	defer wait.Stop()
	select {
	case s.hashSlots <- struct{}{}:
		return nil
	case <-wait.C:
		s.hashBusy.Inc()
		e := fieldsync.Errorf(fieldsync.EUNAVAILABLE, "server_busy", "The server is busy signing people in; try again shortly.")
		e.RetryAfter = time.Second
		return e
	case <-ctx.Done():
		return ctx.Err()
	}
}

// HashesWaiting returns how many password checks are waiting for a hash slot now: a gauge of how
// far logins outrun Config.HashConcurrency.
func (s *Service) HashesWaiting() int { return int(s.hashWaiting.Load()) }

// Device is the app install a login happens on.
type Device struct {
	ID         uuid.UUID `json:"id"`
	Platform   string    `json:"platform"`
	Name       string    `json:"name"`
	AppVersion string    `json:"app_version"`
}

// LoginRequest is what a person types, and the device they type it on.
type LoginRequest struct {
	Login    string `json:"login"`
	Password string `json:"password"`
	Device   Device `json:"device"`
}

// User is the public view of a user, as returned at login.
type User struct {
	ID       uuid.UUID `json:"id"`
	Name     string    `json:"name"`
	Role     string    `json:"role"`
	BranchID uuid.UUID `json:"branch_id"`
}

// Tokens is a fresh access token and the refresh token to get the next one.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	User         User   `json:"user"`
}

var errInvalidCredentials = fieldsync.Errorf(fieldsync.EUNAUTHORIZED, "invalid_credentials",
	"The login or password is wrong.")

func validPlatform(p string) bool { return p == "android" || p == "ios" || p == "web" }

// validateText returns an invalid_value error naming field when s is not valid UTF-8, holds a
// control character, is longer than max characters, or is empty when required. It is the one rule
// for every short text the account package stores: PostgreSQL refuses NUL in text (which would be
// a 500), and the others have no place in a name, a login or a token.
func validateText(field, s string, required bool, max int) error {
	switch {
	case !utf8.ValidString(s):
		return fieldsync.InvalidField(field, "%s must be valid UTF-8.", field)
	case strings.ContainsFunc(s, unicode.IsControl):
		return fieldsync.InvalidField(field, "%s must not contain control characters.", field)
	case required && strings.TrimSpace(s) == "":
		return fieldsync.InvalidField(field, "%s is required.", field)
	case utf8.RuneCountInString(s) > max:
		return fieldsync.InvalidField(field, "%s must be at most %d characters.", field, max)
	}
	return nil
}

func (r *LoginRequest) validate() error {
	if err := validateText("login", r.Login, true, 100); err != nil {
		return err
	}
	if r.Password == "" {
		return fieldsync.InvalidField("password", "password is required.")
	}
	if len(r.Password) > MaxPasswordBytes {
		return fieldsync.InvalidField("password", "password must be at most %d bytes.", MaxPasswordBytes)
	}
	if r.Device.ID == uuid.Nil {
		return fieldsync.InvalidField("device.id", "device.id must be a UUID made by the app.")
	}
	if !validPlatform(r.Device.Platform) {
		return fieldsync.InvalidField("device.platform", "device.platform must be android, ios or web.")
	}
	if err := validateText("device.name", r.Device.Name, false, 200); err != nil {
		return err
	}
	return validateText("device.app_version", r.Device.AppVersion, false, 50)
}

// Login checks the credentials and opens a session on the device. addr is the caller's network
// address, for the per-address rate limit. A device already signed in has its earlier session
// revoked: one session per device. A device that was revoked cannot be signed in again.
func (s *Service) Login(ctx context.Context, req LoginRequest, addr string) (*Tokens, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	if err := s.CheckAppVersion(req.Device.Platform, req.Device.AppVersion); err != nil {
		return nil, err
	}
	keys := throttleKeys(req.Login, addr)
	// The attempt counts as a failure before the password is hashed, so that concurrent guesses
	// cannot all pass a limit that a count after the hash has not reached yet.
	attempt, err := s.throttle.reserve(ctx, keys)
	if err != nil {
		return nil, err
	}
	u, err := s.checkCredentials(ctx, req)
	if errors.Is(err, errInvalidCredentials) {
		return nil, err // a failure: it stays counted
	}
	// Anything else was not a failed guess (the right password, a busy or failing server): the
	// attempt is given back, and a success clears its login's count as well.
	if rerr := s.throttle.release(ctx, attempt); rerr != nil {
		return nil, errors.Join(err, rerr)
	}
	if err != nil {
		return nil, err
	}
	if err := s.throttle.reset(ctx, keys[0]); err != nil {
		return nil, err
	}

	var tokens *Tokens
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if err := upsertDevice(ctx, tx, u.ID, req.Device); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			UPDATE sessions SET revoked_at = now(), revoke_reason = 'replaced'
			WHERE device_id = $1 AND revoked_at IS NULL`, req.Device.ID); err != nil {
			return fmt.Errorf("end earlier session: %w", err)
		}
		id := &fieldsync.Identity{UserID: u.ID, DeviceID: req.Device.ID, SessionID: uuid.New(),
			Role: u.Role, BranchID: u.BranchID, Name: u.Name}
		if _, err := tx.Exec(ctx, `INSERT INTO sessions (id, user_id, device_id) VALUES ($1, $2, $3)`,
			id.SessionID, id.UserID, id.DeviceID); err != nil {
			return fmt.Errorf("open session: %w", err)
		}
		tokens, err = s.issue(ctx, tx, id, u)
		return err
	})
	if err != nil {
		return nil, err
	}
	return tokens, nil
}

// checkCredentials returns the user whose login and password req gives, errInvalidCredentials
// if there is none, or user_disabled. An unknown login is hashed too, against dummyHash, so that
// it takes as long to refuse as a wrong password; both hashes wait for a hash slot.
func (s *Service) checkCredentials(ctx context.Context, req LoginRequest) (User, error) {
	var u User
	var hash string
	var disabled bool
	err := s.db.QueryRow(ctx, `
		SELECT id, name, role, coalesce(branch_id, '00000000-0000-0000-0000-000000000000'), password_hash,
		       disabled_at IS NOT NULL
		FROM users WHERE lower(login) = lower($1)`, req.Login).
		Scan(&u.ID, &u.Name, &u.Role, &u.BranchID, &hash, &disabled)
	known := err == nil
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		hash = s.dummyHash
	case err != nil:
		return User{}, fmt.Errorf("find user: %w", err)
	}
	var ok bool
	var verr error
	if err := s.withHashSlot(ctx, func() { ok, verr = s.VerifyPasswordFunc(req.Password, hash) }); err != nil {
		return User{}, err
	}
	switch {
	case !known:
		return User{}, errInvalidCredentials
	case verr != nil:
		return User{}, fmt.Errorf("verify password of user %s: %w", u.ID, verr)
	case !ok:
		return User{}, errInvalidCredentials
	case disabled:
		return User{}, fieldsync.Errorf(fieldsync.EFORBIDDEN, "user_disabled", "This account is disabled.")
	}
	return u, nil
}

// upsertDevice registers the device for user, or takes it over from another user (a shared phone):
// then its push token is dropped so that the previous user's alerts stop going to it.
func upsertDevice(ctx context.Context, tx pgx.Tx, userID uuid.UUID, d Device) error {
	var owner uuid.UUID
	var revoked, wiped bool
	err := tx.QueryRow(ctx, `SELECT user_id, revoked_at IS NOT NULL, wiped_at IS NOT NULL FROM devices WHERE id = $1 FOR UPDATE`, d.ID).
		Scan(&owner, &revoked, &wiped)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		_, err = tx.Exec(ctx, `INSERT INTO devices (id, user_id, platform, name, app_version) VALUES ($1, $2, $3, $4, $5)`,
			d.ID, userID, d.Platform, d.Name, d.AppVersion)
		if err != nil {
			return fmt.Errorf("register device: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("find device: %w", err)
	case wiped:
		return errDeviceWiped(fieldsync.EFORBIDDEN)
	case revoked:
		return fieldsync.Errorf(fieldsync.EFORBIDDEN, "device_revoked",
			"This device was revoked by an administrator; reinstall the app to sign in again.")
	}
	if owner != userID {
		if _, err := tx.Exec(ctx, `
			UPDATE sessions SET revoked_at = now(), revoke_reason = 'replaced'
			WHERE device_id = $1 AND revoked_at IS NULL`, d.ID); err != nil {
			return fmt.Errorf("end previous user's session: %w", err)
		}
	}
	_, err = tx.Exec(ctx, `
		UPDATE devices SET user_id = $2, platform = $3, name = $4, app_version = $5, last_seen_at = now(),
		       push_token = CASE WHEN user_id = $2 THEN push_token END,
		       push_platform = CASE WHEN user_id = $2 THEN push_platform END
		WHERE id = $1`, d.ID, userID, d.Platform, d.Name, d.AppVersion)
	if err != nil {
		return fmt.Errorf("update device: %w", err)
	}
	return nil
}

// issue stores a new refresh token for the identity's session and signs an access token.
func (s *Service) issue(ctx context.Context, tx pgx.Tx, id *fieldsync.Identity, u User) (*Tokens, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("make refresh token: %w", err)
	}
	refresh := base64.RawURLEncoding.EncodeToString(raw)
	now := s.NowFunc()
	if _, err := tx.Exec(ctx, `INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)`,
		hashToken(refresh), id.SessionID, now, now.Add(s.cfg.RefreshTokenTTL)); err != nil {
		return nil, fmt.Errorf("store refresh token: %w", err)
	}
	return s.pair(id, u, refresh, now)
}

// pair signs an access token for the identity and returns it with refresh.
func (s *Service) pair(id *fieldsync.Identity, u User, refresh string, now time.Time) (*Tokens, error) {
	access, err := s.keys.signAccessToken(s.cfg.Tokens, id, now)
	if err != nil {
		return nil, err
	}
	return &Tokens{AccessToken: access, RefreshToken: refresh, TokenType: "Bearer",
		ExpiresIn: int(s.cfg.Tokens.TTL / time.Second), User: u}, nil
}

func hashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

var errRefreshInvalid = fieldsync.Errorf(fieldsync.EUNAUTHORIZED, "refresh_token_invalid",
	"The refresh token is not valid; sign in again.")

// DefaultRefreshGrace is how long after its use a refresh token may be presented again, once, to
// get the same new pair (Config.RefreshGrace): long enough for a phone to retry a refresh whose
// answer a bad network lost, short enough that a stolen token is of no use for long.
const DefaultRefreshGrace = 60 * time.Second

// Refresh exchanges a refresh token for a new pair. The presented token stops working. A token that
// was already used revokes its session (refresh_token_reused): whoever holds the chain now, the
// owner or a thief, must sign in again. The one allowance (replay): a token presented again within
// Config.RefreshGrace of its use, whose answer was lost, gets the same new refresh token back.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (*Tokens, error) {
	if refreshToken == "" || len(refreshToken) > 200 {
		return nil, errRefreshInvalid
	}
	now := s.NowFunc()
	var tokens *Tokens
	var reused bool
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var sessionID uuid.UUID
		var usedAt *time.Time
		var expired, revoked bool
		var sealed []byte
		err := tx.QueryRow(ctx, `
			SELECT rt.session_id, rt.used_at, rt.expires_at <= $2, s.revoked_at IS NOT NULL, rt.successor_sealed
			FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id
			WHERE rt.token_hash = $1
			FOR UPDATE OF rt, s`, hashToken(refreshToken), now).Scan(&sessionID, &usedAt, &expired, &revoked, &sealed)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return errRefreshInvalid
		case err != nil:
			return fmt.Errorf("find refresh token: %w", err)
		case revoked:
			return fieldsync.Errorf(fieldsync.EUNAUTHORIZED, "session_revoked", "This session has ended; sign in again.")
		case usedAt != nil:
			if tokens, err = s.replay(ctx, tx, refreshToken, sessionID, *usedAt, sealed, now); err != nil || tokens != nil {
				return err
			}
			reused = true
			_, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = now(), revoke_reason = 'refresh_token_reused' WHERE id = $1`, sessionID)
			if err != nil {
				return fmt.Errorf("revoke session: %w", err)
			}
			return nil
		case expired:
			return fieldsync.Errorf(fieldsync.EUNAUTHORIZED, "refresh_token_expired", "The refresh token has expired; sign in again.")
		}
		id, u, err := loadIdentity(ctx, tx, sessionID)
		if err != nil {
			return err
		}
		if tokens, err = s.issue(ctx, tx, id, u); err != nil {
			return err
		}
		sealed, err = sealSuccessor(refreshToken, tokens.RefreshToken)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET used_at = $2, successor_sealed = $3 WHERE token_hash = $1`,
			hashToken(refreshToken), now, sealed); err != nil {
			return fmt.Errorf("use refresh token: %w", err)
		}
		return touchSession(ctx, tx, id)
	})
	if err != nil {
		return nil, err
	}
	if reused {
		s.log.WarnContext(ctx, "refresh token reused; session revoked")
		return nil, fieldsync.Errorf(fieldsync.EUNAUTHORIZED, "refresh_token_reused",
			"This refresh token was already used; the session is revoked. Sign in again.")
	}
	return tokens, nil
}

// replay answers a used refresh token presented again when that is a retry of a refresh whose
// answer was lost: within the grace window of its use, for the first time (the seal is cleared
// now), and while the refresh token issued for it is unused (the client never got it). It returns
// that same refresh token with a freshly signed access token for the session. nil, nil means it
// is reuse: the caller revokes the session. The token belongs to one session, hence one device,
// so a replay can only come from the device it was issued to or from whoever stole it; a thief
// presenting it after the owner used the new token is refused.
func (s *Service) replay(ctx context.Context, tx pgx.Tx, used string, sessionID uuid.UUID, usedAt time.Time, sealed []byte, now time.Time) (*Tokens, error) {
	if sealed == nil || now.Sub(usedAt) > s.cfg.RefreshGrace {
		return nil, nil
	}
	successor, err := openSuccessor(used, sealed)
	if err != nil {
		s.log.WarnContext(ctx, "refresh replay: the sealed successor does not open", "err", err)
		return nil, nil
	}
	var successorUsed bool
	err = tx.QueryRow(ctx, `SELECT used_at IS NOT NULL FROM refresh_tokens WHERE token_hash = $1 AND session_id = $2 FOR UPDATE`,
		hashToken(successor), sessionID).Scan(&successorUsed)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("find successor token: %w", err)
	case successorUsed:
		return nil, nil
	}
	id, u, err := loadIdentity(ctx, tx, sessionID)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET successor_sealed = NULL WHERE token_hash = $1`, hashToken(used)); err != nil {
		return nil, fmt.Errorf("use refresh replay: %w", err)
	}
	if err := touchSession(ctx, tx, id); err != nil {
		return nil, err
	}
	return s.pair(id, u, successor, now)
}

// touchSession records that the identity's session was refreshed and its device seen.
func touchSession(ctx context.Context, tx pgx.Tx, id *fieldsync.Identity) error {
	if _, err := tx.Exec(ctx, `UPDATE sessions SET refreshed_at = now() WHERE id = $1`, id.SessionID); err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE devices SET last_seen_at = now() WHERE id = $1`, id.DeviceID); err != nil {
		return fmt.Errorf("touch device: %w", err)
	}
	return nil
}

// querier is what both a pool and a transaction can do.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// loadIdentity returns the identity of a live session: one not revoked, of a user not disabled, on
// a device not revoked. Otherwise it returns the *fieldsync.Error that says which.
func loadIdentity(ctx context.Context, q querier, sessionID uuid.UUID) (*fieldsync.Identity, User, error) {
	var id fieldsync.Identity
	var sessionRevoked, deviceRevoked, userDisabled, deviceWiped bool
	err := q.QueryRow(ctx, `
		SELECT s.user_id, s.device_id, s.id, u.role, coalesce(u.branch_id, '00000000-0000-0000-0000-000000000000'), u.name,
		       -- A device taken over by another user ends the sessions of the previous one.
		       s.revoked_at IS NOT NULL OR d.user_id <> s.user_id, d.revoked_at IS NOT NULL, u.disabled_at IS NOT NULL,
		       d.wiped_at IS NOT NULL, d.platform, d.app_version
		FROM sessions s
		JOIN users u ON u.id = s.user_id
		JOIN devices d ON d.id = s.device_id
		WHERE s.id = $1`, sessionID).
		Scan(&id.UserID, &id.DeviceID, &id.SessionID, &id.Role, &id.BranchID, &id.Name,
			&sessionRevoked, &deviceRevoked, &userDisabled, &deviceWiped, &id.Platform, &id.AppVersion)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, User{}, fieldsync.Errorf(fieldsync.EUNAUTHORIZED, "token_invalid", "The access token is not valid.")
	case err != nil:
		return nil, User{}, fmt.Errorf("load session: %w", err)
	case deviceWiped:
		// Before every other refusal: whoever holds the phone now, it must erase what it holds.
		return nil, User{}, errDeviceWiped(fieldsync.EUNAUTHORIZED)
	case userDisabled:
		return nil, User{}, fieldsync.Errorf(fieldsync.EUNAUTHORIZED, "user_disabled", "This account is disabled.")
	case deviceRevoked:
		return nil, User{}, fieldsync.Errorf(fieldsync.EUNAUTHORIZED, "device_revoked", "This device was revoked.")
	case sessionRevoked:
		return nil, User{}, fieldsync.Errorf(fieldsync.EUNAUTHORIZED, "session_revoked", "This session has ended; sign in again.")
	}
	return &id, User{ID: id.UserID, Name: id.Name, Role: id.Role, BranchID: id.BranchID}, nil
}

// Authenticate verifies an access token and returns the identity behind it, read from the database
// so that a revoked session or device, or a disabled user, is refused at once.
func (s *Service) Authenticate(ctx context.Context, accessToken string) (*fieldsync.Identity, error) {
	claims, err := s.keys.parseAccessToken(s.cfg.Tokens, accessToken, s.NowFunc())
	if err != nil {
		return nil, err
	}
	id, _, err := loadIdentity(ctx, s.db, claims.SessionID)
	if err != nil {
		return nil, err
	}
	if id.UserID.String() != claims.Subject || id.DeviceID != claims.DeviceID {
		return nil, fieldsync.Errorf(fieldsync.EUNAUTHORIZED, "token_invalid", "The access token is not valid.")
	}
	return id, nil
}

// Recheck tells whether id's session still holds, as Authenticate would find it now: for a request
// that waited (a long-poll) before it answers. The access token was verified when the request came
// in and stays good for its answer; what may have ended meanwhile is the session, the device or
// the user, which are read again. Verifying the token's signature again would cost as much as the
// read (an Ed25519 verification) at every wake-up, for nothing.
func (s *Service) Recheck(ctx context.Context, id *fieldsync.Identity) error {
	now, _, err := loadIdentity(ctx, s.db, id.SessionID)
	if err != nil {
		return err
	}
	if now.UserID != id.UserID || now.DeviceID != id.DeviceID {
		return fieldsync.Errorf(fieldsync.EUNAUTHORIZED, "token_invalid", "The access token is not valid.")
	}
	return nil
}

// Logout revokes the identity's session: its refresh token and access tokens stop working, and the
// device's push token is dropped, since nobody signed in on it should be alerted any more.
func (s *Service) Logout(ctx context.Context, id *fieldsync.Identity) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = now(), revoke_reason = 'logout' WHERE id = $1 AND revoked_at IS NULL`, id.SessionID); err != nil {
			return fmt.Errorf("revoke session: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE devices SET push_token = NULL, push_platform = NULL, push_token_at = NULL WHERE id = $1`, id.DeviceID); err != nil {
			return fmt.Errorf("drop push token: %w", err)
		}
		return nil
	})
}

// PushToken is a device's registration with a push service.
type PushToken struct {
	Token    string `json:"token"`
	Platform string `json:"platform"`
}

// SetPushToken stores the push token of the identity's device. A token names one app install, so
// if another device row held it (the app was reinstalled), it is taken from that row.
func (s *Service) SetPushToken(ctx context.Context, id *fieldsync.Identity, pt PushToken) error {
	if err := validateText("token", pt.Token, true, 4096); err != nil {
		return err
	}
	if len(pt.Token) > 4096 {
		return fieldsync.InvalidField("token", "token must be at most 4096 bytes.")
	}
	if !validPlatform(pt.Platform) {
		return fieldsync.InvalidField("platform", "platform must be android, ios or web.")
	}
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE devices SET push_token = NULL, push_platform = NULL, push_token_at = NULL
			WHERE push_token = $1 AND id <> $2`, pt.Token, id.DeviceID); err != nil {
			return fmt.Errorf("release push token: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE devices SET push_token = $2, push_platform = $3, push_token_at = now(),
			push_token_dropped_at = NULL WHERE id = $1`, id.DeviceID, pt.Token, pt.Platform); err != nil {
			return fmt.Errorf("store push token: %w", err)
		}
		return nil
	})
}

// uniqueViolation reports whether err is PostgreSQL's unique_violation (23505) on constraint.
func uniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == constraint
}

// isForeignKeyViolation reports whether err is PostgreSQL's foreign_key_violation (23503).
func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}
