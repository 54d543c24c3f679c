//! Per-customer overrides: plain serde data the caller passes in, applied at
//! decision time without recompiling.

use std::collections::BTreeMap;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use warden_dsl::ast::Mode;

use crate::json::JsonError;

/// Changes one customer (or the whole fleet, for global toggles) makes to the
/// policy set as written.
///
/// ```json
/// {"threshold": 80, "rules": {"external_model": {"enabled": false}, "contains_personal_data": {"score": 40}},
///  "params": {"approved_models": ["gpt-4o"], "max_tokens": 16000}}
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
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "unique_keys")]
    pub rules: BTreeMap<String, RuleOverride>,
    /// Parameter values, by parameter name (without `param.`), as JSON of
    /// the parameter's type: a string, a number, a bool or an array of
    /// strings. Checked against the policy when prepared: a name it doesn't
    /// declare, or a value of another type, is set aside and the file's
    /// value applies ([`PreparedOverrides::unknown_params`],
    /// [`PreparedOverrides::invalid_params`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "unique_keys")]
    pub params: BTreeMap<String, serde_json::Value>,
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
        "not valid overrides: {0}; expected {{\"threshold\"?: integer, \"rules\"?: {{\"<rule>\": {{\"enabled\"?: boolean, \"score\"?: integer, \"mode\"?: \"enforce\"|\"shadow\"|\"off\"}}}}, \"params\"?: {{\"<param>\": value}}}}"
    )]
    Shape(String),
}

/// A map by name that refuses a name given twice.
fn unique_keys<'de, D, T>(deserializer: D) -> Result<BTreeMap<String, T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Unique<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for Unique<T> {
        type Value = BTreeMap<String, T>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map by rule or parameter name")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((name, o)) = access.next_entry::<String, T>()? {
                if out.contains_key(&name) {
                    return Err(de::Error::custom(format_args!("`{name}` is given more than once")));
                }
                out.insert(name, o);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(Unique(std::marker::PhantomData))
}

/// A change to one rule.
///
/// In JSON, `mode` is `"enforce"`, `"shadow"` or `"off"`; `enabled` stays as
/// a shorthand for on and off. `"off"` is `enabled: false`; `"enforce"` and
/// `"shadow"` switch the rule on. Given together, `mode` wins: `enabled`
/// is then ignored. Each field layers on its own ([`Overrides::layered`]),
/// so a customer's `enabled: false` turns off a rule the fleet runs in
/// shadow, and its `enabled: true` runs that rule in the fleet's mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, from = "RawRuleOverride")]
pub struct RuleOverride {
    /// Switches the rule on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Replaces the rule's score (score rules only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<i64>,
    /// How the rule runs when on: enforced, or in shadow. Never
    /// [`RuleMode::Off`] once read (that becomes `enabled: false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<RuleMode>,
}

/// How a rule takes part in decisions, after overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleMode {
    /// Its effect counts.
    Enforce,
    /// Evaluated and reported in the decision's `shadow` list and
    /// `shadow_outcome`, never changing `allowed`, `risk_score` or `reason`.
    Shadow,
    /// Not evaluated.
    Off,
}

impl RuleMode {
    /// `enforce`, `shadow` or `off`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Shadow => "shadow",
            Self::Off => "off",
        }
    }

    /// The mode written in a policy file.
    pub fn of_written(enabled: bool, mode: Mode) -> Self {
        match (enabled, mode) {
            (false, _) => Self::Off,
            (true, Mode::Enforce) => Self::Enforce,
            (true, Mode::Shadow) => Self::Shadow,
        }
    }
}

/// [`RuleOverride`] as written, before `mode` and `enabled` are reconciled.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuleOverride {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    score: Option<i64>,
    #[serde(default)]
    mode: Option<RuleMode>,
}

impl From<RawRuleOverride> for RuleOverride {
    fn from(raw: RawRuleOverride) -> Self {
        Self::reconciled(raw.enabled, raw.score, raw.mode)
    }
}

impl RuleOverride {
    /// An override from `enabled`, `score` and `mode` as written (JSON, an
    /// admin body), reconciled as the type's documentation says: `mode`
    /// `off` becomes `enabled: false`; `enforce` or `shadow` also set
    /// `enabled: true`; with a `mode`, `enabled` is ignored.
    pub fn reconciled(enabled: Option<bool>, score: Option<i64>, mode: Option<RuleMode>) -> Self {
        match mode {
            Some(RuleMode::Off) => Self { enabled: Some(false), score, mode: None },
            Some(m) => Self { enabled: Some(true), score, mode: Some(m) },
            None => Self { enabled, score, mode: None },
        }
    }
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
            if o.mode.is_some() {
                entry.mode = o.mode;
            }
        }
        for (name, v) in &top.params {
            out.params.insert(name.clone(), v.clone());
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
    /// The conditions of the rules that read a parameter whose value here
    /// differs from the file's, compiled with these values; sorted by rule
    /// number. Decisions evaluate these in full in place of the rule's
    /// indexed condition.
    pub(crate) conds: Box<[(u32, crate::cond::Cond)]>,
    /// Parameter names the policy doesn't declare.
    pub(crate) unknown_params: Vec<String>,
    /// Parameters given a value not of their type, with why.
    pub(crate) invalid_params: Vec<(String, String)>,
    /// Rules that failed to compile with these values, with why.
    pub(crate) uncompiled: Vec<(String, String)>,
}

