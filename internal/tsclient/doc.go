// Package tsclient runs the TypeScript client's own tests (clients/typescript) inside `go test`,
// against a real server: it starts one with internal/apitest (PostgreSQL, MinIO, the documents
// service), makes the users the conformance kit needs (the API cannot make users for a branch's
// people), builds the package with tsc and runs `node --test` with the server's URL and the logins
// in the environment. It also checks that the client's generated types are made from the
// description the server serves today.
//
// The server runs with the documents and notifications services (uploads, the event stream), and
// the tests can move its clock (FIELDSYNC_TEST_CLOCK) to expire tokens without waiting.
//
// The package has no code of its own: everything is in its tests.
package tsclient
