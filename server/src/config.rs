//! `warden serve` configuration: one layered loader, built on figment.
//!
//! Each setting is resolved from, in rising precedence: its default, the
//! TOML file named by `--config` (or `WARDEN_CONFIG`), the environment
//! (`WARDEN_<NAME>`), and the command line (`--<name>`). The result is
//! validated once, at start-up; a bad value is an error naming the setting
//! and where it came from, never a panic at the first request.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::audit::{Durability, OnFull};
use crate::rate_limit::OnRedisError;
use crate::server::Options;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Database connection, for the commands other than `serve` (`migrate`,
/// `keys`, `logs`), which take it from a flag or the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://PATH` (created on first start) or `postgres://…`.
    #[arg(long, env = "WARDEN_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
}

const DEFAULT_DATABASE_URL: &str = "sqlite://warden.db";

/// The resolved settings of `warden serve`. Field names are the setting
/// names: `rate_limit_requests` is `--rate-limit-requests`,
/// `WARDEN_RATE_LIMIT_REQUESTS` and `rate_limit_requests = …` in the file.
/// Durations are written as humantime strings (`60s`, `1m`, `500ms`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Database URL: `sqlite://PATH` or `postgres://…`.
    pub database_url: String,
    /// Policy directory.
    pub policies: PathBuf,
    /// A shadow policy set: a second directory decided beside the enforced
    /// set on every request (under the same overrides), recorded where it
    /// differs, deciding nothing. Hot-reloaded like the enforced set, its
    /// own test blocks gating its swaps.
    pub shadow_policies: Option<PathBuf>,
    /// Largest accepted request body, in bytes (larger bodies get 413).
    pub max_body_bytes: usize,
    /// Default rate limit: requests per window, per API key (at least 1).
    pub rate_limit_requests: u32,
    /// Default rate limit window (at least one second).
    #[serde(with = "humantime_serde")]
    pub rate_limit_window: Duration,
    /// Audit rows that may wait for the writer (at least 1).
    pub audit_queue_capacity: usize,
    /// When the audit queue is full: `block` (requests wait) or `reject` (503).
    pub audit_on_full: OnFull,
    /// Where audit rows go when the database can't take them; the next
    /// start (or the database's return) writes them to the database.
    pub audit_spill_dir: PathBuf,
    /// How long shutdown waits for an unreachable database before spilling.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// Verified API keys remembered in memory (at least 1).
    pub key_cache_capacity: usize,
    /// Log format: `human` or `json`.
    pub log_format: LogFormat,
    /// Don't watch the policy directory (SIGHUP still reloads).
    pub no_watch: bool,
    /// bcrypt cost for keys created through the admin API (4–31).
    pub bcrypt_cost: u32,
    /// Time a client has to send a request's head; an idle kept-alive
    /// connection also closes after it.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Time from a request's head to its answer, the body included; then 408.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Client connections open at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// On SIGTERM/SIGINT, how long in-flight requests get before their
    /// connections are closed and the audit queue is drained or spilled.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// How long a read in which a policy file of the serving set is missing,
    /// empty or shorter must stay unchanged before it is applied (until
    /// then it is taken for a write or copy in progress).
    #[serde(with = "humantime_serde")]
    pub policy_settle: Duration,
    /// When a decision is acknowledged: `ack` (its audit row is queued) or
    /// `durable` (committed in the database or fsynced in the local spill).
    pub audit_durability: Durability,
    /// With `audit_on_full = block`, the longest a request waits for queue
    /// room before it gets 503.
    #[serde(with = "humantime_serde")]
    pub audit_block_timeout: Duration,
    /// Redis URL (`redis://[user:password@]host[:port][/db]`): rate limits
    /// and failed-verification counts are shared by every instance using
    /// it. Unset: they are kept in this process.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key Warden writes (deployments sharing one
    /// Redis need different prefixes).
    pub redis_key_prefix: String,
    /// Longest wait for one Redis call; past it (or on an error) the
    /// fallback policy answers.
    #[serde(with = "humantime_serde")]
    pub redis_timeout: Duration,
    /// While Redis fails: `local` (this instance's own limiter), `allow` or
    /// `deny`.
    pub rate_limit_on_redis_error: OnRedisError,
    /// Failed key verifications allowed per key id and per client address
    /// within `auth_failure_window`; more get 429 without running bcrypt.
    pub auth_failure_limit: u32,
    /// The window of `auth_failure_limit` (at least one second).
    #[serde(with = "humantime_serde")]
    pub auth_failure_window: Duration,
    /// The request header a proxy in front sets to the client's address,
    /// e.g. `x-forwarded-for` (its last entry is taken: the one the proxy
    /// added). Unset: the connection's peer address. Set it only when every
    /// request comes through such a proxy, or clients can pick their address.
    pub client_address_header: Option<String>,
    /// Allow webhook endpoints on loopback and private addresses (refused
    /// by default, so an admin URL can't reach internal services).
    pub webhook_allow_private: bool,
    /// Time allowed for one webhook request, connection and answer included.
    #[serde(with = "humantime_serde")]
    pub webhook_timeout: Duration,
    /// Consecutive failed delivery attempts after which a webhook endpoint
    /// is disabled (recorded in the admin trail).
    pub webhook_disable_after: u32,
    /// Serve the web dashboard under `/ui/` (and `/docs`). Off: `/ui/*` is 404.
    pub dashboard: bool,
    /// Mark the dashboard's session cookie `Secure` (sent over HTTPS only).
    /// Turn it off only to use the dashboard over plain HTTP, e.g. on
    /// localhost.
    pub cookie_secure: bool,
    /// A dashboard session ends after this long without a request.
    #[serde(with = "humantime_serde")]
    pub session_idle_timeout: Duration,
    /// A dashboard session ends this long after sign-in, however active.
    #[serde(with = "humantime_serde")]
    pub session_lifetime: Duration,
    /// Dashboard sign-in attempts allowed per client address per minute;
    /// more get 429.
    pub sign_in_limit: u32,
}

