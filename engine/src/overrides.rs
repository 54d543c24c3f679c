//! Per-customer overrides: plain serde data the caller passes in, applied at
//! decision time without recompiling.

use std::collections::BTreeMap;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::json::JsonError;

/// Changes one customer (or the whole fleet, for global toggles) makes to the
/// policy set as written.
///
/// ```json
/// {"threshold": 80, "rules": {"external_model": {"enabled": false}, "contains_personal_data": {"score": 40}}}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    /// Replaces the set's threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<i64>,
    /// Per-rule changes, by rule name. A name given twice is refused
    /// whichever way the overrides are deserialized (a plain map would
    /// silently keep the last).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "unique_rules")]
    pub rules: BTreeMap<String, RuleOverride>,
}

/// Why overrides could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverridesError {
    /// The text is not JSON, repeats a key, or nests too deeply.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// The JSON is not in the shape of [`Overrides`]: an unknown key, a
    /// wrong type.
    #[error(
        "not valid overrides: {0}; expected {{\"threshold\"?: integer, \"rules\"?: {{\"<rule>\": {{\"enabled\"?: boolean, \"score\"?: integer}}}}}}"
    )]
    Shape(String),
}

fn unique_rules<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, RuleOverride>, D::Error> {
    struct Rules;
    impl<'de> Visitor<'de> for Rules {
        type Value = BTreeMap<String, RuleOverride>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map from rule name to {\"enabled\"?, \"score\"?}")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((name, o)) = access.next_entry::<String, RuleOverride>()? {
                if out.contains_key(&name) {
                    return Err(de::Error::custom(format_args!("rule `{name}` is given more than once")));
                }
                out.insert(name, o);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(Rules)
}

/// A change to one rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleOverride {
    /// Switches the rule on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Replaces the rule's score (score rules only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<i64>,
}

impl Overrides {
    /// Reads overrides from JSON text (an overrides file, a test case) with
    /// the strict parser: a key repeated anywhere is refused, not resolved
    /// by keeping the last.
    ///
    /// ```
    /// use warden_engine::Overrides;
    /// let o = Overrides::from_json(br#"{"threshold": 80, "rules": {"pii": {"score": 10}}}"#).unwrap();
    /// assert_eq!(o.threshold, Some(80));
    /// assert!(Overrides::from_json(br#"{"rules": {"pii": {"enabled": false}, "pii": {}}}"#).is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`OverridesError::Json`] for text that is not strict JSON,
    /// [`OverridesError::Shape`] for JSON that is not overrides.
    pub fn from_json(bytes: &[u8]) -> Result<Self, OverridesError> {
        let value = crate::json::parse(bytes)?;
        serde_json::from_value(value).map_err(|e| OverridesError::Shape(e.to_string()))
    }

    /// Layers `top` over `self`: a value set in `top` wins. The server uses
    /// this to put a customer's overrides over the global toggles.
    #[must_use]
    pub fn layered(&self, top: &Overrides) -> Overrides {
        let mut out = self.clone();
        if top.threshold.is_some() {
            out.threshold = top.threshold;
        }
        for (name, o) in &top.rules {
            let entry = out.rules.entry(name.clone()).or_default();
            if o.enabled.is_some() {
                entry.enabled = o.enabled;
            }
            if o.score.is_some() {
                entry.score = o.score;
            }
        }
        out
    }
}

/// Overrides resolved against one compiled policy: rule names become rule
/// numbers, sorted, so a decision applies them in one merge pass.
#[derive(Debug, Clone, Default)]
pub struct PreparedOverrides {
    /// Which compiled policy the rule numbers refer to (see
    /// `Policy::compiled_id`); compared on every decision, so an integer.
    pub(crate) policy_id: u64,
    pub(crate) threshold: Option<i64>,
    /// `(rule number, override)`, sorted by rule number. Inline for the
    /// usual handful, so a decision doesn't chase a pointer per customer.
    pub(crate) rules: smallvec::SmallVec<[(u32, RuleOverride); 4]>,
    /// The overrides as given, to re-resolve if used with another version.
    pub(crate) source: Overrides,
    /// Rule names that no rule in the policy has.
    pub(crate) unknown: Vec<String>,
}

/// Whether a rule is on: an override's `enabled` wins over the file's. The
/// one place this precedence is written; decisions, `--explain` and
/// [`crate::Policy::effective`] all go through it.
#[inline]
pub(crate) fn enabled_in_force(written: bool, ov: Option<&RuleOverride>) -> bool {
    ov.and_then(|o| o.enabled).unwrap_or(written)
}

/// A score rule's score: an override's `score` wins over the file's.
#[inline]
pub(crate) fn score_in_force(written: i64, ov: Option<&RuleOverride>) -> i64 {
    ov.and_then(|o| o.score).unwrap_or(written)
}

/// The threshold: an override's wins over the set's.
#[inline]
pub(crate) fn threshold_in_force(written: i64, ov: Option<&PreparedOverrides>) -> i64 {
    ov.and_then(|o| o.threshold).unwrap_or(written)
}

impl PreparedOverrides {
    /// The override for rule number `id`, if any.
    pub(crate) fn rule(&self, id: u32) -> Option<&RuleOverride> {
        let at = self.rules.binary_search_by_key(&id, |(i, _)| *i).ok()?;
        self.rules.get(at).map(|(_, o)| o)
    }

    /// Names in the overrides that match no rule of the policy they were
    /// prepared for (for example a rule since deleted from the files).
    pub fn unknown_rules(&self) -> &[String] {
        &self.unknown
    }

    /// The overrides as given.
    pub fn overrides(&self) -> &Overrides {
        &self.source
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly on bad fixtures

    use super::*;

    #[test]
    fn layering_keeps_lower_values_the_top_leaves_unset() {
        let global: Overrides = serde_json::from_str(r#"{"rules": {"a": {"enabled": false, "score": 5}}}"#).unwrap();
        let customer: Overrides =
            serde_json::from_str(r#"{"threshold": 80, "rules": {"a": {"enabled": true}}}"#).unwrap();
        let merged = global.layered(&customer);
        assert_eq!(merged.threshold, Some(80));
        assert_eq!(merged.rules.get("a"), Some(&RuleOverride { enabled: Some(true), score: Some(5) }));
    }

    #[test]
    fn a_rule_named_twice_is_refused_however_the_overrides_are_read() {
        let text = r#"{"rules": {"a": {"enabled": false}, "a": {"enabled": true}}}"#;
        let err = serde_json::from_str::<Overrides>(text).unwrap_err();
        assert!(err.to_string().contains("rule `a` is given more than once"), "{err}");
        assert_eq!(
            Overrides::from_json(text.as_bytes()),
            Err(OverridesError::Json(JsonError::DuplicateKey { path: "rules.a".into() }))
        );
        let nested = r#"{"rules": {"a": {"score": 1, "score": 2}}}"#;
        assert_eq!(
            Overrides::from_json(nested.as_bytes()),
            Err(OverridesError::Json(JsonError::DuplicateKey { path: "rules.a.score".into() }))
        );
        assert!(matches!(Overrides::from_json(br#"{"treshold": 1}"#), Err(OverridesError::Shape(_))));
        let ok = Overrides::from_json(br#"{"threshold": 80, "rules": {"a": {"enabled": true}, "b": {}}}"#).unwrap();
        assert_eq!((ok.threshold, ok.rules.len()), (Some(80), 2));
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(serde_json::from_str::<Overrides>(r#"{"treshold": 1}"#).is_err());
        assert!(serde_json::from_str::<Overrides>(r#"{"rules": {"a": {"enable": true}}}"#).is_err());
    }
}
