//! `/api/admin/customers`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::PageParams;
use super::input::{Body, Params, PathParams};
use crate::admin::customers;
use crate::error::{ApiError, ErrorBody};
use crate::http::Admin;
use crate::state::AppState;
use crate::store::{Customer, Page};

/// `/api/admin/customers` and `/api/admin/customers/{id}`.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_customer, list_customers)).routes(routes!(get_customer))
}

/// A new customer.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewCustomer {
    /// Display name: 1 to 200 characters, not only spaces, tabs and line
    /// breaks (those are trimmed from its ends).
    #[schema(min_length = 1, max_length = 200, pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\r ][^\\u0000]*$")]
    name: String,
    /// Unique email (compared without case): `local@domain`, the domain
    /// with a dot, no spaces, at most 254 characters.
    #[schema(max_length = 254, pattern = "^[^@\\u0000\\t\\n\\r ]+@[^@\\u0000\\t\\n\\r ]*\\.[^@\\u0000\\t\\n\\r ]*$")]
    email: String,
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
    let customer = customers::create(&state, actor.key_id, &c.name, &c.email).await?;
    Ok((StatusCode::CREATED, Json(customer)))
}

/// `?page=&page_size=&q=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CustomerQuery {
    /// From 1 (default 1).
    #[param(minimum = 1, maximum = 4_294_967_295_u64, format = Int64)]
    page: Option<u32>,
    /// 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    page_size: Option<u32>,
    /// Only customers whose name or email contains this, without regard
    /// to case (at most 254 characters).
    #[param(max_length = 254, pattern = "^[^\\u0000]*$")]
    q: Option<String>,
}

/// List customers, oldest first, optionally only those matching `q`.
#[utoipa::path(get, path = "/api/admin/customers", tag = "admin", params(CustomerQuery),
    responses((status = 200, description = "A page of customers", body = Page<Customer>)))]
async fn list_customers(
    State(state): State<AppState>,
    _: Admin,
    Params(query): Params<CustomerQuery>,
) -> Result<Json<Page<Customer>>, ApiError> {
    let (page, size) = PageParams { page: query.page, page_size: query.page_size }.resolve()?;
    Ok(Json(customers::list(&state, query.q.as_deref(), page, size).await?))
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
