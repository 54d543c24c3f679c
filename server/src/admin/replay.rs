//! Replaying recorded decisions against a candidate given as files (the
//! admin API and the dashboard's Rules → Replay): the candidate is the
//! served set with the given files in place of those of the same name (or
//! only the given files), checked like `warden check`, then replayed as
//! `warden replay` does ([`crate::replay`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;
use warden_engine::{Policy, SourceFile};

use super::invalid;
use crate::error::{ApiError, DiagnosticBody};
use crate::replay::ReplayReport;
use crate::state::AppState;
use crate::store::ReplayRange;

/// Most files in one candidate.
pub(crate) const MAX_FILES: usize = 100;

/// One file of a candidate set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CandidateFile {
    /// Its name relative to the policy directory, ending in `.warden`
    /// (e.g. `risk.warden`); a served file of the same name is replaced.
    pub(crate) name: String,
    /// Its text.
    pub(crate) text: String,
}

/// The period a replay covers: the last `since` (e.g. `7d`), or `from` /
/// `to`; none of them: the last 7 days.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Period {
    /// A duration such as `7d` or `12h`.
    pub(crate) since: Option<String>,
    /// Created at or after.
    pub(crate) from: Option<DateTime<Utc>>,
    /// Created before.
    pub(crate) to: Option<DateTime<Utc>>,
}

impl Period {
    /// The time range as of now; 422 naming `since` (unreadable, or given
    /// with `from`/`to`) or `from` (not before `to`).
    pub(crate) fn range(&self, customer_id: Option<Uuid>) -> Result<ReplayRange, ApiError> {
        let now = crate::store::now();
        let (from, to) = match (&self.since, self.from, self.to) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(invalid("since", "give `since` or `from`/`to`, not both"));
            }
            (Some(since), None, None) => {
                let d = humantime::parse_duration(since.trim())
                    .ok()
                    .and_then(|d| chrono::Duration::from_std(d).ok())
                    .filter(|d| *d > chrono::Duration::zero())
                    .ok_or_else(|| {
                        invalid("since", format!("`since` must be a duration such as `7d` or `12h`, got `{since}`"))
                    })?;
                (Some(now - d), None)
            }
            (None, None, None) => (Some(now - chrono::Duration::days(7)), None),
            (None, from, to) => (from, to),
        };
        if let (Some(f), Some(t)) = (from, to) {
            if f >= t {
                return Err(invalid("from", "`from` must be before `to`"));
            }
        }
        Ok(ReplayRange { from, to, customer_id })
    }
}

/// The candidate: the served files with `files` in place of those of the
/// same name (only `files` when `replace`). 422 naming `files` for no file,
/// too many, a name that is not a relative `.warden` path, or a name given
/// twice; 422 `policy_invalid` with every diagnostic when it does not
/// compile.
pub(crate) fn candidate(state: &AppState, files: Vec<CandidateFile>, replace: bool) -> Result<Policy, ApiError> {
    if files.is_empty() || files.len() > MAX_FILES {
        return Err(invalid("files", format!("give 1 to {MAX_FILES} files")));
    }
    let mut seen = std::collections::HashSet::new();
    for f in &files {
        let name_ok = f.name.ends_with(".warden")
            && !f.name.starts_with('/')
            && f.name.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..");
        if !name_ok {
            return Err(invalid(
                "files",
                format!("`{}` is not a policy file name: a relative path ending in `.warden`", f.name.escape_default()),
            ));
        }
        if !seen.insert(f.name.as_str()) {
            return Err(invalid("files", format!("`{}` is given twice", f.name)));
        }
    }
    let mut sources: Vec<SourceFile> = if replace {
        Vec::new()
    } else {
        let served = state.live.load();
        served.policy.set().sources.iter().filter(|s| !seen.contains(s.name.as_str())).cloned().collect()
    };
    sources.extend(files.into_iter().map(|f| SourceFile::new(f.name, f.text)));
    sources.sort_by(|a, b| a.name.cmp(&b.name));
    Policy::from_sources(sources)
        .map(|(policy, _warnings)| policy)
        .map_err(|diagnostics| ApiError::PolicyInvalid(diagnostics.iter().map(DiagnosticBody::of).collect()))
}

/// Replays the decisions of `range` against `candidate`.
pub(crate) async fn run(state: &AppState, candidate: Policy, range: ReplayRange) -> Result<ReplayReport, ApiError> {
    Ok(crate::replay::replay(&state.store, Arc::new(candidate), range).await?)
}
