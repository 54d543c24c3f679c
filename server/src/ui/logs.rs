//! `/ui/logs`: the decision log, filtered by the admin API's filters (in
//! the query string, so reload, Back and bookmarks keep them), 20 rows a
//! page with keyset paging; `/ui/logs/{decision_id}`: one decision with its
//! contributions and declared metadata; `/ui/logs.csv`: the filtered rows as
//! CSV ([`csv`]). Only stored columns are shown: no request content is
//! stored, so none can appear.

mod csv;

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::get;
use uuid::Uuid;

use super::page::{Nav, Shell, render};
use super::{UiError, UiUser};
use crate::http::admin::{CursorParams, LogFilterParams};
use crate::state::AppState;
use crate::store::{Cursor, LogEntry, StoreError};

/// Rows on a page.
const PAGE_SIZE: u32 = 20;

/// The log routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/logs", get(list))
        .route("/ui/logs.csv", get(csv::export))
        .route("/ui/logs/{decision_id}", get(decision))
}

/// Reads a query string as `T`. Every field is text, so only a malformed
/// query string (a parameter given twice) fails.
pub(super) fn query<T: serde::de::DeserializeOwned>(uri: &Uri) -> Result<T, UiError> {
    axum::extract::Query::<T>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| UiError::Invalid(format!("the query string can't be read: {}", e.body_text())))
}

/// One keyset page: the rows to show and the cursors of the pages beside
/// it (`after` for the newer page, `before` for the older one).
pub(super) struct Keyset<T> {
    pub rows: Vec<T>,
    pub newer: Option<i64>,
    pub older: Option<i64>,
}

impl<T> Keyset<T> {
    /// Cuts `fetched` (up to `size + 1` rows nearest `cursor`, newest
    /// first) to a page of `size`, and finds its neighbours.
    pub(super) fn of(mut fetched: Vec<T>, cursor: Cursor, size: u32, id: impl Fn(&T) -> i64) -> Self {
        let size = size as usize;
        let more = fetched.len() > size;
        match cursor {
            // The extra row is the newest: newer rows exist beyond this page.
            Cursor::After(_) if more => {
                fetched.remove(0);
            }
            _ => fetched.truncate(size),
        }
        let first = fetched.first().map(&id);
        let last = fetched.last().map(&id);
        let (newer, older) = match cursor {
            Cursor::Newest => (None, last.filter(|_| more)),
            Cursor::Before(_) => (first, last.filter(|_| more)),
            Cursor::After(_) => (first.filter(|_| more), last),
        };
        Self { rows: fetched, newer, older }
    }
}

