//! Orphaned settings: global toggles and per-customer overrides that no
//! longer apply because the rule they were set for is not the one served.
//!
//! Settings are stored by rule name, so a setting made for one rule would
//! otherwise apply, silently, to a later rule that takes the same name (an
//! exemption granted for one rule switching off another). So each is bound
//! to the rule it was set for: it stores that rule's fingerprint
//! ([`Policy::rule_fingerprint`]: its effect kind and its condition in
//! canonical form). Against the set an instance serves, a setting applies
//! only if a rule of its name exists and has that fingerprint; otherwise it
//! is orphaned, with the reason `rule_missing` or `rule_changed`.
//!
//! This is computed by each instance against the set it serves, whenever
//! its snapshot is built; nothing is written to the database when a set is
//! served. So an instance serving a partial or stale set (a copy in
//! progress, an old `--policies`, a canary) changes nothing for the others,
//! and a rule removed and later restored unchanged gets its settings back
//! with no admin action, being the same rule. Setting an orphan again binds
//! it to the rule now serving (re-confirming it); deleting it removes it.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap;
use serde::Serialize;
use uuid::Uuid;
use warden_engine::{Overrides, Policy};

use super::customers::now;
use super::overrides::{Binding, OverrideTables};
use super::{AdminChange, Store, StoreError, admin_tx, on_pool};

/// Why a stored setting applies to nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrphanReason {
    /// The served set has no rule of its name.
    RuleMissing,
    /// The served set's rule of that name is not the rule it was set for
    /// (another condition or effect kind), or it was set before rules had
    /// fingerprints and could not be bound to one.
    RuleChanged,
}

/// Whether a setting bound to the rule fingerprinted `bound_to` applies to
/// the served rule of its name, fingerprinted `served` (`None`: the set has
/// no such rule).
///
/// # Errors
///
/// Why it doesn't.
pub fn binding(served: Option<&str>, bound_to: Option<&str>) -> Result<(), OrphanReason> {
    match (served, bound_to) {
        (None, _) => Err(OrphanReason::RuleMissing),
        (Some(now), Some(then)) if now == then => Ok(()),
        (Some(_), _) => Err(OrphanReason::RuleChanged),
    }
}

/// A toggle or override that applies to nothing under the set served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Orphan {
    /// The customer whose override it is; `null` for a global toggle.
    pub customer_id: Option<Uuid>,
    /// The rule name it was set for.
    pub rule: String,
    /// The `enabled` it sets, if any.
    pub enabled: Option<bool>,
    /// The score it sets, if any.
    pub score: Option<i64>,
    /// The mode it sets (`enforce` or `shadow`), if any.
    #[schema(value_type = Option<String>)]
    pub mode: Option<warden_engine::RuleMode>,
    /// `rule_missing` (no rule of that name is served) or `rule_changed`
    /// (the rule of that name is not the one it was set for).
    pub reason: OrphanReason,
    /// When it was last set (UTC).
    pub set_at: DateTime<Utc>,
}

/// The fingerprint of every rule of one policy, by name: computed once per
/// policy, since every stored setting is checked against one.
#[derive(Debug, Clone, Default)]
pub struct Fingerprints(FxHashMap<String, String>);

impl Fingerprints {
    /// Every rule of `policy`.
    pub fn of(policy: &Policy) -> Self {
        Self(policy.rule_names().filter_map(|n| Some((n.to_owned(), policy.rule_fingerprint(n)?))).collect())
    }

    /// The fingerprint of the rule named `rule`, if the policy has one.
    pub fn get(&self, rule: &str) -> Option<&str> {
        self.0.get(rule).map(String::as_str)
    }
}

/// Stored settings resolved against one policy.
#[derive(Debug, Clone, Default)]
pub struct InForce {
    /// The global toggles that apply.
    pub global: Overrides,
    /// Each customer's overrides that apply, and threshold.
    pub customers: std::collections::BTreeMap<Uuid, Overrides>,
    /// Those that don't, by rule, global toggles first, then by customer.
    pub orphans: Vec<Orphan>,
}

