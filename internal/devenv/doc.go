// Package devenv starts or finds the local services a newcomer needs to run fieldsync: a PostgreSQL
// database and an S3-compatible object store (MinIO). The `fieldsync dev` command and the tests
// (through package testenv) share it, so "it works on my machine" means the same thing in both.
//
// Each service is looked for in a fixed order: an explicit environment variable first, then a server
// already running on its usual local address, then a throwaway instance started from binaries found
// on this machine. When nothing works, the error says exactly what to install or set.
package devenv
