//! Policy parameters (`param NAME: TYPE = VALUE`, read as `param.NAME`).
//!
//! A parameter's value is fixed when a policy is compiled (the file's
//! default) or prepared for a customer ([`crate::Policy::prepare`]), never
//! looked up per request: conditions are compiled with the value in place
//! of the reference, as if it had been written as a literal, so the index
//! files `model in param.approved_models` under the list's values. A
//! customer whose values differ from the defaults gets the rules that read
//! them compiled again with its values, evaluated without the index.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use serde_json::Value;
use warden_dsl::ast::{Expr, ExprKind, Literal, Type};
use warden_dsl::{Loc, Node, ParamSpec};

use crate::cond::Cond;
use crate::overrides::Overrides;
use crate::policy::Policy;

/// Why a value can't be given to a parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// The policy declares no parameter of that name.
    #[error("parameter `{name}` is not declared in the policy set")]
    Unknown {
        /// The name given.
        name: String,
    },
    /// The value is not of the parameter's type.
    #[error("parameter `{name}` is a `{expected}`; the value given is {found}")]
    WrongType {
        /// The parameter.
        name: String,
        /// Its declared type.
        expected: Type,
        /// What was given, in words (`a string`, `an array holding a number`…).
        found: &'static str,
    },
}

/// A declared parameter as the policy has it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamInfo<'p> {
    /// Its name (without `param.`).
    pub name: &'p str,
    /// Its type.
    pub ty: Type,
    /// The value written in the file, as JSON: a string, a number, a bool
    /// or an array of strings.
    pub default: Value,
    /// Where it is declared, `file:line`.
    pub source: String,
}

/// The parameters of a compiled policy: names, defaults and which rules
/// read each.
#[derive(Debug, Default)]
pub(crate) struct ParamTable {
    pub(crate) specs: Vec<ParamSpec>,
    by_name: FxHashMap<String, usize>,
    /// Per parameter, the rules (by number, ascending) whose condition
    /// reads it.
    pub(crate) readers: Vec<Vec<u32>>,
}

impl ParamTable {
    /// The table for `specs`, with `conditions` (one per rule, in rule
    /// order) scanned for the parameters they read.
    pub(crate) fn new<'e>(specs: &[ParamSpec], conditions: impl Iterator<Item = &'e Expr>) -> Self {
        let by_name: FxHashMap<String, usize> = specs.iter().enumerate().map(|(i, p)| (p.name.clone(), i)).collect();
        let mut readers = vec![Vec::new(); specs.len()];
        for (id, cond) in (0u32..).zip(conditions) {
            let mut names = Vec::new();
            referenced(cond, &mut names);
            for name in names {
                if let Some(list) = by_name.get(name).and_then(|&i| readers.get_mut(i)) {
                    if list.last() != Some(&id) {
                        list.push(id);
                    }
                }
            }
        }
        Self { specs: specs.to_vec(), by_name, readers }
    }

    /// The parameter's position, if declared.
    pub(crate) fn index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The file's value of the parameter `name`.
    pub(crate) fn default_of(&self, name: &str) -> Option<&Literal> {
        self.index(name).and_then(|i| self.specs.get(i)).map(|p| &p.default)
    }

    /// `value` as a literal of parameter `name`'s type.
    ///
    /// # Errors
    ///
    /// [`ParamError::Unknown`] for an undeclared name,
    /// [`ParamError::WrongType`] for a value of another type.
    pub(crate) fn literal(&self, name: &str, value: &Value) -> Result<(usize, Literal), ParamError> {
        let Some((i, spec)) = self.index(name).and_then(|i| Some((i, self.specs.get(i)?))) else {
            return Err(ParamError::Unknown { name: name.to_owned() });
        };
        literal_of(spec.ty, value).map(|lit| (i, lit)).ok_or_else(|| ParamError::WrongType {
            name: name.to_owned(),
            expected: spec.ty,
            found: json_kind(value),
        })
    }
}

/// What [`Policy::prepare`] makes of a customer's parameter values.
#[derive(Debug, Default)]
pub(crate) struct PreparedParams {
    /// Rules re-compiled with the values, by rule number.
    pub(crate) conds: Box<[(u32, Cond)]>,
    /// Names the policy doesn't declare.
    pub(crate) unknown: Vec<String>,
    /// Names given a value of another type, with why.
    pub(crate) invalid: Vec<(String, String)>,
    /// Rules whose condition failed to compile with the values (the
    /// checker and the type check rule this out), with why; they keep the
    /// files' values.
    pub(crate) uncompiled: Vec<(String, String)>,
}

