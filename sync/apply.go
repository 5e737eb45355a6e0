package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// row is a record as stored, read with to_jsonb.
type row map[string]any

func (r row) str(k string) string {
	s, _ := r[k].(string)
	return s
}

func (r row) version() int64 { return r.int("version") }

func (r row) int(key string) int64 {
	switch v := r[key].(type) {
	case json.Number:
		n, _ := v.Int64()
		return n
	case float64:
		return int64(v)
	}
	return 0
}

// fieldVersion is the version that last wrote field (or checklist item "checklist.<key>").
func (r row) fieldVersion(field string) int64 {
	fv, _ := r["field_versions"].(map[string]any)
	switch v := fv[field].(type) {
	case json.Number:
		n, _ := v.Int64()
		return n
	}
	return 0
}

func decodeRow(data []byte) (row, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var r row
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("decode record: %w", err)
	}
	return r, nil
}

// applier applies one mutation inside a transaction.
type applier struct {
	e   *Engine
	tx  pgx.Tx
	id  *fieldsync.Identity
	m   *Mutation
	ent *entity
	// conflicts found so far, in field order
	conflicts []Conflict
	// pre, when set, holds what a push's group read ahead (pushgroup.go): load and the user checks
	// answer from it, and the conflict records wait in deferred, to be written with the group's
	// writes. The decisions are the same either way.
	pre      *readAhead
	deferred []queued
	// forbidden are the fields of the mutation the caller's role may not write, with their
	// decoded values (validateShape): each is refused as a conflict, and the rest applies.
	forbidden map[string]any
	// steps are the statuses a status write skipped, which the caller would have passed through
	// in order (mergeStatus): each is applied as a move of its own before the mutation's write.
	steps []string
}

// apply applies m for id in tx. A *fieldsync.Error means the mutation is rejected (the caller
// rolls back its savepoint); any other error aborts the whole push.
func (e *Engine) apply(ctx context.Context, tx pgx.Tx, id *fieldsync.Identity, m *Mutation) (Result, error) {
	values, forbidden, err := validateShape(m, id.Role)
	if err != nil {
		return Result{}, err
	}
	a := &applier{e: e, tx: tx, id: id, m: m, ent: entities[m.Type], forbidden: forbidden}
	switch m.Op {
	case "create":
		return a.create(ctx, values)
	case "update":
		return a.update(ctx, values)
	default:
		return a.delete(ctx)
	}
}

// load locks the record and returns it, with whether the caller's scope holds it.
func (a *applier) load(ctx context.Context, typ string, entityID uuid.UUID) (row, bool, error) {
	if r, visible, found, ok := a.pre.row(typ, entityID); ok {
		if !found {
			return nil, false, fieldErr("not_found", "entity_id", "No %s has id %s.", typ, entityID)
		}
		return r, visible, nil
	}
	ent := entities[typ]
	visible := "true"
	if a.id.Role != RoleSystem {
		pred, err := scopeOf(a.id.Role, typ)
		if err != nil {
			return nil, false, err
		}
		visible = pred
	}
	var data []byte
	var ok bool
	err := a.tx.QueryRow(ctx, fmt.Sprintf(`SELECT to_jsonb(t), (%s) FROM %s t, %s WHERE t.id = $5 FOR UPDATE OF t`, visible, ent.table, params),
		a.id.UserID, a.id.BranchID, a.e.cfg.ScopeWindow, a.e.sqlNow(), entityID).Scan(&data, &ok)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, fieldErr("not_found", "entity_id", "No %s has id %s.", typ, entityID)
	}
	if err != nil {
		return nil, false, fmt.Errorf("load %s %s: %w", typ, entityID, err)
	}
	r, err := decodeRow(data)
	return r, ok, err
}

// entityOf returns the device's view of a record and its version.
func (a *applier) entityOf(ctx context.Context, typ string, entityID uuid.UUID) (json.RawMessage, int64, error) {
	var data []byte
	var version int64
	err := a.tx.QueryRow(ctx, entityQuery(typ), entityID).Scan(&data, &version)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s %s: %w", typ, entityID, err)
	}
	return data, version, nil
}

// entityQuery reads the device's view of a record of typ ($1) and its version.
func entityQuery(typ string) string {
	ent := entities[typ]
	return fmt.Sprintf(`SELECT %s, t.version FROM %s t WHERE t.id = $1`, ent.data, ent.table)
}

func (a *applier) isSystem() bool { return a.id.Role == RoleSystem }

var errForbidden = func(format string, args ...any) error {
	return &fieldsync.Error{Kind: fieldsync.EFORBIDDEN, Code: "forbidden", Message: fmt.Sprintf(format, args...)}
}

