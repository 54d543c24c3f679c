//! The background audit writer.
//!
//! It takes rows from the queue in batches and writes them with multi-row
//! INSERTs. While the database answers, that is all. When a write fails for
//! a reason that may pass (a connection lost, a busy file, a missing table)
//! or takes longer than [`WRITE_TIMEOUT`], and a spill directory is set, the
//! writer switches to spilling: every batch is appended to the local spill
//! and fsynced (see [`super::spill`]), and the database is probed with
//! backoff by writing the spill back; once that succeeds, the spill files
//! are deleted and rows go to the database again. A write still running
//! after [`STALL`] is not waited on with rows in memory: its batch is
//! written to a spill file of its own (deleted if the write commits after
//! all) and new rows are spilled as they arrive. So while the database is
//! down, a row reaches the disk within [`STALL`] plus one fsync.
//!
//! Without a spill directory (tests, mostly), the writer keeps its batch
//! and retries with backoff, as the queue fills behind it.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::Queued;
use super::spill::{Spill, SpillLog};
use crate::metrics::Metrics;
use crate::store::{AuditRecord, Store, StoreError};

/// How long the writer waits for a partial batch to fill (not in durable
/// mode, where requests wait for their rows).
const LINGER: Duration = Duration::from_millis(5);

/// A database write running longer than this has its rows (and the rows
/// arriving meanwhile) written to the spill while it goes on.
pub const STALL: Duration = Duration::from_millis(100);

/// A database write not done by then counts as failed.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// While spilling, the database is tried again after this long, doubling
/// up to [`PROBE_MAX`].
const PROBE_MIN: Duration = Duration::from_millis(250);
const PROBE_MAX: Duration = Duration::from_secs(5);

/// At shutdown, once rows could be neither written nor spilled for this
/// long past the drain timeout, they are counted as dropped and the writer
/// returns: a process that can reach neither its database nor its disk
/// must still exit rather than retry forever.
const FINAL_GRACE: Duration = Duration::from_secs(30);

/// The background writer.
#[derive(Debug)]
pub struct AuditWriter {
    rx: mpsc::Receiver<Queued>,
    store: Store,
    metrics: Arc<Metrics>,
    healthy: Arc<AtomicBool>,
    batch: usize,
    spill: Option<(Spill, SpillLog)>,
    /// The database is unreachable: rows go to the spill.
    spilling: bool,
    /// Spill files wait to be written back (the database may be up).
    replay_pending: bool,
    next_probe: Instant,
    probe_backoff: Duration,
    /// Rows taken from the queue but neither written nor spilled yet.
    held: Vec<Queued>,
    written: u64,
}

/// The rows of `queued`, acknowledged once durable (dropping `acks`
/// instead tells their requests that the rows could not be stored).
fn ack_all(acks: Vec<Option<super::Ack>>) {
    for ack in acks.into_iter().flatten() {
        let _ = ack.send(());
    }
}

impl AuditWriter {
    pub(super) fn new(
        rx: mpsc::Receiver<Queued>,
        store: Store,
        metrics: Arc<Metrics>,
        healthy: Arc<AtomicBool>,
    ) -> Self {
        Self {
            rx,
            store,
            metrics,
            healthy,
            batch: crate::store::audit_batch_size(),
            spill: None,
            spilling: false,
            replay_pending: false,
            next_probe: Instant::now(),
            probe_backoff: PROBE_MIN,
            held: Vec::new(),
            written: 0,
        }
    }

    /// Spill to local files while the database is unreachable.
    #[must_use]
    pub fn with_spill(mut self, spill: Spill) -> Self {
        let log = SpillLog::new(spill.dir.clone());
        self.replay_pending = super::spill::has_segments(&spill.dir);
        self.spill = Some((spill, log));
        self
    }

