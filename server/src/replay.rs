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
//! - `field_not_recorded`: the candidate decides on a field (a rule reads
//!   it, or it is required) that the row lacks and that the row's policy
//!   version did not declare (or whose declarations were never recorded, in
//!   `policy_version`), so its value is unknown;
//! - `default_changed`: the row holds the old version's default for a
//!   field whose default the candidate changes: the request may not have
//!   given it;
//! - `value_cut`: a string the candidate decides on was cut to the audit
//!   log's 200 characters;
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
const CHUNK: u32 = 5000;

/// Longest string an audit row keeps (see `http::check`): a recorded string
/// this long may have been cut.
const MAX_AUDIT_STRING: usize = 200;

/// What one policy version declared, as recorded in `policy_version`.
type Declared = Option<HashMap<String, Option<Value>>>;

/// Re-decides every row of `range` against `candidate` under the override
/// tables stored now, and reports what would change.
///
/// # Errors
/// A database error reading the rows or the overrides.
pub async fn replay(store: &Store, candidate: Arc<Policy>, range: ReplayRange) -> Result<ReplayReport, StoreError> {
    let started = Instant::now();
    let tables = store.load_overrides().await?;
    let snapshot = Snapshot::build(candidate, tables, 0);
    let mut replayer = Replayer::new(snapshot);
    let mut report = ReplayReport::new(replayer.snapshot.policy.version(), range);
    let mut after = None;
    loop {
        let rows = store.replay_chunk(&range, after, CHUNK).await?;
        let Some(last) = rows.last() else { break };
        after = Some((last.created_at, last.id));
        let full = rows.len() == CHUNK as usize;
        for row in &rows {
            let declared = replayer.declared(store, &row.policy_version).await?;
            let outcome = replayer.one(row, declared.as_ref());
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

/// The candidate as a snapshot (its overrides resolved), what it decides
/// on, and the recorded declarations of each policy version met.
struct Replayer {
    snapshot: Snapshot,
    decided_on: BTreeSet<String>,
    /// The candidate's default per field, where it has one.
    defaults: HashMap<String, Value>,
    versions: HashMap<String, Arc<Declared>>,
}

impl Replayer {
    fn new(snapshot: Snapshot) -> Self {
        let decided_on = snapshot.policy.fields_decided_on();
        let defaults = snapshot
            .policy
            .declared_field_defaults()
            .into_iter()
            .filter_map(|(path, default)| Some((path, default?)))
            .collect();
        Self { snapshot, decided_on, defaults, versions: HashMap::new() }
    }

    /// The fields `version` declared, with their defaults (read once).
    async fn declared(&mut self, store: &Store, version: &str) -> Result<Arc<Declared>, StoreError> {
        if let Some(d) = self.versions.get(version) {
            return Ok(d.clone());
        }
        let d = Arc::new(store.declared_by(version).await?.map(|fields| fields.into_iter().collect()));
        self.versions.insert(version.to_owned(), d.clone());
        Ok(d)
    }

    /// Replays one row.
    fn one(&self, row: &ReplayRow, declared: &Declared) -> Outcome {
        if row.status == "rejected" {
            return Outcome::Skipped(NotReplayed::RejectedBeforeEvaluation);
        }
        let Some(meta) = row.meta.0.as_object() else { return Outcome::Skipped(NotReplayed::NotRebuilt) };
        if let Some(why) = self.unfaithful(meta, declared.as_ref()) {
            return Outcome::Skipped(why);
        }
        let Some(request) = rebuild(meta) else { return Outcome::Skipped(NotReplayed::NotRebuilt) };
        let (overrides, _) = self.snapshot.for_customer(&row.customer_id);
        match self.snapshot.policy.decide_with(&request, overrides) {
            Err(rejection) => Outcome::NowRejected(rejection.code()),
            Ok(d) => {
                let change = Change::between(row, &d);
                let rules = if change == Change::Unchanged { BTreeSet::new() } else { responsible(row, &d, self) };
                Outcome::Replayed(change, rules)
            }
        }
    }

    /// Why the row can't be replayed faithfully, if it can't.
    fn unfaithful(
        &self,
        meta: &Map<String, Value>,
        declared: Option<&HashMap<String, Option<Value>>>,
    ) -> Option<NotReplayed> {
        for field in &self.decided_on {
            let old = declared.and_then(|d| d.get(field));
            match meta.get(field) {
                // Absent from the row: fine only if its version declared it
                // (then the request did not give it).
                None if old.is_none() => return Some(NotReplayed::FieldNotRecorded(field.clone())),
                None => {}
                Some(value) => {
                    if let (Some(Some(old_default)), Some(new_default)) = (old, self.defaults.get(field)) {
                        if same(value, old_default) && !same(old_default, new_default) {
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

/// Whether `value` holds a string as long as the audit log keeps.
fn may_be_cut(value: &Value) -> bool {
    match value {
        Value::String(s) => s.chars().count() >= MAX_AUDIT_STRING,
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

/// The rules behind a change: the score rules whose contribution differs
/// between the recorded decision and the candidate's (fired in one and not
/// the other, or with another score), and the candidate's deny and allow
/// rules that fired when the verdict or the reason changed.
fn responsible(row: &ReplayRow, d: &Decision<'_>, replayer: &Replayer) -> BTreeSet<String> {
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
        let decisive = replayer
            .snapshot
            .policy
            .rules()
            .filter(|r| !matches!(r.effect, warden_engine::Effect::Score(_)) && r.reason == d.reason)
            .map(|r| r.name.to_owned());
        out.extend(decisive);
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn dotted_paths_nest_back_into_a_request() {
        let meta = json!({"model": "gpt-4", "metadata.a": true, "metadata.user.team": "x", "metadata.tags": ["p"]});
        let Some(Value::Object(m)) = Some(meta) else { return };
        assert_eq!(
            rebuild(&m),
            Some(json!({"model": "gpt-4", "metadata": {"a": true, "tags": ["p"], "user": {"team": "x"}}}))
        );
        let clash = json!({"metadata": "x", "metadata.a": true});
        let Value::Object(m) = clash else { return };
        assert_eq!(rebuild(&m), None, "a field that is also an object can't be rebuilt");
    }

    #[test]
    fn strings_at_the_audit_limit_may_have_been_cut() {
        assert!(may_be_cut(&json!("x".repeat(200))));
        assert!(may_be_cut(&json!(["a", "é".repeat(200)])));
        assert!(!may_be_cut(&json!("x".repeat(199))));
        assert!(!may_be_cut(&json!(12)));
    }
}
