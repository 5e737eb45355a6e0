package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// TargetsActor is the Name of the identity the target check writes with (a system identity):
// hooks tell its re-dispatch from a manager's reassignment by it.
const TargetsActor = "fieldsync targets"

// OpOverdue is the Op of the event hooks receive when a task passes its due time: nothing of the
// task changes but its reminded_at, so it is not a record's update.
const OpOverdue = "overdue"

// TargetsReport counts what one CheckTargets did.
type TargetsReport struct {
	Redispatched int
	Overdue      int
}

// The targets of a task: its kind's row of task_targets for its branch, else the default row.
// A task is late to be accepted at its claim's report + accept_within, and due at its own due
// date or else at the report + done_within.
var taskTargetsSQL = " LEFT JOIN LATERAL " + targetsOf("t.kind", "t.branch_id") + " tg ON true"

// targetsOf is the one place that says which targets apply to a kind in a branch: the subquery
// (accept_within, done_within) of the branch's own row for kind, else the default row.
func targetsOf(kind, branch string) string {
	return `(SELECT tt.accept_within, tt.done_within FROM task_targets tt
		WHERE tt.kind = ` + kind + ` AND (tt.branch_id = ` + branch + ` OR tt.branch_id IS NULL)
		ORDER BY tt.branch_id NULLS LAST LIMIT 1)`
}

// CheckTargets holds every unfinished task to its targets as of now: a hospital visit still not
// accepted past its accept target is re-dispatched to the next on-duty hospital rep (the first is
// told), and a task past its due time reminds its assignee and alerts the branch's managers.
// Each is one write of the engine (one transaction, with the hooks), done once: the task is
// locked and its condition checked again under the lock, and what was done is recorded on it, so
// that replicas running the check at once (River's periodic job) do it once. Cancelled and
// finished tasks are never touched. now is a parameter so that tests need not wait.
func (e *Engine) CheckTargets(ctx context.Context, now time.Time) (TargetsReport, error) {
	var rep TargetsReport
	// Re-dispatch first: a visit both late and overdue goes to its new rep before anyone is
	// reminded of it.
	steps := []struct {
		cond string
		do   func(context.Context, uuid.UUID, time.Time) (bool, error)
		done *int
	}{
		{lateToAcceptSQL, e.redispatch, &rep.Redispatched},
		{overdueSQL, e.remind, &rep.Overdue},
	}
	for _, step := range steps {
		ids, err := e.tasksPast(ctx, step.cond, now)
		if err != nil {
			return rep, err
		}
		for _, id := range ids {
			done, err := step.do(ctx, id, now)
			if err != nil {
				return rep, err
			}
			if done {
				*step.done++
			}
		}
	}
	return rep, nil
}

// lateToAcceptSQL is the condition (over t, its claim c and its targets tg) of a task due for
// re-dispatch at $1.
const lateToAcceptSQL = `t.status = 'assigned' AND t.redispatched_at IS NULL
	AND tg.accept_within IS NOT NULL AND c.created_at + tg.accept_within <= $1`

// overdueSQL is the condition of a task whose assignee is to be reminded at $1.
const overdueSQL = `t.status IN ('assigned', 'accepted', 'in_progress') AND t.reminded_at IS NULL
	AND coalesce(t.due_at, c.created_at + tg.done_within) <= $1`

// tasksPast lists the unfinished tasks meeting cond at now.
func (e *Engine) tasksPast(ctx context.Context, cond string, now time.Time) ([]uuid.UUID, error) {
	rows, err := e.db.Query(ctx, `SELECT t.id FROM tasks t JOIN claims c ON c.id = t.claim_id`+taskTargetsSQL+`
		WHERE t.deleted_at IS NULL AND t.finished_at IS NULL AND `+cond+` ORDER BY t.created_at LIMIT 500`, now)
	if err != nil {
		return nil, fmt.Errorf("find tasks past their targets: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("find tasks past their targets: %w", err)
	}
	return ids, nil
}

// lockPast locks task id and reports, under the lock, whether it still meets cond, and its branch
// and assignee.
func lockPast(ctx context.Context, tx pgx.Tx, id uuid.UUID, cond string, now time.Time) (branch, assignee uuid.UUID, ok bool, err error) {
	var who *uuid.UUID
	err = tx.QueryRow(ctx, `SELECT t.branch_id, t.assignee_id FROM tasks t JOIN claims c ON c.id = t.claim_id`+taskTargetsSQL+`
		WHERE t.id = $2 AND t.deleted_at IS NULL AND t.finished_at IS NULL AND `+cond+` FOR UPDATE OF t`, now, id).Scan(&branch, &who)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, uuid.Nil, false, nil
	}
	if err != nil {
		return uuid.Nil, uuid.Nil, false, fmt.Errorf("lock task %s: %w", id, err)
	}
	if who != nil {
		assignee = *who
	}
	return branch, assignee, true, nil
}

