-- Decisions per UTC day, outcome, reason and model: what the dashboard's
-- overview counts, without scanning usage_log. Kept in the audit writer's
-- transaction (server/src/store/rollup.rs), so it always equals a
-- GROUP BY over the rows written. `warden logs prune` leaves it alone: it
-- describes the traffic that was served, including days whose rows were
-- pruned. `model` is '' with `has_model` FALSE when the request had no
-- string model (a key column can't be NULL). `day` is `YYYY-MM-DD`: the
-- first ten characters of a UTC RFC 3339 time.

CREATE TABLE usage_rollup (
    day        TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('allowed', 'blocked', 'rejected')),
    reason     TEXT NOT NULL,
    has_model  BOOLEAN NOT NULL,
    model      TEXT NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (day, status, reason, has_model, model)
) WITHOUT ROWID;

INSERT INTO usage_rollup (day, status, reason, has_model, model, count)
SELECT substr(created_at, 1, 10), status, reason, model IS NOT NULL, COALESCE(model, ''), COUNT(*)
FROM usage_log
GROUP BY 1, 2, 3, 4, 5;
