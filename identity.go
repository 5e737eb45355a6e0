package fieldsync

import (
	"context"

	"github.com/google/uuid"
)

// Roles a user can have (BRIEF.md, "Users and what they hold on their device").
const (
	RoleRep         = "rep"
	RoleProcessor   = "processor"
	RoleManager     = "manager"
	RoleAdmin       = "admin"
	RoleIntegration = "integration"
)

// Kinds of rep (users.rep_kind): an agent looks after customers of their own; a hospital rep is
// on duty at hospitals and gets the visits claim intake dispatches.
const (
	RepAgent    = "agent"
	RepHospital = "hospital"
)

// Identity is who is making a request: the authenticated user on one device in one session. It is
// read fresh from the database on every request, so a disabled user or a revoked device is refused
// at once rather than when the access token expires.
type Identity struct {
	UserID    uuid.UUID
	DeviceID  uuid.UUID
	SessionID uuid.UUID
	Role      string
	BranchID  uuid.UUID // uuid.Nil for admins and integrations, who belong to no branch
	Name      string
	// Platform and AppVersion are the device's, as it last told them (at login, or in
	// X-App-Version): the minimum app version is checked against them.
	Platform   string
	AppVersion string
}

type identityKey struct{}

// NewContextWithIdentity returns a copy of ctx carrying id.
func NewContextWithIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFromContext returns the identity carried by ctx, or nil for an anonymous request.
func IdentityFromContext(ctx context.Context) *Identity {
	id, _ := ctx.Value(identityKey{}).(*Identity)
	return id
}
