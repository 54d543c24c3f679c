//! `/ui/logs.csv`: the filtered decision log as CSV (RFC 4180: a header
//! row, CRLF line ends, fields with commas, quotes or line breaks quoted),
//! newest first, at most `csv_max_rows` rows. The body is streamed: rows
//! are read in keyset chunks of [`CHUNK`] and written as they come, so
//! memory stays flat however many rows are exported.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse as _, Response};

use super::super::{UiError, UiUser};
use super::query;
use crate::http::admin::LogFilterParams;
use crate::state::AppState;
use crate::store::{Cursor, LogEntry, LogFilter};

/// Rows read per query.
const CHUNK: u32 = 1000;

/// The columns: every stored column of a row (metadata only), with the
/// key's and customer's names.
const HEADER: [&str; 19] = [
    "created_at",
    "decision_id",
    "request_id",
    "customer_id",
    "customer_name",
    "api_key_id",
    "key_name",
    "model",
    "operation",
    "status",
    "allowed",
    "risk_score",
    "reason",
    "policy_version",
    "latency_us",
    "contributions",
    "shadow",
    "meta",
    "id",
];

/// `GET /ui/logs.csv?<the log's filters>`.
pub(super) async fn export(State(state): State<AppState>, user: UiUser, uri: Uri) -> Response {
    let filter = match query::<LogFilterParams>(&uri).and_then(|f| f.filter().map_err(UiError::from)) {
        Ok(filter) => filter,
        Err(e) => return e.page(Some(&user)),
    };
    let cap = state.dashboard.settings.csv_max_rows;
    let mut response = Body::from_stream(rows(state, filter, cap)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"warden-logs.csv\""));
    response
}

/// Where the export stands between chunks.
struct Progress {
    cursor: Cursor,
    left: u32,
    header: bool,
    done: bool,
}

/// The CSV text: the header, then each chunk of rows as it is read.
fn rows(
    state: AppState,
    filter: LogFilter,
    cap: u32,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let start = Progress { cursor: Cursor::Newest, left: cap, header: true, done: false };
    futures_util::stream::try_unfold(start, move |mut at| {
        let state = state.clone();
        let filter = filter.clone();
        async move {
            if at.done {
                return Ok(None);
            }
            let want = at.left.min(CHUNK);
            let chunk = if want == 0 {
                Vec::new()
            } else {
                state.store.log_page(&filter, at.cursor, want).await.map_err(|e| {
                    tracing::warn!(error = %e, "CSV export stopped: the log could not be read");
                    std::io::Error::other("the log could not be read")
                })?
            };
            at.done = chunk.len() < want as usize || want == 0;
            at.left = at.left.saturating_sub(u32::try_from(chunk.len()).unwrap_or(u32::MAX));
            if let Some(last) = chunk.last() {
                at.cursor = Cursor::Before(last.row.id);
            }
            let text = write(&chunk, std::mem::replace(&mut at.header, false)).map_err(std::io::Error::other)?;
            Ok(Some((Bytes::from(text), at)))
        }
    })
}

/// A free-text value (chosen by whoever calls `/v1/check` or names a key)
/// made safe to open in a spreadsheet: one starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return gets a leading `'`, so it is read as
/// text, not run as a formula (OWASP, "CSV Injection").
fn text_cell(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{value}"))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

/// `chunk` as CSV records, after the header row when `header`.
fn write(chunk: &[LogEntry], header: bool) -> Result<Vec<u8>, ::csv::Error> {
    let mut w = ::csv::WriterBuilder::new().terminator(::csv::Terminator::CRLF).from_writer(Vec::new());
    if header {
        w.write_record(HEADER)?;
    }
    for e in chunk {
        let r = &e.row;
        let contributions = r.contributions.as_ref().map(|c| serde_json::to_string(&c.0).unwrap_or_default());
        let shadow = r.shadow.as_ref().map(|s| serde_json::to_string(&s.0).unwrap_or_default());
        w.write_record([
            r.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true).as_str(),
            &r.decision_id.to_string(),
            &r.request_id,
            &r.customer_id.to_string(),
            &text_cell(e.customer_name.as_deref().unwrap_or_default()),
            &r.api_key_id.to_string(),
            &text_cell(e.key_name.as_deref().unwrap_or_default()),
            &text_cell(r.model.as_deref().unwrap_or_default()),
            &text_cell(r.operation.as_deref().unwrap_or_default()),
            &r.status,
            if r.allowed { "true" } else { "false" },
            &r.risk_score.to_string(),
            &text_cell(&r.reason),
            &r.policy_version,
            &r.latency_us.to_string(),
            contributions.as_deref().unwrap_or_default(),
            shadow.as_deref().unwrap_or_default(),
            &r.meta.0.to_string(),
            &r.id.to_string(),
        ])?;
    }
    w.into_inner().map_err(|e| ::csv::Error::from(e.into_error()))
}

#[cfg(test)]
mod tests {
    use super::text_cell;

    #[test]
    fn text_that_a_spreadsheet_would_run_as_a_formula_is_quoted() {
        for bad in ["=HYPERLINK(\"https://evil.example\")", "+1", "-1+2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(text_cell(bad), format!("'{bad}"));
        }
        for fine in ["gpt-4", "classify", "", "a=b"] {
            assert_eq!(text_cell(fine), fine);
        }
    }
}
