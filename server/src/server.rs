//! `warden serve`: assembling the service, its background tasks, and a
//! graceful shutdown that writes every queued audit row before exiting.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::watch;
use warden_engine::Policy;

use crate::app::{AppState, Services, router};
use crate::audit::{self, AuditWriter, OnFull};
use crate::auth::{Authenticator, FloodGuard};
use crate::config::ServeConfig;
use crate::live::{Live, Snapshot};
use crate::metrics::Metrics;
use crate::rate_limit::{Quota, RateLimiter, RedisBackend};
use crate::store::Store;

/// Knobs for building the state (from [`ServeConfig`], or set by tests).
#[derive(Debug, Clone)]
pub struct Options {
    /// Default quota per key.
    pub default_quota: Quota,
    /// Audit queue capacity.
    pub audit_queue_capacity: usize,
    /// Full-queue behaviour.
    pub audit_on_full: OnFull,
    /// Key cache capacity.
    pub key_cache_capacity: usize,
    /// Largest body.
    pub max_body_bytes: usize,
    /// The policy directory, for reloads.
    pub policy_dir: Option<std::path::PathBuf>,
    /// The shadow policy set's directory (absent: none). Its set is loaded
    /// (compiled, its test blocks run) when the state is built, and
    /// reloaded like the enforced set.
    pub shadow_policy_dir: Option<std::path::PathBuf>,
    /// bcrypt cost for keys made through the admin API.
    pub bcrypt_cost: u32,
    /// Spill unwritten audit rows at shutdown (absent: wait for the database).
    pub spill: Option<crate::audit::Spill>,
    /// Time a client has to send a request's head (also how long an idle
    /// kept-alive connection stays open). Default 10 s.
    pub header_read_timeout: Duration,
    /// Time from a request's head to its answer, the body included; past
    /// it the client gets 408. Default 30 s.
    pub request_timeout: Duration,
    /// Client connections open at once; more wait in the kernel's accept
    /// backlog. Default 1,024.
    pub max_connections: usize,
    /// On SIGTERM/SIGINT, how long in-flight requests get before their
    /// connections are closed and the audit queue is drained. Default 10 s.
    pub shutdown_grace: Duration,
    /// How long a read in which a policy file of the serving set is missing,
    /// empty or shorter must stay unchanged before it is applied (until
    /// then it is taken for a write or copy in progress). Default 1 s.
    pub policy_settle: Duration,
    /// When a decision is acknowledged: `ack` once its audit row is queued,
    /// `durable` once the row is committed in the database or fsynced in
    /// the local spill. Default `ack`.
    pub audit_durability: crate::audit::Durability,
    /// With `audit_on_full = block`, the longest a request waits for room
    /// in the audit queue before it gets 503. Default 1 s.
    pub audit_block_timeout: Duration,
    /// Redis shared by the instances for rate limits and failed-verification
    /// counts (absent: kept in this process). Default absent.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key. Default `warden:`.
    pub redis_key_prefix: String,
    /// Longest wait for one Redis call. Default 20 ms.
    pub redis_timeout: Duration,
    /// What answers while Redis fails. Default `local`.
    pub rate_limit_on_redis_error: crate::rate_limit::OnRedisError,
    /// Failed key verifications allowed per key id and per client address.
    /// Default 10 a minute.
    pub auth_failure_quota: Quota,
    /// The header a proxy in front sets to the client's address (absent:
    /// the peer address). Default absent.
    pub client_address_header: Option<String>,
    /// How webhook deliveries behave (private addresses, timeout, when an
    /// endpoint is disabled, retries). Default [`crate::webhooks::Settings`].
    pub webhooks: crate::webhooks::Settings,
    /// The web dashboard: on or off, its cookie and sessions. Default
    /// [`crate::ui::Settings`].
    pub dashboard: crate::ui::Settings,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            default_quota: Quota { requests: 100, window: Duration::from_secs(60) },
            audit_queue_capacity: 10_000,
            audit_on_full: OnFull::Block,
            key_cache_capacity: 10_000,
            max_body_bytes: 64 * 1024,
            policy_dir: None,
            shadow_policy_dir: None,
            bcrypt_cost: bcrypt::DEFAULT_COST,
            spill: None,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(10),
            policy_settle: crate::reload::DEFAULT_SETTLE,
            audit_durability: crate::audit::Durability::Ack,
            audit_block_timeout: crate::audit::DEFAULT_BLOCK_TIMEOUT,
            redis_url: None,
            redis_key_prefix: "warden:".to_owned(),
            redis_timeout: Duration::from_millis(20),
            rate_limit_on_redis_error: crate::rate_limit::OnRedisError::Local,
            auth_failure_quota: crate::auth::DEFAULT_FAILURE_QUOTA,
            client_address_header: None,
            webhooks: crate::webhooks::Settings::default(),
            dashboard: crate::ui::Settings::default(),
        }
    }
}

