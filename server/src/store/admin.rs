//! The admin trail, the change counter, and paging.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;
use uuid::Uuid;

use super::{Pool, Store, StoreError, on_pool};

pub(crate) const INSERT_ADMIN_AUDIT: &str = "INSERT INTO admin_audit (actor_key_id, action, target, before, after, \
    created_at, chain_seq, prev_hash, row_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// Appends `$change` (an `&AdminChange`) to `admin_audit` inside the open
/// transaction `$tx`, on the admin hash chain: the chain head is taken
/// (locked until commit, so concurrent changes from several instances get
/// consecutive positions), the row hashed after it, and the head moved.
/// The change's webhook event, if it has one, goes to the outbox too.
/// Evaluates to `()`; errors return early with `?`.
macro_rules! append_admin_audit {
    ($tx:ident, $change:expr) => {{
        let change: &$crate::store::AdminChange = $change;
        let created_at = $crate::store::now();
        let (seq, prev, webhooks) = $crate::store::take_chain_head!($tx, $crate::audit::chain::Chain::AdminAudit);
        let fields = $crate::audit::chain::AdminFields {
            actor_key_id: change.actor,
            action: change.action,
            target: &change.target,
            before: change.before.as_ref(),
            after: change.after.as_ref(),
            created_at,
        };
        let hash = $crate::audit::chain::admin_hash(&prev, &fields);
        sqlx::query($crate::store::admin::INSERT_ADMIN_AUDIT)
            .bind(change.actor)
            .bind(change.action)
            .bind(&change.target)
            .bind(change.before.as_ref().map(sqlx::types::Json))
            .bind(change.after.as_ref().map(sqlx::types::Json))
            .bind(created_at)
            .bind(seq + 1)
            .bind(&prev)
            .bind(&hash)
            .execute(&mut *$tx)
            .await?;
        $crate::store::move_chain_head!($tx, $crate::audit::chain::Chain::AdminAudit, seq + 1, &hash);
        // The webhook event for this change, in the same transaction.
        if let Some(event) = $crate::webhooks::Event::for_admin_change(change, seq + 1).filter(|_| webhooks) {
            let subs = $crate::webhooks::outbox::load_subscriptions!($tx);
            $crate::webhooks::outbox::insert_outbox!($tx, &subs, std::slice::from_ref(&event));
        }
    }};
}
pub(crate) use append_admin_audit;

/// How many times an admin change whose `before` was overtaken by another
/// change is read and written again (see `admin_tx!`) before giving up.
pub(crate) const MAX_CHANGE_RETRIES: u32 = 20;

/// One change, as recorded in `admin_audit`.
#[derive(Debug, Clone)]
pub struct AdminChange {
    /// The admin key that made it; `None` for the CLI.
    pub actor: Option<Uuid>,
    /// What was done, e.g. `customer.create`, `policy.toggle`.
    pub action: &'static str,
    /// What it was done to, e.g. a customer id or `customer/<id>/policy/<rule>`.
    pub target: String,
    /// The value before (absent for creations).
    pub before: Option<serde_json::Value>,
    /// The value after (absent for deletions).
    pub after: Option<serde_json::Value>,
}

impl AdminChange {
    /// A change made by `actor` (or the CLI, with `None`).
    pub fn new(actor: Option<Uuid>, action: &'static str, target: impl Into<String>) -> Self {
        Self { actor, action, target: target.into(), before: None, after: None }
    }

    /// With the value before.
    #[must_use]
    pub fn before(mut self, v: impl Serialize) -> Self {
        self.before = serde_json::to_value(v).ok();
        self
    }

    /// With the value after.
    #[must_use]
    pub fn after(mut self, v: impl Serialize) -> Self {
        self.after = serde_json::to_value(v).ok();
        self
    }
}

/// A recorded admin change.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AdminEntry {
    /// Row id.
    pub id: i64,
    /// The admin key that made it (`null`: the CLI).
    pub actor_key_id: Option<Uuid>,
    /// That key's name (`null`: the CLI, or a key since deleted).
    pub actor_key_name: Option<String>,
    /// What was done.
    pub action: String,
    /// To what.
    pub target: String,
    /// Before.
    #[schema(value_type = Option<Object>)]
    pub before: Option<Json<serde_json::Value>>,
    /// After.
    #[schema(value_type = Option<Object>)]
    pub after: Option<Json<serde_json::Value>>,
    /// When (UTC).
    pub created_at: DateTime<Utc>,
}

/// Filters for the admin trail. Absent filters match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminFilter {
    /// Exact action, e.g. `policy.toggle`.
    pub action: Option<String>,
    /// Changes made by this key.
    pub actor_key_id: Option<Uuid>,
}

/// Where a keyset page starts: a row, by id. A page holds the rows just
/// older (`Before`) or newer (`After`) than it in its list's order, newest
/// first (the admin trail: by id; the decision log: by time, then id).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Cursor {
    /// The newest rows.
    #[default]
    Newest,
    /// Rows older than this row id (the next page).
    Before(i64),
    /// Rows newer than this row id (the previous page): the oldest of them,
    /// still returned newest first.
    After(i64),
}

impl Cursor {
    /// The `WHERE` clause (without its bound id) and the id, if any.
    pub(crate) fn clause(self) -> Option<(&'static str, i64)> {
        match self {
            Self::Newest => None,
            Self::Before(id) => Some(("id < ", id)),
            Self::After(id) => Some(("id > ", id)),
        }
    }
}

