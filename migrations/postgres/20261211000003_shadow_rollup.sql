-- Shadow results per UTC day and rule: on how many decisions the rule held
-- in shadow, and how many of those enforcing the shadow rules would have
-- flipped each way. Kept in the audit writer's transaction
-- (server/src/store/shadow_rollup.rs), like usage_rollup, so
-- `/api/admin/shadow` reads a few rows per day and rule whatever the
-- traffic; `warden logs prune` leaves it alone.
CREATE TABLE shadow_rollup (
    day             DATE NOT NULL,
    rule            TEXT NOT NULL,
    matches         BIGINT NOT NULL,
    allow_to_block  BIGINT NOT NULL,
    block_to_allow  BIGINT NOT NULL,
    PRIMARY KEY (day, rule)
);

INSERT INTO shadow_rollup (day, rule, matches, allow_to_block, block_to_allow)
SELECT (u.created_at AT TIME ZONE 'UTC')::date, r->>'rule', COUNT(*),
       COUNT(*) FILTER (WHERE u.allowed AND NOT (u.shadow->'outcome'->>'allowed')::boolean),
       COUNT(*) FILTER (WHERE NOT u.allowed AND (u.shadow->'outcome'->>'allowed')::boolean)
FROM usage_log u CROSS JOIN LATERAL jsonb_array_elements(u.shadow->'rules') r
WHERE u.shadow IS NOT NULL
GROUP BY 1, 2;
