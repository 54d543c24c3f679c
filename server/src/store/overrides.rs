//! Global toggles, per-customer rule overrides and per-customer settings.
//!
//! Toggles and overrides are stored by rule name, each with the fingerprint
//! of the rule it was set for ([`Policy::rule_fingerprint`]): setting one
//! records the fingerprint of the rule now serving under that name. Which
//! of them apply is decided against the set being served (see
//! [`super::orphans`]): one whose rule is missing, or whose rule now has
//! another fingerprint, is orphaned and applies to nothing. Nothing is
//! written when the set changes.
//!
//! Every change records in the admin trail the values in force before and
//! after it, each with its source (`file`, `global`, `override`,
//! `default`), as [`Policy::effective`] computes them for decisions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;
use warden_engine::{Overrides, Policy, RuleMode, RuleOverride};

use super::customers::{Customer, now};
use super::orphans::{OrphanReason, binding};
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

/// Everything the database says about how rules apply, as stored: which
/// toggles and overrides apply depends on the set served
/// ([`OverrideTables::resolve`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OverrideTables {
    /// Global toggles (those with `enabled` or `mode` set), orphaned or
    /// not, and the fleet's parameter values.
    pub global: Overrides,
    /// Per-customer overrides, orphaned or not, thresholds and parameter
    /// values.
    pub customers: BTreeMap<Uuid, Overrides>,
    /// Per-customer settings (threshold and rate limit).
    pub settings: BTreeMap<Uuid, CustomerSettings>,
    /// The rule each toggle and override above was set for. One without an
    /// entry here is bound to no rule: it applies to nothing.
    pub bindings: Bindings,
}

/// The rules stored toggles and overrides were set for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bindings {
    /// Global toggles, by rule name.
    pub global: BTreeMap<String, Binding>,
    /// Per-customer overrides, by customer and rule name.
    pub customers: BTreeMap<Uuid, BTreeMap<String, Binding>>,
}

/// The rule one toggle or override was set for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The fingerprint of the rule it was set for ([`Policy::rule_fingerprint`]);
    /// `None` for a setting made before fingerprints that could not adopt
    /// one (see [`Store::adopt_legacy_fingerprints`]).
    pub fingerprint: Option<String>,
    /// When it was last set (UTC).
    pub set_at: DateTime<Utc>,
}

impl OverrideTables {
    /// Binds every toggle and override to the rule of its name in `policy`,
    /// as if each had just been set (those naming a rule `policy` lacks stay
    /// unbound). For tables built by hand: benchmarks and tests.
    pub fn bind_all(&mut self, policy: &Policy) {
        let bind = |name: &str| Binding { fingerprint: policy.rule_fingerprint(name), set_at: now() };
        self.bindings.global = self.global.rules.keys().map(|name| (name.clone(), bind(name))).collect();
        self.bindings.customers = self
            .customers
            .iter()
            .map(|(id, o)| (*id, o.rules.keys().map(|name| (name.clone(), bind(name))).collect()))
            .collect();
    }
}

/// A customer's stored override of one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOverride {
    /// What it sets.
    pub rule: RuleOverride,
    /// The fingerprint of the rule it was set for (`None`: unbound).
    pub fingerprint: Option<String>,
    /// When it was last set (UTC).
    pub set_at: DateTime<Utc>,
}

