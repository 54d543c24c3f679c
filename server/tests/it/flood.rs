//! A flood of wrong secrets for one key id: bcrypt runs at most the
//! configured number of times per window (across instances when they share
//! Redis), the rest get 429 with `Retry-After` without bcrypt, and the
//! right key keeps working from another address, cached or not.

use axum::body::Body;
use axum::http::Request;
use warden_server::server::Options;
use warden_server::store::Role;

use crate::support::{Backend, Instance, TestApp, from_address};

const ALLOWED: &str = r#"{"model":"gpt-4","operation":"classify","metadata":{}}"#;
const ATTACKER: [u8; 4] = [192, 0, 2, 66];
const HOLDER: [u8; 4] = [198, 51, 100, 7];

fn check(key: &str, from: [u8; 4]) -> Request<Body> {
    let req =
        Request::post("/v1/check").header("authorization", format!("Bearer {key}")).body(Body::from(ALLOWED)).unwrap();
    from_address(req, from)
}

/// A key with the right id and a (new) wrong secret.
fn wrong_secret(key_id: uuid::Uuid) -> String {
    format!("wdn_{}_{}", key_id.simple(), warden_server::auth::generate().secret)
}

/// `warden_auth_failures_total{reason}` summed over `instances`.
fn failures(instances: &[&Instance], reason: &str) -> u64 {
    let line = format!("warden_auth_failures_total{{reason=\"{reason}\"}} ");
    instances
        .iter()
        .map(|i| {
            let text = i.state.metrics.render(0);
            text.lines().find_map(|l| l.strip_prefix(&line)).map_or(0, |v| v.parse::<u64>().unwrap())
        })
        .sum()
}

fn bcrypt_runs(instances: &[&Instance]) -> u64 {
    instances.iter().map(|i| i.state.auth.bcrypt_verifications()).sum()
}

