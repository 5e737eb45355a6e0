-- Service levels (issue 14). Each task kind has targets: accepted within accept_within of the
-- claim's report (hospital visits only; NULL: no accept target), and done within done_within of
-- the report unless the task has a due date of its own. The rows with no branch are the defaults
-- (README, "Service levels"); a branch's own row overrides them for that kind.
--
-- The history the cycle times are measured on is kept here by the database's clock on each
-- transition, never a device's: when a task was first accepted, when its claim went to review
-- (documents complete) and when it was decided. What the target check did is recorded on the task
-- (redispatched_at, reminded_at) so that it is done once, whichever replica runs it.

-- +goose Up
CREATE TABLE task_targets (
    branch_id     uuid REFERENCES branches (id),
    kind          text NOT NULL CHECK (kind IN ('hospital_visit', 'document_collection', 'follow_up')),
    accept_within interval CHECK (accept_within > interval '0'),
    done_within   interval NOT NULL CHECK (done_within > interval '0')
);
CREATE UNIQUE INDEX task_targets_key ON task_targets (coalesce(branch_id, '00000000-0000-0000-0000-000000000000'), kind);
INSERT INTO task_targets (branch_id, kind, accept_within, done_within) VALUES
    (NULL, 'hospital_visit', interval '30 minutes', interval '4 hours'),
    (NULL, 'document_collection', NULL, interval '2 days'),
    (NULL, 'follow_up', NULL, interval '7 days');

ALTER TABLE tasks
    ADD COLUMN accepted_at     timestamptz,
    ADD COLUMN redispatched_at timestamptz,
    ADD COLUMN reminded_at     timestamptz;
CREATE INDEX tasks_unfinished_targets_idx ON tasks (created_at)
    WHERE finished_at IS NULL AND deleted_at IS NULL AND (redispatched_at IS NULL OR reminded_at IS NULL);

ALTER TABLE claims
    ADD COLUMN review_at  timestamptz,
    ADD COLUMN decided_at timestamptz;

-- +goose StatementBegin
CREATE FUNCTION task_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.accepted_at IS NULL AND NEW.status IN ('accepted', 'in_progress', 'completed') THEN
        NEW.accepted_at := fieldsync_now();
    END IF;
    RETURN NEW;
END $$;
-- +goose StatementEnd
CREATE TRIGGER task_history BEFORE INSERT OR UPDATE OF status ON tasks FOR EACH ROW EXECUTE FUNCTION task_history();

-- +goose StatementBegin
CREATE FUNCTION claim_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.review_at IS NULL AND NEW.status IN ('under_review', 'approved', 'paid') THEN
        NEW.review_at := fieldsync_now();
    END IF;
    IF NEW.decided_at IS NULL AND NEW.status IN ('approved', 'rejected', 'paid') THEN
        NEW.decided_at := fieldsync_now();
    END IF;
    RETURN NEW;
END $$;
-- +goose StatementEnd
CREATE TRIGGER claim_history BEFORE INSERT OR UPDATE OF status ON claims FOR EACH ROW EXECUTE FUNCTION claim_history();

-- The check's bookkeeping (reminded_at, redispatched_at) is the server's alone and reaches no
-- device: a write of it alone is no change of the record, so it takes no new version, logs no
-- change and wakes nobody.
DROP TRIGGER sync_stamp_update ON tasks;
CREATE TRIGGER sync_stamp_update BEFORE UPDATE ON tasks FOR EACH ROW
    WHEN ((to_jsonb(OLD) - '{reminded_at,redispatched_at}'::text[]) IS DISTINCT FROM (to_jsonb(NEW) - '{reminded_at,redispatched_at}'::text[]))
    EXECUTE FUNCTION sync_stamp('field_versions');

ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN ('claim_reported',
    'task_assigned', 'task_unassigned', 'task_completed', 'task_cannot_complete', 'document_rejected',
    'claim_paid', 'task_redispatched', 'task_overdue'));

-- +goose Down
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN ('claim_reported',
    'task_assigned', 'task_unassigned', 'task_completed', 'task_cannot_complete', 'document_rejected',
    'claim_paid'));
DROP TRIGGER sync_stamp_update ON tasks;
CREATE TRIGGER sync_stamp_update BEFORE UPDATE ON tasks FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION sync_stamp('field_versions');
DROP TRIGGER claim_history ON claims;
DROP FUNCTION claim_history();
DROP TRIGGER task_history ON tasks;
DROP FUNCTION task_history();
ALTER TABLE claims DROP COLUMN review_at, DROP COLUMN decided_at;
ALTER TABLE tasks DROP COLUMN accepted_at, DROP COLUMN redispatched_at, DROP COLUMN reminded_at;
DROP TABLE task_targets;
