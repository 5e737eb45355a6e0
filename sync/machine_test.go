package sync_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// machineCase is one status change tried on a fresh record: by role, from one status of the
// entity's state machine to another.
type machineCase struct {
	role     string
	from, to string
	allowed  bool
	decided  bool   // from is a decision already made
	rule     string // the rule a refusal names
}

// machineCases walks every ordered pair of distinct statuses of m, for each role, with what the
// machine says of it.
func machineCases[S ~string](m *sync.Machine[S], roles ...string) []machineCase {
	var out []machineCase
	for _, role := range roles {
		for _, from := range m.States {
			for _, to := range m.States {
				if from == to {
					continue
				}
				c := machineCase{role: role, from: string(from), to: string(to), allowed: m.Allowed(from, to, role),
					decided: m.IsDecided(from), rule: sync.RuleStateMachine}
				if c.decided {
					c.rule = m.DecisionRule
				}
				out = append(out, c)
			}
		}
	}
	return out
}

// TestStateMachinesAreTheEnginesRules walks every pair of statuses of the task, claim and
// document state machines through the engine, as each role that may write a status: a move the
// machine allows is applied, and every other is refused as a status conflict naming the rule, the
// server's status standing. These are commands, taken on the record as it is now: a status
// reached only through others is not walked (see TestSkippedStatusesAreWalked). A record the role's scope does not hold in that status (an
// unassigned task for a rep, a reported claim for a processor) is forbidden before the machine is
// asked.
func TestStateMachinesAreTheEnginesRules(t *testing.T) {
	t.Parallel()
	w := newMachineWorld(t)
	f, ctx, rep := w.f, context.Background(), w.rep
	who := map[string]*fieldsync.Identity{fieldsync.RoleRep: rep, fieldsync.RoleManager: w.manager, fieldsync.RoleProcessor: w.processor}
	newTask, newClaim, newDocument := w.task, w.claim, w.document

	type entityCases struct {
		typ   string
		cases []machineCase
		make  func(t *testing.T, status string) uuid.UUID
		// with are the fields a move to a status needs besides it (a reason, an amount).
		with map[string]map[string]any
		// outOfScope reports whether the role's scope does not hold a record in status.
		outOfScope func(role, status string) bool
	}
	for _, e := range []entityCases{
		{typ: sync.TypeTask, cases: machineCases(sync.TaskMachine, fieldsync.RoleRep, fieldsync.RoleManager), make: newTask,
			with: map[string]map[string]any{string(sync.TaskCannotComplete): {"cannot_complete_reason": "Discharged."}},
			outOfScope: func(role, status string) bool {
				return role == fieldsync.RoleRep && status == string(sync.TaskOpen)
			}},
		{typ: sync.TypeClaim, cases: machineCases(sync.ClaimMachine, fieldsync.RoleProcessor), make: newClaim,
			with:       map[string]map[string]any{string(sync.ClaimPaid): {"amount_paid": 90000}},
			outOfScope: func(role, status string) bool { return status == string(sync.ClaimReported) }},
		{typ: sync.TypeDocument, cases: machineCases(sync.DocumentMachine, fieldsync.RoleProcessor), make: newDocument,
			with:       map[string]map[string]any{string(sync.DocumentRejected): {"review_note": "Blurred."}},
			outOfScope: func(string, string) bool { return false }},
	} {
		for _, c := range e.cases {
			t.Run(fmt.Sprintf("%s/%s/%s-%s", e.typ, c.role, c.from, c.to), func(t *testing.T) {
				id := e.make(t, c.from)
				fields := map[string]json.RawMessage{"status": mustJSON(t, c.to)}
				if c.allowed {
					for name, v := range e.with[c.to] {
						fields[name] = mustJSON(t, v)
					}
				}
				r, err := f.engine.Command(ctx, who[c.role], sync.Mutation{Type: e.typ, Op: "update", EntityID: id, Fields: fields})
				var fe *fieldsync.Error
				switch {
				case e.outOfScope(c.role, c.from):
					if !errors.As(err, &fe) || fe.Kind != fieldsync.EFORBIDDEN {
						t.Fatalf("a record out of the %s's scope: got %+v, %v; want forbidden", c.role, r, err)
					}
				case err != nil:
					t.Fatalf("command: %v", err)
				case c.allowed:
					if r.Status != sync.StatusApplied {
						t.Fatalf("an allowed move: result %s, conflicts %+v", r.Status, r.Conflicts)
					}
				default:
					i := slices.IndexFunc(r.Conflicts, func(cf sync.Conflict) bool { return cf.Field == "status" })
					if r.Status != sync.StatusConflict || i < 0 || r.Conflicts[i].Rule != c.rule || r.Conflicts[i].Kept != "theirs" {
						t.Fatalf("a move the machine does not allow: result %s, conflicts %+v; want a status conflict by %s", r.Status, r.Conflicts, c.rule)
					}
				}
				want := c.from
				if c.allowed && !e.outOfScope(c.role, c.from) {
					want = c.to
					if e.typ == sync.TypeTask && sync.TaskStatus(c.from).Finished() && c.to == string(sync.TaskOpen) {
						want = string(sync.TaskAssigned) // a reopened task goes back to whoever holds it
					}
				}
				var got string
				if err := f.pool.QueryRow(ctx, fmt.Sprintf(`SELECT status FROM %ss WHERE id = $1`, e.typ), id).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("stored status %s, want %s", got, want)
				}
			})
		}
	}
}

