package sync

import "github.com/fieldsync/fieldsync"

// CursorVersion returns the change-log version a pull cursor of id stands at, for the device's
// recorded lag behind the log's head; -1 for a cursor still in its snapshot, or one that is not
// id's.
func CursorVersion(token string, id *fieldsync.Identity) int64 {
	c, err := parseCursor(token, id)
	if err != nil || c.snapshot {
		return -1
	}
	return c.version
}
