//! Policy parameters: the file's values, values per customer and for the
//! fleet, how they layer, and what is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // tests fail loudly

use serde_json::{Value, json};
use warden_dsl::SourceFile;
use warden_engine::{Overrides, ParamError, Policy, ValueSource, run_tests};

const SET: &str = r#"
input { model: string  metadata.tokens: number = 0  metadata.external: bool = false }
param approved_models: list<string> = ["gpt-4", "gpt-4o"]
param max_tokens: number = 8000
param block_external: bool = true
rule unapproved { description "d" when not (model in param.approved_models) score +60 reason unapproved_model }
rule approved { description "d" when model in param.approved_models and metadata.tokens > 1 score +1 reason approved }
rule too_long { description "d" when metadata.tokens > param.max_tokens deny reason too_long }
rule external { description "d" when param.block_external and metadata.external deny reason external }
"#;

fn policy(text: &str) -> Policy {
    match Policy::from_sources(vec![SourceFile::new("p.warden", text)]) {
        Ok((p, _)) => p,
        Err(e) => panic!("{:?}", e.iter().map(ToString::to_string).collect::<Vec<_>>()),
    }
}

fn ov(v: Value) -> Overrides {
    Overrides::from_json(v.to_string().as_bytes()).unwrap()
}

fn decide(p: &Policy, o: &Overrides, input: Value) -> (bool, String) {
    let d = p.decide_with(&input, &p.prepare(o)).unwrap();
    (d.allowed, d.reason.to_owned())
}

#[test]
fn decisions_use_the_files_values_then_the_fleets_then_the_customers() {
    let p = policy(SET);
    let none = Overrides::default();
    let req = |model: &str, tokens: f64, external: bool| json!({"model": model, "metadata": {"tokens": tokens, "external": external}});
    assert_eq!(decide(&p, &none, req("gpt-4", 10.0, false)), (true, "approved".into()));
    assert_eq!(decide(&p, &none, req("claude-3", 10.0, false)), (false, "unapproved_model".into()));
    assert_eq!(decide(&p, &none, req("gpt-4", 9000.0, false)), (false, "too_long".into()));
    assert_eq!(decide(&p, &none, req("gpt-4", 1.0, true)), (false, "external".into()));

    let fleet = ov(json!({"params": {"approved_models": ["claude-3"], "max_tokens": 100000}}));
    assert_eq!(decide(&p, &fleet, req("claude-3", 9000.0, false)), (true, "approved".into()));
    assert_eq!(decide(&p, &fleet, req("gpt-4", 10.0, false)), (false, "unapproved_model".into()));

    let customer = ov(json!({"params": {"approved_models": ["gpt-4"], "block_external": false}}));
    let both = fleet.layered(&customer);
    assert_eq!(decide(&p, &both, req("gpt-4", 9000.0, true)), (true, "approved".into()));
    assert_eq!(decide(&p, &both, req("claude-3", 1.0, false)), (false, "unapproved_model".into()));

    // The explain trace agrees with the decision, rule by rule.
    let input = req("gpt-4", 9000.0, true);
    let e = p.explain(&input, Some(&both)).unwrap();
    let held: Vec<&str> = e.rules.iter().filter(|r| r.condition_held).map(|r| r.rule).collect();
    assert_eq!(held, ["approved"]);
    let values: Vec<(&str, Value, &str)> = e.params.iter().map(|p| (p.name, p.value.clone(), p.source)).collect();
    assert_eq!(
        values,
        [
            ("approved_models", json!(["gpt-4"]), "overrides"),
            ("max_tokens", json!(100000), "overrides"),
            ("block_external", json!(false), "overrides"),
        ]
    );
    let plain = p.explain(&input, None).unwrap();
    assert_eq!(plain.params.iter().map(|p| p.source).collect::<Vec<_>>(), ["file", "file", "file"]);
}

#[test]
fn a_value_equal_to_the_files_costs_nothing_and_others_recompile_only_their_readers() {
    let p = policy(SET);
    let same = ov(json!({"params": {"max_tokens": 8000.0, "approved_models": ["gpt-4", "gpt-4o"]}}));
    let prepared = p.prepare(&same);
    let debug = format!("{prepared:?}");
    assert!(debug.contains("conds: []"), "{debug}");
    let other = p.prepare(&ov(json!({"params": {"max_tokens": 10}})));
    let debug = format!("{other:?}");
    // Only `too_long` (rule 2) reads `max_tokens`.
    assert!(debug.contains("conds: [(2, "), "{debug}");
}

#[test]
fn values_of_another_type_and_unknown_names_are_set_aside_and_reported() {
    let p = policy(SET);
    assert_eq!(p.check_param("max_tokens", &json!(10)), Ok(()));
    assert_eq!(p.check_param("nope", &json!(10)), Err(ParamError::Unknown { name: "nope".into() }));
    let wrong = p.check_param("approved_models", &json!(["gpt-4", 4])).unwrap_err();
    assert_eq!(
        wrong.to_string(),
        "parameter `approved_models` is a `list<string>`; the value given is an array holding something other than strings"
    );
    let bad = ov(json!({"params": {"max_tokens": "10", "nope": 1}}));
    let prepared = p.prepare(&bad);
    assert_eq!(prepared.unknown_params(), ["nope"]);
    assert_eq!(prepared.invalid_params().len(), 1);
    // The file's value applies.
    assert_eq!(decide(&p, &bad, json!({"model": "gpt-4", "metadata": {"tokens": 9000}})), (false, "too_long".into()));
    let e = p.effective(&bad, None);
    let max = e.params.iter().find(|x| x.name == "max_tokens").unwrap();
    assert_eq!((max.value.value.clone(), max.value.source), (json!(8000), ValueSource::File));
    let not_applied: Vec<(&str, ValueSource)> =
        e.params_not_applied.iter().map(|u| (u.name.as_str(), u.layer)).collect();
    assert_eq!(not_applied, [("max_tokens", ValueSource::Global), ("nope", ValueSource::Global)]);
}

