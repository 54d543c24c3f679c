//! API keys. Only a bcrypt hash of each secret is stored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::customers::now;
use super::{Store, StoreError, on_pool};

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
}

impl Role {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Self {
        // The schema's CHECK constraint allows only these two; anything else
        // gets the least privilege.
        if s == "admin" { Self::Admin } else { Self::App }
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
    /// App or admin.
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
    /// App or admin.
    pub role: Role,
    /// bcrypt hash of the secret.
    pub secret_hash: String,
    /// Inactive keys are refused.
    pub active: bool,
}

/// A key as listed: never the secret or its hash.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeySummary {
    /// The key id.
    pub id: Uuid,
    /// A label.
    pub name: String,
    /// Its customer.
    pub customer_id: Uuid,
    /// The customer's email.
    pub customer_email: String,
    /// App or admin.
    pub role: Role,
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
    active: bool,
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: Uuid,
    name: String,
    customer_id: Uuid,
    customer_email: String,
    role: String,
    active: bool,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    request_count: i64,
}

impl Store {
    /// Stores a new key.
    pub async fn insert_key(&self, key: &NewKey) -> Result<(), StoreError> {
        let sql = "INSERT INTO api_key (id, customer_id, name, role, secret_hash, active, created_at, request_count) \
                   VALUES ($1, $2, $3, $4, $5, TRUE, $6, 0)";
        on_pool!(self, p => sqlx::query(sql)
            .bind(key.id)
            .bind(key.customer_id)
            .bind(&key.name)
            .bind(key.role.as_str())
            .bind(&key.secret_hash)
            .bind(now())
            .execute(p)
            .await.map(|r| r.rows_affected()))
        .map_err(|e| StoreError::unique(e, "a key with this id"))?;
        Ok(())
    }

    /// The key with this id, for authentication.
    pub async fn key(&self, id: Uuid) -> Result<Option<KeyRecord>, StoreError> {
        let sql = "SELECT id, customer_id, role, secret_hash, active FROM api_key WHERE id = $1";
        let row = on_pool!(self, p => sqlx::query_as::<_, KeyRow>(sql).bind(id).fetch_optional(p).await)?;
        Ok(row.map(|r| KeyRecord {
            id: r.id,
            customer_id: r.customer_id,
            role: Role::parse(&r.role),
            secret_hash: r.secret_hash,
            active: r.active,
        }))
    }

    /// Every key, newest first, optionally of one customer.
    pub async fn list_keys(&self, customer_id: Option<Uuid>) -> Result<Vec<KeySummary>, StoreError> {
        let sql = "SELECT k.id, k.name, k.customer_id, c.email AS customer_email, k.role, k.active, k.created_at, \
                   k.last_used_at, k.request_count FROM api_key k JOIN customer c ON c.id = k.customer_id \
                   WHERE ($1 IS NULL OR k.customer_id = $1) ORDER BY k.created_at DESC, k.id";
        let rows = on_pool!(self, p => sqlx::query_as::<_, SummaryRow>(sql).bind(customer_id).fetch_all(p).await)?;
        Ok(rows
            .into_iter()
            .map(|r| KeySummary {
                id: r.id,
                name: r.name,
                customer_id: r.customer_id,
                customer_email: r.customer_email,
                role: Role::parse(&r.role),
                active: r.active,
                created_at: r.created_at,
                last_used_at: r.last_used_at,
                request_count: r.request_count,
            })
            .collect())
    }

    /// Marks a key inactive. Returns whether it existed.
    pub async fn deactivate_key(&self, id: Uuid) -> Result<bool, StoreError> {
        let sql = "UPDATE api_key SET active = FALSE WHERE id = $1";
        let done = on_pool!(self, p => sqlx::query(sql).bind(id).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Adds usage counts to keys: `(key id, requests, last used)`.
    pub async fn record_key_usage(&self, usage: &[(Uuid, i64, DateTime<Utc>)]) -> Result<(), StoreError> {
        let sql = RECORD_USAGE;
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            for (id, count, at) in usage {
                sqlx::query(sql).bind(count).bind(at).bind(id).execute(&mut *tx).await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }
}

impl Store {
    /// `(secret hash, active)` of each of `ids` that still exists.
    pub async fn key_states(
        &self,
        ids: &[Uuid],
    ) -> Result<std::collections::HashMap<Uuid, (String, bool)>, StoreError> {
        let mut out = std::collections::HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let rows: Vec<(Uuid, String, bool)> = on_pool!(self, p => {
                let mut q = sqlx::QueryBuilder::new("SELECT id, secret_hash, active FROM api_key WHERE id IN (");
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                q.push(")");
                q.build_query_as().fetch_all(p).await
            })?;
            out.extend(rows.into_iter().map(|(id, hash, active)| (id, (hash, active))));
        }
        Ok(out)
    }
}
