//! `warden audit verify`: walks each hash chain in order and names the
//! first broken link and every other one it finds, with the kind of damage.
//!
//! The walk reads rows in keyset-paged chain order (`chain_seq > last`,
//! [`PAGE`] rows a page), recomputes each row's hash from its columns and
//! checks it against the stored one, and checks that each row links to the
//! hash of the row before it. It starts at the genesis hash, or at the last
//! prune checkpoint (whose own record in the admin trail is checked too),
//! and ends at the chain head read when the walk began (rows appended
//! meanwhile are left for the next walk); then it checks the head against
//! the last row and looks for rows beyond the head.
//!
//! # Telling the damage apart
//!
//! With `S` the next expected position and `P` the hash the next row must
//! link to:
//!
//! - **altered**: the row links to `P`, but its columns no longer give its
//!   stored hash (a value was edited; the next row still links to the
//!   stored hash, so one edit is one report);
//! - **removed**: the row's position is past `S` and its link names a hash
//!   that is nowhere near (rows `S…` are missing); at the end, the head
//!   records more rows than there are;
//! - **inserted**: two rows name the same predecessor, or the row after it
//!   links straight to `P` (the row in between was slipped in), or a row
//!   sits at a position already taken, beyond the head, or without a
//!   position after the chain began;
//! - **reordered**: the row's predecessor is elsewhere nearby in the chain
//!   (within [`WINDOW`] rows either side): rows were moved;
//! - **broken link**: the row's predecessor is missing but its position
//!   follows on (a row was removed and the positions renumbered, or the
//!   row before was rewritten with its hash recomputed: the chain alone
//!   can't tell these apart);
//! - **unrecorded checkpoint**: the checkpoint the walk starts from is not
//!   in the admin trail (a prune that Warden did not make).
//!
//! Consecutive rows with the same kind of damage are one report. After a
//! report the walk follows the damaged row's stored hash, so the rows after
//! it are still checked.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::chain::{Chain, GENESIS};
use crate::store::{ChainHead, ChainRow, Checkpoint, Store, StoreError};

/// Rows read per page.
pub const PAGE: i64 = 5_000;

/// How far before and after a row a reordered row's predecessor is looked
/// for.
pub const WINDOW: usize = 256;

/// Reports kept per chain (more are counted, not listed).
const MAX_PROBLEMS: usize = 100;

/// The kinds of damage the walk tells apart (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Damage {
    /// A row's columns were changed after it was written.
    Altered,
    /// Rows are missing.
    Removed,
    /// A row was added that Warden did not write.
    Inserted,
    /// Rows were moved out of chain order.
    Reordered,
    /// A row's predecessor is missing though its position follows on.
    BrokenLink,
    /// The starting checkpoint is not in the admin trail.
    UnrecordedCheckpoint,
}

impl Damage {
    /// As printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Altered => "altered",
            Self::Removed => "removed",
            Self::Inserted => "inserted",
            Self::Reordered => "reordered",
            Self::BrokenLink => "broken_link",
            Self::UnrecordedCheckpoint => "unrecorded_checkpoint",
        }
    }
}

/// One broken link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// The chain.
    pub chain: Chain,
    /// What kind of damage.
    pub kind: Damage,
    /// The id of the (first) row concerned, when there is one.
    pub id: Option<i64>,
    /// Its position on the chain.
    pub seq: Option<i64>,
    /// Rows concerned (consecutive damaged rows, or rows missing).
    pub rows: i64,
    /// What was found, in words.
    pub detail: String,
}

/// Where a chain's walk started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    /// The chain's first row (the genesis hash).
    Genesis,
    /// The last prune checkpoint.
    Checkpoint,
    /// The first row of the requested time range (its link to the row
    /// before it is taken on trust).
    Range,
}

/// One chain's result.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChainReport {
    /// The chain.
    pub chain: Chain,
    /// Where the walk started.
    pub start: Start,
    /// The first position walked.
    pub from_seq: i64,
    /// The last position walked.
    pub through_seq: i64,
    /// Rows checked.
    pub rows_checked: u64,
    /// The head the walk ended at.
    pub head: Option<ChainHead>,
    /// The checkpoint it started from.
    pub checkpoint: Option<Checkpoint>,
    /// Rows written before the chain existed (not checked).
    pub rows_before_chain: i64,
    /// Broken links, first first.
    pub problems: Vec<Problem>,
    /// Broken links found but not listed (past the first 100).
    pub problems_not_listed: u64,
}