impl Options {
    /// The listener's limits.
    pub fn limits(&self) -> crate::listener::Limits {
        crate::listener::Limits {
            header_read_timeout: self.header_read_timeout,
            request_timeout: self.request_timeout,
            max_connections: self.max_connections,
            shutdown_grace: self.shutdown_grace,
        }
    }
}

impl From<&ServeConfig> for Options {
    fn from(c: &ServeConfig) -> Self {
        Self {
            default_quota: Quota { requests: c.rate_limit_requests, window: c.rate_limit_window },
            audit_queue_capacity: c.audit_queue_capacity,
            audit_on_full: c.audit_on_full,
            key_cache_capacity: c.key_cache_capacity,
            max_body_bytes: c.max_body_bytes,
            policy_dir: Some(c.policies.clone()),
            shadow_policy_dir: c.shadow_policies.clone(),
            bcrypt_cost: c.bcrypt_cost,
            spill: Some(crate::audit::Spill { dir: c.audit_spill_dir.clone(), drain_timeout: c.drain_timeout }),
            header_read_timeout: c.header_read_timeout,
            request_timeout: c.request_timeout,
            max_connections: c.max_connections,
            shutdown_grace: c.shutdown_grace,
            policy_settle: c.policy_settle,
            audit_durability: c.audit_durability,
            audit_block_timeout: c.audit_block_timeout,
            redis_url: c.redis_url.clone(),
            redis_key_prefix: c.redis_key_prefix.clone(),
            redis_timeout: c.redis_timeout,
            rate_limit_on_redis_error: c.rate_limit_on_redis_error,
            auth_failure_quota: Quota { requests: c.auth_failure_limit, window: c.auth_failure_window },
            client_address_header: c.client_address_header.clone(),
            webhooks: crate::webhooks::Settings {
                allow_private: c.webhook_allow_private,
                timeout: c.webhook_timeout,
                disable_after: c.webhook_disable_after,
                ..crate::webhooks::Settings::default()
            },
            dashboard: crate::ui::Settings {
                enabled: c.dashboard,
                cookie_secure: c.cookie_secure,
                session_idle_timeout: c.session_idle_timeout,
                session_lifetime: c.session_lifetime,
                sign_in_quota: Quota { requests: c.sign_in_limit, window: Duration::from_secs(60) },
                ..crate::ui::Settings::default()
            },
        }
    }
}

