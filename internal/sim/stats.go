package sim

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	gosync "sync"
)

// Totals are the counts of what devices did.
type Totals struct {
	SignIns int
	// Pushes answered, and pushes whose answer never came (their mutations are sent again).
	Pushes, PushesLost int
	// Mutations counts results by status (applied, merged, conflict, rejected), Rejections the
	// rejected ones by error code, Conflicts the conflicts by rule.
	Mutations, Rejections, Conflicts map[string]int
	// Replays counts results of mutations sent again after their first answer was lost, each
	// checked against that lost answer; ReplayMismatches those that differed (a mutation applied
	// twice, or not at all the first time).
	Replays, ReplayMismatches int
	// Pulls answered, the changes they brought, and snapshots started again after a 410.
	Pulls, Changes, Snapshots int
	// Reports are claims reported through intake.
	Reports int
	// Uploads finished, resumed after an interruption, and abandoned (document gone).
	Uploads, UploadResumes, UploadsAbandoned int
	// NetworkErrors are the failures a client expects and retries; Errors the others, the last of
	// which is LastError.
	NetworkErrors, Errors int
	LastError             string
}

// Stats counts what a fleet's devices do. It is safe for concurrent use.
type Stats struct {
	mu gosync.Mutex
	t  Totals
}

func (s *Stats) add(f func(*Totals)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.t.Mutations == nil {
		s.t.Mutations, s.t.Rejections, s.t.Conflicts = map[string]int{}, map[string]int{}, map[string]int{}
	}
	f(&s.t)
}

// Totals returns the counts so far.
func (s *Stats) Totals() Totals {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.t
	t.Mutations, t.Rejections, t.Conflicts = maps.Clone(s.t.Mutations), maps.Clone(s.t.Rejections), maps.Clone(s.t.Conflicts)
	if t.Mutations == nil {
		t.Mutations, t.Rejections, t.Conflicts = map[string]int{}, map[string]int{}, map[string]int{}
	}
	return t
}

// String is the totals on one line, for a person watching a run.
func (t Totals) String() string {
	return fmt.Sprintf("pushes %d (answer lost %d, replays checked %d) | mutations applied %d merged %d conflict %d rejected %d | "+
		"pulls %d changes %d | claims reported %d | uploads %d (resumed %d) | network errors %d | errors %d",
		t.Pushes, t.PushesLost, t.Replays, t.Mutations["applied"], t.Mutations["merged"], t.Mutations["conflict"], t.Mutations["rejected"],
		t.Pulls, t.Changes, t.Reports, t.Uploads, t.UploadResumes, t.NetworkErrors, t.Errors)
}

// Details is everything the one line leaves out, one item a line.
func (t Totals) Details() string {
	var b strings.Builder
	line := func(name string, m map[string]int) {
		if len(m) == 0 {
			return
		}
		fmt.Fprintf(&b, "  %s:", name)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			fmt.Fprintf(&b, " %s %d", k, m[k])
		}
		b.WriteString("\n")
	}
	line("rejections by code", t.Rejections)
	line("conflicts by rule", t.Conflicts)
	fmt.Fprintf(&b, "  sign-ins %d, snapshots after 410 %d, uploads abandoned %d, replays that differed %d\n",
		t.SignIns, t.Snapshots, t.UploadsAbandoned, t.ReplayMismatches)
	if t.LastError != "" {
		fmt.Fprintf(&b, "  last error: %s\n", t.LastError)
	}
	return b.String()
}
