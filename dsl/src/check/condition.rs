//! Type checking of conditions, and detection of parts that are constant.

use std::collections::{HashMap, HashSet};

use super::Checker;
use super::suggest::closest;
use crate::ast::{CompareOp, Expr, ExprKind, FieldPath, Literal, TextOp, Type};
use crate::err::DiagnosticKind;
use crate::set::{FieldSpec, ParamSpec};
use crate::source::Loc;

type Fields<'f> = HashMap<&'f FieldPath, &'f FieldSpec>;
type Params<'f> = HashMap<&'f str, &'f ParamSpec>;

/// Checks a rule's condition, reporting every error in it, and adds the
/// parameters it reads to `used`.
pub(super) fn check_condition(
    ck: &mut Checker<'_>,
    fields: &Fields<'_>,
    params: &Params<'_>,
    used: &mut HashSet<String>,
    cond: &Expr,
) {
    let mut c = CondChecker { ck, fields, params, used };
    c.condition(cond);
}

struct CondChecker<'c, 'a, 'f> {
    ck: &'c mut Checker<'a>,
    fields: &'c Fields<'f>,
    params: &'c Params<'f>,
    used: &'c mut HashSet<String>,
}

/// The type of an operand, and its value when it is a literal.
struct Operand<'e> {
    ty: Type,
    literal: Option<&'e Literal>,
}

