//! `/api/admin/keys`: list, create, rotate, delete. Responses never hold a
//! secret or hash, except the new key itself, shown once on creation and
//! rotation.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::input::{Body, Params, PathParams};
use super::int::Int;
use super::{PageParams, parse_id};
use crate::error::{ApiError, ErrorBody};
use crate::http::Admin;
use crate::state::AppState;
use crate::store::{KeySummary, NewKey, Page, Role};

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
    /// `app` (default) or `admin`.
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

/// A key with its plaintext, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct IssuedKey {
    /// The full key: `wdn_<id>_<secret>`. Store it now; it is never shown again.
    key: String,
    /// Until when the previous secret still works (rotation with a grace period).
    #[serde(skip_serializing_if = "Option::is_none")]
    old_secret_valid_until: Option<DateTime<Utc>>,
    /// The key as listed.
    #[serde(flatten)]
    summary: KeySummary,
}

async fn hash(state: &AppState, secret: String) -> Result<String, ApiError> {
    let cost = state.bcrypt_cost;
    tokio::task::spawn_blocking(move || crate::auth::hash_secret(&secret, cost))
        .await
        .map_err(|e| ApiError::Internal(format!("hashing task: {e}")))?
        .map_err(|e| ApiError::Internal(format!("bcrypt: {e}")))
}

async fn summary(state: &AppState, id: Uuid) -> Result<KeySummary, ApiError> {
    state.store.key_summary(id).await?.ok_or_else(|| ApiError::NotFound(format!("no key with id `{id}`")))
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
    let name = super::customers::display_name("name", &b.name)?;
    let customer = super::customer(&state, &b.customer_id.to_string()).await?;
    let token = crate::auth::generate();
    let secret_hash = hash(&state, token.secret).await?;
    let key = NewKey {
        id: token.id,
        customer_id: customer.id,
        name: name.to_owned(),
        role: b.role.unwrap_or(Role::App),
        secret_hash,
    };
    state.store.insert_key(&key, Some(actor.key_id)).await?;
    let summary = summary(&state, token.id).await?;
    Ok((StatusCode::CREATED, Json(IssuedKey { key: token.token, old_secret_valid_until: None, summary })))
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
    let grace = b.grace_seconds.map_or(0, Int::get);
    let existing = summary(&state, id).await?;
    // A new secret for the same key id.
    let fresh = crate::auth::generate();
    let token = format!("{}{}_{}", crate::auth::PREFIX, id.simple(), fresh.secret);
    let secret_hash = hash(&state, fresh.secret).await?;
    let grace_until = (grace > 0).then(|| crate::store::now() + chrono::Duration::seconds(grace));
    if !state.store.rotate_key(id, &secret_hash, grace_until, Some(actor.key_id)).await? {
        return Err(ApiError::NotFound(format!("no key with id `{id}`")));
    }
    // Cached verifications of the old secret end here; during a grace
    // period the old secret is verified again, against its kept hash.
    state.auth.invalidate(id);
    Ok(Json(IssuedKey { key: token, old_secret_valid_until: grace_until, summary: existing }))
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
    if !state.store.delete_key(id, Some(actor.key_id)).await? {
        return Err(ApiError::NotFound(format!("no key with id `{id}`")));
    }
    state.auth.invalidate(id);
    Ok(StatusCode::NO_CONTENT)
}
