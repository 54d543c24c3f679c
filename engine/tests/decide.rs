//! Deciding requests: the default policies' required behaviour, how input is
//! read, rule indexing, overrides and `--explain`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // tests fail loudly

use serde_json::{Value, json};
use warden_dsl::SourceFile;
use warden_engine::{Overrides, Policy, Rejection};

#[path = "../../tests/default_policies.rs"]
mod default_policies;

fn default_policy() -> Policy {
    compile(default_policies::sources().unwrap())
}

fn compile(sources: Vec<SourceFile>) -> Policy {
    match Policy::from_sources(sources) {
        Ok((p, _)) => p,
        Err(e) => panic!("{:?}", e.iter().map(ToString::to_string).collect::<Vec<_>>()),
    }
}

fn policy(text: &str) -> Policy {
    compile(vec![SourceFile::new("p.warden", text)])
}

/// `(allowed, risk_score, reason)`, or the rejection's `(code, path)`.
fn outcome(p: &Policy, input: &Value) -> Result<(bool, i64, String), (String, String)> {
    match p.decide(input) {
        Ok(d) => Ok((d.allowed, d.risk_score, d.reason.to_owned())),
        Err(r) => Err((r.code().to_owned(), r.path.clone())),
    }
}

fn meta(m: Value) -> Value {
    json!({"model": "gpt-4", "operation": "classify", "metadata": m})
}

#[test]
fn the_default_policies_reproduce_the_original_behaviour() {
    let p = default_policy();
    let base = json!({"intent": "spam_detection", "contains_personal_data": false, "is_external_model": false});
    assert_eq!(outcome(&p, &meta(base.clone())), Ok((true, 0, "ok".into())));
    let mut pii = base.clone();
    pii["contains_personal_data"] = json!(true);
    assert_eq!(outcome(&p, &meta(pii)), Ok((false, 70, "contains_personal_data".into())));
    let mut ext = base.clone();
    ext["is_external_model"] = json!(true);
    assert_eq!(outcome(&p, &meta(ext)), Ok((false, 50, "external_model".into())));
    let both = json!({"intent": "spam_detection", "contains_personal_data": true, "is_external_model": true});
    assert_eq!(outcome(&p, &meta(both.clone())), Ok((false, 120, "contains_personal_data".into())));
    assert_eq!(outcome(&p, &meta(json!({}))), Ok((true, 0, "ok".into())));
    assert_eq!(outcome(&p, &meta(json!({"prompt": "..."}))), Err(("forbidden_field".into(), "metadata.prompt".into())));
    assert_eq!(
        outcome(&p, &meta(json!({"a": {"b": [{"content": "x"}]}}))),
        Err(("forbidden_field".into(), "metadata.a.b[0].content".into()))
    );
    let d = p.decide(&meta(both)).unwrap();
    let contributions: Vec<_> = d.contributions.iter().map(|c| (c.rule, c.score)).collect();
    assert_eq!(contributions, vec![("contains_personal_data", 70), ("external_model", 50)]);
    assert_eq!(d.policy_version, p.version());
}

#[test]
fn forbidden_fields_are_found_anywhere_in_any_case_and_never_echoed() {
    let p = default_policy();
    for (input, path) in [
        (json!({"model": "m", "operation": "o", "prompt": "secret text"}), "prompt"),
        (json!({"model": "m", "operation": "o", "metadata": {"Messages": []}}), "metadata.Messages"),
        (json!({"model": "m", "operation": "o", "metadata": {"x": [[1, {"INPUT": 1}]]}}), "metadata.x[0][1].INPUT"),
        (json!({"model": "m", "operation": "o", "extra": {"deep": {"text": null}}}), "extra.deep.text"),
    ] {
        let err = p.decide(&input).unwrap_err();
        assert_eq!((err.code(), err.path.as_str()), ("forbidden_field", path));
        assert!(!err.message().contains("secret"), "the value is never echoed");
    }
    // A forbidden field wins over a type error earlier in the request.
    let both = json!({"model": 5, "operation": "o", "metadata": {"messages": "x"}});
    assert_eq!(p.decide(&both).unwrap_err().code(), "forbidden_field");
    // A field whose name merely contains a forbidden word is fine.
    assert!(p.decide(&meta(json!({"prompt_tokens": 5, "context": "x"}))).is_ok());
}

