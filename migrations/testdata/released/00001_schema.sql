-- The v1 domain of ../shared/BRIEF.md: branches, people and their devices and sessions, the claims
-- work (customers, claims, tasks, notes, documents), the in-app inbox, and the bookkeeping the sync
-- engine needs (change log, applied mutations, conflicts).
--
-- Conventions:
--   * ids are UUIDs; clients make the ids of what they create, so there are no defaults.
--   * every synced record has `version`: the change-log version of its last change (the sync engine
--     sets it), and `field_versions`: for each field, the version that last wrote it, so an offline
--     edit against an old base_version can be merged field by field.
--   * statuses and roles are checked here, not only in Go.
--   * deleted synced records stay as tombstones (`deleted_at`) so a delete reaches every device.

-- +goose Up

CREATE TABLE branches (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX branches_name_key ON branches (lower(name));

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    branch_id      uuid REFERENCES branches (id),
    role           text NOT NULL CHECK (role IN ('rep', 'processor', 'manager', 'admin', 'integration')),
    -- Reps are agents (they look after customers) or hospital reps (they visit hospitalised ones).
    rep_kind       text CHECK (rep_kind IN ('agent', 'hospital')),
    on_duty        boolean NOT NULL DEFAULT true,
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    login          text NOT NULL CHECK (length(login) BETWEEN 1 AND 100),
    password_hash  text NOT NULL,
    disabled_at    timestamptz,
    version        bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (role IN ('admin', 'integration') OR branch_id IS NOT NULL),
    CHECK ((role = 'rep') = (rep_kind IS NOT NULL))
);
CREATE UNIQUE INDEX users_login_key ON users (lower(login));
CREATE INDEX users_branch_idx ON users (branch_id, role);

-- One row per installed app. The id is made by the app at install time.
CREATE TABLE devices (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (id),
    platform       text NOT NULL CHECK (platform IN ('android', 'ios', 'web')),
    name           text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    app_version    text NOT NULL DEFAULT '' CHECK (length(app_version) <= 50),
    push_token     text CHECK (length(push_token) BETWEEN 1 AND 4096),
    push_platform  text CHECK (push_platform IN ('android', 'ios', 'web')),
    push_token_at  timestamptz,
    revoked_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((push_token IS NULL) = (push_platform IS NULL))
);
CREATE INDEX devices_user_idx ON devices (user_id);
-- A push token names one app install; when it moves to another device row it leaves the old one.
CREATE UNIQUE INDEX devices_push_token_key ON devices (push_token) WHERE push_token IS NOT NULL;

