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

/// What the shadow policy set (`--shadow-policies`) decided, recorded where
/// it differs from the enforced decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CandidateOutcome {
    /// Whether it would allow the operation.
    pub allowed: bool,
    /// Its risk score.
    pub risk_score: i64,
    /// Its reason (its rejection code when it refuses the request).
    pub reason: String,
    /// The shadow set's version.
    pub policy_version: String,
    /// Whether it refuses the request before evaluation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rejected: bool,
}

impl CandidateOutcome {
    /// How it differs from the enforced decision `(allowed, risk_score,
    /// reason)`: `allow_to_block`, `block_to_allow`, `score`, `reason`, or
    /// `None` when it doesn't.
    pub fn change(&self, allowed: bool, risk_score: i64, reason: &str) -> Option<&'static str> {
        change_between((allowed, risk_score, reason), (self.allowed, self.risk_score, &self.reason))
    }
}

/// How decision `b` differs from decision `a`, each `(allowed, risk_score,
/// reason)`: `allow_to_block`, `block_to_allow`, `score` (same verdict),
/// `reason` (same verdict and score), or `None`.
pub fn change_between(a: (bool, i64, &str), b: (bool, i64, &str)) -> Option<&'static str> {
    match (a.0, b.0) {
        (true, false) => Some("allow_to_block"),
        (false, true) => Some("block_to_allow"),
        _ if a.1 != b.1 => Some("score"),
        _ if a.2 != b.2 => Some("reason"),
        _ => None,
    }
}

/// `usage_log.shadow`: `{"rules": [...], "outcome": {...}, "candidate":
/// {...}}`, each part left out when empty: the shadow rules that held and
/// the outcome had they been enforced, and the shadow set's decision where
/// it differs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShadowRecord {
    /// The shadow rules that held, in source order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<ShadowMatch>,
    /// The outcome had they been enforced (present when `rules` is not
    /// empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<ShadowOutcome>,
    /// The shadow policy set's decision, when it differs from the enforced
    /// one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<CandidateOutcome>,
}

impl ShadowRecord {
    /// What `d`'s audit row records of its shadow rules; `None` when none
    /// held.
    pub fn of(d: &Decision<'_>) -> Option<Self> {
        Some(Self { rules: ShadowMatch::of(d), outcome: Some(ShadowOutcome::of(d)?), candidate: None })
    }

    /// Whether enforcing the shadow rules would change `allowed`:
    /// `Some("allow_to_block")`, `Some("block_to_allow")` or `None`.
    pub fn flip(&self, allowed: bool) -> Option<&'static str> {
        match (allowed, self.outcome.as_ref()?.allowed) {
            (true, false) => Some("allow_to_block"),
            (false, true) => Some("block_to_allow"),
            _ => None,
        }
    }
}

/// How often one shadow rule held over a period, and how many decisions it
/// would have flipped each way (a decision on which several shadow rules
/// held, and whose outcome flips, counts for each of them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ShadowTally {
    /// The rule.
    pub rule: String,
    /// Decisions on which it held.
    pub matches: i64,
    /// Of those, allowed decisions that enforcing the shadow rules would
    /// block.
    pub allow_to_block: i64,
    /// Of those, blocked decisions that enforcing the shadow rules would
    /// allow.
    pub block_to_allow: i64,
}

/// A recent decision with shadow results.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ShadowDecision {
    /// The decision's id.
    pub decision_id: uuid::Uuid,
    /// Whether it was allowed.
    pub allowed: bool,
    /// Its risk score.
    pub risk_score: i64,
    /// Its reason.
    pub reason: String,
    /// Its shadow record.
    pub shadow: sqlx::types::Json<ShadowRecord>,
}

impl super::super::Store {
    /// The newest `limit` decisions with shadow results created at or after
    /// `since`, newest first.
    pub async fn recent_shadow_decisions(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        limit: i64,
    ) -> Result<Vec<ShadowDecision>, super::super::StoreError> {
        let sql = "SELECT decision_id, allowed, risk_score, reason, shadow FROM usage_log WHERE shadow IS NOT NULL \
                   AND created_at >= $1 \
                   ORDER BY created_at DESC LIMIT $2";
        Ok(super::super::on_pool!(self, p => sqlx::query_as(sql).bind(since).bind(limit).fetch_all(p).await)?)
    }

    /// [`Self::recent_shadow_decisions`] with shadow rules that held (rows
    /// holding only a shadow set's difference left out), so examples of
    /// shadow rules are not crowded out by them.
    pub async fn recent_shadow_rule_decisions(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        limit: i64,
    ) -> Result<Vec<ShadowDecision>, super::super::StoreError> {
        let sql = |has_rules: &str| {
            format!(
                "SELECT decision_id, allowed, risk_score, reason, shadow FROM usage_log WHERE shadow IS NOT NULL \
                 AND created_at >= $1 AND {has_rules} ORDER BY created_at DESC LIMIT $2"
            )
        };
        Ok(match &self.pool {
            super::super::Pool::Sqlite(p) => {
                let sql = sql("json_array_length(shadow, '$.rules') > 0");
                sqlx::query_as(&sql).bind(since).bind(limit).fetch_all(p).await?
            }
            super::super::Pool::Postgres(p) => {
                let sql = sql("jsonb_array_length(COALESCE(shadow->'rules', '[]'::jsonb)) > 0");
                sqlx::query_as(&sql).bind(since).bind(limit).fetch_all(p).await?
            }
        })
    }
}
