//! Every endpoint and every error path, through the router without a port,
//! on SQLite and on Postgres.

use std::time::Duration;

use crate::support::TestApp;
use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use warden_engine::RuleOverride;
use warden_server::audit::OnFull;
use warden_server::server::Options;
use warden_server::store::{CustomerSettings, Role};

const PLAIN: &str = r#"{"model":"gpt-4","operation":"classify","metadata":{"intent":"spam_detection","contains_personal_data":false,"is_external_model":false}}"#;

fn with_meta(meta: Value) -> String {
    json!({"model": "gpt-4", "operation": "classify", "metadata": meta}).to_string()
}

each_backend!(health_needs_nothing, |backend| {
    let app = TestApp::new(backend).await;
    let (status, _, body) = app.send(Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
});

each_backend!(ready_reports_each_part_and_503_names_the_failure, |backend| {
    let app = TestApp::new(backend).await;
    let (status, _, body) = app.send(Request::get("/ready").body(Body::empty()).unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["policies"]["version"], json!(app.state.live.load().policy.version()));
    assert_eq!(body["checks"]["database"]["ok"], json!(true));
    app.store.close().await;
    let (status, _, body) = app.send(Request::get("/ready").body(Body::empty()).unwrap()).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], json!("not_ready"));
    assert!(body["message"].as_str().unwrap().starts_with("database:"), "{body}");
});

each_backend!(check_decides_the_required_examples, |backend| {
    let app = TestApp::new(backend).await;
    let cases = [
        (PLAIN.to_owned(), true, 0, "ok"),
        (with_meta(json!({"contains_personal_data": true})), false, 70, "contains_personal_data"),
        (with_meta(json!({"is_external_model": true})), false, 50, "external_model"),
        (
            with_meta(json!({"contains_personal_data": true, "is_external_model": true})),
            false,
            120,
            "contains_personal_data",
        ),
        (with_meta(json!({})), true, 0, "ok"),
    ];
    for (body, allowed, score, reason) in cases {
        let (status, headers, b) = app.check(&app.app_key, &body).await;
        assert_eq!(status, 200, "{b}");
        assert_eq!(
            (b["allowed"].as_bool(), b["risk_score"].as_i64(), b["reason"].as_str()),
            (Some(allowed), Some(score), Some(reason))
        );
        assert_eq!(b["policy_version"], json!(app.state.live.load().policy.version()));
        assert!(b["decision_id"].as_str().is_some_and(|s| s.len() == 36));
        assert!(headers.get("x-request-id").is_some());
        assert_eq!(headers["ratelimit-policy"], "\"default\";q=100;w=60");
        assert!(headers["ratelimit"].to_str().unwrap().starts_with("\"default\";r="));
    }
    let (_, _, b) =
        app.check(&app.app_key, &with_meta(json!({"contains_personal_data": true, "is_external_model": true}))).await;
    assert_eq!(
        b["contributions"],
        json!([{"rule": "contains_personal_data", "score": 70}, {"rule": "external_model", "score": 50}])
    );
});

each_backend!(request_ids_are_propagated_and_stored, |backend| {
    let mut app = TestApp::new(backend).await;
    let req = Request::post("/v1/check")
        .header("authorization", format!("Bearer {}", app.app_key))
        .header("x-request-id", "req-123")
        .body(Body::from(PLAIN))
        .unwrap();
    let (status, headers, body) = app.send(req).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-request-id"], "req-123");
    app.drain_audit().await;
    let rows = app.store.recent_audit(10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].request_id, "req-123");
    assert_eq!(rows[0].decision_id.to_string(), body["decision_id"].as_str().unwrap());
});