impl Default for ServeConfig {
    fn default() -> Self {
        // The service's own defaults live with the service; the settings
        // only name them.
        let options = Options::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            policies: PathBuf::from("policies"),
            shadow_policies: None,
            max_body_bytes: 64 * 1024,
            rate_limit_requests: 100,
            rate_limit_window: Duration::from_secs(60),
            audit_queue_capacity: 10_000,
            audit_on_full: OnFull::Block,
            audit_spill_dir: PathBuf::from("warden-audit-spill"),
            drain_timeout: Duration::from_secs(30),
            key_cache_capacity: 10_000,
            log_format: LogFormat::Human,
            no_watch: false,
            bcrypt_cost: bcrypt::DEFAULT_COST,
            header_read_timeout: options.header_read_timeout,
            request_timeout: options.request_timeout,
            max_connections: options.max_connections,
            shutdown_grace: options.shutdown_grace,
            policy_settle: options.policy_settle,
            audit_durability: options.audit_durability,
            audit_block_timeout: options.audit_block_timeout,
            redis_url: options.redis_url,
            redis_key_prefix: options.redis_key_prefix,
            redis_timeout: options.redis_timeout,
            rate_limit_on_redis_error: options.rate_limit_on_redis_error,
            auth_failure_limit: options.auth_failure_quota.requests,
            auth_failure_window: options.auth_failure_quota.window,
            client_address_header: options.client_address_header,
            webhook_allow_private: options.webhooks.allow_private,
            webhook_timeout: options.webhooks.timeout,
            webhook_disable_after: options.webhooks.disable_after,
            dashboard: options.dashboard.enabled,
            cookie_secure: options.dashboard.cookie_secure,
            session_idle_timeout: options.dashboard.session_idle_timeout,
            session_lifetime: options.dashboard.session_lifetime,
            sign_in_limit: options.dashboard.sign_in_quota.requests,
        }
    }
}