// machineWorld is a branch with a rep, a manager and a processor, and a claim under review that
// every one of them holds (the rep through a task in progress), to put records in any status of
// their state machines.
type machineWorld struct {
	f                       *engineFixture
	rep, manager, processor *fieldsync.Identity
	customer, reviewed      uuid.UUID
}

func newMachineWorld(t *testing.T) *machineWorld {
	f := newEngineFixture(t, 4)
	w := &machineWorld{f: f, rep: f.newUser(t, fieldsync.RoleRep, "hospital"), manager: f.newUser(t, fieldsync.RoleManager, ""),
		processor: f.newUser(t, fieldsync.RoleProcessor, ""), customer: f.newCustomer(t, uuid.Nil)}
	w.reviewed = f.newClaim(t, w.customer, string(sync.ClaimUnderReview))
	w.task(t, string(sync.TaskInProgress)) // the rep holds the claim and its documents through it
	return w
}

// task adds a task of the claim under review in status, the rep's unless open.
func (w *machineWorld) task(t *testing.T, status string) uuid.UUID {
	id := uuid.New()
	var assignee any = w.rep.UserID
	if status == string(sync.TaskOpen) {
		assignee = nil
	}
	w.f.exec(t, `INSERT INTO tasks (id, claim_id, branch_id, assignee_id, kind, title, status, finished_at)
		VALUES ($1, $2, $3, $4, 'hospital_visit', 'Visit', $5::text,
			CASE WHEN $5::text IN ('completed', 'cannot_complete', 'cancelled') THEN now() END)`,
		id, w.reviewed, w.f.branch, assignee, status)
	return id
}

// claim adds a claim in status (paid and rejected ones settled now).
func (w *machineWorld) claim(t *testing.T, status string) uuid.UUID {
	id := uuid.New()
	w.f.exec(t, `INSERT INTO claims (id, number, branch_id, customer_id, policy_number, kind, status, amount_paid, paid_at, settled_at)
		VALUES ($1, 'CLM-M-' || nextval('claim_number_seq'), $2, $3, 'POL-1', 'illness', $4::text,
			CASE WHEN $4::text = 'paid' THEN 1000 END, CASE WHEN $4::text = 'paid' THEN now() END,
			CASE WHEN $4::text IN ('paid', 'rejected') THEN now() END)`,
		id, w.f.branch, w.customer, status)
	return id
}