/// Keeps the rules of `o` bound to the served rule of their name; the rest
/// go to `orphans`.
fn bound(
    fingerprints: &Fingerprints,
    customer_id: Option<Uuid>,
    o: &Overrides,
    bindings: Option<&std::collections::BTreeMap<String, Binding>>,
    orphans: &mut Vec<Orphan>,
) -> Overrides {
    // Parameter values are bound by name and type, which the engine checks
    // when it prepares them; they pass through as stored.
    let mut out = Overrides { threshold: o.threshold, params: o.params.clone(), ..Overrides::default() };
    for (rule, setting) in &o.rules {
        let b = bindings.and_then(|b| b.get(rule));
        match binding(fingerprints.get(rule), b.and_then(|b| b.fingerprint.as_deref())) {
            Ok(()) => {
                out.rules.insert(rule.clone(), *setting);
            }
            Err(reason) => orphans.push(Orphan {
                customer_id,
                rule: rule.clone(),
                enabled: setting.enabled,
                score: setting.score,
                mode: setting.mode,
                reason,
                set_at: b.map_or(DateTime::<Utc>::MIN_UTC, |b| b.set_at),
            }),
        }
    }
    out
}

impl OverrideTables {
    /// Splits the stored toggles and overrides into those that apply to the
    /// rules fingerprinted in `fingerprints` and the orphans (see the module
    /// documentation).
    pub fn resolve(&self, fingerprints: &Fingerprints) -> InForce {
        let mut orphans = Vec::new();
        let global = bound(fingerprints, None, &self.global, Some(&self.bindings.global), &mut orphans);
        let customers = self
            .customers
            .iter()
            .map(|(id, o)| (*id, bound(fingerprints, Some(*id), o, self.bindings.customers.get(id), &mut orphans)))
            .collect();
        orphans.sort_by(|a, b| (&a.rule, a.customer_id).cmp(&(&b.rule, b.customer_id)));
        InForce { global, customers, orphans }
    }
}

