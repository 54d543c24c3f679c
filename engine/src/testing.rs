//! Running a set's own test blocks (`warden test`, and the server before it
//! swaps in a reloaded set).

use serde::Serialize;
use warden_dsl::ast::{Effect, Expectation, ShadowExpectation};
use warden_dsl::{Diagnostic, DiagnosticKind, TestDef};

use crate::decision::{Decision, Explanation, REJECTION_CODES, Rejection};
use crate::overrides::Overrides;
use crate::policy::Policy;

/// The result of one test block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestOutcome {
    /// The test's name.
    pub name: String,
    /// `file:line` of the test.
    pub position: String,
    /// Why it failed; `None` when it passed.
    pub failure: Option<String>,
}

impl TestOutcome {
    /// Whether the test passed.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// The results of all test blocks, and which rules none of them fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestReport {
    /// One outcome per test, in source order.
    pub outcomes: Vec<TestOutcome>,
    /// Rules that no test fired, in source order.
    pub uncovered: Vec<String>,
    /// How many rules there are.
    pub rule_count: usize,
}

impl TestReport {
    /// Whether every test passed.
    pub fn all_passed(&self) -> bool {
        self.outcomes.iter().all(TestOutcome::passed)
    }

    /// How many tests failed.
    pub fn failed(&self) -> usize {
        self.outcomes.iter().filter(|o| !o.passed()).count()
    }
}

fn parse_overrides(test: &TestDef) -> Result<Option<Overrides>, String> {
    match &test.overrides {
        None => Ok(None),
        Some(v) => serde_json::from_value::<Overrides>(v.node.clone())
            .map(Some)
            .map_err(|e| format!("`overrides` is not valid: {e}")),
    }
}

/// Checks what the dsl can't: that overrides name real rules in the right
/// shape and that expected rejection codes exist.
pub(crate) fn validate_tests(policy: &Policy) -> Vec<Diagnostic> {
    let set = policy.set();
    let mut out = Vec::new();
    for test in &set.tests {
        let mut problems: Vec<(String, Option<String>, &warden_dsl::Loc)> = Vec::new();
        let ov_loc = test.overrides.as_ref().map_or(&test.loc, |o| &o.loc);
        match parse_overrides(test) {
            Err(e) => problems.push((
                e,
                Some(
                    "write {\"threshold\": 80, \"rules\": {\"rule_name\": {\"enabled\": false, \"score\": 10}}, \"params\": {\"name\": value}}".into(),
                ),
                ov_loc,
            )),
            Ok(Some(o)) => {
                for (name, r) in &o.rules {
                    match policy.rules.iter().find(|rule| &*rule.name == name) {
                        None => problems.push((
                            format!("`overrides` names rule `{name}`, which does not exist"),
                            Some(format!("rules in this set: {}", policy.rule_names().collect::<Vec<_>>().join(", "))),
                            ov_loc,
                        )),
                        Some(rule) if r.score.is_some() && !matches!(rule.effect, Effect::Score(_)) => problems.push((
                            format!("`overrides` sets a score for `{name}`, which is a deny or allow rule"),
                            None,
                            ov_loc,
                        )),
                        Some(_) => {}
                    }
                }
                for (name, value) in &o.params {
                    if let Err(e) = policy.params.literal(name, value) {
                        let declared: Vec<String> =
                            policy.params().map(|p| format!("`{}: {}`", p.name, p.ty)).collect();
                        let help = if declared.is_empty() {
                            "this set declares no parameters".to_owned()
                        } else {
                            format!("parameters in this set: {}", declared.join(", "))
                        };
                        problems.push((format!("`overrides` {e}"), Some(help), ov_loc));
                    }
                }
            }
            Ok(None) => {}
        }
        if let Expectation::Rejected { code, .. } = &test.expect {
            if !REJECTION_CODES.contains(&code.as_str()) {
                problems.push((
                    format!("`{code}` is not a rejection code"),
                    Some(format!("rejection codes are {}", REJECTION_CODES.join(", "))),
                    &test.loc,
                ));
            }
        }
        for (message, help, loc) in problems {
            let mut d = Diagnostic::new(DiagnosticKind::InvalidTest { message });
            if let Some(f) = set.source(loc) {
                d = d.at(f, loc);
            }
            if let Some(h) = help {
                d = d.with_help(h);
            }
            out.push(d);
        }
    }
    out
}

/// Runs every test block of the policy's set.
pub fn run_tests(policy: &Policy) -> TestReport {
    let set = policy.set();
    let mut fired = vec![false; policy.rules.len()];
    let mut outcomes = Vec::with_capacity(set.tests.len());
    for test in &set.tests {
        let failure = match parse_overrides(test) {
            Err(e) => Some(e),
            Ok(ov) => run_one(policy, test, ov.as_ref(), &mut fired),
        };
        outcomes.push(TestOutcome { name: test.name.clone(), position: set.position(&test.loc), failure });
    }
    let uncovered = policy.rules.iter().zip(&fired).filter(|(_, f)| !**f).map(|(r, _)| r.name.to_string()).collect();
    TestReport { outcomes, uncovered, rule_count: policy.rules.len() }
}

fn run_one(policy: &Policy, test: &TestDef, ov: Option<&Overrides>, fired: &mut [bool]) -> Option<String> {
    let result = policy.explain(&test.input, ov);
    if let Ok(ex) = &result {
        for (flag, trace) in fired.iter_mut().zip(&ex.rules) {
            *flag |= trace.fired;
        }
    }
    let shadow = match (&test.expect_shadow, &result) {
        (Some(want), Ok(ex)) => check_shadow(want, &ex.decision),
        (Some(_), Err(rej)) => {
            Some(format!("expected shadow results, but the request was rejected: {} ({})", rej.code(), rej.message()))
        }
        (None, _) => None,
    };
    let main = check_expectation(&test.expect, result);
    match (main, shadow) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    }
}

