//! The admin API: every endpoint and its error paths, on SQLite and
//! Postgres. Changes must apply to the very next request.

use crate::support::TestApp;
use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};

const PII: &str = r#"{"model":"gpt-4","operation":"classify","metadata":{"contains_personal_data":true}}"#;
const EXT: &str = r#"{"model":"gpt-4","operation":"classify","metadata":{"is_external_model":true}}"#;
const OTHER_MODEL: &str = r#"{"model":"new-model","operation":"classify"}"#;

/// Sends `method path` with `key` and an optional JSON body: status and body.
pub(crate) async fn call(app: &TestApp, key: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = Request::builder().method(method).uri(path).header("authorization", format!("Bearer {key}"));
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let (status, _, json) = app.send(req.body(body).unwrap()).await;
    (status, json)
}

async fn admin(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    call(app, &app.admin_key, method, path, body).await
}

each_backend!(every_admin_endpoint_refuses_app_keys, |backend| {
    let app = TestApp::new(backend).await;
    let id = app.customer_id;
    for (method, path) in [
        ("GET", "/api/admin/status".to_owned()),
        ("GET", "/api/admin/customers".to_owned()),
        ("POST", "/api/admin/customers".to_owned()),
        ("GET", format!("/api/admin/customers/{id}")),
        ("GET", "/api/admin/keys".to_owned()),
        ("POST", "/api/admin/keys".to_owned()),
        ("POST", format!("/api/admin/keys/{}/rotate", app.app_key_id)),
        ("DELETE", format!("/api/admin/keys/{}", app.app_key_id)),
        ("GET", "/api/admin/policies".to_owned()),
        ("PATCH", "/api/admin/policies/external_model".to_owned()),
        ("GET", format!("/api/admin/customers/{id}/policies/external_model")),
        ("PUT", format!("/api/admin/customers/{id}/policies/external_model")),
        ("DELETE", format!("/api/admin/customers/{id}/policies/external_model")),
        ("PUT", format!("/api/admin/customers/{id}/settings")),
        ("GET", format!("/api/admin/customers/{id}/effective-policy")),
        ("GET", "/api/admin/logs".to_owned()),
        ("GET", "/api/admin/stats".to_owned()),
        ("GET", "/api/admin/shadow".to_owned()),
        ("POST", "/api/admin/replay".to_owned()),
        ("GET", "/api/admin/audit".to_owned()),
        ("GET", "/api/admin/orphans".to_owned()),
        ("DELETE", "/api/admin/orphans/toggles/external_model".to_owned()),
    ] {
        let (status, body) = call(&app, &app.app_key, method, &path, Some(json!({}))).await;
        assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")), "{method} {path}");
    }
    // The app key still works where it should.
    assert_eq!(app.check(&app.app_key, PII).await.0, 200);
});