// create inserts a new record after checking the caller may create it where they say.
func (a *applier) create(ctx context.Context, values map[string]any) (Result, error) {
	cols, err := a.createColumns(ctx, values)
	if err != nil {
		return Result{}, err
	}
	sql, args := a.insert(cols)
	// The record comes back with the write (as the triggers versioned it): no second read.
	var entity json.RawMessage
	var version int64
	if err := a.insertError(a.tx.QueryRow(ctx, sql, args...).Scan(&entity, &version)); err != nil {
		return Result{}, err
	}
	return a.created(ctx, cols, entity, version)
}

// createColumns checks that the caller may create the record where they say, and returns its
// columns.
func (a *applier) createColumns(ctx context.Context, values map[string]any) (map[string]any, error) {
	if !a.isSystem() && !slices.Contains(a.ent.createRoles, a.id.Role) {
		return nil, errForbidden("A %s may not create a %s.", a.id.Role, a.m.Type)
	}
	cols := map[string]any{"id": a.m.EntityID}
	for name, v := range values {
		cols[name] = sqlValue(v)
	}
	var err error
	switch a.m.Type {
	case TypeTask:
		err = a.prepareTask(ctx, cols, values)
	case TypeTaskNote:
		err = a.prepareNote(ctx, cols, values)
	case TypeDocument:
		err = a.prepareDocument(ctx, cols, values)
	case TypeCustomer:
		err = a.prepareCustomer(ctx, cols, values)
	default:
		err = errForbidden("%s records are not created through push.", a.m.Type)
	}
	if err != nil {
		return nil, err
	}
	return cols, nil
}

// insert is the statement that creates the record of cols, returning the device's view of it and
// its version.
func (a *applier) insert(cols map[string]any) (string, []any) {
	names := make([]string, 0, len(cols))
	for name := range cols {
		names = append(names, name)
	}
	sort.Strings(names)
	args := make([]any, len(names))
	marks := make([]string, len(names))
	for i, name := range names {
		args[i], marks[i] = cols[name], "$"+strconv.Itoa(i+1)
	}
	return fmt.Sprintf(`INSERT INTO %s AS t (%s) VALUES (%s) RETURNING %s, t.version`,
		a.ent.table, strings.Join(names, ", "), strings.Join(marks, ", "), a.ent.data), args
}

// insertError is the rejection, if any, of an insert that failed with err.
func (a *applier) insertError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == a.ent.table+"_pkey" {
		// The id is taken: the insert says so, which spares a look before it.
		return &fieldsync.Error{Kind: fieldsync.ECONFLICT, Code: "already_exists",
			Message: fmt.Sprintf("A %s with id %s already exists.", a.m.Type, a.m.EntityID), Details: map[string]any{"field": "entity_id"}}
	}
	if err != nil {
		return translateWriteError(err)
	}
	return nil
}

// created finishes a create once the record is written: the hooks, and the result.
func (a *applier) created(ctx context.Context, cols map[string]any, entity json.RawMessage, version int64) (Result, error) {
	if err := a.runHooks(ctx, "create", nil, entity); err != nil {
		return Result{}, err
	}
	if len(a.forbidden) > 0 {
		created, err := decodeRow(entity)
		if err != nil {
			return Result{}, err
		}
		// The record as created holds what the server gave the refused fields; the conflicts are
		// recorded in the branch it was created in.
		a.refuseForbidden(created)
		where := row{"branch_id": fmt.Sprint(cols["branch_id"])}
		for _, c := range a.conflicts {
			if err := a.record(ctx, where, c); err != nil {
				return Result{}, err
			}
		}
		return Result{ID: a.m.ID, Status: StatusConflict, Version: version, Entity: entity, Conflicts: a.conflicts}, nil
	}
	return Result{ID: a.m.ID, Status: StatusApplied, Version: version, Entity: entity}, nil
}

// refuseForbidden refuses the fields the caller's role may not write, as conflicts the server
// wins: theirs is the record as devices see it (a field no device is sent stays unsaid).
func (a *applier) refuseForbidden(theirs row) {
	for _, name := range slices.Sorted(maps.Keys(a.forbidden)) {
		a.conflicts = append(a.conflicts, Conflict{Field: name, Yours: a.forbidden[name], Theirs: theirs[name], Kept: "theirs",
			Rule: RuleForbiddenField})
	}
}

// sqlValue turns a decoded value into what pgx writes.
func sqlValue(v any) any {
	if items, ok := v.([]checklistItem); ok {
		data, _ := json.Marshal(items)
		return string(data)
	}
	return v
}

// requireVisible loads a parent record the caller must see, returning forbidden if they do not.
func (a *applier) requireVisible(ctx context.Context, typ string, entityID uuid.UUID, field string) (row, error) {
	r, visible, err := a.load(ctx, typ, entityID)
	var fe *fieldsync.Error
	if errors.As(err, &fe) && fe.Code == "not_found" {
		return nil, fieldErr("not_found", field, "No %s has id %s.", typ, entityID)
	}
	if err != nil {
		return nil, err
	}
	if !visible && !a.isSystem() {
		return nil, &fieldsync.Error{Kind: fieldsync.EFORBIDDEN, Code: "forbidden",
			Message: fmt.Sprintf("That %s is not yours to write to.", typ), Details: map[string]any{"field": field}}
	}
	if r["deleted_at"] != nil {
		return nil, fieldErr("deleted", field, "That %s was deleted.", typ)
	}
	return r, nil
}