/// `ORDER BY id … LIMIT` for a cursor: the rows nearest to it (ascending
/// after an `After` cursor; the caller's outer query puts them newest
/// first).
pub(crate) fn push_cursor_order<'a, DB: sqlx::Database>(q: &mut sqlx::QueryBuilder<'a, DB>, cursor: Cursor, limit: i64)
where
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let order = if matches!(cursor, Cursor::After(_)) { " ORDER BY id ASC LIMIT " } else { " ORDER BY id DESC LIMIT " };
    q.push(order).push_bind(limit);
}

/// Appends `WHERE …` for the admin trail's filters and cursor.
fn push_admin_filters<'a, DB: sqlx::Database>(q: &mut sqlx::QueryBuilder<'a, DB>, f: &'a AdminFilter, cursor: Cursor)
where
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Uuid: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut sep = " WHERE ";
    if let Some(v) = &f.action {
        q.push(sep).push("action = ").push_bind(v.as_str());
        sep = " AND ";
    }
    if let Some(v) = f.actor_key_id {
        q.push(sep).push("actor_key_id = ").push_bind(v);
        sep = " AND ";
    }
    if let Some((clause, id)) = cursor.clause() {
        q.push(sep).push(clause).push_bind(id);
    }
}

/// The admin trail's columns, from an inner query `a`, with the actor's
/// key name.
const TRAIL_HEAD: &str = "SELECT a.id, a.actor_key_id, k.name AS actor_key_name, a.action, a.target, a.before, \
    a.after, a.created_at FROM (SELECT id, actor_key_id, action, target, before, after, created_at FROM admin_audit";
const TRAIL_TAIL: &str = ") a LEFT JOIN api_key k ON k.id = a.actor_key_id ORDER BY a.id DESC";

/// One page of a list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The items on this page.
    pub items: Vec<T>,
    /// The page number, from 1.
    pub page: u32,
    /// Items per page.
    pub page_size: u32,
    /// Items in all pages.
    pub total: i64,
}

impl Store {
    /// The change counter: it moves whenever keys, toggles, overrides or
    /// settings change.
    pub async fn config_version(&self) -> Result<i64, StoreError> {
        let sql = "SELECT version FROM config_version WHERE id = 1";
        Ok(on_pool!(self, p => sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await)?)
    }

    /// The admin trail's chain position: it moves with every admin change.
    pub(crate) async fn admin_head_seq(&self) -> Result<i64, StoreError> {
        let sql = "SELECT seq FROM audit_chain WHERE chain = 'admin_audit'";
        Ok(on_pool!(self, p => sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await)?)
    }

    /// Tells other instances (Postgres only) that something changed. Best
    /// effort: they also poll.
    pub(crate) async fn notify_change(&self) {
        if let Pool::Postgres(p) = &self.pool {
            if let Err(e) = sqlx::query("SELECT pg_notify('warden_config', '')").execute(p).await {
                tracing::warn!(error = %e, "could not notify other instances; they will notice within a second");
            }
        }
    }

    /// The whole admin trail, newest first: page `page` of `page_size`
    /// entries, with the total.
    pub async fn admin_audit(&self, page: u32, page_size: u32) -> Result<Page<AdminEntry>, StoreError> {
        self.admin_audit_filtered(&AdminFilter::default(), page, page_size).await
    }

    /// The admin trail matching `filter`, newest first: page `page` of
    /// `page_size` entries, with the total.
    pub async fn admin_audit_filtered(
        &self,
        filter: &AdminFilter,
        page: u32,
        page_size: u32,
    ) -> Result<Page<AdminEntry>, StoreError> {
        let offset = i64::from(page.saturating_sub(1)) * i64::from(page_size);
        let items = on_pool!(self, p => {
            let mut q = sqlx::QueryBuilder::new(TRAIL_HEAD);
            push_admin_filters(&mut q, filter, Cursor::Newest);
            push_cursor_order(&mut q, Cursor::Newest, i64::from(page_size));
            q.push(" OFFSET ").push_bind(offset).push(TRAIL_TAIL);
            q.build_query_as::<AdminEntry>().fetch_all(p).await
        })?;
        let total = on_pool!(self, p => {
            let mut q = sqlx::QueryBuilder::new("SELECT COUNT(*) FROM admin_audit");
            push_admin_filters(&mut q, filter, Cursor::Newest);
            q.build_query_scalar::<i64>().fetch_one(p).await
        })?;
        Ok(Page { items, page, page_size, total })
    }

    /// Up to `limit` entries of the admin trail matching `filter` nearest
    /// to `cursor`, newest first (keyset paging, no count).
    pub async fn admin_trail_page(
        &self,
        filter: &AdminFilter,
        cursor: Cursor,
        limit: u32,
    ) -> Result<Vec<AdminEntry>, StoreError> {
        Ok(on_pool!(self, p => {
            let mut q = sqlx::QueryBuilder::new(TRAIL_HEAD);
            push_admin_filters(&mut q, filter, cursor);
            push_cursor_order(&mut q, cursor, i64::from(limit));
            q.push(TRAIL_TAIL);
            q.build_query_as::<AdminEntry>().fetch_all(p).await
        })?)
    }

    /// The actions recorded in the admin trail, sorted (for a filter's
    /// choices).
    pub async fn admin_actions(&self) -> Result<Vec<String>, StoreError> {
        let sql = "SELECT DISTINCT action FROM admin_audit ORDER BY action";
        Ok(on_pool!(self, p => sqlx::query_scalar::<_, String>(sql).fetch_all(p).await)?)
    }
}
