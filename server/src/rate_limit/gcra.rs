//! The generic cell rate algorithm as a pure function of a key's stored
//! cell, the quota and the time: the one definition that both the
//! in-process limiter ([`super::local`]) and the Redis script
//! (`gcra.lua`, [`super::redis`]) follow, step for step.
//!
//! Times are whole microseconds, the resolution of Redis's `TIME`. Every
//! value the algorithm handles stays below 2^53 (windows are capped at
//! [`MAX_WINDOW_MICROS`], about 142 years), so the script's Lua numbers,
//! which are doubles, hold them exactly and both sides compute the same
//! integers. `tests/it/redis_limits.rs` drives both with one clock and
//! checks that they agree.

use super::{Quota, Verdict};

/// The longest window, in microseconds (2^52 µs, about 142 years): with
/// it every time and product in the algorithm stays below 2^53.
pub(crate) const MAX_WINDOW_MICROS: u64 = 1 << 52;

const MICROS_PER_SEC: u64 = 1_000_000;

impl Quota {
    /// The window in microseconds, capped at [`MAX_WINDOW_MICROS`].
    pub(crate) fn window_micros(self) -> u64 {
        u64::try_from(self.window.as_micros()).unwrap_or(u64::MAX).min(MAX_WINDOW_MICROS)
    }

    /// The emission interval: microseconds of budget one request uses.
    pub(crate) fn interval_micros(self) -> u64 {
        self.window_micros() / u64::from(self.requests.max(1))
    }
}

/// One key's state: its theoretical arrival time (TAT), when its last
/// allowed request moved the TAT, and the quota (requests, window in µs)
/// the TAT was computed under. Times in microseconds on the backend's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cell {
    pub(crate) tat: u64,
    pub(crate) updated: u64,
    pub(crate) requests: u32,
    pub(crate) window: u64,
}

/// What one request did to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    /// Whether the request is allowed.
    pub(crate) allowed: bool,
    /// Budget in use after it (allowed) or before it (refused), in µs.
    pub(crate) used: u64,
    /// The cell to keep (`None`: nothing worth keeping).
    pub(crate) cell: Option<Cell>,
}

fn ceil_secs(micros: u64) -> u64 {
    micros.div_ceil(MICROS_PER_SEC)
}

/// `used` µs of budget at emission interval `from`, as budget at interval
/// `to`: the same number of outstanding requests (`used * to / from`,
/// rounded down), capped at one window of the new quota.
pub(crate) fn carry_over(used: u64, from: u64, to: u64, to_window: u64) -> u64 {
    let scaled = u128::from(used) * u128::from(to) / u128::from(from.max(1));
    u64::try_from(scaled).unwrap_or(u64::MAX).min(to_window)
}

/// One request for a key holding `cell`, against `quota`, at `now`.
///
/// A cell whose bucket is full again (`tat <= now`) holds no information
/// and counts as absent, so forgetting it (the in-process sweep, a Redis
/// key's expiry) never changes an answer. A cell computed under another
/// quota is first rescaled: its outstanding requests are carried over
/// ([`carry_over`]) from the moment of its last allowed request.
pub(crate) fn step(cell: Option<Cell>, quota: Quota, now: u64) -> Step {
    let t = quota.interval_micros();
    let window = quota.window_micros();
    // The bucket holds `requests` cells: a request is allowed while the
    // arrival time it would push to is within one window of now.
    let tolerance = window.saturating_sub(t);
    let (tat, updated) = match cell.filter(|c| c.tat > now) {
        None => (now, now),
        Some(c) if c.requests == quota.requests && c.window == window => (c.tat, c.updated),
        Some(c) => {
            let updated = c.updated.min(now);
            let from = c.window / u64::from(c.requests.max(1));
            (updated.saturating_add(carry_over(c.tat.saturating_sub(updated), from, t, window)), updated)
        }
    };
    let current = Cell { tat, updated, requests: quota.requests, window };
    // Never more than one window of debt (it can't arise under one quota;
    // the cap keeps every header within the window regardless).
    let used = tat.saturating_sub(now).min(window);
    if used > tolerance {
        // Keep the rescaled state, so a refusal agrees with the next check.
        return Step { allowed: false, used, cell: Some(current) };
    }
    let used = used.saturating_add(t);
    Step { allowed: true, used, cell: Some(Cell { tat: now.saturating_add(used), updated: now, ..current }) }
}

/// The verdict (and response headers) for a step's outcome.
pub(crate) fn verdict(quota: Quota, allowed: bool, used: u64) -> Verdict {
    let t = quota.interval_micros();
    let window = quota.window_micros();
    let window_secs = quota.window_secs();
    if !allowed {
        let wait = used.saturating_sub(window.saturating_sub(t));
        return Verdict {
            allowed: false,
            quota,
            remaining: 0,
            reset_secs: ceil_secs(used).min(window_secs),
            retry_after_secs: ceil_secs(wait).clamp(1, window_secs),
        };
    }
    let remaining =
        window.saturating_sub(used).checked_div(t).map_or(quota.requests, |r| u32::try_from(r).unwrap_or(u32::MAX));
    Verdict {
        allowed: true,
        quota,
        remaining: remaining.min(quota.requests),
        reset_secs: ceil_secs(used).min(window_secs),
        retry_after_secs: 0,
    }
}

/// Gives back one request's budget (a verification that turned out
/// right, see [`crate::auth`]). `None` when the bucket is full again.
pub(crate) fn refund(cell: Option<Cell>, quota: Quota, now: u64) -> Option<Cell> {
    let c = cell.filter(|c| c.tat > now)?;
    let tat = c.tat.saturating_sub(quota.interval_micros());
    (tat > now).then_some(Cell { tat, ..c })
}