each_backend!(content_fields_are_refused_with_their_path_and_audited, |backend| {
    let mut app = TestApp::new(backend).await;
    let (status, _, body) = app.check(&app.app_key, &with_meta(json!({"prompt": "my secret text"}))).await;
    assert_eq!(status, 422);
    assert_eq!((body["error"].as_str(), body["path"].as_str()), (Some("forbidden_field"), Some("metadata.prompt")));
    assert!(!body.to_string().contains("my secret text"));
    let (status, _, body) = app.check(&app.app_key, &with_meta(json!({"a": {"b": [{"content": "x"}]}}))).await;
    assert_eq!((status, body["path"].as_str()), (422, Some("metadata.a.b[0].content")));
    app.drain_audit().await;
    let rows = app.store.recent_audit(10).await.unwrap();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!((row.status.as_str(), row.reason.as_str(), row.allowed), ("rejected", "forbidden_field", false));
        assert_eq!(row.meta.0, json!({}));
    }
    let all = serde_json::to_string(&rows).unwrap();
    assert!(!all.contains("my secret text"), "content never reaches the database");
});

each_backend!(repeated_keys_are_refused_with_their_path_and_audited, |backend| {
    let mut app = TestApp::new(backend).await;
    // Read as last-wins, this request would hide its content field.
    let hidden = r#"{"model":"gpt-4","operation":"classify","metadata":{"messages":[{"content":"my secret text"}]},"metadata":{"intent":"chat"}}"#;
    let (status, _, body) = app.check(&app.app_key, hidden).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!((body["error"].as_str(), body["path"].as_str()), (Some("duplicate_key"), Some("metadata")));
    let decision_id = body["decision_id"].as_str().unwrap().to_owned();
    assert!(!body.to_string().contains("my secret text"));
    let nested = r#"{"model":"gpt-4","operation":"classify","metadata":{"a":[{"k":1,"\u006b":2}]}}"#;
    let (status, _, body) = app.check(&app.app_key, nested).await;
    assert_eq!((status, body["path"].as_str()), (422, Some("metadata.a[0].k")));
    // Keys differing in case are different keys.
    let cased = r#"{"model":"gpt-4","operation":"classify","metadata":{"Intent":"a","intent":"b"}}"#;
    assert_eq!(app.check(&app.app_key, cased).await.0, 200);
    app.drain_audit().await;
    let rows = app.store.recent_audit(10).await.unwrap();
    let rejected: Vec<_> = rows.iter().filter(|r| r.status == "rejected").collect();
    assert_eq!(rejected.len(), 2, "both refusals are audited");
    assert!(rejected.iter().any(|r| r.decision_id.to_string() == decision_id), "under the answered decision id");
    for row in &rejected {
        assert_eq!((row.reason.as_str(), row.allowed), ("duplicate_key", false));
        assert_eq!(row.meta.0, json!({}));
    }
    let all = serde_json::to_string(&rows).unwrap();
    assert!(!all.contains("my secret text"), "content never reaches the database");
});

