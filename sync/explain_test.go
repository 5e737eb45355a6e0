package sync_test

import (
	"context"
	"testing"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/internal/fixture"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
)

// TestExplainScope asks, for each rule of the scope table, why a user does or does not hold a
// record, and checks the rule named and that it agrees with what the user's pull selects.
func TestExplainScope(t *testing.T) {
	t.Parallel()
	f := newEngineFixture(t, 4)
	ctx := context.Background()
	fx := fixture.New(t, f.pool)
	manager := f.newUser(t, fieldsync.RoleManager, "")
	hugo := f.newUser(t, fieldsync.RoleRep, "hospital")
	alice := f.newUser(t, fieldsync.RoleRep, "agent")
	paul := f.newUser(t, fieldsync.RoleProcessor, "")

	customer := f.newCustomer(t, alice.UserID)
	lonely := f.newCustomer(t, alice.UserID) // no claim
	claim := f.newClaim(t, customer, "collecting")
	visit := f.newTask(t, claim, hugo.UserID)
	note := fx.Note(visit, hugo.UserID, "Ward 3")
	doc := fx.Document(claim, hugo.UserID, "uploaded")

	// Alice's old claim: her task finished 40 days ago (past the 30-day window).
	oldClaim := f.newClaim(t, customer, "collecting")
	oldTask := f.newTask(t, oldClaim, alice.UserID)
	f.exec(t, `UPDATE tasks SET status = 'completed', finished_at = now() - interval '40 days' WHERE id = $1`, oldTask)
	// A claim still only reported: not in the processors' queue.
	reported := f.newClaim(t, customer, "reported")
	// A claim paid 40 days ago.
	paid := f.newClaim(t, customer, "approved")
	f.exec(t, `UPDATE claims SET status = 'paid', amount_paid = 100, paid_at = now() - interval '40 days',
		settled_at = now() - interval '40 days' WHERE id = $1`, paid)
	// A claim whose only task of Hugo's was deleted.
	goneClaim := f.newClaim(t, customer, "collecting")
	goneTask := f.newTask(t, goneClaim, hugo.UserID)
	f.exec(t, `UPDATE tasks SET deleted_at = now() WHERE id = $1`, goneTask)
	deletedDoc := fx.Document(claim, hugo.UserID, "uploaded")
	f.exec(t, `UPDATE documents SET deleted_at = now() WHERE id = $1`, deletedDoc)

	inbox := fx.Notification(hugo.UserID, "New task")
	readLongAgo := fx.Notification(hugo.UserID, "Old news")
	f.exec(t, `UPDATE notifications SET read_at = now() - interval '40 days' WHERE id = $1`, readLongAgo)

	for _, tc := range []struct {
		name    string
		who     *fieldsync.Identity
		typ     string
		id      uuid.UUID
		rule    string
		visible bool
	}{
		{"a manager holds the branch", manager, sync.TypeClaim, reported, sync.RuleManagerBranch, true},
		{"every role holds the branch's users", hugo, sync.TypeUser, alice.UserID, sync.RuleBranchUser, true},
		{"a rep holds their task", hugo, sync.TypeTask, visit, sync.RuleRootHeld, true},
		{"a task of another rep", alice, sync.TypeTask, visit, sync.RuleTaskNotAssigned, false},
		{"a task finished past the window", alice, sync.TypeTask, oldTask, sync.RuleTaskFinishedPastWindow, false},
		{"their task brings its claim", hugo, sync.TypeClaim, claim, sync.RuleBroughtByRoots, true},
		{"their task brings the customer", hugo, sync.TypeCustomer, customer, sync.RuleBroughtByRoots, true},
		{"their task brings the documents", hugo, sync.TypeDocument, doc, sync.RuleBroughtByRoots, true},
		{"their task brings its notes", hugo, sync.TypeTaskNote, note, sync.RuleBroughtByRoots, true},
		{"no task of theirs brings the claim", alice, sync.TypeClaim, claim, sync.RuleNoTaskOfTheirs, false},
		{"no task at all brings the customer", hugo, sync.TypeCustomer, lonely, sync.RuleNoTaskOfTheirs, false},
		{"their only task of it finished past the window", alice, sync.TypeClaim, oldClaim, sync.RuleTheirTasksFinishedPastWindow, false},
		{"their only task of it was deleted", hugo, sync.TypeClaim, goneClaim, sync.RuleTheirTasksDeleted, false},
		{"a deleted record", hugo, sync.TypeDocument, deletedDoc, sync.RuleRecordDeleted, false},
		{"their own inbox", hugo, sync.TypeNotification, inbox, sync.RuleOwnInbox, true},
		{"someone else's inbox", alice, sync.TypeNotification, inbox, sync.RuleNotTheirInbox, false},
		{"a notification read past the window", hugo, sync.TypeNotification, readLongAgo, sync.RuleReadPastWindow, false},
		{"a processor holds a queued claim", paul, sync.TypeClaim, claim, sync.RuleRootHeld, true},
		{"a claim still reported is not queued", paul, sync.TypeClaim, reported, sync.RuleClaimNotQueued, false},
		{"a claim settled past the window", paul, sync.TypeClaim, paid, sync.RuleClaimNotQueued, false},
		{"a queued claim brings its documents", paul, sync.TypeDocument, doc, sync.RuleBroughtByRoots, true},
		{"a task of a claim not queued", paul, sync.TypeTask, oldTask, sync.RuleBroughtByRoots, true},
		{"a customer with no claim", paul, sync.TypeCustomer, lonely, sync.RuleNoClaim, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := f.engine.ExplainScope(ctx, manager, tc.who.UserID, tc.typ, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if a.Rule != tc.rule || a.Visible != tc.visible {
				t.Fatalf("rule %q visible %v, want %q %v (roots %+v)", a.Rule, a.Visible, tc.rule, tc.visible, a.Roots)
			}
			// The answer agrees with what the user's devices select.
			seen, err := f.engine.CanSee(ctx, tc.who, tc.typ, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if seen != a.Visible {
				t.Fatalf("CanSee %v, the answer says %v", seen, a.Visible)
			}
		})
	}

	t.Run("roots say whose tasks bring it", func(t *testing.T) {
		a, err := f.engine.ExplainScope(ctx, manager, alice.UserID, sync.TypeDocument, doc)
		if err != nil {
			t.Fatal(err)
		}
		if a.RootType != sync.TypeTask || len(a.Roots) != 1 || a.Roots[0].ID != visit || a.Roots[0].Owned || !a.Roots[0].Held {
			t.Fatalf("roots: %s %+v", a.RootType, a.Roots)
		}
	})
	t.Run("only managers ask, of their own branch", func(t *testing.T) {
		if _, err := f.engine.ExplainScope(ctx, hugo, alice.UserID, sync.TypeTask, visit); fieldsync.ErrorKind(err) != fieldsync.EFORBIDDEN {
			t.Fatalf("a rep asking: %v", err)
		}
		other := &fieldsync.Identity{UserID: uuid.New(), Role: fieldsync.RoleManager, BranchID: fx.Branch()}
		if _, err := f.engine.ExplainScope(ctx, other, hugo.UserID, sync.TypeTask, visit); fieldsync.ErrorCode(err) != "user_not_found" {
			t.Fatalf("another branch's manager: %v", err)
		}
		if _, err := f.engine.ExplainScope(ctx, manager, hugo.UserID, sync.TypeTask, uuid.New()); fieldsync.ErrorCode(err) != "not_found" {
			t.Fatalf("a missing task: %v", err)
		}
		if _, err := f.engine.ExplainScope(ctx, manager, hugo.UserID, "spaceship", visit); fieldsync.ErrorCode(err) != "invalid_value" {
			t.Fatalf("an unknown type: %v", err)
		}
	})
}
