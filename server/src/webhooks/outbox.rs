//! The outbox: webhook events written by the [`load_subscriptions!`] and
//! [`insert_outbox!`] macros inside the transaction of the change they
//! describe (one row per event and subscribed endpoint), and on their own
//! for events that change no table.

use uuid::Uuid;

use super::{Event, Filter, Subscription};
use crate::store::{Store, StoreError, on_pool};

/// The active endpoints' subscriptions: `(id, events JSON, filter JSON)`.
pub(crate) const ACTIVE_SUBSCRIPTIONS: &str = "SELECT id, events, filter FROM webhook_endpoint WHERE active";

/// Inserts outbox rows (followed by `push_values`).
pub(crate) const INSERT_EVENTS: &str = "INSERT INTO webhook_event (endpoint_id, event_id, type, payload, created_at) ";

/// Rows per outbox INSERT (5 values each, far below either backend's limit).
pub(crate) const INSERT_CHUNK: usize = 1000;

/// Reads the stored subscriptions; an endpoint whose stored lists can't be
/// read gets every event (better a surplus than a loss) and is logged.
pub fn subscriptions(rows: Vec<(Uuid, String, Option<String>)>) -> Vec<Subscription> {
    rows.into_iter()
        .map(|(endpoint_id, events, filter)| {
            let events = serde_json::from_str(&events).unwrap_or_else(|e| {
                tracing::error!(%endpoint_id, error = %e, "a webhook endpoint's event list can't be read; sending it every event");
                vec!["*".to_owned()]
            });
            let filter = filter.and_then(|f| serde_json::from_str::<Filter>(&f).ok());
            Subscription { endpoint_id, events, filter }
        })
        .collect()
}

/// Every `(endpoint, event)` pair to write.
pub fn fan_out<'e>(subs: &[Subscription], events: &'e [Event]) -> Vec<(Uuid, &'e Event)> {
    events.iter().flat_map(|e| subs.iter().filter(|s| s.wants(e)).map(move |s| (s.endpoint_id, e))).collect()
}

/// The active endpoints' subscriptions, read inside the open transaction
/// `$tx`. Evaluates to `Vec<Subscription>`; errors return early with `?`.
macro_rules! load_subscriptions {
    ($tx:ident) => {{
        let rows: Vec<(uuid::Uuid, String, Option<String>)> =
            sqlx::query_as($crate::webhooks::outbox::ACTIVE_SUBSCRIPTIONS).fetch_all(&mut *$tx).await?;
        $crate::webhooks::outbox::subscriptions(rows)
    }};
}
pub(crate) use load_subscriptions;

/// Writes `$events` (`&[Event]`) to the outbox for every subscription in
/// `$subs` (`&[Subscription]`) that wants them, inside `$tx`.
macro_rules! insert_outbox {
    ($tx:ident, $subs:expr, $events:expr) => {{
        let pairs = $crate::webhooks::outbox::fan_out($subs, $events);
        for chunk in pairs.chunks($crate::webhooks::outbox::INSERT_CHUNK) {
            let mut q = sqlx::QueryBuilder::new($crate::webhooks::outbox::INSERT_EVENTS);
            q.push_values(chunk, |mut b, (endpoint, e)| {
                b.push_bind(*endpoint)
                    .push_bind(e.id.as_str())
                    .push_bind(e.kind.as_str())
                    .push_bind(e.envelope().to_string())
                    .push_bind(e.timestamp);
            });
            q.build().execute(&mut *$tx).await?;
        }
    }};
}
pub(crate) use insert_outbox;

impl Store {
    /// Writes events that belong to no other change (policy reloads) to the
    /// outbox, in a transaction of their own.
    pub async fn enqueue_webhook_events(&self, events: &[Event]) -> Result<(), StoreError> {
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let subs = load_subscriptions!(tx);
            insert_outbox!(tx, &subs, events);
            tx.commit().await?;
        });
        Ok(())
    }
}
