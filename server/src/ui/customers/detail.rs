//! `/ui/customers/{id}`: one customer's keys, settings, per-rule
//! overrides, effective policy (each value with its source) and latest
//! decisions; and the forms that change its settings and overrides.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use uuid::Uuid;
use warden_engine::{RuleMode, RuleOverride};

use crate::admin::customers::{self, RateLimit, Settings};
use crate::admin::overrides::{self, EffectivePolicy, EffectiveRule};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{AuditRow, Customer, KeySummary, OrphanReason};
use crate::ui::page::{Nav, Shell, render_with};
use crate::ui::{UiError, UiUser, see_other};

/// Keys listed on the page (the keys page lists them all).
const KEYS_SHOWN: u32 = 20;
/// Decisions listed on the page.
const DECISIONS_SHOWN: u32 = 20;

/// One customer.
#[derive(Template)]
#[template(path = "customers_show.html")]
struct ShowPage {
    shell: Shell,
    customer: Customer,
    keys: Vec<KeySummary>,
    keys_total: i64,
    /// The settings form's values.
    settings: SettingsForm,
    /// The default rate limit, as shown.
    default_rate_limit: String,
    /// The effective policy (its `rules` moved into `rules`).
    policy: EffectivePolicy,
    rules: Vec<RuleRow>,
    decisions: Vec<AuditRow>,
    /// Why the last change was refused.
    error: Option<String>,
}

impl ShowPage {
    /// Microseconds as milliseconds with one decimal.
    fn ms(&self, us: &i64) -> String {
        format!("{:.1}", *us as f64 / 1000.0)
    }

    /// A parameter value as JSON text.
    fn json(&self, v: &serde_json::Value) -> String {
        v.to_string()
    }

    /// Why an orphaned setting applies to nothing, in words.
    fn orphan_reason(&self, reason: &OrphanReason) -> &'static str {
        match reason {
            OrphanReason::RuleMissing => "rule missing",
            OrphanReason::RuleChanged => "rule changed",
        }
    }
}

/// One rule as the customer gets it, with the customer's own override.
struct RuleRow {
    rule: EffectiveRule,
    /// The customer's override that applies, if any.
    custom: Option<RuleOverride>,
}

impl RuleRow {
    /// The override as words, e.g. `off, score 5`.
    fn custom_text(&self) -> String {
        let Some(o) = self.custom else { return String::new() };
        let enabled = o.enabled.map(|e| if e { "on" } else { "off" }.to_owned());
        let mode = o.mode.map(|m| m.as_str().to_owned());
        let score = o.score.map(|s| format!("score {s}"));
        [enabled, mode, score].into_iter().flatten().collect::<Vec<_>>().join(", ")
    }
}

/// The settings form (empty fields clear a setting).
#[derive(Debug, Default, Deserialize)]
pub(super) struct SettingsForm {
    #[serde(default)]
    threshold: String,
    #[serde(default)]
    rate_limit_requests: String,
    #[serde(default)]
    rate_limit_window_seconds: String,
}

impl SettingsForm {
    /// The form filled with `s`.
    fn of(s: Settings) -> Self {
        let text = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        Self {
            threshold: text(s.threshold),
            rate_limit_requests: text(s.rate_limit.map(|r| r.requests)),
            rate_limit_window_seconds: text(s.rate_limit.map(|r| r.window_seconds)),
        }
    }

    /// The settings it asks for; 422 naming the field that isn't a whole
    /// number, or a rate limit given by half.
    fn settings(&self) -> Result<Settings, ApiError> {
        let threshold = integer("threshold", &self.threshold)?;
        let requests = integer("rate_limit.requests", &self.rate_limit_requests)?;
        let window = integer("rate_limit.window_seconds", &self.rate_limit_window_seconds)?;
        let rate_limit = match (requests, window) {
            (Some(requests), Some(window_seconds)) => Some(RateLimit { requests, window_seconds }),
            (None, None) => None,
            _ => {
                return Err(crate::admin::invalid(
                    "rate_limit",
                    "give the rate limit's requests and window both, or leave both empty for the default",
                ));
            }
        };
        Ok(Settings { threshold, rate_limit })
    }
}

/// A form field holding a whole number: `None` when empty, 422 naming
/// `field` when it is not a number.
fn integer(field: &str, raw: &str) -> Result<Option<i64>, ApiError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse::<i64>()
        .map(Some)
        .map_err(|_| crate::admin::invalid(field, format!("`{field}` must be a whole number such as 40")))
}

/// The customer with this path id, or 404.
async fn customer(state: &AppState, raw: &str) -> Result<Customer, UiError> {
    let id = Uuid::try_parse(raw).map_err(|_| UiError::NotFound("There is no customer with that id.".to_owned()))?;
    Ok(customers::get(state, id).await?)
}