/// Builds the shared state over a migrated store and a compiled policy,
/// loading the override tables once. Returns the audit writer to run.
pub async fn build_state(store: Store, policy: Policy, options: &Options) -> anyhow::Result<(AppState, AuditWriter)> {
    let metrics = Arc::new(Metrics::new());
    metrics.set_policy_version(policy.version());
    // Settings made before rules had fingerprints are bound, once per
    // database, to the rules this set serves under their names.
    store.adopt_legacy_fingerprints(&policy).await.context("binding settings made before rule fingerprints")?;
    let version = store.config_version().await.context("reading the change counter")?;
    let tables = store.load_overrides().await.context("loading overrides")?;
    if let Err(e) = store.record_policy_version(&policy).await {
        tracing::warn!(error = %e, "could not record the policy version's declared fields (replays of its rows will say so)");
    }
    let candidate = match &options.shadow_policy_dir {
        Some(dir) => Some(Arc::new(load_shadow_set(dir)?)),
        None => None,
    };
    let live = Arc::new(Live::new(Snapshot::build(Arc::new(policy), tables, version).with_candidate(candidate)));
    crate::reload::report_orphans(live.load().orphans());
    let settings = audit::QueueSettings {
        capacity: options.audit_queue_capacity,
        on_full: options.audit_on_full,
        block_timeout: options.audit_block_timeout,
        durability: options.audit_durability,
    };
    let (queue, writer) = audit::channel_with(store.clone(), metrics.clone(), settings);
    let writer = match &options.spill {
        Some(spill) => writer.with_spill(spill.clone()),
        None => writer,
    };
    let redis = match &options.redis_url {
        Some(url) => {
            let redis =
                RedisBackend::connect(url, &options.redis_key_prefix, options.redis_timeout, Some(metrics.clone()))
                    .context("the Redis URL")?;
            // A Redis that doesn't answer yet is reported (once) by the backend.
            if redis.ping().await {
                tracing::info!("rate limits and failed verifications are shared through Redis");
            }
            Some(redis)
        }
        None => None,
    };
    let limiter = match &redis {
        Some(redis) => RateLimiter::shared(redis.clone(), options.rate_limit_on_redis_error),
        None => RateLimiter::new(),
    };
    let address_header = match &options.client_address_header {
        Some(name) => Some(axum::http::HeaderName::try_from(name.as_str()).context("the client address header")?),
        None => None,
    };
    let auth = Authenticator::new(store.clone(), options.key_cache_capacity)
        .with_flood_guard(FloodGuard::new(options.auth_failure_quota, redis), metrics.clone())
        .with_client_address_header(address_header);
    let state = AppState::new(Services {
        live,
        auth: Arc::new(auth),
        store,
        limiter: Arc::new(limiter),
        default_quota: options.default_quota,
        audit: queue,
        metrics,
        max_body_bytes: options.max_body_bytes,
        reloader: options
            .policy_dir
            .clone()
            .map(|d| Arc::new(crate::reload::PolicyReloader::new(d).with_settle(options.policy_settle))),
        shadow_reloader: options.shadow_policy_dir.clone().map(|d| {
            Arc::new(crate::reload::PolicyReloader::new(d).for_shadow_set().with_settle(options.policy_settle))
        }),
        bcrypt_cost: options.bcrypt_cost,
        started: Instant::now(),
        webhooks: options.webhooks.clone(),
        dashboard: crate::ui::Dashboard::new(options.dashboard.clone()),
    });
    Ok((state, writer))
}

/// Loads the shadow policy set from `dir`: it must compile and pass its own
/// test blocks, as a reload requires.
fn load_shadow_set(dir: &std::path::Path) -> anyhow::Result<Policy> {
    let sources = crate::policy_files::load_dir(dir)
        .with_context(|| format!("reading the shadow policy set in `{}`", dir.display()))?;
    let (policy, _warnings) = Policy::from_sources(sources).map_err(|diags| {
        let errors: Vec<String> =
            diags.iter().filter(|d| d.is_error()).map(|d| warden_engine::render(d, false)).collect();
        anyhow::anyhow!("the shadow policy set in `{}` does not compile:\n{}", dir.display(), errors.join("\n"))
    })?;
    let report = warden_engine::run_tests(&policy);
    if !report.all_passed() {
        let failures: Vec<String> = report
            .outcomes
            .iter()
            .filter_map(|o| o.failure.as_ref().map(|f| format!("test \"{}\" ({}): {f}", o.name, o.position)))
            .collect();
        anyhow::bail!(
            "{} of the shadow policy set's {} test block(s) fail in `{}`:\n{}",
            report.failed(),
            report.outcomes.len(),
            dir.display(),
            failures.join("\n")
        );
    }
    tracing::info!(version = policy.version(), dir = %dir.display(), "shadow policy set loaded");
    Ok(policy)
}

/// Deletes dashboard sessions past their idle timeout or lifetime (each is
/// also refused when presented; this keeps the table small).
async fn prune_sessions(state: &AppState) {
    let settings = &state.dashboard.settings;
    let now = crate::store::now();
    let ago = |d: Duration| now - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero());
    if let Err(e) = state.store.prune_sessions(ago(settings.session_idle_timeout), ago(settings.session_lifetime)).await
    {
        tracing::debug!(error = %e, "could not prune expired dashboard sessions; the next minute tries again");
    }
}

/// How often SQLite instances check the change counter; Postgres instances
/// are told at once by NOTIFY and check every second besides.
const SQLITE_POLL: Duration = Duration::from_millis(250);
const POSTGRES_POLL: Duration = Duration::from_secs(1);
/// Cached API keys are re-checked at least this often.
const KEY_RECHECK: Duration = Duration::from_secs(5);

