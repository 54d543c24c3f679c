//! `/api/admin/policies`: every rule as the fleet gets it, and global
//! toggles.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warden_engine::{Effect, RuleInfo};

use super::input::{Body, Params, PathParams};
use super::{PageParams, apply_now, invalid};
use crate::error::{ApiError, ErrorBody};
use crate::http::Admin;
use crate::live::Snapshot;
use crate::state::AppState;
use crate::store::Page;

/// `/api/admin/policies` and `/api/admin/policies/{key}`.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_policies)).routes(routes!(patch_policy))
}

/// A rule as the fleet gets it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct RuleView {
    /// The rule's key.
    key: String,
    /// What it is for.
    description: String,
    /// `score`, `deny` or `allow`.
    effect: &'static str,
    /// The score, for score rules.
    score: Option<i64>,
    /// Whether it is on for customers without an override.
    enabled: bool,
    /// Whether the files enable it.
    enabled_in_files: bool,
    /// The global toggle, if one is set for this rule (an orphaned toggle,
    /// set for another rule of this name, is not: see `/api/admin/orphans`).
    global_toggle: Option<bool>,
    /// Its reason code.
    reason: String,
    /// Where it is defined, `file:line`.
    source: String,
    /// Blocked decisions with this rule's reason in the last 7 days.
    violations_last_7_days: i64,
}

/// A rule's effect as `(name, score)`.
pub(super) fn effect_parts(e: Effect) -> (&'static str, Option<i64>) {
    match e {
        Effect::Score(s) => ("score", Some(s)),
        Effect::Deny => ("deny", None),
        Effect::Allow => ("allow", None),
    }
}

fn rule_view(r: &RuleInfo<'_>, toggle: Option<bool>, violations: i64) -> RuleView {
    let (effect, score) = effect_parts(r.effect);
    RuleView {
        key: r.name.to_owned(),
        description: r.description.to_owned(),
        effect,
        score,
        enabled: toggle.unwrap_or(r.enabled),
        enabled_in_files: r.enabled,
        global_toggle: toggle,
        reason: r.reason.to_owned(),
        source: r.source.to_owned(),
        violations_last_7_days: violations,
    }
}

/// The rule `key` in the serving set, or 404.
pub(super) fn rule<'s>(snapshot: &'s Snapshot, key: &str) -> Result<RuleInfo<'s>, ApiError> {
    snapshot
        .policy
        .rules()
        .find(|r| r.name == key)
        .ok_or_else(|| ApiError::NotFound(format!("no rule `{key}` in the policy set")))
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
    let snapshot = state.live.load();
    let since = crate::store::now() - chrono::Duration::days(7);
    let blocks = state.store.blocks_by_reason(since).await?;
    let all: Vec<RuleView> = snapshot
        .policy
        .rules()
        .map(|r| {
            let toggle = snapshot.in_force.global.rules.get(r.name).and_then(|o| o.enabled);
            rule_view(&r, toggle, blocks.get(r.reason).copied().unwrap_or(0))
        })
        .collect();
    let total = all.len() as i64;
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
    let snapshot = state.live.load();
    rule(&snapshot, &key)?;
    let Body(t) = body?;
    let Some(enabled) = t.enabled else {
        return Err(invalid("enabled", "`enabled` is required: `true`, `false`, or `null` to follow the policy files"));
    };
    state.store.set_global_toggle(&snapshot.policy, &key, enabled, Some(actor.key_id)).await?;
    apply_now(&state).await;
    let snapshot = state.live.load();
    let r = rule(&snapshot, &key)?;
    let toggle = snapshot.in_force.global.rules.get(&key).and_then(|o| o.enabled);
    Ok(Json(rule_view(&r, toggle, 0)))
}
