//! Finding the rules that can fire for a request without testing each one.
//!
//! At compile time each rule whose condition requires one indexable test on
//! a field (the whole condition, or one conjunct of an `and`) is filed under
//! that test, and keeps the rest of its condition as its *residual*:
//!
//! | test | index | one request costs |
//! |---|---|---|
//! | `f == "v"`, `f in ["v", …]` | hash map value → rules | one lookup |
//! | `f == n`, `f in [n, …]` | hash map number → rules | one lookup |
//! | `f starts_with "p"` | byte trie of the prefixes | one walk over `f`'s bytes |
//! | `f matches "^lit…"` | the same trie, under the pattern's literal prefixes | (the same walk) |
//! | `f ends_with "s"` | byte trie of the reversed suffixes | one walk from `f`'s end |
//! | `f contains "s"` | Aho-Corasick automaton of the substrings | one pass over `f` |
//! | `f > n`, `f >= n`, `f < n`, `f <= n` | thresholds sorted | the thresholds passed |
//!
//! A rule found through its index has its indexed test guaranteed, so only
//! its residual is evaluated ([`crate::policy`]). A pattern's literal
//! prefixes are necessary for a match but not sufficient, so a rule indexed
//! by them keeps the pattern in its residual. Rules with no indexable
//! required test are candidates for every request. Absent fields and values
//! of another type find nothing, as every test on them is false
//! (docs/language.md, "Absent fields").

use aho_corasick::AhoCorasick;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use crate::cond::Cond;
use crate::input::{Slot, SlotValue, slot_value};

mod keys;

use keys::{Key, number_key};

/// A byte trie whose nodes hold the rules of the strings ending there.
#[derive(Debug, Default)]
struct Trie {
    /// Node 0 is the root. Each node's edges are sorted by byte.
    nodes: Vec<TrieNode>,
}

#[derive(Debug, Default)]
struct TrieNode {
    edges: Vec<(u8, u32)>,
    rules: Vec<u32>,
}

impl Trie {
    fn insert(&mut self, bytes: impl Iterator<Item = u8>, rule: u32) {
        if self.nodes.is_empty() {
            self.nodes.push(TrieNode::default());
        }
        let mut at = 0usize;
        for b in bytes {
            let next_free = u32::try_from(self.nodes.len()).unwrap_or(u32::MAX);
            let Some(node) = self.nodes.get_mut(at) else { return };
            let next = match node.edges.binary_search_by_key(&b, |(e, _)| *e) {
                Ok(i) => node.edges.get(i).map_or(u32::MAX, |(_, n)| *n),
                Err(i) => {
                    node.edges.insert(i, (b, next_free));
                    self.nodes.push(TrieNode::default());
                    next_free
                }
            };
            at = next as usize;
        }
        if let Some(node) = self.nodes.get_mut(at) {
            node.rules.push(rule);
        }
    }

    /// Adds the rules of every stored string `bytes` starts with.
    fn walk(&self, bytes: impl Iterator<Item = u8>, hits: &mut Hits) {
        let Some(mut node) = self.nodes.first() else { return };
        // Most nodes on a path end no string: skip them without a copy.
        if !node.rules.is_empty() {
            hits.extend_from_slice(&node.rules);
        }
        for b in bytes {
            let Ok(i) = node.edges.binary_search_by_key(&b, |(e, _)| *e) else { return };
            let Some(next) = node.edges.get(i).and_then(|(_, n)| self.nodes.get(*n as usize)) else { return };
            node = next;
            if !node.rules.is_empty() {
                hits.extend_from_slice(&node.rules);
            }
        }
    }
}

/// The rules found for one request, as a bit set over rule numbers:
/// marking one is an OR, a rule found twice is there once, and reading the
/// set back gives rule order with no sort (a request to 10,000 rules finds
/// hundreds, whose sort cost more than testing them).
pub(crate) struct Hits {
    words: SmallVec<[u64; 16]>,
}

impl Hits {
    #[inline]
    fn push(&mut self, id: u32) {
        if let Some(w) = self.words.get_mut((id / 64) as usize) {
            *w |= 1u64 << (id % 64);
        }
    }

