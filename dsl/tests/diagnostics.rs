//! Snapshots of rendered diagnostics, one per kind: what a policy author sees.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // tests fail loudly

use warden_dsl::{SourceFile, check, render};

const INPUT: &str =
    "input {\n  model: string\n  metadata.contains_personal_data: bool = false\n  metadata.tokens: number = 0\n}\n";

/// Checks the files and renders every diagnostic of `code`, without colour.
fn rendered(code: &str, files: &[(&str, &str)]) -> String {
    let sources = files.iter().map(|(n, t)| SourceFile::new(*n, *t)).collect();
    let checked = check(sources);
    let matching: Vec<String> =
        checked.diagnostics.iter().filter(|d| d.code() == code).map(|d| render(d, false)).collect();
    assert!(
        !matching.is_empty(),
        "no `{code}` diagnostic; got {:?}",
        checked.diagnostics.iter().map(|d| d.code()).collect::<Vec<_>>()
    );
    matching.join("\n")
}

fn with_input(code: &str, rules: &str) -> String {
    rendered(code, &[("input.warden", INPUT), ("rules.warden", rules)])
}

#[test]
fn syntax() {
    insta::assert_snapshot!(with_input(
        "syntax",
        "rule pii {\n  description \"personal data\"\n  when metadata.contains_personal_data && model == \"x\"\n  score +70\n  reason pii\n}\n"
    ));
}

#[test]
fn syntax_missing_brace() {
    insta::assert_snapshot!(with_input("syntax", "rule pii\n  description \"personal data\"\n"));
}

#[test]
fn nesting_too_deep() {
    let text = format!(
        "rule r {{\n  description \"d\"\n  when {}model == \"x\"{}\n  score +1\n  reason r\n}}\n",
        "(".repeat(70),
        ")".repeat(70)
    );
    insta::assert_snapshot!(with_input("nesting_too_deep", &text));
}

#[test]
fn invalid_escape() {
    insta::assert_snapshot!(with_input(
        "invalid_escape",
        "rule r {\n  description \"a \\d b\"\n  when metadata.contains_personal_data\n  score +1\n  reason r\n}\n"
    ));
}

#[test]
fn number_out_of_range() {
    insta::assert_snapshot!(with_input("number_out_of_range", "threshold 5000000000\n"));
}

#[test]
fn missing_part() {
    insta::assert_snapshot!(with_input(
        "missing_part",
        "rule pii {\n  description \"personal data\"\n  score +70\n  reason pii\n}\n"
    ));
}

#[test]
fn duplicate_part() {
    insta::assert_snapshot!(with_input(
        "duplicate_part",
        "rule pii {\n  description \"personal data\"\n  when metadata.contains_personal_data\n  score +70\n  score +50\n  reason pii\n}\n"
    ));
}

#[test]
fn unknown_field() {
    insta::assert_snapshot!(with_input(
        "unknown_field",
        "rule pii {\n  description \"personal data\"\n  when metadata.contains_pii\n  score +70\n  reason pii\n}\n"
    ));
}

#[test]
fn duplicate_field() {
    insta::assert_snapshot!(rendered(
        "duplicate_field",
        &[("a.warden", INPUT), ("b.warden", "input {\n  model: string\n}\n")]
    ));
}

#[test]
fn field_conflict() {
    insta::assert_snapshot!(rendered(
        "field_conflict",
        &[("a.warden", "input {\n  metadata: string\n  metadata.intent: string?\n}\n")]
    ));
}

#[test]
fn forbidden_field_declared() {
    insta::assert_snapshot!(rendered(
        "forbidden_field_declared",
        &[("a.warden", "input {\n  metadata.prompt: string?\n}\n")]
    ));
}

#[test]
fn type_mismatch() {
    insta::assert_snapshot!(with_input(
        "type_mismatch",
        "rule pii {\n  description \"personal data\"\n  when metadata.contains_personal_data == 1\n  score +70\n  reason pii\n}\n"
    ));
}

