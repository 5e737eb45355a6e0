package sync

import (
	"context"
	"fmt"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// CanSee reports whether the scope of id holds the live record of type typ with id entityID: the
// same rule that decides what syncs to the caller's device. Roles that do not sync (admin,
// integration) see nothing, and a deleted or missing record is not seen. It returns an error only
// for an unknown type or a database failure.
func (e *Engine) CanSee(ctx context.Context, id *fieldsync.Identity, typ string, entityID uuid.UUID) (bool, error) {
	return e.canSee(ctx, e.db, id, typ, entityID)
}

// queryRower is what canSee reads with: the pool, or a transaction.
type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// canSee is CanSee, read through q.
func (e *Engine) canSee(ctx context.Context, q queryRower, id *fieldsync.Identity, typ string, entityID uuid.UUID) (bool, error) {
	ent, ok := entities[typ]
	if !ok {
		return false, fmt.Errorf("can see: unknown type %q", typ)
	}
	pred := scopes[id.Role][typ]
	if pred == "" {
		return false, nil
	}
	var seen bool
	err := q.QueryRow(ctx, fmt.Sprintf(`SELECT EXISTS (SELECT 1 FROM %s t, %s WHERE t.id = $5 AND %s AND (%s))`,
		ent.table, params, ent.alive, pred), id.UserID, id.BranchID, e.cfg.ScopeWindow, e.sqlNow(), entityID).Scan(&seen)
	if err != nil {
		return false, fmt.Errorf("check scope of %s %s: %w", typ, entityID, err)
	}
	return seen, nil
}
