//! The customers views: search by name or email, on SQLite and Postgres.

use crate::support::TestApp;
use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};

async fn admin(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {}", app.admin_key))
        .header("content-type", "application/json");
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let (status, _, json) = app.send(req.body(body).unwrap()).await;
    (status, json)
}

/// The emails of the customers `GET /api/admin/customers?q=<q>` lists.
async fn found(app: &TestApp, q: &str) -> Vec<String> {
    let path = format!("/api/admin/customers?q={}", urlencoding(q));
    let (status, page) = admin(app, "GET", &path, None).await;
    assert_eq!(status, 200, "{page}");
    let emails: Vec<String> =
        page["items"].as_array().unwrap().iter().map(|c| c["email"].as_str().unwrap().to_owned()).collect();
    assert_eq!(page["total"], json!(emails.len()), "{q}");
    emails
}

fn urlencoding(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

each_backend!(customer_search_matches_name_or_email_without_case, |backend| {
    let app = TestApp::new(backend).await;
    for (name, email) in
        [("Acme Ops", "Ops@Acme.example"), ("Beta_Corp", "beta@example.org"), ("100% Co", "pct@example.net")]
    {
        let (status, body) =
            admin(&app, "POST", "/api/admin/customers", Some(json!({"name": name, "email": email}))).await;
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(found(&app, "OPS@ACME").await, ["ops@acme.example"]);
    assert_eq!(found(&app, "acme ops").await, ["ops@acme.example"]);
    assert_eq!(found(&app, "  bETA ").await, ["beta@example.org"]);
    // LIKE's wildcards match themselves.
    assert_eq!(found(&app, "_").await, ["beta@example.org"]);
    assert_eq!(found(&app, "%").await, ["pct@example.net"]);
    assert!(found(&app, "nobody").await.is_empty());
    // An empty search lists everyone (the two test keys' customers too).
    assert_eq!(found(&app, "").await.len(), 5);
    let (status, body) = admin(&app, "GET", &format!("/api/admin/customers?q={}", "x".repeat(255)), None).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("q")), "{body}");
});
