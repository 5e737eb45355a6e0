package account

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The console's browser sessions (table web_sessions). A browser signs in through Login like an
// app, as a device of platform "web", so the same throttle, password check and session rules
// apply; what the browser then holds is a random cookie token standing for that account session,
// not the tokens (a cookie is sent by the browser on its own, a bearer token is not). The session
// ends when the person signs out, when it stays idle for longer than the console allows, or when
// anything that ends an account session ends it (a disabled user, a revoked device).

// WebSession is a signed-in browser: who it is, and the CSRF token its forms must carry.
type WebSession struct {
	Identity *fieldsync.Identity
	CSRF     string
}

// webTouchEvery is how stale last_seen_at may get before a request writes it again: an idle
// timeout counted in minutes does not need a write per request.
const webTouchEvery = time.Minute

var errWebSessionEnded = fieldsync.Errorf(fieldsync.EUNAUTHORIZED, "session_expired", "Your session has ended; sign in again.")

// SignInWeb checks the credentials as Login does (addr is the caller's address, for the throttle)
// on the browser's device, and opens a web session: it returns the cookie token and the session.
// idle is the console's idle timeout; sessions idle for longer are swept on the way.
func (s *Service) SignInWeb(ctx context.Context, req LoginRequest, addr string, idle time.Duration) (string, *WebSession, error) {
	req.Device.Platform = "web"
	tokens, err := s.Login(ctx, req, addr)
	if err != nil {
		return "", nil, err
	}
	claims, err := s.keys.parseAccessToken(s.cfg.Tokens, tokens.AccessToken, s.NowFunc())
	if err != nil {
		return "", nil, err
	}
	token, err := randomToken()
	if err != nil {
		return "", nil, err
	}
	csrf, err := randomToken()
	if err != nil {
		return "", nil, err
	}
	now := s.NowFunc()
	var id *fieldsync.Identity
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM web_sessions WHERE last_seen_at < $1`, now.Add(-idle)); err != nil {
			return fmt.Errorf("sweep web sessions: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO web_sessions (token_hash, session_id, csrf_token, created_at, last_seen_at)
			VALUES ($1, $2, $3, $4, $4)`, hashToken(token), claims.SessionID, csrf, now); err != nil {
			return fmt.Errorf("open web session: %w", err)
		}
		id, _, err = loadIdentity(ctx, tx, claims.SessionID)
		return err
	})
	if err != nil {
		return "", nil, err
	}
	return token, &WebSession{Identity: id, CSRF: csrf}, nil
}

// FindWebSession returns the live web session of a cookie token, refusing (session_expired) one
// unknown, idle for longer than idle, or whose account session has ended; an idle one is ended
// on the way.
func (s *Service) FindWebSession(ctx context.Context, token string, idle time.Duration) (*WebSession, error) {
	if token == "" || len(token) > 100 {
		return nil, errWebSessionEnded
	}
	now := s.NowFunc()
	var sessionID uuid.UUID
	var csrf string
	var lastSeen time.Time
	err := s.db.QueryRow(ctx, `SELECT session_id, csrf_token, last_seen_at FROM web_sessions WHERE token_hash = $1`,
		hashToken(token)).Scan(&sessionID, &csrf, &lastSeen)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, errWebSessionEnded
	case err != nil:
		return nil, fmt.Errorf("find web session: %w", err)
	case now.Sub(lastSeen) > idle:
		if err := s.endWebSession(ctx, token, sessionID, "idle"); err != nil {
			return nil, err
		}
		return nil, errWebSessionEnded
	}
	id, _, err := loadIdentity(ctx, s.db, sessionID)
	if fieldsync.ErrorKind(err) == fieldsync.EUNAUTHORIZED {
		return nil, errWebSessionEnded // revoked, replaced, a disabled user or a revoked device
	}
	if err != nil {
		return nil, err
	}
	if now.Sub(lastSeen) > webTouchEvery {
		if _, err := s.db.Exec(ctx, `UPDATE web_sessions SET last_seen_at = $2 WHERE token_hash = $1`, hashToken(token), now); err != nil {
			return nil, fmt.Errorf("touch web session: %w", err)
		}
	}
	return &WebSession{Identity: id, CSRF: csrf}, nil
}

// SignOutWeb ends the web session of a cookie token and its account session. An unknown token
// is not an error: the browser is signed out either way.
func (s *Service) SignOutWeb(ctx context.Context, token string) error {
	var sessionID uuid.UUID
	err := s.db.QueryRow(ctx, `SELECT session_id FROM web_sessions WHERE token_hash = $1`, hashToken(token)).Scan(&sessionID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find web session: %w", err)
	}
	return s.endWebSession(ctx, token, sessionID, "logout")
}

// endWebSession removes the web session and revokes its account session for reason.
func (s *Service) endWebSession(ctx context.Context, token string, sessionID uuid.UUID, reason string) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM web_sessions WHERE token_hash = $1`, hashToken(token)); err != nil {
			return fmt.Errorf("end web session: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = now(), revoke_reason = $2 WHERE id = $1 AND revoked_at IS NULL`,
			sessionID, reason); err != nil {
			return fmt.Errorf("revoke session: %w", err)
		}
		return nil
	})
}

// randomToken is 32 random bytes, base64url: a cookie or CSRF token nobody can guess.
func randomToken() (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("make token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw), nil
}
