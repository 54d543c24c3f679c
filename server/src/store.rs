//! The database: SQLite (embedded, the default) or Postgres, chosen by URL.
//!
//! Each query is written once, with `$1, $2, …` placeholders that both
//! drivers accept, and run on whichever pool is configured through the
//! [`on_pool!`] macro. Nothing here is checked against a live database at
//! compile time, so the build needs none.

pub(crate) mod admin;
mod audit;
mod blocks;
mod budget;
mod customers;
mod keys;
mod orphans;
mod overrides;
mod params;
mod policy_versions;
mod rollup;
mod sessions;
pub(crate) mod shadow_rollup;

use std::str::FromStr as _;

use backon::Retryable as _;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

pub use admin::{AdminChange, AdminEntry, AdminFilter, Cursor, Page};
pub(crate) use audit::chain::{self as audit_chain_sql, move_chain_head, take_chain_head};
pub use audit::chain::{ChainHead, ChainRow, Checkpoint, Pruned, VerificationRecord};
pub use audit::{
    AuditRecord, AuditRow, CandidateOutcome, Contribution, LogEntry, LogFilter, MAX_BATCH, Outcome, ReplayRange,
    ReplayRow, ShadowDecision, ShadowMatch, ShadowOutcome, ShadowRecord, ShadowTally, Stats, audit_batch_size,
    change_between,
};
pub use customers::Customer;
pub use customers::now;
pub use keys::{KeyRecord, KeySummary, NewKey, Role};
pub use orphans::{Adopted, Fingerprints, InForce, Orphan, OrphanReason};
pub use overrides::{Binding, Bindings, CustomerSettings, OverrideTables, StoredOverride};
pub use params::StoredParam;
pub use rollup::{DayCounts, OutcomeCounts, RollupRow, Traffic};
pub use sessions::SessionRecord;
pub use shadow_rollup::SetTally;

/// Runs `$body` with `$p` bound to the configured pool. The body is
/// type-checked once per backend.
macro_rules! on_pool {
    ($store:expr, $p:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Postgres($p) => $body,
            $crate::store::Pool::Sqlite($p) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Runs `$body` in a transaction on the configured pool, then records
/// `$change` in `admin_audit` (on its hash chain) and bumps `config_version` in the same
/// transaction; on Postgres it also notifies `warden_config` after commit so
/// other instances reload at once. `$body` may use `?` and evaluates to the
/// method's result value.
///
/// A change whose `before` (or `after`) is read from the database uses the
/// `read change => { … }` form: the block reads the state and builds the
/// change, and the write commits only if no other admin change committed
/// since that read. Every admin change moves the admin trail's chain head,
/// and the transaction checks the head under its lock just before
/// appending (after `$body`'s writes, the lock order every admin change
/// uses); if it moved, the transaction rolls back and the read and the
/// write run again. So the trail's `before` is the state the write
/// replaced, never a value read before another instance's change.
macro_rules! admin_tx {
    ($store:expr, read $change:ident => $read:block, $tx:ident => $body:block) => {{
        let mut tries = 0u32;
        let out = loop {
            let seen = $store.admin_head_seq().await?;
            let $change: $crate::store::AdminChange = $read;
            let done = $crate::store::on_pool!($store, p => {
                let mut $tx = p.begin().await?;
                let out = $body;
                let (head, _, _) = $crate::store::take_chain_head!($tx, $crate::audit::chain::Chain::AdminAudit);
                if head == seen {
                    $crate::store::admin::append_admin_audit!($tx, &$change);
                    sqlx::query("UPDATE config_version SET version = version + 1 WHERE id = 1").execute(&mut *$tx).await?;
                    $tx.commit().await?;
                    Some(out)
                } else {
                    // Dropping the transaction rolls it back.
                    None
                }
            });
            match done {
                Some(out) => break out,
                None if tries < $crate::store::admin::MAX_CHANGE_RETRIES => tries += 1,
                None => return Err($crate::store::StoreError::Contended("admin changes")),
            }
        };
        $store.notify_change().await;
        out
    }};
    ($store:expr, $change:expr, $tx:ident => $body:block) => {{
        let change: &$crate::store::AdminChange = $change;
        let out = $crate::store::on_pool!($store, p => {
            let mut $tx = p.begin().await?;
            let out = $body;
            $crate::store::admin::append_admin_audit!($tx, change);
            sqlx::query("UPDATE config_version SET version = version + 1 WHERE id = 1").execute(&mut *$tx).await?;
            $tx.commit().await?;
            out
        });
        $store.notify_change().await;
        out
    }};
}
pub(crate) use admin_tx;

/// What went wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint was violated (e.g. a duplicate email).
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The database URL is not one Warden understands.
    #[error(
        "unsupported database URL `{0}`: expected `sqlite://PATH` or `postgres://…` (the URL is shown without its password)"
    )]
    UnsupportedUrl(String),
    /// Other writers kept changing the same thing: the change was retried
    /// and did not get through (names what).
    #[error("too many concurrent {0}; try again")]
    Contended(&'static str),
    /// A read ran past its time budget and was cancelled by the database
    /// (Postgres `statement_timeout`, SQLite's progress handler).
    #[error("the query ran longer than its budget of {0:?}")]
    TimedOut(std::time::Duration),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Whether retrying the same statement may succeed: connection trouble,
    /// deadlocks, a busy SQLite file, or the schema being changed under us.
    /// Data and constraint errors (SQLSTATE classes 22 and 23, SQLite
    /// constraint codes) are not: the same rows will fail again.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database(sqlx::Error::Database(db)) => {
                let code = db.code().unwrap_or_default();
                let postgres_data_error = code.len() == 5 && (code.starts_with("22") || code.starts_with("23"));
                // SQLite primary code 19 is SQLITE_CONSTRAINT; extended
                // codes carry it in the low byte.
                let sqlite_constraint = code.parse::<u32>().is_ok_and(|c| c & 0xff == 19);
                !(postgres_data_error || sqlite_constraint)
            }
            Self::Database(sqlx::Error::Encode(_))
            | Self::Conflict(_)
            | Self::UnsupportedUrl(_)
            | Self::TimedOut(_) => false,
            _ => true,
        }
    }

    /// Maps a unique violation to [`StoreError::Conflict`].
    pub(crate) fn unique(e: sqlx::Error, what: &'static str) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict(what),
            _ => Self::Database(e),
        }
    }
}

