package jobqueue

import (
	"context"
	"time"

	"github.com/riverqueue/river"
)

// DefaultTargetsEvery is how often the service-level check runs (sync.Engine.CheckTargets): a
// visit is re-dispatched, and an overdue task reminded, within a minute of its target.
const DefaultTargetsEvery = time.Minute

// CheckTargetsArgs is the periodic job of the service-level check.
type CheckTargetsArgs struct{}

// Kind is the job's kind in River's table.
func (CheckTargetsArgs) Kind() string { return "check_targets" }

type checkTargetsWorker struct {
	river.WorkerDefaults[CheckTargetsArgs]
	check func(context.Context) error
}

func (w *checkTargetsWorker) Work(ctx context.Context, _ *river.Job[CheckTargetsArgs]) error {
	return w.check(ctx)
}

// AddCheckTargets registers check as a periodic job of cfg, every every. River's leader alone
// enqueues periodic jobs, so one replica runs each round; check must still be safe to run on two
// replicas at once (a leader that lapses mid-round), as CheckTargets is by its row locks. A job
// that fails is retried, and the next round comes anyway.
func AddCheckTargets(cfg *river.Config, workers *river.Workers, every time.Duration, check func(context.Context) error) {
	river.AddWorker(workers, &checkTargetsWorker{check: check})
	cfg.PeriodicJobs = append(cfg.PeriodicJobs, river.NewPeriodicJob(river.PeriodicInterval(every),
		func() (river.JobArgs, *river.InsertOpts) {
			// A round not worked before the next is due is dropped, not stacked up.
			return CheckTargetsArgs{}, &river.InsertOpts{MaxAttempts: 1, UniqueOpts: river.UniqueOpts{ByPeriod: every}}
		}, nil))
}
