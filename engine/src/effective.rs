//! The effective policy: every rule as one customer gets it, each value with
//! the layer it comes from (file < global < customer override).
//!
//! The values are computed by the code that decides requests (overrides
//! layered with [`Overrides::layered`], resolved with [`Policy::prepare`],
//! applied with the same precedence functions), so what an admin reads here
//! is what decisions use.

use serde::Serialize;

use crate::overrides::{Overrides, RuleMode, enabled_in_force, mode_in_force, score_in_force, threshold_in_force};
use crate::policy::{Policy, RuleInfo};

/// Where a value in force comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueSource {
    /// Written in the policy files.
    File,
    /// Set for the whole fleet (a global toggle).
    Global,
    /// Set for this customer.
    Override,
    /// Written nowhere: the language's default (a set without `threshold`
    /// blocks at 50).
    Default,
}

impl ValueSource {
    /// `file`, `global`, `override` or `default`, as the admin API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Global => "global",
            Self::Override => "override",
            Self::Default => "default",
        }
    }

    /// The highest layer that sets a value: the customer's, then the
    /// fleet's, else `otherwise`.
    fn of(customer: bool, global: bool, otherwise: Self) -> Self {
        if customer {
            Self::Override
        } else if global {
            Self::Global
        } else {
            otherwise
        }
    }
}

/// A value in force and where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sourced<T> {
    /// The value decisions use.
    pub value: T,
    /// The layer that set it.
    pub source: ValueSource,
}

/// One rule as a customer gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveRule<'p> {
    /// The rule as written (name, description, effect, reason, `file:line`).
    pub rule: RuleInfo<'p>,
    /// Whether it is on.
    pub enabled: Sourced<bool>,
    /// How it runs: `enforce`, `shadow` or `off` (off exactly when not
    /// `enabled`). Its source is the highest layer that sets the rule's
    /// `mode` or `enabled`.
    pub mode: Sourced<RuleMode>,
    /// Its score; `None` for deny and allow rules, which have none (a
    /// `score` override for them is ignored, as decisions ignore it).
    pub score: Option<Sourced<i64>>,
}

/// Every rule as one customer gets it. See [`Policy::effective`].
#[derive(Debug, Clone, PartialEq)]
pub struct EffectivePolicy<'p> {
    /// The threshold in force.
    pub threshold: Sourced<i64>,
    /// Every rule, in source order.
    pub rules: Vec<EffectiveRule<'p>>,
    /// Names in the global or customer overrides that match no rule of this
    /// policy (for example a rule since deleted from the files), sorted.
    /// Decisions ignore them.
    pub unknown_rules: Vec<String>,
    /// Every declared parameter, in declaration order.
    pub params: Vec<EffectiveParam<'p>>,
    /// Parameter values in the customer's overrides, then the fleet's, that
    /// apply to nothing: the parameter is not declared, or the value is
    /// not of its type. Decisions use the highest layer's value that
    /// applies (the fleet's or the file's).
    pub params_not_applied: Vec<UnappliedValue>,
}

/// A stored parameter value that applies to nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct UnappliedValue {
    /// The parameter's name.
    pub name: String,
    /// The layer that holds it: [`ValueSource::Override`] (the customer's)
    /// or [`ValueSource::Global`] (the fleet's).
    pub layer: ValueSource,
    /// The value as stored.
    pub value: serde_json::Value,
    /// Why it doesn't apply.
    pub error: crate::ParamError,
}

/// One parameter as a customer gets it.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveParam<'p> {
    /// Its name.
    pub name: &'p str,
    /// Its type.
    pub ty: warden_dsl::ast::Type,
    /// The value decisions use, as JSON, and the layer that set it
    /// (`file`, `global` or `override`).
    pub value: Sourced<serde_json::Value>,
    /// The file's value.
    pub default: serde_json::Value,
}

