//! A compiled policy set and deciding requests against it.

use std::cell::Cell;

use rustc_hash::FxHashMap;
use serde_json::Value;
use smallvec::SmallVec;
use warden_dsl::ast::{Effect, Mode};
use warden_dsl::{Diagnostic, DiagnosticKind, PolicySet};

use crate::cond::Cond;
use crate::decision::{Contribution, Decision, Rejection, ShadowMatch, ShadowOutcome};
use crate::index::RuleIndex;
use crate::input::{InputSchema, Slot, SlotValue, Slots};
use crate::overrides::{
    Overrides, PreparedOverrides, RuleMode, RuleOverride, mode_in_force, score_in_force, threshold_in_force,
};
use crate::params::ParamTable;
use crate::tally::Tally;

/// Numbers compilations; see `Policy::compiled_id`.
static NEXT_COMPILATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// An immutable, compiled policy set. `Send + Sync`: compile it once, share it
/// behind an `Arc`, and decide from any number of threads.
#[derive(Debug)]
pub struct Policy {
    pub(crate) set: PolicySet,
    pub(crate) version: String,
    /// Unique to this compilation (two compilations of the same files get
    /// different ids), so overrides prepared for one are never applied by
    /// rule number to another.
    compiled_id: u64,
    pub(crate) schema: InputSchema,
    pub(crate) rules: Vec<CompiledRule>,
    /// Finds each request's candidate rules (src/index/).
    index: RuleIndex,
    /// How many sub-conditions the residuals share (src/shared.rs): the
    /// size of each decision's memo.
    shared: usize,
    by_name: FxHashMap<String, u32>,
    /// Declared parameters and the rules that read each (src/params.rs).
    pub(crate) params: ParamTable,
    /// Where the audit record's `model` and `operation` come from, resolved
    /// once here rather than per request.
    pub(crate) audit: AuditSlots,
}

/// The slots of the top-level `model` and `operation` fields, when the set
/// declares them as strings.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AuditSlots {
    pub(crate) model: Option<Slot>,
    pub(crate) operation: Option<Slot>,
}

impl AuditSlots {
    fn resolve(set: &PolicySet, schema: &InputSchema) -> Self {
        let string_slot = |name: &str| {
            set.fields
                .iter()
                .find(|f| f.ty == warden_dsl::ast::Type::String && f.path.segments() == [name])
                .and_then(|f| schema.slot_of(&f.path))
        };
        Self { model: string_slot("model"), operation: string_slot("operation") }
    }
}

/// A rule as written in the policy files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleInfo<'p> {
    /// The rule's key.
    pub name: &'p str,
    /// Its description.
    pub description: &'p str,
    /// `score`, `deny` or `allow`, with the written score.
    pub effect: Effect,
    /// Whether it is enabled in the files.
    pub enabled: bool,
    /// Its mode in the files (`mode shadow`, else enforce).
    pub mode: Mode,
    /// Its reason code.
    pub reason: &'p str,
    /// `file:line`.
    pub source: &'p str,
}

#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub(crate) name: Box<str>,
    pub(crate) reason: Box<str>,
    pub(crate) effect: Effect,
    pub(crate) enabled: bool,
    /// `mode` as written (enforce unless `mode shadow`).
    pub(crate) mode: Mode,
    pub(crate) cond: Cond,
    /// What is left of `cond` to evaluate once the rule is a candidate: the
    /// index guarantees the rest.
    residual: Cond,
    /// `file:line`.
    pub(crate) source: Box<str>,
}

