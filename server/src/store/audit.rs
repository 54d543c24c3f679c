//! The audit log (`usage_log`): one metadata-only row per decision, each
//! on the hash chain (see [`chain`] and [`crate::audit::chain`]).

pub(crate) mod chain;
mod read;
mod replay_rows;
mod shadow;

pub use read::{LogEntry, LogFilter, Stats};
pub use replay_rows::{ReplayRange, ReplayRow};
pub use shadow::{
    CandidateOutcome, ShadowDecision, ShadowMatch, ShadowOutcome, ShadowRecord, ShadowTally, change_between,
};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;
use uuid::Uuid;

use super::{Store, StoreError, on_pool};

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
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

/// One rule's part in a decision's score, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Contribution {
    /// The rule's name.
    pub rule: String,
    /// What it added to the score.
    pub score: i64,
}

/// One row to write. It never holds request content: `meta` is built from
/// the policy's declared fields only.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
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
    /// The rules that added to the score, in evaluation order; `None` for
    /// rejections (nothing was evaluated). Absent in spill files written
    /// before the field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contributions: Option<Vec<Contribution>>,
    /// The shadow rules that held and the outcome had they been enforced;
    /// `None` when none held (and in spill files from before shadow rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowRecord>,
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
    /// The rules that added to the score, in evaluation order (absent on
    /// rejections and on rows written before contributions were recorded).
    #[schema(value_type = Option<Vec<Contribution>>)]
    pub contributions: Option<Json<Vec<Contribution>>>,
    /// The shadow rules that held and the outcome had they been enforced
    /// (absent when none held).
    #[schema(value_type = Option<ShadowRecord>)]
    pub shadow: Option<Json<ShadowRecord>>,
}

/// Most rows per INSERT statement: 19 values each, well under SQLite's
/// limit of 32,766 bound values.
pub const MAX_BATCH: usize = 512;

/// How many rows the writer takes from the queue at a time.
pub fn audit_batch_size() -> usize {
    MAX_BATCH
}

