//! Deciding a request as the decision service does: from its bytes, in one
//! pass that parses them and fills the declared slots (src/input/bytes/),
//! with what its audit record may hold.

use std::borrow::Cow;

use bumpalo::Bump;
use serde_json::Value;

use crate::decision::{Decision, Recorded, Rejection};
use crate::input::bytes::ReadFailure;
use crate::input::{Slot, SlotValue, Slots};
use crate::json::JsonError;
use crate::overrides::PreparedOverrides;
use crate::policy::Policy;

/// Why a request's bytes were not decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The bytes are not one JSON document: always a
    /// [`JsonError::Syntax`]. Not a request at all; the service answers it
    /// as malformed JSON (400) and audits nothing.
    #[error(transparent)]
    Malformed(JsonError),
    /// A request refused before evaluation: a content field, a key given
    /// twice in one object, nesting too deep, a wrong type, a missing field,
    /// or not an object. The same rejection [`crate::json::parse`] and then
    /// [`Policy::decide`] give for the same bytes.
    #[error(transparent)]
    Rejected(Rejection),
}

impl From<ReadFailure> for RequestError {
    fn from(failure: ReadFailure) -> Self {
        match failure {
            ReadFailure::Json(e) => match e.rejection() {
                Some(r) => Self::Rejected(r),
                None => Self::Malformed(e),
            },
            ReadFailure::Rejected(r) => Self::Rejected(r),
        }
    }
}

impl Policy {
    /// Decides a request from its bytes (one JSON document) with no
    /// overrides, without building a `serde_json::Value` of it. Agrees with
    /// [`crate::json::parse`] followed by [`Policy::decide`] on every input.
    ///
    /// ```
    /// use warden_engine::{Policy, RequestError, SourceFile};
    ///
    /// let src = SourceFile::new("p.warden", r#"
    /// input { model: string  metadata.pii: bool = false }
    /// rule pii { description "personal data" when metadata.pii score +70 reason pii }
    /// "#);
    /// let (policy, _) = Policy::from_sources(vec![src]).map_err(|e| e.len()).unwrap();
    /// let decision = policy.decide_bytes(br#"{"model": "gpt-4", "metadata": {"pii": true}}"#).unwrap();
    /// assert_eq!((decision.allowed, decision.risk_score), (false, 70));
    /// let refused = policy.decide_bytes(br#"{"model": "a", "model": "b"}"#).unwrap_err();
    /// assert!(matches!(refused, RequestError::Rejected(r) if r.code() == "duplicate_key"));
    /// ```
    ///
    /// # Errors
    ///
    /// [`RequestError::Malformed`] for bytes that are not JSON,
    /// [`RequestError::Rejected`] for a request refused before evaluation.
    pub fn decide_bytes(&self, body: &[u8]) -> Result<Decision<'_>, RequestError> {
        let arena = Bump::new();
        let mut slots = Slots::new();
        self.schema.read(body, &arena, &mut slots)?;
        Ok(self.evaluate(&slots, None))
    }

    /// [`Policy::decide_bytes`] with a customer's overrides.
    ///
    /// # Errors
    ///
    /// As [`Policy::decide_bytes`].
    pub fn decide_bytes_with(&self, body: &[u8], overrides: &PreparedOverrides) -> Result<Decision<'_>, RequestError> {
        let arena = Bump::new();
        let mut slots = Slots::new();
        self.schema.read(body, &arena, &mut slots)?;
        Ok(self.evaluate_with(&slots, overrides))
    }

    /// The decision service's path: [`Policy::decide_bytes_with`], plus
    /// what the request's audit record holds (its `model` and `operation`,
    /// and its declared fields and nothing else), from the one pass over
    /// the bytes.
    ///
    /// A refused request still names its `model` and `operation` when they
    /// are declared strings and present at the top level, so a rejection is
    /// audited against the model it was meant for.
    ///
    /// # Errors
    ///
    /// Only for bytes that are not JSON at all ([`JsonError::Syntax`]): a
    /// repeated key or nesting past the parser's limit is a refused request,
    /// in the record's `outcome` like any other.
    pub fn decide_recorded_bytes<'a>(
        &'a self,
        body: &'a [u8],
        overrides: &PreparedOverrides,
    ) -> Result<Recorded<'a>, JsonError> {
        let arena = Bump::new();
        let mut slots = Slots::new();
        let read = match self.schema.read(body, &arena, &mut slots) {
            Ok(()) => Ok(()),
            Err(failure) => match RequestError::from(failure) {
                RequestError::Malformed(e) => return Err(e),
                RequestError::Rejected(r) => Err(r),
            },
        };
        // A refused body's slots hold what was read before the refusal
        // was decided (the whole body; no defaults).
        let model = self.slot_str(&slots, self.audit.model).map(|s| within(body, s));
        let operation = self.slot_str(&slots, self.audit.operation).map(|s| within(body, s));
        Ok(match read {
            Ok(()) => Recorded {
                model,
                operation,
                outcome: Ok(self.evaluate_with(&slots, overrides)),
                declared: crate::input::declared_only(&self.schema, &slots),
            },
            Err(rejection) => Recorded { model, operation, outcome: Err(rejection), declared: serde_json::Map::new() },
        })
    }

    /// [`Policy::decide_recorded_bytes`] for a request already parsed into a
    /// `Value` (by [`crate::json::parse`], so no key is repeated).
    pub fn decide_recorded<'a>(&'a self, input: &'a Value, overrides: &PreparedOverrides) -> Recorded<'a> {
        let mut slots = Slots::new();
        match self.schema.extract(input, &mut slots) {
            Ok(()) => Recorded {
                model: self.slot_str(&slots, self.audit.model).map(Cow::Borrowed),
                operation: self.slot_str(&slots, self.audit.operation).map(Cow::Borrowed),
                outcome: Ok(self.evaluate_with(&slots, overrides)),
                declared: crate::input::declared_only(&self.schema, &slots),
            },
            Err(rejection) => {
                let top =
                    |slot: Option<Slot>, key: &str| slot.and(input.get(key)).and_then(Value::as_str).map(Cow::Borrowed);
                Recorded {
                    model: top(self.audit.model, "model"),
                    operation: top(self.audit.operation, "operation"),
                    outcome: Err(rejection),
                    declared: serde_json::Map::new(),
                }
            }
        }
    }

    fn slot_str<'a>(&self, slots: &[SlotValue<'a>], slot: Option<Slot>) -> Option<&'a str> {
        match slot.and_then(|s| slots.get(usize::from(s))) {
            Some(SlotValue::Str(s)) => Some(s),
            _ => None,
        }
    }
}

