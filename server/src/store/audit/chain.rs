//! The hash chain's storage: the chain heads (`audit_chain`), taken once
//! per write transaction; prune checkpoints (`audit_checkpoint`); reading
//! chained rows back in chain order for `warden audit verify`; and the
//! recorded verification results (`audit_verification`). The encoding and
//! hashing are in [`crate::audit::chain`].
//!
//! # Serialising the head
//!
//! A batch of rows takes its chain's head once, at the start of its write
//! transaction, and moves it just before committing, so batches from any
//! number of writers get consecutive positions and each links to the hash
//! the previous batch left. On Postgres the head row is read `FOR UPDATE`:
//! a second instance's batch waits for the first to commit (one row lock
//! per batch of up to 512 rows; the two chains have separate head rows, so
//! decisions never wait for admin changes). On SQLite the head is taken
//! with an `UPDATE … RETURNING`, which makes the transaction a writer from
//! its first statement: SQLite admits one writer at a time, and a
//! transaction that only read before writing could fail to upgrade.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row as _;
use sqlx::types::Json;

use super::super::{Store, StoreError, on_pool};
use crate::audit::chain::{self, AdminFields, Chain, UsageFields};

/// How each backend takes a chain head inside a transaction.
pub(crate) trait HeadDialect {
    /// Locks chain `$1`'s head until commit and returns `(seq, head_hash,
    /// any webhook endpoint active)`. The last column saves the writer a
    /// round trip per batch when no endpoint is registered (the usual
    /// case): only then are subscriptions read.
    const TAKE_HEAD: &'static str;
}

impl HeadDialect for sqlx::Postgres {
    const TAKE_HEAD: &'static str = "SELECT seq, head_hash, EXISTS (SELECT 1 FROM webhook_endpoint WHERE active) \
        FROM audit_chain WHERE chain = $1 FOR UPDATE";
}

impl HeadDialect for sqlx::Sqlite {
    const TAKE_HEAD: &'static str = "UPDATE audit_chain SET seq = seq WHERE chain = $1 \
        RETURNING seq, head_hash, EXISTS (SELECT 1 FROM webhook_endpoint WHERE active)";
}

/// The head-taking statement for the backend of `_tx`.
pub(crate) fn take_head_sql<DB: sqlx::Database + HeadDialect>(_tx: &sqlx::Transaction<'_, DB>) -> &'static str {
    DB::TAKE_HEAD
}

/// Moves chain `$4`'s head to position `$1`, hash `$2`, at time `$3`.
pub(crate) const MOVE_HEAD: &str = "UPDATE audit_chain SET seq = $1, head_hash = $2, updated_at = $3 WHERE chain = $4";

/// Takes `$chain`'s head inside the open transaction `$tx` (see the module
/// docs); evaluates to `(seq, head_hash, webhooks)` where `webhooks` says
/// whether any webhook endpoint is active. Errors return early with `?`.
macro_rules! take_chain_head {
    ($tx:ident, $chain:expr) => {{
        let sql = $crate::store::audit_chain_sql::take_head_sql(&$tx);
        let head: (i64, String, bool) = sqlx::query_as(sql).bind($chain.name()).fetch_one(&mut *$tx).await?;
        head
    }};
}
pub(crate) use take_chain_head;

/// Moves `$chain`'s head to `$seq` and `$hash` inside `$tx`.
macro_rules! move_chain_head {
    ($tx:ident, $chain:expr, $seq:expr, $hash:expr) => {{
        sqlx::query($crate::store::audit_chain_sql::MOVE_HEAD)
            .bind($seq)
            .bind($hash)
            .bind($crate::store::now())
            .bind($chain.name())
            .execute(&mut *$tx)
            .await?;
    }};
}
pub(crate) use move_chain_head;

/// A chain's head: what an outside system records as a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChainHead {
    /// `usage_log` or `admin_audit`.
    pub chain: Chain,
    /// Rows ever appended to the chain (the last row's `chain_seq`); rows
    /// pruned since still count.
    pub seq: i64,
    /// The last row's `row_hash` (64 hex digits; 64 zeros for an empty chain).
    pub hash: String,
    /// The last row's id (absent for an empty chain, or when that row is
    /// missing).
    pub last_id: Option<i64>,
    /// The last row's `created_at`.
    pub last_created_at: Option<DateTime<Utc>>,
    /// When the head last moved.
    pub updated_at: DateTime<Utc>,
}

