//! Running an audit chain verification in the background, for `POST
//! /api/admin/audit/verify` and the dashboard's **Verify audit log**
//! button.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use crate::audit::verify::{self, Range};
use crate::error::ApiError;
use crate::state::{AppState, Services};

/// The service instances with a verification running, by the address of
/// their shared state: one verification at a time per instance. (A
/// process serves one instance; tests build several in one process.)
static RUNNING: Mutex<Option<HashSet<usize>>> = Mutex::new(None);

/// The key of `state`'s instance in [`RUNNING`].
fn instance(state: &AppState) -> usize {
    std::ptr::from_ref::<Services>(state) as usize
}

/// Marks `id` running (`true`) or done; returns whether it was running.
fn set_running(id: usize, running: bool) -> bool {
    let mut guard = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
    let set = guard.get_or_insert_with(HashSet::new);
    if running { !set.insert(id) } else { set.remove(&id) }
}

/// Whether a verification started on this instance is still running.
pub(crate) fn verification_running(state: &AppState) -> bool {
    RUNNING.lock().unwrap_or_else(PoisonError::into_inner).as_ref().is_some_and(|s| s.contains(&instance(state)))
}

/// Starts a verification of both chains (what `warden audit verify` does)
/// in the background; `source` (`api`, `dashboard`) is recorded with its
/// result, which appears at `GET /api/admin/audit/verification` and in the
/// status. Errors: [`ApiError::Conflict`] while one started on this
/// instance runs.
pub(crate) fn start_verification(state: &AppState, source: &'static str) -> Result<(), ApiError> {
    let id = instance(state);
    if set_running(id, true) {
        return Err(ApiError::Conflict("a verification is already running on this instance".to_owned()));
    }
    let store = state.store.clone();
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
        set_running(id, false);
    });
    Ok(())
}
