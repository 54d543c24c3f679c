//! Policy parameters: the fleet's values and each customer's, as the engine
//! resolves them for decisions ([`warden_engine::Policy::effective`]).
//!
//! A parameter is named by its declaration in the served set. A stored
//! value that no longer applies (its parameter was removed from the files,
//! or its type changed) is kept and listed as not applying; it can be read
//! and cleared, and applies again if the parameter returns as it was.

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;
use warden_engine::{EffectivePolicy, ParamError, Policy, ValueSource};

use super::apply_now;
use super::overrides::Sourced;
use crate::error::ApiError;
use crate::live::Snapshot;
use crate::state::AppState;
use crate::store::Customer;

/// A parameter value, as JSON of the parameter's type: the schema of the
/// document only. Bodies are read as JSON and checked against the served
/// set's declaration; values are shown as stored.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // a schema only
pub(crate) enum ParamValue {
    /// A `string` parameter's value.
    Text(String),
    /// A `number` parameter's value.
    Number(f64),
    /// A `bool` parameter's value.
    Bool(bool),
    /// A `list<string>` parameter's value.
    List(Vec<String>),
}

/// One declared parameter and the value in force.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ParamView {
    /// Its name (conditions read it as `param.<name>`).
    pub(crate) name: String,
    /// `string`, `number`, `bool` or `list<string>`.
    #[serde(rename = "type")]
    pub(crate) ty: &'static str,
    /// The value in force and where it comes from: `file`, `global` (the
    /// fleet's value), or `override` (the customer's, in a customer's view).
    #[schema(value_type = Sourced<ParamValue>)]
    pub(crate) value: Sourced<Value>,
    /// The value written in the policy files.
    #[schema(value_type = ParamValue)]
    pub(crate) default: Value,
    /// Where it is declared, `file:line`.
    pub(crate) declared_at: String,
}

/// A stored value that applies to nothing under the served set.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct UnappliedParam {
    /// The parameter's name.
    pub(crate) name: String,
    /// Whose value it is: `customer` or `global` (the fleet's).
    pub(crate) scope: &'static str,
    /// The value as stored.
    #[schema(value_type = ParamValue)]
    pub(crate) value: Value,
    /// Why it applies to nothing: `not_declared` (the set has no parameter
    /// of that name) or `wrong_type` (the value is not of the declared
    /// type).
    pub(crate) reason: &'static str,
    /// What the engine says about it.
    pub(crate) message: String,
}

/// Every parameter as the fleet gets it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ParamList {
    /// The policy version served.
    pub(crate) policy_version: String,
    /// Every declared parameter, in declaration order, with the value in
    /// force for customers without their own.
    pub(crate) params: Vec<ParamView>,
    /// Fleet-wide values that apply to nothing.
    pub(crate) not_applied: Vec<UnappliedParam>,
}

/// A customer's stored value of one parameter.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CustomerParamView {
    /// The parameter's name.
    pub(crate) name: String,
    /// The value stored for this customer (of the parameter's type unless
    /// `applies` is false).
    #[schema(value_type = ParamValue)]
    pub(crate) value: Value,
    /// Whether it applies under the served set (it does unless the set no
    /// longer declares the parameter or its type changed).
    pub(crate) applies: bool,
    /// Why it doesn't apply, when it doesn't: `not_declared` or
    /// `wrong_type`, with the engine's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) not_applied: Option<NotApplied>,
    /// When it was last set (RFC 3339, UTC).
    pub(crate) set_at: chrono::DateTime<chrono::Utc>,
}

/// Why a stored value applies to nothing.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct NotApplied {
    /// `not_declared` or `wrong_type`.
    pub(crate) reason: &'static str,
    /// What the engine says about it.
    pub(crate) message: String,
}

/// The declared parameters of `effective`, as shown.
pub(crate) fn views(policy: &Policy, effective: &EffectivePolicy<'_>) -> Vec<ParamView> {
    policy
        .params()
        .zip(&effective.params)
        .map(|(info, p)| ParamView {
            name: p.name.to_owned(),
            ty: p.ty.name(),
            value: Sourced { value: p.value.value.clone(), source: p.value.source.as_str() },
            default: p.default.clone(),
            declared_at: info.source,
        })
        .collect()
}

/// The values of `effective`'s overrides that apply to nothing.
pub(crate) fn unapplied(effective: &EffectivePolicy<'_>) -> Vec<UnappliedParam> {
    effective
        .params_not_applied
        .iter()
        .map(|u| UnappliedParam {
            name: u.name.clone(),
            scope: if u.layer == ValueSource::Override { "customer" } else { "global" },
            value: u.value.clone(),
            reason: reason(&u.error),
            message: u.error.to_string(),
        })
        .collect()
}

/// `not_declared` or `wrong_type`.
fn reason(e: &ParamError) -> &'static str {
    match e {
        ParamError::Unknown { .. } => "not_declared",
        ParamError::WrongType { .. } => "wrong_type",
    }
}

/// Every parameter with the fleet's values, under the serving snapshot.
pub(crate) fn list(state: &AppState) -> ParamList {
    let snapshot = state.live.load();
    let effective = snapshot.policy.effective(&snapshot.in_force.global, None);
    ParamList {
        policy_version: snapshot.policy.version().to_owned(),
        params: views(&snapshot.policy, &effective),
        not_applied: unapplied(&effective),
    }
}