/// The whole result.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// True when no link is broken.
    pub ok: bool,
    /// Rows checked, over both chains.
    pub rows_checked: u64,
    /// The first broken link (the usage log's first, else the admin trail's).
    pub first_break: Option<Problem>,
    /// Per chain.
    pub chains: Vec<ChainReport>,
    /// When the walk started.
    pub started_at: DateTime<Utc>,
    /// Wall time, in milliseconds.
    pub elapsed_ms: u64,
    /// Rows checked per minute of wall time.
    pub rows_per_minute: u64,
}

/// The last verification in brief, for the status endpoint.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Summary {
    /// `cli`, `api` or `dashboard`.
    pub source: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it finished (absent: running, or stopped before it finished).
    pub finished_at: Option<DateTime<Utc>>,
    /// Whether every link held (absent while running).
    pub ok: Option<bool>,
    /// Rows checked.
    pub rows_checked: Option<i64>,
    /// The first broken link, if any.
    pub first_break: Option<Problem>,
}

impl Summary {
    /// The last recorded verification, or `None` (also when the database
    /// can't be read: the status endpoint still answers, and says so in
    /// the log).
    pub async fn last(store: &Store) -> Option<Self> {
        let record = match store.last_verification().await {
            Ok(r) => r?,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the last audit verification");
                return None;
            }
        };
        let first_break = record
            .report
            .as_ref()
            .and_then(|r| r.get("first_break"))
            .and_then(|p| serde_json::from_value::<Problem>(p.clone()).ok());
        Some(Self {
            source: record.source,
            started_at: record.started_at,
            finished_at: record.finished_at,
            ok: record.ok,
            rows_checked: record.rows_checked,
            first_break,
        })
    }
}

/// What to walk.
#[derive(Debug, Clone, Copy, Default)]
pub struct Range {
    /// Rows created at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Rows created before this time.
    pub to: Option<DateTime<Utc>>,
}

impl Range {
    fn is_whole(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }
}

/// Walks both chains.
///
/// # Errors
/// A database error (not damage: damage is in the report).
pub async fn verify(store: &Store, range: Range) -> Result<Report, StoreError> {
    let started = Instant::now();
    let started_at = crate::store::now();
    let mut chains = Vec::new();
    for chain in Chain::ALL {
        chains.push(verify_chain(store, chain, range).await?);
    }
    let rows_checked = chains.iter().map(|c| c.rows_checked).sum();
    let first_break = chains.iter().find_map(|c| c.problems.first().cloned());
    let elapsed = started.elapsed();
    let per_minute = (rows_checked as f64 * 60.0 / elapsed.as_secs_f64().max(1e-6)) as u64;
    Ok(Report {
        ok: first_break.is_none(),
        rows_checked,
        first_break,
        chains,
        started_at,
        elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        rows_per_minute: per_minute,
    })
}

/// Runs [`verify`] and records its start and result in
/// `audit_verification` (`source`: `cli`, `api` or `dashboard`).
///
/// # Errors
/// A database error.
pub async fn verify_and_record(store: &Store, range: Range, source: &str) -> Result<Report, StoreError> {
    let id = store.start_verification(source).await?;
    let report = verify(store, range).await?;
    let json = serde_json::to_value(&report).unwrap_or_default();
    store.finish_verification(id, report.ok, report.rows_checked, &json).await?;
    Ok(report)
}

