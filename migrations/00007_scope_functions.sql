-- Who holds what, written once. A role's scope grows from its roots: a rep holds the tasks on
-- their device, processors the claims of their branch's review queue. These functions say when a
-- root is held; the triggers log its enter and leave with them (sync_log below), the window sweep
-- finds the roots that time alone takes out with them, and the sync engine's scope predicates and
-- pulls call them (sync/scope.go, which also says what each root brings with it).
--
-- They are SQL-language and STABLE, so the planner inlines them into the queries that call them
-- and index conditions beside them still apply. Like every scope predicate, they ignore deletion:
-- whether a record exists is asked separately (deleted_at IS NULL). `asof` is the moment asked
-- about: now, or a sweep's bounds.

-- +goose Up

-- fieldsync_in_window reports whether something that ended at `ended` (finished, settled, read;
-- NULL while it has not) is still within the scope window `win` at `asof`.
CREATE FUNCTION fieldsync_in_window(ended timestamptz, win interval, asof timestamptz DEFAULT now())
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT ended IS NULL OR ended + win > asof $$;

-- A task is on its assignee's device while it is open, or finished within the window.
CREATE FUNCTION fieldsync_task_held(t tasks, win interval, asof timestamptz DEFAULT now())
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT t.assignee_id IS NOT NULL AND fieldsync_in_window(t.finished_at, win, asof) $$;

-- A claim is in its branch processors' queue while collecting, under review or approved, and for
-- the window once paid or rejected.
CREATE FUNCTION fieldsync_claim_queued(c claims, win interval, asof timestamptz DEFAULT now())
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT c.status IN ('collecting', 'under_review', 'approved')
          OR (c.status IN ('paid', 'rejected') AND fieldsync_in_window(c.settled_at, win, asof)) $$;

-- A notification is in its user's inbox while unread, and for the window once read.
CREATE FUNCTION fieldsync_notification_kept(n notifications, win interval, asof timestamptz DEFAULT now())
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT fieldsync_in_window(n.read_at, win, asof) $$;

-- sync_log as 00006 has it, with the scope moves worked out by the functions above.
--
-- sync_log writes the change of the row (argument: its entity type) to the change log, the scope
-- moves it causes, and wakes the long-polls of its branch on every replica.
--   task: it enters or leaves its assignee's device (fieldsync_task_held, while it exists);
--   claim: it enters or leaves the branch processors' queue (fieldsync_claim_queued, while it exists).
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
        IF TG_OP = 'UPDATE' AND OLD.deleted_at IS NULL AND fieldsync_task_held(OLD, win) THEN
            was_user := OLD.assignee_id;
        END IF;
        IF NEW.deleted_at IS NULL AND fieldsync_task_held(NEW, win) THEN
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
            was_in := OLD.deleted_at IS NULL AND fieldsync_claim_queued(OLD, win);
        END IF;
        is_in := NEW.deleted_at IS NULL AND fieldsync_claim_queued(NEW, win);
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
-- Nothing is put back: sync_log above logs the same moves as the one it replaces, and the
-- functions are kept because it calls them.
