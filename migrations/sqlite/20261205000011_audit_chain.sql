-- The tamper-evident hash chain over the audit tables (see
-- server/src/audit/chain.rs and docs/architecture.md for the encoding).
-- Each chained row has its position (`chain_seq`, 1, 2, … without gaps),
-- the hash of the row before it and its own hash, as 64 hex digits. Rows
-- written before this migration have none: they predate the chain.

ALTER TABLE usage_log ADD COLUMN chain_seq INTEGER;
ALTER TABLE usage_log ADD COLUMN prev_hash TEXT;
ALTER TABLE usage_log ADD COLUMN row_hash TEXT;
CREATE UNIQUE INDEX usage_log_chain_seq_idx ON usage_log (chain_seq);

ALTER TABLE admin_audit ADD COLUMN chain_seq INTEGER;
ALTER TABLE admin_audit ADD COLUMN prev_hash TEXT;
ALTER TABLE admin_audit ADD COLUMN row_hash TEXT;
CREATE UNIQUE INDEX admin_audit_chain_seq_idx ON admin_audit (chain_seq);

-- Each chain's head: the last position and hash. A batch of rows takes it
-- once, inside its write transaction, and moves it before committing.
CREATE TABLE audit_chain (
    chain       TEXT PRIMARY KEY CHECK (chain IN ('usage_log', 'admin_audit')),
    seq         INTEGER NOT NULL,
    head_hash   TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
INSERT INTO audit_chain (chain, seq, head_hash, updated_at) VALUES
    ('usage_log', 0, '0000000000000000000000000000000000000000000000000000000000000000', '1970-01-01T00:00:00Z'),
    ('admin_audit', 0, '0000000000000000000000000000000000000000000000000000000000000000', '1970-01-01T00:00:00Z');

-- Written by `warden logs prune`: the last pruned row's position and hash
-- and how many rows went, so `warden audit verify` starts from it. Each is
-- also recorded in the (chained) admin trail.
CREATE TABLE audit_checkpoint (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    chain          TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    row_hash       TEXT NOT NULL,
    rows_pruned    INTEGER NOT NULL,
    pruned_before  TEXT NOT NULL,
    created_at     TEXT NOT NULL
);

-- Results of `warden audit verify` and of verifications run through the
-- admin API (`finished_at` NULL: still running).
CREATE TABLE audit_verification (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    source        TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    ok            BOOLEAN,
    rows_checked  INTEGER,
    report        TEXT
);
