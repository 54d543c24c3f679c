-- Warden's schema. Timestamps are UTC, stored as RFC 3339 text; UUIDs as
-- 16-byte blobs.

CREATE TABLE customer (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL,
    email       TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE api_key (
    id             BLOB PRIMARY KEY,
    customer_id    BLOB NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('app', 'admin')),
    -- bcrypt hash of the secret; the secret itself is never stored.
    secret_hash    TEXT NOT NULL,
    active         BOOLEAN NOT NULL DEFAULT TRUE,
    created_at     TEXT NOT NULL,
    last_used_at   TEXT,
    request_count  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_key_customer_idx ON api_key (customer_id);

-- Global toggles: `enabled` NULL means "as written in the policy files".
CREATE TABLE policy (
    rule_key     TEXT PRIMARY KEY,
    description  TEXT NOT NULL DEFAULT '',
    enabled      BOOLEAN,
    updated_at   TEXT NOT NULL
);

-- Per-customer rule overrides.
CREATE TABLE customer_policy (
    customer_id  BLOB NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    rule_key     TEXT NOT NULL,
    enabled      BOOLEAN,
    score        INTEGER,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (customer_id, rule_key)
);

-- Per-customer threshold and rate limit.
CREATE TABLE customer_settings (
    customer_id                BLOB PRIMARY KEY REFERENCES customer (id) ON DELETE CASCADE,
    threshold                  INTEGER,
    rate_limit_requests        INTEGER,
    rate_limit_window_seconds  INTEGER,
    updated_at                 TEXT NOT NULL
);

-- One row per /v1/check outcome. Metadata only: `meta` holds the declared
-- input fields and nothing else. No foreign keys: audit rows outlive keys
-- and customers.
CREATE TABLE usage_log (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    decision_id     BLOB NOT NULL,
    request_id      TEXT NOT NULL,
    customer_id     BLOB NOT NULL,
    api_key_id      BLOB NOT NULL,
    model           TEXT,
    operation       TEXT,
    meta            TEXT NOT NULL,
    risk_score      INTEGER NOT NULL,
    allowed         BOOLEAN NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('allowed', 'blocked', 'rejected')),
    reason          TEXT NOT NULL,
    policy_version  TEXT NOT NULL,
    latency_us      INTEGER NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX usage_log_customer_created_idx ON usage_log (customer_id, created_at);
CREATE INDEX usage_log_created_idx ON usage_log (created_at);
