//! Customers.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{AdminChange, Page, Store, StoreError, admin_tx, on_pool};

/// A customer: the owner of API keys and overrides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Customer {
    /// Customer id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Unique email.
    pub email: String,
    /// When it was created (UTC).
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Creates a customer. A duplicate email is [`StoreError::Conflict`].
    /// Emails are stored lower-cased, so `Ops@x.com` and `ops@x.com` are one
    /// customer.
    pub async fn create_customer(&self, name: &str, email: &str, actor: Option<Uuid>) -> Result<Customer, StoreError> {
        let email = email.trim().to_lowercase();
        let customer = Customer { id: Uuid::now_v7(), name: name.to_owned(), email, created_at: now() };
        let change = AdminChange::new(actor, "customer.create", customer.id.to_string()).after(&customer);
        let sql = "INSERT INTO customer (id, name, email, created_at) VALUES ($1, $2, $3, $4)";
        admin_tx!(self, &change, tx => {
            sqlx::query(sql)
                .bind(customer.id)
                .bind(&customer.name)
                .bind(&customer.email)
                .bind(customer.created_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::unique(e, "a customer with this email"))?;
        });
        Ok(customer)
    }

    /// The customer with this email, if any.
    pub async fn customer_by_email(&self, email: &str) -> Result<Option<Customer>, StoreError> {
        let sql = "SELECT id, name, email, created_at FROM customer WHERE email = $1";
        let email = email.trim().to_lowercase();
        Ok(on_pool!(self, p => sqlx::query_as::<_, Customer>(sql).bind(&email).fetch_optional(p).await)?)
    }

    /// The customer with this id, if any.
    pub async fn customer(&self, id: Uuid) -> Result<Option<Customer>, StoreError> {
        let sql = "SELECT id, name, email, created_at FROM customer WHERE id = $1";
        Ok(on_pool!(self, p => sqlx::query_as::<_, Customer>(sql).bind(id).fetch_optional(p).await)?)
    }

    /// Customers, oldest first; with `search`, only those whose name or
    /// email contains it, without regard to case (for names: any letter on
    /// Postgres, ASCII letters on SQLite, whose `lower()` knows no other).
    /// `%` and `_` in `search` match themselves.
    pub async fn list_customers(
        &self,
        search: Option<&str>,
        page: u32,
        page_size: u32,
    ) -> Result<Page<Customer>, StoreError> {
        let offset = i64::from(page.saturating_sub(1)) * i64::from(page_size);
        let pattern = search.map(|s| format!("%{}%", escape_like(&s.to_lowercase())));
        let matching = "($1 IS NULL OR lower(name) LIKE $1 ESCAPE '\\' OR email LIKE $1 ESCAPE '\\')";
        let sql = format!(
            "SELECT id, name, email, created_at FROM customer WHERE {matching} ORDER BY created_at, id LIMIT $2 OFFSET $3"
        );
        let items = on_pool!(self, p => sqlx::query_as::<_, Customer>(&sql)
            .bind(&pattern)
            .bind(i64::from(page_size))
            .bind(offset)
            .fetch_all(p)
            .await)?;
        let count = format!("SELECT COUNT(*) FROM customer WHERE {matching}");
        let total = on_pool!(self, p => sqlx::query_scalar::<_, i64>(&count).bind(&pattern).fetch_one(p).await)?;
        Ok(Page { items, page, page_size, total })
    }

    /// The customer with this email, created (named `name`) if missing.
    pub async fn customer_for_email(&self, email: &str, name: &str) -> Result<Customer, StoreError> {
        if let Some(c) = self.customer_by_email(email).await? {
            return Ok(c);
        }
        match self.create_customer(name, email, None).await {
            Ok(c) => Ok(c),
            // Another process created it in between.
            Err(StoreError::Conflict(_)) => {
                self.customer_by_email(email).await?.ok_or(StoreError::Conflict("a customer"))
            }
            Err(e) => Err(e),
        }
    }
}

/// `s` with the `LIKE` wildcards and the escape character (`\\`) escaped,
/// so each matches itself.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Now, in UTC, truncated to microseconds so that values compare the same on
/// both backends (Postgres keeps microseconds).
pub fn now() -> DateTime<Utc> {
    let t = Utc::now();
    let micros = t.timestamp_micros();
    DateTime::from_timestamp_micros(micros).unwrap_or(t)
}