func (a *applier) prepareTask(ctx context.Context, cols map[string]any, values map[string]any) error {
	claim, err := a.requireVisible(ctx, TypeClaim, values["claim_id"].(uuid.UUID), "claim_id")
	if err != nil {
		return err
	}
	cols["branch_id"] = claim.str("branch_id")
	status := TaskOpen
	if assignee, ok := values["assignee_id"].(uuid.UUID); ok {
		if err := a.requireRepOfBranch(ctx, assignee, claim.str("branch_id"), "assignee_id"); err != nil {
			return err
		}
		status = TaskAssigned
	}
	cols["status"] = string(status)
	return nil
}

// requireRepOfBranch checks that userID is an enabled rep of branch.
func (a *applier) requireRepOfBranch(ctx context.Context, userID uuid.UUID, branch string, field string) error {
	if ok, known := a.pre.userOf(userID, branch, rep); known {
		if !ok {
			return fieldErr("invalid_value", field, "%s must be an active rep of the branch.", field)
		}
		return nil
	}
	var ok bool
	err := a.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND branch_id = $2::uuid AND role = 'rep' AND disabled_at IS NULL)`,
		userID, branch).Scan(&ok)
	if err != nil {
		return fmt.Errorf("check rep: %w", err)
	}
	if !ok {
		return fieldErr("invalid_value", field, "%s must be an active rep of the branch.", field)
	}
	return nil
}

// personFields are the fields (other than a task's assignee) that name a person, with the role that
// person must have in the record's branch.
var personFields = map[string]string{"agent_id": rep, "processor_id": processor}

// requireUserOfBranch checks that userID is an enabled user of branch with role.
func (a *applier) requireUserOfBranch(ctx context.Context, userID uuid.UUID, branch, role, field string) error {
	if ok, known := a.pre.userOf(userID, branch, role); known {
		if !ok {
			return fieldErr("invalid_value", field, "%s must be an active %s of the branch.", field, role)
		}
		return nil
	}
	var ok bool
	err := a.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND branch_id = $2::uuid AND role = $3 AND disabled_at IS NULL)`,
		userID, branch, role).Scan(&ok)
	if err != nil {
		return fmt.Errorf("check %s: %w", role, err)
	}
	if !ok {
		return fieldErr("invalid_value", field, "%s must be an active %s of the branch.", field, role)
	}
	return nil
}

func (a *applier) prepareNote(ctx context.Context, cols map[string]any, values map[string]any) error {
	task, err := a.requireVisible(ctx, TypeTask, values["task_id"].(uuid.UUID), "task_id")
	if err != nil {
		return err
	}
	cols["branch_id"] = task.str("branch_id")
	cols["author_id"] = a.id.UserID
	return nil
}

func (a *applier) prepareDocument(ctx context.Context, cols map[string]any, values map[string]any) error {
	claim, err := a.requireVisible(ctx, TypeClaim, values["claim_id"].(uuid.UUID), "claim_id")
	if err != nil {
		return err
	}
	if taskID, ok := values["task_id"].(uuid.UUID); ok {
		task, err := a.requireVisible(ctx, TypeTask, taskID, "task_id")
		if err != nil {
			return err
		}
		if task.str("claim_id") != claim.str("id") {
			return fieldErr("invalid_value", "task_id", "The task belongs to another claim.")
		}
	}
	cols["branch_id"] = claim.str("branch_id")
	cols["uploader_id"] = a.id.UserID
	cols["status"] = string(DocumentPendingUpload)
	return nil
}

func (a *applier) prepareCustomer(ctx context.Context, cols map[string]any, values map[string]any) error {
	cols["branch_id"] = a.id.BranchID
	if agent, ok := values["agent_id"].(uuid.UUID); ok {
		return a.requireRepOfBranch(ctx, agent, a.id.BranchID.String(), "agent_id")
	}
	return nil
}

// update merges the mutation's fields into the current record by the conflict rules.
func (a *applier) update(ctx context.Context, values map[string]any) (Result, error) {
	u, done, err := a.merge(ctx, values)
	if err != nil || u == nil {
		return done, err
	}
	// The moves a status write skipped are made first, each as its own write (mergeStatus).
	if u.before, err = a.walkSteps(ctx, u.cur); err != nil {
		return Result{}, err
	}
	var entity json.RawMessage
	var version int64
	if len(u.set) > 0 {
		entity, version, err = a.write(ctx, u.set)
	} else {
		entity, version, err = a.entityOf(ctx, a.m.Type, a.m.EntityID)
	}
	if err != nil {
		return Result{}, err
	}
	return a.updated(ctx, u, entity, version)
}

