//! Compiled conditions: AST → a tree over slot numbers, with lists as hash
//! sets, regexes compiled once, and constants folded.
//!
//! Semantics (docs/language.md, "Absent fields"): every comparison or test
//! that reads an absent field is false; `not` negates that; `exists(f)` is
//! true when `f` has a value.

use regex::Regex;
use rustc_hash::FxHashSet;
use warden_dsl::ast::{CompareOp, Expr, ExprKind, Literal, TextOp};

use crate::input::{InputSchema, Slot, SlotValue, slot_value};
use crate::shared::Memo;

#[derive(Debug, Clone)]
pub(crate) enum Cond {
    Const(bool),
    /// A bool field that is `true`.
    IsTrue(Slot),
    BoolEq(Slot, bool),
    BoolNe(Slot, bool),
    StrEq(Slot, Box<str>),
    StrNe(Slot, Box<str>),
    NumCmp(Slot, CompareOp, f64),
    /// Two fields of the same type.
    SlotCmp(Slot, CompareOp, Slot),
    StrIn(Slot, FxHashSet<Box<str>>),
    NumIn(Slot, Box<[f64]>),
    StartsWith(Slot, Box<str>),
    EndsWith(Slot, Box<str>),
    Contains(Slot, Box<str>),
    ListContains(Slot, Box<str>),
    Matches(Slot, Regex),
    Exists(Slot),
    Not(Box<Cond>),
    And(Box<[Cond]>),
    Or(Box<[Cond]>),
    /// A sub-condition several rules test, evaluated once per decision
    /// (src/shared.rs): its number in the decision's memo.
    Shared(u32, Box<Cond>),
}

/// Why an AST could not be compiled. The checker rules all of these out, so
/// meeting one means a set that skipped it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CondError {
    #[error("field `{0}` is not declared")]
    UnknownField(String),
    #[error("invalid regular expression: {0}")]
    Regex(String),
    #[error("operands of this shape are not supported here: {0}")]
    Shape(&'static str),
    #[error("parameter `{0}` is not declared")]
    UnknownParam(String),
}

/// The value of each parameter a condition may read, by name.
pub(crate) type ParamLookup<'e, 'f> = &'f dyn Fn(&str) -> Option<&'e Literal>;

enum Operand<'e> {
    Slot(Slot),
    Lit(&'e Literal),
}

fn cmp_f64(a: f64, op: CompareOp, b: f64) -> bool {
    match op {
        CompareOp::Eq => a == b,
        CompareOp::Ne => a != b,
        CompareOp::Lt => a < b,
        CompareOp::Le => a <= b,
        CompareOp::Gt => a > b,
        CompareOp::Ge => a >= b,
    }
}

fn cmp_ord(ord: std::cmp::Ordering, op: CompareOp) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    match op {
        CompareOp::Eq => ord == Equal,
        CompareOp::Ne => ord != Equal,
        CompareOp::Lt => ord == Less,
        CompareOp::Le => ord != Greater,
        CompareOp::Gt => ord == Greater,
        CompareOp::Ge => ord != Less,
    }
}

fn literal_cmp(a: &Literal, op: CompareOp, b: &Literal) -> bool {
    match (a, b) {
        (Literal::Number(x), Literal::Number(y)) => cmp_f64(*x, op, *y),
        (Literal::String(x), Literal::String(y)) => cmp_ord(x.cmp(y), op),
        (Literal::Bool(x), Literal::Bool(y)) => cmp_ord(x.cmp(y), op),
        _ => false,
    }
}

