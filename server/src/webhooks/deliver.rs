//! The deliverer: one background task per instance that, every
//! [`Settings::poll`], packs waiting events into messages, claims due
//! messages with a lease, sends them (one request per message, signed the
//! Standard Webhooks way) and settles each attempt. It never touches the
//! request path: `/v1/check` only writes outbox rows in its audit batch.
//!
//! Retries: attempt `n` that fails is tried again after
//! `retry_base * 2^(n-1)` (at most `retry_max`), with full jitter over the
//! upper half of that delay so that endpoints failing together don't retry
//! together; a message not acknowledged `give_up_after` (24 h) after it was
//! packed is marked failed. Every attempt moves the endpoint's next send
//! time to at least `min_interval` (1 s) later.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use rand::Rng as _;
use tokio::sync::watch;

use super::Settings;
use super::net::Client;
use super::queue::{Claimed, Outcome};
use super::sign::Key;
use crate::metrics::Metrics;
use crate::store::Store;

/// How long a claimed message is held by the instance that claimed it:
/// well past one request's timeout, so no other instance sends it
/// meanwhile; if the instance dies, another takes it after this.
pub fn lease(settings: &Settings) -> Duration {
    settings.timeout * 4 + Duration::from_secs(10)
}

/// Messages claimed per round.
const CLAIM_LIMIT: i64 = 32;

/// How often the queue's size is read for the metrics.
const BACKLOG_EVERY: Duration = Duration::from_secs(5);

/// The delay before retrying after attempt `attempt` (from 1) failed.
pub fn backoff(settings: &Settings, attempt: i64) -> Duration {
    let exp = u32::try_from(attempt.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let full = settings.retry_base.saturating_mul(2u32.saturating_pow(exp)).min(settings.retry_max);
    // Full jitter over the upper half: [full/2, full].
    let half = full / 2;
    let jitter = rand::rng().random_range(0..=half.as_millis().min(u128::from(u64::MAX)) as u64);
    half + Duration::from_millis(jitter)
}

/// One instance's deliverer.
#[derive(Debug)]
pub struct Deliverer {
    store: Store,
    settings: Settings,
    client: Client,
    metrics: Arc<Metrics>,
}

impl Deliverer {
    /// A deliverer over `store`.
    pub fn new(store: Store, settings: Settings, metrics: Arc<Metrics>) -> Self {
        let client = Client::new(settings.allow_private, settings.timeout);
        Self { store, settings, client, metrics }
    }

    /// Runs until `stop` turns true. Messages claimed but not settled when
    /// it stops are sent again by whichever instance claims them after
    /// their lease (at least once).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut backlog_at = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.settings.poll) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            match self.round().await {
                Ok(()) => {}
                Err(e) => tracing::warn!(error = %e, "webhook delivery round failed; trying again"),
            }
            if backlog_at.elapsed() >= BACKLOG_EVERY {
                backlog_at = tokio::time::Instant::now();
                if let Ok(b) = self.store.webhook_backlog().await {
                    let age = b.oldest.map_or(0.0, |t| (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0);
                    self.metrics.webhook_backlog(b.events, age);
                }
            }
        }
    }

    /// One round: pack, claim, send, settle.
    pub async fn round(&self) -> Result<(), crate::store::StoreError> {
        if !self.store.webhooks_active().await? {
            return Ok(());
        }
        self.store.pack_webhook_messages().await?;
        let lease_until = crate::store::now()
            + chrono::Duration::from_std(lease(&self.settings)).unwrap_or(chrono::Duration::seconds(30));
        let claimed = self.store.claim_webhook_messages(lease_until, CLAIM_LIMIT).await?;
        // At most one request per endpoint at a time: normally an endpoint
        // has one pending message, but a redelivery can add a second; it
        // waits for a later round. The rest go side by side (a slow
        // endpoint doesn't hold up the others).
        let mut endpoints = std::collections::HashSet::new();
        let mut sends = tokio::task::JoinSet::new();
        for m in claimed {
            if !endpoints.insert(m.endpoint_id) {
                self.store.release_webhook_message(&m.id).await?;
                continue;
            }
            let client = self.client.clone();
            sends.spawn(async move {
                let attempted_at = crate::store::now();
                let outcome = send(&client, &m).await;
                (m, attempted_at, outcome)
            });
        }
        while let Some(done) = sends.join_next().await {
            if let Ok((m, attempted_at, outcome)) = done {
                self.settle(&m, attempted_at, &outcome).await?;
            }
        }
        Ok(())
    }

    async fn settle(&self, m: &Claimed, at: DateTime<Utc>, outcome: &Outcome) -> Result<(), crate::store::StoreError> {
        let now = crate::store::now();
        let delay = backoff(&self.settings, m.attempt);
        let retry_at = now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1));
        let age = now - m.created_at;
        let give_up = chrono::Duration::from_std(self.settings.give_up_after).is_ok_and(|limit| age >= limit);
        let next_send_at =
            at + chrono::Duration::from_std(self.settings.min_interval).unwrap_or(chrono::Duration::seconds(1));
        let result = if outcome.delivered() { "delivered" } else { "failed" };
        self.metrics.webhook_delivery(&m.endpoint_id.to_string(), result);
        if !outcome.delivered() {
            tracing::warn!(
                endpoint = %m.endpoint_id, message = %m.id, attempt = m.attempt,
                error = outcome.error.as_deref().unwrap_or(""), give_up,
                "webhook delivery failed"
            );
        }
        let disabled = self
            .store
            .settle_webhook_attempt(m, at, outcome, retry_at, give_up, next_send_at, self.settings.disable_after)
            .await?;
        if disabled {
            tracing::error!(endpoint = %m.endpoint_id, failures = self.settings.disable_after, "webhook endpoint disabled after repeated failures");
        }
        Ok(())
    }
}

