//! Dashboard sessions (`admin_session`): created at sign-in, looked up on
//! every dashboard request, ended by sign-out, expiry, or their key being
//! deleted or rotated.
//!
//! Only the SHA-256 of a session id is stored (as 64 hex digits); the id
//! itself exists only in the browser's cookie. Sign-ins, failed sign-ins
//! and sign-outs are recorded in the admin trail, without touching the
//! change counter (they change nothing instances serve).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{AdminChange, Store, StoreError, on_pool};

/// A live session, with what the dashboard needs about its key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRecord {
    /// The key that signed in.
    pub key_id: Uuid,
    /// The key's name.
    pub key_name: String,
    /// The key's customer.
    pub customer_id: Uuid,
    /// The key's role, as stored (`app`, `admin` or `viewer`).
    pub role: String,
    /// When the session began (UTC).
    pub created_at: DateTime<Utc>,
    /// The last request seen on it (UTC).
    pub last_seen_at: DateTime<Utc>,
}

impl Store {
    /// Records a new session for `key_id` under `id_hash`, and the sign-in
    /// in the admin trail, in one transaction.
    pub async fn create_session(&self, id_hash: &str, key_id: Uuid) -> Result<(), StoreError> {
        let now = super::now();
        let change = AdminChange::new(Some(key_id), "session.sign_in", format!("key/{key_id}"));
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            sqlx::query("INSERT INTO admin_session (id_hash, api_key_id, created_at, last_seen_at) VALUES ($1, $2, $3, $3)")
                .bind(id_hash)
                .bind(key_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            super::admin::append_admin_audit!(tx, &change);
            tx.commit().await?;
        });
        Ok(())
    }

    /// The session stored under `id_hash` whose key is still active, with
    /// its key's name, customer and role. Expiry is the caller's to judge.
    pub async fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        let sql = "SELECT s.api_key_id AS key_id, k.name AS key_name, k.customer_id, k.role, s.created_at, s.last_seen_at \
                   FROM admin_session s JOIN api_key k ON k.id = s.api_key_id \
                   WHERE s.id_hash = $1 AND k.active";
        Ok(on_pool!(self, p => sqlx::query_as::<_, SessionRecord>(sql).bind(id_hash).fetch_optional(p).await)?)
    }

    /// Moves a session's last-seen time to now.
    pub async fn touch_session(&self, id_hash: &str) -> Result<(), StoreError> {
        let sql = "UPDATE admin_session SET last_seen_at = $1 WHERE id_hash = $2";
        on_pool!(self, p => sqlx::query(sql).bind(super::now()).bind(id_hash).execute(p).await.map(|_| ()))?;
        Ok(())
    }

    /// Ends a session. With `actor`, the sign-out is recorded in the admin
    /// trail (an expired session is ended without a record). Returns
    /// whether it existed.
    pub async fn end_session(&self, id_hash: &str, actor: Option<Uuid>) -> Result<bool, StoreError> {
        let ended = on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let done = sqlx::query("DELETE FROM admin_session WHERE id_hash = $1")
                .bind(id_hash)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if let Some(key_id) = actor.filter(|_| done > 0) {
                let change = AdminChange::new(Some(key_id), "session.sign_out", format!("key/{key_id}"));
                super::admin::append_admin_audit!(tx, &change);
            }
            tx.commit().await?;
            done > 0
        });
        Ok(ended)
    }

    /// Records a refused sign-in: the key id when the presented text had a
    /// key's shape (never the text itself), and why.
    pub async fn record_failed_sign_in(&self, key_id: Option<Uuid>, reason: &str) -> Result<(), StoreError> {
        let target = key_id.map_or_else(|| "key/unknown".to_owned(), |id| format!("key/{id}"));
        let change =
            AdminChange::new(None, "session.sign_in_failed", target).after(serde_json::json!({ "reason": reason }));
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            super::admin::append_admin_audit!(tx, &change);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Deletes sessions idle since before `idle_before` or begun before
    /// `created_before`. Returns how many went.
    pub async fn prune_sessions(
        &self,
        idle_before: DateTime<Utc>,
        created_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let sql = "DELETE FROM admin_session WHERE last_seen_at < $1 OR created_at < $2";
        let done = on_pool!(self, p => sqlx::query(sql).bind(idle_before).bind(created_before).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(done)
    }
}