impl CondChecker<'_, '_, '_> {
    fn error(&mut self, kind: DiagnosticKind, loc: &Loc, label: impl Into<String>, help: Option<String>) {
        let mut d = self.ck.at(kind, loc).with_label(label);
        if let Some(h) = help {
            d = d.with_help(h);
        }
        self.ck.push(d);
    }

    fn mismatch(&mut self, message: String, loc: &Loc, label: impl Into<String>, help: Option<String>) {
        self.error(DiagnosticKind::TypeMismatch { message }, loc, label, help);
    }

    fn constant(&mut self, value: bool, loc: &Loc, help: String) -> Option<bool> {
        self.error(DiagnosticKind::ConstantCondition { value }, loc, format!("always {value}"), Some(help));
        Some(value)
    }

    fn field(&mut self, path: &FieldPath, loc: &Loc) -> Option<&FieldSpec> {
        if let Some(spec) = self.fields.get(path) {
            return Some(spec);
        }
        let name = path.to_string();
        let declared: Vec<String> = self.fields.keys().map(|p| p.to_string()).collect();
        let help = match closest(&name, declared.iter().map(String::as_str)) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("declare it in an `input` block, e.g. `{name}: bool = false`"),
        };
        self.error(DiagnosticKind::UnknownField { path: name }, loc, "not declared in any `input` block", Some(help));
        None
    }

    fn param(&mut self, name: &str, loc: &Loc) -> Option<Type> {
        if let Some(spec) = self.params.get(name) {
            self.used.insert(name.to_owned());
            return Some(spec.ty);
        }
        let help = match closest(name, self.params.keys().copied()) {
            Some(s) => format!("did you mean `param.{s}`?"),
            None => format!("declare it, e.g. `param {name}: number = 0`"),
        };
        self.error(DiagnosticKind::UnknownParam { name: name.to_owned() }, loc, "no `param` of this name", Some(help));
        None
    }

    /// Checks a boolean condition. Returns its value when it is constant.
    fn condition(&mut self, e: &Expr) -> Option<bool> {
        match &e.node {
            ExprKind::Literal(Literal::Bool(b)) => {
                self.constant(*b, &e.loc, "a condition must read at least one request field".into())
            }
            ExprKind::Literal(other) => {
                let found = crate::parser::literal_kind_name(other);
                self.mismatch(
                    format!("expected a condition, found {found}"),
                    &e.loc,
                    "not a condition",
                    Some("compare a field with it, e.g. `model == \"gpt-4\"`".into()),
                );
                None
            }
            ExprKind::Field(path) => {
                let spec = self.field(path, &e.loc)?;
                if spec.ty != Type::Bool {
                    let ty = spec.ty;
                    self.mismatch(
                        format!("`{path}` is a `{ty}`, not a condition"),
                        &e.loc,
                        format!("a `{ty}`"),
                        Some(format!("compare it, e.g. `{path} {}`", example_comparison(ty))),
                    );
                }
                None
            }
            ExprKind::Param(name) => {
                let ty = self.param(name, &e.loc)?;
                if ty != Type::Bool {
                    self.mismatch(
                        format!("parameter `{name}` is a `{ty}`, not a condition"),
                        &e.loc,
                        format!("a `{ty}`"),
                        Some(format!("compare it with a field, e.g. `<field> {}`", example_comparison(ty))),
                    );
                }
                // Its value is fixed per customer, not in the file: never
                // a constant condition.
                None
            }
            ExprKind::InParam { lhs, param } => self.in_param(lhs, param),
            ExprKind::Not(inner) => self.condition(inner).map(|v| !v),
            ExprKind::And(items) => {
                let values: Vec<Option<bool>> = items.iter().map(|i| self.condition(i)).collect();
                fold(&values, false)
            }
            ExprKind::Or(items) => {
                let values: Vec<Option<bool>> = items.iter().map(|i| self.condition(i)).collect();
                fold(&values, true)
            }
            ExprKind::Compare { op, lhs, rhs } => self.compare(*op, lhs, rhs, &e.loc),
            ExprKind::In { lhs, list } => self.in_list(lhs, list, &e.loc),
            ExprKind::Text { op, lhs, pattern } => self.text(*op, lhs, &pattern.node, &pattern.loc, &e.loc),
            ExprKind::Exists(path) => {
                let spec = self.field(&path.node, &path.loc)?;
                if spec.always_present() {
                    let why = match spec.presence {
                        crate::ast::Presence::Required => "is required",
                        _ => "has a default",
                    };
                    return self.constant(
                        true,
                        &e.loc,
                        format!("`{}` {why}, so it always exists; `exists` is for fields declared with `?`", path.node),
                    );
                }
                None
            }
        }
    }

    fn operand<'e>(&mut self, e: &'e Expr) -> Option<Operand<'e>> {
        match &e.node {
            ExprKind::Literal(lit @ (Literal::String(_) | Literal::Number(_) | Literal::Bool(_))) => {
                Some(Operand { ty: lit.ty()?, literal: Some(lit) })
            }
            ExprKind::Field(path) => Some(Operand { ty: self.field(path, &e.loc)?.ty, literal: None }),
            ExprKind::Param(name) => Some(Operand { ty: self.param(name, &e.loc)?, literal: None }),
            _ => {
                self.mismatch("expected a field or a value here".into(), &e.loc, "not a value", None);
                None
            }
        }
    }

    fn compare(&mut self, op: CompareOp, lhs: &Expr, rhs: &Expr, loc: &Loc) -> Option<bool> {
        let l = self.operand(lhs);
        let r = self.operand(rhs);
        let (l, r) = (l?, r?);
        if l.ty == Type::StringList || r.ty == Type::StringList {
            self.mismatch(
                format!("`{}` cannot compare lists", op.symbol()),
                loc,
                "a list",
                Some("use `contains` to test whether a list holds a value".into()),
            );
            return None;
        }
        if l.ty != r.ty {
            let help = [(&l, lhs), (&r, rhs)].iter().find_map(|(o, e)| match (&e.node, o.literal) {
                (ExprKind::Field(p), None) => {
                    Some(format!("`{p}` is a `{}`; compare it with {}", o.ty, example_value(o.ty)))
                }
                _ => None,
            });
            self.mismatch(format!("cannot compare `{}` with `{}`", l.ty, r.ty), loc, "these types differ", help);
            return None;
        }
        if op.is_ordering() && l.ty != Type::Number {
            self.mismatch(
                format!("`{}` compares numbers, found `{}`", op.symbol(), l.ty),
                loc,
                "not numbers",
                Some("strings and bools support `==` and `!=`; strings also `starts_with`, `ends_with`, `contains` and `matches`".into()),
            );
            return None;
        }
        let (Some(a), Some(b)) = (l.literal, r.literal) else {
            return None;
        };
        let value = compare_literals(op, a, b)?;
        self.constant(value, loc, "both sides are literals; compare a request field instead".into())
    }

    fn in_list(&mut self, lhs: &Expr, list: &[crate::source::Node<Literal>], loc: &Loc) -> Option<bool> {
        let l = self.operand(lhs)?;
        if !matches!(l.ty, Type::String | Type::Number) {
            let help = if l.ty == Type::StringList {
                "to test whether a list field holds a value, write `field contains \"value\"`"
            } else {
                "`in` looks up strings or numbers"
            };
            self.mismatch(
                format!("`in` needs a string or a number, found `{}`", l.ty),
                &lhs.loc,
                format!("a `{}`", l.ty),
                Some(help.into()),
            );
            return None;
        }
        let mut ok = true;
        for item in list {
            if item.node.ty() != Some(l.ty) {
                ok = false;
                let found = crate::parser::literal_kind_name(&item.node);
                self.mismatch(
                    format!("the list holds {found}, but the value looked up is a `{}`", l.ty),
                    &item.loc,
                    format!("expected a `{}`", l.ty),
                    None,
                );
            }
        }
        if !ok {
            return None;
        }
        if list.is_empty() {
            return self.constant(false, loc, "nothing is in an empty list".into());
        }
        let lit = l.literal?;
        let value = list.iter().any(|i| i.node == *lit);
        self.constant(value, loc, "the value looked up is a literal; look up a request field instead".into())
    }

    fn in_param(&mut self, lhs: &Expr, param: &crate::source::Node<String>) -> Option<bool> {
        let l = self.operand(lhs);
        let ty = self.param(&param.node, &param.loc)?;
        if ty != Type::StringList {
            self.mismatch(
                format!("`in` needs a `list<string>` parameter, found `{ty}`"),
                &param.loc,
                format!("a `{ty}`"),
                Some(format!("declare it as a list, e.g. `param {}: list<string> = [\"a\"]`", param.node)),
            );
            return None;
        }
        let l = l?;
        if l.ty != Type::String {
            self.mismatch(
                format!("the list holds strings, but the value looked up is a `{}`", l.ty),
                &lhs.loc,
                format!("a `{}`", l.ty),
                Some("look up a string field in a `list<string>` parameter".into()),
            );
        }
        None
    }

    fn text(&mut self, op: TextOp, lhs: &Expr, pattern: &str, pattern_loc: &Loc, loc: &Loc) -> Option<bool> {
        let l = self.operand(lhs)?;
        let fits = l.ty == Type::String || (op == TextOp::Contains && l.ty == Type::StringList);
        if !fits {
            let expected = if op == TextOp::Contains { "a string or a list of strings" } else { "a string" };
            self.mismatch(
                format!("`{}` needs {expected}, found `{}`", op.keyword(), l.ty),
                &lhs.loc,
                format!("a `{}`", l.ty),
                None,
            );
            return None;
        }
        let regex = if op == TextOp::Matches {
            match crate::regex_limits::build(pattern) {
                Ok(r) => Some(r),
                Err(message) => {
                    self.error(
                        DiagnosticKind::InvalidRegex { message },
                        pattern_loc,
                        "not a valid regular expression",
                        Some("patterns use the syntax of Rust's `regex` crate".into()),
                    );
                    return None;
                }
            }
        } else {
            None
        };
        let Some(Literal::String(s)) = l.literal else {
            return None;
        };
        let value = match op {
            TextOp::StartsWith => s.starts_with(pattern),
            TextOp::EndsWith => s.ends_with(pattern),
            TextOp::Contains => s.contains(pattern),
            TextOp::Matches => regex.is_some_and(|r| r.is_match(s)),
        };
        self.constant(value, loc, "the left side is a literal; test a request field instead".into())
    }
}

