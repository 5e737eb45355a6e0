-- Resumable uploads (tus) of documents' bytes. An upload's whole state is this row and the object
-- store: the S3 multipart upload it writes to, the parts stored so far, the trailing bytes too few
-- for a part (kept as a small object of their own), and the SHA-256 state of every byte received.
-- So any replica can take up any upload, and a restart loses nothing.

-- +goose Up
CREATE TABLE uploads (
    id            uuid PRIMARY KEY,
    document_id   uuid NOT NULL REFERENCES documents (id),
    -- The document's uploader: only they may write, read or end the upload.
    user_id       uuid NOT NULL REFERENCES users (id),
    length        bigint NOT NULL CHECK (length > 0),
    upload_offset bigint NOT NULL DEFAULT 0,
    -- receiving: bytes are coming; received: every byte is stored, the document is being updated;
    -- completed: the document has the object (kept a while so a client's retry sees it done).
    state         text NOT NULL DEFAULT 'receiving' CHECK (state IN ('receiving', 'received', 'completed')),
    -- The key the multipart upload completes to; made by the server, never from client input.
    object_key    text NOT NULL CHECK (object_key <> '' AND length(object_key) <= 500),
    multipart_id  text NOT NULL CHECK (multipart_id <> ''),
    -- Parts stored, in order: [{"n": part number, "etag": ..., "size": bytes}].
    parts         jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(parts) = 'array'),
    -- Part numbers are never reused: each write reserves its own, so a superseded request that
    -- wakes late cannot overwrite a part another request stored.
    next_part     integer NOT NULL DEFAULT 1 CHECK (next_part BETWEEN 1 AND 10001),
    tail_key      text CHECK (length(tail_key) <= 500),
    tail_size     bigint NOT NULL DEFAULT 0 CHECK (tail_size >= 0),
    -- crypto/sha256's marshalled state over bytes [0, upload_offset).
    hash_state    bytea NOT NULL,
    -- The first bytes of the file, for sniffing its real type.
    head          bytea NOT NULL DEFAULT '\x' CHECK (length(head) <= 4096),
    metadata      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    -- The request now writing (or finishing) the upload; a newer request takes it over.
    claim         uuid,
    expires_at    timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    CHECK (upload_offset BETWEEN 0 AND length),
    CHECK ((state = 'receiving') = (upload_offset < length)),
    CHECK ((state = 'completed') = (completed_at IS NOT NULL)),
    CHECK ((tail_size = 0) = (tail_key IS NULL)),
    CHECK (tail_size <= upload_offset)
);
CREATE INDEX uploads_document_idx ON uploads (document_id);
CREATE INDEX uploads_expiry_idx ON uploads (expires_at);
CREATE INDEX uploads_received_idx ON uploads (updated_at) WHERE state = 'received';

-- +goose Down
DROP TABLE uploads;