/// The setting names, as read from `WARDEN_<NAME>` environment variables.
/// Only these are read, so unrelated `WARDEN_*` variables (`WARDEN_CONFIG`,
/// test settings) are not mistaken for unknown settings. A unit test checks
/// the list against [`ServeConfig`]'s fields.
const SETTINGS: [&str; 37] = [
    "listen",
    "database_url",
    "policies",
    "shadow_policies",
    "max_body_bytes",
    "rate_limit_requests",
    "rate_limit_window",
    "audit_queue_capacity",
    "audit_on_full",
    "audit_spill_dir",
    "drain_timeout",
    "key_cache_capacity",
    "log_format",
    "no_watch",
    "bcrypt_cost",
    "header_read_timeout",
    "request_timeout",
    "max_connections",
    "shutdown_grace",
    "policy_settle",
    "audit_durability",
    "audit_block_timeout",
    "redis_url",
    "redis_key_prefix",
    "redis_timeout",
    "rate_limit_on_redis_error",
    "auth_failure_limit",
    "auth_failure_window",
    "client_address_header",
    "webhook_allow_private",
    "webhook_timeout",
    "webhook_disable_after",
    "dashboard",
    "cookie_secure",
    "session_idle_timeout",
    "session_lifetime",
    "sign_in_limit",
];

/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "WARDEN_CONFIG";

