// Package sync is the sync engine: the domain's synced entities, who may see and write each of
// their fields, how offline edits merge, and the pull and push of docs/protocol.md. It owns its SQL and
// never imports the HTTP layer.
//
// # Every write goes through one path
//
// Pushes from phones (Engine.Push), the screens' commands (Engine.AssignTask, DecideClaim, ...;
// Engine.Command underneath) and claim intake (Engine.ReportClaim) are all mutations applied by
// the engine's apply in one kind of transaction (Engine.write, retried after a deadlock or a
// serialization failure): validated, authorised per role, record and field, merged against the
// server's current record, and followed by the hooks (notifications) in the same transaction.
// Versioning and the change log are kept by the database's triggers
// (migrations/00002_sync_triggers.sql), so no writer can forget them, and their announcements wake
// the long-polls and the feed's readers through the engine's one listener.
//
// # One reader of the change log
//
// Pulls (Engine.Pull) and the event stream (notify, through Engine.FeedStart and Engine.Feed) read
// the change log here, with their cursors and tokens in cursor.go.
//
// # State machines are data
//
// A task's, a claim's and a document's statuses are Go types (status.go), and each entity's state
// machine is one table (machine.go: TaskMachine, ClaimMachine, DocumentMachine): which role may
// make which move, which statuses are decisions, which fields go with a status change and which
// freeze. The engine's status checks, the screens' tests and the OpenAPI description's enums all
// read those tables, so a rule is changed in one place.
//
// # Decisions stand
//
// Some fields freeze when a record reaches a status (the Frozen fields of its state machine): a
// claim's amounts and decision once approved, paid or rejected, a document's review once decided,
// a task's completion once finished. A later write that would change one is rejected
// (field_frozen), whoever sends it. The correction that is allowed is a move by the state machine,
// such as a manager reopening a task, which the engine records with who made it and why (a note on
// the task).
//
// # Pulls without gaps
//
// A change's version comes from a sequence, so versions are handed out in the order transactions
// write, not the order they commit: a transaction holding version 100 may commit after the one
// holding 101. A cursor that is "the highest version seen" would then skip 100 forever.
//
// Instead every change row records its transaction id (xid8), and a pull serves only changes of
// transactions below pg_snapshot_xmin(pg_current_snapshot()): the oldest transaction still
// running. Every transaction below that is finished, committed or rolled back, so nothing can ever
// again appear below it. Changes are served in (xid, version) order and the cursor is the last
// (xid, version) served, so a later pull continues exactly where this one stopped, and a change
// from a slow transaction is served as soon as that transaction ends. The price: a transaction
// left open holds back what every pull can see until it ends (latency, never loss), so the engine
// keeps its own transactions short.
//
// # Scope moves
//
// Who holds what is written once. scope.go says each role's roots (a rep's tasks, the
// processors' queued claims) and what a root brings with it; when a root is held is said by SQL
// functions (migrations/00007_scope_functions.sql: fieldsync_task_held, fieldsync_claim_queued,
// fieldsync_notification_kept). The scope predicates of pulls, snapshots, screens and writes, and
// the pull's list of what a root brings, are built from scope.go's table; the triggers log moves,
// and the janitor's sweep the moves time alone makes, by the same functions.
// TestScopeLogAgreesWithPull checks that the log and the pulls agree for every role.
//
// They tell time by one clock: the engine's NowFunc stamps when things end, and SQL decides the
// windows at fieldsync_now() (migrations/00008_one_clock.sql), the database's transaction time
// under the real clock. Under any other clock (a test's) the engine tells SQL its time: as the
// setting fieldsync.now in its writes, as the asof of its reads (Engine.sqlNow). A test moves
// the clock past a window instead of sleeping through it.
//
// What a user holds is defined by their role (BRIEF.md): a rep holds their tasks and what those
// need; a processor the branch's review queue; a manager the whole branch. When a write moves a
// record into or out of someone's scope (a task reassigned, a claim entering review, a finished
// task passing the window), the triggers log an `enter` or `leave` for the user (or the branch's
// processors). A pull that meets an `enter` sends the record whole with everything it brings (a
// task's claim, customer, documents and notes), whatever their versions; a `leave` sends deletes
// with reason out_of_scope for each of those that the user no longer holds through another record.
// Record changes are sent only to users whose scope holds the record at the time of the pull, with
// the record's current state.
//
// # Records are sent by name
//
// What a device receives of a row is an allow-list: each entity names its columns (entity.sends in
// entity.go), and pulls, push results, the screens, the hooks' view and the notification stream
// are all made from that list. A new column reaches no device until it is named there and in the
// type's record schema of the OpenAPI description, which forbids what it does not name (the
// server's wire tests validate real responses against it).
package sync
