//! Blocked decisions counted by reason code, for the rules views, read
//! from the daily rollup (see [`super::rollup`]) so a rules page reads a
//! few rows per day rather than counting the audit log. A decision's row
//! records its reason, not every rule that contributed, so a rule's blocks
//! are the blocked decisions with its reason (rules that share a reason
//! share their counts).

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;

use super::{Store, StoreError, on_pool};

impl Store {
    /// Blocked decisions with `reason` on each UTC day from `first` to
    /// `last` inclusive (days without any are absent).
    pub async fn blocks_per_day(
        &self,
        reason: &str,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<BTreeMap<NaiveDate, i64>, StoreError> {
        let sql = "SELECT day, CAST(SUM(count) AS BIGINT) FROM usage_rollup \
                   WHERE day >= $1 AND day <= $2 AND status = 'blocked' AND reason = $3 GROUP BY day";
        let rows: Vec<(NaiveDate, i64)> =
            on_pool!(self, p => sqlx::query_as(sql).bind(first).bind(last).bind(reason).fetch_all(p).await)?;
        Ok(rows.into_iter().collect())
    }

    /// Blocked decisions per reason on the UTC days from `first` on.
    pub async fn blocks_per_reason(&self, first: NaiveDate) -> Result<HashMap<String, i64>, StoreError> {
        let sql = "SELECT reason, CAST(SUM(count) AS BIGINT) FROM usage_rollup \
                   WHERE day >= $1 AND status = 'blocked' GROUP BY reason";
        let rows: Vec<(String, i64)> = on_pool!(self, p => sqlx::query_as(sql).bind(first).fetch_all(p).await)?;
        Ok(rows.into_iter().collect())
    }
}
