//! Reading the policy directory only once its files have stopped changing.
//!
//! Files are rarely replaced in one step. Many tools save in place: they
//! truncate a file, then write it (`cp`, `cat >`, `rsync --inplace`, most
//! editors without "safe write"), possibly in several chunks; a deploy that
//! does `rm -rf policies && cp -r new policies` makes the files appear one
//! at a time. A reload that reads in between sees a file empty, cut short
//! (perhaps at a rule boundary, so it still compiles) or not there yet, and
//! would serve a set without some of its rules (a deny rule vanishing for
//! the length of the write or copy).
//!
//! So a reload reads the directory until two reads a moment apart agree
//! ([`REREAD`]); that is all a new file, or a file that grew, needs, so
//! ordinary saves apply within tens of milliseconds. But a file of the set
//! being served that is now **missing**, **empty** or **shorter** than it
//! was is a suspected partial write: the directory is read again and again,
//! and such a read is believed only once the whole directory has stayed
//! exactly as it is for the settle time (`policy_settle`). A deliberate
//! deletion or shrinking edit therefore applies after the settle time, with
//! a warning naming the files; a copy or write still in progress keeps
//! changing the directory and is never served half-done.

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use warden_engine::SourceFile;

/// The pause between two reads that must agree.
const REREAD: Duration = Duration::from_millis(25);
/// At most this many reads for agreement (about one second of churn);
/// after that the latest read is used and the next event reloads again.
const MAX_READS: usize = 40;
/// How often a directory with a suspected partial write is read again.
const SUSPECT_POLL: Duration = Duration::from_millis(50);
/// A directory with suspected partial writes that keeps changing for this
/// long beyond the settle time is given up on: the reload fails, the
/// serving set stays, and the next change to the files reloads again.
const MAX_CHURN: Duration = Duration::from_secs(30);

/// Why a file of the serving set looks like a write in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Suspicion {
    /// It is not in the directory (yet).
    Missing,
    /// It has no content (or only whitespace) but had some.
    Emptied,
    /// It has fewer bytes than the served text had.
    Shorter {
        /// Bytes in the served text.
        was: usize,
        /// Bytes now.
        now: usize,
    },
}

/// A file of the serving set that looks like a write in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Suspect {
    /// The file's name in the set.
    pub name: String,
    /// What is wrong with it.
    pub kind: Suspicion,
}

impl std::fmt::Display for Suspect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            Suspicion::Missing => write!(f, "{} (missing)", self.name),
            Suspicion::Emptied => write!(f, "{} (empty)", self.name),
            Suspicion::Shorter { was, now } => write!(f, "{} (shorter: {was} -> {now} bytes)", self.name),
        }
    }
}

/// What a settled read found.
#[derive(Debug)]
pub(super) struct Settled {
    /// The files, as they stood still.
    pub sources: Vec<SourceFile>,
    /// Files of the serving set that were missing, empty or shorter and
    /// stayed so for the whole settle time: applied as they are,
    /// deliberately.
    pub believed: Vec<Suspect>,
}

fn is_empty(text: &str) -> bool {
    text.trim().is_empty()
}

/// The files of `serving` that `read` has lost, emptied or cut short.
fn suspects(read: &[SourceFile], serving: &[SourceFile]) -> Vec<Suspect> {
    serving
        .iter()
        .filter_map(|old| {
            let kind = match read.iter().find(|f| f.name == old.name) {
                None => Suspicion::Missing,
                Some(new) if is_empty(&new.text) && !is_empty(&old.text) => Suspicion::Emptied,
                Some(new) if new.text.len() < old.text.len() => {
                    Suspicion::Shorter { was: old.text.len(), now: new.text.len() }
                }
                Some(_) => return None,
            };
            Some(Suspect { name: old.name.clone(), kind })
        })
        .collect()
}