/// Combines the constant values of `and` (`absorbing = false`) or `or`
/// (`absorbing = true`) operands.
fn fold(values: &[Option<bool>], absorbing: bool) -> Option<bool> {
    if values.contains(&Some(absorbing)) {
        Some(absorbing)
    } else if values.iter().all(Option::is_some) {
        Some(!absorbing)
    } else {
        None
    }
}

fn compare_literals(op: CompareOp, a: &Literal, b: &Literal) -> Option<bool> {
    use std::cmp::Ordering;
    let ord = match (a, b) {
        (Literal::Number(x), Literal::Number(y)) => x.partial_cmp(y)?,
        (Literal::String(x), Literal::String(y)) => x.cmp(y),
        (Literal::Bool(x), Literal::Bool(y)) => x.cmp(y),
        _ => return None,
    };
    Some(match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
    })
}

fn example_value(ty: Type) -> &'static str {
    match ty {
        Type::String => "a string such as \"gpt-4\"",
        Type::Bool => "`true` or `false`",
        Type::Number => "a number such as 10",
        Type::StringList => "`contains \"value\"`",
    }
}

fn example_comparison(ty: Type) -> &'static str {
    match ty {
        Type::String => "== \"value\"",
        Type::Number => "> 0",
        Type::StringList => "contains \"value\"",
        Type::Bool => "== true",
    }
}
