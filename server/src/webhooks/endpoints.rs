//! Webhook endpoints (registered, listed, deleted through the admin API,
//! each change in the admin trail) and their delivery attempts.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row as _;
use uuid::Uuid;

use super::Filter;
use crate::store::{AdminChange, Page, Store, StoreError, on_pool};

/// An endpoint as listed (never its secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Endpoint {
    /// Its id.
    pub id: Uuid,
    /// Where events are POSTed.
    pub url: String,
    /// Event names, or `*`.
    pub events: Vec<String>,
    /// A note.
    pub description: String,
    /// Limits on decision events.
    pub filter: Option<Filter>,
    /// False once disabled after repeated failures.
    pub active: bool,
    /// When it was disabled.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Why.
    pub disabled_reason: Option<String>,
    /// Consecutive failed attempts.
    pub failures: i64,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// An endpoint to register.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    /// Its id.
    pub id: Uuid,
    /// The URL (checked by the caller).
    pub url: String,
    /// Event names, or `*`.
    pub events: Vec<String>,
    /// `whsec_…`.
    pub secret: String,
    /// A note.
    pub description: String,
    /// Limits on decision events.
    pub filter: Option<Filter>,
}

/// One delivery attempt.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Attempt {
    /// Its id (for redelivery).
    pub id: i64,
    /// The message (`webhook-id`).
    pub message_id: String,
    /// Events the message carries.
    pub events: i64,
    /// When.
    pub attempted_at: DateTime<Utc>,
    /// `delivered` or `failed`.
    pub result: String,
    /// The HTTP status, if one came back.
    pub status_code: Option<i64>,
    /// Milliseconds from the request to the end of the answer.
    pub latency_ms: i64,
    /// What went wrong, when it did.
    pub error: Option<String>,
    /// The message's state now: `pending` (to be retried), `delivered`, `failed`.
    pub message_status: String,
}

const ENDPOINT_COLUMNS: &str =
    "id, url, events, description, filter, active, disabled_at, disabled_reason, failures, created_at";

