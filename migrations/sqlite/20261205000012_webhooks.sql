-- Webhooks (server/src/webhooks.rs). Endpoints, the outbox of events (one
-- row per event and subscribed endpoint, written in the transaction of the
-- change it describes), the messages that carry them (one request, retried
-- under the same webhook-id) and every delivery attempt.

CREATE TABLE webhook_endpoint (
    id               BLOB PRIMARY KEY,
    url              TEXT NOT NULL,
    -- JSON list of event names, or ["*"].
    events           TEXT NOT NULL,
    -- whsec_…: kept to sign deliveries; shown once, never listed.
    secret           TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    -- JSON {customers?, reasons?} limiting decision events, or NULL.
    filter           TEXT,
    active           BOOLEAN NOT NULL DEFAULT TRUE,
    disabled_at      TEXT,
    disabled_reason  TEXT,
    -- Consecutive failed attempts.
    failures         INTEGER NOT NULL DEFAULT 0,
    -- No request to this endpoint before this time (one a second).
    next_send_at     TEXT NOT NULL,
    created_at       TEXT NOT NULL
);

CREATE TABLE webhook_message (
    -- msg_…: the webhook-id header, the same for every retry.
    id               TEXT PRIMARY KEY,
    endpoint_id      BLOB NOT NULL REFERENCES webhook_endpoint (id) ON DELETE CASCADE,
    body             TEXT NOT NULL,
    events           INTEGER NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    -- Held by one instance's deliverer until then.
    leased_until     TEXT,
    created_at       TEXT NOT NULL,
    finished_at      TEXT
);
CREATE INDEX webhook_message_due_idx ON webhook_message (status, next_attempt_at);
CREATE INDEX webhook_message_endpoint_idx ON webhook_message (endpoint_id, status);

CREATE TABLE webhook_event (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id  BLOB NOT NULL REFERENCES webhook_endpoint (id) ON DELETE CASCADE,
    -- evt_…: the same for every endpoint that gets the event.
    event_id     TEXT NOT NULL,
    type         TEXT NOT NULL,
    -- The event as sent: {id, type, timestamp, data}.
    payload      TEXT NOT NULL,
    -- The message carrying it; NULL while it waits to be packed.
    message_id   TEXT REFERENCES webhook_message (id) ON DELETE CASCADE,
    created_at   TEXT NOT NULL
);
CREATE INDEX webhook_event_waiting_idx ON webhook_event (endpoint_id, message_id, id);

CREATE TABLE webhook_attempt (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id    TEXT NOT NULL REFERENCES webhook_message (id) ON DELETE CASCADE,
    endpoint_id   BLOB NOT NULL REFERENCES webhook_endpoint (id) ON DELETE CASCADE,
    attempted_at  TEXT NOT NULL,
    -- delivered or failed.
    result        TEXT NOT NULL,
    status_code   INTEGER,
    latency_ms    INTEGER NOT NULL,
    error         TEXT
);
CREATE INDEX webhook_attempt_endpoint_idx ON webhook_attempt (endpoint_id, id);