impl StoredOverride {
    /// Why it doesn't apply under `policy`, or `None` if it does.
    pub fn orphaned(&self, policy: &Policy, rule: &str) -> Option<OrphanReason> {
        binding(policy.rule_fingerprint(rule).as_deref(), self.fingerprint.as_deref()).err()
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct ToggleRow {
    pub(super) rule_key: String,
    pub(super) enabled: Option<bool>,
    pub(super) mode: Option<String>,
    pub(super) rule_fingerprint: Option<String>,
    pub(super) updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(super) struct CustomerRuleRow {
    pub(super) customer_id: Uuid,
    pub(super) rule_key: String,
    pub(super) enabled: Option<bool>,
    pub(super) score: Option<i64>,
    pub(super) mode: Option<String>,
    pub(super) rule_fingerprint: Option<String>,
    pub(super) updated_at: DateTime<Utc>,
}

/// A stored override with its customer.
#[derive(sqlx::FromRow)]
struct OverriderRow {
    id: Uuid,
    name: String,
    email: String,
    created_at: DateTime<Utc>,
    enabled: Option<bool>,
    score: Option<i64>,
    mode: Option<String>,
    rule_fingerprint: Option<String>,
    updated_at: DateTime<Utc>,
}

const SELECT_TOGGLES: &str = "SELECT rule_key, enabled, mode, rule_fingerprint, updated_at FROM policy";
const SELECT_CUSTOMER_RULES: &str =
    "SELECT customer_id, rule_key, enabled, score, mode, rule_fingerprint, updated_at FROM customer_policy";

/// A stored `mode` column: `enforce`, `shadow` or NULL (the CHECK
/// constraint allows nothing else; anything else reads as NULL).
fn read_mode(text: Option<&str>) -> Option<RuleMode> {
    match text? {
        "enforce" => Some(RuleMode::Enforce),
        "shadow" => Some(RuleMode::Shadow),
        _ => None,
    }
}

/// A mode as stored: `off` is never stored (it is `enabled = false`).
fn stored_mode(mode: Option<RuleMode>) -> Option<&'static str> {
    mode.filter(|m| *m != RuleMode::Off).map(RuleMode::as_str)
}

impl ToggleRow {
    /// The toggle as an override: `enabled` and `mode`.
    pub(super) fn rule(&self) -> RuleOverride {
        RuleOverride { enabled: self.enabled, score: None, mode: read_mode(self.mode.as_deref()) }
    }

    /// Whether it sets anything.
    fn is_set(&self) -> bool {
        self.enabled.is_some() || self.mode.is_some()
    }
}

impl CustomerRuleRow {
    fn rule(&self) -> RuleOverride {
        RuleOverride { enabled: self.enabled, score: self.score, mode: read_mode(self.mode.as_deref()) }
    }
}
const SELECT_SETTINGS: &str =
    "SELECT customer_id, threshold, rate_limit_requests, rate_limit_window_seconds FROM customer_settings";

/// The values of `rule` in force under `global` and `customer`, each with
/// its source: `{"enabled": {"value", "source"}, "mode": {…}, "score": {…}}`
/// (`score` for score rules only; `null` for a rule the set doesn't have).
fn rule_in_force(policy: &Policy, global: &Overrides, customer: Option<&Overrides>, rule: &str) -> Map<String, Value> {
    let effective = policy.effective(global, customer);
    let mut out = Map::new();
    match effective.rules.iter().find(|r| r.rule.name == rule) {
        Some(r) => {
            out.insert("enabled".into(), json!(r.enabled));
            out.insert("mode".into(), json!({"value": r.mode.value.as_str(), "source": r.mode.source}));
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

/// Whether a row set for the rule with `fingerprint` applies to the rule
/// named `rule` in `policy`.
fn applies(policy: &Policy, rule: &str, fingerprint: Option<&str>) -> bool {
    binding(policy.rule_fingerprint(rule).as_deref(), fingerprint).is_ok()
}

impl Store {
    /// Loads every toggle, override and setting, each toggle and override
    /// with the rule it was set for.
    pub async fn load_overrides(&self) -> Result<OverrideTables, StoreError> {
        let toggles = on_pool!(self, p => sqlx::query_as::<_, ToggleRow>(SELECT_TOGGLES).fetch_all(p).await)?;
        let rules =
            on_pool!(self, p => sqlx::query_as::<_, CustomerRuleRow>(SELECT_CUSTOMER_RULES).fetch_all(p).await)?;
        let settings = on_pool!(self, p => sqlx::query_as::<_, CustomerSettings>(SELECT_SETTINGS).fetch_all(p).await)?;
        let mut out = OverrideTables::default();
        for t in toggles {
            // Nothing set: the rule as written in the files; nothing to bind.
            if !t.is_set() {
                continue;
            }
            out.global.rules.insert(t.rule_key.clone(), t.rule());
            out.bindings.global.insert(t.rule_key, Binding { fingerprint: t.rule_fingerprint, set_at: t.updated_at });
        }
        for r in rules {
            let o = r.rule();
            out.customers.entry(r.customer_id).or_default().rules.insert(r.rule_key.clone(), o);
            out.bindings
                .customers
                .entry(r.customer_id)
                .or_default()
                .insert(r.rule_key, Binding { fingerprint: r.rule_fingerprint, set_at: r.updated_at });
        }
        out.global.params = self.global_params().await?.into_iter().map(|(name, p)| (name, p.value)).collect();
        for (id, params) in self.customer_params().await? {
            out.customers.entry(id).or_default().params = params;
        }
        for s in settings {
            if s.threshold.is_some() {
                out.customers.entry(s.customer_id).or_default().threshold = s.threshold;
            }
            out.settings.insert(s.customer_id, s);
        }
        Ok(out)
    }

    /// The global toggles in force under `policy` (orphans left out), and
    /// the fleet's parameter values.
    pub(super) async fn fleet_overrides(&self, policy: &Policy) -> Result<Overrides, StoreError> {
        let sql = format!("{SELECT_TOGGLES} WHERE enabled IS NOT NULL OR mode IS NOT NULL");
        let rows = on_pool!(self, p => sqlx::query_as::<_, ToggleRow>(&sql).fetch_all(p).await)?;
        let mut out = Overrides::default();
        for t in rows.into_iter().filter(|t| applies(policy, &t.rule_key, t.rule_fingerprint.as_deref())) {
            let o = t.rule();
            out.rules.insert(t.rule_key, o);
        }
        out.params = self.global_params().await?.into_iter().map(|(name, p)| (name, p.value)).collect();
        Ok(out)
    }

    /// One customer's overrides in force under `policy` (orphans left out),
    /// threshold and parameter values.
    pub(super) async fn customer_overrides(&self, policy: &Policy, customer_id: Uuid) -> Result<Overrides, StoreError> {
        let sql = format!("{SELECT_CUSTOMER_RULES} WHERE customer_id = $1");
        let rows =
            on_pool!(self, p => sqlx::query_as::<_, CustomerRuleRow>(&sql).bind(customer_id).fetch_all(p).await)?;
        let mut out = Overrides::default();
        for r in rows.into_iter().filter(|r| applies(policy, &r.rule_key, r.rule_fingerprint.as_deref())) {
            let o = r.rule();
            out.rules.insert(r.rule_key, o);
        }
        out.threshold = self.customer_settings(customer_id).await?.and_then(|s| s.threshold);
        out.params = self.params_of_customer(customer_id).await?;
        Ok(out)
    }

    /// The stored global toggle of one rule (`enabled` `None`: as written in
    /// the files), bound or not.
    pub(super) async fn toggle_row(&self, rule_key: &str) -> Result<Option<ToggleRow>, StoreError> {
        let sql = format!("{SELECT_TOGGLES} WHERE rule_key = $1");
        Ok(on_pool!(self, p => sqlx::query_as::<_, ToggleRow>(&sql).bind(rule_key).fetch_optional(p).await)?)
    }

    /// Sets the global toggle of `rule_key`, a rule of `policy`, to
    /// `toggle`'s `enabled` and `mode` (each `None`: as the files say; the
    /// toggle's `score` is not read), binding it to that rule's
    /// fingerprint; over an orphaned toggle this re-confirms it. The trail
    /// records the rule's `enabled` and mode in force for customers without
    /// an override, before and after (and the orphan re-confirmed, if any).
    pub async fn set_global_toggle(
        &self,
        policy: &Policy,
        rule_key: &str,
        toggle: RuleOverride,
        actor: Option<Uuid>,
    ) -> Result<(), StoreError> {
        let toggle = RuleOverride { score: None, ..toggle };
        let fingerprint = policy.rule_fingerprint(rule_key);
        let description = policy.rules().find(|r| r.name == rule_key).map(|r| r.description).unwrap_or_default();
        // `orphaned_at` is cleared for instances of earlier releases, which
        // still read it.
        let sql = "INSERT INTO policy (rule_key, description, enabled, mode, updated_at, rule_fingerprint) \
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (rule_key) DO UPDATE SET description = $2, \
                   enabled = $3, mode = $4, updated_at = $5, rule_fingerprint = $6, orphaned_at = NULL";
        admin_tx!(self, read change => {
            let fleet = self.fleet_overrides(policy).await?;
            let set = toggle.enabled.is_some() || toggle.mode.is_some();
            let after_fleet = with_rule(&fleet, rule_key, set.then_some(toggle));
            let mut after = rule_in_force(policy, &after_fleet, None, rule_key);
            if let Some(orphan) = self.toggle_row(rule_key).await?.filter(ToggleRow::is_set) {
                if let Err(reason) = binding(fingerprint.as_deref(), orphan.rule_fingerprint.as_deref()) {
                    after.insert(
                        "reconfirmed_orphan".into(),
                        json!({ "enabled": orphan.enabled, "mode": orphan.mode, "reason": reason }),
                    );
                }
            }
            AdminChange::new(actor, "policy.toggle", rule_key)
                .before(rule_in_force(policy, &fleet, None, rule_key))
                .after(after)
        }, tx => {
            sqlx::query(sql)
                .bind(rule_key)
                .bind(description)
                .bind(toggle.enabled)
                .bind(stored_mode(toggle.mode))
                .bind(now())
                .bind(&fingerprint)
                .execute(&mut *tx)
                .await?;
        });
        Ok(())
    }

    /// The stored global toggle of `rule_key`, if one is set and bound to
    /// the rule of that name in `policy` (an orphaned one is `None`).
    pub async fn global_toggle(&self, policy: &Policy, rule_key: &str) -> Result<Option<RuleOverride>, StoreError> {
        let row = self.toggle_row(rule_key).await?;
        Ok(row.filter(|t| t.is_set() && applies(policy, rule_key, t.rule_fingerprint.as_deref())).map(|t| t.rule()))
    }

    /// A customer's stored override of one rule, orphaned or not.
    pub async fn customer_rule(&self, customer_id: Uuid, rule_key: &str) -> Result<Option<StoredOverride>, StoreError> {
        let sql = format!("{SELECT_CUSTOMER_RULES} WHERE customer_id = $1 AND rule_key = $2");
        let row = on_pool!(self, p => sqlx::query_as::<_, CustomerRuleRow>(&sql).bind(customer_id).bind(rule_key).fetch_optional(p).await)?;
        Ok(row.map(|r| StoredOverride { rule: r.rule(), fingerprint: r.rule_fingerprint, set_at: r.updated_at }))
    }

    /// The customers with a stored override of `rule_key` (orphaned or
    /// not), by name, at most `limit` of them, and how many there are.
    pub async fn overrides_of_rule(
        &self,
        rule_key: &str,
        limit: u32,
    ) -> Result<(Vec<(Customer, StoredOverride)>, i64), StoreError> {
        let sql = "SELECT c.id, c.name, c.email, c.created_at, o.enabled, o.score, o.mode, o.rule_fingerprint, \
                   o.updated_at \
                   FROM customer_policy o JOIN customer c ON c.id = o.customer_id WHERE o.rule_key = $1 \
                   ORDER BY c.name, c.id LIMIT $2";
        let rows = on_pool!(self, p => sqlx::query_as::<_, OverriderRow>(sql).bind(rule_key).bind(i64::from(limit)).fetch_all(p).await)?;
        let count = "SELECT COUNT(*) FROM customer_policy WHERE rule_key = $1";
        let total = on_pool!(self, p => sqlx::query_scalar::<_, i64>(count).bind(rule_key).fetch_one(p).await)?;
        let items = rows
            .into_iter()
            .map(|r| {
                let customer = Customer { id: r.id, name: r.name, email: r.email, created_at: r.created_at };
                let rule = RuleOverride { enabled: r.enabled, score: r.score, mode: read_mode(r.mode.as_deref()) };
                (customer, StoredOverride { rule, fingerprint: r.rule_fingerprint, set_at: r.updated_at })
            })
            .collect();
        Ok((items, total))
    }

    /// Sets a customer's override of `rule_key`, a rule of `policy`, binding
    /// it to that rule's fingerprint; over an orphaned override this
    /// re-confirms it. The trail records the rule's values in force for the
    /// customer, before and after (and the orphan re-confirmed, if any).
    pub async fn set_customer_rule(
        &self,
        policy: &Policy,
        customer_id: Uuid,
        rule_key: &str,
        o: RuleOverride,
        actor: Option<Uuid>,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO customer_policy (customer_id, rule_key, enabled, score, mode, updated_at, \
                   rule_fingerprint) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (customer_id, rule_key) \
                   DO UPDATE SET enabled = $3, score = $4, mode = $5, updated_at = $6, rule_fingerprint = $7, \
                   orphaned_at = NULL";
        let fingerprint = policy.rule_fingerprint(rule_key);
        admin_tx!(self, read change => {
            let fleet = self.fleet_overrides(policy).await?;
            let mine = self.customer_overrides(policy, customer_id).await?;
            let after_mine = with_rule(&mine, rule_key, Some(o));
            let mut after = rule_in_force(policy, &fleet, Some(&after_mine), rule_key);
            if let Some(stored) = self.customer_rule(customer_id, rule_key).await? {
                if let Some(reason) = stored.orphaned(policy, rule_key) {
                    after.insert(
                        "reconfirmed_orphan".into(),
                        json!({
                            "enabled": stored.rule.enabled,
                            "score": stored.rule.score,
                            "mode": stored.rule.mode,
                            "reason": reason
                        }),
                    );
                }
            }
            AdminChange::new(actor, "customer.policy.set", format!("customer/{customer_id}/policy/{rule_key}"))
                .before(rule_in_force(policy, &fleet, Some(&mine), rule_key))
                .after(after)
        }, tx => {
            sqlx::query(sql)
                .bind(customer_id)
                .bind(rule_key)
                .bind(o.enabled)
                .bind(o.score)
                .bind(stored_mode(o.mode))
                .bind(now())
                .bind(&fingerprint)
                .execute(&mut *tx)
                .await?;
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
        // The change counter must move on deletion too, or pollers would
        // keep the override; `updated_at` can't record a removed row.
        admin_tx!(self, read change => {
            let Some(stored) = self.customer_rule(customer_id, rule_key).await? else { return Ok(false) };
            let fleet = self.fleet_overrides(policy).await?;
            let mine = self.customer_overrides(policy, customer_id).await?;
            let mut before = rule_in_force(policy, &fleet, Some(&mine), rule_key);
            if let Some(reason) = stored.orphaned(policy, rule_key) {
                before.insert(
                    "orphan".into(),
                    json!({
                        "enabled": stored.rule.enabled,
                        "score": stored.rule.score,
                        "mode": stored.rule.mode,
                        "reason": reason
                    }),
                );
            }
            AdminChange::new(actor, "customer.policy.delete", format!("customer/{customer_id}/policy/{rule_key}"))
                .before(before)
                .after(rule_in_force(policy, &fleet, Some(&with_rule(&mine, rule_key, None)), rule_key))
        }, tx => {
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
        let in_force = |fleet: &Overrides, mine: &Overrides, settings: &CustomerSettings| {
            let customer = Overrides { threshold: settings.threshold, ..mine.clone() };
            let threshold = policy.effective(fleet, Some(&customer)).threshold;
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
        let sql = "INSERT INTO customer_settings (customer_id, threshold, rate_limit_requests, rate_limit_window_seconds, updated_at) \
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT (customer_id) DO UPDATE SET threshold = $2, \
                   rate_limit_requests = $3, rate_limit_window_seconds = $4, updated_at = $5";
        admin_tx!(self, read change => {
            let fleet = self.fleet_overrides(policy).await?;
            let mine = self.customer_overrides(policy, s.customer_id).await?;
            let before = self.customer_settings(s.customer_id).await?.unwrap_or_default();
            AdminChange::new(actor, "customer.settings.set", format!("customer/{}/settings", s.customer_id))
                .before(in_force(&fleet, &mine, &before))
                .after(in_force(&fleet, &mine, s))
        }, tx => {
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
