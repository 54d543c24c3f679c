//! Test support: a fresh, migrated database per test (a temporary SQLite
//! file, or a Postgres schema of its own), an app built on it without a
//! port, and keys to call it with.
#![allow(dead_code)] // each test module uses a different part

use std::path::PathBuf;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use http_body_util::BodyExt as _;
use tokio::sync::watch;
use tower::ServiceExt as _;
use uuid::Uuid;
use warden_engine::Policy;
use warden_engine::SourceFile;
use warden_server::app::{AppState, router};
use warden_server::auth;
use warden_server::server::{Options, build_state};
use warden_server::store::{NewKey, Role, Store};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The Postgres URL for tests. CI sets it (and fails if Postgres is down);
/// elsewhere, without it, Postgres variants are skipped with a note.
pub fn postgres_url() -> Option<String> {
    std::env::var("WARDEN_TEST_POSTGRES_URL").ok().filter(|s| !s.is_empty())
}

/// The backends available here.
pub fn backends() -> Vec<Backend> {
    let mut b = vec![Backend::Sqlite];
    if postgres_url().is_some() {
        b.push(Backend::Postgres);
    } else {
        eprintln!("WARDEN_TEST_POSTGRES_URL is not set: skipping the Postgres variant");
    }
    b
}

/// The URL of a fresh, empty database (not migrated), and what to delete
/// afterwards: a temporary SQLite file, or a Postgres schema of its own.
pub async fn fresh_url(backend: Backend) -> (String, Cleanup) {
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(format!("warden-test-{}", Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir).unwrap();
            (format!("sqlite://{}", dir.join("warden.db").display()), Cleanup::Dir(dir))
        }
        Backend::Postgres => {
            let base = postgres_url().unwrap();
            let schema = format!("t_{}", Uuid::new_v4().simple());
            let admin = sqlx::PgPool::connect(&base).await.unwrap();
            sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&admin).await.unwrap();
            let sep = if base.contains('?') { '&' } else { '?' };
            (format!("{base}{sep}options=-c%20search_path%3D{schema}"), Cleanup::Schema(admin, schema))
        }
    }
}

/// A fresh, migrated store, and what to delete afterwards.
pub async fn fresh_store(backend: Backend) -> (Store, Cleanup) {
    let (url, cleanup) = fresh_url(backend).await;
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    (store, cleanup)
}

/// Removes a test's database when dropped (best effort).
pub enum Cleanup {
    Dir(PathBuf),
    Schema(sqlx::PgPool, String),
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        match self {
            Cleanup::Dir(d) => {
                let _ = std::fs::remove_dir_all(d);
            }
            Cleanup::Schema(pool, schema) => {
                let (pool, schema) = (pool.clone(), schema.clone());
                // Drop runs inside the test's runtime; clean up on a thread
                // with its own.
                let _ = std::thread::spawn(move || {
                    if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                        rt.block_on(async {
                            let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&pool).await;
                        });
                    }
                })
                .join();
            }
        }
    }
}

/// The shipped default policies.
pub fn default_policy() -> Policy {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies");
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        sources.push(SourceFile::new(
            path.file_name().unwrap().to_string_lossy().into_owned(),
            std::fs::read_to_string(&path).unwrap(),
        ));
    }
    Policy::from_sources(sources).unwrap().0
}

/// Compiles the policy files in `dir`.
pub fn policy_from(dir: &std::path::Path) -> Policy {
    let sources = warden_server::policy_files::load_dir(dir).unwrap();
    match Policy::from_sources(sources) {
        Ok((p, _)) => p,
        Err(e) => panic!("{:?}", e.iter().map(ToString::to_string).collect::<Vec<_>>()),
    }
}

/// A temporary copy of the default policy directory.
pub fn policy_dir_copy() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("warden-policies-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies");
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    dir
}

