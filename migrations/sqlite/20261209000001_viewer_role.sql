-- A third key role, `viewer`: a person's read-only admin credential. It may
-- read every admin resource and sign in to the dashboard, and may change
-- nothing; it is refused on the decision endpoints (it is not an app).
--
-- SQLite can't change a CHECK constraint in place, so the table is rebuilt
-- with every column it has by now (the initial ones and the rotation
-- columns added later), its rows copied, and its index made again. The
-- dashboard's sessions (admin_session, which references api_key with ON
-- DELETE CASCADE) come in a later migration; on a database that already has
-- them, dropping the old table ends them, which only signs those people out.
CREATE TABLE api_key_new (
    id                    BLOB PRIMARY KEY,
    customer_id           BLOB NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    name                  TEXT NOT NULL,
    role                  TEXT NOT NULL CHECK (role IN ('app', 'admin', 'viewer')),
    -- bcrypt hash of the secret; the secret itself is never stored.
    secret_hash           TEXT NOT NULL,
    active                BOOLEAN NOT NULL DEFAULT TRUE,
    created_at            TEXT NOT NULL,
    last_used_at          TEXT,
    request_count         INTEGER NOT NULL DEFAULT 0,
    previous_secret_hash  TEXT,
    previous_valid_until  TEXT
);
INSERT INTO api_key_new (id, customer_id, name, role, secret_hash, active, created_at, last_used_at, request_count,
                         previous_secret_hash, previous_valid_until)
SELECT id, customer_id, name, role, secret_hash, active, created_at, last_used_at, request_count,
       previous_secret_hash, previous_valid_until
FROM api_key;
DROP TABLE api_key;
ALTER TABLE api_key_new RENAME TO api_key;
CREATE INDEX api_key_customer_idx ON api_key (customer_id);