/// `s` borrowed from `body` when it lies within it (the body did not escape
/// it), else a copy (it was unescaped into the reading's arena, which is
/// about to go).
fn within<'a>(body: &'a [u8], s: &str) -> Cow<'a, str> {
    let start = (s.as_ptr() as usize).wrapping_sub(body.as_ptr() as usize);
    match body.get(start..start.wrapping_add(s.len())).map(std::str::from_utf8) {
        Some(Ok(same)) if same.as_ptr() == s.as_ptr() => Cow::Borrowed(same),
        _ => Cow::Owned(s.to_owned()),
    }
}

/// A request read against one policy's declared fields (slots filled,
/// defaults applied, content fields and type errors refused), to be decided
/// any number of times, with no overrides or with each customer's: what a
/// typed struct is to hand-written Rust. Borrows the request and the policy.
///
/// ```
/// use warden_engine::{Overrides, Policy, SourceFile};
///
/// let src = SourceFile::new("p.warden", r#"
/// input { model: string  metadata.pii: bool = false }
/// rule pii { description "personal data" when metadata.pii score +70 reason pii }
/// "#);
/// let (policy, _) = Policy::from_sources(vec![src]).map_err(|e| e.len()).unwrap();
/// let request = serde_json::json!({"model": "gpt-4", "metadata": {"pii": true}});
/// let read = policy.read(&request).unwrap();
/// assert_eq!(read.decide().risk_score, 70);
/// let lenient = policy.prepare(&Overrides::from_json(br#"{"rules": {"pii": {"score": 5}}}"#).unwrap());
/// assert_eq!(read.decide_with(&lenient).risk_score, 5);
/// ```
#[derive(Debug)]
pub struct ReadRequest<'a> {
    policy: &'a Policy,
    slots: Slots<'a>,
}

impl Policy {
    /// Reads `input` against this policy's declared fields, for deciding
    /// it once or many times ([`ReadRequest`]).
    ///
    /// # Errors
    ///
    /// The rejection [`Policy::decide`] gives for the same request.
    pub fn read<'a>(&'a self, input: &'a Value) -> Result<ReadRequest<'a>, Rejection> {
        let mut slots = Slots::new();
        self.schema.extract(input, &mut slots)?;
        Ok(ReadRequest { policy: self, slots })
    }
}

impl<'a> ReadRequest<'a> {
    /// The decision with no overrides: what [`Policy::decide`] gives.
    pub fn decide(&self) -> Decision<'a> {
        self.policy.evaluate(&self.slots, None)
    }

    /// The decision with a customer's overrides: what
    /// [`Policy::decide_with`] gives.
    pub fn decide_with(&self, overrides: &PreparedOverrides) -> Decision<'a> {
        self.policy.evaluate_with(&self.slots, overrides)
    }
}
