//! Per-key rate limiting: the generic cell rate algorithm (GCRA) over a
//! `DashMap`, with a quota per key (the customer's, or the default).
//!
//! governor's keyed limiter applies one quota to every key; customers here
//! have their own, their quota can change while the service runs, and the
//! response headers need the remaining budget and the time to reset, so the
//! few lines of GCRA live here. Each key's state is one timestamp (the
//! theoretical arrival time, TAT) and the quota it was computed under; a key
//! whose bucket is full again holds no information and is evicted by
//! [`RateLimiter::sweep`], so memory is bounded by the keys active within
//! one window.
//!
//! # Quota changes
//!
//! `TAT - t` is the budget a key has used and not yet earned back at time
//! `t`, measured at its quota's emission interval (the window divided by the
//! requests). When a key is checked against a quota other than the one its
//! TAT was computed under, the budget it had used when it last sent a
//! request is carried over **as a number of requests**, not as a fraction of
//! the window, and then earned back at the new quota's rate from that
//! moment on, as if the new quota had been in force since. So a key that
//! sent one request under "1 per hour" has one request outstanding, and
//! under "1,000 per minute" that request leaves 999 (and none after 60 ms):
//! a raised limit applies to the very next request. Lowering works the same
//! way: recent requests count against the smaller quota. The carried-over
//! budget is capped at one window of the new quota, so a key quiet for one
//! window always gets a request through and no header promises a reset
//! later than the window, whatever the key's history (the IETF RateLimit
//! header draft's reset never exceeds the policy's window).

use std::time::{Duration, Instant};

use dashmap::DashMap;
use uuid::Uuid;

/// `requests` per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests allowed per window (at least 1).
    pub requests: u32,
    /// The window.
    pub window: Duration,
}

impl Quota {
    /// The emission interval: nanoseconds of budget one request uses.
    fn interval_nanos(self) -> u64 {
        (self.window.as_nanos() / u128::from(self.requests.max(1))).min(u128::from(u64::MAX)) as u64
    }

    fn window_nanos(self) -> u64 {
        self.window.as_nanos().min(u128::from(u64::MAX)) as u64
    }

    /// The window in whole seconds, as `RateLimit-Policy` states it (at
    /// least 1): no header promises a reset or a retry later than this.
    pub fn window_secs(self) -> u64 {
        self.window.as_secs().max(1)
    }
}

/// The outcome of one check, with what the response headers need.
///
/// Invariants, whatever the history of the key's quotas:
/// `remaining <= quota.requests`, `reset_secs <= quota.window_secs()`,
/// `retry_after_secs <= quota.window_secs()`; an allowed request has
/// `retry_after_secs == 0`, a refused one `remaining == 0` and
/// `retry_after_secs >= 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The quota applied.
    pub quota: Quota,
    /// Requests left in the current window.
    pub remaining: u32,
    /// Seconds until the full quota is available again.
    pub reset_secs: u64,
    /// When refused: seconds until one request is allowed again.
    pub retry_after_secs: u64,
}

/// One key's state (times in nanoseconds since the limiter's start): its
/// TAT, when its last allowed request moved the TAT, and the quota the TAT
/// was computed under.
#[derive(Debug, Clone, Copy)]
struct Cell {
    tat: u64,
    updated: u64,
    quota: Quota,
}

/// Per-key limiter.
#[derive(Debug)]
pub struct RateLimiter {
    start: Instant,
    cells: DashMap<Uuid, Cell>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

fn ceil_secs(nanos: u64) -> u64 {
    nanos.div_ceil(1_000_000_000)
}

/// `used` nanoseconds of budget at quota `from`, as budget at quota `to`:
/// the same number of outstanding requests, capped at one window of `to`.
fn carry_over(used: u64, from: Quota, to: Quota) -> u64 {
    let (from_t, to_t) = (u128::from(from.interval_nanos().max(1)), u128::from(to.interval_nanos()));
    let scaled = u128::from(used) * to_t / from_t;
    scaled.min(u128::from(to.window_nanos())) as u64
}

impl RateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self { start: Instant::now(), cells: DashMap::new() }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Counts one request for `key` against `quota`.
    pub fn check(&self, key: Uuid, quota: Quota) -> Verdict {
        self.check_at(key, quota, self.now())
    }

