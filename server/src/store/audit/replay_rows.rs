//! Reading the audit log for a replay: the rows of a period (and perhaps
//! one customer) in time order, in keyset chunks, each read in its own
//! short statement so a long replay never holds a snapshot or a lock the
//! audit writer waits on.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::super::{Store, StoreError, on_pool};
use super::Contribution;

/// What a replay reads of one audit row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReplayRow {
    /// Row id.
    pub id: i64,
    /// The decision's id.
    pub decision_id: Uuid,
    /// The customer.
    pub customer_id: Uuid,
    /// `allowed`, `blocked` or `rejected`.
    pub status: String,
    /// Whether it was allowed.
    pub allowed: bool,
    /// Its risk score.
    pub risk_score: i64,
    /// Its reason (or rejection code).
    pub reason: String,
    /// The policy version it was decided under.
    pub policy_version: String,
    /// The declared fields as recorded, by dotted path.
    pub meta: Json<serde_json::Value>,
    /// The score rules that added to it, if recorded.
    pub contributions: Option<Json<Vec<Contribution>>>,
    /// When (UTC).
    pub created_at: DateTime<Utc>,
}

/// Which rows a replay reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayRange {
    /// Created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Created before.
    pub to: Option<DateTime<Utc>>,
    /// One customer only.
    pub customer_id: Option<Uuid>,
}

impl Store {
    /// Up to `limit` rows of `range` after `after` (a row's time and id;
    /// `None` from the start), oldest first.
    pub async fn replay_chunk(
        &self,
        range: &ReplayRange,
        after: Option<(DateTime<Utc>, i64)>,
        limit: u32,
    ) -> Result<Vec<ReplayRow>, StoreError> {
        Ok(on_pool!(self, p => {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT id, decision_id, customer_id, status, allowed, risk_score, reason, policy_version, meta, \
                 contributions, created_at FROM usage_log WHERE 1 = 1",
            );
            if let Some(from) = range.from {
                q.push(" AND created_at >= ").push_bind(from);
            }
            if let Some(to) = range.to {
                q.push(" AND created_at < ").push_bind(to);
            }
            if let Some(c) = range.customer_id {
                q.push(" AND customer_id = ").push_bind(c);
            }
            if let Some((at, id)) = after {
                q.push(" AND (created_at, id) > (").push_bind(at).push(", ").push_bind(id).push(")");
            }
            q.push(" ORDER BY created_at, id LIMIT ").push_bind(i64::from(limit));
            q.build_query_as::<ReplayRow>().fetch_all(p).await
        })?)
    }
}
