//! Several instances sharing rate limits through Redis: one key's quota
//! holds across three instances (and is three times as large without
//! Redis), a Redis stopped under load falls back without an error answer
//! and the shared limits resume within two seconds of its return, and each
//! fallback policy does what it says when Redis can't be reached.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use warden_server::rate_limit::{BackendState, OnRedisError, Quota};
use warden_server::server::Options;
use warden_server::store::Role;

use crate::support::{Backend, Instance, PrivateRedis, TestApp};

const ALLOWED: &str = r#"{"model":"gpt-4","operation":"classify","metadata":{}}"#;

fn check(key: &str) -> Request<Body> {
    Request::post("/v1/check").header("authorization", format!("Bearer {key}")).body(Body::from(ALLOWED)).unwrap()
}

/// Sends `n` requests for `key`, round-robin over `instances`; returns how
/// many were allowed and how long it took. Anything but 200 or 429 fails.
async fn round_robin(instances: &[Instance], key: &str, n: usize) -> (usize, Duration) {
    let started = Instant::now();
    let mut allowed = 0;
    for i in 0..n {
        let (status, body) = instances[i % instances.len()].send(check(key)).await;
        assert!(status == 200 || status == 429, "request {i}: {status} {body}");
        allowed += usize::from(status == 200);
    }
    (allowed, started.elapsed())
}

