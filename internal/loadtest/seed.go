package loadtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/internal/client"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"
)

// The fixtures are written with plain SQL, in sets, so that the database's triggers version and
// log them as they do every write; users sign in through the API, as phones do.

// password is every bench user's password. Its hash is made once, with the server's parameters,
// so that each login costs the server what a real one does.
const password = "bench-password-not-secret"

// seeder writes the fixtures of every phase.
type seeder struct {
	pool *pgxpool.Pool
	hash string
	// cheapHash is password's hash at a cost of next to nothing (64 KiB, one pass), for users
	// whose sign-in is not what is measured.
	cheapHash string
	n         int // users made so far, for unique logins
}

func newSeeder(pool *pgxpool.Pool) (*seeder, error) {
	hash, err := account.HashPassword(password, account.DefaultPasswordParams)
	if err != nil {
		return nil, err
	}
	cheap, err := account.HashPassword(password, account.PasswordParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1})
	if err != nil {
		return nil, err
	}
	return &seeder{pool: pool, hash: hash, cheapHash: cheap}, nil
}

// cheapen gives users the cheap hash.
func (s *seeder) cheapen(ctx context.Context, users []seededUser) error {
	ids := make([]uuid.UUID, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	if _, err := s.pool.Exec(ctx, `UPDATE users SET password_hash = $1 WHERE id = ANY($2)`, s.cheapHash, ids); err != nil {
		return fmt.Errorf("cheapen users' hashes: %w", err)
	}
	return nil
}

// checklist is every fixture task's checklist.
const checklist = `[{"key":"id_card","label":"Photograph the ID card","done":false},
	{"key":"invoices","label":"Photograph the invoices","done":false},
	{"key":"discharge","label":"Photograph the discharge summary","done":false}]`

// branch makes a branch.
func (s *seeder) branch(ctx context.Context, name string) (uuid.UUID, error) {
	id := uuid.Must(uuid.NewV7())
	_, err := s.pool.Exec(ctx, `INSERT INTO branches (id, name) VALUES ($1, $2)`, id, fmt.Sprintf("%s %s", name, id.String()[24:]))
	if err != nil {
		return uuid.Nil, fmt.Errorf("create branch: %w", err)
	}
	return id, nil
}

// seededUser is a user the seeder made, and how to sign in as them.
type seededUser struct {
	ID     uuid.UUID
	Login  string
	Branch uuid.UUID
}

// users makes n users of role in branch (reps are hospital reps).
func (s *seeder) users(ctx context.Context, branch uuid.UUID, role string, n int) ([]seededUser, error) {
	out := make([]seededUser, n)
	ids, logins, names := make([]uuid.UUID, n), make([]string, n), make([]string, n)
	for i := range out {
		s.n++
		out[i] = seededUser{ID: uuid.Must(uuid.NewV7()), Login: fmt.Sprintf("bench-%s-%d", role, s.n), Branch: branch}
		ids[i], logins[i], names[i] = out[i].ID, out[i].Login, fmt.Sprintf("Bench %s %d", role, s.n)
	}
	var repKind any
	if role == "rep" {
		repKind = "hospital"
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO users (id, branch_id, role, rep_kind, name, login, password_hash)
		SELECT id, $1, $2, $3, name, login, $4 FROM unnest($5::uuid[], $6::text[], $7::text[]) AS u(id, login, name)`,
		branch, role, repKind, s.hash, ids, logins, names)
	if err != nil {
		return nil, fmt.Errorf("create %d users: %w", n, err)
	}
	return out, nil
}

// work is what seeder.tasks made: task i belongs to claim i of customer i.
type work struct {
	Tasks, Claims, Customers []uuid.UUID
}

// tasks makes one customer, claim (collecting) and hospital visit per entry of assignees, each
// task assigned to its entry (uuid.Nil: open and unassigned).
func (s *seeder) tasks(ctx context.Context, branch uuid.UUID, assignees []uuid.UUID) (*work, error) {
	n := len(assignees)
	w := &work{Tasks: make([]uuid.UUID, n), Claims: make([]uuid.UUID, n), Customers: make([]uuid.UUID, n)}
	for i := range n {
		w.Tasks[i], w.Claims[i], w.Customers[i] = uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	}
	err := pgx.BeginFunc(ctx, s.pool, func(q pgx.Tx) error {
		if _, err := q.Exec(ctx, `
			INSERT INTO customers (id, branch_id, name, phone, address)
			SELECT id, $1, 'Customer ' || left(id::text, 8), '+1 555 0100', 'Main St 1, Porto' FROM unnest($2::uuid[]) AS c(id)`,
			branch, w.Customers); err != nil {
			return fmt.Errorf("customers: %w", err)
		}
		if _, err := q.Exec(ctx, `
			INSERT INTO claims (id, number, branch_id, customer_id, policy_number, kind, description, hospitalised, hospital, status, amount_claimed)
			SELECT id, 'CLM-BENCH-' || nextval('claim_number_seq'), $1, customer, 'POL-' || left(id::text, 8), 'hospitalisation',
				'Admitted through the emergency department; fractured wrist.', true, 'General Hospital', 'collecting', 150000
			FROM unnest($2::uuid[], $3::uuid[]) AS c(id, customer)`, branch, w.Claims, w.Customers); err != nil {
			return fmt.Errorf("claims: %w", err)
		}
		if _, err := q.Exec(ctx, `
			INSERT INTO tasks (id, claim_id, branch_id, assignee_id, kind, title, instructions, location_address, checklist, status)
			SELECT id, claim, $1, nullif(assignee, '00000000-0000-0000-0000-000000000000'), 'hospital_visit', 'Visit ' || left(id::text, 8),
				'Ward 3, bed 12. Collect the ID card, the invoices and the discharge summary.', 'General Hospital, Porto', $2,
				CASE WHEN assignee = '00000000-0000-0000-0000-000000000000' THEN 'open' ELSE 'assigned' END
			FROM unnest($3::uuid[], $4::uuid[], $5::uuid[]) AS t(id, claim, assignee)`,
			branch, checklist, w.Tasks, w.Claims, assignees); err != nil {
			return fmt.Errorf("tasks: %w", err)
		}
		return nil
	})
	return w, err
}

// notes adds perTask notes to each task, written by author.
func (s *seeder) notes(ctx context.Context, branch, author uuid.UUID, tasks []uuid.UUID, perTask int) error {
	var ids, of []uuid.UUID
	for _, t := range tasks {
		for range perTask {
			ids, of = append(ids, uuid.Must(uuid.NewV7())), append(of, t)
		}
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO task_notes (id, task_id, branch_id, author_id, body)
		SELECT id, task, $1, $2, 'Spoke with the ward nurse; discharge expected on Friday.' FROM unnest($3::uuid[], $4::uuid[]) AS n(id, task)`,
		branch, author, ids, of)
	if err != nil {
		return fmt.Errorf("notes: %w", err)
	}
	return nil
}

// versions returns the current version of each record of table.
func (s *seeder) versions(ctx context.Context, table string, ids []uuid.UUID) (map[uuid.UUID]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, version FROM `+table+` WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read versions of %s: %w", table, err)
	}
	defer rows.Close()
	out := make(map[uuid.UUID]int64, len(ids))
	for rows.Next() {
		var id uuid.UUID
		var v int64
		if err := rows.Scan(&id, &v); err != nil {
			return nil, err
		}
		out[id] = v
	}
	return out, rows.Err()
}

