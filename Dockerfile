# fieldsync server image.
#
#   make docker        (docker build --build-arg VERSION=$(git describe --always --dirty) -t fieldsync:local .)
#   docker run --rm fieldsync:local help
#
# Or run the whole stack (PostgreSQL, MinIO, server): docker compose up --build; with demo data:
# docker compose --profile demo up demo
#
# The image runs `fieldsync serve` as the distroless nonroot user (uid/gid 65532) and is configured
# entirely by environment variables (DATABASE_URL, FIELDSYNC_*; see cmd/fieldsync/config.go).
# Other subcommands run the same way: docker run --rm -e DATABASE_URL=... fieldsync:local migrate up

# The Go release go.mod's go line names, exactly (a test in internal/devenv checks that they
# agree). The image's toolchain builds; GOTOOLCHAIN=local makes a mismatch fail the build at once
# instead of downloading another toolchain during it.
FROM golang:1.26.8-bookworm AS build
ENV GOTOOLCHAIN=local
WORKDIR /src

# Dependencies first, in their own layer, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download

COPY . .
# What `fieldsync version` prints. The build context has no .git (see .dockerignore), so the
# version comes from outside: make docker passes `git describe --always --dirty`.
ARG VERSION=devel
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/fieldsync ./cmd/fieldsync

# The directory for the JWT signing key (FIELDSYNC_JWT_KEY_FILE), owned by nonroot. When an empty
# named volume is mounted on it, Docker copies this ownership into the volume, so serve with
# FIELDSYNC_JWT_GENERATE_KEY=true can write the key on first start.
RUN mkdir -p /out/data && chown 65532:65532 /out/data && chmod 0700 /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/fieldsync /usr/local/bin/fieldsync
COPY --from=build --chown=65532:65532 /out/data /var/lib/fieldsync
USER nonroot
ENV FIELDSYNC_ADDR=:8080
EXPOSE 8080
# Ready means the database and the object store answer (GET /readyz). The image has no shell or
# curl, so the binary asks itself, at FIELDSYNC_ADDR on loopback, giving up after 5 s. A one-shot
# command (migrate up, demo) ends before the first check.
HEALTHCHECK --interval=10s --timeout=10s --start-period=30s --retries=3 CMD ["/usr/local/bin/fieldsync", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/fieldsync"]
CMD ["serve"]
