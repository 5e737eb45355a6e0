package sync

import "slices"

// Transition is one move of a state machine, and the roles that may make it.
type Transition[S ~string] struct {
	From, To S
	Roles    []string
}

// Machine is the state machine of one entity's status, as data: the engine checks status changes
// against it, the screens ask it what a user may do next, the OpenAPI description takes its
// statuses from it, and the tests walk it. It binds the users' moves only: the server's own
// (RoleSystem: a claim advancing with its tasks, an upload completing, intake's dispatch) follow
// from other changes and are not refused.
type Machine[S ~string] struct {
	// States are every status, in the order of the lifecycle (the description's enum).
	States []S
	// Transitions are the moves users may make.
	Transitions []Transition[S]
	// Decided are the statuses that are decisions already made: repeating one writes nothing, and
	// its companions are refused with it (the decision stands with its own reason and amount).
	Decided []S
	// DecisionRule is the conflict rule named when a decision is overturned or repeated.
	DecisionRule string
	// Companions are the fields written with a status change that mean nothing without it: a
	// review's or a decision's reason, the amount of a payment. When the change is refused, or
	// repeats a decision, they are refused with it.
	Companions []string
	// Frozen are the fields that stop changing once the record reaches a status: a decision, a
	// payment, a finished piece of work stand as they were made. A write that would change one is
	// refused with field_frozen, unless it moves the record on by the machine (a manager's reopen,
	// a processor's rejection after an approval): that move is the recorded change that may
	// correct them.
	Frozen map[S][]string
}

// Allowed reports whether role may move a record from from to to.
func (m *Machine[S]) Allowed(from, to S, role string) bool {
	return slices.ContainsFunc(m.Transitions, func(t Transition[S]) bool {
		return t.From == from && t.To == to && slices.Contains(t.Roles, role)
	})
}

// Next returns the statuses role may move a record in status from to, in the order of States.
func (m *Machine[S]) Next(from S, role string) []S {
	var next []S
	for _, s := range m.States {
		if m.Allowed(from, s, role) {
			next = append(next, s)
		}
	}
	return next
}

// Path returns the shortest series of moves role may make, one after the other and each forward
// in the lifecycle (to a later status in States), to take a record from from to to: the statuses
// it passes through, to included (nil when there is none, or when from is to). Among paths as
// short, the one through statuses earlier in States is taken. A state-based client (one that
// keeps the latest value, not the steps) sends where the record ended up; the engine applies the
// path as the moves the user made in order. Only forward: the statuses skipped are those between
// where the record was and where it went, never a detour through an end and back (a manager's
// cancel and reopen is two decisions, not steps of one).
func (m *Machine[S]) Path(from, to S, role string) []S {
	if from == to {
		return nil
	}
	prev := map[S]S{from: from}
	queue := []S{from}
	for len(queue) > 0 {
		at := queue[0]
		queue = queue[1:]
		for _, next := range m.Next(at, role) {
			if _, seen := prev[next]; seen || slices.Index(m.States, next) < slices.Index(m.States, at) {
				continue
			}
			prev[next] = at
			if next == to {
				var path []S
				for s := to; s != from; s = prev[s] {
					path = append(path, s)
				}
				slices.Reverse(path)
				return path
			}
			queue = append(queue, next)
		}
	}
	return nil
}

// IsDecided reports whether s is a decision already made.
func (m *Machine[S]) IsDecided(s S) bool { return slices.Contains(m.Decided, s) }

// Strings returns the statuses as plain strings, in order: the enum of the status field.
func (m *Machine[S]) Strings() []string { return stringsOf(m.States) }

// TaskMachine: a rep takes up, works and finishes the tasks assigned to them; a manager calls off
// unfinished tasks and reopens finished ones. A reopen asked as either open or assigned lands on
// assigned when the task has an assignee and open otherwise (the engine decides, from the
// assignee). Reassigning an unfinished task moves it to assigned (or open, for nobody) as a
// consequence of the assignee, not as a move of its own.
var TaskMachine = &Machine[TaskStatus]{
	States: []TaskStatus{TaskOpen, TaskAssigned, TaskAccepted, TaskInProgress, TaskCompleted, TaskCannotComplete, TaskCancelled},
	Transitions: []Transition[TaskStatus]{
		{From: TaskAssigned, To: TaskAccepted, Roles: roles(rep)},
		{From: TaskAssigned, To: TaskCannotComplete, Roles: roles(rep)},
		{From: TaskAccepted, To: TaskInProgress, Roles: roles(rep)},
		{From: TaskAccepted, To: TaskCompleted, Roles: roles(rep)},
		{From: TaskAccepted, To: TaskCannotComplete, Roles: roles(rep)},
		{From: TaskInProgress, To: TaskCompleted, Roles: roles(rep)},
		{From: TaskInProgress, To: TaskCannotComplete, Roles: roles(rep)},

		{From: TaskOpen, To: TaskCancelled, Roles: roles(manager)},
		{From: TaskAssigned, To: TaskCancelled, Roles: roles(manager)},
		{From: TaskAccepted, To: TaskCancelled, Roles: roles(manager)},
		{From: TaskInProgress, To: TaskCancelled, Roles: roles(manager)},
		{From: TaskCompleted, To: TaskOpen, Roles: roles(manager)},
		{From: TaskCompleted, To: TaskAssigned, Roles: roles(manager)},
		{From: TaskCannotComplete, To: TaskOpen, Roles: roles(manager)},
		{From: TaskCannotComplete, To: TaskAssigned, Roles: roles(manager)},
		{From: TaskCancelled, To: TaskOpen, Roles: roles(manager)},
		{From: TaskCancelled, To: TaskAssigned, Roles: roles(manager)},
	},
	DecisionRule: RuleStateMachine,
	Frozen: map[TaskStatus][]string{
		TaskCompleted:      {"completion_note", "cannot_complete_reason", "checklist"},
		TaskCannotComplete: {"completion_note", "cannot_complete_reason", "checklist"},
	},
}