/// A URL of `path` with the filters and one cursor.
fn link(path: &str, filters: &[(&'static str, &str)], cursor: Option<(&str, i64)>) -> String {
    let mut url = url::form_urlencoded::Serializer::new(format!("{path}?"));
    url.extend_pairs(filters);
    if let Some((name, id)) = cursor {
        url.append_pair(name, &id.to_string());
    }
    let url = url.finish();
    url.strip_suffix('?').map(str::to_owned).unwrap_or(url)
}

/// One row of the table, as shown.
pub(super) struct Row {
    decision_id: Uuid,
    time: String,
    time_iso: String,
    customer_id: Uuid,
    customer: String,
    key: String,
    model: String,
    operation: String,
    status: String,
    score: i64,
    reason: String,
    latency_ms: String,
    policy_version: String,
}

/// Microseconds as milliseconds with three decimals.
fn millis(us: i64) -> String {
    format!("{}.{:03}", us / 1000, (us % 1000).abs())
}

impl Row {
    fn of(e: LogEntry) -> Self {
        let r = e.row;
        Self {
            decision_id: r.decision_id,
            time: r.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            time_iso: r.created_at.to_rfc3339(),
            customer_id: r.customer_id,
            customer: e.customer_name.unwrap_or_else(|| r.customer_id.to_string()),
            key: e.key_name.unwrap_or_else(|| r.api_key_id.to_string()),
            model: r.model.unwrap_or_default(),
            operation: r.operation.unwrap_or_default(),
            status: r.status,
            score: r.risk_score,
            reason: r.reason,
            latency_ms: millis(r.latency_us),
            policy_version: r.policy_version,
        }
    }
}

/// The table, its pager and the CSV link: the part htmx swaps.
pub(super) struct Table {
    rows: Vec<Row>,
    newer: Option<String>,
    older: Option<String>,
    csv: String,
    csv_max_rows: String,
    filtered: bool,
    /// Set when finding the page took longer than the budget (in ms): the
    /// filters must be narrowed.
    too_slow_ms: Option<u128>,
}

/// `/ui/logs`.
#[derive(Template)]
#[template(path = "logs.html")]
struct LogsPage {
    shell: Shell,
    f: LogFilterParams,
    table: Table,
}

/// The table alone, for htmx.
#[derive(Template)]
#[template(path = "logs_partial.html")]
struct LogsPartial {
    table: Table,
}

/// 100000 as "100,000".
fn thousands(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

async fn table(state: &AppState, f: &LogFilterParams, c: &CursorParams) -> Result<Table, UiError> {
    let filter = f.filter()?;
    let mut cursor = c.cursor()?;
    let budget = state.dashboard.settings.log_query_budget;
    let pairs = f.pairs();
    let mut table = Table {
        rows: Vec::new(),
        newer: None,
        older: None,
        csv: link("/ui/logs.csv", &pairs, None),
        csv_max_rows: thousands(state.dashboard.settings.csv_max_rows),
        filtered: !pairs.is_empty(),
        too_slow_ms: None,
    };
    let mut fetched = state.store.log_page_within(&filter, cursor, PAGE_SIZE + 1, budget).await;
    // Back to the newest rows: a full first page, not a short one.
    if matches!(cursor, Cursor::After(_)) && fetched.as_ref().is_ok_and(|rows| rows.len() <= PAGE_SIZE as usize) {
        cursor = Cursor::Newest;
        fetched = state.store.log_page_within(&filter, cursor, PAGE_SIZE + 1, budget).await;
    }
    let fetched = match fetched {
        Err(StoreError::TimedOut(budget)) => {
            table.too_slow_ms = Some(budget.as_millis());
            return Ok(table);
        }
        other => other?,
    };
    let page = Keyset::of(fetched, cursor, PAGE_SIZE, |e| e.row.id);
    table.rows = page.rows.into_iter().map(Row::of).collect();
    table.newer = page.newer.map(|id| link("/ui/logs", &pairs, Some(("after", id))));
    table.older = page.older.map(|id| link("/ui/logs", &pairs, Some(("before", id))));
    Ok(table)
}

/// `GET /ui/logs`: the page, or only the table when the filter form asks
/// through htmx (`HX-Target: log-table`).
async fn list(State(state): State<AppState>, user: UiUser, headers: HeaderMap, uri: Uri) -> Response {
    let shown = async {
        let f: LogFilterParams = query(&uri)?;
        let c: CursorParams = query(&uri)?;
        let table = table(&state, &f, &c).await?;
        if headers.get("hx-target").is_some_and(|t| t == "log-table") {
            return Ok(render(&LogsPartial { table }));
        }
        Ok::<_, UiError>(render(&LogsPage { shell: Shell::new(&user, Nav::Logs, "Logs"), f, table }))
    };
    shown.await.unwrap_or_else(|e| e.page(Some(&user)))
}

/// `/ui/logs/{decision_id}`.
#[derive(Template)]
#[template(path = "decision.html")]
struct DecisionPage {
    shell: Shell,
    e: LogEntry,
    latency_ms: String,
    /// The contributions, when the row records them.
    contributions: Option<Vec<crate::store::Contribution>>,
    /// Each declared field and its value (JSON text).
    metadata: Vec<(String, String)>,
}

/// `GET /ui/logs/{decision_id}`.
async fn decision(State(state): State<AppState>, user: UiUser, Path(raw): Path<String>) -> Response {
    let shown = async {
        let missing = || UiError::NotFound("There is no decision with this id.".to_owned());
        let id = Uuid::try_parse(&raw).map_err(|_| missing())?;
        let e = state.store.decision(id).await?.ok_or_else(missing)?;
        let metadata = match &e.row.meta.0 {
            serde_json::Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v.to_string())).collect(),
            serde_json::Value::Null => Vec::new(),
            other => vec![(String::new(), other.to_string())],
        };
        let contributions = e.row.contributions.as_ref().map(|c| c.0.clone());
        let title = format!("Decision {}", e.row.decision_id);
        Ok::<_, UiError>(render(&DecisionPage {
            shell: Shell::new(&user, Nav::Logs, title),
            latency_ms: millis(e.row.latency_us),
            contributions,
            metadata,
            e,
        }))
    };
    shown.await.unwrap_or_else(|e| e.page(Some(&user)))
}

#[cfg(test)]
mod tests {
    use super::{Keyset, millis, thousands};
    use crate::store::Cursor;

    #[test]
    fn a_keyset_page_finds_its_neighbours() {
        let ids = |k: &Keyset<i64>| (k.rows.clone(), k.newer, k.older);
        // First page, more behind it.
        assert_eq!(ids(&Keyset::of(vec![9, 8, 7], Cursor::Newest, 2, |r| *r)), (vec![9, 8], None, Some(8)));
        // First page, the only one.
        assert_eq!(ids(&Keyset::of(vec![9, 8], Cursor::Newest, 2, |r| *r)), (vec![9, 8], None, None));
        // An older page, more behind it.
        assert_eq!(ids(&Keyset::of(vec![7, 6, 5], Cursor::Before(8), 2, |r| *r)), (vec![7, 6], Some(7), Some(6)));
        // A newer page: the rows nearest the cursor, newer ones beyond.
        assert_eq!(ids(&Keyset::of(vec![9, 8, 7], Cursor::After(6), 2, |r| *r)), (vec![8, 7], Some(8), Some(7)));
    }

    #[test]
    fn numbers_read_as_shown() {
        assert_eq!((millis(1234), millis(7), millis(0)), ("1.234".to_owned(), "0.007".to_owned(), "0.000".to_owned()));
        assert_eq!((thousands(100_000), thousands(5), thousands(1000)), ("100,000".into(), "5".into(), "1,000".into()));
    }
}
