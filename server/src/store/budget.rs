//! Reads with a time budget: the database itself cancels a statement that
//! runs past it, so a slow read frees its connection at once instead of
//! running on after the caller gave up (as a dropped future would leave it).
//!
//! - Postgres: the read runs in a transaction with a local
//!   `statement_timeout` (SQLSTATE 57014 when it fires).
//! - SQLite: the read runs on a connection with a progress handler that
//!   interrupts the statement once the deadline passes (`SQLITE_INTERRUPT`).
//!   SQLite has no statement timeout of its own; this is its documented way
//!   to bound one (<https://www.sqlite.org/c3ref/progress_handler.html>).

use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqliteConnection, SqlitePool};

use super::StoreError;

/// SQLite virtual-machine steps between two looks at the clock: about a
/// few microseconds of work, so the deadline is kept to well under a
/// millisecond while the clock costs nothing measurable.
const STEPS_PER_CHECK: i32 = 1000;

/// Postgres' SQLSTATE for a statement cancelled by `statement_timeout`.
const PG_QUERY_CANCELED: &str = "57014";

/// SQLite's result code for an interrupted statement.
const SQLITE_INTERRUPT: &str = "9";

/// `e` as [`StoreError::TimedOut`] when it is the database cancelling a
/// statement at its budget, otherwise as a database error.
pub(super) fn timed_out(e: sqlx::Error, budget: Duration) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some(PG_QUERY_CANCELED | SQLITE_INTERRUPT)) => {
            StoreError::TimedOut(budget)
        }
        _ => StoreError::Database(e),
    }
}

/// The `statement_timeout` value for `budget`, in whole milliseconds and at
/// least 1 (0 would turn the timeout off).
pub(super) fn pg_statement_timeout(budget: Duration) -> String {
    format!("{}ms", budget.as_millis().clamp(1, i64::MAX as u128))
}

/// A pooled SQLite connection whose statements are interrupted once a
/// deadline passes. [`Self::disarm`] removes the handler and returns the
/// connection to the pool; dropped armed (the read was cancelled midway),
/// the connection is closed instead, so no later statement meets a stale
/// deadline.
pub(super) struct SqliteBudget {
    conn: PoolConnection<Sqlite>,
    armed: bool,
}

impl SqliteBudget {
    /// A connection from `pool` whose statements stop `budget` from now.
    pub(super) async fn arm(pool: &SqlitePool, budget: Duration) -> Result<Self, sqlx::Error> {
        let mut conn = pool.acquire().await?;
        let deadline = Instant::now() + budget;
        conn.lock_handle().await?.set_progress_handler(STEPS_PER_CHECK, move || Instant::now() < deadline);
        Ok(Self { conn, armed: true })
    }

    /// The connection, to run the read on.
    pub(super) fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }

    /// Removes the deadline; the connection goes back to the pool.
    pub(super) async fn disarm(mut self) -> Result<(), sqlx::Error> {
        self.conn.lock_handle().await?.remove_progress_handler();
        self.armed = false;
        Ok(())
    }
}

impl Drop for SqliteBudget {
    fn drop(&mut self) {
        if self.armed {
            self.conn.close_on_drop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_below_a_millisecond_still_sets_a_timeout() {
        assert_eq!(pg_statement_timeout(Duration::ZERO), "1ms");
        assert_eq!(pg_statement_timeout(Duration::from_micros(400)), "1ms");
        assert_eq!(pg_statement_timeout(Duration::from_millis(40)), "40ms");
    }
}