#[test]
fn the_effective_policy_lists_every_parameter_with_its_source() {
    let p = policy(SET);
    let fleet = ov(json!({"params": {"max_tokens": 100}}));
    let customer = ov(json!({"params": {"approved_models": []}}));
    let e = p.effective(&fleet, Some(&customer));
    let got: Vec<(&str, Value, ValueSource)> =
        e.params.iter().map(|x| (x.name, x.value.value.clone(), x.value.source)).collect();
    assert_eq!(
        got,
        [
            ("approved_models", json!([]), ValueSource::Override),
            ("max_tokens", json!(100), ValueSource::Global),
            ("block_external", json!(true), ValueSource::File),
        ]
    );
    let info: Vec<String> = p.params().map(|x| format!("{} {} {} {}", x.name, x.ty, x.default, x.source)).collect();
    assert_eq!(info[0], "approved_models list<string> [\"gpt-4\",\"gpt-4o\"] p.warden:3");
}

#[test]
fn test_blocks_set_parameters_and_their_mistakes_are_diagnostics() {
    let ok = format!(
        "{SET}\ntest \"a customer approving claude\" {{ input {{\"model\": \"claude-3\"}} overrides {{\"params\": {{\"approved_models\": [\"claude-3\"]}}}} expect allowed }}\n"
    );
    let report = run_tests(&policy(&ok));
    assert!(report.all_passed(), "{report:?}");
    let failing = ok.replace("expect allowed", "expect blocked");
    assert_eq!(run_tests(&policy(&failing)).failed(), 1);
    for (bad, says) in [
        (r#"{"params": {"approved_model": ["x"]}}"#, "parameter `approved_model` is not declared"),
        (r#"{"params": {"max_tokens": "10"}}"#, "parameter `max_tokens` is a `number`; the value given is a string"),
    ] {
        let text = format!("{SET}\ntest \"t\" {{ input {{\"model\": \"gpt-4\"}} overrides {bad} expect allowed }}\n");
        let errs = Policy::from_sources(vec![SourceFile::new("p.warden", text)]).unwrap_err();
        let all: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(all.iter().any(|e| e.contains(says)), "{all:?}");
    }
}

#[test]
fn a_customers_value_of_another_type_gives_way_to_the_fleets_not_the_files() {
    let p = policy(SET);
    let fleet = ov(json!({"params": {"max_tokens": 100, "gone": 1}}));
    let customer = ov(json!({"params": {"max_tokens": "lots", "approved_models": ["gpt-4"]}}));
    let layered = p.layer(&fleet, &customer);
    assert_eq!(layered.params.get("max_tokens"), Some(&json!(100)));
    assert_eq!(
        decide(&p, &layered, json!({"model": "gpt-4", "metadata": {"tokens": 500}})),
        (false, "too_long".into())
    );
    let e = p.effective(&fleet, Some(&customer));
    let max = e.params.iter().find(|x| x.name == "max_tokens").unwrap();
    assert_eq!((max.value.value.clone(), max.value.source), (json!(100), ValueSource::Global));
    // What applies to nothing is reported from both layers, each with its
    // layer and value.
    let not_applied: Vec<(&str, ValueSource, Value)> =
        e.params_not_applied.iter().map(|u| (u.name.as_str(), u.layer, u.value.clone())).collect();
    assert_eq!(
        not_applied,
        [("max_tokens", ValueSource::Override, json!("lots")), ("gone", ValueSource::Global, json!(1))]
    );
    assert!(matches!(e.params_not_applied[1].error, ParamError::Unknown { .. }));
    // A customer's value equal to the file's, over a fleet value that
    // differs: the file's value, without re-compiling anything.
    let back = ov(json!({"params": {"max_tokens": 8000}}));
    let layered = p.layer(&fleet, &back);
    assert!(format!("{:?}", p.prepare(&layered)).contains("conds: []"));
    assert_eq!(decide(&p, &layered, json!({"model": "gpt-4", "metadata": {"tokens": 500}})), (true, "approved".into()));
}

#[test]
fn re_compiled_rules_are_merged_with_the_index_candidates_in_rule_order() {
    // Rules a and d read the parameter (d is also indexed by model); b and
    // c are indexed by model. A customer's value re-compiles a and d, which
    // must come before, between and after the index's candidates, each
    // once: the contributions are in rule order and the reason of a tie is
    // the first rule's.
    let text = r#"
input { model: string  metadata.n: number = 0 }
param limit: number = 10
rule a { description "d" when metadata.n > param.limit score +30 reason a }
rule b { description "d" when model == "x" score +30 reason b }
rule c { description "d" when model == "x" and metadata.n > 1 score +30 reason c }
rule d { description "d" when metadata.n > param.limit and model == "x" score +30 reason d }
"#;
    let p = policy(text);
    let own = ov(json!({"params": {"limit": 2}}));
    let d = p.decide_with(&json!({"model": "x", "metadata": {"n": 5}}), &p.prepare(&own)).unwrap();
    let fired: Vec<&str> = d.contributions.iter().map(|c| c.rule).collect();
    assert_eq!(fired, ["a", "b", "c", "d"]);
    assert_eq!((d.risk_score, d.reason), (120, "a"));
    let d = p.decide_with(&json!({"model": "y", "metadata": {"n": 5}}), &p.prepare(&own)).unwrap();
    assert_eq!(d.contributions.iter().map(|c| c.rule).collect::<Vec<_>>(), ["a"]);
}
