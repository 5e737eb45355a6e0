// Package demo seeds a demo branch so that a newcomer has someone to sign in as and something to
// look at: a manager, a processor, an agent and a hospital rep, two customers, a reported
// hospitalisation claim with its hospital-visit task dispatched to the hospital rep, and a claim
// under review (its document collection done by the agent, with a note) in the processor's queue.
//
// Seeding is idempotent: run it again and it finds what it made before and prints the logins.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/account"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Password is every demo user's password. The demo is for a laptop, not for production.
const Password = "fieldsync-demo"

// BranchName is the demo branch's name; its presence is how Seed knows it ran before.
const BranchName = "Demo Branch"

// The demo branch is one of the Chinese insurer's (BRIEF.md): its dates read in Shanghai's time
// and its amounts in yuan.
const (
	BranchTimeZone = "Asia/Shanghai"
	BranchCurrency = "CNY"
)

// Login is one demo account.
type Login struct {
	Login string
	Role  string
	Name  string
	ID    uuid.UUID
}

// Demo is what Seed made (or found).
type Demo struct {
	BranchID uuid.UUID
	Logins   []Login
	ClaimID  uuid.UUID
}

var people = []struct {
	login, role, repKind, name string
}{
	{"manager", fieldsync.RoleManager, "", "Maria Manager"},
	{"processor", fieldsync.RoleProcessor, "", "Paul Processor"},
	{"agent", fieldsync.RoleRep, "agent", "Alice Agent"},
	{"hospital", fieldsync.RoleRep, "hospital", "Hugo Hospital-Rep"},
	{"admin", fieldsync.RoleAdmin, "", "Ada Admin"},
}

// Seed creates the demo data unless it exists, and returns it.
func Seed(ctx context.Context, db *pgxpool.Pool, accounts *account.Service) (*Demo, error) {
	d := &Demo{}
	err := db.QueryRow(ctx, `SELECT id FROM branches WHERE name = $1`, BranchName).Scan(&d.BranchID)
	if errors.Is(err, pgx.ErrNoRows) {
		b, err := accounts.AddBranch(ctx, account.NewBranch{Name: BranchName, TimeZone: BranchTimeZone, Currency: BranchCurrency})
		if err != nil {
			return nil, fmt.Errorf("create demo branch: %w", err)
		}
		d.BranchID = b.ID
	} else if err != nil {
		return nil, fmt.Errorf("find demo branch: %w", err)
	}

	for _, p := range people {
		id, err := accounts.FindUserIDByLogin(ctx, p.login)
		if fieldsync.ErrorKind(err) == fieldsync.ENOTFOUND {
			branch := d.BranchID
			if p.role == fieldsync.RoleAdmin {
				branch = uuid.Nil
			}
			id, err = accounts.CreateUser(ctx, account.NewUser{BranchID: branch, Role: p.role, RepKind: p.repKind,
				Login: p.login, Name: p.name, Password: Password})
		}
		if err != nil {
			return nil, fmt.Errorf("demo user %s: %w", p.login, err)
		}
		d.Logins = append(d.Logins, Login{Login: p.login, Role: p.role, Name: p.name, ID: id})
	}

	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error { return seedClaim(ctx, tx, d) })
	if err != nil {
		return nil, fmt.Errorf("seed demo claim: %w", err)
	}
	return d, nil
}

func (d *Demo) user(login string) uuid.UUID {
	for _, l := range d.Logins {
		if l.Login == login {
			return l.ID
		}
	}
	panic("no demo user " + login)
}