impl Policy {
    /// Compiles a checked set.
    ///
    /// Also validates what only the engine understands: each test block's
    /// `overrides` and `expect rejected` code.
    pub fn compile(set: PolicySet) -> Result<Self, Vec<Diagnostic>> {
        let mut errors = Vec::new();
        if set.fields.len() > usize::from(Slot::MAX) {
            errors.push(Diagnostic::new(DiagnosticKind::Internal {
                message: format!("a set may declare at most {} fields", Slot::MAX),
            }));
            return Err(errors);
        }
        let schema = InputSchema::new(&set.fields, &set.forbidden_fields);
        let params = ParamTable::new(&set.params, set.rules.iter().map(|r| &r.node.condition));
        let defaults = |name: &str| params.default_of(name);
        let mut rules = Vec::with_capacity(set.rules.len());
        for rule in &set.rules {
            let r = &rule.node;
            match Cond::compile(&r.condition, &schema, &defaults) {
                Ok(cond) => rules.push(CompiledRule {
                    name: r.name.node.as_str().into(),
                    reason: r.reason.node.as_str().into(),
                    effect: r.effect.node,
                    enabled: r.enabled,
                    mode: r.mode,
                    residual: Cond::Const(true),
                    cond,
                    source: set.position(&rule.loc).into(),
                }),
                Err(e) => {
                    let d = Diagnostic::new(DiagnosticKind::Internal { message: e.to_string() });
                    errors.push(match set.source(&r.condition.loc) {
                        Some(f) => d.at(f, &r.condition.loc),
                        None => d,
                    });
                }
            }
        }
        let by_name: FxHashMap<String, u32> =
            rules.iter().enumerate().filter_map(|(i, r)| Some((r.name.to_string(), u32::try_from(i).ok()?))).collect();
        let conds: Vec<&Cond> = rules.iter().map(|r| &r.cond).collect();
        let (index, residuals) = RuleIndex::build(&conds);
        for (rule, residual) in rules.iter_mut().zip(residuals) {
            rule.residual = residual;
        }
        let shared = crate::shared::share(&mut rules.iter_mut().map(|r| &mut r.residual).collect::<Vec<_>>());
        let version = crate::version::of(&set.sources);
        let compiled_id = NEXT_COMPILATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let audit = AuditSlots::resolve(&set, &schema);
        let policy = Self { set, version, compiled_id, schema, rules, index, shared, by_name, params, audit };
        errors.extend(crate::testing::validate_tests(&policy));
        if errors.is_empty() { Ok(policy) } else { Err(errors) }
    }

    /// Parses, checks and compiles files in one step. On success returns the
    /// policy and any warnings; on failure every error and warning.
    pub fn from_sources(sources: Vec<warden_dsl::SourceFile>) -> Result<(Self, Vec<Diagnostic>), Vec<Diagnostic>> {
        let checked = warden_dsl::check(sources);
        let Some(set) = checked.set else {
            return Err(checked.diagnostics);
        };
        match Self::compile(set) {
            Ok(p) => Ok((p, checked.diagnostics)),
            Err(mut errs) => {
                errs.extend(checked.diagnostics);
                Err(errs)
            }
        }
    }

    /// Content hash of the set's files: the same files give the same version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The checked set this policy was compiled from.
    pub fn set(&self) -> &PolicySet {
        &self.set
    }

    /// The threshold as written in the set.
    pub fn threshold(&self) -> i64 {
        self.set.threshold
    }

    /// The identity of the rule named `name`, to bind what is stored for a
    /// rule (a global toggle, a customer's override) to the rule it was made
    /// for rather than to whatever rule later takes its name: 32 lowercase
    /// hex digits, the first 16 bytes of SHA-256 over `warden.rule.v1`, the
    /// effect's kind (`score`, `deny` or `allow`) and the condition in
    /// canonical form (the formatter's one-line rendering of the `when`
    /// expression: layout, comments and redundant parentheses don't count).
    ///
    /// What makes a rule *that rule* is what it matches and what kind of
    /// thing it does. So changing its description, reason, `enabled` or the
    /// number of its score keeps the fingerprint (a customer's score or an
    /// exemption still makes sense), while changing its condition (a model
    /// added to a list, a comparison reversed) or its effect kind (a score
    /// rule made a deny) changes it. The rule's name is not part of it (it
    /// is the key already), nor are the declarations of the fields it reads.
    ///
    /// `None` when the set has no rule of that name. Computed on each call
    /// (a rendering and a hash); callers that need many keep them.
    pub fn rule_fingerprint(&self, name: &str) -> Option<String> {
        let id = usize::try_from(*self.by_name.get(name)?).ok()?;
        let rule = &self.set.rules.get(id)?.node;
        let kind = match rule.effect.node {
            Effect::Score(_) => "score",
            Effect::Deny => "deny",
            Effect::Allow => "allow",
        };
        let condition = warden_dsl::fmt::expr(&rule.condition.node);
        use sha2::Digest as _;
        let mut hash = sha2::Sha256::new();
        for part in ["warden.rule.v1", kind, condition.as_str()] {
            hash.update(part.as_bytes());
            hash.update([0u8]);
        }
        Some(hash.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect())
    }