/// The page for `customer`; a refused change shows its form as typed and
/// why, with the refusal's status.
async fn page(
    state: &AppState,
    user: &UiUser,
    customer: Customer,
    refused: Option<(UiError, Option<SettingsForm>)>,
) -> Result<Response, UiError> {
    let keys = state.store.list_keys(Some(customer.id), 1, KEYS_SHOWN).await?;
    let stored = customers::settings(state, &customer).await?;
    let mut policy = overrides::effective(state, &customer);
    let mut custom = overrides::in_force(state, &customer);
    let rules = std::mem::take(&mut policy.rules)
        .into_iter()
        .map(|rule| RuleRow { custom: custom.remove(&rule.key), rule })
        .collect();
    let decisions = customers::latest_decisions(state, &customer, DECISIONS_SHOWN).await?;
    let (status, error, settings) = match refused {
        Some((e, typed)) => (e.status(), Some(e.to_string()), typed.unwrap_or_else(|| SettingsForm::of(stored))),
        None => (StatusCode::OK, None, SettingsForm::of(stored)),
    };
    let quota = state.default_quota;
    let view = ShowPage {
        shell: Shell::new(user, Nav::Customers, customer.name.clone()),
        default_rate_limit: format!("{} requests per {} s", quota.requests, quota.window.as_secs()),
        customer,
        keys_total: keys.total,
        keys: keys.items,
        settings,
        policy,
        rules,
        decisions,
        error,
    };
    Ok(render_with(status, &view))
}

/// After a change: the page again on success; a refusal of the input (422)
/// or a conflict with the rule (409) shows the page with why; anything
/// else is an error page.
async fn answer(
    state: &AppState,
    user: &UiUser,
    customer: Customer,
    done: Result<(), ApiError>,
    typed: Option<SettingsForm>,
    anchor: &str,
) -> Response {
    match done {
        Ok(()) => see_other(&format!("/ui/customers/{}#{anchor}", customer.id)),
        Err(e @ (ApiError::Invalid { .. } | ApiError::Conflict(_))) => {
            page(state, user, customer, Some((UiError::from(e), typed))).await.unwrap_or_else(|e| e.page(Some(user)))
        }
        Err(e) => UiError::from(e).page(Some(user)),
    }
}

/// `GET /ui/customers/{id}`.
pub(super) async fn show(State(state): State<AppState>, user: UiUser, Path(id): Path<String>) -> Response {
    let shown = async { page(&state, &user, customer(&state, &id).await?, None).await };
    shown.await.unwrap_or_else(|e| e.page(Some(&user)))
}

/// `POST /ui/customers/{id}/settings`: threshold and rate limit.
pub(super) async fn settings(
    State(state): State<AppState>,
    user: UiUser,
    Path(id): Path<String>,
    Form(form): Form<SettingsForm>,
) -> Response {
    let customer = match customer(&state, &id).await {
        Ok(c) => c,
        Err(e) => return e.page(Some(&user)),
    };
    let done = match form.settings() {
        Ok(s) => customers::set_settings(&state, user.key_id, &customer, s).await,
        Err(e) => Err(e),
    };
    answer(&state, &user, customer, done, Some(form), "settings").await
}

/// One override form: `action` is `enable`, `disable`, `shadow`,
/// `enforce`, `score` (with `score`) or `clear`.
#[derive(Debug, Deserialize)]
pub(super) struct OverrideForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    score: String,
}

/// The customer's stored override of `key`, if it applies to the rule now
/// served (an orphaned one is replaced, not merged with). Read from the
/// store, not this instance's snapshot, which may lag another instance's
/// change by up to a second.
async fn applying(state: &AppState, customer: &Customer, key: &str) -> Result<RuleOverride, ApiError> {
    match overrides::get(state, customer, key).await {
        Ok(o) if o.orphaned.is_none() => Ok(o.rule),
        Ok(_) | Err(ApiError::NotFound(_)) => Ok(RuleOverride::default()),
        Err(e) => Err(e),
    }
}

/// Carries out one override form.
async fn change(
    state: &AppState,
    user: &UiUser,
    customer: &Customer,
    key: &str,
    form: &OverrideForm,
) -> Result<(), ApiError> {
    let set = |o: RuleOverride| overrides::set(state, user.key_id, customer, key, o);
    match form.action.as_str() {
        "enable" | "disable" => {
            let current = applying(state, customer, key).await?;
            set(RuleOverride { enabled: Some(form.action == "enable"), ..current }).await.map(drop)
        }
        "shadow" | "enforce" => {
            let mode = if form.action == "shadow" { RuleMode::Shadow } else { RuleMode::Enforce };
            let current = applying(state, customer, key).await?;
            set(RuleOverride { enabled: Some(true), mode: Some(mode), ..current }).await.map(drop)
        }
        "score" => {
            let score = integer("score", &form.score)?
                .ok_or_else(|| crate::admin::invalid("score", "`score` is required: a whole number such as 20"))?;
            let current = applying(state, customer, key).await?;
            set(RuleOverride { score: Some(score), ..current }).await.map(drop)
        }
        "clear" => overrides::clear(state, user.key_id, customer, key).await,
        _ => Err(crate::admin::invalid("action", "`action` must be enable, disable, shadow, enforce, score or clear")),
    }
}

/// `POST /ui/customers/{id}/rules/{key}`: enable, disable, score or clear
/// the customer's override of one rule.
pub(super) async fn rule_override(
    State(state): State<AppState>,
    user: UiUser,
    Path((id, key)): Path<(String, String)>,
    Form(form): Form<OverrideForm>,
) -> Response {
    let customer = match customer(&state, &id).await {
        Ok(c) => c,
        Err(e) => return e.page(Some(&user)),
    };
    let done = change(&state, &user, &customer, &key, &form).await;
    answer(&state, &user, customer, done, None, "rules").await
}
