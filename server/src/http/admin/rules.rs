//! `/api/admin/policies`: every rule as the fleet gets it, and global
//! toggles.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::input::{Body, Params, PathParams};
use super::{PageParams, invalid};
use crate::admin::rules::{self, RuleView};
use crate::error::{ApiError, ErrorBody};
use crate::http::Admin;
use crate::state::AppState;
use crate::store::Page;

/// `/api/admin/policies` and `/api/admin/policies/{key}`.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_policies)).routes(routes!(patch_policy))
}

/// List every rule.
#[utoipa::path(get, path = "/api/admin/policies", tag = "admin", params(PageParams),
    responses((status = 200, description = "A page of rules, in source order", body = Page<RuleView>)))]
async fn list_policies(
    State(state): State<AppState>,
    _: Admin,
    Params(params): Params<PageParams>,
) -> Result<Json<Page<RuleView>>, ApiError> {
    let (page, size) = params.resolve()?;
    let all = rules::list(&state).await?;
    let total = i64::try_from(all.len()).unwrap_or(i64::MAX);
    let start = (page as usize - 1).saturating_mul(size as usize);
    let items = all.into_iter().skip(start).take(size as usize).collect();
    Ok(Json(Page { items, page, page_size: size, total }))
}

/// A global toggle.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Toggle {
    /// On or off for every customer without an override; `null` returns the
    /// rule to what the policy files say.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<bool>, required = true)]
    enabled: Option<Option<bool>>,
}

/// Tells `"enabled": null` (clear) from a missing `enabled` (an error).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<bool>>, D::Error> {
    Option::<bool>::deserialize(d).map(Some)
}

/// Turn a rule on or off globally.
#[utoipa::path(patch, path = "/api/admin/policies/{key}", tag = "admin", request_body = Toggle,
    params(("key" = String, Path, description = "Rule key")),
    responses(
        (status = 200, description = "The rule as now applied", body = RuleView),
        (status = 404, description = "Unknown rule", body = ErrorBody),
    ))]
async fn patch_policy(
    State(state): State<AppState>,
    Admin(actor): Admin,
    PathParams(key): PathParams<String>,
    body: Result<Body<Toggle>, ApiError>,
) -> Result<Json<RuleView>, ApiError> {
    // An unknown rule is 404 whatever the body.
    rules::rule(&state.live.load(), &key)?;
    let Body(t) = body?;
    let Some(enabled) = t.enabled else {
        return Err(invalid("enabled", "`enabled` is required: `true`, `false`, or `null` to follow the policy files"));
    };
    Ok(Json(rules::toggle(&state, actor.key_id, &key, enabled).await?))
}
