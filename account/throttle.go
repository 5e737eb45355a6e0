package account

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ThrottleConfig bounds failed logins: at most PerLogin failures for one login name and PerAddress
// failures from one network address within Window. Past that, logins are refused with 429 until the
// window that counted them ends.
type ThrottleConfig struct {
	PerLogin   int
	PerAddress int
	Window     time.Duration
}

// throttle counts failed logins in PostgreSQL, so every replica enforces the same limit.
type throttle struct {
	db  *pgxpool.Pool
	cfg ThrottleConfig
}

// throttleKeys returns the counter keys of a login attempt: the login's first, then the address's.
func throttleKeys(login, addr string) []string {
	return []string{"login:" + strings.ToLower(login), "addr:" + addr}
}

func (t *throttle) limit(key string) int {
	if strings.HasPrefix(key, "login:") {
		return t.cfg.PerLogin
	}
	return t.cfg.PerAddress
}

// check returns a too_many_attempts error, with the time to wait, if any key is over its limit.
func (t *throttle) check(ctx context.Context, keys []string) error {
	rows, err := t.db.Query(ctx, `
		SELECT key, failures, extract(epoch FROM window_started_at + $2::interval - now())
		FROM login_throttle WHERE key = ANY($1) AND window_started_at > now() - $2::interval`,
		keys, t.cfg.Window)
	if err != nil {
		return fmt.Errorf("read login throttle: %w", err)
	}
	defer rows.Close()
	var wait float64
	for rows.Next() {
		var key string
		var failures int
		var left float64
		if err := rows.Scan(&key, &failures, &left); err != nil {
			return fmt.Errorf("read login throttle: %w", err)
		}
		if failures >= t.limit(key) && left > wait {
			wait = left
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read login throttle: %w", err)
	}
	if wait > 0 {
		e := fieldsync.Errorf(fieldsync.ERATELIMIT, "too_many_attempts", "Too many failed sign-in attempts; try again later.")
		e.RetryAfter = time.Duration(wait*float64(time.Second)) + time.Second
		return e
	}
	return nil
}

// recordFailure counts one failure against each key, starting a new window where the last ended.
func (t *throttle) recordFailure(ctx context.Context, keys []string) error {
	_, err := t.db.Exec(ctx, `
		INSERT INTO login_throttle AS lt (key, window_started_at, failures)
		SELECT k, now(), 1 FROM unnest($1::text[]) AS k
		ON CONFLICT (key) DO UPDATE SET
			failures = CASE WHEN lt.window_started_at <= now() - $2::interval THEN 1 ELSE lt.failures + 1 END,
			window_started_at = CASE WHEN lt.window_started_at <= now() - $2::interval THEN now() ELSE lt.window_started_at END`,
		keys, t.cfg.Window)
	if err != nil {
		return fmt.Errorf("record failed login: %w", err)
	}
	// Now and then, forget windows long over, so that a spray of made-up logins does not grow the
	// table without bound. One failure in fifty pays for it.
	if rand.IntN(50) == 0 {
		if _, err := t.db.Exec(ctx, `DELETE FROM login_throttle WHERE window_started_at <= now() - $1::interval`, t.cfg.Window); err != nil {
			return fmt.Errorf("prune login throttle: %w", err)
		}
	}
	return nil
}

// reset forgets the failures of key (a successful login clears its login's count, not its address's).
func (t *throttle) reset(ctx context.Context, key string) error {
	if _, err := t.db.Exec(ctx, `DELETE FROM login_throttle WHERE key = $1`, key); err != nil {
		return fmt.Errorf("reset login throttle: %w", err)
	}
	return nil
}