// merged is an update decided: the record as it was, the base the device saw, and the fields to
// write (none: the record stays as it is).
type merged struct {
	cur  row
	base int64
	set  map[string]any
	// before is the record as the moves a status write skipped left it (walkSteps), the before
	// of the write's hooks; nil without such moves.
	before json.RawMessage
}

// merge decides an update: what of the mutation's fields is written, and the conflicts, which it
// records. It returns the result instead when the update ends without a write (the record was
// deleted).
func (a *applier) merge(ctx context.Context, values map[string]any) (*merged, Result, error) {
	cur, visible, err := a.load(ctx, a.m.Type, a.m.EntityID)
	if err != nil {
		return nil, Result{}, err
	}
	if !visible && !a.isSystem() {
		return nil, Result{}, errForbidden("That %s is not yours to change.", a.m.Type)
	}
	base := *a.m.BaseVersion
	if cur["deleted_at"] != nil {
		// Delete wins over a concurrent update: the record is gone from every device. The
		// rejection is a result, not an error, so that the recorded conflict is kept.
		if err := a.record(ctx, cur, Conflict{Field: "*", Yours: a.m.Fields, Theirs: "deleted", Kept: "theirs", Rule: RuleDeleteWins}); err != nil {
			return nil, Result{}, err
		}
		return nil, rejected(a.m, rejectErr("deleted", "The %s was deleted; the change was not applied.", a.m.Type)), nil
	}
	if base > cur.version() {
		return nil, Result{}, fieldErr("invalid_value", "base_version", "base_version %d is newer than the record (%d).", base, cur.version())
	}
	if err := a.checkRecordRights(cur); err != nil {
		return nil, Result{}, err
	}
	a.refuseForbidden(a.visibleView(cur))

	set := map[string]any{}
	// Fields are merged in a fixed order; the assignee before the status, since reassigning
	// resets the status.
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return fieldOrder(names[i]) < fieldOrder(names[j]) })
	for _, name := range names {
		if err := a.mergeField(ctx, cur, set, name, values[name], base); err != nil {
			return nil, Result{}, err
		}
	}
	if err := a.checkFrozen(cur, set); err != nil {
		return nil, Result{}, err
	}
	if err := a.derive(ctx, cur, set); err != nil {
		return nil, Result{}, err
	}
	for _, c := range a.conflicts {
		if err := a.record(ctx, cur, c); err != nil {
			return nil, Result{}, err
		}
	}
	return &merged{cur: cur, base: base, set: set}, Result{}, nil
}

// updated finishes an update once it is written (entity and version are the record as written,
// or as it is when nothing was): the hooks, what follows from a task's new status, and the result.
func (a *applier) updated(ctx context.Context, u *merged, entity json.RawMessage, version int64) (Result, error) {
	cur, base, set, before := u.cur, u.base, u.set, u.before
	if len(set) > 0 {
		if before == nil {
			var err error
			if before, err = json.Marshal(a.visibleView(cur)); err != nil {
				return Result{}, err
			}
		}
		if err := a.runHooks(ctx, "update", before, entity); err != nil {
			return Result{}, err
		}
		// A claim moves along as its tasks' statuses do; an edit that leaves the status alone
		// does not move it (nor undo a processor sending it back to collecting).
		if _, moved := set["status"]; moved && a.m.Type == TypeTask {
			if err := a.e.advanceClaim(ctx, a.tx, cur.str("claim_id"), a.id); err != nil {
				return Result{}, err
			}
		}
		wasFinished := a.m.Type == TypeTask && TaskStatus(cur.str("status")).Finished()
		if to, ok := set["status"].(string); ok && wasFinished && !TaskStatus(to).Finished() && !a.isSystem() {
			if err := a.recordReopen(ctx); err != nil {
				return Result{}, err
			}
		}
	}
	status := StatusApplied
	switch {
	case slices.ContainsFunc(a.conflicts, func(c Conflict) bool { return c.Kept == "theirs" }):
		status = StatusConflict
	case cur.version() > base:
		status = StatusMerged
	}
	return Result{ID: a.m.ID, Status: status, Version: version, Entity: entity, Conflicts: a.conflicts}, nil
}

// checkFrozen refuses a write that would change a field frozen at the record's status (the Frozen
// fields of its state machine). set holds only what the mutation changes, after the merge: writing
// the value a field already has, or a field the state machine already held back, is not refused.
func (a *applier) checkFrozen(cur row, set map[string]any) error {
	if a.isSystem() {
		return nil
	}
	status := cur.str("status")
	if to, ok := set["status"].(string); ok && to != status {
		return nil
	}
	sm, ok := machines[a.m.Type]
	if !ok {
		return nil
	}
	for _, name := range sm.frozen(status) {
		if _, ok := set[name]; ok {
			return &fieldsync.Error{Kind: fieldsync.ECONFLICT, Code: "field_frozen",
				Message: fmt.Sprintf("The %s is %s: its %s no longer changes.", a.m.Type, strings.ReplaceAll(status, "_", " "), name),
				Details: map[string]any{"field": name, "status": status}}
		}
	}
	return nil
}

