//! Daily shadow results (`shadow_rollup`): per UTC day and rule, on how many
//! decisions the rule held in shadow and how many of those the shadow rules
//! would have flipped each way. Kept exactly like `usage_rollup` (see
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
}

impl ShadowRollupBatch {
    /// Counts the shadow results of `rows`. A flipped decision counts for
    /// every shadow rule that held on it.
    pub(crate) fn of(rows: &[AuditRecord]) -> Self {
        let mut groups: BTreeMap<(NaiveDate, &str), [i64; 3]> = BTreeMap::new();
        for r in rows {
            let Some(shadow) = &r.shadow else { continue };
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
        Self { groups }
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

/// The start (UTC midnight) of `day`.
pub(crate) fn start_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}