    #[inline]
    fn extend_from_slice(&mut self, ids: &[u32]) {
        for &id in ids {
            self.push(id);
        }
    }
}

/// One field's index of one kind.
#[derive(Debug)]
enum Lookup {
    Exact(FxHashMap<Box<str>, Box<[u32]>>),
    /// [`number_key`] → rules.
    Numbers(FxHashMap<u64, Box<[u32]>>),
    Prefix(Trie),
    /// Suffixes stored reversed, walked from the value's last byte.
    Suffix(Trie),
    /// Pattern number → rules.
    Substring(AhoCorasick, Box<[Box<[u32]>]>),
    /// Sorted by threshold, ascending; `(threshold, inclusive, rule)`.
    Above(Box<[(f64, bool, u32)]>),
    /// Sorted by threshold, descending.
    Below(Box<[(f64, bool, u32)]>),
}

#[derive(Debug)]
struct FieldIndex {
    slot: Slot,
    lookup: Lookup,
}

/// Every index of a policy, and the rules no index covers.
#[derive(Debug, Default)]
pub(crate) struct RuleIndex {
    /// Rules no index covers, as a bit set over rule numbers (one bit per
    /// rule of the set): candidates for every request.
    always: Box<[u64]>,
    indexes: Box<[FieldIndex]>,
}

/// What [`RuleIndex::build`] gives each rule: what to evaluate once it is a
/// candidate.
pub(crate) type Residuals = Vec<Cond>;

impl RuleIndex {
    /// Files each condition under its best indexable test; returns the
    /// index and, per rule, the condition left to evaluate when the rule is
    /// a candidate (the whole condition for rules in no index).
    pub(crate) fn build(conds: &[&Cond]) -> (Self, Residuals) {
        let mut always = Vec::new();
        let mut residuals = Vec::new();
        let mut exact: FxHashMap<Slot, FxHashMap<Box<str>, Vec<u32>>> = FxHashMap::default();
        let mut numbers: FxHashMap<Slot, FxHashMap<u64, Vec<u32>>> = FxHashMap::default();
        let mut prefix: FxHashMap<Slot, Trie> = FxHashMap::default();
        let mut suffix: FxHashMap<Slot, Trie> = FxHashMap::default();
        let mut substring: FxHashMap<Slot, Vec<(&str, u32)>> = FxHashMap::default();
        let mut above: FxHashMap<Slot, Vec<(f64, bool, u32)>> = FxHashMap::default();
        let mut below: FxHashMap<Slot, Vec<(f64, bool, u32)>> = FxHashMap::default();
        for (i, (&cond, chosen)) in conds.iter().zip(keys::choose(conds)).enumerate() {
            let Ok(id) = u32::try_from(i) else { break };
            let Some((slot, key, residual)) = chosen else {
                always.push(id);
                residuals.push(cond.clone());
                continue;
            };
            match key {
                Key::Exact(keys) => {
                    let map = exact.entry(slot).or_default();
                    for k in keys {
                        map.entry(k.into()).or_default().push(id);
                    }
                }
                Key::Numbers(list) => {
                    let map = numbers.entry(slot).or_default();
                    for n in list.into_iter().filter_map(number_key) {
                        let ids = map.entry(n).or_default();
                        // `f in [1, 1]` files the rule once.
                        if ids.last() != Some(&id) {
                            ids.push(id);
                        }
                    }
                }
                Key::Prefix(p) => prefix.entry(slot).or_default().insert(p.bytes(), id),
                Key::PatternPrefixes(list) => {
                    let trie = prefix.entry(slot).or_default();
                    for p in list {
                        trie.insert(p.into_iter(), id);
                    }
                }
                Key::Suffix(p) => suffix.entry(slot).or_default().insert(p.bytes().rev(), id),
                Key::Substring(p) => substring.entry(slot).or_default().push((p, id)),
                Key::Above(n, inclusive) => above.entry(slot).or_default().push((n, inclusive, id)),
                Key::Below(n, inclusive) => below.entry(slot).or_default().push((n, inclusive, id)),
            }
            residuals.push(residual);
        }
        let mut indexes = Vec::new();
        for (slot, map) in exact {
            let map = map.into_iter().map(|(k, v)| (k, v.into_boxed_slice())).collect();
            indexes.push(FieldIndex { slot, lookup: Lookup::Exact(map) });
        }
        for (slot, map) in numbers {
            let map = map.into_iter().map(|(k, v)| (k, v.into_boxed_slice())).collect();
            indexes.push(FieldIndex { slot, lookup: Lookup::Numbers(map) });
        }
        indexes.extend(prefix.into_iter().map(|(slot, t)| FieldIndex { slot, lookup: Lookup::Prefix(t) }));
        indexes.extend(suffix.into_iter().map(|(slot, t)| FieldIndex { slot, lookup: Lookup::Suffix(t) }));
        for (slot, patterns) in substring {
            // One automaton pattern per distinct substring.
            let mut by_pattern: FxHashMap<&str, Vec<u32>> = FxHashMap::default();
            for (p, id) in patterns {
                by_pattern.entry(p).or_default().push(id);
            }
            let mut entries: Vec<(&str, Vec<u32>)> = by_pattern.into_iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            match AhoCorasick::new(entries.iter().map(|(p, _)| *p)) {
                Ok(ac) => {
                    let rules = entries.into_iter().map(|(_, ids)| ids.into_boxed_slice()).collect();
                    indexes.push(FieldIndex { slot, lookup: Lookup::Substring(ac, rules) });
                }
                // Too large for the automaton: those rules are tested
                // one by one instead.
                Err(_) => {
                    for (_, ids) in entries {
                        for id in ids {
                            always.push(id);
                            if let (Some(r), Some(c)) = (residuals.get_mut(id as usize), conds.get(id as usize)) {
                                *r = (*c).clone();
                            }
                        }
                    }
                }
            }
        }
        for (slot, mut list) in above {
            list.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
            indexes.push(FieldIndex { slot, lookup: Lookup::Above(list.into_boxed_slice()) });
        }
        for (slot, mut list) in below {
            list.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
            indexes.push(FieldIndex { slot, lookup: Lookup::Below(list.into_boxed_slice()) });
        }
        indexes.sort_unstable_by_key(|i| i.slot);
        let mut bits = vec![0u64; conds.len().div_ceil(64)];
        for id in always {
            if let Some(w) = bits.get_mut((id / 64) as usize) {
                *w |= 1u64 << (id % 64);
            }
        }
        (Self { always: bits.into_boxed_slice(), indexes: indexes.into_boxed_slice() }, residuals)
    }

