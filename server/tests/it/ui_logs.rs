//! The decision log as the dashboard reads it: keyset pages under the admin
//! API's filters, rows named after their key (the id once the key is
//! deleted), and each decision with its contributions. On SQLite and
//! Postgres.

use serde_json::json;
use uuid::Uuid;
use warden_server::audit::verify::{self, Range};
use warden_server::store::{Contribution, Cursor, LogFilter, Outcome, Store};

use crate::support::{TestApp, audit_record, fresh_store};

const PII: &str = r#"{"model":"gpt-4","operation":"classify","metadata":{"contains_personal_data":true}}"#;
const OK: &str = r#"{"model":"gpt-4","operation":"classify","metadata":{}}"#;

/// `n` rows over three customers, models and outcomes, two at each second
/// before `now`,
/// written out of time order (the way rows from the spill arrive late):
/// row ids and times disagree.
async fn filled(store: &Store, n: usize, now: chrono::DateTime<chrono::Utc>) -> Vec<Uuid> {
    let customers: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let rows: Vec<_> = (0..n)
        .map(|i| {
            let mut r = audit_record(now - chrono::Duration::seconds(((n - i) / 2) as i64));
            r.customer_id = customers[i % 3];
            r.model = Some(["gpt-4", "claude", "llama"][i % 4 % 3].to_owned());
            r.outcome = [Outcome::Allowed, Outcome::Blocked][i % 2];
            r.allowed = i % 2 == 0;
            r
        })
        .collect();
    let batches: Vec<_> = rows.chunks(17).collect();
    for batch in batches.iter().skip(2).chain(batches.iter().take(2)) {
        store.insert_audit(batch).await.unwrap();
    }
    customers
}

/// Every row matching `filter`, walked page by page with `Before` cursors;
/// then walked back with `After` cursors from the last page. Returns the
/// ids in order, newest first, checking the walk back gives the same pages.
async fn walk(store: &Store, filter: &LogFilter, size: u32) -> Vec<i64> {
    let mut pages: Vec<Vec<i64>> = Vec::new();
    let mut cursor = Cursor::Newest;
    loop {
        let page: Vec<i64> = store.log_page(filter, cursor, size).await.unwrap().iter().map(|e| e.row.id).collect();
        let Some(&last) = page.last() else { break };
        let full = page.len() == size as usize;
        pages.push(page);
        if !full {
            break;
        }
        cursor = Cursor::Before(last);
    }
    // Back from the last page: each previous page, the same rows.
    for i in (1..pages.len()).rev() {
        let first = pages[i][0];
        let back: Vec<i64> =
            store.log_page(filter, Cursor::After(first), size).await.unwrap().iter().map(|e| e.row.id).collect();
        assert_eq!(back, pages[i - 1], "page {i} back");
    }
    pages.concat()
}

each_backend!(keyset_pages_cover_every_matching_row_once, |backend| {
    let (store, _cleanup) = fresh_store(backend).await;
    let now = warden_server::store::now();
    let customers = filled(&store, 95, now).await;
    let all = store.list_audit(&LogFilter::default(), 1, 500).await.unwrap();
    let want: Vec<i64> = all.items.iter().map(|r| r.id).collect();
    assert_eq!(want.len(), 95);
    let got = walk(&store, &LogFilter::default(), 20).await;
    assert_eq!(got, want, "no row repeated or skipped");
    let newest_first = all.items.windows(2).all(|w| (w[0].created_at, w[0].id) > (w[1].created_at, w[1].id));
    assert!(newest_first, "by time, then id");
    assert!(all.items.windows(2).any(|w| w[0].id < w[1].id), "the late rows sit at their time, not their id");
    for filter in [
        LogFilter { status: Some(Outcome::Blocked), ..LogFilter::default() },
        LogFilter { model: Some("claude".into()), ..LogFilter::default() },
        LogFilter { customer_id: Some(customers[1]), status: Some(Outcome::Allowed), ..LogFilter::default() },
        // Time bounds and cursors bound the same column: each page keeps both.
        LogFilter { from: Some(now - chrono::Duration::seconds(40)), ..LogFilter::default() },
        LogFilter { to: Some(now - chrono::Duration::seconds(10)), ..LogFilter::default() },
        LogFilter {
            from: Some(now - chrono::Duration::seconds(40)),
            to: Some(now - chrono::Duration::seconds(10)),
            ..LogFilter::default()
        },
    ] {
        let want: Vec<i64> = store.list_audit(&filter, 1, 500).await.unwrap().items.iter().map(|r| r.id).collect();
        assert!(!want.is_empty() && want.len() < 95, "{filter:?}");
        assert_eq!(walk(&store, &filter, 7).await, want, "{filter:?}");
    }
    // A page past the end is empty, not an error.
    let oldest = *want.last().unwrap();
    assert!(store.log_page(&LogFilter::default(), Cursor::Before(oldest), 20).await.unwrap().is_empty());
});