/// A prune checkpoint: where the chain continues after pruned rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Checkpoint {
    /// The chain.
    pub chain: String,
    /// The last pruned row's `chain_seq`.
    pub seq: i64,
    /// The last pruned row's `row_hash`: the first kept row's `prev_hash`.
    pub row_hash: String,
    /// Rows deleted by that prune.
    pub rows_pruned: i64,
    /// The prune's cut-off time.
    pub pruned_before: DateTime<Utc>,
    /// When the prune ran.
    pub created_at: DateTime<Utc>,
}

/// One chained row as read back, with its hash recomputed from its columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainRow {
    /// Row id.
    pub id: i64,
    /// Position on the chain.
    pub seq: i64,
    /// The stored link to the previous row (empty if NULL).
    pub prev_hash: String,
    /// The stored hash (empty if NULL).
    pub row_hash: String,
    /// `SHA-256(prev_hash || encoding)` of the columns as they are now;
    /// `None` when a column could not be read at all (a damaged value).
    pub recomputed: Option<String>,
}

/// Columns read for verification, per chain.
const USAGE_COLUMNS: &str = "id, chain_seq, prev_hash, row_hash, decision_id, request_id, customer_id, api_key_id, \
    model, operation, meta, risk_score, allowed, status, reason, policy_version, latency_us, created_at, contributions, shadow";
const ADMIN_COLUMNS: &str =
    "id, chain_seq, prev_hash, row_hash, actor_key_id, action, target, before, after, created_at";

/// Reads one chained row and recomputes its hash. Every column is read on
/// its own, so one unreadable value makes that row `recomputed: None`
/// (reported as altered) instead of failing the whole walk.
macro_rules! chain_row {
    ($chain:expr, $row:expr) => {{
        let row = &$row;
        let id: i64 = row.try_get("id")?;
        let seq: i64 = row.try_get("chain_seq")?;
        let prev_hash: String = row.try_get::<Option<String>, _>("prev_hash").ok().flatten().unwrap_or_default();
        let row_hash: String = row.try_get::<Option<String>, _>("row_hash").ok().flatten().unwrap_or_default();
        let recomputed = match $chain {
            Chain::UsageLog => (|| -> Result<String, sqlx::Error> {
                let request_id: String = row.try_get("request_id")?;
                let model: Option<String> = row.try_get("model")?;
                let operation: Option<String> = row.try_get("operation")?;
                let meta: Json<serde_json::Value> = row.try_get("meta")?;
                let status: String = row.try_get("status")?;
                let reason: String = row.try_get("reason")?;
                let policy_version: String = row.try_get("policy_version")?;
                let contributions: Option<Json<serde_json::Value>> = row.try_get("contributions")?;
                let shadow: Option<Json<serde_json::Value>> = row.try_get("shadow")?;
                let fields = UsageFields {
                    decision_id: row.try_get("decision_id")?,
                    request_id: &request_id,
                    customer_id: row.try_get("customer_id")?,
                    api_key_id: row.try_get("api_key_id")?,
                    model: model.as_deref(),
                    operation: operation.as_deref(),
                    meta: &meta.0,
                    risk_score: row.try_get("risk_score")?,
                    allowed: row.try_get("allowed")?,
                    status: &status,
                    reason: &reason,
                    policy_version: &policy_version,
                    latency_us: row.try_get("latency_us")?,
                    created_at: row.try_get("created_at")?,
                    contributions: contributions.as_ref().map(|j| &j.0),
                    shadow: shadow.as_ref().map(|j| &j.0),
                };
                Ok(chain::usage_hash(&prev_hash, &fields))
            })(),
            Chain::AdminAudit => (|| -> Result<String, sqlx::Error> {
                let action: String = row.try_get("action")?;
                let target: String = row.try_get("target")?;
                let before: Option<Json<serde_json::Value>> = row.try_get("before")?;
                let after: Option<Json<serde_json::Value>> = row.try_get("after")?;
                let fields = AdminFields {
                    actor_key_id: row.try_get("actor_key_id")?,
                    action: &action,
                    target: &target,
                    before: before.as_ref().map(|j| &j.0),
                    after: after.as_ref().map(|j| &j.0),
                    created_at: row.try_get("created_at")?,
                };
                Ok(chain::admin_hash(&prev_hash, &fields))
            })(),
        };
        ChainRow { id, seq, prev_hash, row_hash, recomputed: recomputed.ok() }
    }};
}

