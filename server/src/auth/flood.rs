//! Flood protection for key verification: a limit on failed verifications
//! per key id and per client address, so wrong secrets can't keep the
//! cores busy with bcrypt (about 0.25 s of CPU each at cost 12).
//!
//! Each failure budget is a GCRA bucket (default 10 a minute) in the same
//! place as the rate limits: Redis when it is configured (shared by every
//! instance; the same script, `gcra.lua`), else this process. A Redis that
//! fails falls back to this process's buckets, whatever the rate-limit
//! fallback: denying would lock out every key not yet cached, allowing
//! would drop the protection.
//!
//! Before bcrypt runs for a presented key, one failure is *reserved* in
//! both the key id's and the address's bucket (atomically, both or
//! neither), and given back if the secret was right; so concurrent wrong
//! secrets can't slip past the limit, and bcrypt runs at most the limit's
//! number of times per window for wrong secrets of one key id.
//!
//! # Who is locked out, and for how long
//!
//! - A key already verified (cached) is answered without bcrypt and never
//!   checked here: someone else's failures don't touch it.
//! - An address over its limit is refused (429 with `Retry-After`) before
//!   any lookup: only its own failures lock it.
//! - A key id over its limit refuses bcrypt for unknown secrets. So that
//!   the key's real holder is not locked out by someone else's failures for
//!   as long as they keep failing, an address with no failures on record
//!   may still have the key verified once every [`PASS_INTERVAL`] (5 s) per
//!   key id. Five seconds bounds both sides: a legitimate first request
//!   waits at most that long (a client honouring `Retry-After` retries
//!   once), while an attacker needs a fresh, never-failed address (an IPv6
//!   /64, see [`ClientAddress`]) for each such try and gets at most 12
//!   extra bcrypt runs a minute per key id (about 5% of a core at cost 12).

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use uuid::Uuid;

use crate::rate_limit::gcra;
use crate::rate_limit::{LocalLimiter, Quota, RedisBackend};

/// How often a key id over its failure limit may still be verified from an
/// address without failures.
pub const PASS_INTERVAL: Duration = Duration::from_secs(5);

const PASS_QUOTA: Quota = Quota { requests: 1, window: PASS_INTERVAL };

/// The default failure limit: 10 a minute per key id and per address.
pub const DEFAULT_FAILURE_QUOTA: Quota = Quota { requests: 10, window: Duration::from_secs(60) };

/// A client address as the flood guard counts it: an IPv4 address, or an
/// IPv6 address's /64 prefix (one subscriber usually holds a whole /64; an
/// IPv4-mapped IPv6 address counts as its IPv4 address). `Unknown` when the
/// listener gave none (in-process tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientAddress {
    /// The address, or its /64.
    Ip(IpAddr),
    /// No address known.
    Unknown,
}

impl From<Option<IpAddr>> for ClientAddress {
    fn from(ip: Option<IpAddr>) -> Self {
        match ip {
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::Ip(IpAddr::V4(v4)),
                None => Self::Ip(IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into())),
            },
            Some(v4) => Self::Ip(v4),
            None => Self::Unknown,
        }
    }
}

impl std::fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ip(IpAddr::V6(v6)) => write!(f, "{v6}/64"),
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Unknown => f.write_str("unknown"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Bucket {
    KeyId(Uuid),
    Address(ClientAddress),
    Pass(Uuid),
}

/// What a reservation charged, to give back if the secret was right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reservation {
    /// The key id's and the address's budgets.
    KeyId { id: Uuid, address: ClientAddress },
    /// The key id was over its limit: its pass and the address's budget.
    Pass { id: Uuid, address: ClientAddress },
}

/// Failed-verification budgets per key id and per client address.
#[derive(Debug)]
pub struct FloodGuard {
    quota: Quota,
    local: LocalLimiter<Bucket>,
    /// Makes a local reservation of two buckets atomic (rare: only key
    /// verifications that reach bcrypt take it).
    reserving: Mutex<()>,
    redis: Option<Arc<RedisBackend>>,
}

impl Default for FloodGuard {
    fn default() -> Self {
        Self::new(DEFAULT_FAILURE_QUOTA, None)
    }
}

