//! `/ui/rules`: every rule with its global toggle and recent blocks; a
//! rule's page (its source, blocks per day, the customers overriding it);
//! and the global toggle, behind a confirmation page that says what the
//! switch means.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use warden_engine::RuleMode;

use super::chart::{Bar, Series, StackedBars};
use super::page::{Nav, Shell, render};
use super::{UiError, UiUser, see_other};
use crate::admin::rules::{self, Overrider, RuleSource, RuleView, TogglePatch};
use crate::admin::shadow::{self, ShadowSummary};
use crate::state::AppState;

/// Days in a rule's blocks chart.
const CHART_DAYS: u32 = 30;
/// Overriding customers listed on a rule's page.
const OVERRIDERS_SHOWN: u32 = 100;

/// The rule routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/rules", get(list))
        .route("/ui/rules/{key}", get(show))
        .route("/ui/rules/{key}/toggle", get(confirm).post(toggle))
}

/// Every rule.
#[derive(Template)]
#[template(path = "rules.html")]
struct ListPage {
    shell: Shell,
    rules: Vec<RuleView>,
    /// What the rules in shadow would have done over the last 7 days.
    shadow: ShadowSummary,
}

/// `GET /ui/rules`.
async fn list(State(state): State<AppState>, user: UiUser) -> Response {
    let shown = async {
        let rules = rules::list(&state).await?;
        let shadow = shadow::summary(&state, 7).await?;
        Ok::<_, UiError>(render(&ListPage { shell: Shell::new(&user, Nav::Rules, "Rules"), rules, shadow }))
    };
    shown.await.unwrap_or_else(|e| e.page(Some(&user)))
}

/// One rule.
#[derive(Template)]
#[template(path = "rules_show.html")]
struct ShowPage {
    shell: Shell,
    rule: RuleView,
    /// The blocks-per-day chart and its table, rendered (escaped) HTML.
    chart: String,
    source: RuleSource,
    /// The first and last line of the rule in its file.
    lines: (usize, usize),
    overriders: Vec<Overrider>,
    overriders_total: i64,
}

/// `GET /ui/rules/{key}`.
async fn show(State(state): State<AppState>, user: UiUser, Path(key): Path<String>) -> Response {
    let shown = async {
        let rule = rules::get(&state, &key).await?;
        let source = rules::source(&state.live.load(), &key)?;
        let days = rules::blocks_per_day(&state, &key, CHART_DAYS).await?;
        let (overriders, overriders_total) = rules::overriders(&state, &key, OVERRIDERS_SHOWN).await?;
        let bars = days
            .iter()
            .map(|d| Bar { label: d.day.format("%Y-%m-%d").to_string(), values: vec![d.blocks.unsigned_abs()] })
            .collect();
        let series = vec![Series { name: "blocked", class: "blocked" }];
        let title = format!("Blocks per day of {}, last {CHART_DAYS} days (UTC)", rule.key);
        let chart = StackedBars::new("blocks", &title, series, bars).html();
        let marked = source.lines.iter().filter(|l| l.highlighted).map(|l| l.number);
        let lines = (marked.clone().min().unwrap_or(0), marked.max().unwrap_or(0));
        let title = format!("Rule {}", rule.key);
        Ok::<_, UiError>(render(&ShowPage {
            shell: Shell::new(&user, Nav::Rules, title),
            rule,
            chart,
            source,
            lines,
            overriders,
            overriders_total,
        }))
    };
    shown.await.unwrap_or_else(|e| e.page(Some(&user)))
}

/// What the toggle sets: `on`, `off`, `shadow`, `enforce`, or `files`
/// (follow the policy files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Target {
    On,
    Off,
    Shadow,
    Enforce,
    Files,
}

impl Target {
    /// The change it makes to the global toggle.
    fn patch(self) -> TogglePatch {
        match self {
            Self::On => TogglePatch { enabled: Some(Some(true)), mode: None },
            Self::Off => TogglePatch { enabled: Some(Some(false)), mode: None },
            Self::Shadow => TogglePatch { enabled: None, mode: Some(Some(RuleMode::Shadow)) },
            Self::Enforce => TogglePatch { enabled: None, mode: Some(Some(RuleMode::Enforce)) },
            Self::Files => TogglePatch { enabled: Some(None), mode: Some(None) },
        }
    }

    /// As written in `?to=`.
    fn as_str(self) -> &'static str {
        match self {
            Self::On => "on",
            Self::Off => "off",
            Self::Shadow => "shadow",
            Self::Enforce => "enforce",
            Self::Files => "files",
        }
    }
}

/// `?to=`.
#[derive(Debug, Deserialize)]
struct ToQuery {
    to: Option<Target>,
}

/// The confirmation before a global toggle.
#[derive(Template)]
#[template(path = "rules_toggle.html")]
struct ConfirmPage {
    shell: Shell,
    rule: RuleView,
    /// The toggle asked for.
    to: &'static str,
    /// Whether the rule is on after it.
    on_after: bool,
    /// `enforce`, `shadow` or `off` after it.
    mode_after: &'static str,
    /// Customers whose own override of the rule keeps applying.
    overriders_total: i64,
    /// The threshold of customers without their own.
    threshold: i64,
}

/// `GET /ui/rules/{key}/toggle?to=on|off|files`: what the switch means,
/// with **Confirm** and **Cancel** (by default, the switch to the other
/// state).
async fn confirm(
    State(state): State<AppState>,
    user: UiUser,
    Path(key): Path<String>,
    query: Result<Query<ToQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let shown = async {
        user.require_write()?;
        let rule = rules::get(&state, &key).await?;
        let (_, overriders_total) = rules::overriders(&state, &key, 0).await?;
        let target = match query {
            Ok(Query(ToQuery { to: Some(to) })) => to,
            _ if rule.enabled => Target::Off,
            _ => Target::On,
        };
        let on_mode = if rule.mode == "off" { rule.global_mode.unwrap_or(rule.mode_in_files) } else { rule.mode };
        let mode_after = match target {
            Target::On => on_mode,
            Target::Off => "off",
            Target::Shadow => "shadow",
            Target::Enforce => "enforce",
            Target::Files if rule.enabled_in_files => rule.mode_in_files,
            Target::Files => "off",
        };
        let (to, on_after) = (target.as_str(), mode_after != "off");
        let threshold = state.live.load().policy.threshold();
        let title = match target {
            Target::Shadow => format!("Run {} in shadow", rule.key),
            Target::Enforce => format!("Enforce {}", rule.key),
            _ => format!("Switch {} {}", rule.key, if on_after { "on" } else { "off" }),
        };
        Ok::<_, UiError>(render(&ConfirmPage {
            shell: Shell::new(&user, Nav::Rules, title),
            rule,
            to,
            on_after,
            mode_after,
            overriders_total,
            threshold,
        }))
    };
    shown.await.unwrap_or_else(|e| e.page(Some(&user)))
}

/// The confirmed toggle.
#[derive(Debug, Deserialize)]
struct ToggleForm {
    to: Option<Target>,
}

/// `POST /ui/rules/{key}/toggle`: sets the global toggle, then back to
/// the rules.
async fn toggle(
    State(state): State<AppState>,
    user: UiUser,
    Path(key): Path<String>,
    form: Result<Form<ToggleForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(ToggleForm { to: Some(to) })) = form else {
        return UiError::Invalid("`to` must be on, off, shadow, enforce or files".to_owned()).page(Some(&user));
    };
    match rules::toggle(&state, user.key_id, &key, to.patch()).await {
        Ok(_) => see_other("/ui/rules"),
        Err(e) => UiError::from(e).page(Some(&user)),
    }
}