/// What [`Store::adopt_legacy_fingerprints`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Adopted {
    /// Toggles and overrides bound to the rule now serving under their name.
    pub bound: u64,
    /// Rules whose settings were left unbound (no rule of that name was
    /// served, or they had been marked orphaned): they apply to nothing
    /// until set again.
    pub unbound_rules: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct LegacyRow {
    rule_key: String,
    orphaned_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Binds the toggles and overrides made before rules had fingerprints
    /// (their `rule_fingerprint` is `NULL`) to the rule that `policy`
    /// serves under their name, once per database: the first instance of a
    /// release with fingerprints to start does it, and records it in
    /// `rule_fingerprint_adoption`; later start-ups do nothing, so a set
    /// served later (another rule of the same name) can't adopt them.
    ///
    /// Settings whose rule `policy` lacks, and those an earlier release had
    /// marked orphaned (`orphaned_at`: their rule had left a served set, so
    /// the rule of that name now may be another), stay unbound: orphaned
    /// until an admin sets them again. What was bound is recorded in the
    /// admin trail (`policy.fingerprint.adopt`) and logged. Returns `None`
    /// when there was nothing to do or it was done before.
    pub async fn adopt_legacy_fingerprints(&self, policy: &Policy) -> Result<Option<Adopted>, StoreError> {
        let done = on_pool!(self, p => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM rule_fingerprint_adoption").fetch_one(p).await)?;
        if done > 0 {
            return Ok(None);
        }
        let toggles = on_pool!(self, p => sqlx::query_as::<_, LegacyRow>(
            "SELECT rule_key, orphaned_at FROM policy WHERE rule_fingerprint IS NULL AND (enabled IS NOT NULL OR mode IS NOT NULL)")
            .fetch_all(p).await)?;
        let overrides = on_pool!(self, p => sqlx::query_as::<_, LegacyRow>(
            "SELECT rule_key, orphaned_at FROM customer_policy WHERE rule_fingerprint IS NULL").fetch_all(p).await)?;
        let claim = "INSERT INTO rule_fingerprint_adoption (id, adopted_at, policy_version) VALUES (1, $1, $2) \
                     ON CONFLICT (id) DO NOTHING";
        if toggles.is_empty() && overrides.is_empty() {
            on_pool!(self, p => sqlx::query(claim).bind(now()).bind(policy.version()).execute(p).await.map(|_| ()))?;
            return Ok(None);
        }
        let fingerprints = Fingerprints::of(policy);
        let mut adopt = std::collections::BTreeMap::new();
        let mut unbound_rules = BTreeSet::new();
        for row in toggles.iter().chain(&overrides) {
            match fingerprints.get(&row.rule_key).filter(|_| row.orphaned_at.is_none()) {
                Some(f) => {
                    adopt.insert(row.rule_key.clone(), f.to_owned());
                }
                None => {
                    unbound_rules.insert(row.rule_key.clone());
                }
            }
        }
        let change = AdminChange::new(None, "policy.fingerprint.adopt", "rules").after(serde_json::json!({
            "policy_version": policy.version(),
            "bound": adopt,
            "unbound_rules": unbound_rules,
        }));
        let bound = admin_tx!(self, &change, tx => {
            let claimed = sqlx::query(claim).bind(now()).bind(policy.version()).execute(&mut *tx).await?.rows_affected();
            if claimed == 0 {
                // Another instance did it first.
                return Ok(None);
            }
            let mut bound = 0u64;
            for (rule, fingerprint) in &adopt {
                for table in ["policy", "customer_policy"] {
                    bound += sqlx::query(&format!(
                        "UPDATE {table} SET rule_fingerprint = $1 \
                         WHERE rule_key = $2 AND rule_fingerprint IS NULL AND orphaned_at IS NULL"
                    ))
                    .bind(fingerprint)
                    .bind(rule)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
            }
            bound
        });
        let adopted = Adopted { bound, unbound_rules: unbound_rules.into_iter().collect() };
        tracing::info!(
            bound = adopted.bound,
            unbound_rules = %adopted.unbound_rules.join(", "),
            policy_version = policy.version(),
            "settings made before rule fingerprints were bound, once, to the rules now served under their names; \
             any left unbound apply to nothing until set again (GET /api/admin/orphans)"
        );
        Ok(Some(adopted))
    }

    /// Deletes the global toggle of `rule_key` if it is orphaned under
    /// `policy`. Returns whether there was one.
    pub async fn delete_orphaned_toggle(
        &self,
        policy: &Policy,
        rule_key: &str,
        actor: Option<Uuid>,
    ) -> Result<bool, StoreError> {
        let served = policy.rule_fingerprint(rule_key);
        // Only while it is still orphaned: not if it was re-confirmed since.
        let sql = "DELETE FROM policy WHERE rule_key = $1 AND (enabled IS NOT NULL OR mode IS NOT NULL) \
                   AND ($2 IS NULL OR rule_fingerprint IS NULL OR rule_fingerprint <> $2)";
        admin_tx!(self, read change => {
            let Some(row) = self.toggle_row(rule_key).await?.filter(|t| t.enabled.is_some() || t.mode.is_some()) else {
                return Ok(false);
            };
            let Err(reason) = binding(served.as_deref(), row.rule_fingerprint.as_deref()) else { return Ok(false) };
            let orphan = Orphan {
                customer_id: None,
                mode: row.rule().mode,
                rule: row.rule_key,
                enabled: row.enabled,
                score: None,
                reason,
                set_at: row.updated_at,
            };
            AdminChange::new(actor, "policy.toggle.delete", rule_key).before(&orphan)
        }, tx => {
            let done = sqlx::query(sql).bind(rule_key).bind(&served).execute(&mut *tx).await?.rows_affected();
            if done == 0 {
                return Ok(false);
            }
        });
        Ok(true)
    }
}
