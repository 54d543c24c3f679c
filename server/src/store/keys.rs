//! API keys. Only bcrypt hashes of secrets are stored.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::customers::now;
use super::{AdminChange, Page, Store, StoreError, admin_tx, on_pool};

/// Adds `$1` requests to key `$3`, last used at `$2`.
pub(crate) const RECORD_USAGE: &str = "UPDATE api_key SET request_count = request_count + $1, \
    last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < $2 THEN $2 ELSE last_used_at END WHERE id = $3";

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Decisions and `/api/evaluate`.
    App,
    /// Everything, including the admin API.
    Admin,
    /// A person's read-only admin credential: every `GET` of the admin API
    /// and the dashboard's pages, no change anywhere, and no decisions
    /// (`/v1/check` and `/api/evaluate` answer 403: a viewer is not an app).
    Viewer,
}

impl Role {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Admin => "admin",
            Self::Viewer => "viewer",
        }
    }

    /// Whether the key may change things through the admin API (and the
    /// dashboard): only an admin key. A viewer reads, an app decides.
    pub fn can_write(self) -> bool {
        self == Self::Admin
    }

    /// Whether the key may read the admin API (and sign in to the
    /// dashboard): an admin or a viewer key.
    pub fn can_read_admin(self) -> bool {
        matches!(self, Self::Admin | Self::Viewer)
    }

    /// Whether the key may ask for decisions (`/v1/check`, `/api/evaluate`):
    /// an app or an admin key, not a viewer.
    pub fn can_decide(self) -> bool {
        matches!(self, Self::App | Self::Admin)
    }

    fn parse(s: &str) -> Self {
        // The schema's CHECK constraint allows only these three. Anything
        // else would be a damaged row: it gets the role that can't see or
        // change the admin API.
        match s {
            "admin" => Self::Admin,
            "viewer" => Self::Viewer,
            _ => Self::App,
        }
    }
}

/// A key to insert.
#[derive(Debug)]
pub struct NewKey {
    /// The key id (the middle part of `wdn_<id>_<secret>`).
    pub id: Uuid,
    /// Its customer.
    pub customer_id: Uuid,
    /// A label.
    pub name: String,
    /// App, admin or viewer.
    pub role: Role,
    /// bcrypt hash of the secret.
    pub secret_hash: String,
}

/// What authentication needs to know about a key.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    /// The key id.
    pub id: Uuid,
    /// Its customer.
    pub customer_id: Uuid,
    /// App, admin or viewer.
    pub role: Role,
    /// bcrypt hash of the current secret.
    pub secret_hash: String,
    /// After a rotation with a grace period: the old secret's hash …
    pub previous_secret_hash: Option<String>,
    /// … and until when it is still accepted.
    pub previous_valid_until: Option<DateTime<Utc>>,
    /// Inactive keys are refused.
    pub active: bool,
}

impl KeyRecord {
    /// Whether `hash` (one this key was verified against) is still accepted.
    pub fn accepts_hash(&self, hash: &str, at: DateTime<Utc>) -> bool {
        self.active
            && (self.secret_hash == hash
                || (self.previous_secret_hash.as_deref() == Some(hash)
                    && self.previous_valid_until.is_some_and(|u| at < u)))
    }
}

/// A key as listed: never the secret or its hash.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct KeySummary {
    /// The key id.
    pub id: Uuid,
    /// A label.
    pub name: String,
    /// Its customer.
    pub customer_id: Uuid,
    /// The customer's email.
    pub customer_email: String,
    /// `app`, `admin` or `viewer`.
    pub role: String,
    /// Whether it is accepted.
    pub active: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last used (as of the last audit batch written).
    pub last_used_at: Option<DateTime<Utc>>,
    /// How many decisions it has asked for.
    pub request_count: i64,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: Uuid,
    customer_id: Uuid,
    role: String,
    secret_hash: String,
    previous_secret_hash: Option<String>,
    previous_valid_until: Option<DateTime<Utc>>,
    active: bool,
}

impl From<KeyRow> for KeyRecord {
    fn from(r: KeyRow) -> Self {
        Self {
            id: r.id,
            customer_id: r.customer_id,
            role: Role::parse(&r.role),
            secret_hash: r.secret_hash,
            previous_secret_hash: r.previous_secret_hash,
            previous_valid_until: r.previous_valid_until,
            active: r.active,
        }
    }
}

/// Ends a key's dashboard sessions (rotation and deactivation; deletion
/// ends them through the foreign key's cascade). Sessions are looked up in
/// the database on every dashboard request, so this ends them on every
/// instance at once.
const END_SESSIONS: &str = "DELETE FROM admin_session WHERE api_key_id = $1";
const KEY_COLUMNS: &str = "id, customer_id, role, secret_hash, previous_secret_hash, previous_valid_until, active";
const SUMMARY: &str = "SELECT k.id, k.name, k.customer_id, c.email AS customer_email, k.role, k.active, k.created_at, \
    k.last_used_at, k.request_count FROM api_key k JOIN customer c ON c.id = k.customer_id";