each_backend!(customers_are_created_listed_and_fetched, |backend| {
    let app = TestApp::new(backend).await;
    let (status, created) =
        admin(&app, "POST", "/api/admin/customers", Some(json!({"name": "Acme", "email": "ops@acme.test"}))).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["email"], json!("ops@acme.test"));
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, body) =
        admin(&app, "POST", "/api/admin/customers", Some(json!({"name": "Other", "email": "ops@acme.test"}))).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("conflict")));
    let (status, _) =
        admin(&app, "POST", "/api/admin/customers", Some(json!({"name": "Shout", "email": "OPS@Acme.test"}))).await;
    assert_eq!(status, 409, "emails are compared without case");
    for (bad, field) in [
        (json!({"name": "x", "email": "not-an-email"}), "email"),
        (json!({"name": "", "email": "a@b.test"}), "name"),
        (json!({"name": "x"}), "email"),
        (json!({"name": "x", "email": "a@b.test", "extra": 1}), "extra"),
        (json!({"name": 5, "email": "a@b.test"}), "body"),
    ] {
        let (status, body) = admin(&app, "POST", "/api/admin/customers", Some(bad.clone())).await;
        assert_eq!(status, 422, "{bad}");
        assert_eq!(body["error"], json!("invalid_field"));
        if field != "body" {
            assert_eq!(body["field"], json!(field), "{bad}: {body}");
        }
    }
    let req = Request::post("/api/admin/customers")
        .header("authorization", format!("Bearer {}", app.admin_key))
        .body(Body::from("{nope"))
        .unwrap();
    assert_eq!(app.send(req).await.0, 400);
    let (status, page) = admin(&app, "GET", "/api/admin/customers?page=1&page_size=2", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        (page["page"].as_u64(), page["page_size"].as_u64(), page["total"].as_i64()),
        (Some(1), Some(2), Some(3))
    );
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let (_, page2) = admin(&app, "GET", "/api/admin/customers?page=2&page_size=2", None).await;
    assert_eq!(page2["items"][0]["id"], json!(id));
    assert_eq!(admin(&app, "GET", "/api/admin/customers?page_size=501", None).await.0, 422);
    let (status, body) = admin(&app, "GET", "/api/admin/customers?page=zero", None).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("page")), "{body}");
    assert_eq!(admin(&app, "GET", &format!("/api/admin/customers/{id}"), None).await.1["name"], json!("Acme"));
    assert_eq!(admin(&app, "GET", "/api/admin/customers/00000000-0000-0000-0000-000000000000", None).await.0, 404);
    assert_eq!(admin(&app, "GET", "/api/admin/customers/not-a-uuid", None).await.0, 404);
});

each_backend!(keys_are_issued_listed_rotated_and_deleted, |backend| {
    let app = TestApp::new(backend).await;
    let (status, issued) =
        admin(&app, "POST", "/api/admin/keys", Some(json!({"name": "ci", "customer_id": app.customer_id}))).await;
    assert_eq!(status, 201, "{issued}");
    let key = issued["key"].as_str().unwrap().to_owned();
    let key_id = issued["id"].as_str().unwrap().to_owned();
    assert_eq!(issued["role"], json!("app"));
    assert_eq!(app.check(&key, PII).await.0, 200);
    assert_eq!(
        admin(&app, "POST", "/api/admin/keys", Some(json!({"name": "x", "customer_id": uuid::Uuid::new_v4()}))).await.0,
        404
    );
    let (status, body) = admin(
        &app,
        "POST",
        "/api/admin/keys",
        Some(json!({"name": "x", "customer_id": app.customer_id, "role": "root"})),
    )
    .await;
    assert_eq!((status, body["field"].as_str()), (422, Some("role")), "{body}");
    // Listing never shows a secret or a hash.
    let (status, list) = admin(&app, "GET", &format!("/api/admin/keys?customer_id={}", app.customer_id), None).await;
    assert_eq!(status, 200);
    assert_eq!(list["total"], json!(2));
    let text = list.to_string();
    assert!(!text.contains(&key[37..]) && !text.contains("$2b$") && !text.contains("secret"), "{text}");
    for field in ["id", "name", "customer_id", "role", "created_at", "last_used_at", "request_count", "active"] {
        assert!(list["items"][0].get(field).is_some(), "missing {field}");
    }
    // Rotation without grace: the old secret fails at once.
    let (status, rotated) = admin(&app, "POST", &format!("/api/admin/keys/{key_id}/rotate"), Some(json!({}))).await;
    assert_eq!(status, 200, "{rotated}");
    let new_key = rotated["key"].as_str().unwrap().to_owned();
    assert_eq!(app.check(&key, PII).await.0, 401);
    assert_eq!(app.check(&new_key, PII).await.0, 200);
    // Rotation with grace: both work until it ends.
    let (_, rotated) =
        admin(&app, "POST", &format!("/api/admin/keys/{key_id}/rotate"), Some(json!({"grace_seconds": 60}))).await;
    let newest = rotated["key"].as_str().unwrap().to_owned();
    assert!(rotated["old_secret_valid_until"].is_string());
    assert_eq!(app.check(&new_key, PII).await.0, 200, "the previous secret works during the grace period");
    assert_eq!(app.check(&newest, PII).await.0, 200);
    assert_eq!(
        admin(&app, "POST", &format!("/api/admin/keys/{key_id}/rotate"), Some(json!({"grace_seconds": 999999999})))
            .await
            .0,
        422
    );
    assert_eq!(admin(&app, "POST", &format!("/api/admin/keys/{}/rotate", uuid::Uuid::new_v4()), None).await.0, 404);
    // Deletion: the key fails at once, cached or not.
    assert_eq!(admin(&app, "DELETE", &format!("/api/admin/keys/{key_id}"), None).await.0, 204);
    assert_eq!(app.check(&newest, PII).await.0, 401);
    assert_eq!(admin(&app, "DELETE", &format!("/api/admin/keys/{key_id}"), None).await.0, 404);
});

