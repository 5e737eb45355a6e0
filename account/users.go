package account

import (
	"context"
	"fmt"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// maxBranchUsers caps ListBranchUsers: a branch is tens to hundreds of people.
const maxBranchUsers = 2000

// BranchUser is a person of a branch as a manager picks them: to assign a task, or to ask why
// their phone does not hold a record.
type BranchUser struct {
	ID       uuid.UUID `json:"id"`
	Name     string    `json:"name"`
	Role     string    `json:"role"`
	RepKind  string    `json:"rep_kind"`
	OnDuty   bool      `json:"on_duty"`
	Disabled bool      `json:"disabled"`
}

// ListBranchUsers returns the users of the caller's branch (a manager's), by name, at most 2,000.
// Other roles get forbidden.
func (s *Service) ListBranchUsers(ctx context.Context, caller *fieldsync.Identity) ([]BranchUser, error) {
	if caller == nil || caller.Role != fieldsync.RoleManager {
		return nil, fieldsync.Errorf(fieldsync.EFORBIDDEN, "forbidden", "Only a branch manager may list its people.")
	}
	rows, err := s.db.Query(ctx, `
		SELECT id, name, role, coalesce(rep_kind, ''), on_duty, disabled_at IS NOT NULL
		FROM users WHERE branch_id = $1 ORDER BY lower(name), id LIMIT $2`, caller.BranchID, maxBranchUsers)
	if err != nil {
		return nil, fmt.Errorf("list branch users: %w", err)
	}
	users, err := pgx.CollectRows(rows, pgx.RowToStructByPos[BranchUser])
	if err != nil {
		return nil, fmt.Errorf("list branch users: %w", err)
	}
	return users, nil
}
