package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/fieldsync/fieldsync/internal/client"
	"github.com/fieldsync/fieldsync/internal/devenv"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pullChanges is how many changes (of as many records) one measured pull serves.
const pullChanges = 1000

// change is a pull's entry as the raw baselines make it: what the server sends.
type change struct {
	Type    string          `json:"type"`
	ID      uuid.UUID       `json:"id"`
	Op      string          `json:"op"`
	Version int64           `json:"version,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// catchUp pulls from cursor until the server has nothing more for c, giving each change to
// each (when not nil), and returns the cursor and how many pages it took. A cursor of "" starts
// with the snapshot.
func catchUp(ctx context.Context, c *client.Client, cursor string, limit int, each func(client.Change)) (string, int, error) {
	pages := 0
	for {
		page, err := c.Pull(ctx, cursor, limit, 0)
		if err != nil {
			return "", pages, err
		}
		pages++
		if each != nil {
			for _, ch := range page.Changes {
				each(ch)
			}
		}
		cursor = page.Cursor
		if !page.HasMore {
			return cursor, pages, nil
		}
	}
}

// pull measures pulls of a page of 1,000 changed tasks by a manager, from the same cursor, by as
// many devices at once as the server has database connections, against raw pgx reading the same
// rows' JSON (the change log after the same point, joined to the tasks it names, the record as
// a device sees it, each encoded as the server encodes it), with as many workers and
// connections. The API's answers are gzipped, as every phone asks.
func (r *run) pull(ctx context.Context) error {
	branch, err := r.seed.branch(ctx, "Bench pull")
	if err != nil {
		return err
	}
	managers, err := r.seed.users(ctx, branch, "manager", 1)
	if err != nil {
		return err
	}
	reps, err := r.seed.users(ctx, branch, "rep", 1)
	if err != nil {
		return err
	}
	assignees := make([]uuid.UUID, pullChanges)
	for i := range assignees {
		assignees[i] = reps[0].ID
	}
	w, err := r.seed.tasks(ctx, branch, assignees)
	if err != nil {
		return err
	}
	clients, err := r.login(ctx, managers, 1)
	if err != nil {
		return err
	}
	manager := clients[0]
	cursor, _, err := catchUp(ctx, manager, "", 5000, nil)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if cursor, _, err = catchUp(ctx, manager, cursor, 5000, nil); err != nil {
		return fmt.Errorf("catch up: %w", err)
	}
	var since int64
	if err := r.pool.QueryRow(ctx, `SELECT max(version) FROM changes`).Scan(&since); err != nil {
		return err
	}
	if _, err := r.pool.Exec(ctx, `UPDATE tasks SET instructions = 'Ward 3, bed ' || version WHERE id = ANY($1)`, w.Tasks); err != nil {
		return fmt.Errorf("change the tasks: %w", err)
	}
	// Wait until every change is served (no older transaction anywhere holds them back).
	deadline := time.Now().Add(30 * time.Second)
	for {
		page, err := manager.Pull(ctx, cursor, pullChanges, 0)
		if err != nil {
			return err
		}
		if len(page.Changes) == pullChanges {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server serves %d of the %d changes after 30 s", len(page.Changes), pullChanges)
		}
		time.Sleep(20 * time.Millisecond)
	}

	n := r.conns
	p := r.begin()
	wait := r.profile(ctx, "pull", r.o.Phase)
	ops, elapsed, err := timed(ctx, n, r.o.Phase, func(ctx context.Context, _ int) error {
		page, err := manager.Pull(ctx, cursor, pullChanges, 0)
		if err != nil {
			return fmt.Errorf("pull: %w", err)
		}
		if len(page.Changes) != pullChanges {
			return fmt.Errorf("pull: %d changes, want %d", len(page.Changes), pullChanges)
		}
		return nil
	})
	usage := r.end(p)
	wait()
	if err != nil {
		return err
	}
	apiRate := float64(ops*pullChanges) / elapsed.Seconds()

	baseOps, baseElapsed, err := timed(ctx, n, r.o.Phase, func(ctx context.Context, _ int) error {
		rows, err := r.pool.Query(ctx, `
			SELECT c.entity_id, t.version, to_jsonb(t) - '{field_versions,deleted_at}'::text[]
			FROM changes c JOIN tasks t ON t.id = c.entity_id
			WHERE c.branch_id = $1 AND c.version > $2 AND c.entity_type = 'task' AND c.op = 'upsert'
			ORDER BY c.xid, c.version LIMIT $3`, branch, since, pullChanges)
		if err != nil {
			return err
		}
		defer rows.Close()
		got := 0
		for rows.Next() {
			ch := change{Type: "task", Op: "upsert"}
			var data []byte
			if err := rows.Scan(&ch.ID, &ch.Version, &data); err != nil {
				return err
			}
			ch.Data = data
			if _, err := json.Marshal(ch); err != nil {
				return err
			}
			got++
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if got != pullChanges {
			return fmt.Errorf("raw read: %d rows, want %d", got, pullChanges)
		}
		return nil
	})
	if err != nil {
		return err
	}
	baseRate := float64(baseOps*pullChanges) / baseElapsed.Seconds()
	r.report.Pull = Throughput{Unit: "changes/s", API: round(apiRate, 1), Baseline: round(baseRate, 1), Ratio: round(apiRate/baseRate, 3),
		APIName: "GET /v1/sync/pull (gzip)", BaseName: "raw pgx: change log joined to the records, to_jsonb, json.Marshal",
		Concurrency: n, Size: pullChanges, APIOps: ops, BaseOps: baseOps, Server: usage}
	r.report.Pull.perUnit(float64(ops * pullChanges))
	r.progress("pull: %.0f changes/s through the API, %.0f rows/s raw (%.0f%%)", apiRate, baseRate, 100*apiRate/baseRate)
	if r.t.StandbyBaseURL != "" {
		return r.pullStandby(ctx, managers[0], cursor, n)
	}
	return nil
}

// pullStandby measures the same pulls with two databases reading: half of the n devices on the
// server under test (reading the primary), half on a second server reading a hot standby
// (Target.StandbyBaseURL), against all n on the first, one after the other in the same run. The
// ratio is what a standby adds to the pull rate; on one machine that runs both databases it adds
// no CPU, so it shows the cost of reading from a standby more than the gain.
func (r *run) pullStandby(ctx context.Context, manager seededUser, cursor string, n int) error {
	standby, err := pgxpool.New(ctx, r.t.StandbyDatabaseURL)
	if err != nil {
		return fmt.Errorf("connect to the standby: %w", err)
	}
	defer standby.Close()
	if err := devenv.WaitReplay(ctx, r.pool, standby); err != nil {
		return err
	}
	one := client.New(r.t.BaseURL, r.http, client.Device{ID: uuid.Must(uuid.NewV7()), Platform: "android", Name: "bench device", AppVersion: "bench"})
	two := client.New(r.t.StandbyBaseURL, r.http, client.Device{ID: uuid.Must(uuid.NewV7()), Platform: "android", Name: "bench device", AppVersion: "bench"})
	for _, c := range []*client.Client{one, two} {
		if err := c.Login(ctx, manager.Login, password); err != nil {
			return fmt.Errorf("sign in: %w", err)
		}
	}
	measure := func(servers []*client.Client) (float64, error) {
		ops, elapsed, err := timed(ctx, n, r.o.Phase, func(ctx context.Context, w int) error {
			page, err := servers[w%len(servers)].Pull(ctx, cursor, pullChanges, 0)
			if err != nil {
				return fmt.Errorf("pull: %w", err)
			}
			if len(page.Changes) != pullChanges {
				return fmt.Errorf("pull from %s: %d changes, want %d", servers[w%len(servers)].BaseURL(), len(page.Changes), pullChanges)
			}
			return nil
		})
		return float64(ops*pullChanges) / elapsed.Seconds(), err
	}
	primaryRate, err := measure([]*client.Client{one})
	if err != nil {
		return err
	}
	p := r.begin()
	bothRate, err := measure([]*client.Client{one, two})
	usage := r.end(p)
	if err != nil {
		return err
	}
	r.report.PullStandby = Throughput{Unit: "changes/s", API: round(bothRate, 1), Baseline: round(primaryRate, 1), Ratio: round(bothRate/primaryRate, 3),
		APIName: "GET /v1/sync/pull on two servers: the primary's and a standby's", BaseName: "GET /v1/sync/pull on the primary's server",
		Concurrency: n, Size: pullChanges, Server: usage}
	r.progress("pull with a standby: %.0f changes/s on two servers (primary + standby), %.0f on the primary's alone (%.0f%%)",
		bothRate, primaryRate, 100*bothRate/primaryRate)
	return nil
}

// snapshotRuns is how many times the initial sync is timed (the median counts).
const snapshotRuns = 3

// snapshotLimit is the page the initial syncs ask for: the largest the server gives (a device's
// first sync should ask for it; the protocol's default of 500 is for the pulls that follow).
const snapshotLimit = 5000

// initialSync measures a rep's first sync at two sizes of scope, SnapshotRecords and
// SnapshotLargeRecords, so that its growth shows, with the server's peak memory during each.
func (r *run) initialSync(ctx context.Context) error {
	var err error
	if r.report.InitialSync, err = r.initialSyncOf(ctx, r.o.SnapshotRecords); err != nil {
		return err
	}
	if r.report.InitialSyncLarge, err = r.initialSyncOf(ctx, r.o.SnapshotLargeRecords); err != nil {
		return err
	}
	return nil
}

// initialSyncOf measures a rep's first sync: a scope of size records (a fifth of them tasks,
// each with its claim and customer, and two notes per task), pulled without a cursor in pages of
// snapshotLimit until has_more is false, against reading the same records' JSON with raw pgx,
// one query per type.
func (r *run) initialSyncOf(ctx context.Context, size int) (InitialSync, error) {
	var out InitialSync
	branch, err := r.seed.branch(ctx, "Bench snapshot")
	if err != nil {
		return out, err
	}
	reps, err := r.seed.users(ctx, branch, "rep", 1)
	if err != nil {
		return out, err
	}
	rep := reps[0]
	tasks := max(size/5, 1)
	assignees := make([]uuid.UUID, tasks)
	for i := range assignees {
		assignees[i] = rep.ID
	}
	w, err := r.seed.tasks(ctx, branch, assignees)
	if err != nil {
		return out, err
	}
	if err := r.seed.notes(ctx, branch, rep.ID, w.Tasks, 2); err != nil {
		return out, err
	}
	if _, err := r.pool.Exec(ctx, `ANALYZE tasks, claims, customers, task_notes`); err != nil {
		return out, err
	}
	clients, err := r.login(ctx, reps, 1)
	if err != nil {
		return out, err
	}
	c := clients[0]

	const limit = snapshotLimit
	var apiTimes, baseTimes []time.Duration
	records, pages := 0, 0
	served0, err := r.serverSeconds(ctx, http.MethodGet, pullRoute)
	if err != nil {
		return out, err
	}
	p := r.begin()
	for range snapshotRuns {
		n := 0
		start := time.Now()
		_, pg, err := catchUp(ctx, c, "", limit, func(client.Change) { n++ })
		if err != nil {
			return out, err
		}
		apiTimes = append(apiTimes, time.Since(start))
		records, pages = n, pg
	}
	usage := r.end(p)
	served1, err := r.serverSeconds(ctx, http.MethodGet, pullRoute)
	if err != nil {
		return out, err
	}

	queries := []struct{ typ, sql string }{
		{"user", `SELECT t.id, t.version, jsonb_build_object('id', t.id, 'branch_id', t.branch_id, 'name', t.name, 'role', t.role,
			'rep_kind', t.rep_kind, 'on_duty', t.on_duty, 'disabled', t.disabled_at IS NOT NULL, 'version', t.version)
			FROM users t WHERE t.branch_id = (SELECT branch_id FROM users WHERE id = $1)`},
		{"customer", `SELECT t.id, t.version, to_jsonb(t) - '{field_versions,deleted_at}'::text[] FROM customers t
			WHERE t.id IN (SELECT c.customer_id FROM claims c JOIN tasks x ON x.claim_id = c.id WHERE x.assignee_id = $1)`},
		{"claim", `SELECT t.id, t.version, to_jsonb(t) - '{field_versions,deleted_at}'::text[] FROM claims t
			WHERE t.id IN (SELECT x.claim_id FROM tasks x WHERE x.assignee_id = $1)`},
		{"task", `SELECT t.id, t.version, to_jsonb(t) - '{field_versions,deleted_at}'::text[] FROM tasks t WHERE t.assignee_id = $1`},
		{"task_note", `SELECT t.id, t.version, to_jsonb(t) - '{branch_id}'::text[] FROM task_notes t
			WHERE t.task_id IN (SELECT x.id FROM tasks x WHERE x.assignee_id = $1)`},
	}
	baseRecords := 0
	for range snapshotRuns {
		n := 0
		start := time.Now()
		for _, q := range queries {
			rows, err := r.pool.Query(ctx, q.sql, rep.ID)
			if err != nil {
				return out, fmt.Errorf("raw read of %s: %w", q.typ, err)
			}
			for rows.Next() {
				ch := change{Type: q.typ, Op: "upsert"}
				var data []byte
				if err := rows.Scan(&ch.ID, &ch.Version, &data); err != nil {
					rows.Close()
					return out, err
				}
				ch.Data = data
				if _, err := json.Marshal(ch); err != nil {
					rows.Close()
					return out, err
				}
				n++
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return out, err
			}
		}
		baseTimes = append(baseTimes, time.Since(start))
		baseRecords = n
	}
	if baseRecords != records {
		return out, fmt.Errorf("the API's snapshot has %d records, the raw read %d", records, baseRecords)
	}
	api, base := median(apiTimes), median(baseTimes)
	out = InitialSync{Records: records, Pages: pages, PageLimit: limit, Runs: snapshotRuns,
		APISeconds: round(api.Seconds(), 4), ServerSeconds: round((served1-served0)/snapshotRuns, 4), BaseSeconds: round(base.Seconds(), 4),
		Ratio: round(base.Seconds()/api.Seconds(), 3), Server: usage}
	r.progress("initial sync: %d records in %.3f s through the API (%.3f s of it serving the pages), %.3f s raw", records, api.Seconds(),
		out.ServerSeconds, base.Seconds())
	return out, nil
}
