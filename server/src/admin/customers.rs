//! Customers: creating, finding and listing them, their settings
//! (threshold and rate limit), and their latest decisions.

use std::ops::RangeInclusive;

use uuid::Uuid;

use super::{apply_now, in_range, invalid, storable};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{AuditRow, Customer, CustomerSettings, LogFilter, Page};

/// The range of a customer's threshold.
pub(crate) const THRESHOLD: RangeInclusive<i64> = MIN_THRESHOLD..=MAX_THRESHOLD;
/// The lowest threshold a customer can have.
pub(crate) const MIN_THRESHOLD: i64 = -1_000_000_000;
/// The highest threshold a customer can have.
pub(crate) const MAX_THRESHOLD: i64 = 1_000_000_000;
/// Most requests per rate-limit window.
pub(crate) const MAX_RATE_REQUESTS: i64 = 1_000_000_000;
/// Longest rate-limit window, in seconds (a day).
pub(crate) const MAX_WINDOW_SECONDS: i64 = 86_400;
/// Longest search text: the longest email.
const MAX_SEARCH_CHARS: usize = 254;

/// Spaces, tabs and line breaks: what a name may not consist of only, and
/// what an email may not contain. (The same set as the documented patterns;
/// Unicode's wider notion of whitespace differs between regex engines.)
fn blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// A display name as documented: 1 to 200 characters, not all blank, no
/// NUL. Returns it without blank ends; otherwise a 422 naming `field`.
pub(crate) fn display_name<'a>(field: &str, name: &'a str) -> Result<&'a str, ApiError> {
    if name.chars().all(blank) || name.chars().count() > 200 || !storable(name) {
        return Err(invalid(field, format!("`{field}` must be 1 to 200 characters, not only spaces")));
    }
    Ok(name.trim_matches(blank))
}

/// Whether `email` is shaped like `local@domain.tld`, without blanks and
/// at most 254 characters.
fn is_email(email: &str) -> bool {
    let bad = |c: char| c == '@' || c == '\0' || blank(c);
    email.chars().count() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !local.chars().any(bad) && !domain.chars().any(bad) && domain.contains('.')
        })
}

/// Creates a customer. 422 naming `name` or `email` when either is not as
/// documented; 409 when another customer has the email (compared without
/// case). Recorded as `customer.create`.
pub(crate) async fn create(state: &AppState, actor: Uuid, name: &str, email: &str) -> Result<Customer, ApiError> {
    let name = display_name("name", name)?;
    if !is_email(email) {
        return Err(invalid("email", "`email` must be an address such as ops@example.com, without spaces"));
    }
    Ok(state.store.create_customer(name, email, Some(actor)).await?)
}

/// One page of customers, oldest first; with `search`, only those whose
/// name or email contains it, without regard to case (blank ends ignored;
/// an empty search lists everyone). 422 naming `q` for a search longer
/// than an email can be.
pub(crate) async fn list(
    state: &AppState,
    search: Option<&str>,
    page: u32,
    page_size: u32,
) -> Result<Page<Customer>, ApiError> {
    let search = search.map(|s| s.trim_matches(blank)).filter(|s| !s.is_empty());
    if let Some(s) = search {
        if s.chars().count() > MAX_SEARCH_CHARS || !storable(s) {
            return Err(invalid("q", format!("`q` must be at most {MAX_SEARCH_CHARS} characters")));
        }
    }
    Ok(state.store.list_customers(search, page, page_size).await?)
}

/// The customer with this id, or 404.
pub(crate) async fn get(state: &AppState, id: Uuid) -> Result<Customer, ApiError> {
    state.store.customer(id).await?.ok_or_else(|| ApiError::NotFound(format!("no customer with id `{id}`")))
}

/// A rate limit: `requests` per `window_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateLimit {
    /// Requests per window, 1 to [`MAX_RATE_REQUESTS`].
    pub(crate) requests: i64,
    /// The window in seconds, 1 to [`MAX_WINDOW_SECONDS`].
    pub(crate) window_seconds: i64,
}

/// A customer's own settings; `None` follows the policy set's threshold
/// or the default rate limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Settings {
    /// Replaces the policy set's threshold, within [`THRESHOLD`].
    pub(crate) threshold: Option<i64>,
    /// Replaces the default rate limit, per API key.
    pub(crate) rate_limit: Option<RateLimit>,
}

/// The customer's settings as stored (both `None` when never set).
pub(crate) async fn settings(state: &AppState, customer: &Customer) -> Result<Settings, ApiError> {
    let stored = state.store.customer_settings(customer.id).await?.unwrap_or_default();
    let rate_limit = stored
        .rate_limit_requests
        .zip(stored.rate_limit_window_seconds)
        .map(|(requests, window_seconds)| RateLimit { requests, window_seconds });
    Ok(Settings { threshold: stored.threshold, rate_limit })
}

/// Replaces the customer's settings (a `None` clears that setting), from
/// its next request on. 422 naming `threshold`, `rate_limit.requests` or
/// `rate_limit.window_seconds` when out of range. Recorded as
/// `customer.settings.set`, with the values in force before and after.
pub(crate) async fn set_settings(
    state: &AppState,
    actor: Uuid,
    customer: &Customer,
    s: Settings,
) -> Result<(), ApiError> {
    let threshold = s.threshold.map(|t| in_range("threshold", t, THRESHOLD)).transpose()?;
    let rate_limit = s
        .rate_limit
        .map(|r| {
            Ok::<_, ApiError>((
                in_range("rate_limit.requests", r.requests, 1..=MAX_RATE_REQUESTS)?,
                in_range("rate_limit.window_seconds", r.window_seconds, 1..=MAX_WINDOW_SECONDS)?,
            ))
        })
        .transpose()?;
    let settings = CustomerSettings {
        customer_id: customer.id,
        threshold,
        rate_limit_requests: rate_limit.map(|r| r.0),
        rate_limit_window_seconds: rate_limit.map(|r| r.1),
    };
    let policy = state.live.load().policy.clone();
    state.store.set_customer_settings(&policy, &settings, state.default_quota, Some(actor)).await?;
    apply_now(state).await;
    Ok(())
}

/// The customer's latest `limit` decisions (and rejections), newest first.
pub(crate) async fn latest_decisions(
    state: &AppState,
    customer: &Customer,
    limit: u32,
) -> Result<Vec<AuditRow>, ApiError> {
    let filter = LogFilter { customer_id: Some(customer.id), ..LogFilter::default() };
    // A keyset page: no count of the customer's rows.
    let page = state.store.log_page(&filter, crate::store::Cursor::Newest, limit).await?;
    Ok(page.into_iter().map(|e| e.row).collect())
}
