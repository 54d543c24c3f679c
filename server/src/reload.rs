//! Reloading the policy files: on a file change (watched with notify and
//! debounced), on SIGHUP, or on request. A reload reads, parses, compiles
//! and runs the set's own test blocks off the request path, and swaps only
//! if all of that succeeds; otherwise the last good set keeps serving and
//! the diagnostics are logged, counted and shown in the status endpoint.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use warden_engine::Policy;

use crate::app::AppState;

/// Editors write several events per save; wait this long for quiet.
pub const DEBOUNCE: Duration = Duration::from_millis(40);
/// But never longer than this after the first event.
const MAX_DEBOUNCE: Duration = Duration::from_millis(200);

/// The outcome of the last reload, for `/api/admin/status`.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ReloadStatus {
    /// When the last reload ran.
    pub last_reload_at: Option<DateTime<Utc>>,
    /// `ok`, `unchanged` or `error`.
    pub last_result: Option<&'static str>,
    /// Successful reloads that changed the version.
    pub reloads_ok: u64,
    /// Failed reloads.
    pub reloads_failed: u64,
    /// The last failure, kept until a later reload succeeds.
    pub last_error: Option<ReloadFailure>,
}

/// Why a reload was refused.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReloadFailure {
    /// When.
    pub at: DateTime<Utc>,
    /// In one line.
    pub message: String,
    /// Every diagnostic or failing test, as a policy author reads them.
    pub diagnostics: Vec<String>,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// A new version is serving.
    Swapped(String),
    /// The files compile to the version already serving.
    Unchanged,
    /// Refused; the previous version keeps serving.
    Failed(String),
}

/// Reloads the policy directory into the live state.
#[derive(Debug)]
pub struct PolicyReloader {
    dir: PathBuf,
    status: Mutex<ReloadStatus>,
    running: tokio::sync::Mutex<()>,
}

fn fail(message: impl Into<String>, diagnostics: Vec<String>) -> (String, Vec<String>) {
    (message.into(), diagnostics)
}

/// Reads and compiles `dir` and runs its test blocks (blocking work).
fn build(dir: &Path) -> Result<Policy, (String, Vec<String>)> {
    let sources = crate::policy_files::load_dir(dir).map_err(|e| fail(format!("{e:#}"), Vec::new()))?;
    let (policy, _warnings) = Policy::from_sources(sources).map_err(|diags| {
        let errors = diags.iter().filter(|d| d.is_error()).count();
        fail(
            format!("{errors} error(s) in the policy files"),
            diags.iter().map(|d| warden_dsl::render(d, false)).collect(),
        )
    })?;
    let report = warden_engine::run_tests(&policy);
    if !report.all_passed() {
        let failures = report
            .outcomes
            .iter()
            .filter_map(|o| o.failure.as_ref().map(|f| format!("test \"{}\" ({}): {f}", o.name, o.position)))
            .collect();
        return Err(fail(format!("{} of {} test block(s) failed", report.failed(), report.outcomes.len()), failures));
    }
    Ok(policy)
}

impl PolicyReloader {
    /// A reloader for `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir, status: Mutex::new(ReloadStatus::default()), running: tokio::sync::Mutex::new(()) }
    }

    /// The policy directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last reload's outcome.
    pub fn status(&self) -> ReloadStatus {
        match self.status.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn record(&self, f: impl FnOnce(&mut ReloadStatus)) {
        let mut guard = match self.status.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard);
    }

    /// Reloads now. Concurrent calls run one after the other.
    pub async fn reload(&self, state: &AppState) -> Reloaded {
        let _one_at_a_time = self.running.lock().await;
        let dir = self.dir.clone();
        let built = tokio::task::spawn_blocking(move || build(&dir))
            .await
            .unwrap_or_else(|e| Err(fail(format!("the reload task failed: {e}"), Vec::new())));
        let now = Utc::now();
        match built {
            Ok(policy) if policy.version() == state.live.load().policy.version() => {
                self.record(|s| {
                    s.last_reload_at = Some(now);
                    s.last_result = Some("unchanged");
                });
                Reloaded::Unchanged
            }
            Ok(policy) => {
                let version = policy.version().to_owned();
                state.live.replace_policy(Arc::new(policy)).await;
                state.metrics.set_policy_version(&version);
                state.metrics.policy_reload("ok");
                self.record(|s| {
                    s.last_reload_at = Some(now);
                    s.last_result = Some("ok");
                    s.reloads_ok += 1;
                    s.last_error = None;
                });
                tracing::info!(%version, "policy reloaded");
                Reloaded::Swapped(version)
            }
            Err((message, diagnostics)) => {
                state.metrics.policy_reload("error");
                tracing::error!(%message, diagnostics = %diagnostics.join("\n"), "policy reload refused; the previous version keeps serving");
                self.record(|s| {
                    s.last_reload_at = Some(now);
                    s.last_result = Some("error");
                    s.reloads_failed += 1;
                    s.last_error = Some(ReloadFailure { at: now, message: message.clone(), diagnostics });
                });
                Reloaded::Failed(message)
            }
        }
    }
}

/// Watches the policy directory (recursively: new subfolders, renames,
/// deletions and editors' write-then-rename saves all show up as events)
/// and reloads after each burst of events.
pub fn spawn_watcher(
    state: AppState,
    reloader: Arc<PolicyReloader>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    use notify::Watcher as _;
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(reloader.dir(), notify::RecursiveMode::Recursive)?;
    tokio::spawn(async move {
        // The watcher lives as long as this task.
        let _watcher = watcher;
        loop {
            tokio::select! {
                event = rx.recv() => if event.is_none() { break },
                _ = stop.wait_for(|v| *v) => break,
            }
            let first = tokio::time::Instant::now();
            while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                if first.elapsed() >= MAX_DEBOUNCE {
                    break;
                }
            }
            reloader.reload(&state).await;
        }
    });
    Ok(())
}

/// Reloads on SIGHUP. The handler is installed before this returns.
pub fn spawn_sighup(
    state: AppState,
    reloader: Arc<PolicyReloader>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = hup.recv() => {
                        tracing::info!("SIGHUP received; reloading policies");
                        reloader.reload(&state).await;
                    }
                    // The watch guard isn't `Send`; don't let it outlive the wait.
                    () = async { let _ = stop.wait_for(|v| *v).await; } => break,
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (state, reloader, stop);
    Ok(())
}
