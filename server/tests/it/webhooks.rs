//! Webhooks on both backends, with a receiver on loopback started by the
//! test: a receiver that fails twice then succeeds gets each event exactly
//! once by `webhook-id`, and the signatures verify; a receiver down across
//! a Warden restart gets every event after; a burst of 10,000 blocks
//! arrives in batches of at most 500 within one request a second; two
//! instances never both deliver one message; endpoints are checked when
//! registered, never listed with their secret, and disabled (in the admin
//! trail) after repeated failures.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use base64::Engine as _;
use hmac::Mac as _;
use serde_json::{Value, json};
use uuid::Uuid;
use warden_server::server::Options;
use warden_server::store::{AuditRecord, Outcome, Role, Store};

use crate::support::{Instance, TestApp, create_key, fresh_url};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    path: String,
    headers: HeaderMap,
    body: String,
    answered: u16,
}

#[derive(Debug, Default)]
struct ReceiverState {
    /// Answer 500 to this many requests first.
    fail_first: usize,
    requests: Vec<Received>,
}

/// An HTTP server on loopback that records every request.
struct Receiver {
    addr: SocketAddr,
    state: Arc<Mutex<ReceiverState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(fail_first: usize) -> Self {
        Self::start_on(0, Arc::new(Mutex::new(ReceiverState { fail_first, ..ReceiverState::default() }))).await
    }

