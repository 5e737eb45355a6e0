# Everyday commands. CI runs `make test` through .ci/run; see DEVELOPERS.md.

# The MinIO server the tests and `fieldsync dev` run. Keep in step with devenv.MinIOModule
# (a test in internal/devenv checks that they agree).
MINIO_MODULE := github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c

GOBIN_DIR := $(or $(shell go env GOBIN),$(shell go env GOPATH)/bin)

# Tools installed with `go install` (minio) must be found by the tests.
export PATH := $(GOBIN_DIR):$(PATH)

.DEFAULT_GOAL := build
.PHONY: build test dev minio fmt-check vet

## build: compile the server to bin/fieldsync
build:
	go build -o bin/fieldsync ./cmd/fieldsync

## test: check formatting, vet, and run every test with the race detector
test: minio fmt-check vet
	go test -race -count=1 ./...

## dev: run fieldsync with a local PostgreSQL and MinIO, found or started for you
dev: minio
	go run ./cmd/fieldsync dev

## minio: install the pinned MinIO server unless one is already installed (~6 minutes the first time)
minio:
	@if command -v minio >/dev/null 2>&1 || [ -x "$(GOBIN_DIR)/minio" ]; then \
		echo "minio: $$(command -v minio)"; \
	else \
		echo "installing $(MINIO_MODULE) into $(GOBIN_DIR) (about 6 minutes the first time)"; \
		go install $(MINIO_MODULE); \
	fi

## fmt-check: fail if any Go file is not gofmt-formatted
fmt-check:
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt needed on:"; echo "$$unformatted"; exit 1; \
	fi

## vet: run go vet on every package
vet:
	go vet ./...
