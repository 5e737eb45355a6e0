package account

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// SyncThrottle is how often at most a device's last pull or push is written: a phone
// long-polling or pushing in a burst costs one UPDATE per this interval, not one per request.
const SyncThrottle = 10 * time.Second

// Kinds of contact RecordSync records.
const (
	ContactPull   = "pull"
	ContactPush   = "push"
	ContactUpload = "upload"
)

// RecordSync notes that the device made a pull, push or upload now. For a pull, cursorVersion is
// the change-log version of the cursor it was given (-1 while it is still in its snapshot): the
// lag stored is how far that stands behind the log's head. It is one UPDATE, written at most once
// per SyncThrottle for each kind, so a caller may run it after its answer is written.
func (s *Service) RecordSync(ctx context.Context, deviceID uuid.UUID, kind string, cursorVersion int64) error {
	var query string
	now := s.NowFunc()
	key := deviceID.String() + " " + kind
	if last, ok := s.synced.Load(key); ok && now.Sub(last.(time.Time)) < SyncThrottle {
		return nil // written by this replica within the throttle; the SQL below keeps it across replicas
	}
	args := []any{deviceID, now, now.Add(-SyncThrottle)}
	switch kind {
	case ContactPull:
		// The head is the newest version in the log; a snapshot cursor has no lag yet (NULL).
		query = `UPDATE devices SET last_pull_at = $2, last_seen_at = $2,
			pull_lag = CASE WHEN $4::bigint < 0 THEN NULL
			                ELSE greatest((SELECT coalesce(max(version), 0) FROM changes) - $4::bigint, 0) END
			WHERE id = $1 AND (last_pull_at IS NULL OR last_pull_at <= $3)`
		args = append(args, cursorVersion)
	case ContactPush:
		query = `UPDATE devices SET last_push_at = $2, last_seen_at = $2
			WHERE id = $1 AND (last_push_at IS NULL OR last_push_at <= $3)`
	case ContactUpload:
		query = `UPDATE devices SET last_upload_at = $2, last_seen_at = $2
			WHERE id = $1 AND (last_upload_at IS NULL OR last_upload_at <= $3)`
	default:
		return fmt.Errorf("record sync: unknown contact %q", kind)
	}
	if _, err := s.db.Exec(ctx, query, args...); err != nil {
		return fmt.Errorf("record %s of device %s: %w", kind, deviceID, err)
	}
	s.synced.Store(key, now)
	return nil
}

// DeviceState is what the server knows of one device's sync, for its branch's manager.
type DeviceState struct {
	ID         uuid.UUID `json:"id"`
	UserID     uuid.UUID `json:"user_id"`
	UserName   string    `json:"user_name"`
	Platform   string    `json:"platform"`
	Name       string    `json:"name"`
	AppVersion string    `json:"app_version"`
	// PushToken is registered, none, or dropped (the push service said it was dead).
	PushToken    string     `json:"push_token"`
	LastSeenAt   time.Time  `json:"last_seen_at"`
	LastPullAt   *time.Time `json:"last_pull_at"`
	LastPushAt   *time.Time `json:"last_push_at"`
	LastUploadAt *time.Time `json:"last_upload_at"`
	// PullLag is how many change-log versions the device's cursor stood behind the head at its
	// last pull; nil before it finished its first snapshot.
	PullLag *int64 `json:"pull_lag"`
	// QueuedUploads is how many uploads the device has begun and not finished: photos still on
	// the phone, partly sent.
	QueuedUploads int64      `json:"queued_uploads"`
	RevokedAt     *time.Time `json:"revoked_at"`
	WipedAt       *time.Time `json:"wiped_at"`
	WipedBy       *uuid.UUID `json:"wiped_by"`
}

// DevicePage is one page of a branch's devices, in the shape of every screen list.
type DevicePage struct {
	Items   []DeviceState `json:"items"`
	HasMore bool          `json:"has_more"`
	Next    string        `json:"next,omitempty"`
}