/// Sends one message, signed.
async fn send(client: &Client, m: &Claimed) -> Outcome {
    let key = match Key::from_secret(&m.secret) {
        Ok(k) => k,
        Err(e) => return Outcome { status: None, latency_ms: 0, error: Some(e.to_string()) },
    };
    let timestamp = Utc::now().timestamp();
    let signature = key.sign(&m.id, timestamp, m.body.as_bytes());
    let headers =
        [("webhook-id", m.id.clone()), ("webhook-timestamp", timestamp.to_string()), ("webhook-signature", signature)];
    match client.post(&m.url, &headers, Bytes::from(m.body.clone())).await {
        Ok(sent) => {
            let latency_ms = i64::try_from(sent.latency.as_millis()).unwrap_or(i64::MAX);
            let error = match sent.status {
                200..=299 => None,
                300..=399 => Some(format!("HTTP {}: redirects are not followed", sent.status)),
                s => Some(format!("HTTP {s}")),
            };
            Outcome { status: Some(sent.status), latency_ms, error }
        }
        Err(e) => Outcome { status: None, latency_ms: 0, error: Some(e.to_string()) },
    }
}

/// Starts the deliverer on `state`'s store, until `stop`.
pub fn spawn(state: &crate::state::AppState, stop: watch::Receiver<bool>) {
    let deliverer = Deliverer::new(state.store.clone(), state.webhooks.clone(), state.metrics.clone());
    tokio::spawn(deliverer.run(stop));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let s =
            Settings { retry_base: Duration::from_secs(2), retry_max: Duration::from_secs(60), ..Settings::default() };
        for (attempt, full) in [(1, 2), (2, 4), (3, 8), (5, 32), (6, 60), (40, 60)] {
            for _ in 0..20 {
                let d = backoff(&s, attempt);
                let full = Duration::from_secs(full);
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
            }
        }
        assert!(lease(&s) > s.timeout);
    }
}