impl Store {
    /// The head of `chain`, with the last row's id and time.
    pub async fn chain_head(&self, chain: Chain) -> Result<ChainHead, StoreError> {
        let (seq, hash, updated_at): (i64, String, DateTime<Utc>) = on_pool!(self, p => sqlx::query_as(
            "SELECT seq, head_hash, updated_at FROM audit_chain WHERE chain = $1").bind(chain.name()).fetch_one(p).await)?;
        let sql = format!("SELECT id, created_at FROM {} WHERE chain_seq = $1", chain.name());
        let last: Option<(i64, DateTime<Utc>)> =
            on_pool!(self, p => sqlx::query_as(&sql).bind(seq).fetch_optional(p).await)?;
        Ok(ChainHead { chain, seq, hash, last_id: last.map(|l| l.0), last_created_at: last.map(|l| l.1), updated_at })
    }

    /// Up to `limit` chained rows of `chain` with `after < chain_seq <=
    /// through`, in chain order, each with its hash recomputed.
    pub async fn chain_page(
        &self,
        chain: Chain,
        after: i64,
        through: i64,
        limit: i64,
    ) -> Result<Vec<ChainRow>, StoreError> {
        let columns = match chain {
            Chain::UsageLog => USAGE_COLUMNS,
            Chain::AdminAudit => ADMIN_COLUMNS,
        };
        let sql = format!(
            "SELECT {columns} FROM {} WHERE chain_seq > $1 AND chain_seq <= $2 ORDER BY chain_seq, id LIMIT $3",
            chain.name()
        );
        let rows = on_pool!(self, p => {
            let raw = sqlx::query(&sql).bind(after).bind(through).bind(limit).fetch_all(p).await?;
            let mut rows = Vec::with_capacity(raw.len());
            for r in raw {
                rows.push(chain_row!(chain, r));
            }
            rows
        });
        Ok(rows)
    }

    /// The first chained row of `chain` at or after `from` and the last one
    /// before `to` (by time), as chain positions: the range `verify --from
    /// --to` walks. `None` when no row falls in the range.
    pub async fn chain_range(
        &self,
        chain: Chain,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        let sql = format!(
            "SELECT MIN(chain_seq), MAX(chain_seq) FROM {} WHERE chain_seq IS NOT NULL \
             AND ($1 IS NULL OR created_at >= $1) AND ($2 IS NULL OR created_at < $2)",
            chain.name()
        );
        let (lo, hi): (Option<i64>, Option<i64>) =
            on_pool!(self, p => sqlx::query_as(&sql).bind(from).bind(to).fetch_one(p).await)?;
        Ok(lo.zip(hi))
    }

    /// Rows of `chain` with no position: `(before, after)` the first
    /// chained row by id. Those before predate the chain (written before it
    /// existed); those after were put in by hand.
    pub async fn unchained_rows(&self, chain: Chain) -> Result<(i64, i64, Option<i64>), StoreError> {
        let table = chain.name();
        let first: Option<i64> = on_pool!(self, p => sqlx::query_scalar(&format!(
            "SELECT MIN(id) FROM {table} WHERE chain_seq IS NOT NULL")).fetch_one(p).await)?;
        let Some(first) = first else {
            let all: i64 = on_pool!(self, p => sqlx::query_scalar(&format!(
                "SELECT COUNT(*) FROM {table} WHERE chain_seq IS NULL")).fetch_one(p).await)?;
            return Ok((all, 0, None));
        };
        let (before, after, first_after): (i64, i64, Option<i64>) = on_pool!(self, p => sqlx::query_as(&format!(
            "SELECT COALESCE(SUM(CASE WHEN id < $1 THEN 1 ELSE 0 END), 0), \
                    COALESCE(SUM(CASE WHEN id > $1 THEN 1 ELSE 0 END), 0), \
                    MIN(CASE WHEN id > $1 THEN id END) \
             FROM {table} WHERE chain_seq IS NULL")).bind(first).fetch_one(p).await)?;
        Ok((before, after, first_after))
    }

