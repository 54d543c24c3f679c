//! `/api/admin/customers`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::input::{Body, Params, PathParams};
use super::{PageParams, invalid};
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

/// Spaces, tabs and line breaks: what a name may not consist of only, and
/// what an email may not contain. (The same set as the documented patterns;
/// Unicode's wider notion of whitespace differs between regex engines.)
fn blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// A display name as documented: 1 to 200 characters, not all blank.
/// Returns it without blank ends.
pub(super) fn display_name<'a>(field: &str, name: &'a str) -> Result<&'a str, ApiError> {
    if name.chars().all(blank) || name.chars().count() > 200 {
        return Err(invalid(field, format!("`{field}` must be 1 to 200 characters, not only spaces")));
    }
    Ok(name.trim_matches(blank))
}

fn validate(c: &NewCustomer) -> Result<&str, ApiError> {
    let name = display_name("name", &c.name)?;
    let bad = |c: char| c == '@' || c == '\0' || blank(c);
    let shaped = c.email.chars().count() <= 254
        && c.email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !local.chars().any(bad) && !domain.chars().any(bad) && domain.contains('.')
        });
    if !shaped {
        return Err(invalid("email", "`email` must be an address such as ops@example.com, without spaces"));
    }
    Ok(name)
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
    let name = validate(&c)?;
    let customer = state.store.create_customer(name, &c.email, Some(actor.key_id)).await?;
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
