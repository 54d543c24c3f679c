//! Daily counts of the audit log (`usage_rollup`): decisions per UTC day,
//! outcome, reason and model, so the dashboard's overview reads a few
//! hundred rows instead of counting `usage_log` (a million rows take
//! seconds to count; the overview must render in 50 ms).
//!
//! # How it stays exact
//!
//! The audit writer aggregates each batch in memory ([`RollupBatch::of`])
//! and adds it with one upsert per distinct group inside the batch's own
//! transaction, after the rows and the chain head: the counts exist
//! exactly when their rows do, for rows written back from the spill too
//! (they go through the same insert). Writers are already serialised by
//! the chain head (see [`super::audit::chain`]), so two instances never
//! upsert the same groups at once. The migration fills the table from the
//! rows already there with the same grouping.
//!
//! # Pruning
//!
//! `warden logs prune` deletes `usage_log` rows and leaves the rollup as it
//! is: the overview describes the traffic that was served, and a day's
//! count does not drop because its rows passed the retention period. So
//! after a prune the rollup holds more than a `GROUP BY` over `usage_log`
//! for the pruned days, and equals it for the days after. Rows deleted or
//! edited by hand in the database are not reflected either: the hash chain
//! (`warden audit verify`) is what catches those.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use serde::Serialize;

use super::{AuditRecord, Store, StoreError, on_pool};

/// How many entries the top lists hold.
pub const TOP: i64 = 10;

/// One rollup row: a group and how many audit rows it has.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, sqlx::FromRow)]
pub struct RollupRow {
    /// The UTC day the rows were created.
    pub day: NaiveDate,
    /// `allowed`, `blocked` or `rejected`.
    pub status: String,
    /// The decision's reason, or the rejection code.
    pub reason: String,
    /// The `model` field, absent when the request had no string model.
    pub model: Option<String>,
    /// Audit rows in the group.
    pub count: i64,
}

/// A batch of audit rows counted per group, ready to be added in the
/// batch's transaction. Groups are in key order.
#[derive(Debug, Clone, Default)]
pub(crate) struct RollupBatch {
    days: Vec<NaiveDate>,
    statuses: Vec<String>,
    reasons: Vec<String>,
    has_models: Vec<bool>,
    models: Vec<String>,
    counts: Vec<i64>,
}

impl RollupBatch {
    /// Counts `rows` per day, outcome, reason and model.
    pub(crate) fn of(rows: &[AuditRecord]) -> Self {
        let mut groups: BTreeMap<(NaiveDate, &str, &str, Option<&str>), i64> = BTreeMap::new();
        for r in rows {
            let key = (r.created_at.date_naive(), r.outcome.as_str(), r.reason.as_str(), r.model.as_deref());
            *groups.entry(key).or_insert(0) += 1;
        }
        let mut batch = Self::default();
        for ((day, status, reason, model), count) in groups {
            batch.days.push(day);
            batch.statuses.push(status.to_owned());
            batch.reasons.push(reason.to_owned());
            batch.has_models.push(model.is_some());
            batch.models.push(model.unwrap_or_default().to_owned());
            batch.counts.push(count);
        }
        batch
    }

    /// Adds the counts inside the open transaction `tx`.
    pub(crate) async fn add<DB: RollupDialect>(&self, tx: &mut sqlx::Transaction<'_, DB>) -> Result<(), sqlx::Error> {
        DB::add(tx, self).await
    }
}

/// The upsert on `usage_rollup`: a group seen before gets its count added.
const UPSERT_TAIL: &str = "ON CONFLICT (day, status, reason, has_model, model) \
    DO UPDATE SET count = usage_rollup.count + excluded.count";

/// How each backend adds a [`RollupBatch`].
pub(crate) trait RollupDialect: sqlx::Database {
    /// Adds `batch` inside `tx`.
    fn add<'a>(
        tx: &'a mut sqlx::Transaction<'_, Self>,
        batch: &'a RollupBatch,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send + 'a;
}

