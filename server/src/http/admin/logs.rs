//! `/api/admin/logs`, `/api/admin/stats` and `/api/admin/audit`.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::input::Params;
use super::{PageParams, invalid};
use crate::error::ApiError;
use crate::http::Admin;
use crate::state::AppState;
use crate::store::{AdminEntry, AdminFilter, AuditRow, Cursor, LogFilter, Outcome, Page, Stats};

/// `/api/admin/logs`, `/api/admin/stats` and `/api/admin/audit`.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_logs)).routes(routes!(stats)).routes(routes!(admin_audit))
}

/// The decision log's filters as a query string gives them, shared by
/// `/api/admin/logs`, `/ui/logs` and `/ui/logs.csv`: [`LogFilterParams::filter`]
/// is the one place they are checked. Values stay text until then, so a
/// page can show back what was typed; an empty value is no filter (a GET
/// form sends every field).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LogFilterParams {
    /// Outcome: `allowed`, `blocked` or `rejected`.
    #[param(value_type = Option<StatusFilter>, inline)]
    #[serde(default, deserialize_with = "blank_is_none", skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Exact model.
    #[param(pattern = "^[^\\u0000]*$")]
    #[serde(default, deserialize_with = "blank_is_none", skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Exact operation.
    #[param(pattern = "^[^\\u0000]*$")]
    #[serde(default, deserialize_with = "blank_is_none", skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// One customer.
    #[param(value_type = Option<Uuid>)]
    #[serde(default, deserialize_with = "blank_is_none", skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// Exact reason or rejection code.
    #[param(pattern = "^[^\\u0000]*$")]
    #[serde(default, deserialize_with = "blank_is_none", skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// RFC 3339, inclusive.
    #[param(format = DateTime)]
    #[serde(default, deserialize_with = "blank_is_none", skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// RFC 3339, exclusive.
    #[param(format = DateTime)]
    #[serde(default, deserialize_with = "blank_is_none", skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// Text that is empty or only spaces reads as absent.
fn blank_is_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.trim().is_empty()))
}

impl LogFilterParams {
    /// The filters that are set, as query-string pairs (for links that
    /// keep them).
    pub(crate) fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("status", &self.status),
            ("model", &self.model),
            ("operation", &self.operation),
            ("customer_id", &self.customer_id),
            ("reason", &self.reason),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k, v.as_deref()?)))
        .collect()
    }

    /// The filter, checked: an unknown status, a customer id that is not a
    /// UUID, a time that is not RFC 3339 or text the database can't store
    /// is a 422 naming the parameter.
    pub(crate) fn filter(&self) -> Result<LogFilter, ApiError> {
        let text = |field: &str, v: &Option<String>| -> Result<Option<String>, ApiError> {
            match v {
                Some(s) if !super::input::storable(s) => {
                    Err(invalid(field, format!("`{field}` contains a NUL character (U+0000); remove it")))
                }
                _ => Ok(v.clone()),
            }
        };
        let status = match self.status.as_deref() {
            None => None,
            Some("allowed") => Some(Outcome::Allowed),
            Some("blocked") => Some(Outcome::Blocked),
            Some("rejected") => Some(Outcome::Rejected),
            Some(_) => return Err(invalid("status", "`status` must be `allowed`, `blocked` or `rejected`")),
        };
        let customer_id = self
            .customer_id
            .as_deref()
            .map(|s| Uuid::try_parse(s.trim()))
            .transpose()
            .map_err(|_| invalid("customer_id", "`customer_id` must be a customer id (a UUID)"))?;
        Ok(LogFilter {
            model: text("model", &self.model)?,
            operation: text("operation", &self.operation)?,
            status,
            customer_id,
            reason: text("reason", &self.reason)?,
            from: timestamp("from", self.from.as_deref())?,
            to: timestamp("to", self.to.as_deref())?,
        })
    }
}

/// Offset paging for `/api/admin/logs`, and its keyset alternative.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct LogPaging {
    /// From 1 (default 1).
    #[param(minimum = 1, maximum = 4_294_967_295_u64, format = Int64)]
    page: Option<u32>,
    /// 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    page_size: Option<u32>,
    /// Keyset paging: rows older than this row id (use the last id of the
    /// previous page; faster than `page` deep into a large log).
    before_id: Option<i64>,
}

/// A keyset position in the query string, as the dashboard's pager links
/// write it: `before` (older than this row id) or `after` (newer).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct CursorParams {
    /// Older than this row id.
    #[serde(default, deserialize_with = "blank_is_none")]
    pub before: Option<String>,
    /// Newer than this row id.
    #[serde(default, deserialize_with = "blank_is_none")]
    pub after: Option<String>,
}

