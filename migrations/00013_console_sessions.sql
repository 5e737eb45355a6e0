-- The console's browser sessions. A person signs in to the console with their own login, through
-- the same Login as the app (the same throttle, one account session on a device of platform
-- 'web'); the browser holds a random cookie token whose hash is kept here, tied to that account
-- session. Signing out revokes the account session and removes the row; a row idle for longer
-- than the console's idle timeout is refused and removed (its account session revoked as 'idle'). The CSRF token every form and htmx
-- request must carry is kept with the session it belongs to.

-- +goose Up

-- A web session ended for idleness revokes its account session with its own reason.
ALTER TABLE sessions DROP CONSTRAINT sessions_revoke_reason_check,
    ADD CONSTRAINT sessions_revoke_reason_check CHECK (revoke_reason IN ('logout', 'refresh_token_reused', 'replaced',
        'user_disabled', 'password_reset', 'device_revoked', 'idle'));

CREATE TABLE web_sessions (
    token_hash   bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    session_id   uuid NOT NULL UNIQUE REFERENCES sessions (id) ON DELETE CASCADE,
    csrf_token   text NOT NULL CHECK (length(csrf_token) BETWEEN 32 AND 100),
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL
);
-- Expired rows are swept by idle time at each sign-in.
CREATE INDEX web_sessions_last_seen ON web_sessions (last_seen_at);

-- +goose Down
DROP TABLE web_sessions;
UPDATE sessions SET revoke_reason = 'logout' WHERE revoke_reason = 'idle';
ALTER TABLE sessions DROP CONSTRAINT sessions_revoke_reason_check,
    ADD CONSTRAINT sessions_revoke_reason_check CHECK (revoke_reason IN ('logout', 'refresh_token_reused', 'replaced',
        'user_disabled', 'password_reset', 'device_revoked'));