impl Policy {
    /// Every declared parameter, in declaration order.
    pub fn params(&self) -> impl Iterator<Item = ParamInfo<'_>> {
        self.params.specs.iter().map(|p| ParamInfo {
            name: &p.name,
            ty: p.ty,
            default: json_of(&p.default),
            source: self.set.position(&p.loc),
        })
    }

    /// Checks that `value` can be given to the parameter `name`: the
    /// admin API's test before it stores a value.
    ///
    /// # Errors
    ///
    /// [`ParamError::Unknown`] when the policy declares no such parameter;
    /// [`ParamError::WrongType`] when `value` is not of its type (a
    /// `number` takes a JSON number, a `list<string>` an array of strings).
    pub fn check_param(&self, name: &str, value: &Value) -> Result<(), ParamError> {
        self.params.literal(name, value).map(|_| ())
    }

    /// `customer` over `global`, as [`Overrides::layered`] layers them,
    /// except that a customer's parameter value not of the parameter's type
    /// gives way to the fleet's value when that one is: for each parameter
    /// the highest layer whose value applies wins. The decision service
    /// layers every customer's overrides with this.
    #[must_use]
    pub fn layer(&self, global: &Overrides, customer: &Overrides) -> Overrides {
        let mut out = global.layered(customer);
        for (name, value) in &customer.params {
            if self.check_param(name, value).is_ok() {
                continue;
            }
            if let Some(fleet) = global.params.get(name).filter(|v| self.check_param(name, v).is_ok()) {
                out.params.insert(name.clone(), fleet.clone());
            }
        }
        out
    }

    /// The conditions of the rules that read a parameter `values` sets to
    /// something other than the file's value, compiled with `values`.
    pub(crate) fn prepare_params(&self, values: &BTreeMap<String, Value>) -> PreparedParams {
        let mut out = PreparedParams::default();
        if values.is_empty() {
            return out;
        }
        let mut own: Vec<Option<Literal>> = vec![None; self.params.specs.len()];
        for (name, value) in values {
            match self.params.literal(name, value) {
                Ok((i, lit)) => {
                    let differs = self.params.specs.get(i).is_some_and(|p| p.default != lit);
                    if let (true, Some(slot)) = (differs, own.get_mut(i)) {
                        *slot = Some(lit);
                    }
                }
                Err(ParamError::Unknown { .. }) => out.unknown.push(name.clone()),
                Err(e) => out.invalid.push((name.clone(), e.to_string())),
            }
        }
        let mut affected: Vec<u32> = own
            .iter()
            .zip(&self.params.readers)
            .filter(|(v, _)| v.is_some())
            .flat_map(|(_, readers)| readers.iter().copied())
            .collect();
        if affected.is_empty() {
            return out;
        }
        affected.sort_unstable();
        affected.dedup();
        let lookup = |name: &str| {
            let i = self.params.index(name)?;
            own.get(i)?.as_ref().or_else(|| self.params.specs.get(i).map(|p| &p.default))
        };
        let mut conds = Vec::with_capacity(affected.len());
        for id in affected {
            let Some(rule) = self.set.rules.get(id as usize) else { continue };
            match Cond::compile(&rule.node.condition, &self.schema, &lookup) {
                Ok(c) => conds.push((id, c)),
                // The checker and `literal` rule this out; should it
                // happen, the rule keeps the file's values and says so.
                Err(e) => out.uncompiled.push((rule.node.name.node.clone(), e.to_string())),
            }
        }
        out.conds = conds.into_boxed_slice();
        out
    }
}

/// Adds to `out` the parameter names `e` reads.
fn referenced<'e>(e: &'e Expr, out: &mut Vec<&'e str>) {
    match &e.node {
        ExprKind::Param(name) => out.push(name),
        ExprKind::InParam { lhs, param } => {
            out.push(&param.node);
            referenced(lhs, out);
        }
        ExprKind::Not(inner) => referenced(inner, out),
        ExprKind::And(items) | ExprKind::Or(items) => items.iter().for_each(|i| referenced(i, out)),
        ExprKind::Compare { lhs, rhs, .. } => {
            referenced(lhs, out);
            referenced(rhs, out);
        }
        ExprKind::In { lhs, .. } | ExprKind::Text { lhs, .. } => referenced(lhs, out),
        ExprKind::Literal(_) | ExprKind::Field(_) | ExprKind::Exists(_) => {}
    }
}

/// A JSON value as a literal of type `ty`, if it is one. Numbers must be
/// finite (JSON has no others); a list holds strings only.
pub(crate) fn literal_of(ty: Type, value: &Value) -> Option<Literal> {
    let nowhere = || Loc::new(0, 0..0);
    Some(match (ty, value) {
        (Type::String, Value::String(s)) => Literal::String(s.clone()),
        (Type::Number, Value::Number(n)) => Literal::Number(n.as_f64().filter(|f| f.is_finite())?),
        (Type::Bool, Value::Bool(b)) => Literal::Bool(*b),
        (Type::StringList, Value::Array(items)) => Literal::List(
            items
                .iter()
                .map(|i| i.as_str().map(|s| Node::new(Literal::String(s.to_owned()), nowhere())))
                .collect::<Option<Vec<_>>>()?,
        ),
        _ => return None,
    })
}

/// A literal as JSON.
pub(crate) fn json_of(lit: &Literal) -> Value {
    match lit {
        Literal::String(s) => Value::String(s.clone()),
        // A whole number is shown as written (`8000`, not `8000.0`), as
        // the JSON values admins store are.
        Literal::Number(n) if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 => Value::from(*n as i64),
        Literal::Number(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
        Literal::Bool(b) => Value::Bool(*b),
        Literal::List(items) => Value::Array(items.iter().map(|i| json_of(&i.node)).collect()),
    }
}

/// What a JSON value is, in words, for [`ParamError::WrongType`].
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(items) if items.iter().all(Value::is_string) => "a list of strings",
        Value::Array(_) => "an array holding something other than strings",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly

    use serde_json::json;

    use super::*;

    #[test]
    fn values_are_read_only_as_their_declared_type() {
        assert_eq!(literal_of(Type::Number, &json!(8000)), Some(Literal::Number(8000.0)));
        assert_eq!(literal_of(Type::Number, &json!("8000")), None);
        assert_eq!(literal_of(Type::Bool, &json!(1)), None);
        assert_eq!(literal_of(Type::String, &json!(null)), None);
        let list = literal_of(Type::StringList, &json!(["a", "b"])).unwrap();
        assert_eq!(json_of(&list), json!(["a", "b"]));
        assert_eq!(literal_of(Type::StringList, &json!(["a", 1])), None);
        assert_eq!(literal_of(Type::StringList, &json!("a")), None);
        assert_eq!(json_kind(&json!(["a", 1])), "an array holding something other than strings");
    }
}
