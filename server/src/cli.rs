//! The command line, as one clap tree.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{DatabaseArgs, ServeArgs};

/// Parses the command line and runs it.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match crate::commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Warden: a declarative policy engine for AI governance.
#[derive(Debug, Parser)]
#[command(name = "warden", version, about, args_override_self = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How diagnostics are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagnosticFormat {
    /// Source line, caret and help, coloured on a terminal.
    Human,
    /// One JSON object per line: code, severity, position, message, help.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
// Parsed once at start-up: the size of `Serve`'s flags doesn't matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Parse and check a policy directory; print every error and warning.
    Check {
        /// The policy directory (all `.warden` files below it form one set).
        #[arg(default_value = "policies")]
        dir: PathBuf,
        /// How to print diagnostics.
        #[arg(long, value_enum, default_value_t = DiagnosticFormat::Human)]
        format: DiagnosticFormat,
    },
    /// Rewrite policy files in the canonical layout, keeping comments.
    Fmt {
        /// Don't write; list the files that are not formatted and exit 1.
        #[arg(long)]
        check: bool,
        /// Files or directories to format.
        #[arg(default_value = "policies")]
        paths: Vec<PathBuf>,
    },
    /// Run the test blocks of a policy directory and report rule coverage.
    Test {
        /// The policy directory.
        #[arg(default_value = "policies")]
        dir: PathBuf,
    },
    /// Decide one request and print the decision (or the rejection) as JSON.
    Eval {
        /// The policy directory.
        #[arg(long, default_value = "policies")]
        policies: PathBuf,
        /// The request as a JSON file, or `-` for standard input.
        #[arg(long, default_value = "-")]
        input: PathBuf,
        /// Per-customer overrides as a JSON file, e.g. {"rules": {"external_model": {"enabled": false}}}.
        #[arg(long)]
        overrides: Option<PathBuf>,
        /// Also print every rule, whether its condition held and what it contributed.
        #[arg(long)]
        explain: bool,
    },
    /// Run the decision service.
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(DatabaseArgs),
    /// Manage API keys.
    Keys {
        /// What to do.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage the audit log.
    Logs {
        /// What to do.
        #[command(subcommand)]
        command: LogsCommand,
    },
    /// Re-decide recorded decisions against a candidate policy set, with
    /// the overrides as they are now, and report what would change: rows
    /// unchanged; allowed->blocked and blocked->allowed; score and reason
    /// changes; counts per rule responsible; example decision ids; and the
    /// rows that can't be replayed faithfully, and why.
    Replay {
        /// The candidate policy directory.
        #[arg(long)]
        policies: PathBuf,
        /// Decisions of the last this long, e.g. `7d`, `12h` (default: 7d,
        /// unless `--from` or `--to` is given).
        #[arg(long, value_parser = humantime::parse_duration, conflicts_with_all = ["from", "to"])]
        since: Option<std::time::Duration>,
        /// Decisions created at or after this time (RFC 3339).
        #[arg(long, value_parser = parse_time)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// Decisions created before this time (RFC 3339).
        #[arg(long, value_parser = parse_time)]
        to: Option<chrono::DateTime<chrono::Utc>>,
        /// One customer's decisions only (its id).
        #[arg(long)]
        customer: Option<uuid::Uuid>,
        /// How to print the report.
        #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
        format: ReportFormat,
        /// Database connection.
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Check the audit log's integrity.
    Audit {
        /// What to do.
        #[command(subcommand)]
        command: AuditCommand,
    },
}

/// How a report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Lines for a person.
    Human,
    /// One JSON document.
    Json,
}

/// `warden audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chains of `usage_log` and `admin_audit` and report rows
    /// checked and every broken link (altered, removed, inserted or
    /// reordered rows). Exit 1 on any break. The result is also recorded
    /// for `GET /api/admin/audit/verification`.
    Verify {
        /// Only rows created at or after this time (RFC 3339).
        #[arg(long, value_parser = parse_time)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// Only rows created before this time (RFC 3339).
        #[arg(long, value_parser = parse_time)]
        to: Option<chrono::DateTime<chrono::Utc>>,
        /// How to print the report.
        #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
        format: ReportFormat,
        /// Database connection.
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// An RFC 3339 time, e.g. `2026-11-26T00:00:00Z`.
fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("expected an RFC 3339 time such as 2026-11-26T00:00:00Z: {e}"))
}

/// `warden keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key (and the customer, if new). The plaintext key is printed
    /// once, alone on the last line of standard output.
    Create {
        /// The customer's email.
        #[arg(long)]
        customer: String,
        /// A label for the key.
        #[arg(long, default_value = "default")]
        name: String,
        /// Make an admin key (default: an app key).
        #[arg(long)]
        admin: bool,
        /// Make a viewer key: it reads the admin API and signs in to the
        /// dashboard, changes nothing, and asks for no decisions.
        #[arg(long, conflicts_with = "admin")]
        viewer: bool,
        /// bcrypt cost (4–31). Each verification costs about 2^cost work.
        #[arg(long, env = "WARDEN_BCRYPT_COST", default_value_t = bcrypt::DEFAULT_COST, value_parser = clap::value_parser!(u32).range(4..=31))]
        bcrypt_cost: u32,
        /// Database connection.
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List keys, without secrets.
    List {
        /// Database connection.
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// `warden logs …`.
#[derive(Debug, Subcommand)]
pub enum LogsCommand {
    /// Delete audit rows older than a duration (e.g. `90d`), recording a
    /// checkpoint (the last deleted row's chain position and hash, and the
    /// count) that `warden audit verify` starts from. The daily counts the
    /// dashboard's overview shows (`usage_rollup`) are kept: they describe
    /// the traffic served, whatever the retention.
    Prune {
        /// Age limit, e.g. `90d`, `12h`.
        #[arg(long, value_parser = humantime::parse_duration)]
        older_than: std::time::Duration,
        /// Database connection.
        #[command(flatten)]
        database: DatabaseArgs,
    },
}