each_backend!(bad_bodies_get_clear_errors_never_500, |backend| {
    let app = TestApp::new(backend).await;
    let (status, _, body) = app.check(&app.app_key, &with_meta(json!({"contains_personal_data": "yes"}))).await;
    assert_eq!(
        (status, body["error"].as_str(), body["path"].as_str()),
        (422, Some("type_mismatch"), Some("metadata.contains_personal_data"))
    );
    assert!(body["message"].as_str().unwrap().contains("must be a boolean"));
    let (status, _, body) = app.check(&app.app_key, r#"{"operation":"x"}"#).await;
    assert_eq!((status, body["error"].as_str(), body["path"].as_str()), (422, Some("missing_field"), Some("model")));
    let (status, _, body) = app.check(&app.app_key, "{not json").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_json")));
    let (status, _, body) = app.check(&app.app_key, "").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_json")));
    let big = with_meta(json!({"padding": "x".repeat(70 * 1024)}));
    let (status, _, body) = app.check(&app.app_key, &big).await;
    assert_eq!((status, body["error"].as_str()), (413, Some("payload_too_large")));
    // Past serde_json's own limit (128) and past the engine's (32).
    for depth in [200, 40] {
        let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let body_text = format!(r#"{{"model":"m","operation":"o","x":{deep}}}"#);
        let (status, _, body) = app.check(&app.app_key, &body_text).await;
        assert_eq!((status, body["error"].as_str()), (422, Some("too_deep")), "depth {depth}");
    }
    let (status, _, body) = app.check(&app.app_key, "[1,2]").await;
    assert_eq!((status, body["error"].as_str()), (422, Some("not_an_object")));
});

each_backend!(global_toggles_customer_overrides_and_thresholds_apply, |backend| {
    let app = TestApp::new(backend).await;
    let ext = with_meta(json!({"is_external_model": true}));
    assert_eq!(app.check(&app.app_key, &ext).await.2["allowed"], json!(false));
    let policy = app.state.live.load().policy.clone();
    let off = RuleOverride { enabled: Some(false), score: None, mode: None };
    app.store.set_customer_rule(&policy, app.customer_id, "external_model", off, None).await.unwrap();
    assert!(app.state.live.refresh_overrides(&app.store).await.unwrap());
    assert_eq!(app.check(&app.app_key, &ext).await.2["allowed"], json!(true));
    // The admin's customer has no override: still blocked.
    assert_eq!(app.check(&app.admin_key, &ext).await.2["allowed"], json!(false));
    // A global toggle turns the approved-models rule on for everyone.
    app.store
        .set_global_toggle(
            &policy,
            "approved_models",
            RuleOverride { enabled: Some(true), score: None, mode: None },
            None,
        )
        .await
        .unwrap();
    app.state.live.refresh_overrides(&app.store).await.unwrap();
    let other = json!({"model": "other", "operation": "x"}).to_string();
    assert_eq!(app.check(&app.admin_key, &other).await.2["reason"], json!("unapproved_model"));
    // A per-customer threshold.
    let settings = CustomerSettings { customer_id: app.customer_id, threshold: Some(100), ..Default::default() };
    app.store.set_customer_settings(&policy, &settings, app.state.default_quota, None).await.unwrap();
    app.state.live.refresh_overrides(&app.store).await.unwrap();
    let pii = with_meta(json!({"contains_personal_data": true}));
    let (_, _, b) = app.check(&app.app_key, &pii).await;
    assert_eq!((b["allowed"].as_bool(), b["risk_score"].as_i64()), (Some(true), Some(70)));
    // Unchanged tables don't rebuild the snapshot.
    assert!(!app.state.live.refresh_overrides(&app.store).await.unwrap());
});

each_backend!(rate_limits_answer_429_with_headers, |backend| {
    let app = TestApp::new(backend).await;
    let settings = CustomerSettings {
        customer_id: app.customer_id,
        rate_limit_requests: Some(2),
        rate_limit_window_seconds: Some(60),
        ..Default::default()
    };
    let policy = app.state.live.load().policy.clone();
    app.store.set_customer_settings(&policy, &settings, app.state.default_quota, None).await.unwrap();
    app.state.live.refresh_overrides(&app.store).await.unwrap();
    let (_, h1, _) = app.check(&app.app_key, PLAIN).await;
    assert_eq!(h1["ratelimit-policy"], "\"default\";q=2;w=60");
    assert_eq!(h1["ratelimit"], "\"default\";r=1;t=30");
    assert_eq!(app.check(&app.app_key, PLAIN).await.0, 200);
    let (status, headers, body) = app.check(&app.app_key, PLAIN).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"], json!("rate_limited"));
    assert_eq!(headers["retry-after"], "30");
    assert_eq!(headers["ratelimit"], "\"default\";r=0;t=60");
    // /api/evaluate counts against the same limit.
    let req = Request::post("/api/evaluate")
        .header("authorization", format!("Bearer {}", app.app_key))
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(req).await.0, 429);
    // Another key is unaffected.
    assert_eq!(app.check(&app.admin_key, PLAIN).await.0, 200);
    let (_, _, metrics) = app.send(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert!(metrics.as_str().unwrap().contains("warden_rate_limited_total 2"), "{metrics}");
});

each_backend!(evaluate_verifies_a_key, |backend| {
    let app = TestApp::new(backend).await;
    let req = Request::post("/api/evaluate")
        .header("authorization", format!("Bearer {}", app.app_key))
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = app.send(req).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"status": "ok", "customer_id": app.customer_id, "message": "API key verified successfully"})
    );
    assert!(headers.contains_key("ratelimit"));
    let (status, _, _) = app.send(Request::post("/api/evaluate").body(Body::empty()).unwrap()).await;
    assert_eq!(status, 401);
});

