//! One customer's overrides of rules, and the effective policy: every rule
//! as one customer gets it, each value with where it comes from, as the
//! engine resolves it for decisions ([`warden_engine::Policy::effective`]).
//!
//! An orphaned override (no rule of its name is served, or the one served
//! is not the rule it was set for) can still be read and cleared, even
//! while no rule has its name; setting it again re-confirms it for the
//! rule now served.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use serde::Serialize;
use uuid::Uuid;
use warden_engine::{Effect, RuleMode, RuleOverride};

use super::rules::{effect_parts, rule};
use super::{apply_now, in_range, storable};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{Customer, Orphan, OrphanReason, StoredOverride};

/// The range of a customer's score for a score rule.
pub(crate) const SCORE: RangeInclusive<i64> = MIN_SCORE..=MAX_SCORE;
/// The lowest score an override can give.
pub(crate) const MIN_SCORE: i64 = -1_000_000_000;
/// The highest score an override can give.
pub(crate) const MAX_SCORE: i64 = 1_000_000_000;

/// A per-customer override of one rule, as stored.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct OverrideView {
    /// On or off for this customer (`null`: not overridden).
    pub(crate) enabled: Option<bool>,
    /// This customer's score (`null`: not overridden).
    pub(crate) score: Option<i64>,
    /// This customer's mode, `enforce` or `shadow` (`null`: not
    /// overridden; `off` is `enabled: false`).
    pub(crate) mode: Option<&'static str>,
    /// Present when the override applies to nothing: `rule_missing` (no
    /// rule of its name is served) or `rule_changed` (the rule of that name
    /// is not the one it was set for). It applies again if its rule
    /// returns unchanged, or once set again (re-confirmed); it can be
    /// deleted meanwhile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) orphaned: Option<OrphanReason>,
    /// The override as the engine reads it.
    #[serde(skip)]
    pub(crate) rule: RuleOverride,
}

fn no_override(customer: Uuid, key: &str) -> ApiError {
    ApiError::NotFound(format!("customer `{customer}` has no override of `{key}`"))
}

/// The customer's stored override of `key`, if any: 404 unless the rule is
/// served or an orphaned override names it.
async fn stored(state: &AppState, customer: &Customer, key: &str) -> Result<Option<StoredOverride>, ApiError> {
    let in_set = rule(&state.live.load(), key).map(|_| ());
    // A key the database can't hold names nothing stored.
    if in_set.is_err() && !storable(key) {
        return Err(ApiError::NotFound(format!("no rule `{}` in the policy set", key.escape_default())));
    }
    match (in_set, state.store.customer_rule(customer.id, key).await?) {
        (Ok(()), stored) => Ok(stored),
        // No rule of its name is served: an orphan.
        (Err(_), Some(orphan)) => Ok(Some(orphan)),
        (Err(e), None) => Err(e),
    }
}

/// The customer's override of `key` (also an orphaned one), or 404.
pub(crate) async fn get(state: &AppState, customer: &Customer, key: &str) -> Result<OverrideView, ApiError> {
    let o = stored(state, customer, key).await?.ok_or_else(|| no_override(customer.id, key))?;
    let orphaned = o.orphaned(&state.live.load().policy, key);
    Ok(OverrideView {
        enabled: o.rule.enabled,
        score: o.rule.score,
        mode: o.rule.mode.map(RuleMode::as_str),
        orphaned,
        rule: o.rule,
    })
}

/// Replaces the customer's override of `key` with `o` (a `None` follows
/// the global toggle or the files), for the rule now served under that
/// name, from the customer's next request on; over an orphaned override
/// this re-confirms it. 404 for a rule the set lacks; 422 naming `score`
/// out of range; 409 for a score on a deny or allow rule. Recorded as
/// `customer.policy.set`, with the rule's values in force before and after.
pub(crate) async fn set(
    state: &AppState,
    actor: Uuid,
    customer: &Customer,
    key: &str,
    o: RuleOverride,
) -> Result<OverrideView, ApiError> {
    let snapshot = state.live.load();
    let effect = rule(&snapshot, key)?.effect;
    if let Some(score) = o.score {
        in_range("score", score, SCORE)?;
        // The value is valid; it is the rule, as the files define it now,
        // that can't take a score: a conflict with the target's state.
        if !matches!(effect, Effect::Score(_)) {
            return Err(ApiError::Conflict(format!(
                "`{key}` is a deny or allow rule; only score rules take a `score`"
            )));
        }
    }
    state.store.set_customer_rule(&snapshot.policy, customer.id, key, o, Some(actor)).await?;
    apply_now(state).await;
    Ok(OverrideView { enabled: o.enabled, score: o.score, mode: o.mode.map(RuleMode::as_str), orphaned: None, rule: o })
}

/// Removes the customer's override of `key` (also an orphaned one, whose
/// rule may no longer exist); 404 when there is none. Recorded as
/// `customer.policy.delete`, with the rule's values in force before and
/// after.
pub(crate) async fn clear(state: &AppState, actor: Uuid, customer: &Customer, key: &str) -> Result<(), ApiError> {
    let existed = stored(state, customer, key).await?.is_some();
    let policy = state.live.load().policy.clone();
    if !existed || !state.store.delete_customer_rule(&policy, customer.id, key, Some(actor)).await? {
        return Err(no_override(customer.id, key));
    }
    apply_now(state).await;
    Ok(())
}