/// Sends 40 distinct wrong secrets from the attacker, round-robin over
/// `instances`; every answer is 401 or 429 (with `Retry-After`).
async fn flood(instances: &[&Instance], key_id: uuid::Uuid) -> (usize, usize) {
    let (mut refused, mut throttled) = (0, 0);
    for i in 0..40 {
        let (status, headers, body) =
            instances[i % instances.len()].send_full(check(&wrong_secret(key_id), ATTACKER)).await;
        match status {
            401 => refused += 1,
            429 => {
                throttled += 1;
                let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
                assert!((1..=60).contains(&retry), "Retry-After {retry}");
                assert_eq!(body["error"], "too_many_failures", "{body}");
            }
            other => panic!("wrong secret {i}: {other} {body}"),
        }
    }
    (refused, throttled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_wrong_secrets_runs_bcrypt_at_most_the_limit_on_one_instance() {
    let (url, _cleanup) = crate::support::fresh_url(Backend::Sqlite).await;
    let instance = Instance::start_with(&url, &TestApp::options()).await;
    let (key, key_id, _) = crate::support::create_key(&instance.state.store, "victim@example.com", Role::App).await;
    assert_eq!(instance.send_full(check(&key, HOLDER)).await.0, 200, "the holder's key, verified and cached");
    let before = bcrypt_runs(&[&instance]);

    let (refused, throttled) = flood(&[&instance], key_id).await;
    assert_eq!((refused, throttled), (10, 30), "10 failures a minute per key id, then 429");
    assert_eq!(bcrypt_runs(&[&instance]) - before, 10, "bcrypt ran once per allowed failure");
    assert_eq!(failures(&[&instance], "wrong_secret"), 10);
    assert_eq!(failures(&[&instance], "throttled"), 30);
    assert_eq!(instance.send_full(check(&key, HOLDER)).await.0, 200, "the cached key is never throttled");
    // The attacker's own address is over its limit too, for any key.
    let (other, _, _) = crate::support::create_key(&instance.state.store, "other@example.com", Role::App).await;
    assert_eq!(instance.send_full(check(&other, ATTACKER)).await.0, 429);
    assert_eq!(instance.send_full(check(&other, HOLDER)).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_shared_through_redis_runs_bcrypt_at_most_the_limit_across_instances() {
    let Some(redis) = crate::support::redis_url() else { return };
    let (url, _cleanup) = crate::support::fresh_url(Backend::Sqlite).await;
    let options: Options = crate::support::redis_options(&redis);
    let x = Instance::start_with(&url, &options).await;
    let y = Instance::start_with(&url, &options).await;
    let (key, key_id, _) = crate::support::create_key(&x.state.store, "victim@example.com", Role::App).await;
    assert_eq!(x.send_full(check(&key, HOLDER)).await.0, 200, "cached on X");
    let before = bcrypt_runs(&[&x, &y]);

    let (refused, throttled) = flood(&[&x, &y], key_id).await;
    assert_eq!((refused, throttled), (10, 30), "one limit for both instances");
    assert_eq!(bcrypt_runs(&[&x, &y]) - before, 10, "bcrypt ran 10 times across both instances");
    assert_eq!(failures(&[&x, &y], "wrong_secret"), 10);

    // The holder: cached on X; on Y never verified, yet its address has no
    // failures, so the key id's lock lets it through (one pass per 5 s).
    assert_eq!(x.send_full(check(&key, HOLDER)).await.0, 200);
    let (status, _, body) = y.send_full(check(&key, HOLDER)).await;
    assert_eq!(status, 200, "the right key from a clean address, not cached: {body}");
    assert_eq!(y.send_full(check(&key, HOLDER)).await.0, 200, "and then cached");
    // A third instance, cold: the attacker's address stays locked out, even
    // with the right key; a clean address gets through (the pass was given
    // back by the holder's success).
    let z = Instance::start_with(&url, &options).await;
    assert_eq!(z.send_full(check(&key, ATTACKER)).await.0, 429);
    assert_eq!(z.send_full(check(&key, [203, 0, 113, 1])).await.0, 200);
    // The status endpoint shows the backend and the counts.
    let (admin, _, _) = crate::support::create_key(&x.state.store, "ops@example.com", Role::Admin).await;
    let req = Request::get("/api/admin/status").header("authorization", format!("Bearer {admin}")).body(Body::empty());
    let (status, _, body) = x.send_full(from_address(req.unwrap(), HOLDER)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rate_limit"]["backend"], "redis", "{body}");
    assert_eq!(body["rate_limit"]["state"], "redis", "{body}");
    for instance in [&x, &y, &z] {
        assert_eq!(instance.state.limiter.status().redis_failures, 0, "every Redis call answered");
    }
    let on_x = failures(&[&x], "wrong_secret");
    assert_eq!(body["rate_limit"]["auth_failures"]["wrong_secret"], on_x, "{body}");
}

/// One `POST /v1/check` over real TCP; returns the status.
async fn over_tcp(addr: std::net::SocketAddr, key: &str) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /v1/check HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{ALLOWED}",
        ALLOWED.len()
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    answer.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_tells_the_flood_guard_each_clients_address() {
    let app = TestApp::new(Backend::Sqlite).await;
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(warden_server::listener::serve(
        socket,
        warden_server::app::router(app.state.clone()),
        warden_server::listener::Limits::default(),
        app.state.metrics.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    let unknown = || format!("wdn_{}_{}", uuid::Uuid::new_v4().simple(), warden_server::auth::generate().secret);
    // Ten unknown key ids from 127.0.0.1 spend its budget …
    for _ in 0..10 {
        assert_eq!(over_tcp(addr, &unknown()).await, 401);
    }
    assert_eq!(over_tcp(addr, &unknown()).await, 429, "127.0.0.1 is over its limit");
    // … and only its own: a request with no address (in process) or from
    // another one is not refused for it.
    assert_eq!(app.check(&unknown(), ALLOWED).await.0, 401);
    let (status, _, _) = app.send(check(&unknown(), HOLDER)).await;
    assert_eq!(status, 401);
    let _ = stop.send(());
    served.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_proxy_each_forwarded_client_has_its_own_budget() {
    let options = Options { client_address_header: Some("x-forwarded-for".to_owned()), ..TestApp::options() };
    let app = TestApp::with_options(Backend::Sqlite, options).await;
    let unknown = || format!("wdn_{}_{}", uuid::Uuid::new_v4().simple(), warden_server::auth::generate().secret);
    // Every request arrives from the proxy; the header names the client.
    let via_proxy = |forwarded: &str| {
        let req = Request::post("/v1/check")
            .header("authorization", format!("Bearer {}", unknown()))
            .header("x-forwarded-for", forwarded)
            .body(Body::from(ALLOWED))
            .unwrap();
        from_address(req, [10, 0, 0, 1])
    };
    for _ in 0..10 {
        assert_eq!(app.send(via_proxy("203.0.113.5")).await.0, 401);
    }
    assert_eq!(app.send(via_proxy("203.0.113.5")).await.0, 429, "the client is over its limit");
    // Another client through the same proxy is not; only the entry the
    // proxy added (the last) counts, not what the client wrote before it.
    assert_eq!(app.send(via_proxy("203.0.113.5, 203.0.113.6")).await.0, 401);
    assert_eq!(app.send(via_proxy("203.0.113.6, 203.0.113.5")).await.0, 429);
}
