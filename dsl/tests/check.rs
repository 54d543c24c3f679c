//! Static checks: each one is reported with its code, and all errors in a
//! set are reported together.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // tests fail loudly

use warden_dsl::{SourceFile, check};

const INPUT: &str = r#"
input {
  model: string
  operation: string
  metadata.intent: string?
  metadata.contains_personal_data: bool = false
  metadata.is_external_model: bool = false
  metadata.tokens: number = 0
  metadata.tags: list<string> = []
}
"#;

/// The codes of the errors (not warnings) found in `files`.
fn codes_of(files: &[(&str, &str)]) -> Vec<&'static str> {
    let sources = files.iter().map(|(n, t)| SourceFile::new(*n, *t)).collect();
    check(sources).diagnostics.iter().filter(|d| d.is_error()).map(|d| d.code()).collect()
}

fn codes(rules: &str) -> Vec<&'static str> {
    codes_of(&[("input.warden", INPUT), ("rules.warden", rules)])
}

fn rule(cond: &str) -> String {
    format!("rule r {{ description \"d\" when {cond} score +60 reason r }}")
}

#[test]
fn a_clean_set_checks_without_diagnostics() {
    let c = check(vec![
        SourceFile::new("i.warden", INPUT),
        SourceFile::new("r.warden", rule("metadata.contains_personal_data").as_str()),
    ]);
    assert!(c.set.is_some());
    assert!(c.diagnostics.is_empty());
}

#[test]
fn unknown_fields_are_errors_with_a_suggestion() {
    let c = check(vec![
        SourceFile::new("i.warden", INPUT),
        SourceFile::new("r.warden", rule("metadata.contains_pii").as_str()),
    ]);
    assert!(c.set.is_none());
    let d = &c.diagnostics[0];
    assert_eq!(d.code(), "unknown_field");
    assert_eq!(d.help_text(), Some("did you mean `metadata.contains_personal_data`?"));
    assert_eq!(d.position(), Some("r.warden:1:31"));
}

#[test]
fn type_rules() {
    for ok in [
        "model == \"gpt-4\"",
        "\"gpt-4\" != model",
        "metadata.tokens >= 1000",
        "metadata.contains_personal_data == true",
        "model in [\"a\", \"b\"]",
        "metadata.tokens in [1, 2]",
        "model starts_with \"gpt\" or model ends_with \"mini\" or model contains \"4\" or model matches \"^g\"",
        "metadata.tags contains \"finance\"",
        "exists(metadata.intent)",
        "model == operation",
        "not metadata.is_external_model",
    ] {
        assert_eq!(codes(&rule(ok)), Vec::<&str>::new(), "{ok}");
    }
    for bad in [
        "metadata.contains_personal_data == 1",
        "model > \"a\"",
        "model",
        "\"text\"",
        "metadata.tags == \"a\"",
        "model in [\"a\", 1]",
        "metadata.contains_personal_data in [true]",
        "metadata.tokens starts_with \"1\"",
        "metadata.tags matches \"a\"",
        "metadata.tags in [\"a\"]",
    ] {
        assert_eq!(codes(&rule(bad)), vec!["type_mismatch"], "{bad}");
    }
}

#[test]
fn constant_conditions_are_errors() {
    for (cond, n) in [
        ("true", 1),
        ("1 < 2", 1),
        ("\"a\" == \"a\" and model == \"x\"", 1),
        ("exists(model)", 1),
        ("exists(metadata.tokens)", 1),
        ("model in []", 1),
        ("\"gpt-4\" starts_with \"gpt\"", 1),
        ("not false or true", 2),
    ] {
        assert_eq!(codes(&rule(cond)), vec!["constant_condition"; n], "{cond}");
    }
}

#[test]
fn invalid_regex_is_an_error() {
    assert_eq!(codes(&rule("model matches \"(unclosed\"")), vec!["invalid_regex"]);
}

#[test]
fn duplicate_rules_across_files_are_errors() {
    let r = rule("metadata.is_external_model");
    assert_eq!(codes_of(&[("a.warden", INPUT), ("b.warden", &r), ("c/d.warden", &r)]), vec!["duplicate_rule"]);
}