    /// Writes batches until `shutdown` turns true, then drains what is
    /// queued and returns the number of rows written to the database
    /// (spilled rows written back included).
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> u64 {
        let mut buf: Vec<Queued> = Vec::with_capacity(self.batch);
        let mut closing_since: Option<Instant> = None;
        loop {
            if self.replay_pending && closing_since.is_none() && Instant::now() >= self.next_probe {
                self.write_back().await;
            }
            buf.append(&mut self.held);
            if buf.is_empty() {
                let n = if closing_since.is_some() {
                    self.rx.recv_many(&mut buf, self.batch).await
                } else {
                    let probe = self.replay_pending.then_some(self.next_probe);
                    tokio::select! {
                        n = self.rx.recv_many(&mut buf, self.batch) => n,
                        () = async { let _ = shutdown.wait_for(|stop| *stop).await; } => {
                            // No new rows from now on; what is queued is
                            // still delivered until `recv_many` returns 0.
                            self.rx.close();
                            closing_since = Some(Instant::now());
                            continue;
                        }
                        () = tokio::time::sleep_until(probe.unwrap_or_else(Instant::now)), if probe.is_some() => continue,
                    }
                };
                if n == 0 {
                    break;
                }
                let durable = buf.iter().any(|q| q.ack.is_some());
                if closing_since.is_none() && !durable {
                    self.linger(&mut buf).await;
                }
            }
            if let (Some(since), Some((spill, _))) = (closing_since, &self.spill) {
                if !self.spilling && since.elapsed() >= spill.drain_timeout {
                    tracing::warn!("shutdown drain timeout reached; spilling the audit rows still queued");
                    self.spilling = true;
                }
                if since.elapsed() >= spill.drain_timeout + FINAL_GRACE {
                    buf.append(&mut self.held);
                    while let Ok(q) = self.rx.try_recv() {
                        buf.push(q);
                    }
                    tracing::error!(
                        rows = buf.len(),
                        "shutdown: neither the database nor the spill directory took these audit rows; they are lost"
                    );
                    self.metrics.audit_dropped(buf.len() as u64);
                    break;
                }
            }
            self.deliver(std::mem::take(&mut buf)).await;
        }
        self.written
    }

