//! `/api/admin/customers`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::{Body, PageParams, invalid};
use crate::app::AppState;
use crate::error::ApiError;
use crate::http::Admin;
use crate::http::check::ErrorBody;
use crate::store::{Customer, Page};

/// A new customer.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    /// Display name (1–200 characters).
    name: String,
    /// Unique email.
    email: String,
}

fn validate(c: &NewCustomer) -> Result<(), ApiError> {
    let name = c.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(invalid("name", "`name` must be 1 to 200 characters"));
    }
    let email = c.email.trim();
    let shaped = email.len() <= 254 && email.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.'));
    if !shaped || email.chars().any(char::is_whitespace) {
        return Err(invalid("email", "`email` must be an address such as ops@example.com"));
    }
    Ok(())
}

/// Create a customer.
#[utoipa::path(post, path = "/api/admin/customers", tag = "admin", request_body = NewCustomer,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Created", body = Customer),
        (status = 409, description = "The email is taken", body = ErrorBody),
        (status = 422, description = "Invalid body; `field` names the field", body = ErrorBody),
    ))]
pub async fn create_customer(
    State(state): State<AppState>,
    admin: Result<Admin, ApiError>,
    body: Result<Body<NewCustomer>, ApiError>,
) -> Result<(StatusCode, Json<Customer>), ApiError> {
    let Admin(actor) = admin?;
    let Body(c) = body?;
    validate(&c)?;
    let customer = state.store.create_customer(c.name.trim(), c.email.trim(), Some(actor.key_id)).await?;
    Ok((StatusCode::CREATED, Json(customer)))
}

/// List customers, oldest first.
#[utoipa::path(get, path = "/api/admin/customers", tag = "admin", params(PageParams),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of customers", body = Page<Customer>)))]
pub async fn list_customers(
    State(state): State<AppState>,
    admin: Result<Admin, ApiError>,
    params: Result<Query<PageParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page<Customer>>, ApiError> {
    admin?;
    let (page, size) = super::query(params)?.resolve()?;
    Ok(Json(state.store.list_customers(page, size).await?))
}

/// One customer.
#[utoipa::path(get, path = "/api/admin/customers/{id}", tag = "admin",
    params(("id" = String, Path, description = "Customer id")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The customer", body = Customer), (status = 404, description = "Unknown id", body = ErrorBody)))]
pub async fn get_customer(
    State(state): State<AppState>,
    admin: Result<Admin, ApiError>,
    Path(id): Path<String>,
) -> Result<Json<Customer>, ApiError> {
    admin?;
    Ok(Json(super::customer(&state, &id).await?))
}
