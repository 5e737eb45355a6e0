package sync

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// janitorInterval is how often the janitor runs. Scope-window expiries are served at most this late.
const janitorInterval = time.Minute

func (e *Engine) runJanitor(ctx context.Context) error {
	t := time.NewTicker(janitorInterval)
	defer t.Stop()
	for {
		if err := e.Sweep(ctx); err != nil && !errors.Is(err, context.Canceled) {
			e.log.WarnContext(ctx, "sync janitor", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Sweep emits the scope moves that time alone causes, and prunes the change log, the stored
// results of mutations and the finished push deliveries past the retention. Several replicas may
// sweep at once: the settings row serialises them, and each expiry is emitted by exactly one
// sweep. It runs as the engine's other writes do (Engine.write),
// retried after a deadlock or a serialization failure.
//
// Time moves records out of scope without any write: a task finished more than the scope window
// ago leaves its rep's device, a claim settled that long ago leaves the review queue, and a read
// notification that long ago leaves its inbox. Time is the engine's clock (sqlNow). The swept span
// only grows: a sweep that waited for the lock behind a later one neither emits again what that
// one did nor moves the mark back (which would have the next sweep emit it a second time).
func (e *Engine) Sweep(ctx context.Context) error {
	err := e.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			WITH s AS (SELECT window_swept_until AS since, greatest(window_swept_until, fieldsync_now()) AS until,
				scope_window AS win FROM sync_settings FOR UPDATE),
			expired AS (
				-- Held at the last sweep and not now: what the triggers' rule (migrations/00007)
				-- says time alone took out since.
				SELECT t.branch_id, 'task' AS type, t.id, t.assignee_id AS target_user, NULL AS target_role
				FROM tasks t, s WHERE t.deleted_at IS NULL
					AND fieldsync_task_held(t, s.win, s.since) AND NOT fieldsync_task_held(t, s.win, s.until)
				UNION ALL
				SELECT c.branch_id, 'claim', c.id, NULL, 'processor'
				FROM claims c, s WHERE c.deleted_at IS NULL
					AND fieldsync_claim_queued(c, s.win, s.since) AND NOT fieldsync_claim_queued(c, s.win, s.until)
				UNION ALL
				SELECT n.branch_id, 'notification', n.id, n.user_id, NULL
				FROM notifications n, s WHERE n.branch_id IS NOT NULL
					AND fieldsync_notification_kept(n, s.win, s.since) AND NOT fieldsync_notification_kept(n, s.win, s.until)
			),
			logged AS (
				INSERT INTO changes (version, branch_id, entity_type, entity_id, op, target_user_id, target_role)
				SELECT nextval('change_version_seq'), branch_id, type, id, 'leave', target_user, target_role FROM expired
				RETURNING branch_id
			),
			announced AS (SELECT pg_notify('fieldsync_changes', b::text) FROM (SELECT DISTINCT branch_id AS b FROM logged) x)
			UPDATE sync_settings SET window_swept_until = (SELECT until FROM s)
			WHERE (SELECT count(*) FROM announced) >= 0`)
		if err != nil {
			return fmt.Errorf("sweep scope window: %w", err)
		}
		// The prune horizon: whole transactions only, so a cursor is either intact or expired; and
		// only those below the oldest one running. Past it, a running transaction's changes would
		// land below the horizon once it commits, and every new snapshot (whose cursor starts at
		// that oldest transaction) would be expired at once. It commits before anything below it
		// is deleted (prune), so a pull that sees a change gone sees the horizon past it too
		// (checkServable, changesPage).
		_, err = tx.Exec(ctx, `
			WITH horizon AS (SELECT max(xid) AS x FROM changes WHERE created_at < fieldsync_now() - $1::interval
				AND xid < pg_snapshot_xmin(pg_current_snapshot()))
			UPDATE sync_settings SET pruned_through_xid = (SELECT x FROM horizon)
			WHERE (SELECT x FROM horizon) IS NOT NULL
				AND (pruned_through_xid IS NULL OR pruned_through_xid < (SELECT x FROM horizon))`, e.cfg.ChangeRetention)
		if err != nil {
			return fmt.Errorf("move the prune horizon: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return e.prune(ctx)
}

// pruneBatch is how many rows one pruning transaction deletes: short enough that it never holds
// back pulls (which serve only below the oldest running transaction) for long.
const pruneBatch = 5000

// prune deletes what is past the retention (Config.ChangeRetention), in batches of short
// transactions of their own: the change log below the horizon, the stored results of mutations
// (a device replaying one older than that gets it applied afresh; its cursor, older still, has
// expired), and finished push deliveries. The tables stay bounded by what the retention holds.
func (e *Engine) prune(ctx context.Context) error {
	for _, q := range []struct{ what, sql string }{
		{"change log", `DELETE FROM changes WHERE version IN (SELECT version FROM changes
			WHERE created_at < fieldsync_now() - $1::interval AND xid <= (SELECT pruned_through_xid FROM sync_settings) LIMIT $2)`},
		{"applied mutations", `DELETE FROM applied_mutations WHERE id IN (SELECT id FROM applied_mutations
			WHERE applied_at < fieldsync_now() - $1::interval LIMIT $2)`},
		// By id: a sync wake-up's delivery has no notification (migrations/00011).
		{"push deliveries", `DELETE FROM notification_deliveries WHERE id IN (
			SELECT id FROM notification_deliveries WHERE finished_at < fieldsync_now() - $1::interval LIMIT $2)`},
	} {
		for {
			var n int64
			err := e.write(ctx, func(tx pgx.Tx) error {
				tag, err := tx.Exec(ctx, q.sql, e.cfg.ChangeRetention, pruneBatch)
				n = tag.RowsAffected()
				return err
			})
			if err != nil {
				return fmt.Errorf("prune %s: %w", q.what, err)
			}
			if n < pruneBatch {
				break
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}
