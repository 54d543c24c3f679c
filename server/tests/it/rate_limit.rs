//! Rate-limit changes made through the admin API apply to the customer's
//! next request, in both directions, and the `RateLimit` headers never
//! contradict `RateLimit-Policy`.

use axum::body::Body;
use axum::http::{HeaderMap, Request};
use serde_json::json;

use crate::support::TestApp;

const ALLOWED: &str = r#"{"model":"gpt-4","operation":"classify","metadata":{}}"#;

async fn set_rate_limit(app: &TestApp, requests: u32, window_seconds: u32) {
    let req = Request::put(format!("/api/admin/customers/{}/settings", app.customer_id))
        .header("authorization", format!("Bearer {}", app.admin_key))
        .header("content-type", "application/json")
        .body(Body::from(json!({"rate_limit": {"requests": requests, "window_seconds": window_seconds}}).to_string()))
        .unwrap();
    let (status, _, body) = app.send(req).await;
    assert_eq!(status, 200, "{body}");
}

/// `(q, w)` from `RateLimit-Policy` and `(r, t)` from `RateLimit`.
fn rate_headers(headers: &HeaderMap) -> ((u64, u64), (u64, u64)) {
    let field = |name: &str, key: &str| -> u64 {
        let value = headers.get(name).unwrap_or_else(|| panic!("no {name} header")).to_str().unwrap();
        let part = value.split(';').find_map(|p| p.strip_prefix(&format!("{key}="))).unwrap();
        part.parse().unwrap()
    };
    (
        (field("ratelimit-policy", "q"), field("ratelimit-policy", "w")),
        (field("ratelimit", "r"), field("ratelimit", "t")),
    )
}

fn assert_consistent(headers: &HeaderMap) {
    let ((q, w), (r, t)) = rate_headers(headers);
    assert!(r <= q && t <= w, "RateLimit r={r} t={t} contradicts RateLimit-Policy q={q} w={w}");
    if let Some(retry) = headers.get("retry-after") {
        let retry: u64 = retry.to_str().unwrap().parse().unwrap();
        assert!((1..=w).contains(&retry), "Retry-After {retry} outside 1..={w}");
    }
}

each_backend!(a_raised_rate_limit_applies_to_the_next_request, |backend| {
    let app = TestApp::new(backend).await;
    set_rate_limit(&app, 1, 3600).await;
    let (status, headers, _) = app.check(&app.app_key, ALLOWED).await;
    assert_eq!(status, 200);
    assert_consistent(&headers);
    let (status, headers, _) = app.check(&app.app_key, ALLOWED).await;
    assert_eq!(status, 429);
    assert_consistent(&headers);
    assert!(headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() > 3000);
    // Raised: the very next request goes through, and the headers speak of
    // the new policy.
    set_rate_limit(&app, 1000, 60).await;
    let (status, headers, body) = app.check(&app.app_key, ALLOWED).await;
    assert_eq!(status, 200, "{body}");
    assert_consistent(&headers);
    let ((q, w), (r, _)) = rate_headers(&headers);
    assert_eq!((q, w), (1000, 60));
    assert!(r >= 998, "remaining {r}");
});

each_backend!(a_lowered_rate_limit_applies_to_the_next_request_and_waits_at_most_a_window, |backend| {
    let app = TestApp::new(backend).await;
    set_rate_limit(&app, 1000, 3600).await;
    for _ in 0..5 {
        let (status, headers, _) = app.check(&app.app_key, ALLOWED).await;
        assert_eq!(status, 200);
        assert_consistent(&headers);
    }
    // Five requests already sent count against the new limit of three.
    set_rate_limit(&app, 3, 60).await;
    let (status, headers, _) = app.check(&app.app_key, ALLOWED).await;
    assert_eq!(status, 429);
    assert_consistent(&headers);
    // Back to the default: the quota in force is the default one.
    let req = Request::put(format!("/api/admin/customers/{}/settings", app.customer_id))
        .header("authorization", format!("Bearer {}", app.admin_key))
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(app.send(req).await.0, 200);
    let (status, headers, _) = app.check(&app.app_key, ALLOWED).await;
    assert_eq!(status, 200);
    assert_consistent(&headers);
    assert_eq!(rate_headers(&headers).0, (100, 60));
});
