//! What a replay found: counts per kind of change, per rule responsible,
//! why rows were not replayed, and example decision ids.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;
use warden_engine::Decision;

use super::Outcome;
use crate::store::{ReplayRange, ReplayRow};

/// Example decision ids kept per kind.
const EXAMPLES: usize = 10;

/// How a replayed decision compares with the recorded one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Same verdict, score and reason.
    Unchanged,
    /// Allowed, now blocked.
    AllowedToBlocked,
    /// Blocked, now allowed.
    BlockedToAllowed,
    /// Same verdict, another risk score.
    Score,
    /// Same verdict and score, another reason.
    Reason,
}

impl Change {
    /// The change from the recorded row to the candidate's decision.
    pub fn between(row: &ReplayRow, d: &Decision<'_>) -> Self {
        match (row.allowed, d.allowed) {
            (true, false) => Self::AllowedToBlocked,
            (false, true) => Self::BlockedToAllowed,
            _ if row.risk_score != d.risk_score => Self::Score,
            _ if row.reason != d.reason => Self::Reason,
            _ => Self::Unchanged,
        }
    }
}

/// Why a row was not replayed (see the module documentation of
/// `crate::replay`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReplayed {
    /// The request was refused before evaluation; nothing was recorded.
    RejectedBeforeEvaluation,
    /// The row's policy version's declarations were never recorded.
    VersionNotRecorded,
    /// The candidate refuses this field name; the row's version did not.
    ForbiddenAdded(String),
    /// The candidate decides on this field, which the row's policy version
    /// did not record.
    FieldNotRecorded(String),
    /// The row holds the old default of this field, which the candidate
    /// changes: the request may not have given it.
    DefaultChanged(String),
    /// A string of this field may have been cut to 200 characters.
    ValueCut(String),
    /// The recorded fields don't nest into one request.
    NotRebuilt,
}

/// Changes attributed to one rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RuleChanges {
    /// Allowed decisions now blocked.
    pub allowed_to_blocked: u64,
    /// Blocked decisions now allowed.
    pub blocked_to_allowed: u64,
    /// Same verdict, another score.
    pub score_changed: u64,
    /// Same verdict and score, another reason.
    pub reason_changed: u64,
}

/// Rows not replayed, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct NotReplayedCounts {
    /// All of them.
    pub total: u64,
    /// Requests refused before evaluation (nothing of them was recorded).
    pub rejected_before_evaluation: u64,
    /// Rows of policy versions whose declarations were never recorded (served
    /// before Warden recorded them): absent fields and defaults can't be
    /// told apart.
    pub version_not_recorded: u64,
    /// Per field name the candidate refuses and the row's version did not:
    /// the request may have carried it, undeclared and so unrecorded.
    pub forbidden_added: BTreeMap<String, u64>,
    /// Per field the candidate decides on that the row's policy version did
    /// not record.
    pub field_not_recorded: BTreeMap<String, u64>,
    /// Per field whose default the candidate changes, on rows holding the
    /// old default.
    pub default_changed: BTreeMap<String, u64>,
    /// Per field whose recorded string may have been altered (cut to 200
    /// characters, or a NUL recorded as U+FFFD).
    pub value_cut: BTreeMap<String, u64>,
    /// Rows whose fields don't nest into one request.
    pub not_rebuilt: u64,
}

/// Up to 10 decision ids per kind, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Examples {
    /// Allowed, now blocked.
    pub allowed_to_blocked: Vec<Uuid>,
    /// Blocked, now allowed.
    pub blocked_to_allowed: Vec<Uuid>,
    /// Another score.
    pub score_changed: Vec<Uuid>,
    /// Another reason.
    pub reason_changed: Vec<Uuid>,
    /// Now refused by the candidate.
    pub now_rejected: Vec<Uuid>,
    /// Not replayed (any reason).
    pub not_replayed: Vec<Uuid>,
}