// recordReopen records who reopened a finished task and why, as a note on the task written by
// them in the same transaction: the completion the reopening undoes was frozen
// (TaskMachine.Frozen), and the note keeps the reason beside it, on every device that holds the
// task. The reason is the screen's (Mutation.reason); a push gives none.
func (a *applier) recordReopen(ctx context.Context) error {
	body := "Reopened."
	if a.m.reason != "" {
		body = "Reopened: " + a.m.reason
	}
	taskID, err := json.Marshal(a.m.EntityID)
	if err != nil {
		return err
	}
	text, err := json.Marshal(body)
	if err != nil {
		return err
	}
	note := &Mutation{ID: uuid.Must(uuid.NewV7()), Type: TypeTaskNote, Op: "create", EntityID: uuid.Must(uuid.NewV7()),
		Fields: map[string]json.RawMessage{"task_id": taskID, "body": text}}
	if _, err := a.e.apply(ctx, a.tx, a.id, note); err != nil {
		return fmt.Errorf("record reopening of task %s: %w", a.m.EntityID, err)
	}
	return nil
}

// visibleView is the record as devices see it (for hooks' Before), from the stored row: the
// entity's allow-list, as pulls and push results send it.
func (a *applier) visibleView(cur row) row {
	return a.ent.sends.of(cur)
}

func fieldOrder(name string) int {
	switch name {
	case "assignee_id":
		return 0
	case "status":
		return 2
	}
	return 1
}

// checkRecordRights applies the rules that depend on who the record belongs to, beyond scope.
func (a *applier) checkRecordRights(cur row) error {
	if a.id.Role == rep && a.m.Type == TypeDocument && cur.str("uploader_id") != a.id.UserID.String() {
		return errForbidden("Only the rep who created a document may change it.")
	}
	return nil
}

// mergeField decides what becomes of one field of an update.
func (a *applier) mergeField(ctx context.Context, cur row, set map[string]any, name string, v any, base int64) error {
	switch {
	case name == "status":
		return a.mergeStatus(cur, set, v.(string), base)
	case name == "checklist":
		return a.mergeChecklist(cur, set, v.([]checklistItem), base)
	case a.m.Type == TypeNotification && name == "read":
		read := v.(bool)
		if (cur["read_at"] != nil) != read {
			if read {
				set["read_at"] = a.e.NowFunc().UTC()
			} else {
				set["read_at"] = nil
			}
		}
		return nil
	case name == "assignee_id":
		return a.mergeAssignee(ctx, cur, set, v)
	}
	if role, ok := personFields[name]; ok && !sameValue(kindUUID, cur[name], v) {
		if id, ok := v.(uuid.UUID); ok {
			if err := a.requireUserOfBranch(ctx, id, cur.str("branch_id"), role, name); err != nil {
				return err
			}
		}
	}
	f := a.ent.fields[name]
	if sameValue(f.kind, cur[name], v) {
		return nil
	}
	if cur.fieldVersion(name) > base {
		// Both sides changed the field: the server's order decides, and this write came last.
		a.conflicts = append(a.conflicts, Conflict{Field: name, Yours: a.m.Fields[name], Theirs: cur[name], Kept: "yours", Rule: RuleLastWriteWins})
	}
	set[name] = sqlValue(v)
	return nil
}

// sameValue reports whether a stored JSON value equals a decoded client value.
func sameValue(kind fieldKind, stored any, v any) bool {
	if stored == nil || v == nil {
		return stored == nil && v == nil
	}
	switch kind {
	case kindInt:
		n, err := stored.(json.Number).Int64()
		return err == nil && n == v.(int64)
	case kindFloat:
		x, err := stored.(json.Number).Float64()
		return err == nil && x == v.(float64)
	case kindBool:
		return stored == v
	case kindTime:
		t, err := time.Parse(time.RFC3339Nano, stored.(string))
		return err == nil && t.Equal(v.(time.Time))
	case kindUUID:
		return stored == v.(uuid.UUID).String()
	}
	return stored == v
}

