//! `/api/admin/policies` (rules and global toggles) and the per-customer
//! overrides under `/api/admin/customers/{id}/…`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use warden_dsl::ast::Effect;
use warden_engine::{RuleInfo, RuleOverride};

use super::{Body, PageParams, apply_now, invalid};
use crate::app::AppState;
use crate::error::ApiError;
use crate::http::Admin;
use crate::http::check::ErrorBody;
use crate::store::{CustomerSettings, Page};

/// A rule as the fleet gets it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuleView {
    /// The rule's key.
    key: String,
    /// What it is for.
    description: String,
    /// `score`, `deny` or `allow`.
    effect: &'static str,
    /// The score, for score rules.
    score: Option<i64>,
    /// Whether it is on for customers without an override.
    enabled: bool,
    /// Whether the files enable it.
    enabled_in_files: bool,
    /// The global toggle, if one is set.
    global_toggle: Option<bool>,
    /// Its reason code.
    reason: String,
    /// Where it is defined, `file:line`.
    source: String,
    /// Blocked decisions with this rule's reason in the last 7 days.
    violations_last_7_days: i64,
}

fn effect_parts(e: Effect) -> (&'static str, Option<i64>) {
    match e {
        Effect::Score(s) => ("score", Some(s)),
        Effect::Deny => ("deny", None),
        Effect::Allow => ("allow", None),
    }
}

fn rule_view(r: &RuleInfo<'_>, toggle: Option<bool>, violations: i64) -> RuleView {
    let (effect, score) = effect_parts(r.effect);
    RuleView {
        key: r.name.to_owned(),
        description: r.description.to_owned(),
        effect,
        score,
        enabled: toggle.unwrap_or(r.enabled),
        enabled_in_files: r.enabled,
        global_toggle: toggle,
        reason: r.reason.to_owned(),
        source: r.source.to_owned(),
        violations_last_7_days: violations,
    }
}

fn global_toggle(state: &AppState, key: &str) -> Option<bool> {
    state.live.load().tables.global.rules.get(key).and_then(|o| o.enabled)
}

/// List every rule.
#[utoipa::path(get, path = "/api/admin/policies", tag = "admin", params(PageParams),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of rules, in source order", body = Page<RuleView>)))]
pub async fn list_policies(
    State(state): State<AppState>,
    admin: Result<Admin, ApiError>,
    params: Result<Query<PageParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page<RuleView>>, ApiError> {
    admin?;
    let (page, size) = super::query(params)?.resolve()?;
    let snapshot = state.live.load();
    let since = crate::store::now() - chrono::Duration::days(7);
    let blocks = state.store.blocks_by_reason(since).await?;
    let all: Vec<RuleView> = snapshot
        .policy
        .rules()
        .map(|r| {
            let toggle = snapshot.tables.global.rules.get(r.name).and_then(|o| o.enabled);
            rule_view(&r, toggle, blocks.get(r.reason).copied().unwrap_or(0))
        })
        .collect();
    let total = all.len() as i64;
    let start = (page as usize - 1).saturating_mul(size as usize);
    let items = all.into_iter().skip(start).take(size as usize).collect();
    Ok(Json(Page { items, page, page_size: size, total }))
}

/// A global toggle.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Toggle {
    /// On or off for every customer without an override; `null` returns the
    /// rule to what the policy files say.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<bool>)]
    enabled: Option<Option<bool>>,
}

/// Tells `"enabled": null` (clear) from a missing `enabled` (an error).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<bool>>, D::Error> {
    Option::<bool>::deserialize(d).map(Some)
}

fn rule<'s>(snapshot: &'s crate::live::Snapshot, key: &str) -> Result<RuleInfo<'s>, ApiError> {
    snapshot
        .policy
        .rules()
        .find(|r| r.name == key)
        .ok_or_else(|| ApiError::NotFound(format!("no rule `{key}` in the policy set")))
}

/// Turn a rule on or off globally.
#[utoipa::path(patch, path = "/api/admin/policies/{key}", tag = "admin", request_body = Toggle,
    params(("key" = String, Path, description = "Rule key")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The rule as now applied", body = RuleView),
        (status = 404, description = "Unknown rule", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ErrorBody),
    ))]
pub async fn patch_policy(
    State(state): State<AppState>,
    admin: Result<Admin, ApiError>,
    Path(key): Path<String>,
    body: Result<Body<Toggle>, ApiError>,
) -> Result<Json<RuleView>, ApiError> {
    let Admin(actor) = admin?;
    let snapshot = state.live.load();
    let description = rule(&snapshot, &key)?.description.to_owned();
    let Body(t) = body?;
    let Some(enabled) = t.enabled else {
        return Err(invalid("enabled", "`enabled` is required: `true`, `false`, or `null` to follow the policy files"));
    };
    state.store.set_global_toggle(&key, &description, enabled, Some(actor.key_id)).await?;
    apply_now(&state).await?;
    let snapshot = state.live.load();
    let r = rule(&snapshot, &key)?;
    Ok(Json(rule_view(&r, global_toggle(&state, &key), 0)))
}

