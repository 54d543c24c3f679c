//! API keys: issue, rotate and delete, for the admin API, the dashboard and
//! `warden keys create`. A key's plaintext exists only in the value these
//! return, once; the database keeps its bcrypt hash, hashed on a blocking
//! thread so a request never stalls the runtime.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{KeySummary, NewKey, Role, Store};

/// The longest grace period a rotation may give the old secret: 7 days, in
/// seconds.
pub(crate) const MAX_GRACE_SECONDS: u32 = 604_800;

/// A key to issue.
#[derive(Debug, Clone)]
pub(crate) struct KeyRequest {
    /// A label: 1 to 200 characters, not only blanks (trimmed).
    pub name: String,
    /// The customer it belongs to (404 if there is none).
    pub customer_id: Uuid,
    /// What it may do.
    pub role: Role,
}

/// A key with its plaintext, shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct IssuedKey {
    /// The full key: `wdn_<id>_<secret>`. Store it now; it is never shown again.
    pub key: String,
    /// Until when the previous secret still works (rotation with a grace period).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_secret_valid_until: Option<DateTime<Utc>>,
    /// The key as listed.
    #[serde(flatten)]
    pub summary: KeySummary,
}

impl std::fmt::Debug for IssuedKey {
    // The plaintext key never goes to a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKey")
            .field("key", &"<redacted>")
            .field("old_secret_valid_until", &self.old_secret_valid_until)
            .field("summary", &self.summary)
            .finish()
    }
}

fn no_key(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no key with id `{id}`"))
}

/// bcrypt of `secret` at `cost`, on a blocking thread.
async fn hash(secret: String, cost: u32) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || crate::auth::hash_secret(&secret, cost))
        .await
        .map_err(|e| ApiError::Internal(format!("hashing task: {e}")))?
        .map_err(|e| ApiError::Internal(format!("bcrypt: {e}")))
}

async fn summary(store: &Store, id: Uuid) -> Result<KeySummary, ApiError> {
    store.key_summary(id).await?.ok_or_else(|| no_key(id))
}

/// Issues a key made by `actor` (an admin key).
///
/// # Errors
/// 422 for a bad name, 404 for an unknown customer, 503 if the database is
/// unavailable.
pub(crate) async fn create(state: &AppState, actor: Uuid, request: KeyRequest) -> Result<IssuedKey, ApiError> {
    issue(&state.store, state.bcrypt_cost, request, Some(actor)).await
}

/// Issues a key with bcrypt at `cost`, recorded in the admin trail as made
/// by `actor` (`None`: the command line).
///
/// # Errors
/// As [`create`].
pub(crate) async fn issue(
    store: &Store,
    cost: u32,
    request: KeyRequest,
    actor: Option<Uuid>,
) -> Result<IssuedKey, ApiError> {
    let name = super::customers::display_name("name", &request.name)?;
    let customer = store
        .customer(request.customer_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no customer with id `{}`", request.customer_id)))?;
    let token = crate::auth::generate();
    let secret_hash = hash(token.secret, cost).await?;
    let key = NewKey { id: token.id, customer_id: customer.id, name: name.to_owned(), role: request.role, secret_hash };
    store.insert_key(&key, actor).await?;
    let summary = summary(store, token.id).await?;
    Ok(IssuedKey { key: token.token, old_secret_valid_until: None, summary })
}

/// Gives key `id` a new secret (same key id). The old secret fails at once,
/// or after `grace_seconds` (0 to [`MAX_GRACE_SECONDS`]). The key's
/// dashboard sessions end.
///
/// # Errors
/// 422 for a grace period out of range, 404 for an unknown key, 503 if the
/// database is unavailable.
pub(crate) async fn rotate(state: &AppState, actor: Uuid, id: Uuid, grace_seconds: u32) -> Result<IssuedKey, ApiError> {
    if grace_seconds > MAX_GRACE_SECONDS {
        return Err(ApiError::Invalid {
            field: "grace_seconds".to_owned(),
            message: format!("`grace_seconds` must be between 0 and {MAX_GRACE_SECONDS}"),
        });
    }
    let existing = summary(&state.store, id).await?;
    let fresh = crate::auth::generate();
    let token = format!("{}{}_{}", crate::auth::PREFIX, id.simple(), fresh.secret);
    let secret_hash = hash(fresh.secret, state.bcrypt_cost).await?;
    let grace_until =
        (grace_seconds > 0).then(|| crate::store::now() + chrono::Duration::seconds(i64::from(grace_seconds)));
    if !state.store.rotate_key(id, &secret_hash, grace_until, Some(actor)).await? {
        return Err(no_key(id));
    }
    // Cached verifications of the old secret end here; during a grace
    // period the old secret is verified again, against its kept hash.
    state.auth.invalidate(id);
    Ok(IssuedKey { key: token, old_secret_valid_until: grace_until, summary: existing })
}

/// Deletes key `id`: it fails at once, and its dashboard sessions end.
///
/// # Errors
/// 404 for an unknown key, 503 if the database is unavailable.
pub(crate) async fn delete(state: &AppState, actor: Uuid, id: Uuid) -> Result<(), ApiError> {
    if !state.store.delete_key(id, Some(actor)).await? {
        return Err(no_key(id));
    }
    state.auth.invalidate(id);
    Ok(())
}