fn describe(suspects: &[Suspect]) -> String {
    suspects.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
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
/// `serving` is the set being served; `settle` is how long a read with
/// files of that set missing, empty or shorter must stay unchanged before
/// it is believed.
///
/// # Errors
///
/// The directory can't be read, or it kept changing with suspected partial
/// writes for [`MAX_CHURN`] beyond the settle time.
pub(super) fn read_settled(dir: &Path, serving: &[SourceFile], settle: Duration) -> anyhow::Result<Settled> {
    let started = Instant::now();
    // The suspect read and since when the directory has been exactly so.
    let mut held: Option<(Vec<SourceFile>, Instant)> = None;
    let mut logged: Vec<Suspect> = Vec::new();
    loop {
        let sources = read_stable(dir)?;
        let found = suspects(&sources, serving);
        if found.is_empty() {
            if !logged.is_empty() {
                tracing::info!(files = %describe(&logged), "the suspected partial write completed");
            }
            return Ok(Settled { sources, believed: Vec::new() });
        }
        let since = match held.take() {
            Some((read, since)) if read == sources => since,
            _ => Instant::now(),
        };
        let unchanged_for = since.elapsed();
        if unchanged_for >= settle {
            tracing::warn!(
                files = %describe(&found),
                settle_ms = settle.as_millis() as u64,
                "policy file(s) of the serving set missing, empty or shorter, unchanged for the settle time; applying them as they are"
            );
            return Ok(Settled { sources, believed: found });
        }
        if started.elapsed() >= settle + MAX_CHURN {
            anyhow::bail!(
                "the policy directory kept changing for {} s with file(s) of the serving set missing, empty or shorter ({}); keeping the serving set",
                started.elapsed().as_secs(),
                describe(&found)
            );
        }
        if found != logged {
            tracing::info!(
                files = %describe(&found),
                "policy file(s) of the serving set missing, empty or shorter: a write or copy may be in progress; waiting before applying"
            );
            logged = found;
        }
        held = Some((sources, since));
        sleep(SUSPECT_POLL.min(settle - unchanged_for));
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

    /// Replaces a file's text without passing through an empty file, as
    /// `fs::write` does (truncate, then write): a writer stalled between the
    /// two on a loaded machine would leave an empty file standing still past
    /// a test's short settle time, which the reader rightly believes. The
    /// bytes are overwritten in place, then the length set.
    fn overwrite(path: &std::path::Path, text: &str) {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f.set_len(text.len() as u64).unwrap();
    }

    fn text_of<'a>(settled: &'a Settled, name: &str) -> Option<&'a str> {
        settled.sources.iter().find(|f| f.name == name).map(|f| &*f.text)
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
        assert_eq!(text_of(&settled, "deny.warden"), Some("threshold 50\n"));
        assert!(settled.believed.is_empty());
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
        assert_eq!(settled.believed, [Suspect { name: "deny.warden".into(), kind: Suspicion::Emptied }]);
        // A file that was already empty is no suspect.
        let settled = read_settled(&dir, &[SourceFile::new("deny.warden", "")], Duration::from_secs(5)).unwrap();
        assert!(settled.believed.is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_missing_file_is_waited_for_until_it_appears() {
        let dir = temp_dir();
        std::fs::write(dir.join("a.warden"), "threshold 50\n").unwrap();
        let serving =
            vec![SourceFile::new("a.warden", "threshold 50\n"), SourceFile::new("b.warden", "# the deny rule\n")];
        let writer = {
            let dir = dir.clone();
            std::thread::spawn(move || {
                sleep(Duration::from_millis(300));
                std::fs::write(dir.join("b.warden"), "# the deny rule\n").unwrap();
            })
        };
        let settled = read_settled(&dir, &serving, Duration::from_secs(5)).unwrap();
        writer.join().unwrap();
        assert_eq!(text_of(&settled, "b.warden"), Some("# the deny rule\n"));
        assert!(settled.believed.is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_file_cut_short_is_read_once_written_in_full() {
        let dir = temp_dir();
        let old = "# version 1, with a long comment\nthreshold 50\n";
        let new = "# version 2\nthreshold 40\n";
        std::fs::write(dir.join("a.warden"), "# version 2\n").unwrap();
        let writer = {
            let dir = dir.clone();
            std::thread::spawn(move || {
                sleep(Duration::from_millis(300));
                overwrite(&dir.join("a.warden"), new);
            })
        };
        let settle = Duration::from_millis(500);
        let started = Instant::now();
        let settled = read_settled(&dir, &[SourceFile::new("a.warden", old)], settle).unwrap();
        writer.join().unwrap();
        // Still shorter than the served text, so believed only once it
        // stood still for the settle time, and never the partial text.
        assert_eq!(text_of(&settled, "a.warden"), Some(new));
        assert!(started.elapsed() >= Duration::from_millis(300) + settle, "{:?}", started.elapsed());
        assert_eq!(
            settled.believed,
            [Suspect { name: "a.warden".into(), kind: Suspicion::Shorter { was: old.len(), now: new.len() } }]
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_directory_still_changing_restarts_the_settle_time() {
        let dir = temp_dir();
        std::fs::write(dir.join("a.warden"), "# 0\n").unwrap();
        // b is missing; a keeps changing (a copy in progress) for 600 ms.
        let serving = vec![SourceFile::new("a.warden", "# 0\n"), SourceFile::new("b.warden", "# b\n")];
        let writer = {
            let dir = dir.clone();
            std::thread::spawn(move || {
                for i in 1..=6 {
                    sleep(Duration::from_millis(100));
                    overwrite(&dir.join("a.warden"), &format!("# {i}\n"));
                }
            })
        };
        let settle = Duration::from_millis(300);
        let started = Instant::now();
        let settled = read_settled(&dir, &serving, settle).unwrap();
        writer.join().unwrap();
        assert!(started.elapsed() >= Duration::from_millis(600) + settle, "{:?}", started.elapsed());
        assert_eq!(text_of(&settled, "a.warden"), Some("# 6\n"));
        assert_eq!(settled.believed, [Suspect { name: "b.warden".into(), kind: Suspicion::Missing }]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn new_and_grown_files_need_only_two_agreeing_reads() {
        let dir = temp_dir();
        std::fs::write(dir.join("a.warden"), "# grown\nthreshold 50\n").unwrap();
        std::fs::write(dir.join("new.warden"), "# new\n").unwrap();
        let started = Instant::now();
        let settled =
            read_settled(&dir, &[SourceFile::new("a.warden", "threshold 50\n")], Duration::from_secs(30)).unwrap();
        // Nowhere near the settle time: nothing was suspect.
        assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
        assert!(settled.believed.is_empty());
        assert_eq!(settled.sources.len(), 2);
        let _ = std::fs::remove_dir_all(dir);
    }
}
