//! Shared rate-limit state in Redis: one atomic script call per request,
//! or fewer: concurrent requests' checks share one call.
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
//! # Coalescing
//!
//! A request's check does not send its own script call: it joins a queue
//! that one task per process drains. The task sends everything queued at
//! that moment (at most [`MAX_BATCH`] checks) as one `EVALSHA` whose keys
//! are the requests' keys in arrival order, waits for the answer, hands each
//! request its verdict and takes the next batch. The script steps through
//! the keys in order, atomically, so a batch answers exactly as the same
//! checks sent one by one in that order would (a key twice in a batch sees
//! its own first update). With one call in flight, batches grow with load
//! by themselves: an idle service sends batches of one (no added wait), a
//! busy one sends one call for tens of requests, which is what keeps Redis
//! and the system calls of a round trip from taking a share of the CPU per
//! request. The wait a request allows covers its time in the queue too.
//! Written here because it is specific to the script: redis-rs pipelines
//! commands on one connection, but each command is still a call for Redis
//! to run and a round of wake-ups for the client.
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
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::gcra;
use super::{Quota, Verdict};
use crate::metrics::Metrics;

/// After a failed call, how long requests use the fallback before one
/// tries Redis again.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(250);

/// Most checks one script call carries. At about 2 µs of script time per
/// key, a full batch holds Redis for well under a millisecond.
pub const MAX_BATCH: usize = 256;

/// Checks that may wait for a batch; past that, a check is answered by the
/// fallback at once (Redis is not keeping up).
const QUEUE_CAPACITY: usize = 16 * MAX_BATCH;

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
    /// More checks are waiting for Redis than the queue holds.
    #[error("more than {QUEUE_CAPACITY} rate-limit checks are waiting for Redis")]
    QueueFull,
    /// The call carrying this check (with others) failed.
    #[error("the batch this check was in failed: {0}")]
    Batch(Arc<RedisFailure>),
}

/// Whether a call may try Redis now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    /// Redis answers: every call tries it.
    Closed,
    /// A recent call failed; not before the retry time.
    Open,
    /// This call claimed the retry after a failure.
    Probe,
}

impl RedisFailure {
    /// The `reason` label of `warden_redis_fallbacks_total` for a
    /// rate-limit check this failure sent to the fallback.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::Skipped => "circuit_open",
            Self::Timeout(_) => "wait",
            Self::QueueFull => "queue_full",
            Self::Batch(inner) if matches!(**inner, Self::Skipped) => "circuit_open",
            Self::Error(_) | Self::Reply | Self::Batch(_) => "call_failed",
        }
    }
}

