-- Every phone accounted for (issue 14): what the server knows of each device's sync, a remote
-- wipe of a lost one, and which device each upload comes from (so a wipe can abort them).

-- +goose Up

ALTER TABLE devices
    -- The last pull and push the device made, and how many change-log versions the cursor it was
    -- given at that pull stood behind the log's head (NULL while it is still in its snapshot).
    -- Written by pulls, pushes and uploads, at most once per 10 s each (account.Service.RecordSync).
    ADD COLUMN last_pull_at  timestamptz,
    ADD COLUMN last_push_at  timestamptz,
    ADD COLUMN pull_lag      bigint CHECK (pull_lag >= 0),
    ADD COLUMN last_upload_at timestamptz,
    -- When the push service said the token was dead and notify dropped it (cleared by a new one).
    ADD COLUMN push_token_dropped_at timestamptz,
    -- A manager or admin marked the device lost: at its next contact it is told to erase its data
    -- (device_wiped), and none of its sessions works again.
    ADD COLUMN wiped_at      timestamptz,
    ADD COLUMN wiped_by      uuid REFERENCES users (id),
    ADD CHECK ((wiped_at IS NULL) = (wiped_by IS NULL));

-- The device an upload comes from (NULL for uploads begun before this migration).
ALTER TABLE uploads ADD COLUMN device_id uuid REFERENCES devices (id);
CREATE INDEX uploads_device_idx ON uploads (device_id) WHERE device_id IS NOT NULL;

-- +goose Down

DROP INDEX uploads_device_idx;
ALTER TABLE uploads DROP COLUMN device_id;
ALTER TABLE devices
    DROP COLUMN last_pull_at, DROP COLUMN last_push_at, DROP COLUMN pull_lag, DROP COLUMN last_upload_at,
    DROP COLUMN push_token_dropped_at, DROP COLUMN wiped_at, DROP COLUMN wiped_by;
