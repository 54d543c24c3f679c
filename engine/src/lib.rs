//! Warden's evaluation engine.
//!
//! [`Policy::compile`] turns a checked [`warden_dsl::PolicySet`] into an
//! immutable evaluation tree: declared fields resolved into slots, lists into
//! hash sets, regexes compiled once, constants folded, and rules indexed by
//! the exact string values they test so that cost grows sublinearly with the
//! number of rules. [`Policy::decide`] then decides a request in well under a
//! microsecond, without I/O and without panicking on any input.
//!
//! ```
//! use warden_dsl::SourceFile;
//! use warden_engine::Policy;
//!
//! let src = SourceFile::new("p.warden", r#"
//! input { model: string  metadata.pii: bool = false }
//! rule pii { description "personal data" when metadata.pii score +70 reason pii }
//! "#);
//! let (policy, _warnings) = Policy::from_sources(vec![src]).map_err(|e| e.len()).unwrap();
//! let input = serde_json::json!({"model": "gpt-4", "metadata": {"pii": true}});
//! let decision = policy.decide(&input).unwrap();
//! assert!(!decision.allowed);
//! assert_eq!((decision.risk_score, decision.reason), (70, "pii"));
//! ```
#![warn(missing_docs)] // CI denies warnings: every public item is documented

mod cond;
mod decision;
mod effective;
mod explain;
mod fields;
mod forbidden;
mod index;
mod input;
pub mod json;
mod overrides;
mod params;
mod policy;
mod request;
mod shared;
mod tally;
mod testing;
mod version;

pub use decision::{
    Contribution, Decision, Explanation, Flip, ParamTrace, REJECTION_CODES, Recorded, Rejection, RejectionKind,
    RuleTrace, ShadowMatch, ShadowOutcome,
};
pub use effective::{EffectiveParam, EffectivePolicy, EffectiveRule, Sourced, UnappliedValue, ValueSource};
pub use input::DEFAULT_MAX_DEPTH;
pub use overrides::{Overrides, OverridesError, PreparedOverrides, RuleMode, RuleOverride, mode_in_force};
pub use params::{ParamError, ParamInfo};
pub use policy::{Policy, RuleInfo};
pub use request::{ReadRequest, RequestError};
pub use testing::{TestOutcome, TestReport, run_tests};
// What a caller of the engine needs from the language (a file's text, a
// rule's effect, a field's type, diagnostics and their rendering, the
// formatter), so it can use the engine without depending on the parser and
// its AST.
pub use warden_dsl::ast::{Effect, Mode, Type};
pub use warden_dsl::fmt::format_source;
pub use warden_dsl::{Diagnostic, SourceFile, render};
