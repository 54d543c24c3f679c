//! Parser tests at the AST layer: precedence, chains, keywords, literals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // tests fail loudly

use warden_dsl::ast::{CompareOp, Effect, ExprKind, FieldPath, Item, Literal, Presence, TextOp, Type};
use warden_dsl::{Node, parse_str};

fn condition(src: &str) -> ExprKind {
    let text = format!("rule r {{ description \"d\" when {src} score +1 reason r }}");
    let file = parse_str("t.warden", &text)
        .unwrap_or_else(|e| panic!("{src}: {:?}", e.iter().map(ToString::to_string).collect::<Vec<_>>()));
    match file.items.into_iter().next() {
        Some(Item::Rule(r)) => r.node.condition.node,
        other => panic!("expected a rule, got {other:?}"),
    }
}

fn field(p: &str) -> Node<ExprKind> {
    Node::bare(ExprKind::Field(FieldPath::from_dotted(p)))
}

fn codes(src: &str) -> Vec<&'static str> {
    match parse_str("t.warden", src) {
        Ok(_) => vec![],
        Err(e) => e.iter().map(|d| d.code()).collect(),
    }
}

#[test]
fn not_binds_tighter_than_and_which_binds_tighter_than_or() {
    let e = condition("not a or b and c");
    let expected = ExprKind::Or(vec![
        Node::bare(ExprKind::Not(Box::new(field("a")))),
        Node::bare(ExprKind::And(vec![field("b"), field("c")])),
    ]);
    assert_eq!(e, expected);
}

#[test]
fn unparenthesised_chains_are_flat_and_groups_stay_nested() {
    assert_eq!(condition("a and b and c"), ExprKind::And(vec![field("a"), field("b"), field("c")]));
    assert_eq!(
        condition("a and (b and c)"),
        ExprKind::And(vec![field("a"), Node::bare(ExprKind::And(vec![field("b"), field("c")]))])
    );
    assert_eq!(
        condition("(a or b) and c"),
        ExprKind::And(vec![Node::bare(ExprKind::Or(vec![field("a"), field("b")])), field("c")])
    );
}

#[test]
fn a_long_chain_does_not_deepen_the_tree() {
    let chain = (0..5000).map(|i| format!("f{i}")).collect::<Vec<_>>().join(" or ");
    match condition(&chain) {
        ExprKind::Or(items) => assert_eq!(items.len(), 5000),
        other => panic!("expected a flat or, got {other:?}"),
    }
}

#[test]
fn keywords_end_at_a_word_boundary() {
    // `notable` is a field, not `not able`; `android` is not `and roid`.
    assert_eq!(condition("notable"), ExprKind::Field(FieldPath::from_dotted("notable")));
    assert_eq!(condition("a and android"), ExprKind::And(vec![field("a"), field("android")]));
    assert_eq!(condition("metadata.in"), ExprKind::Field(FieldPath::from_dotted("metadata.in")));
}

#[test]
fn every_predicate_form_parses() {
    let cmp = |op| ExprKind::Compare {
        op,
        lhs: Box::new(field("n")),
        rhs: Box::new(Node::bare(ExprKind::Literal(Literal::Number(1.5)))),
    };
    assert_eq!(condition("n == 1.5"), cmp(CompareOp::Eq));
    assert_eq!(condition("n != 1.5"), cmp(CompareOp::Ne));
    assert_eq!(condition("n < 1.5"), cmp(CompareOp::Lt));
    assert_eq!(condition("n <= 1.5"), cmp(CompareOp::Le));
    assert_eq!(condition("n > 1.5"), cmp(CompareOp::Gt));
    assert_eq!(condition("n >= 1.5"), cmp(CompareOp::Ge));
    let text = |op, p: &str| ExprKind::Text { op, lhs: Box::new(field("model")), pattern: Node::bare(p.to_owned()) };
    assert_eq!(condition("model starts_with \"gpt-\""), text(TextOp::StartsWith, "gpt-"));
    assert_eq!(condition("model ends_with \"-mini\""), text(TextOp::EndsWith, "-mini"));
    assert_eq!(condition("model contains \"4\""), text(TextOp::Contains, "4"));
    assert_eq!(condition("model matches \"^gpt-4(o)?$\""), text(TextOp::Matches, "^gpt-4(o)?$"));
    assert_eq!(
        condition("model in [\"a\", \"b\",]"),
        ExprKind::In {
            lhs: Box::new(field("model")),
            list: vec![Node::bare(Literal::String("a".into())), Node::bare(Literal::String("b".into()))],
        }
    );
    assert_eq!(condition("exists(metadata.x)"), ExprKind::Exists(Node::bare(FieldPath::from_dotted("metadata.x"))));
    assert_eq!(condition("true"), ExprKind::Literal(Literal::Bool(true)));
}