impl Policy {
    /// Every rule's effective `enabled`, mode and score, and the threshold, for a
    /// customer with overrides `customer` (or none) under the fleet-wide
    /// overrides `global`, each with its [`ValueSource`]: `override` when
    /// the customer sets it, else `global` when the fleet does, else `file`
    /// (or `default` for a threshold the set doesn't state).
    ///
    /// ```
    /// use warden_engine::{Overrides, Policy, SourceFile, ValueSource};
    ///
    /// let src = SourceFile::new("p.warden", r#"
    /// input { model: string }
    /// rule a { description "d" when model == "x" score +70 reason a }
    /// "#);
    /// let (policy, _) = Policy::from_sources(vec![src]).map_err(|e| e.len()).unwrap();
    /// let global = Overrides::from_json(br#"{"rules": {"a": {"enabled": false}}}"#).unwrap();
    /// let customer = Overrides::from_json(br#"{"rules": {"a": {"score": 10}}}"#).unwrap();
    /// let e = policy.effective(&global, Some(&customer));
    /// let a = &e.rules[0];
    /// assert_eq!((a.enabled.value, a.enabled.source), (false, ValueSource::Global));
    /// assert_eq!(a.score.map(|s| (s.value, s.source)), Some((10, ValueSource::Override)));
    /// assert_eq!((e.threshold.value, e.threshold.source), (50, ValueSource::Default));
    /// ```
    pub fn effective(&self, global: &Overrides, customer: Option<&Overrides>) -> EffectivePolicy<'_> {
        // Exactly what the decision service prepares for this customer.
        let layered = match customer {
            Some(c) => self.layer(global, c),
            None => global.clone(),
        };
        let prepared = self.prepare(&layered);
        let own = |name: &str| customer.and_then(|c| c.rules.get(name));
        let fleet = |name: &str| global.rules.get(name);
        let rules = (0u32..)
            .zip(self.rules())
            .map(|(id, rule)| {
                let ov = prepared.rule(id);
                let (mine, theirs) = (own(rule.name), fleet(rule.name));
                let enabled = Sourced {
                    value: enabled_in_force(rule.enabled, ov),
                    source: ValueSource::of(
                        mine.is_some_and(|o| o.enabled.is_some()),
                        theirs.is_some_and(|o| o.enabled.is_some()),
                        ValueSource::File,
                    ),
                };
                let mode = Sourced {
                    value: mode_in_force(rule.enabled, rule.mode, ov),
                    source: ValueSource::of(
                        mine.is_some_and(|o| o.enabled.is_some() || o.mode.is_some()),
                        theirs.is_some_and(|o| o.enabled.is_some() || o.mode.is_some()),
                        ValueSource::File,
                    ),
                };
                let score = match rule.effect {
                    warden_dsl::ast::Effect::Score(written) => Some(Sourced {
                        value: score_in_force(written, ov),
                        source: ValueSource::of(
                            mine.is_some_and(|o| o.score.is_some()),
                            theirs.is_some_and(|o| o.score.is_some()),
                            ValueSource::File,
                        ),
                    }),
                    _ => None,
                };
                EffectiveRule { rule, enabled, mode, score }
            })
            .collect();
        let threshold = Sourced {
            value: threshold_in_force(self.threshold(), Some(&prepared)),
            source: ValueSource::of(
                customer.is_some_and(|c| c.threshold.is_some()),
                global.threshold.is_some(),
                if self.set().threshold_loc.is_some() { ValueSource::File } else { ValueSource::Default },
            ),
        };
        let mut unknown_rules = prepared.unknown_rules().to_vec();
        unknown_rules.sort_unstable();
        // For each parameter the highest layer whose value is of its type
        // gives the value, as `layer` and `prepare` do.
        let valid = |o: Option<&Overrides>, name: &str| {
            o.and_then(|o| o.params.get(name)).filter(|v| self.check_param(name, v).is_ok()).cloned()
        };
        let params = self
            .params()
            .map(|p| {
                let value = match (valid(customer, p.name), valid(Some(global), p.name)) {
                    (Some(v), _) => Sourced { value: v, source: ValueSource::Override },
                    (None, Some(v)) => Sourced { value: v, source: ValueSource::Global },
                    (None, None) => Sourced { value: p.default.clone(), source: ValueSource::File },
                };
                EffectiveParam { name: p.name, ty: p.ty, value, default: p.default }
            })
            .collect();
        // Values that apply to nothing, from either layer.
        let layers = [(customer, ValueSource::Override), (Some(global), ValueSource::Global)];
        let params_not_applied = layers
            .into_iter()
            .filter_map(|(o, layer)| o.map(|o| (o, layer)))
            .flat_map(|(o, layer)| o.params.iter().map(move |(name, value)| (name, value, layer)))
            .filter_map(|(name, value, layer)| {
                let error = self.check_param(name, value).err()?;
                Some(UnappliedValue { name: name.clone(), layer, value: value.clone(), error })
            })
            .collect();
        EffectivePolicy { threshold, rules, unknown_rules, params, params_not_applied }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)] // tests fail loudly

    use serde_json::json;
    use warden_dsl::SourceFile;

    use super::*;
    use crate::RuleOverride;

    const SET: &str = r#"