-- A login on a device. Revoking it ends every refresh token of it and, because access tokens are
-- checked against it on every request, every access token too.
CREATE TABLE sessions (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (id),
    device_id      uuid NOT NULL REFERENCES devices (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    refreshed_at   timestamptz,
    revoked_at     timestamptz,
    revoke_reason  text CHECK (revoke_reason IN ('logout', 'refresh_token_reused', 'replaced',
                                                 'user_disabled', 'password_reset', 'device_revoked')),
    CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL))
);
CREATE INDEX sessions_device_idx ON sessions (device_id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_user_idx ON sessions (user_id) WHERE revoked_at IS NULL;

-- Refresh tokens are random and stored only as their SHA-256. A used one is kept (used_at set) so
-- that presenting it again is recognised as reuse and revokes the session.
CREATE TABLE refresh_tokens (
    token_hash  bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    session_id  uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);

-- Failed logins counted per key ("login:<name>" or "addr:<ip>") in a fixed window, in the database
-- so that every replica sees the same count.
CREATE TABLE login_throttle (
    key               text PRIMARY KEY CHECK (length(key) <= 300),
    window_started_at timestamptz NOT NULL,
    failures          integer NOT NULL CHECK (failures >= 0)
);

CREATE TABLE customers (
    id              uuid PRIMARY KEY,
    branch_id       uuid NOT NULL REFERENCES branches (id),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    phone           text NOT NULL DEFAULT '' CHECK (length(phone) <= 50),
    address         text NOT NULL DEFAULT '' CHECK (length(address) <= 500),
    agent_id        uuid REFERENCES users (id),
    version         bigint NOT NULL DEFAULT 0,
    field_versions  jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);
CREATE INDEX customers_branch_idx ON customers (branch_id, id);
CREATE INDEX customers_agent_idx ON customers (agent_id);

-- Human claim numbers (CLM-2026-000123) come from one sequence: unique and never reused.
CREATE SEQUENCE claim_number_seq;

CREATE TABLE claims (
    id              uuid PRIMARY KEY,
    number          text NOT NULL UNIQUE CHECK (length(number) <= 40),
    branch_id       uuid NOT NULL REFERENCES branches (id),
    customer_id     uuid NOT NULL REFERENCES customers (id),
    policy_number   text NOT NULL CHECK (length(policy_number) BETWEEN 1 AND 100),
    kind            text NOT NULL CHECK (kind IN ('hospitalisation', 'accident', 'illness', 'death', 'other')),
    description     text NOT NULL DEFAULT '' CHECK (length(description) <= 10000),
    hospitalised    boolean NOT NULL DEFAULT false,
    hospital        text NOT NULL DEFAULT '' CHECK (length(hospital) <= 300),
    status          text NOT NULL CHECK (status IN ('reported', 'collecting', 'under_review',
                                                    'approved', 'paid', 'rejected')),
    -- Money in minor units (cents) of the branch's currency: no floating point for amounts.
    amount_claimed  bigint CHECK (amount_claimed >= 0),
    amount_paid     bigint CHECK (amount_paid >= 0),
    paid_at         timestamptz,
    -- When the claim reached paid or rejected: the processors' window of settled claims counts from here.
    settled_at      timestamptz,
    premium         bigint CHECK (premium >= 0),
    processor_id    uuid REFERENCES users (id),
    decision_note   text NOT NULL DEFAULT '' CHECK (length(decision_note) <= 2000),
    version         bigint NOT NULL DEFAULT 0,
    field_versions  jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz,
    CHECK ((status = 'paid') = (paid_at IS NOT NULL AND amount_paid IS NOT NULL)),
    CHECK ((status IN ('paid', 'rejected')) = (settled_at IS NOT NULL))
);
CREATE INDEX claims_branch_status_idx ON claims (branch_id, status);
CREATE INDEX claims_branch_id_idx ON claims (branch_id, id);
CREATE INDEX claims_branch_created_idx ON claims (branch_id, created_at DESC, id DESC);
CREATE INDEX claims_customer_idx ON claims (customer_id);

CREATE TABLE tasks (
    id                uuid PRIMARY KEY,
    claim_id          uuid NOT NULL REFERENCES claims (id),
    branch_id         uuid NOT NULL REFERENCES branches (id),
    assignee_id       uuid REFERENCES users (id),
    kind              text NOT NULL CHECK (kind IN ('hospital_visit', 'document_collection', 'follow_up')),
    title             text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    instructions      text NOT NULL DEFAULT '' CHECK (length(instructions) <= 10000),
    due_at            timestamptz,
    location_address  text NOT NULL DEFAULT '' CHECK (length(location_address) <= 500),
    location_lat      double precision CHECK (location_lat BETWEEN -90 AND 90),
    location_lng      double precision CHECK (location_lng BETWEEN -180 AND 180),
    -- [{"key": "id_card", "label": "Photograph the ID card", "done": false}, ...]
    checklist         jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(checklist) = 'array'),
    completion_note   text NOT NULL DEFAULT '' CHECK (length(completion_note) <= 10000),
    cannot_complete_reason text NOT NULL DEFAULT '' CHECK (length(cannot_complete_reason) <= 2000),
    status            text NOT NULL CHECK (status IN ('open', 'assigned', 'accepted', 'in_progress',
                                                      'completed', 'cannot_complete', 'cancelled')),
    -- When the task reached an end (completed, cannot_complete, cancelled): the finished-task window
    -- of a rep's scope counts from here.
    finished_at       timestamptz,
    version           bigint NOT NULL DEFAULT 0,
    field_versions    jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz,
    CHECK ((status IN ('open', 'cancelled')) OR assignee_id IS NOT NULL),
    CHECK ((status IN ('completed', 'cannot_complete', 'cancelled')) = (finished_at IS NOT NULL))
);
CREATE INDEX tasks_assignee_idx ON tasks (assignee_id, status);
CREATE INDEX tasks_claim_idx ON tasks (claim_id);
CREATE INDEX tasks_branch_idx ON tasks (branch_id, status);
-- (branch_id, id): a manager's snapshot walks the branch in id order, page by page.
CREATE INDEX tasks_branch_id_idx ON tasks (branch_id, id);
CREATE INDEX tasks_branch_created_idx ON tasks (branch_id, created_at DESC, id DESC);

