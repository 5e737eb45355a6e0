package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Branch is an office of the insurer.
type Branch struct {
	ID   uuid.UUID `json:"id"`
	Name string    `json:"name"`
	// TimeZone (IANA) and Currency (ISO 4217) are how dates and amounts read to its people.
	TimeZone  string    `json:"time_zone"`
	Currency  string    `json:"currency"`
	CreatedAt time.Time `json:"created_at"`
}

// branchColumns are a Branch's columns, in its fields' order.
const branchColumns = `id, name, time_zone, currency, created_at`

// CreateBranch adds a branch with the default time zone and currency and returns it.
func (s *Service) CreateBranch(ctx context.Context, name string) (*Branch, error) {
	return s.AddBranch(ctx, NewBranch{Name: name})
}

// AddBranch adds a branch and returns it. Names are unique, ignoring case; a bad name, time zone
// or currency is invalid_value naming it.
func (s *Service) AddBranch(ctx context.Context, nb NewBranch) (*Branch, error) {
	if err := nb.validate(); err != nil {
		return nil, err
	}
	b := Branch{ID: uuid.Must(uuid.NewV7()), Name: nb.Name, TimeZone: nb.TimeZone, Currency: nb.Currency}
	err := s.db.QueryRow(ctx, `INSERT INTO branches (id, name, time_zone, currency) VALUES ($1, $2, $3, $4) RETURNING created_at`,
		b.ID, b.Name, b.TimeZone, b.Currency).Scan(&b.CreatedAt)
	if uniqueViolation(err, "branches_name_key") {
		return nil, fieldsync.Errorf(fieldsync.ECONFLICT, "branch_exists", "A branch named %q already exists.", nb.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("create branch: %w", err)
	}
	return &b, nil
}

// ListBranches returns every branch, by name.
func (s *Service) ListBranches(ctx context.Context) ([]Branch, error) {
	rows, err := s.db.Query(ctx, `SELECT `+branchColumns+` FROM branches ORDER BY lower(name)`)
	if err != nil {
		return nil, fmt.Errorf("list branches: %w", err)
	}
	branches, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Branch])
	if err != nil {
		return nil, fmt.Errorf("list branches: %w", err)
	}
	return branches, nil
}

// NewUser is what an administrator gives to create an account.
type NewUser struct {
	BranchID uuid.UUID // required unless Role is admin or integration
	Role     string
	RepKind  string // agent or hospital; reps only (default agent)
	Login    string
	Name     string
	Password string
}

