package sim

import (
	"encoding/json"

	"github.com/fieldsync/fieldsync/internal/client"
)

// Store is a device's copy of its user's scope: the server's copy of every record, by type and
// id, each with its version. It is the one place of a client's storage rules, which the simulated
// device (Device: the fleet's, the end-to-end scenario's, the engine's convergence test's) follows:
//
//   - a pull's upsert replaces a record whole (the server sends records whole, never diffs), and
//     a pull's delete removes it, whatever its reason (deleted, or out_of_scope: the record left
//     the user's scope, e.g. their task was reassigned);
//   - a write's answer (a push result, a command's or an intake's record) is kept unless the
//     store holds a newer version, or a pull removed the record since: a replayed push answers
//     with the result stored when it was first applied, which must not revive a record that has
//     left the scope.
//
// A Store is used by one goroutine at a time.
type Store struct {
	// Records are the records held. Read them freely; change them through the methods.
	Records map[Key]Record
	// removed are the records a pull deleted and no pull brought back since.
	removed map[Key]bool
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{Records: map[Key]Record{}, removed: map[Key]bool{}} }

// Apply takes one change of a pull.
func (s *Store) Apply(c client.Change) {
	k := Key{c.Type, c.ID}
	switch c.Op {
	case "upsert":
		s.Records[k] = Record{Version: c.Version, Data: c.Data}
		delete(s.removed, k)
	case "delete":
		delete(s.Records, k)
		s.removed[k] = true
	}
}

// Keep stores a record a write answered with, and reports whether it did: not when data is
// empty, when the store holds a newer version, or when a pull removed the record since.
func (s *Store) Keep(k Key, version int64, data json.RawMessage) bool {
	if len(data) == 0 {
		return false
	}
	cur, ok := s.Records[k]
	if ok && cur.Version > version {
		return false
	}
	if !ok && s.removed[k] {
		return false
	}
	s.Records[k] = Record{Version: version, Data: data}
	return true
}

// Forget removes a record a rejected write said is gone (deleted, out of scope, never made) at
// version (0: it does not exist), unless the store holds a newer version: a replayed result is
// the one stored when the write was first refused, and a pull may have brought the record back
// since.
func (s *Store) Forget(k Key, version int64) {
	if cur, ok := s.Records[k]; ok && (version == 0 || cur.Version <= version) {
		delete(s.Records, k)
	}
}

// Drop removes a record the device's own write deleted.
func (s *Store) Drop(k Key) { delete(s.Records, k) }