/// Whether a rule is on: an override's `enabled` wins over the file's. The
/// one place this precedence is written; decisions, `--explain` and
/// [`crate::Policy::effective`] all go through it (via [`mode_in_force`]).
#[inline]
pub(crate) fn enabled_in_force(written: bool, ov: Option<&RuleOverride>) -> bool {
    ov.and_then(|o| o.enabled).unwrap_or(written)
}

/// How a rule runs: off unless [`enabled_in_force`]; then an override's
/// `mode` wins over the file's. A `mode` of `off` in an override built in
/// code (never one read from JSON) also means off.
#[inline]
pub fn mode_in_force(written_enabled: bool, written: Mode, ov: Option<&RuleOverride>) -> RuleMode {
    if !enabled_in_force(written_enabled, ov) {
        return RuleMode::Off;
    }
    match ov.and_then(|o| o.mode) {
        Some(m) => m,
        None => RuleMode::of_written(true, written),
    }
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

    /// Parameter names in the overrides that the policy doesn't declare
    /// (ignored: the policy has no use for them).
    pub fn unknown_params(&self) -> &[String] {
        &self.unknown_params
    }

    /// Parameters whose value in the overrides is not of the declared type
    /// (say, after the file changed the type), each with the reason; the
    /// file's value applies instead.
    pub fn invalid_params(&self) -> &[(String, String)] {
        &self.invalid_params
    }

    /// Rules whose condition could not be compiled with these parameter
    /// values, with why; they decide with the files' values. Empty unless
    /// a set skipped the checker.
    pub fn uncompiled_rules(&self) -> &[(String, String)] {
        &self.uncompiled
    }

    /// The re-compiled condition of rule `id`, when a parameter it reads
    /// has a value of its own here.
    pub(crate) fn cond(&self, id: u32) -> Option<&crate::cond::Cond> {
        let at = self.conds.binary_search_by_key(&id, |(i, _)| *i).ok()?;
        self.conds.get(at).map(|(_, c)| c)
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
        assert_eq!(merged.rules.get("a"), Some(&RuleOverride { enabled: Some(true), score: Some(5), mode: None }));
    }

    #[test]
    fn a_rule_named_twice_is_refused_however_the_overrides_are_read() {
        let text = r#"{"rules": {"a": {"enabled": false}, "a": {"enabled": true}}}"#;
        let err = serde_json::from_str::<Overrides>(text).unwrap_err();
        assert!(err.to_string().contains("`a` is given more than once"), "{err}");
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
    fn mode_and_enabled_are_read_together_and_layer_field_by_field() {
        let read = |text: &str| serde_json::from_str::<RuleOverride>(text);
        let on = |mode| RuleOverride { enabled: Some(true), score: None, mode: Some(mode) };
        assert_eq!(read(r#"{"mode": "shadow"}"#).unwrap(), on(RuleMode::Shadow));
        assert_eq!(read(r#"{"mode": "enforce"}"#).unwrap(), on(RuleMode::Enforce));
        assert_eq!(
            read(r#"{"mode": "off"}"#).unwrap(),
            RuleOverride { enabled: Some(false), ..RuleOverride::default() }
        );
        // Given together, `mode` wins.
        assert_eq!(read(r#"{"enabled": false, "mode": "shadow"}"#).unwrap(), on(RuleMode::Shadow));
        let off = RuleOverride { enabled: Some(false), ..RuleOverride::default() };
        assert_eq!(read(r#"{"enabled": true, "mode": "off"}"#).unwrap(), off);
        // Off, and in shadow when switched on: what layering can make.
        let off_shadow = RuleOverride { enabled: Some(false), score: None, mode: Some(RuleMode::Shadow) };
        assert_eq!(mode_in_force(true, Mode::Enforce, Some(&off_shadow)), RuleMode::Off);
        for bad in [r#"{"mode": "audit"}"#, r#"{"mode": true}"#, r#"{"mode": "shadow", "x": 1}"#] {
            assert!(read(bad).is_err(), "{bad}");
        }
        // What one JSON override can say reads back the same once written
        // (off-but-shadow-when-on only arises from layering two of them).
        for o in [on(RuleMode::Shadow), on(RuleMode::Enforce), off] {
            assert_eq!(read(&serde_json::to_string(&o).unwrap()).unwrap(), o);
        }
        // A customer's `enabled: false` turns off what the fleet shadows;
        // its `enabled: true` runs a file-disabled rule in the fleet's mode.
        let fleet: Overrides = serde_json::from_str(r#"{"rules": {"a": {"mode": "shadow"}}}"#).unwrap();
        let off: Overrides = serde_json::from_str(r#"{"rules": {"a": {"enabled": false}}}"#).unwrap();
        let merged = fleet.layered(&off);
        assert_eq!(mode_in_force(true, Mode::Enforce, merged.rules.get("a")), RuleMode::Off);
        let back: Overrides = serde_json::from_str(r#"{"rules": {"a": {"enabled": true}}}"#).unwrap();
        let merged = merged.layered(&back);
        assert_eq!(mode_in_force(false, Mode::Enforce, merged.rules.get("a")), RuleMode::Shadow);
        // No override: the file decides.
        assert_eq!(mode_in_force(true, Mode::Shadow, None), RuleMode::Shadow);
        assert_eq!(mode_in_force(false, Mode::Shadow, None), RuleMode::Off);
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(serde_json::from_str::<Overrides>(r#"{"treshold": 1}"#).is_err());
        assert!(serde_json::from_str::<Overrides>(r#"{"rules": {"a": {"enable": true}}}"#).is_err());
    }
}