impl RollupDialect for sqlx::Postgres {
    /// One statement for the whole batch: the groups go as arrays, so the
    /// statement text (and its prepared plan) is the same for any number.
    async fn add(tx: &mut sqlx::Transaction<'_, Self>, batch: &RollupBatch) -> Result<(), sqlx::Error> {
        if batch.days.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO usage_rollup (day, status, reason, has_model, model, count) \
             SELECT * FROM UNNEST($1::date[], $2::text[], $3::text[], $4::bool[], $5::text[], $6::int8[]) {UPSERT_TAIL}"
        );
        sqlx::query(&sql)
            .bind(&batch.days)
            .bind(&batch.statuses)
            .bind(&batch.reasons)
            .bind(&batch.has_models)
            .bind(&batch.models)
            .bind(&batch.counts)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

impl RollupDialect for sqlx::Sqlite {
    /// One prepared upsert per group: SQLite runs in-process, so a
    /// statement costs no round trip.
    async fn add(tx: &mut sqlx::Transaction<'_, Self>, batch: &RollupBatch) -> Result<(), sqlx::Error> {
        let sql = format!(
            "INSERT INTO usage_rollup (day, status, reason, has_model, model, count) VALUES ($1, $2, $3, $4, $5, $6) \
             {UPSERT_TAIL}"
        );
        let groups = batch
            .days
            .iter()
            .zip(&batch.statuses)
            .zip(&batch.reasons)
            .zip(&batch.has_models)
            .zip(&batch.models)
            .zip(&batch.counts);
        for (((((day, status), reason), has_model), model), count) in groups {
            sqlx::query(&sql)
                .bind(day)
                .bind(status)
                .bind(reason)
                .bind(has_model)
                .bind(model)
                .bind(count)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

/// Allowed, blocked and rejected counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutcomeCounts {
    /// Decided and allowed.
    pub allowed: i64,
    /// Decided and blocked.
    pub blocked: i64,
    /// Refused before evaluation.
    pub rejected: i64,
}

impl OutcomeCounts {
    /// Adds `count` rows of outcome `status`.
    fn add(&mut self, status: &str, count: i64) {
        match status {
            "allowed" => self.allowed += count,
            "blocked" => self.blocked += count,
            _ => self.rejected += count,
        }
    }

    /// All three together.
    pub fn total(&self) -> i64 {
        self.allowed + self.blocked + self.rejected
    }

    /// Adds another day's counts.
    fn absorb(&mut self, other: Self) {
        self.allowed += other.allowed;
        self.blocked += other.blocked;
        self.rejected += other.rejected;
    }
}

/// One UTC day's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DayCounts {
    /// The day.
    pub day: NaiveDate,
    /// Its counts.
    pub counts: OutcomeCounts,
}

/// What the overview shows about traffic, from the rollup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Traffic {
    /// The last UTC day covered (today).
    pub today: NaiveDate,
    /// Today's counts.
    pub today_counts: OutcomeCounts,
    /// The last 7 days' counts (today and the 6 days before).
    pub week_counts: OutcomeCounts,
    /// One entry per day for the last `days` days, oldest first; days
    /// without traffic are zeros.
    pub days: Vec<DayCounts>,
    /// The most frequent reasons of blocked decisions over the last 7
    /// days, most frequent first (at most [`TOP`]).
    pub top_block_reasons: Vec<(String, i64)>,
    /// The most frequent models over the last 7 days (every outcome),
    /// most frequent first (at most [`TOP`]); requests without a model are
    /// not listed.
    pub top_models: Vec<(String, i64)>,
}

impl Store {
    /// Traffic for the `days` UTC days ending with `today` (inclusive), and
    /// 7-day totals and top lists. Three indexed range reads on the rollup.
    pub async fn traffic(&self, today: NaiveDate, days: u32) -> Result<Traffic, StoreError> {
        let first = today - Duration::days(i64::from(days.max(1)) - 1);
        let week_start = today - Duration::days(6);
        let per_day: Vec<(NaiveDate, String, i64)> = on_pool!(self, p => sqlx::query_as(
            "SELECT day, status, CAST(SUM(count) AS BIGINT) FROM usage_rollup WHERE day >= $1 AND day <= $2 GROUP BY day, status")
            .bind(first.min(week_start)).bind(today).fetch_all(p).await)?;
        let top_block_reasons: Vec<(String, i64)> = on_pool!(self, p => sqlx::query_as(
            "SELECT reason, CAST(SUM(count) AS BIGINT) AS n FROM usage_rollup WHERE day >= $1 AND day <= $2 AND status = 'blocked' \
             GROUP BY reason ORDER BY n DESC, reason LIMIT $3")
            .bind(week_start).bind(today).bind(TOP).fetch_all(p).await)?;
        let top_models: Vec<(String, i64)> = on_pool!(self, p => sqlx::query_as(
            "SELECT model, CAST(SUM(count) AS BIGINT) AS n FROM usage_rollup WHERE day >= $1 AND day <= $2 AND has_model \
             GROUP BY model ORDER BY n DESC, model LIMIT $3")
            .bind(week_start).bind(today).bind(TOP).fetch_all(p).await)?;
        let mut by_day: BTreeMap<NaiveDate, OutcomeCounts> = BTreeMap::new();
        for (day, status, count) in per_day {
            by_day.entry(day).or_default().add(&status, count);
        }
        let mut week_counts = OutcomeCounts::default();
        for (_, counts) in by_day.range(week_start..=today) {
            week_counts.absorb(*counts);
        }
        let days = first
            .iter_days()
            .take_while(|d| *d <= today)
            .map(|day| DayCounts { day, counts: by_day.get(&day).copied().unwrap_or_default() })
            .collect();
        Ok(Traffic {
            today,
            today_counts: by_day.get(&today).copied().unwrap_or_default(),
            week_counts,
            days,
            top_block_reasons,
            top_models,
        })
    }

    /// Every rollup row, in key order.
    pub async fn rollup_rows(&self) -> Result<Vec<RollupRow>, StoreError> {
        let sql = "SELECT day, status, reason, CASE WHEN has_model THEN model END AS model, count FROM usage_rollup \
                   ORDER BY day, status, reason, has_model, model";
        Ok(on_pool!(self, p => sqlx::query_as::<_, RollupRow>(sql).fetch_all(p).await)?)
    }

    /// The rollup as a `GROUP BY` over `usage_log` computes it now, in key
    /// order: what [`Store::rollup_rows`] equals while nothing was pruned
    /// or edited by hand.
    pub async fn rollup_of_log(&self) -> Result<Vec<RollupRow>, StoreError> {
        // Bucketing a timestamp by UTC day is where the dialects differ.
        let day = match self.pool {
            super::Pool::Postgres(_) => "(created_at AT TIME ZONE 'UTC')::date",
            super::Pool::Sqlite(_) => "substr(created_at, 1, 10)",
        };
        let sql = format!(
            "SELECT {day} AS day, status, reason, model, COUNT(*) AS count FROM usage_log \
             GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, model IS NOT NULL, 4"
        );
        Ok(on_pool!(self, p => sqlx::query_as::<_, RollupRow>(&sql).fetch_all(p).await)?)
    }
}