async fn verify_chain(store: &Store, chain: Chain, range: Range) -> Result<ChainReport, StoreError> {
    let head = store.chain_head(chain).await?;
    let checkpoint = match chain {
        Chain::UsageLog => store.checkpoint(chain).await?,
        Chain::AdminAudit => None,
    };
    let (rows_before_chain, unchained_after, first_unchained) = store.unchained_rows(chain).await?;
    let mut walk = Walk::new(chain);
    let (mut start, mut after, mut through) = match &checkpoint {
        Some(cp) => (Start::Checkpoint, cp.seq, head.seq),
        None => (Start::Genesis, 0, head.seq),
    };
    if let Some(cp) = &checkpoint {
        walk.expect(cp.seq + 1, cp.row_hash.clone());
        if !store.checkpoint_recorded(cp).await? {
            walk.report(
                Damage::UnrecordedCheckpoint,
                None,
                Some(cp.seq),
                cp.rows_pruned,
                format!(
                    "the checkpoint at position {} (hash {}) is not recorded in the admin trail: it was not written by `warden logs prune`",
                    cp.seq, cp.row_hash
                ),
            );
        }
    }
    if !range.is_whole() {
        match store.chain_range(chain, range.from, range.to).await? {
            Some((lo, hi)) => {
                through = hi.min(head.seq);
                if lo > after + 1 {
                    start = Start::Range;
                    after = lo - 1;
                    walk.anchor_at_first_row = true;
                    walk.expected_seq = lo;
                }
            }
            None => through = after,
        }
    }
    let from_seq = after + 1;
    // Pages are read ahead so that every row has WINDOW rows after it.
    let mut buf: Vec<ChainRow> = Vec::new();
    let mut cursor = 0usize;
    let mut last_read = after;
    let mut exhausted = false;
    loop {
        while !exhausted && buf.len() - cursor <= WINDOW {
            if cursor > 0 {
                // Keep WINDOW rows behind for the look-back.
                let keep_from = cursor.saturating_sub(WINDOW);
                buf.drain(..keep_from);
                cursor -= keep_from;
            }
            let page = store.chain_page(chain, last_read, through, PAGE).await?;
            if page.len() < usize::try_from(PAGE).unwrap_or(usize::MAX) {
                exhausted = true;
            }
            if let Some(last) = page.last() {
                last_read = last.seq;
            }
            buf.extend(page);
        }
        let Some((behind_and_row, ahead)) = buf.split_at_checked(cursor + 1) else { break };
        let Some((row, behind)) = behind_and_row.split_last() else { break };
        walk.step(row, behind, ahead);
        cursor += 1;
    }
    if range.to.is_none() {
        walk.check_head(store, &head, through).await?;
    }
    if unchained_after > 0 {
        walk.report(
            Damage::Inserted,
            first_unchained,
            None,
            unchained_after,
            format!("{unchained_after} row(s) without a chain position were added after the chain began"),
        );
    }
    Ok(ChainReport {
        chain,
        start,
        from_seq,
        through_seq: through,
        rows_checked: walk.rows,
        head: Some(head),
        checkpoint,
        rows_before_chain,
        problems: walk.problems,
        problems_not_listed: walk.not_listed,
    })
}

/// The walk's state.
#[derive(Debug)]
struct Walk {
    chain: Chain,
    expected_seq: i64,
    expected_prev: String,
    /// What the previous row's columns hash to, when that is not its stored
    /// hash (it was altered): the next row may link to either.
    alternative_prev: Option<String>,
    /// The first row's link is taken on trust (a time range's start).
    anchor_at_first_row: bool,
    last: Option<(i64, String)>,
    rows: u64,
    problems: Vec<Problem>,
    not_listed: u64,
}

impl Walk {
    fn new(chain: Chain) -> Self {
        Self {
            chain,
            expected_seq: 1,
            expected_prev: GENESIS.to_owned(),
            alternative_prev: None,
            anchor_at_first_row: false,
            last: None,
            rows: 0,
            problems: Vec::new(),
            not_listed: 0,
        }
    }

    fn expect(&mut self, seq: i64, prev: String) {
        self.expected_seq = seq;
        self.expected_prev = prev;
    }

    fn report(&mut self, kind: Damage, id: Option<i64>, seq: Option<i64>, rows: i64, detail: String) {
        // Consecutive rows with the same damage are one report.
        if let Some(last) = self.problems.last_mut() {
            if let (Some(prev_seq), Some(seq)) = (last.seq, seq) {
                if last.kind == kind && kind != Damage::Removed && prev_seq + last.rows == seq {
                    last.rows += rows;
                    return;
                }
            }
        }
        if self.problems.len() >= MAX_PROBLEMS {
            self.not_listed += 1;
            return;
        }
        self.problems.push(Problem { chain: self.chain, kind, id, seq, rows, detail });
    }

    fn advance(&mut self, r: &ChainRow) {
        self.expected_seq = r.seq + 1;
        self.expected_prev.clone_from(&r.row_hash);
        self.alternative_prev = r.recomputed.clone().filter(|h| *h != r.row_hash);
        self.last = Some((r.seq, r.row_hash.clone()));
    }

