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
use crate::store::{Orphan, OverrideTables, Store, StoreError};

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
    /// The database change counter the tables were read at (read before
    /// them, so the tables are at least this new).
    pub config_version: i64,
    /// Whether some toggle or override in the tables names a rule this
    /// policy doesn't have and is not yet marked orphaned (see
    /// [`Live::mark_orphans`]). Such a row applies to nothing now, but must
    /// be marked before a rule of that name can return.
    pub unmarked_orphans: bool,
}

impl Snapshot {
    /// Resolves every override against `policy`.
    pub fn build(policy: Arc<Policy>, tables: OverrideTables, config_version: i64) -> Self {
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
        let unmarked_orphans =
            !global.unknown_rules().is_empty() || customers.values().any(|v| !v.overrides.unknown_rules().is_empty());
        Self { policy, global, customers, tables, config_version, unmarked_orphans }
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
    /// Serialises building-and-swapping, so a policy reload and an override
    /// reload can't each start from the other's old half.
    swap: tokio::sync::Mutex<()>,
}

impl Live {
    /// Starts from `snapshot`.
    pub fn new(snapshot: Snapshot) -> Self {
        Self { current: ArcSwap::from_pointee(snapshot), swap: tokio::sync::Mutex::new(()) }
    }

    /// The current snapshot (one atomic load).
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Replaces the snapshot.
    pub fn store(&self, snapshot: Snapshot) {
        self.current.store(Arc::new(snapshot));
    }

    /// Reloads the override tables if the database's change counter is
    /// ahead of the current snapshot's, and marks orphaned settings if the
    /// serving snapshot has some unmarked (a backstop for a set served
    /// without [`Live::mark_orphans`], retried on every call until it
    /// succeeds). Returns whether it reloaded.
    pub async fn refresh_overrides(&self, store: &Store) -> Result<bool, StoreError> {
        if self.load().unmarked_orphans {
            self.mark_orphans(store).await?;
            return Ok(true);
        }
        if store.config_version().await? <= self.load().config_version {
            return Ok(false);
        }
        self.reload_overrides(store).await?;
        Ok(true)
    }

    /// Reloads the override tables now. The new snapshot is installed only
    /// if it is not older than the one serving: two reloads racing (a poll
    /// and an admin request) can't put stale tables back.
    pub async fn reload_overrides(&self, store: &Store) -> Result<(), StoreError> {
        let version = store.config_version().await?;
        let tables = store.load_overrides().await?;
        let _swap = self.swap.lock().await;
        let current = self.load();
        if version >= current.config_version {
            self.store(Snapshot::build(current.policy.clone(), tables, version));
        }
        Ok(())
    }

    /// Marks as orphaned, in the database, every toggle and override whose
    /// rule the serving policy doesn't have (see [`Store::mark_orphans`]),
    /// then reloads the override tables. Returns every orphaned setting.
    /// Call it after serving a new set: at start-up and after a reload.
    /// Holds the swap lock throughout, so the set can't change between
    /// reading its rule names and installing the new tables.
    pub async fn mark_orphans(&self, store: &Store) -> Result<Vec<Orphan>, StoreError> {
        let _swap = self.swap.lock().await;
        let current = self.load();
        let rules: Vec<&str> = current.policy.rule_names().collect();
        let orphans = store.mark_orphans(&rules).await?;
        let version = store.config_version().await?;
        let tables = store.load_overrides().await?;
        if version >= current.config_version {
            self.store(Snapshot::build(current.policy.clone(), tables, version));
        }
        Ok(orphans)
    }

    /// Swaps in a new policy, keeping the current override tables.
    pub async fn replace_policy(&self, policy: Arc<Policy>) {
        let _swap = self.swap.lock().await;
        let current = self.load();
        self.store(Snapshot::build(policy, current.tables.clone(), current.config_version));
    }
}
