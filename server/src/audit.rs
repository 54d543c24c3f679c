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
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
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
}

/// A queue and its writer.
pub fn channel(store: Store, metrics: Arc<Metrics>, capacity: usize, on_full: OnFull) -> (AuditQueue, AuditWriter) {
    let capacity = capacity.max(1);
    let (tx, rx) = mpsc::channel(capacity);
    let healthy = Arc::new(AtomicBool::new(true));
    let queue = AuditQueue { tx, capacity, on_full, healthy: healthy.clone() };
    let writer = AuditWriter { rx, store, metrics, healthy, batch: crate::store::audit_batch_size() };
    (queue, writer)
}

impl AuditWriter {
    /// Writes batches until `shutdown` turns true, then drains what is
    /// queued and returns the number of rows written in all.
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
            self.write(&buf).await;
            written += buf.len() as u64;
            buf.clear();
        }
        written
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
    async fn write(&self, rows: &[AuditRecord]) {
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
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    pending.push(chunk);
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