/// `warden serve`'s command line: every setting as an optional flag. Only
/// the flags given take part in the layering; the rest come from the
/// environment, the file or the defaults.
#[derive(Debug, Clone, Default, clap::Args, Serialize)]
pub struct ServeArgs {
    /// Read settings from this TOML file (names as below, with `_`:
    /// `rate_limit_requests = 500`). Env: `WARDEN_CONFIG`.
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Database URL: `sqlite://PATH` or `postgres://…` [default: sqlite://warden.db].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// Policy directory [default: policies].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policies: Option<PathBuf>,
    /// A shadow policy set, decided beside the enforced one and recorded
    /// where it differs [default: none].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow_policies: Option<PathBuf>,
    /// Largest accepted request body, in bytes [default: 65536].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<usize>,
    /// Default rate limit: requests per window, per API key [default: 100].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_requests: Option<u32>,
    /// Default rate limit window, e.g. `60s`, `1m` [default: 60s].
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde::option", skip_serializing_if = "Option::is_none")]
    pub rate_limit_window: Option<Duration>,
    /// Audit rows that may wait for the writer [default: 10000].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_queue_capacity: Option<usize>,
    /// When the audit queue is full: `block` or `reject` [default: block].
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_on_full: Option<OnFull>,
    /// Directory for audit rows the database can't take yet [default: warden-audit-spill].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_spill_dir: Option<PathBuf>,
    /// How long shutdown waits for an unreachable database before spilling [default: 30s].
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde::option", skip_serializing_if = "Option::is_none")]
    pub drain_timeout: Option<Duration>,
    /// Verified API keys remembered in memory [default: 10000].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_cache_capacity: Option<usize>,
    /// Log format [default: human].
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    /// Don't watch the policy directory (SIGHUP still reloads).
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_watch: bool,
    /// bcrypt cost for keys created through the admin API, 4–31 [default: 12].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bcrypt_cost: Option<u32>,
    /// Time a client has to send a request head [default: 10s].
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde::option", skip_serializing_if = "Option::is_none")]
    pub header_read_timeout: Option<Duration>,
    /// Time from a request's head to its answer, body included; then 408 [default: 30s].
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde::option", skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<Duration>,
    /// Client connections open at once [default: 1024].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// How long in-flight requests get at shutdown [default: 10s].
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde::option", skip_serializing_if = "Option::is_none")]
    pub shutdown_grace: Option<Duration>,
    /// How long a policy file missing, emptied or cut short must stay so to apply [default: 1s].
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde::option", skip_serializing_if = "Option::is_none")]
    pub policy_settle: Option<Duration>,
    /// Acknowledge a decision once its audit row is `ack` (queued) or `durable` [default: ack].
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_durability: Option<Durability>,
    /// With `block`, the longest wait for audit queue room, then 503 [default: 1s].
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde::option", skip_serializing_if = "Option::is_none")]
    pub audit_block_timeout: Option<Duration>,
    /// Redis URL for shared rate limits, `redis://host:port` [default: none, limits per instance].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// Prefix of Warden's Redis keys [default: warden:].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_key_prefix: Option<String>,
    /// Longest wait for one Redis call, then the fallback answers [default: 20ms].
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde::option", skip_serializing_if = "Option::is_none")]
    pub redis_timeout: Option<Duration>,
    /// While Redis fails: `local`, `allow` or `deny` [default: local].
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_on_redis_error: Option<OnRedisError>,
    /// Failed key verifications per key id and per address per window, then 429 [default: 10].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_failure_limit: Option<u32>,
    /// The window of `--auth-failure-limit` [default: 60s].
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde::option", skip_serializing_if = "Option::is_none")]
    pub auth_failure_window: Option<Duration>,
    /// Header a proxy in front sets to the client's address, e.g. `x-forwarded-for` [default: none, the peer address].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_address_header: Option<String>,
    /// Allow webhook endpoints on loopback and private addresses.
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub webhook_allow_private: bool,
    /// Time allowed for one webhook request [default: 5s].
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde::option", skip_serializing_if = "Option::is_none")]
    pub webhook_timeout: Option<Duration>,
    /// Consecutive failed attempts before a webhook endpoint is disabled [default: 50].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_disable_after: Option<u32>,
    /// Don't serve the web dashboard (`/ui/*` and `/docs` answer 404).
    #[arg(long)]
    #[serde(skip)]
    pub no_dashboard: bool,
    /// `--cookie-secure=false` lets the dashboard's session cookie travel over plain HTTP [default: true].
    #[arg(long, action = clap::ArgAction::Set, value_name = "BOOL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookie_secure: Option<bool>,
    /// A dashboard session ends after this long idle [default: 30m].
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde::option", skip_serializing_if = "Option::is_none")]
    pub session_idle_timeout: Option<Duration>,
    /// A dashboard session ends this long after sign-in [default: 12h].
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde::option", skip_serializing_if = "Option::is_none")]
    pub session_lifetime: Option<Duration>,
    /// Dashboard sign-in attempts per client address per minute, then 429 [default: 10].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_in_limit: Option<u32>,
}

/// A configuration that can't be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named by `--config` or `WARDEN_CONFIG` is missing.
    #[error("config file `{0}` does not exist")]
    MissingFile(PathBuf),
    /// A value could not be read (wrong type, unknown setting, bad syntax);
    /// the message names the setting and its source.
    #[error(transparent)]
    Read(#[from] Box<figment::Error>),
    /// Values were read but are out of range.
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
}

impl ServeConfig {
    /// Resolves the settings: defaults < `--config` file < `WARDEN_*`
    /// environment < flags, then validates them.
    ///
    /// # Errors
    /// [`ConfigError`] naming each bad setting and where it came from.
    pub fn load(args: &ServeArgs) -> Result<Self, ConfigError> {
        let file = args.config.clone().or_else(|| std::env::var_os(CONFIG_ENV).map(PathBuf::from));
        Self::figment(file.as_deref(), args)?.extract::<Self>().map_err(|e| ConfigError::Read(Box::new(e)))?.validated()
    }

