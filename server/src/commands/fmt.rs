//! `warden fmt [--check] [PATHS...]`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use warden_engine::SourceFile;

use crate::cli::DiagnosticFormat;

pub fn run(paths: &[PathBuf], check: bool) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            files.extend(crate::policy_files::find_files(p)?);
        } else {
            files.push(p.clone());
        }
    }
    let mut failed = false;
    let mut unformatted = 0usize;
    for path in &files {
        match format_one(path, check)? {
            Outcome::Unchanged => {}
            Outcome::Changed => {
                unformatted += 1;
                if check {
                    println!("{}: not formatted", path.display());
                } else {
                    println!("{}: formatted", path.display());
                }
            }
            Outcome::Invalid => failed = true,
        }
    }
    if failed || (check && unformatted > 0) {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

enum Outcome {
    Unchanged,
    Changed,
    Invalid,
}

fn format_one(path: &Path, check: bool) -> anyhow::Result<Outcome> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading `{}`", path.display()))?;
    let file = SourceFile::new(path.display().to_string(), text.as_str());
    let formatted = match warden_engine::format_source(&file) {
        Ok(f) => f,
        Err(diags) => {
            super::print_diagnostics(&diags, DiagnosticFormat::Human);
            return Ok(Outcome::Invalid);
        }
    };
    // Compared with the text as read: a byte order mark, which
    // `SourceFile::new` drops and the formatter never prints, makes the file
    // unformatted, so `fmt` removes it.
    if formatted == text {
        return Ok(Outcome::Unchanged);
    }
    if !check {
        // Write a sibling file and rename it over the original, so a crash
        // never leaves a half-written policy behind.
        let tmp = path.with_extension("warden.fmt-tmp");
        std::fs::write(&tmp, &formatted).with_context(|| format!("writing `{}`", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("replacing `{}`", path.display()))?;
    }
    Ok(Outcome::Changed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly on bad fixtures

    use super::*;

    #[test]
    fn a_byte_order_mark_makes_a_file_unformatted_and_fmt_removes_it() {
        let dir = std::env::temp_dir().join(format!("warden-fmt-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bom.warden");
        let canonical = "input {\n  model: string\n}\n";
        std::fs::write(&path, format!("\u{FEFF}{canonical}")).unwrap();
        assert!(matches!(format_one(&path, true).unwrap(), Outcome::Changed), "`fmt --check` reports it");
        assert!(std::fs::read_to_string(&path).unwrap().starts_with('\u{FEFF}'), "`--check` writes nothing");
        assert!(matches!(format_one(&path, false).unwrap(), Outcome::Changed));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), canonical, "`fmt` removes the mark and nothing else");
        assert!(matches!(format_one(&path, true).unwrap(), Outcome::Unchanged));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
