//! Webhooks: signed, durable, batched notifications of what happens in
//! Warden, following Standard Webhooks (<https://www.standardwebhooks.com/>).
//!
//! - **Events** ([`EventType`]): `decision.blocked`, `decision.rejected`,
//!   `policy.reloaded`, `policy.reload_failed`, `key.created`,
//!   `key.rotated`, `key.deleted`, `override.changed`. An endpoint
//!   subscribes to some (or `*`), and may limit decision events to some
//!   customers or reasons ([`Filter`]).
//! - **Durable** ([`outbox`]): an event is written to the outbox table
//!   (`webhook_event`, one row per subscribed endpoint) in the same
//!   transaction as the change it describes: decision events with their
//!   audit batch (so a row spilled during an outage gets its event when it
//!   reaches the database), admin events with their admin-trail row.
//!   Policy reloads, which change no table, are written on their own.
//!   Nothing is held only in memory, so a crash or restart loses none.
//! - **Batched** ([`queue`], [`deliver`]): waiting events of one endpoint are packed
//!   into one message of at most [`MAX_BATCH`] events, whose `webhook-id`
//!   is fixed when it is packed and kept for every retry; an endpoint gets
//!   at most one request a second and has one message in flight at a time.
//! - **At least once**: a message is retried with exponential backoff and
//!   jitter until it is acknowledged (2xx) or 24 hours old (then failed); a
//!   receiver de-duplicates by `webhook-id`. An endpoint whose attempts
//!   keep failing is disabled after `webhook_disable_after` consecutive
//!   failures, and that is recorded in the admin trail.
//! - **One deliverer per message**: every instance runs a deliverer; a
//!   message is claimed with a lease (`leased_until`) taken in one
//!   statement, `FOR UPDATE SKIP LOCKED` on Postgres (SQLite's single
//!   writer makes the statement atomic), so only one instance sends it
//!   while the lease lasts (longer than the request timeout).
//! - **Outbound safety** ([`net`]): `http`/`https` only, a timeout, no
//!   redirects, a cap on the answer read, no private or loopback addresses
//!   unless `webhook_allow_private`.

pub mod deliver;
pub mod endpoints;
pub mod net;
pub mod outbox;
pub mod queue;
pub mod sign;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::store::{AdminChange, AuditRecord, Outcome};

/// Most events in one request.
pub const MAX_BATCH: usize = 500;

/// How deliveries behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Allow endpoints on loopback and private addresses.
    pub allow_private: bool,
    /// Time allowed for one request, connection and answer included.
    pub timeout: Duration,
    /// Consecutive failed attempts after which an endpoint is disabled.
    pub disable_after: u32,
    /// The first retry's delay; each later one doubles (with jitter), up
    /// to [`Settings::retry_max`].
    pub retry_base: Duration,
    /// The longest delay between two attempts.
    pub retry_max: Duration,
    /// A message not acknowledged by this age is marked failed.
    pub give_up_after: Duration,
    /// Least time between two requests to one endpoint.
    pub min_interval: Duration,
    /// How often the deliverer looks for work.
    pub poll: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            allow_private: false,
            timeout: Duration::from_secs(5),
            disable_after: 50,
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(60 * 60),
            give_up_after: Duration::from_secs(24 * 60 * 60),
            min_interval: Duration::from_secs(1),
            poll: Duration::from_millis(250),
        }
    }
}

/// The kinds of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventType {
    /// A decision blocked a request.
    #[serde(rename = "decision.blocked")]
    DecisionBlocked,
    /// A request was refused before evaluation (a content field, a wrong type…).
    #[serde(rename = "decision.rejected")]
    DecisionRejected,
    /// A new policy version is served.
    #[serde(rename = "policy.reloaded")]
    PolicyReloaded,
    /// Changed policy files were refused; the previous version serves on.
    #[serde(rename = "policy.reload_failed")]
    PolicyReloadFailed,
    /// An API key was issued.
    #[serde(rename = "key.created")]
    KeyCreated,
    /// An API key's secret was rotated.
    #[serde(rename = "key.rotated")]
    KeyRotated,
    /// An API key was revoked.
    #[serde(rename = "key.deleted")]
    KeyDeleted,
    /// A global toggle, a per-customer override or a customer's settings changed.
    #[serde(rename = "override.changed")]
    OverrideChanged,
}

impl EventType {
    /// Every kind.
    pub const ALL: [Self; 8] = [
        Self::DecisionBlocked,
        Self::DecisionRejected,
        Self::PolicyReloaded,
        Self::PolicyReloadFailed,
        Self::KeyCreated,
        Self::KeyRotated,
        Self::KeyDeleted,
        Self::OverrideChanged,
    ];

    /// The event's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DecisionBlocked => "decision.blocked",
            Self::DecisionRejected => "decision.rejected",
            Self::PolicyReloaded => "policy.reloaded",
            Self::PolicyReloadFailed => "policy.reload_failed",
            Self::KeyCreated => "key.created",
            Self::KeyRotated => "key.rotated",
            Self::KeyDeleted => "key.deleted",
            Self::OverrideChanged => "override.changed",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }

    fn is_decision(self) -> bool {
        matches!(self, Self::DecisionBlocked | Self::DecisionRejected)
    }
}

/// Limits the decision events an endpoint gets (other events are not
/// filtered). An absent list matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Only these customers' decisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customers: Option<Vec<Uuid>>,
    /// Only decisions with these reasons (or rejection codes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<String>>,
}