/// What `expect shadow …` finds wrong with `d`, if anything.
fn check_shadow(want: &ShadowExpectation, d: &Decision<'_>) -> Option<String> {
    let held = || d.shadow.iter().map(|m| format!("`{}`", m.rule)).collect::<Vec<_>>().join(", ");
    match (want, &d.shadow_outcome) {
        (ShadowExpectation::None, None) => None,
        (ShadowExpectation::None, Some(_)) => Some(format!("expected no shadow rule to hold, but {} did", held())),
        (ShadowExpectation::Outcome { .. }, None) => {
            Some("expected a shadow outcome, but no shadow rule held".to_owned())
        }
        (ShadowExpectation::Outcome { allowed, score, reason }, Some(o)) => {
            let wrong =
                mismatches("shadow ", (*allowed, *score, reason.as_deref()), (o.allowed, o.risk_score, o.reason));
            wrong.map(|w| format!("{w} (shadow rules that held: {})", held()))
        }
    }
}

/// How an outcome differs from what was expected of it (`prefix` names
/// which: "" or "shadow "), comparing only what was stated.
fn mismatches(
    prefix: &str,
    (allowed, score, reason): (bool, Option<i64>, Option<&str>),
    (got_allowed, got_score, got_reason): (bool, i64, &str),
) -> Option<String> {
    let mut wrong = Vec::new();
    if got_allowed != allowed {
        wrong.push(format!("expected {prefix}{}, got {}", verdict(allowed), verdict(got_allowed)));
    }
    if score.is_some_and(|s| s != got_score) {
        wrong.push(format!("expected {prefix}score {}, got {got_score}", score.unwrap_or_default()));
    }
    if let Some(r) = reason.filter(|r| *r != got_reason) {
        wrong.push(format!("expected {prefix}reason `{r}`, got `{got_reason}`"));
    }
    (!wrong.is_empty()).then(|| wrong.join("; "))
}

/// What `expect …` finds wrong with the result, if anything.
fn check_expectation(expect: &Expectation, result: Result<Explanation<'_>, Rejection>) -> Option<String> {
    match (expect, result) {
        (Expectation::Decision { .. }, Err(rej)) => {
            Some(format!("expected a decision, but the request was rejected: {} ({})", rej.code(), rej.message()))
        }
        (Expectation::Decision { allowed, score, reason }, Ok(ex)) => {
            let d = &ex.decision;
            mismatches("", (*allowed, *score, reason.as_deref()), (d.allowed, d.risk_score, d.reason))
        }
        (Expectation::Rejected { code, .. }, Ok(ex)) => Some(format!(
            "expected rejection `{code}`, but the request was decided: {} with score {}, reason `{}`",
            verdict(ex.decision.allowed),
            ex.decision.risk_score,
            ex.decision.reason
        )),
        (Expectation::Rejected { code, path }, Err(rej)) => {
            let mut wrong = Vec::new();
            if rej.code() != code {
                wrong.push(format!("expected rejection `{code}`, got `{}` ({})", rej.code(), rej.message()));
            }
            if let Some(p) = path {
                if &rej.path != p {
                    wrong.push(format!("expected path `{p}`, got `{}`", rej.path));
                }
            }
            (!wrong.is_empty()).then(|| wrong.join("; "))
        }
    }
}

fn verdict(allowed: bool) -> &'static str {
    if allowed { "allowed" } else { "blocked" }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly

    use warden_dsl::SourceFile;

    use super::run_tests;
    use crate::Policy;

    const SET: &str = r#"
input { model: string  metadata.pii: bool = false }
rule pii { description "d" when metadata.pii score +70 reason pii }
rule strict { description "d" mode shadow when metadata.pii deny reason strict }
rule cheap { description "d" mode shadow when model == "cheap" score +10 reason cheap }

test "passes: the shadow deny would block" {
  input {"model": "gpt-4", "metadata": {"pii": true}}
  expect blocked score 70 reason pii
  expect shadow blocked score 70 reason strict
}
test "passes: nothing in shadow" {
  input {"model": "gpt-4"}
  expect allowed
  expect shadow none
}
test "fails: a shadow rule held" {
  input {"model": "gpt-4", "metadata": {"pii": true}}
  expect blocked
  expect shadow none
}
test "fails: wrong shadow score and reason" {
  input {"model": "cheap"}
  expect allowed
  expect shadow allowed score 20 reason pii
}
test "fails: no shadow rule held" {
  input {"model": "gpt-4"}
  expect allowed
  expect shadow allowed
}
"#;

    #[test]
    fn expect_shadow_checks_the_shadow_outcome() {
        let policy = match Policy::from_sources(vec![SourceFile::new("p.warden", SET)]) {
            Ok((p, _)) => p,
            Err(e) => panic!("{:?}", e.iter().map(ToString::to_string).collect::<Vec<_>>()),
        };
        let report = run_tests(&policy);
        let failures: Vec<Option<&str>> = report.outcomes.iter().map(|o| o.failure.as_deref()).collect();
        assert_eq!(
            failures,
            [
                None,
                None,
                Some("expected no shadow rule to hold, but `strict` did"),
                Some(
                    "expected shadow score 20, got 10; expected shadow reason `pii`, got `cheap` (shadow rules that held: `cheap`)"
                ),
                Some("expected a shadow outcome, but no shadow rule held"),
            ]
        );
        // A shadow rule that held counts as covered.
        assert!(report.uncovered.is_empty(), "{:?}", report.uncovered);
    }
}