// DeviceFilter narrows ListDevices: to one user's devices, and from after (the previous page's
// next, a device id).
type DeviceFilter struct {
	UserID uuid.UUID
	Limit  int
	After  string
}

// ListDevices returns the devices of the caller's branch (a manager's), in id order, limit at a
// time. Other roles get forbidden; an after that is not a device id, invalid_value.
func (s *Service) ListDevices(ctx context.Context, caller *fieldsync.Identity, f DeviceFilter) (*DevicePage, error) {
	if caller.Role != fieldsync.RoleManager {
		return nil, fieldsync.Errorf(fieldsync.EFORBIDDEN, "forbidden", "Only a branch manager may list its devices.")
	}
	var after uuid.UUID
	if f.After != "" {
		var err error
		if after, err = uuid.Parse(f.After); err != nil {
			return nil, fieldsync.InvalidField("after", "after must be the `next` cursor of a previous page of this list.")
		}
	}
	if f.Limit <= 0 {
		f.Limit = 50
	}
	rows, err := s.db.Query(ctx, `
		SELECT d.id, d.user_id, u.name, d.platform, d.name, d.app_version,
		       CASE WHEN d.push_token IS NOT NULL THEN 'registered'
		            WHEN d.push_token_dropped_at IS NOT NULL THEN 'dropped' ELSE 'none' END,
		       d.last_seen_at, d.last_pull_at, d.last_push_at, d.last_upload_at, d.pull_lag,
		       (SELECT count(*) FROM uploads up WHERE up.device_id = d.id AND up.state = 'receiving'),
		       d.revoked_at, d.wiped_at, d.wiped_by
		FROM devices d JOIN users u ON u.id = d.user_id
		WHERE u.branch_id = $1 AND ($2::uuid = '00000000-0000-0000-0000-000000000000' OR d.user_id = $2)
		  AND d.id > $3
		ORDER BY d.id
		LIMIT $4`, caller.BranchID, f.UserID, after, f.Limit+1)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (DeviceState, error) {
		var d DeviceState
		err := row.Scan(&d.ID, &d.UserID, &d.UserName, &d.Platform, &d.Name, &d.AppVersion, &d.PushToken,
			&d.LastSeenAt, &d.LastPullAt, &d.LastPushAt, &d.LastUploadAt, &d.PullLag, &d.QueuedUploads, &d.RevokedAt, &d.WipedAt, &d.WipedBy)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	page := &DevicePage{Items: items}
	if len(items) > f.Limit {
		page.Items, page.HasMore, page.Next = items[:f.Limit], true, items[f.Limit-1].ID.String()
	}
	return page, nil
}

// errDeviceWiped is the answer of a device marked lost, at login (EFORBIDDEN) or on any other
// request (EUNAUTHORIZED): erase what it holds.
func errDeviceWiped(kind string) error {
	return fieldsync.Errorf(kind, "device_wiped",
		"This device was reported lost: erase the app's local data and queued photos, then sign in again as a new install.")
}

// WipeDevice marks a device lost for caller (an admin, or the manager of its user's branch): its
// push token is dropped and, at its next contact, it is told device_wiped, whatever it sends and
// with any of its tokens, so the session it holds is over. The wipe is kept (who, when); a second
// wipe keeps the first's. A device the caller may not see is device_not_found.
func (s *Service) WipeDevice(ctx context.Context, caller *fieldsync.Identity, deviceID uuid.UUID) error {
	if caller.Role != fieldsync.RoleAdmin && caller.Role != fieldsync.RoleManager {
		return fieldsync.Errorf(fieldsync.EFORBIDDEN, "forbidden", "Only a manager or an administrator may wipe a device.")
	}
	tag, err := s.db.Exec(ctx, `
		UPDATE devices d SET wiped_at = coalesce(d.wiped_at, now()), wiped_by = coalesce(d.wiped_by, $2),
		       push_token = NULL, push_platform = NULL, push_token_at = NULL
		FROM users u
		WHERE d.id = $1 AND u.id = d.user_id AND ($3 OR u.branch_id = $4)`,
		deviceID, caller.UserID, caller.Role == fieldsync.RoleAdmin, caller.BranchID)
	if err != nil {
		return fmt.Errorf("wipe device %s: %w", deviceID, err)
	}
	if tag.RowsAffected() == 0 {
		return fieldsync.Errorf(fieldsync.ENOTFOUND, "device_not_found", "No device of yours has id %s.", deviceID)
	}
	s.log.InfoContext(ctx, "device wiped", "device_id", deviceID, "wiped_by", caller.UserID)
	return nil
}

// SetAppVersion stores the app version a device now reports (X-App-Version) when it differs from
// the one it signed in with: an app updated in place needs no new login to pass the minimum.
func (s *Service) SetAppVersion(ctx context.Context, id *fieldsync.Identity, version string) error {
	if err := validateText("X-App-Version", version, true, 50); err != nil {
		return err
	}
	if _, err := s.db.Exec(ctx, `UPDATE devices SET app_version = $2 WHERE id = $1 AND app_version <> $2`,
		id.DeviceID, version); err != nil {
		return fmt.Errorf("update app version of device %s: %w", id.DeviceID, err)
	}
	id.AppVersion = version
	return nil
}

// CheckAppVersion returns upgrade_required (403, with the platform, the minimum and the
// version given) when version is older than the minimum set for platform, or is empty while one
// is set. It is the one place the minimum is applied: at login, pull and push.
func (s *Service) CheckAppVersion(platform, version string) error {
	minimum := s.cfg.MinAppVersion[platform]
	if minimum == "" || (version != "" && compareVersions(version, minimum) >= 0) {
		return nil
	}
	return &fieldsync.Error{Kind: fieldsync.EFORBIDDEN, Code: "upgrade_required",
		Message: "This version of the app is too old; update it to continue. Nothing it sent was applied.",
		Details: map[string]any{"platform": platform, "minimum": minimum, "yours": version}}
}

// ValidVersion reports whether v reads as a version compareVersions can order: dotted whole
// numbers, optionally followed by a pre-release (-beta.1) or build (+42) suffix.
func ValidVersion(v string) bool {
	core, _ := cutSuffix(v)
	if core == "" {
		return false
	}
	for _, p := range strings.Split(core, ".") {
		if _, err := strconv.ParseUint(p, 10, 32); err != nil {
			return false
		}
	}
	return true
}

// compareVersions orders two app versions semver-like: the dotted numbers first (missing ones are
// 0, so 2.1 = 2.1.0), then a pre-release before its release (2.1.0-beta < 2.1.0). A part that is
// not a number counts as 0, so a malformed version is old, never newer than the minimum. Build
// suffixes (+42) are ignored.
func compareVersions(a, b string) int {
	ac, apre := cutSuffix(a)
	bc, bpre := cutSuffix(b)
	ap, bp := strings.Split(ac, "."), strings.Split(bc, ".")
	for i := range max(len(ap), len(bp)) {
		x, y := versionPart(ap, i), versionPart(bp, i)
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	switch {
	case apre == bpre:
		return 0
	case apre && !bpre:
		return -1
	case !apre && bpre:
		return 1
	}
	return strings.Compare(a, b) // both pre-releases of one release: by their text
}

// cutSuffix splits a version into its dotted core and whether it is a pre-release; a leading v
// (v2.1) is dropped.
func cutSuffix(v string) (core string, pre bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	v, _, _ = strings.Cut(v, "+")
	core, _, pre = strings.Cut(v, "-")
	return core, pre
}

func versionPart(parts []string, i int) uint64 {
	if i >= len(parts) {
		return 0
	}
	n, err := strconv.ParseUint(parts[i], 10, 32)
	if err != nil {
		return 0
	}
	return n
}
