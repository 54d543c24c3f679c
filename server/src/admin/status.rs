//! The service's status, gathered once for `GET /api/admin/status` and the
//! dashboard's status and overview pages.

use std::time::Duration;

use serde::Serialize;

use crate::reload::ReloadStatus;
use crate::state::AppState;

/// How long the status waits for the database to answer a ping: a
/// database that hangs is reported as unavailable instead of holding the
/// page (the pool's own acquire timeout is several seconds).
const PING_TIMEOUT: Duration = Duration::from_millis(500);

/// The build's version (the `warden-server` crate's).
pub(crate) const BUILD_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Whether the database answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DatabaseState {
    /// It answered a ping.
    Up,
    /// It failed or did not answer within 500 ms (details in the log).
    Unavailable,
}

/// The shadow policy set: what is running, and its last reload.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ShadowSetStatus {
    /// Its directory.
    pub dir: String,
    /// The version running (absent if none could be loaded).
    pub policy_version: Option<String>,
    /// How many rules.
    pub rules: usize,
    /// Its last reload, and its error if it failed.
    pub reload: ReloadStatus,
}

/// What the service is running, and the state of what it depends on.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Status {
    /// The policy version being served.
    pub policy_version: String,
    /// The policy files it was compiled from.
    pub files: Vec<String>,
    /// How many rules.
    pub rules: usize,
    /// The last reload of the policy files, and its error if it failed.
    pub reload: ReloadStatus,
    /// The shadow policy set (`--shadow-policies`), when one is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow_set: Option<ShadowSetStatus>,
    /// Toggles and overrides that apply to nothing under the set served:
    /// their rule is missing or is not the rule they were set for (listed
    /// at `/api/admin/orphans`).
    pub orphaned_settings: usize,
    /// Audit rows waiting to be written.
    pub audit_queue_depth: usize,
    /// Whether the audit writer is reaching the database.
    pub audit_writer_healthy: bool,
    /// The database backend: `sqlite` or `postgres`.
    pub database: &'static str,
    /// Whether the database answers (checked with a 500 ms bound).
    pub database_state: DatabaseState,
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// The build's version.
    pub version: &'static str,
    /// Where rate limits are kept (Redis or this process), whether Redis
    /// answers, and failed authentications by reason.
    pub rate_limit: crate::rate_limit::LimitsStatus,
    /// The last audit chain verification (`warden audit verify`, `POST
    /// /api/admin/audit/verify` or the dashboard), without its full report
    /// (at `/api/admin/audit/verification`); absent if none has run or the
    /// database is unavailable.
    pub audit_verification: Option<crate::audit::verify::Summary>,
    /// Whether a verification started on this instance is still running.
    pub audit_verification_running: bool,
}

/// Gathers the status. Never fails: a database that is down is reported
/// in `database_state` (and the last verification is then absent).
pub(crate) async fn gather(state: &AppState) -> Status {
    let snapshot = state.live.load();
    let policy = &snapshot.policy;
    let database_state = match tokio::time::timeout(PING_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => DatabaseState::Up,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "status: the database did not answer");
            DatabaseState::Unavailable
        }
        Err(_) => {
            tracing::warn!(timeout_ms = PING_TIMEOUT.as_millis(), "status: no answer from the database in time");
            DatabaseState::Unavailable
        }
    };
    let audit_verification = match database_state {
        DatabaseState::Up => crate::audit::verify::Summary::last(&state.store).await,
        DatabaseState::Unavailable => None,
    };
    Status {
        policy_version: policy.version().to_owned(),
        files: policy.set().sources.iter().map(|f| f.name.clone()).collect(),
        rules: policy.set().rules.len(),
        reload: state.reloader.as_ref().map(|r| r.status()).unwrap_or_default(),
        shadow_set: state.shadow_reloader.as_ref().map(|r| ShadowSetStatus {
            dir: r.dir().display().to_string(),
            policy_version: snapshot.candidate.as_ref().map(|c| c.policy.version().to_owned()),
            rules: snapshot.candidate.as_ref().map_or(0, |c| c.policy.set().rules.len()),
            reload: r.status(),
        }),
        orphaned_settings: snapshot.orphans().len(),
        audit_queue_depth: state.audit.depth(),
        audit_writer_healthy: state.audit.writer_healthy(),
        database: state.store.backend(),
        database_state,
        uptime_seconds: state.started.elapsed().as_secs(),
        version: BUILD_VERSION,
        rate_limit: crate::rate_limit::LimitsStatus::of(&state.limiter, &state.metrics),
        audit_verification,
        audit_verification_running: super::audit_chain::verification_running(state),
    }
}
