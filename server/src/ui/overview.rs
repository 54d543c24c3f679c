//! `GET /ui/` **Overview**: allowed, blocked and rejected decisions today
//! and over 7 days, a stacked chart per day for 30 days, the top block
//! reasons and models over 7 days (all from the daily rollup, see
//! [`crate::store::Traffic`]), the policy version and the last reload,
//! the audit queue and the database state (from
//! [`crate::admin::status::gather`]). When the database can't be read the
//! counts say so and the rest of the page still renders.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;

use super::UiUser;
use super::chart::{Bar, Series, StackedBars};
use super::page::{Nav, Shell, render};
use super::status::ReloadView;
use crate::admin::status::{DatabaseState, Status};
use crate::state::AppState;
use crate::store::{OutcomeCounts, Traffic};

/// Days in the chart.
const CHART_DAYS: u32 = 30;

/// The overview route.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/ui/", get(page))
}

/// One stat card.
struct Stat {
    label: &'static str,
    value: i64,
    class: &'static str,
}

/// One row of a top list: the name, its count and where its decisions
/// are listed.
struct TopRow {
    name: String,
    count: i64,
    href: String,
}

/// The counts part of the page.
struct TrafficView {
    stats: Vec<Stat>,
    chart: String,
    top_block_reasons: Vec<TopRow>,
    top_models: Vec<TopRow>,
}

/// The overview page.
#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    shell: Shell,
    /// `None`: the database could not be read.
    traffic: Option<TrafficView>,
    s: Status,
    reload: ReloadView,
    database_up: bool,
}

fn stats(today: OutcomeCounts, week: OutcomeCounts) -> Vec<Stat> {
    vec![
        Stat { label: "Allowed today", value: today.allowed, class: "allowed" },
        Stat { label: "Blocked today", value: today.blocked, class: "blocked" },
        Stat { label: "Rejected today", value: today.rejected, class: "rejected" },
        Stat { label: "Allowed, 7 days", value: week.allowed, class: "allowed" },
        Stat { label: "Blocked, 7 days", value: week.blocked, class: "blocked" },
        Stat { label: "Rejected, 7 days", value: week.rejected, class: "rejected" },
    ]
}

/// `/ui/logs` filtered by `field` = `value`.
fn logs_link(filters: &[(&str, &str)]) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(filters).finish();
    format!("/ui/logs?{query}")
}

impl TrafficView {
    fn of(t: Traffic) -> Self {
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        let bars = t
            .days
            .iter()
            .map(|d| Bar {
                label: d.day.format("%Y-%m-%d").to_string(),
                values: vec![count(d.counts.allowed), count(d.counts.blocked), count(d.counts.rejected)],
            })
            .collect();
        let series = vec![
            Series { name: "allowed", class: "allowed" },
            Series { name: "blocked", class: "blocked" },
            Series { name: "rejected", class: "rejected" },
        ];
        let chart = StackedBars::new("decisions-per-day", "Decisions per day, last 30 days (UTC)", series, bars);
        Self {
            stats: stats(t.today_counts, t.week_counts),
            chart: chart.html(),
            top_block_reasons: t
                .top_block_reasons
                .into_iter()
                .map(|(name, count)| TopRow {
                    href: logs_link(&[("status", "blocked"), ("reason", &name)]),
                    name,
                    count,
                })
                .collect(),
            top_models: t
                .top_models
                .into_iter()
                .map(|(name, count)| TopRow { href: logs_link(&[("model", &name)]), name, count })
                .collect(),
        }
    }
}

/// `GET /ui/`. The counts and the status are read at once.
#[tracing::instrument(name = "ui.overview", skip_all)]
async fn page(State(state): State<AppState>, user: UiUser) -> Response {
    let today = crate::store::now().date_naive();
    let (s, traffic) = tokio::join!(crate::admin::status::gather(&state), state.store.traffic(today, CHART_DAYS));
    let traffic = match traffic {
        Ok(t) => Some(TrafficView::of(t)),
        Err(e) => {
            tracing::warn!(error = %e, "overview: the decision counts could not be read");
            None
        }
    };
    render(&OverviewPage {
        shell: Shell::new(&user, Nav::Overview, "Overview"),
        traffic,
        reload: ReloadView::of(&s.reload),
        database_up: s.database_state == DatabaseState::Up,
        s,
    })
}