    /// Chained rows of `chain` beyond its head, as the head stands now (one
    /// statement, so a batch committing meanwhile can't be mistaken for
    /// rows beyond it): how many, and the first one's id and position.
    pub async fn rows_past_head(&self, chain: Chain) -> Result<(i64, Option<(i64, i64)>), StoreError> {
        let table = chain.name();
        let (n, first_seq): (i64, Option<i64>) = on_pool!(self, p => sqlx::query_as(&format!(
            "SELECT COUNT(*), MIN(chain_seq) FROM {table} \
             WHERE chain_seq > (SELECT seq FROM audit_chain WHERE chain = $1)")).bind(table).fetch_one(p).await)?;
        let Some(first_seq) = first_seq else { return Ok((n, None)) };
        let id: Option<i64> = on_pool!(self, p => sqlx::query_scalar(&format!(
            "SELECT id FROM {table} WHERE chain_seq = $1 ORDER BY id LIMIT 1")).bind(first_seq).fetch_optional(p).await)?;
        Ok((n, id.map(|id| (id, first_seq))))
    }

    /// The latest prune checkpoint of `chain`.
    pub async fn checkpoint(&self, chain: Chain) -> Result<Option<Checkpoint>, StoreError> {
        let sql = "SELECT chain, seq, row_hash, rows_pruned, pruned_before, created_at FROM audit_checkpoint \
                   WHERE chain = $1 ORDER BY seq DESC, id DESC LIMIT 1";
        Ok(on_pool!(self, p => sqlx::query_as::<_, Checkpoint>(sql).bind(chain.name()).fetch_optional(p).await)?)
    }

    /// Whether the admin trail records the prune that wrote `cp` (an
    /// `audit.prune` entry with its position and hash).
    pub async fn checkpoint_recorded(&self, cp: &Checkpoint) -> Result<bool, StoreError> {
        let sql = "SELECT after FROM admin_audit WHERE action = 'audit.prune' AND chain_seq IS NOT NULL";
        let entries: Vec<Option<Json<serde_json::Value>>> =
            on_pool!(self, p => sqlx::query_scalar(sql).fetch_all(p).await)?;
        Ok(entries.into_iter().flatten().any(|Json(after)| {
            after.get("chain").and_then(|v| v.as_str()) == Some(cp.chain.as_str())
                && after.get("through_seq").and_then(serde_json::Value::as_i64) == Some(cp.seq)
                && after.get("row_hash").and_then(|v| v.as_str()) == Some(cp.row_hash.as_str())
        }))
    }
}

/// What a prune did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    /// Chained rows deleted (a prefix of the chain).
    pub chained: u64,
    /// Rows from before the chain existed, deleted.
    pub unchained: u64,
    /// The checkpoint written, when chained rows were deleted.
    pub checkpoint: Option<(i64, String)>,
}

