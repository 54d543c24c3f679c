//! The admin API (admin keys only).

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::Admin;
use crate::app::AppState;
use crate::error::ApiError;

/// What the service is running.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Status {
    /// The policy version being served.
    policy_version: String,
    /// The policy files it was compiled from.
    files: Vec<String>,
    /// How many rules.
    rules: usize,
    /// Audit rows waiting to be written.
    audit_queue_depth: usize,
    /// Whether the audit writer is reaching the database.
    audit_writer_healthy: bool,
    /// The database backend.
    database: &'static str,
    /// Seconds since start.
    uptime_seconds: u64,
}

/// Service status.
#[utoipa::path(
    get, path = "/api/admin/status", tag = "admin",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Status", body = Status),
        (status = 401, description = "Missing or invalid key", body = super::check::ErrorBody),
        (status = 403, description = "Not an admin key", body = super::check::ErrorBody),
    )
)]
pub async fn status(State(state): State<AppState>, admin: Result<Admin, ApiError>) -> Result<Json<Status>, ApiError> {
    admin?;
    let snapshot = state.live.load();
    let policy = &snapshot.policy;
    Ok(Json(Status {
        policy_version: policy.version().to_owned(),
        files: policy.set().sources.iter().map(|f| f.name.clone()).collect(),
        rules: policy.set().rules.len(),
        audit_queue_depth: state.audit.depth(),
        audit_writer_healthy: state.audit.writer_healthy(),
        database: state.store.backend(),
        uptime_seconds: state.started.elapsed().as_secs(),
    }))
}
