-- Two additions of issue 14.
--
-- A refresh whose answer was lost. When a refresh token is used, the refresh token issued for it
-- is kept in the used token's row, sealed (AES-256-GCM) with a key derived from the used token
-- itself, which the server never stores: only whoever presents the used token again can open it.
-- Presented again within the grace window (account.Config.RefreshGrace), and while the token
-- issued for it is still unused, it gives the same new refresh token back, once: the seal is
-- cleared then. Anything else is reuse and revokes the session, as before.
--
-- Background wake-ups. A data-only "sync now" push to each phone of a rep a task entered the
-- scope of goes through the push outbox too, as a delivery of kind 'sync' that has no
-- notification (it is not in anyone's inbox). A delivery now has an id of its own, which is how
-- its outcome is recorded; a notification is still pushed at most once to each device.

-- +goose Up

ALTER TABLE refresh_tokens ADD COLUMN successor_sealed bytea CHECK (length(successor_sealed) <= 200);

ALTER TABLE notification_deliveries DROP CONSTRAINT notification_deliveries_pkey;
ALTER TABLE notification_deliveries
    ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ADD COLUMN kind text NOT NULL DEFAULT 'notification' CHECK (kind IN ('notification', 'sync')),
    ALTER COLUMN notification_id DROP NOT NULL,
    ADD CONSTRAINT notification_deliveries_once UNIQUE (notification_id, device_id),
    ADD CONSTRAINT notification_deliveries_kind_notification CHECK ((kind = 'notification') = (notification_id IS NOT NULL));

-- +goose Down
DELETE FROM notification_deliveries WHERE kind <> 'notification';
ALTER TABLE notification_deliveries DROP CONSTRAINT notification_deliveries_pkey,
    DROP CONSTRAINT notification_deliveries_once, DROP CONSTRAINT notification_deliveries_kind_notification,
    DROP COLUMN id, DROP COLUMN kind, ALTER COLUMN notification_id SET NOT NULL,
    ADD PRIMARY KEY (notification_id, device_id);
ALTER TABLE refresh_tokens DROP COLUMN successor_sealed;
