// Package testenv gives tests the real services fieldsync runs on, in the style of river's
// riverdbtest: DB hands each test a freshly migrated PostgreSQL schema of its own, S3 a fresh bucket
// in a real S3-compatible store. Nothing is mocked, and tests that use them can run in parallel,
// within a package and across the packages `go test ./...` runs at once.
//
// A package whose tests use S3 must call Main from its TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
package testenv
