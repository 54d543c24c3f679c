//! Rules as the fleet gets them: their global toggles, their blocks, their
//! source text, and the customers that override them.

use serde::Serialize;
use uuid::Uuid;
use warden_engine::{Effect, RuleInfo};

use super::apply_now;
use crate::error::ApiError;
use crate::live::Snapshot;
use crate::state::AppState;

/// The window of [`RuleView::violations_last_7_days`], in days.
const RECENT_DAYS: i64 = 7;

/// A rule as the fleet gets it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RuleView {
    /// The rule's key.
    pub(crate) key: String,
    /// What it is for.
    pub(crate) description: String,
    /// `score`, `deny` or `allow`.
    pub(crate) effect: &'static str,
    /// The score, for score rules.
    pub(crate) score: Option<i64>,
    /// Whether it is on for customers without an override.
    pub(crate) enabled: bool,
    /// Whether the files enable it.
    pub(crate) enabled_in_files: bool,
    /// The global toggle, if one is set for this rule (an orphaned toggle,
    /// set for another rule of this name, is not: see `/api/admin/orphans`).
    pub(crate) global_toggle: Option<bool>,
    /// Its reason code.
    pub(crate) reason: String,
    /// Where it is defined, `file:line`.
    pub(crate) source: String,
    /// Blocked decisions with this rule's reason in the last 7 days.
    pub(crate) violations_last_7_days: i64,
}

/// A rule's effect as `(name, score)`.
pub(crate) fn effect_parts(e: Effect) -> (&'static str, Option<i64>) {
    match e {
        Effect::Score(s) => ("score", Some(s)),
        Effect::Deny => ("deny", None),
        Effect::Allow => ("allow", None),
    }
}

/// The rule `key` in the serving set, or 404.
pub(crate) fn rule<'s>(snapshot: &'s Snapshot, key: &str) -> Result<RuleInfo<'s>, ApiError> {
    snapshot
        .policy
        .rules()
        .find(|r| r.name == key)
        .ok_or_else(|| ApiError::NotFound(format!("no rule `{key}` in the policy set")))
}

fn view(snapshot: &Snapshot, r: &RuleInfo<'_>, violations: i64) -> RuleView {
    let toggle = snapshot.in_force.global.rules.get(r.name).and_then(|o| o.enabled);
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

/// Blocked decisions per reason over the last 7 days.
async fn recent_blocks(state: &AppState) -> Result<std::collections::HashMap<String, i64>, ApiError> {
    let since = crate::store::now() - chrono::Duration::days(RECENT_DAYS);
    Ok(state.store.blocks_by_reason(since).await?)
}

/// Every rule of the serving set, in source order.
pub(crate) async fn list(state: &AppState) -> Result<Vec<RuleView>, ApiError> {
    let blocks = recent_blocks(state).await?;
    let snapshot = state.live.load();
    Ok(snapshot.policy.rules().map(|r| view(&snapshot, &r, blocks.get(r.reason).copied().unwrap_or(0))).collect())
}

/// One rule, or 404.
pub(crate) async fn get(state: &AppState, key: &str) -> Result<RuleView, ApiError> {
    let snapshot = state.live.load();
    let r = rule(&snapshot, key)?;
    let blocks = recent_blocks(state).await?;
    Ok(view(&snapshot, &r, blocks.get(r.reason).copied().unwrap_or(0)))
}

/// Turns the rule `key` on or off for every customer without an override
/// of it, from the next request on; `None` returns it to what the policy
/// files say. 404 for a rule the serving set lacks. Recorded as
/// `policy.toggle`, with the value in force before and after. Returns the
/// rule as now applied.
pub(crate) async fn toggle(
    state: &AppState,
    actor: Uuid,
    key: &str,
    enabled: Option<bool>,
) -> Result<RuleView, ApiError> {
    let snapshot = state.live.load();
    rule(&snapshot, key)?;
    state.store.set_global_toggle(&snapshot.policy, key, enabled, Some(actor)).await?;
    apply_now(state).await;
    get(state, key).await
}