#[test]
fn declaration_errors() {
    assert_eq!(codes_of(&[("a.warden", "input { model: string model: bool }")]), vec!["duplicate_field"]);
    assert_eq!(codes_of(&[("a.warden", "input { metadata: string metadata.x: bool }")]), vec!["field_conflict"]);
    assert_eq!(codes_of(&[("a.warden", "input { metadata.prompt: string? }")]), vec!["forbidden_field_declared"]);
    assert_eq!(codes_of(&[("a.warden", "input { metadata.Content: string? }")]), vec!["forbidden_field_declared"]);
    assert_eq!(codes_of(&[("a.warden", "input { n: number = \"x\" }")]), vec!["type_mismatch"]);
    assert_eq!(codes_of(&[("a.warden", "input { t: list<string> = [1] }")]), vec!["type_mismatch"]);
    assert_eq!(codes_of(&[("a.warden", "threshold 10"), ("b.warden", "threshold 20")]), vec!["duplicate_setting"]);
    assert_eq!(codes_of(&[]), vec!["empty_set"]);
}

#[test]
fn a_custom_forbidden_list_replaces_the_default() {
    let input = "forbidden_fields [\"body\"]\ninput { metadata.prompt: string? metadata.body: string? }";
    assert_eq!(codes_of(&[("a.warden", input)]), vec!["forbidden_field_declared"]);
}

#[test]
fn unreachable_threshold_is_a_warning() {
    let c = check(vec![
        SourceFile::new("i.warden", INPUT),
        SourceFile::new(
            "r.warden",
            "threshold 100\nrule a { description \"d\" when metadata.is_external_model score +50 reason a }",
        ),
    ]);
    assert!(c.set.is_some(), "warnings don't stop compilation");
    assert_eq!(c.diagnostics.iter().map(|d| d.code()).collect::<Vec<_>>(), vec!["unreachable_threshold"]);
    assert!(!c.diagnostics[0].is_error());
}

#[test]
fn an_allow_rule_that_covers_a_score_rule_is_a_warning() {
    let rules = r#"
rule internal { description "d" when model == "eval" allow reason internal }
rule pii { description "d" when model == "eval" and metadata.contains_personal_data score +70 reason pii }
rule ext { description "d" when metadata.is_external_model score +50 reason ext }
"#;
    let c = check(vec![SourceFile::new("i.warden", INPUT), SourceFile::new("r.warden", rules)]);
    assert!(c.set.is_some());
    assert_eq!(c.diagnostics.iter().map(|d| d.code()).collect::<Vec<_>>(), vec!["shadowed_rule"]);
}

#[test]
fn tests_must_expect_a_reason_some_rule_gives() {
    let rules = format!(
        "{}\ntest \"t\" {{ input {{\"model\": \"m\", \"operation\": \"o\"}} expect blocked reason rr }}",
        rule("metadata.is_external_model")
    );
    assert_eq!(codes(&rules), vec!["invalid_test"]);
}

#[test]
fn every_error_in_every_file_is_reported() {
    let a = "rule a { description \"d\" when metadata.nope score +1 reason a }";
    let b = "rule b { description \"d\" when model == 1 score +1 reason b }\nrule c { description \"d\" when true score +1 reason c }";
    assert_eq!(
        codes_of(&[("i.warden", INPUT), ("a.warden", a), ("b.warden", b)]),
        vec!["unknown_field", "type_mismatch", "constant_condition"]
    );
    // Syntax errors in two files are both reported.
    assert_eq!(codes_of(&[("a.warden", "rule {"), ("b.warden", "input {")]), vec!["syntax", "syntax"]);
}

#[test]
fn a_leading_byte_order_mark_is_accepted_and_positions_are_unchanged() {
    // The issue's report: `forbidden_fields` first in a file saved with a BOM.
    let body = "forbidden_fields [\"prompt\"]\ninput { model: string }\nrule r {\n  description \"d\"\n  when metadata.nope\n  score +1\n  reason r\n}\n";
    for text in [body.to_owned(), format!("\u{FEFF}{body}")] {
        let checked = check(vec![SourceFile::new("bom.warden", text.as_str())]);
        let d: Vec<_> = checked
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| (d.code(), d.position().map(str::to_owned)))
            .collect();
        assert_eq!(d, vec![("unknown_field", Some("bom.warden:5:8".to_owned()))], "{text:?}");
    }
    let fine = "\u{FEFF}input { model: string }\n";
    assert!(check(vec![SourceFile::new("ok.warden", fine)]).set.is_some());
}

