//! Reading the audit log: one filter type and one query builder shared by
//! `/api/admin/logs`, `/ui/logs` and its CSV export; keyset pages joined
//! with the key's and customer's names; one decision; counts.
//!
//! Pages are keyset pages, newest first by `created_at` then `id` (the
//! decision's time, as shown; a row written late, from the spill, sits at
//! its time): a page reads the rows just past a cursor (a row id, located
//! by its time) through an index that holds them in that order under any
//! one filter (see the `audit_reading` migration), so its cost does not
//! grow with the rows before it. Ordering by `id` alone would not: under a
//! time filter the database must then either sort the whole time range or
//! walk ids until the range begins (a quarter of a second at a million rows).

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::super::admin::Cursor;
use super::super::{Pool, Store, StoreError, budget, on_pool};
use super::{AuditRow, Outcome};

/// Filters for listing audit rows. Absent filters match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// Exact model.
    pub model: Option<String>,
    /// Exact operation.
    pub operation: Option<String>,
    /// `allowed`, `blocked` or `rejected`.
    pub status: Option<Outcome>,
    /// One customer.
    pub customer_id: Option<Uuid>,
    /// Exact reason (or rejection code).
    pub reason: Option<String>,
    /// Created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Created before.
    pub to: Option<DateTime<Utc>>,
}

/// An audit row with the names of its key and customer (`None` once they
/// are deleted: audit rows outlive both, and then show the id).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct LogEntry {
    /// The row.
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub row: AuditRow,
    /// The key's name.
    pub key_name: Option<String>,
    /// The customer's name.
    pub customer_name: Option<String>,
}

/// Counts over a period.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Stats {
    /// Days covered, ending now.
    pub days: u32,
    /// Allowed decisions.
    pub allowed: i64,
    /// Blocked decisions.
    pub blocked: i64,
    /// Rejected requests.
    pub rejected: i64,
    /// Count per reason (or rejection code).
    pub by_reason: std::collections::BTreeMap<String, i64>,
    /// Count per model.
    pub by_model: std::collections::BTreeMap<String, i64>,
    /// Count per UTC day (`YYYY-MM-DD`).
    pub by_day: std::collections::BTreeMap<String, i64>,
}

/// The columns of [`AuditRow`].
pub(in crate::store) const AUDIT_COLUMNS: &str = "id, decision_id, request_id, customer_id, api_key_id, model, \
    operation, meta, risk_score, allowed, status, reason, policy_version, latency_us, created_at, contributions, shadow";

/// A page of rows (an inner query on `usage_log`) joined with names.
const WITH_NAMES: &str = "SELECT u.*, k.name AS key_name, c.name AS customer_name FROM (";
const NAMES_JOIN: &str = ") u LEFT JOIN api_key k ON k.id = u.api_key_id LEFT JOIN customer c ON c.id = u.customer_id \
    ORDER BY u.created_at DESC, u.id DESC";

/// A cursor located: the row it names, by time and id, and which side of
/// it the page lies on.
#[derive(Debug, Clone, Copy)]
struct Position {
    at: DateTime<Utc>,
    id: i64,
    older: bool,
}

/// Appends `WHERE …` for the filters that are set and the position, so
/// each query reads one index range. A time filter and the position bound
/// the same column on the same side, and SQLite's planner would pick one of
/// the two as the range and filter by the other (reading up to every row
/// between them), so only the tighter one is written: the other then holds
/// for every row anyway.
fn push_filters<'a, DB: sqlx::Database>(q: &mut sqlx::QueryBuilder<'a, DB>, f: &'a LogFilter, pos: Option<Position>)
where
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Uuid: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    DateTime<Utc>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut sep = " WHERE ";
    let mut and = |q: &mut sqlx::QueryBuilder<'a, DB>, clause: &str| {
        q.push(sep).push(clause);
        sep = " AND ";
    };
    if let Some(v) = &f.model {
        and(q, "model = ");
        q.push_bind(v.as_str());
    }
    if let Some(v) = &f.operation {
        and(q, "operation = ");
        q.push_bind(v.as_str());
    }
    if let Some(v) = f.status {
        and(q, "status = ");
        q.push_bind(v.as_str());
    }
    if let Some(v) = f.customer_id {
        and(q, "customer_id = ");
        q.push_bind(v);
    }
    if let Some(v) = &f.reason {
        and(q, "reason = ");
        q.push_bind(v.as_str());
    }
    // Newer rows after `from`, unless the position (newer than it) is at
    // or after `from`; older rows before `to`, unless the position (older
    // than it) is before `to`.
    let from = f.from.filter(|from| !pos.is_some_and(|p| !p.older && p.at >= *from));
    let to = f.to.filter(|to| !pos.is_some_and(|p| p.older && p.at < *to));
    if let Some(v) = from {
        and(q, "created_at >= ");
        q.push_bind(v);
    }
    if let Some(v) = to {
        and(q, "created_at < ");
        q.push_bind(v);
    }
    let pos = pos.filter(|p| if p.older { to.is_none() } else { from.is_none() });
    if let Some(p) = pos {
        and(q, if p.older { "(created_at, id) < (" } else { "(created_at, id) > (" });
        q.push_bind(p.at).push(", ").push_bind(p.id).push(")");
    }
}