#[test]
fn declarations_settings_rules_and_tests_parse() {
    let src = r#"
        # a comment
        input {
          model: string
          metadata.tier: string?
          metadata.n: number = -2.5
          metadata.tags: list<string> = ["a"]
        }
        threshold 60
        forbidden_fields ["prompt"]
        rule r { description "d \"q\"" enabled false when metadata.n > 1 deny reason nope }
        test "t" { input {"model": "m", "n": null, "x": [1, 2.5e3, true]} overrides {"threshold": 1} expect rejected forbidden_field "metadata.prompt" }
    "#;
    let file = parse_str("t.warden", src).unwrap();
    assert_eq!(file.items.len(), 5);
    let Item::Input(input) = &file.items[0] else { panic!() };
    let presences: Vec<_> = input.node.fields.iter().map(|f| (f.ty.node, f.presence.clone())).collect();
    assert_eq!(presences[0], (Type::String, Presence::Required));
    assert_eq!(presences[1], (Type::String, Presence::Optional));
    assert_eq!(presences[2], (Type::Number, Presence::Default(Node::bare(Literal::Number(-2.5)))));
    assert_eq!(presences[3].0, Type::StringList);
    let Item::Rule(rule) = &file.items[3] else { panic!() };
    assert_eq!(rule.node.description.node, "d \"q\"");
    assert!(!rule.node.enabled);
    assert_eq!(rule.node.effect.node, Effect::Deny);
    let Item::Test(test) = &file.items[4] else { panic!() };
    assert_eq!(test.node.input.node["x"][1], serde_json::json!(2500.0));
}

#[test]
fn rule_parts_may_come_in_any_order_but_only_once() {
    assert_eq!(codes("rule r { reason r score -5 when a description \"d\" }"), Vec::<&str>::new());
    assert_eq!(codes("rule r { description \"d\" when a score +1 reason r reason s }"), vec!["duplicate_part"]);
    assert_eq!(codes("rule r { description \"d\" score +1 reason r }"), vec!["missing_part"]);
    assert_eq!(codes("test \"t\" { expect allowed }"), vec!["missing_part"]);
}

#[test]
fn builder_errors_are_all_reported() {
    let src = "rule a { description \"\\q\" when x score +1 reason a }\nrule b { when x score +1 reason b }\nthreshold 99999999999";
    assert_eq!(codes(src), vec!["invalid_escape", "missing_part", "number_out_of_range"]);
}

#[test]
fn hostile_nesting_is_refused_not_overflowed() {
    let deep = format!(
        "rule r {{ description \"d\" when {}a{} score +1 reason r }}",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    assert_eq!(codes(&deep), vec!["nesting_too_deep"]);
    let nots = format!("rule r {{ description \"d\" when {} a score +1 reason r }}", "not ".repeat(100_000));
    assert_eq!(codes(&nots), vec!["nesting_too_deep"]);
    let json = format!("test \"t\" {{ input {}{} expect allowed }}", "[".repeat(70), "]".repeat(70));
    assert_eq!(codes(&json), vec!["nesting_too_deep"]);
    // Just under the limit parses (in a 2 MiB test thread).
    let ok = format!("rule r {{ description \"d\" when {}a{} score +1 reason r }}", "(".repeat(60), ")".repeat(60));
    assert_eq!(codes(&ok), Vec::<&str>::new());
}

#[test]
fn syntax_errors_point_at_the_offending_token() {
    let err = parse_str("t.warden", "rule r {\n  description \"d\"\n  when a && b\n}").unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!(err[0].code(), "syntax");
    assert_eq!(err[0].position(), Some("t.warden:3:10"));
    assert_eq!(err[0].help_text(), Some("write `and` instead of `&&`"));
}