// CreateUser adds a user and returns its id.
func (s *Service) CreateUser(ctx context.Context, nu NewUser) (uuid.UUID, error) {
	switch nu.Role {
	case fieldsync.RoleRep:
		if nu.RepKind == "" {
			nu.RepKind = fieldsync.RepAgent
		}
		if nu.RepKind != fieldsync.RepAgent && nu.RepKind != fieldsync.RepHospital {
			return uuid.Nil, fieldsync.InvalidField("rep_kind", "rep_kind must be agent or hospital.")
		}
	case fieldsync.RoleProcessor, fieldsync.RoleManager, fieldsync.RoleAdmin, fieldsync.RoleIntegration:
		if nu.RepKind != "" {
			return uuid.Nil, fieldsync.InvalidField("rep_kind", "rep_kind is only for reps.")
		}
	default:
		return uuid.Nil, fieldsync.InvalidField("role", "role must be rep, processor, manager, admin or integration.")
	}
	needsBranch := nu.Role != fieldsync.RoleAdmin && nu.Role != fieldsync.RoleIntegration
	if needsBranch && nu.BranchID == uuid.Nil {
		return uuid.Nil, fieldsync.InvalidField("branch_id", "A %s belongs to a branch: give its id.", nu.Role)
	}
	if err := validateText("login", nu.Login, true, 100); err != nil {
		return uuid.Nil, err
	}
	if err := validateText("name", nu.Name, true, 200); err != nil {
		return uuid.Nil, err
	}
	hash, err := s.hashNewPassword(ctx, nu.Password)
	if err != nil {
		return uuid.Nil, err
	}
	id := uuid.Must(uuid.NewV7())
	var branch, repKind any
	if needsBranch {
		branch = nu.BranchID
	}
	if nu.RepKind != "" {
		repKind = nu.RepKind
	}
	_, err = s.db.Exec(ctx, `
		INSERT INTO users (id, branch_id, role, rep_kind, name, login, password_hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, branch, nu.Role, repKind, nu.Name, nu.Login, hash)
	switch {
	case uniqueViolation(err, "users_login_key"):
		return uuid.Nil, fieldsync.Errorf(fieldsync.ECONFLICT, "login_taken", "The login %q is already taken.", nu.Login)
	case isForeignKeyViolation(err):
		return uuid.Nil, fieldsync.Errorf(fieldsync.ENOTFOUND, "branch_not_found", "No branch has id %s.", nu.BranchID)
	case err != nil:
		return uuid.Nil, fmt.Errorf("create user: %w", err)
	}
	return id, nil
}

// hashNewPassword checks a new password's length and hashes it in one of the hash slots.
func (s *Service) hashNewPassword(ctx context.Context, password string) (string, error) {
	if len([]rune(password)) < MinPasswordChars {
		return "", fieldsync.InvalidField("password", "password must be at least %d characters.", MinPasswordChars)
	}
	if len(password) > MaxPasswordBytes {
		return "", fieldsync.InvalidField("password", "password must be at most %d bytes.", MaxPasswordBytes)
	}
	var hash string
	var herr error
	if err := s.withHashSlot(ctx, func() { hash, herr = HashPassword(password, s.cfg.Password) }); err != nil {
		return "", err
	}
	return hash, herr
}

// FindUserIDByLogin returns the id of the user with login (ignoring case).
func (s *Service) FindUserIDByLogin(ctx context.Context, login string) (uuid.UUID, error) {
	if err := validateText("login", login, true, 100); err != nil {
		return uuid.Nil, err
	}
	var id uuid.UUID
	err := s.db.QueryRow(ctx, `SELECT id FROM users WHERE lower(login) = lower($1)`, login).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, fieldsync.Errorf(fieldsync.ENOTFOUND, "user_not_found", "No user has login %q.", login)
	}
	if err != nil {
		return uuid.Nil, fmt.Errorf("find user: %w", err)
	}
	return id, nil
}

// DisableUser stops a user from signing in and ends every session of theirs at once.
func (s *Service) DisableUser(ctx context.Context, userID uuid.UUID) error {
	return s.endSessionsAfter(ctx, userID, `UPDATE users SET disabled_at = coalesce(disabled_at, now()), updated_at = now() WHERE id = $1`, nil, "user_disabled")
}

// ResetPassword gives a user a new password and ends every session of theirs.
func (s *Service) ResetPassword(ctx context.Context, userID uuid.UUID, password string) error {
	hash, err := s.hashNewPassword(ctx, password)
	if err != nil {
		return err
	}
	return s.endSessionsAfter(ctx, userID, `UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1`, []any{hash}, "password_reset")
}

// endSessionsAfter runs update on the user, then revokes their open sessions with reason.
func (s *Service) endSessionsAfter(ctx context.Context, userID uuid.UUID, update string, args []any, reason string) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, update, append([]any{userID}, args...)...)
		if err != nil {
			return fmt.Errorf("update user: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return fieldsync.Errorf(fieldsync.ENOTFOUND, "user_not_found", "No user has id %s.", userID)
		}
		if _, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = now(), revoke_reason = $2 WHERE user_id = $1 AND revoked_at IS NULL`,
			userID, reason); err != nil {
			return fmt.Errorf("end sessions: %w", err)
		}
		return nil
	})
}

// RevokeDevice stops a device (a lost or stolen phone) at once: its session ends, its push token
// is dropped, and it cannot sign in again.
func (s *Service) RevokeDevice(ctx context.Context, deviceID uuid.UUID) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE devices SET revoked_at = coalesce(revoked_at, now()),
			push_token = NULL, push_platform = NULL, push_token_at = NULL WHERE id = $1`, deviceID)
		if err != nil {
			return fmt.Errorf("revoke device: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return fieldsync.Errorf(fieldsync.ENOTFOUND, "device_not_found", "No device has id %s.", deviceID)
		}
		if _, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = now(), revoke_reason = 'device_revoked'
			WHERE device_id = $1 AND revoked_at IS NULL`, deviceID); err != nil {
			return fmt.Errorf("end device session: %w", err)
		}
		return nil
	})
}
