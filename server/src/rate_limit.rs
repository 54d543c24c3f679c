//! Per-key rate limiting: the generic cell rate algorithm (GCRA) over a
//! `DashMap`, with a quota per key (the customer's, or the default).
//!
//! governor's keyed limiter applies one quota to every key; customers here
//! have their own, and the response headers need the remaining budget and the
//! time to reset, so the dozen lines of GCRA live here. Each key's state is
//! one timestamp (the theoretical arrival time); a key whose bucket is full
//! again holds no information and is evicted by [`RateLimiter::sweep`], so
//! memory is bounded by the keys active within one window.

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
    fn interval_nanos(self) -> u64 {
        (self.window.as_nanos() / u128::from(self.requests.max(1))).min(u128::from(u64::MAX)) as u64
    }

    fn window_nanos(self) -> u64 {
        self.window.as_nanos().min(u128::from(u64::MAX)) as u64
    }
}

/// The outcome of one check, with what the response headers need.
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

/// Per-key limiter.
#[derive(Debug)]
pub struct RateLimiter {
    start: Instant,
    /// Theoretical arrival time per key, in nanoseconds since `start`.
    tat: DashMap<Uuid, u64>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

fn ceil_secs(nanos: u64) -> u64 {
    nanos.div_ceil(1_000_000_000)
}

impl RateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self { start: Instant::now(), tat: DashMap::new() }
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
        // The bucket holds `requests` cells: a request is allowed while the
        // arrival time it would push to is within one window of now.
        let tolerance = window.saturating_sub(t);
        let mut entry = self.tat.entry(key).or_insert(now);
        let tat = (*entry).max(now);
        if tat - now > tolerance {
            let wait = tat - now - tolerance;
            return Verdict {
                allowed: false,
                quota,
                remaining: 0,
                reset_secs: ceil_secs(tat - now),
                retry_after_secs: ceil_secs(wait).max(1),
            };
        }
        let new_tat = tat.saturating_add(t);
        *entry = new_tat;
        let used = new_tat - now;
        let remaining =
            window.saturating_sub(used).checked_div(t).map_or(quota.requests, |r| u32::try_from(r).unwrap_or(u32::MAX));
        Verdict { allowed: true, quota, remaining, reset_secs: ceil_secs(used), retry_after_secs: 0 }
    }

    /// Forgets keys whose bucket is full again. Returns how many remain.
    pub fn sweep(&self) -> usize {
        let now = self.now();
        self.tat.retain(|_, tat| *tat > now);
        self.tat.len()
    }

    /// How many keys hold state.
    pub fn tracked_keys(&self) -> usize {
        self.tat.len()
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
        // A larger quota for the same key applies from its next interval
        // (0.06 s at 1000 per minute), not a window later.
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
}
