//! The formatter: canonical, idempotent, keeps every comment, and
//! `parse(fmt(ast)) == ast` for generated ASTs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // tests fail loudly

#[path = "support/ast_strategy.rs"]
mod ast_strategy;

use proptest::prelude::*;
use warden_dsl::fmt::{format_ast, format_source};
use warden_dsl::{SourceFile, parse_str};

#[path = "../../tests/default_policies.rs"]
mod default_policies;

fn fmt(text: &str) -> String {
    format_source(&SourceFile::new("t.warden", text))
        .unwrap_or_else(|e| panic!("{:?}", e.iter().map(ToString::to_string).collect::<Vec<_>>()))
}

fn comments(text: &str) -> Vec<String> {
    warden_dsl::fmt::comments(text)
}

const MESSY: &str = r#"# header comment

# about the input
input { model : string   # the model id
metadata.flag:bool=false }
threshold    70 # org-wide
rule   pii{ # on the header line
reason pii
   when metadata.flag and (model == "a"
     # inside a condition
     or model == "b")
score 70 description "x" }


# before a test
test "t" { expect blocked score 70 reason pii input {"model": "a",
  # inside json
  "metadata": {"flag": true}} }
# at the end
"#;

#[test]
fn formats_to_the_canonical_layout_keeping_every_comment() {
    let out = fmt(MESSY);
    insta::assert_snapshot!(out);
    assert_eq!(comments(&out), comments(MESSY), "comments are kept, in order");
}

#[test]
fn formatting_is_idempotent() {
    let once = fmt(MESSY);
    assert_eq!(fmt(&once), once);
    let shipped = default_policies::sources().unwrap();
    assert!(!shipped.is_empty());
    for file in shipped {
        // As on disk: a byte order mark would make it unformatted.
        let text = std::fs::read_to_string(default_policies::dir().join(&file.name)).unwrap();
        let once = fmt(&text);
        assert_eq!(fmt(&once), once);
        assert_eq!(once, text, "the shipped policy `{}` is formatted", file.name);
    }
}

#[test]
fn formatting_does_not_change_meaning() {
    assert_eq!(parse_str("a", &fmt(MESSY)).unwrap(), parse_str("b", MESSY).unwrap());
}

#[test]
fn a_byte_order_mark_is_removed_by_formatting() {
    let text = fmt("input { model: string }\n");
    let with_bom = format!("\u{FEFF}{text}");
    assert_eq!(fmt(&with_bom), text, "the output has no byte order mark");
    assert_ne!(fmt(&with_bom), with_bom, "so `fmt --check` reports the file");
    let messy = format!("\u{FEFF}{MESSY}");
    assert_eq!(fmt(&messy), fmt(MESSY), "comments are found at the same places");
}

#[test]
fn invalid_text_is_reported_not_formatted() {
    assert!(format_source(&SourceFile::new("t.warden", "rule {")).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn parse_of_fmt_is_identity(ast in ast_strategy::policy_file()) {
        let text = format_ast(&ast);
        let parsed = parse_str("gen.warden", &text)
            .map_err(|e| TestCaseError::fail(format!("{text}\n{:?}", e.iter().map(ToString::to_string).collect::<Vec<_>>())))?;
        prop_assert_eq!(&parsed, &ast, "text:\n{}", text);
        prop_assert_eq!(format_ast(&parsed), text);
    }
}

#[test]
fn a_trailing_comment_stays_with_the_last_code_on_its_line() {
    let out = fmt("input { model: string operation: string # about both\n}\n");
    assert_eq!(out, "input {\n  model: string\n  operation: string  # about both\n}\n");
}

#[test]
fn parameters_are_laid_out_and_read_back() {
    let text = "param   approved : list<string> = [ \"gpt-4\" ,\"gpt-4o\" ]\nparam n:number=8000\n\nrule r { description \"d\" when model in   param.approved and metadata.tokens>param.n score +1 reason r }\n";
    let out = warden_dsl::fmt::format_source(&warden_dsl::SourceFile::new("p.warden", text)).unwrap();
    assert!(
        out.starts_with("param approved: list<string> = [\"gpt-4\", \"gpt-4o\"]\n\nparam n: number = 8000\n"),
        "{out}"
    );
    assert!(out.contains("  when model in param.approved and metadata.tokens > param.n\n"), "{out}");
    let again = warden_dsl::fmt::format_source(&warden_dsl::SourceFile::new("p.warden", out.as_str())).unwrap();
    assert_eq!(again, out);
}
