//! `GET /ui/status`: what the service runs and the state of what it
//! depends on, from the same [`crate::admin::status::gather`] as `GET
//! /api/admin/status`; `POST /ui/status/verify` (admins) starts an audit
//! chain verification the way `POST /api/admin/audit/verify` does, and
//! `GET /ui/status/verification` is its panel alone, which htmx polls while
//! it runs.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};

use super::page::{Nav, Shell, render};
use super::{UiError, UiUser, see_other};
use crate::admin::status::{DatabaseState, Status};
use crate::error::ApiError;
use crate::reload::ReloadStatus;
use crate::state::AppState;

/// The status routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/status", get(page))
        .route("/ui/status/verify", post(verify))
        .route("/ui/status/verification", get(verification_panel))
}

/// A time as the dashboard shows it: UTC, to the second.
pub(super) fn show_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The last reload, as the overview and status pages show it.
pub(super) struct ReloadView {
    /// When it ran (absent: no reload since start).
    pub at: Option<String>,
    /// `ok`, `unchanged` or `error`.
    pub result: Option<&'static str>,
    /// Successful and failed reloads since start.
    pub ok_count: u64,
    /// Failed reloads since start.
    pub failed_count: u64,
    /// The last failure, until a later reload succeeds: when, its message
    /// and every diagnostic in full.
    pub error: Option<(String, String, String)>,
    /// The watch on the policy directory: state and detail.
    pub watch: Option<(&'static str, Option<String>)>,
}

impl ReloadView {
    /// From the reloader's status.
    pub(super) fn of(r: &ReloadStatus) -> Self {
        Self {
            at: r.last_reload_at.map(show_time),
            result: r.last_result,
            ok_count: r.reloads_ok,
            failed_count: r.reloads_failed,
            error: r.last_error.as_ref().map(|e| (show_time(e.at), e.message.clone(), e.diagnostics.join("\n\n"))),
            watch: r.watch.as_ref().map(|w| (w.state, w.detail.clone())),
        }
    }

    /// The badge class for the result.
    pub(super) fn badge(&self) -> &'static str {
        match self.result {
            Some("error") => "error",
            Some(_) => "ok",
            None => "neutral",
        }
    }
}

/// The last verification, as the status page shows it.
pub(super) struct VerificationView {
    /// Whether one is running (started on this instance, or recorded and
    /// not yet finished).
    pub running: bool,
    /// Who started the last one (`cli`, `api`, `dashboard`) and when.
    pub last: Option<LastVerification>,
    /// Whether the database could be read for it.
    pub database_up: bool,
}

/// The last recorded verification.
pub(super) struct LastVerification {
    pub source: String,
    pub started: String,
    pub finished: Option<String>,
    pub ok: Option<bool>,
    pub rows_checked: Option<i64>,
    /// The first broken link, in words.
    pub first_break: Option<String>,
}

/// How long a recorded, unfinished verification counts as running (one
/// that stopped without recording its result would otherwise poll forever).
const RUNNING_AT_MOST: chrono::Duration = chrono::Duration::hours(1);

impl VerificationView {
    fn of(status: &Status) -> Self {
        let last = status.audit_verification.as_ref().map(|v| LastVerification {
            source: v.source.clone(),
            started: show_time(v.started_at),
            finished: v.finished_at.map(show_time),
            ok: v.ok,
            rows_checked: v.rows_checked,
            first_break: v.first_break.as_ref().map(|p| {
                let at = p.seq.map(|s| format!(" at position {s}")).unwrap_or_default();
                format!("{} chain, {}{at}: {}", p.chain, p.kind.as_str(), p.detail)
            }),
        });
        let recorded_running = status
            .audit_verification
            .as_ref()
            .is_some_and(|v| v.finished_at.is_none() && crate::store::now() - v.started_at < RUNNING_AT_MOST);
        Self {
            running: status.audit_verification_running || recorded_running,
            last,
            database_up: status.database_state == DatabaseState::Up,
        }
    }
}

/// The status page.
#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    shell: Shell,
    s: Status,
    reload: ReloadView,
    uptime: String,
    database_up: bool,
    rate_limit_state: &'static str,
    /// What decides while Redis fails (`local`, `allow`, `deny`).
    on_redis_error: Option<String>,
    auth_failures: Vec<(&'static str, u64)>,
    auth_failures_total: u64,
    v: VerificationView,
}

/// The verification panel alone (what htmx swaps in while it runs).
#[derive(Template)]
#[template(path = "status_verification_partial.html")]
struct VerificationPanel {
    shell: Shell,
    v: VerificationView,
}

/// `3 d 4 h`, `2 h 5 min`, `12 min`, `40 s`.
fn show_duration(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// `GET /ui/status`.
#[tracing::instrument(name = "ui.status", skip_all)]
async fn page(State(state): State<AppState>, user: UiUser) -> Response {
    let s = crate::admin::status::gather(&state).await;
    let auth_failures: Vec<(&'static str, u64)> = s.rate_limit.auth_failures.iter().map(|(k, v)| (*k, *v)).collect();
    render(&StatusPage {
        shell: Shell::new(&user, Nav::Status, "Status"),
        reload: ReloadView::of(&s.reload),
        uptime: show_duration(s.uptime_seconds),
        database_up: s.database_state == DatabaseState::Up,
        rate_limit_state: s.rate_limit.limiter.state.as_str(),
        on_redis_error: s.rate_limit.limiter.on_redis_error.map(|o| format!("{o:?}").to_lowercase()),
        auth_failures_total: auth_failures.iter().map(|(_, n)| n).sum(),
        auth_failures,
        v: VerificationView::of(&s),
        s,
    })
}

/// `GET /ui/status/verification`: the panel for htmx; a browser that
/// asks for it directly goes to the whole page.
async fn verification_panel(State(state): State<AppState>, user: UiUser, headers: HeaderMap) -> Response {
    if !headers.contains_key("hx-request") {
        return see_other("/ui/status");
    }
    let s = crate::admin::status::gather(&state).await;
    render(&VerificationPanel { shell: Shell::new(&user, Nav::Status, "Status"), v: VerificationView::of(&s) })
}

/// `POST /ui/status/verify` (admins; the session guard refuses viewers):
/// starts a verification, then back to the status page, which shows it
/// running and then its result. One already running here is not an error:
/// the page shows that one.
async fn verify(State(state): State<AppState>, user: UiUser) -> Response {
    match crate::admin::audit_chain::start_verification(&state, "dashboard") {
        Ok(()) | Err(ApiError::Conflict(_)) => see_other("/ui/status"),
        Err(e) => UiError::from(e).page(Some(&user)),
    }
}

#[cfg(test)]
mod tests {
    use super::show_duration;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(show_duration(40), "40 s");
        assert_eq!(show_duration(12 * 60 + 5), "12 min");
        assert_eq!(show_duration(2 * 3600 + 5 * 60), "2 h 5 min");
        assert_eq!(show_duration(3 * 86_400 + 4 * 3600 + 59), "3 d 4 h");
    }
}
