//! Global toggles, per-customer rule overrides and per-customer settings.
//!
//! Toggles and overrides are stored by rule name. A row whose rule has left
//! the served policy set is orphaned (see [`super::orphans`]): it is never
//! loaded into the tables decisions use, so it can't apply to a later rule
//! that takes the same name, until an admin sets it again (which
//! re-confirms it) or deletes it.
//!
//! Every change records in the admin trail the values in force before and
//! after it, each with its source (`file`, `global`, `override`,
//! `default`), as [`Policy::effective`] computes them for decisions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;
use warden_engine::{Overrides, Policy, RuleOverride};

use super::customers::now;
use super::orphans::Orphan;
use super::{AdminChange, Store, StoreError, admin_tx, on_pool};
use crate::rate_limit::Quota;

/// A customer's threshold and rate limit, where set.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct CustomerSettings {
    /// The customer.
    pub customer_id: Uuid,
    /// Replaces the policy set's threshold.
    pub threshold: Option<i64>,
    /// Requests allowed per window.
    pub rate_limit_requests: Option<i64>,
    /// The window, in seconds.
    pub rate_limit_window_seconds: Option<i64>,
}

/// Everything the database says about how rules apply.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OverrideTables {
    /// Global toggles, as overrides of `enabled` only (orphans excluded).
    pub global: Overrides,
    /// Per-customer overrides (rules and threshold; orphans excluded).
    pub customers: BTreeMap<Uuid, Overrides>,
    /// Per-customer settings (threshold and rate limit).
    pub settings: BTreeMap<Uuid, CustomerSettings>,
    /// Toggles and overrides whose rule left the served set: listed, never
    /// applied.
    pub orphans: Vec<Orphan>,
}

