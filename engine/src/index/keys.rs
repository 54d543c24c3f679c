//! Which test a rule is filed under: every test its condition requires is a
//! possible key; the one the fewest requests are expected to pass is chosen.
//!
//! The estimate assumes a request's value is equally likely to be any of the
//! values the policy names for that field, or none of them: a key naming
//! `n` of the `d` distinct strings (numbers, prefixes, suffixes, substrings)
//! the set's rules name for a field is passed by `n / (d + 1)` of requests,
//! a threshold by half. So `operation in ["chat", "embed"]` (2 of 12
//! operations named) gives way to `intent starts_with "fraud_17"` (1 of 400
//! prefixes named), and `model == "m"` (1 of 50) to neither. Ties go to the
//! cheaper lookup.

use rustc_hash::{FxHashMap, FxHashSet};
use smallvec::SmallVec;
use warden_dsl::ast::CompareOp;

use crate::cond::Cond;
use crate::input::Slot;

/// The test a rule is indexed by.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Key<'c> {
    Exact(Vec<&'c str>),
    /// `f == n` or `f in [n, …]` (never NaN).
    Numbers(Vec<f64>),
    Prefix(&'c str),
    /// A regex anchored at the start: every match begins with one of these.
    PatternPrefixes(Vec<Vec<u8>>),
    Suffix(&'c str),
    Substring(&'c str),
    /// `f > n` (`inclusive`: `f >= n`).
    Above(f64, bool),
    /// `f < n` (`inclusive`: `f <= n`).
    Below(f64, bool),
}

impl Key<'_> {
    /// Breaks ties between keys of equal estimated cost: a hash lookup
    /// narrows most, a threshold least.
    fn rank(&self) -> u8 {
        match self {
            Self::Exact(_) | Self::Numbers(_) => 0,
            Self::Prefix(_) => 1,
            Self::Suffix(_) => 2,
            Self::Substring(_) => 3,
            Self::PatternPrefixes(_) => 4,
            Self::Above(..) | Self::Below(..) => 5,
        }
    }

    /// Whether holding the key is all the condition asks (else the
    /// condition stays in the residual).
    pub(super) fn sufficient(&self) -> bool {
        !matches!(self, Self::PatternPrefixes(_))
    }
}

/// Most literal prefixes a pattern is indexed under; a pattern with more
/// (a case-insensitive one, a class of many characters) is tested as is.
const MAX_PATTERN_PREFIXES: usize = 64;

/// The literal prefixes every match of `re` begins with at the start of the
/// value, when it is anchored there (`^` or `\A`, not in multi-line mode)
/// and they are finitely many, none empty. From regex-syntax's own literal
/// extractor, the one the regex crate uses for its prefilters.
fn pattern_prefixes(re: &regex::Regex) -> Option<Vec<Vec<u8>>> {
    use regex_syntax::hir::Look;
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::ParserBuilder::new().nest_limit(64).build().parse(re.as_str()).ok()?;
    if !hir.properties().look_set_prefix().contains(Look::Start) {
        return None;
    }
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    let literals = seq.literals()?;
    if literals.is_empty() || literals.len() > MAX_PATTERN_PREFIXES || literals.iter().any(|l| l.as_bytes().is_empty())
    {
        return None;
    }
    Some(literals.iter().map(|l| l.as_bytes().to_vec()).collect())
}

/// A number as a hash key: `-0` is `0`; NaN equals nothing and is never a
/// key.
pub(super) fn number_key(n: f64) -> Option<u64> {
    if n.is_nan() {
        None
    } else if n == 0.0 {
        Some(0f64.to_bits())
    } else {
        Some(n.to_bits())
    }
}

/// The indexable test `c` is, if it is one.
fn key_of(c: &Cond) -> Option<(Slot, Key<'_>)> {
    Some(match c {
        Cond::StrEq(s, v) => (*s, Key::Exact(vec![&**v])),
        Cond::StrIn(s, set) => {
            let mut keys: Vec<&str> = set.iter().map(|k| &**k).collect();
            keys.sort_unstable();
            (*s, Key::Exact(keys))
        }
        Cond::NumCmp(s, CompareOp::Eq, n) if !n.is_nan() => (*s, Key::Numbers(vec![*n])),
        Cond::NumIn(s, list) if !list.is_empty() && list.iter().all(|n| !n.is_nan()) => {
            (*s, Key::Numbers(list.to_vec()))
        }
        Cond::Matches(s, re) => (*s, Key::PatternPrefixes(pattern_prefixes(re)?)),
        Cond::StartsWith(s, p) => (*s, Key::Prefix(p)),
        Cond::EndsWith(s, p) => (*s, Key::Suffix(p)),
        Cond::Contains(s, p) => (*s, Key::Substring(p)),
        Cond::NumCmp(s, op, n) if !n.is_nan() => match op {
            CompareOp::Gt => (*s, Key::Above(*n, false)),
            CompareOp::Ge => (*s, Key::Above(*n, true)),
            CompareOp::Lt => (*s, Key::Below(*n, false)),
            CompareOp::Le => (*s, Key::Below(*n, true)),
            CompareOp::Eq | CompareOp::Ne => return None,
        },
        _ => return None,
    })
}

/// The indexable tests `cond` requires: the whole condition (`None`) or a
/// conjunct of its `and` (`Some(position)`), with the field and the key.
fn required(cond: &Cond) -> SmallVec<[(Option<usize>, Slot, Key<'_>); 4]> {
    if let Some((slot, key)) = key_of(cond) {
        return SmallVec::from_iter([(None, slot, key)]);
    }
    let Cond::And(items) = cond else { return SmallVec::new() };
    items.iter().enumerate().filter_map(|(i, c)| key_of(c).map(|(s, k)| (Some(i), s, k))).collect()
}

/// What is left of `cond` to evaluate once the key at `pos` holds.
fn residual(cond: &Cond, pos: Option<usize>, key: &Key<'_>) -> Cond {
    let keep = !key.sufficient();
    match (cond, pos) {
        (_, None) => {
            if keep {
                cond.clone()
            } else {
                Cond::Const(true)
            }
        }
        (Cond::And(items), Some(pos)) => {
            let mut rest: Vec<Cond> =
                items.iter().enumerate().filter(|(i, _)| keep || *i != pos).map(|(_, c)| c.clone()).collect();
            match rest.len() {
                0 => Cond::Const(true),
                1 => rest.pop().unwrap_or(Cond::Const(true)),
                _ => Cond::And(rest.into_boxed_slice()),
            }
        }
        // `required` gives positions only within an `and`.
        (_, Some(_)) => cond.clone(),
    }
}

/// How many distinct values of each kind the set's rules name per field.
#[derive(Debug, Default)]
struct Spread<'c> {
    strings: FxHashSet<(Slot, &'c str)>,
    numbers: FxHashSet<(Slot, u64)>,
    /// Prefixes, from `starts_with` and from anchored patterns.
    prefixes: FxHashSet<(Slot, Vec<u8>)>,
    suffixes: FxHashSet<(Slot, &'c str)>,
    substrings: FxHashSet<(Slot, &'c str)>,
    /// Per field and kind (0 strings, 1 numbers, 2 prefixes, 3 suffixes,
    /// 4 substrings), the number of distinct values.
    counts: FxHashMap<(Slot, u8), usize>,
}

impl<'c> Spread<'c> {
    fn add(&mut self, slot: Slot, key: &Key<'c>) {
        let mut count = |kind: u8, new: bool| {
            if new {
                *self.counts.entry((slot, kind)).or_default() += 1;
            }
        };
        match key {
            Key::Exact(values) => values.iter().for_each(|v| count(0, self.strings.insert((slot, v)))),
            Key::Numbers(values) => {
                values.iter().filter_map(|n| number_key(*n)).for_each(|n| count(1, self.numbers.insert((slot, n))));
            }
            Key::Prefix(p) => count(2, self.prefixes.insert((slot, p.as_bytes().to_vec()))),
            Key::PatternPrefixes(list) => list.iter().for_each(|p| count(2, self.prefixes.insert((slot, p.clone())))),
            Key::Suffix(s) => count(3, self.suffixes.insert((slot, s))),
            Key::Substring(s) => count(4, self.substrings.insert((slot, s))),
            Key::Above(..) | Key::Below(..) => {}
        }
    }

    /// The share of requests expected to pass `key` (see the module's
    /// docs).
    fn cost(&self, slot: Slot, key: &Key<'_>) -> f64 {
        let share = |kind: u8, n: usize| {
            let d = self.counts.get(&(slot, kind)).copied().unwrap_or(0);
            n as f64 / (d + 1) as f64
        };
        match key {
            Key::Exact(values) => share(0, values.len()),
            Key::Numbers(values) => share(1, values.len()),
            Key::Prefix(_) => share(2, 1),
            Key::PatternPrefixes(list) => share(2, list.len()),
            Key::Suffix(_) => share(3, 1),
            Key::Substring(_) => share(4, 1),
            Key::Above(..) | Key::Below(..) => 0.5,
        }
    }
}

/// For each condition, the key it is filed under and what is left to
/// evaluate once the key holds; `None` for a condition that requires no
/// indexable test.
pub(super) fn choose<'c>(conds: &[&'c Cond]) -> Vec<Option<(Slot, Key<'c>, Cond)>> {
    let options: Vec<_> = conds.iter().map(|c| required(c)).collect();
    let mut spread = Spread::default();
    for (_, slot, key) in options.iter().flatten() {
        spread.add(*slot, key);
    }
    conds
        .iter()
        .zip(options)
        .map(|(cond, options)| {
            let (pos, slot, key) = options.into_iter().min_by(|a, b| {
                let (ca, cb) = (spread.cost(a.1, &a.2), spread.cost(b.1, &b.2));
                ca.total_cmp(&cb).then(a.2.rank().cmp(&b.2.rank()))
            })?;
            let rest = residual(cond, pos, &key);
            Some((slot, key, rest))
        })
        .collect()
}
