package branchwake

import (
	"testing"

	"github.com/google/uuid"
)

func fired(w *Watcher) bool {
	select {
	case <-w.Ready():
		return true
	default:
		return false
	}
}

// TestWakeReachesOnlyThoseConcerned: a commit wakes the users it names and the roles it tags in
// its branch, nobody else; a payload without an audience wakes the whole branch.
func TestWakeReachesOnlyThoseConcerned(t *testing.T) {
	h := New()
	branch, other := uuid.New(), uuid.New()
	repA, repB, mgr, proc := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	a, b := h.Watch(branch, repA, "rep"), h.Watch(branch, repB, "rep")
	m, p := h.Watch(branch, mgr, "manager"), h.Watch(branch, proc, "processor")
	elsewhere := h.Watch(other, repA, "rep")
	all := []*Watcher{a, b, m, p, elsewhere}
	rearm := func() {
		for _, w := range all {
			w.Rearm()
		}
	}
	cases := []struct {
		payload string
		want    map[*Watcher]bool
	}{
		{branch.String() + ";m,p," + repA.String(), map[*Watcher]bool{a: true, m: true, p: true}},
		{branch.String() + ";" + repB.String(), map[*Watcher]bool{b: true}},
		{branch.String() + ";m,p,r", map[*Watcher]bool{a: true, b: true, m: true, p: true}},
		{branch.String(), map[*Watcher]bool{a: true, b: true, m: true, p: true}},
		{other.String() + ";r", map[*Watcher]bool{elsewhere: true}},
		{"not a branch;r", map[*Watcher]bool{}},
	}
	for _, c := range cases {
		rearm()
		if id, audience, err := parsePayload(c.payload); err == nil {
			h.wake(id, audience)
		}
		for _, w := range all {
			if fired(w) != c.want[w] {
				t.Errorf("payload %q: watcher of %s fired %v, want %v", c.payload, w.user, fired(w), c.want[w])
			}
		}
	}
	// A fired watcher stays fired until rearmed; a closed one is forgotten.
	a.Close()
	h.wakeAll()
	if len(h.watchers[branch]) != 3 {
		t.Fatalf("%d watchers left in the branch, want 3", len(h.watchers[branch]))
	}
}