/// A check waiting in the queue for its batch.
struct Pending {
    /// The Redis key of the API key's cell.
    key: String,
    quota: Quota,
    /// The time (µs) replacing Redis's clock, in tests.
    now: Option<u64>,
    /// Admitted as the one try after a failure (the circuit was open):
    /// its call is sent even though the circuit is still open.
    probe: bool,
    /// Where the answer goes: (allowed, budget used in µs).
    reply: oneshot::Sender<Result<(bool, u64), Arc<RedisFailure>>>,
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
    /// Checks waiting for the batching task.
    queue: mpsc::Sender<Pending>,
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
        let (queue, waiting) = mpsc::channel(QUEUE_CAPACITY);
        let backend = Arc::new(Self {
            manager,
            script: Script::new(include_str!("gcra.lua")),
            prefix: prefix.to_owned(),
            timeout,
            start: Instant::now(),
            retry_at: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            metrics,
            queue,
        });
        backend.publish_state();
        tokio::spawn(probe(Arc::downgrade(&backend)));
        tokio::spawn(batcher(Arc::downgrade(&backend), waiting));
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
    fn admit(&self) -> Admission {
        let retry_at = self.retry_at.load(Ordering::Acquire);
        if retry_at == 0 {
            return Admission::Closed;
        }
        let now = self.now_ms();
        let claimed = now >= retry_at
            && self
                .retry_at
                .compare_exchange(retry_at, now + Self::retry_delay_ms(), Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        if claimed { Admission::Probe } else { Admission::Open }
    }

    /// Counts a rate-limit check answered by the fallback, by `failure`.
    fn fell_back(&self, failure: RedisFailure) -> RedisFailure {
        if let Some(m) = &self.metrics {
            m.redis_fallback(failure.reason());
        }
        failure
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
        if self.admit() == Admission::Open {
            return Err(RedisFailure::Skipped);
        }
        self.within_wait(call).await
    }

    /// Runs one Redis call within the wait, recording its outcome (the
    /// caller has passed the circuit).
    async fn within_wait<T>(&self, call: impl Future<Output = Result<T, RedisError>>) -> Result<T, RedisFailure> {
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

    /// Runs the script with `invocation`'s keys and arguments, through the
    /// circuit.
    pub(crate) async fn run(&self, invocation: ScriptInvocation<'_>) -> Result<Reply, RedisFailure> {
        if self.admit() == Admission::Open {
            return Err(RedisFailure::Skipped);
        }
        self.invoke(invocation).await
    }

    /// Runs the script within the wait, recording the outcome (the caller
    /// has passed the circuit).
    async fn invoke(&self, invocation: ScriptInvocation<'_>) -> Result<Reply, RedisFailure> {
        let mut conn = self.manager.clone();
        self.within_wait(async move { invocation.invoke_async::<Reply>(&mut conn).await }).await
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

    /// Counts one request for `key` against `quota`, in Redis, in the next
    /// batch. `now` (µs) replaces Redis's clock (tests drive two
    /// implementations alike). Waits at most the configured time, queue
    /// included. Only the calls' outcomes open and close the circuit: a
    /// check that runs out of time behind a slow but answering Redis is
    /// answered by the fallback, and counted
    /// (`warden_redis_fallbacks_total{reason}`), without declaring Redis
    /// down.
    pub(crate) async fn limit(&self, key: Uuid, quota: Quota, now: Option<u64>) -> Result<Verdict, RedisFailure> {
        let probe = match self.admit() {
            Admission::Open => return Err(self.fell_back(RedisFailure::Skipped)),
            Admission::Probe => true,
            Admission::Closed => false,
        };
        let (reply, answer) = oneshot::channel();
        let pending = Pending { key: self.key("rl", key.simple()), quota, now, probe, reply };
        if self.queue.try_send(pending).is_err() {
            return Err(self.fell_back(RedisFailure::QueueFull));
        }
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(Ok((allowed, used)))) => Ok(gcra::verdict(quota, allowed, used)),
            // The call itself was recorded once, for the whole batch.
            Ok(Ok(Err(failure))) => Err(self.fell_back(RedisFailure::Batch(failure))),
            // The batching task ended: only when the backend is dropped.
            Ok(Err(_)) => Err(self.fell_back(RedisFailure::Skipped)),
            Err(_) => Err(self.fell_back(RedisFailure::Timeout(self.timeout))),
        }
    }

    /// Sends `batch` (checks under one clock) as one script call and hands
    /// each check its answer. Checks whose caller stopped waiting are left
    /// out (a caller may still give up while its check is in the call, and
    /// then Redis counts a request the fallback answered). While the circuit
    /// is open, a batch is sent only if it carries the one retry; otherwise
    /// its checks are answered "skipped" at once, so the checks queued
    /// before a failure don't each wait out the timeout of a Redis that is
    /// down.
    async fn limit_batch(&self, mut batch: Vec<Pending>) {
        batch.retain(|p| !p.reply.is_closed());
        let Some(first) = batch.first() else { return };
        if self.state() == BackendState::Error && !batch.iter().any(|p| p.probe) {
            return fail_all(batch, RedisFailure::Skipped);
        }
        let mut invocation = self.invocation();
        invocation.arg("limit").arg(first.now.map(|n| n.to_string()).unwrap_or_default());
        for p in &batch {
            invocation.key(&p.key).arg(p.quota.requests).arg(p.quota.window_micros());
        }
        let reply = self.invoke(invocation).await;
        let answers = match reply {
            Ok(reply) if reply.len() == 2 * batch.len() => reply,
            Ok(_) => return fail_all(batch, RedisFailure::Reply),
            Err(failure) => return fail_all(batch, failure),
        };
        for (p, answer) in batch.into_iter().zip(answers.chunks_exact(2)) {
            let result = match *answer {
                [allowed, used] => {
                    u64::try_from(used).map(|used| (allowed == 1, used)).map_err(|_| Arc::new(RedisFailure::Reply))
                }
                _ => Err(Arc::new(RedisFailure::Reply)),
            };
            // A caller that stopped waiting meanwhile needs no answer.
            let _ = p.reply.send(result);
        }
    }
}

/// Answers every check of `batch` with `failure`.
fn fail_all(batch: Vec<Pending>, failure: RedisFailure) {
    let failure = Arc::new(failure);
    for p in batch {
        let _ = p.reply.send(Err(Arc::clone(&failure)));
    }
}

/// Drains the queue of checks: everything waiting, up to [`MAX_BATCH`],
/// goes out as one call, one call at a time (see the module docs). Checks
/// with different clocks (only tests give one) go in separate calls, in
/// order. Ends when the backend is dropped.
async fn batcher(backend: Weak<RedisBackend>, mut waiting: mpsc::Receiver<Pending>) {
    let mut taken = Vec::with_capacity(MAX_BATCH);
    while waiting.recv_many(&mut taken, MAX_BATCH).await > 0 {
        let Some(backend) = backend.upgrade() else { return };
        let mut checks = taken.drain(..).peekable();
        while let Some(first) = checks.next() {
            let now = first.now;
            let mut batch = vec![first];
            while let Some(next) = checks.next_if(|p| p.now == now) {
                batch.push(next);
            }
            backend.limit_batch(batch).await;
        }
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
