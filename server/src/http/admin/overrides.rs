//! `/api/admin/customers/{id}/policies/{key}`: one customer's override of
//! one rule.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use warden_dsl::ast::Effect;
use warden_engine::RuleOverride;

use super::apply_now;
use super::input::{Body, PathParams};
use super::int::Int;
use super::rules::rule;
use crate::app::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::http::Admin;

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
}

impl From<RuleOverride> for OverrideView {
    fn from(o: RuleOverride) -> Self {
        Self { enabled: o.enabled, score: o.score }
    }
}

/// The customer and the rule's effect, or 404.
async fn customer_and_rule(state: &AppState, id: &str, key: &str) -> Result<(Uuid, Effect), ApiError> {
    let customer = super::customer(state, id).await?;
    let snapshot = state.live.load();
    let effect = rule(&snapshot, key)?.effect;
    Ok((customer.id, effect))
}

/// A customer's override of one rule.
#[utoipa::path(get, path = "/api/admin/customers/{id}/policies/{key}", tag = "admin",
    params(("id" = Uuid, Path, description = "Customer id"), ("key" = String, Path, description = "Rule key")),
    responses((status = 200, description = "The override", body = OverrideView), (status = 404, description = "Unknown customer, rule, or no override", body = ErrorBody)))]
async fn get_override(
    State(state): State<AppState>,
    _: Admin,
    PathParams((id, key)): PathParams<(String, String)>,
) -> Result<Json<OverrideView>, ApiError> {
    let (customer, _) = customer_and_rule(&state, &id, &key).await?;
    let o = state
        .store
        .customer_rule(customer, &key)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("customer `{customer}` has no override of `{key}`")))?;
    Ok(Json(o.into()))
}

/// Set a customer's override of one rule.
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
    let (customer, effect) = customer_and_rule(&state, &id, &key).await?;
    let Body(o) = body?;
    // The body is valid; it is the rule, as the files define it now, that
    // can't take a score: a conflict with the target's state.
    if o.score.is_some() && !matches!(effect, Effect::Score(_)) {
        return Err(ApiError::Conflict(format!("`{key}` is a deny or allow rule; only score rules take a `score`")));
    }
    let stored = RuleOverride { enabled: o.enabled, score: o.score.map(Int::get) };
    state.store.set_customer_rule(customer, &key, stored, Some(actor.key_id)).await?;
    apply_now(&state).await;
    Ok(Json(stored.into()))
}

/// Remove a customer's override of one rule.
#[utoipa::path(delete, path = "/api/admin/customers/{id}/policies/{key}", tag = "admin",
    params(("id" = Uuid, Path, description = "Customer id"), ("key" = String, Path, description = "Rule key")),
    responses((status = 204, description = "Removed"), (status = 404, description = "Unknown customer, rule, or no override", body = ErrorBody)))]
async fn delete_override(
    State(state): State<AppState>,
    Admin(actor): Admin,
    PathParams((id, key)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (customer, _) = customer_and_rule(&state, &id, &key).await?;
    if !state.store.delete_customer_rule(customer, &key, Some(actor.key_id)).await? {
        return Err(ApiError::NotFound(format!("customer `{customer}` has no override of `{key}`")));
    }
    apply_now(&state).await;
    Ok(StatusCode::NO_CONTENT)
}