// mergeStatus checks a status change against the server's current status: the state machine of
// the record's type (machines). A change it does not allow is a conflict: the server's status
// stands, and the fields written with it (its companions) are refused with it. A change that
// skips statuses the caller could have passed through in order, from the status the device saw
// (it has not changed since base), is the shortest such path (Machine.Path), not a conflict; a
// screen's command asks for one move, and is not walked.
func (a *applier) mergeStatus(cur row, set map[string]any, to string, base int64) error {
	sm := machines[a.m.Type]
	from := cur.str("status")
	if s, ok := set["status"].(string); ok {
		from = s // a reassignment in this mutation already moved it
	}
	if from == to {
		if !a.isSystem() && sm.decided(from) {
			// The decision was made already: it stands as made, with its own reason and amount.
			a.refuseCompanions(cur, set, sm.decisionRule())
		}
		return nil
	}
	if !a.isSystem() && !sm.allowed(from, to, a.id.Role) {
		if path := sm.path(from, to, a.id.Role); len(path) > 1 && !a.m.command && from == cur.str("status") && cur.fieldVersion("status") <= base {
			// A state-based client keeps the latest status, not the moves: a rep's offline accept
			// then complete arrives as assigned → completed. When the status is still the one the
			// device saw, and the caller could have made the moves in order, they are made in
			// order, each recorded as if sent alone (walkSteps); the last is this write.
			a.steps = path[:len(path)-1]
			set["status"] = to
			return nil
		}
		rule := RuleStateMachine
		if sm.decided(from) {
			rule = sm.decisionRule()
		}
		a.conflicts = append(a.conflicts, Conflict{Field: "status", Yours: to, Theirs: from, Kept: "theirs", Rule: rule})
		a.refuseCompanions(cur, set, rule)
		return nil
	}
	if a.m.Type == TypeTask && a.id.Role == manager && TaskStatus(from).Finished() && (to == string(TaskOpen) || to == string(TaskAssigned)) {
		// Reopening: assigned when someone holds it, open otherwise.
		to = string(TaskOpen)
		if assigneeAfter(cur, set) != nil {
			to = string(TaskAssigned)
		}
	}
	set["status"] = to
	return nil
}

// walkSteps makes the moves a status write skipped (a.steps), one after the other, each a
// mutation of its own of the caller's through apply: versioned, logged, checked, its derived
// fields set and its hooks run (notifications, a claim moving along) as if the device had sent it
// alone. It returns the record as the last one left it, the before of the mutation's own write
// (nil without steps). A move refused on the way (it cannot be, the path being the machine's)
// rejects the mutation.
func (a *applier) walkSteps(ctx context.Context, cur row) (json.RawMessage, error) {
	var before json.RawMessage
	version := cur.version()
	for _, status := range a.steps {
		value, err := json.Marshal(status)
		if err != nil {
			return nil, err
		}
		step := &Mutation{ID: uuid.Must(uuid.NewV7()), Type: a.m.Type, Op: "update", EntityID: a.m.EntityID, BaseVersion: &version,
			Fields: map[string]json.RawMessage{"status": value}, ClientTime: a.m.ClientTime}
		r, err := a.e.apply(ctx, a.tx, a.id, step)
		if err != nil {
			return nil, err
		}
		if r.Status != StatusApplied {
			return nil, rejectErr("invalid_transition", "The %s could not pass through %s on the way to the status sent.", a.m.Type, status)
		}
		before, version = r.Entity, r.Version
	}
	return before, nil
}

// refuseCompanions takes back the status companions this mutation was about to write (merged
// before the status, in field order), as conflicts the server wins.
func (a *applier) refuseCompanions(cur row, set map[string]any, rule string) {
	for _, name := range machines[a.m.Type].companions() {
		if _, ok := set[name]; !ok {
			continue
		}
		delete(set, name)
		a.conflicts = slices.DeleteFunc(a.conflicts, func(c Conflict) bool { return c.Field == name })
		a.conflicts = append(a.conflicts, Conflict{Field: name, Yours: a.m.Fields[name], Theirs: cur[name], Kept: "theirs", Rule: rule})
	}
}

func assigneeAfter(cur row, set map[string]any) any {
	if v, ok := set["assignee_id"]; ok {
		return v
	}
	return cur["assignee_id"]
}

// mergeAssignee reassigns a task: only an unfinished task (a finished one is reopened first, by
// status in the same mutation), only to an active rep of the branch; the new assignee starts
// from assigned.
func (a *applier) mergeAssignee(ctx context.Context, cur row, set map[string]any, v any) error {
	if sameValue(kindUUID, cur["assignee_id"], v) {
		return nil
	}
	reopening := false
	if s, ok := a.m.Fields["status"]; ok {
		var to TaskStatus
		_ = json.Unmarshal(s, &to)
		reopening = to == TaskOpen || to == TaskAssigned
	}
	finished := TaskStatus(cur.str("status")).Finished()
	if finished && !reopening {
		a.conflicts = append(a.conflicts, Conflict{Field: "assignee_id", Yours: a.m.Fields["assignee_id"], Theirs: cur["assignee_id"],
			Kept: "theirs", Rule: RuleStateMachine})
		return nil
	}
	if id, ok := v.(uuid.UUID); ok {
		if err := a.requireRepOfBranch(ctx, id, cur.str("branch_id"), "assignee_id"); err != nil {
			return err
		}
		set["assignee_id"] = id
		if !finished {
			set["status"] = string(TaskAssigned)
		}
	} else {
		set["assignee_id"] = nil
		if !finished {
			set["status"] = string(TaskOpen)
		}
	}
	return nil
}

