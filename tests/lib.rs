//! Shared helpers for the integration tests, benchmarks and fuzz targets.
//!
//! [`default_policies`] is also included by path from the dsl's and the
//! engine's own tests, which can't depend on this crate (it depends on
//! them).

pub mod default_policies;

use warden_dsl::SourceFile;
use warden_engine::Policy;

/// Compiles `sources` as one set; on failure, every diagnostic rendered on
/// one line each, for a test's failure message.
///
/// # Errors
///
/// When the set has errors.
pub fn compile(sources: Vec<SourceFile>) -> Result<Policy, String> {
    match Policy::from_sources(sources) {
        Ok((policy, _warnings)) => Ok(policy),
        Err(diagnostics) => Err(diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")),
    }
}

/// The shipped default policies, compiled.
///
/// # Errors
///
/// When they can't be read or don't compile.
pub fn default_policy() -> Result<Policy, String> {
    let sources = default_policies::sources().map_err(|e| format!("reading the default policies: {e}"))?;
    compile(sources)
}
