-- Shadow results per UTC day and rule: on how many decisions the rule held
-- in shadow, and how many of those enforcing the shadow rules would have
-- flipped each way. Kept in the audit writer's transaction
-- (server/src/store/shadow_rollup.rs), like usage_rollup, so
-- `/api/admin/shadow` reads a few rows per day and rule whatever the
-- traffic; `warden logs prune` leaves it alone.
CREATE TABLE shadow_rollup (
    day             TEXT NOT NULL,
    rule            TEXT NOT NULL,
    matches         BIGINT NOT NULL,
    allow_to_block  BIGINT NOT NULL,
    block_to_allow  BIGINT NOT NULL,
    PRIMARY KEY (day, rule)
) WITHOUT ROWID;

INSERT INTO shadow_rollup (day, rule, matches, allow_to_block, block_to_allow)
SELECT substr(u.created_at, 1, 10), json_extract(j.value, '$.rule'), COUNT(*),
       SUM(CASE WHEN u.allowed AND NOT json_extract(u.shadow, '$.outcome.allowed') THEN 1 ELSE 0 END),
       SUM(CASE WHEN NOT u.allowed AND json_extract(u.shadow, '$.outcome.allowed') THEN 1 ELSE 0 END)
FROM usage_log u, json_each(u.shadow, '$.rules') j
WHERE u.shadow IS NOT NULL
GROUP BY 1, 2;