impl Store {
    /// Writes rows with multi-row INSERTs and adds them to their keys'
    /// usage counters, all in one transaction. The rows join the hash chain
    /// here, at insert time (not when they were decided): the transaction
    /// takes the chain head once for the whole batch, links each row to the
    /// one before it, and moves the head. So rows written back from the
    /// spill, or after a restart, continue the chain where it stands.
    pub async fn insert_audit(&self, rows: &[AuditRecord]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut usage: std::collections::HashMap<Uuid, (i64, DateTime<Utc>)> = std::collections::HashMap::new();
        for r in rows {
            let e = usage.entry(r.api_key_id).or_insert((0, r.created_at));
            e.0 += 1;
            e.1 = e.1.max(r.created_at);
        }
        // Both backends keep microseconds: the hash covers what is stored.
        let times: Vec<DateTime<Utc>> = rows.iter().map(|r| crate::audit::chain::to_micros(r.created_at)).collect();
        const HEAD: &str = "INSERT INTO usage_log (decision_id, request_id, customer_id, api_key_id, model, operation, \
                            meta, risk_score, allowed, status, reason, policy_version, latency_us, created_at, \
                            chain_seq, prev_hash, row_hash, contributions, shadow) ";
        // Encoded before the transaction: only the SHA-256 links, which need
        // the head, are computed while it is held.
        // `meta` is serialised once, in canonical form: that text is both
        // hashed and stored.
        let metas: Vec<String> = rows.iter().map(|r| crate::audit::chain::canonical_json(&r.meta)).collect();
        let contributions: Vec<Option<String>> = rows.iter().map(canonical_contributions).collect();
        let shadows: Vec<Option<String>> = rows.iter().map(canonical_shadow).collect();
        let encodings: Vec<Vec<u8>> = rows
            .iter()
            .zip(&times)
            .zip(metas.iter().zip(contributions.iter().zip(&shadows)))
            .map(|((r, at), (meta, (c, shadow)))| {
                crate::audit::chain::encode_usage_canonical(
                    &usage_fields(r, *at),
                    meta,
                    c.as_deref(),
                    shadow.as_deref(),
                )
            })
            .collect();
        let rollup = super::rollup::RollupBatch::of(rows);
        let shadow_rollup = super::shadow_rollup::ShadowRollupBatch::of(rows);
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let (mut seq, mut prev, webhooks) = chain::take_chain_head!(tx, crate::audit::chain::Chain::UsageLog);
            let mut links: Vec<(i64, String, String)> = Vec::with_capacity(rows.len());
            for encoding in &encodings {
                let hash = crate::audit::chain::link(&prev, encoding);
                seq += 1;
                links.push((seq, std::mem::replace(&mut prev, hash.clone()), hash));
            }
            let mut offset = 0;
            for chunk in power_of_two_chunks(rows) {
                let chunk_links = links.get(offset..offset + chunk.len()).unwrap_or_default();
                let chunk_times = times.get(offset..offset + chunk.len()).unwrap_or_default();
                let chunk_metas = metas.get(offset..offset + chunk.len()).unwrap_or_default();
                let chunk_contributions = contributions.get(offset..offset + chunk.len()).unwrap_or_default();
                let chunk_shadows = shadows.get(offset..offset + chunk.len()).unwrap_or_default();
                offset += chunk.len();
                let mut q = sqlx::QueryBuilder::new(HEAD);
                let values = chunk
                    .iter()
                    .zip(chunk_links)
                    .zip(chunk_times)
                    .zip(chunk_metas.iter().zip(chunk_contributions.iter().zip(chunk_shadows)));
                q.push_values(values, |mut b, (((r, (seq, prev, hash)), at), (meta, (c, shadow)))| {
                    b.push_bind(r.decision_id)
                        .push_bind(r.request_id.as_str())
                        .push_bind(r.customer_id)
                        .push_bind(r.api_key_id)
                        .push_bind(r.model.as_deref())
                        .push_bind(r.operation.as_deref())
                        .push_bind(CanonicalJson(meta))
                        .push_bind(r.risk_score)
                        .push_bind(r.allowed)
                        .push_bind(r.outcome.as_str())
                        .push_bind(r.reason.as_str())
                        .push_bind(r.policy_version.as_str())
                        .push_bind(r.latency_us)
                        .push_bind(*at)
                        .push_bind(*seq)
                        .push_bind(prev.as_str())
                        .push_bind(hash.as_str())
                        .push_bind(c.as_deref().map(CanonicalJson))
                        .push_bind(shadow.as_deref().map(CanonicalJson));
                });
                q.build().execute(&mut *tx).await?;
            }
            chain::move_chain_head!(tx, crate::audit::chain::Chain::UsageLog, seq, &prev);
            rollup.add(&mut tx).await?;
            super::shadow_rollup::add_shadow_rollup!(tx, shadow_rollup);
            // Webhook events for blocked and rejected decisions, in the same
            // transaction: they exist exactly when their audit rows do.
            let subs = if webhooks { crate::webhooks::outbox::load_subscriptions!(tx) } else { Vec::new() };
            if !subs.is_empty() {
                let events: Vec<crate::webhooks::Event> = rows
                    .iter()
                    .zip(&links)
                    .filter_map(|(r, (seq, _, _))| crate::webhooks::Event::for_decision(r, *seq))
                    .collect();
                crate::webhooks::outbox::insert_outbox!(tx, &subs, &events);
            }
            // In key order, so two instances' batches lock rows in the same
            // order and can't deadlock.
            let mut usage: Vec<_> = usage.iter().collect();
            usage.sort_unstable_by_key(|(id, _)| **id);
            for (id, (count, at)) in usage {
                sqlx::query(super::keys::RECORD_USAGE).bind(count).bind(at).bind(id).execute(&mut *tx).await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }

    /// `rows` without those already in `usage_log` (same decision id). A
    /// spill file can hold rows whose database write committed after all,
    /// once its stall had sent them to the spill; writing them again would
    /// record those decisions twice (each copy on the chain). The lookup is
    /// bounded by the rows' times, on the `created_at` index.
    pub async fn unwritten(&self, rows: Vec<AuditRecord>) -> Result<Vec<AuditRecord>, StoreError> {
        let times = rows.iter().map(|r| crate::audit::chain::to_micros(r.created_at));
        let (Some(lo), Some(hi)) = (times.clone().min(), times.max()) else { return Ok(rows) };
        let sql = "SELECT decision_id FROM usage_log WHERE created_at >= $1 AND created_at <= $2";
        let written: Vec<Uuid> = on_pool!(self, p => sqlx::query_scalar(sql).bind(lo).bind(hi).fetch_all(p).await)?;
        if written.is_empty() {
            return Ok(rows);
        }
        let written: std::collections::HashSet<Uuid> = written.into_iter().collect();
        let before = rows.len();
        let rows: Vec<AuditRecord> = rows.into_iter().filter(|r| !written.contains(&r.decision_id)).collect();
        if rows.len() < before {
            tracing::info!(
                rows = before - rows.len(),
                "spilled audit rows already in the database (their write committed after all); not written again"
            );
        }
        Ok(rows)
    }

    /// How many audit rows there are.
    pub async fn count_audit(&self) -> Result<i64, StoreError> {
        Ok(on_pool!(self, p => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM usage_log").fetch_one(p).await)?)
    }

    /// The newest `limit` rows, newest first.
    pub async fn recent_audit(&self, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let sql = format!("SELECT {} FROM usage_log ORDER BY id DESC LIMIT $1", read::AUDIT_COLUMNS);
        Ok(on_pool!(self, p => sqlx::query_as::<_, AuditRow>(&sql).bind(limit).fetch_all(p).await)?)
    }
}

/// A row's contributions in canonical form: hashed and stored as that text.
fn canonical_contributions(r: &AuditRecord) -> Option<String> {
    let value = serde_json::to_value(r.contributions.as_ref()?).ok()?;
    Some(crate::audit::chain::canonical_json(&value))
}

/// A row's shadow record in canonical form: hashed and stored as that text.
fn canonical_shadow(r: &AuditRecord) -> Option<String> {
    let value = serde_json::to_value(r.shadow.as_ref()?).ok()?;
    Some(crate::audit::chain::canonical_json(&value))
}

/// JSON text already in canonical form, bound as it is: `jsonb` on Postgres
/// (binary format, version 1), `TEXT` on SQLite. sqlx's `Json` would
/// serialise the value again; this saves that for every audit row.
#[derive(Debug, Clone, Copy)]
struct CanonicalJson<'a>(&'a str);

impl sqlx::Type<sqlx::Postgres> for CanonicalJson<'_> {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        // jsonb's fixed OID in pg_type.
        sqlx::postgres::PgTypeInfo::with_oid(sqlx::postgres::types::Oid(3802))
    }
}

