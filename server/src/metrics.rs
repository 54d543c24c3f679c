//! Prometheus metrics, one registry per running app (so tests don't share).

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: RouteLabel,
    status: u16,
}

/// A route template as a label value. prometheus-client encodes `Arc<T>`
/// only for sized `T`, so `Arc<str>` gets this wrapper.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct RouteLabel(Arc<str>);

impl prometheus_client::encoding::EncodeLabelValue for RouteLabel {
    fn encode(&self, encoder: &mut prometheus_client::encoding::LabelValueEncoder<'_>) -> std::fmt::Result {
        prometheus_client::encoding::EncodeLabelValue::encode(&&*self.0, encoder)
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    allowed: &'static str,
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabels {
    version: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    rule: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChangeLabels {
    change: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    endpoint: String,
    result: &'static str,
}

/// The states of `warden_rate_limit_backend`.
const BACKEND_STATES: [&str; 3] = ["redis", "local", "error"];

/// Why a rate-limit check was answered by the fallback instead of Redis
/// (`warden_redis_fallbacks_total{reason}`).
pub const REDIS_FALLBACK_REASONS: [&str; 4] = ["circuit_open", "wait", "queue_full", "call_failed"];

/// The reasons of `warden_auth_failures_total`: a key not shaped like one,
/// an unknown key id, a wrong secret, a deactivated key, and a verification
/// refused (429) because of earlier failures.
pub const AUTH_FAILURE_REASONS: [&str; 5] = ["malformed", "unknown_key", "wrong_secret", "inactive", "throttled"];

/// Every metric Warden exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    http: Family<HttpLabels, Counter>,
    decisions: Family<DecisionLabels, Counter>,
    latency: Histogram,
    rate_limited: Counter,
    audit_depth: Gauge,
    audit_written: Counter,
    audit_failures: Counter,
    audit_dropped: Counter,
    policy: Family<PolicyLabels, Gauge>,
    reloads: Family<ReloadLabels, Counter>,
    /// The label of requests that matched no route.
    unmatched: Arc<str>,
    connections: Gauge,
    watch_up: Gauge,
    watch_losses: Counter,
    audit_spilled: Counter,
    backend: Family<StateLabels, Gauge>,
    redis_latency: Histogram,
    redis_errors: Family<KindLabels, Counter>,
    redis_fallbacks: Family<ReasonLabels, Counter>,
    auth_failures: Family<ReasonLabels, Counter>,
    webhook_deliveries: Family<DeliveryLabels, Counter>,
    webhook_queue: Gauge,
    webhook_oldest: Gauge<f64, std::sync::atomic::AtomicU64>,
    shadow_matches: Family<RuleLabels, Counter>,
    shadow_flips: Family<DirectionLabels, Counter>,
    shadow_set: Family<ChangeLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut r = Registry::default();
        let http = Family::<HttpLabels, Counter>::default();
        r.register("warden_http_requests", "HTTP requests by route and status", http.clone());
        let decisions = Family::<DecisionLabels, Counter>::default();
        r.register("warden_decisions", "Decisions by outcome and reason", decisions.clone());
        // 1 µs to ~0.5 s.
        let latency = Histogram::new(exponential_buckets(1e-6, 2.0, 20));
        r.register("warden_decision_latency_seconds", "Time to decide one /v1/check request", latency.clone());
        let rate_limited = Counter::default();
        r.register("warden_rate_limited", "Requests refused by the rate limiter", rate_limited.clone());
        let audit_depth = Gauge::default();
        r.register("warden_audit_queue_depth", "Audit rows waiting to be written", audit_depth.clone());
        let audit_written = Counter::default();
        r.register("warden_audit_rows_written", "Audit rows written to the database", audit_written.clone());
        let audit_failures = Counter::default();
        r.register(
            "warden_audit_write_failures",
            "Failed audit batch writes (each is retried)",
            audit_failures.clone(),
        );
        let audit_dropped = Counter::default();
        r.register(
            "warden_audit_rows_dropped",
            "Audit rows the database refused even without metadata",
            audit_dropped.clone(),
        );
        let policy = Family::<PolicyLabels, Gauge>::default();
        r.register("warden_policy", "The policy version being served (value 1)", policy.clone());
        let reloads = Family::<ReloadLabels, Counter>::default();
        r.register("warden_policy_reload", "Policy file reloads by result (ok, error)", reloads.clone());
        let connections = Gauge::default();
        r.register("warden_http_connections", "Open client connections", connections.clone());
        let watch_up = Gauge::default();
        r.register(
            "warden_policy_watch_up",
            "1 while the policy directory is watched, 0 while the watch is lost",
            watch_up.clone(),
        );
        let watch_losses = Counter::default();
        r.register("warden_policy_watch_losses", "Times the policy directory watch was lost", watch_losses.clone());
        let audit_spilled = Counter::default();
        r.register(
            "warden_audit_rows_spilled",
            "Audit rows written to the local spill while the database was unreachable",
            audit_spilled.clone(),
        );
        let backend = Family::<StateLabels, Gauge>::default();
        r.register(
            "warden_rate_limit_backend",
            "Where rate limits are decided: 1 for the current state (redis: shared through Redis; local: this process only; error: Redis failing, the fallback applies)",
            backend.clone(),
        );
        for state in BACKEND_STATES {
            backend.get_or_create(&StateLabels { state }).set(i64::from(state == "local"));
        }
        // 50 µs to ~0.4 s.
        let redis_latency = Histogram::new(exponential_buckets(50e-6, 2.0, 14));
        r.register("warden_redis_latency_seconds", "Time of each answered Redis call", redis_latency.clone());
        let redis_errors = Family::<KindLabels, Counter>::default();
        r.register(
            "warden_redis_errors",
            "Redis calls that failed (error) or outlasted the wait (timeout)",
            redis_errors.clone(),
        );
        let redis_fallbacks = Family::<ReasonLabels, Counter>::default();
        r.register(
            "warden_redis_fallbacks",
            "Rate-limit checks answered by the fallback instead of Redis: circuit_open (a recent call failed), wait (no answer within the wait, queue included), queue_full, call_failed",
            redis_fallbacks.clone(),
        );
        for reason in REDIS_FALLBACK_REASONS {
            let _ = redis_fallbacks.get_or_create(&ReasonLabels { reason });
        }
        let auth_failures = Family::<ReasonLabels, Counter>::default();
        r.register("warden_auth_failures", "Failed API key authentications by reason", auth_failures.clone());
        for reason in AUTH_FAILURE_REASONS {
            let _ = auth_failures.get_or_create(&ReasonLabels { reason });
        }
        let webhook_deliveries = Family::<DeliveryLabels, Counter>::default();
        r.register(
            "warden_webhook_deliveries",
            "Webhook delivery attempts by endpoint id and result (delivered, failed)",
            webhook_deliveries.clone(),
        );
        let webhook_queue = Gauge::default();
        r.register(
            "warden_webhook_queue_depth",
            "Webhook events not yet acknowledged by their endpoint (active endpoints)",
            webhook_queue.clone(),
        );
        let webhook_oldest = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        r.register(
            "warden_webhook_oldest_undelivered_seconds",
            "Age of the oldest webhook event not yet acknowledged (0 when none)",
            webhook_oldest.clone(),
        );
        let shadow_matches = Family::<RuleLabels, Counter>::default();
        r.register(
            "warden_shadow_matches",
            "Decisions on which a rule in shadow mode held, by rule",
            shadow_matches.clone(),
        );
        let shadow_flips = Family::<DirectionLabels, Counter>::default();
        r.register(
            "warden_shadow_flips",
            "Decisions whose allowed would change were the shadow rules enforced (allow_to_block, block_to_allow)",
            shadow_flips.clone(),
        );
        for direction in [warden_engine::Flip::AllowToBlock, warden_engine::Flip::BlockToAllow] {
            let _ = shadow_flips.get_or_create(&DirectionLabels { direction: direction.as_str() });
        }
        let shadow_set = Family::<ChangeLabels, Counter>::default();
        r.register(
            "warden_shadow_set_differences",
            "Decisions the shadow policy set decided differently, by change (allow_to_block, block_to_allow, score, reason)",
            shadow_set.clone(),
        );
        for change in ["allow_to_block", "block_to_allow", "score", "reason"] {
            let _ = shadow_set.get_or_create(&ChangeLabels { change });
        }
        Self {
            shadow_matches,
            shadow_flips,
            shadow_set,
            registry: Mutex::new(r),
            http,
            decisions,
            latency,
            rate_limited,
            audit_depth,
            audit_written,
            audit_failures,
            audit_dropped,
            policy,
            reloads,
            unmatched: Arc::from("unmatched"),
            connections,
            watch_up,
            watch_losses,
            audit_spilled,
            backend,
            redis_latency,
            redis_errors,
            redis_fallbacks,
            auth_failures,
            webhook_deliveries,
            webhook_queue,
            webhook_oldest,
        }
    }

    /// Counts a webhook delivery attempt to `endpoint` (its id):
    /// `delivered` or `failed`.
    pub fn webhook_delivery(&self, endpoint: &str, result: &'static str) {
        self.webhook_deliveries.get_or_create(&DeliveryLabels { endpoint: endpoint.to_owned(), result }).inc();
    }

    /// Sets the webhook queue's depth (events) and its oldest event's age
    /// in seconds.
    pub fn webhook_backlog(&self, events: i64, oldest_seconds: f64) {
        self.webhook_queue.set(events);
        self.webhook_oldest.set(oldest_seconds);
    }

    /// Sets the rate-limit backend's state (`redis`, `local` or `error`).
    pub fn rate_limit_backend(&self, state: &'static str) {
        for s in BACKEND_STATES {
            self.backend.get_or_create(&StateLabels { state: s }).set(i64::from(s == state));
        }
    }

    /// Records the time of one answered Redis call.
    pub fn redis_latency(&self, seconds: f64) {
        self.redis_latency.observe(seconds);
    }

    /// Counts a failed Redis call: `error` or `timeout`.
    pub fn redis_error(&self, kind: &'static str) {
        self.redis_errors.get_or_create(&KindLabels { kind }).inc();
    }

    /// Counts a rate-limit check answered by the fallback; `reason` is one
    /// of [`REDIS_FALLBACK_REASONS`].
    pub fn redis_fallback(&self, reason: &'static str) {
        self.redis_fallbacks.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// Counts a failed authentication; `reason` is one of
    /// [`AUTH_FAILURE_REASONS`].
    pub fn auth_failure(&self, reason: &'static str) {
        self.auth_failures.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// Failed authentications since start, by reason.
    pub fn auth_failures(&self) -> std::collections::BTreeMap<&'static str, u64> {
        AUTH_FAILURE_REASONS
            .iter()
            .map(|&reason| (reason, self.auth_failures.get_or_create(&ReasonLabels { reason }).get()))
            .collect()
    }

    /// Adds `delta` to the open connection count.
    pub fn connections(&self, delta: i64) {
        self.connections.inc_by(delta);
    }

    /// Records whether the policy directory is watched; a change from up
    /// to down counts one watch loss.
    pub fn policy_watch(&self, up: bool) {
        let was = self.watch_up.set(i64::from(up));
        if was == 1 && !up {
            self.watch_losses.inc();
        }
    }

    /// Counts audit rows written to the local spill.
    pub fn audit_spilled(&self, rows: u64) {
        self.audit_spilled.inc_by(rows);
    }

    /// Counts one HTTP response. `route` is a route template, one of the
    /// router's own (a bounded set), shared rather than copied per request.
    pub fn http_response(&self, route: Arc<str>, status: u16) {
        self.http.get_or_create(&HttpLabels { route: RouteLabel(route), status }).inc();
    }

    /// Counts one HTTP response to a request that matched no route, under
    /// the route label `unmatched`.
    pub fn http_unmatched(&self, status: u16) {
        self.http_response(self.unmatched.clone(), status);
    }

    /// Counts one decision (or rejection, with its code as the reason).
    pub fn decision(&self, allowed: bool, reason: &str, seconds: f64) {
        self.decisions
            .get_or_create(&DecisionLabels {
                allowed: if allowed { "true" } else { "false" },
                reason: reason.to_owned(),
            })
            .inc();
        self.latency.observe(seconds);
    }

    /// Counts the shadow rules that held in `d` and whether enforcing them
    /// would flip it.
    pub fn shadow(&self, d: &warden_engine::Decision<'_>) {
        for m in &d.shadow {
            self.shadow_matches.get_or_create(&RuleLabels { rule: m.rule.to_owned() }).inc();
        }
        if let Some(flip) = d.shadow_flip() {
            self.shadow_flips.get_or_create(&DirectionLabels { direction: flip.as_str() }).inc();
        }
    }

    /// Counts a decision the shadow policy set decided differently (`change`
    /// is `allow_to_block`, `block_to_allow`, `score` or `reason`).
    pub fn shadow_set_difference(&self, change: &'static str) {
        self.shadow_set.get_or_create(&ChangeLabels { change }).inc();
    }

    /// Counts a request refused by the rate limiter.
    pub fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// Counts written audit rows.
    pub fn audit_written(&self, rows: u64) {
        self.audit_written.inc_by(rows);
    }

    /// Counts audit rows dropped because the database refused them.
    pub fn audit_dropped(&self, rows: u64) {
        self.audit_dropped.inc_by(rows);
    }

    /// Counts a failed audit write.
    pub fn audit_failure(&self) {
        self.audit_failures.inc();
    }

    /// Counts a policy reload: `ok` or `error`.
    pub fn policy_reload(&self, result: &'static str) {
        self.reloads.get_or_create(&ReloadLabels { result }).inc();
    }

    /// Sets the policy version being served.
    pub fn set_policy_version(&self, version: &str) {
        self.policy.clear();
        self.policy.get_or_create(&PolicyLabels { version: version.to_owned() }).set(1);
    }

    /// The metrics in Prometheus text format, with the queue depth as of now.
    pub fn render(&self, audit_depth: usize) -> String {
        self.audit_depth.set(i64::try_from(audit_depth).unwrap_or(i64::MAX));
        let mut out = String::new();
        let registry = match self.registry.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}
