//! The reference interpreter: the semantics of docs/language.md written
//! for clarity, not speed. It looks every field up by name, walks the
//! request recursively and compiles regexes on every use.

use serde_json::{Map, Value, json};
use warden_dsl::ast::{CompareOp, Effect, Expr, ExprKind, Item, Literal, Mode, PolicyFile, TextOp, Type};
use warden_engine::{Overrides, RuleMode};

use super::{FIELDS, FORBIDDEN};

/// `(allowed, risk_score, reason, contributions, shadow matches, shadow
/// outcome)`, or a rejection's `(code, path)`.
pub(super) type Outcome = Result<Decided, (String, String)>;
pub(super) type Decided =
    (bool, i64, String, Vec<(String, i64)>, Vec<(String, &'static str, i64)>, Option<(bool, i64, String)>);

fn path_string(segs: &[String]) -> String {
    segs.join(".")
}

/// The documented name matching (docs/language.md §3.5), for the spellings
/// `spell` (in the test file) produces: invisible characters and non-whitespace controls
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
pub(super) fn reference_declared(input: &Value) -> Map<String, Value> {
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

/// Parameter values in force: the file's, or the overrides' where of the
/// parameter's type (docs/language.md §3.9).
type Params = std::collections::BTreeMap<String, Value>;

fn params_in_force(file: &PolicyFile, ov: &Overrides) -> Params {
    let mut out = Params::new();
    for item in &file.items {
        if let Item::Param(p) = item {
            let written = match &p.node.default.node {
                Literal::List(items) => Value::Array(items.iter().map(|i| literal_value(&i.node)).collect()),
                other => literal_value(other),
            };
            let typed = |v: &Value| match (p.node.ty.node, v) {
                (Type::String, Value::String(_)) | (Type::Number, Value::Number(_)) | (Type::Bool, Value::Bool(_)) => {
                    true
                }
                (Type::StringList, Value::Array(a)) => a.iter().all(Value::is_string),
                _ => false,
            };
            let value = ov.params.get(&p.node.name.node).filter(|v| typed(v)).cloned().unwrap_or(written);
            out.insert(p.node.name.node.clone(), value);
        }
    }
    out
}

fn operand(input: &Value, params: &Params, e: &Expr) -> Option<Value> {
    match &e.node {
        ExprKind::Literal(l) => Some(literal_value(l)),
        ExprKind::Field(p) => value_of(input, &p.to_string()),
        ExprKind::Param(name) => params.get(name).cloned(),
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

fn eval(input: &Value, params: &Params, e: &Expr) -> bool {
    let operand = |e: &Expr| operand(input, params, e);
    match &e.node {
        ExprKind::Literal(Literal::Bool(b)) => *b,
        ExprKind::Literal(_) => false,
        ExprKind::Field(p) => value_of(input, &p.to_string()) == Some(json!(true)),
        ExprKind::Param(name) => params.get(name) == Some(&json!(true)),
        ExprKind::Not(x) => !eval(input, params, x),
        ExprKind::And(xs) => xs.iter().all(|x| eval(input, params, x)),
        ExprKind::Or(xs) => xs.iter().any(|x| eval(input, params, x)),
        ExprKind::Compare { op, lhs, rhs } => match (operand(lhs), operand(rhs)) {
            (Some(a), Some(b)) => compare(*op, &a, &b),
            _ => false,
        },
        ExprKind::In { lhs, list } => match operand(lhs) {
            Some(v) => list.iter().any(|l| compare(CompareOp::Eq, &v, &literal_value(&l.node))),
            None => false,
        },
        ExprKind::InParam { lhs, param } => match (operand(lhs), params.get(&param.node)) {
            (Some(v), Some(Value::Array(list))) => list.iter().any(|l| compare(CompareOp::Eq, &v, l)),
            _ => false,
        },
        ExprKind::Text { op, lhs, pattern } => {
            let p = pattern.node.as_str();
            match (op, operand(lhs)) {
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

pub(super) fn reference(file: &PolicyFile, input: &Value, ov: &Overrides) -> Outcome {
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
    let params = params_in_force(file, ov);
    // The rules that are on and whose conditions hold, each with whether it
    // runs in shadow and its score in force.
    let mut held = Vec::new();
    for rule in rules {
        let o = ov.rules.get(&rule.name.node);
        if !o.and_then(|o| o.enabled).unwrap_or(rule.enabled) || !eval(input, &params, &rule.condition) {
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