// redispatch gives task id to the least loaded other on-duty hospital rep, once. When there is
// none, the task stays with its rep; it is marked all the same, and its due time still alerts the
// manager.
func (e *Engine) redispatch(ctx context.Context, id uuid.UUID, now time.Time) (bool, error) {
	var done bool
	err := e.write(ctx, func(tx pgx.Tx) error {
		done = false
		branch, was, ok, err := lockPast(ctx, tx, id, lateToAcceptSQL, now)
		if err != nil || !ok {
			return err
		}
		var version int64
		if err := tx.QueryRow(ctx, `UPDATE tasks SET redispatched_at = $2 WHERE id = $1 RETURNING version`, id, now).Scan(&version); err != nil {
			return fmt.Errorf("mark task %s re-dispatched: %w", id, err)
		}
		if err := lockDispatch(ctx, tx, branch); err != nil {
			return err
		}
		next, err := leastLoadedRep(ctx, tx, branch, was)
		if err != nil || next == nil {
			return err
		}
		assignee, _ := json.Marshal(*next)
		_, err = e.apply(ctx, tx, targetsIdentity(branch), &Mutation{ID: uuid.Must(uuid.NewV7()), Type: TypeTask, Op: "update",
			EntityID: id, BaseVersion: &version, Fields: map[string]json.RawMessage{"assignee_id": assignee}})
		done = err == nil
		return err
	})
	return done, err
}

// remind records that task id is overdue, once, and hands the event to the hooks (its assignee
// is reminded, the managers alerted).
func (e *Engine) remind(ctx context.Context, id uuid.UUID, now time.Time) (bool, error) {
	var done bool
	err := e.write(ctx, func(tx pgx.Tx) error {
		done = false
		branch, _, ok, err := lockPast(ctx, tx, id, overdueSQL, now)
		if err != nil || !ok {
			return err
		}
		var task []byte
		err = tx.QueryRow(ctx, `UPDATE tasks t SET reminded_at = $2 WHERE t.id = $1 RETURNING `+entities[TypeTask].data, id, now).Scan(&task)
		if err != nil {
			return fmt.Errorf("mark task %s overdue: %w", id, err)
		}
		if err := e.runHooks(ctx, tx, Event{Type: TypeTask, ID: id, Op: OpOverdue, Before: task, After: task, Actor: targetsIdentity(branch)}); err != nil {
			return err
		}
		done = true
		return nil
	})
	return done, err
}

func targetsIdentity(branch uuid.UUID) *fieldsync.Identity {
	id := SystemIdentity(branch, uuid.Nil)
	id.Name = TargetsActor
	return id
}

// Target is a task kind's service-level targets for a branch, in minutes: accepted within
// AcceptWithin of the claim's report (nil: no accept target), done within DoneWithin unless the
// task has a due date of its own.
type Target struct {
	Kind         TaskKind `json:"kind"`
	AcceptWithin *int64   `json:"accept_within_minutes"`
	DoneWithin   int64    `json:"done_within_minutes"`
}

// maxTargetMinutes bounds a target (a year): beyond it a target is no target.
const maxTargetMinutes = 366 * 24 * 60

// SetTargets sets branch's own targets for the kinds in targets (admins only) and returns the
// branch's targets for every kind: its own where set, the defaults otherwise.
func (e *Engine) SetTargets(ctx context.Context, id *fieldsync.Identity, branch uuid.UUID, targets []Target) ([]Target, error) {
	if id == nil || id.Role != fieldsync.RoleAdmin {
		return nil, errForbidden("Only an administrator may set a branch's targets.")
	}
	if len(targets) > len(TaskKinds) {
		return nil, fieldErr("invalid_value", "targets", "targets holds at most one entry per task kind (%d).", len(TaskKinds))
	}
	seen := map[TaskKind]bool{}
	for _, tg := range targets {
		switch {
		case seen[tg.Kind]:
			return nil, fieldErr("invalid_value", "kind", "kind %s is given twice.", tg.Kind)
		case !slices.Contains(TaskKinds, tg.Kind):
			return nil, fieldErr("invalid_value", "kind", "kind must be one of %s.", strings.Join(stringsOf(TaskKinds), ", "))
		case tg.DoneWithin < 1 || tg.DoneWithin > maxTargetMinutes:
			return nil, fieldErr("invalid_value", "done_within_minutes", "done_within_minutes must be 1 to %d.", maxTargetMinutes)
		case tg.AcceptWithin != nil && (*tg.AcceptWithin < 1 || *tg.AcceptWithin > maxTargetMinutes):
			return nil, fieldErr("invalid_value", "accept_within_minutes", "accept_within_minutes must be null or 1 to %d.", maxTargetMinutes)
		}
		seen[tg.Kind] = true
	}
	var out []Target
	err := e.write(ctx, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM branches WHERE id = $1)`, branch).Scan(&exists); err != nil {
			return fmt.Errorf("find branch: %w", err)
		}
		if !exists {
			return fieldsync.Errorf(fieldsync.ENOTFOUND, "branch_not_found", "No branch has id %s.", branch)
		}
		for _, tg := range targets {
			_, err := tx.Exec(ctx, `
				WITH gone AS (DELETE FROM task_targets WHERE branch_id = $1 AND kind = $2)
				INSERT INTO task_targets (branch_id, kind, accept_within, done_within)
				VALUES ($1, $2, make_interval(mins => $3::int), make_interval(mins => $4::int))`,
				branch, tg.Kind, tg.AcceptWithin, tg.DoneWithin)
			if err != nil {
				return fmt.Errorf("set targets: %w", err)
			}
		}
		rows, err := tx.Query(ctx, `
			SELECT k.kind, (extract(epoch FROM tg.accept_within) / 60)::bigint, (extract(epoch FROM tg.done_within) / 60)::bigint
			FROM unnest($2::text[]) WITH ORDINALITY k (kind, n)
			JOIN LATERAL `+targetsOf("k.kind", "$1")+` tg ON true
			ORDER BY k.n`, branch, stringsOf(TaskKinds))
		if err != nil {
			return fmt.Errorf("read targets: %w", err)
		}
		out, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Target])
		if err != nil {
			return fmt.Errorf("read targets: %w", err)
		}
		return nil
	})
	return out, err
}
