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
            // Uneven pauses, as real edits have: a strict period could lock
            // in step with the reloader's settle reads and always land on
            // the same variant.
            std::thread::sleep(Duration::from_millis(45 + (i as u64 * 37) % 50));
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
    // The swap and the status update are two steps: wait, boundedly.
    wait_until("the error is cleared", async || status(&app).await["reload"]["last_error"].is_null()).await;
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

// ---- The directory replaced under the watcher ----------------------------

/// A deny rule the default set doesn't have.
const DENY_RULE: &str =
    "rule no_batch {\n  description \"no batch jobs\"\n  when operation == \"batch\"\n  deny\n  reason no_batch\n}\n";
const BATCH: &str = r#"{"model":"gpt-4","operation":"batch"}"#;

/// A full policy set at `dir`: the defaults plus `extra` as `extra.warden`.
fn stage_set(dir: &Path, extra: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies");
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.join("extra.warden"), extra).unwrap();
}

fn sh(cwd: &Path, script: &str) {
    let out = std::process::Command::new("sh").arg("-c").arg(script).current_dir(cwd).output().unwrap();
    assert!(out.status.success(), "`{script}`: {}", String::from_utf8_lossy(&out.stderr));
}

/// An app watching `base/policies` (created by `setup`), with probes at hand.
async fn app_at(base: &Path, settle: Option<Duration>) -> (TestApp, watch::Sender<bool>) {
    let default_quota = Quota { requests: 1_000_000_000, window: Duration::from_secs(60) };
    let mut options = Options { policy_dir: Some(base.join("policies")), default_quota, ..TestApp::options() };
    if let Some(settle) = settle {
        options.policy_settle = settle;
    }
    let app = TestApp::with_options(Backend::Sqlite, options).await;
    let (stop, rx) = watch::channel(false);
    spawn_watcher(app.state.clone(), app.state.reloader.clone().unwrap(), rx).unwrap();
    (app, stop)
}

