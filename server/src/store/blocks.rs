//! Blocked decisions counted by reason code, for the rules views. A
//! decision's row records its reason, not every rule that contributed, so
//! a rule's blocks are the blocked decisions with its reason (rules that
//! share a reason share their counts).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Pool, Store, StoreError};

impl Store {
    /// Blocked decisions with `reason` since `since`, per UTC day
    /// (`YYYY-MM-DD`; days without any are absent).
    pub async fn blocks_per_day(
        &self,
        reason: &str,
        since: DateTime<Utc>,
    ) -> Result<BTreeMap<String, i64>, StoreError> {
        // Bucketing a timestamp by UTC day is the one place the dialects differ.
        let rows: Vec<(String, i64)> = match &self.pool {
            Pool::Postgres(p) => {
                sqlx::query_as(
                    "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, COUNT(*) FROM usage_log \
                     WHERE created_at >= $1 AND status = 'blocked' AND reason = $2 GROUP BY day",
                )
                .bind(since)
                .bind(reason)
                .fetch_all(p)
                .await?
            }
            Pool::Sqlite(p) => {
                sqlx::query_as(
                    "SELECT substr(created_at, 1, 10) AS day, COUNT(*) FROM usage_log \
                     WHERE created_at >= $1 AND status = 'blocked' AND reason = $2 GROUP BY day",
                )
                .bind(since)
                .bind(reason)
                .fetch_all(p)
                .await?
            }
        };
        Ok(rows.into_iter().collect())
    }
}
