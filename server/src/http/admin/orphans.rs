//! `/api/admin/orphans`: global toggles and per-customer overrides that
//! apply to nothing under the policy set this instance serves, because no
//! rule of their name is served (`rule_missing`) or the rule of that name
//! is not the one they were set for (`rule_changed`). Each instance works
//! this out against its own set. They apply again if their rule returns
//! unchanged, or once an admin sets them again (`PATCH
//! /api/admin/policies/{key}`, `PUT /api/admin/customers/{id}/policies/{key}`,
//! which re-confirm them for the rule now served); or they can be deleted
//! (here for a toggle, `DELETE /api/admin/customers/{id}/policies/{key}`
//! for an override).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::input::{Params, PathParams, storable};
use super::{PageParams, apply_now};
use crate::error::{ApiError, ErrorBody};
use crate::http::Admin;
use crate::state::AppState;
use crate::store::{Orphan, Page};

/// `/api/admin/orphans` and `/api/admin/orphans/toggles/{key}`.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_orphans)).routes(routes!(delete_orphaned_toggle))
}

/// Every orphaned setting under the set this instance serves, by rule
/// (global toggles first), with why it doesn't apply.
#[utoipa::path(get, path = "/api/admin/orphans", tag = "admin", params(PageParams),
    responses((status = 200, description = "A page of orphaned settings", body = Page<Orphan>)))]
async fn list_orphans(
    State(state): State<AppState>,
    _: Admin,
    Params(params): Params<PageParams>,
) -> Result<Json<Page<Orphan>>, ApiError> {
    let (page, size) = params.resolve()?;
    let snapshot = state.live.load();
    let all = snapshot.orphans();
    let total = i64::try_from(all.len()).unwrap_or(i64::MAX);
    let start = (page as usize - 1).saturating_mul(size as usize);
    let items = all.iter().skip(start).take(size as usize).cloned().collect();
    Ok(Json(Page { items, page, page_size: size, total }))
}

/// Delete an orphaned global toggle.
#[utoipa::path(delete, path = "/api/admin/orphans/toggles/{key}", tag = "admin",
    params(("key" = String, Path, description = "Rule key")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No orphaned toggle of this rule", body = ErrorBody)))]
async fn delete_orphaned_toggle(
    State(state): State<AppState>,
    Admin(actor): Admin,
    PathParams(key): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    let policy = state.live.load().policy.clone();
    if !storable(&key) || !state.store.delete_orphaned_toggle(&policy, &key, Some(actor.key_id)).await? {
        return Err(ApiError::NotFound(format!("no orphaned global toggle of `{}`", key.escape_default())));
    }
    apply_now(&state).await;
    Ok(StatusCode::NO_CONTENT)
}
