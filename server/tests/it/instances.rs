//! Two instances on one database see each other's changes within a second:
//! overrides through Postgres LISTEN/NOTIFY (or SQLite's change-counter
//! poll), and key revocations including cached verifications.

use std::time::{Duration, Instant};

use crate::support::Instance;
use axum::body::Body;
use axum::http::Request;
use serde_json::json;
use warden_server::store::Role;

const EXT: &str = r#"{"model":"gpt-4","operation":"classify","metadata":{"is_external_model":true}}"#;

fn check(key: &str) -> Request<Body> {
    Request::post("/v1/check").header("authorization", format!("Bearer {key}")).body(Body::from(EXT)).unwrap()
}

/// Polls `probe` until it returns true; returns how long that took.
async fn within<F, Fut>(limit: Duration, mut probe: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if probe().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit * 3, "not seen after {:?}", start.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

each_backend!(instances_see_each_others_overrides_and_revocations_within_a_second, |backend| {
    let (url, _cleanup) = crate::support::fresh_url(backend).await;
    let a = Instance::start(&url).await;
    let b = Instance::start(&url).await;
    let (key, key_id, customer) = crate::support::create_key(&a.state.store, "app@example.com", Role::App).await;
    let (admin_key, _, _) = crate::support::create_key(&a.state.store, "admin@example.com", Role::Admin).await;
    // B verifies (and caches) the key, and blocks external models.
    let (status, decision) = b.send(check(&key)).await;
    assert_eq!((status, decision["allowed"].as_bool()), (200, Some(false)));

    // An override made through A's admin API.
    let req = Request::put(format!("/api/admin/customers/{customer}/policies/external_model"))
        .header("authorization", format!("Bearer {admin_key}"))
        .body(Body::from(json!({"enabled": false}).to_string()))
        .unwrap();
    assert_eq!(a.send(req).await.0, 200);
    assert_eq!(a.send(check(&key)).await.1["allowed"], json!(true), "A applies it to its next request");
    let took = within(Duration::from_secs(1), || async { b.send(check(&key)).await.1["allowed"] == json!(true) }).await;
    assert!(took < Duration::from_secs(1), "{backend:?}: B saw the override after {took:?}");
    eprintln!("{backend:?}: override visible on the other instance after {took:?}");

    // A key deleted through A stops working on B, cached or not.
    let req = Request::delete(format!("/api/admin/keys/{key_id}"))
        .header("authorization", format!("Bearer {admin_key}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(a.send(req).await.0, 204);
    assert_eq!(a.send(check(&key)).await.0, 401);
    let took = within(Duration::from_secs(1), || async { b.send(check(&key)).await.0 == 401 }).await;
    assert!(took < Duration::from_secs(1), "{backend:?}: B still accepted the deleted key after {took:?}");
    eprintln!("{backend:?}: revocation visible on the other instance after {took:?}");
});

each_backend!(a_rotation_grace_period_ends_on_every_instance, |backend| {
    let (url, _cleanup) = crate::support::fresh_url(backend).await;
    let a = Instance::start(&url).await;
    let b = Instance::start(&url).await;
    let (old_key, key_id, _) = crate::support::create_key(&a.state.store, "app@example.com", Role::App).await;
    let (admin_key, _, _) = crate::support::create_key(&a.state.store, "admin@example.com", Role::Admin).await;
    assert_eq!(b.send(check(&old_key)).await.0, 200, "B caches the old secret");
    let req = Request::post(format!("/api/admin/keys/{key_id}/rotate"))
        .header("authorization", format!("Bearer {admin_key}"))
        .body(Body::from(json!({"grace_seconds": 2}).to_string()))
        .unwrap();
    let (status, rotated) = a.send(req).await;
    assert_eq!(status, 200);
    let new_key = rotated["key"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(b.send(check(&old_key)).await.0, 200, "the old secret works during the grace period");
    assert_eq!(b.send(check(&new_key)).await.0, 200);
    let grace_end = Instant::now() + Duration::from_millis(1600);
    tokio::time::sleep_until(grace_end.into()).await;
    let took = within(Duration::from_secs(1), || async { b.send(check(&old_key)).await.0 == 401 }).await;
    assert!(took < Duration::from_secs(1), "{backend:?}: B accepted the old secret {took:?} after the grace period");
    assert_eq!(b.send(check(&new_key)).await.0, 200);
});
