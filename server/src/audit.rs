//! The audit pipeline: a bounded queue in front of a background writer that
//! inserts rows in batches (see [`writer`]), with a local spill for when the
//! database is unreachable (see [`spill`]). Every row joins a tamper-evident
//! hash chain when it is inserted (see [`chain`]), which [`verify`] walks.
//!
//! Nothing is dropped silently. When the queue is full, `on_full` decides:
//! `block` makes the request wait for room (at most the block timeout, then
//! 503), `reject` answers 503 at once. When the database is unreachable, the
//! writer appends rows to spill files on the local disk, fsynced batch by
//! batch, and writes them to the database when it answers again, while
//! serving. On shutdown the writer drains the queue.
//!
//! With [`Durability::Ack`] (the default) a decision is acknowledged once
//! its row is queued: a crash loses the rows still in memory, which while
//! the database is down is at most what arrived in the last
//! [`writer::STALL`] plus one fsync. With [`Durability::Durable`] the
//! request waits until its row is committed in the database or fsynced in
//! the spill, so an acknowledged decision is never lost to a crash of the
//! process.

pub mod chain;
pub mod spill;
pub mod verify;
pub mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;
use crate::store::{AuditRecord, Store};

pub use spill::{Spill, replay_spill};
pub use writer::AuditWriter;

/// With `on_full = block`, how long a request may wait for queue room by
/// default: longer than a healthy queue ever needs, shorter than clients'
/// timeouts.
pub const DEFAULT_BLOCK_TIMEOUT: Duration = Duration::from_secs(1);

/// In durable mode, the longest a request waits for its row to become
/// durable before it gets 503 instead of an acknowledgement.
const DURABLE_WAIT: Duration = Duration::from_secs(5);

/// What to do with a request when the audit queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFull {
    /// Wait for room (the request is slower, never unaudited).
    Block,
    /// Answer 503 at once.
    Reject,
}

/// When a decision is acknowledged to the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Once its audit row is queued (fast; a crash loses the rows in memory).
    #[default]
    Ack,
    /// Once its audit row is committed in the database or fsynced in the
    /// local spill.
    Durable,
}

/// The row could not be queued (or, in durable mode, made durable).
#[derive(Debug, thiserror::Error)]
#[error("the audit queue is full")]
pub struct QueueFull;

/// Signals the request that its row is durable.
pub(crate) type Ack = oneshot::Sender<()>;

/// A row on its way to the writer, with the request waiting for it in
/// durable mode.
#[derive(Debug)]
pub(crate) struct Queued {
    pub record: AuditRecord,
    pub ack: Option<Ack>,
}

/// How the queue behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    /// Rows that may wait for the writer.
    pub capacity: usize,
    /// What a request does when the queue is full.
    pub on_full: OnFull,
    /// With `on_full = block`, the longest wait for room.
    pub block_timeout: Duration,
    /// When a decision is acknowledged.
    pub durability: Durability,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            on_full: OnFull::Block,
            block_timeout: DEFAULT_BLOCK_TIMEOUT,
            durability: Durability::Ack,
        }
    }
}

/// The sending side, held by request handlers.
#[derive(Debug, Clone)]
pub struct AuditQueue {
    tx: mpsc::Sender<Queued>,
    settings: QueueSettings,
    healthy: Arc<AtomicBool>,
}

impl AuditQueue {
    /// Enqueues a record; in durable mode, returns once it is durable.
    pub async fn push(&self, record: AuditRecord) -> Result<(), QueueFull> {
        let (ack, durable) = match self.settings.durability {
            Durability::Ack => (None, None),
            Durability::Durable => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            }
        };
        let queued = Queued { record, ack };
        match self.settings.on_full {
            // Wait for room, but not for long: a request held longer than
            // this gets 503 (and no acknowledgement) instead of hanging.
            OnFull::Block => match tokio::time::timeout(self.settings.block_timeout, self.tx.send(queued)).await {
                Ok(sent) => sent.map_err(|_| QueueFull)?,
                Err(_) => return Err(QueueFull),
            },
            OnFull::Reject => self.tx.try_send(queued).map_err(|_| QueueFull)?,
        }
        match durable {
            None => Ok(()),
            // The writer drops the sender if it could store the row nowhere.
            Some(rx) => match tokio::time::timeout(DURABLE_WAIT, rx).await {
                Ok(Ok(())) => Ok(()),
                _ => Err(QueueFull),
            },
        }
    }

    /// Rows waiting to be written.
    pub fn depth(&self) -> usize {
        self.settings.capacity.saturating_sub(self.tx.capacity())
    }

    /// The queue's capacity.
    pub fn capacity(&self) -> usize {
        self.settings.capacity
    }

    /// False while the writer is not reaching the database (rows are kept,
    /// or spilled to the local disk when a spill directory is set).
    pub fn writer_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }
}

/// A queue and its writer, with the default settings but for `capacity`
/// and `on_full`.
pub fn channel(store: Store, metrics: Arc<Metrics>, capacity: usize, on_full: OnFull) -> (AuditQueue, AuditWriter) {
    channel_with(store, metrics, QueueSettings { capacity, on_full, ..QueueSettings::default() })
}

/// A queue and its writer.
pub fn channel_with(store: Store, metrics: Arc<Metrics>, settings: QueueSettings) -> (AuditQueue, AuditWriter) {
    let settings = QueueSettings { capacity: settings.capacity.max(1), ..settings };
    let (tx, rx) = mpsc::channel(settings.capacity);
    let healthy = Arc::new(AtomicBool::new(true));
    let queue = AuditQueue { tx, settings, healthy: healthy.clone() };
    (queue, AuditWriter::new(rx, store, metrics, healthy))
}
