# Everyday commands. CI runs `make test` through .ci/run; see DEVELOPERS.md.

# The MinIO server the tests, `fieldsync dev` and docker compose run. Keep in step with
# devenv.MinIOModule and docker-compose.yml (tests in internal/devenv check that they agree).
MINIO_MODULE := github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c

# The staticcheck `make lint` runs. Pinned, so that CI and every laptop report the same findings;
# 0.8 is the first release that reads Go 1.26 code.
STATICCHECK_VERSION := 0.8.2

GOBIN_DIR := $(or $(shell go env GOBIN),$(shell go env GOPATH)/bin)

# Tools installed with `go install` (minio) must be found by the tests.
export PATH := $(GOBIN_DIR):$(PATH)

.DEFAULT_GOAL := build
.PHONY: build docker test dev minio ts-deps fmt-check vet lint

# What `fieldsync version` prints: the nearest tag, commits since, the commit, -dirty if changed.
VERSION ?= $(shell git describe --always --dirty 2>/dev/null)

## build: compile the server to bin/fieldsync, stamped with VERSION
build:
	go build -ldflags "-X main.version=$(VERSION)" -o bin/fieldsync ./cmd/fieldsync

## docker: build the server image fieldsync:local, stamped with VERSION
docker:
	docker build --build-arg VERSION=$(VERSION) -t fieldsync:local .

## test: check formatting, vet, staticcheck, and run every test with the race detector
test: minio ts-deps fmt-check vet lint
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

## ts-deps: install the TypeScript client's packages from its lockfile (internal/tsclient runs its tests)
ts-deps: clients/typescript/node_modules/.package-lock.json

clients/typescript/node_modules/.package-lock.json: clients/typescript/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm not found: install Node.js 20 and npm (Debian: apt-get install nodejs npm)"; exit 1; }
	npm ci --prefix clients/typescript --no-audit --no-fund
	@touch $@

## fmt-check: fail if any Go file is not gofmt-formatted
fmt-check:
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt needed on:"; echo "$$unformatted"; exit 1; \
	fi

## vet: run go vet on every package
vet:
	go vet ./...

## lint: run staticcheck on every package, installing the pinned release if another (or none) is found
lint:
	@if ! "$(GOBIN_DIR)/staticcheck" -version 2>/dev/null | grep -qF '($(STATICCHECK_VERSION))'; then \
		echo "installing staticcheck $(STATICCHECK_VERSION) into $(GOBIN_DIR)"; \
		go install honnef.co/go/tools/cmd/staticcheck@v$(STATICCHECK_VERSION); \
	fi
	"$(GOBIN_DIR)/staticcheck" ./...
