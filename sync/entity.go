package sync

import (
	"fmt"
	"strings"

	"github.com/fieldsync/fieldsync"
)

// RoleSystem is the identity of writes the server makes itself (claim intake's dispatch, upload
// completion, derived status changes): every field is its to write.
const RoleSystem = "system"

// Entity types, as they appear in pulls and pushes.
const (
	TypeTask         = "task"
	TypeTaskNote     = "task_note"
	TypeClaim        = "claim"
	TypeCustomer     = "customer"
	TypeDocument     = "document"
	TypeNotification = "notification"
	TypeUser         = "user"
)

// fieldKind is the type of a writable field, which decides how a client's value is checked.
type fieldKind int

const (
	kindText fieldKind = iota
	kindEnum
	kindInt
	kindFloat
	kindBool
	kindTime
	kindUUID
	kindChecklist
)

// field is one writable field of an entity: its type, its limits, and which roles may set it
// when creating and when updating. A role not listed gets forbidden_field.
type field struct {
	kind     fieldKind
	max      int      // text: the most characters; int: the largest value
	min      float64  // float: bounds; text: the fewest characters
	maxf     float64  // float: bounds
	enum     []string // enum: the allowed values
	nullable bool     // may be set to null
	create   []string // roles that may give it on create
	update   []string // roles that may change it on update
	// clean, if set, rewrites an accepted text value into the form stored.
	clean func(string) string
}

// entity describes a synced type: its table, what of a row a device sees, and what may be written.
type entity struct {
	typ   string
	table string
	// data is the SQL expression (over alias t) of the record a device receives.
	data string
	// alive is the SQL condition (over t) of a record that exists (is not a tombstone).
	alive string
	// fields are the writable fields; everything else is the server's to set.
	fields map[string]field
	// required fields of a create.
	required []string
	// roles that may create, and delete, records of this type through a mutation.
	createRoles, deleteRoles []string
}

func roles(r ...string) []string { return r }

var (
	manager   = fieldsync.RoleManager
	processor = fieldsync.RoleProcessor
	rep       = fieldsync.RoleRep
)

// visibleColumns builds the data expression: the row as JSON without the server's bookkeeping.
func visibleColumns(hidden string, extra string) string {
	expr := "(to_jsonb(t) - '{" + hidden + "}'::text[])"
	if extra != "" {
		expr += " || jsonb_build_object(" + extra + ")"
	}
	return expr
}

