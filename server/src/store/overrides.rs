//! Global toggles, per-customer rule overrides and per-customer settings.

use std::collections::BTreeMap;

use uuid::Uuid;
use warden_engine::{Overrides, RuleOverride};

use super::customers::now;
use super::{Store, StoreError, on_pool};

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

    /// A cheap summary that changes whenever any toggle, override or setting
    /// does, so pollers reload only on change.
    pub async fn overrides_fingerprint(&self) -> Result<String, StoreError> {
        let sql = "SELECT \
            (SELECT COUNT(*) FROM policy) AS a, (SELECT MAX(updated_at) FROM policy) AS b, \
            (SELECT COUNT(*) FROM customer_policy) AS c, (SELECT MAX(updated_at) FROM customer_policy) AS d, \
            (SELECT COUNT(*) FROM customer_settings) AS e, (SELECT MAX(updated_at) FROM customer_settings) AS f";
        let row: (i64, Option<String>, i64, Option<String>, i64, Option<String>) = on_pool!(self, p => {
            // Timestamps are read as text on both backends so one row type fits.
            let sql = sql.replace("MAX(updated_at)", "CAST(MAX(updated_at) AS TEXT)");
            sqlx::query_as(&sql).fetch_one(p).await
        })?;
        Ok(format!("{row:?}"))
    }

    /// Sets (or, with `None`, clears) a global toggle.
    pub async fn set_global_toggle(
        &self,
        rule_key: &str,
        description: &str,
        enabled: Option<bool>,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO policy (rule_key, description, enabled, updated_at) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (rule_key) DO UPDATE SET description = $2, enabled = $3, updated_at = $4";
        on_pool!(self, p => sqlx::query(sql).bind(rule_key).bind(description).bind(enabled).bind(now()).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Sets a customer's override of one rule.
    pub async fn set_customer_rule(
        &self,
        customer_id: Uuid,
        rule_key: &str,
        o: RuleOverride,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO customer_policy (customer_id, rule_key, enabled, score, updated_at) VALUES ($1, $2, $3, $4, $5) \
                   ON CONFLICT (customer_id, rule_key) DO UPDATE SET enabled = $3, score = $4, updated_at = $5";
        on_pool!(self, p => sqlx::query(sql).bind(customer_id).bind(rule_key).bind(o.enabled).bind(o.score).bind(now()).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Sets a customer's threshold and rate limit.
    pub async fn set_customer_settings(&self, s: &CustomerSettings) -> Result<(), StoreError> {
        let sql = "INSERT INTO customer_settings (customer_id, threshold, rate_limit_requests, rate_limit_window_seconds, updated_at) \
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT (customer_id) DO UPDATE SET threshold = $2, \
                   rate_limit_requests = $3, rate_limit_window_seconds = $4, updated_at = $5";
        on_pool!(self, p => sqlx::query(sql)
            .bind(s.customer_id)
            .bind(s.threshold)
            .bind(s.rate_limit_requests)
            .bind(s.rate_limit_window_seconds)
            .bind(now())
            .execute(p)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