// ClaimMachine: a processor reviews a claim once its documents are collected, sends it back for
// more, approves or rejects it, and records the payment of an approved one. The server moves a
// reported claim to collecting and on to under_review as its tasks progress (advanceClaim). The
// moves from reported are the processors' by the machine, but a reported claim is not yet in
// their scope (processorClaim), so the server is the one that makes them today.
var ClaimMachine = &Machine[ClaimStatus]{
	States: []ClaimStatus{ClaimReported, ClaimCollecting, ClaimUnderReview, ClaimApproved, ClaimPaid, ClaimRejected},
	Transitions: []Transition[ClaimStatus]{
		{From: ClaimReported, To: ClaimCollecting, Roles: roles(processor)},
		{From: ClaimReported, To: ClaimUnderReview, Roles: roles(processor)},
		{From: ClaimReported, To: ClaimRejected, Roles: roles(processor)},
		{From: ClaimCollecting, To: ClaimUnderReview, Roles: roles(processor)},
		{From: ClaimCollecting, To: ClaimRejected, Roles: roles(processor)},
		{From: ClaimUnderReview, To: ClaimApproved, Roles: roles(processor)},
		{From: ClaimUnderReview, To: ClaimRejected, Roles: roles(processor)},
		{From: ClaimUnderReview, To: ClaimCollecting, Roles: roles(processor)},
		{From: ClaimApproved, To: ClaimPaid, Roles: roles(processor)},
		{From: ClaimApproved, To: ClaimRejected, Roles: roles(processor)},
	},
	Decided:      []ClaimStatus{ClaimPaid, ClaimRejected},
	DecisionRule: RuleStateMachine,
	Companions:   []string{"decision_note", "amount_paid"},
	Frozen: map[ClaimStatus][]string{
		ClaimApproved: {"amount_claimed", "decision_note"},
		ClaimPaid:     {"amount_claimed", "amount_paid", "decision_note", "processor_id"},
		ClaimRejected: {"amount_claimed", "amount_paid", "decision_note", "processor_id"},
	},
}

// DocumentMachine: a processor approves or rejects an uploaded document, once: the first decision
// wins. The server moves it to uploaded when its file arrives (again, for a rejected one retaken).
var DocumentMachine = &Machine[DocumentStatus]{
	States: []DocumentStatus{DocumentPendingUpload, DocumentUploaded, DocumentApproved, DocumentRejected},
	Transitions: []Transition[DocumentStatus]{
		{From: DocumentUploaded, To: DocumentApproved, Roles: roles(processor)},
		{From: DocumentUploaded, To: DocumentRejected, Roles: roles(processor)},
	},
	Decided:      []DocumentStatus{DocumentApproved, DocumentRejected},
	DecisionRule: RuleFirstDecisionWins,
	Companions:   []string{"review_note"},
	Frozen: map[DocumentStatus][]string{
		DocumentApproved: {"kind", "file_name", "review_note"},
		DocumentRejected: {"kind", "file_name", "review_note"},
	},
}

// statusMachine is a Machine seen by the engine, which handles every entity's status as the
// string of its mutation.
type statusMachine interface {
	allowed(from, to, role string) bool
	path(from, to, role string) []string
	decided(status string) bool
	decisionRule() string
	companions() []string
	frozen(status string) []string
}

func (m *Machine[S]) allowed(from, to, role string) bool { return m.Allowed(S(from), S(to), role) }
func (m *Machine[S]) decided(status string) bool         { return m.IsDecided(S(status)) }
func (m *Machine[S]) path(from, to, role string) []string {
	return stringsOf(m.Path(S(from), S(to), role))
}
func (m *Machine[S]) decisionRule() string          { return m.DecisionRule }
func (m *Machine[S]) companions() []string          { return m.Companions }
func (m *Machine[S]) frozen(status string) []string { return m.Frozen[S(status)] }

// machines are the state machines by entity type; a type without a status has none.
var machines = map[string]statusMachine{
	TypeTask:     TaskMachine,
	TypeClaim:    ClaimMachine,
	TypeDocument: DocumentMachine,
}
