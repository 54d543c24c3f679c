//! What a decision returns: a [`Decision`], an [`Explanation`], or a
//! [`Rejection`] when the request is refused before any rule runs.

use std::borrow::Cow;

use serde::Serialize;
use serde::ser::SerializeMap;

/// The outcome of deciding one request.
///
/// Borrows names from the [`crate::Policy`] it was decided against, so making
/// one allocates nothing but the contributions list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision<'p> {
    /// Whether the operation may go ahead.
    pub allowed: bool,
    /// The summed score of every rule that fired.
    pub risk_score: i64,
    /// The deny or allow rule's reason if one fired; else the reason of the
    /// highest-scoring rule that fired (the first in source order on a tie);
    /// else `"ok"`.
    pub reason: &'p str,
    /// Every score rule that fired with a non-zero score, in source order.
    pub contributions: Vec<Contribution<'p>>,
    /// Content hash of the policy set the decision was made under.
    pub policy_version: &'p str,
    /// The rules in shadow mode whose conditions held, in source order.
    /// They never change `allowed`, `risk_score` or `reason`. Empty (and
    /// left out of the JSON) when none held.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shadow: Vec<ShadowMatch<'p>>,
    /// What the decision would have been had the shadow rules in `shadow`
    /// been enforced; `None` (left out of the JSON) when `shadow` is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow_outcome: Option<ShadowOutcome<'p>>,
}

impl Decision<'_> {
    /// Whether enforcing the shadow rules would change whether the request
    /// is allowed: `Some(true)` allowed → blocked, `Some(false)` blocked →
    /// allowed, `None` no change (or no shadow rule held).
    pub fn shadow_flip(&self) -> Option<Flip> {
        let other = self.shadow_outcome.as_ref()?;
        match (self.allowed, other.allowed) {
            (true, false) => Some(Flip::AllowToBlock),
            (false, true) => Some(Flip::BlockToAllow),
            _ => None,
        }
    }
}

/// A change of `allowed` between two decisions of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flip {
    /// Allowed, would be blocked.
    AllowToBlock,
    /// Blocked, would be allowed.
    BlockToAllow,
}

impl Flip {
    /// `allow_to_block` or `block_to_allow`, as metrics and the admin API
    /// name them.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllowToBlock => "allow_to_block",
            Self::BlockToAllow => "block_to_allow",
        }
    }
}

/// A shadow rule whose condition held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ShadowMatch<'p> {
    /// The rule's name.
    pub rule: &'p str,
    /// `score`, `deny` or `allow`.
    pub effect: &'static str,
    /// What it would add to the score (after overrides); 0 for deny and
    /// allow rules.
    pub score: i64,
}

/// A decision's outcome had its shadow rules been enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ShadowOutcome<'p> {
    /// Whether the operation would go ahead.
    pub allowed: bool,
    /// The summed score, shadow rules included.
    pub risk_score: i64,
    /// The reason, chosen as for [`Decision::reason`] over enforced and
    /// shadow rules together.
    pub reason: &'p str,
}

/// One request as the decision service records it: the outcome, and what its
/// audit record may hold about the request. See [`crate::Policy::decide_recorded`].
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded<'a> {
    /// The decision, or why the request was refused.
    pub outcome: Result<Decision<'a>, Rejection>,
    /// The request's `model`, when the set declares a top-level
    /// `model: string` and the request gives one (or the field's default
    /// applies). `None` when the set doesn't declare it as a string, so an
    /// undeclared value is never recorded.
    pub model: Option<Cow<'a, str>>,
    /// The request's `operation`, on the same terms as `model`.
    pub operation: Option<Cow<'a, str>>,
    /// The declared fields as they were read, by dotted path, defaults
    /// filled in and absent fields left out; nothing undeclared. Empty when
    /// the request was refused.
    pub declared: serde_json::Map<String, serde_json::Value>,
}

/// One rule's part in a risk score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Contribution<'p> {
    /// The rule's name.
    pub rule: &'p str,
    /// What it added (after overrides).
    pub score: i64,
}

/// `--explain`: the decision plus what every rule did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation<'p> {
    /// The decision, exactly as `decide` returns it.
    pub decision: Decision<'p>,
    /// The threshold in force (after overrides).
    pub threshold: i64,
    /// Every rule, in source order.
    pub rules: Vec<RuleTrace<'p>>,
    /// Every declared parameter's value in force, in declaration order
    /// (absent for a set without parameters).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<ParamTrace<'p>>,
}

