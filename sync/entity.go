package sync

import (
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
	// sends is what of a row a device receives, field by field. Every role receives the same
	// fields of a record it sees (its scope decides which records).
	sends record
	// data is sends as an SQL expression over alias t, made once at start.
	data string
	// wire is the same record as json rather than jsonb, for what is only sent (pull pages):
	// json_build_object writes the text at once, where jsonb_build_object builds a tree that is
	// turned back into text to be sent, a third more of the database's time per record.
	wire string
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

// record is the allow-list of what a device receives of a stored row: the columns it names and
// the flags. A column not named reaches no device: a new column stays the server's until it is
// named here (and in the type's record schema of the OpenAPI description, which the wire tests
// hold to what is sent).
type record struct {
	columns []string
	flags   []flag
}

// flag is a boolean a device receives in place of a column it is not sent: whether the column
// is set (a document's has_thumbnail: whether it has a thumbnail_key).
type flag struct{ name, column string }

// sends names the columns, and flags, of a record.
func sends(columns []string, flags ...flag) record { return record{columns, flags} }

// sql is the record as a JSON expression over the row alias.
func (r record) sql(alias string) string {
	var pairs []string
	for _, c := range r.columns {
		pairs = append(pairs, "'"+c+"', "+alias+"."+c)
	}
	for _, f := range r.flags {
		pairs = append(pairs, "'"+f.name+"', "+alias+"."+f.column+" IS NOT NULL")
	}
	// A function takes at most 100 arguments: a longer record is built in parts.
	var parts []string
	for len(pairs) > 0 {
		n := min(len(pairs), 50)
		parts = append(parts, "jsonb_build_object("+strings.Join(pairs[:n], ", ")+")")
		pairs = pairs[n:]
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "(" + strings.Join(parts, " || ") + ")"
}

// wireSQL is the record as a json (text) expression over the row alias: the same members as sql,
// for a record only sent. A record of more pairs than a function takes is sql's, as json.
func (r record) wireSQL(alias string) string {
	if len(r.columns)+len(r.flags) > 50 {
		return r.sql(alias) + "::json"
	}
	return strings.Replace(r.sql(alias), "jsonb_build_object(", "json_build_object(", 1)
}

// of is the record made from a stored row read with to_jsonb: what sql gives for the same row.
func (r record) of(stored row) row {
	out := make(row, len(r.columns)+len(r.flags))
	for _, c := range r.columns {
		out[c] = stored[c]
	}
	for _, f := range r.flags {
		out[f.name] = stored[f.column] != nil
	}
	return out
}

// RecordSQL is the SQL expression, over the row alias, of a record of type typ as devices
// receive it: for those that send records outside pulls and pushes (the notification stream).
// It panics on an unknown type, a programming error.
func RecordSQL(typ, alias string) string {
	ent, ok := entities[typ]
	if !ok {
		panic("sync: no entity type " + typ)
	}
	return ent.sends.sql(alias)
}

// withData fills in each entity's data from its sends. It runs as entities is initialised, so
// that the queries other package variables build from entities (pageQueries) see it.
func withData(m map[string]*entity) map[string]*entity {
	for _, ent := range m {
		ent.data = ent.sends.sql("t")
		ent.wire = ent.sends.wireSQL("t")
	}
	return m
}

var entities = withData(map[string]*entity{
	TypeTask: {
		typ: TypeTask, table: "tasks",
		sends: sends([]string{"id", "claim_id", "branch_id", "assignee_id", "kind", "title", "instructions", "due_at",
			"location_address", "location_lat", "location_lng", "checklist", "completion_note", "cannot_complete_reason",
			"status", "finished_at", "version", "created_at", "updated_at"}),
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
		sends: sends([]string{"id", "task_id", "author_id", "body", "created_at", "version"}),
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
		sends: sends([]string{"id", "number", "branch_id", "customer_id", "policy_number", "kind", "description",
			"hospitalised", "hospital", "status", "amount_claimed", "amount_paid", "paid_at", "settled_at", "premium",
			"processor_id", "decision_note", "version", "created_at", "updated_at"}),
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
		sends: sends([]string{"id", "branch_id", "name", "phone", "address", "agent_id", "version", "created_at", "updated_at"}),
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
		// The object keys stay the server's: the bytes are fetched through the document's routes.
		sends: sends([]string{"id", "claim_id", "task_id", "kind", "file_name", "content_type", "size_bytes", "sha256",
			"width", "height", "captured_at", "gps_lat", "gps_lng", "status", "review_note", "reviewer_id", "reviewed_at",
			"uploader_id", "uploaded_at", "processing_error", "version", "created_at", "updated_at"},
			flag{"has_thumbnail", "thumbnail_key"}),
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
		sends: sends([]string{"id", "user_id", "kind", "title", "body", "entity_type", "entity_id", "data", "created_at",
			"read_at", "version"}, flag{"read", "read_at"}),
		alive: "true",
		fields: map[string]field{
			"read": {kind: kindBool, update: roles(rep, processor, manager)},
		},
	},
	TypeUser: {
		typ: TypeUser, table: "users",
		// Names for the app: never the login or the password hash.
		sends:  sends([]string{"id", "branch_id", "name", "role", "rep_kind", "on_duty", "version"}, flag{"disabled", "disabled_at"}),
		alive:  "true",
		fields: map[string]field{},
	},
})

// snapshotOrder is the order types are sent in a snapshot: what others refer to first.
var snapshotOrder = []string{TypeUser, TypeCustomer, TypeClaim, TypeTask, TypeTaskNote, TypeDocument, TypeNotification}