fn no_param(name: &str) -> ApiError {
    ApiError::NotFound(format!("no parameter `{}` in the policy set", name.escape_default()))
}

/// `value` checked against parameter `name` of the served set: 404 for an
/// undeclared parameter, 422 naming the parameter and its type for a value
/// of another type.
fn checked(snapshot: &Snapshot, name: &str, value: &Value) -> Result<(), ApiError> {
    match snapshot.policy.check_param(name, value) {
        Ok(()) => Ok(()),
        Err(ParamError::Unknown { .. }) => Err(no_param(name)),
        Err(e @ ParamError::WrongType { .. }) => Err(super::invalid("value", e.to_string())),
    }
}

/// One parameter as the fleet gets it under the serving snapshot.
fn view(state: &AppState, name: &str) -> Result<ParamView, ApiError> {
    list(state).params.into_iter().find(|p| p.name == name).ok_or_else(|| no_param(name))
}

/// Sets the fleet's value of `name` (`None`: back to the file's), from
/// every customer's next request on (those with their own value keep it).
/// 404 for a parameter the set doesn't declare (except to clear a stored
/// value that applies to nothing); 422 for a value of another type.
/// Recorded as `param.set` or `param.reset`.
pub(crate) async fn set_global(
    state: &AppState,
    actor: Uuid,
    name: &str,
    value: Option<Value>,
) -> Result<Option<ParamView>, ApiError> {
    let snapshot = state.live.load();
    let declared = snapshot.policy.params().any(|p| p.name == name);
    match &value {
        Some(v) => checked(&snapshot, name, v)?,
        // Back to the file's value; with nothing stored, nothing changes.
        None if declared => {
            state.store.set_global_param(&snapshot.policy, name, None, Some(actor)).await?;
            apply_now(state).await;
            return view(state, name).map(Some);
        }
        None => {
            // Clearing a value the set has no parameter for (a name the
            // database can't hold names nothing stored).
            if !super::storable(name) {
                return Err(no_param(name));
            }
            if !state.store.set_global_param(&snapshot.policy, name, None, Some(actor)).await? {
                return Err(no_param(name));
            }
            apply_now(state).await;
            return Ok(None);
        }
    }
    state.store.set_global_param(&snapshot.policy, name, value.as_ref(), Some(actor)).await?;
    apply_now(state).await;
    view(state, name).map(Some)
}

/// 404 unless `name` is a parameter of the served set or has a stored
/// fleet value: what a `PATCH` checks before it reads its body.
pub(crate) async fn patchable(state: &AppState, name: &str) -> Result<(), ApiError> {
    if state.live.load().policy.params().any(|p| p.name == name) {
        return Ok(());
    }
    if super::storable(name) && state.store.global_params().await?.contains_key(name) {
        return Ok(());
    }
    Err(no_param(name))
}

fn no_value(customer: Uuid, name: &str) -> ApiError {
    ApiError::NotFound(format!("customer `{customer}` has no value of parameter `{}`", name.escape_default()))
}

/// The customer's stored value of `name` (also one that applies to
/// nothing), or 404.
pub(crate) async fn get_customer(
    state: &AppState,
    customer: &Customer,
    name: &str,
) -> Result<CustomerParamView, ApiError> {
    let declared = state.live.load().policy.params().any(|p| p.name == name);
    if !declared && !super::storable(name) {
        return Err(no_param(name));
    }
    let Some(stored) = state.store.customer_param(customer.id, name).await? else {
        return Err(if declared { no_value(customer.id, name) } else { no_param(name) });
    };
    let not_applied = state
        .live
        .load()
        .policy
        .check_param(name, &stored.value)
        .err()
        .map(|e| NotApplied { reason: reason(&e), message: e.to_string() });
    Ok(CustomerParamView {
        name: name.to_owned(),
        value: stored.value,
        applies: not_applied.is_none(),
        not_applied,
        set_at: stored.set_at,
    })
}

/// Sets the customer's value of `name`, from its next request on. 404 for
/// a parameter the set doesn't declare; 422 for a value of another type.
/// Recorded as `customer.param.set`.
pub(crate) async fn set_customer(
    state: &AppState,
    actor: Uuid,
    customer: &Customer,
    name: &str,
    value: Value,
) -> Result<CustomerParamView, ApiError> {
    let snapshot = state.live.load();
    if value.is_null() {
        return Err(super::invalid(
            "value",
            format!(
                "parameter `{name}` needs a value; to return this customer to the fleet's or the file's value, DELETE its value"
            ),
        ));
    }
    checked(&snapshot, name, &value)?;
    state.store.set_customer_param(&snapshot.policy, customer.id, name, &value, Some(actor)).await?;
    apply_now(state).await;
    get_customer(state, customer, name).await
}

/// Removes the customer's value of `name` (also one that applies to
/// nothing); 404 when there is none. Recorded as `customer.param.delete`.
pub(crate) async fn clear_customer(
    state: &AppState,
    actor: Uuid,
    customer: &Customer,
    name: &str,
) -> Result<(), ApiError> {
    get_customer(state, customer, name).await?;
    let policy = state.live.load().policy.clone();
    if !state.store.delete_customer_param(&policy, customer.id, name, Some(actor)).await? {
        return Err(no_value(customer.id, name));
    }
    apply_now(state).await;
    Ok(())
}
