package loadtest

import (
	"context"
	"fmt"

	"github.com/fieldsync/fieldsync/internal/client"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// pushBatch is how many mutations one push holds: a phone that was offline a while.
const pushBatch = 100

// pushSet is one worker's records: tasks to retitle and add notes to, and their customers to
// give new phone numbers, in a branch whose managers may write all of them. Each worker has its
// own, so workers never wait on each other's row locks.
type pushSet struct {
	branch    uuid.UUID
	manager   seededUser
	tasks     []uuid.UUID
	customers []uuid.UUID
	versions  map[uuid.UUID]int64 // as the pushing device last saw them
	next      int                 // the next batch
}

// pushSetTasks is how many tasks (and customers) each worker writes: a batch touches 40 tasks and
// 30 customers, none twice.
const pushSetTasks = 50

// pushBranch makes a branch of tasks tasks (each with its claim and customer, the tasks assigned
// to reps of about 50 tasks each) and a manager per worker, and returns the sets of n workers of
// the API and of the baselines: their own rows when the branch is large enough, else the same
// rows (the baselines write after the API, never beside it).
func (r *run) pushBranch(ctx context.Context, tasks, n int) (api, raw []*pushSet, err error) {
	branch, err := r.seed.branch(ctx, "Bench push")
	if err != nil {
		return nil, nil, err
	}
	managers, err := r.seed.users(ctx, branch, "manager", n)
	if err != nil {
		return nil, nil, err
	}
	reps, err := r.seed.users(ctx, branch, "rep", max(1, tasks/50))
	if err != nil {
		return nil, nil, err
	}
	w := &work{}
	// In transactions of 10,000 tasks: a large branch is not one huge transaction.
	for done := 0; done < tasks; {
		k := min(10000, tasks-done)
		assignees := make([]uuid.UUID, k)
		for i := range assignees {
			assignees[i] = reps[(done+i)/50%len(reps)].ID
		}
		part, err := r.seed.tasks(ctx, branch, assignees)
		if err != nil {
			return nil, nil, err
		}
		w.Tasks, w.Customers = append(w.Tasks, part.Tasks...), append(w.Customers, part.Customers...)
		done += k
	}
	// Statistics as a database that grew to this size has them: the triggers' plans (the change
	// log's audience of each write) are chosen by them.
	if _, err := r.pool.Exec(ctx, `ANALYZE tasks, claims, customers, task_notes, users`); err != nil {
		return nil, nil, fmt.Errorf("analyze: %w", err)
	}
	sets := make([]*pushSet, 0, 2*n)
	for i := 0; i < 2*n && (i+1)*pushSetTasks <= tasks; i++ {
		lo, hi := i*pushSetTasks, (i+1)*pushSetTasks
		s := &pushSet{branch: branch, manager: managers[i%n], tasks: w.Tasks[lo:hi], customers: w.Customers[lo:hi]}
		if s.versions, err = r.seed.versions(ctx, "tasks", s.tasks); err != nil {
			return nil, nil, err
		}
		cv, err := r.seed.versions(ctx, "customers", s.customers)
		if err != nil {
			return nil, nil, err
		}
		for id, v := range cv {
			s.versions[id] = v
		}
		sets = append(sets, s)
	}
	if len(sets) < n {
		return nil, nil, fmt.Errorf("%d tasks are too few for %d workers of %d tasks each", tasks, n, pushSetTasks)
	}
	api, raw = sets[:n], sets[:n]
	if len(sets) == 2*n {
		raw = sets[n:]
	}
	return api, raw, nil
}

// pushWrite is one row write of a batch: a task retitled, a customer's phone changed, or a note.
type pushWrite struct {
	kind  int // 0 task title, 1 customer phone, 2 note
	id    uuid.UUID
	task  uuid.UUID // of a note
	value string
}

// batch returns the set's next batch of writes: 40% task updates, 30% customer updates, 30%
// notes, no record twice in a batch (the mix of the engine's benchmark).
func (s *pushSet) batch() []pushWrite {
	i := s.next
	s.next++
	out := make([]pushWrite, pushBatch)
	tasks, customers := i*pushBatch*4/10, i*pushBatch*3/10
	for j := range out {
		n := i*pushBatch + j
		switch j % 10 {
		case 0, 1, 2, 3:
			out[j] = pushWrite{kind: 0, id: s.tasks[tasks%len(s.tasks)], value: fmt.Sprintf("Visit %d", n)}
			tasks++
		case 4, 5, 6:
			out[j] = pushWrite{kind: 1, id: s.customers[customers%len(s.customers)], value: fmt.Sprintf("+1 555 %07d", n)}
			customers++
		default:
			out[j] = pushWrite{kind: 2, id: uuid.Must(uuid.NewV7()), task: s.tasks[n%len(s.tasks)], value: fmt.Sprintf("Note %d", n)}
		}
	}
	return out
}

func (s *pushSet) mutations(ws []pushWrite) []client.Mutation {
	ms := make([]client.Mutation, len(ws))
	for j, w := range ws {
		m := client.Mutation{ID: uuid.Must(uuid.NewV7()), Op: "update", EntityID: w.id}
		switch w.kind {
		case 0:
			m.Type, m.Fields = "task", map[string]any{"title": w.value}
		case 1:
			m.Type, m.Fields = "customer", map[string]any{"phone": w.value}
		default:
			m.Type, m.Op, m.Fields = "task_note", "create", map[string]any{"task_id": w.task, "body": w.value}
		}
		if m.Op == "update" {
			m.BaseVersion = s.versions[w.id]
		}
		ms[j] = m
	}
	return ms
}

// push measures pushes at each size of branch (Options.PushTasks).
func (r *run) push(ctx context.Context) error {
	for i, tasks := range r.o.PushTasks {
		// Each worker needs its own rows.
		size, err := r.pushAt(ctx, max(tasks, r.conns*pushSetTasks))
		if err != nil {
			return err
		}
		r.report.PushSizes = append(r.report.PushSizes, size)
		if i == 0 {
			r.report.Push, r.report.PushSet = size.row(), size.set()
		}
	}
	return nil
}

// pushAt measures pushes of 100 mutations by as many devices at once as the server has database
// connections, in a branch of tasks tasks, against raw pgx writing the same rows of the same
// tables with as many workers and connections, a transaction per batch, in two ways: statement
// after statement as the engine sent them before it wrote in sets (a row at a time), and a
// statement per table (a set at a time: an UPDATE from unnest per table, the notes inserted from
// unnest, sent in one batch). The tables keep their triggers: versioning and the change log are
// part of every write to them, whoever writes.
func (r *run) pushAt(ctx context.Context, tasks int) (PushSize, error) {
	n := r.conns
	r.progress("push: a branch of %d tasks", tasks)
	api, raw, err := r.pushBranch(ctx, tasks, n)
	if err != nil {
		return PushSize{}, err
	}
	managers := make([]seededUser, n)
	for i := range api {
		managers[i] = api[i].manager
	}
	clients, err := r.login(ctx, managers, 1)
	if err != nil {
		return PushSize{}, err
	}

	p := r.begin()
	wait := r.profile(ctx, fmt.Sprintf("push%d", tasks), r.o.Phase)
	ops, elapsed, err := timed(ctx, n, r.o.Phase, func(ctx context.Context, w int) error {
		s := api[w]
		ms := s.mutations(s.batch())
		results, err := clients[w].Push(ctx, ms)
		if err != nil {
			return fmt.Errorf("push: %w", err)
		}
		for j, res := range results {
			if res.Status != "applied" {
				return fmt.Errorf("push: mutation %d: %s %+v", j, res.Status, res.Error)
			}
			s.versions[ms[j].EntityID] = res.Version
		}
		return nil
	})
	usage := r.end(p)
	wait()
	if err != nil {
		return PushSize{}, err
	}
	apiRate := float64(ops*pushBatch) / elapsed.Seconds()

	rowOps, rowElapsed, err := timed(ctx, n, r.o.Phase, func(ctx context.Context, w int) error {
		s := raw[w]
		ws := s.batch()
		return pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
			for _, w := range ws {
				var err error
				switch w.kind {
				case 0:
					_, err = tx.Exec(ctx, `UPDATE tasks SET title = $2 WHERE id = $1`, w.id, w.value)
				case 1:
					_, err = tx.Exec(ctx, `UPDATE customers SET phone = $2 WHERE id = $1`, w.id, w.value)
				default:
					_, err = tx.Exec(ctx, `INSERT INTO task_notes (id, task_id, branch_id, author_id, body) VALUES ($1, $2, $3, $4, $5)`,
						w.id, w.task, s.branch, s.manager.ID, w.value)
				}
				if err != nil {
					return fmt.Errorf("raw write: %w", err)
				}
			}
			return nil
		})
	})
	if err != nil {
		return PushSize{}, err
	}
	setOps, setElapsed, err := timed(ctx, n, r.o.Phase, func(ctx context.Context, w int) error {
		s := raw[w]
		return pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error { return writeSet(ctx, tx, s, s.batch()) })
	})
	if err != nil {
		return PushSize{}, err
	}
	size := PushSize{Tasks: tasks, Concurrency: n, Size: pushBatch, Server: usage,
		API: round(apiRate, 1), APIOps: ops,
		RowBaseline: round(float64(rowOps*pushBatch)/rowElapsed.Seconds(), 1), RowOps: rowOps,
		SetBaseline: round(float64(setOps*pushBatch)/setElapsed.Seconds(), 1), SetOps: setOps}
	size.RowRatio, size.SetRatio = round(size.API/size.RowBaseline, 3), round(size.API/size.SetBaseline, 3)
	if units := float64(ops * pushBatch); units > 0 {
		size.ServerCPUPerUnit = round(usage.CPUSeconds*1e6/units, 1)
	}
	r.progress("push, %d tasks: %.0f mutations/s through the API; raw %.0f rows/s a row at a time (%.0f%%), %.0f rows/s a set at a time (%.0f%%)",
		tasks, size.API, size.RowBaseline, 100*size.RowRatio, size.SetBaseline, 100*size.SetRatio)
	return size, nil
}

