package sync

import (
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
			"kind":                   {kind: kindEnum, enum: []string{"hospital_visit", "document_collection", "follow_up"}, create: roles(manager), update: roles(manager)},
			"title":                  {kind: kindText, min: 1, max: 200, create: roles(manager), update: roles(manager)},
			"instructions":           {kind: kindText, max: 10000, create: roles(manager), update: roles(manager)},
			"due_at":                 {kind: kindTime, nullable: true, create: roles(manager), update: roles(manager)},
			"location_address":       {kind: kindText, max: 500, create: roles(manager), update: roles(manager)},
			"location_lat":           {kind: kindFloat, min: -90, maxf: 90, nullable: true, create: roles(manager), update: roles(manager)},
			"location_lng":           {kind: kindFloat, min: -180, maxf: 180, nullable: true, create: roles(manager), update: roles(manager)},
			"checklist":              {kind: kindChecklist, create: roles(manager), update: roles(manager, rep)},
			"completion_note":        {kind: kindText, max: 10000, update: roles(rep)},
			"cannot_complete_reason": {kind: kindText, max: 2000, update: roles(rep)},
			"status": {kind: kindEnum, enum: []string{"open", "assigned", "accepted", "in_progress", "completed", "cannot_complete", "cancelled"},
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
			"status":         {kind: kindEnum, enum: []string{"reported", "collecting", "under_review", "approved", "paid", "rejected"}, update: roles(processor)},
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
			"kind":         {kind: kindEnum, enum: []string{"id_card", "medical_record", "invoice", "discharge_summary", "photo", "other"}, create: roles(rep, manager), update: roles(rep, manager)},
			"file_name":    {kind: kindText, max: 255, clean: CleanFileName, create: roles(rep, manager), update: roles(rep, manager)},
			"content_type": {kind: kindText, max: 100, create: roles(rep, manager)},
			"size_bytes":   {kind: kindInt, max: 1 << 40, nullable: true, create: roles(rep, manager)},
			"sha256":       {kind: kindText, max: 64, nullable: true, create: roles(rep, manager)},
			"status":       {kind: kindEnum, enum: []string{"pending_upload", "uploaded", "approved", "rejected"}, update: roles(processor)},
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