#[test]
fn wrong_types_missing_fields_and_bad_shapes_are_rejected_with_a_path() {
    let p = default_policy();
    let reject = |v: Value| -> (String, String, String) {
        let r: Rejection = p.decide(&v).unwrap_err();
        (r.code().to_owned(), r.path.clone(), r.message())
    };
    let (code, path, message) = reject(meta(json!({"contains_personal_data": "yes"})));
    assert_eq!((code.as_str(), path.as_str()), ("type_mismatch", "metadata.contains_personal_data"));
    assert_eq!(message, "field `metadata.contains_personal_data` must be a boolean");
    assert_eq!(reject(json!({"model": "m", "operation": "o", "metadata": "x"})).1, "metadata");
    let (code, path, _) = reject(json!({"operation": "o"}));
    assert_eq!((code.as_str(), path.as_str()), ("missing_field", "model"));
    assert_eq!(reject(json!({"model": null, "operation": "o"})).0, "missing_field");
    assert_eq!(reject(json!([1, 2])).0, "not_an_object");
    assert_eq!(reject(json!("text")).0, "not_an_object");
    // null means absent: a default applies.
    assert_eq!(outcome(&p, &meta(json!({"contains_personal_data": null}))), Ok((true, 0, "ok".into())));
    // Without metadata at all, defaults apply too.
    assert_eq!(outcome(&p, &json!({"model": "m", "operation": "o"})), Ok((true, 0, "ok".into())));
}

#[test]
fn nesting_past_the_limit_is_rejected_without_recursion() {
    let p = default_policy();
    let nest = |depth: usize| {
        let mut v = json!(1);
        for _ in 0..depth {
            v = json!({ "a": v });
        }
        v
    };
    // The request object is level 1; `extra` holds levels 2 and up.
    let ok = json!({"model": "m", "operation": "o", "extra": nest(31)});
    assert!(p.decide(&ok).is_ok(), "32 levels are allowed");
    let deep = json!({"model": "m", "operation": "o", "extra": nest(32)});
    let err = p.decide(&deep).unwrap_err();
    assert_eq!(err.code(), "too_deep");
    assert!(err.path.starts_with("extra.a.a"));
    // Huge flat arrays are walked iteratively.
    let wide = json!({"model": "m", "operation": "o", "extra": vec![json!({"k": [1, 2, 3]}); 100_000]});
    assert!(p.decide(&wide).is_ok());
}

#[test]
fn undeclared_fields_are_ignored_and_never_copied() {
    let p = default_policy();
    let input = meta(json!({"contains_personal_data": true, "user_email": "a@b.c"}));
    let fields = p.declared_fields(&input).unwrap();
    assert!(!fields.contains_key("metadata.user_email"));
    assert_eq!(fields.get("metadata.contains_personal_data"), Some(&json!(true)));
    assert_eq!(fields.get("metadata.is_external_model"), Some(&json!(false)), "defaults are filled in");
    assert!(!fields.contains_key("metadata.intent"), "absent optional fields are left out");
}