each_backend!(global_toggles_apply_to_the_next_request, |backend| {
    let app = TestApp::new(backend).await;
    let (status, list) = admin(&app, "GET", "/api/admin/policies", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["total"], json!(3));
    let approved = &list["items"][0];
    assert_eq!(approved["key"], json!("approved_models"));
    assert_eq!((approved["effect"].as_str(), approved["enabled"].as_bool()), (Some("deny"), Some(false)));
    assert_eq!(approved["source"], json!("models.warden:4"));
    assert_eq!(list["items"][1]["score"], json!(70));
    assert_eq!(app.check(&app.app_key, OTHER_MODEL).await.2["allowed"], json!(true));
    let (status, rule) =
        admin(&app, "PATCH", "/api/admin/policies/approved_models", Some(json!({"enabled": true}))).await;
    assert_eq!((status, rule["enabled"].as_bool(), rule["global_toggle"].as_bool()), (200, Some(true), Some(true)));
    let (_, _, decision) = app.check(&app.app_key, OTHER_MODEL).await;
    assert_eq!((decision["allowed"].as_bool(), decision["reason"].as_str()), (Some(false), Some("unapproved_model")));
    assert_eq!(admin(&app, "PATCH", "/api/admin/policies/nope", Some(json!({"enabled": true}))).await.0, 404);
    // `null` returns the rule to its file setting; an empty patch changes nothing.
    let (status, body) = admin(&app, "PATCH", "/api/admin/policies/approved_models", Some(json!({}))).await;
    assert_eq!((status, body["global_toggle"].as_bool()), (200, Some(true)), "{body}");
    let (status, rule) =
        admin(&app, "PATCH", "/api/admin/policies/approved_models", Some(json!({"enabled": null}))).await;
    assert_eq!((status, rule["enabled"].as_bool(), rule["global_toggle"].clone()), (200, Some(false), json!(null)));
    assert_eq!(app.check(&app.app_key, OTHER_MODEL).await.2["allowed"], json!(true));
    admin(&app, "PATCH", "/api/admin/policies/approved_models", Some(json!({"enabled": true}))).await;
    let (status, body) =
        admin(&app, "PATCH", "/api/admin/policies/approved_models", Some(json!({"enabled": "yes"}))).await;
    assert_eq!(status, 422, "{body}");
    // Violations are counted per rule over 7 days.
    app.check(&app.app_key, PII).await;
    let mut app = app;
    app.drain_audit().await;
    let (_, list) = admin(&app, "GET", "/api/admin/policies", None).await;
    assert_eq!(list["items"][1]["violations_last_7_days"], json!(1));
    assert_eq!(list["items"][0]["violations_last_7_days"], json!(1));
});