/// Spawns the background tasks: the webhook deliverer, change propagation
/// (another instance's or process's changes to overrides and keys reach
/// this one within a second) and rate-limiter eviction every minute. They
/// stop when `stop` fires.
pub fn spawn_background(state: &AppState, stop: watch::Receiver<bool>) {
    crate::webhooks::deliver::spawn(state, stop.clone());
    let s = state.clone();
    let mut rx = stop.clone();
    tokio::spawn(async move {
        let mut listener = match s.store.pg_pool() {
            Some(pool) => match sqlx::postgres::PgListener::connect_with(pool).await {
                Ok(mut l) => match l.listen("warden_config").await {
                    Ok(()) => Some(l),
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN failed; polling for changes instead");
                        None
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "could not open a LISTEN connection; polling for changes instead");
                    None
                }
            },
            None => None,
        };
        let poll = if s.store.pg_pool().is_some() { POSTGRES_POLL } else { SQLITE_POLL };
        let mut keys_checked_at: Option<i64> = None;
        let mut last_key_check = tokio::time::Instant::now();
        loop {
            let notified = async {
                match listener.as_mut() {
                    Some(l) => {
                        // A dropped connection errors at once (and reconnects
                        // on the next call); don't spin while it is down.
                        if l.recv().await.is_err() {
                            tokio::time::sleep(poll).await;
                        }
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                () = notified => {}
                _ = rx.wait_for(|v| *v) => break,
            }
            if let Err(e) = s.live.refresh_overrides(&s.store).await {
                tracing::warn!(error = %e, "could not check for changes; serving the previous state");
            }
            // Cached keys are re-checked whenever keys may have changed, and
            // every few seconds regardless (for changes made straight in the
            // database); a failed check is retried on the next tick.
            let seen = s.live.load().config_version;
            if keys_checked_at != Some(seen) || last_key_check.elapsed() >= KEY_RECHECK {
                match s.auth.revalidate().await {
                    Ok(_) => {
                        keys_checked_at = Some(seen);
                        last_key_check = tokio::time::Instant::now();
                    }
                    Err(e) => tracing::warn!(error = %e, "could not revalidate cached keys; retrying"),
                }
            }
        }
    });
    let s = state.clone();
    let mut rx = stop;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            let stopping = tokio::select! {
                _ = tick.tick() => false,
                _ = rx.wait_for(|v| *v) => true,
            };
            if stopping {
                break;
            }
            s.limiter.sweep();
            s.auth.sweep_failures();
            s.dashboard.sweep();
            prune_sessions(&s).await;
        }
    });
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received; shutting down"),
        () = term => tracing::info!("SIGTERM received; shutting down"),
    }
}

/// Runs the service until SIGINT/SIGTERM, then stops accepting, finishes
/// in-flight requests, drains the audit queue and returns.
pub async fn serve(config: ServeConfig, policy: Policy) -> anyhow::Result<()> {
    let store = Store::connect(&config.database_url).await.context("connecting to the database")?;
    store.migrate().await.context("running migrations")?;
    let replayed = audit::replay_spill(&store, &config.audit_spill_dir).await.context("writing spilled audit rows")?;
    if replayed > 0 {
        tracing::info!(rows = replayed, "wrote audit rows spilled at the last shutdown");
    }
    let options = Options::from(&config);
    let (state, writer) = build_state(store.clone(), policy, &options).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let writer = tokio::spawn(writer.run(stop_rx.clone()));
    spawn_background(&state, stop_rx.clone());
    for reloader in [state.reloader.clone(), state.shadow_reloader.clone()].into_iter().flatten() {
        crate::reload::spawn_sighup(state.clone(), reloader.clone(), stop_rx.clone()).context("handling SIGHUP")?;
        if config.no_watch {
            tracing::info!(dir = %reloader.dir().display(), "not watching the policy directory (--no-watch); SIGHUP reloads");
        } else {
            crate::reload::spawn_watcher(state.clone(), reloader, stop_rx.clone())
                .context("watching the policy directory")?;
        }
    }
    let listener =
        tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr().unwrap_or(config.listen);
    tracing::info!(%addr, backend = store.backend(), version = state.live.load().policy.version(), "warden listening");
    crate::listener::serve(listener, router(state.clone()), options.limits(), state.metrics.clone(), shutdown_signal())
        .await;
    tracing::info!(queued = state.audit.depth(), "no longer accepting; writing queued audit rows");
    let _ = stop_tx.send(true);
    let written = writer.await.context("audit writer")?;
    tracing::info!(written, "audit log complete; exiting");
    store.close().await;
    Ok(())
}