#[test]
fn duplicate_rule() {
    let rule = "rule pii {\n  description \"personal data\"\n  when metadata.contains_personal_data\n  score +70\n  reason pii\n}\n";
    insta::assert_snapshot!(rendered(
        "duplicate_rule",
        &[("input.warden", INPUT), ("a.warden", rule), ("b.warden", rule)]
    ));
}

#[test]
fn invalid_regex() {
    insta::assert_snapshot!(with_input(
        "invalid_regex",
        "rule r {\n  description \"d\"\n  when model matches \"gpt-(4|5\"\n  score +10\n  reason r\n}\n"
    ));
}

#[test]
fn constant_condition() {
    insta::assert_snapshot!(with_input(
        "constant_condition",
        "rule r {\n  description \"d\"\n  when exists(model) and metadata.tokens > 10\n  score +10\n  reason r\n}\n"
    ));
}

#[test]
fn duplicate_setting() {
    insta::assert_snapshot!(rendered(
        "duplicate_setting",
        &[("a.warden", "threshold 50\n"), ("b.warden", "threshold 60\n")]
    ));
}

#[test]
fn invalid_test() {
    insta::assert_snapshot!(with_input(
        "invalid_test",
        "rule pii {\n  description \"d\"\n  when metadata.contains_personal_data\n  score +70\n  reason pii\n}\n\ntest \"t\" {\n  input {\"model\": \"m\"}\n  expect blocked reason pi\n}\n"
    ));
}

#[test]
fn duplicate_key() {
    insta::assert_snapshot!(with_input(
        "duplicate_key",
        "test \"t\" {\n  input {\"model\": \"m\", \"metadata\": {\"x\": [{\"contains_personal_data\": true,\n    \"contains_personal_data\": false}]}}\n  expect allowed\n}\n"
    ));
}

#[test]
fn duplicate_keys_in_test_blocks_are_found_at_any_depth_with_their_position() {
    let cases = [
        ("input {\"model\": \"m\", \"model\": \"n\"}", "model", "2:24"),
        ("input {\"metadata\": {\"a\": {}, \"\\u0061\": 1}}", "metadata.a", "2:32"),
        ("input {\"model\": \"m\"}\n  overrides {\"rules\": {\"r\": {}, \"r\": {}}}", "rules.r", "3:33"),
    ];
    for (part, path, at) in cases {
        let text = format!("test \"t\" {{\n  {part}\n  expect allowed\n}}\n");
        let checked = check(vec![SourceFile::new("t.warden", text.as_str())]);
        let d = checked.diagnostics.iter().find(|d| d.code() == "duplicate_key").expect(&text);
        assert_eq!(d.kind().to_string(), format!("key `{path}` appears more than once in the same JSON object"));
        assert_eq!(d.position(), Some(format!("t.warden:{at}").as_str()), "{text}");
    }
    let fine = "test \"t\" {\n  input {\"a\": {\"k\": 1}, \"b\": {\"k\": 1}, \"K\": 2}\n  expect allowed\n}\n";
    let checked = check(vec![SourceFile::new("t.warden", fine)]);
    assert!(checked.diagnostics.iter().all(|d| d.code() != "duplicate_key"));
}

#[test]
fn empty_set() {
    insta::assert_snapshot!(rendered("empty_set", &[]));
}

#[test]
fn unreachable_threshold() {
    insta::assert_snapshot!(with_input(
        "unreachable_threshold",
        "threshold 100\n\nrule pii {\n  description \"d\"\n  when metadata.contains_personal_data\n  score +70\n  reason pii\n}\n"
    ));
}

#[test]
fn shadowed_rule() {
    insta::assert_snapshot!(with_input(
        "shadowed_rule",
        "rule internal {\n  description \"d\"\n  when model == \"eval\"\n  allow\n  reason internal\n}\n\nrule big {\n  description \"d\"\n  when model == \"eval\" and metadata.tokens > 1000\n  score +60\n  reason big\n}\n"
    ));
}
