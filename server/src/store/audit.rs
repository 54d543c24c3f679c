//! The audit log (`usage_log`): one metadata-only row per decision.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;
use uuid::Uuid;

use super::{Store, StoreError, on_pool};

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Decided and allowed.
    Allowed,
    /// Decided and blocked.
    Blocked,
    /// Refused before evaluation (forbidden field, wrong type, …).
    Rejected,
}

impl Outcome {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Blocked => "blocked",
            Self::Rejected => "rejected",
        }
    }
}

/// One row to write. It never holds request content: `meta` is built from
/// the policy's declared fields only.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// The decision's id, as returned to the client.
    pub decision_id: Uuid,
    /// The request id (`x-request-id`).
    pub request_id: String,
    /// The customer.
    pub customer_id: Uuid,
    /// The key used.
    pub api_key_id: Uuid,
    /// The `model` field, when it was a string.
    pub model: Option<String>,
    /// The `operation` field, when it was a string.
    pub operation: Option<String>,
    /// Declared input fields only.
    pub meta: serde_json::Value,
    /// The risk score (0 for rejections).
    pub risk_score: i64,
    /// Whether it was allowed.
    pub allowed: bool,
    /// Allowed, blocked or rejected.
    pub outcome: Outcome,
    /// The decision's reason, or the rejection code.
    pub reason: String,
    /// The policy version it was decided under.
    pub policy_version: String,
    /// Time spent deciding, in microseconds.
    pub latency_us: i64,
    /// When (UTC).
    pub created_at: DateTime<Utc>,
}

/// A row as read back.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AuditRow {
    /// Row id.
    pub id: i64,
    /// The decision's id.
    pub decision_id: Uuid,
    /// The request id.
    pub request_id: String,
    /// The customer.
    pub customer_id: Uuid,
    /// The key.
    pub api_key_id: Uuid,
    /// The model.
    pub model: Option<String>,
    /// The operation.
    pub operation: Option<String>,
    /// Declared input fields.
    #[schema(value_type = Object)]
    pub meta: Json<serde_json::Value>,
    /// Risk score.
    pub risk_score: i64,
    /// Allowed or not.
    pub allowed: bool,
    /// `allowed`, `blocked` or `rejected`.
    pub status: String,
    /// Reason or rejection code.
    pub reason: String,
    /// Policy version.
    pub policy_version: String,
    /// Decision time in microseconds.
    pub latency_us: i64,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Most rows per INSERT statement: 14 values each, well under SQLite's
/// limit of 32,766 bound values.
pub const MAX_BATCH: usize = 512;

/// How many rows the writer takes from the queue at a time.
pub fn audit_batch_size() -> usize {
    MAX_BATCH
}

impl Store {
    /// Writes rows with multi-row INSERTs and adds them to their keys'
    /// usage counters, all in one transaction.
    pub async fn insert_audit(&self, rows: &[AuditRecord]) -> Result<(), StoreError> {
        let mut usage: std::collections::HashMap<Uuid, (i64, DateTime<Utc>)> = std::collections::HashMap::new();
        for r in rows {
            let e = usage.entry(r.api_key_id).or_insert((0, r.created_at));
            e.0 += 1;
            e.1 = e.1.max(r.created_at);
        }
        const HEAD: &str = "INSERT INTO usage_log (decision_id, request_id, customer_id, api_key_id, model, operation, \
                            meta, risk_score, allowed, status, reason, policy_version, latency_us, created_at) ";
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            for chunk in power_of_two_chunks(rows) {
                let mut q = sqlx::QueryBuilder::new(HEAD);
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(r.decision_id)
                        .push_bind(r.request_id.as_str())
                        .push_bind(r.customer_id)
                        .push_bind(r.api_key_id)
                        .push_bind(r.model.as_deref())
                        .push_bind(r.operation.as_deref())
                        .push_bind(Json(&r.meta))
                        .push_bind(r.risk_score)
                        .push_bind(r.allowed)
                        .push_bind(r.outcome.as_str())
                        .push_bind(r.reason.as_str())
                        .push_bind(r.policy_version.as_str())
                        .push_bind(r.latency_us)
                        .push_bind(r.created_at);
                });
                q.build().execute(&mut *tx).await?;
            }
            for (id, (count, at)) in &usage {
                sqlx::query(super::keys::RECORD_USAGE).bind(count).bind(at).bind(id).execute(&mut *tx).await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }

    /// How many audit rows there are.
    pub async fn count_audit(&self) -> Result<i64, StoreError> {
        Ok(on_pool!(self, p => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM usage_log").fetch_one(p).await)?)
    }

    /// The newest `limit` rows, newest first.
    pub async fn recent_audit(&self, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let sql = "SELECT id, decision_id, request_id, customer_id, api_key_id, model, operation, meta, risk_score, allowed, \
                   status, reason, policy_version, latency_us, created_at FROM usage_log ORDER BY id DESC LIMIT $1";
        Ok(on_pool!(self, p => sqlx::query_as::<_, AuditRow>(sql).bind(limit).fetch_all(p).await)?)
    }

    /// Deletes rows created before `before`; returns how many.
    pub async fn prune_audit(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let sql = "DELETE FROM usage_log WHERE created_at < $1";
        Ok(on_pool!(self, p => sqlx::query(sql).bind(before).execute(p).await.map(|r| r.rows_affected()))?)
    }
}

/// Splits rows into chunks whose sizes are powers of two (at most
/// [`MAX_BATCH`]). Each chunk size is its own INSERT text, and drivers cache
/// one prepared statement per text and connection; a multi-row INSERT's
/// compiled program is large, so ten possible texts keep that cache small
/// where hundreds of batch sizes would fill it (and memory) with near-copies.
fn power_of_two_chunks<T>(rows: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = 1usize << rest.len().min(MAX_BATCH).ilog2();
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        Some(chunk)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)] // test data of known length

    use super::power_of_two_chunks;

    #[test]
    fn chunks_are_powers_of_two_and_cover_every_row() {
        let rows: Vec<u32> = (0..1300).collect();
        let sizes: Vec<usize> = power_of_two_chunks(&rows).map(<[u32]>::len).collect();
        assert_eq!(sizes, vec![512, 512, 256, 16, 4]);
        assert_eq!(power_of_two_chunks(&rows[..1]).count(), 1);
        assert_eq!(power_of_two_chunks::<u32>(&[]).count(), 0);
        let flat: Vec<u32> = power_of_two_chunks(&rows).flatten().copied().collect();
        assert_eq!(flat, rows);
    }
}
