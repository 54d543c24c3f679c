//! `warden serve` configuration: one clap struct. Every field reads a flag,
//! then an environment variable, then its default; `--config FILE` (a TOML
//! file of the same names) fills in anything not given as a flag.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::audit::OnFull;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Database connection, shared by every command that needs one.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://PATH` (created on first start) or `postgres://…`.
    #[arg(long, env = "WARDEN_DATABASE_URL", default_value = "sqlite://warden.db")]
    pub database_url: String,
}

/// `warden serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeConfig {
    /// Address to listen on.
    #[arg(long, env = "WARDEN_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Database connection.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Policy directory.
    #[arg(long, env = "WARDEN_POLICIES", default_value = "policies")]
    pub policies: PathBuf,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "WARDEN_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// Default rate limit: requests per window, per API key.
    #[arg(long, env = "WARDEN_RATE_LIMIT_REQUESTS", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_requests: u32,
    /// Default rate limit window (e.g. `60s`, `1m`).
    #[arg(long, env = "WARDEN_RATE_LIMIT_WINDOW", default_value = "60s", value_parser = parse_window)]
    pub rate_limit_window: Duration,
    /// Audit rows that may wait for the writer.
    #[arg(long, env = "WARDEN_AUDIT_QUEUE_CAPACITY", default_value_t = 10_000)]
    pub audit_queue_capacity: usize,
    /// When the audit queue is full: `block` (requests wait) or `reject` (503).
    #[arg(long = "audit-on-full", env = "WARDEN_AUDIT_ON_FULL", value_enum, default_value_t = OnFull::Block)]
    pub audit_on_full: OnFull,
    /// Where audit rows go if the database is still down `--drain-timeout`
    /// after shutdown began; the next start writes them to the database.
    #[arg(long, env = "WARDEN_AUDIT_SPILL_DIR", default_value = "warden-audit-spill")]
    pub audit_spill_dir: PathBuf,
    /// How long shutdown waits for an unreachable database before spilling.
    #[arg(long, env = "WARDEN_DRAIN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,
    /// Verified API keys remembered in memory.
    #[arg(long, env = "WARDEN_KEY_CACHE_CAPACITY", default_value_t = 10_000)]
    pub key_cache_capacity: usize,
    /// Log format.
    #[arg(long, env = "WARDEN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Don't watch the policy directory (SIGHUP still reloads).
    #[arg(long, env = "WARDEN_NO_WATCH")]
    pub no_watch: bool,
    /// bcrypt cost for keys created through the admin API (4–31).
    #[arg(long, env = "WARDEN_BCRYPT_COST", default_value_t = bcrypt::DEFAULT_COST, value_parser = clap::value_parser!(u32).range(4..=31))]
    pub bcrypt_cost: u32,
    /// Read settings from this TOML file (same names as the flags, with `_`).
    #[arg(long, env = "WARDEN_CONFIG")]
    pub config: Option<PathBuf>,
}

fn parse_window(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e}; write a duration such as `60s` or `1m`"))?;
    if d.as_secs() == 0 {
        return Err("the window must be at least one second".to_owned());
    }
    Ok(d)
}

/// The arguments a `--config` file adds: `--name value` for each key in it,
/// placed before the command line's own so that flags win.
pub fn config_file_args(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    use anyhow::Context as _;
    let text = std::fs::read_to_string(path).with_context(|| format!("reading config file `{}`", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("config file `{}` is not valid TOML", path.display()))?;
    let mut args = Vec::new();
    for (key, value) in table {
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => anyhow::bail!(
                "config file `{}`: `{key}` must be a string, integer or boolean, found {}",
                path.display(),
                other.type_str()
            ),
        };
        args.push(format!("--{}", key.replace('_', "-")));
        args.push(value);
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly

    use super::config_file_args;

    #[test]
    fn a_config_file_becomes_flags() {
        let path = std::env::temp_dir().join(format!("warden-config-{}.toml", std::process::id()));
        std::fs::write(&path, "listen = \"0.0.0.0:9000\"\nrate_limit_requests = 500\naudit_on_full = \"reject\"\n")
            .unwrap();
        let args = config_file_args(&path).unwrap();
        assert_eq!(args, ["--audit-on-full", "reject", "--listen", "0.0.0.0:9000", "--rate-limit-requests", "500"]);
        std::fs::write(&path, "listen = [1]\n").unwrap();
        assert!(config_file_args(&path).unwrap_err().to_string().contains("`listen` must be a string"));
        std::fs::remove_file(&path).unwrap();
    }
}