input { model: string  metadata.a: bool = false  metadata.b: bool = false }
threshold 100
rule a { description "d" when metadata.a score +70 reason a }
rule b { description "d" enabled false when metadata.b score +40 reason b }
rule c { description "d" when model == "blocked" deny reason c }
"#;

    fn policy(text: &str) -> Policy {
        match Policy::from_sources(vec![SourceFile::new("p.warden", text)]) {
            Ok((p, _)) => p,
            Err(e) => panic!("{:?}", e.iter().map(ToString::to_string).collect::<Vec<_>>()),
        }
    }

    fn ov(text: &str) -> Overrides {
        Overrides::from_json(text.as_bytes()).unwrap()
    }

    /// `(rule, enabled, its source, (score, its source))`.
    type RuleView = (String, bool, &'static str, Option<(i64, &'static str)>);

    fn view(e: &EffectivePolicy<'_>) -> Vec<RuleView> {
        e.rules
            .iter()
            .map(|r| {
                (
                    r.rule.name.to_owned(),
                    r.enabled.value,
                    r.enabled.source.as_str(),
                    r.score.map(|s| (s.value, s.source.as_str())),
                )
            })
            .collect()
    }

    #[test]
    fn without_overrides_everything_comes_from_the_file() {
        let p = policy(SET);
        let e = p.effective(&Overrides::default(), None);
        assert_eq!(
            view(&e),
            vec![
                ("a".into(), true, "file", Some((70, "file"))),
                ("b".into(), false, "file", Some((40, "file"))),
                ("c".into(), true, "file", None),
            ]
        );
        assert_eq!(e.threshold, Sourced { value: 100, source: ValueSource::File });
        assert!(e.unknown_rules.is_empty());
    }

    #[test]
    fn the_customer_wins_over_the_fleet_which_wins_over_the_file_value_by_value() {
        let p = policy(SET);
        let global = ov(r#"{"rules": {"a": {"enabled": false, "score": 5}, "b": {"enabled": true}, "gone": {}}}"#);
        let customer =
            ov(r#"{"threshold": 80, "rules": {"a": {"enabled": true}, "c": {"enabled": false, "score": 9}}}"#);
        let e = p.effective(&global, Some(&customer));
        assert_eq!(
            view(&e),
            vec![
                ("a".into(), true, "override", Some((5, "global"))),
                ("b".into(), true, "global", Some((40, "file"))),
                ("c".into(), false, "override", None),
            ]
        );
        assert_eq!(e.threshold, Sourced { value: 80, source: ValueSource::Override });
        assert_eq!(e.unknown_rules, vec!["gone".to_owned()]);
        // Without the customer, only the fleet's layer applies.
        let fleet_only = p.effective(&global, None);
        assert_eq!(view(&fleet_only)[0], ("a".into(), false, "global", Some((5, "global"))));
        assert_eq!(fleet_only.threshold, Sourced { value: 100, source: ValueSource::File });
    }

    #[test]
    fn a_threshold_the_set_does_not_state_is_the_default_unless_overridden() {
        let p = policy("input { model: string }");
        assert_eq!(p.effective(&Overrides::default(), None).threshold.source, ValueSource::Default);
        let global = ov(r#"{"threshold": 10}"#);
        assert_eq!(p.effective(&global, None).threshold, Sourced { value: 10, source: ValueSource::Global });
    }

    /// Every combination of file, fleet and customer settings: the
    /// effective values are the ones a decision (through `explain`) uses.
    #[test]
    fn effective_values_are_the_values_decisions_use() {
        let choices = [None, Some(false), Some(true)];
        let scores = [None, Some(1), Some(33)];
        let input = json!({"model": "m", "metadata": {"a": true, "b": true}});
        for file_enabled in [true, false] {
            let text = SET.replace(
                "rule a { description \"d\" when",
                if file_enabled {
                    "rule a { description \"d\" when"
                } else {
                    "rule a { description \"d\" enabled false when"
                },
            );
            let p = policy(&text);
            let mut combos = Vec::new();
            for ge in choices {
                for ce in choices {
                    for gs in scores {
                        for cs in scores {
                            combos.push((ge, ce, gs, cs));
                        }
                    }
                }
            }
            for (ge, ce, gs, cs) in combos {
                let global = Overrides {
                    threshold: None,
                    rules: [("a".to_owned(), RuleOverride { enabled: ge, score: gs, mode: None })].into(),
                    ..Overrides::default()
                };
                let customer = Overrides {
                    threshold: Some(60),
                    rules: [("a".to_owned(), RuleOverride { enabled: ce, score: cs, mode: None })].into(),
                    ..Overrides::default()
                };
                let e = p.effective(&global, Some(&customer));
                let layered = p.layer(&global, &customer);
                let ex = p.explain(&input, Some(&layered)).unwrap();
                let a = &e.rules[0];
                let trace = &ex.rules[0];
                assert_eq!(a.enabled.value, trace.enabled, "{ge:?} {ce:?} file {file_enabled}");
                assert_eq!(a.score.map(|s| format!("score {:+}", s.value)), Some(trace.effect.clone()));
                assert_eq!(e.threshold.value, ex.threshold);
                let want = if ce.is_some() {
                    ValueSource::Override
                } else if ge.is_some() {
                    ValueSource::Global
                } else {
                    ValueSource::File
                };
                assert_eq!(a.enabled.source, want);
                // And the decision itself agrees with the effective score.
                let decided = p.decide_with(&input, &p.prepare(&layered)).unwrap();
                let got = decided.contributions.iter().find(|c| c.rule == "a").map(|c| c.score);
                let expected = a.score.map(|s| s.value).filter(|s| a.enabled.value && *s != 0);
                assert_eq!(got, expected);
            }
        }
    }
}