/// Creates a key for a (new or existing) customer; bcrypt at its minimum
/// cost so tests stay fast.
pub async fn create_key(store: &Store, email: &str, role: Role) -> (String, Uuid, Uuid) {
    let customer = store.customer_for_email(email, "test").await.unwrap();
    let token = auth::generate();
    let hash = auth::hash_secret(&token.secret, 4).unwrap();
    store
        .insert_key(
            &NewKey { id: token.id, customer_id: customer.id, name: "test".into(), role, secret_hash: hash },
            None,
        )
        .await
        .unwrap();
    (token.token, token.id, customer.id)
}

/// An app on a fresh database, with its audit writer running.
pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub store: Store,
    pub app_key: String,
    pub app_key_id: Uuid,
    pub admin_key: String,
    pub customer_id: Uuid,
    stop: watch::Sender<bool>,
    writer: Option<tokio::task::JoinHandle<u64>>,
    _cleanup: Cleanup,
}

impl TestApp {
    pub async fn new(backend: Backend) -> Self {
        Self::with_options(backend, Self::options()).await
    }

    /// Test options: bcrypt at its minimum cost, so tests stay fast.
    pub fn options() -> Options {
        Options { bcrypt_cost: 4, ..Options::default() }
    }

    pub async fn with_options(backend: Backend, options: Options) -> Self {
        let (store, cleanup) = fresh_store(backend).await;
        let (app_key, app_key_id, customer_id) = create_key(&store, "app@example.com", Role::App).await;
        let (admin_key, _, _) = create_key(&store, "admin@example.com", Role::Admin).await;
        let policy = match &options.policy_dir {
            Some(dir) => policy_from(dir),
            None => default_policy(),
        };
        let (state, writer) = build_state(store.clone(), policy, &options).await.unwrap();
        let (stop, rx) = watch::channel(false);
        let writer = tokio::spawn(writer.run(rx));
        Self {
            router: router(state.clone()),
            state,
            store,
            app_key,
            app_key_id,
            admin_key,
            customer_id,
            stop,
            writer: Some(writer),
            _cleanup: cleanup,
        }
    }

    /// Sends a request through the router (no port).
    pub async fn send(&self, req: Request<Body>) -> (u16, axum::http::HeaderMap, serde_json::Value) {
        let response: Response<Body> = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, headers, body)
    }

    /// POSTs JSON text to `/v1/check` with `key`.
    pub async fn check(&self, key: &str, body: &str) -> (u16, axum::http::HeaderMap, serde_json::Value) {
        let req = Request::post("/v1/check")
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        self.send(req).await
    }

    /// Stops the audit writer after it drains; returns rows written.
    pub async fn drain_audit(&mut self) -> u64 {
        let _ = self.stop.send(true);
        match self.writer.take() {
            Some(h) => h.await.unwrap(),
            None => 0,
        }
    }
}

/// Runs `body` once per available backend.
macro_rules! each_backend {
    ($name:ident, |$backend:ident| $body:block) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            for $backend in crate::support::backends() {
                $body
            }
        }
    };
}

/// A complete service instance on an existing database, with its audit
/// writer and background tasks (change propagation) running: what one
/// `warden serve` process holds.
pub struct Instance {
    pub router: Router,
    pub state: AppState,
    stop: watch::Sender<bool>,
}

impl Instance {
    pub async fn start(url: &str) -> Self {
        let store = Store::connect(url).await.unwrap();
        store.migrate().await.unwrap();
        let (state, writer) = build_state(store, default_policy(), &TestApp::options()).await.unwrap();
        let (stop, rx) = watch::channel(false);
        tokio::spawn(writer.run(rx.clone()));
        warden_server::server::spawn_background(&state, rx);
        Self { router: router(state.clone()), state, stop }
    }