// document adds a document the rep made, of the claim under review, in status.
func (w *machineWorld) document(t *testing.T, status string) uuid.UUID {
	id := uuid.New()
	w.f.exec(t, `INSERT INTO documents (id, claim_id, branch_id, kind, status, object_key, reviewed_at, uploader_id)
		VALUES ($1::uuid, $2, $3, 'invoice', $4::text, CASE WHEN $4::text <> 'pending_upload' THEN 'k/' || $1::uuid::text END,
			CASE WHEN $4::text IN ('approved', 'rejected') THEN now() END, $5)`,
		id, w.reviewed, w.f.branch, status, w.rep.UserID)
	return id
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestMachinePath: Path is the shortest series of forward moves of the role, earlier statuses
// first among the shortest, and none where the role cannot get to that way.
func TestMachinePath(t *testing.T) {
	for _, c := range []struct {
		from, to sync.TaskStatus
		role     string
		want     []sync.TaskStatus
	}{
		{sync.TaskAssigned, sync.TaskCompleted, fieldsync.RoleRep, []sync.TaskStatus{sync.TaskAccepted, sync.TaskCompleted}},
		{sync.TaskAssigned, sync.TaskInProgress, fieldsync.RoleRep, []sync.TaskStatus{sync.TaskAccepted, sync.TaskInProgress}},
		{sync.TaskAccepted, sync.TaskCompleted, fieldsync.RoleRep, []sync.TaskStatus{sync.TaskCompleted}},
		{sync.TaskInProgress, sync.TaskAccepted, fieldsync.RoleRep, nil},
		{sync.TaskCancelled, sync.TaskCompleted, fieldsync.RoleRep, nil},
		{sync.TaskAssigned, sync.TaskCompleted, fieldsync.RoleManager, nil},
		// Only forward: a cancel and reopen is not a path, nor a reopen and cancel.
		{sync.TaskCompleted, sync.TaskCancelled, fieldsync.RoleManager, nil},
		{sync.TaskOpen, sync.TaskAssigned, fieldsync.RoleManager, nil},
		{sync.TaskAssigned, sync.TaskAssigned, fieldsync.RoleRep, nil},
	} {
		if got := sync.TaskMachine.Path(c.from, c.to, c.role); !slices.Equal(got, c.want) {
			t.Errorf("%s's path %s → %s: %v, want %v", c.role, c.from, c.to, got, c.want)
		}
	}
	if got, want := sync.ClaimMachine.Path(sync.ClaimCollecting, sync.ClaimPaid, fieldsync.RoleProcessor),
		[]sync.ClaimStatus{sync.ClaimUnderReview, sync.ClaimApproved, sync.ClaimPaid}; !slices.Equal(got, want) {
		t.Errorf("a processor's path collecting → paid: %v, want %v", got, want)
	}
	if got := sync.DocumentMachine.Path(sync.DocumentApproved, sync.DocumentRejected, fieldsync.RoleProcessor); got != nil {
		t.Errorf("a processor's path from a decided document: %v, want none: the first decision wins", got)
	}
}

// TestMachineNext: Next lists, in the lifecycle's order, the statuses Allowed allows.
func TestMachineNext(t *testing.T) {
	if got, want := sync.TaskMachine.Next(sync.TaskAccepted, fieldsync.RoleRep),
		[]sync.TaskStatus{sync.TaskInProgress, sync.TaskCompleted, sync.TaskCannotComplete}; !slices.Equal(got, want) {
		t.Errorf("a rep's next statuses from accepted: %v, want %v", got, want)
	}
	if got := sync.DocumentMachine.Next(sync.DocumentApproved, fieldsync.RoleProcessor); len(got) != 0 {
		t.Errorf("an approved document moves on to %v, want nowhere: the first decision wins", got)
	}
	if got := sync.ClaimMachine.Next(sync.ClaimApproved, fieldsync.RoleManager); len(got) != 0 {
		t.Errorf("a manager moves a claim to %v, want nowhere: claims are the processors'", got)
	}
}

// frozenSample is a write of a field that changes it, by a role that may write the field.
type frozenSample struct {
	role  string
	value any
}

// TestFrozenFieldsAreTheMachines: every field each state machine freezes at a status is refused
// with field_frozen there, whoever may otherwise write it, and the record is left as it was. A
// field added to a machine's Frozen without a sample here fails the test.
func TestFrozenFieldsAreTheMachines(t *testing.T) {
	t.Parallel()
	w := newMachineWorld(t)
	ctx := context.Background()
	processor2 := w.f.newUser(t, fieldsync.RoleProcessor, "")
	who := map[string]*fieldsync.Identity{fieldsync.RoleRep: w.rep, fieldsync.RoleManager: w.manager, fieldsync.RoleProcessor: w.processor}
	samples := map[string]map[string]frozenSample{
		sync.TypeClaim: {
			"amount_claimed": {fieldsync.RoleProcessor, 7000},
			"amount_paid":    {fieldsync.RoleProcessor, 7000},
			"decision_note":  {fieldsync.RoleProcessor, "Rewritten."},
			"processor_id":   {fieldsync.RoleManager, processor2.UserID},
		},
		sync.TypeDocument: {
			"kind":        {fieldsync.RoleRep, "photo"},
			"file_name":   {fieldsync.RoleRep, "other.jpg"},
			"review_note": {fieldsync.RoleProcessor, "Rewritten."},
		},
		sync.TypeTask: {
			"completion_note":        {fieldsync.RoleRep, "Rewritten."},
			"cannot_complete_reason": {fieldsync.RoleRep, "Rewritten."},
			"checklist":              {fieldsync.RoleManager, []map[string]any{{"key": "new", "label": "New item", "done": false}}},
		},
	}
	frozen := map[string]map[string][]string{sync.TypeClaim: {}, sync.TypeDocument: {}, sync.TypeTask: {}}
	for s, fields := range sync.ClaimMachine.Frozen {
		frozen[sync.TypeClaim][string(s)] = fields
	}
	for s, fields := range sync.DocumentMachine.Frozen {
		frozen[sync.TypeDocument][string(s)] = fields
	}
	for s, fields := range sync.TaskMachine.Frozen {
		frozen[sync.TypeTask][string(s)] = fields
	}
	newRecord := map[string]func(*testing.T, string) uuid.UUID{sync.TypeClaim: w.claim, sync.TypeDocument: w.document, sync.TypeTask: w.task}
	for typ, byStatus := range frozen {
		for status, fields := range byStatus {
			for _, field := range fields {
				t.Run(typ+"/"+status+"/"+field, func(t *testing.T) {
					sample, ok := samples[typ][field]
					if !ok {
						t.Fatalf("no sample write of %s.%s: add one", typ, field)
					}
					id := newRecord[typ](t, status)
					before := w.f.versionOf(t, typ, id)
					_, err := w.f.engine.Command(ctx, who[sample.role], sync.Mutation{Type: typ, Op: "update", EntityID: id,
						Fields: map[string]json.RawMessage{field: mustJSON(t, sample.value)}})
					var fe *fieldsync.Error
					if !errors.As(err, &fe) || fe.Code != "field_frozen" || fe.Details["field"] != field {
						t.Fatalf("writing %s.%s at %s: %v, want field_frozen", typ, field, status, err)
					}
					if after := w.f.versionOf(t, typ, id); after != before {
						t.Errorf("the record changed: version %d → %d", before, after)
					}
				})
			}
		}
	}
}

// versionOf returns the stored version of the record typ/id.
func (f *engineFixture) versionOf(t *testing.T, typ string, id uuid.UUID) int64 {
	t.Helper()
	var v int64
	if err := f.pool.QueryRow(context.Background(), fmt.Sprintf(`SELECT version FROM %ss WHERE id = $1`, typ), id).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSkippedStatusesAreWalked: a rep's offline accept then complete, which a state-based client
// sends as one status change (assigned → completed), is applied as the moves the rep could have
// made in order: each is a write of its own (versioned and logged, its hooks run, the claim moving
// along with it) before the mutation's own, which brings the rest of its fields. Once someone else
// changed the status since the device saw it, the same write stays a status conflict.
func TestSkippedStatusesAreWalked(t *testing.T) {
	t.Parallel()
	f := newEngineFixture(t, 4)
	ctx := context.Background()
	rep, manager := f.newUser(t, fieldsync.RoleRep, "hospital"), f.newUser(t, fieldsync.RoleManager, "")
	claim := f.newClaim(t, f.newCustomer(t, uuid.Nil), string(sync.ClaimReported))
	task := f.newTask(t, claim, rep.UserID)
	var moves []string // the task's status moves, as the hooks saw them
	f.engine.AddHook(func(_ context.Context, _ pgx.Tx, ev sync.Event) error {
		if before, after, err := ev.Task(); err == nil && ev.Type == sync.TypeTask && before != nil && before.Status != after.Status {
			moves = append(moves, string(before.Status)+"→"+string(after.Status))
		}
		return nil
	})

	base := f.versionOf(t, sync.TypeTask, task)
	rs, err := f.engine.Push(ctx, rep, []sync.Mutation{{ID: uuid.New(), Type: sync.TypeTask, Op: "update", EntityID: task, BaseVersion: &base,
		Fields: map[string]json.RawMessage{"status": mustJSON(t, "completed"), "completion_note": mustJSON(t, "All signed.")}}})
	if err != nil {
		t.Fatal(err)
	}
	r := rs[0]
	var got sync.Task
	if err := json.Unmarshal(r.Entity, &got); err != nil {
		t.Fatal(err)
	}
	if r.Status != sync.StatusApplied || len(r.Conflicts) != 0 || got.Status != sync.TaskCompleted || got.CompletionNote != "All signed." ||
		got.FinishedAt == nil || r.Version != f.versionOf(t, sync.TypeTask, task) {
		t.Fatalf("assigned → completed: %s %+v, entity %s", r.Status, r.Conflicts, r.Entity)
	}
	if want := []string{"assigned→accepted", "accepted→completed"}; !slices.Equal(moves, want) {
		t.Errorf("the hooks saw %v, want %v", moves, want)
	}
	var logged int
	var accepted bool
	var claimStatus string
	if err := f.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM changes WHERE entity_id = $1 AND version > $2 AND op = 'upsert'),
			(SELECT accepted_at IS NOT NULL FROM tasks WHERE id = $1), (SELECT status FROM claims WHERE id = $3)`,
		task, base, claim).Scan(&logged, &accepted, &claimStatus); err != nil {
		t.Fatal(err)
	}
	if logged != 2 || !accepted {
		t.Errorf("%d changes logged after the base, accepted_at set %v; want a change per move, and the acceptance's time", logged, accepted)
	}
	if claimStatus != string(sync.ClaimUnderReview) {
		t.Errorf("the claim is %s, want under_review: collecting when its task was accepted, then under review", claimStatus)
	}

	// The status changed since the device saw it (the manager cancelled and reopened the task):
	// what the rep did offline was not done from here, and the status stands.
	task2 := f.newTask(t, claim, rep.UserID)
	seen := f.versionOf(t, sync.TypeTask, task2)
	for _, status := range []string{"cancelled", "assigned"} {
		if _, err := f.engine.Command(ctx, manager, sync.Mutation{Type: sync.TypeTask, Op: "update", EntityID: task2,
			Fields: map[string]json.RawMessage{"status": mustJSON(t, status)}}); err != nil {
			t.Fatal(err)
		}
	}
	rs, err = f.engine.Push(ctx, rep, []sync.Mutation{{ID: uuid.New(), Type: sync.TypeTask, Op: "update", EntityID: task2, BaseVersion: &seen,
		Fields: map[string]json.RawMessage{"status": mustJSON(t, "completed")}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := rs[0]; r.Status != sync.StatusConflict || len(r.Conflicts) != 1 || r.Conflicts[0].Rule != sync.RuleStateMachine {
		t.Fatalf("a skip from a status changed meanwhile: %s %+v", r.Status, r.Conflicts)
	}
}
