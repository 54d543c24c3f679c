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
            OnFull::Block => self.tx.send(record).await.map_err(|_| QueueFull),
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

    /// Writes one batch, retrying with backoff until it succeeds.
    async fn write(&self, rows: &[AuditRecord]) {
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.store.insert_audit(rows).await {
                Ok(()) => break,
                Err(e) => {
                    self.metrics.audit_failure();
                    self.healthy.store(false, Ordering::Relaxed);
                    tracing::warn!(error = %e, rows = rows.len(), retry_in_ms = backoff.as_millis() as u64, "audit write failed; keeping the rows and retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        self.healthy.store(true, Ordering::Relaxed);
        self.metrics.audit_written(rows.len() as u64);
    }
}