each_backend!(per_customer_overrides_and_settings_apply_to_the_next_request, |backend| {
    let app = TestApp::new(backend).await;
    let base = format!("/api/admin/customers/{}", app.customer_id);
    assert_eq!(app.check(&app.app_key, EXT).await.2["allowed"], json!(false));
    let (status, _) =
        admin(&app, "PUT", &format!("{base}/policies/external_model"), Some(json!({"enabled": false}))).await;
    assert_eq!(status, 200);
    assert_eq!(app.check(&app.app_key, EXT).await.2["allowed"], json!(true));
    assert_eq!(app.check(&app.admin_key, EXT).await.2["allowed"], json!(false), "only this customer");
    let (status, o) = admin(&app, "GET", &format!("{base}/policies/external_model"), None).await;
    assert_eq!((status, o), (200, json!({"enabled": false, "score": null, "mode": null})));
    let (status, body) =
        admin(&app, "PUT", &format!("{base}/policies/approved_models"), Some(json!({"score": 5}))).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("conflict")), "a deny rule takes no score: {body}");
    assert_eq!(admin(&app, "PUT", &format!("{base}/policies/nope"), Some(json!({}))).await.0, 404);
    assert_eq!(
        admin(
            &app,
            "PUT",
            "/api/admin/customers/00000000-0000-0000-0000-000000000000/policies/external_model",
            Some(json!({}))
        )
        .await
        .0,
        404
    );
    assert_eq!(admin(&app, "DELETE", &format!("{base}/policies/external_model"), None).await.0, 204);
    assert_eq!(app.check(&app.app_key, EXT).await.2["allowed"], json!(false));
    assert_eq!(admin(&app, "GET", &format!("{base}/policies/external_model"), None).await.0, 404);
    assert_eq!(admin(&app, "DELETE", &format!("{base}/policies/external_model"), None).await.0, 404);
    // Threshold and rate limit.
    let (status, _) = admin(
        &app,
        "PUT",
        &format!("{base}/settings"),
        Some(json!({"threshold": 100, "rate_limit": {"requests": 30, "window_seconds": 60}})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, headers, decision) = app.check(&app.app_key, PII).await;
    assert_eq!((status, decision["allowed"].as_bool()), (200, Some(true)));
    assert_eq!(headers["ratelimit-policy"], "\"default\";q=30;w=60");
    let (status, body) = admin(
        &app,
        "PUT",
        &format!("{base}/settings"),
        Some(json!({"rate_limit": {"requests": 0, "window_seconds": 60}})),
    )
    .await;
    assert_eq!((status, body["field"].as_str()), (422, Some("rate_limit.requests")));
    let (status, body) =
        admin(&app, "PUT", &format!("{base}/settings"), Some(json!({"rate_limit": {"requests": 5}}))).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("rate_limit.window_seconds")), "{body}");
    // The effective policy says where each value comes from.
    admin(&app, "PATCH", "/api/admin/policies/approved_models", Some(json!({"enabled": true}))).await;
    admin(&app, "PUT", &format!("{base}/policies/contains_personal_data"), Some(json!({"score": 40}))).await;
    let (status, eff) = admin(&app, "GET", &format!("{base}/effective-policy"), None).await;
    assert_eq!(status, 200, "{eff}");
    assert_eq!(eff["threshold"], json!({"value": 100, "source": "override"}));
    assert_eq!(eff["rate_limit"], json!({"value": {"requests": 30, "window_seconds": 60}, "source": "override"}));
    assert_eq!(eff["rules"][0]["enabled"], json!({"value": true, "source": "global"}));
    assert_eq!(eff["rules"][1]["score"], json!({"value": 40, "source": "override"}));
    assert_eq!(eff["rules"][2]["enabled"], json!({"value": true, "source": "file"}));
    assert_eq!(eff["rules"][2]["score"], json!({"value": 50, "source": "file"}));
    assert_eq!(
        admin(&app, "GET", "/api/admin/customers/00000000-0000-0000-0000-000000000000/effective-policy", None).await.0,
        404
    );
});

