//! `eval --explain`: a decision with what every rule did and the
//! parameter values in force.

use serde_json::Value;
use warden_dsl::ast::Effect;

use crate::decision::{Explanation, ParamTrace, Rejection, RuleTrace};
use crate::input::{SlotValue, Slots};
use crate::overrides::{Overrides, RuleMode, enabled_in_force, mode_in_force, score_in_force, threshold_in_force};
use crate::policy::Policy;
use crate::request::RequestError;

impl Policy {
    /// Decides and reports what every rule did (`eval --explain`).
    ///
    /// # Errors
    ///
    /// The rejection of a request refused before evaluation.
    pub fn explain<'p>(
        &'p self,
        input: &'p Value,
        overrides: Option<&Overrides>,
    ) -> Result<Explanation<'p>, Rejection> {
        let mut slots = Slots::new();
        self.schema.extract(input, &mut slots)?;
        Ok(self.explain_slots(&slots, overrides))
    }

    /// [`Policy::explain`] from a request's bytes, read as
    /// [`Policy::decide_bytes`] reads them.
    ///
    /// # Errors
    ///
    /// As [`Policy::decide_bytes`].
    pub fn explain_bytes<'p>(
        &'p self,
        body: &[u8],
        overrides: Option<&Overrides>,
    ) -> Result<Explanation<'p>, RequestError> {
        let arena = bumpalo::Bump::new();
        let mut slots = Slots::new();
        self.schema.read(body, &arena, &mut slots)?;
        Ok(self.explain_slots(&slots, overrides))
    }

    fn explain_slots<'p>(&'p self, slots: &[SlotValue<'_>], overrides: Option<&Overrides>) -> Explanation<'p> {
        let prepared = overrides.map(|o| self.prepare(o));
        let decision = self.evaluate(slots, prepared.as_ref());
        let rules = (0u32..)
            .zip(&self.rules)
            .map(|(id, rule)| {
                let ov = prepared.as_ref().and_then(|p| p.rule(id));
                let enabled = enabled_in_force(rule.enabled, ov);
                let mode = mode_in_force(rule.enabled, rule.mode, ov);
                let held = prepared.as_ref().and_then(|p| p.cond(id)).unwrap_or(&rule.cond).eval(slots);
                let fired = mode != RuleMode::Off && held;
                let (effect, contributed) = match rule.effect {
                    Effect::Score(written) => {
                        let score = score_in_force(written, ov);
                        (format!("score {score:+}"), if fired && mode == RuleMode::Enforce { score } else { 0 })
                    }
                    Effect::Deny => ("deny".to_owned(), 0),
                    Effect::Allow => ("allow".to_owned(), 0),
                };
                RuleTrace {
                    rule: &rule.name,
                    source: &rule.source,
                    effect,
                    enabled,
                    mode: mode.as_str(),
                    condition_held: held,
                    fired,
                    contributed,
                }
            })
            .collect();
        let threshold = threshold_in_force(self.set.threshold, prepared.as_ref());
        let params = self
            .params()
            .map(|p| {
                let given =
                    overrides.and_then(|o| o.params.get(p.name)).filter(|v| self.check_param(p.name, v).is_ok());
                match given {
                    Some(v) => ParamTrace { name: p.name, value: v.clone(), source: "overrides" },
                    None => ParamTrace { name: p.name, value: p.default, source: "file" },
                }
            })
            .collect();
        Explanation { decision, threshold, rules, params }
    }
}