/// `ORDER BY … LIMIT`: the rows nearest the position, newest first, or
/// oldest first on the newer side (the outer query turns them around).
fn push_order<'a, DB: sqlx::Database>(q: &mut sqlx::QueryBuilder<'a, DB>, pos: Option<Position>, limit: i64)
where
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let newer = pos.is_some_and(|p| !p.older);
    q.push(if newer { " ORDER BY created_at, id LIMIT " } else { " ORDER BY created_at DESC, id DESC LIMIT " });
    q.push_bind(limit);
}

/// A page of rows matching `f` nearest the position, with names.
fn page_query<'a, DB: sqlx::Database>(f: &'a LogFilter, pos: Option<Position>, limit: u32) -> sqlx::QueryBuilder<'a, DB>
where
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Uuid: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    DateTime<Utc>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut q = sqlx::QueryBuilder::new(format!("{WITH_NAMES}SELECT {AUDIT_COLUMNS} FROM usage_log"));
    push_filters(&mut q, f, pos);
    push_order(&mut q, pos, i64::from(limit));
    q.push(NAMES_JOIN);
    q
}

impl Store {
    /// Where `cursor` points: `Some(None)` for the newest rows; `None`
    /// when the row it names is gone (pruned), so nothing lies past it.
    async fn position(&self, cursor: Cursor) -> Result<Option<Option<Position>>, StoreError> {
        let (id, older) = match cursor {
            Cursor::Newest => return Ok(Some(None)),
            Cursor::Before(id) => (id, true),
            Cursor::After(id) => (id, false),
        };
        let sql = "SELECT created_at FROM usage_log WHERE id = $1";
        let at: Option<DateTime<Utc>> = on_pool!(self, p => sqlx::query_scalar(sql).bind(id).fetch_optional(p).await)?;
        Ok(at.map(|at| Some(Position { at, id, older })))
    }

    /// Audit rows matching `filter`, newest first (by time, then row id),
    /// page `page` of `page_size` rows, with the total.
    pub async fn list_audit(
        &self,
        filter: &LogFilter,
        page: u32,
        page_size: u32,
    ) -> Result<super::super::Page<AuditRow>, StoreError> {
        self.list_audit_paged(filter, None, page, page_size).await
    }

    /// Audit rows matching `filter`, newest first (by time, then row id),
    /// one page of them: by offset, or past `before_id` (keyset), with the
    /// total.
    pub async fn list_audit_paged(
        &self,
        filter: &LogFilter,
        before_id: Option<i64>,
        page: u32,
        page_size: u32,
    ) -> Result<super::super::Page<AuditRow>, StoreError> {
        let offset = i64::from(page.saturating_sub(1)) * i64::from(page_size);
        let total = on_pool!(self, p => {
            let mut q = sqlx::QueryBuilder::new("SELECT COUNT(*) FROM usage_log");
            push_filters(&mut q, filter, None);
            q.build_query_scalar::<i64>().fetch_one(p).await
        })?;
        let Some(pos) = self.position(before_id.map_or(Cursor::Newest, Cursor::Before)).await? else {
            return Ok(super::super::Page { items: Vec::new(), page, page_size, total });
        };
        let items = on_pool!(self, p => {
            let mut q = sqlx::QueryBuilder::new(format!("SELECT {AUDIT_COLUMNS} FROM usage_log"));
            push_filters(&mut q, filter, pos);
            push_order(&mut q, pos, i64::from(page_size));
            if before_id.is_none() {
                q.push(" OFFSET ").push_bind(offset);
            }
            q.build_query_as::<AuditRow>().fetch_all(p).await
        })?;
        Ok(super::super::Page { items, page, page_size, total })
    }

    /// Up to `limit` rows matching `filter` nearest to `cursor`, newest
    /// first (by time, then row id), with key and customer names. No
    /// count: a page costs the same on the millionth row as on the first.
    /// A cursor naming a row since pruned has nothing past it.
    pub async fn log_page(&self, filter: &LogFilter, cursor: Cursor, limit: u32) -> Result<Vec<LogEntry>, StoreError> {
        let Some(pos) = self.position(cursor).await? else { return Ok(Vec::new()) };
        Ok(on_pool!(self, p => page_query(filter, pos, limit).build_query_as::<LogEntry>().fetch_all(p).await)?)
    }

