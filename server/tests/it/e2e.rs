//! End to end: the real binary on a free port, keys made with the CLI, every
//! endpoint called over TCP, then SIGTERM, then every decision found in the
//! audit table. On SQLite and on Postgres.

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::Backend;
use serde_json::{Value, json};
use warden_server::store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_warden");

/// One request with a real HTTP client; any status is an answer, not an
/// error. The body is JSON when it parses, else its text.
fn http(port: u16, method: &str, path: &str, key: Option<&str>, body: &str) -> (u16, ureq::http::HeaderMap, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut request = ureq::http::Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:{port}{path}"))
        .header("content-type", "application/json");
    if let Some(k) = key {
        request = request.header("authorization", format!("Bearer {k}"));
    }
    let mut response = agent.run(request.body(body.to_owned()).unwrap()).unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, response.headers().clone(), json)
}

/// Waits (at most 20 s) for the server to accept connections on `port`.
fn wait_until_listening(port: u16) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn create_key(url: &str, email: &str, admin: bool) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(["keys", "create", "--customer", email, "--name", "e2e", "--database-url", url])
        .env("WARDEN_BCRYPT_COST", "4");
    if admin {
        cmd.arg("--admin");
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = stdout.lines().last().unwrap().to_owned();
    assert!(key.starts_with("wdn_"), "the key is alone on the last line: {stdout}");
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_every_endpoint_and_audits_every_decision_before_exiting() {
    for backend in crate::support::backends() {
        run(backend).await;
    }
}

async fn run(backend: Backend) {
    let (url, _cleanup) = crate::support::fresh_url(backend).await;
    let app_key = create_key(&url, "e2e@example.com", false);
    let admin_key = create_key(&url, "ops@example.com", true);
    let listed = Command::new(BIN).args(["keys", "list", "--database-url", &url]).output().unwrap();
    let listing = String::from_utf8(listed.stdout).unwrap();
    assert!(listing.contains("e2e@example.com") && listing.contains("admin"));
    assert!(!listing.contains(&app_key[37..]), "keys list never shows secrets");

    let port = free_port();
    let log_path = std::env::temp_dir().join(format!("warden-e2e-{port}.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--database-url", &url, "--log-format", "json"])
        .args(["--policies", concat!(env!("CARGO_MANIFEST_DIR"), "/../policies")])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    wait_until_listening(port);

    assert_eq!(http(port, "GET", "/health", None, "").2, json!({"status": "ok"}));
    let (status, _, ready) = http(port, "GET", "/ready", None, "");
    assert_eq!(status, 200, "{ready}");
    let mut decisions = Vec::new();
    for (body, expected) in [
        (r#"{"model":"gpt-4","operation":"classify","metadata":{"contains_personal_data":false}}"#, 200),
        (r#"{"model":"gpt-4","operation":"classify","metadata":{"contains_personal_data":true}}"#, 200),
        (r#"{"model":"gpt-4","operation":"classify","metadata":{"prompt":"my secret prompt"}}"#, 422),
        (r#"{"model":"gpt-4","operation":"classify","metadata":{"is_external_model":"yes"}}"#, 422),
        ("{oops", 400),
    ] {
        let (status, head, answer) = http(port, "POST", "/v1/check", Some(&app_key), body);
        assert_eq!(status, expected, "{answer}");
        assert!(head.contains_key("x-request-id"));
        if let Some(id) = answer.get("decision_id").and_then(Value::as_str) {
            decisions.push(id.to_owned());
        }
    }
    assert_eq!(decisions.len(), 4, "every 200 and 422 carries a decision id");
    assert_eq!(http(port, "POST", "/v1/check", None, "{}").0, 401);
    let (status, _, answer) = http(port, "POST", "/api/evaluate", Some(&admin_key), "");
    assert_eq!((status, answer["status"].as_str()), (200, Some("ok")));
    let (status, _, metrics) = http(port, "GET", "/metrics", None, "");
    assert_eq!(status, 200);
    assert!(metrics.as_str().unwrap().contains("warden_decisions_total"));
    let (status, _, doc) = http(port, "GET", "/openapi.json", None, "");
    assert_eq!(
        (status, doc["paths"].as_object().map(|p| p.len())),
        (200, Some(warden_server::app::openapi().paths.paths.len()))
    );

    // SIGTERM: finish, drain the audit queue, exit cleanly.
    let kill = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = server.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the server did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");

    let prune =
        Command::new(BIN).args(["logs", "prune", "--older-than", "90d", "--database-url", &url]).output().unwrap();
    assert!(prune.status.success());
    assert!(String::from_utf8_lossy(&prune.stdout).starts_with("deleted 0 audit row(s)"));
    let store = Store::connect(&url).await.unwrap();
    let rows = store.recent_audit(100).await.unwrap();
    let stored: Vec<String> = rows.iter().map(|r| r.decision_id.to_string()).collect();
    for id in &decisions {
        assert!(stored.contains(id), "decision {id} is not in the audit table");
    }
    assert_eq!(rows.len(), decisions.len());
    store.close().await;

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("warden listening") && log.contains("audit log complete"), "{log}");
    for secret in [&app_key[37..], &admin_key[37..], "my secret prompt"] {
        assert!(!log.contains(secret), "`{secret}` leaked into the log");
    }
    eprintln!("{backend:?}: {} decisions audited, {} log lines", decisions.len(), log.lines().count());
    let _ = std::fs::remove_file(&log_path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_policies_when_watching_is_off() {
    let (url, _cleanup) = crate::support::fresh_url(Backend::Sqlite).await;
    let dir = crate::support::policy_dir_copy();
    let admin_key = create_key(&url, "ops@example.com", true);
    let port = free_port();
    // Settings from all three layers: the file turns watching off (a
    // boolean in the file), the environment names the database, a flag the
    // address.
    let config = dir.with_extension("toml");
    std::fs::write(&config, format!("no_watch = true\npolicies = {:?}\nlisten = \"127.0.0.1:1\"\n", dir)).unwrap();
    let mut server = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--config"])
        .arg(&config)
        .env("WARDEN_DATABASE_URL", &url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_listening(port);
    let version = |key: &str| {
        http(port, "GET", "/api/admin/status", Some(key), "").2["policy_version"].as_str().unwrap().to_owned()
    };
    let v0 = version(&admin_key);
    std::fs::write(dir.join("extra.warden"), "# a new file\n").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(version(&admin_key), v0, "--no-watch: a file change alone does nothing");
    assert!(Command::new("kill").args(["-HUP", &server.id().to_string()]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while version(&admin_key) == v0 {
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap().success());
    assert!(server.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_file(config);
}

#[test]
fn a_bad_configuration_stops_start_up_naming_the_setting() {
    let config = std::env::temp_dir().join(format!("warden-bad-config-{}.toml", std::process::id()));
    for (text, named) in [
        ("rate_limit_requests = 0\n", "rate_limit_requests"),
        ("no_wach = true\n", "no_wach"),
        ("drain_timeout = \"a while\"\n", "drain_timeout"),
    ] {
        std::fs::write(&config, text).unwrap();
        let out = Command::new(BIN).args(["serve", "--config"]).arg(&config).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text}: started anyway");
        assert!(stderr.contains(named), "{text}: {stderr}");
    }
    let _ = std::fs::remove_file(config);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_completes_while_a_client_holds_half_a_request_head() {
    use std::io::Write as _;
    let (url, _cleanup) = crate::support::fresh_url(Backend::Sqlite).await;
    let port = free_port();
    let spill = std::env::temp_dir().join(format!("warden-e2e-spill-{port}"));
    let mut server = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--database-url", &url])
        .args(["--policies", concat!(env!("CARGO_MANIFEST_DIR"), "/../policies")])
        .env("WARDEN_AUDIT_SPILL_DIR", &spill)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_listening(port);
    // Half a head, then nothing: the client neither finishes nor leaves.
    let mut stalled = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stalled.write_all(b"POST /v1/check HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n").unwrap();
    let mut body_stalled = TcpStream::connect(("127.0.0.1", port)).unwrap();
    body_stalled.write_all(b"POST /v1/check HTTP/1.1\r\nHost: localhost\r\nContent-Length: 50\r\n\r\n{").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap().success());
    // Bounded by the header timeout and the shutdown grace (10 s each by
    // default), not by the client.
    let deadline = started + Duration::from_secs(25);
    let status = loop {
        if let Some(s) = server.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = server.kill();
            panic!("the server did not exit within 25 s of SIGTERM while a client stalled");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    eprintln!("SIGTERM to exit with stalled clients: {:?}", started.elapsed());
    drop((stalled, body_stalled));
    let _ = std::fs::remove_dir_all(spill);
}
