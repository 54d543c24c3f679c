//! The compiled evaluator agrees with a direct AST interpreter on generated
//! policies, inputs and overrides.
//!
//! The interpreter below is the reference semantics of docs/language.md,
//! written for clarity, not speed: it looks every field up by name, walks the
//! request recursively and compiles regexes on every use. Any difference
//! between it and the engine (slots, indexes, folding, the iterative walk,
//! the override merge) is a bug in one of them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // tests fail loudly

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use warden_dsl::ast::{
    CompareOp, Effect, Expr, ExprKind, FieldDecl, FieldPath, InputBlock, Item, Literal, Mode, ParamDecl, PolicyFile,
    Presence, Rule, TextOp, Type,
};
use warden_dsl::{Node, SourceFile};
use warden_engine::{Overrides, Policy, RuleMode, RuleOverride};

// A crate root's modules sit beside it, so the path is given.
#[path = "reference/interpreter.rs"]
mod interpreter;

use interpreter::{Outcome, reference, reference_declared};

// ---- the schema every generated policy declares ----------------------------

const FIELDS: [(&str, Type, Option<Literal>, bool); 8] = [
    ("model", Type::String, None, true),
    ("operation", Type::String, None, true),
    ("metadata.tier", Type::String, None, false),
    ("metadata.tokens", Type::Number, Some(Literal::Number(0.0)), false),
    ("metadata.cost", Type::Number, None, false),
    ("metadata.pii", Type::Bool, Some(Literal::Bool(false)), false),
    ("metadata.flag", Type::Bool, None, false),
    ("metadata.tags", Type::StringList, Some(Literal::List(Vec::new())), false),
];
const STRINGS: [&str; 8] = ["gpt-4", "gpt-4o", "claude-3", "llama", "eval-x", "", "Gpt-4", "summarize"];
const NUMBERS: [f64; 7] = [-5.0, 0.0, 1.0, 10.0, 100.0, 1000.0, 2.5];
const TAGS: [&str; 3] = ["pii", "finance", "health"];
// Patterns nest ("g" < "gpt" < "gpt-4", "4" < "-4") and repeat within a
// value ("a" in "llama"), so the prefix and suffix tries find rules at inner
// nodes and the substring automaton reports one pattern several times.
const PATTERNS: [&str; 10] = ["gpt", "-4", "o", "eval", "cl", "", "g", "gpt-4", "4", "a"];
const REGEXES: [&str; 5] = ["^gpt-4", "o$", "^(eval|llama)", "[0-9]", "(?i)^gpt"];
/// The parameters every generated policy declares, with their file values.
fn param_decls() -> Vec<(&'static str, Type, Literal)> {
    let list = |xs: &[&str]| Literal::List(xs.iter().map(|s| Node::bare(Literal::String((*s).to_owned()))).collect());
    vec![
        ("models", Type::StringList, list(&["gpt-4", "claude-3"])),
        ("limit", Type::Number, Literal::Number(10.0)),
        ("flag", Type::Bool, Literal::Bool(true)),
        ("name", Type::String, Literal::String("llama".to_owned())),
    ]
}
const FORBIDDEN: [&str; 6] = ["prompt", "text", "input", "message", "messages", "content"];

fn fields_of(ty: Type) -> Vec<&'static str> {
    FIELDS.iter().filter(|f| f.1 == ty).map(|f| f.0).collect()
}

fn optional_fields() -> Vec<&'static str> {
    FIELDS.iter().filter(|f| f.2.is_none() && !f.3).map(|f| f.0).collect()
}

fn bare(kind: ExprKind) -> Expr {
    Node::bare(kind)
}

fn field(p: &str) -> Expr {
    bare(ExprKind::Field(FieldPath::from_dotted(p)))
}

fn lit(l: Literal) -> Expr {
    bare(ExprKind::Literal(l))
}

// ---- generators -----------------------------------------------------------

fn string_lit() -> impl Strategy<Value = Literal> {
    prop::sample::select(STRINGS.to_vec()).prop_map(|s| Literal::String(s.to_owned()))
}

fn number_lit() -> impl Strategy<Value = Literal> {
    prop::sample::select(NUMBERS.to_vec()).prop_map(Literal::Number)
}