// loginConcurrency is how many sign-ins run at once: each costs the server an argon2id hash
// (about 30 ms of one core and 19 MiB), as a login storm would.
const loginConcurrency = 4

// stormConcurrency is how many sign-ins run at once in the long-poll phase's storm: phones at
// the start of a shift, more than the server hashes at once (its hash slots), so that its
// bound, not the tool's, decides the server's memory.
const stormConcurrency = 32

// login signs in each of users on devices new devices, perUser each, and returns the clients in
// order (user 0's devices first).
func (r *run) login(ctx context.Context, users []seededUser, perUser int) ([]*client.Client, error) {
	return r.loginAt(ctx, users, perUser, loginConcurrency)
}

// loginStorm is login with stormConcurrency at once.
func (r *run) loginStorm(ctx context.Context, users []seededUser, perUser int) ([]*client.Client, error) {
	return r.loginAt(ctx, users, perUser, stormConcurrency)
}

func (r *run) loginAt(ctx context.Context, users []seededUser, perUser, concurrency int) ([]*client.Client, error) {
	out := make([]*client.Client, len(users)*perUser)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for i := range out {
		u := users[i/perUser]
		g.Go(func() error {
			c := client.New(r.t.BaseURL, r.http, client.Device{ID: uuid.Must(uuid.NewV7()), Platform: "android", Name: "bench device", AppVersion: "bench"})
			var err error
			// A server busy hashing answers 503 server_busy: the phone tries again a moment later
			// (jittered, so the retries do not come back together), for as long as a storm lasts.
			for deadline := time.Now().Add(5 * time.Minute); ; {
				if err = c.Login(ctx, u.Login, password); err == nil || !client.Retryable(err) || time.Now().After(deadline) {
					break
				}
				sleep(ctx, time.Second/2+rand.N(time.Second))
			}
			if err != nil {
				return fmt.Errorf("sign in as %s: %w", u.Login, err)
			}
			out[i] = c
			return nil
		})
	}
	return out, g.Wait()
}