    fn figment(file: Option<&Path>, args: &ServeArgs) -> Result<Figment, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Self::default()));
        if let Some(path) = file {
            // figment treats a missing file as empty; a named file must exist.
            if !path.is_file() {
                return Err(ConfigError::MissingFile(path.to_path_buf()));
            }
            figment = figment.merge(Toml::file(path));
        }
        let figment = figment.merge(Env::prefixed("WARDEN_").only(&SETTINGS)).merge(Serialized::defaults(args));
        // `--no-dashboard` is the flag form of `dashboard = false`.
        Ok(if args.no_dashboard { figment.merge(Serialized::default("dashboard", false)) } else { figment })
    }

    /// Checks ranges the types can't express.
    fn validated(self) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        if self.rate_limit_requests == 0 {
            problems.push("`rate_limit_requests` must be at least 1".to_owned());
        }
        if self.rate_limit_window < Duration::from_secs(1) {
            problems.push(format!(
                "`rate_limit_window` must be at least one second, got {}",
                humantime::format_duration(self.rate_limit_window)
            ));
        }
        if self.audit_queue_capacity == 0 {
            problems.push("`audit_queue_capacity` must be at least 1".to_owned());
        }
        if self.key_cache_capacity == 0 {
            problems.push("`key_cache_capacity` must be at least 1".to_owned());
        }
        if self.max_body_bytes < 64 {
            problems.push(format!("`max_body_bytes` must be at least 64, got {}", self.max_body_bytes));
        }
        if self.max_connections == 0 {
            problems.push("`max_connections` must be at least 1".to_owned());
        }
        if let Some(url) = &self.redis_url {
            // The URL may hold a password: the message names the setting only.
            if redis::Client::open(url.as_str()).is_err() {
                problems.push(
                    "`redis_url` is not a Redis URL: expected `redis://[user:password@]host[:port][/db]`".to_owned(),
                );
            }
        }
        if let Some(name) = &self.client_address_header {
            if axum::http::HeaderName::try_from(name.as_str()).is_err() {
                problems.push(format!("`client_address_header` is not a header name: `{name}`"));
            }
        }
        if self.auth_failure_limit == 0 {
            problems.push("`auth_failure_limit` must be at least 1".to_owned());
        }
        if self.auth_failure_window < Duration::from_secs(1) {
            problems.push(format!(
                "`auth_failure_window` must be at least one second, got {}",
                humantime::format_duration(self.auth_failure_window)
            ));
        }
        for (name, d) in [
            ("header_read_timeout", self.header_read_timeout),
            ("request_timeout", self.request_timeout),
            ("audit_block_timeout", self.audit_block_timeout),
            ("redis_timeout", self.redis_timeout),
            ("webhook_timeout", self.webhook_timeout),
        ] {
            if d.is_zero() {
                problems.push(format!("`{name}` must be longer than zero"));
            }
        }
        if self.webhook_disable_after == 0 {
            problems.push("`webhook_disable_after` must be at least 1".to_owned());
        }
        if self.webhook_timeout > Duration::from_secs(60) {
            problems.push(format!(
                "`webhook_timeout` must be at most 60s, got {}",
                humantime::format_duration(self.webhook_timeout)
            ));
        }
        if self.sign_in_limit == 0 {
            problems.push("`sign_in_limit` must be at least 1".to_owned());
        }
        if self.session_idle_timeout < Duration::from_secs(60) {
            problems.push(format!(
                "`session_idle_timeout` must be at least one minute, got {}",
                humantime::format_duration(self.session_idle_timeout)
            ));
        }
        if self.session_lifetime < self.session_idle_timeout {
            problems.push(format!(
                "`session_lifetime` ({}) must be at least `session_idle_timeout` ({})",
                humantime::format_duration(self.session_lifetime),
                humantime::format_duration(self.session_idle_timeout)
            ));
        }
        if !(4..=31).contains(&self.bcrypt_cost) {
            problems.push(format!("`bcrypt_cost` must be between 4 and 31, got {}", self.bcrypt_cost));
        }
        if problems.is_empty() { Ok(self) } else { Err(ConfigError::Invalid(problems)) }
    }
}

#[cfg(test)]
mod tests;