var entities = map[string]*entity{
	TypeTask: {
		typ: TypeTask, table: "tasks",
		data:  visibleColumns("field_versions,deleted_at", ""),
		alive: "t.deleted_at IS NULL",
		fields: map[string]field{
			"claim_id":               {kind: kindUUID, create: roles(manager)},
			"assignee_id":            {kind: kindUUID, nullable: true, create: roles(manager), update: roles(manager)},
			"kind":                   {kind: kindEnum, enum: stringsOf(TaskKinds), create: roles(manager), update: roles(manager)},
			"title":                  {kind: kindText, min: 1, max: 200, create: roles(manager), update: roles(manager)},
			"instructions":           {kind: kindText, max: 10000, create: roles(manager), update: roles(manager)},
			"due_at":                 {kind: kindTime, nullable: true, create: roles(manager), update: roles(manager)},
			"location_address":       {kind: kindText, max: 500, create: roles(manager), update: roles(manager)},
			"location_lat":           {kind: kindFloat, min: -90, maxf: 90, nullable: true, create: roles(manager), update: roles(manager)},
			"location_lng":           {kind: kindFloat, min: -180, maxf: 180, nullable: true, create: roles(manager), update: roles(manager)},
			"checklist":              {kind: kindChecklist, create: roles(manager), update: roles(manager, rep)},
			"completion_note":        {kind: kindText, max: 10000, update: roles(rep)},
			"cannot_complete_reason": {kind: kindText, max: 2000, update: roles(rep)},
			"status": {kind: kindEnum, enum: TaskMachine.Strings(),
				update: roles(rep, manager)},
		},
		required:    []string{"claim_id", "kind", "title"},
		createRoles: roles(manager),
	},
	TypeTaskNote: {
		typ: TypeTaskNote, table: "task_notes",
		data:  visibleColumns("branch_id", ""),
		alive: "true",
		fields: map[string]field{
			"task_id": {kind: kindUUID, create: roles(rep, manager)},
			"body":    {kind: kindText, min: 1, max: 10000, create: roles(rep, manager)},
		},
		required:    []string{"task_id", "body"},
		createRoles: roles(rep, manager),
	},
	TypeClaim: {
		typ: TypeClaim, table: "claims",
		data:  visibleColumns("field_versions,deleted_at", ""),
		alive: "t.deleted_at IS NULL",
		fields: map[string]field{
			"description":    {kind: kindText, max: 10000, update: roles(manager, processor)},
			"hospital":       {kind: kindText, max: 300, update: roles(manager, processor)},
			"status":         {kind: kindEnum, enum: ClaimMachine.Strings(), update: roles(processor)},
			"amount_claimed": {kind: kindInt, max: 1 << 50, nullable: true, update: roles(processor)},
			"amount_paid":    {kind: kindInt, max: 1 << 50, nullable: true, update: roles(processor)},
			"premium":        {kind: kindInt, max: 1 << 50, nullable: true, update: roles(processor, manager)},
			"decision_note":  {kind: kindText, max: 2000, update: roles(processor)},
			"processor_id":   {kind: kindUUID, nullable: true, update: roles(processor, manager)},
		},
	},
	TypeCustomer: {
		typ: TypeCustomer, table: "customers",
		data:  visibleColumns("field_versions,deleted_at", ""),
		alive: "t.deleted_at IS NULL",
		fields: map[string]field{
			"name":     {kind: kindText, min: 1, max: 200, create: roles(manager), update: roles(manager)},
			"phone":    {kind: kindText, max: 50, create: roles(manager), update: roles(manager, rep)},
			"address":  {kind: kindText, max: 500, create: roles(manager), update: roles(manager, rep)},
			"agent_id": {kind: kindUUID, nullable: true, create: roles(manager), update: roles(manager)},
		},
		required:    []string{"name"},
		createRoles: roles(manager),
	},
	TypeDocument: {
		typ: TypeDocument, table: "documents",
		data:  visibleColumns("field_versions,deleted_at,object_key,thumbnail_key,branch_id", "'has_thumbnail', t.thumbnail_key IS NOT NULL"),
		alive: "t.deleted_at IS NULL",
		fields: map[string]field{
			"claim_id":     {kind: kindUUID, create: roles(rep, manager)},
			"task_id":      {kind: kindUUID, nullable: true, create: roles(rep, manager)},
			"kind":         {kind: kindEnum, enum: stringsOf(DocumentKinds), create: roles(rep, manager), update: roles(rep, manager)},
			"file_name":    {kind: kindText, max: 255, clean: CleanFileName, create: roles(rep, manager), update: roles(rep, manager)},
			"content_type": {kind: kindText, max: 100, create: roles(rep, manager)},
			"size_bytes":   {kind: kindInt, max: 1 << 40, nullable: true, create: roles(rep, manager)},
			"sha256":       {kind: kindText, max: 64, nullable: true, create: roles(rep, manager)},
			"status":       {kind: kindEnum, enum: DocumentMachine.Strings(), update: roles(processor)},
			"review_note":  {kind: kindText, max: 2000, update: roles(processor)},
			// Written only by the server (the upload and its processing), through the engine.
			"object_key":    {kind: kindText, max: 500, nullable: true},
			"thumbnail_key": {kind: kindText, max: 500, nullable: true},
			"width":         {kind: kindInt, max: 1 << 20, nullable: true},
			"height":        {kind: kindInt, max: 1 << 20, nullable: true},
			"captured_at":   {kind: kindTime, nullable: true},
			"gps_lat":       {kind: kindFloat, min: -90, maxf: 90, nullable: true},
			"gps_lng":       {kind: kindFloat, min: -180, maxf: 180, nullable: true},
			"uploaded_at":   {kind: kindTime, nullable: true},
			// Why processing made no thumbnail (media: image_too_large, image_unreadable), or "".
			"processing_error": {kind: kindEnum, enum: []string{"", "image_too_large", "image_unreadable"}},
		},
		required:    []string{"claim_id", "kind"},
		createRoles: roles(rep, manager),
		deleteRoles: roles(rep, manager),
	},
	TypeNotification: {
		typ: TypeNotification, table: "notifications",
		data:  visibleColumns("branch_id", "'read', t.read_at IS NOT NULL"),
		alive: "true",
		fields: map[string]field{
			"read": {kind: kindBool, update: roles(rep, processor, manager)},
		},
	},
	TypeUser: {
		typ: TypeUser, table: "users",
		data: "jsonb_build_object('id', t.id, 'branch_id', t.branch_id, 'name', t.name, 'role', t.role, " +
			"'rep_kind', t.rep_kind, 'on_duty', t.on_duty, 'disabled', t.disabled_at IS NOT NULL, 'version', t.version)",
		alive:  "true",
		fields: map[string]field{},
	},
}