impl Cond {
    /// Compiles `e`, with each `param.NAME` replaced by its value in
    /// `params`.
    pub(crate) fn compile<'e>(
        e: &'e Expr,
        schema: &InputSchema,
        params: ParamLookup<'e, '_>,
    ) -> Result<Self, CondError> {
        Ok(match &e.node {
            ExprKind::Literal(Literal::Bool(b)) => Self::Const(*b),
            ExprKind::Literal(_) => {
                return Err(CondError::Shape("a non-boolean literal as a condition"));
            }
            ExprKind::Field(path) => {
                Self::IsTrue(schema.slot_of(path).ok_or_else(|| CondError::UnknownField(path.to_string()))?)
            }
            ExprKind::Param(name) => match params(name) {
                Some(Literal::Bool(b)) => Self::Const(*b),
                Some(_) => return Err(CondError::Shape("a non-boolean parameter as a condition")),
                None => return Err(CondError::UnknownParam(name.clone())),
            },
            ExprKind::InParam { lhs, param } => {
                let Some(Literal::List(list)) = params(&param.node) else {
                    return Err(CondError::UnknownParam(param.node.clone()));
                };
                match operand(lhs, schema, params)? {
                    Operand::Lit(l) => Self::Const(list.iter().any(|i| i.node == *l)),
                    Operand::Slot(slot) => Self::in_list(slot, list.iter().map(|i| &i.node)),
                }
            }
            ExprKind::Not(inner) => match Self::compile(inner, schema, params)? {
                Self::Const(b) => Self::Const(!b),
                Self::Not(c) => *c,
                c => Self::Not(Box::new(c)),
            },
            ExprKind::And(items) => Self::junction(items, schema, params, false)?,
            ExprKind::Or(items) => Self::junction(items, schema, params, true)?,
            ExprKind::Compare { op, lhs, rhs } => Self::compare(*op, lhs, rhs, schema, params)?,
            ExprKind::In { lhs, list } => match operand(lhs, schema, params)? {
                Operand::Lit(l) => Self::Const(list.iter().any(|i| i.node == *l)),
                Operand::Slot(slot) => Self::in_list(slot, list.iter().map(|i| &i.node)),
            },
            ExprKind::Text { op, lhs, pattern } => Self::text(*op, lhs, &pattern.node, schema, params)?,
            ExprKind::Exists(path) => {
                Self::Exists(schema.slot_of(path).ok_or_else(|| CondError::UnknownField(path.to_string()))?)
            }
        })
    }

    /// `and` (`absorbing = false`) or `or` (`absorbing = true`), flattened
    /// and folded.
    fn junction<'e>(
        items: &'e [Expr],
        schema: &InputSchema,
        params: ParamLookup<'e, '_>,
        absorbing: bool,
    ) -> Result<Self, CondError> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match Self::compile(item, schema, params)? {
                Self::Const(b) if b == absorbing => return Ok(Self::Const(absorbing)),
                Self::Const(_) => {}
                Self::And(inner) if !absorbing => out.extend(inner.into_vec()),
                Self::Or(inner) if absorbing => out.extend(inner.into_vec()),
                c => out.push(c),
            }
        }
        Ok(match out.len() {
            0 => Self::Const(!absorbing),
            1 => out.pop().unwrap_or(Self::Const(!absorbing)),
            _ if absorbing => Self::Or(out.into_boxed_slice()),
            _ => Self::And(out.into_boxed_slice()),
        })
    }

    fn compare<'e>(
        op: CompareOp,
        lhs: &'e Expr,
        rhs: &'e Expr,
        schema: &InputSchema,
        params: ParamLookup<'e, '_>,
    ) -> Result<Self, CondError> {
        let (l, r) = (operand(lhs, schema, params)?, operand(rhs, schema, params)?);
        Ok(match (l, r) {
            (Operand::Lit(a), Operand::Lit(b)) => Self::Const(literal_cmp(a, op, b)),
            (Operand::Slot(a), Operand::Slot(b)) => Self::SlotCmp(a, op, b),
            (Operand::Slot(s), Operand::Lit(lit)) => Self::slot_literal(s, op, lit)?,
            (Operand::Lit(lit), Operand::Slot(s)) => Self::slot_literal(s, op.flipped(), lit)?,
        })
    }

    fn slot_literal(slot: Slot, op: CompareOp, lit: &Literal) -> Result<Self, CondError> {
        Ok(match (lit, op) {
            (Literal::Number(n), _) => Self::NumCmp(slot, op, *n),
            (Literal::String(s), CompareOp::Eq) => Self::StrEq(slot, s.as_str().into()),
            (Literal::String(s), CompareOp::Ne) => Self::StrNe(slot, s.as_str().into()),
            (Literal::Bool(true), CompareOp::Eq) => Self::IsTrue(slot),
            (Literal::Bool(b), CompareOp::Eq) => Self::BoolEq(slot, *b),
            (Literal::Bool(b), CompareOp::Ne) => Self::BoolNe(slot, *b),
            _ => return Err(CondError::Shape("ordering on a string or a bool")),
        })
    }

    fn in_list<'l>(slot: Slot, list: impl Iterator<Item = &'l Literal> + Clone) -> Self {
        let strings: Vec<&str> = list
            .clone()
            .filter_map(|l| match l {
                Literal::String(s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        let numbers: Vec<f64> = list
            .filter_map(|l| match l {
                Literal::Number(n) => Some(*n),
                _ => None,
            })
            .collect();
        match (strings.as_slice(), numbers.as_slice()) {
            ([], []) => Self::Const(false),
            ([one], []) => Self::StrEq(slot, (*one).into()),
            (_, []) => Self::StrIn(slot, strings.iter().map(|s| Box::<str>::from(*s)).collect()),
            ([], [one]) => Self::NumCmp(slot, CompareOp::Eq, *one),
            // Lists mixing strings and numbers are refused by the checker;
            // a number slot only ever matches the numbers.
            _ => Self::NumIn(slot, numbers.into_boxed_slice()),
        }
    }

    fn text<'e>(
        op: TextOp,
        lhs: &'e Expr,
        pattern: &str,
        schema: &InputSchema,
        params: ParamLookup<'e, '_>,
    ) -> Result<Self, CondError> {
        let slot = match operand(lhs, schema, params)? {
            Operand::Slot(s) => s,
            Operand::Lit(Literal::String(s)) => {
                return Ok(Self::Const(match op {
                    TextOp::StartsWith => s.starts_with(pattern),
                    TextOp::EndsWith => s.ends_with(pattern),
                    TextOp::Contains => s.contains(pattern),
                    TextOp::Matches => warden_dsl::regex_limits::build(pattern).is_ok_and(|r| r.is_match(s)),
                }));
            }
            Operand::Lit(_) => {
                return Err(CondError::Shape("a text operator on a non-string literal"));
            }
        };
        let is_list = schema.slots.get(usize::from(slot)).is_some_and(|s| s.ty == warden_dsl::ast::Type::StringList);
        Ok(match op {
            TextOp::StartsWith => Self::StartsWith(slot, pattern.into()),
            TextOp::EndsWith => Self::EndsWith(slot, pattern.into()),
            TextOp::Contains if is_list => Self::ListContains(slot, pattern.into()),
            TextOp::Contains => Self::Contains(slot, pattern.into()),
            TextOp::Matches => Self::Matches(slot, warden_dsl::regex_limits::build(pattern).map_err(CondError::Regex)?),
        })
    }

    /// Evaluates the condition against one request's slots.
    #[inline]
    pub(crate) fn eval(&self, slots: &[SlotValue<'_>]) -> bool {
        self.eval_in(slots, &[])
    }

    /// [`Cond::eval`], reading and recording shared sub-conditions in
    /// `memo` (one cell per shared number; a number past its end is
    /// evaluated each time).
    pub(crate) fn eval_in(&self, slots: &[SlotValue<'_>], memo: &Memo) -> bool {
        let get = |s: &Slot| slot_value(slots, *s);
        match self {
            Self::Const(b) => *b,
            Self::IsTrue(s) => matches!(get(s), SlotValue::Bool(true)),
            Self::BoolEq(s, b) => matches!(get(s), SlotValue::Bool(v) if v == b),
            Self::BoolNe(s, b) => matches!(get(s), SlotValue::Bool(v) if v != b),
            Self::StrEq(s, lit) => matches!(get(s), SlotValue::Str(v) if **v == **lit),
            Self::StrNe(s, lit) => matches!(get(s), SlotValue::Str(v) if **v != **lit),
            Self::NumCmp(s, op, lit) => {
                matches!(get(s), SlotValue::Num(v) if cmp_f64(*v, *op, *lit))
            }
            Self::SlotCmp(a, op, b) => match (get(a), get(b)) {
                (SlotValue::Num(x), SlotValue::Num(y)) => cmp_f64(*x, *op, *y),
                (SlotValue::Str(x), SlotValue::Str(y)) => cmp_ord(x.cmp(y), *op),
                (SlotValue::Bool(x), SlotValue::Bool(y)) => cmp_ord(x.cmp(y), *op),
                _ => false,
            },
            Self::StrIn(s, set) => matches!(get(s), SlotValue::Str(v) if set.contains(&**v)),
            Self::NumIn(s, list) => matches!(get(s), SlotValue::Num(v) if list.contains(v)),
            Self::StartsWith(s, p) => matches!(get(s), SlotValue::Str(v) if v.starts_with(&**p)),
            Self::EndsWith(s, p) => matches!(get(s), SlotValue::Str(v) if v.ends_with(&**p)),
            Self::Contains(s, p) => matches!(get(s), SlotValue::Str(v) if v.contains(&**p)),
            Self::ListContains(s, p) => matches!(get(s), SlotValue::List(items) if items.contains(p)),
            Self::Matches(s, re) => matches!(get(s), SlotValue::Str(v) if re.is_match(v)),
            Self::Exists(s) => !matches!(get(s), SlotValue::Absent),
            Self::Not(c) => !c.eval_in(slots, memo),
            Self::And(items) => items.iter().all(|c| c.eval_in(slots, memo)),
            Self::Or(items) => items.iter().any(|c| c.eval_in(slots, memo)),
            Self::Shared(id, inner) => match memo.get(*id as usize) {
                Some(cell) if cell.get() != 0 => cell.get() == 2,
                Some(cell) => {
                    let held = inner.eval_in(slots, memo);
                    cell.set(1 + u8::from(held));
                    held
                }
                None => inner.eval_in(slots, memo),
            },
        }
    }
}

fn operand<'e>(e: &'e Expr, schema: &InputSchema, params: ParamLookup<'e, '_>) -> Result<Operand<'e>, CondError> {
    match &e.node {
        ExprKind::Literal(lit) => Ok(Operand::Lit(lit)),
        ExprKind::Param(name) => params(name).map(Operand::Lit).ok_or_else(|| CondError::UnknownParam(name.clone())),
        ExprKind::Field(path) => {
            schema.slot_of(path).map(Operand::Slot).ok_or_else(|| CondError::UnknownField(path.to_string()))
        }
        _ => Err(CondError::Shape("a condition used as a value")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly

    use warden_dsl::{SourceFile, check};

    use super::*;

    const INPUT: &str = "input { model: string operation: string metadata.pii: bool = false metadata.n: number = 0 }";

    /// Compiles the condition of the only rule in `rule_text`.
    fn compiled(condition: &str) -> Cond {
        let rule = format!("rule r {{ description \"d\" when {condition} score +60 reason r }}");
        let set = check(vec![SourceFile::new("i.warden", INPUT), SourceFile::new("r.warden", rule)]).set.unwrap();
        let schema = InputSchema::new(&set.fields, &set.forbidden_fields);
        let cond = set.rules.first().map(|r| &r.node.condition).unwrap();
        Cond::compile(cond, &schema, &|_| None).unwrap()
    }

    #[test]
    fn single_element_lists_and_bool_comparisons_are_folded() {
        assert!(matches!(compiled("model in [\"a\"]"), Cond::StrEq(_, v) if &*v == "a"));
        assert!(matches!(compiled("metadata.n in [3]"), Cond::NumCmp(_, CompareOp::Eq, n) if n == 3.0));
        assert!(matches!(compiled("metadata.pii == true"), Cond::IsTrue(_)));
        assert!(matches!(compiled("not not metadata.pii"), Cond::IsTrue(_)));
        assert!(matches!(compiled("true == metadata.pii"), Cond::IsTrue(_)));
        assert!(matches!(compiled("5 < metadata.n"), Cond::NumCmp(_, CompareOp::Gt, n) if n == 5.0));
    }

    #[test]
    fn nested_junctions_are_flattened() {
        match compiled("metadata.pii and (model == \"a\" and (operation == \"b\" and metadata.n > 1))") {
            Cond::And(items) => assert_eq!(items.len(), 4),
            other => panic!("expected a flat and, got {other:?}"),
        }
    }
}