fn cmp(op: CompareOp, l: Expr, r: Expr, flip: bool) -> Expr {
    if flip {
        bare(ExprKind::Compare { op: op.flipped(), lhs: Box::new(r), rhs: Box::new(l) })
    } else {
        bare(ExprKind::Compare { op, lhs: Box::new(l), rhs: Box::new(r) })
    }
}

fn atom() -> impl Strategy<Value = Expr> {
    let eq_ne = prop_oneof![Just(CompareOp::Eq), Just(CompareOp::Ne)];
    let any_op = prop_oneof![
        Just(CompareOp::Eq),
        Just(CompareOp::Ne),
        Just(CompareOp::Lt),
        Just(CompareOp::Le),
        Just(CompareOp::Gt),
        Just(CompareOp::Ge)
    ];
    prop_oneof![
        1 => prop::sample::select(fields_of(Type::Bool)).prop_map(field),
        1 => (eq_ne.clone(), prop::sample::select(fields_of(Type::String)), string_lit(), any::<bool>())
            .prop_map(|(op, f, l, flip)| cmp(op, field(f), lit(l), flip)),
        1 => (eq_ne.clone(), prop::sample::select(fields_of(Type::Bool)), any::<bool>(), any::<bool>())
            .prop_map(|(op, f, b, flip)| cmp(op, field(f), lit(Literal::Bool(b)), flip)),
        1 => (any_op.clone(), prop::sample::select(fields_of(Type::Number)), number_lit(), any::<bool>())
            .prop_map(|(op, f, l, flip)| cmp(op, field(f), lit(l), flip)),
        1 => (any_op, Just(()), any::<bool>()).prop_map(|(op, (), flip)| cmp(
            op,
            field("metadata.tokens"),
            field("metadata.cost"),
            flip
        )),
        1 => (eq_ne, any::<bool>()).prop_map(|(op, flip)| cmp(op, field("model"), field("operation"), flip)),
        1 => (prop::sample::select(fields_of(Type::String)), prop::collection::vec(string_lit().prop_map(Node::bare), 1..4))
            .prop_map(|(f, list)| bare(ExprKind::In { lhs: Box::new(field(f)), list })),
        1 => (prop::sample::select(fields_of(Type::Number)), prop::collection::vec(number_lit().prop_map(Node::bare), 1..4))
            .prop_map(|(f, list)| bare(ExprKind::In { lhs: Box::new(field(f)), list })),
        // Text tests are weighted up: each kind has its own index.
        3 => (
            prop_oneof![Just(TextOp::StartsWith), Just(TextOp::EndsWith), Just(TextOp::Contains)],
            prop::sample::select(fields_of(Type::String)),
            prop::sample::select(PATTERNS.to_vec())
        )
            .prop_map(|(op, f, p)| bare(ExprKind::Text {
                op,
                lhs: Box::new(field(f)),
                pattern: Node::bare(p.to_owned())
            })),
        1 => (prop::sample::select(fields_of(Type::String)), prop::sample::select(REGEXES.to_vec())).prop_map(
            |(f, p)| bare(ExprKind::Text {
                op: TextOp::Matches,
                lhs: Box::new(field(f)),
                pattern: Node::bare(p.to_owned())
            })
        ),
        1 => prop::sample::select(TAGS.to_vec()).prop_map(|t| bare(ExprKind::Text {
            op: TextOp::Contains,
            lhs: Box::new(field("metadata.tags")),
            pattern: Node::bare(t.to_owned())
        })),
        1 => prop::sample::select(optional_fields())
            .prop_map(|f| bare(ExprKind::Exists(Node::bare(FieldPath::from_dotted(f))))),
        1 => param_atom(),
    ]
}

