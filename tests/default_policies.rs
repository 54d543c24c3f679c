//! The shipped default policies (`policies/` at the repository root), read
//! for tests, benchmarks and fuzz targets.
//!
//! This one file is the loader for all of them. It depends only on
//! `warden_dsl` and `std`, so crates that `warden-tests` itself depends on
//! (the dsl and the engine) include it as a module, without a dependency
//! cycle:
//!
//! ```ignore
//! #[path = "../../tests/default_policies.rs"]
//! mod default_policies;
//! ```
//!
//! Everything else uses `warden_tests::default_policies`.

use std::path::{Path, PathBuf};

use warden_dsl::SourceFile;

/// The default policy directory. Every crate that includes this file lives
/// one level below the repository root.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("policies")
}

/// Every `.warden` file of the default policies, sorted by name, named as
/// the service names them (relative to the directory). The directory is
/// flat, so this needs no recursion.
///
/// # Errors
///
/// When the directory or a file can't be read.
pub fn sources() -> std::io::Result<Vec<SourceFile>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir())? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "warden") {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            Ok(SourceFile::new(name, std::fs::read_to_string(&path)?))
        })
        .collect()
}
