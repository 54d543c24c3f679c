//! The delivery queue: waiting events packed into messages (a message is
//! one request, retried under one `webhook-id`), messages claimed with a
//! lease by one instance, attempts settled.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::MAX_BATCH;
use crate::store::{AdminChange, Store, StoreError, on_pool};

/// How each backend locks one endpoint for packing its waiting events.
pub(crate) trait PackDialect {
    /// Locks active endpoint `$1` for the transaction, skipping it (no row)
    /// if another instance holds it; returns `next_send_at`.
    const LOCK_ENDPOINT: &'static str;
    /// Claims up to `$3` due messages (`next_attempt_at <= $1`, no live
    /// lease, the endpoint's next send time reached and no other message
    /// of it leased) by leasing them until `$2`, counting the attempt.
    const CLAIM: &'static str;
}

impl PackDialect for sqlx::Postgres {
    const LOCK_ENDPOINT: &'static str =
        "SELECT next_send_at FROM webhook_endpoint WHERE id = $1 AND active FOR UPDATE SKIP LOCKED";
    const CLAIM: &'static str = "UPDATE webhook_message SET leased_until = $2, attempts = attempts + 1 \
        WHERE id IN (SELECT m.id FROM webhook_message m JOIN webhook_endpoint e ON e.id = m.endpoint_id \
            WHERE m.status = 'pending' AND m.next_attempt_at <= $1 AND (m.leased_until IS NULL OR m.leased_until < $1) \
            AND e.active AND e.next_send_at <= $1 AND NOT EXISTS (SELECT 1 FROM webhook_message o \
                WHERE o.endpoint_id = m.endpoint_id AND o.status = 'pending' AND o.leased_until >= $1) \
            ORDER BY m.next_attempt_at LIMIT $3 FOR UPDATE OF m SKIP LOCKED) \
        RETURNING id, endpoint_id, body, attempts, created_at";
}

impl PackDialect for sqlx::Sqlite {
    // SQLite has one writer at a time: the first write takes the lock for
    // the whole transaction, and nobody else can hold this row meanwhile.
    const LOCK_ENDPOINT: &'static str =
        "UPDATE webhook_endpoint SET failures = failures WHERE id = $1 AND active RETURNING next_send_at";
    const CLAIM: &'static str = "UPDATE webhook_message SET leased_until = $2, attempts = attempts + 1 \
        WHERE id IN (SELECT m.id FROM webhook_message m JOIN webhook_endpoint e ON e.id = m.endpoint_id \
            WHERE m.status = 'pending' AND m.next_attempt_at <= $1 AND (m.leased_until IS NULL OR m.leased_until < $1) \
            AND e.active AND e.next_send_at <= $1 AND NOT EXISTS (SELECT 1 FROM webhook_message o \
                WHERE o.endpoint_id = m.endpoint_id AND o.status = 'pending' AND o.leased_until >= $1) \
            ORDER BY m.next_attempt_at LIMIT $3) \
        RETURNING id, endpoint_id, body, attempts, created_at";
}

fn lock_sql<DB: sqlx::Database + PackDialect>(_: &sqlx::Transaction<'_, DB>) -> &'static str {
    DB::LOCK_ENDPOINT
}

fn claim_sql<DB: sqlx::Database + PackDialect>(_: &sqlx::Pool<DB>) -> &'static str {
    DB::CLAIM
}

/// A message claimed for delivery, with where it goes.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// `webhook-id`.
    pub id: String,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The JSON body.
    pub body: String,
    /// This attempt's number, from 1.
    pub attempt: i64,
    /// When the message was packed.
    pub created_at: DateTime<Utc>,
    /// The endpoint's URL.
    pub url: String,
    /// The endpoint's secret.
    pub secret: String,
}

/// What an attempt came to.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The HTTP status, if one came back.
    pub status: Option<u16>,
    /// Milliseconds.
    pub latency_ms: i64,
    /// What went wrong.
    pub error: Option<String>,
}

impl Outcome {
    /// A 2xx answer.
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// The queue's size, for metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct Backlog {
    /// Events not yet acknowledged (waiting or in a pending message).
    pub events: i64,
    /// When the oldest of them happened.
    pub oldest: Option<DateTime<Utc>>,
}