impl Store {
    /// Stores a new key.
    pub async fn insert_key(&self, key: &NewKey, actor: Option<Uuid>) -> Result<(), StoreError> {
        let change = AdminChange::new(actor, "key.create", key.id.to_string()).after(serde_json::json!({
            "customer_id": key.customer_id, "name": key.name, "role": key.role.as_str(),
        }));
        let sql = "INSERT INTO api_key (id, customer_id, name, role, secret_hash, active, created_at, request_count) \
                   VALUES ($1, $2, $3, $4, $5, TRUE, $6, 0)";
        admin_tx!(self, &change, tx => {
            sqlx::query(sql)
                .bind(key.id)
                .bind(key.customer_id)
                .bind(&key.name)
                .bind(key.role.as_str())
                .bind(&key.secret_hash)
                .bind(now())
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::unique(e, "a key with this id"))?;
        });
        Ok(())
    }

    /// The key with this id, for authentication.
    pub async fn key(&self, id: Uuid) -> Result<Option<KeyRecord>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_key WHERE id = $1");
        let row = on_pool!(self, p => sqlx::query_as::<_, KeyRow>(&sql).bind(id).fetch_optional(p).await)?;
        Ok(row.map(KeyRecord::from))
    }

    /// One key's listing.
    pub async fn key_summary(&self, id: Uuid) -> Result<Option<KeySummary>, StoreError> {
        let sql = format!("{SUMMARY} WHERE k.id = $1");
        Ok(on_pool!(self, p => sqlx::query_as::<_, KeySummary>(&sql).bind(id).fetch_optional(p).await)?)
    }

    /// Keys, newest first, optionally of one customer.
    pub async fn list_keys(
        &self,
        customer_id: Option<Uuid>,
        page: u32,
        page_size: u32,
    ) -> Result<Page<KeySummary>, StoreError> {
        let offset = i64::from(page.saturating_sub(1)) * i64::from(page_size);
        let sql = format!(
            "{SUMMARY} WHERE ($1 IS NULL OR k.customer_id = $1) ORDER BY k.created_at DESC, k.id LIMIT $2 OFFSET $3"
        );
        let items = on_pool!(self, p => sqlx::query_as::<_, KeySummary>(&sql)
            .bind(customer_id)
            .bind(i64::from(page_size))
            .bind(offset)
            .fetch_all(p)
            .await)?;
        let count = "SELECT COUNT(*) FROM api_key WHERE ($1 IS NULL OR customer_id = $1)";
        let total = on_pool!(self, p => sqlx::query_scalar::<_, i64>(count).bind(customer_id).fetch_one(p).await)?;
        Ok(Page { items, page, page_size, total })
    }

    /// Deletes a key; its dashboard sessions go with it (`ON DELETE
    /// CASCADE`; SQLite's foreign keys are on). Returns whether it existed.
    pub async fn delete_key(&self, id: Uuid, actor: Option<Uuid>) -> Result<bool, StoreError> {
        admin_tx!(self, read change => {
            let Some(before) = self.key_summary(id).await? else { return Ok(false) };
            AdminChange::new(actor, "key.delete", id.to_string()).before(&before)
        }, tx => {
            if sqlx::query("DELETE FROM api_key WHERE id = $1").bind(id).execute(&mut *tx).await?.rows_affected() == 0 {
                return Ok(false);
            }
        });
        Ok(true)
    }

    /// Marks a key inactive and ends its dashboard sessions. Returns whether
    /// it existed.
    pub async fn deactivate_key(&self, id: Uuid, actor: Option<Uuid>) -> Result<bool, StoreError> {
        let change = AdminChange::new(actor, "key.deactivate", id.to_string());
        admin_tx!(self, &change, tx => {
            let done = sqlx::query("UPDATE api_key SET active = FALSE WHERE id = $1").bind(id).execute(&mut *tx).await?.rows_affected();
            if done == 0 {
                // Nothing changed: roll back, no audit row, no version bump.
                return Ok(false);
            }
            sqlx::query(END_SESSIONS).bind(id).execute(&mut *tx).await?;
        });
        Ok(true)
    }

    /// Replaces a key's secret hash and ends its dashboard sessions (whoever
    /// signed in with the old secret signs in again). With `grace`, the old
    /// secret stays valid for the API until then; without, it fails at once.
    /// Returns whether the key exists.
    pub async fn rotate_key(
        &self,
        id: Uuid,
        new_hash: &str,
        grace_until: Option<DateTime<Utc>>,
        actor: Option<Uuid>,
    ) -> Result<bool, StoreError> {
        let change = AdminChange::new(actor, "key.rotate", id.to_string())
            .after(serde_json::json!({ "old_secret_valid_until": grace_until }));
        let sql = "UPDATE api_key SET previous_secret_hash = CASE WHEN $1 IS NULL THEN NULL ELSE secret_hash END, \
                   previous_valid_until = $1, secret_hash = $2 WHERE id = $3";
        admin_tx!(self, &change, tx => {
            let done = sqlx::query(sql).bind(grace_until).bind(new_hash).bind(id).execute(&mut *tx).await?.rows_affected();
            if done == 0 {
                return Ok(false);
            }
            sqlx::query(END_SESSIONS).bind(id).execute(&mut *tx).await?;
        });
        Ok(true)
    }

    /// Adds usage counts to keys: `(key id, requests, last used)`.
    pub async fn record_key_usage(&self, usage: &[(Uuid, i64, DateTime<Utc>)]) -> Result<(), StoreError> {
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            for (id, count, at) in usage {
                sqlx::query(RECORD_USAGE).bind(count).bind(at).bind(id).execute(&mut *tx).await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }

    /// The current records of each of `ids` that still exists.
    pub async fn key_states(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, KeyRecord>, StoreError> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let rows: Vec<KeyRow> = on_pool!(self, p => {
                let mut q = sqlx::QueryBuilder::new(format!("SELECT {KEY_COLUMNS} FROM api_key WHERE id IN ("));
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                q.push(")");
                q.build_query_as().fetch_all(p).await
            })?;
            out.extend(rows.into_iter().map(|r| (r.id, KeyRecord::from(r))));
        }
        Ok(out)
    }
}
