package sync

import (
	"fmt"
	"strings"

	"github.com/fieldsync/fieldsync"
)

// Who sees what (BRIEF.md), in one place: what each role's scope holds, and what a record brings
// with it when it enters or leaves a scope. Pulls, snapshots, the screens, CanSee and the loads of
// the write path all ask scopeOf; a pull expands scope moves with dependents; and when a root is
// held is said once, in SQL, by the functions of migrations/00007_scope_functions.sql, which the
// triggers log enter and leave by and the window sweep finds expiries with.
//
// A manager holds the whole branch. A rep's and a processor's scopes grow from roots: a rep holds
// the tasks on their device and what each task brings (its notes, its claim, the claim's customer
// and documents); processors hold the claims of their branch's review queue and what each claim
// brings (its tasks and their notes, its documents, its customer). Every role holds its own inbox
// and the branch's users.
//
// Scope predicates are SQL conditions over alias t that hold when the caller's scope holds the
// record, tombstone or not: whether it exists is asked separately (entity.alive). Parameters: $1
// the user, $2 their branch, $3 the scope window, $4 the time asked about (Engine.sqlNow: NULL for
// the database's now). Each is true or false, never NULL: callers scan it into a bool.

// root is the record type a role's scope grows from.
type root struct {
	typ, table string
	// A root is held when it is the caller's (owner, over alias a: a task assigned to them, a
	// claim of their branch) and held at the time asked (when: the SQL function of migration
	// 00007 the triggers log the root's enter and leave by), tombstone or not.
	owner, when func(a string) string
	// brings says, for each type, how a record t of it hangs off a root r: extra FROM items (via)
	// and the join condition (on). The root itself is its own, with no edge.
	brings map[string]edge
	// out names the rules that keep a record out of the scope, for ExplainScope.
	out outRules
}

// holds is the condition (over alias a) of a root the caller's scope holds, tombstone or not.
func (r *root) holds(a string) string {
	return "(" + r.owner(a) + " AND " + r.when(a) + ")"
}

type edge struct{ via, on string }

var roots = map[string]*root{
	rep: {
		typ: TypeTask, table: "tasks",
		// "assignee_id = $1" beside the function keeps the (assignee_id) index usable.
		owner: func(a string) string { return a + ".assignee_id = $1" },
		when:  func(a string) string { return "fieldsync_task_held(" + a + ", $3, $4)" },
		brings: map[string]edge{
			TypeTaskNote: {on: "t.task_id = r.id"},
			TypeClaim:    {on: "t.id = r.claim_id"},
			TypeCustomer: {via: "claims c", on: "c.id = r.claim_id AND c.deleted_at IS NULL AND t.id = c.customer_id"},
			TypeDocument: {on: "t.claim_id = r.claim_id"},
		},
		out: outRules{notOwned: RuleTaskNotAssigned, notHeld: RuleTaskFinishedPastWindow,
			noRoot: RuleNoTaskOfTheirs, rootsNotOwned: RuleNoTaskOfTheirs, rootsNotHeld: RuleTheirTasksFinishedPastWindow,
			rootsDeleted: RuleTheirTasksDeleted},
	},
	processor: {
		typ: TypeClaim, table: "claims",
		owner: func(a string) string { return a + ".branch_id = $2" },
		when:  func(a string) string { return "fieldsync_claim_queued(" + a + ", $3, $4)" },
		brings: map[string]edge{
			TypeTask: {on: "t.claim_id = r.id"},
			// The field's notes come with the claim: a processor reviewing it reads what the rep saw.
			TypeTaskNote: {via: "tasks x", on: "x.id = t.task_id AND x.claim_id = r.id AND x.deleted_at IS NULL"},
			TypeDocument: {on: "t.claim_id = r.id"},
			TypeCustomer: {on: "t.id = r.customer_id"},
		},
		out: outRules{notOwned: RuleOtherBranch, notHeld: RuleClaimNotQueued,
			noRoot: RuleNoClaim, rootsNotOwned: RuleOtherBranch, rootsNotHeld: RuleClaimNotQueued, rootsDeleted: RuleClaimDeleted},
	},
}

// ownScope is what every role holds whatever its roots: its inbox, and the branch's users.
var ownScope = map[string]string{
	TypeNotification: "(t.user_id = $1 AND fieldsync_notification_kept(t, $3, $4))",
	TypeUser:         "t.branch_id = $2",
}

// scopePredicate builds the scope predicate of role over typ; "" when the role holds none.
func scopePredicate(role, typ string) string {
	if pred, ok := ownScope[typ]; ok {
		return pred
	}
	if role == manager {
		return "t.branch_id = $2"
	}
	r, ok := roots[role]
	if !ok {
		return ""
	}
	if typ == r.typ {
		return r.holds("t")
	}
	e, ok := r.brings[typ]
	if !ok {
		return ""
	}
	from := r.table + " r"
	if e.via != "" {
		from += ", " + e.via
	}
	// A deleted root brings nothing.
	return fmt.Sprintf("EXISTS (SELECT 1 FROM %s WHERE %s AND r.deleted_at IS NULL AND %s)", from, r.holds("r"), e.on)
}

// scopes are the scope predicates of the roles that sync, by role and type.
var scopes = func() map[string]map[string]string {
	m := map[string]map[string]string{}
	for role := range pullRoles {
		m[role] = map[string]string{}
		for _, typ := range snapshotOrder {
			m[role][typ] = scopePredicate(role, typ)
		}
	}
	return m
}()

// scopeOf returns the scope predicate of role over entity type typ.
func scopeOf(role, typ string) (string, error) {
	byType, ok := scopes[role]
	if !ok {
		return "", fieldsync.Errorf(fieldsync.EFORBIDDEN, "forbidden", "The %s role does not sync.", role)
	}
	return byType[typ], nil
}

// dependents lists, for a scope move of the root (p.type, p.id), the records that move with it:
// the root and what it brings (roots above), whether the root still exists or not, so that a
// leave of a deleted root still takes them away. Any other record moves alone.
var dependents = func() string {
	var rootTypes []string
	parts := []string{}
	for _, role := range []string{rep, processor} {
		r := roots[role]
		rootTypes = append(rootTypes, "'"+r.typ+"'")
		parts = append(parts, fmt.Sprintf("SELECT '%s', p.id WHERE p.type = '%s'", r.typ, r.typ))
		for _, typ := range snapshotOrder {
			e, ok := r.brings[typ]
			if !ok {
				continue
			}
			from := fmt.Sprintf("%s r, %s t", r.table, entities[typ].table)
			if e.via != "" {
				from += ", " + e.via
			}
			parts = append(parts, fmt.Sprintf("SELECT '%s', t.id FROM %s WHERE p.type = '%s' AND r.id = p.id AND %s",
				typ, from, r.typ, e.on))
		}
	}
	return fmt.Sprintf("SELECT p.type, p.id WHERE p.type NOT IN (%s)\n\tUNION ALL ", strings.Join(rootTypes, ", ")) +
		strings.Join(parts, "\n\tUNION ALL ")
}()