/// A test that reads a parameter: `in param.models`, a comparison with
/// `param.limit` or `param.name`, or `param.flag` alone.
fn param_atom() -> impl Strategy<Value = Expr> {
    let param = |n: &str| bare(ExprKind::Param(n.to_owned()));
    let any_op = prop::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Lt,
        CompareOp::Le,
        CompareOp::Gt,
        CompareOp::Ge,
    ]);
    prop_oneof![
        prop::sample::select(fields_of(Type::String))
            .prop_map(|f| bare(ExprKind::InParam { lhs: Box::new(field(f)), param: Node::bare("models".to_owned()) })),
        (any_op, prop::sample::select(fields_of(Type::Number)), any::<bool>()).prop_map(move |(op, f, flip)| cmp(
            op,
            field(f),
            param("limit"),
            flip
        )),
        (
            prop::sample::select(vec![CompareOp::Eq, CompareOp::Ne]),
            prop::sample::select(fields_of(Type::String)),
            any::<bool>()
        )
            .prop_map(move |(op, f, flip)| cmp(op, field(f), param("name"), flip)),
        Just(param("flag")),
    ]
}

fn condition() -> impl Strategy<Value = Expr> {
    atom().prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| bare(ExprKind::Not(Box::new(e)))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(|v| bare(ExprKind::And(v))),
            prop::collection::vec(inner, 2..4).prop_map(|v| bare(ExprKind::Or(v))),
        ]
    })
}

/// Scores from a small set, so that ties (and the tie-break) are common.
fn score() -> impl Strategy<Value = i64> {
    prop::sample::select(vec![-20i64, 0, 10, 20, 30, 50, 70])
}

fn effect() -> impl Strategy<Value = Effect> {
    prop_oneof![6 => score().prop_map(Effect::Score), 1 => Just(Effect::Deny), 1 => Just(Effect::Allow)]
}

/// A test the engine indexes (an exact string, a prefix, a suffix, a
/// substring, a numeric threshold), alone or required by an `and`: many
/// rules of this shape share each index, so its lookups and the residual
/// evaluation are compared with the reference on every input.
fn indexed_condition() -> impl Strategy<Value = Expr> {
    let threshold_op = prop_oneof![Just(CompareOp::Lt), Just(CompareOp::Le), Just(CompareOp::Gt), Just(CompareOp::Ge)];
    let indexed = prop_oneof![
        (prop::sample::select(fields_of(Type::String)), string_lit(), any::<bool>()).prop_map(|(f, l, flip)| cmp(
            CompareOp::Eq,
            field(f),
            lit(l),
            flip
        )),
        (prop::sample::select(fields_of(Type::String)), prop::collection::vec(string_lit().prop_map(Node::bare), 2..4))
            .prop_map(|(f, list)| bare(ExprKind::In { lhs: Box::new(field(f)), list })),
        (
            prop_oneof![Just(TextOp::StartsWith), Just(TextOp::EndsWith), Just(TextOp::Contains)],
            prop::sample::select(fields_of(Type::String)),
            prop::sample::select(PATTERNS.to_vec())
        )
            .prop_map(|(op, f, p)| bare(ExprKind::Text {
                op,
                lhs: Box::new(field(f)),
                pattern: Node::bare(p.to_owned())
            })),
        (threshold_op, prop::sample::select(fields_of(Type::Number)), number_lit(), any::<bool>())
            .prop_map(|(op, f, l, flip)| cmp(op, field(f), lit(l), flip)),
        // Indexed under the file's list; re-compiled for other values.
        prop::sample::select(fields_of(Type::String))
            .prop_map(|f| bare(ExprKind::InParam { lhs: Box::new(field(f)), param: Node::bare("models".to_owned()) })),
    ];
    prop_oneof![
        indexed.clone(),
        (indexed.clone(), condition()).prop_map(|(a, b)| bare(ExprKind::And(vec![b, a]))),
        (indexed.clone(), indexed).prop_map(|(a, b)| bare(ExprKind::And(vec![a, b]))),
    ]
}

/// An indexed test and a costly one from a pool of three, so that several
/// rules' residuals share a sub-condition (evaluated once per decision,
/// engine/src/shared.rs) and are candidates for the same request.
fn shared_condition() -> impl Strategy<Value = Expr> {
    let text =
        |op, f: &str, p: &str| bare(ExprKind::Text { op, lhs: Box::new(field(f)), pattern: Node::bare(p.to_owned()) });
    let pool = vec![
        text(TextOp::Matches, "model", "[0-9]"),
        bare(ExprKind::Not(Box::new(text(TextOp::StartsWith, "operation", "g")))),
        bare(ExprKind::Or(vec![field("metadata.pii"), text(TextOp::EndsWith, "model", "o")])),
    ];
    (indexed_condition(), prop::sample::select(pool), any::<bool>())
        .prop_map(|(a, b, flip)| bare(ExprKind::And(if flip { vec![b, a] } else { vec![a, b] })))
}

