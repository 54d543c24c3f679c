//! `/api/admin/logs`, `/api/admin/stats` and `/api/admin/audit`.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::input::Params;
use super::{PageParams, invalid};
use crate::error::ApiError;
use crate::http::Admin;
use crate::state::AppState;
use crate::store::{AdminEntry, AuditRow, LogFilter, Outcome, Page, Stats};

/// `/api/admin/logs`, `/api/admin/stats` and `/api/admin/audit`.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_logs)).routes(routes!(stats)).routes(routes!(admin_audit))
}

/// Audit log filters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct LogQuery {
    /// From 1 (default 1).
    #[param(minimum = 1, maximum = 4_294_967_295_u64, format = Int64)]
    page: Option<u32>,
    /// 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    page_size: Option<u32>,
    /// Exact model.
    #[param(pattern = "^[^\\u0000]*$")]
    model: Option<String>,
    /// Exact operation.
    #[param(pattern = "^[^\\u0000]*$")]
    operation: Option<String>,
    /// Outcome.
    #[param(inline)]
    status: Option<StatusFilter>,
    /// One customer.
    customer_id: Option<Uuid>,
    /// Exact reason or rejection code.
    #[param(pattern = "^[^\\u0000]*$")]
    reason: Option<String>,
    /// RFC 3339, inclusive.
    #[param(format = DateTime)]
    from: Option<String>,
    /// RFC 3339, exclusive.
    #[param(format = DateTime)]
    to: Option<String>,
    /// Keyset paging: rows older than this row id (use the last id of the
    /// previous page; faster than `page` deep into a large log).
    before_id: Option<i64>,
}

/// An outcome to filter on.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum StatusFilter {
    /// Allowed decisions.
    Allowed,
    /// Blocked decisions.
    Blocked,
    /// Requests refused before evaluation.
    Rejected,
}

fn timestamp(field: &str, raw: Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    raw.map(|s| {
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| invalid(field, format!("`{field}` must be an RFC 3339 time such as 2026-11-26T00:00:00Z")))
    })
    .transpose()
}

/// Decisions, newest first.
#[utoipa::path(get, path = "/api/admin/logs", tag = "admin", params(LogQuery),
    responses((status = 200, description = "A page of audit rows", body = Page<AuditRow>)))]
async fn list_logs(
    State(state): State<AppState>,
    _: Admin,
    Params(q): Params<LogQuery>,
) -> Result<Json<Page<AuditRow>>, ApiError> {
    let (page, size) = PageParams { page: q.page, page_size: q.page_size }.resolve()?;
    let status = q.status.map(|s| match s {
        StatusFilter::Allowed => Outcome::Allowed,
        StatusFilter::Blocked => Outcome::Blocked,
        StatusFilter::Rejected => Outcome::Rejected,
    });
    let filter = LogFilter {
        model: q.model,
        operation: q.operation,
        status,
        customer_id: q.customer_id,
        reason: q.reason,
        from: timestamp("from", q.from)?,
        to: timestamp("to", q.to)?,
        before_id: q.before_id,
    };
    Ok(Json(state.store.list_audit(&filter, page, size).await?))
}

/// `?days=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct StatsQuery {
    /// 1 to 366 (default 7).
    #[param(minimum = 1, maximum = 366)]
    days: Option<u32>,
}

/// Counts by outcome, reason, model and day.
#[utoipa::path(get, path = "/api/admin/stats", tag = "admin", params(StatsQuery),
    responses((status = 200, description = "Counts", body = Stats)))]
async fn stats(
    State(state): State<AppState>,
    _: Admin,
    Params(q): Params<StatsQuery>,
) -> Result<Json<Stats>, ApiError> {
    let days = q.days.unwrap_or(7);
    if !(1..=366).contains(&days) {
        return Err(invalid("days", "`days` must be between 1 and 366"));
    }
    Ok(Json(state.store.stats(days).await?))
}

/// Every admin change, newest first.
#[utoipa::path(get, path = "/api/admin/audit", tag = "admin", params(PageParams),
    responses((status = 200, description = "A page of admin changes", body = Page<AdminEntry>)))]
async fn admin_audit(
    State(state): State<AppState>,
    _: Admin,
    Params(params): Params<PageParams>,
) -> Result<Json<Page<AdminEntry>>, ApiError> {
    let (page, size) = params.resolve()?;
    Ok(Json(state.store.admin_audit(page, size).await?))
}