// snapshotOrder is the order types are sent in a snapshot: what others refer to first.
var snapshotOrder = []string{TypeUser, TypeCustomer, TypeClaim, TypeTask, TypeTaskNote, TypeDocument, TypeNotification}

// Scope predicates: SQL conditions over alias t that hold when the caller's scope holds the record,
// tombstone or not. Parameters: $1 the user, $2 their branch, $3 the scope window.
// Each must be true or false, never NULL: callers scan it into a bool.
func repTask(a string) string {
	// "assignee_id IS NOT NULL" makes an unassigned task false rather than NULL, and keeps
	// "assignee_id = $1" for the index.
	return fmt.Sprintf("(%[1]s.assignee_id IS NOT NULL AND %[1]s.assignee_id = $1 AND %[1]s.deleted_at IS NULL AND (%[1]s.finished_at IS NULL OR %[1]s.finished_at > now() - $3::interval))", a)
}

func processorClaim(a string) string {
	return fmt.Sprintf("(%[1]s.branch_id = $2 AND %[1]s.deleted_at IS NULL AND (%[1]s.status IN ('collecting', 'under_review', 'approved') "+
		"OR (%[1]s.status IN ('paid', 'rejected') AND %[1]s.settled_at > now() - $3::interval)))", a)
}

var scopes = map[string]map[string]string{
	rep: {
		TypeTask:         strings.Replace(repTask("t"), " AND t.deleted_at IS NULL", "", 1),
		TypeClaim:        "EXISTS (SELECT 1 FROM tasks x WHERE x.claim_id = t.id AND " + repTask("x") + ")",
		TypeCustomer:     "EXISTS (SELECT 1 FROM claims c JOIN tasks x ON x.claim_id = c.id WHERE c.customer_id = t.id AND c.deleted_at IS NULL AND " + repTask("x") + ")",
		TypeDocument:     "EXISTS (SELECT 1 FROM tasks x WHERE x.claim_id = t.claim_id AND " + repTask("x") + ")",
		TypeTaskNote:     "EXISTS (SELECT 1 FROM tasks x WHERE x.id = t.task_id AND " + repTask("x") + ")",
		TypeNotification: "(t.user_id = $1 AND (t.read_at IS NULL OR t.read_at > now() - $3::interval))",
		TypeUser:         "t.branch_id = $2",
	},
	processor: {
		TypeClaim:    strings.Replace(processorClaim("t"), " AND t.deleted_at IS NULL", "", 1),
		TypeTask:     "EXISTS (SELECT 1 FROM claims c WHERE c.id = t.claim_id AND " + processorClaim("c") + ")",
		TypeDocument: "EXISTS (SELECT 1 FROM claims c WHERE c.id = t.claim_id AND " + processorClaim("c") + ")",
		TypeCustomer: "EXISTS (SELECT 1 FROM claims c WHERE c.customer_id = t.id AND " + processorClaim("c") + ")",
		// The field's notes come with the claim: a processor reviewing it reads what the rep saw.
		TypeTaskNote:     "EXISTS (SELECT 1 FROM tasks x JOIN claims c ON c.id = x.claim_id WHERE x.id = t.task_id AND x.deleted_at IS NULL AND " + processorClaim("c") + ")",
		TypeNotification: "(t.user_id = $1 AND (t.read_at IS NULL OR t.read_at > now() - $3::interval))",
		TypeUser:         "t.branch_id = $2",
	},
	manager: {
		TypeClaim:        "t.branch_id = $2",
		TypeTask:         "t.branch_id = $2",
		TypeDocument:     "t.branch_id = $2",
		TypeCustomer:     "t.branch_id = $2",
		TypeTaskNote:     "t.branch_id = $2",
		TypeNotification: "(t.user_id = $1 AND (t.read_at IS NULL OR t.read_at > now() - $3::interval))",
		TypeUser:         "t.branch_id = $2",
	},
}

// scopeOf returns the scope predicate of role over entity type typ.
func scopeOf(role, typ string) (string, error) {
	byType, ok := scopes[role]
	if !ok {
		return "", fieldsync.Errorf(fieldsync.EFORBIDDEN, "forbidden", "The %s role does not sync.", role)
	}
	return byType[typ], nil
}
