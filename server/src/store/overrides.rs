//! Global toggles, per-customer rule overrides and per-customer settings.

use std::collections::BTreeMap;

use uuid::Uuid;
use warden_engine::{Overrides, RuleOverride};

use super::customers::now;
use super::{AdminChange, Store, StoreError, admin_tx, on_pool};

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
    /// Global toggles, as overrides of `enabled` only.
    pub global: Overrides,
    /// Per-customer overrides (rules and threshold).
    pub customers: BTreeMap<Uuid, Overrides>,
    /// Per-customer settings (threshold and rate limit).
    pub settings: BTreeMap<Uuid, CustomerSettings>,
}

#[derive(sqlx::FromRow)]
struct ToggleRow {
    rule_key: String,
    enabled: Option<bool>,
}

#[derive(sqlx::FromRow)]
struct CustomerRuleRow {
    customer_id: Uuid,
    rule_key: String,
    enabled: Option<bool>,
    score: Option<i64>,
}

impl Store {
    /// Loads every toggle, override and setting.
    pub async fn load_overrides(&self) -> Result<OverrideTables, StoreError> {
        let toggles = on_pool!(self, p => sqlx::query_as::<_, ToggleRow>("SELECT rule_key, enabled FROM policy").fetch_all(p).await)?;
        let rules = on_pool!(self, p => sqlx::query_as::<_, CustomerRuleRow>(
            "SELECT customer_id, rule_key, enabled, score FROM customer_policy").fetch_all(p).await)?;
        let settings = on_pool!(self, p => sqlx::query_as::<_, CustomerSettings>(
            "SELECT customer_id, threshold, rate_limit_requests, rate_limit_window_seconds FROM customer_settings").fetch_all(p).await)?;
        let mut out = OverrideTables::default();
        for t in toggles {
            if t.enabled.is_some() {
                out.global.rules.insert(t.rule_key, RuleOverride { enabled: t.enabled, score: None });
            }
        }
        for r in rules {
            out.customers
                .entry(r.customer_id)
                .or_default()
                .rules
                .insert(r.rule_key, RuleOverride { enabled: r.enabled, score: r.score });
        }
        for s in settings {
            if s.threshold.is_some() {
                out.customers.entry(s.customer_id).or_default().threshold = s.threshold;
            }
            out.settings.insert(s.customer_id, s);
        }
        Ok(out)
    }

    /// The global toggle of one rule (`None`: as written in the files).
    pub async fn global_toggle(&self, rule_key: &str) -> Result<Option<bool>, StoreError> {
        let sql = "SELECT enabled FROM policy WHERE rule_key = $1";
        let row: Option<Option<bool>> =
            on_pool!(self, p => sqlx::query_scalar(sql).bind(rule_key).fetch_optional(p).await)?;
        Ok(row.flatten())
    }

    /// Sets (or, with `None`, clears) a global toggle.
    pub async fn set_global_toggle(
        &self,
        rule_key: &str,
        description: &str,
        enabled: Option<bool>,
        actor: Option<Uuid>,
    ) -> Result<(), StoreError> {
        let before = self.global_toggle(rule_key).await?;
        let change = AdminChange::new(actor, "policy.toggle", rule_key)
            .before(serde_json::json!({ "enabled": before }))
            .after(serde_json::json!({ "enabled": enabled }));
        let sql = "INSERT INTO policy (rule_key, description, enabled, updated_at) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (rule_key) DO UPDATE SET description = $2, enabled = $3, updated_at = $4";
        admin_tx!(self, &change, tx => {
            sqlx::query(sql).bind(rule_key).bind(description).bind(enabled).bind(now()).execute(&mut *tx).await?;
        });
        Ok(())
    }

    /// A customer's override of one rule.
    pub async fn customer_rule(&self, customer_id: Uuid, rule_key: &str) -> Result<Option<RuleOverride>, StoreError> {
        let sql = "SELECT customer_id, rule_key, enabled, score FROM customer_policy WHERE customer_id = $1 AND rule_key = $2";
        let row = on_pool!(self, p => sqlx::query_as::<_, CustomerRuleRow>(sql).bind(customer_id).bind(rule_key).fetch_optional(p).await)?;
        Ok(row.map(|r| RuleOverride { enabled: r.enabled, score: r.score }))
    }

    /// Sets a customer's override of one rule.
    pub async fn set_customer_rule(
        &self,
        customer_id: Uuid,
        rule_key: &str,
        o: RuleOverride,
        actor: Option<Uuid>,
    ) -> Result<(), StoreError> {
        let before = self.customer_rule(customer_id, rule_key).await?;
        let change =
            AdminChange::new(actor, "customer.policy.set", format!("customer/{customer_id}/policy/{rule_key}"))
                .before(before)
                .after(o);
        let sql = "INSERT INTO customer_policy (customer_id, rule_key, enabled, score, updated_at) VALUES ($1, $2, $3, $4, $5) \
                   ON CONFLICT (customer_id, rule_key) DO UPDATE SET enabled = $3, score = $4, updated_at = $5";
        admin_tx!(self, &change, tx => {
            sqlx::query(sql).bind(customer_id).bind(rule_key).bind(o.enabled).bind(o.score).bind(now()).execute(&mut *tx).await?;
        });
        Ok(())
    }

    /// Removes a customer's override of one rule. Returns whether it existed.
    pub async fn delete_customer_rule(
        &self,
        customer_id: Uuid,
        rule_key: &str,
        actor: Option<Uuid>,
    ) -> Result<bool, StoreError> {
        let Some(before) = self.customer_rule(customer_id, rule_key).await? else { return Ok(false) };
        let change =
            AdminChange::new(actor, "customer.policy.delete", format!("customer/{customer_id}/policy/{rule_key}"))
                .before(before);
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
        let sql = "SELECT customer_id, threshold, rate_limit_requests, rate_limit_window_seconds FROM customer_settings \
                   WHERE customer_id = $1";
        Ok(on_pool!(self, p => sqlx::query_as::<_, CustomerSettings>(sql).bind(customer_id).fetch_optional(p).await)?)
    }

    /// Sets a customer's threshold and rate limit.
    pub async fn set_customer_settings(&self, s: &CustomerSettings, actor: Option<Uuid>) -> Result<(), StoreError> {
        let before = self.customer_settings(s.customer_id).await?;
        let change = AdminChange::new(actor, "customer.settings.set", format!("customer/{}/settings", s.customer_id))
            .before(before.map(settings_json))
            .after(settings_json(s.clone()));
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

fn settings_json(s: CustomerSettings) -> serde_json::Value {
    serde_json::json!({
        "threshold": s.threshold,
        "rate_limit": s.rate_limit_requests.zip(s.rate_limit_window_seconds)
            .map(|(requests, window_seconds)| serde_json::json!({"requests": requests, "window_seconds": window_seconds})),
    })
}