-- Append-only: never updated, so never in conflict.
CREATE TABLE task_notes (
    id          uuid PRIMARY KEY,
    task_id     uuid NOT NULL REFERENCES tasks (id),
    branch_id   uuid NOT NULL REFERENCES branches (id),
    author_id   uuid NOT NULL REFERENCES users (id),
    body        text NOT NULL CHECK (length(body) BETWEEN 1 AND 10000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    version     bigint NOT NULL DEFAULT 0
);
CREATE INDEX task_notes_task_idx ON task_notes (task_id);
CREATE INDEX task_notes_branch_id_idx ON task_notes (branch_id, id);

CREATE TABLE documents (
    id              uuid PRIMARY KEY,
    claim_id        uuid NOT NULL REFERENCES claims (id),
    branch_id       uuid NOT NULL REFERENCES branches (id),
    task_id         uuid REFERENCES tasks (id),
    kind            text NOT NULL CHECK (kind IN ('id_card', 'medical_record', 'invoice',
                                                  'discharge_summary', 'photo', 'other')),
    file_name       text NOT NULL DEFAULT '' CHECK (length(file_name) <= 255),
    content_type    text NOT NULL DEFAULT '' CHECK (length(content_type) <= 100),
    size_bytes      bigint CHECK (size_bytes >= 0),
    sha256          text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    width           integer CHECK (width > 0),
    height          integer CHECK (height > 0),
    captured_at     timestamptz,
    gps_lat         double precision CHECK (gps_lat BETWEEN -90 AND 90),
    gps_lng         double precision CHECK (gps_lng BETWEEN -180 AND 180),
    -- Object keys are made by the server, never taken from the client.
    object_key      text CHECK (length(object_key) <= 500),
    thumbnail_key   text CHECK (length(thumbnail_key) <= 500),
    status          text NOT NULL CHECK (status IN ('pending_upload', 'uploaded', 'approved', 'rejected')),
    review_note     text NOT NULL DEFAULT '' CHECK (length(review_note) <= 2000),
    reviewer_id     uuid REFERENCES users (id),
    reviewed_at     timestamptz,
    uploader_id     uuid NOT NULL REFERENCES users (id),
    uploaded_at     timestamptz,
    version         bigint NOT NULL DEFAULT 0,
    field_versions  jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz,
    CHECK (status = 'pending_upload' OR object_key IS NOT NULL),
    CHECK ((status IN ('approved', 'rejected')) = (reviewed_at IS NOT NULL))
);
CREATE INDEX documents_claim_idx ON documents (claim_id);
CREATE INDEX documents_task_idx ON documents (task_id);
CREATE INDEX documents_branch_id_idx ON documents (branch_id, id);

CREATE TABLE notifications (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id),
    branch_id    uuid REFERENCES branches (id),
    kind         text NOT NULL CHECK (kind IN ('claim_reported', 'task_assigned', 'task_unassigned',
                                               'task_completed', 'task_cannot_complete',
                                               'document_rejected', 'claim_paid')),
    title        text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    body         text NOT NULL CHECK (length(body) <= 2000),
    entity_type  text CHECK (entity_type IN ('task', 'claim', 'document', 'customer')),
    entity_id    uuid,
    data         jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    read_at      timestamptz,
    version      bigint NOT NULL DEFAULT 0,
    CHECK ((entity_type IS NULL) = (entity_id IS NULL))
);
CREATE INDEX notifications_user_idx ON notifications (user_id, created_at);