/// A parameter's value in a decision, and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamTrace<'p> {
    /// The parameter's name.
    pub name: &'p str,
    /// The value the rules read, as JSON.
    pub value: serde_json::Value,
    /// `file`, or `overrides` when the overrides gave it a value of its type.
    pub source: &'static str,
}

/// What one rule did for one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleTrace<'p> {
    /// The rule's name.
    pub rule: &'p str,
    /// `file:line` where it is defined.
    pub source: &'p str,
    /// `score +70`, `deny` or `allow` (after overrides).
    pub effect: String,
    /// Whether the rule was on (after overrides).
    pub enabled: bool,
    /// `enforce`, `shadow` or `off` (after overrides).
    pub mode: &'static str,
    /// Whether its condition held for this request.
    pub condition_held: bool,
    /// Whether it fired: on (enforced or in shadow) and its condition held.
    pub fired: bool,
    /// What it added to the score (0 for a shadow rule: see the decision's
    /// `shadow` list).
    pub contributed: i64,
}

/// Why a request was refused before evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectionKind {
    /// A content field (such as `prompt`) appears somewhere in the request.
    ForbiddenField,
    /// A declared field holds a value of the wrong type.
    TypeMismatch {
        /// What the field must hold, e.g. `a boolean`.
        expected: &'static str,
    },
    /// A required field is absent.
    MissingField {
        /// What the field must hold.
        expected: &'static str,
    },
    /// The request nests objects and arrays deeper than the limit.
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// The request is not a JSON object.
    NotAnObject,
    /// An object in the request gives the same key twice (see
    /// [`crate::json`]): which of the two a reader keeps is undefined, so
    /// neither is trusted.
    DuplicateKey,
}

/// A refused request: what was wrong and where. It never holds a value from
/// the request, only the path to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct Rejection {
    /// What was wrong.
    pub kind: RejectionKind,
    /// Where, e.g. `metadata.messages[0].content`; empty for the whole request.
    pub path: String,
}

/// Every rejection code, as tests and clients see them.
pub const REJECTION_CODES: [&str; 6] =
    ["forbidden_field", "type_mismatch", "missing_field", "too_deep", "not_an_object", "duplicate_key"];

impl Rejection {
    pub(crate) fn new(kind: RejectionKind, path: String) -> Self {
        Self { kind, path }
    }

    /// A stable code: `forbidden_field`, `type_mismatch`, `missing_field`,
    /// `too_deep`, `not_an_object` or `duplicate_key`.
    pub fn code(&self) -> &'static str {
        match self.kind {
            RejectionKind::ForbiddenField => "forbidden_field",
            RejectionKind::TypeMismatch { .. } => "type_mismatch",
            RejectionKind::MissingField { .. } => "missing_field",
            RejectionKind::TooDeep { .. } => "too_deep",
            RejectionKind::NotAnObject => "not_an_object",
            RejectionKind::DuplicateKey => "duplicate_key",
        }
    }

    /// What was wrong and what was expected, in words.
    pub fn message(&self) -> String {
        let path = &self.path;
        match &self.kind {
            RejectionKind::ForbiddenField => format!(
                "field `{path}` is a content field and is never accepted; send metadata about the content, not the content"
            ),
            RejectionKind::TypeMismatch { expected } => {
                format!("field `{path}` must be {expected}")
            }
            RejectionKind::MissingField { expected } => {
                format!("field `{path}` is required and must be {expected}")
            }
            RejectionKind::TooDeep { limit } if path.is_empty() => {
                format!("the request nests deeper than {limit} levels")
            }
            RejectionKind::TooDeep { limit } => {
                format!("the request nests deeper than {limit} levels at `{path}`")
            }
            RejectionKind::NotAnObject => "the request must be a JSON object".to_owned(),
            RejectionKind::DuplicateKey => {
                format!("key `{path}` appears more than once in the same object; send each key once")
            }
        }
    }
}

impl Serialize for Rejection {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("error", self.code())?;
        map.serialize_entry("path", &self.path)?;
        map.serialize_entry("message", &self.message())?;
        map.end()
    }
}
