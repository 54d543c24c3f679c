-- The fields each policy version declared, recorded when an instance first
-- serves it. An audit row keeps the declared fields it was decided on, and
-- leaves out those the request did not give; `warden replay` reads this
-- table to tell a field the request lacked (absent) from one its policy
-- did not declare (not recorded, so a candidate reading it can't be
-- replayed faithfully). `declared`: a JSON array of dotted paths.
CREATE TABLE policy_version (
    version     TEXT PRIMARY KEY,
    declared    TEXT NOT NULL,
    first_seen  TIMESTAMPTZ NOT NULL
);
