//! `GET /health`, `GET /ready`, `GET /metrics`, `GET /openapi.json`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use crate::state::AppState;

/// Liveness: answers as long as the process serves HTTP. No auth, no database.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, description = "Alive", body = Object, example = json!({"status": "ok"}))))]
pub async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// How long readiness waits for the database: well inside a probe's usual
/// 1 s timeout, so a database that hangs is reported, not timed out on.
const READY_PING_TIMEOUT: Duration = Duration::from_millis(500);

/// Readiness: the policies are loaded, the database answers and the audit
/// writer is keeping up. 503 names the part that failed. Answers within
/// [`READY_PING_TIMEOUT`] (plus a moment) even if the database hangs.
///
/// A failing Redis doesn't make the instance unready (the rate-limit
/// fallback answers meanwhile): the answer stays 200 with `status:
/// "degraded"` and `checks.rate_limit` saying so.
#[utoipa::path(get, path = "/ready", tag = "operations", responses(
    (status = 200, description = "Ready (`status` is `ready`, or `degraded` while Redis fails)", body = Object),
    (status = 503, description = "Not ready; `message` names the failing part", body = Object),
))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let snapshot = state.live.load();
    let database = match tokio::time::timeout(READY_PING_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            // The details (host, user, driver message) go to the log, not to
            // an unauthenticated caller.
            tracing::warn!(error = %e, "readiness: the database did not answer");
            Err("the database did not answer".to_owned())
        }
        Err(_) => Err(format!("no answer within {} ms", READY_PING_TIMEOUT.as_millis())),
    };
    let audit_ok = state.audit.writer_healthy();
    let limits = state.limiter.status();
    let limits_ok = limits.state != crate::rate_limit::BackendState::Error;
    let checks = json!({
        "policies": { "ok": true, "version": snapshot.policy.version(), "rules": snapshot.policy.set().rules.len() },
        "database": { "ok": database.is_ok(), "backend": state.store.backend() },
        "audit": { "ok": audit_ok, "queue_depth": state.audit.depth(), "queue_capacity": state.audit.capacity() },
        "rate_limit": {
            "ok": limits_ok,
            "backend": limits.backend,
            "state": limits.state,
            "on_redis_error": limits.on_redis_error,
            "message": (!limits_ok).then_some(
                "Redis is not answering: rate limits and failed-verification counts are not shared until it does"
            ),
        },
    });
    let failure = match (&database, audit_ok) {
        (Err(e), _) => Some(format!("database: {e}")),
        (Ok(()), false) => Some(
            "audit: the writer cannot reach the database; rows are spilled to the local disk (or queued) until it can"
                .to_owned(),
        ),
        _ => None,
    };
    match failure {
        None => {
            let status = if limits_ok { "ready" } else { "degraded" };
            (StatusCode::OK, Json(json!({ "status": status, "checks": checks }))).into_response()
        }
        Some(message) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": "not_ready", "message": message, "checks": checks })),
        )
            .into_response(),
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.metrics.render(state.audit.depth());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
pub async fn openapi_json(Extension(api): Extension<Arc<utoipa::openapi::OpenApi>>) -> Json<utoipa::openapi::OpenApi> {
    Json((*api).clone())
}