    /// Calls `f` with each rule that could fire for these slots, once each,
    /// in source order: every unindexed rule, plus the indexed rules whose
    /// indexed test holds.
    #[inline]
    pub(crate) fn for_each_candidate(&self, slots: &[SlotValue<'_>], mut f: impl FnMut(u32)) {
        let mut hits = Hits { words: SmallVec::from_slice(&self.always) };
        for index in self.indexes.iter() {
            index.lookup.find(slot_value(slots, index.slot), &mut hits);
        }
        for (w, &word) in (0u32..).zip(hits.words.iter()) {
            let mut rest = word;
            while rest != 0 {
                f(w * 64 + rest.trailing_zeros());
                rest &= rest - 1;
            }
        }
    }
}

impl Lookup {
    #[inline]
    fn find(&self, value: &SlotValue<'_>, hits: &mut Hits) {
        match (self, value) {
            (Self::Exact(map), SlotValue::Str(v)) => {
                if let Some(ids) = map.get(&**v) {
                    hits.extend_from_slice(ids);
                }
            }
            (Self::Numbers(map), &SlotValue::Num(v)) => {
                if let Some(ids) = number_key(v).and_then(|k| map.get(&k)) {
                    hits.extend_from_slice(ids);
                }
            }
            (Self::Prefix(trie), SlotValue::Str(v)) => trie.walk(v.bytes(), hits),
            (Self::Suffix(trie), SlotValue::Str(v)) => trie.walk(v.bytes().rev(), hits),
            (Self::Substring(ac, rules), SlotValue::Str(v)) => {
                for m in ac.find_overlapping_iter(&**v) {
                    if let Some(ids) = rules.get(m.pattern().as_usize()) {
                        hits.extend_from_slice(ids);
                    }
                }
            }
            (Self::Above(list), &SlotValue::Num(v)) => {
                for &(n, inclusive, id) in list.iter() {
                    if v > n || (inclusive && v == n) {
                        hits.push(id);
                    } else if v < n {
                        break;
                    }
                }
            }
            (Self::Below(list), &SlotValue::Num(v)) => {
                for &(n, inclusive, id) in list.iter() {
                    if v < n || (inclusive && v == n) {
                        hits.push(id);
                    } else if v > n {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)] // tests fail loudly

    use warden_dsl::{SourceFile, check};

    use super::*;
    use crate::input::InputSchema;

    const INPUT: &str = "input { model: string operation: string metadata.intent: string? metadata.pii: bool = false metadata.n: number = 0 }";

    fn compiled(condition: &str) -> Cond {
        let rule = format!("rule r {{ description \"d\" when {condition} score +60 reason r }}");
        let set = check(vec![SourceFile::new("i.warden", INPUT), SourceFile::new("r.warden", rule)]).set.unwrap();
        let schema = InputSchema::new(&set.fields, &set.forbidden_fields);
        Cond::compile(set.rules.first().map(|r| &r.node.condition).unwrap(), &schema, &|_| None).unwrap()
    }

    fn key(condition: &str) -> Option<String> {
        let c = compiled(condition);
        keys::choose(&[&c]).pop().flatten().map(|(_, k, residual)| format!("{k:?} / {residual:?}"))
    }

    #[test]
    fn a_required_test_is_indexed_and_left_out_of_the_residual() {
        assert_eq!(key("metadata.pii and model == \"gpt-4\"").unwrap(), "Exact([\"gpt-4\"]) / IsTrue(3)");
        assert_eq!(key("operation in [\"b\", \"a\"]").unwrap(), "Exact([\"a\", \"b\"]) / Const(true)");
        // The hash lookup is preferred to a prefix, a prefix to a threshold.
        assert!(key("metadata.intent starts_with \"x\" and model == \"m\"").unwrap().starts_with("Exact"));
        assert!(key("metadata.n > 3 and metadata.intent starts_with \"x\"").unwrap().starts_with("Prefix(\"x\")"));
        assert!(key("metadata.intent ends_with \"x\"").unwrap().starts_with("Suffix(\"x\")"));
        assert!(key("metadata.intent contains \"x\"").unwrap().starts_with("Substring(\"x\")"));
        assert!(key("metadata.n <= 3").unwrap().starts_with("Below(3.0, true)"));
    }

    #[test]
    fn each_rule_is_filed_under_the_key_fewest_requests_pass() {
        // 12 operations named, each rule naming 2 of them; 12 prefixes
        // named, each rule naming 1: the prefix narrows more.
        let ops = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"];
        let conds: Vec<Cond> = (0..12)
            .map(|i| {
                compiled(&format!(
                    "operation in [\"{}\", \"{}\"] and metadata.intent starts_with \"p{i}\"",
                    ops[i],
                    ops[(i + 1) % 12]
                ))
            })
            .collect();
        let refs: Vec<&Cond> = conds.iter().collect();
        for (i, chosen) in keys::choose(&refs).into_iter().enumerate() {
            let (_, k, residual) = chosen.unwrap();
            assert_eq!(format!("{k:?}"), format!("Prefix(\"p{i}\")"));
            assert!(matches!(residual, Cond::StrIn(..)), "{residual:?}");
        }
        // One of 12 operations against one of 12 prefixes: a tie, and the
        // hash lookup wins it.
        let mut conds = conds;
        conds.push(compiled("operation == \"a\" and metadata.intent starts_with \"p0\""));
        let refs: Vec<&Cond> = conds.iter().collect();
        let last = keys::choose(&refs).pop().flatten().unwrap();
        assert_eq!(format!("{:?}", last.1), "Exact([\"a\"])");
    }

    #[test]
    fn numbers_and_anchored_patterns_are_indexed() {
        assert_eq!(key("metadata.n == 3").unwrap(), "Numbers([3.0]) / Const(true)");
        assert_eq!(key("metadata.n in [1, 2] and metadata.pii").unwrap(), "Numbers([1.0, 2.0]) / IsTrue(3)");
        // The pattern is necessary, not sufficient: it stays in the residual.
        let k = key("metadata.intent matches \"^(gpt|eval)-.+\"").unwrap();
        assert!(k.starts_with("PatternPrefixes([[103, 112, 116, 45], [101, 118, 97, 108, 45]]) / Matches"), "{k}");
        let k = key("metadata.intent matches \"^foo\" and metadata.pii").unwrap();
        assert!(k.starts_with("PatternPrefixes([[102, 111, 111]]) / And([Matches"), "{k}");
    }

    /// The rules `conds` indexed find for `metadata.n` (slot 4) holding a
    /// number.
    fn candidates_for_number(conds: &[Cond]) -> impl Fn(f64) -> Vec<u32> {
        let refs: Vec<&Cond> = conds.iter().collect();
        let (index, _) = RuleIndex::build(&refs);
        move |n| {
            let mut slots = vec![SlotValue::Absent; 5];
            slots[4] = SlotValue::Num(n);
            let mut out = Vec::new();
            index.for_each_candidate(&slots, |id| out.push(id));
            out
        }
    }

    #[test]
    fn numbers_are_found_by_value_with_minus_zero_as_zero() {
        let conds = [compiled("metadata.n == 0"), compiled("metadata.n in [2, -0]"), compiled("metadata.n == 2")];
        let found = candidates_for_number(&conds);
        assert_eq!(found(-0.0), vec![0, 1]);
        assert_eq!(found(2.0), vec![1, 2]);
        assert_eq!(found(f64::NAN), Vec::<u32>::new());
        assert_eq!(found(3.0), Vec::<u32>::new());
    }

    #[test]
    fn a_parameter_list_used_with_in_is_indexed_under_the_files_values() {
        let text = format!(
            "{INPUT}\nparam ok: list<string> = [\"b\", \"a\"]\nrule r {{ description \"d\" when model in param.ok and metadata.pii score +60 reason r }}"
        );
        let set = check(vec![SourceFile::new("p.warden", text)]).set.unwrap();
        let schema = InputSchema::new(&set.fields, &set.forbidden_fields);
        let defaults = |name: &str| set.params.iter().find(|p| p.name == name).map(|p| &p.default);
        let cond = Cond::compile(&set.rules[0].node.condition, &schema, &defaults).unwrap();
        let (_, k, residual) = keys::choose(&[&cond]).pop().flatten().unwrap();
        assert_eq!(format!("{k:?} / {residual:?}"), "Exact([\"a\", \"b\"]) / IsTrue(3)");
    }

    #[test]
    fn a_test_that_is_not_required_is_not_indexed() {
        assert_eq!(key("model == \"a\" or metadata.pii"), None);
        assert_eq!(key("not (model == \"a\")"), None);
        assert_eq!(key("model != \"a\""), None);
        assert_eq!(key("not (metadata.intent starts_with \"a\")"), None);
        assert_eq!(key("metadata.n != 3"), None);
        assert_eq!(key("metadata.intent matches \"gpt\""), None, "not anchored");
        assert_eq!(key("metadata.intent matches \"(?m)^gpt\""), None, "anchored at a line");
        assert_eq!(key("metadata.intent matches \"^gpt|x\""), None, "one branch unanchored");
        assert_eq!(key("metadata.intent matches \"^.*x\""), None, "no literal prefix");
    }

    #[test]
    fn thresholds_find_exactly_the_rules_passed() {
        let conds = [
            compiled("metadata.n > 3"),
            compiled("metadata.n >= 3"),
            compiled("metadata.n < 3"),
            compiled("metadata.n <= 5"),
        ];
        let found = candidates_for_number(&conds);
        assert_eq!(found(3.0), vec![1, 3]);
        assert_eq!(found(4.0), vec![0, 1, 3]);
        assert_eq!(found(2.0), vec![2, 3]);
        assert_eq!(found(6.0), vec![0, 1]);
    }
}