/// A per-customer override of one rule.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideBody {
    /// On or off for this customer.
    #[serde(default)]
    enabled: Option<bool>,
    /// This customer's score (score rules only), -1000000000 to 1000000000.
    #[serde(default)]
    score: Option<i64>,
}

async fn customer_and_rule(state: &AppState, id: &str, key: &str) -> Result<(Uuid, RuleInfoOwned), ApiError> {
    let customer = super::customer(state, id).await?;
    let snapshot = state.live.load();
    let r = rule(&snapshot, key)?;
    Ok((customer.id, RuleInfoOwned { effect: r.effect }))
}

struct RuleInfoOwned {
    effect: Effect,
}

/// A customer's override of one rule.
#[utoipa::path(get, path = "/api/admin/customers/{id}/policies/{key}", tag = "admin",
    params(("id" = String, Path, description = "Customer id"), ("key" = String, Path, description = "Rule key")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The override", body = OverrideBody), (status = 404, description = "Unknown customer, rule, or no override", body = ErrorBody)))]
pub async fn get_override(
    State(state): State<AppState>,
    admin: Result<Admin, ApiError>,
    Path((id, key)): Path<(String, String)>,
) -> Result<Json<OverrideBody>, ApiError> {
    admin?;
    let (customer, _) = customer_and_rule(&state, &id, &key).await?;
    let o = state
        .store
        .customer_rule(customer, &key)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("customer `{customer}` has no override of `{key}`")))?;
    Ok(Json(OverrideBody { enabled: o.enabled, score: o.score }))
}

/// Set a customer's override of one rule.
#[utoipa::path(put, path = "/api/admin/customers/{id}/policies/{key}", tag = "admin", request_body = OverrideBody,
    params(("id" = String, Path, description = "Customer id"), ("key" = String, Path, description = "Rule key")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Set; applies to the customer's next request", body = OverrideBody),
        (status = 404, description = "Unknown customer or rule", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ErrorBody),
    ))]
pub async fn put_override(
    State(state): State<AppState>,
    admin: Result<Admin, ApiError>,
    Path((id, key)): Path<(String, String)>,
    body: Result<Body<OverrideBody>, ApiError>,
) -> Result<Json<OverrideBody>, ApiError> {
    let Admin(actor) = admin?;
    let (customer, r) = customer_and_rule(&state, &id, &key).await?;
    let Body(o) = body?;
    if let Some(score) = o.score {
        if !matches!(r.effect, Effect::Score(_)) {
            return Err(invalid("score", format!("`{key}` is a deny or allow rule; only score rules take a score")));
        }
        if score.abs() > 1_000_000_000 {
            return Err(invalid("score", "`score` must be between -1000000000 and 1000000000"));
        }
    }
    state
        .store
        .set_customer_rule(customer, &key, RuleOverride { enabled: o.enabled, score: o.score }, Some(actor.key_id))
        .await?;
    apply_now(&state).await?;
    Ok(Json(o))
}

/// Remove a customer's override of one rule.
#[utoipa::path(delete, path = "/api/admin/customers/{id}/policies/{key}", tag = "admin",
    params(("id" = String, Path, description = "Customer id"), ("key" = String, Path, description = "Rule key")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 204, description = "Removed"), (status = 404, description = "Unknown customer, rule, or no override", body = ErrorBody)))]
pub async fn delete_override(
    State(state): State<AppState>,
    admin: Result<Admin, ApiError>,
    Path((id, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let Admin(actor) = admin?;
    let (customer, _) = customer_and_rule(&state, &id, &key).await?;
    if !state.store.delete_customer_rule(customer, &key, Some(actor.key_id)).await? {
        return Err(ApiError::NotFound(format!("customer `{customer}` has no override of `{key}`")));
    }
    apply_now(&state).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A rate limit.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitBody {
    /// Requests per window (1 to 1000000000).
    requests: i64,
    /// Window in seconds (1 to 86400).
    window_seconds: i64,
}

/// A customer's settings. Absent fields are cleared (the set's threshold,
/// the default rate limit).
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    /// This customer's threshold (-1000000000 to 1000000000).
    #[serde(default)]
    threshold: Option<i64>,
    /// This customer's rate limit, per API key.
    #[serde(default)]
    rate_limit: Option<RateLimitBody>,
}

/// Set a customer's threshold and rate limit.
#[utoipa::path(put, path = "/api/admin/customers/{id}/settings", tag = "admin", request_body = SettingsBody,
    params(("id" = String, Path, description = "Customer id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Set; applies to the customer's next request", body = SettingsBody),
        (status = 404, description = "Unknown customer", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ErrorBody),
    ))]
