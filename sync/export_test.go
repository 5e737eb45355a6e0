package sync

import (
	"slices"

	"github.com/fieldsync/fieldsync"
)

// CursorPosition decodes a cursor token made for id, for tests that check where a device stands:
// whether it is still walking its first snapshot, and otherwise the (xid, version) of the last
// change it was served. It returns cursor_expired for a token that is not id's.
func CursorPosition(token string, id *fieldsync.Identity) (snapshot bool, xid uint64, version int64, err error) {
	c, err := parseCursor(token, id)
	if err != nil {
		return false, 0, 0, err
	}
	return c.snapshot, c.xid, c.version, nil
}

// WritableFields returns the names of the fields of entity type typ that a mutation may write
// (by some role or by the server), sorted; nil for an unknown type.
func WritableFields(typ string) []string {
	ent, ok := entities[typ]
	if !ok {
		return nil
	}
	names := make([]string, 0, len(ent.fields))
	for name := range ent.fields {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// RecordOf is the record a device receives of a row of entity type typ, made in Go from the row
// read with to_jsonb (the hooks' Before view), for tests that hold it to RecordSQL.
func RecordOf(typ string, stored []byte) (map[string]any, error) {
	r, err := decodeRow(stored)
	if err != nil {
		return nil, err
	}
	return entities[typ].sends.of(r), nil
}

// ApplyOneByOne makes e apply every push mutation by mutation, never as a set: what a push as a
// set must answer the same as.
func ApplyOneByOne(e *Engine) { e.oneByOne = true }

// HoldFirstLooks takes every one of e's looks that long-polls coming back take for their first
// look, as a wave of them would, until the returned func is called.
func HoldFirstLooks(e *Engine) (release func()) {
	n := int64(0)
	for e.looks.TryAcquire(1) {
		n++
	}
	return func() { e.looks.Release(n) }
}