#[test]
fn decide_recorded_gives_the_decision_and_the_audit_fields_from_one_walk() {
    let p = default_policy();
    let input = meta(json!({"contains_personal_data": true, "user_email": "a@b.c"}));
    let prepared = p.prepare(&Overrides::default());
    let r = p.decide_recorded(&input, &prepared);
    assert_eq!(r.outcome, p.decide(&input));
    assert_eq!((r.model.as_deref(), r.operation.as_deref()), (Some("gpt-4"), Some("classify")));
    assert_eq!(r.declared, p.declared_fields(&input).unwrap());
    // A refused request still names the model it was meant for, and
    // records no fields.
    let refused = meta(json!({"prompt": "my text"}));
    let r = p.decide_recorded(&refused, &prepared);
    assert_eq!(r.outcome.map_err(|e| e.code()), Err("forbidden_field"));
    assert_eq!((r.model.as_deref(), r.operation.as_deref()), (Some("gpt-4"), Some("classify")));
    assert!(r.declared.is_empty());
    // A value of the wrong type is not a model.
    let mistyped = json!({"model": 5, "operation": "x"});
    let r = p.decide_recorded(&mistyped, &prepared);
    assert_eq!((r.model.as_deref(), r.operation.as_deref()), (None, Some("x")));
}

#[test]
fn only_declared_top_level_strings_are_recorded_as_model_and_operation() {
    let request = json!({"model": "gpt-4", "operation": "classify", "metadata": {"model": "x"}});
    let none = Overrides::default();
    // Not declared at all: never copied, even from a valid request.
    let p = policy("input { metadata.model: string? }");
    let r = p.decide_recorded(&request, &p.prepare(&none));
    assert!(r.outcome.is_ok());
    assert_eq!((r.model.as_deref(), r.operation.as_deref()), (None, None));
    // Declared with another type: not a string to record.
    let p = policy("input { model: list<string>? operation: bool? }");
    let other_types = json!({"model": ["a"], "operation": true});
    let r = p.decide_recorded(&other_types, &p.prepare(&none));
    assert_eq!((r.model.as_deref(), r.operation.as_deref()), (None, None));
    // A default counts, as it does for the declared fields.
    let p = policy("input { model: string = \"default-model\" operation: string? }");
    let empty = json!({});
    let r = p.decide_recorded(&empty, &p.prepare(&none));
    assert_eq!((r.model.as_deref(), r.operation.as_deref()), (Some("default-model"), None));
    assert_eq!(r.declared.get("model"), Some(&json!("default-model")));
}

const INDEXED: &str = r#"
input { model: string operation: string metadata.tokens: number = 0 metadata.tags: list<string> = [] }
threshold 100
rule a { description "d" when model == "gpt-4" and metadata.tokens > 10 score +30 reason a }
rule b { description "d" when model in ["gpt-4", "claude"] score +40 reason b }
rule c { description "d" when metadata.tokens > 100 score +40 reason c }
rule d { description "d" when operation == "summarize" score +40 reason d }
rule e { description "d" when model starts_with "gpt" and metadata.tags contains "pii" score +10 reason e }
"#;

#[test]
fn indexed_and_unindexed_rules_fire_in_source_order() {
    let p = policy(INDEXED);
    let input = json!({"model": "gpt-4", "operation": "summarize", "metadata": {"tokens": 500, "tags": ["pii"]}});
    let d = p.decide(&input).unwrap();
    let fired: Vec<_> = d.contributions.iter().map(|c| c.rule).collect();
    assert_eq!(fired, vec!["a", "b", "c", "d", "e"]);
    assert_eq!(d.risk_score, 160);
    // b, c and d tie at 40: the first in source order gives the reason.
    assert_eq!(d.reason, "b");
    let other = json!({"model": "claude", "operation": "classify", "metadata": {"tokens": 500}});
    let d = p.decide(&other).unwrap();
    assert_eq!(d.contributions.iter().map(|c| c.rule).collect::<Vec<_>>(), vec!["b", "c"]);
    assert!(d.allowed, "80 is under the threshold of 100");
    assert_eq!(d.reason, "b", "an allowed decision still names its top contributor");
}