impl CursorParams {
    /// The cursor, checked: each must be a row id (an integer), and only
    /// one may be given.
    pub(crate) fn cursor(&self) -> Result<Cursor, ApiError> {
        let id = |field: &str, v: &str| {
            v.trim().parse::<i64>().map_err(|_| invalid(field, format!("`{field}` must be a row id (an integer)")))
        };
        match (self.before.as_deref(), self.after.as_deref()) {
            (None, None) => Ok(Cursor::Newest),
            (Some(b), None) => id("before", b).map(Cursor::Before),
            (None, Some(a)) => id("after", a).map(Cursor::After),
            (Some(_), Some(_)) => Err(invalid("after", "give `before` or `after`, not both")),
        }
    }
}

/// An outcome to filter on (for the OpenAPI document).
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // documentation only: the parameter is read as text
enum StatusFilter {
    /// Allowed decisions.
    Allowed,
    /// Blocked decisions.
    Blocked,
    /// Requests refused before evaluation.
    Rejected,
}

fn timestamp(field: &str, raw: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    raw.map(|s| {
        DateTime::parse_from_rfc3339(s.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| invalid(field, format!("`{field}` must be an RFC 3339 time such as 2026-11-26T00:00:00Z")))
    })
    .transpose()
}

/// The API reads a blank parameter of a typed filter (`?to=`, `?actor=`) as
/// the mistake it is: a 422 naming it. (The dashboard's GET forms send every
/// field, so there a blank value is no filter; [`LogFilterParams`] reads it
/// so for both.)
fn refuse_blank(uri: &axum::http::Uri, typed: &[&str]) -> Result<(), ApiError> {
    let query = uri.query().unwrap_or_default();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if value.trim().is_empty() {
            if let Some(name) = typed.iter().find(|t| **t == name) {
                return Err(invalid(name, format!("`{name}` is empty: give a value or leave the parameter out")));
            }
        }
    }
    Ok(())
}

/// Decisions, newest first.
#[utoipa::path(get, path = "/api/admin/logs", tag = "admin", params(LogFilterParams, LogPaging),
    responses((status = 200, description = "A page of audit rows", body = Page<AuditRow>)))]
async fn list_logs(
    State(state): State<AppState>,
    _: Admin,
    uri: axum::http::Uri,
    Params(filters): Params<LogFilterParams>,
    Params(q): Params<LogPaging>,
) -> Result<Json<Page<AuditRow>>, ApiError> {
    refuse_blank(&uri, &["status", "customer_id", "from", "to"])?;
    let (page, size) = PageParams { page: q.page, page_size: q.page_size }.resolve()?;
    let filter = filters.filter()?;
    Ok(Json(state.store.list_audit_paged(&filter, q.before_id, page, size).await?))
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

/// The admin trail's filters as a query string gives them, shared by
/// `/api/admin/audit` and `/ui/audit`. An empty value is no filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AdminFilterParams {
    /// Exact action, e.g. `policy.toggle`.
    #[param(pattern = "^[^\\u0000]*$")]
    #[serde(default, deserialize_with = "blank_is_none", skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Changes made by this admin key (its id).
    #[param(value_type = Option<Uuid>)]
    #[serde(default, deserialize_with = "blank_is_none", skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

impl AdminFilterParams {
    /// The filter, checked: a 422 naming the parameter when `actor` is not
    /// a key id or `action` can't be stored.
    pub(crate) fn filter(&self) -> Result<AdminFilter, ApiError> {
        if self.action.as_deref().is_some_and(|a| !super::input::storable(a)) {
            return Err(invalid("action", "`action` contains a NUL character (U+0000); remove it"));
        }
        let actor_key_id = self
            .actor
            .as_deref()
            .map(|s| Uuid::try_parse(s.trim()))
            .transpose()
            .map_err(|_| invalid("actor", "`actor` must be a key id (a UUID)"))?;
        Ok(AdminFilter { action: self.action.clone(), actor_key_id })
    }
}

/// Every admin change, newest first.
#[utoipa::path(get, path = "/api/admin/audit", tag = "admin", params(AdminFilterParams, PageParams),
    responses((status = 200, description = "A page of admin changes", body = Page<AdminEntry>)))]
async fn admin_audit(
    State(state): State<AppState>,
    _: Admin,
    uri: axum::http::Uri,
    Params(filters): Params<AdminFilterParams>,
    Params(params): Params<PageParams>,
) -> Result<Json<Page<AdminEntry>>, ApiError> {
    refuse_blank(&uri, &["actor"])?;
    let (page, size) = params.resolve()?;
    Ok(Json(state.store.admin_audit_filtered(&filters.filter()?, page, size).await?))
}
