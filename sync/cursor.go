package sync

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
)

// cursor is where a device is in its sync. Before its first complete snapshot it walks the
// snapshot (type by type, in id order) and remembers the xmin the snapshot started at; after it,
// it is the (xid, version) of the last change it was served. It is bound to the user and role it
// was made for: a cursor presented by anyone else is expired.
type cursor struct {
	user uuid.UUID
	role string
	// snapshot mode
	snapshot bool
	typeIdx  int
	lastID   uuid.UUID
	// xid is the snapshot's xmin in snapshot mode, and the last served change's xid after.
	xid     uint64
	version int64
	// total and sent, in snapshot mode: the records the scope held when the snapshot began, and
	// those sent since, for the estimate of what is left (PullEnd.Remaining).
	total, sent int64
}

const cursorVersion = "1"

// String encodes the cursor as an opaque token.
func (c cursor) String() string {
	var s string
	if c.snapshot {
		s = strings.Join([]string{cursorVersion, c.user.String(), c.role, "s", strconv.FormatUint(c.xid, 10),
			strconv.Itoa(c.typeIdx), c.lastID.String(), strconv.FormatInt(c.total, 10), strconv.FormatInt(c.sent, 10)}, "|")
	} else {
		s = strings.Join([]string{cursorVersion, c.user.String(), c.role, "c", strconv.FormatUint(c.xid, 10),
			strconv.FormatInt(c.version, 10)}, "|")
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// errCursorExpired is what a client gets for a cursor the server cannot serve: start again.
var errCursorExpired = fieldsync.Errorf(fieldsync.EGONE, "cursor_expired",
	"The cursor is unknown or expired; pull again without a cursor for a fresh snapshot.")

// parseCursor decodes a token made by cursor.String for id. Anything else is cursor_expired.
func parseCursor(token string, id *fieldsync.Identity) (cursor, error) {
	if len(token) > 400 {
		return cursor{}, errCursorExpired
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return cursor{}, errCursorExpired
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) < 6 || parts[0] != cursorVersion || parts[1] != id.UserID.String() || parts[2] != id.Role {
		return cursor{}, errCursorExpired
	}
	c := cursor{user: id.UserID, role: id.Role}
	if c.xid, err = strconv.ParseUint(parts[4], 10, 64); err != nil {
		return cursor{}, errCursorExpired
	}
	switch {
	case parts[3] == "s" && (len(parts) == 7 || len(parts) == 9):
		c.snapshot = true
		if c.typeIdx, err = strconv.Atoi(parts[5]); err != nil || c.typeIdx < 0 || c.typeIdx > len(snapshotOrder) {
			return cursor{}, errCursorExpired
		}
		if c.lastID, err = uuid.Parse(parts[6]); err != nil {
			return cursor{}, errCursorExpired
		}
		// Made before the estimate, a snapshot cursor has no counts: it goes on without one.
		if len(parts) == 9 {
			if c.total, err = strconv.ParseInt(parts[7], 10, 64); err != nil || c.total < 0 {
				return cursor{}, errCursorExpired
			}
			if c.sent, err = strconv.ParseInt(parts[8], 10, 64); err != nil || c.sent < 0 {
				return cursor{}, errCursorExpired
			}
		}
	case parts[3] == "c" && len(parts) == 6:
		if c.version, err = strconv.ParseInt(parts[5], 10, 64); err != nil || c.version < 0 {
			return cursor{}, errCursorExpired
		}
	default:
		return cursor{}, errCursorExpired
	}
	return c, nil
}

// xid8 formats a transaction id for a query parameter cast to xid8.
func xid8(x uint64) string { return fmt.Sprint(x) }

// position is a place in the change log: a transaction id and a version, the order the log is
// read in.
type position struct {
	xid     uint64
	version int64
}

func (p position) after(q position) bool {
	return p.xid > q.xid || (p.xid == q.xid && p.version > q.version)
}

// feedToken is the token of the feed's place at a change at p, read with horizon h (see
// FeedCursor): "h-xid-version". Clients hold these (the event stream's Last-Event-ID), so the
// form does not change.
func feedToken(h uint64, p position) string {
	return strconv.FormatUint(h, 10) + "-" + strconv.FormatUint(p.xid, 10) + "-" + strconv.FormatInt(p.version, 10)
}

// ErrFeedToken is returned by Engine.FeedStart for a token the feed did not make.
var ErrFeedToken = errors.New("malformed feed token")

// parseFeedToken returns the horizon of a token made by feedToken.
func parseFeedToken(s string) (uint64, error) {
	parts := strings.Split(s, "-")
	if len(s) > 80 || len(parts) != 3 {
		return 0, ErrFeedToken
	}
	var nums [3]uint64
	for i, part := range parts {
		n, err := strconv.ParseUint(part, 10, 63)
		if err != nil {
			return 0, ErrFeedToken
		}
		nums[i] = n
	}
	return nums[0], nil
}