/// `url` without a password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            format!("{}://…@{}", url.get(..s).unwrap_or_default(), url.get(at + 1..).unwrap_or_default())
        }
        (None, Some(at)) => format!("…@{}", url.get(at + 1..).unwrap_or_default()),
        _ => url.to_owned(),
    }
}

/// SQLite's "database is locked" / "busy" (codes 5 and 6).
fn is_locked(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("5" | "6")))
}

/// One failed attempt at the SQLite migrations, and whether another
/// process was migrating at the same time.
struct MigrationAttempt {
    error: sqlx::migrate::MigrateError,
    raced: bool,
}

/// Whether a migration failed on a lock held by another process.
fn migration_locked(e: &sqlx::migrate::MigrateError) -> bool {
    use sqlx::migrate::MigrateError;
    matches!(e, MigrateError::Execute(inner) | MigrateError::ExecuteMigration(inner, _) if is_locked(inner))
}

/// How many migrations are recorded as applied (0 before the first).
async fn applied_migrations(p: &SqlitePool) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success").fetch_one(p).await.unwrap_or(0)
}

/// Retries for start-up races between processes sharing one SQLite file:
/// 20 ms doubling to 200 ms, with jitter, at most 50 tries (a few seconds).
fn start_up_backoff() -> backon::ExponentialBuilder {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(20))
        .with_max_delay(Duration::from_millis(200))
        .with_max_times(50)
        .with_jitter()
}

/// The connection pool of one backend.
#[derive(Debug, Clone)]
pub enum Pool {
    /// Postgres.
    Postgres(PgPool),
    /// SQLite.
    Sqlite(SqlitePool),
}

/// Warden's database.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: Pool,
}

static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");
static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

impl Store {
    /// Connects to `url`. A SQLite file is created if missing, in WAL mode so
    /// readers don't block the audit writer.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool =
                PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(5)).connect(url).await?;
            return Ok(Self { pool: Pool::Postgres(pool) });
        }
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            // Two processes creating the file at once race to switch it to
            // WAL, and the loser gets "database is locked" before any busy
            // timeout applies; it waits and tries again.
            let pool = (|| {
                SqlitePoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options.clone())
            })
            .retry(start_up_backoff())
            .when(is_locked)
            .await?;
            return Ok(Self { pool: Pool::Sqlite(pool) });
        }
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }

    /// Which backend this is, for logs and `/ready`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Postgres(_) => "postgres",
            Pool::Sqlite(_) => "sqlite",
        }
    }

    /// Applies pending migrations. Safe when several processes start at
    /// once: Postgres serialises them with an advisory lock; on SQLite a
    /// process that loses the race sees the winner's work and retries.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Postgres(p) => PG_MIGRATOR.run(p).await?,
            Pool::Sqlite(p) => {
                // SQLite has no advisory lock: a process can decide to apply
                // a migration that another process commits a moment later,
                // and then fail on its effects (a duplicate column, a table
                // that exists, the migration record's key). Such a failure is
                // retried only if the other process did make progress
                // meanwhile; any other failure is returned at once.
                let attempt = || async {
                    let before = applied_migrations(p).await;
                    match SQLITE_MIGRATOR.run(p).await {
                        Ok(()) => Ok(()),
                        Err(error) => {
                            let raced = migration_locked(&error) || applied_migrations(p).await > before;
                            Err(MigrationAttempt { error, raced })
                        }
                    }
                };
                attempt
                    .retry(start_up_backoff())
                    .when(|a| a.raced)
                    .notify(|a, wait| {
                        tracing::debug!(error = %a.error, ?wait, "sqlite migration raced another process; retrying");
                    })
                    .await
                    .map_err(|a| a.error)?;
            }
        }
        Ok(())
    }

    /// The Postgres pool, when that is the backend.
    pub fn pg_pool(&self) -> Option<&PgPool> {
        match &self.pool {
            Pool::Postgres(p) => Some(p),
            Pool::Sqlite(_) => None,
        }
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        on_pool!(self, p => p.close().await);
    }
}

impl Store {
    /// Runs one statement (for operational scripts and tests).
    pub async fn execute_raw(&self, sql: &str) -> Result<(), StoreError> {
        on_pool!(self, p => sqlx::query(sql).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
