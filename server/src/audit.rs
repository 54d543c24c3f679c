//! The audit pipeline: a bounded queue in front of a background writer that
//! inserts rows in batches. The request path only enqueues; it never waits
//! for the database.
//!
//! Nothing is dropped silently. When the queue is full, `on_full` decides:
//! `block` makes the request wait for room, `reject` answers 503. When the
//! database is down, the writer keeps its batch and retries with backoff
//! (the queue then fills, and `on_full` applies). On shutdown the writer
//! drains the queue and returns only when every row is written.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::metrics::Metrics;
use crate::store::{AuditRecord, Store};

/// How long the writer waits for a partial batch to fill. Rows are already
/// acknowledged to clients; this only delays when they reach the table.
const LINGER: Duration = Duration::from_millis(5);

/// With `on_full = block`, how long a request may wait for queue room.
const BLOCK_LIMIT: Duration = Duration::from_secs(10);

/// What to do with a request when the audit queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFull {
    /// Wait for room (the request is slower, never unaudited).
    Block,
    /// Answer 503 at once.
    Reject,
}

/// The queue is full and `on_full = reject`.
#[derive(Debug, thiserror::Error)]
#[error("the audit queue is full")]
pub struct QueueFull;

/// The sending side, held by request handlers.
#[derive(Debug, Clone)]
pub struct AuditQueue {
    tx: mpsc::Sender<AuditRecord>,
    capacity: usize,
    on_full: OnFull,
    healthy: Arc<AtomicBool>,
}

impl AuditQueue {
    /// Enqueues a record.
    pub async fn push(&self, record: AuditRecord) -> Result<(), QueueFull> {
        match self.on_full {
            // Wait for room, but not forever: a request held longer than
            // this gets 503 (and no acknowledgement) instead of hanging.
            OnFull::Block => match tokio::time::timeout(BLOCK_LIMIT, self.tx.send(record)).await {
                Ok(sent) => sent.map_err(|_| QueueFull),
                Err(_) => Err(QueueFull),
            },
            OnFull::Reject => self.tx.try_send(record).map_err(|_| QueueFull),
        }
    }

    /// Rows waiting to be written.
    pub fn depth(&self) -> usize {
        self.capacity.saturating_sub(self.tx.capacity())
    }

    /// The queue's capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// False while the writer is failing to reach the database.
    pub fn writer_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }
}

/// The background writer.
#[derive(Debug)]
pub struct AuditWriter {
    rx: mpsc::Receiver<AuditRecord>,
    store: Store,
    metrics: Arc<Metrics>,
    healthy: Arc<AtomicBool>,
    batch: usize,
    spill: Option<Spill>,
    /// When shutdown began, once it has.
    closing_since: Option<tokio::time::Instant>,
}

/// Where rows go if the database is still unreachable this long after
/// shutdown began: a file that the next start writes to the database.
#[derive(Debug, Clone)]
pub struct Spill {
    /// The directory for spill files.
    pub dir: std::path::PathBuf,
    /// How long shutdown waits for the database before spilling.
    pub drain_timeout: Duration,
}

/// A queue and its writer.
pub fn channel(store: Store, metrics: Arc<Metrics>, capacity: usize, on_full: OnFull) -> (AuditQueue, AuditWriter) {
    let capacity = capacity.max(1);
    let (tx, rx) = mpsc::channel(capacity);
    let healthy = Arc::new(AtomicBool::new(true));
    let queue = AuditQueue { tx, capacity, on_full, healthy: healthy.clone() };
    let writer = AuditWriter {
        rx,
        store,
        metrics,
        healthy,
        batch: crate::store::audit_batch_size(),
        spill: None,
        closing_since: None,
    };
    (queue, writer)
}

impl AuditWriter {
    /// Spill to a file instead of waiting forever at shutdown.
    #[must_use]
    pub fn with_spill(mut self, spill: Spill) -> Self {
        self.spill = Some(spill);
        self
    }

    /// Writes batches until `shutdown` turns true, then drains what is
    /// queued and returns the number of rows written in all. If the
    /// database stays unreachable past the drain timeout after shutdown, the
    /// rows not yet written go to a spill file instead (see [`Spill`]).
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> u64 {
        let mut written = 0u64;
        let mut buf = Vec::with_capacity(self.batch);
        let mut closing = false;
        loop {
            let n = if closing {
                self.rx.recv_many(&mut buf, self.batch).await
            } else {
                tokio::select! {
                    n = self.rx.recv_many(&mut buf, self.batch) => n,
                    _ = shutdown.wait_for(|stop| *stop) => {
                        // No new rows from now on; what is queued is still
                        // delivered by `recv_many` until it returns 0.
                        self.rx.close();
                        closing = true;
                        continue;
                    }
                }
            };
            if n == 0 {
                break;
            }
            if !closing {
                self.linger(&mut buf).await;
            }
            match self.write(&buf, &shutdown).await {
                Ok(()) => written += buf.len() as u64,
                Err(mut unwritten) => {
                    written += (buf.len() - unwritten.len()) as u64;
                    self.rx.close();
                    while let Ok(r) = self.rx.try_recv() {
                        unwritten.push(r);
                    }
                    self.spill_rows(&unwritten);
                    return written;
                }
            }
            buf.clear();
        }
        written
    }

    fn spill_rows(&self, rows: &[AuditRecord]) {
        let Some(spill) = &self.spill else { return };
        match write_spill(&spill.dir, rows) {
            Ok(path) => {
                tracing::error!(rows = rows.len(), file = %path.display(), "database unreachable at shutdown; audit rows spilled to a file, written at the next start")
            }
            Err(e) => {
                tracing::error!(rows = rows.len(), error = %e, "database unreachable at shutdown and the spill file could not be written; these audit rows are lost")
            }
        }
    }

