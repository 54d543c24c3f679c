//! `warden check [DIR]`.

use std::path::Path;
use std::process::ExitCode;

use crate::cli::DiagnosticFormat;

pub fn run(dir: &Path, format: DiagnosticFormat) -> anyhow::Result<ExitCode> {
    let sources = crate::policy_files::load_dir(dir)?;
    let files = sources.len();
    let diagnostics = match warden_engine::Policy::from_sources(sources) {
        Ok((policy, warnings)) => {
            super::print_diagnostics(&warnings, format);
            eprintln!(
                "{}: {files} file(s), {} rule(s), {} test(s), version {}; {} warning(s)",
                dir.display(),
                policy.set().rules.len(),
                policy.set().tests.len(),
                policy.version(),
                warnings.len()
            );
            return Ok(ExitCode::SUCCESS);
        }
        Err(d) => d,
    };
    super::print_diagnostics(&diagnostics, format);
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    eprintln!("{}: {errors} error(s), {warnings} warning(s)", dir.display());
    Ok(ExitCode::FAILURE)
}