impl sqlx::Encode<'_, sqlx::Postgres> for CanonicalJson<'_> {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        buf.push(1);
        buf.extend_from_slice(self.0.as_bytes());
        Ok(sqlx::encode::IsNull::No)
    }
}

impl sqlx::Type<sqlx::Sqlite> for CanonicalJson<'_> {
    fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
        <str as sqlx::Type<sqlx::Sqlite>>::type_info()
    }
}

impl<'q> sqlx::Encode<'q, sqlx::Sqlite> for CanonicalJson<'q> {
    fn encode_by_ref(
        &self,
        buf: &mut Vec<sqlx::sqlite::SqliteArgumentValue<'q>>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <&str as sqlx::Encode<'q, sqlx::Sqlite>>::encode_by_ref(&self.0, buf)
    }
}

/// The hashed columns of `r`, created at `at` (its time as stored).
fn usage_fields(r: &AuditRecord, at: DateTime<Utc>) -> crate::audit::chain::UsageFields<'_> {
    crate::audit::chain::UsageFields {
        decision_id: r.decision_id,
        request_id: &r.request_id,
        customer_id: r.customer_id,
        api_key_id: r.api_key_id,
        model: r.model.as_deref(),
        operation: r.operation.as_deref(),
        meta: &r.meta,
        risk_score: r.risk_score,
        allowed: r.allowed,
        status: r.outcome.as_str(),
        reason: &r.reason,
        policy_version: &r.policy_version,
        latency_us: r.latency_us,
        created_at: at,
        // Hashed from their canonical text (see `insert_audit`), not from here.
        contributions: None,
        shadow: None,
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
