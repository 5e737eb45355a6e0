-- Versioning and the change log, kept by triggers so that every write to a synced table (the sync
-- engine, the account service, the upload server, a fix made by hand in psql) is versioned, logged
-- and announced, in the writing transaction. The sync package's doc comment explains how pulls read
-- the log without gaps.

-- +goose Up

-- sync_stamp gives the row a new version. For tables with per-field versions (argument
-- 'field_versions') it also records, for every column that changed, and for every checklist item
-- that changed (as 'checklist.<key>'), the version that wrote it: the merge of an offline edit
-- compares these with the edit's base_version.
-- +goose StatementBegin
CREATE FUNCTION sync_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v        bigint := nextval('change_version_seq');
    o        jsonb;
    n        jsonb;
    k        text;
    fv       jsonb;
    item     jsonb;
    old_item jsonb;
BEGIN
    NEW.version := v;
    IF TG_NARGS > 0 AND TG_ARGV[0] = 'field_versions' THEN
        IF TG_OP = 'INSERT' THEN
            -- Absent means "as created", which every device that knows the record has seen.
            NEW.field_versions := '{}';
        ELSE
            NEW.updated_at := now();
            o := to_jsonb(OLD);
            n := to_jsonb(NEW);
            fv := OLD.field_versions;
            FOR k IN SELECT jsonb_object_keys(n) LOOP
                CONTINUE WHEN k IN ('version', 'field_versions', 'updated_at', 'created_at');
                IF o -> k IS DISTINCT FROM n -> k THEN
                    fv := fv || jsonb_build_object(k, v);
                    IF k = 'checklist' THEN
                        FOR item IN SELECT jsonb_array_elements(n -> 'checklist') LOOP
                            SELECT e INTO old_item FROM jsonb_array_elements(o -> 'checklist') AS e
                            WHERE e ->> 'key' = item ->> 'key';
                            IF old_item IS DISTINCT FROM item THEN
                                fv := fv || jsonb_build_object('checklist.' || (item ->> 'key'), v);
                            END IF;
                        END LOOP;
                    END IF;
                END IF;
            END LOOP;
            NEW.field_versions := fv;
        END IF;
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd

-- sync_log writes the change of the row (argument: its entity type) to the change log, the scope
-- moves it causes, and wakes the long-polls of its branch on every replica.
--   task: it is on its assignee's device while open or finished within the scope window;
--   claim: it is in the branch processors' queue while collecting, under review or approved, and
--          for the scope window once paid or rejected.
-- +goose StatementBegin
CREATE FUNCTION sync_log() RETURNS trigger LANGUAGE plpgsql AS $$
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
BEGIN
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

    PERFORM pg_notify('fieldsync_changes', coalesce(branch::text, ''));
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER sync_stamp_insert BEFORE INSERT ON customers FOR EACH ROW EXECUTE FUNCTION sync_stamp('field_versions');
CREATE TRIGGER sync_stamp_update BEFORE UPDATE ON customers FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION sync_stamp('field_versions');
CREATE TRIGGER sync_log_insert AFTER INSERT ON customers FOR EACH ROW EXECUTE FUNCTION sync_log('customer');
CREATE TRIGGER sync_log_update AFTER UPDATE ON customers FOR EACH ROW WHEN (OLD.version <> NEW.version) EXECUTE FUNCTION sync_log('customer');

CREATE TRIGGER sync_stamp_insert BEFORE INSERT ON claims FOR EACH ROW EXECUTE FUNCTION sync_stamp('field_versions');
CREATE TRIGGER sync_stamp_update BEFORE UPDATE ON claims FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION sync_stamp('field_versions');
CREATE TRIGGER sync_log_insert AFTER INSERT ON claims FOR EACH ROW EXECUTE FUNCTION sync_log('claim');
CREATE TRIGGER sync_log_update AFTER UPDATE ON claims FOR EACH ROW WHEN (OLD.version <> NEW.version) EXECUTE FUNCTION sync_log('claim');

CREATE TRIGGER sync_stamp_insert BEFORE INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION sync_stamp('field_versions');
CREATE TRIGGER sync_stamp_update BEFORE UPDATE ON tasks FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION sync_stamp('field_versions');
CREATE TRIGGER sync_log_insert AFTER INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION sync_log('task');
CREATE TRIGGER sync_log_update AFTER UPDATE ON tasks FOR EACH ROW WHEN (OLD.version <> NEW.version) EXECUTE FUNCTION sync_log('task');

