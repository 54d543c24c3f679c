//! The local spill: audit rows that could not reach the database, on disk.
//!
//! Rows are appended to segment files `audit-spill-<uuid v7>.jsonl` (one
//! JSON record a line; names sort by creation time), and each appended
//! batch is fsynced before its rows count as spilled, so a crash loses no
//! spilled row (at most a torn last line of a batch that was never
//! acknowledged as spilled). A segment holds at most [`SEGMENT_ROWS`] rows
//! and is written back in one transaction, so a segment is in the database
//! whole or not at all; it is deleted only after that commit. The running
//! writer replays segments as soon as the database answers again, and
//! [`replay_spill`] does the same at start-up.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::store::{AuditRecord, Store};

/// Rows per segment file: one transaction when written back.
pub const SEGMENT_ROWS: usize = 10_000;

/// Segment files are named `audit-spill-<id>.jsonl`.
const PREFIX: &str = "audit-spill-";

/// Where rows go while the database is unreachable.
#[derive(Debug, Clone)]
pub struct Spill {
    /// The directory for spill files.
    pub dir: PathBuf,
    /// At shutdown, how long the writer keeps trying the database before
    /// spilling what is left.
    pub drain_timeout: Duration,
}

/// The segment being appended to.
#[derive(Debug)]
struct Segment {
    path: PathBuf,
    file: File,
    rows: usize,
}

/// Appends rows to segment files in one directory.
#[derive(Debug)]
pub(crate) struct SpillLog {
    dir: PathBuf,
    open: Option<Segment>,
}

impl SpillLog {
    /// A spill log in `dir` (created on first use).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir, open: None }
    }

    /// Appends `rows` and fsyncs them. Returns the segment written to.
    pub fn append<'a>(&mut self, rows: impl IntoIterator<Item = &'a AuditRecord>) -> std::io::Result<PathBuf> {
        let mut lines = Vec::new();
        let mut count = 0usize;
        for r in rows {
            serde_json::to_writer(&mut lines, r)?;
            lines.push(b'\n');
            count += 1;
        }
        if self.open.as_ref().is_some_and(|s| s.rows >= SEGMENT_ROWS) {
            self.open = None;
        }
        let segment = match &mut self.open {
            Some(s) => s,
            None => self.open.insert(self.create()?),
        };
        segment.file.write_all(&lines)?;
        segment.file.sync_data()?;
        segment.rows += count;
        Ok(segment.path.clone())
    }

    /// Writes `rows` to a segment of their own (not appended to later), for
    /// a batch whose database write is still in doubt: deleted if it
    /// commits after all.
    pub fn write_separate(&mut self, rows: &[AuditRecord]) -> std::io::Result<PathBuf> {
        let open = self.open.take();
        let written = self.append(rows);
        self.open = open;
        written
    }

    /// Stops appending to the current segment (so it can be replayed).
    pub fn close_segment(&mut self) {
        self.open = None;
    }

    fn create(&self) -> std::io::Result<Segment> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(format!("{PREFIX}{}.jsonl", uuid::Uuid::now_v7()));
        let file = File::options().create_new(true).append(true).open(&path)?;
        // The new name must survive a crash too.
        File::open(&self.dir)?.sync_all()?;
        Ok(Segment { path, file, rows: 0 })
    }
}

/// The segment files in `dir`, oldest first.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(".jsonl"))
        })
        .collect();
    files.sort();
    files
}

/// Whether `dir` holds segments waiting to be written.
pub(crate) fn has_segments(dir: &Path) -> bool {
    !segments(dir).is_empty()
}

/// Reads one segment: its rows, and how many lines could not be read. A
/// last line cut short (a crash in the middle of an append, before that
/// batch counted as spilled) is not counted as unreadable.
fn read_segment(path: &Path) -> std::io::Result<(Vec<AuditRecord>, usize)> {
    let text = std::fs::read_to_string(path)?;
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = lines.len().saturating_sub(1);
    let (mut rows, mut bad) = (Vec::with_capacity(lines.len()), 0usize);
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<AuditRecord>(line) {
            Ok(r) => rows.push(r),
            Err(_) if i == last && !complete => {
                tracing::warn!(file = %path.display(), "spill file ends in a line cut short by a crash; skipped");
            }
            Err(_) => bad += 1,
        }
    }
    Ok((rows, bad))
}

/// Writes the spill files in `dir` to the database, oldest first, each in
/// one transaction, deleting each once committed. Returns how many rows it
/// wrote. See [`replay_files`].
pub async fn replay_spill(store: &Store, dir: &Path) -> anyhow::Result<u64> {
    replay_files(store, segments(dir)).await
}

/// The segment files in `dir`, oldest first.
pub(crate) fn segments_in(dir: &Path) -> Vec<PathBuf> {
    segments(dir)
}

/// Writes `files` (spill segments) to the database in order, each in one
/// transaction, deleting each once committed. Rows already in the table (a
/// write that committed after its batch was spilled) are left out. Returns how many rows it
/// wrote. Stops at the first error the database may get over (the files
/// not yet written stay for the next try). A file with unreadable lines, or
/// with rows the database refuses outright, is kept, renamed `.bad`, for an
/// operator to look at (its readable rows are written first, if they can
/// be), so it cannot block the files after it.
pub(crate) async fn replay_files(store: &Store, files: Vec<PathBuf>) -> anyhow::Result<u64> {
    let mut total = 0u64;
    for path in files {
        let (rows, mut bad) = read_segment(&path)?;
        let rows = match store.unwritten(rows).await {
            Ok(rows) => rows,
            Err(e) => return Err(e.into()),
        };
        if !rows.is_empty() {
            match store.insert_audit(&rows).await {
                Ok(()) => total += rows.len() as u64,
                Err(e) if e.is_transient() => return Err(e.into()),
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "the database refuses rows of a spill file");
                    bad += rows.len();
                }
            }
        }
        if bad == 0 {
            std::fs::remove_file(&path)?;
        } else {
            tracing::error!(file = %path.display(), bad, "spill file had rows that could not be written; kept as .bad");
            std::fs::rename(&path, path.with_extension("jsonl.bad"))?;
        }
    }
    Ok(total)
}
