//! The admin domain layer: every change an admin can make, and every view
//! of admin state, written once for the JSON admin API (`http/admin/*`)
//! and the dashboard (`ui/*`) alike. Functions take the application state,
//! the acting key id (recorded in `admin_audit` with the change) and typed
//! inputs, and return typed results or an [`ApiError`]: 404 for what
//! doesn't exist, 422 naming the field for invalid input, 409 for a
//! conflict with the target's state.

pub(crate) mod audit_chain;
pub(crate) mod customers;
pub(crate) mod keys;
pub(crate) mod overrides;
pub(crate) mod params;
pub(crate) mod replay;
pub(crate) mod rules;
pub(crate) mod shadow;
pub(crate) mod status;
pub(crate) mod webhooks;

use std::ops::RangeInclusive;

use crate::error::ApiError;
use crate::state::AppState;

/// A 422 naming `field`.
pub(crate) fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::Invalid { field: field.to_owned(), message: message.into() }
}

/// Whether both databases can store `s`. Postgres refuses the NUL
/// character (U+0000) in `text` and `jsonb` values (SQLite keeps it); every
/// other Unicode scalar value is storable in both.
pub(crate) fn storable(s: &str) -> bool {
    !s.contains('\0')
}

/// `value` if it lies in `range`, else a 422 naming `field` with the range.
pub(crate) fn in_range(field: &str, value: i64, range: RangeInclusive<i64>) -> Result<i64, ApiError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(invalid(field, format!("`{field}` must be an integer from {} to {}", range.start(), range.end())))
    }
}

/// After a committed change: this instance sees it on its very next
/// request. If reloading fails here the change still stands (it is
/// committed), so the answer is still success; the background poll applies
/// it within a second.
pub(crate) async fn apply_now(state: &AppState) {
    if let Err(e) = state.live.reload_overrides(&state.store).await {
        tracing::warn!(error = %e, "change committed; applying it at the next poll");
    }
}
