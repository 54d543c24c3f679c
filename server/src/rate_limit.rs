//! Per-key rate limiting: the generic cell rate algorithm (GCRA), with a
//! quota per key (the customer's, or the default), kept in this process
//! ([`local`]) or shared by every instance through Redis ([`redis`]).
//!
//! The algorithm itself is [`gcra`]: a pure step from a key's cell, the
//! quota and the time to a decision and the new cell. The in-process
//! limiter runs it over a `DashMap`; the Redis script (`gcra.lua`) runs the
//! same steps atomically inside Redis, on Redis's clock, so any number of
//! instances share one budget per key and answer exactly as one instance
//! would.
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
//! header draft's reset never exceeds the policy's window). A key whose
//! bucket is full again holds no information at all: it answers as a key
//! never seen, whatever quota comes next (so evicting it, or its Redis key
//! expiring, never changes an answer).
//!
//! # When Redis fails
//!
//! With Redis configured, a call that fails or takes longer than the
//! configured wait is answered by [`OnRedisError`]: the in-process limiter
//! (default), allow, or deny. Never an error to the client.

pub(crate) mod gcra;
pub mod local;
pub mod redis;

#[cfg(test)]
mod agreement;
#[cfg(test)]
mod circuit;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use self::local::LocalLimiter;
pub use self::redis::{BackendState, RedisBackend, RedisFailure};

/// `requests` per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests allowed per window (at least 1).
    pub requests: u32,
    /// The window.
    pub window: Duration,
}

impl Quota {
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

/// What decides while Redis is slow or unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnRedisError {
    /// This instance's own limiter (each instance then gives a key its
    /// full quota).
    #[default]
    Local,
    /// Every request is allowed.
    Allow,
    /// Every request is refused with 429 (`Retry-After: 1`).
    Deny,
}

/// Per-key limiter: in-process, or shared through Redis with a fallback.
#[derive(Debug, Default)]
pub struct RateLimiter {
    local: LocalLimiter,
    shared: Option<(Arc<RedisBackend>, OnRedisError)>,
}

impl RateLimiter {
    /// A limiter kept in this process only.
    pub fn new() -> Self {
        Self::default()
    }

    /// A limiter shared through `redis`; `on_error` answers while Redis
    /// doesn't.
    pub fn shared(redis: Arc<RedisBackend>, on_error: OnRedisError) -> Self {
        Self { local: LocalLimiter::new(), shared: Some((redis, on_error)) }
    }

    /// Counts one request for `key` against `quota`. With Redis, waits at
    /// most the configured time for it.
    pub async fn check(&self, key: Uuid, quota: Quota) -> Verdict {
        let Some((redis, on_error)) = &self.shared else {
            return self.local.check(key, quota);
        };
        match redis.limit(key, quota, None).await {
            Ok(verdict) => verdict,
            Err(_) => match on_error {
                OnRedisError::Local => self.local.check(key, quota),
                OnRedisError::Allow => {
                    Verdict { allowed: true, quota, remaining: quota.requests, reset_secs: 0, retry_after_secs: 0 }
                }
                OnRedisError::Deny => Verdict {
                    allowed: false,
                    quota,
                    remaining: 0,
                    reset_secs: quota.window_secs(),
                    retry_after_secs: 1,
                },
            },
        }
    }

    /// Forgets in-process keys whose bucket is full again. Returns how many
    /// remain.
    pub fn sweep(&self) -> usize {
        self.local.sweep()
    }

    /// How many keys hold state in this process.
    pub fn tracked_keys(&self) -> usize {
        self.local.tracked_keys()
    }

    /// The shared backend, if limits are shared.
    pub fn redis(&self) -> Option<&Arc<RedisBackend>> {
        self.shared.as_ref().map(|(r, _)| r)
    }

    /// Where limits are kept and whether that works now.
    pub fn status(&self) -> LimiterStatus {
        match &self.shared {
            None => {
                LimiterStatus { backend: "local", state: BackendState::Local, on_redis_error: None, redis_failures: 0 }
            }
            Some((redis, on_error)) => LimiterStatus {
                backend: "redis",
                state: redis.state(),
                on_redis_error: Some(*on_error),
                redis_failures: redis.failures(),
            },
        }
    }
}

/// Where rate limits (and failed-verification counts) are kept, for
/// `/ready` and the status endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LimiterStatus {
    /// `redis` (shared by every instance on that Redis) or `local` (this
    /// process only).
    pub backend: &'static str,
    /// `redis` (answering), `local` (no Redis configured) or `error`
    /// (Redis failing: `on_redis_error` decides meanwhile).
    pub state: BackendState,
    /// What decides while Redis fails (only with Redis).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_redis_error: Option<OnRedisError>,
    /// Redis calls that failed or timed out since start.
    pub redis_failures: u64,
}

/// The rate-limit and flood-protection state for the status endpoint:
/// the backend and failed authentications by reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LimitsStatus {
    /// The rate-limit backend and its state.
    #[serde(flatten)]
    pub limiter: LimiterStatus,
    /// Failed authentications since start, by reason (`malformed`,
    /// `unknown_key`, `wrong_secret`, `inactive`, `throttled`).
    pub auth_failures: std::collections::BTreeMap<&'static str, u64>,
}

impl LimitsStatus {
    /// The status of `limiter`, with the failure counts from `metrics`.
    pub fn of(limiter: &RateLimiter, metrics: &crate::metrics::Metrics) -> Self {
        Self { limiter: limiter.status(), auth_failures: metrics.auth_failures() }
    }
}
