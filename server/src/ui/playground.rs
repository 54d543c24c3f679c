//! `GET/POST /ui/playground` **Playground**: decides a request body the
//! way `POST /v1/check` would (the same strict JSON parser, the same body
//! limit, the live snapshot that serves decisions, the chosen customer's
//! overrides) and shows the decision with the engine's explain trace, or
//! the rejection with its path. It writes no audit row and spends no rate
//! limit: nothing here touches the audit queue or the limiter. Viewers may
//! use it (it changes nothing; the session guard allows this one POST).

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use uuid::Uuid;

use super::page::{Nav, Shell, render};
use super::{UiError, UiUser};
use crate::state::AppState;

/// The playground route.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/ui/playground", get(form).post(decide))
}

/// The prefilled body: valid for the shipped policies (`policies/`), and
/// blocked by one of them, so the trace has something to show.
const EXAMPLE: &str = r#"{
  "model": "gpt-4",
  "operation": "classify",
  "metadata": {
    "intent": "support_reply",
    "contains_personal_data": true,
    "is_external_model": false
  }
}"#;

/// Customers listed in the select at most.
const MAX_CUSTOMERS: u32 = 1000;

/// The form. No `Debug`: the body is request text, never logged.
#[derive(Deserialize)]
struct DecideForm {
    /// The request body, as it would be sent to `/v1/check`.
    #[serde(default)]
    body: String,
    /// A customer id, or empty for none.
    #[serde(default)]
    customer: String,
    /// Checked by the session guard.
    #[serde(default)]
    #[allow(dead_code, reason = "read by the session guard, not here")]
    csrf: String,
}

/// One entry of the customer select.
struct CustomerOption {
    id: Uuid,
    label: String,
    selected: bool,
}

/// One rule's line in the explain trace.
struct RuleRow {
    rule: String,
    source: String,
    effect: String,
    enabled: bool,
    /// `enforce`, `shadow` or `off`.
    mode: &'static str,
    condition_held: bool,
    fired: bool,
    contributed: i64,
}

/// A decision with its trace.
struct DecisionView {
    allowed: bool,
    risk_score: i64,
    reason: String,
    threshold: i64,
    policy_version: String,
    contributions: Vec<(String, i64)>,
    /// The shadow rules that held: name and what they would add.
    shadow: Vec<(String, i64)>,
    /// The decision had they been enforced: allowed, score, reason.
    shadow_outcome: Option<(bool, i64, String)>,
    rules: Vec<RuleRow>,
}

/// A request refused before evaluation: its code, path and message.
struct RejectionView {
    code: &'static str,
    path: String,
    message: String,
}

/// The playground page.
#[derive(Template)]
#[template(path = "playground.html")]
struct PlaygroundPage {
    shell: Shell,
    body: String,
    customers: Vec<CustomerOption>,
    /// Why the customer list is missing or partial.
    customers_note: Option<String>,
    /// Whose overrides applied (a label), when a customer was chosen.
    customer_label: Option<String>,
    decision: Option<DecisionView>,
    rejection: Option<RejectionView>,
    /// Not JSON, or too large: what `/v1/check` would answer instead.
    error: Option<String>,
}

/// The customers for the select, and a note when they can't all be shown.
async fn customers(state: &AppState, selected: Option<Uuid>) -> (Vec<CustomerOption>, Option<String>, bool) {
    match state.store.list_customers(None, 1, MAX_CUSTOMERS).await {
        Ok(page) => {
            let note = (page.total > i64::from(MAX_CUSTOMERS))
                .then(|| format!("Only the first {MAX_CUSTOMERS} of {} customers are listed.", page.total));
            let options = page
                .items
                .into_iter()
                .map(|c| CustomerOption {
                    selected: Some(c.id) == selected,
                    label: format!("{} ({})", c.name, c.email),
                    id: c.id,
                })
                .collect();
            (options, note, true)
        }
        Err(e) => {
            tracing::warn!(error = %e, "playground: customers could not be listed");
            let note = "Database unavailable: customers can't be listed; decisions still use the live policy.";
            (Vec::new(), Some(note.to_owned()), false)
        }
    }
}

