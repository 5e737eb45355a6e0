-- The edits once made to 00001 and 00002 after they landed, as a migration of their own.
--
-- goose applies a migration once and remembers only its number, so those edits reached fresh
-- databases only: one migrated before them kept the old sync_log (every change woke the whole
-- branch, and a notification written without a branch went to no branch's pull) and lacked the
-- paging indexes. 00001 and 00002 are restored to the bytes they had when 00002 first landed
-- (0530f41), and what was edited into them afterwards is here:
--   00001, in a6ad0b5 and 899577f: customers_branch_idx on (branch_id, id) instead of (branch_id),
--          and the (branch_id, id) and (branch_id, created_at DESC, id DESC) indexes the branch
--          snapshot and the screens' lists page by;
--   00002, in e5a65cb and 865de27: sync_log sends a notification's change through its user's
--          branch, and wakes only the long-polls a change may concern.
-- Why 0530f41 and not 00001's first commit (3bc5695): 00002 landed in 0530f41 together with an
-- edit of 00001 it needs (change_version_seq, sync_settings, the changes table's scope moves,
-- claims.settled_at, the branch_id of task_notes, documents and notifications). 00001 as of
-- 3bc5695 cannot be followed by any 00002 that ever existed, so no working database has it.
--
-- Two kinds of database run this, and both must end with the same schema: one migrated with the
-- restored 00001 and 00002 (fresh, or from before the edits), and one migrated with the edited ones
-- (every deployment of the last release, where all of this is already there). So every statement
-- holds whatever it finds. TestRestoredMigrationsReachTodaysSchema checks that both end equal, and
-- equal to what the edited files made.

-- +goose Up

-- Rebuilt only where it still has its first definition, (branch_id): no needless rebuild of a
-- released deployment's index.
-- +goose StatementBegin
DO $$
BEGIN
    IF (SELECT indnatts FROM pg_index WHERE indexrelid = to_regclass('customers_branch_idx')) IS DISTINCT FROM 2 THEN
        DROP INDEX IF EXISTS customers_branch_idx;
        CREATE INDEX customers_branch_idx ON customers (branch_id, id);
    END IF;
END
$$;
-- +goose StatementEnd
CREATE INDEX IF NOT EXISTS claims_branch_id_idx ON claims (branch_id, id);
CREATE INDEX IF NOT EXISTS claims_branch_created_idx ON claims (branch_id, created_at DESC, id DESC);
-- (branch_id, id): a manager's snapshot walks the branch in id order, page by page.
CREATE INDEX IF NOT EXISTS tasks_branch_id_idx ON tasks (branch_id, id);
CREATE INDEX IF NOT EXISTS tasks_branch_created_idx ON tasks (branch_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS task_notes_branch_id_idx ON task_notes (branch_id, id);
CREATE INDEX IF NOT EXISTS documents_branch_id_idx ON documents (branch_id, id);

-- sync_log as the released 00002 has it, word for word; its triggers call it by name, so they need
-- no change.
--
-- sync_log writes the change of the row (argument: its entity type) to the change log, the scope
-- moves it causes, and wakes the long-polls of its branch on every replica.
--   task: it is on its assignee's device while open or finished within the scope window;
--   claim: it is in the branch processors' queue while collecting, under review or approved, and
--          for the scope window once paid or rejected.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION sync_log() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    typ       text := TG_ARGV[0];
    n         jsonb := to_jsonb(NEW);
    op        text := CASE WHEN n ->> 'deleted_at' IS NOT NULL THEN 'delete' ELSE 'upsert' END;
    branch    uuid := (n ->> 'branch_id')::uuid;
    win       interval;
    was_user  uuid;
    is_user   uuid;
    was_in    boolean := false;
    is_in     boolean := false;
    audience  text;
BEGIN
    IF branch IS NULL AND typ = 'notification' THEN
        -- A notification syncs through its user's branch, whoever wrote it.
        SELECT u.branch_id INTO branch FROM users u WHERE u.id = NEW.user_id;
    END IF;
    INSERT INTO changes (version, branch_id, entity_type, entity_id, op)
    VALUES (NEW.version, branch, typ, NEW.id, op);

    IF typ = 'task' THEN
        SELECT scope_window INTO win FROM sync_settings;
        IF TG_OP = 'UPDATE' AND OLD.deleted_at IS NULL AND (OLD.finished_at IS NULL OR OLD.finished_at > now() - win) THEN
            was_user := OLD.assignee_id;
        END IF;
        IF NEW.deleted_at IS NULL AND (NEW.finished_at IS NULL OR NEW.finished_at > now() - win) THEN
            is_user := NEW.assignee_id;
        END IF;
        IF was_user IS DISTINCT FROM is_user THEN
            IF was_user IS NOT NULL THEN
                INSERT INTO changes (version, branch_id, entity_type, entity_id, op, target_user_id)
                VALUES (nextval('change_version_seq'), branch, 'task', NEW.id, 'leave', was_user);
            END IF;
            IF is_user IS NOT NULL THEN
                INSERT INTO changes (version, branch_id, entity_type, entity_id, op, target_user_id)
                VALUES (nextval('change_version_seq'), branch, 'task', NEW.id, 'enter', is_user);
            END IF;
        END IF;
    ELSIF typ = 'claim' THEN
        SELECT scope_window INTO win FROM sync_settings;
        IF TG_OP = 'UPDATE' THEN
            was_in := OLD.deleted_at IS NULL AND (OLD.status IN ('collecting', 'under_review', 'approved')
                      OR (OLD.status IN ('paid', 'rejected') AND OLD.settled_at > now() - win));
        END IF;
        is_in := NEW.deleted_at IS NULL AND (NEW.status IN ('collecting', 'under_review', 'approved')
                 OR (NEW.status IN ('paid', 'rejected') AND NEW.settled_at > now() - win));
        IF was_in <> is_in THEN
            INSERT INTO changes (version, branch_id, entity_type, entity_id, op, target_role)
            VALUES (nextval('change_version_seq'), branch, 'claim', NEW.id,
                    CASE WHEN is_in THEN 'enter' ELSE 'leave' END, 'processor');
        END IF;
    END IF;

    -- Wake only the long-polls and streams this change may concern: "branch;audience", where the
    -- audience lists user ids and m (managers), p (processors), r (every rep of the branch). Reps
    -- are the many, so for them it is worked out: the assignees a task, note, claim, document or
    -- customer reaches. A list too long for a notification falls back to the whole branch.
    IF typ = 'notification' THEN
        audience := NEW.user_id::text;
    ELSIF typ = 'user' THEN
        audience := 'm,p,r';
    ELSIF typ = 'task' THEN
        audience := concat_ws(',', 'm,p', NEW.assignee_id::text, CASE WHEN TG_OP = 'UPDATE' THEN OLD.assignee_id::text END);
    ELSIF typ = 'task_note' THEN
        audience := concat_ws(',', 'm,p', (SELECT x.assignee_id::text FROM tasks x WHERE x.id = NEW.task_id));
    ELSIF typ = 'claim' THEN
        audience := concat_ws(',', 'm,p', (SELECT string_agg(DISTINCT x.assignee_id::text, ',') FROM tasks x
                                          WHERE x.claim_id = NEW.id AND x.assignee_id IS NOT NULL));
    ELSIF typ = 'document' THEN
        audience := concat_ws(',', 'm,p', (SELECT string_agg(DISTINCT x.assignee_id::text, ',') FROM tasks x
                                          WHERE x.claim_id = NEW.claim_id AND x.assignee_id IS NOT NULL));
    ELSIF typ = 'customer' THEN
        audience := concat_ws(',', 'm,p', (SELECT string_agg(DISTINCT x.assignee_id::text, ',') FROM claims c
                                          JOIN tasks x ON x.claim_id = c.id
                                          WHERE c.customer_id = NEW.id AND x.assignee_id IS NOT NULL));
    END IF;
    IF audience IS NULL OR length(audience) > 7000 THEN
        PERFORM pg_notify('fieldsync_changes', coalesce(branch::text, ''));
    ELSE
        PERFORM pg_notify('fieldsync_changes', coalesce(branch::text, '') || ';' || audience);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- Nothing: the schema before this migration was either the same (the edited files) or one that
-- lacked these indexes and this sync_log, which no code still runs against.
