-- Dashboard sessions. The session id itself (256 random bits) lives only in
-- the browser's cookie; the database keeps its SHA-256, so a copy of this
-- table lets no one sign in. A session ends when it is idle too long, when
-- it is too old, on sign-out, and when its key is deleted or rotated.
CREATE TABLE admin_session (
    id_hash       TEXT PRIMARY KEY,
    api_key_id    BLOB NOT NULL REFERENCES api_key (id) ON DELETE CASCADE,
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL
);
CREATE INDEX admin_session_key_idx ON admin_session (api_key_id);