each_backend!(logs_stats_and_the_admin_trail, |backend| {
    let mut app = TestApp::new(backend).await;
    for body in [
        PII,
        EXT,
        r#"{"model":"claude","operation":"chat","metadata":{}}"#,
        r#"{"model":"gpt-4","operation":"x","prompt":"p"}"#,
    ] {
        app.check(&app.app_key, body).await;
    }
    app.check(&app.admin_key, PII).await;
    app.drain_audit().await;
    let (status, all) = admin(&app, "GET", "/api/admin/logs?page_size=2", None).await;
    assert_eq!((status, all["total"].as_i64(), all["items"].as_array().map(Vec::len)), (200, Some(5), Some(2)));
    let newest_id = all["items"][0]["id"].as_i64().unwrap();
    let (_, older) = admin(&app, "GET", &format!("/api/admin/logs?before_id={newest_id}&page_size=10"), None).await;
    assert_eq!(older["items"].as_array().unwrap().len(), 4, "keyset paging");
    let q = |s: &str| format!("/api/admin/logs?{s}");
    assert_eq!(admin(&app, "GET", &q("status=blocked"), None).await.1["total"], json!(3));
    assert_eq!(admin(&app, "GET", &q("status=rejected"), None).await.1["total"], json!(1));
    assert_eq!(admin(&app, "GET", &q("model=claude"), None).await.1["total"], json!(1));
    assert_eq!(admin(&app, "GET", &q("reason=external_model&operation=classify"), None).await.1["total"], json!(1));
    assert_eq!(admin(&app, "GET", &q(&format!("customer_id={}", app.customer_id)), None).await.1["total"], json!(4));
    assert_eq!(
        admin(&app, "GET", &q("from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z"), None).await.1["total"],
        json!(5)
    );
    assert_eq!(admin(&app, "GET", &q("from=2100-01-01T00:00:00Z"), None).await.1["total"], json!(0));
    let (status, body) = admin(&app, "GET", &q("from=yesterday"), None).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("from")));
    assert_eq!(admin(&app, "GET", &q("status=maybe"), None).await.0, 422);
    let (status, stats) = admin(&app, "GET", "/api/admin/stats?days=7", None).await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(
        (stats["allowed"].as_i64(), stats["blocked"].as_i64(), stats["rejected"].as_i64()),
        (Some(1), Some(3), Some(1))
    );
    assert_eq!(stats["by_reason"]["contains_personal_data"], json!(2));
    assert_eq!(stats["by_model"]["gpt-4"], json!(4));
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(stats["by_day"][&today], json!(5));
    assert_eq!(admin(&app, "GET", "/api/admin/stats?days=0", None).await.0, 422);
    // Admin changes are recorded with actor, before and after.
    admin(&app, "PATCH", "/api/admin/policies/external_model", Some(json!({"enabled": false}))).await;
    admin(&app, "PATCH", "/api/admin/policies/external_model", Some(json!({"enabled": true}))).await;
    let (status, trail) = admin(&app, "GET", "/api/admin/audit?page_size=1", None).await;
    assert_eq!(status, 200);
    let last = &trail["items"][0];
    assert_eq!(last["action"], json!("policy.toggle"));
    assert_eq!(last["target"], json!("external_model"));
    assert_eq!(
        (last["before"]["enabled"].clone(), last["after"]["enabled"].clone()),
        (json!({"value": false, "source": "global"}), json!({"value": true, "source": "global"}))
    );
    assert!(last["actor_key_id"].is_string());
    assert!(trail["total"].as_i64().unwrap() >= 4, "key creation by the test setup is recorded too");
    // Append-only.
    assert!(app.store.execute_raw("UPDATE admin_audit SET action = 'x'").await.is_err());
    assert!(app.store.execute_raw("DELETE FROM admin_audit").await.is_err());
});