#[test]
fn deny_wins_over_allow_which_wins_over_scores() {
    let text = r#"
input { model: string metadata.pii: bool = false metadata.ban: bool = false }
rule internal { description "d" when model == "eval" allow reason internal_eval }
rule pii { description "d" when metadata.pii score +70 reason pii }
rule ban { description "d" when metadata.ban deny reason banned }
"#;
    let p = policy(text);
    assert_eq!(
        outcome(&p, &json!({"model": "eval", "metadata": {"pii": true}})),
        Ok((true, 70, "internal_eval".into()))
    );
    assert_eq!(outcome(&p, &json!({"model": "eval", "metadata": {"ban": true}})), Ok((false, 0, "banned".into())));
    assert_eq!(outcome(&p, &json!({"model": "x", "metadata": {"pii": true}})), Ok((false, 70, "pii".into())));
}

#[test]
fn absent_optional_fields_make_comparisons_false() {
    let text = r#"
input { model: string metadata.tier: string? }
threshold 100
rule ne { description "d" when metadata.tier != "free" score +10 reason ne }
rule neg { description "d" when not (metadata.tier == "free") score +20 reason neg }
rule ex { description "d" when not exists(metadata.tier) score +40 reason ex }
"#;
    let p = policy(text);
    assert_eq!(outcome(&p, &json!({"model": "m"})), Ok((true, 60, "ex".into())));
    assert_eq!(outcome(&p, &json!({"model": "m", "metadata": {"tier": "pro"}})), Ok((true, 30, "neg".into())));
}

#[test]
fn overrides_disable_enable_rescore_and_change_the_threshold() {
    let p = default_policy();
    let ext = meta(json!({"is_external_model": true}));
    let with = |o: Value| {
        let o: Overrides = serde_json::from_value(o).unwrap();
        let prepared = p.prepare(&o);
        let d = p.decide_with(&ext, &prepared).unwrap();
        (d.allowed, d.risk_score, d.reason.to_owned())
    };
    assert_eq!(with(json!({})), (false, 50, "external_model".into()));
    assert_eq!(with(json!({"rules": {"external_model": {"enabled": false}}})), (true, 0, "ok".into()));
    assert_eq!(with(json!({"rules": {"external_model": {"score": 20}}})), (true, 20, "external_model".into()));
    assert_eq!(with(json!({"threshold": 60})), (true, 50, "external_model".into()));
    let unapproved = json!({"model": "new-model", "operation": "o"});
    let on: Overrides = serde_json::from_value(json!({"rules": {"approved_models": {"enabled": true}}})).unwrap();
    let d = p.decide_with(&unapproved, &p.prepare(&on)).unwrap();
    assert_eq!((d.allowed, d.reason), (false, "unapproved_model"));
    // Unknown rule names are reported and ignored.
    let odd: Overrides = serde_json::from_value(json!({"rules": {"gone": {"enabled": false}}})).unwrap();
    assert_eq!(p.prepare(&odd).unknown_rules(), ["gone".to_owned()]);
}

#[test]
fn overrides_prepared_for_another_version_are_resolved_again() {
    let old = policy(INDEXED);
    let new = policy(&format!("rule z {{ description \"d\" when model == \"zz\" score +1 reason z }}\n{INDEXED}"));
    let o: Overrides = serde_json::from_value(json!({"rules": {"b": {"enabled": false}}})).unwrap();
    let stale = old.prepare(&o);
    let input = json!({"model": "claude", "operation": "x", "metadata": {"tokens": 500}});
    let d = new.decide_with(&input, &stale).unwrap();
    assert_eq!(d.contributions.iter().map(|c| c.rule).collect::<Vec<_>>(), vec!["c"], "rule b stays disabled");
}

#[test]
fn explain_lists_every_rule_and_agrees_with_decide() {
    let p = default_policy();
    let input = meta(json!({"contains_personal_data": true}));
    let ex = p.explain(&input, None).unwrap();
    assert_eq!(ex.decision, p.decide(&input).unwrap());
    let rows: Vec<_> = ex.rules.iter().map(|r| (r.rule, r.enabled, r.condition_held, r.contributed)).collect();
    assert_eq!(
        rows,
        vec![
            ("approved_models", false, false, 0),
            ("contains_personal_data", true, true, 70),
            ("external_model", true, false, 0)
        ]
    );
    assert_eq!(ex.rules[1].source, "risk.warden:3");
    assert_eq!(ex.threshold, 50);
}

