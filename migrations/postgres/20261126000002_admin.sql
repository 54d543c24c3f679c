-- Key rotation with a grace period, the admin audit trail, and a change
-- counter that instances watch to pick up each other's changes.

ALTER TABLE api_key ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE api_key ADD COLUMN previous_valid_until TIMESTAMPTZ;

-- Every admin change: who, what, on what, before and after. Append-only.
CREATE TABLE admin_audit (
    id            BIGSERIAL PRIMARY KEY,
    actor_key_id  UUID,
    action        TEXT NOT NULL,
    target        TEXT NOT NULL,
    before        JSONB,
    after         JSONB,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX admin_audit_created_idx ON admin_audit (created_at);

CREATE FUNCTION admin_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'admin_audit is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER admin_audit_no_update BEFORE UPDATE OR DELETE ON admin_audit
    FOR EACH ROW EXECUTE FUNCTION admin_audit_append_only();

-- Bumped in the same transaction as every change to keys, toggles,
-- overrides or settings.
CREATE TABLE config_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  BIGINT NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 0);