    pub async fn send(&self, req: Request<Body>) -> (u16, serde_json::Value) {
        let response: Response<Body> = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Instance {
    /// [`Instance::start`] with the given options (Redis, quotas, …).
    pub async fn start_with(url: &str, options: &Options) -> Self {
        let store = Store::connect(url).await.unwrap();
        store.migrate().await.unwrap();
        let policy = options.policy_dir.as_deref().map_or_else(default_policy, policy_from);
        let (state, writer) = build_state(store, policy, options).await.unwrap();
        let (stop, rx) = watch::channel(false);
        tokio::spawn(writer.run(rx.clone()));
        warden_server::server::spawn_background(&state, rx);
        Self { router: router(state.clone()), state, stop }
    }

    /// Sends a request and returns its status, headers and body.
    pub async fn send_full(&self, req: Request<Body>) -> (u16, axum::http::HeaderMap, serde_json::Value) {
        let response: Response<Body> = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }
}

/// The Redis URL for tests. CI sets it (and fails if Redis is down);
/// elsewhere, without it, Redis tests are skipped with a note.
pub fn redis_url() -> Option<String> {
    let url = std::env::var("WARDEN_TEST_REDIS_URL").ok().filter(|s| !s.is_empty());
    if url.is_none() {
        eprintln!("WARDEN_TEST_REDIS_URL is not set: skipping a Redis test");
    }
    url
}

/// A Redis key prefix of the test's own, so tests sharing a Redis never
/// see each other's keys.
pub fn redis_prefix() -> String {
    format!("warden-test:{}:", Uuid::new_v4().simple())
}

/// Test options sharing limits through the Redis at `url`. The wait for
/// Redis is 1 s, not the service's 20 ms: a machine busy with builds must
/// not turn a slow answer into the fallback (tests of the fallback stop
/// Redis or point at a closed port).
pub fn redis_options(url: &str) -> Options {
    Options {
        redis_url: Some(url.to_owned()),
        redis_key_prefix: redis_prefix(),
        redis_timeout: std::time::Duration::from_secs(1),
        ..TestApp::options()
    }
}

/// A request as if sent from `ip` (the listener sets the peer address the
/// same way).
pub fn from_address(mut req: Request<Body>, ip: [u8; 4]) -> Request<Body> {
    let addr = std::net::SocketAddr::from((ip, 40000));
    req.extensions_mut().insert(axum::extract::ConnectInfo(addr));
    req
}

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A private `redis-server` on a port of its own, for tests that stop and
/// restart Redis; the machine's Redis is never touched. Killed when dropped.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    /// Starts one on a free port, if `redis-server` is installed.
    pub fn start() -> Option<Self> {
        let mut redis = Self { port: free_port(), child: None };
        redis.restart().then_some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts it on the same port, empty; waits until it answers.
    pub fn restart(&mut self) -> bool {
        self.stop();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let Ok(child) = child else {
            eprintln!("redis-server is not installed: skipping a test that stops Redis");
            return false;
        };
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if self.answers() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("the private redis-server on port {} did not start", self.port);
    }

    /// Whether it answers PING (a raw RESP exchange: no client needed).
    pub fn answers(&self) -> bool {
        use std::io::{Read as _, Write as _};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = s.set_read_timeout(Some(std::time::Duration::from_millis(200)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// Kills it (SIGKILL: connections drop at once) and waits for the exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A blocked decision's audit record made at `created_at`, for storage tests.
pub fn audit_record(created_at: chrono::DateTime<chrono::Utc>) -> warden_server::store::AuditRecord {
    warden_server::store::AuditRecord {
        decision_id: Uuid::now_v7(),
        request_id: "r".into(),
        customer_id: Uuid::new_v4(),
        api_key_id: Uuid::new_v4(),
        model: Some("gpt-4".into()),
        operation: Some("classify".into()),
        meta: serde_json::json!({"metadata.contains_personal_data": true}),
        risk_score: 70,
        allowed: false,
        outcome: warden_server::store::Outcome::Blocked,
        reason: "contains_personal_data".into(),
        policy_version: "v".into(),
        latency_us: 12,
        created_at,
        contributions: Some(vec![warden_server::store::Contribution {
            rule: "contains_personal_data".into(),
            score: 70,
        }]),
        shadow: None,
    }
}