/// The database every instance of a test shares: Postgres when the tests
/// have it, else one SQLite file.
fn shared_backend() -> Backend {
    if crate::support::postgres_url().is_some() { Backend::Postgres } else { Backend::Sqlite }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_one_quota_through_redis_and_triple_it_without() {
    let Some(redis) = crate::support::redis_url() else { return };
    let backend = shared_backend();
    let (url, _cleanup) = crate::support::fresh_url(backend).await;
    let quota = Quota { requests: 300, window: Duration::from_secs(60) };
    // One request frees every 200 ms: a run of t seconds may allow 300 + 5t.
    let refill = |took: Duration| (took.as_secs_f64() / 0.2).floor() as usize;

    let shared = Options { default_quota: quota, ..crate::support::redis_options(&redis) };
    let fleet = [
        Instance::start_with(&url, &shared).await,
        Instance::start_with(&url, &shared).await,
        Instance::start_with(&url, &shared).await,
    ];
    let (key, _, _) = crate::support::create_key(&fleet[0].state.store, "fleet@example.com", Role::App).await;
    let (allowed, took) = round_robin(&fleet, &key, 1200).await;
    eprintln!("{backend:?} + Redis: {allowed} of 1200 allowed across 3 instances in {took:?} (quota 300 per 60 s)");
    assert!((285..=315).contains(&allowed), "with Redis: {allowed} allowed, expected 300 ± 5% (took {took:?})");
    assert!(allowed <= 300 + refill(took), "never more than the quota plus what the run's time refilled");
    for instance in &fleet {
        let status = instance.state.limiter.status();
        assert_eq!((status.state, status.redis_failures), (BackendState::Redis, 0), "every answer came from Redis");
    }

    let local = Options { default_quota: quota, ..TestApp::options() };
    let apart = [
        Instance::start_with(&url, &local).await,
        Instance::start_with(&url, &local).await,
        Instance::start_with(&url, &local).await,
    ];
    let (key, _, _) = crate::support::create_key(&apart[0].state.store, "apart@example.com", Role::App).await;
    let (allowed, took) = round_robin(&apart, &key, 1200).await;
    eprintln!("{backend:?}, no Redis: {allowed} of 1200 allowed across 3 instances in {took:?}");
    assert!((855..=945).contains(&allowed), "without Redis: {allowed} allowed, expected 900 ± 5% (took {took:?})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_under_load_falls_back_and_shared_limits_resume_within_two_seconds() {
    let Some(mut redis) = PrivateRedis::start() else { return };
    let (url, _cleanup) = crate::support::fresh_url(Backend::Sqlite).await;
    // One request frees every 30 s: nothing refills during the test.
    let quota = Quota { requests: 20, window: Duration::from_secs(600) };
    let options = Options { default_quota: quota, ..crate::support::redis_options(&redis.url()) };
    let pair = Arc::new([Instance::start_with(&url, &options).await, Instance::start_with(&url, &options).await]);
    let (key, _, _) = crate::support::create_key(&pair[0].state.store, "outage@example.com", Role::App).await;
    let (allowed, _) = round_robin(&pair[..], &key, 30).await;
    assert_eq!(allowed, 20, "shared through Redis: one quota for both instances");

    // Load on both instances for the rest of the test.
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (pair, statuses, stop, key) = (pair.clone(), statuses.clone(), stop.clone(), key.clone());
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut i = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                let (status, _) = pair[i % 2].send(check(&key)).await;
                statuses.lock().unwrap().push((Instant::now(), status));
                i += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    redis.stop();
    let stopped = Instant::now();
    let both = |state: BackendState| pair.iter().all(|i| i.state.limiter.status().state == state);
    while !both(BackendState::Error) {
        assert!(stopped.elapsed() < Duration::from_secs(5), "the outage was not noticed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The fallback (each instance's own limiter) answers: the key, spent in
    // Redis, gets requests through again, at most a quota per instance.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = pair[0].send(Request::get("/ready").body(Body::empty()).unwrap()).await;
    assert_eq!(status, 200, "/ready stays 200 while Redis is down: {body}");
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["checks"]["rate_limit"]["state"], "error", "{body}");
    let metrics = pair[0].state.metrics.render(0);
    assert!(metrics.contains("warden_rate_limit_backend{state=\"error\"} 1"), "{metrics}");

    let restarted = Instant::now();
    assert!(redis.restart());
    while !both(BackendState::Redis) {
        assert!(
            restarted.elapsed() < Duration::from_secs(2),
            "shared limits did not resume within 2 s of Redis returning"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let resumed = restarted.elapsed();
    eprintln!("Redis back: both instances share limits again after {resumed:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.await.unwrap();

    let statuses = statuses.lock().unwrap().clone();
    assert!(statuses.iter().all(|(_, s)| *s == 200 || *s == 429), "only 200 and 429 under load: {statuses:?}");
    let during = statuses.iter().filter(|(at, s)| *at > stopped && *at < restarted && *s == 200).count();
    assert!((1..=40).contains(&during), "the local fallback allowed {during} during the outage (1..=40 expected)");
    // Shared again: a new key gets one quota across both instances.
    let (fresh, _, _) = crate::support::create_key(&pair[0].state.store, "after@example.com", Role::App).await;
    let (allowed, _) = round_robin(&pair[..], &fresh, 30).await;
    assert_eq!(allowed, 20, "after Redis returned the quota is shared again");
}

/// An app whose Redis is unreachable (a closed port) from the start.
async fn unreachable_redis(on_error: OnRedisError) -> TestApp {
    let options = Options {
        default_quota: Quota { requests: 3, window: Duration::from_secs(600) },
        rate_limit_on_redis_error: on_error,
        ..crate::support::redis_options(&format!("redis://127.0.0.1:{}", crate::support::free_port()))
    };
    TestApp::with_options(Backend::Sqlite, options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fallback_policy_applies_while_redis_is_unreachable() {
    let app = unreachable_redis(OnRedisError::Local).await;
    let statuses: Vec<u16> = {
        let mut s = Vec::new();
        for _ in 0..5 {
            s.push(app.check(&app.app_key, ALLOWED).await.0);
        }
        s
    };
    assert_eq!(statuses, [200, 200, 200, 429, 429], "local: this instance's own limiter");
    assert_eq!(app.state.limiter.status().state, BackendState::Error);

    let app = unreachable_redis(OnRedisError::Allow).await;
    for _ in 0..5 {
        assert_eq!(app.check(&app.app_key, ALLOWED).await.0, 200, "allow: no limit");
    }

    let app = unreachable_redis(OnRedisError::Deny).await;
    let (status, headers, body) = app.check(&app.app_key, ALLOWED).await;
    assert_eq!(status, 429, "deny: {body}");
    assert_eq!(headers["retry-after"], "1");
}
