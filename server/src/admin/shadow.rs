//! The shadow summary (`GET /api/admin/shadow`, the rules page): per rule
//! that ran in shadow over a period, how often its condition held and how
//! many decisions enforcing the shadow rules would have flipped each way,
//! with a few example decision ids.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::invalid;
use crate::error::ApiError;
use crate::state::AppState;

/// The longest period a summary covers, in days.
pub(crate) const MAX_DAYS: u32 = 366;
/// Example decision ids per rule and kind.
const EXAMPLES: usize = 3;
/// The newest decisions with shadow results read for examples.
const SCANNED_FOR_EXAMPLES: i64 = 1000;

/// Example decisions of one shadow rule, newest first.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub(crate) struct ShadowExamples {
    /// Allowed decisions the shadow rules would have blocked.
    pub(crate) allow_to_block: Vec<Uuid>,
    /// Blocked decisions the shadow rules would have allowed.
    pub(crate) block_to_allow: Vec<Uuid>,
    /// Decisions on which the rule held without changing `allowed`.
    pub(crate) unchanged: Vec<Uuid>,
}

/// One shadow rule over the period.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ShadowRuleSummary {
    /// The rule.
    pub(crate) rule: String,
    /// Decisions on which its condition held.
    pub(crate) matches: i64,
    /// Of those, allowed decisions that enforcing the shadow rules that
    /// held would have blocked.
    pub(crate) allow_to_block: i64,
    /// Of those, blocked decisions that it would have allowed.
    pub(crate) block_to_allow: i64,
    /// Up to 3 decision ids of each kind, among the newest 1,000 decisions
    /// with shadow results in the period.
    pub(crate) examples: ShadowExamples,
}

/// What one version of the shadow policy set would have changed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ShadowSetSummary {
    /// The shadow set's version.
    pub(crate) policy_version: String,
    /// Allowed decisions it would have blocked.
    pub(crate) allow_to_block: i64,
    /// Blocked decisions it would have allowed.
    pub(crate) block_to_allow: i64,
    /// Same verdict, another score.
    pub(crate) score_changed: i64,
    /// Same verdict and score, another reason.
    pub(crate) reason_changed: i64,
    /// Up to 3 decision ids of each kind (`unchanged` stays empty), among
    /// the newest 1,000 decisions with shadow results in the period.
    pub(crate) examples: ShadowSetExamples,
}

/// Example decisions the shadow set decided differently, newest first.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub(crate) struct ShadowSetExamples {
    /// Allowed, it would block.
    pub(crate) allow_to_block: Vec<Uuid>,
    /// Blocked, it would allow.
    pub(crate) block_to_allow: Vec<Uuid>,
    /// Another score.
    pub(crate) score_changed: Vec<Uuid>,
    /// Another reason.
    pub(crate) reason_changed: Vec<Uuid>,
}

/// The shadow summary.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ShadowSummary {
    /// The period, in UTC days: today and the days before it.
    pub(crate) days: u32,
    /// Its start (UTC midnight of its first day).
    pub(crate) since: DateTime<Utc>,
    /// Every rule that held in shadow in the period, by name.
    pub(crate) rules: Vec<ShadowRuleSummary>,
    /// Every version of the shadow policy set (`--shadow-policies`) that
    /// decided some request differently in the period, by version.
    pub(crate) sets: Vec<ShadowSetSummary>,
}

/// The summary over the last `days` days (1 to [`MAX_DAYS`]; else 422
/// naming `days`).
pub(crate) async fn summary(state: &AppState, days: u32) -> Result<ShadowSummary, ApiError> {
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(invalid("days", format!("`days` must be between 1 and {MAX_DAYS}")));
    }
    // UTC days, today and the `days - 1` before it, as the overview counts.
    let today = crate::store::now().date_naive();
    let first_day = today.checked_sub_days(Days::new(u64::from(days - 1))).unwrap_or(today);
    let since = crate::store::shadow_rollup::start_of(first_day);
    let tallies = state.store.shadow_tally(first_day).await?;
    let set_tallies = state.store.shadow_set_tally(first_day).await?;
    let mut examples: BTreeMap<String, ShadowExamples> = BTreeMap::new();
    let mut set_examples: BTreeMap<String, ShadowSetExamples> = BTreeMap::new();
    // Two samples, so neither kind of row crowds out the other's examples.
    for d in state.store.recent_shadow_decisions(since, SCANNED_FOR_EXAMPLES).await? {
        let Some(c) = &d.shadow.0.candidate else { continue };
        let e = set_examples.entry(c.policy_version.clone()).or_default();
        let list = match c.change(d.allowed, d.risk_score, &d.reason) {
            Some("allow_to_block") => Some(&mut e.allow_to_block),
            Some("block_to_allow") => Some(&mut e.block_to_allow),
            Some("score") => Some(&mut e.score_changed),
            Some(_) => Some(&mut e.reason_changed),
            None => None,
        };
        if let Some(list) = list.filter(|l| l.len() < EXAMPLES) {
            list.push(d.decision_id);
        }
    }
    for d in state.store.recent_shadow_rule_decisions(since, SCANNED_FOR_EXAMPLES).await? {
        let flip = d.shadow.0.flip(d.allowed);
        for m in &d.shadow.0.rules {
            let e = examples.entry(m.rule.clone()).or_default();
            let list = match flip {
                Some("allow_to_block") => &mut e.allow_to_block,
                Some(_) => &mut e.block_to_allow,
                None => &mut e.unchanged,
            };
            if list.len() < EXAMPLES {
                list.push(d.decision_id);
            }
        }
    }
    let rules = tallies
        .into_iter()
        .map(|t| ShadowRuleSummary {
            examples: examples.remove(&t.rule).unwrap_or_default(),
            rule: t.rule,
            matches: t.matches,
            allow_to_block: t.allow_to_block,
            block_to_allow: t.block_to_allow,
        })
        .collect();
    let sets = set_tallies
        .into_iter()
        .map(|t| ShadowSetSummary {
            examples: set_examples.remove(&t.policy_version).unwrap_or_default(),
            policy_version: t.policy_version,
            allow_to_block: t.allow_to_block,
            block_to_allow: t.block_to_allow,
            score_changed: t.score_changed,
            reason_changed: t.reason_changed,
        })
        .collect();
    Ok(ShadowSummary { days, since, rules, sets })
}
