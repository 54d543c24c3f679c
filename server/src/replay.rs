//! Replay: re-deciding recorded decisions against a candidate policy set
//! (`warden replay`, `POST /api/admin/replay`, the dashboard's Rules →
//! Replay), with the overrides as they are now.
//!
//! Each audit row keeps the declared fields its request was decided on
//! (`meta`, by dotted path, defaults filled in, absent fields left out), so
//! the request the candidate decides is rebuilt from them. A row is only
//! replayed when that rebuild is faithful for the candidate; otherwise it
//! is counted under `not_replayed` with the reason, never guessed:
//!
//! - `rejected_before_evaluation`: the request was refused (content field,
//!   wrong type, …) and nothing of it was recorded;
//! - `version_not_recorded`: the declarations of the row's policy version
//!   were never recorded (`policy_version`; versions served before that
//!   table existed), so absent fields and defaults can't be told apart;
//! - `forbidden_added`: the candidate refuses a field name the row's
//!   version accepted, which the request may have carried undeclared;
//! - `field_not_recorded`: the candidate declares (and so reads) a field
//!   the row lacks and its policy version did not declare: its value is
//!   unknown;
//! - `default_changed`: the row holds the old version's default for a
//!   field whose default the candidate changes or removes: the request may
//!   not have given it;
//! - `value_cut`: a string the candidate reads may have been altered by the
//!   audit log (cut to 200 characters, or a NUL recorded as U+FFFD);
//! - `not_rebuilt`: the recorded fields don't nest into one request.

mod report;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};
use warden_engine::{Decision, Policy};

pub use report::{Change, Examples, NotReplayed, NotReplayedCounts, ReplayReport, RuleChanges};

use crate::live::Snapshot;
use crate::store::{ReplayRange, ReplayRow, Store, StoreError};

/// Rows read per query.
pub const CHUNK: u32 = 5000;

/// Longest string an audit row keeps (see `http::check`): a recorded string
/// this long may have been cut.
const MAX_AUDIT_STRING: usize = 200;

/// What one policy version declared, as recorded in `policy_version`
/// (`None`: never recorded).
type Declared = Option<Arc<VersionRecord>>;

/// A policy version's recorded declarations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VersionRecord {
    /// Each declared field's dotted path and default (`None`: none).
    pub fields: HashMap<String, Option<Value>>,
    /// Its forbidden field names.
    pub forbidden: Vec<String>,
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The rows or the overrides could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The task deciding a chunk stopped (it does not panic; a runtime
    /// shutting down can cancel it).
    #[error("the replay's worker stopped: {0}")]
    Worker(String),
}

/// Re-decides every row of `range` against `candidate` under the override
/// tables stored now, and reports what would change.
///
/// # Errors
/// [`ReplayError::Store`] when the rows or the overrides can't be read.
pub async fn replay(store: &Store, candidate: Arc<Policy>, range: ReplayRange) -> Result<ReplayReport, ReplayError> {
    replay_in_chunks(store, candidate, range, CHUNK).await
}

/// [`replay`], reading `chunk` rows per query.
///
/// # Errors
/// As [`replay`].
pub async fn replay_in_chunks(
    store: &Store,
    candidate: Arc<Policy>,
    range: ReplayRange,
    chunk: u32,
) -> Result<ReplayReport, ReplayError> {
    let started = Instant::now();
    let tables = store.load_overrides().await?;
    let replayer = Arc::new(Replayer::new(Snapshot::build(candidate, tables, 0)));
    let mut report = ReplayReport::new(replayer.snapshot.policy.version(), range);
    let mut versions: HashMap<String, Declared> = HashMap::new();
    let mut after = None;
    loop {
        let rows = store.replay_chunk(&range, after, chunk).await?;
        let Some(last) = rows.last() else { break };
        after = Some((last.created_at, last.id));
        let full = rows.len() == chunk as usize;
        for row in &rows {
            if !versions.contains_key(&row.policy_version) {
                let record = store.policy_version_record(&row.policy_version).await?.map(Arc::new);
                versions.insert(row.policy_version.clone(), record);
            }
        }
        let declared: Vec<Declared> = rows.iter().map(|r| versions.get(&r.policy_version).cloned().flatten()).collect();
        // Deciding a chunk is CPU work: off the async workers, so a replay
        // from the API or the dashboard never delays `/v1/check`.
        let worker = replayer.clone();
        let decided = tokio::task::spawn_blocking(move || {
            let outcomes: Vec<Outcome> = rows.iter().zip(&declared).map(|(r, d)| worker.one(r, d.as_deref())).collect();
            (rows, outcomes)
        })
        .await;
        let (rows, outcomes) = decided.map_err(|e| ReplayError::Worker(e.to_string()))?;
        for (row, outcome) in rows.iter().zip(outcomes) {
            report.add(row, outcome);
        }
        if !full {
            break;
        }
    }
    report.finish(started.elapsed());
    Ok(report)
}

