//! pest errors → diagnostics a policy author can read: what was expected, in
//! words ("a condition", "`{`"), never a grammar rule name.

use std::collections::BTreeSet;

use pest::error::{Error, ErrorVariant, InputLocation};

use super::Rule as R;
use crate::err::{Diagnostic, DiagnosticKind};
use crate::source::{FileId, Loc, SourceFile};

/// How a grammar rule is named to a policy author.
fn describe(rule: R) -> &'static str {
    match rule {
        R::EOI => "end of file",
        R::k_input => "`input`",
        R::k_param | R::param_decl => "`param`",
        R::param_ref => "a parameter such as `param.max_tokens`",
        R::k_threshold => "`threshold`",
        R::k_forbidden => "`forbidden_fields`",
        R::k_rule => "`rule`",
        R::k_test => "`test`",
        R::k_desc | R::description => "`description`",
        R::k_enabled | R::enabled => "`enabled`",
        R::k_mode | R::mode => "`mode`",
        R::k_enforce => "`enforce`",
        R::k_shadow => "`shadow`",
        R::k_none => "`none`",
        R::test_expect_shadow => "`expect shadow`",
        R::k_when | R::when_clause => "`when`",
        R::k_score => "`score`",
        R::k_deny => "`deny`",
        R::k_allow => "`allow`",
        R::effect => "an effect (`score`, `deny`, `allow`)",
        R::k_reason | R::reason => "`reason`",
        R::k_overrides | R::test_overrides => "`overrides`",
        R::k_expect | R::test_expect => "`expect`",
        R::k_allowed => "`allowed`",
        R::k_blocked => "`blocked`",
        R::k_rejected | R::expect_rejected => "`rejected`",
        R::expect_decision => "an outcome (`allowed`, `blocked`)",
        R::k_exists | R::exists_call => "`exists(...)`",
        R::k_null => "`null`",
        R::op_and => "`and`",
        R::op_or => "`or`",
        R::op_not => "`not`",
        R::op_in | R::in_tail => "`in`",
        R::op_starts => "`starts_with`",
        R::op_ends => "`ends_with`",
        R::op_contains => "`contains`",
        R::op_matches => "`matches`",
        R::text_tail => "a text test (`starts_with`, `ends_with`, `contains`, `matches`)",
        R::ident => "a name (letters, digits and `_`)",
        R::path | R::operand => "a field name",
        R::reserved => "a keyword",
        R::string => "a string in double quotes",
        R::number => "a number",
        R::integer => "a whole number",
        R::boolean => "`true` or `false`",
        R::list => "a list such as [\"a\", \"b\"]",
        R::input_block => "`input`",
        R::field_decl => "a field declaration such as `model: string`",
        R::type_name | R::t_string | R::t_bool | R::t_number | R::t_list => {
            "a type (`string`, `bool`, `number` or `list<string>`)"
        }
        R::optional_mark => "`?`",
        R::default_value => "`=` and a default value",
        R::threshold_decl => "`threshold`",
        R::forbidden_decl => "`forbidden_fields`",
        R::rule_decl => "`rule`",
        R::test_decl => "`test`",
        R::expr | R::group | R::predicate => "a condition",
        R::compare_tail | R::compare_op => "a comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`)",
        R::test_input => "`input`",
        R::json_object => "a JSON object",
        R::json_member => "a JSON member such as \"key\": value",
        R::json_array | R::json_number => "a JSON value",
        R::item => "an item (`input`, `param`, `threshold`, `forbidden_fields`, `rule`, `test`)",
        R::scalar => "a value (a string, a number, `true` or `false`)",
        R::rule_item => "a rule part (`description`, `enabled`, `mode`, `when`, `score`, `deny`, `allow`, `reason`)",
        R::primary => "a condition",
        R::test_item => "a test part (`input`, `overrides`, `expect`)",
        R::json_value => "a JSON value",
        R::file | R::WHITESPACE | R::COMMENT | R::ident_char => "",
    }
}

/// Tokens that are never worth suggesting.
fn is_noise(token: &str) -> bool {
    token.trim().is_empty() || token == "#" || token == "\"" || token == "\\"
}

pub(crate) fn to_diagnostic(err: &Error<R>, file: &SourceFile, id: FileId) -> Diagnostic {
    let mut expected: BTreeSet<String> = BTreeSet::new();
    if let ErrorVariant::ParsingError { positives, .. } = &err.variant {
        expected.extend(positives.iter().map(|r| describe(*r)).filter(|s| !s.is_empty()).map(str::to_owned));
    }
    if let Some(attempts) = err.parse_attempts() {
        for token in attempts.expected_tokens() {
            // Only literal tokens are worth naming; character ranges print as
            // `a..z` and built-in rules as `BUILTIN_RULE`.
            let token = token.to_string();
            let is_range = token.chars().count() == 4 && token.get(1..3) == Some("..");
            if is_noise(&token) || is_range || token == "BUILTIN_RULE" {
                continue;
            }
            if !expected.iter().any(|e| e.contains(&format!("`{token}`"))) {
                expected.insert(format!("`{token}`"));
            }
        }
    }
    let at = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    // pest reports where the outermost rule failed; the furthest point it
    // reached is where the author's mistake is.
    let at = err.parse_attempts().map_or(at, |a| a.max_position.max(at));
    let found = file.text.get(at..).unwrap_or_default();
    let found_token: String = found.chars().take_while(|c| !c.is_whitespace()).take(20).collect();
    let end = at + found.chars().next().map_or(0, char::len_utf8).max(found_token.len().min(20));
    let expected_text = match expected.len() {
        0 => "something else".to_owned(),
        _ => join_or(&expected.into_iter().collect::<Vec<_>>()),
    };
    let label = if found_token.is_empty() { "the file ends here".to_owned() } else { format!("found `{found_token}`") };
    let diag = Diagnostic::new(DiagnosticKind::Syntax { expected: expected_text })
        .at(file, &Loc::new(id, at..end))
        .with_label(label);
    match guess_help(found) {
        Some(help) => diag.with_help(help),
        None => diag,
    }
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// A fix for the mistakes people carry over from other languages.
fn guess_help(found: &str) -> Option<&'static str> {
    let help = if found.starts_with("&&") {
        "write `and` instead of `&&`"
    } else if found.starts_with("||") {
        "write `or` instead of `||`"
    } else if found.starts_with('!') && !found.starts_with("!=") {
        "write `not` instead of `!`"
    } else if found.starts_with('=') && !found.starts_with("==") {
        "to compare two values write `==`"
    } else if found.starts_with('\'') {
        "strings are written in double quotes, e.g. \"gpt-4\""
    } else if found.starts_with("//") {
        "comments start with `#`"
    } else if found.starts_with('\u{FEFF}') {
        "an invisible byte order mark (U+FEFF) is here; it is allowed only at the very start of a file: delete it"
    } else if found.starts_with(['\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{00AD}']) {
        "an invisible character (a zero-width space, joiner or soft hyphen) is here: delete it"
    } else {
        return None;
    };
    Some(help)
}
