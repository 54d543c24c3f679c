//! One module per subcommand. Each returns the process exit code.

mod audit;
mod check;
mod eval;
mod fmt;
mod keys;
mod replay;
mod serve;
mod test;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use warden_engine::Diagnostic;

use crate::cli::{Cli, Command, DiagnosticFormat};

/// Runs the command.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check { dir, format } => check::run(&dir, format),
        Command::Fmt { check, paths } => fmt::run(&paths, check),
        Command::Test { dir } => test::run(&dir),
        Command::Eval { policies, input, overrides, explain } => {
            eval::run(&policies, &input, overrides.as_deref(), explain)
        }
        Command::Serve(config) => serve::serve(config),
        Command::Migrate(db) => serve::migrate(&db),
        Command::Keys { command } => keys::run(command),
        Command::Logs { command } => audit::logs(command),
        Command::Audit { command } => audit::audit(command),
        Command::Replay { policies, since, from, to, customer, format, database } => {
            replay::run(&policies, replay::Period { since, from, to }, customer, format, &database)
        }
    }
}

/// Prints diagnostics to stderr.
pub fn print_diagnostics(diagnostics: &[Diagnostic], format: DiagnosticFormat) {
    let color = std::io::stderr().is_terminal();
    for d in diagnostics {
        match format {
            DiagnosticFormat::Human => eprintln!("{}", warden_engine::render(d, color)),
            DiagnosticFormat::Json => {
                let line = serde_json::to_string(&crate::error::DiagnosticBody::of(d)).unwrap_or_default();
                eprintln!("{line}");
            }
        }
    }
}

/// Loads and compiles a policy directory, printing diagnostics. `None` when
/// the set has errors.
pub fn load_policy(dir: &std::path::Path) -> anyhow::Result<Option<(warden_engine::Policy, Vec<Diagnostic>)>> {
    let sources = crate::policy_files::load_dir(dir)?;
    match warden_engine::Policy::from_sources(sources) {
        Ok(ok) => Ok(Some(ok)),
        Err(diags) => {
            print_diagnostics(&diags, DiagnosticFormat::Human);
            let errors = diags.iter().filter(|d| d.is_error()).count();
            eprintln!("{}: {errors} error(s); the policy set was not compiled", dir.display());
            Ok(None)
        }
    }
}
