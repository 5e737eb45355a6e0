package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
)

// screenMove is a screen command that moves a record to a status, and what its state machine
// says of the move.
type screenMove struct {
	name string
	path string // with {id} for the record
	body map[string]any
	as   func(w *screenWorld) screenUser
	typ  string
	// states are the statuses the record may be in; to is the one the command asks for.
	states []string
	to     string
	// make puts a record in status, in the world's branch.
	make func(w *screenWorld, status string) uuid.UUID
	// allowed and decided are the machine's answers for the role; rule is its decision rule.
	allowed func(from string) bool
	decided func(from string) bool
	rule    string
}

// TestScreenCommandsFollowTheStateMachines posts every screen command that changes a status to a
// record in each status of its state machine: the move the machine allows for the role is
// applied, and every other is a 200 conflict on status naming the machine's rule, the status
// standing. A claim still reported is not in the processors' scope: 403.
func TestScreenCommandsFollowTheStateMachines(t *testing.T) {
	t.Parallel()
	w := newScreenWorld(t)
	underReview, _ := w.claim(screenClaimSpec{status: string(sync.ClaimUnderReview)})
	task := func(w *screenWorld, status string) uuid.UUID {
		assignee := w.rep.id
		if status == string(sync.TaskOpen) {
			assignee = uuid.Nil
		}
		return w.task(underReview, assignee, status, time.Time{})
	}
	document := func(w *screenWorld, status string) uuid.UUID { return w.document(underReview, w.rep.id, status) }
	claim := func(w *screenWorld, status string) uuid.UUID {
		id, _ := w.claim(screenClaimSpec{status: status})
		return id
	}
	manager := func(w *screenWorld) screenUser { return w.manager }
	processor := func(w *screenWorld) screenUser { return w.processor }
	taskMove := func(name, to string, body map[string]any) screenMove {
		return screenMove{name: name, path: "/v1/tasks/{id}/" + name, body: body, as: manager, typ: sync.TypeTask,
			states: sync.TaskMachine.Strings(), to: to, make: task,
			allowed: func(from string) bool {
				return sync.TaskMachine.Allowed(sync.TaskStatus(from), sync.TaskStatus(to), fieldsync.RoleManager)
			},
			decided: func(from string) bool { return sync.TaskMachine.IsDecided(sync.TaskStatus(from)) },
			rule:    sync.TaskMachine.DecisionRule}
	}
	documentMove := func(to sync.DocumentStatus, body map[string]any) screenMove {
		return screenMove{name: "review " + string(to), path: "/v1/documents/{id}/review", body: body, as: processor, typ: sync.TypeDocument,
			states: sync.DocumentMachine.Strings(), to: string(to), make: document,
			allowed: func(from string) bool {
				return sync.DocumentMachine.Allowed(sync.DocumentStatus(from), to, fieldsync.RoleProcessor)
			},
			decided: func(from string) bool { return sync.DocumentMachine.IsDecided(sync.DocumentStatus(from)) },
			rule:    sync.DocumentMachine.DecisionRule}
	}
	claimMove := func(name, path string, to sync.ClaimStatus, body map[string]any) screenMove {
		return screenMove{name: name, path: path, body: body, as: processor, typ: sync.TypeClaim,
			states: sync.ClaimMachine.Strings(), to: string(to), make: claim,
			allowed: func(from string) bool {
				return sync.ClaimMachine.Allowed(sync.ClaimStatus(from), to, fieldsync.RoleProcessor)
			},
			decided: func(from string) bool { return sync.ClaimMachine.IsDecided(sync.ClaimStatus(from)) },
			rule:    sync.ClaimMachine.DecisionRule}
	}
	moves := []screenMove{
		taskMove("cancel", string(sync.TaskCancelled), nil),
		taskMove("reopen", string(sync.TaskOpen), map[string]any{"reason": "Checked again."}),
		documentMove(sync.DocumentApproved, map[string]any{"decision": "approved"}),
		documentMove(sync.DocumentRejected, map[string]any{"decision": "rejected", "note": "Blurred."}),
		claimMove("approve", "/v1/claims/{id}/decision", sync.ClaimApproved, map[string]any{"decision": "approved", "note": "Covered."}),
		claimMove("reject", "/v1/claims/{id}/decision", sync.ClaimRejected, map[string]any{"decision": "rejected", "note": "Lapsed."}),
		claimMove("pay", "/v1/claims/{id}/payment", sync.ClaimPaid, map[string]any{"amount_paid": 90000}),
	}
	for _, mv := range moves {
		for _, from := range mv.states {
			if from == mv.to {
				continue // a repeated move: the commands' own tests
			}
			t.Run(mv.name+"/from-"+from, func(t *testing.T) {
				w := w.with(t)
				id := mv.make(w, from)
				path := strings.Replace(mv.path, "{id}", id.String(), 1)
				table := mv.typ + "s"
				if mv.typ == sync.TypeClaim && from == string(sync.ClaimReported) {
					screenWantError(t, w.b.do(t, "POST", path, mv.as(w).token, mv.body), 403, "forbidden", "")
					if s := w.stateOf(table, id); s["status"] != from {
						t.Fatalf("a claim out of scope moved to %v", s["status"])
					}
					return
				}
				res := w.command(mv.as(w), path, mv.body)
				if !mv.allowed(from) {
					rule := sync.RuleStateMachine
					if mv.decided(from) {
						rule = mv.rule
					}
					screenWantConflict(t, res, "status", rule)
					if res.Entity["status"] != from {
						t.Fatalf("a refused move left the record %v, want %s", res.Entity["status"], from)
					}
					return
				}
				want := mv.to
				if mv.typ == sync.TypeTask && sync.TaskStatus(from).Finished() && mv.to == string(sync.TaskOpen) {
					want = string(sync.TaskAssigned) // reopened for whoever held it
				}
				if res.Status != "applied" || res.Entity["status"] != want {
					t.Fatalf("an allowed move: %s, status %v, want applied to %s: %+v", res.Status, res.Entity["status"], want, res.Conflicts)
				}
			})
		}
	}
}
