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

// pushSet is one worker's records: a branch with a manager (who may write all of them), tasks
// and customers to update, and tasks to add notes to. Each worker has its own, so workers never
// wait on each other's row locks, and the API's and the baseline's workers never touch the same
// rows.
type pushSet struct {
	branch    uuid.UUID
	manager   seededUser
	tasks     []uuid.UUID
	customers []uuid.UUID
	versions  map[uuid.UUID]int64 // as the pushing device last saw them
	next      int                 // the next batch
}

func (r *run) newPushSet(ctx context.Context) (*pushSet, error) {
	branch, err := r.seed.branch(ctx, "Bench push")
	if err != nil {
		return nil, err
	}
	managers, err := r.seed.users(ctx, branch, "manager", 1)
	if err != nil {
		return nil, err
	}
	reps, err := r.seed.users(ctx, branch, "rep", 1)
	if err != nil {
		return nil, err
	}
	// 40 claims of 40 customers, two tasks each, as the engine's benchmark has.
	assignees := make([]uuid.UUID, 80)
	for i := range assignees {
		assignees[i] = reps[0].ID
	}
	w, err := r.seed.tasks(ctx, branch, assignees)
	if err != nil {
		return nil, err
	}
	s := &pushSet{branch: branch, manager: managers[0], tasks: w.Tasks, customers: w.Customers[:40]}
	// The customers of the second 40 tasks are left alone: each claim here has its own customer.
	if s.versions, err = r.seed.versions(ctx, "tasks", s.tasks); err != nil {
		return nil, err
	}
	cv, err := r.seed.versions(ctx, "customers", s.customers)
	if err != nil {
		return nil, err
	}
	for id, v := range cv {
		s.versions[id] = v
	}
	return s, nil
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

// push measures pushes of 100 mutations by as many devices at once as the server has database
// connections, against raw pgx writing the same rows of the same tables (same statements, one
// transaction per batch, statement after statement as the engine sends them), with as many
// workers and connections. The tables keep their triggers: versioning and the change log are
// part of every write to them, whoever writes.
func (r *run) push(ctx context.Context) error {
	n := r.conns
	api, raw := make([]*pushSet, n), make([]*pushSet, n)
	var managers []seededUser
	for i := range n {
		var err error
		if api[i], err = r.newPushSet(ctx); err != nil {
			return err
		}
		if raw[i], err = r.newPushSet(ctx); err != nil {
			return err
		}
		managers = append(managers, api[i].manager)
	}
	clients, err := r.login(ctx, managers, 1)
	if err != nil {
		return err
	}

	p := r.begin()
	wait := r.profile(ctx, "push", r.o.Phase)
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
		return err
	}
	apiRate := float64(ops*pushBatch) / elapsed.Seconds()

	baseOps, baseElapsed, err := timed(ctx, n, r.o.Phase, func(ctx context.Context, w int) error {
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
		return err
	}
	baseRate := float64(baseOps*pushBatch) / baseElapsed.Seconds()
	r.report.Push = Throughput{Unit: "mutations/s", API: round(apiRate, 1), Baseline: round(baseRate, 1), Ratio: round(apiRate/baseRate, 3),
		APIName: "POST /v1/sync/push", BaseName: "raw pgx UPDATE/INSERT, a transaction per batch",
		Concurrency: n, Size: pushBatch, APIOps: ops, BaseOps: baseOps, Server: usage}
	r.report.Push.perUnit(float64(ops * pushBatch))
	r.progress("push: %.0f mutations/s through the API, %.0f rows/s raw (%.0f%%)", apiRate, baseRate, 100*apiRate/baseRate)
	return nil
}
