-- Shadow rules (docs/language.md, "Shadow mode"): what a decision's shadow
-- rules made of it, as `{"rules": [{"rule", "effect", "score"}],
-- "outcome": {"allowed", "risk_score", "reason"}}`; NULL when no shadow
-- rule held. Hashed on the audit chain (encoding version 3).
ALTER TABLE usage_log ADD COLUMN shadow TEXT;

-- The decisions on which a shadow rule held, over a time range (what a
-- shadow summary reads): a partial index keeps that read proportional to
-- them, not to the whole log, and costs nothing on rows without a match.
CREATE INDEX usage_log_shadow_created ON usage_log (created_at) WHERE shadow IS NOT NULL;

-- Rule modes set by admins, globally (`policy`) and per customer
-- (`customer_policy`): `enforce` or `shadow`; NULL keeps the mode the files
-- give. (`"mode": "off"` is stored as `enabled = false`.)
ALTER TABLE policy ADD COLUMN mode TEXT CHECK (mode IN ('enforce', 'shadow'));
ALTER TABLE customer_policy ADD COLUMN mode TEXT CHECK (mode IN ('enforce', 'shadow'));