pub async fn put_settings(
    State(state): State<AppState>,
    admin: Result<Admin, ApiError>,
    Path(id): Path<String>,
    body: Result<Body<SettingsBody>, ApiError>,
) -> Result<Json<SettingsBody>, ApiError> {
    let Admin(actor) = admin?;
    let customer = super::customer(&state, &id).await?;
    let Body(s) = body?;
    if s.threshold.is_some_and(|t| t.abs() > 1_000_000_000) {
        return Err(invalid("threshold", "`threshold` must be between -1000000000 and 1000000000"));
    }
    if let Some(r) = s.rate_limit {
        if !(1..=1_000_000_000).contains(&r.requests) {
            return Err(invalid("rate_limit.requests", "`rate_limit.requests` must be between 1 and 1000000000"));
        }
        if !(1..=86_400).contains(&r.window_seconds) {
            return Err(invalid(
                "rate_limit.window_seconds",
                "`rate_limit.window_seconds` must be between 1 and 86400",
            ));
        }
    }
    let settings = CustomerSettings {
        customer_id: customer.id,
        threshold: s.threshold,
        rate_limit_requests: s.rate_limit.map(|r| r.requests),
        rate_limit_window_seconds: s.rate_limit.map(|r| r.window_seconds),
    };
    state.store.set_customer_settings(&settings, Some(actor.key_id)).await?;
    apply_now(&state).await?;
    Ok(Json(s))
}

/// A value and where it comes from: `file`, `global`, `override` or `default`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Sourced<T> {
    /// The value in force.
    value: T,
    /// `file`, `global`, `override` or `default`.
    source: &'static str,
}

/// One rule as a customer gets it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EffectiveRule {
    /// The rule's key.
    key: String,
    /// What it is for.
    description: String,
    /// `score`, `deny` or `allow`.
    effect: &'static str,
    /// Its reason code.
    reason: String,
    /// On or off, and why.
    enabled: Sourced<bool>,
    /// The score, and why (score rules only).
    score: Option<Sourced<i64>>,
}

/// Everything as one customer gets it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EffectivePolicy {
    /// The customer.
    customer_id: Uuid,
    /// The policy version.
    policy_version: String,
    /// The threshold, and why.
    threshold: Sourced<i64>,
    /// The rate limit per key, and why.
    rate_limit: Sourced<RateLimitBody>,
    /// Every rule, in source order.
    rules: Vec<EffectiveRule>,
}

/// Every rule as this customer gets it, and where each value comes from.
#[utoipa::path(get, path = "/api/admin/customers/{id}/effective-policy", tag = "admin",
    params(("id" = String, Path, description = "Customer id")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The effective policy", body = EffectivePolicy), (status = 404, description = "Unknown customer", body = ErrorBody)))]
pub async fn effective_policy(
    State(state): State<AppState>,
    admin: Result<Admin, ApiError>,
    Path(id): Path<String>,
) -> Result<Json<EffectivePolicy>, ApiError> {
    admin?;
    let customer = super::customer(&state, &id).await?;
    let snapshot = state.live.load();
    let tables = &snapshot.tables;
    let mine = tables.customers.get(&customer.id);
    let threshold = match mine.and_then(|o| o.threshold) {
        Some(t) => Sourced { value: t, source: "override" },
        None => Sourced { value: snapshot.policy.threshold(), source: "file" },
    };
    let (_, quota) = snapshot.for_customer(&customer.id);
    let rate_limit = match quota {
        Some(q) => Sourced {
            value: RateLimitBody { requests: i64::from(q.requests), window_seconds: q.window.as_secs() as i64 },
            source: "override",
        },
        None => Sourced {
            value: RateLimitBody {
                requests: i64::from(state.default_quota.requests),
                window_seconds: state.default_quota.window.as_secs() as i64,
            },
            source: "default",
        },
    };
    let rules = snapshot
        .policy
        .rules()
        .map(|r| {
            let global = tables.global.rules.get(r.name).and_then(|o| o.enabled);
            let own = mine.and_then(|o| o.rules.get(r.name));
            let enabled = match (own.and_then(|o| o.enabled), global) {
                (Some(v), _) => Sourced { value: v, source: "override" },
                (None, Some(v)) => Sourced { value: v, source: "global" },
                (None, None) => Sourced { value: r.enabled, source: "file" },
            };
            let (effect, written) = effect_parts(r.effect);
            let score = written.map(|w| match own.and_then(|o| o.score) {
                Some(v) => Sourced { value: v, source: "override" },
                None => Sourced { value: w, source: "file" },
            });
            EffectiveRule {
                key: r.name.to_owned(),
                description: r.description.to_owned(),
                effect,
                reason: r.reason.to_owned(),
                enabled,
                score,
            }
        })
        .collect();
    Ok(Json(EffectivePolicy {
        customer_id: customer.id,
        policy_version: snapshot.policy.version().to_owned(),
        threshold,
        rate_limit,
        rules,
    }))
}
