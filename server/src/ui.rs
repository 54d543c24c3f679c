//! The web dashboard under `/ui/`: server-rendered HTML (askama templates in
//! `server/templates/`) enhanced with htmx, every asset compiled into the
//! binary ([`assets`]). One module per page; the cross-cutting parts have
//! their own files: [`session`] (sign-in, cookies, CSRF), [`page`] (the
//! layout and error pages), [`chart`] (SVG charts).
//!
//! The pages call the same store and engine functions as the admin API;
//! they never call the JSON API over HTTP. A session cookie authorises
//! `/ui/*` only, and an API key never authorises `/ui/*`.

mod assets;
mod audit;
mod chart;
mod customers;
mod docs;
mod keys;
mod login;
mod logs;
mod overview;
mod page;
mod playground;
mod replay;
mod reveal;
mod rules;
mod session;
mod status;
mod webhooks;

use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Redirect, Response};
use axum::routing::get;

pub(crate) use self::page::UiError;
#[allow(unused_imports, reason = "the pages' shared vocabulary")]
pub(crate) use self::page::{Nav, Shell, render, render_with};
pub(crate) use self::session::UiUser;
use crate::rate_limit::{Quota, local::LocalLimiter};
use crate::state::AppState;

/// The dashboard's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Serve `/ui/*` (and `/docs`). Default on.
    pub enabled: bool,
    /// Mark the session cookie `Secure`. Default on; off only for plain
    /// HTTP (e.g. localhost).
    pub cookie_secure: bool,
    /// A session ends after this long without a request. Default 30 min.
    pub session_idle_timeout: Duration,
    /// A session ends this long after sign-in. Default 12 h.
    pub session_lifetime: Duration,
    /// Sign-in attempts allowed per client address. Default 10 a minute.
    pub sign_in_quota: Quota,
    /// Most rows in one CSV export of the decision log. Default 100,000.
    pub csv_max_rows: u32,
    /// Longest the database may spend finding one page of the decision log
    /// (`/ui/logs`); past it the page asks for a narrower filter instead of
    /// waiting. Default 40 ms, which keeps the page within 50 ms of server
    /// time at 1,000,000 rows.
    pub log_query_budget: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            enabled: true,
            cookie_secure: true,
            session_idle_timeout: Duration::from_secs(30 * 60),
            session_lifetime: Duration::from_secs(12 * 60 * 60),
            sign_in_quota: Quota { requests: 10, window: Duration::from_secs(60) },
            csv_max_rows: 100_000,
            log_query_budget: Duration::from_millis(40),
        }
    }
}

/// The dashboard's settings and its in-process state.
#[derive(Debug)]
pub struct Dashboard {
    /// The settings.
    pub settings: Settings,
    /// Sign-in attempts per client address (`None`: no address known).
    sign_ins: LocalLimiter<Option<std::net::IpAddr>>,
    /// New secrets waiting to be shown once (in memory only).
    pub(crate) reveals: reveal::Reveals,
}

impl Dashboard {
    /// A dashboard with `settings`.
    pub fn new(settings: Settings) -> Self {
        Self { settings, sign_ins: LocalLimiter::new(), reveals: reveal::Reveals::default() }
    }

    /// Counts one sign-in attempt from `client` against the sign-in quota.
    pub(crate) fn sign_in_attempt(&self, client: Option<std::net::IpAddr>) -> crate::rate_limit::Verdict {
        self.sign_ins.check(client, self.settings.sign_in_quota)
    }

    /// Forgets addresses whose sign-in budget is full again (bounded memory);
    /// returns how many went.
    pub fn sweep(&self) -> usize {
        self.sign_ins.sweep()
    }
}

/// Every dashboard route with its layers (the session guard and the
/// security headers), or no routes when the dashboard is off.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    if !state.dashboard.settings.enabled {
        return Router::new();
    }
    Router::new()
        .merge(pages())
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/{*rest}", get(not_found).post(not_found))
        .layer(axum::middleware::from_fn(html_errors))
        .layer(axum::middleware::from_fn_with_state(state.clone(), session::guard))
        .merge(assets::routes())
        .merge(docs::routes())
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .layer(axum::middleware::from_fn(security_headers))
}

/// The pages, each module's routes with full paths.
fn pages() -> Router<AppState> {
    Router::new()
        .merge(login::routes())
        .merge(overview::routes())
        .merge(customers::routes())
        .merge(rules::routes())
        .merge(playground::routes())
        .merge(replay::routes())
        .merge(status::routes())
        .merge(keys::routes())
        .merge(webhooks::routes())
        .merge(logs::routes())
        .merge(audit::routes())
}

/// The HTML 404 page, in the layout.
async fn not_found(user: Option<UiUser>) -> Response {
    UiError::NotFound("There is no page at this address.".to_owned()).page(user.as_ref())
}

/// Turns the plain-text refusals of axum's extractors (a form or query that
/// can't be read: 400, 415, 422, a wrong method: 405) into error pages in
/// the layout, for every page at once, so no handler can answer bad input
/// with a bare body. Their text is not repeated: the page says what kind of
/// input was wrong.
async fn html_errors(req: Request, next: Next) -> Response {
    let user = req.extensions().get::<UiUser>().cloned();
    let response = next.run(req).await;
    let status = response.status();
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    if is_html || !status.is_client_error() {
        return response;
    }
    let message = match status.as_u16() {
        405 => "This address doesn't take that kind of request.",
        415 => "This form must be sent as an HTML form (application/x-www-form-urlencoded).",
        _ => "A field of this form or address is missing or can't be read; go back, check it and try again.",
    };
    let page = UiError::Invalid(message.to_owned()).page(user.as_ref());
    let (mut parts, body) = page.into_parts();
    parts.status = status;
    Response::from_parts(parts, body)
}

/// The Content-Security-Policy of every dashboard response: only this
/// origin's scripts, styles and images; no inline script or style; no
/// framing; forms post only here.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Adds the security headers to every dashboard response, and
/// `Cache-Control: no-store` to every page (pages show private data, and
/// the one-time secret pages must never be kept); assets set their own
/// long-lived caching.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// `Cache-Control: no-store` on `response` (pages that show a secret).
pub(crate) fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A 303 See Other to `to`: the answer to a form post.
pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}
