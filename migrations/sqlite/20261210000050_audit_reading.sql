-- Reading the audit log and the admin trail page by page, newest first.
--
-- `contributions`: the rules that added to a decision's score, as a JSON
-- array of {"rule", "score"} in evaluation order (RFC 8785 text, hashed as
-- the last field of encoding version 2: see server/src/audit/chain.rs).
-- NULL on rows written before this column existed and on rejections.
ALTER TABLE usage_log ADD COLUMN contributions TEXT;

-- Keyset paging of the decision log, newest first by (created_at, id),
-- under any one filter: each index walks one value's rows in that order,
-- so a page reads about 21 index entries however rare the value and
-- however deep the page. They replace the indexes on (created_at) and
-- (customer_id, created_at), which they extend.
DROP INDEX usage_log_created_idx;
DROP INDEX usage_log_customer_created_idx;
CREATE INDEX usage_log_created_id_idx ON usage_log (created_at, id);
CREATE INDEX usage_log_customer_created_idx ON usage_log (customer_id, created_at, id);
CREATE INDEX usage_log_status_created_idx ON usage_log (status, created_at, id);
CREATE INDEX usage_log_model_created_idx ON usage_log (model, created_at, id);
CREATE INDEX usage_log_operation_created_idx ON usage_log (operation, created_at, id);
CREATE INDEX usage_log_reason_created_idx ON usage_log (reason, created_at, id);
-- `/ui/logs/{decision_id}`: one decision by its id.
CREATE INDEX usage_log_decision_idx ON usage_log (decision_id);

-- The admin trail, newest first by id, by action or by actor.
CREATE INDEX admin_audit_action_id_idx ON admin_audit (action, id);
CREATE INDEX admin_audit_actor_id_idx ON admin_audit (actor_key_id, id);
