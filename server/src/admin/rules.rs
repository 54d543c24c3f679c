//! Rules as the fleet gets them: their global toggles, their blocks, their
//! source text, and the customers that override them.

use chrono::{Days, NaiveDate};
use serde::Serialize;
use uuid::Uuid;
use warden_engine::{Effect, RuleInfo, RuleMode, RuleOverride};

use super::apply_now;
use crate::error::ApiError;
use crate::live::Snapshot;
use crate::state::AppState;
use crate::store::{Customer, OrphanReason};

/// The window of [`RuleView::violations_last_7_days`], in days.
const RECENT_DAYS: u64 = 7;

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
    /// How it runs for customers without an override: `enforce`, `shadow`
    /// or `off`.
    pub(crate) mode: &'static str,
    /// Its mode in the files: `enforce` or `shadow` (whether it is enabled
    /// there is `enabled_in_files`).
    pub(crate) mode_in_files: &'static str,
    /// The mode set by the global toggle (`enforce` or `shadow`), if any.
    pub(crate) global_mode: Option<&'static str>,
    /// Its reason code.
    pub(crate) reason: String,
    /// Where it is defined, `file:line`.
    pub(crate) source: String,
    /// Blocked decisions with this rule's reason in the last 7 days (UTC
    /// days: today and the 6 before).
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
    let global = snapshot.in_force.global.rules.get(r.name);
    let toggle = global.and_then(|o| o.enabled);
    let (effect, score) = effect_parts(r.effect);
    RuleView {
        key: r.name.to_owned(),
        description: r.description.to_owned(),
        effect,
        score,
        enabled: toggle.unwrap_or(r.enabled),
        enabled_in_files: r.enabled,
        global_toggle: toggle,
        mode: warden_engine::mode_in_force(r.enabled, r.mode, global).as_str(),
        mode_in_files: r.mode.keyword(),
        global_mode: global.and_then(|o| o.mode).map(RuleMode::as_str),
        reason: r.reason.to_owned(),
        source: r.source.to_owned(),
        violations_last_7_days: violations,
    }
}

/// Blocked decisions per reason over the last 7 UTC days (today and the
/// 6 before it, as the overview counts them).
async fn recent_blocks(state: &AppState) -> Result<std::collections::HashMap<String, i64>, ApiError> {
    let today = crate::store::now().date_naive();
    let first = today.checked_sub_days(Days::new(RECENT_DAYS - 1)).unwrap_or(today);
    Ok(state.store.blocks_per_reason(first).await?)
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

/// A change to a global toggle, as `PATCH /api/admin/policies/{key}`
/// gives it: each field `None` leaves what is stored, `Some(None)` returns
/// it to what the policy files say.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TogglePatch {
    /// On or off.
    pub(crate) enabled: Option<Option<bool>>,
    /// `enforce`, `shadow` or `off` (`off` is `enabled: false`).
    pub(crate) mode: Option<Option<RuleMode>>,
}

impl TogglePatch {
    /// The toggle `current` with this change made: `mode` `enforce` or
    /// `shadow` sets the mode and switches the rule on; `off` switches it
    /// off and keeps the stored mode for when it is switched on again;
    /// `null` returns the mode to the files'. Given with a mode, `enabled`
    /// is ignored (`mode` wins).
    fn apply(self, current: RuleOverride) -> RuleOverride {
        let mut t = RuleOverride { score: None, ..current };
        match self.mode {
            Some(Some(RuleMode::Off)) => t.enabled = Some(false),
            Some(Some(m)) => {
                t.mode = Some(m);
                t.enabled = Some(true);
            }
            Some(None) => {
                t.mode = None;
                if let Some(enabled) = self.enabled {
                    t.enabled = enabled;
                }
            }
            None => {
                if let Some(enabled) = self.enabled {
                    t.enabled = enabled;
                }
            }
        }
        t
    }
}