// mergeChecklist merges a checklist item by item. A rep ticks items: only "done" is theirs, and
// an item the manager removed meanwhile is a conflict the server wins. A manager's list is the new
// set of items and labels; the done flags merge the same way.
func (a *applier) mergeChecklist(cur row, set map[string]any, items []checklistItem, base int64) error {
	var stored []checklistItem
	raw, _ := json.Marshal(cur["checklist"])
	if err := json.Unmarshal(raw, &stored); err != nil {
		return fmt.Errorf("read checklist: %w", err)
	}
	index := map[string]int{}
	for i, it := range stored {
		index[it.Key] = i
	}
	var merged []checklistItem
	if a.id.Role == rep {
		merged = slices.Clone(stored)
	}
	for _, it := range items {
		i, known := index[it.Key]
		switch {
		case !known && a.id.Role == rep:
			a.conflicts = append(a.conflicts, Conflict{Field: "checklist." + it.Key, Yours: it, Theirs: nil, Kept: "theirs", Rule: RuleChecklistItem})
			continue
		case !known:
			merged = append(merged, it)
			continue
		}
		next := stored[i]
		if a.id.Role != rep {
			next.Label = it.Label
		}
		switch {
		case it.Done == stored[i].Done:
		case cur.fieldVersion("checklist."+it.Key) > base:
			// The list comes whole, so an item in it is not necessarily one the device changed.
			// This one changed on the server since the device saw it: the device's flag is most
			// likely the old one, and taking it would untick (or tick) what someone else just
			// did. The server's item stands, and the device is told.
			a.conflicts = append(a.conflicts, Conflict{Field: "checklist." + it.Key, Yours: it.Done, Theirs: stored[i].Done,
				Kept: "theirs", Rule: RuleChecklistItem})
		default:
			next.Done = it.Done
		}
		if a.id.Role == rep {
			merged[i] = next
		} else {
			merged = append(merged, next)
		}
	}
	if merged == nil {
		merged = []checklistItem{}
	}
	if !slices.Equal(merged, stored) {
		set["checklist"] = sqlValue(merged)
	}
	return nil
}

// derive sets the fields that follow from others: when a task or claim finished, who reviewed a
// document, and the checks that span fields (a reason to give up, an amount to pay).
func (a *applier) derive(ctx context.Context, cur row, set map[string]any) error {
	status, changed := set["status"].(string)
	if !changed {
		return nil
	}
	after := func(name string) any {
		if v, ok := set[name]; ok {
			return v
		}
		return cur[name]
	}
	now := a.e.NowFunc().UTC()
	switch a.m.Type {
	case TypeTask:
		if TaskStatus(status).Finished() {
			set["finished_at"] = now
		} else {
			set["finished_at"] = nil
		}
		if TaskStatus(status) == TaskCannotComplete && after("cannot_complete_reason") == "" {
			return fieldErr("invalid_value", "cannot_complete_reason", "Say why the task cannot be completed.")
		}
		if TaskStatus(status) == TaskAssigned && after("assignee_id") == nil {
			return fieldErr("invalid_value", "assignee_id", "An assigned task needs an assignee.")
		}
	case TypeClaim:
		switch ClaimStatus(status) {
		case ClaimPaid:
			if after("amount_paid") == nil {
				return fieldErr("invalid_value", "amount_paid", "Record the amount paid to mark a claim paid.")
			}
			set["paid_at"], set["settled_at"] = now, now
		case ClaimRejected:
			set["settled_at"] = now
		default:
			set["settled_at"] = nil
		}
		if a.id.Role == processor && after("processor_id") == nil {
			set["processor_id"] = a.id.UserID
		}
	case TypeDocument:
		switch DocumentStatus(status) {
		case DocumentApproved, DocumentRejected:
			if DocumentStatus(status) == DocumentRejected && after("review_note") == "" {
				return fieldErr("invalid_value", "review_note", "Say why the document is rejected.")
			}
			set["reviewer_id"], set["reviewed_at"] = a.id.UserID, now
		default:
			set["reviewer_id"], set["reviewed_at"] = nil, nil
		}
	}
	return nil
}

// write stores the merged fields, and returns the device's view of the record and its version
// as written.
func (a *applier) write(ctx context.Context, set map[string]any) (json.RawMessage, int64, error) {
	sql, args := a.updateStatement(set)
	var entity json.RawMessage
	var version int64
	err := a.tx.QueryRow(ctx, sql, args...).Scan(&entity, &version)
	if err != nil {
		return nil, 0, translateWriteError(err)
	}
	return entity, version, nil
}