/// A rate limit in force.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RateLimitView {
    /// Requests per window.
    pub(crate) requests: i64,
    /// Window in seconds.
    pub(crate) window_seconds: i64,
}

/// A value and where it comes from: `file`, `global`, `override` or `default`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Sourced<T> {
    /// The value in force.
    pub(crate) value: T,
    /// `file`, `global`, `override` or `default`.
    pub(crate) source: &'static str,
}

impl<T> From<warden_engine::Sourced<T>> for Sourced<T> {
    fn from(s: warden_engine::Sourced<T>) -> Self {
        Self { value: s.value, source: s.source.as_str() }
    }
}

/// One rule as a customer gets it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct EffectiveRule {
    /// The rule's key.
    pub(crate) key: String,
    /// What it is for.
    pub(crate) description: String,
    /// `score`, `deny` or `allow`.
    pub(crate) effect: &'static str,
    /// Its reason code.
    pub(crate) reason: String,
    /// On or off, and why.
    pub(crate) enabled: Sourced<bool>,
    /// `enforce`, `shadow` or `off`, and why (the highest layer setting
    /// the rule's `mode` or `enabled`).
    pub(crate) mode: Sourced<String>,
    /// The score, and why (score rules only).
    pub(crate) score: Option<Sourced<i64>>,
}

/// Everything as one customer gets it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct EffectivePolicy {
    /// The customer.
    pub(crate) customer_id: Uuid,
    /// The policy version.
    pub(crate) policy_version: String,
    /// The threshold, and why.
    pub(crate) threshold: Sourced<i64>,
    /// The rate limit per key, and why.
    pub(crate) rate_limit: Sourced<RateLimitView>,
    /// Every rule, in source order.
    pub(crate) rules: Vec<EffectiveRule>,
    /// Every declared parameter, in declaration order, with the value this
    /// customer's requests are decided with and where it comes from
    /// (`file`, `global` or `override`).
    pub(crate) params: Vec<super::params::ParamView>,
    /// Parameter values (the fleet's or this customer's) that apply to
    /// nothing: the set no longer declares the parameter, or its type
    /// changed.
    pub(crate) params_not_applied: Vec<super::params::UnappliedParam>,
    /// Global toggles and this customer's overrides that apply to nothing:
    /// no rule of their name is served (`rule_missing`), or the rule of that
    /// name is not the one they were set for (`rule_changed`).
    pub(crate) orphans: Vec<Orphan>,
}

/// A quota as shown, with where it comes from.
fn rate_limit_view(q: crate::rate_limit::Quota, source: &'static str) -> Sourced<RateLimitView> {
    let window_seconds = i64::try_from(q.window.as_secs()).unwrap_or(i64::MAX);
    Sourced { value: RateLimitView { requests: i64::from(q.requests), window_seconds }, source }
}

/// Every rule as `customer` gets it under the serving snapshot, and where
/// each value comes from; with the orphaned settings that concern it.
pub(crate) fn effective(state: &AppState, customer: &Customer) -> EffectivePolicy {
    let snapshot = state.live.load();
    let in_force = &snapshot.in_force;
    let effective = snapshot.policy.effective(&in_force.global, in_force.customers.get(&customer.id));
    let rate_limit = match snapshot.for_customer(&customer.id).1 {
        Some(q) => rate_limit_view(q, "override"),
        None => rate_limit_view(state.default_quota, "default"),
    };
    let params = super::params::views(&snapshot.policy, &effective);
    let params_not_applied = super::params::unapplied(&effective);
    let rules = effective
        .rules
        .into_iter()
        .map(|r| EffectiveRule {
            key: r.rule.name.to_owned(),
            description: r.rule.description.to_owned(),
            effect: effect_parts(r.rule.effect).0,
            reason: r.rule.reason.to_owned(),
            enabled: r.enabled.into(),
            mode: Sourced { value: r.mode.value.as_str().to_owned(), source: r.mode.source.as_str() },
            score: r.score.map(Into::into),
        })
        .collect();
    let orphans =
        snapshot.orphans().iter().filter(|o| o.customer_id.is_none_or(|c| c == customer.id)).cloned().collect();
    EffectivePolicy {
        customer_id: customer.id,
        policy_version: snapshot.policy.version().to_owned(),
        threshold: effective.threshold.into(),
        rate_limit,
        rules,
        params,
        params_not_applied,
        orphans,
    }
}

/// The customer's overrides that apply under the serving set, by rule
/// (orphaned ones are in [`EffectivePolicy::orphans`]).
pub(crate) fn in_force(state: &AppState, customer: &Customer) -> BTreeMap<String, RuleOverride> {
    state.live.load().in_force.customers.get(&customer.id).map(|o| o.rules.clone()).unwrap_or_default()
}