/// Changes how the rule `key` runs for every customer without an override
/// of it, from the next request on: on or off, enforced or in shadow (see
/// [`TogglePatch`]). 404 for a rule the serving set lacks. Recorded as
/// `policy.toggle`, with the values in force before and after. Returns the
/// rule as now applied.
pub(crate) async fn toggle(state: &AppState, actor: Uuid, key: &str, patch: TogglePatch) -> Result<RuleView, ApiError> {
    let snapshot = state.live.load();
    rule(&snapshot, key)?;
    // Merged onto what is stored (not this instance's snapshot, which may
    // not have another instance's last change yet); an orphaned toggle is
    // replaced, not merged with.
    let current = state.store.global_toggle(&snapshot.policy, key).await?.unwrap_or_default();
    let toggle = patch.apply(current);
    state.store.set_global_toggle(&snapshot.policy, key, toggle, Some(actor)).await?;
    apply_now(state).await;
    get(state, key).await
}

/// Blocked decisions on one UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DayBlocks {
    /// The day (UTC).
    pub(crate) day: NaiveDate,
    /// Blocked decisions with the rule's reason that day.
    pub(crate) blocks: i64,
}

/// The rule's blocks (decisions blocked with its reason) on each of the
/// last `days` UTC days, today last, days without blocks included as 0.
/// 404 for a rule the serving set lacks.
pub(crate) async fn blocks_per_day(state: &AppState, key: &str, days: u32) -> Result<Vec<DayBlocks>, ApiError> {
    let reason = rule(&state.live.load(), key)?.reason.to_owned();
    let today = crate::store::now().date_naive();
    let first = today.checked_sub_days(Days::new(u64::from(days.saturating_sub(1)))).unwrap_or(today);
    let counts = state.store.blocks_per_day(&reason, first, today).await?;
    Ok(first
        .iter_days()
        .take_while(|d| *d <= today)
        .map(|day| DayBlocks { day, blocks: counts.get(&day).copied().unwrap_or(0) })
        .collect())
}

/// One line of a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceLine {
    /// From 1.
    pub(crate) number: usize,
    /// The line's text, without its line break.
    pub(crate) text: String,
    /// Whether the rule is written on it.
    pub(crate) highlighted: bool,
}

/// The file a rule is written in, as the serving set was loaded from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleSource {
    /// The file's path relative to the policy directory.
    pub(crate) file: String,
    /// Every line of the file.
    pub(crate) lines: Vec<SourceLine>,
}

/// The text of the file that defines `key`, with the rule's lines marked.
/// 404 for a rule the serving set lacks.
pub(crate) fn source(snapshot: &Snapshot, key: &str) -> Result<RuleSource, ApiError> {
    rule(snapshot, key)?;
    let set = snapshot.policy.set();
    let def = set.rules.iter().find(|r| r.node.name.node == key);
    let Some((file, span)) = def.and_then(|d| set.source(&d.loc).map(|f| (f, &d.loc.span))) else {
        return Err(ApiError::Internal(format!("the set has rule `{key}` but not its source file")));
    };
    let (first, _) = file.line_col(span.start);
    let (last, _) = file.line_col(span.end);
    let lines = file
        .text
        .lines()
        .enumerate()
        .map(|(i, text)| SourceLine {
            number: i + 1,
            text: text.to_owned(),
            highlighted: (first..=last).contains(&(i + 1)),
        })
        .collect();
    Ok(RuleSource { file: file.name.clone(), lines })
}

/// A customer's override of one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Overrider {
    /// The customer.
    pub(crate) customer: Customer,
    /// On or off for this customer (`None`: not overridden).
    pub(crate) enabled: Option<bool>,
    /// This customer's score (`None`: not overridden).
    pub(crate) score: Option<i64>,
    /// This customer's mode, `enforce` or `shadow` (`None`: not overridden).
    pub(crate) mode: Option<&'static str>,
    /// Why it applies to nothing, if it doesn't (set for another rule of
    /// this name).
    pub(crate) orphaned: Option<OrphanReason>,
}

/// The customers with an override of `key`, by name, at most `limit`, and
/// how many there are. 404 for a rule the serving set lacks.
pub(crate) async fn overriders(state: &AppState, key: &str, limit: u32) -> Result<(Vec<Overrider>, i64), ApiError> {
    let snapshot = state.live.load();
    rule(&snapshot, key)?;
    let (rows, total) = state.store.overrides_of_rule(key, limit).await?;
    let items = rows
        .into_iter()
        .map(|(customer, o)| Overrider {
            orphaned: o.orphaned(&snapshot.policy, key),
            customer,
            enabled: o.rule.enabled,
            score: o.rule.score,
            mode: o.rule.mode.map(RuleMode::as_str),
        })
        .collect();
    Ok((items, total))
}