    /// Checks one row; `behind` and `ahead` are the rows before and after
    /// it in the walk.
    fn step(&mut self, r: &ChainRow, behind: &[ChainRow], ahead: &[ChainRow]) {
        self.rows += 1;
        if std::mem::take(&mut self.anchor_at_first_row) {
            self.expected_prev.clone_from(&r.prev_hash);
        }
        let content_ok = r.recomputed.as_deref() == Some(r.row_hash.as_str());
        let link_ok = r.prev_hash == self.expected_prev || self.alternative_prev.as_deref() == Some(&r.prev_hash);
        let (id, seq) = (Some(r.id), Some(r.seq));
        if r.seq < self.expected_seq {
            self.report(
                Damage::Inserted,
                id,
                seq,
                1,
                format!("a second row at position {} (only one row can hold a position)", r.seq),
            );
            return;
        }
        if link_ok {
            if !content_ok && ahead.first().is_some_and(|n| n.prev_hash == r.prev_hash) {
                // The next row names the same predecessor: this one was
                // slipped in between them (with a hash that doesn't hold).
                self.report(
                    Damage::Inserted,
                    id,
                    seq,
                    1,
                    "this row is not chained between its neighbours: the next row links to the row before it"
                        .to_owned(),
                );
                if let Some(n) = ahead.first() {
                    self.expected_seq = n.seq;
                }
                return;
            }
            if r.seq > self.expected_seq {
                self.report(
                    Damage::Altered,
                    id,
                    seq,
                    1,
                    format!(
                        "its position was changed from {} to {} (its link to the row before is intact)",
                        self.expected_seq, r.seq
                    ),
                );
            } else if !content_ok {
                self.report(Damage::Altered, id, seq, 1, unreadable_or_changed(r));
            }
            self.advance(r);
            return;
        }
        let previous = behind.last();
        if let Some(p) = previous.filter(|p| !p.prev_hash.is_empty() && p.prev_hash == r.prev_hash) {
            self.report(
                Damage::Inserted,
                Some(p.id),
                Some(p.seq),
                1,
                format!("row {} names the same predecessor as row {} after it: it was slipped in", p.id, r.id),
            );
            self.advance(r);
            return;
        }
        let near = |rows: &[ChainRow]| rows.iter().any(|n| !n.row_hash.is_empty() && n.row_hash == r.prev_hash);
        let ahead_window = ahead.get(..ahead.len().min(WINDOW)).unwrap_or_default();
        let behind_window = behind.get(behind.len().saturating_sub(WINDOW + 1)..).unwrap_or_default();
        if near(ahead_window) || near(behind_window) {
            self.report(
                Damage::Reordered,
                id,
                seq,
                1,
                "rows are out of chain order: this row's predecessor is elsewhere nearby".to_owned(),
            );
            self.advance(r);
            return;
        }
        if ahead.first().is_some_and(|n| n.prev_hash == self.expected_prev) {
            self.report(
                Damage::Inserted,
                id,
                seq,
                1,
                "this row is not chained between its neighbours: the next row links to the row before it".to_owned(),
            );
            if let Some(n) = ahead.first() {
                self.expected_seq = n.seq;
            }
            return;
        }
        if r.seq > self.expected_seq {
            let missing = r.seq - self.expected_seq;
            self.report(
                Damage::Removed,
                id,
                seq,
                missing,
                format!("{missing} row(s) missing before it (positions {} to {})", self.expected_seq, r.seq - 1),
            );
            self.advance(r);
            return;
        }
        if !content_ok {
            self.report(Damage::Altered, id, seq, 1, format!("its link was changed; {}", unreadable_or_changed(r)));
            self.advance(r);
            return;
        }
        self.report(
            Damage::BrokenLink,
            id,
            seq,
            1,
            "the row it is chained to is missing: a row before it was removed (and the positions renumbered) or rewritten with its hash recomputed".to_owned(),
        );
        self.advance(r);
    }

    /// After the walk: the head must name the last row walked, and no row
    /// may lie beyond it.
    async fn check_head(&mut self, store: &Store, head: &ChainHead, through: i64) -> Result<(), StoreError> {
        let (last_seq, last_hash) = match &self.last {
            Some((s, h)) => (*s, h.clone()),
            None => (self.expected_seq - 1, self.expected_prev.clone()),
        };
        if last_seq < through {
            let missing = through - last_seq;
            self.report(
                Damage::Removed,
                head.last_id,
                Some(last_seq + 1),
                missing,
                format!(
                    "{missing} row(s) missing at the end: the head records {through} rows, the table ends at {last_seq}"
                ),
            );
        } else if last_seq == head.seq && last_hash != head.hash {
            self.report(
                Damage::BrokenLink,
                head.last_id,
                Some(last_seq),
                1,
                format!("the last row's hash is not the one the head records ({})", head.hash),
            );
        }
        // Rows appended since the walk began have moved the head; anything
        // past the head as it is now was not written by Warden.
        let (past, first) = store.rows_past_head(self.chain).await?;
        if past > 0 {
            self.report(
                Damage::Inserted,
                first.map(|f| f.0),
                first.map(|f| f.1),
                past,
                format!("{past} row(s) beyond the chain head: Warden did not write them"),
            );
        }
        Ok(())
    }
}

fn unreadable_or_changed(r: &ChainRow) -> String {
    match r.recomputed {
        None => "a column holds a value that can't be read as its type".to_owned(),
        Some(_) => "its columns no longer give its stored hash".to_owned(),
    }
}

#[cfg(test)]
mod tests;
