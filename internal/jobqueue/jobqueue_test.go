package jobqueue

import (
	"log/slog"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// TestConfigRescuesWithinAMinute: the configuration every replica and harness uses sets River's
// timeout and rescue (its defaults, a minute and an hour, left a dead replica's job waiting an
// hour), and the worst case of the package doc, with an attempt's own timeout, stays under a
// minute.
func TestConfigRescuesWithinAMinute(t *testing.T) {
	cfg := Config(river.NewWorkers(), slog.New(slog.DiscardHandler))
	if cfg.JobTimeout != Timeout || cfg.RescueStuckJobsAfter != RescueAfter {
		t.Fatalf("JobTimeout %s, RescueStuckJobsAfter %s", cfg.JobTimeout, cfg.RescueStuckJobsAfter)
	}
	if Timeout >= RescueAfter {
		t.Errorf("Timeout %s is not below RescueAfter %s: a timed-out attempt would pass for a rescued one", Timeout, RescueAfter)
	}
	if worst := MaxRescueDelay + Timeout; worst >= time.Minute {
		t.Errorf("a dead replica's job may end %s after it was taken, not within a minute", worst)
	}
	if cfg.Queues[QueueMedia].MaxWorkers != MediaWorkers {
		t.Errorf("media queue %+v", cfg.Queues[QueueMedia])
	}
}

func TestRescued(t *testing.T) {
	now := time.Now()
	at := func(d time.Duration) *rivertype.JobRow {
		a := now.Add(-d)
		return &rivertype.JobRow{AttemptedAt: &a}
	}
	if Rescued(at(Timeout), now) {
		t.Error("an attempt that ran its timeout counts as rescued")
	}
	if !Rescued(at(RescueAfter), now) {
		t.Error("an attempt the rescuer took does not count as rescued")
	}
	if Rescued(&rivertype.JobRow{}, now) {
		t.Error("a job never attempted counts as rescued")
	}
}
