-- Where the shadow policy set (`--shadow-policies`) decided differently
-- from the enforced one, per UTC day and shadow-set version: how many
-- decisions it would have flipped each way, or given another score or
-- reason. Kept in the audit writer's transaction like shadow_rollup
-- (server/src/store/shadow_rollup.rs); `/api/admin/shadow` reads it.
CREATE TABLE shadow_set_rollup (
    day             TEXT NOT NULL,
    policy_version  TEXT NOT NULL,
    allow_to_block  BIGINT NOT NULL,
    block_to_allow  BIGINT NOT NULL,
    score_changed   BIGINT NOT NULL,
    reason_changed  BIGINT NOT NULL,
    PRIMARY KEY (day, policy_version)
) WITHOUT ROWID;