/// A customer's stored override of one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredOverride {
    /// What it sets.
    pub rule: RuleOverride,
    /// When its rule left the served set; while set, it doesn't apply.
    pub orphaned_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct ToggleRow {
    rule_key: String,
    enabled: Option<bool>,
    orphaned_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
pub(super) struct CustomerRuleRow {
    pub(super) customer_id: Uuid,
    pub(super) rule_key: String,
    pub(super) enabled: Option<bool>,
    pub(super) score: Option<i64>,
    pub(super) orphaned_at: Option<DateTime<Utc>>,
}

const SELECT_SETTINGS: &str =
    "SELECT customer_id, threshold, rate_limit_requests, rate_limit_window_seconds FROM customer_settings";

/// The values of `rule` in force under `global` and `customer`, each with
/// its source: `{"enabled": {"value", "source"}, "score": {…}}` (`score`
/// for score rules only; both `null` for a rule the set doesn't have).
fn rule_in_force(policy: &Policy, global: &Overrides, customer: Option<&Overrides>, rule: &str) -> Map<String, Value> {
    let effective = policy.effective(global, customer);
    let mut out = Map::new();
    match effective.rules.iter().find(|r| r.rule.name == rule) {
        Some(r) => {
            out.insert("enabled".into(), json!(r.enabled));
            if let Some(score) = r.score {
                out.insert("score".into(), json!(score));
            }
        }
        None => {
            out.insert("enabled".into(), Value::Null);
        }
    }
    out
}

/// `overrides` with `rule` set to `o` (or removed, with `None`).
fn with_rule(overrides: &Overrides, rule: &str, o: Option<RuleOverride>) -> Overrides {
    let mut out = overrides.clone();
    match o {
        Some(o) => out.rules.insert(rule.to_owned(), o),
        None => out.rules.remove(rule),
    };
    out
}

impl Store {
    /// Loads every toggle, override and setting; orphaned rows are listed
    /// in [`OverrideTables::orphans`] and nowhere else.
    pub async fn load_overrides(&self) -> Result<OverrideTables, StoreError> {
        let toggles = on_pool!(self, p => sqlx::query_as::<_, ToggleRow>(
            "SELECT rule_key, enabled, orphaned_at FROM policy").fetch_all(p).await)?;
        let rules = on_pool!(self, p => sqlx::query_as::<_, CustomerRuleRow>(
            "SELECT customer_id, rule_key, enabled, score, orphaned_at FROM customer_policy").fetch_all(p).await)?;
        let settings = on_pool!(self, p => sqlx::query_as::<_, CustomerSettings>(SELECT_SETTINGS).fetch_all(p).await)?;
        let mut out = OverrideTables::default();
        for t in toggles {
            match (t.enabled, t.orphaned_at) {
                (None, _) => {}
                (Some(_), Some(at)) => out.orphans.push(Orphan::toggle(t.rule_key, t.enabled, at)),
                (Some(_), None) => {
                    out.global.rules.insert(t.rule_key, RuleOverride { enabled: t.enabled, score: None });
                }
            }
        }
        for r in rules {
            match r.orphaned_at {
                Some(at) => out.orphans.push(Orphan::from_row(r, at)),
                None => {
                    out.customers
                        .entry(r.customer_id)
                        .or_default()
                        .rules
                        .insert(r.rule_key, RuleOverride { enabled: r.enabled, score: r.score });
                }
            }
        }
        for s in settings {
            if s.threshold.is_some() {
                out.customers.entry(s.customer_id).or_default().threshold = s.threshold;
            }
            out.settings.insert(s.customer_id, s);
        }
        out.orphans.sort_by(Orphan::order);
        Ok(out)
    }

    /// The global toggles in force (orphans excluded).
    async fn fleet_overrides(&self) -> Result<Overrides, StoreError> {
        let sql = "SELECT rule_key, enabled, orphaned_at FROM policy WHERE enabled IS NOT NULL AND orphaned_at IS NULL";
        let rows = on_pool!(self, p => sqlx::query_as::<_, ToggleRow>(sql).fetch_all(p).await)?;
        let mut out = Overrides::default();
        for t in rows {
            out.rules.insert(t.rule_key, RuleOverride { enabled: t.enabled, score: None });
        }
        Ok(out)
    }

    /// One customer's overrides in force (orphans excluded) and threshold.
    async fn customer_overrides(&self, customer_id: Uuid) -> Result<Overrides, StoreError> {
        let sql = "SELECT customer_id, rule_key, enabled, score, orphaned_at FROM customer_policy \
                   WHERE customer_id = $1 AND orphaned_at IS NULL";
        let rows = on_pool!(self, p => sqlx::query_as::<_, CustomerRuleRow>(sql).bind(customer_id).fetch_all(p).await)?;
        let mut out = Overrides::default();
        for r in rows {
            out.rules.insert(r.rule_key, RuleOverride { enabled: r.enabled, score: r.score });
        }
        out.threshold = self.customer_settings(customer_id).await?.and_then(|s| s.threshold);
        Ok(out)
    }

    /// The stored global toggle of one rule (`enabled` `None`: as written in
    /// the files), and when it was orphaned.
    async fn toggle_row(&self, rule_key: &str) -> Result<Option<ToggleRow>, StoreError> {
        let sql = "SELECT rule_key, enabled, orphaned_at FROM policy WHERE rule_key = $1";
        Ok(on_pool!(self, p => sqlx::query_as::<_, ToggleRow>(sql).bind(rule_key).fetch_optional(p).await)?)
    }

    /// The global toggle of one rule in force (`None`: as written in the
    /// files, or orphaned).
    pub async fn global_toggle(&self, rule_key: &str) -> Result<Option<bool>, StoreError> {
        Ok(self.toggle_row(rule_key).await?.filter(|t| t.orphaned_at.is_none()).and_then(|t| t.enabled))
    }

    /// Sets (or, with `None`, clears) the global toggle of `rule_key`, a
    /// rule of `policy`. Setting an orphaned toggle re-confirms it. The
    /// trail records the rule's `enabled` in force for customers without an
    /// override, before and after.
    pub async fn set_global_toggle(
        &self,
        policy: &Policy,
        rule_key: &str,
        enabled: Option<bool>,
        actor: Option<Uuid>,
    ) -> Result<(), StoreError> {
        let fleet = self.fleet_overrides().await?;
        let after_fleet = with_rule(&fleet, rule_key, enabled.map(|e| RuleOverride { enabled: Some(e), score: None }));
        let mut after = rule_in_force(policy, &after_fleet, None, rule_key);
        if let Some(orphan) =
            self.toggle_row(rule_key).await?.filter(|t| t.orphaned_at.is_some() && t.enabled.is_some())
        {
            after.insert(
                "reconfirmed_orphan".into(),
                json!({ "enabled": orphan.enabled, "orphaned_at": orphan.orphaned_at }),
            );
        }
        let change = AdminChange::new(actor, "policy.toggle", rule_key)
            .before(rule_in_force(policy, &fleet, None, rule_key))
            .after(after);
        let description = policy.rules().find(|r| r.name == rule_key).map(|r| r.description).unwrap_or_default();
        let sql = "INSERT INTO policy (rule_key, description, enabled, updated_at) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (rule_key) DO UPDATE SET description = $2, enabled = $3, updated_at = $4, orphaned_at = NULL";
        admin_tx!(self, &change, tx => {
            sqlx::query(sql).bind(rule_key).bind(description).bind(enabled).bind(now()).execute(&mut *tx).await?;
        });
        Ok(())
    }

    /// A customer's stored override of one rule, orphaned or not.
    pub async fn customer_rule(&self, customer_id: Uuid, rule_key: &str) -> Result<Option<StoredOverride>, StoreError> {
        let sql = "SELECT customer_id, rule_key, enabled, score, orphaned_at FROM customer_policy \
                   WHERE customer_id = $1 AND rule_key = $2";
        let row = on_pool!(self, p => sqlx::query_as::<_, CustomerRuleRow>(sql).bind(customer_id).bind(rule_key).fetch_optional(p).await)?;
        Ok(row.map(|r| StoredOverride {
            rule: RuleOverride { enabled: r.enabled, score: r.score },
            orphaned_at: r.orphaned_at,
        }))
    }

    /// Sets a customer's override of `rule_key`, a rule of `policy`.
    /// Setting an orphaned override re-confirms it. The trail records the
    /// rule's values in force for the customer, before and after.
    pub async fn set_customer_rule(
        &self,
        policy: &Policy,
        customer_id: Uuid,
        rule_key: &str,
        o: RuleOverride,
        actor: Option<Uuid>,
    ) -> Result<(), StoreError> {
        let fleet = self.fleet_overrides().await?;
        let mine = self.customer_overrides(customer_id).await?;
        let after_mine = with_rule(&mine, rule_key, Some(o));
        let mut after = rule_in_force(policy, &fleet, Some(&after_mine), rule_key);
        if let Some(orphan) = self.customer_rule(customer_id, rule_key).await?.filter(|s| s.orphaned_at.is_some()) {
            after.insert(
                "reconfirmed_orphan".into(),
                json!({
                    "enabled": orphan.rule.enabled, "score": orphan.rule.score, "orphaned_at": orphan.orphaned_at,
                }),
            );
        }
        let change =
            AdminChange::new(actor, "customer.policy.set", format!("customer/{customer_id}/policy/{rule_key}"))
                .before(rule_in_force(policy, &fleet, Some(&mine), rule_key))
                .after(after);
        let sql = "INSERT INTO customer_policy (customer_id, rule_key, enabled, score, updated_at) VALUES ($1, $2, $3, $4, $5) \
                   ON CONFLICT (customer_id, rule_key) DO UPDATE SET enabled = $3, score = $4, updated_at = $5, orphaned_at = NULL";
        admin_tx!(self, &change, tx => {
            sqlx::query(sql).bind(customer_id).bind(rule_key).bind(o.enabled).bind(o.score).bind(now()).execute(&mut *tx).await?;
        });
        Ok(())
    }

    /// Removes a customer's override of one rule, orphaned or not. Returns
    /// whether it existed. The trail records the rule's values in force for
    /// the customer before and after (and the orphan, if it was one).
    pub async fn delete_customer_rule(
        &self,
        policy: &Policy,
        customer_id: Uuid,
        rule_key: &str,
        actor: Option<Uuid>,
    ) -> Result<bool, StoreError> {
        let Some(stored) = self.customer_rule(customer_id, rule_key).await? else { return Ok(false) };
        let fleet = self.fleet_overrides().await?;
        let mine = self.customer_overrides(customer_id).await?;
        let mut before = rule_in_force(policy, &fleet, Some(&mine), rule_key);
        if let Some(at) = stored.orphaned_at {
            before.insert(
                "orphan".into(),
                json!({ "enabled": stored.rule.enabled, "score": stored.rule.score, "orphaned_at": at }),
            );
        }
        let change =
            AdminChange::new(actor, "customer.policy.delete", format!("customer/{customer_id}/policy/{rule_key}"))
                .before(before)
                .after(rule_in_force(policy, &fleet, Some(&with_rule(&mine, rule_key, None)), rule_key));
        // The change counter must move on deletion too, or pollers would
        // keep the override; `updated_at` can't record a removed row.
        admin_tx!(self, &change, tx => {
            let done = sqlx::query("DELETE FROM customer_policy WHERE customer_id = $1 AND rule_key = $2")
                .bind(customer_id)
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

    /// A customer's settings, if any were set.
    pub async fn customer_settings(&self, customer_id: Uuid) -> Result<Option<CustomerSettings>, StoreError> {
        let sql = format!("{SELECT_SETTINGS} WHERE customer_id = $1");
        Ok(on_pool!(self, p => sqlx::query_as::<_, CustomerSettings>(&sql).bind(customer_id).fetch_optional(p).await)?)
    }

    /// Sets a customer's threshold and rate limit. The trail records both
    /// in force before and after: the threshold as `policy` resolves it,
    /// the rate limit as set or `default_quota`.
    pub async fn set_customer_settings(
        &self,
        policy: &Policy,
        s: &CustomerSettings,
        default_quota: Quota,
        actor: Option<Uuid>,
    ) -> Result<(), StoreError> {
        let fleet = self.fleet_overrides().await?;
        let mine = self.customer_overrides(s.customer_id).await?;
        let before = self.customer_settings(s.customer_id).await?.unwrap_or_default();
        let in_force = |settings: &CustomerSettings| {
            let customer = Overrides { threshold: settings.threshold, ..mine.clone() };
            let threshold = policy.effective(&fleet, Some(&customer)).threshold;
            let rate_limit = match settings.rate_limit_requests.zip(settings.rate_limit_window_seconds) {
                Some((requests, window_seconds)) => json!({
                    "value": {"requests": requests, "window_seconds": window_seconds}, "source": "override",
                }),
                None => json!({
                    "value": {
                        "requests": default_quota.requests,
                        "window_seconds": default_quota.window.as_secs(),
                    },
                    "source": "default",
                }),
            };
            json!({ "threshold": threshold, "rate_limit": rate_limit })
        };
        let change = AdminChange::new(actor, "customer.settings.set", format!("customer/{}/settings", s.customer_id))
            .before(in_force(&before))
            .after(in_force(s));
        let sql = "INSERT INTO customer_settings (customer_id, threshold, rate_limit_requests, rate_limit_window_seconds, updated_at) \
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT (customer_id) DO UPDATE SET threshold = $2, \
                   rate_limit_requests = $3, rate_limit_window_seconds = $4, updated_at = $5";
        admin_tx!(self, &change, tx => {
            sqlx::query(sql)
                .bind(s.customer_id)
                .bind(s.threshold)
                .bind(s.rate_limit_requests)
                .bind(s.rate_limit_window_seconds)
                .bind(now())
                .execute(&mut *tx)
                .await?;
        });
        Ok(())
    }
}
