//! Reloading the policy files: on a file change (watched with notify and
//! debounced, see [`watch`]), on SIGHUP, or on request. A reload reads the
//! files once they have stopped changing (see [`settle`]), parses, compiles
//! and runs the set's own test blocks off the request path, and swaps only
//! if all of that succeeds; otherwise the last good set keeps serving and
//! the diagnostics are logged, counted and shown in the status endpoint.

mod settle;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch as signal;
use warden_engine::{Policy, SourceFile};

use crate::live::Live;
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::store::Store;

pub use watch::{IDENTITY_CHECK, spawn_watcher};

/// Editors write several events per save; wait this long for quiet.
pub const DEBOUNCE: Duration = Duration::from_millis(40);
/// But never longer than this after the first event.
const MAX_DEBOUNCE: Duration = Duration::from_millis(200);
/// How long a read in which a file of the serving set is missing, empty or
/// shorter must stay unchanged before it is applied (the default of
/// [`PolicyReloader::with_settle`]).
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(1);

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
    /// The last failure, kept until a later reload succeeds (whether or
    /// not it changed the version).
    pub last_error: Option<ReloadFailure>,
    /// The watch on the policy directory (absent when not watching).
    pub watch: Option<WatchStatus>,
}

/// Whether the policy directory is being watched for changes.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WatchStatus {
    /// `watching`, or `lost` while no working watch is in place (the
    /// directory is missing, or could not be watched): changes on disk are
    /// not picked up until it is back, and the last good set keeps serving.
    pub state: &'static str,
    /// When it entered that state (UTC).
    pub since: DateTime<Utc>,
    /// Why the watch is lost (absent while watching).
    pub detail: Option<String>,
    /// How many times the watch was lost since start.
    pub losses: u64,
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

/// Which set a reloader keeps up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetRole {
    /// The enforced set: it decides.
    Enforced,
    /// The shadow set (`--shadow-policies`): decided beside the enforced
    /// one, recorded where it differs, deciding nothing.
    Shadow,
}

/// Reloads the policy directory into the live state.
#[derive(Debug)]
pub struct PolicyReloader {
    dir: PathBuf,
    role: SetRole,
    settle: Duration,
    status: Mutex<ReloadStatus>,
    running: tokio::sync::Mutex<()>,
}

fn fail(message: impl Into<String>, diagnostics: Vec<String>) -> (String, Vec<String>) {
    (message.into(), diagnostics)
}

