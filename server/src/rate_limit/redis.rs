//! Shared rate-limit state in Redis: one atomic script call per request.
//!
//! # Client
//!
//! redis-rs (the `redis` crate, the maintained Rust client) with its
//! `ConnectionManager`: one multiplexed connection per process that
//! pipelines concurrent requests' commands on one socket (no pool to size,
//! no connection per request) and reconnects by itself when the connection
//! drops. `redis::Script` sends `EVALSHA` and, on `NOSCRIPT` (a restarted or
//! flushed Redis), loads the script and retries, so the check-and-update is
//! one round trip in the steady state. Default features are off: no TLS,
//! no cluster, only the Tokio runtime.
//!
//! # Keys
//!
//! `<prefix>rl:<key id>` holds one API key's GCRA cell (see `gcra.lua`);
//! the flood guard ([`crate::auth`]) keeps `<prefix>af:id:<key id>`,
//! `<prefix>af:ip:<address>` and `<prefix>af:pass:<key id>`. Every key
//! expires when its bucket is full again, so idle keys cost no memory.
//!
//! # When Redis is slow or down
//!
//! Every call is bounded by the configured wait (default 20 ms). A call
//! that errs or runs out of time opens a circuit: for
//! [`RETRY_INTERVAL`] no request tries Redis and the fallback answers at
//! once (so a dead Redis costs nothing per request and is not hammered);
//! then one request (or the background probe, every
//! [`RETRY_INTERVAL`]) tries again, and the first answer closes the circuit.
//! Meanwhile the connection manager reconnects in the background, so the
//! shared limits resume within about two retry intervals of Redis returning.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script, ScriptInvocation};
use uuid::Uuid;

use super::gcra;
use super::{Quota, Verdict};
use crate::metrics::Metrics;

/// After a failed call, how long requests use the fallback before one
/// tries Redis again.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(250);

/// How long one (re)connection attempt may take; requests never wait for
/// it longer than the per-call wait.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Redis's answer to a script call: an array of integers.
pub(crate) type Reply = Vec<i64>;

/// Why Redis gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum RedisFailure {
    /// A recent call failed; Redis is not tried until the retry time.
    #[error("Redis failed recently; not retried yet")]
    Skipped,
    /// No answer within the configured wait.
    #[error("no answer from Redis within {0:?}")]
    Timeout(Duration),
    /// Redis (or the connection to it) returned an error.
    #[error("Redis error: {0}")]
    Error(#[from] RedisError),
    /// The script answered with something else than it should.
    #[error("unexpected answer from the Redis script")]
    Reply,
}

/// The rate-limit backend's state, as `/ready`, `/metrics` and the status
/// endpoint report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackendState {
    /// Limits are shared through Redis, which answers.
    Redis,
    /// Limits are kept in this process (no Redis configured).
    Local,
    /// Redis is configured but failing; the fallback policy decides.
    Error,
}

impl BackendState {
    /// The label value in `warden_rate_limit_backend{state}`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::Local => "local",
            Self::Error => "error",
        }
    }
}

/// A connection to the shared Redis, with the script and the circuit.
pub struct RedisBackend {
    manager: ConnectionManager,
    script: Script,
    prefix: String,
    timeout: Duration,
    start: Instant,
    /// Milliseconds since `start` before which no call tries Redis after a
    /// failure; 0 while Redis answers.
    retry_at: AtomicU64,
    failures: AtomicU64,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: it is not shown.
        f.debug_struct("RedisBackend").field("prefix", &self.prefix).field("timeout", &self.timeout).finish()
    }
}

