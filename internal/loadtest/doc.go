// Package loadtest is the load tool behind `fieldsync bench`: it measures a running fieldsync
// server through its public API, each figure next to a raw baseline of the same work measured in
// the same run, and judges the goals (goals.go: issue 13's, and issue 6's memory bound).
//
// The phases, in order (Run):
//
//   - notify: a manager reassigns tasks one at a time; the delay from the commit (the push's
//     answer) to the fake FCM receiving each of the two pushes it causes.
//   - push: pushes of 100 mutations, a device per database connection of the server, against
//     raw pgx writing the same rows of the same tables with as many connections.
//   - pull: a manager's page of 1,000 changed tasks, against raw pgx reading the same rows' JSON.
//   - snapshot: a rep's initial sync (5,000 records, pages of 500), against raw pgx reading the
//     same records.
//   - upload: tus uploads of 20 MiB documents (checksum, sniffing and hashing on), against
//     minio-go's unsigned, parallel-part PutObject of the same bytes and tusd v2 with its S3
//     store (tusd.go), both on the same bucket.
//   - longpoll: 500 devices sign in at once (the storm whose memory is measured), then 1,000 and
//     5,000 devices long-poll in turn while 100 of them push a small mutation every second: the
//     writers' latency, commit → wake, each note's delivery to its writer's own long-poll, and the
//     server's memory a waiting device (live heap and stacks, through its pprof listener).
//
// The server runs in a process of its own (Target.ServerPID), so that its CPU time and memory are
// read from /proc apart from the load generators', which run here; the table shows, per phase,
// the CPU cores the server, this process and the whole machine used, so that a figure measured
// while something else was busy says so.
//
// Fixtures are written with plain SQL in the server's database (which must be the tool's own:
// `fieldsync bench` makes one per run), so that the triggers version and log them as every write;
// users sign in through the API, as phones do.
package loadtest