    /// Decides a request with no overrides.
    pub fn decide<'p>(&'p self, input: &Value) -> Result<Decision<'p>, Rejection> {
        let mut slots = Slots::new();
        self.schema.extract(input, &mut slots)?;
        Ok(self.evaluate(&slots, None))
    }

    /// Decides a request with a customer's overrides.
    pub fn decide_with<'p>(&'p self, input: &Value, overrides: &PreparedOverrides) -> Result<Decision<'p>, Rejection> {
        let mut slots = Slots::new();
        self.schema.extract(input, &mut slots)?;
        Ok(self.evaluate_with(&slots, overrides))
    }

    pub(crate) fn evaluate_with<'p>(&'p self, slots: &[SlotValue<'_>], overrides: &PreparedOverrides) -> Decision<'p> {
        if overrides.policy_id == self.compiled_id {
            self.evaluate(slots, Some(overrides))
        } else {
            // Prepared for another version of the set: rule numbers may
            // differ, so resolve the names again rather than misapply them.
            let fresh = self.prepare(overrides.overrides());
            self.evaluate(slots, Some(&fresh))
        }
    }

    /// The declared fields of a request (and nothing else), as they were
    /// read, for an audit record. Defaults are filled in; absent fields are
    /// left out.
    pub fn declared_fields(&self, input: &Value) -> Result<serde_json::Map<String, Value>, Rejection> {
        let mut slots = Slots::new();
        self.schema.extract(input, &mut slots)?;
        Ok(crate::input::declared_only(&self.schema, &slots))
    }

    /// Resolves overrides against this policy. Names of rules it doesn't have
    /// are kept aside ([`PreparedOverrides::unknown_rules`]) and ignored.
    pub fn prepare(&self, overrides: &Overrides) -> PreparedOverrides {
        let mut rules = Vec::with_capacity(overrides.rules.len());
        let mut unknown = Vec::new();
        for (name, o) in &overrides.rules {
            match self.by_name.get(name) {
                Some(&id) => rules.push((id, *o)),
                None => unknown.push(name.clone()),
            }
        }
        rules.sort_unstable_by_key(|(id, _)| *id);
        let params = self.prepare_params(&overrides.params);
        PreparedOverrides {
            policy_id: self.compiled_id,
            threshold: overrides.threshold,
            rules: rules.into(),
            source: overrides.clone(),
            unknown,
            conds: params.conds,
            unknown_params: params.unknown,
            invalid_params: params.invalid,
            uncompiled: params.uncompiled,
        }
    }

    /// Every rule as written, in source order.
    pub fn rules(&self) -> impl Iterator<Item = RuleInfo<'_>> {
        self.rules.iter().zip(&self.set.rules).map(|(compiled, def)| RuleInfo {
            name: &compiled.name,
            description: &def.node.description.node,
            effect: compiled.effect,
            enabled: compiled.enabled,
            mode: compiled.mode,
            reason: &compiled.reason,
            source: &compiled.source,
        })
    }

    /// Rule names in source order.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| &*r.name)
    }

    pub(crate) fn evaluate<'p>(
        &'p self,
        slots: &[SlotValue<'_>],
        overrides: Option<&PreparedOverrides>,
    ) -> Decision<'p> {
        let threshold = threshold_in_force(self.set.threshold, overrides);
        let ov_rules: &[(u32, RuleOverride)] = overrides.map_or(&[], |o| &o.rules);
        let mut ov_pos = 0usize;
        let mut enforced = Tally::default();
        let mut contributions = Vec::new();
        // Shadow rules are tallied apart and only combined with the
        // enforced ones for `shadow_outcome`.
        let mut shadowed = Tally::default();
        let mut shadow = Vec::new();
        let replaced: &[(u32, Cond)] = overrides.map_or(&[], |o| &o.conds);
        let memo: SmallVec<[Cell<u8>; 16]> = (0..self.shared).map(|_| Cell::new(0)).collect();
        let mut visit = |id: u32, cond: Option<&Cond>| {
            let Some(rule) = self.rules.get(id as usize) else {
                return;
            };
            // Candidates come in increasing order, so one forward pass over
            // the sorted overrides finds each rule's override.
            let mut ov = None;
            while let Some((oid, o)) = ov_rules.get(ov_pos) {
                if *oid < id {
                    ov_pos += 1;
                } else {
                    if *oid == id {
                        ov = Some(o);
                    }
                    break;
                }
            }
            let mode = mode_in_force(rule.enabled, rule.mode, ov);
            // A rule re-compiled for this customer's parameter values is
            // tested in full: the index was built with the file's values.
            if mode == RuleMode::Off || !cond.unwrap_or(&rule.residual).eval_in(slots, &memo) {
                return;
            }
            let score = match rule.effect {
                Effect::Score(written) => score_in_force(written, ov),
                Effect::Deny | Effect::Allow => 0,
            };
            if mode == RuleMode::Shadow {
                shadow.push(ShadowMatch { rule: &rule.name, effect: effect_kind(rule.effect), score });
                shadowed.add(id, rule.effect, score, &rule.reason);
            } else {
                if score != 0 {
                    contributions.push(Contribution { rule: &rule.name, score });
                }
                enforced.add(id, rule.effect, score, &rule.reason);
            }
        };
        // The index's candidates merged with the re-compiled rules, in rule
        // order (the tallies rely on it).
        let mut next_replaced = replaced.iter().peekable();
        self.index.for_each_candidate(slots, |id| {
            while let Some((rid, cond)) = next_replaced.next_if(|(rid, _)| *rid <= id) {
                visit(*rid, Some(cond));
                if *rid == id {
                    return;
                }
            }
            visit(id, None);
        });
        for (rid, cond) in next_replaced {
            visit(*rid, Some(cond));
        }
        let (allowed, reason) = enforced.outcome(threshold);
        let shadow_outcome = (!shadow.is_empty()).then(|| {
            let all = enforced.with(&shadowed);
            let (allowed, reason) = all.outcome(threshold);
            ShadowOutcome { allowed, risk_score: all.risk_score(), reason }
        });
        Decision {
            allowed,
            risk_score: enforced.risk_score(),
            reason,
            contributions,
            policy_version: &self.version,
            shadow,
            shadow_outcome,
        }
    }
}

