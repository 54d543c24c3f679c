//! `/api/admin/policies`: every rule as the fleet gets it, and global
//! toggles.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warden_engine::RuleMode;

use super::PageParams;
use super::input::{Body, Params, PathParams};
use crate::admin::rules::{self, RuleView, TogglePatch};
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

/// A change to a global toggle: `enabled`, `mode` or both; a field left
/// out keeps its value, `null` returns it to what the policy files say (an
/// empty body changes nothing).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Toggle {
    /// On or off for every customer without an override.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<bool>)]
    enabled: Option<Option<bool>>,
    /// `enforce`, `shadow` or `off` for every customer without an
    /// override. `enforce` and `shadow` switch the rule on; `off` is
    /// `enabled: false` and keeps the mode for when the rule is switched on
    /// again. Given with `enabled`, `mode` wins.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<ModeBody>)]
    mode: Option<Option<ModeBody>>,
}

/// A rule mode as an admin body writes it.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum ModeBody {
    /// Its effect counts.
    Enforce,
    /// Evaluated and reported, never changing a decision.
    Shadow,
    /// Not evaluated.
    Off,
}

impl From<ModeBody> for RuleMode {
    fn from(m: ModeBody) -> Self {
        match m {
            ModeBody::Enforce => Self::Enforce,
            ModeBody::Shadow => Self::Shadow,
            ModeBody::Off => Self::Off,
        }
    }
}

/// Tells `"field": null` (clear) from a missing field (left as it is).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Turn a rule on or off, or put it in shadow, globally.
#[utoipa::path(patch, path = "/api/admin/policies/{key}", tag = "admin", request_body = Toggle,
    params(("key" = String, Path, description = "Rule key")),
    responses(
        (status = 200, description = "The rule as now applied", body = RuleView),
        (status = 404, description = "Unknown rule", body = ErrorBody),
        (status = 422, description = "A `mode` other than enforce, shadow or off, or an `enabled` that is not a boolean", body = ErrorBody),
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
    // An empty patch changes nothing (RFC 7396): the rule as it is.
    if t.enabled.is_none() && t.mode.is_none() {
        return Ok(Json(rules::get(&state, &key).await?));
    }
    let patch = TogglePatch { enabled: t.enabled, mode: t.mode.map(|m| m.map(RuleMode::from)) };
    Ok(Json(rules::toggle(&state, actor.key_id, &key, patch).await?))
}
