//! The limit Warden is measured against: the same decisions written as
//! Rust `if`s over a typed struct. The shaped sets' functions are generated
//! by `build.rs` from the rule list Warden compiles ([`crate::shaped`]); the
//! default policy's is written here.

use serde::Deserialize;

/// A request, typed: what the baseline decides from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Request<'a> {
    /// `model`.
    pub model: &'a str,
    /// `operation`.
    pub operation: &'a str,
    /// `metadata.intent`, when present.
    pub intent: Option<&'a str>,
    /// `metadata.tokens` (0 when absent).
    pub tokens: f64,
    /// `metadata.contains_personal_data` (false when absent).
    pub contains_personal_data: bool,
    /// `metadata.is_external_model` (false when absent).
    pub is_external_model: bool,
}

/// What the baseline decides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Whether the request may go ahead.
    pub allowed: bool,
    /// The summed score.
    pub score: i64,
    /// Whether a deny rule held.
    pub denied: bool,
}

/// A request's JSON, read by serde into borrowed fields (the "from JSON
/// text" baseline). Unknown fields are ignored.
#[derive(Debug, Deserialize)]
pub struct Wire<'a> {
    #[serde(borrow)]
    model: &'a str,
    #[serde(borrow)]
    operation: &'a str,
    #[serde(borrow, default)]
    metadata: WireMetadata<'a>,
}

#[derive(Debug, Default, Deserialize)]
struct WireMetadata<'a> {
    #[serde(borrow, default)]
    intent: Option<&'a str>,
    #[serde(default)]
    tokens: f64,
    #[serde(default)]
    contains_personal_data: bool,
    #[serde(default)]
    is_external_model: bool,
}

impl<'a> Wire<'a> {
    /// Reads JSON text (strings without escapes: the fields borrow it).
    ///
    /// # Errors
    ///
    /// When the text is not such a request.
    pub fn parse(text: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The typed request.
    pub fn request(&self) -> Request<'a> {
        Request {
            model: self.model,
            operation: self.operation,
            intent: self.metadata.intent,
            tokens: self.metadata.tokens,
            contains_personal_data: self.metadata.contains_personal_data,
            is_external_model: self.metadata.is_external_model,
        }
    }
}

/// The default policy (`policies/`) by hand: personal data +70, external
/// model +50, threshold 50 (`approved_models` ships disabled).
#[inline(never)]
pub fn decide_default(r: &Request<'_>) -> Outcome {
    let mut out = Outcome::default();
    if r.contains_personal_data {
        out.score += 70;
    }
    if r.is_external_model {
        out.score += 50;
    }
    out.allowed = out.score < 50;
    out
}

include!(concat!(env!("OUT_DIR"), "/baseline.rs"));

/// A baseline decision function.
pub type Decide = fn(&Request<'_>) -> Outcome;

/// Every shaped size with its function.
pub const SHAPED: [(usize, Decide); 4] =
    [(2, decide_2), (100, decide_100), (1_000, decide_1000), (10_000, decide_10000)];
