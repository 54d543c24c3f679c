//! The dashboard's overview, on both backends: its counts equal the audit
//! rows written (the stat cards, the chart's data table and the top
//! lists), and when the counts can't be read the page says so and still
//! shows the rest.

use chrono::{Duration, NaiveDate, TimeZone as _, Utc};
use warden_server::store::{AuditRecord, Outcome};

use crate::support::{TestApp, audit_record};
use crate::ui_support::sign_in;

/// A row `days_ago` days back (at 00:00:01 UTC, so it is on that day
/// whatever the time now) with this outcome, reason and model.
fn row(today: NaiveDate, days_ago: i64, outcome: Outcome, reason: &str, model: Option<&str>) -> AuditRecord {
    let day = today - Duration::days(days_ago);
    let mut r = audit_record(Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 1).unwrap()));
    (r.outcome, r.allowed, r.reason, r.model) =
        (outcome, outcome == Outcome::Allowed, reason.into(), model.map(Into::into));
    r
}

/// The stat card with `label`, as rendered.
fn stat(class: &str, label: &str, value: i64) -> String {
    format!(
        "<div class=\"stat-value\">{value}</div><div class=\"stat-label\"><span class=\"badge {class}\">{class}</span> {label}</div>"
    )
}

/// The chart's data-table row for `day`.
fn chart_row(day: NaiveDate, allowed: i64, blocked: i64, rejected: i64) -> String {
    let total = allowed + blocked + rejected;
    format!(
        "<tr><th scope=\"row\">{day}</th><td class=\"num\">{allowed}</td><td class=\"num\">{blocked}</td><td class=\"num\">{rejected}</td><td class=\"num\">{total}</td></tr>"
    )
}

each_backend!(the_overview_counts_equal_the_rows_written, |backend| {
    let app = TestApp::new(backend).await;
    let today = warden_server::store::now().date_naive();
    let mut rows = Vec::new();
    // Today: 3 allowed, 2 blocked (personal data), 1 rejected.
    rows.extend((0..3).map(|_| row(today, 0, Outcome::Allowed, "ok", Some("gpt-4"))));
    rows.extend((0..2).map(|_| row(today, 0, Outcome::Blocked, "contains_personal_data", Some("gpt-4o"))));
    rows.push(row(today, 0, Outcome::Rejected, "forbidden_field", None));
    // Three days ago: 1 allowed, 4 blocked (external model).
    rows.push(row(today, 3, Outcome::Allowed, "ok", Some("gpt-4o")));
    rows.extend((0..4).map(|_| row(today, 3, Outcome::Blocked, "external_model", Some("llama 3 & co"))));
    // Twenty days ago (in the chart, not in the 7 days): 5 blocked.
    rows.extend((0..5).map(|_| row(today, 20, Outcome::Blocked, "external_model", Some("gpt-4"))));
    app.store.insert_audit(&rows).await.unwrap();
    let session = sign_in(&app, &app.admin_key).await;
    let page = session.get(&app, "/ui/").await;
    assert_eq!(page.status, 200, "{}", page.html);
    let html = &page.html;
    for expected in [
        stat("allowed", "Allowed today", 3),
        stat("blocked", "Blocked today", 2),
        stat("rejected", "Rejected today", 1),
        stat("allowed", "Allowed, 7 days", 4),
        stat("blocked", "Blocked, 7 days", 6),
        stat("rejected", "Rejected, 7 days", 1),
        chart_row(today, 3, 2, 1),
        chart_row(today - Duration::days(3), 1, 4, 0),
        chart_row(today - Duration::days(20), 0, 5, 0),
        chart_row(today - Duration::days(1), 0, 0, 0),
        chart_row(today - Duration::days(29), 0, 0, 0),
    ] {
        assert!(html.contains(&expected), "missing {expected}\n{html}");
    }
    assert!(!html.contains(&format!("<th scope=\"row\">{}</th>", today - Duration::days(30))), "30 days only");
    assert_eq!(html.matches("<tr><th scope=\"row\">").count(), 30);
    // Top block reasons over 7 days, most first, each linking to its logs;
    // top models (the model name escaped in the link and the text).
    let reasons =
        html.find("/ui/logs?status=blocked&#38;reason=external_model\">external_model</a></td><td class=\"num\">4<");
    let personal =
        html.find("/ui/logs?status=blocked&#38;reason=contains_personal_data\">contains_personal_data</a></td><td class=\"num\">2<");
    assert!(reasons.zip(personal).is_some_and(|(r, p)| r < p), "{html}");
    assert!(html.contains("/ui/logs?model=llama+3+%26+co\">llama 3 &#38; co</a></td><td class=\"num\">4<"), "{html}");
    assert!(html.contains("/ui/logs?model=gpt-4o\">gpt-4o</a></td><td class=\"num\">3<"), "{html}");
    assert!(html.contains("/ui/logs?model=gpt-4\">gpt-4</a></td><td class=\"num\">3<"), "{html}");
    // The policy and the service.
    let version = app.state.live.load().policy.version().to_owned();
    assert!(html.contains(&version) && html.contains("Audit queue") && html.contains(">up</span>"), "{html}");
});

each_backend!(the_overview_says_when_the_counts_cannot_be_read_and_shows_the_rest, |backend| {
    let app = TestApp::new(backend).await;
    let session = sign_in(&app, &app.admin_key).await;
    app.store.execute_raw("ALTER TABLE usage_rollup RENAME TO usage_rollup_away").await.unwrap();
    let page = session.get(&app, "/ui/").await;
    app.store.execute_raw("ALTER TABLE usage_rollup_away RENAME TO usage_rollup").await.unwrap();
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("Database unavailable: decision counts can't be read"), "{}", page.html);
    assert!(!page.html.contains("Allowed today"));
    let version = app.state.live.load().policy.version().to_owned();
    assert!(page.html.contains(&version) && page.html.contains("Audit queue"), "{}", page.html);
});