/// What became of one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Decided by the candidate: how it compares, and the rules responsible
    /// for a change.
    Replayed(Change, BTreeSet<String>),
    /// The candidate refuses the rebuilt request (its rejection code).
    NowRejected(&'static str),
    /// Not replayed, and why.
    Skipped(NotReplayed),
}

/// The candidate as a snapshot (its overrides resolved), what it reads,
/// and its defaults.
struct Replayer {
    snapshot: Snapshot,
    /// Every field the candidate declares: each is read (type-checked, and
    /// perhaps required, defaulted or tested by a rule).
    declared: Vec<(String, Option<Value>)>,
    /// The candidate's forbidden field names.
    forbidden: Vec<String>,
}

impl Replayer {
    fn new(snapshot: Snapshot) -> Self {
        let declared = snapshot.policy.declared_field_defaults();
        let forbidden = snapshot.policy.set().forbidden_fields.clone();
        Self { snapshot, declared, forbidden }
    }

    /// Replays one row.
    fn one(&self, row: &ReplayRow, declared: Option<&VersionRecord>) -> Outcome {
        if row.status == "rejected" {
            return Outcome::Skipped(NotReplayed::RejectedBeforeEvaluation);
        }
        let Some(old) = declared else { return Outcome::Skipped(NotReplayed::VersionNotRecorded) };
        let Some(meta) = row.meta.0.as_object() else { return Outcome::Skipped(NotReplayed::NotRebuilt) };
        if let Some(why) = self.unfaithful(meta, old) {
            return Outcome::Skipped(why);
        }
        let Some(request) = rebuild(meta) else { return Outcome::Skipped(NotReplayed::NotRebuilt) };
        let (overrides, _) = self.snapshot.for_customer(&row.customer_id);
        match self.snapshot.policy.decide_with(&request, overrides) {
            Err(rejection) => Outcome::NowRejected(rejection.code()),
            Ok(d) => {
                let change = Change::between(row, &d);
                let rules =
                    if change == Change::Unchanged { BTreeSet::new() } else { self.responsible(row, &d, &request) };
                Outcome::Replayed(change, rules)
            }
        }
    }

    /// Why the row can't be replayed faithfully, if it can't.
    fn unfaithful(&self, meta: &Map<String, Value>, old: &VersionRecord) -> Option<NotReplayed> {
        // A name the candidate refuses that the row's version did not: the
        // request may have carried it, undeclared, so unrecorded.
        if let Some(name) = self.forbidden.iter().find(|n| !old.forbidden.iter().any(|o| o.eq_ignore_ascii_case(n))) {
            return Some(NotReplayed::ForbiddenAdded(name.clone()));
        }
        for (field, new_default) in &self.declared {
            let was_declared = old.fields.get(field);
            match meta.get(field) {
                // Absent from the row: fine only if its version declared it
                // (then the request did not give it).
                None if was_declared.is_none() => return Some(NotReplayed::FieldNotRecorded(field.clone())),
                None => {}
                Some(value) => {
                    // The old default, which the candidate does not share:
                    // the request may not have given the field.
                    if let Some(Some(old_default)) = was_declared {
                        if same(value, old_default) && !new_default.as_ref().is_some_and(|d| same(old_default, d)) {
                            return Some(NotReplayed::DefaultChanged(field.clone()));
                        }
                    }
                    if may_be_cut(value) {
                        return Some(NotReplayed::ValueCut(field.clone()));
                    }
                }
            }
        }
        None
    }

