//! The tally of a decision: what the rules that fired add up to, and the
//! outcome it gives against a threshold (docs/language.md §4.5).

use warden_dsl::ast::Effect;

/// What the rules that fired add up to. Rule ids (source order) are kept,
/// and the sum is exact, so two tallies (enforced rules, shadow rules)
/// combine exactly as if their rules had been tallied together.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tally<'p> {
    /// The exact sum (in 128 bits, so no order of adding saturates early);
    /// clamped to `i64` only when reported.
    total: i128,
    /// The highest non-zero score, the first in source order on a tie.
    best: Option<(i64, u32, &'p str)>,
    /// The first deny rule in source order.
    deny: Option<(u32, &'p str)>,
    /// The first allow rule in source order.
    allow: Option<(u32, &'p str)>,
}

impl<'p> Tally<'p> {
    /// Counts rule `id`, whose condition held. Rules come in increasing id
    /// order.
    #[inline]
    pub(crate) fn add(&mut self, id: u32, effect: Effect, score: i64, reason: &'p str) {
        match effect {
            Effect::Score(_) => {
                if score != 0 {
                    self.total = self.total.saturating_add(i128::from(score));
                    if self.best.is_none_or(|(s, _, _)| score > s) {
                        self.best = Some((score, id, reason));
                    }
                }
            }
            Effect::Deny => {
                self.deny.get_or_insert((id, reason));
            }
            Effect::Allow => {
                self.allow.get_or_insert((id, reason));
            }
        }
    }

    /// Both tallies as one.
    pub(crate) fn with(&self, other: &Self) -> Self {
        let first = |a: Option<(u32, &'p str)>, b: Option<(u32, &'p str)>| match (a, b) {
            (Some(x), Some(y)) => Some(if y.0 < x.0 { y } else { x }),
            (x, y) => x.or(y),
        };
        let best = match (self.best, other.best) {
            (Some(x), Some(y)) => {
                Some(if (y.0, std::cmp::Reverse(y.1)) > (x.0, std::cmp::Reverse(x.1)) { y } else { x })
            }
            (x, y) => x.or(y),
        };
        Self {
            total: self.total.saturating_add(other.total),
            best,
            deny: first(self.deny, other.deny),
            allow: first(self.allow, other.allow),
        }
    }

    /// `(allowed, reason)`: a deny rule blocks, else an allow rule allows,
    /// else the score decides against `threshold`.
    pub(crate) fn outcome(&self, threshold: i64) -> (bool, &'p str) {
        match (self.deny, self.allow) {
            (Some((_, r)), _) => (false, r),
            (None, Some((_, r))) => (true, r),
            (None, None) => (self.risk_score() < threshold, self.best.map_or("ok", |(_, _, r)| r)),
        }
    }

    /// The risk score: the sum, clamped to `i64`.
    pub(crate) fn risk_score(&self) -> i64 {
        i64::try_from(self.total).unwrap_or(if self.total < 0 { i64::MIN } else { i64::MAX })
    }
}
