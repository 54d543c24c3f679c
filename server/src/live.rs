//! The live policy state: the compiled policy and every override, as one
//! immutable snapshot behind an `ArcSwap`. A request takes one snapshot with
//! a single atomic load and keeps it to the end, so it never sees half a
//! change; a refresh builds a new snapshot off the request path and swaps it.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use uuid::Uuid;
use warden_engine::{Policy, PreparedOverrides};

use crate::rate_limit::Quota;
use crate::store::{OverrideTables, Store, StoreError};

/// How one customer's requests are decided.
#[derive(Debug)]
pub struct CustomerView {
    /// Global toggles with the customer's overrides over them.
    pub overrides: PreparedOverrides,
    /// The customer's rate limit, if set.
    pub rate_limit: Option<Quota>,
}

/// Everything a decision needs, consistent as of one moment.
#[derive(Debug)]
pub struct Snapshot {
    /// The compiled policy.
    pub policy: Arc<Policy>,
    /// Global toggles, for customers without overrides of their own.
    pub global: PreparedOverrides,
    /// Customers with overrides or settings. Fx hashing: customer ids are
    /// ours, not chosen by clients, and this lookup is on every decision.
    pub customers: rustc_hash::FxHashMap<Uuid, CustomerView>,
    /// The tables this snapshot was built from.
    pub tables: OverrideTables,
}

impl Snapshot {
    /// Resolves every override against `policy`.
    pub fn build(policy: Arc<Policy>, tables: OverrideTables) -> Self {
        let global = policy.prepare(&tables.global);
        let mut customers = rustc_hash::FxHashMap::default();
        let ids = tables.customers.keys().chain(tables.settings.keys());
        for id in ids {
            if customers.contains_key(id) {
                continue;
            }
            let layered = match tables.customers.get(id) {
                Some(o) => tables.global.layered(o),
                None => tables.global.clone(),
            };
            let rate_limit = tables.settings.get(id).and_then(|s| {
                let requests = u32::try_from(s.rate_limit_requests?).ok().filter(|r| *r > 0)?;
                let secs = u64::try_from(s.rate_limit_window_seconds?).ok().filter(|w| *w > 0)?;
                Some(Quota { requests, window: Duration::from_secs(secs) })
            });
            customers.insert(*id, CustomerView { overrides: policy.prepare(&layered), rate_limit });
        }
        Self { policy, global, customers, tables }
    }

    /// The overrides and rate limit for a customer.
    pub fn for_customer(&self, id: &Uuid) -> (&PreparedOverrides, Option<Quota>) {
        match self.customers.get(id) {
            Some(v) => (&v.overrides, v.rate_limit),
            None => (&self.global, None),
        }
    }
}

/// The swappable current snapshot.
#[derive(Debug)]
pub struct Live {
    current: ArcSwap<Snapshot>,
    /// The database change counter last loaded.
    seen_version: tokio::sync::Mutex<Option<i64>>,
    /// Serialises building-and-swapping, so a policy reload and an override
    /// reload can't each start from the other's old half.
    swap: tokio::sync::Mutex<()>,
}

impl Live {
    /// Starts from `snapshot`.
    pub fn new(snapshot: Snapshot) -> Self {
        Self {
            current: ArcSwap::from_pointee(snapshot),
            seen_version: tokio::sync::Mutex::new(None),
            swap: tokio::sync::Mutex::new(()),
        }
    }

    /// The current snapshot (one atomic load).
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Replaces the snapshot.
    pub fn store(&self, snapshot: Snapshot) {
        self.current.store(Arc::new(snapshot));
    }

    /// Reloads the override tables if the database's change counter moved
    /// since the last call. Returns whether a new snapshot was swapped in.
    pub async fn refresh_overrides(&self, store: &Store) -> Result<bool, StoreError> {
        let mut last = self.seen_version.lock().await;
        let now = store.config_version().await?;
        if *last == Some(now) {
            return Ok(false);
        }
        self.reload_overrides(store).await?;
        *last = Some(now);
        Ok(true)
    }

    /// Reloads the override tables now and swaps in a new snapshot.
    pub async fn reload_overrides(&self, store: &Store) -> Result<(), StoreError> {
        let tables = store.load_overrides().await?;
        let _swap = self.swap.lock().await;
        let policy = self.load().policy.clone();
        self.store(Snapshot::build(policy, tables));
        Ok(())
    }

    /// Swaps in a new policy, keeping the current override tables.
    pub async fn replace_policy(&self, policy: Arc<Policy>) {
        let _swap = self.swap.lock().await;
        let tables = self.load().tables.clone();
        self.store(Snapshot::build(policy, tables));
    }
}
