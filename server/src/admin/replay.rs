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
    #[schema(pattern = r"^(?:[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}/){0,8}[A-Za-z0-9_-][A-Za-z0-9_.-]{0,93}\.warden$")]
    pub(crate) name: String,
    /// Its text (no NUL character).
    #[schema(pattern = "^[^\\u0000]*$")]
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
    /// The time range as of now; 422 naming `since` when it is not a
    /// period such as `7d` (see `parse_since`). `since` is a start of its
    /// own: given with `from`, the later of the two applies; `to` applies
    /// as given. A start not before `to` is an empty period, as the log's
    /// filters treat it. Nothing given: the last 7 days.
    pub(crate) fn range(&self, customer_id: Option<Uuid>) -> Result<ReplayRange, ApiError> {
        let now = crate::store::now();
        let since = match &self.since {
            Some(since) => Some(parse_since(since).and_then(|d| now.checked_sub_signed(d)).ok_or_else(|| {
                invalid(
                    "since",
                    format!(
                        "`since` must be a whole number of s, m, h, d or w, 1 to 999999, such as `7d`; got `{}`",
                        since.escape_default()
                    ),
                )
            })?),
            None => None,
        };
        let from = match (since, self.from, self.to) {
            (None, None, None) => Some(now - chrono::Duration::days(7)),
            (Some(s), Some(f), _) => Some(s.max(f)),
            (s, f, _) => s.or(f),
        };
        Ok(ReplayRange { from, to: self.to, customer_id })
    }
}

/// `since` as a duration, when it is a whole number from 1 to 999,999
/// and a unit, `s`, `m`, `h`, `d` or `w` (the API document's pattern).
/// Parsed by hand: the pattern is small, and humantime would accept more
/// than the document says.
fn parse_since(since: &str) -> Option<chrono::Duration> {
    let unit = since.chars().last()?;
    let digits = since.get(..since.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 6 || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    Some(match unit {
        's' => chrono::Duration::seconds(n),
        'm' => chrono::Duration::minutes(n),
        'h' => chrono::Duration::hours(n),
        'd' => chrono::Duration::days(n),
        'w' => chrono::Duration::weeks(n),
        _ => return None,
    })
}

/// Whether `name` is a candidate file name (the pattern of
/// [`CandidateFile::name`]): path segments that each
/// start with a letter, digit, `_` or `-` (so no `.` or `..`, and no empty
/// one), of letters, digits, `_`, `-` and `.`, the last ending in
/// `.warden`. Checked by hand, like the pattern says, rather than with a
/// regex engine for one rule.
fn is_file_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".warden") else { return false };
    let segments: Vec<&str> = stem.split('/').collect();
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.';
    let first_ok = |s: &str| s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let (last, dirs) = segments.split_last().map_or(("", &[][..]), |(l, d)| (*l, d));
    dirs.len() <= 8
        && dirs.iter().all(|d| first_ok(d) && d.len() <= 100 && d.bytes().all(allowed))
        && first_ok(last)
        && last.len() <= 94
        && last.bytes().all(allowed)
}

/// The candidate: the served files with `files` in place of those of the
/// same name (only `files` when `replace`). 422 naming `files` for no file,
/// too many, or a name that is not a relative `.warden` path; 409 for a name
/// given twice; 422 `policy_invalid` with every diagnostic when it does not
/// compile.
pub(crate) fn candidate(state: &AppState, files: Vec<CandidateFile>, replace: bool) -> Result<Policy, ApiError> {
    if files.is_empty() || files.len() > MAX_FILES {
        return Err(invalid("files", format!("give 1 to {MAX_FILES} files")));
    }
    let mut seen = std::collections::HashSet::new();
    for f in &files {
        if !is_file_name(&f.name) {
            return Err(invalid(
                "files",
                format!(
                    "`{}` is not a policy file name: a relative path of letters, digits, `_`, `-` and `.`, ending in `.warden`",
                    f.name.escape_default()
                ),
            ));
        }
        // Two texts for one file contradict each other: a conflict within
        // the request (409), not a malformed field.
        if !seen.insert(f.name.as_str()) {
            return Err(ApiError::Conflict(format!("`{}` is given twice, with two texts for one file", f.name)));
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
    crate::replay::replay(&state.store, Arc::new(candidate), range).await.map_err(|e| match e {
        crate::replay::ReplayError::Store(e) => ApiError::from(e),
        crate::replay::ReplayError::Worker(m) => ApiError::Internal(m),
    })
}
