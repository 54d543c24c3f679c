//! The command line, as one clap tree.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Warden: a declarative policy engine for AI governance.
#[derive(Debug, Parser)]
#[command(name = "warden", version, about)]
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
}