    /// Waits a moment for a partial batch to fill: one transaction of many
    /// rows costs far less than many of one.
    async fn linger(&mut self, buf: &mut Vec<AuditRecord>) {
        let deadline = tokio::time::Instant::now() + LINGER;
        while buf.len() < self.batch {
            let room = self.batch - buf.len();
            match tokio::time::timeout_at(deadline, self.rx.recv_many(buf, room)).await {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
    }

    /// Writes one batch. Transient failures (connection, deadlock, a
    /// missing table during maintenance) are retried with backoff, keeping
    /// the rows. A row the database refuses outright (a data or constraint
    /// error) must not wedge the queue behind it: the batch is split until
    /// the bad row is found, that row is written in a reduced form (no
    /// `meta`, no model or operation), and only if even that is refused is
    /// it dropped, counted and logged by decision id.
    async fn write(&mut self, rows: &[AuditRecord], shutdown: &watch::Receiver<bool>) -> Result<(), Vec<AuditRecord>> {
        let mut pending: Vec<&[AuditRecord]> = vec![rows];
        let mut failures = 0u32;
        let mut backoff = Duration::from_millis(50);
        while let Some(chunk) = pending.pop() {
            match self.store.insert_audit(chunk).await {
                Ok(()) => {
                    failures = 0;
                    backoff = Duration::from_millis(50);
                    self.healthy.store(true, Ordering::Relaxed);
                    self.metrics.audit_written(chunk.len() as u64);
                }
                Err(e) if e.is_transient() => {
                    self.metrics.audit_failure();
                    failures += 1;
                    // One failed batch is a blip (a deadlock retried); three
                    // in a row mean the database is not taking writes.
                    if failures >= 3 {
                        self.healthy.store(false, Ordering::Relaxed);
                    }
                    tracing::warn!(error = %e, rows = chunk.len(), retry_in_ms = backoff.as_millis() as u64, "audit write failed; keeping the rows and retrying");
                    pending.push(chunk);
                    if *shutdown.borrow() {
                        let since = *self.closing_since.get_or_insert_with(tokio::time::Instant::now);
                        if let Some(spill) = &self.spill {
                            if since.elapsed() >= spill.drain_timeout {
                                return Err(pending.iter().flat_map(|c| c.iter().cloned()).collect());
                            }
                        }
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    self.metrics.audit_failure();
                    if chunk.len() > 1 {
                        let (a, b) = chunk.split_at(chunk.len() / 2);
                        pending.push(b);
                        pending.push(a);
                    } else {
                        self.write_reduced(chunk, &e).await;
                    }
                }
            }
        }
        Ok(())
    }

    async fn write_reduced(&self, row: &[AuditRecord], cause: &crate::store::StoreError) {
        let reduced: Vec<AuditRecord> = row
            .iter()
            .map(|r| AuditRecord { model: None, operation: None, meta: serde_json::json!({}), ..r.clone() })
            .collect();
        match self.store.insert_audit(&reduced).await {
            Ok(()) => {
                tracing::warn!(error = %cause, decision_id = ?row.first().map(|r| r.decision_id), "audit row refused; written without its metadata");
                self.metrics.audit_written(reduced.len() as u64);
            }
            Err(e) => {
                tracing::error!(error = %e, decision_id = ?row.first().map(|r| r.decision_id), "audit row refused even without metadata; dropped");
                self.metrics.audit_dropped(row.len() as u64);
            }
        }
    }
}

/// Spill files are named `audit-spill-<id>.jsonl`: one JSON record a line.
const SPILL_PREFIX: &str = "audit-spill-";

fn write_spill(dir: &std::path::Path, rows: &[AuditRecord]) -> std::io::Result<std::path::PathBuf> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{SPILL_PREFIX}{}.jsonl", uuid::Uuid::now_v7()));
    let tmp = path.with_extension("partial");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    for r in rows {
        serde_json::to_writer(&mut file, r)?;
        file.write_all(b"\n")?;
    }
    file.into_inner().map_err(std::io::IntoInnerError::into_error)?.sync_all()?;
    // Complete files only: a crash mid-write leaves a `.partial`, not a
    // truncated file the next start would half-replay.
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Writes spill files left by an earlier shutdown to the database, then
/// deletes them. Returns how many rows it wrote. A file with an unreadable
/// line is kept, renamed `.bad`, for an operator to look at.
pub async fn replay_spill(store: &Store, dir: &std::path::Path) -> anyhow::Result<u64> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(0) };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(SPILL_PREFIX) && n.ends_with(".jsonl"))
        })
        .collect();
    files.sort();
    let mut total = 0u64;
    for path in files {
        let text = std::fs::read_to_string(&path)?;
        let mut rows = Vec::new();
        let mut bad = 0usize;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<AuditRecord>(line) {
                Ok(r) => rows.push(r),
                Err(_) => bad += 1,
            }
        }
        for chunk in rows.chunks(crate::store::MAX_BATCH) {
            store.insert_audit(chunk).await?;
        }
        total += rows.len() as u64;
        if bad == 0 {
            std::fs::remove_file(&path)?;
        } else {
            tracing::error!(file = %path.display(), bad, "spill file had unreadable lines; kept as .bad");
            std::fs::rename(&path, path.with_extension("jsonl.bad"))?;
        }
    }
    Ok(total)
}