impl Store {
    /// Deletes audit rows created before `before`, keeping the chain
    /// verifiable: only a prefix of the chain goes (up to the last row
    /// before the first one that is not old enough, so a row chained late,
    /// such as one written back from the spill, may keep a few older rows a
    /// little longer), and a checkpoint records the last deleted row's
    /// position and hash and the count, in `audit_checkpoint` and in the
    /// admin trail (action `audit.prune`), in the same transaction.
    pub async fn prune_audit(&self, before: DateTime<Utc>) -> Result<Pruned, StoreError> {
        let change_base = crate::store::AdminChange::new(None, "audit.prune", Chain::UsageLog.name());
        let out = on_pool!(self, p => {
            let mut tx = p.begin().await?;
            // Taking the head first makes this transaction a writer at once
            // on SQLite, and keeps the head fixed while the cut is chosen.
            let (head_seq, _, _) = take_chain_head!(tx, Chain::UsageLog);
            let keep_from: Option<i64> = sqlx::query_scalar(
                "SELECT MIN(chain_seq) FROM usage_log WHERE chain_seq IS NOT NULL AND created_at >= $1")
                .bind(before).fetch_one(&mut *tx).await?;
            let through = keep_from.map_or(head_seq, |k| k - 1);
            let last: Option<(i64, Option<String>)> = sqlx::query_as(
                "SELECT chain_seq, row_hash FROM usage_log WHERE chain_seq <= $1 ORDER BY chain_seq DESC LIMIT 1")
                .bind(through).fetch_optional(&mut *tx).await?;
            let mut pruned = Pruned::default();
            if let Some((seq, Some(hash))) = last {
                pruned.chained = sqlx::query("DELETE FROM usage_log WHERE chain_seq <= $1")
                    .bind(seq).execute(&mut *tx).await?.rows_affected();
                let rows = i64::try_from(pruned.chained).unwrap_or(i64::MAX);
                sqlx::query("INSERT INTO audit_checkpoint (chain, seq, row_hash, rows_pruned, pruned_before, created_at) \
                             VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(Chain::UsageLog.name()).bind(seq).bind(&hash).bind(rows).bind(before).bind(crate::store::now())
                    .execute(&mut *tx).await?;
                pruned.checkpoint = Some((seq, hash));
            }
            pruned.unchained = sqlx::query("DELETE FROM usage_log WHERE chain_seq IS NULL AND created_at < $1")
                .bind(before).execute(&mut *tx).await?.rows_affected();
            if pruned.chained > 0 || pruned.unchained > 0 {
                let change = change_base.clone().after(serde_json::json!({
                    "chain": Chain::UsageLog.name(),
                    "through_seq": pruned.checkpoint.as_ref().map(|c| c.0),
                    "row_hash": pruned.checkpoint.as_ref().map(|c| c.1.clone()),
                    "rows": pruned.chained,
                    "unchained_rows": pruned.unchained,
                    "before": chain::format_time(before),
                }));
                crate::store::admin::append_admin_audit!(tx, &change);
            }
            tx.commit().await?;
            pruned
        });
        Ok(out)
    }
}

/// A recorded verification.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VerificationRecord {
    /// Its id.
    pub id: i64,
    /// `cli`, `api` or `dashboard`.
    pub source: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it finished (absent: still running, or stopped before it could
    /// record a result).
    pub finished_at: Option<DateTime<Utc>>,
    /// Whether every link held (absent while running).
    pub ok: Option<bool>,
    /// Rows checked.
    pub rows_checked: Option<i64>,
    /// The full report (see `warden audit verify --format json`).
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
}

impl Store {
    /// Records that a verification started; returns its id.
    pub async fn start_verification(&self, source: &str) -> Result<i64, StoreError> {
        let sql = "INSERT INTO audit_verification (source, started_at) VALUES ($1, $2) RETURNING id";
        Ok(
            on_pool!(self, p => sqlx::query_scalar::<_, i64>(sql).bind(source).bind(crate::store::now()).fetch_one(p).await)?,
        )
    }

    /// Records a verification's result.
    pub async fn finish_verification(
        &self,
        id: i64,
        ok: bool,
        rows_checked: u64,
        report: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let sql =
            "UPDATE audit_verification SET finished_at = $1, ok = $2, rows_checked = $3, report = $4 WHERE id = $5";
        let rows = i64::try_from(rows_checked).unwrap_or(i64::MAX);
        on_pool!(self, p => sqlx::query(sql).bind(crate::store::now()).bind(ok).bind(rows).bind(Json(report)).bind(id)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The latest verification (running or finished).
    pub async fn last_verification(&self) -> Result<Option<VerificationRecord>, StoreError> {
        let sql = "SELECT id, source, started_at, finished_at, ok, rows_checked, report FROM audit_verification \
                   ORDER BY id DESC LIMIT 1";
        let row = on_pool!(self, p => {
            match sqlx::query(sql).fetch_optional(p).await? {
                Some(r) => Some(VerificationRecord {
                    id: r.try_get("id")?,
                    source: r.try_get("source")?,
                    started_at: r.try_get("started_at")?,
                    finished_at: r.try_get("finished_at")?,
                    ok: r.try_get("ok")?,
                    rows_checked: r.try_get("rows_checked")?,
                    report: r.try_get::<Option<Json<serde_json::Value>>, _>("report")?.map(|j| j.0),
                }),
                None => None,
            }
        });
        Ok(row)
    }
}
