-- Key rotation with a grace period, the admin audit trail, and a change
-- counter that instances watch to pick up each other's changes.

ALTER TABLE api_key ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE api_key ADD COLUMN previous_valid_until TEXT;

-- Every admin change: who, what, on what, before and after. Append-only.
CREATE TABLE admin_audit (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    actor_key_id  BLOB,
    action        TEXT NOT NULL,
    target        TEXT NOT NULL,
    before        TEXT,
    after         TEXT,
    created_at    TEXT NOT NULL
);
CREATE INDEX admin_audit_created_idx ON admin_audit (created_at);

CREATE TRIGGER admin_audit_no_update BEFORE UPDATE ON admin_audit
BEGIN
    SELECT RAISE(ABORT, 'admin_audit is append-only');
END;
CREATE TRIGGER admin_audit_no_delete BEFORE DELETE ON admin_audit
BEGIN
    SELECT RAISE(ABORT, 'admin_audit is append-only');
END;

-- Bumped in the same transaction as every change to keys, toggles,
-- overrides or settings.
CREATE TABLE config_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  INTEGER NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 0);