// updateStatement is the statement that writes set to the record, returning the device's view of
// it and its version.
func (a *applier) updateStatement(set map[string]any) (string, []any) {
	names := make([]string, 0, len(set))
	for name := range set {
		names = append(names, name)
	}
	sort.Strings(names)
	args := []any{a.m.EntityID}
	assigns := make([]string, len(names))
	for i, name := range names {
		args = append(args, set[name])
		assigns[i] = fmt.Sprintf("%s = $%d", name, i+2)
	}
	return fmt.Sprintf(`UPDATE %s AS t SET %s WHERE t.id = $1 RETURNING %s, t.version`, a.ent.table, strings.Join(assigns, ", "), a.ent.data), args
}

// delete marks the record deleted, unless it changed since the device saw it: then the update
// wins and the delete is a conflict.
func (a *applier) delete(ctx context.Context) (Result, error) {
	if !a.isSystem() && !slices.Contains(a.ent.deleteRoles, a.id.Role) {
		return Result{}, errForbidden("A %s may not delete a %s.", a.id.Role, a.m.Type)
	}
	cur, visible, err := a.load(ctx, a.m.Type, a.m.EntityID)
	if err != nil {
		return Result{}, err
	}
	if !visible && !a.isSystem() {
		return Result{}, errForbidden("That %s is not yours to delete.", a.m.Type)
	}
	if err := a.checkRecordRights(cur); err != nil {
		return Result{}, err
	}
	if a.m.Type == TypeDocument && a.id.Role == rep && !DocumentStatus(cur.str("status")).Deletable() {
		return Result{}, rejectErr("invalid_transition", "A document that was uploaded is kept for review; only a pending or rejected one can be deleted.")
	}
	if cur["deleted_at"] == nil {
		if cur.version() > *a.m.BaseVersion {
			entity, version, err := a.entityOf(ctx, a.m.Type, a.m.EntityID)
			if err != nil {
				return Result{}, err
			}
			c := Conflict{Field: "*", Yours: "deleted", Theirs: json.RawMessage(entity), Kept: "theirs", Rule: RuleUpdateWins}
			if err := a.record(ctx, cur, c); err != nil {
				return Result{}, err
			}
			return Result{ID: a.m.ID, Status: StatusConflict, Version: version, Entity: entity, Conflicts: []Conflict{c}}, nil
		}
		if _, _, err := a.write(ctx, map[string]any{"deleted_at": a.e.NowFunc().UTC()}); err != nil {
			return Result{}, err
		}
	}
	entity, version, err := a.entityOf(ctx, a.m.Type, a.m.EntityID)
	if err != nil {
		return Result{}, err
	}
	before, _ := json.Marshal(a.visibleView(cur))
	if err := a.runHooks(ctx, "delete", before, entity); err != nil {
		return Result{}, err
	}
	return Result{ID: a.m.ID, Status: StatusApplied, Version: version, Entity: entity}, nil
}

// record stores a conflict for managers to see.
func (a *applier) record(ctx context.Context, cur row, c Conflict) error {
	js := func(v any) any {
		data, err := json.Marshal(v)
		if err != nil {
			return nil
		}
		return data
	}
	var device any
	if a.id.DeviceID != uuid.Nil {
		device = a.id.DeviceID
	}
	var user any
	if a.id.UserID != uuid.Nil {
		user = a.id.UserID
	}
	q := queued{sql: `
		INSERT INTO conflicts (id, branch_id, entity_type, entity_id, field, yours, theirs, kept, rule, mutation_id, user_id, device_id, client_time)
		VALUES ($1, $2::uuid, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		args: []any{uuid.Must(uuid.NewV7()), cur.str("branch_id"), a.m.Type, a.m.EntityID, c.Field, js(c.Yours), js(c.Theirs), js(c.Kept), c.Rule,
			a.m.ID, user, device, a.m.ClientTime}}
	if a.pre != nil {
		// Written with the group's writes, in the same batch.
		a.deferred = append(a.deferred, q)
		return nil
	}
	_, err := a.tx.Exec(ctx, q.sql, q.args...)
	if err != nil {
		return fmt.Errorf("record conflict: %w", err)
	}
	return nil
}

// runHooks hands the write to every hook.
func (a *applier) runHooks(ctx context.Context, op string, before, after json.RawMessage) error {
	if len(a.e.hooks) == 0 {
		return nil
	}
	return a.e.runHooks(ctx, a.tx, Event{Type: a.m.Type, ID: a.m.EntityID, Op: op, Before: before, After: after, Actor: a.id})
}

// runHooks hands ev to every hook, in the writing transaction tx: the one place hooks are run.
func (e *Engine) runHooks(ctx context.Context, tx pgx.Tx, ev Event) error {
	for _, h := range e.hooks {
		if err := h(ctx, tx, ev); err != nil {
			return fmt.Errorf("hook on %s %s: %w", ev.Type, ev.ID, err)
		}
	}
	return nil
}
