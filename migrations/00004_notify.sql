-- Push deliveries: the outbox of the notifications. A rule that notifies (notify.Service.Hook)
-- writes, in the transaction that causes it, the notifications, one delivery per active device of
-- each recipient (pending), and one job (River's river_job) that delivers that group. The job
-- sends each pending delivery once and records its end here: sent (FCM accepted it), skipped (the
-- device lost its token or session, or the notification was read before it could be pushed),
-- token_dropped (FCM said the token is dead; the device's token was cleared) or failed (given up).
--
-- A delivery that has ended is never sent again: a job run a second time (a replica died before
-- River recorded the job's completion) finds nothing pending.

-- +goose Up

CREATE TABLE notification_deliveries (
    notification_id  uuid NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    device_id        uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    -- The group written together, delivered by one job.
    batch_id         uuid NOT NULL,
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'sent', 'skipped', 'token_dropped', 'failed')),
    -- FCM's name of the accepted message (projects/<project>/messages/<id>).
    fcm_message_id   text CHECK (length(fcm_message_id) <= 500),
    -- Sends tried so far.
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- Why the last try failed, or why the delivery was skipped, dropped or given up; never the
    -- token.
    reason           text CHECK (length(reason) <= 1000),
    queued_at        timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    PRIMARY KEY (notification_id, device_id),
    CHECK ((state = 'pending') = (finished_at IS NULL))
);
CREATE INDEX notification_deliveries_pending_idx ON notification_deliveries (batch_id) WHERE state = 'pending';
CREATE INDEX notification_deliveries_device_idx ON notification_deliveries (device_id);
CREATE INDEX notification_deliveries_finished_idx ON notification_deliveries (finished_at);

-- +goose Down
DROP TABLE notification_deliveries;
