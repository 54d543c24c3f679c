//! What the admin API reads from a request: integers at their edges, text
//! the database can't store, and repeated keys are all refused with 422
//! naming the field, alike on SQLite and Postgres, and nothing is stored.

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};

use crate::support::TestApp;

/// Sends `body` as raw text (so it can hold what `json!` can't: numbers
/// past `u64`, repeated keys).
async fn raw(app: &TestApp, method: &str, path: &str, body: &str) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {}", app.admin_key))
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let (status, _, json) = app.send(req).await;
    (status, json)
}

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    raw(app, "GET", path, "").await
}

/// Integers no field takes: past every integer type, negative, fractional,
/// and not numbers at all.
const NEVER_VALID: [&str; 9] = [
    "-9223372036854775808",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "-1e300",
    "1e300",
    "0.5",
    "\"5\"",
    "true",
];

each_backend!(integers_in_admin_bodies_are_range_checked_at_every_edge, |backend| {
    let app = TestApp::new(backend).await;
    let base = format!("/api/admin/customers/{}", app.customer_id);
    let key = format!("/api/admin/keys/{}/rotate", app.app_key_id);
    // (method, path, body with `V` for the value, the field's path, just
    // outside its range on either side)
    let fields = [
        (
            "PUT",
            format!("{base}/policies/contains_personal_data"),
            r#"{"score": V}"#,
            "score",
            ["-1000000001", "1000000001"],
        ),
        ("PUT", format!("{base}/settings"), r#"{"threshold": V}"#, "threshold", ["-1000000001", "1000000001"]),
        (
            "PUT",
            format!("{base}/settings"),
            r#"{"rate_limit": {"requests": V, "window_seconds": 60}}"#,
            "rate_limit.requests",
            ["0", "1000000001"],
        ),
        (
            "PUT",
            format!("{base}/settings"),
            r#"{"rate_limit": {"requests": 10, "window_seconds": V}}"#,
            "rate_limit.window_seconds",
            ["0", "86401"],
        ),
        ("POST", key.clone(), r#"{"grace_seconds": V}"#, "grace_seconds", ["-1", "604801"]),
    ];
    for (method, path, template, field, outside) in &fields {
        for value in NEVER_VALID.iter().chain(outside) {
            let body = template.replace('V', value);
            let (status, answer) = raw(&app, method, path, &body).await;
            assert_eq!(status, 422, "{method} {path} {body}: {answer}");
            assert_eq!(answer["field"], json!(field), "{body}: {answer}");
            assert_eq!(answer["error"], json!("invalid_field"));
        }
    }
    // Nothing was stored: no override, and the settings are the defaults.
    assert_eq!(get(&app, &format!("{base}/policies/contains_personal_data")).await.0, 404);
    let (_, eff) = get(&app, &format!("{base}/effective-policy")).await;
    assert_eq!(
        (eff["threshold"]["source"].as_str(), eff["rate_limit"]["source"].as_str()),
        (Some("file"), Some("default"))
    );
    // A whole number spelled with a fraction or an exponent is that number.
    let (status, o) = raw(&app, "PUT", &format!("{base}/policies/contains_personal_data"), r#"{"score": 4.0e1}"#).await;
    assert_eq!((status, o["score"].as_i64()), (200, Some(40)), "{o}");
    let (status, s) = raw(&app, "PUT", &format!("{base}/settings"), r#"{"threshold": -1000000000.0}"#).await;
    assert_eq!((status, s["threshold"].as_i64()), (200, Some(-1_000_000_000)), "{s}");
    let (status, r) = raw(&app, "POST", &key, r#"{"grace_seconds": 324.0}"#).await;
    assert_eq!(status, 200, "{r}");
    assert!(r["old_secret_valid_until"].is_string());
});

each_backend!(integers_in_query_strings_are_range_checked_at_every_edge, |backend| {
    let app = TestApp::new(backend).await;
    for (path, field) in [
        ("/api/admin/customers?page=", "page"),
        ("/api/admin/customers?page_size=", "page_size"),
        ("/api/admin/keys?page=", "page"),
        ("/api/admin/logs?page_size=", "page_size"),
        ("/api/admin/audit?page=", "page"),
        ("/api/admin/policies?page_size=", "page_size"),
        ("/api/admin/stats?days=", "days"),
        ("/api/admin/logs?before_id=", "before_id"),
    ] {
        let mut bad = vec!["9223372036854775808", "18446744073709551616", "-9223372036854775809", "1.5", "x", ""];
        if field != "before_id" {
            bad.extend(["0", "-1", "-9223372036854775808", "4294967296"]);
        }
        if field == "days" {
            bad.push("367");
        }
        if field == "page_size" {
            bad.push("501");
        }
        for value in bad {
            let (status, answer) = get(&app, &format!("{path}{value}")).await;
            assert_eq!((status, answer["field"].as_str()), (422, Some(field)), "{path}{value}: {answer}");
        }
    }
    // The edges themselves are fine.
    for ok in [
        "/api/admin/customers?page=4294967295&page_size=500",
        "/api/admin/stats?days=366",
        "/api/admin/logs?before_id=-9223372036854775808",
        "/api/admin/logs?before_id=9223372036854775807",
    ] {
        assert_eq!(get(&app, ok).await.0, 200, "{ok}");
    }
});

each_backend!(text_the_database_cant_store_is_a_422_naming_the_field, |backend| {
    let app = TestApp::new(backend).await;
    let nul = "a\u{0}b";
    for (method, path, body, field) in [
        ("POST", "/api/admin/customers".to_owned(), json!({"name": nul, "email": "x@y.test"}), "name"),
        ("POST", "/api/admin/customers".to_owned(), json!({"name": "X", "email": "x\u{0}@y.test"}), "email"),
        ("POST", "/api/admin/keys".to_owned(), json!({"name": nul, "customer_id": app.customer_id}), "name"),
        ("POST", "/api/admin/customers".to_owned(), json!({"name": "X", "email": "x@y.test", "a\u{0}": 1}), "a\u{0}"),
    ] {
        let (status, answer) = raw(&app, method, &path, &body.to_string()).await;
        assert_eq!((status, answer["field"].as_str()), (422, Some(field)), "{body}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains("NUL"), "{answer}");
    }
    for (query, field) in [
        ("model=%00", "model"),
        ("operation=gpt%004", "operation"),
        ("reason=%00", "reason"),
        ("from=%00", "from"),
        ("status=%00", "status"),
        ("unknown_filter=%00", "unknown_filter"),
    ] {
        let (status, answer) = get(&app, &format!("/api/admin/logs?{query}")).await;
        assert_eq!((status, answer["field"].as_str()), (422, Some(field)), "{query}: {answer}");
    }
    let (status, answer) = get(&app, "/api/admin/customers?page=1&x%00=1").await;
    assert_eq!((status, answer["field"].as_str()), (422, Some("query")), "{answer}");
    // Nothing was created; the database still answers.
    let (status, list) = get(&app, "/api/admin/customers").await;
    assert_eq!((status, list["total"].as_i64()), (200, Some(2)), "{list}");
    assert_eq!(get(&app, "/api/admin/logs?model=gpt-4").await.0, 200);
});

each_backend!(admin_bodies_repeating_a_key_are_refused_naming_it, |backend| {
    let app = TestApp::new(backend).await;
    let base = format!("/api/admin/customers/{}", app.customer_id);
    for (method, path, body, field) in [
        ("POST", "/api/admin/customers".to_owned(), r#"{"name":"A","email":"a@b.test","name":"B"}"#, "name"),
        ("PATCH", "/api/admin/policies/external_model".to_owned(), r#"{"enabled":false,"enabled":true}"#, "enabled"),
        (
            "PUT",
            format!("{base}/settings"),
            r#"{"rate_limit":{"requests":1,"window_seconds":60,"requests":1000}}"#,
            "rate_limit.requests",
        ),
    ] {
        let (status, answer) = raw(&app, method, &path, body).await;
        assert_eq!((status, answer["field"].as_str()), (422, Some(field)), "{body}: {answer}");
    }
    let (_, list) = get(&app, "/api/admin/customers").await;
    assert_eq!(list["total"], json!(2), "nothing was created");
    let (_, eff) = get(&app, &format!("{base}/effective-policy")).await;
    assert_eq!(eff["rules"][2]["enabled"]["source"], json!("file"), "the toggle was not set: {eff}");
});