fn temp_base() -> std::path::PathBuf {
    let base = std::env::temp_dir().join(format!("warden-swap-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&base).unwrap();
    base
}

async fn wait_until(what: &str, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok().await {
        assert!(Instant::now() < deadline, "not within 10 s: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn batch_denied(app: &TestApp) -> bool {
    let (status, _, body) = app.check(&app.app_key, BATCH).await;
    assert_eq!(status, 200, "{body}");
    body["reason"] == json!("no_batch")
}

async fn metric(app: &TestApp, name: &str) -> Option<f64> {
    let (_, _, metrics) = app.send(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    metrics.as_str().unwrap().lines().find_map(|l| l.strip_prefix(&format!("{name} ")).map(|v| v.parse().unwrap()))
}

/// After the directory at the path was replaced by `replace` (run in
/// `base`), the new set serves, later edits are picked up, and the status
/// and metrics say the watch works and has no stale error.
async fn replaced_set_is_served_and_watched(base: &Path, app: &TestApp, replace: &str) {
    assert!(!batch_denied(app).await, "the starting set has no deny rule");
    sh(base, replace);
    wait_until("the replaced set serves", async || batch_denied(app).await).await;
    // The watch follows the new directory: a later edit is loaded.
    std::fs::write(base.join("policies/extra.warden"), "# the rule is gone\n").unwrap();
    wait_until("an edit in the new directory is loaded", async || !batch_denied(app).await).await;
    let st = status(app).await;
    assert_eq!(st["reload"]["watch"]["state"], json!("watching"), "{st}");
    assert!(st["reload"]["last_error"].is_null(), "stale error: {st}");
    assert_eq!(metric(app, "warden_policy_watch_up").await, Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_removed_and_copied_back_is_served_and_watched_and_the_gap_reported() {
    let base = temp_base();
    stage_set(&base.join("policies"), "# nothing yet\n");
    stage_set(&base.join("new"), DENY_RULE);
    let (app, _stop) = app_at(&base, None).await;
    let v0 = app.state.live.load().policy.version().to_owned();
    // Removed: the last good set keeps serving, and the gap is reported.
    sh(&base, "rm -rf policies");
    wait_until("the lost watch is reported", async || status(&app).await["reload"]["watch"]["state"] == json!("lost"))
        .await;
    let st = status(&app).await;
    assert!(st["reload"]["watch"]["detail"].as_str().unwrap().contains("missing"), "{st}");
    assert!(st["reload"]["watch"]["since"].is_string(), "{st}");
    assert_eq!(metric(&app, "warden_policy_watch_up").await, Some(0.0));
    assert_eq!(metric(&app, "warden_policy_watch_losses_total").await, Some(1.0));
    assert_eq!(app.check(&app.app_key, EXT).await.2["policy_version"], json!(v0));
    // Copied back: served, watched, no stale error about a missing directory.
    replaced_set_is_served_and_watched(&base, &app, "cp -r new policies").await;
    assert_eq!(status(&app).await["reload"]["watch"]["losses"], json!(1));
    let _ = std::fs::remove_dir_all(base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_removed_and_copied_at_once_is_served_and_watched() {
    let base = temp_base();
    stage_set(&base.join("policies"), "# nothing yet\n");
    stage_set(&base.join("new"), DENY_RULE);
    let (app, _stop) = app_at(&base, None).await;
    replaced_set_is_served_and_watched(&base, &app, "rm -rf policies && cp -r new policies").await;
    let _ = std::fs::remove_dir_all(base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_renamed_away_and_replaced_is_served_and_watched() {
    let base = temp_base();
    stage_set(&base.join("policies"), "# nothing yet\n");
    stage_set(&base.join("new"), DENY_RULE);
    let (app, _stop) = app_at(&base, None).await;
    replaced_set_is_served_and_watched(&base, &app, "mv policies old && mv new policies").await;
    // Edits to the old directory no longer matter.
    std::fs::write(base.join("old/extra.warden"), DENY_RULE).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!batch_denied(&app).await, "an edit to the renamed-away directory was served");
    let _ = std::fs::remove_dir_all(base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_swapped_to_another_release_is_served_and_watched() {
    let base = temp_base();
    stage_set(&base.join("releases/v1"), "# nothing yet\n");
    stage_set(&base.join("releases/v2"), DENY_RULE);
    sh(&base, "ln -s releases/v1 policies");
    let (app, _stop) = app_at(&base, None).await;
    replaced_set_is_served_and_watched(&base, &app, "ln -sfn releases/v2 policies").await;
    // The edit went to v2 (where the link points); v1 is no longer watched.
    std::fs::write(base.join("releases/v1/extra.warden"), DENY_RULE).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!batch_denied(&app).await, "an edit to the old release was served");
    let _ = std::fs::remove_dir_all(base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_synced_with_rsync_delete_is_served_and_watched() {
    if std::process::Command::new("rsync").arg("--version").output().is_err() {
        eprintln!("rsync is not installed: skipping");
        return;
    }
    let base = temp_base();
    stage_set(&base.join("policies"), "# nothing yet\n");
    std::fs::write(base.join("policies/stale.warden"), "# removed by --delete\n").unwrap();
    stage_set(&base.join("new"), DENY_RULE);
    let (app, _stop) = app_at(&base, None).await;
    replaced_set_is_served_and_watched(&base, &app, "rsync -a --delete new/ policies/").await;
    assert!(!app.state.live.load().policy.set().sources.iter().any(|f| f.name == "stale.warden"));
    let _ = std::fs::remove_dir_all(base);
}

// ---- A file caught mid-save ------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_rewritten_in_place_never_drops_its_deny_rule() {
    let base = temp_base();
    stage_set(&base.join("policies"), DENY_RULE);
    let (app, _stop) = app_at(&base, None).await;
    assert!(batch_denied(&app).await);
    let path = base.join("policies/extra.warden");
    // Truncate, pause (as a slow writer does), write; several times.
    let writer = std::thread::spawn(move || {
        for _ in 0..4 {
            let mut f = std::fs::File::create(&path).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            std::io::Write::write_all(&mut f, DENY_RULE.as_bytes()).unwrap();
            drop(f);
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let mut checks = 0;
    while !writer.is_finished() {
        assert!(batch_denied(&app).await, "the deny rule stopped applying mid-write (check {checks})");
        checks += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    writer.join().unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(batch_denied(&app).await);
    assert!(checks > 50, "only {checks} checks");
    let _ = std::fs::remove_dir_all(base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_emptied_on_purpose_is_applied_after_the_settle_time() {
    let base = temp_base();
    stage_set(&base.join("policies"), DENY_RULE);
    let settle = Duration::from_millis(400);
    let (app, _stop) = app_at(&base, Some(settle)).await;
    assert!(batch_denied(&app).await);
    let emptied = Instant::now();
    std::fs::write(base.join("policies/extra.warden"), "").unwrap();
    wait_until("the emptied file is applied", async || !batch_denied(&app).await).await;
    assert!(emptied.elapsed() >= settle, "applied after {:?}, before the settle time", emptied.elapsed());
    let _ = std::fs::remove_dir_all(base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_about_a_missing_directory_is_cleared_when_it_is_back_unchanged() {
    let base = temp_base();
    stage_set(&base.join("policies"), "# nothing yet\n");
    let (app, _stop) = app_at(&base, None).await;
    let reloader = app.state.reloader.clone().unwrap();
    sh(&base, "mv policies away");
    // A reload while it is missing (SIGHUP, say) fails and says why.
    assert!(matches!(reloader.reload(&app.state).await, Reloaded::Failed(_)));
    assert!(status(&app).await["reload"]["last_error"]["message"].as_str().unwrap().contains("does not exist"));
    // Back with the very same files: nothing to swap, and no stale error.
    sh(&base, "mv away policies");
    wait_until("the error is cleared", async || status(&app).await["reload"]["last_error"].is_null()).await;
    let st = status(&app).await;
    assert_eq!(st["reload"]["last_result"], json!("unchanged"), "{st}");
    assert_eq!(st["reload"]["watch"]["state"], json!("watching"), "{st}");
    let _ = std::fs::remove_dir_all(base);
}

// ---- A set caught mid-copy or mid-rewrite ------------------------------------

/// A deny rule's file, padded with comments so that a rewrite that drops
/// the padding is shorter.
fn padded_deny(padding_lines: usize) -> String {
    let mut text = String::new();
    for i in 0..padding_lines {
        text.push_str(&format!("# padding line {i}: the deny rule below must keep applying\n"));
    }
    text.push_str(DENY_RULE);
    text
}

/// Checks, until `writer` finishes, that every decision still has the deny
/// rule; returns how many checks ran.
async fn deny_holds_while(app: &TestApp, writer: &std::thread::JoinHandle<()>, what: &str) -> usize {
    let mut checks = 0;
    while !writer.is_finished() {
        assert!(batch_denied(app).await, "the deny rule stopped applying {what} (check {checks})");
        checks += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    checks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_copied_file_by_file_never_serves_a_set_without_a_file_of_the_old_set() {
    let base = temp_base();
    stage_set(&base.join("policies"), DENY_RULE);
    let (app, _stop) = app_at(&base, None).await;
    assert!(batch_denied(&app).await);
    let v0 = app.state.live.load().policy.version().to_owned();
    // The release being deployed: the same rules, one more comment.
    let release = base.join("release");
    stage_set(&release, &format!("# release 2\n{DENY_RULE}"));
    // `rm -rf policies && cp -r release policies` by a slow copier: the
    // files appear one at a time, the deny rule's file last, and every
    // partial set compiles.
    let (target, source) = (base.join("policies"), release.clone());
    let writer = std::thread::spawn(move || {
        std::fs::remove_dir_all(&target).unwrap();
        std::fs::create_dir(&target).unwrap();
        for name in ["base.warden", "risk.warden", "models.warden", "extra.warden"] {
            std::thread::sleep(Duration::from_millis(250));
            std::fs::copy(source.join(name), target.join(name)).unwrap();
        }
    });
    let checks = deny_holds_while(&app, &writer, "during the copy").await;
    writer.join().unwrap();
    assert!(checks > 50, "only {checks} checks");
    // The copied set is served in the end.
    let want = crate::support::policy_from(&release).version().to_owned();
    assert_ne!(want, v0);
    wait_until("the copied set serves", async || app.state.live.load().policy.version() == want).await;
    assert!(batch_denied(&app).await);
    let _ = std::fs::remove_dir_all(base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_rewritten_shorter_in_two_chunks_never_serves_the_partial_content() {
    let base = temp_base();
    stage_set(&base.join("policies"), &padded_deny(20));
    let (app, _stop) = app_at(&base, None).await;
    assert!(batch_denied(&app).await);
    let path = base.join("policies/extra.warden");
    // The new text is shorter; its first chunk ends at a rule boundary, so
    // on its own it compiles (to a set without the deny rule).
    let first = "# release 2\nrule batch_score {\n  description \"batch\"\n  when operation == \"batch\"\n  score +1\n  reason batch_score\n}\n";
    let whole = format!("{first}{DENY_RULE}");
    assert!(whole.len() < padded_deny(20).len());
    let expected = whole.clone();
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::File::create(&path).unwrap();
        std::io::Write::write_all(&mut f, first.as_bytes()).unwrap();
        f.sync_all().unwrap();
        std::thread::sleep(Duration::from_millis(400));
        std::io::Write::write_all(&mut f, DENY_RULE.as_bytes()).unwrap();
        drop(f);
        // Keep checking a while after the write: a late reload of the
        // first chunk would show here.
        std::thread::sleep(Duration::from_millis(300));
    });
    let checks = deny_holds_while(&app, &writer, "mid-write").await;
    writer.join().unwrap();
    assert!(checks > 50, "only {checks} checks");
    wait_until("the rewritten file serves", async || {
        app.state.live.load().policy.set().sources.iter().any(|f| f.name == "extra.warden" && *f.text == *expected)
    })
    .await;
    assert!(batch_denied(&app).await);
    let _ = std::fs::remove_dir_all(base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_deleted_on_purpose_is_applied_after_the_settle_time() {
    let base = temp_base();
    stage_set(&base.join("policies"), DENY_RULE);
    let settle = Duration::from_millis(400);
    let (app, _stop) = app_at(&base, Some(settle)).await;
    assert!(batch_denied(&app).await);
    let deleted = Instant::now();
    std::fs::remove_file(base.join("policies/extra.warden")).unwrap();
    wait_until("the deletion is applied", async || !batch_denied(&app).await).await;
    assert!(deleted.elapsed() >= settle, "applied after {:?}, before the settle time", deleted.elapsed());
    assert!(!app.state.live.load().policy.set().sources.iter().any(|f| f.name == "extra.warden"));
    let _ = std::fs::remove_dir_all(base);
}