/// One event, before it is written to the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `evt_<uuid v7>`: the same for every endpoint that gets it.
    pub id: String,
    /// Its kind.
    pub kind: EventType,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// What happened (kind-specific; never content, secrets or key hashes).
    pub data: Value,
    /// For decision events: the customer, for filters.
    pub customer: Option<Uuid>,
    /// For decision events: the reason, for filters.
    pub reason: Option<String>,
}

impl Event {
    /// A new event happening now.
    pub fn new(kind: EventType, data: Value) -> Self {
        Self {
            id: format!("evt_{}", Uuid::now_v7().simple()),
            kind,
            timestamp: crate::store::now(),
            data,
            customer: None,
            reason: None,
        }
    }

    /// The event as sent: `{id, type, timestamp, data}`.
    pub fn envelope(&self) -> Value {
        json!({
            "id": self.id,
            "type": self.kind.as_str(),
            "timestamp": crate::audit::chain::format_time(self.timestamp),
            "data": self.data,
        })
    }

    /// The event for an audit row, if its outcome is one (blocked or
    /// rejected): ids, model, operation, score, reason, policy version, time,
    /// and the row's position on the audit chain. Never `meta`.
    pub fn for_decision(r: &AuditRecord, chain_seq: i64) -> Option<Self> {
        let kind = match r.outcome {
            Outcome::Blocked => EventType::DecisionBlocked,
            Outcome::Rejected => EventType::DecisionRejected,
            Outcome::Allowed => return None,
        };
        let mut e = Self::new(
            kind,
            json!({
                "decision_id": r.decision_id,
                "request_id": r.request_id,
                "customer_id": r.customer_id,
                "api_key_id": r.api_key_id,
                "model": r.model,
                "operation": r.operation,
                "risk_score": r.risk_score,
                "reason": r.reason,
                "policy_version": r.policy_version,
                "decided_at": crate::audit::chain::format_time(r.created_at),
                "audit_chain_seq": chain_seq,
            }),
        );
        e.customer = Some(r.customer_id);
        e.reason = Some(r.reason.clone());
        Some(e)
    }

    /// The event for an admin change, if it is one: the change's action,
    /// target, actor, values before and after, and its position on the
    /// admin chain.
    pub fn for_admin_change(change: &AdminChange, chain_seq: i64) -> Option<Self> {
        let kind = match change.action {
            "key.create" => EventType::KeyCreated,
            "key.rotate" => EventType::KeyRotated,
            "key.delete" | "key.deactivate" => EventType::KeyDeleted,
            "policy.toggle"
            | "policy.toggle.delete"
            | "customer.policy.set"
            | "customer.policy.delete"
            | "customer.settings.set" => EventType::OverrideChanged,
            _ => return None,
        };
        Some(Self::new(
            kind,
            json!({
                "action": change.action,
                "target": change.target,
                "actor_key_id": change.actor,
                "before": change.before,
                "after": change.after,
                "admin_audit_chain_seq": chain_seq,
            }),
        ))
    }
}

/// Writes an event that belongs to no database change (a policy reload) to
/// the outbox. A failure is logged: the reload itself stands.
pub async fn emit(store: &crate::store::Store, event: Event) {
    if let Err(e) = store.enqueue_webhook_events(std::slice::from_ref(&event)).await {
        tracing::warn!(error = %e, event = event.kind.as_str(), "could not write a webhook event");
    }
}

/// An endpoint as the outbox sees it: what it subscribes to.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// Event names, or `*`.
    pub events: Vec<String>,
    /// Limits on decision events.
    pub filter: Option<Filter>,
}

impl Subscription {
    /// Whether the endpoint gets `e`.
    pub fn wants(&self, e: &Event) -> bool {
        if !self.events.iter().any(|s| s == "*" || s == e.kind.as_str()) {
            return false;
        }
        match (&self.filter, e.kind.is_decision()) {
            (Some(f), true) => {
                let customer_ok = f.customers.as_ref().is_none_or(|c| e.customer.is_some_and(|id| c.contains(&id)));
                let reason_ok =
                    f.reasons.as_ref().is_none_or(|r| e.reason.as_ref().is_some_and(|reason| r.contains(reason)));
                customer_ok && reason_ok
            }
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly

    use super::*;

    fn decision(customer: Uuid, reason: &str) -> Event {
        let mut e = Event::new(EventType::DecisionBlocked, json!({}));
        e.customer = Some(customer);
        e.reason = Some(reason.to_owned());
        e
    }

    #[test]
    fn subscriptions_match_names_stars_and_filters() {
        let c = Uuid::new_v4();
        let all = Subscription { endpoint_id: Uuid::nil(), events: vec!["*".into()], filter: None };
        assert!(all.wants(&decision(c, "x")));
        let keys = Subscription { events: vec!["key.created".into()], ..all.clone() };
        assert!(!keys.wants(&decision(c, "x")));
        assert!(keys.wants(&Event::new(EventType::KeyCreated, json!({}))));
        let filtered = Subscription {
            filter: Some(Filter { customers: Some(vec![c]), reasons: Some(vec!["pii".into()]) }),
            ..all.clone()
        };
        assert!(filtered.wants(&decision(c, "pii")));
        assert!(!filtered.wants(&decision(c, "other")));
        assert!(!filtered.wants(&decision(Uuid::new_v4(), "pii")));
        assert!(filtered.wants(&Event::new(EventType::PolicyReloaded, json!({}))), "filters apply to decisions only");
    }

    #[test]
    fn every_event_name_round_trips() {
        for e in EventType::ALL {
            assert_eq!(EventType::parse(e.as_str()), Some(e));
            assert_eq!(serde_json::to_value(e).unwrap(), json!(e.as_str()));
        }
        assert_eq!(EventType::parse("decision.allowed"), None);
    }
}