#[test]
fn decisions_are_deterministic_and_shareable_across_threads() {
    let p = std::sync::Arc::new(default_policy());
    let input = meta(json!({"contains_personal_data": true, "is_external_model": true}));
    let expected = serde_json::to_string(&p.decide(&input).unwrap()).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (p, input) = (p.clone(), input.clone());
            std::thread::spawn(move || {
                (0..1000).map(|_| serde_json::to_string(&p.decide(&input).unwrap()).unwrap()).collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap().iter().all(|s| *s == expected));
    }
}

#[test]
fn the_default_policies_own_tests_pass_and_cover_every_rule() {
    let report = warden_engine::run_tests(&default_policy());
    assert!(report.all_passed(), "{:?}", report.outcomes);
    assert!(report.outcomes.len() >= 10);
    assert!(report.uncovered.is_empty(), "{:?}", report.uncovered);
}

#[test]
fn a_failing_test_block_is_reported_with_the_difference() {
    let text = r#"
input { model: string metadata.pii: bool = false }
rule pii { description "d" when metadata.pii score +70 reason pii }
rule never { description "d" when model == "never" score +1 reason never }
test "wrong score" { input {"model": "m", "metadata": {"pii": true}} expect blocked score 60 reason pii }
test "wrong kind" { input {"model": "m", "prompt": "x"} expect allowed }
"#;
    let report = warden_engine::run_tests(&policy(text));
    assert_eq!(report.failed(), 2);
    assert_eq!(report.outcomes[0].failure.as_deref(), Some("expected score 60, got 70"));
    assert!(report.outcomes[1].failure.as_deref().unwrap().contains("forbidden_field"));
    assert_eq!(report.uncovered, vec!["never".to_owned()]);
}

#[test]
fn invalid_test_overrides_are_compile_errors() {
    let text = r#"
input { model: string }
rule r { description "d" when model == "x" deny reason r }
test "t" { input {"model": "x"} overrides {"rules": {"r": {"score": 5}}} expect blocked }
test "u" { input {"model": "x"} overrides {"rules": {"nope": {"enabled": true}}} expect blocked }
test "v" { input {"model": "x"} overrides {"treshold": 5} expect blocked }
test "w" { input {"model": "x"} expect rejected nonsense }
"#;
    let errs = Policy::from_sources(vec![SourceFile::new("p.warden", text)]).unwrap_err();
    assert_eq!(errs.iter().map(|d| d.code()).collect::<Vec<_>>(), vec!["invalid_test"; 4]);
}

#[test]
fn a_content_field_wins_over_nesting_that_comes_first() {
    let p = default_policy();
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!({ "a": deep });
    }
    let input = json!({"model": "m", "operation": "o", "aaa": deep, "zzz": {"prompt": "x"}});
    let err = p.decide(&input).unwrap_err();
    assert_eq!((err.code(), err.path.as_str()), ("forbidden_field", "zzz.prompt"));
}

#[test]
fn rules_are_listed_as_written() {
    let p = default_policy();
    let rules: Vec<_> = p.rules().map(|r| (r.name, r.enabled, r.reason, r.source)).collect();
    assert_eq!(
        rules,
        vec![
            ("approved_models", false, "unapproved_model", "models.warden:4"),
            ("contains_personal_data", true, "contains_personal_data", "risk.warden:3"),
            ("external_model", true, "external_model", "risk.warden:10"),
        ]
    );
    assert_eq!(p.rules().nth(1).map(|r| r.effect), Some(warden_dsl::ast::Effect::Score(70)));
}