each_backend!(metrics_cover_requests_decisions_latency_and_audit, |backend| {
    let mut app = TestApp::new(backend).await;
    app.check(&app.app_key, PLAIN).await;
    app.check(&app.app_key, &with_meta(json!({"contains_personal_data": true}))).await;
    app.check(&app.app_key, &with_meta(json!({"prompt": "x"}))).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, headers, body) = app.send(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(status, 200);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = body.as_str().unwrap();
    for needle in [
        "warden_http_requests_total{route=\"/v1/check\",status=\"200\"} 2",
        "warden_http_requests_total{route=\"/v1/check\",status=\"422\"} 1",
        "warden_decisions_total{allowed=\"true\",reason=\"ok\"} 1",
        "warden_decisions_total{allowed=\"false\",reason=\"contains_personal_data\"} 1",
        "warden_decisions_total{allowed=\"false\",reason=\"forbidden_field\"} 1",
        "warden_decision_latency_seconds_count 3",
        "warden_audit_queue_depth",
        "warden_audit_rows_written_total 3",
        "warden_audit_write_failures_total 0",
        "warden_rate_limited_total 0",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in\n{text}");
    }
    let version = app.state.live.load().policy.version().to_owned();
    assert!(text.contains(&format!("warden_policy{{version=\"{version}\"}} 1")));
    app.drain_audit().await;
});

each_backend!(every_check_outcome_is_audited_with_declared_fields_only, |backend| {
    let mut app = TestApp::new(backend).await;
    let mut audited = 0;
    for body in [
        PLAIN.to_owned(),
        with_meta(json!({"contains_personal_data": true, "user_email": "a@b.c", "notes": {"x": 1}})),
        with_meta(json!({"messages": [{"content": "hello"}]})),
        "{bad json".to_owned(),
    ] {
        let (status, _, _) = app.check(&app.app_key, &body).await;
        if status == 200 || status == 422 {
            audited += 1;
        }
    }
    assert_eq!(app.drain_audit().await, audited);
    assert_eq!(app.store.count_audit().await.unwrap(), audited as i64);
    let rows = app.store.recent_audit(10).await.unwrap();
    let blocked = rows.iter().find(|r| r.status == "blocked").unwrap();
    assert_eq!(blocked.reason, "contains_personal_data");
    assert_eq!(blocked.risk_score, 70);
    assert_eq!(
        blocked.meta.0,
        json!({"model": "gpt-4", "operation": "classify", "metadata.contains_personal_data": true, "metadata.is_external_model": false})
    );
    let text = serde_json::to_string(&rows).unwrap();
    for secret in ["a@b.c", "hello", "notes"] {
        assert!(!text.contains(secret), "undeclared or content field `{secret}` reached the audit log");
    }
    assert!(
        rows.iter().all(|r| r.api_key_id == app.app_key_id && r.customer_id == app.customer_id && r.latency_us >= 0)
    );
    // Key usage is counted by the writer.
    let key = app.store.list_keys(Some(app.customer_id), 1, 50).await.unwrap().items.into_iter().next().unwrap();
    assert_eq!(key.request_count, audited as i64);
    assert!(key.last_used_at.is_some());
});

each_backend!(a_full_queue_with_reject_answers_503, |backend| {
    let options = Options { audit_queue_capacity: 1, audit_on_full: OnFull::Reject, ..TestApp::options() };
    let mut app = TestApp::with_options(backend, options).await;
    // Stop the writer so nothing drains the queue.
    app.drain_audit().await;
    let mut statuses = Vec::new();
    for _ in 0..2 {
        statuses.push(app.check(&app.app_key, PLAIN).await.0);
    }
    assert!(statuses.contains(&503), "{statuses:?}");
    let (status, _, body) = app.check(&app.app_key, PLAIN).await;
    assert_eq!((status, body["error"].as_str()), (503, Some("unavailable")));
});

