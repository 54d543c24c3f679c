//! The admin API (admin keys only; an app key gets 403). Lists are paged:
//! `{items, page, page_size, total}` with `page_size` at most 500.

pub mod customers;
pub mod keys;
pub mod logs;
pub mod policies;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Admin;
use crate::app::AppState;
use crate::error::ApiError;
use crate::reload::ReloadStatus;

/// Largest page.
pub const MAX_PAGE_SIZE: u32 = 500;

/// `?page=&page_size=`.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::IntoParams)]
pub struct PageParams {
    /// From 1 (default 1).
    pub page: Option<u32>,
    /// 1 to 500 (default 50).
    pub page_size: Option<u32>,
}

impl PageParams {
    /// `(page, page_size)`, validated.
    pub fn resolve(self) -> Result<(u32, u32), ApiError> {
        let page = self.page.unwrap_or(1);
        let size = self.page_size.unwrap_or(50);
        if page == 0 {
            return Err(invalid("page", "`page` starts at 1"));
        }
        if size == 0 || size > MAX_PAGE_SIZE {
            return Err(invalid("page_size", format!("`page_size` must be between 1 and {MAX_PAGE_SIZE}")));
        }
        Ok((page, size))
    }
}

/// A 422 naming `field`.
pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::Invalid { field: field.to_owned(), message: message.into() }
}

/// A JSON body for the admin API: malformed JSON is 400; well-formed JSON of
/// the wrong shape is 422 naming the field.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = state.max_body_bytes;
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(limit)
            } else {
                ApiError::BadJson(r.body_text())
            }
        })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        let mut de = serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(&mut de).map(Body).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if !inner.is_data() {
                return ApiError::BadJson(inner.to_string());
            }
            let message = inner.to_string();
            // A missing field is reported at its parent's path, with the
            // field named in the message: "missing field `email`".
            let missing = message.strip_prefix("missing field `").and_then(|m| m.split('`').next());
            let named = message.split('`').nth(1);
            let field = match (path.as_str(), missing) {
                (".", Some(f)) => f.to_owned(),
                (p, Some(f)) => format!("{p}.{f}"),
                (".", None) => named.unwrap_or("body").to_owned(),
                (p, None) => p.to_owned(),
            };
            ApiError::Invalid { field, message }
        })
    }
}

/// Parses a path id; a malformed one is as unknown as a missing one.
pub fn parse_id(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw).map_err(|_| ApiError::NotFound(format!("no {what} with id `{raw}`")))
}

/// What the service is running.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Status {
    /// The policy version being served.
    policy_version: String,
    /// The policy files it was compiled from.
    files: Vec<String>,
    /// How many rules.
    rules: usize,
    /// The last reload of the policy files, and its error if it failed.
    reload: ReloadStatus,
    /// Audit rows waiting to be written.
    audit_queue_depth: usize,
    /// Whether the audit writer is reaching the database.
    audit_writer_healthy: bool,
    /// The database backend.
    database: &'static str,
    /// Seconds since start.
    uptime_seconds: u64,
}

/// Service status: policy version, files, last reload and its diagnostics,
/// audit queue, uptime.
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
        reload: state.reloader.as_ref().map(|r| r.status()).unwrap_or_default(),
        audit_queue_depth: state.audit.depth(),
        audit_writer_healthy: state.audit.writer_healthy(),
        database: state.store.backend(),
        uptime_seconds: state.started.elapsed().as_secs(),
    }))
}

/// After a committed change: this instance sees it on its very next
/// request. If reloading fails here the change still stands (it is
/// committed), so the answer is still success; the background poll applies
/// it within a second.
pub async fn apply_now(state: &AppState) -> Result<(), ApiError> {
    if let Err(e) = state.live.reload_overrides(&state.store).await {
        tracing::warn!(error = %e, "change committed; applying it at the next poll");
    }
    Ok(())
}

/// Query parameters, with a malformed one reported as 422 naming it.
pub fn query<T>(q: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>) -> Result<T, ApiError> {
    match q {
        Ok(axum::extract::Query(v)) => Ok(v),
        Err(e) => {
            let message = e.body_text();
            // "Failed to deserialize query string: page: invalid digit …"
            let detail = message.split_once("query string: ").map_or(message.as_str(), |(_, d)| d);
            let field = match detail.split_once(": ") {
                Some((f, _)) if !f.contains(' ') => f.to_owned(),
                _ => "query".to_owned(),
            };
            Err(ApiError::Invalid { field, message })
        }
    }
}

/// The customer with this path id, or 404.
pub async fn customer(state: &AppState, raw: &str) -> Result<crate::store::Customer, ApiError> {
    let id = parse_id(raw, "customer")?;
    state.store.customer(id).await?.ok_or_else(|| ApiError::NotFound(format!("no customer with id `{id}`")))
}
