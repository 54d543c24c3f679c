//! `/api/admin/params` and `/api/admin/customers/{id}/params/{name}`: the
//! values of policy parameters, for the fleet and per customer.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::input::{ListBody, ListFields, PathParams};
use crate::admin::params::{self, CustomerParamView, ParamList, ParamValue, ParamView};
use crate::error::{ApiError, ErrorBody};
use crate::http::Admin;
use crate::state::AppState;

/// `/api/admin/params…` and `/api/admin/customers/{id}/params/{name}`.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_params)).routes(routes!(patch_param)).routes(routes!(
        get_customer_param,
        put_customer_param,
        delete_customer_param
    ))
}

/// `{"value": V}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ValueBody {
    /// The value, of the parameter's type: a string, a number, a bool, or a
    /// list of strings. On `PATCH /api/admin/params/{name}`, `null` returns
    /// to the value in the policy files.
    #[schema(value_type = Option<ParamValue>)]
    value: Value,
}

impl ListFields for ValueBody {
    const LISTS: &'static [&'static str] = &["value"];
}

/// Every declared parameter with the fleet's value in force.
#[utoipa::path(get, path = "/api/admin/params", tag = "admin",
    responses((status = 200, description = "Every parameter", body = ParamList)))]
async fn list_params(State(state): State<AppState>, _: Admin) -> Json<ParamList> {
    Json(params::list(&state))
}

/// Set the fleet's value of a parameter (`null`: the file's value again).
#[utoipa::path(patch, path = "/api/admin/params/{name}", tag = "admin", request_body = ValueBody,
    params(("name" = String, Path, description = "Parameter name")),
    responses(
        (status = 200, description = "The parameter as now applied; from every customer's next request on", body = ParamView),
        (status = 204, description = "A stored value for a parameter the set no longer declares was cleared"),
        (status = 404, description = "No parameter of that name", body = ErrorBody),
        (status = 422, description = "A value not of the parameter's type, or no `value`", body = ErrorBody),
    ))]
async fn patch_param(
    State(state): State<AppState>,
    Admin(actor): Admin,
    PathParams(name): PathParams<String>,
    body: Result<ListBody<ValueBody>, ApiError>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    // An unknown parameter is 404 whatever the body.
    params::patchable(&state, &name).await?;
    let ListBody(b) = body?;
    let value = (!b.value.is_null()).then_some(b.value);
    Ok(match params::set_global(&state, actor.key_id, &name, value).await? {
        Some(view) => Json(view).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// A customer's value of a parameter (also one that applies to nothing).
#[utoipa::path(get, path = "/api/admin/customers/{id}/params/{name}", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "Customer id"), ("name" = String, Path, description = "Parameter name")),
    responses((status = 200, description = "The value", body = CustomerParamView), (status = 404, description = "Unknown customer or parameter, or no value", body = ErrorBody)))]
async fn get_customer_param(
    State(state): State<AppState>,
    _: Admin,
    PathParams((id, name)): PathParams<(String, String)>,
) -> Result<Json<CustomerParamView>, ApiError> {
    let customer = super::customer(&state, &id).await?;
    Ok(Json(params::get_customer(&state, &customer, &name).await?))
}

/// Set a customer's value of a parameter.
#[utoipa::path(put, path = "/api/admin/customers/{id}/params/{name}", tag = "admin", request_body = ValueBody,
    params(("id" = uuid::Uuid, Path, description = "Customer id"), ("name" = String, Path, description = "Parameter name")),
    responses(
        (status = 200, description = "Set; applies to the customer's next request", body = CustomerParamView),
        (status = 404, description = "Unknown customer or parameter", body = ErrorBody),
        (status = 422, description = "A value not of the parameter's type, or no `value`", body = ErrorBody),
    ))]
async fn put_customer_param(
    State(state): State<AppState>,
    Admin(actor): Admin,
    PathParams((id, name)): PathParams<(String, String)>,
    body: Result<ListBody<ValueBody>, ApiError>,
) -> Result<Json<CustomerParamView>, ApiError> {
    // An unknown customer or parameter is 404 whatever the body.
    let customer = super::customer(&state, &id).await?;
    if !state.live.load().policy.params().any(|p| p.name == name) {
        return Err(ApiError::NotFound(format!("no parameter `{}` in the policy set", name.escape_default())));
    }
    let ListBody(b) = body?;
    Ok(Json(params::set_customer(&state, actor.key_id, &customer, &name, b.value).await?))
}

/// Remove a customer's value of a parameter (also one that applies to
/// nothing): the fleet's or the file's value applies again.
#[utoipa::path(delete, path = "/api/admin/customers/{id}/params/{name}", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "Customer id"), ("name" = String, Path, description = "Parameter name")),
    responses((status = 204, description = "Removed"), (status = 404, description = "Unknown customer or parameter, or no value", body = ErrorBody)))]
async fn delete_customer_param(
    State(state): State<AppState>,
    Admin(actor): Admin,
    PathParams((id, name)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let customer = super::customer(&state, &id).await?;
    params::clear_customer(&state, actor.key_id, &customer, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
