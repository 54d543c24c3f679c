//! Policy parameter values set by admins: for the whole fleet
//! (`param_value`) and per customer (`customer_param`).
//!
//! Values are stored by parameter name as JSON. Whether one applies is
//! decided against the set being served, by the engine
//! ([`Policy::prepare`]): a name the set doesn't declare, or a value not of
//! the declared type (the file changed it), is set aside and the value
//! below it applies. Nothing is written when the set changes.
//!
//! Every change records in the admin trail the value in force before and
//! after it, with its source (`file`, `global`, `override`), as
//! [`Policy::effective`] computes it for decisions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::types::Json;
use uuid::Uuid;
use warden_engine::{Overrides, Policy};

use super::customers::now;
use super::{AdminChange, Store, StoreError, admin_tx, on_pool};

/// A stored parameter value.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredParam {
    /// The value, as JSON.
    pub value: Value,
    /// When it was last set (UTC).
    pub set_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ParamRow {
    name: String,
    value: Json<Value>,
    updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct CustomerParamRow {
    customer_id: Uuid,
    name: String,
    value: Json<Value>,
}

/// Parameter `name`'s value in force under `global` and `customer`, with
/// its source: `{"value": V, "source": "file"|"global"|"override"}`;
/// `null` for a parameter the set doesn't declare.
fn param_in_force(policy: &Policy, global: &Overrides, customer: Option<&Overrides>, name: &str) -> Value {
    let effective = policy.effective(global, customer);
    match effective.params.iter().find(|p| p.name == name) {
        Some(p) => json!({"value": p.value.value, "source": p.value.source}),
        None => Value::Null,
    }
}

/// `in_force` (a value with its source, or `null` for a parameter the set
/// doesn't declare) with the stored value being removed, as `stored`.
fn with_stored(in_force: Value, stored: Value) -> Value {
    match in_force {
        Value::Object(mut m) => {
            m.insert("stored".into(), stored);
            Value::Object(m)
        }
        _ => json!({ "stored": stored }),
    }
}

/// `overrides` with parameter `name` set to `value` (or removed).
fn with_param(overrides: &Overrides, name: &str, value: Option<&Value>) -> Overrides {
    let mut out = overrides.clone();
    match value {
        Some(v) => out.params.insert(name.to_owned(), v.clone()),
        None => out.params.remove(name),
    };
    out
}

impl Store {
    /// Every fleet-wide parameter value, by name.
    pub async fn global_params(&self) -> Result<BTreeMap<String, StoredParam>, StoreError> {
        let sql = "SELECT name, value, updated_at FROM param_value";
        let rows = on_pool!(self, p => sqlx::query_as::<_, ParamRow>(sql).fetch_all(p).await)?;
        Ok(rows.into_iter().map(|r| (r.name, StoredParam { value: r.value.0, set_at: r.updated_at })).collect())
    }

    /// Every customer's parameter values, by customer and name.
    pub(super) async fn customer_params(&self) -> Result<BTreeMap<Uuid, BTreeMap<String, Value>>, StoreError> {
        let sql = "SELECT customer_id, name, value FROM customer_param";
        let rows = on_pool!(self, p => sqlx::query_as::<_, CustomerParamRow>(sql).fetch_all(p).await)?;
        let mut out: BTreeMap<Uuid, BTreeMap<String, Value>> = BTreeMap::new();
        for r in rows {
            out.entry(r.customer_id).or_default().insert(r.name, r.value.0);
        }
        Ok(out)
    }

    /// One customer's parameter values, by name.
    pub(super) async fn params_of_customer(&self, customer_id: Uuid) -> Result<BTreeMap<String, Value>, StoreError> {
        let sql = "SELECT customer_id, name, value FROM customer_param WHERE customer_id = $1";
        let rows =
            on_pool!(self, p => sqlx::query_as::<_, CustomerParamRow>(sql).bind(customer_id).fetch_all(p).await)?;
        Ok(rows.into_iter().map(|r| (r.name, r.value.0)).collect())
    }

    /// A customer's stored value of parameter `name`, whether or not it
    /// applies under the served set.
    pub async fn customer_param(&self, customer_id: Uuid, name: &str) -> Result<Option<StoredParam>, StoreError> {
        let sql = "SELECT name, value, updated_at FROM customer_param WHERE customer_id = $1 AND name = $2";
        let row = on_pool!(self, p => sqlx::query_as::<_, ParamRow>(sql).bind(customer_id).bind(name).fetch_optional(p).await)?;
        Ok(row.map(|r| StoredParam { value: r.value.0, set_at: r.updated_at }))
    }

    /// Sets (`Some`) or removes (`None`: back to the file's value) the
    /// fleet-wide value of parameter `name`. The caller has checked the
    /// value against `policy` ([`Policy::check_param`]). Recorded as
    /// `param.set` or `param.reset`, with the value in force for customers
    /// without their own, before and after. Returns `false` (and records
    /// nothing) for a removal with nothing stored.
    pub async fn set_global_param(
        &self,
        policy: &Policy,
        name: &str,
        value: Option<&Value>,
        actor: Option<Uuid>,
    ) -> Result<bool, StoreError> {
        let upsert = "INSERT INTO param_value (name, value, updated_at) VALUES ($1, $2, $3) \
                      ON CONFLICT (name) DO UPDATE SET value = $2, updated_at = $3";
        let action = if value.is_some() { "param.set" } else { "param.reset" };
        let existed = admin_tx!(self, read change => {
            let fleet = self.fleet_overrides(policy).await?;
            let after = with_param(&fleet, name, value);
            let mut before = param_in_force(policy, &fleet, None, name);
            // A value removed is recorded even when it applied to nothing.
            if let (None, Some(stored)) = (value, fleet.params.get(name)) {
                before = with_stored(before, stored.clone());
            }
            AdminChange::new(actor, action, format!("param/{name}"))
                .before(before)
                .after(param_in_force(policy, &after, None, name))
        }, tx => {
            match value {
                Some(v) => {
                    sqlx::query(upsert).bind(name).bind(Json(v)).bind(now()).execute(&mut *tx).await?;
                    true
                }
                None => {
                    let done = sqlx::query("DELETE FROM param_value WHERE name = $1")
                        .bind(name)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    // Nothing stored: nothing changed, nothing recorded.
                    if done == 0 {
                        return Ok(false);
                    }
                    true
                }
            }
        });
        Ok(existed)
    }

    /// Sets a customer's value of parameter `name` (checked by the caller
    /// against `policy`). Recorded as `customer.param.set`, with the value
    /// in force for the customer before and after.
    pub async fn set_customer_param(
        &self,
        policy: &Policy,
        customer_id: Uuid,
        name: &str,
        value: &Value,
        actor: Option<Uuid>,
    ) -> Result<(), StoreError> {
        let upsert = "INSERT INTO customer_param (customer_id, name, value, updated_at) VALUES ($1, $2, $3, $4) \
                      ON CONFLICT (customer_id, name) DO UPDATE SET value = $3, updated_at = $4";
        admin_tx!(self, read change => {
            let fleet = self.fleet_overrides(policy).await?;
            let mine = self.customer_overrides(policy, customer_id).await?;
            let after = with_param(&mine, name, Some(value));
            AdminChange::new(actor, "customer.param.set", format!("customer/{customer_id}/param/{name}"))
                .before(param_in_force(policy, &fleet, Some(&mine), name))
                .after(param_in_force(policy, &fleet, Some(&after), name))
        }, tx => {
            sqlx::query(upsert).bind(customer_id).bind(name).bind(Json(value)).bind(now()).execute(&mut *tx).await?;
        });
        Ok(())
    }

    /// Removes a customer's value of parameter `name`; returns whether it
    /// existed. Recorded as `customer.param.delete`, with the value in force
    /// for the customer before and after (and the stored value, which may
    /// not have applied).
    pub async fn delete_customer_param(
        &self,
        policy: &Policy,
        customer_id: Uuid,
        name: &str,
        actor: Option<Uuid>,
    ) -> Result<bool, StoreError> {
        admin_tx!(self, read change => {
            let Some(stored) = self.customer_param(customer_id, name).await? else { return Ok(false) };
            let fleet = self.fleet_overrides(policy).await?;
            let mine = self.customer_overrides(policy, customer_id).await?;
            let before = with_stored(param_in_force(policy, &fleet, Some(&mine), name), stored.value);
            AdminChange::new(actor, "customer.param.delete", format!("customer/{customer_id}/param/{name}"))
                .before(before)
                .after(param_in_force(policy, &fleet, Some(&with_param(&mine, name, None)), name))
        }, tx => {
            let done = sqlx::query("DELETE FROM customer_param WHERE customer_id = $1 AND name = $2")
                .bind(customer_id)
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if done == 0 {
                return Ok(false);
            }
        });
        Ok(true)
    }
}
