-- Toggles and overrides are stored by rule name. When a served policy set
-- no longer has the rule, its settings are marked orphaned (the time it was
-- first found missing): an orphaned row never applies, even to a later rule
-- of the same name, until an admin sets it again (re-confirming it, which
-- clears the mark) or deletes it.
ALTER TABLE policy ADD COLUMN orphaned_at TIMESTAMPTZ;
ALTER TABLE customer_policy ADD COLUMN orphaned_at TIMESTAMPTZ;
