//! Orphaned settings: global toggles and per-customer overrides whose rule
//! is not in the served policy set.
//!
//! They are stored by rule name, so a setting made for one rule would
//! otherwise apply, silently, to a later rule that takes the same name (an
//! exemption granted for one rule switching off another). When a served set
//! lacks the rule, [`Store::mark_orphans`] marks its settings; a marked row
//! never applies, even if a rule of that name returns, until an admin sets
//! it again (re-confirming it) or deletes it.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::customers::now;
use super::overrides::CustomerRuleRow;
use super::{AdminChange, Store, StoreError, admin_tx, on_pool};

/// A toggle or override whose rule left the served policy set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Orphan {
    /// The customer whose override it is; `null` for a global toggle.
    pub customer_id: Option<Uuid>,
    /// The rule name it was set for.
    pub rule: String,
    /// The `enabled` it sets, if any.
    pub enabled: Option<bool>,
    /// The score it sets, if any.
    pub score: Option<i64>,
    /// When a served set was first found without the rule (UTC).
    pub orphaned_at: DateTime<Utc>,
}

impl Orphan {
    pub(super) fn toggle(rule: String, enabled: Option<bool>, orphaned_at: DateTime<Utc>) -> Self {
        Self { customer_id: None, rule, enabled, score: None, orphaned_at }
    }

    pub(super) fn from_row(r: CustomerRuleRow, orphaned_at: DateTime<Utc>) -> Self {
        Self { customer_id: Some(r.customer_id), rule: r.rule_key, enabled: r.enabled, score: r.score, orphaned_at }
    }

    /// Oldest first, then by rule, global toggles before overrides.
    pub(super) fn order(a: &Self, b: &Self) -> std::cmp::Ordering {
        (a.orphaned_at, &a.rule, a.customer_id).cmp(&(b.orphaned_at, &b.rule, b.customer_id))
    }
}

#[derive(sqlx::FromRow)]
struct Named {
    rule_key: String,
}

impl Store {
    /// Marks as orphaned every toggle and override whose rule is not in
    /// `rules` (the names of the rules in the set being served), and
    /// returns every orphaned setting, newly marked or not.
    ///
    /// Call it whenever a set is served: at start-up and after each reload.
    /// Marking is one transaction, recorded in the admin trail
    /// (`policy.orphan`, with the rule names and counts) and announced to
    /// other instances like any admin change; newly marked settings are
    /// logged. A set that lacks nothing marks nothing and writes nothing.
    pub async fn mark_orphans(&self, rules: &[&str]) -> Result<Vec<Orphan>, StoreError> {
        let served: BTreeSet<&str> = rules.iter().copied().collect();
        let toggles = on_pool!(self, p => sqlx::query_as::<_, Named>(
            "SELECT rule_key FROM policy WHERE orphaned_at IS NULL AND enabled IS NOT NULL").fetch_all(p).await)?;
        let overrides = on_pool!(self, p => sqlx::query_as::<_, Named>(
            "SELECT DISTINCT rule_key FROM customer_policy WHERE orphaned_at IS NULL").fetch_all(p).await)?;
        let missing: BTreeSet<String> = toggles
            .into_iter()
            .chain(overrides)
            .map(|n| n.rule_key)
            .filter(|name| !served.contains(name.as_str()))
            .collect();
        if missing.is_empty() {
            return self.orphans().await;
        }
        let at = now();
        let change = AdminChange::new(None, "policy.orphan", "rules")
            .after(serde_json::json!({ "rules": missing, "orphaned_at": at }));
        let (toggles_marked, overrides_marked) = admin_tx!(self, &change, tx => {
            let (mut toggles, mut overrides) = (0u64, 0u64);
            for rule in &missing {
                toggles += sqlx::query(
                    "UPDATE policy SET orphaned_at = $1 WHERE rule_key = $2 AND orphaned_at IS NULL AND enabled IS NOT NULL",
                )
                .bind(at)
                .bind(rule)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                overrides += sqlx::query(
                    "UPDATE customer_policy SET orphaned_at = $1 WHERE rule_key = $2 AND orphaned_at IS NULL",
                )
                .bind(at)
                .bind(rule)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            (toggles, overrides)
        });
        tracing::warn!(
            rules = ?missing,
            toggles = toggles_marked,
            overrides = overrides_marked,
            "settings for rules no longer in the policy set are orphaned: they won't apply, even to a later rule of \
             the same name, until re-confirmed or deleted (GET /api/admin/orphans)"
        );
        self.orphans().await
    }

    /// Every orphaned setting, oldest first.
    pub async fn orphans(&self) -> Result<Vec<Orphan>, StoreError> {
        Ok(self.load_overrides().await?.orphans)
    }

    /// Deletes the orphaned global toggle of `rule_key`. Returns whether
    /// there was one.
    pub async fn delete_orphaned_toggle(&self, rule_key: &str, actor: Option<Uuid>) -> Result<bool, StoreError> {
        let Some(orphan) = self.orphans().await?.into_iter().find(|o| o.customer_id.is_none() && o.rule == rule_key)
        else {
            return Ok(false);
        };
        let change = AdminChange::new(actor, "policy.toggle.delete", rule_key).before(&orphan);
        admin_tx!(self, &change, tx => {
            let done = sqlx::query("DELETE FROM policy WHERE rule_key = $1 AND orphaned_at IS NOT NULL")
                .bind(rule_key)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if done == 0 {
                return Ok(false);
            }
        });
        Ok(true)
    }
}
