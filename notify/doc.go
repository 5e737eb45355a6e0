// Package notify tells the right people: the notification rules of BRIEF.md run as sync engine
// hooks in the writing transaction, and delivery to phones (FCM) and screens (Server-Sent Events)
// follows from what they wrote.
//
// # Written with the change, or not at all
//
// Service.Hook is a sync.HookFunc. It runs inside the transaction of every applied mutation and,
// when the change is one of the table's events (a claim reported for a hospitalised customer, a
// task assigned or taken off someone, a task completed or given up, a document rejected, a claim
// paid), writes in one statement each recipient's notification and one pending delivery per
// active device of each recipient (notification_deliveries, the outbox), then queues the job that
// sends them (River, InsertTx on the same transaction). A change that rolls back takes all of it
// with it; a change that commits has all of it, durably, before anyone is told anything.
// Notifications are synced records (the triggers log them), so each one is in its user's inbox on
// every device whether or not a push ever arrives.
//
// # One job per group of deliveries, one row per delivery
//
// The job carries the group a rule wrote at once (one per device of the rep for a reassigned task;
// one per phone of the manager and every processor of the branch for a completed one): River's
// cost (insert, fetch, lock, complete) is paid per group, not per message, which is what lets a
// replica send as fast as FCM answers (see the benchmarks). What is per message is the delivery
// row: each one is sent once, several at a time, and its outcome recorded as soon as FCM
// answers. A device's failure is its own: an unregistered token is dropped without touching the
// other deliveries; a 503 on one phone leaves that one delivery pending, and the job's retry sends
// it, and only it, again.
//
// River locks a job while one worker runs it, so several replicas working the same queue never
// send a group twice at once, and a delivery that has ended is never sent again: a job run again
// after a crash finds nothing pending but what the crash interrupted. What is left is the moment
// between FCM accepting a message and its outcome committing: a replica dying exactly then sends
// that message again on the next run. FCM has no idempotency key, so that duplicate is made
// harmless on the phone instead: every message carries a collapse key, an Android tag and an APNs
// collapse id made from the record it is about, so the second copy replaces the first in the tray
// rather than adding an alert. The same key makes a storm of changes to one task show as one
// alert, the latest.
//
// # Wake-ups
//
// When a task enters a rep's scope, wake.go writes, in the same transaction, a pending delivery of
// kind sync to each of the rep's live devices (no notification: nothing in the inbox) and queues
// the same delivery job: the phones get a data-only "sync now" push, collapsible, and the app
// syncs in the background before the rep opens it.
//
// # Failures
//
// FCM's UNAVAILABLE, INTERNAL and QUOTA_EXCEEDED (and network failures) are retried: the SDK
// retries a 503 at once within the send, then the delivery stays pending and its job is retried
// with exponential backoff (1 s doubling to 30 min, about 7 hours in all), or after the
// Retry-After FCM asked for. An UNREGISTERED token, a token FCM calls invalid, or one of another
// sender is dead: it is cleared from its device and the delivery ends. Anything else FCM refuses
// (a malformed message) is a bug, not weather: it is recorded as failed and not retried.
//
// # Live events
//
// Service.Stream feeds GET /v1/events: the caller's notifications the moment they commit, and a
// "sync" signal when a change that may touch their scope commits, on any replica (the change log's
// trigger announces every commit with pg_notify, and the sync engine's listener wakes the
// streams). A stream reads the sync engine's feed of the change log (sync.Engine.Feed) from where
// it was, plus whatever the transactions that were still running at its last read wrote since, so
// a transaction that commits late is neither missed nor waited for. An event id is the feed's
// token, which carries the stream's horizon (every transaction below it had been read); a client
// that reconnects with Last-Event-ID reads again from there: it misses nothing, and may get a few
// events twice.
package notify
