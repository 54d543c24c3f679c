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

use super::input::{Body, PathParams};
use super::rules::rule;
use super::{apply_now, invalid};
use crate::app::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::http::Admin;

/// `/api/admin/customers/{id}/policies/{key}`.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_override, put_override, delete_override))
}

/// A per-customer override of one rule.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct OverrideBody {
    /// On or off for this customer.
    #[serde(default)]
    enabled: Option<bool>,
    /// This customer's score (score rules only), -1000000000 to 1000000000.
    #[serde(default)]
    score: Option<i64>,
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
    responses((status = 200, description = "The override", body = OverrideBody), (status = 404, description = "Unknown customer, rule, or no override", body = ErrorBody)))]
async fn get_override(
    State(state): State<AppState>,
    _: Admin,
    PathParams((id, key)): PathParams<(String, String)>,
) -> Result<Json<OverrideBody>, ApiError> {
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
    params(("id" = Uuid, Path, description = "Customer id"), ("key" = String, Path, description = "Rule key")),
    responses(
        (status = 200, description = "Set; applies to the customer's next request", body = OverrideBody),
        (status = 404, description = "Unknown customer or rule", body = ErrorBody),
    ))]
async fn put_override(
    State(state): State<AppState>,
    Admin(actor): Admin,
    PathParams((id, key)): PathParams<(String, String)>,
    body: Result<Body<OverrideBody>, ApiError>,
) -> Result<Json<OverrideBody>, ApiError> {
    let (customer, effect) = customer_and_rule(&state, &id, &key).await?;
    let Body(o) = body?;
    if let Some(score) = o.score {
        if !matches!(effect, Effect::Score(_)) {
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
    apply_now(&state).await;
    Ok(Json(o))
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
