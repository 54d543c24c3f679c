//! `/api/admin/customers/{id}/effective-policy`: every rule as one customer
//! gets it, each value with where it comes from, as the engine resolves it
//! for decisions ([`warden_engine::Policy::effective`]), and the orphaned
//! settings that don't apply to it (see `store/orphans.rs`).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::input::PathParams;
use super::rules::effect_parts;
use crate::error::{ApiError, ErrorBody};
use crate::http::Admin;
use crate::state::AppState;
use crate::store::Orphan;

/// `/api/admin/customers/{id}/effective-policy`.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(effective_policy))
}

/// A rate limit in force.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct RateLimitView {
    /// Requests per window.
    requests: i64,
    /// Window in seconds.
    window_seconds: i64,
}

/// A value and where it comes from: `file`, `global`, `override` or `default`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Sourced<T> {
    /// The value in force.
    value: T,
    /// `file`, `global`, `override` or `default`.
    source: &'static str,
}

impl<T> From<warden_engine::Sourced<T>> for Sourced<T> {
    fn from(s: warden_engine::Sourced<T>) -> Self {
        Self { value: s.value, source: s.source.as_str() }
    }
}

/// One rule as a customer gets it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct EffectiveRule {
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
struct EffectivePolicy {
    /// The customer.
    customer_id: Uuid,
    /// The policy version.
    policy_version: String,
    /// The threshold, and why.
    threshold: Sourced<i64>,
    /// The rate limit per key, and why.
    rate_limit: Sourced<RateLimitView>,
    /// Every rule, in source order.
    rules: Vec<EffectiveRule>,
    /// Global toggles and this customer's overrides that apply to nothing:
    /// no rule of their name is served (`rule_missing`), or the rule of that
    /// name is not the one they were set for (`rule_changed`).
    orphans: Vec<Orphan>,
}

/// Every rule as this customer gets it, and where each value comes from.
#[utoipa::path(get, path = "/api/admin/customers/{id}/effective-policy", tag = "admin",
    params(("id" = Uuid, Path, description = "Customer id")),
    responses((status = 200, description = "The effective policy", body = EffectivePolicy), (status = 404, description = "Unknown customer", body = ErrorBody)))]
async fn effective_policy(
    State(state): State<AppState>,
    _: Admin,
    PathParams(id): PathParams<String>,
) -> Result<Json<EffectivePolicy>, ApiError> {
    let customer = super::customer(&state, &id).await?;
    let snapshot = state.live.load();
    let in_force = &snapshot.in_force;
    let effective = snapshot.policy.effective(&in_force.global, in_force.customers.get(&customer.id));
    let (_, quota) = snapshot.for_customer(&customer.id);
    let rate_limit = match quota {
        Some(q) => Sourced {
            value: RateLimitView {
                requests: i64::from(q.requests),
                window_seconds: i64::try_from(q.window.as_secs()).unwrap_or(i64::MAX),
            },
            source: "override",
        },
        None => Sourced {
            value: RateLimitView {
                requests: i64::from(state.default_quota.requests),
                window_seconds: i64::try_from(state.default_quota.window.as_secs()).unwrap_or(i64::MAX),
            },
            source: "default",
        },
    };
    let rules = effective
        .rules
        .into_iter()
        .map(|r| {
            let (effect, _) = effect_parts(r.rule.effect);
            EffectiveRule {
                key: r.rule.name.to_owned(),
                description: r.rule.description.to_owned(),
                effect,
                reason: r.rule.reason.to_owned(),
                enabled: r.enabled.into(),
                score: r.score.map(Into::into),
            }
        })
        .collect();
    let orphans =
        snapshot.orphans().iter().filter(|o| o.customer_id.is_none_or(|c| c == customer.id)).cloned().collect();
    Ok(Json(EffectivePolicy {
        customer_id: customer.id,
        policy_version: snapshot.policy.version().to_owned(),
        threshold: effective.threshold.into(),
        rate_limit,
        rules,
        orphans,
    }))
}
