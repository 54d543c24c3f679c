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
    // The API refuses a blank typed filter (the dashboard's form, which
    // sends every field, reads it as no filter: see logs::a_blank_typed_…).
    let (status, _, body) = get("status=&model=&customer_id=&from=&to=").await;
    assert_eq!((status, body["field"].as_str()), (422, Some("status")), "{body}");
    let (status, _, body) = get("model=").await;
    assert_eq!(status, 200, "{body}");
});

/// Every `/ui/logs` row's decision link on the page, in order.
fn decision_links(html: &str) -> Vec<String> {
    html.split("href=\"/ui/logs/").skip(1).map(|s| s.split('"').next().unwrap().to_owned()).collect()
}

/// The page's link with `rel`, unescaped.
fn rel_link(html: &str, rel: &str) -> Option<String> {
    let at = html.find(&format!("rel=\"{rel}\" href=\""))? + format!("rel=\"{rel}\" href=\"").len();
    Some(html[at..].split('"').next()?.replace("&amp;", "&").replace("&#38;", "&"))
}

each_backend!(the_logs_page_filters_pages_and_exports_what_it_shows, |backend| {
    let mut app = TestApp::new(backend).await;
    let canary = "CANARY-7f3a";
    let comma_model = "m,\"q\"\nx";
    for i in 0..25 {
        let body = match i % 5 {
            0 => json!({"model": comma_model, "operation": "classify", "metadata": {}, "note": canary}),
            1 => json!({"model": "gpt-4", "operation": "classify", "metadata": {"contains_personal_data": true}}),
            _ => json!({"model": "claude", "operation": "chat", "metadata": {}, "extra": canary}),
        };
        app.check(&app.app_key, &body.to_string()).await;
    }
    app.drain_audit().await;
    let s = crate::ui_support::sign_in(&app, &app.admin_key).await;
    // Unfiltered: 20 rows, then 5 more on the older page, none repeated.
    let first = s.get(&app, "/ui/logs").await;
    assert_eq!(first.status, 200, "{}", first.html);
    let page1 = decision_links(&first.html);
    assert_eq!(page1.len(), 20);
    assert!(rel_link(&first.html, "prev").is_none());
    let older = rel_link(&first.html, "next").unwrap();
    let second = s.get(&app, &older).await;
    let page2 = decision_links(&second.html);
    assert_eq!(page2.len(), 5);
    assert!(page2.iter().all(|id| !page1.contains(id)));
    let newer = rel_link(&second.html, "prev").unwrap();
    assert_eq!(decision_links(&s.get(&app, &newer).await.html), page1, "back to the first page");
    // Filters: status, model (with a comma, a quote and a line break), customer.
    let blocked = s.get(&app, "/ui/logs?status=blocked").await;
    assert_eq!(decision_links(&blocked.html).len(), 5, "{}", blocked.html);
    assert!(blocked.html.contains("<option value=\"blocked\" selected>"), "the form keeps the filter");
    let q = url::form_urlencoded::Serializer::new(String::new()).append_pair("model", comma_model).finish();
    assert_eq!(decision_links(&s.get(&app, &format!("/ui/logs?{q}")).await.html).len(), 5);
    let mine = s.get(&app, &format!("/ui/logs?customer_id={}", app.customer_id)).await;
    assert_eq!(decision_links(&mine.html).len(), 20);
    let nobody = s.get(&app, &format!("/ui/logs?customer_id={}", Uuid::new_v4())).await;
    assert!(decision_links(&nobody.html).is_empty() && nobody.html.contains("No decisions match these filters."));
    // Paging keeps the filters.
    let claude = s.get(&app, "/ui/logs?model=claude").await;
    assert_eq!(decision_links(&claude.html).len(), 15);
    // htmx asks for the table alone.
    let req = axum::http::Request::get("/ui/logs?status=blocked")
        .header("host", "warden.test")
        .header("cookie", &s.cookie)
        .header("hx-request", "true")
        .header("hx-target", "log-table")
        .body(axum::body::Body::empty())
        .unwrap();
    let partial = crate::ui_support::send(&app, req).await;
    assert!(partial.html.starts_with("<div id=\"log-table\">") && !partial.html.contains("<html"), "{}", partial.html);
    // CSV: a header and exactly the filtered rows, quoted as RFC 4180 says.
    let csv = s.get(&app, &format!("/ui/logs.csv?{q}")).await;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-disposition").starts_with("attachment"));
    let mut reader = ::csv::Reader::from_reader(csv.html.as_bytes());
    assert_eq!(reader.headers().unwrap().get(0), Some("created_at"));
    let records: Vec<::csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 5);
    assert!(records.iter().all(|r| &r[7] == comma_model));
    assert!(csv.html.contains("\"m,\"\"q\"\"\nx\""), "quoted, quotes doubled: {}", csv.html);
    assert!(csv.html.contains("\r\n"), "CRLF line ends");
    let all = s.get(&app, "/ui/logs.csv").await;
    assert_eq!(::csv::Reader::from_reader(all.html.as_bytes()).records().count(), 25);
    // The canary sent in undeclared fields appears nowhere.
    let one = &page1[0];
    let decision = s.get(&app, &format!("/ui/logs/{one}")).await;
    assert_eq!(decision.status, 200);
    for page in [&first.html, &second.html, &decision.html, &all.html] {
        assert!(!page.contains(canary));
    }
    // A blocked decision shows its contributions and declared metadata.
    let blocked_one = &decision_links(&blocked.html)[0];
    let shown = s.get(&app, &format!("/ui/logs/{blocked_one}")).await;
    assert!(shown.html.contains("/ui/rules/contains_personal_data"), "{}", shown.html);
    assert!(shown.html.contains("metadata.contains_personal_data"), "{}", shown.html);
    assert_eq!(s.get(&app, &format!("/ui/logs/{}", Uuid::new_v4())).await.status, 404);
    assert_eq!(s.get(&app, "/ui/logs/not-a-uuid").await.status, 404);
});