CREATE TRIGGER sync_stamp_insert BEFORE INSERT ON documents FOR EACH ROW EXECUTE FUNCTION sync_stamp('field_versions');
CREATE TRIGGER sync_stamp_update BEFORE UPDATE ON documents FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION sync_stamp('field_versions');
CREATE TRIGGER sync_log_insert AFTER INSERT ON documents FOR EACH ROW EXECUTE FUNCTION sync_log('document');
CREATE TRIGGER sync_log_update AFTER UPDATE ON documents FOR EACH ROW WHEN (OLD.version <> NEW.version) EXECUTE FUNCTION sync_log('document');

CREATE TRIGGER sync_stamp_insert BEFORE INSERT ON task_notes FOR EACH ROW EXECUTE FUNCTION sync_stamp();
CREATE TRIGGER sync_log_insert AFTER INSERT ON task_notes FOR EACH ROW EXECUTE FUNCTION sync_log('task_note');

CREATE TRIGGER sync_stamp_insert BEFORE INSERT ON notifications FOR EACH ROW EXECUTE FUNCTION sync_stamp();
CREATE TRIGGER sync_stamp_update BEFORE UPDATE ON notifications FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION sync_stamp();
CREATE TRIGGER sync_log_insert AFTER INSERT ON notifications FOR EACH ROW EXECUTE FUNCTION sync_log('notification');
CREATE TRIGGER sync_log_update AFTER UPDATE ON notifications FOR EACH ROW WHEN (OLD.version <> NEW.version) EXECUTE FUNCTION sync_log('notification');

-- Users sync to their branch (names for the app); only what a device shows is worth a change.
CREATE TRIGGER sync_stamp_insert BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION sync_stamp();
CREATE TRIGGER sync_stamp_update BEFORE UPDATE ON users FOR EACH ROW
    WHEN ((OLD.name, OLD.role, OLD.rep_kind, OLD.on_duty, OLD.disabled_at IS NULL, OLD.branch_id)
          IS DISTINCT FROM (NEW.name, NEW.role, NEW.rep_kind, NEW.on_duty, NEW.disabled_at IS NULL, NEW.branch_id))
    EXECUTE FUNCTION sync_stamp();
CREATE TRIGGER sync_log_insert AFTER INSERT ON users FOR EACH ROW EXECUTE FUNCTION sync_log('user');
CREATE TRIGGER sync_log_update AFTER UPDATE ON users FOR EACH ROW WHEN (OLD.version <> NEW.version) EXECUTE FUNCTION sync_log('user');

-- +goose Down
DROP TRIGGER sync_stamp_insert ON customers; DROP TRIGGER sync_stamp_update ON customers;
DROP TRIGGER sync_log_insert ON customers; DROP TRIGGER sync_log_update ON customers;
DROP TRIGGER sync_stamp_insert ON claims; DROP TRIGGER sync_stamp_update ON claims;
DROP TRIGGER sync_log_insert ON claims; DROP TRIGGER sync_log_update ON claims;
DROP TRIGGER sync_stamp_insert ON tasks; DROP TRIGGER sync_stamp_update ON tasks;
DROP TRIGGER sync_log_insert ON tasks; DROP TRIGGER sync_log_update ON tasks;
DROP TRIGGER sync_stamp_insert ON documents; DROP TRIGGER sync_stamp_update ON documents;
DROP TRIGGER sync_log_insert ON documents; DROP TRIGGER sync_log_update ON documents;
DROP TRIGGER sync_stamp_insert ON task_notes; DROP TRIGGER sync_log_insert ON task_notes;
DROP TRIGGER sync_stamp_insert ON notifications; DROP TRIGGER sync_stamp_update ON notifications;
DROP TRIGGER sync_log_insert ON notifications; DROP TRIGGER sync_log_update ON notifications;
DROP TRIGGER sync_stamp_insert ON users; DROP TRIGGER sync_stamp_update ON users;
DROP TRIGGER sync_log_insert ON users; DROP TRIGGER sync_log_update ON users;
DROP FUNCTION sync_log(), sync_stamp();
