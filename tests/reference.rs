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
    CompareOp, Effect, Expr, ExprKind, FieldDecl, FieldPath, InputBlock, Item, Literal, Mode, PolicyFile, Presence,
    Rule, TextOp, Type,
};
use warden_dsl::{Node, SourceFile};
use warden_engine::{Overrides, Policy, RuleMode, RuleOverride};

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
    ];
    prop_oneof![
        indexed.clone(),
        (indexed.clone(), condition()).prop_map(|(a, b)| bare(ExprKind::And(vec![b, a]))),
        (indexed.clone(), indexed).prop_map(|(a, b)| bare(ExprKind::And(vec![a, b]))),
    ]
}

/// A generated rule: condition, effect, `enabled`, `mode`, reason.
type GenRule = (Expr, Effect, bool, Mode, &'static str);

fn rules() -> impl Strategy<Value = Vec<GenRule>> {
    prop::collection::vec(
        (
            prop_oneof![condition(), indexed_condition()],
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
    (prop::option::weighted(0.3, 0i64..200), prop::collection::btree_map(0..rule_count.max(1) + 1, one, 0..4)).prop_map(
        move |(threshold, rules)| Overrides {
            threshold,
            // Index `rule_count` names a rule that doesn't exist.
            rules: rules.into_iter().map(|(i, o)| (format!("r{i}"), o)).collect::<BTreeMap<_, _>>(),
        },
    )
}

// ---- the reference interpreter --------------------------------------------

/// `(allowed, risk_score, reason, contributions, shadow matches, shadow
/// outcome)`, or a rejection's `(code, path)`.
type Outcome = Result<Decided, (String, String)>;
type Decided = (bool, i64, String, Vec<(String, i64)>, Vec<(String, &'static str, i64)>, Option<(bool, i64, String)>);

fn path_string(segs: &[String]) -> String {
    segs.join(".")
}

/// The documented name matching (docs/language.md §3.5), for the spellings
/// [`spell`] produces: invisible characters and non-whitespace controls
/// dropped, full-width letters
/// read as ASCII, surrounding whitespace trimmed, case ignored.
fn is_forbidden(key: &str) -> bool {
    let plain: String = key
        .chars()
        .filter(|c| !matches!(c, '\u{200B}' | '\u{FEFF}' | '\u{00AD}' | '\u{2060}'))
        .filter(|c| !c.is_control() || c.is_whitespace())
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap(),
            c => c,
        })
        .collect();
    let plain = plain.trim();
    FORBIDDEN.iter().any(|f| f.eq_ignore_ascii_case(plain))
}

fn find_forbidden(v: &Value, path: &str) -> Option<String> {
    let join = |k: &str| {
        if path.is_empty() { k.to_owned() } else { format!("{path}.{k}") }
    };
    match v {
        Value::Object(m) => {
            m.iter().find_map(|(k, v)| if is_forbidden(k) { Some(join(k)) } else { find_forbidden(v, &join(k)) })
        }
        Value::Array(a) => a.iter().enumerate().find_map(|(i, v)| find_forbidden(v, &format!("{path}[{i}]"))),
        _ => None,
    }
}

fn type_ok(ty: Type, v: &Value) -> Result<(), Option<usize>> {
    match (ty, v) {
        (_, Value::Null)
        | (Type::String, Value::String(_))
        | (Type::Number, Value::Number(_))
        | (Type::Bool, Value::Bool(_)) => Ok(()),
        (Type::StringList, Value::Array(a)) => match a.iter().position(|x| !x.is_string()) {
            Some(i) => Err(Some(i)),
            None => Ok(()),
        },
        _ => Err(None),
    }
}

fn find_type_error(obj: &Map<String, Value>, prefix: &[String]) -> Option<String> {
    for (k, v) in obj {
        let mut segs = prefix.to_vec();
        segs.push(k.clone());
        let here = path_string(&segs);
        if let Some((_, ty, ..)) = FIELDS.iter().find(|f| f.0 == here) {
            match type_ok(*ty, v) {
                Ok(()) => {}
                Err(Some(i)) => return Some(format!("{here}[{i}]")),
                Err(None) => return Some(here),
            }
        } else if FIELDS.iter().any(|f| f.0.starts_with(&format!("{here}."))) {
            match v {
                Value::Object(m) => {
                    if let Some(e) = find_type_error(m, &segs) {
                        return Some(e);
                    }
                }
                Value::Null => {}
                _ => return Some(here),
            }
        }
    }
    None
}

fn lookup<'a>(input: &'a Value, path: &str) -> Option<&'a Value> {
    let mut v = input;
    for seg in path.split('.') {
        v = v.as_object()?.get(seg)?;
    }
    (!v.is_null()).then_some(v)
}

fn value_of(input: &Value, path: &str) -> Option<Value> {
    if let Some(v) = lookup(input, path) {
        return Some(v.clone());
    }
    let (_, _, default, _) = FIELDS.into_iter().find(|f| f.0 == path)?;
    Some(match default? {
        Literal::Number(n) => json!(n),
        Literal::Bool(b) => json!(b),
        Literal::String(s) => json!(s),
        Literal::List(_) => json!([]),
    })
}

/// What an audit record holds about a decided request: every declared
/// field that has a value (sent, or its default), by dotted path.
fn reference_declared(input: &Value) -> Map<String, Value> {
    FIELDS.iter().filter_map(|(path, ..)| value_of(input, path).map(|v| ((*path).to_owned(), v))).collect()
}

fn literal_value(l: &Literal) -> Value {
    match l {
        Literal::String(s) => json!(s),
        Literal::Number(n) => json!(n),
        Literal::Bool(b) => json!(b),
        Literal::List(_) => json!([]),
    }
}

fn operand(input: &Value, e: &Expr) -> Option<Value> {
    match &e.node {
        ExprKind::Literal(l) => Some(literal_value(l)),
        ExprKind::Field(p) => value_of(input, &p.to_string()),
        _ => panic!("generated operands are fields or literals"),
    }
}

fn compare(op: CompareOp, a: &Value, b: &Value) -> bool {
    let ord = match (a, b) {
        (Value::Number(x), Value::Number(y)) => match x.as_f64().unwrap().partial_cmp(&y.as_f64().unwrap()) {
            Some(o) => o,
            None => return false,
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => return false,
    };
    match op {
        CompareOp::Eq => ord.is_eq(),
        CompareOp::Ne => ord.is_ne(),
        CompareOp::Lt => ord.is_lt(),
        CompareOp::Le => ord.is_le(),
        CompareOp::Gt => ord.is_gt(),
        CompareOp::Ge => ord.is_ge(),
    }
}

fn eval(input: &Value, e: &Expr) -> bool {
    match &e.node {
        ExprKind::Literal(Literal::Bool(b)) => *b,
        ExprKind::Literal(_) => false,
        ExprKind::Field(p) => value_of(input, &p.to_string()) == Some(json!(true)),
        ExprKind::Not(x) => !eval(input, x),
        ExprKind::And(xs) => xs.iter().all(|x| eval(input, x)),
        ExprKind::Or(xs) => xs.iter().any(|x| eval(input, x)),
        ExprKind::Compare { op, lhs, rhs } => match (operand(input, lhs), operand(input, rhs)) {
            (Some(a), Some(b)) => compare(*op, &a, &b),
            _ => false,
        },
        ExprKind::In { lhs, list } => match operand(input, lhs) {
            Some(v) => list.iter().any(|l| compare(CompareOp::Eq, &v, &literal_value(&l.node))),
            None => false,
        },
        ExprKind::Text { op, lhs, pattern } => {
            let p = pattern.node.as_str();
            match (op, operand(input, lhs)) {
                (TextOp::StartsWith, Some(Value::String(s))) => s.starts_with(p),
                (TextOp::EndsWith, Some(Value::String(s))) => s.ends_with(p),
                (TextOp::Contains, Some(Value::String(s))) => s.contains(p),
                (TextOp::Contains, Some(Value::Array(a))) => a.iter().any(|x| x.as_str() == Some(p)),
                (TextOp::Matches, Some(Value::String(s))) => regex::Regex::new(p).unwrap().is_match(&s),
                _ => false,
            }
        }
        ExprKind::Exists(p) => value_of(input, &p.node.to_string()).is_some(),
    }
}

fn reference(file: &PolicyFile, input: &Value, ov: &Overrides) -> Outcome {
    let Value::Object(root) = input else {
        return Err(("not_an_object".into(), String::new()));
    };
    if let Some(p) = find_forbidden(input, "") {
        return Err(("forbidden_field".into(), p));
    }
    if let Some(p) = find_type_error(root, &[]) {
        return Err(("type_mismatch".into(), p));
    }
    for (path, _, _, required) in FIELDS {
        if required && lookup(input, path).is_none() {
            return Err(("missing_field".into(), path.to_owned()));
        }
    }
    let mut threshold = warden_dsl::DEFAULT_THRESHOLD;
    let mut rules = Vec::new();
    for item in &file.items {
        match item {
            Item::Threshold(t) => threshold = t.node,
            Item::Rule(r) => rules.push(&r.node),
            _ => {}
        }
    }
    let threshold = ov.threshold.unwrap_or(threshold);
    // The rules that are on and whose conditions hold, each with whether it
    // runs in shadow and its score in force.
    let mut held = Vec::new();
    for rule in rules {
        let o = ov.rules.get(&rule.name.node);
        if !o.and_then(|o| o.enabled).unwrap_or(rule.enabled) || !eval(input, &rule.condition) {
            continue;
        }
        let shadow = match o.and_then(|o| o.mode) {
            Some(m) => m == RuleMode::Shadow,
            None => rule.mode == Mode::Shadow,
        };
        let score = match rule.effect.node {
            Effect::Score(s) => o.and_then(|o| o.score).unwrap_or(s),
            _ => 0,
        };
        held.push((rule, shadow, score));
    }
    // The decision over the rules given: enforced ones only, or all of them
    // (what the shadow rules would make of it).
    let decide = |with_shadow: bool| {
        // The exact sum, clamped to i64 once at the end.
        let (mut total, mut contributions, mut best, mut deny, mut allow) =
            (0i128, Vec::new(), None::<(i64, String)>, None, None);
        for (rule, _, s) in held.iter().filter(|(_, shadow, _)| with_shadow || !shadow) {
            match rule.effect.node {
                Effect::Score(_) => {
                    if *s != 0 {
                        total += i128::from(*s);
                        contributions.push((rule.name.node.clone(), *s));
                        if best.as_ref().is_none_or(|(b, _)| s > b) {
                            best = Some((*s, rule.reason.node.clone()));
                        }
                    }
                }
                Effect::Deny => deny = deny.or(Some(rule.reason.node.clone())),
                Effect::Allow => allow = allow.or(Some(rule.reason.node.clone())),
            }
        }
        let total = i64::try_from(total).unwrap_or(if total < 0 { i64::MIN } else { i64::MAX });
        let (allowed, reason) = match (deny, allow) {
            (Some(r), _) => (false, r),
            (None, Some(r)) => (true, r),
            _ => (total < threshold, best.map_or("ok".to_owned(), |(_, r)| r)),
        };
        (allowed, total, reason, contributions)
    };
    let (allowed, total, reason, contributions) = decide(false);
    let shadow: Vec<_> = held
        .iter()
        .filter(|(_, shadow, _)| *shadow)
        .map(|(rule, _, s)| {
            let kind = match rule.effect.node {
                Effect::Score(_) => "score",
                Effect::Deny => "deny",
                Effect::Allow => "allow",
            };
            (rule.name.node.clone(), kind, *s)
        })
        .collect();
    let shadow_outcome = (!shadow.is_empty()).then(|| {
        let (a, t, r, _) = decide(true);
        (a, t, r)
    });
    Ok((allowed, total, reason, contributions, shadow, shadow_outcome))
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
            prop_assert_eq!((recorded.model, recorded.operation), (sent("model"), sent("operation")));
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
