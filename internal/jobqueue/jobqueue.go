// Package jobqueue configures the job queue (River, in PostgreSQL) that every replica runs, in one
// place: the server builds its client with Config, and so does every test harness, so tests run
// with the settings production has.
//
// # Rescue of a dead replica's jobs
//
// A replica that dies (killed, out of memory, its machine gone) leaves the jobs it was working
// "running" in River's table, attempted by nobody alive. River's rescuer (run by the elected
// leader, every 30 seconds: maintenance.JobRescuerIntervalDefault, not configurable) gives a
// running job back to the queue once it has run longer than both RescueStuckJobsAfter and its
// kind's Timeout, and River's scheduler (the leader, every 5 seconds) makes it available again.
// River's defaults (1 minute, 1 hour) left a document without its thumbnail for an hour. With the
// values below a dead replica's job runs again elsewhere within
//
//	max(RescueAfter, kind's Timeout) + 30 s (rescuer) + 5 s (scheduler) + a fetch
//
// = 12 + 30 + 5 + 1 = 48 seconds, then the time the job takes (its timeout bounds that at 8 s):
// under a minute. (A dead leader
// keeps within it: its leadership lapses within 15 s, another replica is elected within 6 s more,
// and the new leader's rescuer runs as it takes over.) Each worker retries an attempt that overran its timeout
// at once (Rescued), rather than after its backoff.
package jobqueue

import (
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

const (
	// QueueMedia is the queue of document processing (EXIF, thumbnails).
	QueueMedia = "media"
	// MediaWorkers is how many processing jobs a replica works at once: image work is
	// CPU-bound, and the memory decoding takes is bounded across them (media.Options.MaxDecodeBytes).
	MediaWorkers = 2
	// Timeout bounds one attempt of a kind that sets no Timeout of its own. Every kind's must
	// stay below RescueAfter, or its jobs wait longer for rescue (see the package doc) and a
	// timed-out attempt would pass for a rescued one (Rescued).
	Timeout = 8 * time.Second
	// RescueAfter is River's RescueStuckJobsAfter: how long a job may be running before the
	// rescuer takes it for one whose replica died. It is a little above Timeout, so that an
	// attempt cut by its timeout has time to record its end before it counts as stuck.
	RescueAfter = 12 * time.Second
	// MaxRescueDelay is what the package doc computes: the longest a dead replica's job waits
	// before it runs again, with the intervals of River's leader (rescuer 30 s, scheduler 5 s)
	// and a fetch.
	MaxRescueDelay = RescueAfter + 30*time.Second + 5*time.Second + time.Second
)

// Config returns the River client configuration of a replica, with workers and log. Parts that
// need a queue of their own add it to the client (as notify does with its push queue).
func Config(workers *river.Workers, log *slog.Logger) *river.Config {
	return &river.Config{
		Workers: workers,
		Queues: map[string]river.QueueConfig{
			river.QueueDefault: {MaxWorkers: 20},
			QueueMedia:         {MaxWorkers: MediaWorkers},
		},
		// An insert wakes a queue at most once per FetchCooldown (100 ms by default): a job
		// queued just after another would wait for the next poll.
		FetchCooldown:        20 * time.Millisecond,
		JobTimeout:           Timeout,
		RescueStuckJobsAfter: RescueAfter,
		Logger:               log,
	}
}

// Rescued reports whether an attempt of job has been running for RescueAfter or longer: River's
// rescuer took it from a replica that died (or from a worker stuck past its timeout). Workers'
// NextRetry runs such a job again at once: it failed for want of a replica, not because it
// cannot succeed. An attempt that merely ended by its timeout, which is below RescueAfter, is not
// one, and waits its backoff as any failure does.
func Rescued(job *rivertype.JobRow, now time.Time) bool {
	return job.AttemptedAt != nil && now.Sub(*job.AttemptedAt) >= RescueAfter
}
