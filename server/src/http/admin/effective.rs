//! `/api/admin/customers/{id}/effective-policy`: every rule as one customer
//! gets it, each value with where it comes from, as the engine resolves it
//! for decisions ([`warden_engine::Policy::effective`]), and the orphaned
//! settings that don't apply to it (see `store/orphans.rs`).

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::input::PathParams;
use crate::admin::overrides::{self, EffectivePolicy};
use crate::error::{ApiError, ErrorBody};
use crate::http::Admin;
use crate::state::AppState;

/// `/api/admin/customers/{id}/effective-policy`.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(effective_policy))
}

/// Every rule as this customer gets it, and where each value comes from.
#[utoipa::path(get, path = "/api/admin/customers/{id}/effective-policy", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "Customer id")),
    responses((status = 200, description = "The effective policy", body = EffectivePolicy), (status = 404, description = "Unknown customer", body = ErrorBody)))]
async fn effective_policy(
    State(state): State<AppState>,
    _: Admin,
    PathParams(id): PathParams<String>,
) -> Result<Json<EffectivePolicy>, ApiError> {
    let customer = super::customer(&state, &id).await?;
    Ok(Json(overrides::effective(&state, &customer)))
}
