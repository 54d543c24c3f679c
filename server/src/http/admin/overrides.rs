//! `/api/admin/customers/{id}/policies/{key}`: one customer's override of
//! one rule. An orphaned override (no rule of its name is served, or the
//! one served is not the rule it was set for) can still be read and
//! deleted, even while no rule has its name; setting it again re-confirms
//! it for the rule now served.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warden_engine::RuleOverride;

use super::input::{Body, PathParams};
use super::int::Int;
use crate::admin::overrides::{self, MAX_SCORE, MIN_SCORE, OverrideView};
use crate::admin::rules::rule;
use crate::error::{ApiError, ErrorBody};
use crate::http::Admin;
use crate::state::AppState;

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
    score: Option<Int<{ MIN_SCORE }, { MAX_SCORE }>>,
    /// `enforce`, `shadow` or `off` for this customer. `enforce` and
    /// `shadow` switch the rule on; `off` is `enabled: false`. Given with
    /// `enabled`, `mode` wins.
    #[serde(default)]
    mode: Option<super::rules::ModeBody>,
}

/// A customer's override of one rule (also an orphaned one).
#[utoipa::path(get, path = "/api/admin/customers/{id}/policies/{key}", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "Customer id"), ("key" = String, Path, description = "Rule key")),
    responses((status = 200, description = "The override", body = OverrideView), (status = 404, description = "Unknown customer, rule, or no override", body = ErrorBody)))]
async fn get_override(
    State(state): State<AppState>,
    _: Admin,
    PathParams((id, key)): PathParams<(String, String)>,
) -> Result<Json<OverrideView>, ApiError> {
    let customer = super::customer(&state, &id).await?;
    Ok(Json(overrides::get(&state, &customer, &key).await?))
}

/// Set a customer's override of one rule, for the rule now served under
/// that name; over an orphaned override, this re-confirms it.
#[utoipa::path(put, path = "/api/admin/customers/{id}/policies/{key}", tag = "admin", request_body = Option<OverrideBody>,
    params(("id" = uuid::Uuid, Path, description = "Customer id"), ("key" = String, Path, description = "Rule key")),
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
    // An unknown customer or rule is 404 whatever the body.
    let customer = super::customer(&state, &id).await?;
    rule(&state.live.load(), &key)?;
    let Body(o) = body?;
    let o = RuleOverride::reconciled(o.enabled, o.score.map(Int::get), o.mode.map(Into::into));
    Ok(Json(overrides::set(&state, actor.key_id, &customer, &key, o).await?))
}

/// Remove a customer's override of one rule (also an orphaned one, whose
/// rule may no longer exist).
#[utoipa::path(delete, path = "/api/admin/customers/{id}/policies/{key}", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "Customer id"), ("key" = String, Path, description = "Rule key")),
    responses((status = 204, description = "Removed"), (status = 404, description = "Unknown customer, rule, or no override", body = ErrorBody)))]
async fn delete_override(
    State(state): State<AppState>,
    Admin(actor): Admin,
    PathParams((id, key)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let customer = super::customer(&state, &id).await?;
    overrides::clear(&state, actor.key_id, &customer, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}
