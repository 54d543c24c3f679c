//! Reading the policy directory only once its files have stopped changing.
//!
//! Many tools save a file in place: they truncate it, then write it (`cp`,
//! `cat >`, `rsync --inplace`, most editors without "safe write"). A reload
//! that reads in between sees an empty or half-written file, and an empty
//! file compiles: a deny rule would vanish for the length of the write. So a
//! reload reads the directory until two reads a moment apart agree, and a
//! file that is empty now but was not in the set being served is taken for
//! a write in progress: it is read again until it has content, and applied
//! empty only if it stays empty for the whole settle time.

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use warden_dsl::SourceFile;

/// The pause between two reads that must agree.
const REREAD: Duration = Duration::from_millis(25);
/// At most this many reads for agreement (about one second of churn);
/// after that the latest read is used and the next event reloads again.
const MAX_READS: usize = 40;
/// How often a suspect empty file is looked at again.
const EMPTY_POLL: Duration = Duration::from_millis(50);

/// What a settled read found.
#[derive(Debug)]
pub(super) struct Settled {
    /// The files, as they stood still.
    pub sources: Vec<SourceFile>,
    /// Files that were non-empty in the serving set and stayed empty for
    /// the whole settle time: applied empty, deliberately.
    pub emptied: Vec<String>,
}

fn is_empty(text: &str) -> bool {
    text.trim().is_empty()
}

/// Reads `dir` until two reads [`REREAD`] apart agree (bounded by
/// [`MAX_READS`]). A read that fails (a file deleted between listing and
/// reading) is retried like a changed one.
fn read_stable(dir: &Path) -> anyhow::Result<Vec<SourceFile>> {
    let mut last = crate::policy_files::load_dir(dir);
    for _ in 0..MAX_READS {
        sleep(REREAD);
        let again = crate::policy_files::load_dir(dir);
        let agree = matches!((&last, &again), (Ok(a), Ok(b)) if a == b);
        last = again;
        if agree {
            break;
        }
    }
    last
}

/// Reads `dir` once it has settled (see the module documentation).
/// `serving` is the set being served; `settle` is how long a file that
/// became empty must stay empty before the empty file is applied.
pub(super) fn read_settled(dir: &Path, serving: &[SourceFile], settle: Duration) -> anyhow::Result<Settled> {
    let started = Instant::now();
    loop {
        let sources = read_stable(dir)?;
        let suspects: Vec<String> = sources
            .iter()
            .filter(|f| is_empty(&f.text) && serving.iter().any(|s| s.name == f.name && !is_empty(&s.text)))
            .map(|f| f.name.clone())
            .collect();
        if suspects.is_empty() {
            return Ok(Settled { sources, emptied: Vec::new() });
        }
        let waited = started.elapsed();
        if waited >= settle {
            tracing::warn!(files = ?suspects, settle_ms = settle.as_millis() as u64, "policy file(s) emptied and still empty after the settle time; applying them empty");
            return Ok(Settled { sources, emptied: suspects });
        }
        tracing::info!(files = ?suspects, "policy file(s) became empty: a write may be in progress; waiting before applying");
        sleep(EMPTY_POLL.min(settle - waited));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests fail loudly

    use super::*;

    fn temp_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("warden-settle-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_file_emptied_during_a_write_is_read_once_written() {
        let dir = temp_dir();
        let path = dir.join("deny.warden");
        std::fs::write(&path, "").unwrap();
        let serving = vec![SourceFile::new("deny.warden", "threshold 50\n")];
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || {
                sleep(Duration::from_millis(200));
                std::fs::write(&path, "threshold 50\n").unwrap();
            })
        };
        let settled = read_settled(&dir, &serving, Duration::from_secs(5)).unwrap();
        writer.join().unwrap();
        assert_eq!(&*settled.sources[0].text, "threshold 50\n");
        assert!(settled.emptied.is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_file_that_stays_empty_is_applied_after_the_settle_time() {
        let dir = temp_dir();
        std::fs::write(dir.join("deny.warden"), "\n").unwrap();
        let serving = vec![SourceFile::new("deny.warden", "threshold 50\n")];
        let started = Instant::now();
        let settled = read_settled(&dir, &serving, Duration::from_millis(300)).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(settled.emptied, ["deny.warden"]);
        // A file that was already empty is no suspect.
        let settled = read_settled(&dir, &[SourceFile::new("deny.warden", "")], Duration::from_secs(5)).unwrap();
        assert!(settled.emptied.is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