// writeSet writes a batch as sets: a statement per table, the three sent at once.
func writeSet(ctx context.Context, tx pgx.Tx, s *pushSet, ws []pushWrite) error {
	var taskIDs, customerIDs, noteIDs, noteTasks []uuid.UUID
	var titles, phones, bodies []string
	for _, w := range ws {
		switch w.kind {
		case 0:
			taskIDs, titles = append(taskIDs, w.id), append(titles, w.value)
		case 1:
			customerIDs, phones = append(customerIDs, w.id), append(phones, w.value)
		default:
			noteIDs, noteTasks, bodies = append(noteIDs, w.id), append(noteTasks, w.task), append(bodies, w.value)
		}
	}
	var b pgx.Batch
	b.Queue(`UPDATE tasks t SET title = v.title FROM unnest($1::uuid[], $2::text[]) AS v(id, title) WHERE t.id = v.id`, taskIDs, titles)
	b.Queue(`UPDATE customers c SET phone = v.phone FROM unnest($1::uuid[], $2::text[]) AS v(id, phone) WHERE c.id = v.id`, customerIDs, phones)
	b.Queue(`INSERT INTO task_notes (id, task_id, branch_id, author_id, body)
		SELECT id, task, $3, $4, body FROM unnest($1::uuid[], $2::uuid[], $5::text[]) AS n(id, task, body)`,
		noteIDs, noteTasks, s.branch, s.manager.ID, bodies)
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("raw set write: %w", err)
	}
	return nil
}