each_backend!(rows_name_their_key_and_keep_its_id_once_it_is_deleted, |backend| {
    let mut app = TestApp::new(backend).await;
    assert_eq!(app.check(&app.app_key, OK).await.0, 200);
    app.drain_audit().await;
    let page = app.store.log_page(&LogFilter::default(), Cursor::Newest, 20).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!((page[0].key_name.as_deref(), page[0].customer_name.as_deref()), (Some("test"), Some("test")));
    assert!(app.store.delete_key(app.app_key_id, None).await.unwrap());
    let page = app.store.log_page(&LogFilter::default(), Cursor::Newest, 20).await.unwrap();
    assert_eq!((page[0].key_name.as_deref(), page[0].row.api_key_id), (None, app.app_key_id));
});

each_backend!(a_decision_records_its_contributions_on_the_chain, |backend| {
    let mut app = TestApp::new(backend).await;
    let (status, _, blocked) = app.check(&app.app_key, PII).await;
    assert_eq!(status, 200, "{blocked}");
    let (status, _, rejected) = app.check(&app.app_key, r#"{"model":"gpt-4","operation":"x","prompt":"p"}"#).await;
    assert_eq!(status, 422, "{rejected}");
    app.drain_audit().await;
    let id: Uuid = serde_json::from_value(blocked["decision_id"].clone()).unwrap();
    let entry = app.store.decision(id).await.unwrap().unwrap();
    let recorded: Vec<Contribution> = entry.row.contributions.unwrap().0;
    assert!(!recorded.is_empty());
    assert_eq!(serde_json::to_value(&recorded).unwrap(), blocked["contributions"], "as answered");
    assert_eq!(entry.row.meta.0["metadata.contains_personal_data"], json!(true));
    // A rejection evaluated nothing: no contributions (encoding version 1).
    let id: Uuid = serde_json::from_value(rejected["decision_id"].clone()).unwrap();
    assert!(app.store.decision(id).await.unwrap().unwrap().row.contributions.is_none());
    assert!(app.store.decision(Uuid::new_v4()).await.unwrap().is_none());
    // Both encodings on one chain verify.
    let report = verify::verify(&app.store, Range::default()).await.unwrap();
    assert!(report.ok, "{report:#?}");
});

each_backend!(the_admin_api_reads_the_same_filters_and_refuses_bad_ones, |backend| {
    let app = TestApp::new(backend).await;
    let get = |q: &'static str| {
        let req = axum::http::Request::get(format!("/api/admin/logs?{q}"))
            .header("authorization", format!("Bearer {}", app.admin_key))
            .body(axum::body::Body::empty())
            .unwrap();
        app.send(req)
    };
    for (query, field) in [
        ("status=maybe", "status"),
        ("customer_id=nope", "customer_id"),
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
    ] {
        let (status, _, body) = get(query).await;
        assert_eq!((status, body["field"].as_str()), (422, Some(field)), "{query}: {body}");
    }
    // A GET form sends every field: an empty one is no filter.
    let (status, _, body) = get("status=&model=&customer_id=&from=&to=").await;
    assert_eq!(status, 200, "{body}");
});
