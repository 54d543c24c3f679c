//! Key verification on the decision path: keys required and checked, the
//! cache of verified keys (bcrypt once per key, single-flight, wrong keys
//! remembered), and the cache's re-checks against the database.

use crate::support::TestApp;
use axum::body::Body;
use axum::http::Request;
use serde_json::json;
use warden_server::store::Role;

const PLAIN: &str = r#"{"model":"gpt-4","operation":"classify","metadata":{"intent":"spam_detection","contains_personal_data":false,"is_external_model":false}}"#;

each_backend!(keys_are_required_and_checked, |backend| {
    let app = TestApp::new(backend).await;
    let wrong_secret = format!("{}{}", &app.app_key[..app.app_key.len() - 4], "AAAA");
    let unknown = warden_server::auth::generate().token;
    for (header, value, expected_message) in [
        (None, "", "missing API key"),
        (Some("authorization"), "Basic abc", "malformed API key"),
        (Some("authorization"), "Bearer nope", "malformed API key"),
        (Some("authorization"), &format!("Bearer {unknown}"), "unknown API key"),
        (Some("authorization"), &format!("Bearer {wrong_secret}"), "unknown API key"),
    ] {
        let mut req = Request::post("/v1/check");
        if let Some(h) = header {
            req = req.header(h, value);
        }
        let (status, _, body) = app.send(req.body(Body::from(PLAIN)).unwrap()).await;
        assert_eq!(status, 401, "{value}");
        assert_eq!(body["error"], json!("unauthorized"));
        assert!(body["message"].as_str().unwrap().starts_with(expected_message), "{body}");
        assert!(!body.to_string().contains(&app.app_key[4..]), "the key is never echoed");
    }
    // x-api-key works too.
    let req = Request::post("/v1/check").header("x-api-key", &app.app_key).body(Body::from(PLAIN)).unwrap();
    assert_eq!(app.send(req).await.0, 200);
    // A deactivated key fails, once the cache notices (here: at once).
    assert!(app.store.deactivate_key(app.app_key_id, None).await.unwrap());
    app.state.auth.revalidate().await.unwrap();
    let (status, _, body) = app.check(&app.app_key, PLAIN).await;
    assert_eq!(status, 401);
    assert_eq!(body["message"], json!("this API key is no longer active"));
});

each_backend!(verified_keys_are_cached, |backend| {
    let app = TestApp::new(backend).await;
    for _ in 0..20 {
        assert_eq!(app.check(&app.app_key, PLAIN).await.0, 200);
    }
    assert_eq!(app.state.auth.bcrypt_verifications(), 1);
});

each_backend!(concurrent_first_requests_run_bcrypt_once_and_wrong_keys_are_remembered, |backend| {
    let app = std::sync::Arc::new(TestApp::new(backend).await);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move { app.check(&app.app_key, PLAIN).await.0 }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(app.state.auth.bcrypt_verifications(), 1, "one verification for 16 concurrent first uses");
    let wrong = format!("{}{}", &app.app_key[..app.app_key.len() - 4], "ZZZZ");
    for _ in 0..5 {
        assert_eq!(app.check(&wrong, PLAIN).await.0, 401);
    }
    assert_eq!(app.state.auth.bcrypt_verifications(), 2, "a repeated wrong key is refused without bcrypt");
});

/// A key whose bcrypt takes tens of milliseconds (cost 10), so a re-check
/// of the cache can start while it runs.
async fn slow_key(app: &TestApp, email: &str) -> warden_server::auth::NewToken {
    let customer = app.store.customer_for_email(email, "test").await.unwrap();
    let token = warden_server::auth::generate();
    let secret_hash = warden_server::auth::hash_secret(&token.secret, 10).unwrap();
    let key = warden_server::store::NewKey {
        id: token.id,
        customer_id: customer.id,
        name: "slow".into(),
        role: Role::App,
        secret_hash,
    };
    app.store.insert_key(&key, None).await.unwrap();
    token
}

/// Sends the key's first request and, once its bcrypt has started, runs
/// `during` (a re-check of the cache, a revocation…) while bcrypt runs.
/// Returns the first request's status.
async fn first_use_overlapping<F: std::future::Future<Output = ()>>(
    app: &std::sync::Arc<TestApp>,
    key: &str,
    during: F,
) -> u16 {
    let before = app.state.auth.bcrypt_verifications();
    let first = {
        let (app, key) = (app.clone(), key.to_owned());
        tokio::spawn(async move { app.check(&key, PLAIN).await.0 })
    };
    while app.state.auth.bcrypt_verifications() == before {
        tokio::task::yield_now().await;
    }
    during.await;
    first.await.unwrap()
}

each_backend!(a_key_verified_while_cached_keys_are_rechecked_is_remembered, |backend| {
    let app = std::sync::Arc::new(TestApp::new(backend).await);
    let token = slow_key(&app, "slow@example.com").await;
    let before = app.state.auth.bcrypt_verifications();
    let status = first_use_overlapping(&app, &token.token, async {
        app.state.auth.revalidate().await.unwrap();
    })
    .await;
    assert_eq!(status, 200);
    assert_eq!(app.check(&token.token, PLAIN).await.0, 200);
    assert_eq!(
        app.state.auth.bcrypt_verifications(),
        before + 1,
        "the key verified while the cache was re-checked is remembered: bcrypt ran once"
    );

    // A key deactivated while its bcrypt runs is not remembered.
    let revoked = slow_key(&app, "revoked@example.com").await;
    let status = first_use_overlapping(&app, &revoked.token, async {
        app.store.deactivate_key(revoked.id, None).await.unwrap();
        app.state.auth.revalidate().await.unwrap();
    })
    .await;
    assert_eq!(status, 200, "the request whose verification was under way is answered");
    assert_eq!(app.check(&revoked.token, PLAIN).await.0, 401, "but the key is not remembered");
});
