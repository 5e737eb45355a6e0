// Package sim simulates the phones (and offline screens) of a branch against a fieldsync server,
// through the public protocol only (internal/client). It is the `fieldsync sim` command's engine
// and the tests' way to show that devices converge; it is also written to be read, as an example
// of how a client uses the protocol (docs/protocol.md):
//
//   - A Device keeps a store of the server's records in its user's scope, each with its version,
//     and an outbox of the mutations its user made. Its user works offline: an action only adds
//     to the outbox (see Act), with the base_version of the record the user saw, and what the user
//     sees is the store with the outbox applied over it.
//   - Sync pushes the outbox. A mutation keeps its id forever: when a push's answer is lost the
//     same mutations go again, and the server, which applies an id at most once, answers with the
//     stored results. Results replace the device's copies (a conflict's entity is the server's
//     record: the server's value stood); a rejected mutation is dropped.
//   - Sync then pulls until has_more is false (only then is the store consistent), applying
//     upserts and deletes (a delete with reason out_of_scope: the record left the user's scope).
//     A 410 means the cursor is no good any more: start again with a snapshot, and drop what it
//     does not bring.
//   - Photos are documents created by push (pending_upload); their bytes go up afterwards with
//     tus, resumed from the server's offset after every interruption.
//
// A Device reaches the server through a Protocol: a client of the HTTP API (internal/client) for
// the simulator and the end-to-end scenario, or the engine called directly, from one goroutine, in
// the engine's convergence test (whose seed then replays exactly). Whatever the Protocol, the
// outbox, base versions, pull loop, taking of results, snapshot after a 410 and the check of
// replays are the Device's, written once.
//
// A Fleet runs many devices at once for a while, each going offline and online at random, acting
// for its role and syncing, optionally over a flaky Network that loses answers after the server
// handled the request and cuts upload bodies. Settle then brings every device online and checks
// that each device's store equals a fresh snapshot of its user's scope, and every device checks
// that each mutation sent again after a lost answer got the same result as the first time
// (applied once).
package sim