impl FloodGuard {
    /// `quota` failures per key id and per address, shared through `redis`
    /// when given.
    pub fn new(quota: Quota, redis: Option<Arc<RedisBackend>>) -> Self {
        Self { quota, local: LocalLimiter::new(), reserving: Mutex::new(()), redis }
    }

    fn redis_key(redis: &RedisBackend, bucket: &Bucket) -> String {
        match bucket {
            Bucket::KeyId(id) => redis.key("af:id", id.simple()),
            Bucket::Address(a) => redis.key("af:ip", a),
            Bucket::Pass(id) => redis.key("af:pass", id.simple()),
        }
    }

    /// Whether `address` may try a key now; when not, the seconds until it
    /// may.
    pub(crate) async fn check_address(&self, address: ClientAddress) -> Result<(), u64> {
        let bucket = Bucket::Address(address);
        if let Some(redis) = &self.redis {
            let mut invocation = redis.invocation();
            invocation
                .key(Self::redis_key(redis, &bucket))
                .arg("peek")
                .arg("")
                .arg(self.quota.requests)
                .arg(self.quota.window_micros());
            if let Ok(reply) = redis.run(invocation).await {
                return self.decode_allowed(&reply, self.quota);
            }
        }
        self.local.peek_at(&bucket, self.quota, self.local.now())
    }

    /// Records a failure that cost no bcrypt (an unknown key id) against
    /// `address`.
    pub(crate) async fn record_failure(&self, address: ClientAddress) {
        let bucket = Bucket::Address(address);
        if let Some(redis) = &self.redis {
            let mut invocation = redis.invocation();
            invocation
                .key(Self::redis_key(redis, &bucket))
                .arg("limit")
                .arg("")
                .arg(self.quota.requests)
                .arg(self.quota.window_micros());
            if redis.run(invocation).await.is_ok() {
                return;
            }
        }
        self.local.check(bucket, self.quota);
    }

    fn decode_allowed(&self, reply: &[i64], quota: Quota) -> Result<(), u64> {
        match reply {
            [1, _] => Ok(()),
            [_, used] => Err(gcra::verdict(quota, false, u64::try_from(*used).unwrap_or(0)).retry_after_secs),
            _ => Ok(()),
        }
    }

    /// Reserves one failure for verifying a secret of key `id` from
    /// `address`; `Err` holds the seconds to wait (no bcrypt may run).
    pub(crate) async fn reserve(&self, id: Uuid, address: ClientAddress) -> Result<Reservation, u64> {
        if let Some(redis) = &self.redis {
            let mut invocation = redis.invocation();
            invocation
                .key(Self::redis_key(redis, &Bucket::KeyId(id)))
                .key(Self::redis_key(redis, &Bucket::Address(address)))
                .key(Self::redis_key(redis, &Bucket::Pass(id)))
                .arg("reserve")
                .arg("")
                .arg(self.quota.requests)
                .arg(self.quota.window_micros())
                .arg(PASS_QUOTA.requests)
                .arg(PASS_QUOTA.window_micros());
            if let Ok(reply) = redis.run(invocation).await {
                return match reply.as_slice() {
                    [1, ..] => Ok(Reservation::KeyId { id, address }),
                    [2, ..] => Ok(Reservation::Pass { id, address }),
                    [0, used, which] => {
                        let quota = if *which == 2 { PASS_QUOTA } else { self.quota };
                        Err(gcra::verdict(quota, false, u64::try_from(*used).unwrap_or(0)).retry_after_secs)
                    }
                    // An answer the script never gives: verify rather than lock out.
                    _ => Ok(Reservation::KeyId { id, address }),
                };
            }
        }
        self.reserve_locally(id, address)
    }

