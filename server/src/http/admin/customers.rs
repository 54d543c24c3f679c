//! `/api/admin/customers`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::input::{Body, Params, PathParams};
use super::{PageParams, invalid};
use crate::app::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::http::Admin;
use crate::store::{Customer, Page};

/// `/api/admin/customers` and `/api/admin/customers/{id}`.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_customer, list_customers)).routes(routes!(get_customer))
}

/// A new customer.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewCustomer {
    /// Display name (1–200 characters, not counting surrounding whitespace).
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// Unique email.
    #[schema(min_length = 3, max_length = 254)]
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
    responses(
        (status = 201, description = "Created", body = Customer),
        (status = 409, description = "The email is taken", body = ErrorBody),
    ))]
async fn create_customer(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Body(c): Body<NewCustomer>,
) -> Result<(StatusCode, Json<Customer>), ApiError> {
    validate(&c)?;
    let customer = state.store.create_customer(c.name.trim(), c.email.trim(), Some(actor.key_id)).await?;
    Ok((StatusCode::CREATED, Json(customer)))
}

/// List customers, oldest first.
#[utoipa::path(get, path = "/api/admin/customers", tag = "admin", params(PageParams),
    responses((status = 200, description = "A page of customers", body = Page<Customer>)))]
async fn list_customers(
    State(state): State<AppState>,
    _: Admin,
    Params(params): Params<PageParams>,
) -> Result<Json<Page<Customer>>, ApiError> {
    let (page, size) = params.resolve()?;
    Ok(Json(state.store.list_customers(page, size).await?))
}

/// One customer.
#[utoipa::path(get, path = "/api/admin/customers/{id}", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "Customer id")),
    responses((status = 200, description = "The customer", body = Customer), (status = 404, description = "Unknown id", body = ErrorBody)))]
async fn get_customer(
    State(state): State<AppState>,
    _: Admin,
    PathParams(id): PathParams<String>,
) -> Result<Json<Customer>, ApiError> {
    Ok(Json(super::customer(&state, &id).await?))
}