impl Store {
    /// Whether any endpoint is active (the deliverer idles otherwise).
    pub async fn webhooks_active(&self) -> Result<bool, StoreError> {
        let n: i64 = on_pool!(self, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM webhook_endpoint WHERE active").fetch_one(p).await)?;
        Ok(n > 0)
    }

    /// Packs waiting events into messages: for each active endpoint with
    /// waiting events and no pending message, up to [`MAX_BATCH`] events
    /// (oldest first) become one message, due when the endpoint's rate
    /// allows. The endpoint row is locked while packing (skipped if another
    /// instance is packing it). Returns how many messages were made.
    pub async fn pack_webhook_messages(&self) -> Result<usize, StoreError> {
        let candidates: Vec<Uuid> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT e.id FROM webhook_endpoint e WHERE e.active \
             AND EXISTS (SELECT 1 FROM webhook_event v WHERE v.endpoint_id = e.id AND v.message_id IS NULL) \
             AND NOT EXISTS (SELECT 1 FROM webhook_message m WHERE m.endpoint_id = e.id AND m.status = 'pending')")
            .fetch_all(p).await)?;
        let mut made = 0;
        for endpoint in candidates {
            let packed = on_pool!(self, p => {
                let mut tx = p.begin().await?;
                let next_send_at: Option<DateTime<Utc>> =
                    sqlx::query_scalar(lock_sql(&tx)).bind(endpoint).fetch_optional(&mut *tx).await?;
                let Some(next_send_at) = next_send_at else { continue };
                // Checked again under the lock: another instance may have
                // packed this endpoint meanwhile.
                let pending: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM webhook_message WHERE endpoint_id = $1 AND status = 'pending'")
                    .bind(endpoint).fetch_one(&mut *tx).await?;
                if pending > 0 {
                    continue;
                }
                let rows: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT id, payload FROM webhook_event WHERE endpoint_id = $1 AND message_id IS NULL ORDER BY id LIMIT $2")
                    .bind(endpoint).bind(MAX_BATCH as i64).fetch_all(&mut *tx).await?;
                if rows.is_empty() {
                    continue;
                }
                let now = crate::store::now();
                let id = format!("msg_{}", Uuid::now_v7().simple());
                let body = message_body(&rows.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(), now);
                sqlx::query("INSERT INTO webhook_message (id, endpoint_id, body, events, status, attempts, \
                             next_attempt_at, created_at) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $6)")
                    .bind(&id).bind(endpoint).bind(&body).bind(rows.len() as i64).bind(next_send_at.max(now)).bind(now)
                    .execute(&mut *tx).await?;
                // By id, not by range: on Postgres an event committed
                // meanwhile may have an id inside the range read.
                let mut q = sqlx::QueryBuilder::new("UPDATE webhook_event SET message_id = ");
                q.push_bind(&id).push(" WHERE id IN (");
                let mut ids = q.separated(", ");
                for r in &rows {
                    ids.push_bind(r.0);
                }
                ids.push_unseparated(")");
                q.build().execute(&mut *tx).await?;
                tx.commit().await?;
                1
            });
            made += packed;
        }
        Ok(made)
    }

    /// Claims up to `limit` due messages for this instance until
    /// `lease_until`, with their endpoints' URLs and secrets.
    pub async fn claim_webhook_messages(
        &self,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Claimed>, StoreError> {
        let now = crate::store::now();
        let rows: Vec<(String, Uuid, String, i64, DateTime<Utc>)> = on_pool!(self, p => sqlx::query_as(claim_sql(p))
            .bind(now).bind(lease_until).bind(limit).fetch_all(p).await)?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, endpoint_id, body, attempt, created_at) in rows {
            let target: Option<(String, String)> = on_pool!(self, p => sqlx::query_as(
                "SELECT url, secret FROM webhook_endpoint WHERE id = $1").bind(endpoint_id).fetch_optional(p).await)?;
            if let Some((url, secret)) = target {
                out.push(Claimed { id, endpoint_id, body, attempt, created_at, url, secret });
            }
        }
        Ok(out)
    }