fn endpoint_from<R: sqlx::Row>(r: &R) -> Result<Endpoint, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> Uuid: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database>,
    for<'a> bool: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> DateTime<Utc>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<DateTime<Utc>>: sqlx::Decode<'a, R::Database>,
{
    let events: String = r.try_get("events")?;
    let filter: Option<String> = r.try_get("filter")?;
    Ok(Endpoint {
        id: r.try_get("id")?,
        url: r.try_get("url")?,
        events: serde_json::from_str(&events).unwrap_or_default(),
        description: r.try_get("description")?,
        filter: filter.and_then(|f| serde_json::from_str(&f).ok()),
        active: r.try_get("active")?,
        disabled_at: r.try_get("disabled_at")?,
        disabled_reason: r.try_get("disabled_reason")?,
        failures: r.try_get("failures")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Store {
    /// Registers an endpoint (recorded in the admin trail, without its secret).
    pub async fn create_webhook(&self, e: &NewEndpoint, actor: Option<Uuid>) -> Result<(), StoreError> {
        let change = AdminChange::new(actor, "webhook.create", e.id.to_string()).after(serde_json::json!({
            "url": e.url, "events": e.events, "description": e.description, "filter": e.filter,
        }));
        let events = serde_json::to_string(&e.events).unwrap_or_else(|_| "[\"*\"]".to_owned());
        let filter = e.filter.as_ref().and_then(|f| serde_json::to_string(f).ok());
        let now = crate::store::now();
        let sql = "INSERT INTO webhook_endpoint (id, url, events, secret, description, filter, active, failures, \
                   next_send_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, TRUE, 0, $7, $7)";
        crate::store::admin_tx!(self, &change, tx => {
            sqlx::query(sql).bind(e.id).bind(&e.url).bind(&events).bind(&e.secret).bind(&e.description).bind(&filter)
                .bind(now).execute(&mut *tx).await?;
        });
        Ok(())
    }

    /// One endpoint.
    pub async fn webhook(&self, id: Uuid) -> Result<Option<Endpoint>, StoreError> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoint WHERE id = $1");
        let found = on_pool!(self, p => match sqlx::query(&sql).bind(id).fetch_optional(p).await? {
            Some(r) => Some(endpoint_from(&r)?),
            None => None,
        });
        Ok(found)
    }

    /// Endpoints, oldest first.
    pub async fn list_webhooks(&self, page: u32, page_size: u32) -> Result<Page<Endpoint>, StoreError> {
        let offset = i64::from(page.saturating_sub(1)) * i64::from(page_size);
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoint ORDER BY created_at, id LIMIT $1 OFFSET $2");
        let items = on_pool!(self, p => {
            let rows = sqlx::query(&sql).bind(i64::from(page_size)).bind(offset).fetch_all(p).await?;
            rows.iter().map(endpoint_from).collect::<Result<Vec<_>, _>>()?
        });
        let total: i64 =
            on_pool!(self, p => sqlx::query_scalar("SELECT COUNT(*) FROM webhook_endpoint").fetch_one(p).await)?;
        Ok(Page { items, page, page_size, total })
    }

    /// Deletes an endpoint, its waiting events, messages and attempts.
    /// `false` if there was none.
    pub async fn delete_webhook(&self, id: Uuid, actor: Option<Uuid>) -> Result<bool, StoreError> {
        // Children first: SQLite enforces the foreign keys, and no cascade
        // is left to chance.
        crate::store::admin_tx!(self, read change => {
            let Some(before) = self.webhook(id).await? else { return Ok(false) };
            AdminChange::new(actor, "webhook.delete", id.to_string()).before(&before)
        }, tx => {
            for sql in [
                "DELETE FROM webhook_attempt WHERE endpoint_id = $1",
                "DELETE FROM webhook_event WHERE endpoint_id = $1",
                "DELETE FROM webhook_message WHERE endpoint_id = $1",
                "DELETE FROM webhook_endpoint WHERE id = $1",
            ] {
                sqlx::query(sql).bind(id).execute(&mut *tx).await?;
            }
        });
        Ok(true)
    }

    /// Turns a disabled endpoint back on, its failure count reset (recorded
    /// in the admin trail). Its waiting events are delivered from where
    /// they stopped. `false` if there is no such endpoint.
    pub async fn enable_webhook(&self, id: Uuid, actor: Option<Uuid>) -> Result<bool, StoreError> {
        let sql = "UPDATE webhook_endpoint SET active = TRUE, failures = 0, disabled_at = NULL, disabled_reason = NULL, \
                   next_send_at = $1 WHERE id = $2";
        crate::store::admin_tx!(self, read change => {
            let Some(before) = self.webhook(id).await? else { return Ok(false) };
            AdminChange::new(actor, "webhook.enable", id.to_string())
                .before(serde_json::json!({"active": before.active, "disabled_reason": before.disabled_reason}))
                .after(serde_json::json!({"active": true}))
        }, tx => {
            sqlx::query(sql).bind(crate::store::now()).bind(id).execute(&mut *tx).await?;
        });
        Ok(true)
    }

    /// An endpoint's attempts, newest first.
    pub async fn webhook_attempts(
        &self,
        endpoint: Uuid,
        page: u32,
        page_size: u32,
    ) -> Result<Page<Attempt>, StoreError> {
        let offset = i64::from(page.saturating_sub(1)) * i64::from(page_size);
        let sql = "SELECT a.id, a.message_id, m.events, a.attempted_at, a.result, a.status_code, a.latency_ms, a.error, \
                   m.status AS message_status FROM webhook_attempt a JOIN webhook_message m ON m.id = a.message_id \
                   WHERE a.endpoint_id = $1 ORDER BY a.id DESC LIMIT $2 OFFSET $3";
        let items = on_pool!(self, p => {
            let rows = sqlx::query(sql).bind(endpoint).bind(i64::from(page_size)).bind(offset).fetch_all(p).await?;
            let mut items = Vec::with_capacity(rows.len());
            for r in rows {
                items.push(Attempt {
                    id: r.try_get("id")?,
                    message_id: r.try_get("message_id")?,
                    events: r.try_get("events")?,
                    attempted_at: r.try_get("attempted_at")?,
                    result: r.try_get("result")?,
                    status_code: r.try_get("status_code")?,
                    latency_ms: r.try_get("latency_ms")?,
                    error: r.try_get("error")?,
                    message_status: r.try_get("message_status")?,
                });
            }
            items
        });
        let total: i64 = on_pool!(self, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM webhook_attempt WHERE endpoint_id = $1").bind(endpoint).fetch_one(p).await)?;
        Ok(Page { items, page, page_size, total })
    }

    /// Sends again the message of attempt `attempt` (same `webhook-id`, so
    /// a receiver that has it already can tell), as soon as the endpoint's
    /// rate allows. `false` if the endpoint has no such attempt.
    pub async fn redeliver_webhook(&self, endpoint: Uuid, attempt: i64) -> Result<bool, StoreError> {
        let sql = "UPDATE webhook_message SET status = 'pending', next_attempt_at = $1, leased_until = NULL, \
                   finished_at = NULL WHERE id = (SELECT message_id FROM webhook_attempt WHERE id = $2 AND endpoint_id = $3)";
        let n = on_pool!(self, p => sqlx::query(sql).bind(crate::store::now()).bind(attempt).bind(endpoint)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }
}