    async fn start_on(port: u16, state: Arc<Mutex<ReceiverState>>) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |req: Request<Body>| {
            let shared = shared.clone();
            async move {
                let path = req.uri().path().to_owned();
                let headers = req.headers().clone();
                let bytes = axum::body::to_bytes(req.into_body(), 10 << 20).await.unwrap();
                let mut s = shared.lock().unwrap();
                let answered = if s.fail_first > 0 {
                    s.fail_first -= 1;
                    500
                } else {
                    200
                };
                let body = String::from_utf8(bytes.to_vec()).unwrap();
                s.requests.push(Received { at: Instant::now(), path, headers, body, answered });
                StatusCode::from_u16(answered).unwrap()
            }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Received> {
        self.state.lock().unwrap().requests.clone()
    }

    fn stop(self) -> Arc<Mutex<ReceiverState>> {
        self.task.abort();
        self.state
    }
}

/// Options for fast tests: private addresses allowed (the receiver is on
/// loopback), short retries and polls. The one-request-a-second rule stays.
fn options() -> Options {
    Options {
        default_quota: warden_server::rate_limit::Quota { requests: 1_000_000, window: Duration::from_secs(60) },
        webhooks: warden_server::webhooks::Settings {
            allow_private: true,
            retry_base: Duration::from_millis(50),
            retry_max: Duration::from_millis(400),
            poll: Duration::from_millis(50),
            ..warden_server::webhooks::Settings::default()
        },
        ..TestApp::options()
    }
}

async fn call(instance: &Instance, key: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    instance.send(req).await
}

/// Registers an endpoint; returns its id and secret.
async fn register(instance: &Instance, admin: &str, url: &str, events: Value) -> (String, String) {
    let (status, body) =
        call(instance, admin, "POST", "/api/admin/webhooks", Some(json!({"url": url, "events": events}))).await;
    assert_eq!(status, 201, "{body}");
    (body["id"].as_str().unwrap().to_owned(), body["secret"].as_str().unwrap().to_owned())
}

fn blocked(i: usize) -> AuditRecord {
    AuditRecord {
        decision_id: Uuid::now_v7(),
        request_id: format!("burst-{i}"),
        customer_id: Uuid::new_v4(),
        api_key_id: Uuid::new_v4(),
        model: Some("gpt-4".into()),
        operation: Some("classify".into()),
        meta: json!({}),
        risk_score: 70,
        allowed: false,
        outcome: Outcome::Blocked,
        reason: "contains_personal_data".into(),
        policy_version: "v".into(),
        latency_us: 3,
        created_at: warden_server::store::now(),
        contributions: None,
        shadow: None,
    }
}

/// The events of the requests answered 200, by event id: how many times
/// each arrived under a distinct `webhook-id`.
fn delivered_events(requests: &[Received]) -> HashMap<String, usize> {
    let mut seen_messages = HashSet::new();
    let mut events = HashMap::new();
    for r in requests.iter().filter(|r| r.answered == 200) {
        let id = r.headers["webhook-id"].to_str().unwrap().to_owned();
        if !seen_messages.insert(id) {
            continue; // a redelivery of a message already received
        }
        let body: Value = serde_json::from_str(&r.body).unwrap();
        for e in body["data"]["events"].as_array().unwrap() {
            *events.entry(e["id"].as_str().unwrap().to_owned()).or_insert(0) += 1;
        }
    }
    events
}

async fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks a Standard Webhooks signature the way a receiver would.
fn signature_ok(secret: &str, r: &Received) -> bool {
    let key = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let id = r.headers["webhook-id"].to_str().unwrap();
    let ts = r.headers["webhook-timestamp"].to_str().unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{}", r.body).as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let ts: i64 = ts.parse().unwrap();
    (chrono::Utc::now().timestamp() - ts).abs() < 300
        && r.headers["webhook-signature"].to_str().unwrap().split(' ').any(|s| s == format!("v1,{expected}"))
}

each_backend!(a_receiver_failing_twice_gets_each_event_once_and_signatures_verify, |backend| {
    let (url, _cleanup) = fresh_url(backend).await;
    let warden = Instance::start_with(&url, &options()).await;
    let (admin, _, _) = create_key(&warden.state.store, "admin@example.com", Role::Admin).await;
    let (app, _, customer) = create_key(&warden.state.store, "app@example.com", Role::App).await;
    let receiver = Receiver::start(2).await;
    let (endpoint, secret) = register(&warden, &admin, &receiver.url("/hook"), json!(["*"])).await;
    assert!(secret.starts_with("whsec_"));
    // Three blocks, a rejection, an allowed decision (no event), a key.
    for body in [
        json!({"model": "gpt-4", "operation": "classify", "metadata": {"contains_personal_data": true}}),
        json!({"model": "gpt-4", "operation": "classify", "metadata": {"contains_personal_data": true}}),
        json!({"model": "gpt-4", "operation": "classify", "metadata": {"contains_personal_data": true}}),
        json!({"model": "gpt-4", "operation": "classify", "metadata": {"messages": [{"content": "x"}]}}),
        json!({"model": "gpt-4", "operation": "classify"}),
    ] {
        let (status, _) = call(&warden, &app, "POST", "/v1/check", Some(body)).await;
        assert!(status == 200 || status == 422);
    }
    let (status, _) =
        call(&warden, &admin, "POST", "/api/admin/keys", Some(json!({"name": "new", "customer_id": customer}))).await;
    assert_eq!(status, 201);
    wait_for("five events delivered", Duration::from_secs(30), || delivered_events(&receiver.requests()).len() == 5)
        .await;
    // A little longer: nothing more arrives.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let requests = receiver.requests();
    let events = delivered_events(&requests);
    assert!(events.values().all(|n| *n == 1), "an event under two webhook-ids: {events:?}");
    let failed: Vec<_> = requests.iter().filter(|r| r.answered == 500).collect();
    assert_eq!(failed.len(), 2);
    // Retries carry the same webhook-id and body as the first try.
    let first = &requests[0];
    assert!(
        requests
            .iter()
            .skip(1)
            .take(2)
            .all(|r| r.headers["webhook-id"] == first.headers["webhook-id"] && r.body == first.body)
    );
    for r in &requests {
        assert!(signature_ok(&secret, r), "signature of {:?}", r.headers);
        assert_eq!(r.headers["content-type"], "application/json");
    }
    let mut wrong = requests[0].clone();
    wrong.body.push(' ');
    assert!(!signature_ok(&secret, &wrong), "a changed body fails the check");
    // The kinds, and what a decision event holds.
    let kinds: Vec<String> = requests
        .iter()
        .filter(|r| r.answered == 200)
        .flat_map(|r| {
            let body: Value = serde_json::from_str(&r.body).unwrap();
            body["data"]["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["type"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "decision.blocked").count(), 3, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "decision.rejected").count(), 1, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "key.created").count(), 1, "{kinds:?}");
    let block = requests
        .iter()
        .flat_map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["data"]["events"].as_array().unwrap().clone())
        .find(|e| e["type"] == "decision.blocked")
        .unwrap();
    assert_eq!(block["data"]["reason"], "contains_personal_data");
    assert!(block["data"]["audit_chain_seq"].is_i64() && block["data"].get("meta").is_none(), "{block}");
    // The attempts are listed: two failures, then the delivery.
    let (status, attempts) =
        call(&warden, &admin, "GET", &format!("/api/admin/webhooks/{endpoint}/deliveries"), None).await;
    assert_eq!(status, 200, "{attempts}");
    let results: Vec<_> =
        attempts["items"].as_array().unwrap().iter().map(|a| (a["result"].clone(), a["status_code"].clone())).collect();
    assert!(results.ends_with(&[(json!("failed"), json!(500)), (json!("failed"), json!(500))]), "{attempts}");
    assert_eq!(
        results.iter().filter(|r| r.0 == "delivered").count(),
        requests.iter().filter(|r| r.answered == 200).count()
    );
    // The metrics count attempts by endpoint and result.
    let metrics = warden.state.metrics.render(0);
    let failed_line = format!("warden_webhook_deliveries_total{{endpoint=\"{endpoint}\",result=\"failed\"}} 2");
    assert!(metrics.contains(&failed_line), "{metrics}");
    assert!(
        metrics.contains("warden_webhook_queue_depth") && metrics.contains("warden_webhook_oldest_undelivered_seconds")
    );
    // Redelivering an attempt sends its message again, with the same id.
    let last = attempts["items"][0]["id"].as_i64().unwrap();
    let before = receiver.requests().len();
    let (status, _) =
        call(&warden, &admin, "POST", &format!("/api/admin/webhooks/{endpoint}/deliveries/{last}/redeliver"), None)
            .await;
    assert_eq!(status, 202);
    wait_for("the redelivery", Duration::from_secs(10), || receiver.requests().len() > before).await;
    let again = receiver.requests().last().unwrap().clone();
    assert_eq!(again.headers["webhook-id"].to_str().unwrap(), attempts["items"][0]["message_id"].as_str().unwrap());
    assert_eq!(delivered_events(&receiver.requests()), events, "de-duplicated by webhook-id, nothing new");
});

each_backend!(a_receiver_down_across_a_restart_gets_every_event_after, |backend| {
    let (url, _cleanup) = fresh_url(backend).await;
    let port = crate::support::free_port();
    let first = Instance::start_with(&url, &options()).await;
    let (admin, _, _) = create_key(&first.state.store, "admin@example.com", Role::Admin).await;
    register(&first, &admin, &format!("http://127.0.0.1:{port}/hook"), json!(["decision.blocked"])).await;
    let rows: Vec<AuditRecord> = (0..40).map(blocked).collect();
    first.state.store.insert_audit(&rows).await.unwrap();
    // The receiver is down: attempts fail (connection refused) and are retried.
    let store = first.state.store.clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    while attempts_of(&store).await < 2 {
        assert!(Instant::now() < deadline, "no attempt was made");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // More events while no instance runs (another process writes them).
    let other = Store::connect(&url).await.unwrap();
    other.insert_audit(&(40..60).map(blocked).collect::<Vec<_>>()).await.unwrap();
    let receiver = Receiver::start_on(port, Arc::new(Mutex::new(ReceiverState::default()))).await;
    let _second = Instance::start_with(&url, &options()).await;
    wait_for("all 60 events after the restart", Duration::from_secs(30), || {
        delivered_events(&receiver.requests()).len() == 60
    })
    .await;
    let events = delivered_events(&receiver.requests());
    assert!(events.values().all(|n| *n == 1));
    let ids: HashSet<String> = receiver
        .requests()
        .iter()
        .flat_map(|r| {
            let body: Value = serde_json::from_str(&r.body).unwrap();
            body["data"]["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["data"]["request_id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(ids, (0..60).map(|i| format!("burst-{i}")).collect::<HashSet<_>>());
    let _ = receiver.stop();
});

async fn attempts_of(store: &Store) -> i64 {
    let endpoints = store.list_webhooks(1, 10).await.unwrap();
    let mut n = 0;
    for e in endpoints.items {
        n += store.webhook_attempts(e.id, 1, 1).await.unwrap().total;
    }
    n
}

each_backend!(a_burst_of_10000_blocks_arrives_in_batches_within_the_rate, |backend| {
    let (url, _cleanup) = fresh_url(backend).await;
    let warden = Instance::start_with(&url, &options()).await;
    let (admin, _, _) = create_key(&warden.state.store, "admin@example.com", Role::Admin).await;
    let receiver = Receiver::start(0).await;
    register(&warden, &admin, &receiver.url("/burst"), json!(["decision.blocked", "decision.rejected"])).await;
    let rows: Vec<AuditRecord> = (0..10_000).map(blocked).collect();
    for batch in rows.chunks(512) {
        warden.state.store.insert_audit(batch).await.unwrap();
    }
    wait_for("10,000 events", Duration::from_secs(60), || delivered_events(&receiver.requests()).len() == 10_000).await;
    let requests = receiver.requests();
    assert!(delivered_events(&requests).values().all(|n| *n == 1));
    for r in &requests {
        let body: Value = serde_json::from_str(&r.body).unwrap();
        let n = body["data"]["events"].as_array().unwrap().len();
        assert!((1..=500).contains(&n), "a request with {n} events");
    }
    assert!(requests.len() >= 20, "10,000 events need at least 20 requests of 500");
    for pair in requests.windows(2) {
        let gap = pair[1].at - pair[0].at;
        // One request a second per endpoint (a little slack for the
        // receiver's own clock reading).
        assert!(gap >= Duration::from_millis(900), "two requests {gap:?} apart");
    }
});

each_backend!(two_instances_never_both_deliver_one_message, |backend| {
    let (url, _cleanup) = fresh_url(backend).await;
    let a = Instance::start_with(&url, &options()).await;
    let b = Instance::start_with(&url, &options()).await;
    let (admin, _, _) = create_key(&a.state.store, "admin@example.com", Role::Admin).await;
    let receiver = Receiver::start(0).await;
    for i in 0..4 {
        register(&a, &admin, &receiver.url(&format!("/e{i}")), json!(["*"])).await;
    }
    for round in 0..3 {
        let rows: Vec<AuditRecord> = (0..100).map(|i| blocked(round * 100 + i)).collect();
        a.state.store.insert_audit(&rows[..50]).await.unwrap();
        b.state.store.insert_audit(&rows[50..]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    // 300 events to each of 4 endpoints.
    let expected = 4 * 300;
    let count = |requests: &[Received]| -> usize {
        requests
            .iter()
            .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["data"]["events"].as_array().unwrap().len())
            .sum()
    };
    wait_for("every event at every endpoint", Duration::from_secs(30), || count(&receiver.requests()) >= expected)
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let requests = receiver.requests();
    let mut ids = HashSet::new();
    for r in &requests {
        let id = r.headers["webhook-id"].to_str().unwrap().to_owned();
        assert!(ids.insert(id.clone()), "message {id} delivered twice");
    }
    assert_eq!(count(&requests), expected, "each event once per endpoint");
    let per_path: HashMap<&str, usize> = requests.iter().fold(HashMap::new(), |mut m, r| {
        *m.entry(r.path.as_str()).or_insert(0) += 1;
        m
    });
    assert_eq!(per_path.len(), 4);
    drop((a, b));
});

each_backend!(endpoints_are_checked_and_one_that_keeps_failing_is_disabled, |backend| {
    let (url, _cleanup) = fresh_url(backend).await;
    let strict = Instance::start_with(&url, &TestApp::options()).await;
    let (admin, _, _) = create_key(&strict.state.store, "admin@example.com", Role::Admin).await;
    for (body, field) in [
        (json!({"url": "http://127.0.0.1:9/x", "events": ["*"]}), "url"),
        (json!({"url": "http://[::1]:9/x", "events": ["*"]}), "url"),
        (json!({"url": "ftp://example.com/x", "events": ["*"]}), "url"),
        (json!({"url": "not a url", "events": ["*"]}), "url"),
        (json!({"url": "https://example.com/x", "events": []}), "events"),
        (json!({"url": "https://example.com/x", "events": ["decision.allowed"]}), "events[0]"),
        (json!({"url": "https://example.com/x", "events": ["*"], "secret": "hunter2"}), "secret"),
        (
            json!({"url": "https://example.com/x", "events": ["*"], "filter": {"customers": ["nope"]}}),
            "filter.customers[0]",
        ),
        (json!({"url": "https://example.com/x\u{0}", "events": ["*"]}), "url"),
        (json!({"url": "https://example.com/x", "events": ["*"], "extra": 1}), "extra"),
    ] {
        let (status, answer) = call(&strict, &admin, "POST", "/api/admin/webhooks", Some(body.clone())).await;
        assert_eq!((status, answer["field"].as_str()), (422, Some(field)), "{body}: {answer}");
    }
    let (status, made) = call(
        &strict,
        &admin,
        "POST",
        "/api/admin/webhooks",
        Some(json!({
            "url": "https://example.com/hook", "events": ["decision.blocked"], "description": "siem",
            "secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", "filter": {"reasons": ["contains_personal_data"]},
        })),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["secret"], "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
    let (_, list) = call(&strict, &admin, "GET", "/api/admin/webhooks", None).await;
    assert_eq!(list["total"], 1);
    assert!(!list.to_string().contains("whsec_"), "listings never show the secret: {list}");
    let id = made["id"].as_str().unwrap();
    let (_, one) = call(&strict, &admin, "GET", &format!("/api/admin/webhooks/{id}"), None).await;
    assert!(one.get("secret").is_none() && one["filter"]["reasons"][0] == "contains_personal_data", "{one}");
    let (status, _) = call(&strict, &admin, "DELETE", &format!("/api/admin/webhooks/{id}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = call(&strict, &admin, "GET", &format!("/api/admin/webhooks/{id}"), None).await;
    assert_eq!(status, 404);
    drop(strict);

    // An endpoint that never answers is disabled after 3 failed attempts,
    // and the admin trail says so.
    let options =
        Options { webhooks: warden_server::webhooks::Settings { disable_after: 3, ..options().webhooks }, ..options() };
    let warden = Instance::start_with(&url, &options).await;
    let port = crate::support::free_port();
    let (id, _) = register(&warden, &admin, &format!("http://127.0.0.1:{port}/gone"), json!(["*"])).await;
    warden.state.store.insert_audit(&[blocked(1)]).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, e) = call(&warden, &admin, "GET", &format!("/api/admin/webhooks/{id}"), None).await;
        if e["active"] == false {
            assert!(e["disabled_reason"].as_str().unwrap().contains("3 consecutive failed attempts"), "{e}");
            break;
        }
        assert!(Instant::now() < deadline, "the endpoint was not disabled: {e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, trail) = call(&warden, &admin, "GET", "/api/admin/audit?page_size=5", None).await;
    let entry = trail["items"].as_array().unwrap().iter().find(|e| e["action"] == "webhook.disable").unwrap().clone();
    assert_eq!(entry["target"], id.as_str());
    let (_, attempts) = call(&warden, &admin, "GET", &format!("/api/admin/webhooks/{id}/deliveries"), None).await;
    assert_eq!(attempts["total"], 3);
    assert!(!attempts["items"][0]["error"].as_str().unwrap().is_empty());
    // Turned back on, with a receiver there now: the waiting event arrives.
    let receiver = Receiver::start_on(port, Arc::new(Mutex::new(ReceiverState::default()))).await;
    let (status, e) = call(&warden, &admin, "POST", &format!("/api/admin/webhooks/{id}/enable"), None).await;
    assert_eq!((status, e["active"].clone(), e["failures"].clone()), (200, json!(true), json!(0)), "{e}");
    wait_for("the waiting event", Duration::from_secs(20), || delivered_events(&receiver.requests()).len() == 1).await;
    let (_, trail) = call(&warden, &admin, "GET", "/api/admin/audit?page_size=5", None).await;
    assert!(trail["items"].as_array().unwrap().iter().any(|e| e["action"] == "webhook.enable"), "{trail}");
});
