-- Toggles and overrides are bound to the rule they were set for: its
-- fingerprint (the effect kind and the condition in canonical form, see
-- Policy::rule_fingerprint), written whenever one is set. A setting applies
-- only while the served rule of its name has that fingerprint; otherwise it
-- is orphaned. Each instance computes this against the set it serves;
-- nothing is written when a set is served, and `orphaned_at` no longer
-- makes a setting inapplicable (it is only cleared, for earlier releases).
ALTER TABLE policy ADD COLUMN rule_fingerprint TEXT;
ALTER TABLE customer_policy ADD COLUMN rule_fingerprint TEXT;

-- Rows from before this migration have no fingerprint. The first instance
-- to start binds them, once, to the rules it serves under their names
-- (except rows marked orphaned, and those whose rule it lacks, which stay
-- unbound until set again), and records that here so no later start-up
-- with another set can.
CREATE TABLE rule_fingerprint_adoption (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    adopted_at      TIMESTAMPTZ NOT NULL,
    policy_version  TEXT NOT NULL
);