/// A replay's report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReplayReport {
    /// The candidate set's version.
    pub candidate_version: String,
    /// The period's start, if bounded.
    pub from: Option<DateTime<Utc>>,
    /// The period's end, if bounded.
    pub to: Option<DateTime<Utc>>,
    /// The customer, if one.
    pub customer_id: Option<Uuid>,
    /// Audit rows read.
    pub rows: u64,
    /// Rows the candidate decided.
    pub replayed: u64,
    /// Same verdict, score and reason.
    pub unchanged: u64,
    /// Allowed, now blocked.
    pub allowed_to_blocked: u64,
    /// Blocked, now allowed.
    pub blocked_to_allowed: u64,
    /// Same verdict, another score.
    pub score_changed: u64,
    /// Same verdict and score, another reason.
    pub reason_changed: u64,
    /// Requests the candidate now refuses, by rejection code.
    pub now_rejected: BTreeMap<String, u64>,
    /// Rows not replayed, and why.
    pub not_replayed: NotReplayedCounts,
    /// Per rule responsible for a change: the score rules whose
    /// contribution differs, and the candidate's deny and allow rules
    /// deciding a changed verdict or reason.
    pub rules: BTreeMap<String, RuleChanges>,
    /// Example decision ids.
    pub examples: Examples,
    /// Time taken, in seconds.
    pub seconds: f64,
    /// Rows read per minute.
    pub rows_per_minute: f64,
}

fn keep(list: &mut Vec<Uuid>, id: Uuid) {
    if list.len() < EXAMPLES {
        list.push(id);
    }
}

impl ReplayReport {
    pub(super) fn new(candidate_version: &str, range: ReplayRange) -> Self {
        Self {
            candidate_version: candidate_version.to_owned(),
            from: range.from,
            to: range.to,
            customer_id: range.customer_id,
            rows: 0,
            replayed: 0,
            unchanged: 0,
            allowed_to_blocked: 0,
            blocked_to_allowed: 0,
            score_changed: 0,
            reason_changed: 0,
            now_rejected: BTreeMap::new(),
            not_replayed: NotReplayedCounts::default(),
            rules: BTreeMap::new(),
            examples: Examples::default(),
            seconds: 0.0,
            rows_per_minute: 0.0,
        }
    }

    pub(super) fn add(&mut self, row: &ReplayRow, outcome: Outcome) {
        self.rows += 1;
        let id = row.decision_id;
        match outcome {
            Outcome::Replayed(change, rules) => {
                self.replayed += 1;
                let (count, examples): (&mut u64, &mut Vec<Uuid>) = match change {
                    Change::Unchanged => {
                        self.unchanged += 1;
                        return;
                    }
                    Change::AllowedToBlocked => (&mut self.allowed_to_blocked, &mut self.examples.allowed_to_blocked),
                    Change::BlockedToAllowed => (&mut self.blocked_to_allowed, &mut self.examples.blocked_to_allowed),
                    Change::Score => (&mut self.score_changed, &mut self.examples.score_changed),
                    Change::Reason => (&mut self.reason_changed, &mut self.examples.reason_changed),
                };
                *count += 1;
                keep(examples, id);
                self.attribute(change, rules);
            }
            Outcome::NowRejected(code) => {
                self.replayed += 1;
                *self.now_rejected.entry(code.to_owned()).or_default() += 1;
                keep(&mut self.examples.now_rejected, id);
            }
            Outcome::Skipped(why) => {
                let n = &mut self.not_replayed;
                n.total += 1;
                match why {
                    NotReplayed::RejectedBeforeEvaluation => n.rejected_before_evaluation += 1,
                    NotReplayed::VersionNotRecorded => n.version_not_recorded += 1,
                    NotReplayed::ForbiddenAdded(f) => *n.forbidden_added.entry(f).or_default() += 1,
                    NotReplayed::FieldNotRecorded(f) => *n.field_not_recorded.entry(f).or_default() += 1,
                    NotReplayed::DefaultChanged(f) => *n.default_changed.entry(f).or_default() += 1,
                    NotReplayed::ValueCut(f) => *n.value_cut.entry(f).or_default() += 1,
                    NotReplayed::NotRebuilt => n.not_rebuilt += 1,
                }
                keep(&mut self.examples.not_replayed, id);
            }
        }
    }

    fn attribute(&mut self, change: Change, rules: BTreeSet<String>) {
        for rule in rules {
            let r = self.rules.entry(rule).or_default();
            match change {
                Change::AllowedToBlocked => r.allowed_to_blocked += 1,
                Change::BlockedToAllowed => r.blocked_to_allowed += 1,
                Change::Score => r.score_changed += 1,
                Change::Reason => r.reason_changed += 1,
                Change::Unchanged => {}
            }
        }
    }

