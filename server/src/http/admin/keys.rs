//! `/api/admin/keys`: list, create, rotate, delete (the rules are in
//! [`crate::admin::keys`]). Responses never hold a secret or hash, except
//! the new key itself, shown once on creation and rotation.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::input::{Body, Params, PathParams};
use super::int::Int;
use super::{PageParams, parse_id};
use crate::admin::keys::{self, IssuedKey, KeyRequest};
use crate::error::{ApiError, ErrorBody};
use crate::http::Admin;
use crate::state::AppState;
use crate::store::{KeySummary, Page, Role};

/// `/api/admin/keys`, `/api/admin/keys/{id}` and `/api/admin/keys/{id}/rotate`.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_keys, create_key)).routes(routes!(rotate_key)).routes(routes!(delete_key))
}

/// `?customer_id=&page=&page_size=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct KeyQuery {
    /// Only this customer's keys.
    customer_id: Option<Uuid>,
    /// From 1 (default 1).
    #[param(minimum = 1, maximum = 4_294_967_295_u64, format = Int64)]
    page: Option<u32>,
    /// 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    page_size: Option<u32>,
}

/// A new key.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewKeyBody {
    /// A label: 1 to 200 characters, not only spaces, tabs and line breaks
    /// (those are trimmed from its ends).
    #[schema(min_length = 1, max_length = 200, pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\r ][^\\u0000]*$")]
    name: String,
    /// The customer it belongs to.
    customer_id: Uuid,
    /// `app` (default), `admin`, or `viewer` (reads the admin API and the
    /// dashboard, changes nothing, asks for no decisions).
    role: Option<Role>,
}

/// A rotation.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    /// Keep the old secret valid this long (0 to 604800 s); absent or 0: it
    /// fails at once.
    #[serde(default)]
    #[schema(inline)]
    grace_seconds: Option<Int<0, 604_800>>,
}

/// List keys (never their secrets or hashes).
#[utoipa::path(get, path = "/api/admin/keys", tag = "admin", params(KeyQuery),
    responses((status = 200, description = "A page of keys", body = Page<KeySummary>)))]
async fn list_keys(
    State(state): State<AppState>,
    _: Admin,
    Params(q): Params<KeyQuery>,
) -> Result<Json<Page<KeySummary>>, ApiError> {
    let (page, size) = PageParams { page: q.page, page_size: q.page_size }.resolve()?;
    Ok(Json(state.store.list_keys(q.customer_id, page, size).await?))
}

/// Create a key; the response holds the plaintext key, once.
#[utoipa::path(post, path = "/api/admin/keys", tag = "admin", request_body = NewKeyBody,
    responses(
        (status = 201, description = "Created", body = IssuedKey),
        (status = 404, description = "Unknown customer", body = ErrorBody),
    ))]
async fn create_key(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Body(b): Body<NewKeyBody>,
) -> Result<(StatusCode, Json<IssuedKey>), ApiError> {
    let request = KeyRequest { name: b.name, customer_id: b.customer_id, role: b.role.unwrap_or(Role::App) };
    Ok((StatusCode::CREATED, Json(keys::create(&state, actor.key_id, request).await?)))
}

/// Rotate a key's secret. The old secret fails at once, or after
/// `grace_seconds`.
#[utoipa::path(post, path = "/api/admin/keys/{id}/rotate", tag = "admin", request_body = Option<RotateBody>,
    params(("id" = Uuid, Path, description = "Key id")),
    responses(
        (status = 200, description = "Rotated; the new key, once", body = IssuedKey),
        (status = 404, description = "Unknown key", body = ErrorBody),
    ))]
async fn rotate_key(
    State(state): State<AppState>,
    Admin(actor): Admin,
    PathParams(id): PathParams<String>,
    body: Result<Body<RotateBody>, ApiError>,
) -> Result<Json<IssuedKey>, ApiError> {
    let id = parse_id(&id, "key")?;
    let Body(b) = body?;
    // In range by the body's type (0 to 604800).
    let grace = b.grace_seconds.map_or(0, |g| u32::try_from(g.get()).unwrap_or(u32::MAX));
    Ok(Json(keys::rotate(&state, actor.key_id, id, grace).await?))
}

/// Delete a key; it fails at once.
#[utoipa::path(delete, path = "/api/admin/keys/{id}", tag = "admin",
    params(("id" = Uuid, Path, description = "Key id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Unknown key", body = ErrorBody)))]
async fn delete_key(
    State(state): State<AppState>,
    Admin(actor): Admin,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id, "key")?;
    keys::delete(&state, actor.key_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
