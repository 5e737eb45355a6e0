package account

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/jackc/pgx/v5"
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
//
// An attempt is counted as a failure before its password is checked (reserve), in one transaction
// that refuses it if that would pass a limit: checking first and counting after the (slow) hash let
// any number of concurrent guesses through while the count still read below the limit. An attempt
// that turns out not to be a failure gives its count back (release).
type throttle struct {
	db  *pgxpool.Pool
	cfg ThrottleConfig
}

// throttleKeys returns the counter keys of a login attempt: the login's first, then the address's.
// Every attempt locks its keys in this order, so two attempts never wait on each other in a cycle.
func throttleKeys(login, addr string) []string {
	return []string{"login:" + strings.ToLower(login), "addr:" + addr}
}

func (t *throttle) limit(key string) int {
	if strings.HasPrefix(key, "login:") {
		return t.cfg.PerLogin
	}
	return t.cfg.PerAddress
}

// reservation is an attempt counted against its keys: the window each count went into, so that
// giving it back never takes from a window started after it.
type reservation struct {
	keys    []string
	windows []time.Time
}

// reserve counts one attempt against every key, or, if any key has reached its limit, counts
// nothing and returns a too_many_attempts error with the time to wait. The rows stay locked until
// the count is committed, so concurrent attempts on one key are counted one after another.
func (t *throttle) reserve(ctx context.Context, keys []string) (*reservation, error) {
	res := &reservation{}
	var wait float64
	err := pgx.BeginFunc(ctx, t.db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			INSERT INTO login_throttle AS lt (key, window_started_at, failures)
			SELECT k, now(), 1 FROM unnest($1::text[]) WITH ORDINALITY AS u(k, i) ORDER BY i
			ON CONFLICT (key) DO UPDATE SET
				failures = CASE WHEN lt.window_started_at <= now() - $2::interval THEN 1 ELSE lt.failures + 1 END,
				window_started_at = CASE WHEN lt.window_started_at <= now() - $2::interval THEN now() ELSE lt.window_started_at END
			RETURNING key, failures, window_started_at, extract(epoch FROM window_started_at + $2::interval - now())`,
			keys, t.cfg.Window)
		if err != nil {
			return fmt.Errorf("count login attempt: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var key string
			var failures int
			var started time.Time
			var left float64
			if err := rows.Scan(&key, &failures, &started, &left); err != nil {
				return fmt.Errorf("count login attempt: %w", err)
			}
			if failures > t.limit(key) {
				wait = max(wait, left)
			}
			res.keys = append(res.keys, key)
			res.windows = append(res.windows, started)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("count login attempt: %w", err)
		}
		if wait > 0 {
			return errThrottled // rolls the counts back: a refused attempt is not a failure
		}
		return nil
	})
	if errors.Is(err, errThrottled) {
		e := fieldsync.Errorf(fieldsync.ERATELIMIT, "too_many_attempts", "Too many failed sign-in attempts; try again later.")
		e.RetryAfter = time.Duration(wait*float64(time.Second)) + time.Second
		return nil, e
	}
	if err != nil {
		return nil, err
	}
	t.prune(ctx)
	return res, nil
}

var errThrottled = errors.New("login throttled")

// release gives back an attempt that was not a failure (the right password, or one never checked
// because the server failed or was busy). It runs even if the request was cancelled: an attempt
// left counted would lock out someone who did nothing wrong.
func (t *throttle) release(ctx context.Context, res *reservation) error {
	ctx = context.WithoutCancel(ctx)
	if _, err := t.db.Exec(ctx, `
		UPDATE login_throttle lt SET failures = greatest(lt.failures - 1, 0)
		FROM unnest($1::text[], $2::timestamptz[]) AS r(key, started)
		WHERE lt.key = r.key AND lt.window_started_at = r.started`, res.keys, res.windows); err != nil {
		return fmt.Errorf("release login attempt: %w", err)
	}
	return nil
}

// prune now and then forgets windows long over, so that a spray of made-up logins does not grow
// the table without bound. One attempt in fifty pays for it. Rows another attempt holds are
// skipped, so pruning never waits on, or deadlocks with, a login. A failure only delays the pruning.
func (t *throttle) prune(ctx context.Context) {
	if rand.IntN(50) != 0 {
		return
	}
	_, _ = t.db.Exec(ctx, `
		DELETE FROM login_throttle WHERE key IN (
			SELECT key FROM login_throttle WHERE window_started_at <= now() - $1::interval
			FOR UPDATE SKIP LOCKED)`, t.cfg.Window)
}

// reset forgets the failures of key (a successful login clears its login's count, not its address's).
func (t *throttle) reset(ctx context.Context, key string) error {
	if _, err := t.db.Exec(context.WithoutCancel(ctx), `DELETE FROM login_throttle WHERE key = $1`, key); err != nil {
		return fmt.Errorf("reset login throttle: %w", err)
	}
	return nil
}