each_backend!(bad_log_filters_are_a_422_page_naming_the_parameter, |backend| {
    let app = TestApp::new(backend).await;
    let s = crate::ui_support::sign_in(&app, &app.admin_key).await;
    for (query, name) in [
        ("status=maybe", "status"),
        ("customer_id=nope", "customer_id"),
        ("from=yesterday", "from"),
        ("before=x", "before"),
        ("model=a%00b", "model"),
    ] {
        // The export has no pages: it ignores a cursor.
        let paths: &[&str] = if name == "before" { &["/ui/logs"] } else { &["/ui/logs", "/ui/logs.csv"] };
        for path in paths {
            let page = s.get(&app, &format!("{path}?{query}")).await;
            assert_eq!(page.status, 422, "{path}?{query}: {}", page.html);
            assert!(
                page.html.contains(&format!("<code>{name}</code>")) || page.html.contains(&format!("`{name}`")),
                "{}",
                page.html
            );
        }
    }
});

each_backend!(the_csv_export_stops_at_its_row_limit, |backend| {
    let mut options = TestApp::options();
    options.dashboard.csv_max_rows = 3;
    let mut app = TestApp::with_options(backend, options).await;
    for _ in 0..5 {
        app.check(&app.app_key, OK).await;
    }
    app.drain_audit().await;
    let s = crate::ui_support::sign_in(&app, &app.admin_key).await;
    let page = s.get(&app, "/ui/logs").await;
    assert!(page.html.contains("at most 3 rows"), "{}", page.html);
    let csv = s.get(&app, "/ui/logs.csv").await;
    let ids: Vec<String> =
        ::csv::Reader::from_reader(csv.html.as_bytes()).records().map(|r| r.unwrap()[1].to_owned()).collect();
    assert_eq!(ids, decision_links(&page.html)[..3].to_vec(), "the newest three");
});

/// `n` rows in two halves that share no model and no customer: `claude`
/// rows for `customers[0]`, `gpt-4` rows for `customers[1]`. Filtering on
/// `gpt-4` and `customers[0]` matches nothing, yet whichever index the
/// database walks, it reads half the rows to learn so.
async fn disjoint_halves(store: &Store, n: usize) -> [Uuid; 2] {
    let customers = [Uuid::new_v4(), Uuid::new_v4()];
    let now = warden_server::store::now();
    let rows: Vec<_> = (0..n)
        .map(|i| {
            let mut r = audit_record(now - chrono::Duration::milliseconds((n - i) as i64));
            r.customer_id = customers[i % 2];
            r.model = Some(["claude", "gpt-4"][i % 2].to_owned());
            r
        })
        .collect();
    for batch in rows.chunks(1000) {
        store.insert_audit(batch).await.unwrap();
    }
    customers
}

each_backend!(a_log_page_past_its_budget_is_cancelled_by_the_database, |backend| {
    use std::time::Duration;
    use warden_server::store::StoreError;
    let (store, _cleanup) = fresh_store(backend).await;
    let customers = disjoint_halves(&store, 40_000).await;
    let none = LogFilter { model: Some("gpt-4".into()), customer_id: Some(customers[0]), ..LogFilter::default() };
    let cut = store.log_page_within(&none, Cursor::Newest, 21, Duration::from_millis(1)).await;
    assert!(matches!(cut, Err(StoreError::TimedOut(_))), "{cut:?}");
    // The connection is usable again, without the deadline: the same read
    // with room finishes, and so do the next ones.
    for _ in 0..8 {
        let found = store.log_page_within(&none, Cursor::Newest, 21, Duration::from_secs(60)).await.unwrap();
        assert!(found.is_empty());
        let page = store.log_page(&LogFilter::default(), Cursor::Newest, 21).await.unwrap();
        assert_eq!(page.len(), 21);
    }
    // A time range bounds the walk: the same filters over the newest
    // rows fit a budget that the whole log did not.
    let from = store.log_page(&LogFilter::default(), Cursor::Newest, 100).await.unwrap()[99].row.created_at;
    let narrow = LogFilter { from: Some(from), ..none.clone() };
    let found = store.log_page_within(&narrow, Cursor::Newest, 21, Duration::from_millis(500)).await.unwrap();
    assert!(found.is_empty());
});

each_backend!(the_logs_page_asks_for_a_narrower_filter_when_a_page_takes_too_long, |backend| {
    let mut options = TestApp::options();
    options.dashboard.log_query_budget = std::time::Duration::from_millis(1);
    let app = TestApp::with_options(backend, options).await;
    let customers = disjoint_halves(&app.store, 40_000).await;
    let s = crate::ui_support::sign_in(&app, &app.admin_key).await;
    let page = s.get(&app, &format!("/ui/logs?model=gpt-4&customer_id={}", customers[0])).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("took longer than 1 ms"), "{}", page.html);
    assert!(page.html.contains("Add a time range"), "{}", page.html);
    assert!(page.html.contains(r#"value="gpt-4""#), "the filters stay in the form: {}", page.html);
    assert!(!page.html.contains("No decisions match"), "not mistaken for an empty result");
});
