//! `/api/admin/customers/{id}/settings`: a customer's threshold and rate
//! limit.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::input::{Body, PathParams};
use super::int::Int;
use crate::admin::customers::{self, MAX_RATE_REQUESTS, MAX_THRESHOLD, MAX_WINDOW_SECONDS, MIN_THRESHOLD};
use crate::error::{ApiError, ErrorBody};
use crate::http::Admin;
use crate::state::AppState;

/// `/api/admin/customers/{id}/settings`.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(put_settings))
}

/// A rate limit.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RateLimitBody {
    /// Requests per window (1 to 1000000000).
    #[schema(inline)]
    requests: Int<1, { MAX_RATE_REQUESTS }>,
    /// Window in seconds (1 to 86400).
    #[schema(inline)]
    window_seconds: Int<1, { MAX_WINDOW_SECONDS }>,
}

/// A customer's settings. Absent fields are cleared (the set's threshold,
/// the default rate limit).
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    /// This customer's threshold (-1000000000 to 1000000000).
    #[serde(default)]
    #[schema(inline)]
    threshold: Option<Int<{ MIN_THRESHOLD }, { MAX_THRESHOLD }>>,
    /// This customer's rate limit, per API key.
    #[serde(default)]
    rate_limit: Option<RateLimitBody>,
}

/// Set a customer's threshold and rate limit.
#[utoipa::path(put, path = "/api/admin/customers/{id}/settings", tag = "admin", request_body = Option<SettingsBody>,
    params(("id" = uuid::Uuid, Path, description = "Customer id")),
    responses(
        (status = 200, description = "Set; applies to the customer's next request", body = SettingsBody),
        (status = 404, description = "Unknown customer", body = ErrorBody),
    ))]
async fn put_settings(
    State(state): State<AppState>,
    Admin(actor): Admin,
    PathParams(id): PathParams<String>,
    body: Result<Body<SettingsBody>, ApiError>,
) -> Result<Json<SettingsBody>, ApiError> {
    // An unknown customer is 404 whatever the body.
    let customer = super::customer(&state, &id).await?;
    let Body(s) = body?;
    let settings = customers::Settings {
        threshold: s.threshold.map(Int::get),
        rate_limit: s
            .rate_limit
            .map(|r| customers::RateLimit { requests: r.requests.get(), window_seconds: r.window_seconds.get() }),
    };
    customers::set_settings(&state, actor.key_id, &customer, settings).await?;
    Ok(Json(s))
}