/// A generated rule: condition, effect, `enabled`, `mode`, reason.
type GenRule = (Expr, Effect, bool, Mode, &'static str);

fn rules() -> impl Strategy<Value = Vec<GenRule>> {
    prop::collection::vec(
        (
            prop_oneof![condition(), indexed_condition(), shared_condition()],
            effect(),
            prop::bool::weighted(0.85),
            prop_oneof![4 => Just(Mode::Enforce), 1 => Just(Mode::Shadow)],
            prop::sample::select(vec!["a", "b", "c", "own"]),
        ),
        1..16,
    )
}

fn policy_file(rules: &[GenRule], threshold: Option<i64>) -> PolicyFile {
    let fields = FIELDS
        .iter()
        .map(|(p, ty, default, required)| {
            let presence = match (default, required) {
                (Some(d), _) => Presence::Default(Node::bare(d.clone())),
                (None, true) => Presence::Required,
                (None, false) => Presence::Optional,
            };
            Node::bare(FieldDecl { path: Node::bare(FieldPath::from_dotted(p)), ty: Node::bare(*ty), presence })
        })
        .collect();
    let mut items = vec![Item::Input(Node::bare(InputBlock { fields }))];
    for (name, ty, default) in param_decls() {
        let decl = ParamDecl { name: Node::bare(name.to_owned()), ty: Node::bare(ty), default: Node::bare(default) };
        items.push(Item::Param(Node::bare(decl)));
    }
    if let Some(t) = threshold {
        items.push(Item::Threshold(Node::bare(t)));
    }
    for (i, (cond, effect, enabled, mode, reason)) in rules.iter().enumerate() {
        let name = format!("r{i}");
        let reason = if *reason == "own" { name.clone() } else { (*reason).to_owned() };
        items.push(Item::Rule(Node::bare(Rule {
            name: Node::bare(name),
            description: Node::bare("generated".to_owned()),
            enabled: *enabled,
            mode: *mode,
            condition: cond.clone(),
            effect: Node::bare(*effect),
            reason: Node::bare(reason),
        })));
    }
    PolicyFile { items }
}

fn value_for(ty: Type) -> BoxedStrategy<Value> {
    let typed = match ty {
        Type::String => prop::sample::select(STRINGS.to_vec()).prop_map(|s| json!(s)).boxed(),
        Type::Number => prop::sample::select(NUMBERS.to_vec()).prop_map(|n| json!(n)).boxed(),
        Type::Bool => any::<bool>().prop_map(|b| json!(b)).boxed(),
        Type::StringList => {
            prop::collection::vec(prop::sample::select(TAGS.to_vec()), 0..3).prop_map(|v| json!(v)).boxed()
        }
    };
    // Mostly well typed; sometimes null, sometimes the wrong type.
    prop_oneof![12 => typed, 1 => Just(Value::Null), 1 => Just(json!({"x": 1})), 1 => Just(json!(["a", 3]))].boxed()
}

fn input() -> impl Strategy<Value = Value> {
    let per_field: Vec<_> = FIELDS.iter().map(|f| prop::option::weighted(0.8, value_for(f.1))).collect();
    let forbidden =
        prop::option::weighted(0.1, (prop::sample::select(FORBIDDEN.to_vec()), 0usize..SPELLINGS, 0usize..3));
    (per_field, forbidden, any::<bool>(), prop::bool::weighted(0.05)).prop_map(
        |(values, forbidden, extra, odd_metadata)| {
            let mut root = Map::new();
            let mut meta = Map::new();
            for ((path, ..), v) in FIELDS.iter().zip(values) {
                let Some(v) = v else { continue };
                match path.strip_prefix("metadata.") {
                    Some(k) => meta.insert(k.to_owned(), v),
                    None => root.insert((*path).to_owned(), v),
                };
            }
            if extra {
                meta.insert("undeclared".into(), json!({"nested": [1, {"k": "v"}]}));
            }
            if let Some((name, spelling, depth)) = forbidden {
                let key = spell(name, spelling);
                let mut v = json!({ key: "content" });
                for _ in 0..depth {
                    v = json!({"wrap": [v]});
                }
                meta.insert("extra".into(), v);
            }
            root.insert("metadata".into(), if odd_metadata { json!("not an object") } else { Value::Object(meta) });
            Value::Object(root)
        },
    )
}

/// How many ways [`spell`] writes a name.
const SPELLINGS: usize = 13;

/// A content field name as a client might send it: as is, in capitals,
/// padded with whitespace, in full-width letters, with an invisible
/// character inside; or a different name that merely resembles it.
fn spell(name: &str, spelling: usize) -> String {
    let mut chars = name.chars();
    let first: String = chars.next().into_iter().collect();
    let rest: String = chars.collect();
    match spelling {
        0 => name.to_owned(),
        1 => name.to_uppercase(),
        2 => format!(" {name}\t"),
        3 => name.chars().map(|c| char::from_u32(c.to_ascii_uppercase() as u32 + 0xFEE0).unwrap()).collect(),
        4 => format!("{first}\u{200B}{rest}"),
        5 => format!("\u{FEFF}{first}\u{00AD}{rest}"),
        6 => format!("{name}s"),
        7 => format!("{name}_tokens"),
        8 => format!("{first} {rest}"),
        9 => format!("{first}\u{0}{rest}"),
        10 => format!("\u{7}{name}\u{7F}"),
        11 => format!("{first}\t{rest}"),
        _ => format!("{name}\u{2060}"),
    }
}

fn overrides(rule_count: usize) -> impl Strategy<Value = Overrides> {
    let mode = prop::option::of(prop_oneof![Just(RuleMode::Enforce), Just(RuleMode::Shadow)]);
    // Overrides are not range-checked: huge scores make sums leave i64.
    let override_score = prop_oneof![8 => score(), 1 => Just(i64::MAX / 2 + 7), 1 => Just(i64::MIN / 2 - 3)];
    let one = (prop::option::of(any::<bool>()), prop::option::of(override_score), mode)
        .prop_map(|(enabled, score, mode)| RuleOverride { enabled, score, mode });
    (
        prop::option::weighted(0.3, 0i64..200),
        prop::collection::btree_map(0..rule_count.max(1) + 1, one, 0..4),
        param_values(),
    )
        .prop_map(move |(threshold, rules, params)| Overrides {
            threshold,
            // Index `rule_count` names a rule that doesn't exist.
            rules: rules.into_iter().map(|(i, o)| (format!("r{i}"), o)).collect::<BTreeMap<_, _>>(),
            params,
        })
}

/// Parameter values: mostly of the parameter's type (the same as the
/// file's or not), sometimes of another type (set aside for the file's) or
/// for a parameter the policy lacks (ignored).
fn param_values() -> impl Strategy<Value = BTreeMap<String, Value>> {
    let any_kind = prop_oneof![
        prop::collection::vec(prop::sample::select(STRINGS.to_vec()), 0..4).prop_map(|v| json!(v)),
        prop::sample::select(NUMBERS.to_vec()).prop_map(|n| json!(n)),
        any::<bool>().prop_map(|b| json!(b)),
        prop::sample::select(STRINGS.to_vec()).prop_map(|s| json!(s)),
        Just(json!(["gpt-4", 1])),
    ];
    let names = vec!["models", "limit", "flag", "name", "missing"];
    let one = (prop::sample::select(names), any_kind.clone(), any_kind).prop_map(|(name, a, b)| {
        let typed = |v: &Value| match name {
            "models" => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            "limit" => v.is_number(),
            "flag" => v.is_boolean(),
            "name" => v.is_string(),
            _ => true,
        };
        // Prefer a value of the right type when either is.
        let value = if typed(&a) || !typed(&b) { a } else { b };
        (name.to_owned(), value)
    });
    prop::collection::vec(one, 0..4).prop_map(|v| v.into_iter().collect())
}

fn compiled(policy: &Policy, input: &Value, ov: &Overrides) -> Outcome {
    match policy.decide_with(input, &policy.prepare(ov)) {
        Ok(d) => Ok((
            d.allowed,
            d.risk_score,
            d.reason.to_owned(),
            d.contributions.iter().map(|c| (c.rule.to_owned(), c.score)).collect(),
            d.shadow.iter().map(|m| (m.rule.to_owned(), m.effect, m.score)).collect(),
            d.shadow_outcome.map(|o| (o.allowed, o.risk_score, o.reason.to_owned())),
        )),
        Err(r) => Err((r.code().to_owned(), r.path)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn compiled_evaluator_agrees_with_the_reference_interpreter(
        (rules, ov) in rules().prop_flat_map(|r| { let n = r.len(); (Just(r), overrides(n)) }),
        threshold in prop::option::of(-20i64..200),
        inputs in prop::collection::vec(input(), 1..8),
    ) {
        let file = policy_file(&rules, threshold);
        let text = warden_dsl::fmt::format_ast(&file);
        let policy = match Policy::from_sources(vec![SourceFile::new("gen.warden", text.as_str())]) {
            Ok((p, _)) => p,
            Err(e) => return Err(TestCaseError::fail(format!("generated policy rejected: {:?}\n{text}", e.iter().map(ToString::to_string).collect::<Vec<_>>()))),
        };
        for input in &inputs {
            let none = Overrides::default();
            prop_assert_eq!(compiled(&policy, input, &none), reference(&file, input, &none), "no overrides\n{}\ninput {}", text, input);
            prop_assert_eq!(compiled(&policy, input, &ov), reference(&file, input, &ov), "overrides {:?}\n{}\ninput {}", ov, text, input);
            // `decide_recorded` (the service's path) decides as `decide_with`
            // does, and records the declared fields and nothing else.
            let prepared = policy.prepare(&ov);
            let recorded = policy.decide_recorded(input, &prepared);
            prop_assert_eq!(&recorded.outcome, &policy.decide_with(input, &prepared));
            let sent = |key: &str| input.get(key).and_then(Value::as_str);
            prop_assert_eq!((recorded.model.as_deref(), recorded.operation.as_deref()), (sent("model"), sent("operation")));
            // Read from the request's bytes, as the service reads it: the
            // same outcome and the same record.
            let text = input.to_string();
            let from_bytes = policy.decide_recorded_bytes(text.as_bytes(), &prepared).unwrap();
            prop_assert_eq!(&from_bytes.outcome, &recorded.outcome, "input {}", input);
            prop_assert_eq!(&from_bytes.declared, &recorded.declared, "input {}", input);
            prop_assert_eq!((&from_bytes.model, &from_bytes.operation), (&recorded.model, &recorded.operation));
            let want = if recorded.outcome.is_ok() { reference_declared(input) } else { Map::new() };
            prop_assert_eq!(&recorded.declared, &want, "input {}", input);
            // Shadow rules never change the enforced outcome: switching
            // every rule that runs in shadow off leaves it as it was.
            if let Ok(explained) = policy.explain(input, Some(&ov)) {
                let mut without = ov.clone();
                for trace in explained.rules.iter().filter(|t| t.mode == "shadow") {
                    without.rules.entry(trace.rule.to_owned()).or_default().enabled = Some(false);
                }
                let enforced = |d: &warden_engine::Decision<'_>| {
                    let contributions: Vec<(String, i64)> = d.contributions.iter().map(|c| (c.rule.to_owned(), c.score)).collect();
                    (d.allowed, d.risk_score, d.reason.to_owned(), contributions)
                };
                let with_shadow = policy.decide_with(input, &prepared);
                let no_shadow = policy.decide_with(input, &policy.prepare(&without));
                prop_assert!(with_shadow.is_ok() && no_shadow.is_ok());
                if let (Ok(a), Ok(b)) = (with_shadow, no_shadow) {
                    prop_assert!(b.shadow.is_empty() && b.shadow_outcome.is_none());
                    prop_assert_eq!(enforced(&a), enforced(&b), "shadow rules changed the outcome\n{}\ninput {}", text, input);
                }
            }
            // `decide` and `explain` agree with `decide_with`.
            let plain = policy.decide(input).map(|d| (d.allowed, d.risk_score));
            let explained = policy.explain(input, None).map(|e| (e.decision.allowed, e.decision.risk_score));
            prop_assert_eq!(plain, explained);
        }
    }
}
