//! `GET /api/admin/status`.

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::admin::status::{self, Status};
use crate::http::Admin;
use crate::state::AppState;

/// `/api/admin/status`.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(status))
}

/// Service status: policy version, files, last reload and its diagnostics,
/// database and audit queue, rate-limit backend, failed authentications,
/// the last audit verification, uptime and build version.
#[utoipa::path(get, path = "/api/admin/status", tag = "admin", responses((status = 200, description = "Status", body = Status)))]
async fn status(State(state): State<AppState>, _: Admin) -> Json<Status> {
    Json(status::gather(&state).await)
}
