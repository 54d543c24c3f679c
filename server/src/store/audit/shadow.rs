//! What an audit row records about shadow rules: which held, and the
//! outcome had they been enforced (`usage_log.shadow`, JSON, NULL when no
//! shadow rule held). The `/v1/check` response carries the same shapes.

use serde::{Deserialize, Serialize};
use warden_engine::Decision;

/// A shadow rule whose condition held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShadowMatch {
    /// The rule's name.
    pub rule: String,
    /// `score`, `deny` or `allow`.
    pub effect: String,
    /// What it would add to the score (after overrides); 0 for deny and
    /// allow rules.
    pub score: i64,
}

impl ShadowMatch {
    /// The shadow rules that held in `d`, in source order.
    pub fn of(d: &Decision<'_>) -> Vec<Self> {
        d.shadow.iter().map(|m| Self { rule: m.rule.to_owned(), effect: m.effect.to_owned(), score: m.score }).collect()
    }
}

/// A decision's outcome had its shadow rules been enforced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShadowOutcome {
    /// Whether the operation would go ahead.
    pub allowed: bool,
    /// The summed score, shadow rules included.
    pub risk_score: i64,
    /// The reason, chosen over enforced and shadow rules together.
    pub reason: String,
}

impl ShadowOutcome {
    /// `d`'s shadow outcome, when a shadow rule held.
    pub fn of(d: &Decision<'_>) -> Option<Self> {
        d.shadow_outcome.as_ref().map(|o| Self {
            allowed: o.allowed,
            risk_score: o.risk_score,
            reason: o.reason.to_owned(),
        })
    }
}

/// `usage_log.shadow`: `{"rules": [...], "outcome": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShadowRecord {
    /// The shadow rules that held, in source order.
    pub rules: Vec<ShadowMatch>,
    /// The outcome had they been enforced.
    pub outcome: ShadowOutcome,
}

impl ShadowRecord {
    /// What `d`'s audit row records of its shadow rules; `None` when none
    /// held.
    pub fn of(d: &Decision<'_>) -> Option<Self> {
        Some(Self { rules: ShadowMatch::of(d), outcome: ShadowOutcome::of(d)? })
    }

    /// Whether enforcing the shadow rules would change `allowed`:
    /// `Some("allow_to_block")`, `Some("block_to_allow")` or `None`.
    pub fn flip(&self, allowed: bool) -> Option<&'static str> {
        match (allowed, self.outcome.allowed) {
            (true, false) => Some("allow_to_block"),
            (false, true) => Some("block_to_allow"),
            _ => None,
        }
    }
}