    fn check_at(&self, key: Uuid, quota: Quota, now: u64) -> Verdict {
        let t = quota.interval_nanos();
        let window = quota.window_nanos();
        let window_secs = quota.window_secs();
        // The bucket holds `requests` cells: a request is allowed while the
        // arrival time it would push to is within one window of now.
        let tolerance = window.saturating_sub(t);
        let mut entry = self.cells.entry(key).or_insert(Cell { tat: now, updated: now, quota });
        let mut cell = *entry;
        if cell.quota != quota {
            let updated = cell.updated.min(now);
            let carried = carry_over(cell.tat.saturating_sub(updated), cell.quota, quota);
            cell = Cell { tat: updated.saturating_add(carried), updated, quota };
            // Remember the rescaled state, so a refusal agrees with the next check.
            *entry = cell;
        }
        // Never more than one window of debt (it can't arise under one
        // quota; the cap keeps every header within the window regardless).
        let used = cell.tat.saturating_sub(now).min(window);
        if used > tolerance {
            let wait = used - tolerance;
            return Verdict {
                allowed: false,
                quota,
                remaining: 0,
                reset_secs: ceil_secs(used).min(window_secs),
                retry_after_secs: ceil_secs(wait).clamp(1, window_secs),
            };
        }
        let used = used.saturating_add(t);
        *entry = Cell { tat: now.saturating_add(used), updated: now, quota };
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

    /// Forgets keys whose bucket is full again. Returns how many remain.
    pub fn sweep(&self) -> usize {
        let now = self.now();
        self.cells.retain(|_, cell| cell.tat > now);
        self.cells.len()
    }

    /// How many keys hold state.
    pub fn tracked_keys(&self) -> usize {
        self.cells.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn quota(requests: u32, secs: u64) -> Quota {
        Quota { requests, window: Duration::from_secs(secs) }
    }

    #[test]
    fn allows_the_quota_then_refuses_with_retry_after() {
        let l = RateLimiter::new();
        let k = Uuid::new_v4();
        let q = quota(100, 60);
        for i in 0..100u32 {
            let v = l.check_at(k, q, 0);
            assert!(v.allowed, "request {i}");
            assert_eq!(v.remaining, 99 - i);
        }
        let refused = l.check_at(k, q, 0);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        // One cell frees every 0.6 s.
        assert_eq!(refused.retry_after_secs, 1);
        assert_eq!(refused.reset_secs, 60);
        assert!(l.check_at(k, q, 600_000_000).allowed);
        assert!(!l.check_at(k, q, 600_000_000).allowed);
    }

    #[test]
    fn keys_and_quotas_are_independent() {
        let l = RateLimiter::new();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(l.check_at(a, quota(1, 60), 0).allowed);
        assert!(!l.check_at(a, quota(1, 60), 0).allowed);
        assert!(l.check_at(b, quota(1, 60), 0).allowed);
        // A larger quota for the same key applies to its next request.
        assert!(l.check_at(a, quota(1000, 60), 100_000_000).allowed);
    }

    #[test]
    fn full_buckets_are_evicted() {
        let l = RateLimiter::new();
        for _ in 0..1000 {
            l.check_at(Uuid::new_v4(), quota(10, 1), 0);
        }
        assert_eq!(l.tracked_keys(), 1000);
        // Times are relative to the limiter's start; everything set at 0
        // with a 0.1 s interval is full again by now + 1 s.
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(l.sweep(), 0);
        let _ = SEC;
    }

    #[test]
    fn a_million_idle_keys_are_all_evicted() {
        let l = RateLimiter::new();
        let q = quota(100, 1);
        for _ in 0..1_000_000 {
            l.check(Uuid::new_v4(), q);
        }
        assert_eq!(l.tracked_keys(), 1_000_000);
        // Each used one cell (10 ms at 100 per second).
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(l.sweep(), 0);
    }

    #[test]
    fn a_raised_quota_applies_to_the_next_request() {
        let l = RateLimiter::new();
        let k = Uuid::new_v4();
        let hourly = quota(1, 3600);
        assert!(l.check_at(k, hourly, 0).allowed);
        let refused = l.check_at(k, hourly, SEC);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_secs, 3599);
        // Raised to 1,000 a minute: the one request sent counts as one of
        // the thousand, and nothing promises a wait past the new window.
        let raised = quota(1000, 60);
        let v = l.check_at(k, raised, 2 * SEC);
        assert!(v.allowed, "{v:?}");
        assert_eq!(v.remaining, 999, "the earlier request is 2 s old: earned back at 1,000 a minute");
        assert!(v.reset_secs <= 60, "{v:?}");
        for _ in 0..999 {
            assert!(l.check_at(k, raised, 2 * SEC).allowed);
        }
        let spent = l.check_at(k, raised, 2 * SEC);
        assert!(!spent.allowed);
        assert_eq!((spent.retry_after_secs, spent.reset_secs), (1, 60));
        // Raised at the very moment the hour's one request was spent.
        let k2 = Uuid::new_v4();
        assert!(l.check_at(k2, hourly, 0).allowed);
        let v = l.check_at(k2, raised, 0);
        assert!(v.allowed, "{v:?}");
        assert_eq!(v.remaining, 998, "the earlier request counts as one of the thousand");
    }

    #[test]
    fn a_lowered_quota_counts_recent_requests_and_waits_at_most_one_window() {
        let l = RateLimiter::new();
        let k = Uuid::new_v4();
        let generous = quota(1000, 60);
        for _ in 0..500 {
            assert!(l.check_at(k, generous, 0).allowed);
        }
        // Lowered to 10 a minute: 500 requests in flight exceed it; the wait
        // is capped at the new window, not 500 intervals of it.
        let strict = quota(10, 60);
        let v = l.check_at(k, strict, SEC);
        assert!(!v.allowed);
        assert_eq!((v.remaining, v.reset_secs, v.retry_after_secs), (0, 59, 5));
        // Once one interval (6 s) has passed, one request goes through.
        assert!(l.check_at(k, strict, 7 * SEC).allowed);
        assert!(!l.check_at(k, strict, 7 * SEC).allowed);
        // A few requests under a large quota leave room under a smaller one.
        let k2 = Uuid::new_v4();
        for _ in 0..3 {
            assert!(l.check_at(k2, generous, 0).allowed);
        }
        let v = l.check_at(k2, strict, 0);
        assert!(v.allowed);
        assert_eq!(v.remaining, 6, "3 sent before, this one, 6 left of 10");
    }

    proptest::proptest! {
        /// Whatever the sequence of quotas and times, the headers agree
        /// with the policy: nothing left beyond the quota, no reset or
        /// retry beyond the window, refusals say when to retry.
        #[test]
        fn headers_never_contradict_the_policy(
            steps in proptest::collection::vec((1u32..2000, 1u64..7200, 0u64..5_000_000_000u64, 1usize..50), 1..40)
        ) {
            let l = RateLimiter::new();
            let k = Uuid::new_v4();
            let mut now = 0u64;
            for (requests, window, advance, burst) in steps {
                let q = quota(requests, window);
                now += advance;
                for _ in 0..burst {
                    let v = l.check_at(k, q, now);
                    proptest::prop_assert!(v.remaining <= requests, "{v:?}");
                    proptest::prop_assert!(v.reset_secs <= window, "{v:?}");
                    proptest::prop_assert!(v.retry_after_secs <= window, "{v:?}");
                    if v.allowed {
                        proptest::prop_assert_eq!(v.retry_after_secs, 0);
                    } else {
                        proptest::prop_assert_eq!(v.remaining, 0);
                        proptest::prop_assert!(v.retry_after_secs >= 1);
                        proptest::prop_assert!(v.retry_after_secs <= v.reset_secs.max(1));
                    }
                }
            }
        }

        /// A key idle for one whole window of its new quota is allowed,
        /// whatever quota it used before and however hard it used it.
        #[test]
        fn one_window_of_quiet_always_frees_a_request(
            old in (1u32..5000, 1u64..86_400), new in (1u32..5000, 1u64..86_400), sent in 1usize..200
        ) {
            let l = RateLimiter::new();
            let k = Uuid::new_v4();
            for _ in 0..sent {
                l.check_at(k, quota(old.0, old.1), 0);
            }
            let v = l.check_at(k, quota(new.0, new.1), new.1 * SEC);
            proptest::prop_assert!(v.allowed, "{v:?}");
        }
    }
}
