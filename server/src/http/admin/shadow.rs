//! `/api/admin/shadow`: what the rules running in shadow would have done.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::input::Params;
use crate::admin::shadow::{self, ShadowSummary};
use crate::error::{ApiError, ErrorBody};
use crate::http::Admin;
use crate::state::AppState;

/// `/api/admin/shadow`.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_shadow))
}

/// `?days=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ShadowQuery {
    /// 1 to 366 (default 7).
    #[param(minimum = 1, maximum = 366)]
    days: Option<u32>,
}

/// Per rule that ran in shadow: how often it held, and how many decisions
/// enforcing the shadow rules would have flipped each way, with example
/// decision ids.
#[utoipa::path(get, path = "/api/admin/shadow", tag = "admin", params(ShadowQuery),
    responses(
        (status = 200, description = "The summary", body = ShadowSummary),
        (status = 422, description = "`days` out of range", body = ErrorBody),
    ))]
async fn get_shadow(
    State(state): State<AppState>,
    _: Admin,
    Params(q): Params<ShadowQuery>,
) -> Result<Json<ShadowSummary>, ApiError> {
    Ok(Json(shadow::summary(&state, q.days.unwrap_or(7)).await?))
}