    /// The same decision as the script's `reserve`, on this process's buckets.
    fn reserve_locally(&self, id: Uuid, address: ClientAddress) -> Result<Reservation, u64> {
        let _one_at_a_time = self.reserving.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = self.local.now();
        let (key_bucket, address_bucket, pass_bucket) = (Bucket::KeyId(id), Bucket::Address(address), Bucket::Pass(id));
        let clean = self.local.is_full_at(&address_bucket, now);
        self.local.peek_at(&address_bucket, self.quota, now)?;
        match self.local.peek_at(&key_bucket, self.quota, now) {
            Ok(()) => {
                self.local.check_at(key_bucket, self.quota, now);
                self.local.check_at(address_bucket, self.quota, now);
                Ok(Reservation::KeyId { id, address })
            }
            Err(wait) if !clean => Err(wait),
            Err(_) => {
                self.local.peek_at(&pass_bucket, PASS_QUOTA, now)?;
                self.local.check_at(pass_bucket, PASS_QUOTA, now);
                self.local.check_at(address_bucket, self.quota, now);
                Ok(Reservation::Pass { id, address })
            }
        }
    }

    /// Gives back a reservation: the secret was right.
    pub(crate) async fn release(&self, reservation: Reservation) {
        let (first, first_quota, address) = match reservation {
            Reservation::KeyId { id, address } => (Bucket::KeyId(id), self.quota, address),
            Reservation::Pass { id, address } => (Bucket::Pass(id), PASS_QUOTA, address),
        };
        let address = Bucket::Address(address);
        if let Some(redis) = &self.redis {
            let mut invocation = redis.invocation();
            invocation
                .key(Self::redis_key(redis, &first))
                .key(Self::redis_key(redis, &address))
                .arg("refund")
                .arg("")
                .arg(first_quota.requests)
                .arg(first_quota.window_micros())
                .arg(self.quota.requests)
                .arg(self.quota.window_micros());
            if redis.run(invocation).await.is_ok() {
                return;
            }
        }
        let now = self.local.now();
        self.local.refund_at(&first, first_quota, now);
        self.local.refund_at(&address, self.quota, now);
    }

    /// Forgets in-process buckets that are full again.
    pub fn sweep(&self) -> usize {
        self.local.sweep()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

    use super::*;

    fn quota(requests: u32) -> Quota {
        Quota { requests, window: Duration::from_secs(60) }
    }

    fn ip(s: &str) -> ClientAddress {
        ClientAddress::from(Some(s.parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0]))))
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(ip("2001:db8:1:2:aaaa::1"), ip("2001:db8:1:2:bbbb::2"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("::ffff:192.0.2.7"), ip("192.0.2.7"));
        assert_eq!(ip("2001:db8:1:2:aaaa::1").to_string(), "2001:db8:1:2::/64");
    }

    #[tokio::test]
    async fn failures_are_limited_per_key_id_with_a_pass_for_clean_addresses() {
        let guard = FloodGuard::new(quota(3), None);
        let id = Uuid::new_v4();
        let attacker = ip("192.0.2.1");
        for _ in 0..3 {
            assert!(guard.reserve(id, attacker).await.is_ok());
        }
        let wait = guard.reserve(id, attacker).await.unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        // Another address that failed before gets no pass.
        let other = ip("192.0.2.2");
        guard.record_failure(other).await;
        assert!(guard.reserve(id, other).await.is_err());
        // A clean address gets one pass per interval; the right secret
        // gives it back (with the address's reserved failure).
        let holder = ip("198.51.100.9");
        let pass = guard.reserve(id, holder).await.unwrap();
        assert_eq!(pass, Reservation::Pass { id, address: holder });
        guard.release(pass).await;
        assert_eq!(guard.check_address(holder).await, Ok(()), "the holder's address has no failures");
        let pass = guard.reserve(id, holder).await.unwrap();
        assert_eq!(pass, Reservation::Pass { id, address: holder }, "the pass was given back");
        // A wrong secret keeps the pass spent: the next clean address waits.
        let wait = guard.reserve(id, ip("198.51.100.10")).await.unwrap_err();
        assert!((1..=5).contains(&wait), "at most one pass interval: {wait}");
    }

    #[tokio::test]
    async fn an_address_over_its_limit_is_refused_before_any_lookup() {
        let guard = FloodGuard::new(quota(2), None);
        let a = ip("203.0.113.5");
        assert_eq!(guard.check_address(a).await, Ok(()));
        guard.record_failure(a).await;
        guard.record_failure(a).await;
        assert!(guard.check_address(a).await.is_err());
        assert_eq!(guard.check_address(ip("203.0.113.6")).await, Ok(()));
    }
}