each_backend!(unknown_routes_and_methods_answer_json, |backend| {
    let app = TestApp::new(backend).await;
    let (status, _, body) = app.send(Request::get("/nope").body(Body::empty()).unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (status, _, body) = app.send(Request::get("/v1/check").body(Body::empty()).unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (405, Some("method_not_allowed")));
});

each_backend!(the_openapi_document_matches_the_router, |backend| {
    let app = TestApp::new(backend).await;
    let (status, _, doc) = app.send(Request::get("/openapi.json").body(Body::empty()).unwrap()).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    documented.sort();
    let expected = [
        "DELETE /api/admin/customers/{id}/params/{name}",
        "DELETE /api/admin/customers/{id}/policies/{key}",
        "DELETE /api/admin/keys/{id}",
        "DELETE /api/admin/orphans/toggles/{key}",
        "DELETE /api/admin/webhooks/{id}",
        "GET /api/admin/audit",
        "GET /api/admin/audit/head",
        "GET /api/admin/audit/verification",
        "GET /api/admin/customers",
        "GET /api/admin/customers/{id}",
        "GET /api/admin/customers/{id}/effective-policy",
        "GET /api/admin/customers/{id}/params/{name}",
        "GET /api/admin/customers/{id}/policies/{key}",
        "GET /api/admin/keys",
        "GET /api/admin/logs",
        "GET /api/admin/orphans",
        "GET /api/admin/params",
        "GET /api/admin/policies",
        "GET /api/admin/shadow",
        "GET /api/admin/stats",
        "GET /api/admin/status",
        "GET /api/admin/webhooks",
        "GET /api/admin/webhooks/{id}",
        "GET /api/admin/webhooks/{id}/deliveries",
        "GET /health",
        "GET /metrics",
        "GET /openapi.json",
        "GET /ready",
        "PATCH /api/admin/params/{name}",
        "PATCH /api/admin/policies/{key}",
        "POST /api/admin/audit/verify",
        "POST /api/admin/customers",
        "POST /api/admin/keys",
        "POST /api/admin/keys/{id}/rotate",
        "POST /api/admin/replay",
        "POST /api/admin/webhooks",
        "POST /api/admin/webhooks/{id}/deliveries/{delivery}/redeliver",
        "POST /api/admin/webhooks/{id}/enable",
        "POST /api/evaluate",
        "POST /v1/check",
        "PUT /api/admin/customers/{id}/params/{name}",
        "PUT /api/admin/customers/{id}/policies/{key}",
        "PUT /api/admin/customers/{id}/settings",
    ];
    assert_eq!(documented, expected);
    // Every documented route is served (no 404 or 405), and an undocumented
    // one is not.
    for route in &documented {
        let (method, path) = route.split_once(' ').unwrap();
        let path = path
            .replace("{id}", "00000000-0000-0000-0000-000000000000")
            .replace("{key}", "x")
            .replace("{name}", "x")
            .replace("{delivery}", "1");
        let req = Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
        let (status, _, _) = app.send(req).await;
        assert!(status != 404 && status != 405, "{route} answered {status}");
    }
    // The metrics' route labels are the documented routes: each request
    // above is counted under its template.
    let (_, _, metrics) = app.send(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let metrics = metrics.as_str().unwrap();
    let mut paths: Vec<&str> = documented.iter().map(|r| r.split_once(' ').unwrap().1).collect();
    paths.dedup();
    for path in paths {
        assert!(metrics.contains(&format!("route=\"{path}\"")), "{path} is not a route label:\n{metrics}");
    }
    let _ = Role::Admin;
});

each_backend!(admin_endpoints_need_an_admin_key, |backend| {
    let app = TestApp::new(backend).await;
    let get = |key: Option<&str>| {
        let mut req = Request::get("/api/admin/status");
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        req.body(Body::empty()).unwrap()
    };
    let (status, _, body) = app.send(get(Some(&app.app_key))).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));
    assert_eq!(app.send(get(None)).await.0, 401);
    let (status, _, body) = app.send(get(Some(&app.admin_key))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["policy_version"], json!(app.state.live.load().policy.version()));
    assert_eq!(body["files"], json!(["base.warden", "models.warden", "risk.warden"]));
});

