//! Reading a policy directory: every `.warden` file below it, in name order.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use warden_engine::SourceFile;

/// The extension of policy files.
pub const EXTENSION: &str = "warden";

/// Reads every policy file under `dir` (recursively). Names are relative to
/// `dir`, with `/` separators, so diagnostics and versions don't depend on
/// where the directory lives.
pub fn load_dir(dir: &Path) -> anyhow::Result<Vec<SourceFile>> {
    if !dir.is_dir() {
        bail!("policy directory `{}` does not exist or is not a directory", dir.display());
    }
    let mut out = Vec::new();
    for path in find_files(dir)? {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading `{}`", path.display()))?;
        let rel = path.strip_prefix(dir).unwrap_or(&path);
        let name = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
        out.push(SourceFile::new(name, text));
    }
    Ok(out)
}

/// Every `.warden` file under `root`, sorted. Symbolic links to directories
/// are not followed, so a link cycle can't loop.
pub fn find_files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).with_context(|| format!("listing `{}`", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("listing `{}`", dir.display()))?;
            let path = entry.path();
            let kind = entry.file_type().with_context(|| format!("reading `{}`", path.display()))?;
            if kind.is_dir() {
                if !is_hidden(&path) {
                    pending.push(path);
                }
            } else if path.extension().is_some_and(|e| e == EXTENSION) && !is_hidden(&path) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Editors write hidden temporary files (`.risk.warden.swp`, `.#risk.warden`)
/// next to the real one, and `.git` holds old copies; hidden files and
/// folders are not part of the set.
fn is_hidden(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'))
}