-- The change log, written by the triggers of 00002_sync.sql on every write to a synced table, so no
-- write path can forget it. `version` orders the changes of one record; `xid` is the writing
-- transaction, and pulls are ordered by (xid, version) and served only below the oldest running
-- transaction (see the sync package). Besides record changes (upsert, delete) it holds scope moves:
-- `enter` and `leave` of a record for one user (target_user_id) or for a role of the branch
-- (target_role), when a task is reassigned or a claim enters or leaves the review queue.
CREATE SEQUENCE change_version_seq;

CREATE TABLE changes (
    version         bigint PRIMARY KEY,
    xid             xid8 NOT NULL DEFAULT pg_current_xact_id(),
    branch_id       uuid REFERENCES branches (id),
    entity_type     text NOT NULL CHECK (entity_type IN ('task', 'task_note', 'claim', 'customer',
                                                         'document', 'notification', 'user')),
    entity_id       uuid NOT NULL,
    op              text NOT NULL CHECK (op IN ('upsert', 'delete', 'enter', 'leave')),
    target_user_id  uuid,
    target_role     text CHECK (target_role IN ('rep', 'processor', 'manager')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((op IN ('enter', 'leave')) = (target_user_id IS NOT NULL OR target_role IS NOT NULL))
);
CREATE INDEX changes_branch_xid_idx ON changes (branch_id, xid, version);
CREATE INDEX changes_created_idx ON changes (created_at);

-- Settings and bookkeeping of the sync engine: one row.
CREATE TABLE sync_settings (
    id                 boolean PRIMARY KEY DEFAULT true CHECK (id),
    -- How long finished tasks stay on reps' devices and settled claims in processors' queues.
    scope_window       interval NOT NULL DEFAULT '30 days',
    -- The change log was pruned up to and including this transaction: a cursor at or before it is
    -- expired (410), since changes it still needs may be gone.
    pruned_through_xid xid8 NOT NULL DEFAULT '0',
    -- The window sweep has emitted the scope moves of every expiry up to this time.
    window_swept_until timestamptz NOT NULL DEFAULT now()
);
INSERT INTO sync_settings DEFAULT VALUES;

-- Every mutation a device pushed, with the result it got, so a replayed push returns the same
-- results and changes nothing. request_hash tells a replay from the same id reused for other content.
CREATE TABLE applied_mutations (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id),
    device_id     uuid REFERENCES devices (id),
    request_hash  bytea NOT NULL CHECK (length(request_hash) = 32),
    result        jsonb NOT NULL,
    applied_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX applied_mutations_applied_at_idx ON applied_mutations (applied_at);

-- Every conflict the engine resolved: both values, the rule, who and when. Managers list them.
CREATE TABLE conflicts (
    id            uuid PRIMARY KEY,
    branch_id     uuid NOT NULL REFERENCES branches (id),
    entity_type   text NOT NULL CHECK (entity_type IN ('task', 'task_note', 'claim', 'customer',
                                                       'document', 'notification', 'user')),
    entity_id     uuid NOT NULL,
    field         text NOT NULL CHECK (length(field) <= 100),
    yours         jsonb,
    theirs        jsonb,
    kept          jsonb,
    rule          text NOT NULL CHECK (rule IN ('last_write_wins', 'status_state_machine', 'checklist_item',
                                                'first_decision_wins', 'delete_wins', 'update_wins')),
    mutation_id   uuid,
    -- Who wrote the side that met the conflict; NULL for the server's own writes.
    user_id       uuid REFERENCES users (id),
    device_id     uuid REFERENCES devices (id),
    -- When the device says it made the change: for people reading the conflict, never for ordering.
    client_time   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conflicts_branch_idx ON conflicts (branch_id, created_at DESC);

-- +goose Down
-- Migrations are append-only and not rolled back in production; Down exists for local experiments.
DROP TABLE conflicts, applied_mutations, sync_settings, changes, notifications, documents, task_notes, tasks,
    claims, customers, login_throttle, refresh_tokens, sessions, devices, users, branches;
DROP SEQUENCE claim_number_seq, change_version_seq;
