//! Live policy reloads: under concurrent load, with broken edits, with
//! renames, deletions, new subfolders and atomic saves, and on SIGHUP.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{Backend, TestApp};
use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use tokio::sync::watch;
use warden_server::rate_limit::Quota;
use warden_server::reload::{Reloaded, spawn_watcher};
use warden_server::server::Options;

const EXT: &str = r#"{"model":"gpt-4","operation":"classify","metadata":{"is_external_model":true}}"#;

/// A rule the shipped test blocks don't touch, scoring `score`.
fn probe(score: i64) -> String {
    format!(
        "rule reload_probe {{\n  description \"probe\"\n  when metadata.intent == \"reload_probe\"\n  score +{score}\n  reason reload_probe\n}}\n"
    )
}

const PROBE: &str =
    r#"{"model":"gpt-4","operation":"classify","metadata":{"is_external_model":true,"intent":"reload_probe"}}"#;

/// Writes atomically, as many editors do: a temporary file, then a rename.
fn atomic_write(path: &Path, text: &str) {
    let tmp = path.with_extension("warden.swp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn watched_app(backend: Backend) -> (TestApp, std::path::PathBuf, watch::Sender<bool>) {
    let dir = crate::support::policy_dir_copy();
    // A quota no test here reaches: these tests are about reloads.
    let default_quota = Quota { requests: 1_000_000_000, window: Duration::from_secs(60) };
    let options = Options { policy_dir: Some(dir.clone()), default_quota, ..TestApp::options() };
    let app = TestApp::with_options(backend, options).await;
    let (stop, rx) = watch::channel(false);
    spawn_watcher(app.state.clone(), app.state.reloader.clone().unwrap(), rx).unwrap();
    (app, dir, stop)
}

async fn wait_for_version(app: &TestApp, not: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = app.state.live.load().policy.version().to_owned();
        if v != not {
            return v;
        }
        assert!(Instant::now() < deadline, "no new version within 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn status(app: &TestApp) -> Value {
    let req = Request::get("/api/admin/status")
        .header("authorization", format!("Bearer {}", app.admin_key))
        .body(Body::empty())
        .unwrap();
    app.send(req).await.2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_stay_consistent_while_the_files_change_100_times() {
    let (app, dir, _stop) = watched_app(Backend::Sqlite).await;
    std::fs::write(dir.join("probe.warden"), probe(10)).unwrap();
    let v0 = app.state.live.load().policy.version().to_owned();
    wait_for_version(&app, &v0).await;
    let variants = vec![probe(10), probe(20)];
    // What each version must answer, computed independently of the server.
    let mut expected: HashMap<String, (bool, i64)> = HashMap::new();
    for text in &variants {
        let scratch = crate::support::policy_dir_copy();
        std::fs::write(scratch.join("probe.warden"), text).unwrap();
        let policy = crate::support::policy_from(&scratch);
        let d = policy.decide(&serde_json::from_str(PROBE).unwrap()).unwrap();
        expected.insert(policy.version().to_owned(), (d.allowed, d.risk_score));
        let _ = std::fs::remove_dir_all(scratch);
    }
    assert_eq!(expected.len(), 2);
    let app = Arc::new(app);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (app, done) = (app.clone(), done.clone());
        clients.push(tokio::spawn(async move {
            // (status, version, allowed, score); bounded, whatever happens.
            let mut seen: Vec<(u16, String, Option<bool>, Option<i64>)> = Vec::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) && seen.len() < 10_000 {
                let (status, _, body) = app.check(&app.admin_key, PROBE).await;
                let version = body["policy_version"].as_str().unwrap_or_default().to_owned();
                seen.push((status, version, body["allowed"].as_bool(), body["risk_score"].as_i64()));
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            seen
        }));
    }
    // The editor: its own thread, so request load can't starve it.
    let writer_dir = dir.clone();
    let writes = variants.clone();
    let editor = std::thread::spawn(move || {
        for i in 0..100 {
            let path = writer_dir.join("probe.warden");
            let text = &writes[(i + 1) % 2];
            if i % 2 == 0 {
                atomic_write(&path, text)
            } else {
                std::fs::write(&path, text).unwrap()
            }
            std::thread::sleep(Duration::from_millis(60));
        }
    });
    tokio::task::spawn_blocking(move || editor.join().unwrap()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    let mut versions = std::collections::HashSet::new();
    for c in clients {
        let seen = tokio::time::timeout(Duration::from_secs(60), c).await.expect("clients finish").unwrap();
        for (status, version, allowed, score) in seen {
            total += 1;
            assert_eq!(status, 200, "version {version}");
            let want = expected.get(&version).unwrap_or_else(|| panic!("unknown version {version}"));
            assert_eq!((allowed.unwrap(), score.unwrap()), *want, "version {version}");
            versions.insert(version);
        }
    }
    assert!(total > 100, "only {total} decisions");
    assert_eq!(versions.len(), 2, "both versions served");
    // The final file content is what is served.
    let last = crate::support::policy_from(&dir);
    assert_eq!(app.state.live.load().policy.version(), last.version());
    let reloads = status(&app).await["reload"]["reloads_ok"].as_u64().unwrap();
    assert!(reloads >= 2, "{reloads} reloads");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_edit_keeps_the_last_good_set_serving() {
    let (app, dir, _stop) = watched_app(Backend::Sqlite).await;
    let good = app.state.live.load().policy.version().to_owned();
    let risk = std::fs::read_to_string(dir.join("risk.warden")).unwrap();
    // A syntax error.
    std::fs::write(dir.join("risk.warden"), risk.replace("score +70", "score ++70")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let st = loop {
        let st = status(&app).await;
        if st["reload"]["last_result"] == json!("error") {
            break st;
        }
        assert!(Instant::now() < deadline, "the broken edit was not noticed: {st}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(st["policy_version"], json!(good));
    let diagnostics = st["reload"]["last_error"]["diagnostics"].to_string();
    assert!(diagnostics.contains("risk.warden:") && diagnostics.contains("syntax error"), "{diagnostics}");
    assert_eq!(app.check(&app.app_key, EXT).await.2["policy_version"], json!(good));
    let (_, _, metrics) = app.send(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert!(metrics.as_str().unwrap().contains("warden_policy_reload_total{result=\"error\"} 1"), "{metrics}");
    // A change whose own test blocks fail is refused too.
    std::fs::write(dir.join("risk.warden"), risk.replace("score +70", "score +60")).unwrap();
    let r = app.state.reloader.as_ref().unwrap().reload(&app.state).await;
    assert!(matches!(&r, Reloaded::Failed(m) if m.contains("test block(s) failed")), "{r:?}");
    assert!(
        status(&app).await["reload"]["last_error"]["diagnostics"].to_string().contains("expected score 70, got 60")
    );
    assert_eq!(app.state.live.load().policy.version(), good);
    // Fixed: served, and the error is cleared.
    std::fs::write(dir.join("risk.warden"), &risk).unwrap();
    std::fs::write(dir.join("extra.warden"), "# a new, empty file\n").unwrap();
    let new = wait_for_version(&app, &good).await;
    assert_ne!(new, good);
    assert!(status(&app).await["reload"]["last_error"].is_null());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renames_deletions_and_new_subfolders_are_picked_up() {
    let (app, dir, _stop) = watched_app(Backend::Sqlite).await;
    let v0 = app.state.live.load().policy.version().to_owned();
    // Move a file into a new subfolder.
    std::fs::create_dir_all(dir.join("teams/risk")).unwrap();
    std::fs::rename(dir.join("models.warden"), dir.join("teams/risk/models.warden")).unwrap();
    let v1 = wait_for_version(&app, &v0).await;
    assert!(app.state.live.load().policy.set().sources.iter().any(|f| f.name == "teams/risk/models.warden"));
    // A new rule in a file created inside the new subfolder.
    let rule = "rule long_prompts {\n  description \"big jobs\"\n  when operation == \"batch\"\n  score +60\n  reason batch\n}\n";
    atomic_write(&dir.join("teams/risk/batch.warden"), rule);
    let v2 = wait_for_version(&app, &v1).await;
    let (_, _, d) = app.check(&app.app_key, r#"{"model":"m","operation":"batch"}"#).await;
    assert_eq!((d["reason"].as_str(), d["policy_version"].as_str()), (Some("batch"), Some(v2.as_str())));
    // Deleting it removes the rule.
    std::fs::remove_file(dir.join("teams/risk/batch.warden")).unwrap();
    let _v3 = wait_for_version(&app, &v2).await;
    assert_eq!(app.check(&app.app_key, r#"{"model":"m","operation":"batch"}"#).await.2["allowed"], json!(true));
    // Editor droppings (hidden files, other extensions) don't change the set.
    let before = app.state.live.load().policy.version().to_owned();
    std::fs::write(dir.join(".risk.warden.swp"), "garbage").unwrap();
    std::fs::write(dir.join("notes.txt"), "garbage").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.state.live.load().policy.version(), before);
    let _ = std::fs::remove_dir_all(dir);
}