/// Reads `dir` once settled, compiles it and runs its test blocks
/// (blocking work). `serving` is the set being served, for the settle rule.
fn build(dir: &Path, serving: &[SourceFile], settle: Duration) -> Result<Policy, (String, Vec<String>)> {
    let settled = settle::read_settled(dir, serving, settle).map_err(|e| fail(format!("{e:#}"), Vec::new()))?;
    if !settled.believed.is_empty() {
        let files: Vec<String> = settled.believed.iter().map(ToString::to_string).collect();
        tracing::info!(files = %files.join(", "), "compiling the set with the file(s) missing, emptied or shortened");
    }
    let sources = settled.sources;
    let (policy, _warnings) = Policy::from_sources(sources).map_err(|diags| {
        let errors = diags.iter().filter(|d| d.is_error()).count();
        fail(
            format!("{errors} error(s) in the policy files"),
            diags.iter().map(|d| warden_engine::render(d, false)).collect(),
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
    /// A reloader for `dir`, the enforced set.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            role: SetRole::Enforced,
            settle: DEFAULT_SETTLE,
            status: Mutex::new(ReloadStatus::default()),
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// This reloader keeps the shadow set up to date instead (same checks:
    /// it swaps only a set that compiles and passes its own test blocks).
    #[must_use]
    pub fn for_shadow_set(mut self) -> Self {
        self.role = SetRole::Shadow;
        self
    }

    /// Which set it keeps up to date.
    pub fn role(&self) -> SetRole {
        self.role
    }

    /// How long a read in which a file of the serving set is missing, empty
    /// or shorter than it was must stay unchanged before it is applied (until
    /// then it is taken for a write or copy in progress and waited out; see
    /// `reload/settle.rs`).
    #[must_use]
    pub fn with_settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }

    /// Records that the directory is watched (logging a recovery).
    pub(crate) fn watch_up(&self, metrics: &Metrics) {
        // `warden_policy_watch_up` is the enforced set's watch.
        if self.role == SetRole::Enforced {
            metrics.policy_watch(true);
        }
        let now = Utc::now();
        self.record(|s| {
            if let Some(w) = &s.watch {
                if w.state == "lost" {
                    let lost_for = (now - w.since).to_std().unwrap_or_default();
                    tracing::info!(dir = %self.dir.display(), lost_for_ms = lost_for.as_millis() as u64, "policy directory watched again");
                }
            }
            let losses = s.watch.as_ref().map_or(0, |w| w.losses);
            s.watch = Some(WatchStatus { state: "watching", since: now, detail: None, losses });
        });
    }

    /// Records that no working watch is in place, and why. Logged once per
    /// loss; the reason is kept up to date.
    pub(crate) fn watch_lost(&self, detail: String, metrics: &Metrics) {
        if self.role == SetRole::Enforced {
            metrics.policy_watch(false);
        }
        let now = Utc::now();
        self.record(|s| match &mut s.watch {
            Some(w) if w.state == "lost" => w.detail = Some(detail),
            other => {
                tracing::warn!(dir = %self.dir.display(), reason = %detail, "policy directory watch lost; the last good set keeps serving until it is back");
                let losses = other.as_ref().map_or(0, |w| w.losses) + 1;
                *other = Some(WatchStatus { state: "lost", since: now, detail: Some(detail), losses });
            }
        });
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
    pub async fn reload<'a>(&self, target: impl Into<ReloadTarget<'a>>) -> Reloaded {
        let state = target.into();
        let _one_at_a_time = self.running.lock().await;
        if self.role == SetRole::Shadow {
            return self.reload_shadow_set(state).await;
        }
        let built = self.build_off_thread(state.live.load().policy.set().sources.clone()).await;
        let now = Utc::now();
        match built {
            Ok(policy) if policy.version() == state.live.load().policy.version() => {
                // Recorded again, in case the first try (at start or at the
                // swap) found the database down; it is kept only once.
                if let Err(e) = state.store.record_policy_version(&policy).await {
                    tracing::debug!(error = %e, "could not record the policy version's declared fields");
                }
                self.record_unchanged(now);
                Reloaded::Unchanged
            }
            Ok(policy) => {
                let version = policy.version().to_owned();
                let policy = Arc::new(policy);
                state.live.replace_policy(policy.clone()).await;
                // After the swap: a slow database never delays it.
                if let Err(e) = state.store.record_policy_version(&policy).await {
                    tracing::warn!(error = %e, "could not record the policy version's declared fields (replays of its rows will say so)");
                }
                // The status says so at once: a reader who sees the new
                // version should not find the last failure still reported.
                self.record_swapped(now);
                state.metrics.set_policy_version(&version);
                state.metrics.policy_reload("ok");
                report_orphans(state.live.load().orphans());
                tracing::info!(%version, "policy reloaded");
                let files: Vec<String> =
                    state.live.load().policy.set().sources.iter().map(|f| f.name.clone()).collect();
                let event = serde_json::json!({"policy_version": version, "files": files});
                crate::webhooks::emit(
                    state.store,
                    crate::webhooks::Event::new(crate::webhooks::EventType::PolicyReloaded, event),
                )
                .await;
                Reloaded::Swapped(version)
            }
            Err((message, diagnostics)) => {
                state.metrics.policy_reload("error");
                tracing::error!(%message, diagnostics = %diagnostics.join("\n"), "policy reload refused; the previous version keeps serving");
                self.record_failed(now, message.clone(), diagnostics);
                let serving = state.live.load().policy.version().to_owned();
                let event = serde_json::json!({"error": message, "serving_policy_version": serving});
                crate::webhooks::emit(
                    state.store,
                    crate::webhooks::Event::new(crate::webhooks::EventType::PolicyReloadFailed, event),
                )
                .await;
                Reloaded::Failed(message)
            }
        }
    }
}

impl PolicyReloader {
    /// Reads, compiles and tests the directory on the blocking pool;
    /// `serving` is the set now running, for the settle rule.
    async fn build_off_thread(&self, serving: Vec<SourceFile>) -> Result<Policy, (String, Vec<String>)> {
        let dir = self.dir.clone();
        let settle = self.settle;
        tokio::task::spawn_blocking(move || build(&dir, &serving, settle))
            .await
            .unwrap_or_else(|e| Err(fail(format!("the reload task failed: {e}"), Vec::new())))
    }

    /// Records a reload that found the set already running. The files on
    /// disk are good again: an earlier error (a directory that was missing)
    /// no longer applies.
    fn record_unchanged(&self, now: DateTime<Utc>) {
        self.record(|s| {
            s.last_reload_at = Some(now);
            s.last_result = Some("unchanged");
            s.last_error = None;
        });
    }

    /// Records a reload that swapped a new version in.
    fn record_swapped(&self, now: DateTime<Utc>) {
        self.record(|s| {
            s.last_reload_at = Some(now);
            s.last_result = Some("ok");
            s.reloads_ok += 1;
            s.last_error = None;
        });
    }

    /// Records a refused reload and why.
    fn record_failed(&self, now: DateTime<Utc>, message: String, diagnostics: Vec<String>) {
        self.record(|s| {
            s.last_reload_at = Some(now);
            s.last_result = Some("error");
            s.reloads_failed += 1;
            s.last_error = Some(ReloadFailure { at: now, message, diagnostics });
        });
    }

    /// [`Self::reload`] for the shadow set: the same build, test gate and
    /// status; a success swaps the shadow set only. No webhook event: the
    /// shadow set decides nothing.
    async fn reload_shadow_set(&self, state: ReloadTarget<'_>) -> Reloaded {
        let current = state.live.load().candidate.as_ref().map(|c| c.policy.clone());
        let built = self.build_off_thread(current.as_ref().map(|p| p.set().sources.clone()).unwrap_or_default()).await;
        let now = Utc::now();
        match built {
            Ok(policy) if current.as_ref().is_some_and(|c| c.version() == policy.version()) => {
                self.record_unchanged(now);
                Reloaded::Unchanged
            }
            Ok(policy) => {
                let version = policy.version().to_owned();
                state.live.replace_candidate(Some(Arc::new(policy))).await;
                self.record_swapped(now);
                tracing::info!(%version, "shadow policy set reloaded");
                Reloaded::Swapped(version)
            }
            Err((message, diagnostics)) => {
                tracing::error!(%message, diagnostics = %diagnostics.join("\n"), "shadow policy set reload refused; the previous shadow set keeps running");
                self.record_failed(now, message.clone(), diagnostics);
                Reloaded::Failed(message)
            }
        }
    }
}

/// What a reload touches, and nothing else: the live snapshot it swaps,
/// the metrics it counts in, and the store its webhook events go to.
#[derive(Debug, Clone, Copy)]
pub struct ReloadTarget<'a> {
    /// The serving snapshot.
    pub live: &'a Live,
    /// Reload and version metrics.
    pub metrics: &'a Metrics,
    /// Where `policy.reloaded` / `policy.reload_failed` events are queued.
    pub store: &'a Store,
}

impl<'a> From<&'a AppState> for ReloadTarget<'a> {
    fn from(state: &'a AppState) -> Self {
        Self { live: &state.live, metrics: &state.metrics, store: &state.store }
    }
}

/// Reloads on SIGHUP. The handler is installed before this returns.
pub fn spawn_sighup(
    state: AppState,
    reloader: Arc<PolicyReloader>,
    mut stop: signal::Receiver<bool>,
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

/// Logs the toggles and overrides that apply to nothing under the set now
/// served (their rule is missing, or is not the rule they were set for), by
/// reason and rule. Nothing is written: each instance works this out
/// against the set it serves, and they apply again as soon as their rule
/// does (or once an admin re-confirms or deletes them).
pub fn report_orphans(orphans: &[crate::store::Orphan]) {
    use crate::store::OrphanReason;
    if orphans.is_empty() {
        return;
    }
    let rules = |reason: OrphanReason| {
        let mut names: Vec<&str> = orphans.iter().filter(|o| o.reason == reason).map(|o| o.rule.as_str()).collect();
        names.dedup();
        names.join(", ")
    };
    tracing::warn!(
        settings = orphans.len(),
        rule_missing = %rules(OrphanReason::RuleMissing),
        rule_changed = %rules(OrphanReason::RuleChanged),
        "settings that don't apply to the policy set now served (their rule is missing, or is not the rule they were \
         set for): listed at GET /api/admin/orphans until their rule is back, or an admin re-confirms or deletes them"
    );
}