#[test]
fn a_byte_order_mark_elsewhere_is_a_syntax_error_that_says_what_it_is() {
    let checked = check(vec![SourceFile::new("mid.warden", "input { model: string }\n\u{FEFF}threshold 10\n")]);
    let d = checked.diagnostics.first().unwrap();
    assert_eq!((d.code(), d.position()), ("syntax", Some("mid.warden:2:1")));
    assert!(d.help_text().unwrap().contains("byte order mark"), "{:?}", d.help_text());
}

/// The diagnostics of `rules` after INPUT, as `(code, help)`.
fn diagnostics(rules: &str) -> Vec<(&'static str, String)> {
    let c = check(vec![SourceFile::new("i.warden", INPUT), SourceFile::new("r.warden", rules)]);
    c.diagnostics.iter().map(|d| (d.code(), d.help_text().unwrap_or_default().to_owned())).collect()
}

#[test]
fn parameters_are_typed_at_every_use() {
    let params = r#"
param approved: list<string> = ["gpt-4", "gpt-4o"]
param max_tokens: number = 8000
param strict: bool = true
param tier: string = "gold"
"#;
    let ok = format!(
        "{params}{}\n{}\n{}\n{}",
        rule("model in param.approved and metadata.tokens > param.max_tokens"),
        rule("param.strict and param.tier == metadata.intent").replace("rule r", "rule r2"),
        rule("not (param.max_tokens <= metadata.tokens)").replace("rule r", "rule r3"),
        rule("metadata.tags contains \"a\" and param.tier != model").replace("rule r", "rule r4"),
    );
    let c = check(vec![SourceFile::new("i.warden", INPUT), SourceFile::new("r.warden", ok.as_str())]);
    assert!(c.diagnostics.is_empty(), "{:?}", c.diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>());
    let set = c.set.unwrap();
    assert_eq!(
        set.params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["approved", "max_tokens", "strict", "tier"]
    );
    for bad in [
        "metadata.tokens > param.tier",
        "model == param.max_tokens",
        "model in param.tier",
        "metadata.tokens in param.approved",
        "param.max_tokens",
        "model == param.approved",
    ] {
        let with = format!("{params}{}", rule(bad));
        assert!(codes(&with).contains(&"type_mismatch"), "{bad}: {:?}", codes(&with));
    }
}

#[test]
fn an_unknown_parameter_is_named_with_the_closest_declared_one() {
    let d = diagnostics(&format!("param max_tokens: number = 8000\n{}", rule("metadata.tokens > param.max_token")));
    assert!(d.contains(&("unknown_param", "did you mean `param.max_tokens`?".to_owned())), "{d:?}");
    // Used nowhere else, so it is also reported unused.
    assert!(d.iter().any(|(c, _)| *c == "unused_param"), "{d:?}");
    let d = diagnostics(&rule("model in param.models"));
    assert!(d.iter().any(|(c, h)| *c == "unknown_param" && h.contains("declare it")), "{d:?}");
}

#[test]
fn parameter_declarations_are_checked() {
    let used = rule("metadata.tokens > param.n");
    // The file's value must be of the declared type.
    for (decl, use_) in [
        ("param n: number = \"8000\"", used.clone()),
        ("param n: number = [1]", used.clone()),
        ("param n: list<string> = [1]", rule("model in param.n")),
    ] {
        assert_eq!(codes(&format!("{decl}\n{use_}")), ["type_mismatch"], "{decl}");
    }
    assert_eq!(codes(&format!("param n: number = 1\nparam n: number = 2\n{used}")), ["duplicate_param"]);
    // Both positions name the name, as for rules.
    let d = diagnostics(&format!("param n: number = 1\nparam n: number = 2\n{used}"));
    assert!(
        d.contains(&(
            "duplicate_param",
            "first declared at r.warden:1:7; parameter names are unique across all files".to_owned()
        )),
        "{d:?}"
    );
    // A field may not be declared under `param`, which names parameters.
    assert_eq!(codes_of(&[("i.warden", "input { param.x: string }")]), ["syntax"]);
    // Unused: a warning only.
    let c = check(vec![
        SourceFile::new("i.warden", INPUT),
        SourceFile::new("r.warden", format!("param unused: bool = false\n{}", rule("metadata.contains_personal_data"))),
    ]);
    assert!(c.set.is_some());
    assert_eq!(c.diagnostics.iter().map(|d| d.code()).collect::<Vec<_>>(), ["unused_param"]);
}