    pub(super) fn finish(&mut self, took: Duration) {
        self.seconds = took.as_secs_f64();
        // Whole rows per minute; 0 when nothing was read.
        #[allow(clippy::cast_precision_loss)] // row counts are far below 2^52
        let rows = self.rows as f64;
        self.rows_per_minute = if self.seconds > 0.0 { rows * 60.0 / self.seconds } else { 0.0 };
    }

    /// Whether any replayed decision changed.
    pub fn changed(&self) -> bool {
        self.allowed_to_blocked + self.blocked_to_allowed + self.score_changed + self.reason_changed > 0
            || !self.now_rejected.is_empty()
    }

    /// The report for a person.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let range = match (self.from, self.to) {
            (Some(f), Some(t)) => format!("from {} to {}", f.to_rfc3339(), t.to_rfc3339()),
            (Some(f), None) => format!("since {}", f.to_rfc3339()),
            (None, Some(t)) => format!("before {}", t.to_rfc3339()),
            (None, None) => "ever recorded".to_owned(),
        };
        let customer = self.customer_id.map(|c| format!(", customer {c}")).unwrap_or_default();
        let _ = writeln!(out, "replay of the decisions {range}{customer} against candidate {}", self.candidate_version);
        let _ = writeln!(
            out,
            "{} row(s) read in {:.1} s ({:.0} rows/min); {} replayed, {} not replayed",
            self.rows, self.seconds, self.rows_per_minute, self.replayed, self.not_replayed.total
        );
        let _ = writeln!(out, "  unchanged           {}", self.unchanged);
        let lines = [
            ("allowed -> blocked", self.allowed_to_blocked, &self.examples.allowed_to_blocked),
            ("blocked -> allowed", self.blocked_to_allowed, &self.examples.blocked_to_allowed),
            ("score changed", self.score_changed, &self.examples.score_changed),
            ("reason changed", self.reason_changed, &self.examples.reason_changed),
        ];
        for (label, count, examples) in lines {
            let _ = writeln!(out, "  {label:<19} {count}{}", example_list(examples));
        }
        for (code, count) in &self.now_rejected {
            let _ = writeln!(out, "  now rejected ({code}) {count}");
        }
        if !self.rules.is_empty() {
            let _ = writeln!(out, "by rule (a->b: allowed->blocked, b->a: blocked->allowed):");
            for (rule, c) in &self.rules {
                let _ = writeln!(
                    out,
                    "  {rule}: a->b {}, b->a {}, score {}, reason {}",
                    c.allowed_to_blocked, c.blocked_to_allowed, c.score_changed, c.reason_changed
                );
            }
        }
        let n = &self.not_replayed;
        if n.total > 0 {
            let _ = writeln!(out, "not replayed ({}):", n.total);
            if n.rejected_before_evaluation > 0 {
                let _ =
                    writeln!(out, "  {} refused before evaluation (nothing recorded)", n.rejected_before_evaluation);
            }
            if n.version_not_recorded > 0 {
                let _ = writeln!(
                    out,
                    "  {} of policy versions whose declared fields were never recorded",
                    n.version_not_recorded
                );
            }
            for (field, count) in &n.forbidden_added {
                let _ = writeln!(
                    out,
                    "  {count} may have carried `{field}`, which the candidate refuses and their version did not"
                );
            }
            for (field, count) in &n.field_not_recorded {
                let _ = writeln!(
                    out,
                    "  {count} lack `{field}`, which the candidate decides on and their policy version did not record"
                );
            }
            for (field, count) in &n.default_changed {
                let _ = writeln!(out, "  {count} hold the old default of `{field}`, which the candidate changes");
            }
            for (field, count) in &n.value_cut {
                let _ = writeln!(
                    out,
                    "  {count} hold a `{field}` string the audit log may have altered (cut to 200 characters, or a NUL)"
                );
            }
            if n.not_rebuilt > 0 {
                let _ = writeln!(out, "  {} could not be rebuilt into a request", n.not_rebuilt);
            }
        }
        out
    }
}

fn example_list(ids: &[Uuid]) -> String {
    if ids.is_empty() {
        return String::new();
    }
    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    format!("   e.g. {}", ids.join(", "))
}