fn empty_page(user: &UiUser, body: String) -> PlaygroundPage {
    PlaygroundPage {
        shell: Shell::new(user, Nav::Playground, "Playground"),
        body,
        customers: Vec::new(),
        customers_note: None,
        customer_label: None,
        decision: None,
        rejection: None,
        error: None,
    }
}

/// `GET /ui/playground`: the form, prefilled.
async fn form(State(state): State<AppState>, user: UiUser) -> Response {
    let mut page = empty_page(&user, EXAMPLE.to_owned());
    (page.customers, page.customers_note, _) = customers(&state, None).await;
    render(&page)
}

/// What deciding `body` gave.
enum Answer {
    Decided(DecisionView),
    Rejected(RejectionView),
    Error(String),
}

/// Decides `body` for `customer` (or with the global settings only) from
/// the live snapshot, as `/v1/check` would.
fn answer(state: &AppState, body: &str, customer: Option<Uuid>) -> Answer {
    if body.len() > state.max_body_bytes {
        return Answer::Error(format!(
            "The body is larger than {} bytes: /v1/check would refuse it (413).",
            state.max_body_bytes
        ));
    }
    let snapshot = state.live.load();
    let overrides = match customer {
        Some(id) => snapshot.for_customer(&id).0,
        None => &snapshot.global,
    };
    // Read as /v1/check reads a body.
    match snapshot.policy.explain_bytes(body.as_bytes(), Some(overrides.overrides())) {
        Ok(ex) => Answer::Decided(DecisionView {
            allowed: ex.decision.allowed,
            risk_score: ex.decision.risk_score,
            reason: ex.decision.reason.to_owned(),
            threshold: ex.threshold,
            policy_version: ex.decision.policy_version.to_owned(),
            contributions: ex.decision.contributions.iter().map(|c| (c.rule.to_owned(), c.score)).collect(),
            shadow: ex.decision.shadow.iter().map(|m| (m.rule.to_owned(), m.score)).collect(),
            shadow_outcome: ex.decision.shadow_outcome.map(|o| (o.allowed, o.risk_score, o.reason.to_owned())),
            rules: ex
                .rules
                .into_iter()
                .map(|r| RuleRow {
                    rule: r.rule.to_owned(),
                    source: r.source.to_owned(),
                    effect: r.effect,
                    enabled: r.enabled,
                    mode: r.mode,
                    condition_held: r.condition_held,
                    fired: r.fired,
                    contributed: r.contributed,
                })
                .collect(),
        }),
        Err(warden_engine::RequestError::Rejected(r)) => {
            Answer::Rejected(RejectionView { code: r.code(), message: r.message(), path: r.path })
        }
        Err(warden_engine::RequestError::Malformed(e)) => {
            Answer::Error(format!("The body is not valid JSON: {e}. /v1/check would answer 400."))
        }
    }
}

/// `POST /ui/playground`: the decision (or rejection) for the body, with
/// the form kept as sent. An unknown customer is a 422.
#[tracing::instrument(name = "ui.playground", skip_all)]
async fn decide(State(state): State<AppState>, user: UiUser, Form(f): Form<DecideForm>) -> Response {
    let customer = match f.customer.trim() {
        "" => None,
        id => match Uuid::parse_str(id) {
            Ok(id) => Some(id),
            Err(_) => return UiError::Invalid("`customer` is not a customer id.".to_owned()).page(Some(&user)),
        },
    };
    let mut page = empty_page(&user, f.body);
    let listed;
    (page.customers, page.customers_note, listed) = customers(&state, customer).await;
    if let Some(id) = customer {
        match page.customers.iter().find(|c| c.id == id) {
            Some(c) => page.customer_label = Some(c.label.clone()),
            // Unlisted: beyond the first page, or the database is down;
            // the snapshot still knows its overrides.
            None if !listed || page.customers_note.is_some() => page.customer_label = Some(id.to_string()),
            None => return UiError::Invalid(format!("There is no customer {id}.")).page(Some(&user)),
        }
    }
    match answer(&state, &page.body, customer) {
        Answer::Decided(d) => page.decision = Some(d),
        Answer::Rejected(r) => page.rejection = Some(r),
        Answer::Error(e) => page.error = Some(e),
    }
    render(&page)
}
