//! Daily shadow results: per UTC day and rule, on how many decisions the
//! rule held in shadow and how many of those the shadow rules would have
//! flipped each way (`shadow_rollup`); and per UTC day and shadow-set
//! version, how many decisions the shadow set would have changed, by kind
//! (`shadow_set_rollup`). Kept exactly like `usage_rollup` (see
//! [`super::rollup`]): each audit batch adds its counts in its own
//! transaction, after the chain head (which serialises writers), so
//! `/api/admin/shadow` reads a few rows per day and rule instead of the log.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::{AuditRecord, ShadowTally, Store, StoreError, on_pool};

/// The upsert of one group.
pub(crate) const UPSERT: &str = "INSERT INTO shadow_rollup (day, rule, matches, allow_to_block, block_to_allow) \
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT (day, rule) DO UPDATE SET \
    matches = shadow_rollup.matches + excluded.matches, \
    allow_to_block = shadow_rollup.allow_to_block + excluded.allow_to_block, \
    block_to_allow = shadow_rollup.block_to_allow + excluded.block_to_allow";

/// The upsert of one shadow-set group.
pub(crate) const UPSERT_SET: &str = "INSERT INTO shadow_set_rollup (day, policy_version, allow_to_block, \
    block_to_allow, score_changed, reason_changed) VALUES ($1, $2, $3, $4, $5, $6) \
    ON CONFLICT (day, policy_version) DO UPDATE SET \
    allow_to_block = shadow_set_rollup.allow_to_block + excluded.allow_to_block, \
    block_to_allow = shadow_set_rollup.block_to_allow + excluded.block_to_allow, \
    score_changed = shadow_set_rollup.score_changed + excluded.score_changed, \
    reason_changed = shadow_set_rollup.reason_changed + excluded.reason_changed";

/// One day and shadow-set version's counts in a batch: allowed→blocked,
/// blocked→allowed, score, reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SetGroup {
    pub(crate) day: NaiveDate,
    pub(crate) policy_version: String,
    pub(crate) counts: [i64; 4],
}

/// One day and rule's counts in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    pub(crate) day: NaiveDate,
    pub(crate) rule: String,
    pub(crate) matches: i64,
    pub(crate) allow_to_block: i64,
    pub(crate) block_to_allow: i64,
}

/// A batch's shadow results per day and rule, in key order (empty when no
/// row of the batch had one).
#[derive(Debug, Clone, Default)]
pub(crate) struct ShadowRollupBatch {
    pub(crate) groups: Vec<Group>,
    pub(crate) sets: Vec<SetGroup>,
}

impl ShadowRollupBatch {
    /// Counts the shadow results of `rows`. A flipped decision counts for
    /// every shadow rule that held on it.
    pub(crate) fn of(rows: &[AuditRecord]) -> Self {
        let mut groups: BTreeMap<(NaiveDate, &str), [i64; 3]> = BTreeMap::new();
        let mut sets: BTreeMap<(NaiveDate, &str), [i64; 4]> = BTreeMap::new();
        for r in rows {
            let Some(shadow) = &r.shadow else { continue };
            if let Some(c) = &shadow.candidate {
                let at = match c.change(r.allowed, r.risk_score, &r.reason) {
                    Some("allow_to_block") => 0,
                    Some("block_to_allow") => 1,
                    Some("score") => 2,
                    _ => 3,
                };
                if let Some(n) =
                    sets.entry((r.created_at.date_naive(), c.policy_version.as_str())).or_default().get_mut(at)
                {
                    *n += 1;
                }
            }
            let flip = shadow.flip(r.allowed);
            for m in &shadow.rules {
                let g = groups.entry((r.created_at.date_naive(), m.rule.as_str())).or_default();
                g[0] += 1;
                g[1] += i64::from(flip == Some("allow_to_block"));
                g[2] += i64::from(flip == Some("block_to_allow"));
            }
        }
        let groups = groups
            .into_iter()
            .map(|((day, rule), [matches, allow_to_block, block_to_allow])| Group {
                day,
                rule: rule.to_owned(),
                matches,
                allow_to_block,
                block_to_allow,
            })
            .collect();
        let sets = sets
            .into_iter()
            .map(|((day, version), counts)| SetGroup { day, policy_version: version.to_owned(), counts })
            .collect();
        Self { groups, sets }
    }
}

/// Adds a [`ShadowRollupBatch`] inside the open transaction `$tx` (either
/// backend: the statement is the same).
macro_rules! add_shadow_rollup {
    ($tx:expr, $batch:expr) => {{
        for g in &$batch.groups {
            sqlx::query($crate::store::shadow_rollup::UPSERT)
                .bind(g.day)
                .bind(&g.rule)
                .bind(g.matches)
                .bind(g.allow_to_block)
                .bind(g.block_to_allow)
                .execute(&mut *$tx)
                .await?;
        }
        for g in &$batch.sets {
            let [a, b, c, d] = g.counts;
            sqlx::query($crate::store::shadow_rollup::UPSERT_SET)
                .bind(g.day)
                .bind(&g.policy_version)
                .bind(a)
                .bind(b)
                .bind(c)
                .bind(d)
                .execute(&mut *$tx)
                .await?;
        }
    }};
}
pub(crate) use add_shadow_rollup;

impl Store {
    /// Per rule that held in shadow on a UTC day from `first_day` on: its
    /// matches and flips, by rule name.
    pub async fn shadow_tally(&self, first_day: NaiveDate) -> Result<Vec<ShadowTally>, StoreError> {
        let sql = "SELECT rule, CAST(SUM(matches) AS BIGINT) AS matches, \
                   CAST(SUM(allow_to_block) AS BIGINT) AS allow_to_block, \
                   CAST(SUM(block_to_allow) AS BIGINT) AS block_to_allow \
                   FROM shadow_rollup WHERE day >= $1 GROUP BY rule ORDER BY rule";
        Ok(on_pool!(self, p => sqlx::query_as(sql).bind(first_day).fetch_all(p).await)?)
    }
}

/// What one shadow-set version would have changed over a period.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct SetTally {
    /// The shadow set's version.
    pub policy_version: String,
    /// Allowed decisions it would have blocked.
    pub allow_to_block: i64,
    /// Blocked decisions it would have allowed.
    pub block_to_allow: i64,
    /// Decisions with the same verdict and another score.
    pub score_changed: i64,
    /// Decisions with the same verdict and score and another reason.
    pub reason_changed: i64,
}

impl Store {
    /// Per shadow-set version, what it would have changed on UTC days from
    /// `first_day` on.
    pub async fn shadow_set_tally(&self, first_day: NaiveDate) -> Result<Vec<SetTally>, StoreError> {
        let sql = "SELECT policy_version, CAST(SUM(allow_to_block) AS BIGINT) AS allow_to_block, \
                   CAST(SUM(block_to_allow) AS BIGINT) AS block_to_allow, \
                   CAST(SUM(score_changed) AS BIGINT) AS score_changed, \
                   CAST(SUM(reason_changed) AS BIGINT) AS reason_changed \
                   FROM shadow_set_rollup WHERE day >= $1 GROUP BY policy_version ORDER BY policy_version";
        Ok(on_pool!(self, p => sqlx::query_as(sql).bind(first_day).fetch_all(p).await)?)
    }
}

/// The start (UTC midnight) of `day`.
pub(crate) fn start_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}