/// `score`, `deny` or `allow`.
fn effect_kind(effect: Effect) -> &'static str {
    match effect {
        Effect::Score(_) => "score",
        Effect::Deny => "deny",
        Effect::Allow => "allow",
    }
}

#[cfg(test)]
mod tests {
    use super::Policy;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn policy_is_send_and_sync() {
        assert_send_sync::<Policy>();
    }
}

#[cfg(test)]
mod fingerprint_tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly on bad fixtures

    use super::Policy;

    const INPUT: &str = "input { model: string  metadata.pii: bool = false }\n";

    fn fingerprint(rule: &str) -> String {
        let src = warden_dsl::SourceFile::new("p.warden", format!("{INPUT}{rule}"));
        let (policy, _) = Policy::from_sources(vec![src]).map_err(|e| format!("{e:?}")).unwrap();
        policy.rule_fingerprint("r").unwrap()
    }

    const BASE: &str = r#"rule r { description "d" when metadata.pii and model in ["a", "b"] score +70 reason x }"#;

    #[test]
    fn is_stable_across_compilations_and_known() {
        let f = fingerprint(BASE);
        assert_eq!(f, fingerprint(BASE));
        assert_eq!(f.len(), 32);
        assert!(f.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{f}");
        // Stored in databases: the scheme must not drift between releases.
        // The vector, computed outside Warden: the first 16 bytes of
        // SHA-256("warden.rule.v1\0score\0metadata.pii and model in [\"a\", \"b\"]\0").
        assert_eq!(f, "4d62049e4d15009029f31448b63baa36");
    }

    #[test]
    fn ignores_what_does_not_change_what_the_rule_matches_or_does() {
        let f = fingerprint(BASE);
        for same in [
            r#"rule r { description "another text" when metadata.pii and model in ["a", "b"] score +70 reason x }"#,
            r#"rule r { description "d" when metadata.pii and model in ["a", "b"] score +70 reason y }"#,
            r#"rule r { description "d" enabled false when metadata.pii and model in ["a", "b"] score +70 reason x }"#,
            r#"rule r { description "d" when metadata.pii and model in ["a", "b"] score +5 reason x }"#,
            "rule r {\n  description \"d\"\n  # why\n  when (metadata.pii) and (model in [\"a\",\n \"b\"])\n  score +70\n  reason x\n}",
        ] {
            assert_eq!(fingerprint(same), f, "{same}");
        }
    }

    #[test]
    fn changes_with_the_condition_or_the_effect_kind() {
        let f = fingerprint(BASE);
        let mut seen = std::collections::HashSet::from([f]);
        for other in [
            r#"rule r { description "d" when metadata.pii and model in ["a", "b", "c"] score +70 reason x }"#,
            r#"rule r { description "d" when metadata.pii or model in ["a", "b"] score +70 reason x }"#,
            r#"rule r { description "d" when not (metadata.pii and model in ["a", "b"]) score +70 reason x }"#,
            r#"rule r { description "d" when metadata.pii and model in ["a", "b"] deny reason x }"#,
            r#"rule r { description "d" when metadata.pii and model in ["a", "b"] allow reason x }"#,
        ] {
            assert!(seen.insert(fingerprint(other)), "{other} has the fingerprint of another rule");
        }
    }

    #[test]
    fn is_none_for_a_rule_the_set_lacks() {
        let src = warden_dsl::SourceFile::new("p.warden", format!("{INPUT}{BASE}"));
        let (policy, _) = Policy::from_sources(vec![src]).map_err(|e| format!("{e:?}")).unwrap();
        assert!(policy.rule_fingerprint("r").is_some());
        assert_eq!(policy.rule_fingerprint("missing"), None);
    }
}
