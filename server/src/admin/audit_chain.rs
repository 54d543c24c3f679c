//! Running an audit chain verification in the background, for `POST
//! /api/admin/audit/verify` and the dashboard's **Verify audit log**
//! button.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::audit::verify::{self, Range};
use crate::error::ApiError;
use crate::store::Store;

/// One verification at a time per process.
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Whether a verification started on this instance is still running.
pub(crate) fn verification_running() -> bool {
    RUNNING.load(Ordering::Acquire)
}

/// Starts a verification of both chains (what `warden audit verify` does)
/// in the background; `source` (`api`, `dashboard`) is recorded with its
/// result, which appears at `GET /api/admin/audit/verification` and in the
/// status. Errors: [`ApiError::Conflict`] while one started here runs.
pub(crate) fn start_verification(store: &Store, source: &'static str) -> Result<(), ApiError> {
    if RUNNING.swap(true, Ordering::AcqRel) {
        return Err(ApiError::Conflict("a verification is already running on this instance".to_owned()));
    }
    let store = store.clone();
    tokio::spawn(async move {
        match verify::verify_and_record(&store, Range::default(), source).await {
            Ok(report) if report.ok => {
                tracing::info!(rows = report.rows_checked, "audit chain verified: every link holds");
            }
            Ok(report) => {
                tracing::error!(rows = report.rows_checked, first_break = ?report.first_break, "audit chain verification found broken links");
            }
            Err(e) => tracing::error!(error = %e, "audit chain verification could not run"),
        }
        RUNNING.store(false, Ordering::Release);
    });
    Ok(())
}
