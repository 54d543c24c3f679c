-- The fields each policy version declared, recorded when an instance first
-- serves it. An audit row keeps the declared fields it was decided on, and
-- leaves out those the request did not give; `warden replay` reads this
-- table to tell a field the request lacked (absent) from one its policy
-- did not declare (not recorded, so a candidate reading it can't be
-- replayed faithfully). `declared`: a JSON object from each declared
-- field's dotted path to its default (null: none); `forbidden`: a JSON
-- array of the version's forbidden field names.
CREATE TABLE policy_version (
    version     TEXT PRIMARY KEY,
    declared    TEXT NOT NULL,
    forbidden   TEXT NOT NULL DEFAULT '[]',
    first_seen  TIMESTAMPTZ NOT NULL
);