impl RedisBackend {
    /// A backend for the Redis at `url` (`redis://[user:password@]host[:port][/db]`),
    /// keys under `prefix`, each call bounded by `timeout`. The connection
    /// is made lazily, so a Redis that is down at start-up delays nothing:
    /// requests use the fallback until it answers. Must be called inside
    /// the Tokio runtime (it starts the background probe).
    ///
    /// # Errors
    /// The URL is not a Redis URL.
    pub fn connect(
        url: &str,
        prefix: &str,
        timeout: Duration,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Arc<Self>, RedisError> {
        let client = redis::Client::open(url)?;
        // One quick reconnection attempt at a time: the circuit, not the
        // manager's backoff, decides how often Redis is tried.
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(200))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CONNECT_TIMEOUT));
        let manager = ConnectionManager::new_lazy_with_config(client, config)?;
        let backend = Arc::new(Self {
            manager,
            script: Script::new(include_str!("gcra.lua")),
            prefix: prefix.to_owned(),
            timeout,
            start: Instant::now(),
            retry_at: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            metrics,
        });
        backend.publish_state();
        tokio::spawn(probe(Arc::downgrade(&backend)));
        Ok(backend)
    }

    /// The Redis key of `kind` (`rl`, `af:id`, …) for `id`.
    pub(crate) fn key(&self, kind: &str, id: impl std::fmt::Display) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }

    /// The state: `redis` while it answers, `error` after a failure until
    /// the next answer.
    pub fn state(&self) -> BackendState {
        if self.retry_at.load(Ordering::Acquire) == 0 { BackendState::Redis } else { BackendState::Error }
    }

    /// Calls that failed or timed out since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX).max(1)
    }

    fn retry_delay_ms() -> u64 {
        u64::try_from(RETRY_INTERVAL.as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether this call may try Redis: always while the circuit is closed;
    /// once it is open, only the one caller that claims the retry time.
    fn may_try(&self) -> bool {
        let retry_at = self.retry_at.load(Ordering::Acquire);
        if retry_at == 0 {
            return true;
        }
        let now = self.now_ms();
        now >= retry_at
            && self
                .retry_at
                .compare_exchange(retry_at, now + Self::retry_delay_ms(), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    fn succeeded(&self, took: Duration) {
        if let Some(m) = &self.metrics {
            m.redis_latency(took.as_secs_f64());
        }
        if self.retry_at.swap(0, Ordering::AcqRel) != 0 {
            tracing::info!("Redis answers again; rate limits are shared again");
            self.publish_state();
        }
    }

    fn failed(&self, failure: &RedisFailure) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = &self.metrics {
            m.redis_error(match failure {
                RedisFailure::Timeout(_) => "timeout",
                _ => "error",
            });
        }
        let was = self.retry_at.swap(self.now_ms() + Self::retry_delay_ms(), Ordering::AcqRel);
        if was == 0 {
            // Once per outage, not once per request.
            tracing::warn!(error = %failure, "Redis is not answering; the rate-limit fallback applies until it does");
            self.publish_state();
        }
    }

    fn publish_state(&self) {
        if let Some(m) = &self.metrics {
            m.rate_limit_backend(self.state().as_str());
        }
    }

    /// Runs one Redis call within the wait, through the circuit.
    async fn guarded<T>(&self, call: impl Future<Output = Result<T, RedisError>>) -> Result<T, RedisFailure> {
        if !self.may_try() {
            return Err(RedisFailure::Skipped);
        }
        let started = Instant::now();
        let failure = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => {
                self.succeeded(started.elapsed());
                return Ok(value);
            }
            Ok(Err(e)) => RedisFailure::Error(e),
            Err(_) => RedisFailure::Timeout(self.timeout),
        };
        self.failed(&failure);
        Err(failure)
    }

    /// Runs the script with `invocation`'s keys and arguments.
    pub(crate) async fn run(&self, invocation: ScriptInvocation<'_>) -> Result<Reply, RedisFailure> {
        let mut conn = self.manager.clone();
        self.guarded(async move { invocation.invoke_async::<Reply>(&mut conn).await }).await
    }

    /// A script invocation (the caller adds keys and arguments).
    pub(crate) fn invocation(&self) -> ScriptInvocation<'_> {
        self.script.prepare_invoke()
    }

    /// `PING`, through the circuit: whether Redis answers now.
    pub async fn ping(&self) -> bool {
        let mut conn = self.manager.clone();
        self.guarded(async move { redis::cmd("PING").query_async::<String>(&mut conn).await }).await.is_ok()
    }

    /// Counts one request for `key` against `quota`, in Redis. `now` (µs)
    /// replaces Redis's clock (tests drive two implementations alike).
    pub(crate) async fn limit(&self, key: Uuid, quota: Quota, now: Option<u64>) -> Result<Verdict, RedisFailure> {
        let mut invocation = self.invocation();
        invocation
            .key(self.key("rl", key.simple()))
            .arg("limit")
            .arg(now.map(|n| n.to_string()).unwrap_or_default())
            .arg(quota.requests)
            .arg(quota.window_micros());
        let reply = self.run(invocation).await?;
        let (allowed, used) = match reply.as_slice() {
            [allowed, used] => (*allowed == 1, u64::try_from(*used).map_err(|_| RedisFailure::Reply)?),
            _ => return Err(RedisFailure::Reply),
        };
        Ok(gcra::verdict(quota, allowed, used))
    }
}

/// While the circuit is open, tries Redis every [`RETRY_INTERVAL`] even
/// when no request comes, so `/ready` and the metrics show its return.
/// Ends when the backend is dropped.
async fn probe(backend: Weak<RedisBackend>) {
    let mut tick = tokio::time::interval(RETRY_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(backend) = backend.upgrade() else { return };
        if backend.state() == BackendState::Error {
            backend.ping().await;
        }
    }
}
