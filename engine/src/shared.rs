//! Sub-conditions several rules test, evaluated once per request.
//!
//! Once the index has taken each rule's key, what is left (its residual) is
//! often partly the same across rules: the same pattern, the same substring,
//! the same `or`. Each such conjunct that is costly to evaluate and appears
//! in two or more residuals is numbered at compile time and wrapped in
//! [`Cond::Shared`]; a decision keeps one [`Memo`] cell per number, so the
//! first rule to need it evaluates it and the others read the result. A
//! single comparison of a slot (`model == "x"`, `tokens > 5`, a flag) costs
//! no more than the memo itself and is never shared.

use std::cell::Cell;
use std::fmt::Write as _;

use rustc_hash::FxHashMap;

use crate::cond::Cond;

/// One request's results of the shared sub-conditions: 0 not yet evaluated,
/// 1 false, 2 true.
pub(crate) type Memo = [Cell<u8>];

/// Whether `c` is worth sharing: it tests text, or combines conditions.
fn costly(c: &Cond) -> bool {
    match c {
        Cond::StartsWith(..)
        | Cond::EndsWith(..)
        | Cond::Contains(..)
        | Cond::ListContains(..)
        | Cond::Matches(..)
        | Cond::Or(_)
        | Cond::And(_) => true,
        Cond::Not(inner) => costly(inner),
        _ => false,
    }
}

/// A canonical rendering of `c`: equal for conditions that test the same
/// thing (sets are rendered sorted).
fn canonical(c: &Cond, out: &mut String) {
    match c {
        Cond::StrIn(slot, set) => {
            let mut items: Vec<&str> = set.iter().map(|s| &**s).collect();
            items.sort_unstable();
            let _ = write!(out, "StrIn({slot}, {items:?})");
        }
        Cond::Not(inner) => {
            out.push_str("Not(");
            canonical(inner, out);
            out.push(')');
        }
        Cond::And(items) | Cond::Or(items) => {
            out.push_str(if matches!(c, Cond::And(_)) { "And(" } else { "Or(" });
            for item in items.iter() {
                canonical(item, out);
                out.push(',');
            }
            out.push(')');
        }
        Cond::Shared(_, inner) => canonical(inner, out),
        // Every other variant's `Debug` is already canonical (a regex
        // prints its pattern).
        other => {
            let _ = write!(out, "{other:?}");
        }
    }
}

/// The conjuncts of a residual: its items when it is an `and`, else itself.
fn conjuncts(c: &Cond) -> &[Cond] {
    match c {
        Cond::And(items) => items,
        other => std::slice::from_ref(other),
    }
}

/// Numbers the costly conjuncts that appear in two or more of `residuals`
/// and wraps them in [`Cond::Shared`]; returns how many there are (the size
/// of a decision's [`Memo`]).
pub(crate) fn share(residuals: &mut [&mut Cond]) -> usize {
    let mut seen: FxHashMap<String, usize> = FxHashMap::default();
    for residual in residuals.iter() {
        for c in conjuncts(residual).iter().filter(|c| costly(c)) {
            let mut key = String::new();
            canonical(c, &mut key);
            *seen.entry(key).or_default() += 1;
        }
    }
    let mut ids: FxHashMap<String, u32> = FxHashMap::default();
    for residual in residuals.iter_mut() {
        let wrap = |c: &mut Cond, ids: &mut FxHashMap<String, u32>| {
            if !costly(c) {
                return;
            }
            let mut key = String::new();
            canonical(c, &mut key);
            if seen.get(&key).copied().unwrap_or(0) < 2 {
                return;
            }
            let next = u32::try_from(ids.len()).unwrap_or(u32::MAX);
            let id = *ids.entry(key).or_insert(next);
            let inner = std::mem::replace(c, Cond::Const(true));
            *c = Cond::Shared(id, Box::new(inner));
        };
        match &mut **residual {
            Cond::And(items) => items.iter_mut().for_each(|c| wrap(c, &mut ids)),
            other => wrap(other, &mut ids),
        }
    }
    ids.len()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)] // tests fail loudly

    use warden_dsl::{SourceFile, check};

    use super::*;
    use crate::input::{InputSchema, SlotValue};

    const INPUT: &str = "input { model: string operation: string metadata.intent: string? metadata.pii: bool = false }";

    fn compiled(conditions: &[&str]) -> Vec<Cond> {
        let rules: String = conditions
            .iter()
            .enumerate()
            .map(|(i, c)| format!("rule r{i} {{ description \"d\" when {c} score +1 reason r }}\n"))
            .collect();
        let set = check(vec![SourceFile::new("p.warden", format!("{INPUT}\n{rules}"))]).set.unwrap();
        let schema = InputSchema::new(&set.fields, &set.forbidden_fields);
        set.rules.iter().map(|r| Cond::compile(&r.node.condition, &schema, &|_| None).unwrap()).collect()
    }

    #[test]
    fn a_costly_conjunct_in_two_residuals_is_shared_and_evaluated_once() {
        let mut conds = compiled(&[
            "metadata.intent matches \"^(a|b)x\" and metadata.pii",
            "operation in [\"y\", \"x\"] and metadata.intent matches \"^(a|b)x\"",
            "metadata.intent matches \"^(a|b)x\"",
            "metadata.intent contains \"once\" and metadata.pii",
            "metadata.pii",
        ]);
        let mut refs: Vec<&mut Cond> = conds.iter_mut().collect();
        assert_eq!(share(&mut refs), 1, "only the pattern is in two residuals and costly");
        let ids: Vec<Option<u32>> = conds
            .iter()
            .map(|c| conjuncts(c).iter().find_map(|i| if let Cond::Shared(id, _) = i { Some(*id) } else { None }))
            .collect();
        assert_eq!(ids, [Some(0), Some(0), Some(0), None, None]);
        // One memo cell: the first rule evaluates, the next read it.
        let mut slots = vec![SlotValue::Absent; 4];
        slots[2] = SlotValue::Str("bx!");
        slots[3] = SlotValue::Bool(true);
        let memo = [Cell::new(0u8)];
        assert!(conds[0].eval_in(&slots, &memo));
        assert_eq!(memo[0].get(), 2);
        // A memo claiming false is believed: proof the result is read, not
        // evaluated again.
        memo[0].set(1);
        assert!(!conds[2].eval_in(&slots, &memo));
        assert!(conds[2].eval(&slots), "without a memo, evaluated");
    }

    #[test]
    fn sets_are_the_same_whatever_order_they_were_written_in() {
        let mut conds = compiled(&[
            "operation in [\"a\", \"b\", \"c\"] or metadata.pii",
            "metadata.pii or operation in [\"c\", \"a\", \"b\"]",
            "operation in [\"c\", \"b\", \"a\"] or metadata.pii",
        ]);
        let mut refs: Vec<&mut Cond> = conds.iter_mut().collect();
        // The first and third are the same `or`; the second has its items
        // in another order, which is another condition to this rendering.
        assert_eq!(share(&mut refs), 1);
        assert!(matches!(conds[0], Cond::Shared(0, _)) && matches!(conds[2], Cond::Shared(0, _)));
        assert!(!matches!(conds[1], Cond::Shared(..)));
    }
}
