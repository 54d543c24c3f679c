//! `GET /api/admin/status`.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::Admin;
use crate::reload::ReloadStatus;
use crate::state::AppState;

/// `/api/admin/status`.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(status))
}

/// What the service is running.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Status {
    /// The policy version being served.
    policy_version: String,
    /// The policy files it was compiled from.
    files: Vec<String>,
    /// How many rules.
    rules: usize,
    /// The last reload of the policy files, and its error if it failed.
    reload: ReloadStatus,
    /// Toggles and overrides that apply to nothing under the set served:
    /// their rule is missing or is not the rule they were set for (listed
    /// at `/api/admin/orphans`).
    orphaned_settings: usize,
    /// Audit rows waiting to be written.
    audit_queue_depth: usize,
    /// Whether the audit writer is reaching the database.
    audit_writer_healthy: bool,
    /// The database backend.
    database: &'static str,
    /// Seconds since start.
    uptime_seconds: u64,
    /// Where rate limits are kept (Redis or this process), whether Redis
    /// answers, and failed authentications by reason.
    rate_limit: crate::rate_limit::LimitsStatus,
    /// The last audit chain verification (`warden audit verify` or `POST
    /// /api/admin/audit/verify`), without its full report (at
    /// `/api/admin/audit/verification`); absent if none has run.
    audit_verification: Option<crate::audit::verify::Summary>,
}

/// Service status: policy version, files, last reload and its diagnostics,
/// audit queue, uptime.
#[utoipa::path(get, path = "/api/admin/status", tag = "admin", responses((status = 200, description = "Status", body = Status)))]
async fn status(State(state): State<AppState>, _: Admin) -> Json<Status> {
    let snapshot = state.live.load();
    let policy = &snapshot.policy;
    Json(Status {
        policy_version: policy.version().to_owned(),
        files: policy.set().sources.iter().map(|f| f.name.clone()).collect(),
        rules: policy.set().rules.len(),
        reload: state.reloader.as_ref().map(|r| r.status()).unwrap_or_default(),
        orphaned_settings: snapshot.orphans().len(),
        audit_queue_depth: state.audit.depth(),
        audit_writer_healthy: state.audit.writer_healthy(),
        database: state.store.backend(),
        uptime_seconds: state.started.elapsed().as_secs(),
        rate_limit: crate::rate_limit::LimitsStatus::of(&state.limiter, &state.metrics),
        audit_verification: crate::audit::verify::Summary::last(&state.store).await,
    })
}