// seedClaim adds two customers of the agent, a reported hospitalisation claim of the first with
// its hospital visit assigned to the hospital rep, and a claim of the second under review.
func seedClaim(ctx context.Context, tx pgx.Tx, d *Demo) error {
	err := tx.QueryRow(ctx, `SELECT id FROM claims WHERE branch_id = $1 LIMIT 1`, d.BranchID).Scan(&d.ClaimID)
	if err == nil {
		return nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	agent, rep := d.user("agent"), d.user("hospital")
	ana, ben := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	d.ClaimID = uuid.Must(uuid.NewV7())
	task := uuid.Must(uuid.NewV7())
	review, collected, note := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())

	steps := []struct {
		entity string
		id     uuid.UUID
		sql    string
		args   []any
	}{
		{"customer", ana, `INSERT INTO customers (id, branch_id, name, phone, address, agent_id) VALUES ($1, $2, $3, $4, $5, $6)`,
			[]any{ana, d.BranchID, "Ana Costa", "+351 912 345 678", "Rua das Flores 12, Porto", agent}},
		{"customer", ben, `INSERT INTO customers (id, branch_id, name, phone, address, agent_id) VALUES ($1, $2, $3, $4, $5, $6)`,
			[]any{ben, d.BranchID, "Bruno Silva", "+351 913 222 111", "Avenida da Boavista 900, Porto", agent}},
		{"claim", d.ClaimID, `INSERT INTO claims (id, number, branch_id, customer_id, policy_number, kind, description,
				hospitalised, hospital, status, amount_claimed)
			VALUES ($1, 'CLM-' || extract(year FROM now())::int || '-' || lpad(nextval('claim_number_seq')::text, 6, '0'),
				$2, $3, 'POL-778812', 'hospitalisation', 'Admitted after a fall at home; hip fracture.', true,
				'Hospital de Santo António', 'reported', 420000)`,
			[]any{d.ClaimID, d.BranchID, ana}},
		{"task", task, `INSERT INTO tasks (id, claim_id, branch_id, assignee_id, kind, title, instructions, due_at,
				location_address, location_lat, location_lng, checklist, status)
			VALUES ($1, $2, $3, $4, 'hospital_visit', 'Visit Ana Costa at Hospital de Santo António',
				'Orthopaedics ward, 3rd floor. Collect the ID card, medical record, invoices and discharge summary.',
				now() + interval '1 day', 'Largo do Prof. Abel Salazar, Porto', 41.1474, -8.6189,
				'[{"key":"id_card","label":"Photograph the ID card","done":false},
				  {"key":"medical_record","label":"Photograph the medical record","done":false},
				  {"key":"invoices","label":"Photograph the invoices","done":false},
				  {"key":"discharge_summary","label":"Photograph the discharge summary","done":false}]',
				'assigned')`,
			[]any{task, d.ClaimID, d.BranchID, rep}},
		{"claim", review, `INSERT INTO claims (id, number, branch_id, customer_id, policy_number, kind, description,
				hospitalised, hospital, status, amount_claimed)
			VALUES ($1, 'CLM-' || extract(year FROM now())::int || '-' || lpad(nextval('claim_number_seq')::text, 6, '0'),
				$2, $3, 'POL-552019', 'accident', 'Stitches after a kitchen accident; invoice and prescription collected.', false,
				'Hospital da Luz', 'under_review', 38500)`,
			[]any{review, d.BranchID, ben}},
		{"task", collected, `INSERT INTO tasks (id, claim_id, branch_id, assignee_id, kind, title, status, completion_note, finished_at)
			VALUES ($1, $2, $3, $4, 'document_collection', 'Collect Bruno Silva''s invoice and prescription', 'completed',
				'Both collected at the customer''s home.', now() - interval '2 hours')`,
			[]any{collected, review, d.BranchID, agent}},
		{"task note", note, `INSERT INTO task_notes (id, task_id, branch_id, author_id, body) VALUES ($1, $2, $3, $4, $5)`,
			[]any{note, collected, d.BranchID, agent, "The invoice is from the hospital's day clinic; the prescription is handwritten."}},
	}
	// The change log and versions are kept by the database's triggers.
	for _, s := range steps {
		if _, err := tx.Exec(ctx, s.sql, s.args...); err != nil {
			return fmt.Errorf("insert demo %s: %w", s.entity, err)
		}
	}
	return nil
}

// Print writes the demo logins for a person; baseURL, when known, is where the API listens.
func (d *Demo) Print(w io.Writer, baseURL string) {
	fmt.Fprintf(w, "\nDemo branch %s (id %s). Every demo user's password is %q.\n\n", BranchName, d.BranchID, Password)
	fmt.Fprintf(w, "  %-10s %-10s %s\n", "LOGIN", "ROLE", "NAME")
	for _, l := range d.Logins {
		fmt.Fprintf(w, "  %-10s %-10s %s\n", l.Login, l.Role, l.Name)
	}
	if baseURL != "" {
		fmt.Fprintf(w, "\nSign in (the device id is any UUID your app made):\n\n"+
			"  curl -s %s/v1/auth/login -H 'Content-Type: application/json' \\\n"+
			"    -d '{\"login\":\"hospital\",\"password\":\"%s\",\"device\":{\"id\":\"%s\",\"platform\":\"android\",\"name\":\"demo phone\"}}'\n\n"+
			"API description: %s/openapi.json   Health: %s/readyz\n",
			baseURL, Password, uuid.Must(uuid.NewV7()), baseURL, baseURL)
		fmt.Fprintf(w, "\nConsole: %s/console/  (sign in as a processor or a manager below, password %q)\n", baseURL, Password)
		for _, l := range d.Logins {
			if l.Role == "processor" || l.Role == "manager" {
				fmt.Fprintf(w, "  %-10s %s\n", l.Login, l.Role)
			}
		}
	}
	fmt.Fprintln(w)
}