    /// Waits a moment for a partial batch to fill: one transaction of many
    /// rows costs far less than many of one.
    async fn linger(&mut self, buf: &mut Vec<Queued>) {
        let deadline = Instant::now() + LINGER;
        while buf.len() < self.batch {
            let room = self.batch - buf.len();
            match tokio::time::timeout_at(deadline, self.rx.recv_many(buf, room)).await {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
    }

    /// Stores one batch: in the database, or in the spill.
    async fn deliver(&mut self, batch: Vec<Queued>) {
        let (records, acks): (Vec<AuditRecord>, Vec<Option<super::Ack>>) =
            batch.into_iter().map(|q| (q.record, q.ack)).unzip();
        if self.spilling {
            match self.spill_records(&records) {
                Ok(()) => ack_all(acks),
                Err(e) => {
                    tracing::error!(error = %e, rows = records.len(), "audit rows could not be spilled; trying the database instead");
                    self.spilling = false;
                    // Neither store may be answering: don't spin.
                    tokio::time::sleep(PROBE_MIN).await;
                    self.hold(records, acks);
                }
            }
            return;
        }
        match self.write(&records).await {
            Ok(()) => ack_all(acks),
            Err(unwritten) => {
                self.enter_spilling();
                match self.spill_records(&unwritten) {
                    Ok(()) => ack_all(acks),
                    Err(e) => {
                        tracing::error!(error = %e, rows = unwritten.len(), "database unreachable and audit rows could not be spilled; keeping them and retrying");
                        self.spilling = false;
                        tokio::time::sleep(PROBE_MIN).await;
                        // Those already written are in the database; their
                        // requests get an error all the same (conservative).
                        drop(acks);
                        self.hold(unwritten, Vec::new());
                    }
                }
            }
        }
    }

    fn hold(&mut self, records: Vec<AuditRecord>, acks: Vec<Option<super::Ack>>) {
        let mut acks = acks.into_iter();
        self.held.extend(records.into_iter().map(|record| Queued { record, ack: acks.next().flatten() }));
    }

    fn enter_spilling(&mut self) {
        if !self.spilling {
            tracing::warn!("database unreachable; audit rows go to the local spill until it answers again");
        }
        self.spilling = true;
        self.replay_pending = true;
        self.healthy.store(false, Ordering::Relaxed);
        self.next_probe = Instant::now() + self.probe_backoff;
    }

    fn spill_records(&mut self, records: &[AuditRecord]) -> std::io::Result<()> {
        let Some((_, log)) = &mut self.spill else {
            return Err(std::io::Error::other("no spill directory is set"));
        };
        log.append(records)?;
        self.metrics.audit_spilled(records.len() as u64);
        self.replay_pending = true;
        Ok(())
    }

    /// Runs `work` (a database write) while keeping rows moving: once it has
    /// run for `stall`, `in_doubt` is written to a spill file of its own
    /// (returned, so it can be deleted if the write commits) and rows that
    /// arrive meanwhile are spilled as they come.
    async fn spilling_meanwhile<T>(
        &mut self,
        work: impl Future<Output = T>,
        stall: Duration,
        in_doubt: Option<&[AuditRecord]>,
    ) -> (T, Option<PathBuf>) {
        if self.spill.is_none() {
            return (work.await, None);
        }
        tokio::pin!(work);
        let timer = tokio::time::sleep(stall);
        tokio::pin!(timer);
        let (mut stalled, mut doubt_file, mut open) = (false, None, true);
        let mut arriving = Vec::new();
        loop {
            tokio::select! {
                biased;
                out = &mut work => return (out, doubt_file),
                () = &mut timer, if !stalled => {
                    stalled = true;
                    if let (Some(rows), Some((_, log))) = (in_doubt, &mut self.spill) {
                        match log.write_separate(rows) {
                            Ok(path) => doubt_file = Some(path),
                            Err(e) => tracing::error!(error = %e, "could not spill a stalled audit batch"),
                        }
                    }
                }
                n = self.rx.recv_many(&mut arriving, self.batch), if stalled && open => {
                    if n == 0 {
                        open = false;
                    } else {
                        let (records, acks): (Vec<_>, Vec<_>) = arriving.drain(..).map(|q| (q.record, q.ack)).unzip();
                        match self.spill_records(&records) {
                            Ok(()) => ack_all(acks),
                            Err(e) => {
                                tracing::error!(error = %e, "could not spill audit rows; keeping them");
                                self.hold(records, acks);
                            }
                        }
                    }
                }
            }
        }
    }

    /// One INSERT (in one transaction), bounded by [`WRITE_TIMEOUT`], with
    /// rows kept moving if it stalls. `Ok(true)`: written; `Ok(false)`: a
    /// transient failure whose rows are already in a spill file.
    async fn insert(&mut self, rows: &[AuditRecord]) -> Result<bool, StoreError> {
        let store = self.store.clone();
        let work = tokio::time::timeout(WRITE_TIMEOUT, store.insert_audit(rows));
        let (result, doubt_file) = self.spilling_meanwhile(work, STALL, Some(rows)).await;
        let result = result.unwrap_or(Err(StoreError::Database(sqlx::Error::PoolTimedOut)));
        match (result, doubt_file) {
            (Ok(()), doubt) => {
                if let Some(path) = doubt {
                    // Committed after all: the spilled copy must not be
                    // written a second time.
                    if let Err(e) = std::fs::remove_file(&path) {
                        tracing::error!(error = %e, file = %path.display(), "could not remove a spill file whose rows were written; they may be written twice");
                    }
                }
                Ok(true)
            }
            (Err(e), Some(_)) if e.is_transient() => {
                tracing::warn!(error = %e, rows = rows.len(), "audit write failed; its rows are in the spill");
                Ok(false)
            }
            (Err(e), doubt) => {
                if let Some(path) = doubt {
                    let _ = std::fs::remove_file(path);
                }
                Err(e)
            }
        }
    }

    /// Writes one batch. Transient failures (connection, deadlock, a
    /// missing table during maintenance, a write past [`WRITE_TIMEOUT`])
    /// return the rows not written, to be spilled; without a spill they are
    /// retried with backoff. A row the database refuses outright (a data or
    /// constraint error) must not wedge the queue behind it: the batch is
    /// split until the bad row is found, that row is written in a reduced
    /// form (no `meta`, no model or operation), and only if even that is
    /// refused is it dropped, counted and logged by decision id.
    async fn write(&mut self, rows: &[AuditRecord]) -> Result<(), Vec<AuditRecord>> {
        let mut pending: Vec<&[AuditRecord]> = vec![rows];
        let mut failures = 0u32;
        let mut backoff = Duration::from_millis(50);
        while let Some(chunk) = pending.pop() {
            match self.insert(chunk).await {
                Ok(true) => {
                    failures = 0;
                    backoff = Duration::from_millis(50);
                    if !self.replay_pending {
                        self.healthy.store(true, Ordering::Relaxed);
                    }
                    self.metrics.audit_written(chunk.len() as u64);
                    self.written += chunk.len() as u64;
                }
                Ok(false) => {
                    self.metrics.audit_failure();
                    self.enter_spilling();
                    return Err(pending.iter().flat_map(|c| c.iter().cloned()).collect());
                }
                Err(e) if e.is_transient() => {
                    self.metrics.audit_failure();
                    if self.spill.is_some() {
                        tracing::warn!(error = %e, rows = chunk.len(), "audit write failed; spilling");
                        pending.push(chunk);
                        return Err(pending.iter().flat_map(|c| c.iter().cloned()).collect());
                    }
                    failures += 1;
                    // One failed batch is a blip (a deadlock retried); three
                    // in a row mean the database is not taking writes.
                    if failures >= 3 {
                        self.healthy.store(false, Ordering::Relaxed);
                    }
                    tracing::warn!(error = %e, rows = chunk.len(), retry_in_ms = backoff.as_millis() as u64, "audit write failed; keeping the rows and retrying");
                    pending.push(chunk);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(PROBE_MAX);
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

    async fn write_reduced(&mut self, row: &[AuditRecord], cause: &StoreError) {
        let reduced: Vec<AuditRecord> = row
            .iter()
            .map(|r| AuditRecord { model: None, operation: None, meta: serde_json::json!({}), ..r.clone() })
            .collect();
        match self.store.insert_audit(&reduced).await {
            Ok(()) => {
                tracing::warn!(error = %cause, decision_id = ?row.first().map(|r| r.decision_id), "audit row refused; written without its metadata");
                self.metrics.audit_written(reduced.len() as u64);
                self.written += reduced.len() as u64;
            }
            Err(e) => {
                tracing::error!(error = %e, decision_id = ?row.first().map(|r| r.decision_id), "audit row refused even without metadata; dropped");
                self.metrics.audit_dropped(row.len() as u64);
            }
        }
    }

    /// Tries to write the spill back to the database (new rows keep going
    /// to the spill meanwhile). On success the writer is back to writing to
    /// the database; otherwise it tries again after a backoff.
    async fn write_back(&mut self) {
        let Some((spill, log)) = &mut self.spill else {
            self.replay_pending = false;
            return;
        };
        log.close_segment();
        let dir = spill.dir.clone();
        let files = super::spill::segments_in(&dir);
        let store = self.store.clone();
        let work = tokio::time::timeout(
            WRITE_TIMEOUT * u32::try_from(files.len().max(1)).unwrap_or(u32::MAX),
            super::spill::replay_files(&store, files),
        );
        let (result, _) = self.spilling_meanwhile(work, Duration::ZERO, None).await;
        match result {
            Ok(Ok(rows)) => {
                if rows > 0 {
                    tracing::info!(rows, "the database answers again; spilled audit rows written back");
                    self.metrics.audit_written(rows);
                    self.written += rows;
                }
                // Rows spilled while writing back wait for the next round.
                let more = super::spill::has_segments(&dir);
                self.replay_pending = more;
                self.spilling = false;
                self.probe_backoff = PROBE_MIN;
                self.next_probe = Instant::now();
                if !more {
                    self.healthy.store(true, Ordering::Relaxed);
                }
            }
            Ok(Err(e)) => self.probe_failed(&e.to_string()),
            Err(_) => self.probe_failed("no answer in time"),
        }
    }

    fn probe_failed(&mut self, error: &str) {
        tracing::debug!(%error, "database still unreachable; audit rows stay in the spill");
        self.healthy.store(false, Ordering::Relaxed);
        self.probe_backoff = (self.probe_backoff * 2).min(PROBE_MAX);
        self.next_probe = Instant::now() + self.probe_backoff;
    }
}
