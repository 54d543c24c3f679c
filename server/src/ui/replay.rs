//! `GET/POST /ui/rules/replay` **Rules → Replay**: paste (or, with
//! JavaScript, load from a file) a candidate policy file, pick a period
//! and perhaps a customer, and see what replaying the recorded decisions
//! against it would change: the same report as `POST /api/admin/replay`,
//! from the same domain functions. Admins only (it reads the whole log).

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use uuid::Uuid;

use super::page::{Nav, Shell, render};
use super::{UiError, UiUser};
use crate::admin::replay::{self, CandidateFile, Period};
use crate::error::{ApiError, DiagnosticBody};
use crate::replay::ReplayReport;
use crate::state::AppState;

/// The replay route.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/ui/rules/replay", get(form).post(run))
}

/// The form. No `Debug`: it holds policy text.
#[derive(Default, Deserialize)]
pub(super) struct ReplayForm {
    /// The candidate file's name, e.g. `risk.warden`.
    #[serde(default)]
    name: String,
    /// Its text.
    #[serde(default)]
    text: String,
    /// `1d`, `7d` or `30d`.
    #[serde(default)]
    since: String,
    /// A customer id, or empty for all.
    #[serde(default)]
    customer: String,
    /// Checked by the session guard.
    #[serde(default)]
    #[allow(dead_code, reason = "read by the session guard, not here")]
    csrf: String,
}

/// The periods offered.
const PERIODS: [(&str, &str); 3] = [("1d", "the last day"), ("7d", "the last 7 days"), ("30d", "the last 30 days")];

/// Rules → Replay.
#[derive(Template)]
#[template(path = "replay.html")]
struct ReplayPage {
    shell: Shell,
    name: String,
    text: String,
    since: String,
    customer: String,
    periods: [(&'static str, &'static str); 3],
    /// The served files, to start from one.
    served: Vec<String>,
    report: Option<ReplayReport>,
    /// Why the candidate did not compile.
    diagnostics: Vec<DiagnosticBody>,
}

fn page(user: &UiUser, state: &AppState, f: ReplayForm) -> ReplayPage {
    let served = state.live.load().policy.set().sources.iter().map(|s| s.name.clone()).collect();
    ReplayPage {
        shell: Shell::new(user, Nav::Rules, "Replay a candidate"),
        name: f.name,
        text: f.text,
        since: if f.since.is_empty() { "7d".to_owned() } else { f.since },
        customer: f.customer,
        periods: PERIODS,
        served,
        report: None,
        diagnostics: Vec::new(),
    }
}

/// `GET /ui/rules/replay[?file=NAME]`: the form, prefilled with a served
/// file when asked.
async fn form(
    State(state): State<AppState>,
    user: UiUser,
    query: axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Err(e) = user.require_write() {
        return e.page(Some(&user));
    }
    let mut f = ReplayForm::default();
    if let Some(name) = query.get("file") {
        let snapshot = state.live.load();
        if let Some(file) = snapshot.policy.set().sources.iter().find(|s| &s.name == name) {
            f.name.clone_from(&file.name);
            f.text = file.text.to_string();
        }
    }
    render(&page(&user, &state, f))
}

/// `POST /ui/rules/replay`: the report, or the candidate's diagnostics,
/// with the form kept as sent.
#[tracing::instrument(name = "ui.replay", skip_all)]
async fn run(State(state): State<AppState>, user: UiUser, Form(f): Form<ReplayForm>) -> Response {
    if let Err(e) = user.require_write() {
        return e.page(Some(&user));
    }
    let customer = match f.customer.trim() {
        "" => None,
        id => match Uuid::parse_str(id) {
            Ok(id) => Some(id),
            Err(_) => return UiError::Invalid("`customer` is not a customer id.".to_owned()).page(Some(&user)),
        },
    };
    let period =
        Period { since: Some(if f.since.is_empty() { "7d".to_owned() } else { f.since.clone() }), ..Period::default() };
    let file = CandidateFile { name: f.name.trim().to_owned(), text: f.text.clone() };
    let mut shown = page(&user, &state, f);
    let outcome = async {
        let range = period.range(customer)?;
        let candidate = replay::candidate(&state, vec![file], false)?;
        replay::run(&state, candidate, range).await
    };
    match outcome.await {
        Ok(report) => shown.report = Some(report),
        Err(ApiError::PolicyInvalid(diagnostics)) => shown.diagnostics = diagnostics,
        Err(e) => return UiError::from(e).page(Some(&user)),
    }
    render(&shown)
}
