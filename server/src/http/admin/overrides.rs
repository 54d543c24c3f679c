//! `/api/admin/customers/{id}/policies/{key}`: one customer's override of
//! one rule. An orphaned override (no rule of its name is served, or the
//! one served is not the rule it was set for) can still be read and
//! deleted, even while no rule has its name; setting it again re-confirms
//! it for the rule now served.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use warden_engine::{Effect, RuleOverride};

use super::apply_now;
use super::input::{Body, PathParams, storable};
use super::int::Int;
use super::rules::rule;
use crate::error::{ApiError, ErrorBody};
use crate::http::Admin;
use crate::state::AppState;
use crate::store::{OrphanReason, StoredOverride};

/// `/api/admin/customers/{id}/policies/{key}`.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_override, put_override, delete_override))
}

/// A per-customer override of one rule.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct OverrideBody {
    /// On or off for this customer.
    #[serde(default)]
    enabled: Option<bool>,
    /// This customer's score (score rules only; 409 for a deny or allow
    /// rule), -1000000000 to 1000000000.
    #[serde(default)]
    #[schema(inline)]
    score: Option<Int<-1_000_000_000, 1_000_000_000>>,
}

/// A per-customer override of one rule, as stored.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct OverrideView {
    /// On or off for this customer (`null`: not overridden).
    enabled: Option<bool>,
    /// This customer's score (`null`: not overridden).
    score: Option<i64>,
    /// Present when the override applies to nothing: `rule_missing` (no
    /// rule of its name is served) or `rule_changed` (the rule of that name
    /// is not the one it was set for). It applies again if its rule
    /// returns unchanged, or once set again (re-confirmed); it can be
    /// deleted meanwhile.
    #[serde(skip_serializing_if = "Option::is_none")]
    orphaned: Option<OrphanReason>,
}

impl OverrideView {
    fn of(o: &StoredOverride, policy: &warden_engine::Policy, key: &str) -> Self {
        Self { enabled: o.rule.enabled, score: o.rule.score, orphaned: o.orphaned(policy, key) }
    }
}

fn no_override(customer: Uuid, key: &str) -> ApiError {
    ApiError::NotFound(format!("customer `{customer}` has no override of `{key}`"))
}

/// The customer and its stored override of `key`, for reading or deleting:
/// 404 unless the rule is in the set or an orphaned override names it.
async fn customer_and_override(
    state: &AppState,
    id: &str,
    key: &str,
) -> Result<(Uuid, Option<StoredOverride>), ApiError> {
    let customer = super::customer(state, id).await?.id;
    let in_set = rule(&state.live.load(), key).map(|_| ());
    // A key the database can't hold names nothing stored.
    if in_set.is_err() && !storable(key) {
        return Err(ApiError::NotFound(format!("no rule `{}` in the policy set", key.escape_default())));
    }
    let stored = state.store.customer_rule(customer, key).await?;
    match (in_set, stored) {
        (Ok(_), stored) => Ok((customer, stored)),
        // No rule of its name is served: an orphan.
        (Err(_), Some(orphan)) => Ok((customer, Some(orphan))),
        (Err(e), None) => Err(e),
    }
}

/// A customer's override of one rule (also an orphaned one).
#[utoipa::path(get, path = "/api/admin/customers/{id}/policies/{key}", tag = "admin",
    params(("id" = Uuid, Path, description = "Customer id"), ("key" = String, Path, description = "Rule key")),
    responses((status = 200, description = "The override", body = OverrideView), (status = 404, description = "Unknown customer, rule, or no override", body = ErrorBody)))]
async fn get_override(
    State(state): State<AppState>,
    _: Admin,
    PathParams((id, key)): PathParams<(String, String)>,
) -> Result<Json<OverrideView>, ApiError> {
    let (customer, stored) = customer_and_override(&state, &id, &key).await?;
    let stored = stored.ok_or_else(|| no_override(customer, &key))?;
    Ok(Json(OverrideView::of(&stored, &state.live.load().policy, &key)))
}

/// Set a customer's override of one rule, for the rule now served under
/// that name; over an orphaned override, this re-confirms it.
#[utoipa::path(put, path = "/api/admin/customers/{id}/policies/{key}", tag = "admin", request_body = Option<OverrideBody>,
    params(("id" = Uuid, Path, description = "Customer id"), ("key" = String, Path, description = "Rule key")),
    responses(
        (status = 200, description = "Set; applies to the customer's next request", body = OverrideView),
        (status = 404, description = "Unknown customer or rule", body = ErrorBody),
        (status = 409, description = "A `score` for a deny or allow rule", body = ErrorBody),
    ))]
async fn put_override(
    State(state): State<AppState>,
    Admin(actor): Admin,
    PathParams((id, key)): PathParams<(String, String)>,
    body: Result<Body<OverrideBody>, ApiError>,
) -> Result<Json<OverrideView>, ApiError> {
    let customer = super::customer(&state, &id).await?.id;
    let snapshot = state.live.load();
    let effect = rule(&snapshot, &key)?.effect;
    let Body(o) = body?;
    // The body is valid; it is the rule, as the files define it now, that
    // can't take a score: a conflict with the target's state.
    if o.score.is_some() && !matches!(effect, Effect::Score(_)) {
        return Err(ApiError::Conflict(format!("`{key}` is a deny or allow rule; only score rules take a `score`")));
    }
    let stored = RuleOverride { enabled: o.enabled, score: o.score.map(Int::get) };
    state.store.set_customer_rule(&snapshot.policy, customer, &key, stored, Some(actor.key_id)).await?;
    apply_now(&state).await;
    Ok(Json(OverrideView { enabled: stored.enabled, score: stored.score, orphaned: None }))
}

/// Remove a customer's override of one rule (also an orphaned one, whose
/// rule may no longer exist).
#[utoipa::path(delete, path = "/api/admin/customers/{id}/policies/{key}", tag = "admin",
    params(("id" = Uuid, Path, description = "Customer id"), ("key" = String, Path, description = "Rule key")),
    responses((status = 204, description = "Removed"), (status = 404, description = "Unknown customer, rule, or no override", body = ErrorBody)))]
async fn delete_override(
    State(state): State<AppState>,
    Admin(actor): Admin,
    PathParams((id, key)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (customer, stored) = customer_and_override(&state, &id, &key).await?;
    let policy = state.live.load().policy.clone();
    if stored.is_none() || !state.store.delete_customer_rule(&policy, customer, &key, Some(actor.key_id)).await? {
        return Err(no_override(customer, &key));
    }
    apply_now(&state).await;
    Ok(StatusCode::NO_CONTENT)
}
