//! The in-process limiter: GCRA cells in a `DashMap`, one per key.
//!
//! governor's keyed limiter applies one quota to every key; customers here
//! have their own, their quota can change while the service runs, the
//! response headers need the remaining budget and the time to reset, and
//! the Redis script must give the very same answers, so the algorithm
//! lives in [`super::gcra`] and this module only keeps the cells. A key
//! whose bucket is full again holds no information and is evicted by
//! [`LocalLimiter::sweep`], so memory is bounded by the keys active within
//! one window.

use std::hash::Hash;
use std::time::Instant;

use dashmap::DashMap;
use uuid::Uuid;

use super::gcra::{self, Cell};
use super::{Quota, Verdict};

/// Per-key limiter kept in this process's memory.
#[derive(Debug)]
pub struct LocalLimiter<K: Eq + Hash = Uuid> {
    start: Instant,
    cells: DashMap<K, Cell>,
}

impl<K: Eq + Hash + Clone> Default for LocalLimiter<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Eq + Hash + Clone> LocalLimiter<K> {
    /// An empty limiter.
    pub fn new() -> Self {
        Self { start: Instant::now(), cells: DashMap::new() }
    }

    /// Microseconds since the limiter started: its clock.
    pub(crate) fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Counts one request for `key` against `quota`.
    pub fn check(&self, key: K, quota: Quota) -> Verdict {
        self.check_at(key, quota, self.now())
    }

    /// [`Self::check`] at a given time (µs on this limiter's clock).
    pub(crate) fn check_at(&self, key: K, quota: Quota, now: u64) -> Verdict {
        let mut entry = self.cells.entry(key).or_insert(Cell { tat: now, updated: now, requests: 0, window: 0 });
        let step = gcra::step(Some(*entry), quota, now);
        if let Some(cell) = step.cell {
            *entry = cell;
        }
        gcra::verdict(quota, step.allowed, step.used)
    }

    /// Whether one more request for `key` would be allowed now, without
    /// counting it; when not, the seconds until it would be.
    pub(crate) fn peek_at(&self, key: &K, quota: Quota, now: u64) -> Result<(), u64> {
        let cell = self.cells.get(key).map(|c| *c);
        let step = gcra::step(cell, quota, now);
        if step.allowed { Ok(()) } else { Err(gcra::verdict(quota, false, step.used).retry_after_secs) }
    }

    /// Whether `key` has no budget in use (its bucket is full).
    pub(crate) fn is_full_at(&self, key: &K, now: u64) -> bool {
        self.cells.get(key).is_none_or(|c| c.tat <= now)
    }

    /// Gives back one request's budget for `key`.
    pub(crate) fn refund_at(&self, key: &K, quota: Quota, now: u64) {
        if let Some(mut entry) = self.cells.get_mut(key) {
            match gcra::refund(Some(*entry), quota, now) {
                Some(cell) => *entry = cell,
                None => entry.tat = now,
            }
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
    use std::time::Duration;

    use super::*;

    const SEC: u64 = 1_000_000;

    fn quota(requests: u32, secs: u64) -> Quota {
        Quota { requests, window: Duration::from_secs(secs) }
    }

    fn limiter() -> LocalLimiter {
        LocalLimiter::new()
    }

    #[test]
    fn allows_the_quota_then_refuses_with_retry_after() {
        let l = limiter();
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
        assert!(l.check_at(k, q, 600_000).allowed);
        assert!(!l.check_at(k, q, 600_000).allowed);
    }

    #[test]
    fn keys_and_quotas_are_independent() {
        let l = limiter();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(l.check_at(a, quota(1, 60), 0).allowed);
        assert!(!l.check_at(a, quota(1, 60), 0).allowed);
        assert!(l.check_at(b, quota(1, 60), 0).allowed);
        // A larger quota for the same key applies to its next request.
        assert!(l.check_at(a, quota(1000, 60), 100_000).allowed);
    }

    #[test]
    fn full_buckets_are_evicted() {
        let l = limiter();
        for _ in 0..1000 {
            l.check(Uuid::new_v4(), quota(10, 1));
        }
        assert_eq!(l.tracked_keys(), 1000);
        // Each used one cell (0.1 s at 10 per second).
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(l.sweep(), 0);
    }

    #[test]
    fn a_million_idle_keys_are_all_evicted() {
        let l = limiter();
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
        let l = limiter();
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
        let l = limiter();
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

    #[test]
    fn a_full_bucket_holds_no_information_whatever_the_next_quota() {
        // Swept or not, a key whose bucket is full again answers as a new
        // key: the sweep's timing (and a Redis key's expiry) never matters.
        let l = limiter();
        let k = Uuid::new_v4();
        assert!(l.check_at(k, quota(1, 3600), 0).allowed);
        let v = l.check_at(k, quota(1, 7200), 3601 * SEC);
        assert!(v.allowed, "{v:?}");
    }

    #[test]
    fn peeking_and_refunds_follow_the_same_cells() {
        let l = limiter();
        let k = Uuid::new_v4();
        let q = quota(2, 60);
        assert!(l.is_full_at(&k, 0));
        assert_eq!(l.peek_at(&k, q, 0), Ok(()));
        l.check_at(k, q, 0);
        l.check_at(k, q, 0);
        assert_eq!(l.peek_at(&k, q, 0), Err(30));
        assert!(!l.is_full_at(&k, 0));
        l.refund_at(&k, q, 0);
        assert_eq!(l.peek_at(&k, q, 0), Ok(()));
        l.refund_at(&k, q, 0);
        assert!(l.is_full_at(&k, 0));
    }

    proptest::proptest! {
        /// Whatever the sequence of quotas and times, the headers agree
        /// with the policy: nothing left beyond the quota, no reset or
        /// retry beyond the window, refusals say when to retry.
        #[test]
        fn headers_never_contradict_the_policy(
            steps in proptest::collection::vec((1u32..2000, 1u64..7200, 0u64..5_000_000u64, 1usize..50), 1..40)
        ) {
            let l = limiter();
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
            let l = limiter();
            let k = Uuid::new_v4();
            for _ in 0..sent {
                l.check_at(k, quota(old.0, old.1), 0);
            }
            let v = l.check_at(k, quota(new.0, new.1), new.1 * SEC);
            proptest::prop_assert!(v.allowed, "{v:?}");
        }
    }
}