each_backend!(nul_characters_and_long_strings_never_reach_the_audit_log_raw, |backend| {
    let mut app = TestApp::new(backend).await;
    let body =
        json!({"model": "gpt\u{0}-4", "operation": "x".repeat(5000), "metadata": {"intent": "a\u{0}b"}}).to_string();
    let (status, _, decision) = app.check(&app.app_key, &body).await;
    assert_eq!(status, 200, "{decision}");
    assert_eq!(app.drain_audit().await, 1);
    let rows = app.store.recent_audit(1).await.unwrap();
    // A NUL is recorded as U+FFFD (replays can tell the value was altered).
    assert_eq!(rows[0].model.as_deref(), Some("gpt\u{FFFD}-4"));
    assert_eq!(rows[0].operation.as_ref().map(|o| o.chars().count()), Some(200));
    assert_eq!(rows[0].meta.0["metadata.intent"], json!("a\u{FFFD}b"));
});

each_backend!(client_request_ids_must_look_like_ids, |backend| {
    let app = TestApp::new(backend).await;
    for bad in ["has spaces in it", &"x".repeat(200), "quote\"s"] {
        let req = Request::post("/v1/check")
            .header("authorization", format!("Bearer {}", app.app_key))
            .header("x-request-id", bad)
            .body(Body::from(PLAIN))
            .unwrap();
        let (status, headers, _) = app.send(req).await;
        assert_eq!(status, 200);
        let id = headers["x-request-id"].to_str().unwrap();
        assert_ne!(id, bad);
        assert_eq!(id.len(), 36, "a generated UUID replaces it");
    }
});

#[test]
fn the_openapi_document_describes_parameters_errors_and_bounds_as_served() {
    let doc = serde_json::to_value(warden_server::app::openapi()).unwrap();
    let mut query_params = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let route = format!("{} {path}", method.to_uppercase());
            let responses = op["responses"].as_object().unwrap();
            for p in op["parameters"].as_array().into_iter().flatten() {
                let (name, place) = (p["name"].as_str().unwrap(), p["in"].as_str().unwrap());
                // A path parameter is one the path names; everything else is
                // in the query, and optional.
                if path.contains(&format!("{{{name}}}")) {
                    assert_eq!((place, p["required"].as_bool()), ("path", Some(true)), "{route}: {name}");
                } else {
                    assert_eq!((place, p["required"].as_bool()), ("query", Some(false)), "{route}: {name}");
                    query_params += 1;
                    assert!(responses.contains_key("422"), "{route}: a bad `{name}` is a 422");
                }
            }
            if path.starts_with("/api/admin/") {
                for status in ["401", "403", "503"] {
                    assert!(responses.contains_key(status), "{route} does not document {status}");
                }
                assert!(op["security"].is_array(), "{route}: no security");
            }
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "422"] {
                    assert!(responses.contains_key(status), "{route} does not document {status}");
                }
            }
            for (status, r) in responses {
                if status.starts_with('4') || status.starts_with('5') && path != "/ready" {
                    let schema = &r["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(schema, &json!("#/components/schemas/ErrorBody"), "{route} {status}");
                }
            }
        }
    }
    assert!(query_params >= 20, "{query_params}");
    let schemas = &doc["components"]["schemas"];
    // The error body documents every field it is sent with.
    let error = schemas["ErrorBody"]["properties"].as_object().unwrap();
    for field in ["error", "message", "field", "path", "decision_id"] {
        assert!(error[field]["description"].is_string(), "ErrorBody.{field}");
    }
    // Bounds as the service checks them.
    let page = doc["paths"]["/api/admin/customers"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "page")
        .unwrap();
    assert_eq!(page["schema"]["minimum"], json!(1));
    assert_eq!(schemas["NewCustomer"]["properties"]["name"]["minLength"], json!(1));
    let grace = &schemas["RotateBody"]["properties"]["grace_seconds"]["oneOf"][1];
    assert_eq!((grace["type"].clone(), grace["maximum"].clone()), (json!("integer"), json!(604_800)));
    // `metadata` may be left out or null, as the service accepts.
    let check = &schemas["CheckRequest"];
    assert!(!check["required"].as_array().unwrap().contains(&json!("metadata")), "{check}");
}