    /// Gives back a claimed message unsent (the lease and the attempt
    /// count), so a later round sends it.
    pub async fn release_webhook_message(&self, id: &str) -> Result<(), StoreError> {
        let sql = "UPDATE webhook_message SET leased_until = NULL, attempts = attempts - 1 WHERE id = $1";
        on_pool!(self, p => sqlx::query(sql).bind(id).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Records an attempt and its consequences in one transaction: the
    /// message delivered, failed (past `give_up_at`) or due again at
    /// `retry_at`; the endpoint's failure count and next send time; and,
    /// when the failures reach `disable_after`, the endpoint disabled with
    /// an entry in the admin trail. Returns whether it was disabled now.
    #[allow(clippy::too_many_arguments)]
    pub async fn settle_webhook_attempt(
        &self,
        m: &Claimed,
        attempted_at: DateTime<Utc>,
        outcome: &Outcome,
        retry_at: DateTime<Utc>,
        give_up: bool,
        next_send_at: DateTime<Utc>,
        disable_after: u32,
    ) -> Result<bool, StoreError> {
        let delivered = outcome.delivered();
        let now = crate::store::now();
        let disabled = on_pool!(self, p => {
            let mut tx = p.begin().await?;
            sqlx::query("INSERT INTO webhook_attempt (message_id, endpoint_id, attempted_at, result, status_code, \
                         latency_ms, error) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(&m.id).bind(m.endpoint_id).bind(attempted_at)
                .bind(if delivered { "delivered" } else { "failed" })
                .bind(outcome.status.map(i64::from)).bind(outcome.latency_ms).bind(&outcome.error)
                .execute(&mut *tx).await?;
            let status = match (delivered, give_up) {
                (true, _) => "delivered",
                (false, true) => "failed",
                (false, false) => "pending",
            };
            sqlx::query("UPDATE webhook_message SET status = $1, next_attempt_at = $2, leased_until = NULL, \
                         finished_at = $3 WHERE id = $4")
                .bind(status).bind(retry_at).bind((status != "pending").then_some(now)).bind(&m.id)
                .execute(&mut *tx).await?;
            let failures: i64 = if delivered {
                sqlx::query_scalar("UPDATE webhook_endpoint SET failures = 0, next_send_at = $1 WHERE id = $2 RETURNING failures")
                    .bind(next_send_at).bind(m.endpoint_id).fetch_optional(&mut *tx).await?.unwrap_or(0)
            } else {
                sqlx::query_scalar("UPDATE webhook_endpoint SET failures = failures + 1, next_send_at = $1 WHERE id = $2 \
                                    RETURNING failures")
                    .bind(next_send_at).bind(m.endpoint_id).fetch_optional(&mut *tx).await?.unwrap_or(0)
            };
            let disable = !delivered && failures >= i64::from(disable_after);
            let mut disabled_now = false;
            if disable {
                let reason = format!(
                    "{failures} consecutive failed attempts (last: {})",
                    outcome.error.clone().unwrap_or_else(|| format!("HTTP {}", outcome.status.unwrap_or(0)))
                );
                let changed = sqlx::query("UPDATE webhook_endpoint SET active = FALSE, disabled_at = $1, \
                                           disabled_reason = $2 WHERE id = $3 AND active")
                    .bind(now).bind(&reason).bind(m.endpoint_id).execute(&mut *tx).await?.rows_affected();
                if changed > 0 {
                    let change = AdminChange::new(None, "webhook.disable", m.endpoint_id.to_string())
                        .before(serde_json::json!({"active": true}))
                        .after(serde_json::json!({"active": false, "reason": reason}));
                    crate::store::admin::append_admin_audit!(tx, &change);
                    disabled_now = true;
                }
            }
            tx.commit().await?;
            disabled_now
        });
        Ok(disabled)
    }

    /// Events not yet acknowledged, and when the oldest happened.
    pub async fn webhook_backlog(&self) -> Result<Backlog, StoreError> {
        let (events, oldest): (i64, Option<DateTime<Utc>>) = on_pool!(self, p => sqlx::query_as(
            "SELECT COUNT(*), MIN(v.created_at) FROM webhook_event v \
             LEFT JOIN webhook_message m ON m.id = v.message_id \
             JOIN webhook_endpoint e ON e.id = v.endpoint_id \
             WHERE e.active AND (v.message_id IS NULL OR m.status = 'pending')").fetch_one(p).await)?;
        Ok(Backlog { events, oldest })
    }
}
/// A message's body: `{"type": "events", "timestamp", "data": {"events":
/// [...]}}`, the events as stored (each `{id, type, timestamp, data}`).
fn message_body(events: &[&str], at: DateTime<Utc>) -> String {
    let mut body = format!(
        "{{\"type\":\"events\",\"timestamp\":\"{}\",\"data\":{{\"events\":[",
        crate::audit::chain::format_time(at)
    );
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(e);
    }
    body.push_str("]}}");
    body
}
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests fail loudly

    use super::*;

    #[test]
    fn a_message_body_is_json_holding_its_events_in_order() {
        let events = [r#"{"id":"evt_1","type":"decision.blocked"}"#, r#"{"id":"evt_2","type":"key.created"}"#];
        let body: serde_json::Value = serde_json::from_str(&message_body(&events, crate::store::now())).unwrap();
        assert_eq!(body["type"], "events");
        let ids: Vec<_> = body["data"]["events"].as_array().unwrap().iter().map(|e| e["id"].clone()).collect();
        assert_eq!(ids, vec!["evt_1", "evt_2"]);
    }
}