    /// [`Store::log_page`] within `budget`: a read that would run longer is
    /// cancelled by the database ([`StoreError::TimedOut`]) and its
    /// connection freed at once. Any one filter reads one index range, but
    /// two equality filters together (say a model and a customer) may make
    /// the database walk every row of one to find the few of the other; a
    /// caller with a time limit (a page) bounds that walk and asks for a
    /// narrower filter.
    ///
    /// # Errors
    /// [`StoreError::TimedOut`] past the budget; otherwise as `log_page`.
    pub async fn log_page_within(
        &self,
        filter: &LogFilter,
        cursor: Cursor,
        limit: u32,
        budget: std::time::Duration,
    ) -> Result<Vec<LogEntry>, StoreError> {
        let Some(pos) = self.position(cursor).await? else { return Ok(Vec::new()) };
        let timed_out = |e| budget::timed_out(e, budget);
        match &self.pool {
            Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                sqlx::query("SELECT set_config('statement_timeout', $1, true)")
                    .bind(budget::pg_statement_timeout(budget))
                    .execute(&mut *tx)
                    .await?;
                let rows = page_query(filter, pos, limit)
                    .build_query_as::<LogEntry>()
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(timed_out)?;
                tx.commit().await?;
                Ok(rows)
            }
            Pool::Sqlite(p) => {
                let mut conn = budget::SqliteBudget::arm(p, budget).await?;
                let rows = page_query(filter, pos, limit).build_query_as::<LogEntry>().fetch_all(conn.conn()).await;
                conn.disarm().await?;
                rows.map_err(timed_out)
            }
        }
    }

    /// The decision with this id, with names.
    pub async fn decision(&self, decision_id: Uuid) -> Result<Option<LogEntry>, StoreError> {
        let sql =
            format!("{WITH_NAMES}SELECT {AUDIT_COLUMNS} FROM usage_log WHERE decision_id = $1 LIMIT 1{NAMES_JOIN}");
        Ok(on_pool!(self, p => sqlx::query_as::<_, LogEntry>(&sql).bind(decision_id).fetch_optional(p).await)?)
    }

    /// Counts over the last `days` days.
    pub async fn stats(&self, days: u32) -> Result<Stats, StoreError> {
        let since = super::super::now() - chrono::Duration::days(i64::from(days));
        let mut stats = Stats { days, ..Stats::default() };
        let by_status: Vec<(String, i64)> = on_pool!(self, p => sqlx::query_as(
            "SELECT status, COUNT(*) FROM usage_log WHERE created_at >= $1 GROUP BY status").bind(since).fetch_all(p).await)?;
        for (status, n) in by_status {
            match status.as_str() {
                "allowed" => stats.allowed = n,
                "blocked" => stats.blocked = n,
                _ => stats.rejected += n,
            }
        }
        let by_reason: Vec<(String, i64)> = on_pool!(self, p => sqlx::query_as(
            "SELECT reason, COUNT(*) FROM usage_log WHERE created_at >= $1 GROUP BY reason").bind(since).fetch_all(p).await)?;
        stats.by_reason = by_reason.into_iter().collect();
        let by_model: Vec<(Option<String>, i64)> = on_pool!(self, p => sqlx::query_as(
            "SELECT model, COUNT(*) FROM usage_log WHERE created_at >= $1 GROUP BY model").bind(since).fetch_all(p).await)?;
        stats.by_model = by_model.into_iter().map(|(m, n)| (m.unwrap_or_else(|| "(none)".to_owned()), n)).collect();
        // Bucketing a timestamp by UTC day is the one place the dialects differ.
        let by_day: Vec<(String, i64)> = match &self.pool {
            super::super::Pool::Postgres(p) => {
                sqlx::query_as(
                    "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, COUNT(*) FROM usage_log \
                 WHERE created_at >= $1 GROUP BY day",
                )
                .bind(since)
                .fetch_all(p)
                .await?
            }
            super::super::Pool::Sqlite(p) => sqlx::query_as(
                "SELECT substr(created_at, 1, 10) AS day, COUNT(*) FROM usage_log WHERE created_at >= $1 GROUP BY day",
            )
            .bind(since)
            .fetch_all(p)
            .await?,
        };
        stats.by_day = by_day.into_iter().collect();
        Ok(stats)
    }

    /// Blocked decisions per reason since `since`.
    pub async fn blocks_by_reason(
        &self,
        since: DateTime<Utc>,
    ) -> Result<std::collections::HashMap<String, i64>, StoreError> {
        let sql =
            "SELECT reason, COUNT(*) FROM usage_log WHERE created_at >= $1 AND status = 'blocked' GROUP BY reason";
        let rows: Vec<(String, i64)> = on_pool!(self, p => sqlx::query_as(sql).bind(since).fetch_all(p).await)?;
        Ok(rows.into_iter().collect())
    }
}