    /// The rules behind a change: the score rules whose contribution
    /// differs between the recorded decision and the candidate's (fired in
    /// one and not the other, or with another score); the candidate's
    /// enforced deny and allow rules that fired, when the verdict or the
    /// reason changed; and its deny and allow rules giving the recorded
    /// reason (narrowed, they no longer decide).
    fn responsible(&self, row: &ReplayRow, d: &Decision<'_>, request: &Value) -> BTreeSet<String> {
        let old: BTreeMap<&str, i64> =
            row.contributions.iter().flat_map(|c| c.0.iter()).map(|c| (c.rule.as_str(), c.score)).collect();
        let new: BTreeMap<&str, i64> = d.contributions.iter().map(|c| (c.rule, c.score)).collect();
        let mut out: BTreeSet<String> = old
            .keys()
            .chain(new.keys())
            .filter(|rule| old.get(*rule) != new.get(*rule))
            .map(|rule| (*rule).to_owned())
            .collect();
        if d.allowed != row.allowed || d.reason != row.reason {
            let policy = &self.snapshot.policy;
            let layered = self.layered_overrides(&row.customer_id);
            if let Ok(ex) = policy.explain(request, Some(&layered)) {
                let decisive =
                    ex.rules.iter().filter(|t| t.fired && t.mode == "enforce" && !t.effect.starts_with("score"));
                out.extend(decisive.map(|t| t.rule.to_owned()));
            }
            let gave_old_reason = policy
                .rules()
                .filter(|r| !matches!(r.effect, warden_engine::Effect::Score(_)) && r.reason == row.reason)
                .map(|r| r.name.to_owned());
            out.extend(gave_old_reason);
        }
        out
    }

    /// The customer's overrides layered over the global ones, as the
    /// candidate applies them.
    fn layered_overrides(&self, customer: &uuid::Uuid) -> warden_engine::Overrides {
        let in_force = &self.snapshot.in_force;
        match in_force.customers.get(customer) {
            Some(o) => self.snapshot.policy.layer(&in_force.global, o),
            None => in_force.global.clone(),
        }
    }
}

/// JSON equality with numbers compared as values (`0` and `0.0` are the
/// same number: defaults are recorded as floats).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        _ => a == b,
    }
}

/// Whether `value` holds a string the audit log may have altered: as long
/// as it keeps (cut there), or holding U+FFFD (what a NUL, which the
/// databases can't store, is recorded as).
fn may_be_cut(value: &Value) -> bool {
    match value {
        Value::String(s) => s.chars().count() >= MAX_AUDIT_STRING || s.contains('\u{FFFD}'),
        Value::Array(items) => items.iter().any(may_be_cut),
        _ => false,
    }
}

/// The request whose declared fields are `meta` (dotted paths nested back
/// into objects); `None` when one path is a prefix of another.
fn rebuild(meta: &Map<String, Value>) -> Option<Value> {
    let mut root = Map::new();
    for (path, value) in meta {
        let mut node = &mut root;
        let mut segments = path.split('.').peekable();
        while let Some(seg) = segments.next() {
            if segments.peek().is_none() {
                if node.contains_key(seg) {
                    return None;
                }
                node.insert(seg.to_owned(), value.clone());
            } else {
                let child = node.entry(seg.to_owned()).or_insert_with(|| Value::Object(Map::new()));
                node = child.as_object_mut()?;
            }
        }
    }
    Some(Value::Object(root))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn dotted_paths_nest_back_into_a_request() {
        let meta = json!({"model": "gpt-4", "metadata.a": true, "metadata.user.team": "x", "metadata.tags": ["p"]});
        let Value::Object(m) = meta else { unreachable!("an object literal") };
        assert_eq!(
            rebuild(&m),
            Some(json!({"model": "gpt-4", "metadata": {"a": true, "tags": ["p"], "user": {"team": "x"}}}))
        );
        let clash = json!({"metadata": "x", "metadata.a": true});
        let Value::Object(m) = clash else { unreachable!("an object literal") };
        assert_eq!(rebuild(&m), None, "a field that is also an object can't be rebuilt");
    }

    #[test]
    fn strings_at_the_audit_limit_may_have_been_cut() {
        assert!(may_be_cut(&json!("x".repeat(200))));
        assert!(may_be_cut(&json!(["a", "é".repeat(200)])));
        assert!(!may_be_cut(&json!("x".repeat(199))));
        assert!(may_be_cut(&json!("gpt-4\u{FFFD}")), "a NUL recorded as U+FFFD");
        assert!(!may_be_cut(&json!(12)));
    }
}
