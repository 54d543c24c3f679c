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
use crate::store::{Fingerprints, InForce, Orphan, OverrideTables, Store, StoreError};

/// How one customer's requests are decided.
#[derive(Debug)]
pub struct CustomerView {
    /// Global toggles with the customer's overrides over them (those that
    /// apply to the served rules only).
    pub overrides: PreparedOverrides,
    /// The customer's rate limit, if set.
    pub rate_limit: Option<Quota>,
}

/// The shadow policy set (`--shadow-policies`), resolved against the same
/// override tables as the enforced set: decided beside it on every
/// request, never deciding anything itself.
#[derive(Debug)]
pub struct Candidate {
    /// The compiled shadow set.
    pub policy: Arc<Policy>,
    /// Global toggles that apply to its rules.
    global: PreparedOverrides,
    /// Customers with overrides that apply to its rules.
    customers: rustc_hash::FxHashMap<Uuid, PreparedOverrides>,
}

impl Candidate {
    /// `policy` under `tables`, resolved the way the enforced set is.
    fn build(policy: Arc<Policy>, tables: &OverrideTables) -> Self {
        let in_force = tables.resolve(&Fingerprints::of(&policy));
        let global = policy.prepare(&in_force.global);
        let customers = in_force
            .customers
            .iter()
            .map(|(id, o)| (*id, policy.prepare(&policy.layer(&in_force.global, o))))
            .collect();
        Self { policy, global, customers }
    }

    /// The overrides a customer's requests are decided with.
    pub fn for_customer(&self, id: &Uuid) -> &PreparedOverrides {
        self.customers.get(id).unwrap_or(&self.global)
    }
}

/// Everything a decision needs, consistent as of one moment.
#[derive(Debug)]
pub struct Snapshot {
    /// The compiled policy.
    pub policy: Arc<Policy>,
    /// The fingerprint of each of its rules, which stored settings must
    /// match to apply.
    pub fingerprints: Arc<Fingerprints>,
    /// Global toggles, for customers without overrides of their own.
    pub global: PreparedOverrides,
    /// Customers with overrides or settings. Fx hashing: customer ids are
    /// ours, not chosen by clients, and this lookup is on every decision.
    pub customers: rustc_hash::FxHashMap<Uuid, CustomerView>,
    /// The tables this snapshot was built from, as stored.
    pub tables: OverrideTables,
    /// The tables resolved against `policy`: the toggles and overrides that
    /// apply, and the orphans, which don't (their rule is missing, or is not
    /// the rule they were set for).
    pub in_force: InForce,
    /// The database change counter the tables were read at (read before
    /// them, so the tables are at least this new).
    pub config_version: i64,
    /// The shadow policy set, when one is configured.
    pub candidate: Option<Arc<Candidate>>,
}

impl Snapshot {
    /// Resolves every override against `policy`.
    pub fn build(policy: Arc<Policy>, tables: OverrideTables, config_version: i64) -> Self {
        let fingerprints = Arc::new(Fingerprints::of(&policy));
        Self::assemble(policy, fingerprints, tables, config_version)
    }

    /// A snapshot of the same policies (the enforced one's fingerprints are
    /// not computed again) with other tables.
    fn with_tables(&self, tables: OverrideTables, config_version: i64) -> Self {
        let candidate = self.candidate.as_ref().map(|c| Arc::new(Candidate::build(c.policy.clone(), &tables)));
        Self { candidate, ..Self::assemble(self.policy.clone(), self.fingerprints.clone(), tables, config_version) }
    }

    /// This snapshot with the shadow set `candidate` (or none).
    #[must_use]
    pub fn with_candidate(self, candidate: Option<Arc<Policy>>) -> Self {
        let candidate = candidate.map(|p| Arc::new(Candidate::build(p, &self.tables)));
        Self { candidate, ..self }
    }

    fn assemble(policy: Arc<Policy>, fingerprints: Arc<Fingerprints>, tables: OverrideTables, version: i64) -> Self {
        // Settings not bound to the served rule of their name are left out
        // here, so no decision can apply them.
        let in_force = tables.resolve(&fingerprints);
        let global = policy.prepare(&in_force.global);
        let mut customers = rustc_hash::FxHashMap::default();
        let ids = in_force.customers.keys().chain(tables.settings.keys());
        for id in ids {
            if customers.contains_key(id) {
                continue;
            }
            let layered = match in_force.customers.get(id) {
                Some(o) => policy.layer(&in_force.global, o),
                None => in_force.global.clone(),
            };
            let rate_limit = tables.settings.get(id).and_then(|s| {
                let requests = u32::try_from(s.rate_limit_requests?).ok().filter(|r| *r > 0)?;
                let secs = u64::try_from(s.rate_limit_window_seconds?).ok().filter(|w| *w > 0)?;
                Some(Quota { requests, window: Duration::from_secs(secs) })
            });
            customers.insert(*id, CustomerView { overrides: policy.prepare(&layered), rate_limit });
        }
        Self { policy, fingerprints, global, customers, tables, in_force, config_version: version, candidate: None }
    }

    /// The overrides and rate limit for a customer.
    pub fn for_customer(&self, id: &Uuid) -> (&PreparedOverrides, Option<Quota>) {
        match self.customers.get(id) {
            Some(v) => (&v.overrides, v.rate_limit),
            None => (&self.global, None),
        }
    }

    /// The toggles and overrides that apply to nothing under this policy,
    /// by rule.
    pub fn orphans(&self) -> &[Orphan] {
        &self.in_force.orphans
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
    /// ahead of the current snapshot's. Returns whether it reloaded.
    pub async fn refresh_overrides(&self, store: &Store) -> Result<bool, StoreError> {
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
            self.store(current.with_tables(tables, version));
        }
        Ok(())
    }

    /// Swaps in a new policy, keeping the current override tables (resolved
    /// again against it: which settings apply, which are orphaned) and the
    /// shadow set.
    pub async fn replace_policy(&self, policy: Arc<Policy>) {
        let _swap = self.swap.lock().await;
        let current = self.load();
        let next = Snapshot::build(policy, current.tables.clone(), current.config_version);
        self.store(Snapshot { candidate: current.candidate.clone(), ..next });
    }

    /// Swaps in a new shadow policy set (or removes it), keeping the
    /// enforced set and the override tables.
    pub async fn replace_candidate(&self, candidate: Option<Arc<Policy>>) {
        let _swap = self.swap.lock().await;
        let current = self.load();
        let next = Snapshot::assemble(
            current.policy.clone(),
            current.fingerprints.clone(),
            current.tables.clone(),
            current.config_version,
        );
        self.store(next.with_candidate(candidate));
    }
}
