-- One clock for the windows. Go stamps when things end (finished_at, settled_at, read_at) with the
-- service's clock; SQL decides with the functions of 00007 whether they are still in the scope
-- window. fieldsync_now() is SQL's side of that clock: the database's transaction time, unless the
-- transaction was told the service's time (a test's clock, moved forward instead of waited for),
-- which the sync engine does at the start of its writes when its clock is not the real one.
--
-- The functions of 00007 keep their rule and take `asof` NULL (their default now) as "now by
-- fieldsync_now()": the triggers ask them without one, and the engine's reads pass NULL under the
-- real clock, its clock's time otherwise.

-- +goose Up

-- fieldsync_now is the time the windows are decided at: the setting fieldsync.now when the
-- transaction set it (set_config('fieldsync.now', ..., true)), else now(). The setting reads ''
-- once a transaction that set it has ended.
CREATE FUNCTION fieldsync_now() RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(nullif(current_setting('fieldsync.now', true), '')::timestamptz, now()) $$;

CREATE OR REPLACE FUNCTION fieldsync_in_window(ended timestamptz, win interval, asof timestamptz DEFAULT NULL)
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT ended IS NULL OR ended + win > coalesce(asof, fieldsync_now()) $$;

CREATE OR REPLACE FUNCTION fieldsync_task_held(t tasks, win interval, asof timestamptz DEFAULT NULL)
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT t.assignee_id IS NOT NULL AND fieldsync_in_window(t.finished_at, win, asof) $$;

CREATE OR REPLACE FUNCTION fieldsync_claim_queued(c claims, win interval, asof timestamptz DEFAULT NULL)
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT c.status IN ('collecting', 'under_review', 'approved')
          OR (c.status IN ('paid', 'rejected') AND fieldsync_in_window(c.settled_at, win, asof)) $$;

CREATE OR REPLACE FUNCTION fieldsync_notification_kept(n notifications, win interval, asof timestamptz DEFAULT NULL)
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT fieldsync_in_window(n.read_at, win, asof) $$;

-- The change log's retention is a window too: its entries are dated by the same clock the
-- janitor prunes them by.
ALTER TABLE changes ALTER COLUMN created_at SET DEFAULT fieldsync_now();

-- +goose Down
ALTER TABLE changes ALTER COLUMN created_at SET DEFAULT now();

CREATE OR REPLACE FUNCTION fieldsync_in_window(ended timestamptz, win interval, asof timestamptz DEFAULT now())
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT ended IS NULL OR ended + win > asof $$;

CREATE OR REPLACE FUNCTION fieldsync_task_held(t tasks, win interval, asof timestamptz DEFAULT now())
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT t.assignee_id IS NOT NULL AND fieldsync_in_window(t.finished_at, win, asof) $$;

CREATE OR REPLACE FUNCTION fieldsync_claim_queued(c claims, win interval, asof timestamptz DEFAULT now())
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT c.status IN ('collecting', 'under_review', 'approved')
          OR (c.status IN ('paid', 'rejected') AND fieldsync_in_window(c.settled_at, win, asof)) $$;

CREATE OR REPLACE FUNCTION fieldsync_notification_kept(n notifications, win interval, asof timestamptz DEFAULT now())
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT fieldsync_in_window(n.read_at, win, asof) $$;

DROP FUNCTION fieldsync_now();
