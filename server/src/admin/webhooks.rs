//! Webhook endpoints: register (the signing secret generated when not
//! given, and returned this once), delete, re-enable, and send a delivery
//! again; for the admin API and the dashboard. Listings never hold the
//! secret.

use serde::Serialize;
use uuid::Uuid;

use super::invalid;
use crate::error::ApiError;
use crate::state::AppState;
use crate::webhooks::endpoints::{Endpoint, NewEndpoint};
use crate::webhooks::net::{Client, SendError};
use crate::webhooks::sign::Key;
use crate::webhooks::{EventType, Filter};

/// Longest URL accepted.
pub(crate) const MAX_URL: usize = 2048;
/// Longest description accepted, in characters.
pub(crate) const MAX_DESCRIPTION: usize = 500;
/// Most customers or reasons in a filter.
const MAX_FILTER: usize = 1000;

/// An endpoint to register.
#[derive(Clone)]
pub(crate) struct EndpointRequest {
    /// `http://` or `https://` URL; loopback and private addresses only
    /// with `webhook_allow_private`.
    pub url: String,
    /// Event names, or `*`.
    pub events: Vec<String>,
    /// `whsec_…`; generated when absent.
    pub secret: Option<String>,
    /// A note.
    pub description: Option<String>,
    /// Limits decision events to some customers or reasons.
    pub filter: Option<Filter>,
}

impl std::fmt::Debug for EndpointRequest {
    // The signing secret never goes to a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointRequest")
            .field("url", &self.url)
            .field("events", &self.events)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("description", &self.description)
            .field("filter", &self.filter)
            .finish()
    }
}

/// A registered endpoint, with its secret (this once).
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Registered {
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// The signing secret: store it now, it is not shown again.
    pub secret: String,
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registered").field("endpoint", &self.endpoint).field("secret", &"<redacted>").finish()
    }
}

/// Checks a registration: the URL (shape, scheme, and no private address
/// unless `allow_private`), the event names, the secret's form, the
/// description's length and the filter's size. A 422 names the field.
fn validate(request: &EndpointRequest, allow_private: bool) -> Result<(), ApiError> {
    if request.url.chars().count() > MAX_URL {
        return Err(invalid("url", format!("`url` must be at most {MAX_URL} characters")));
    }
    if request.url.contains('\0') {
        return Err(invalid("url", "`url` contains a NUL character (U+0000), which can't be stored"));
    }
    let url = url::Url::parse(&request.url)
        .map_err(|e| invalid("url", format!("`url` is not a URL ({e}); expected http:// or https://")))?;
    Client::check_url(&url, allow_private).map_err(|e| match e {
        SendError::Private(_) => invalid("url", e.to_string()),
        _ => invalid("url", "`url` must be an http:// or https:// URL with a host"),
    })?;
    if request.events.is_empty() {
        return Err(invalid("events", "`events` must name at least one event, or `*`"));
    }
    for (i, e) in request.events.iter().enumerate() {
        if e != "*" && EventType::parse(e).is_none() {
            let names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            return Err(invalid(
                &format!("events[{i}]"),
                format!("`{e}` is not an event; expected `*` or one of {}", names.join(", ")),
            ));
        }
    }
    if let Some(secret) = &request.secret {
        Key::from_secret(secret).map_err(|e| invalid("secret", e.to_string()))?;
    }
    if let Some(d) = &request.description {
        if d.chars().count() > MAX_DESCRIPTION {
            return Err(invalid("description", format!("`description` must be at most {MAX_DESCRIPTION} characters")));
        }
        if d.contains('\0') {
            return Err(invalid(
                "description",
                "`description` contains a NUL character (U+0000), which can't be stored",
            ));
        }
    }
    if let Some(f) = &request.filter {
        if f.customers.as_ref().is_some_and(|c| c.len() > MAX_FILTER) {
            return Err(invalid("filter.customers", format!("at most {MAX_FILTER} customers")));
        }
        if f.reasons.as_ref().is_some_and(|r| r.len() > MAX_FILTER || r.iter().any(|s| s.chars().count() > 200)) {
            return Err(invalid("filter.reasons", format!("at most {MAX_FILTER} reasons of at most 200 characters")));
        }
    }
    Ok(())
}

/// Registers an endpoint for `actor` (recorded in the admin trail, without
/// the secret). The answer holds the signing secret, this once.
///
/// # Errors
/// 422 naming the invalid field, 503 if the database is unavailable.
pub(crate) async fn register(state: &AppState, actor: Uuid, request: EndpointRequest) -> Result<Registered, ApiError> {
    validate(&request, state.webhooks.allow_private)?;
    let secret = request.secret.unwrap_or_else(Key::generate);
    let new = NewEndpoint {
        id: Uuid::now_v7(),
        url: request.url,
        events: request.events,
        secret: secret.clone(),
        description: request.description.unwrap_or_default(),
        filter: request.filter,
    };
    state.store.create_webhook(&new, Some(actor)).await?;
    let endpoint =
        state.store.webhook(new.id).await?.ok_or_else(|| ApiError::Internal("the new endpoint is missing".into()))?;
    Ok(Registered { endpoint, secret })
}

/// Endpoint `id`.
///
/// # Errors
/// 404 if there is none, 503 if the database is unavailable.
pub(crate) async fn endpoint(state: &AppState, id: Uuid) -> Result<Endpoint, ApiError> {
    state.store.webhook(id).await?.ok_or_else(|| ApiError::NotFound(format!("no webhook endpoint with id `{id}`")))
}

/// Deletes endpoint `id` with its undelivered events and its attempts.
///
/// # Errors
/// 404 if there is none, 503 if the database is unavailable.
pub(crate) async fn delete(state: &AppState, actor: Uuid, id: Uuid) -> Result<(), ApiError> {
    if !state.store.delete_webhook(id, Some(actor)).await? {
        return Err(ApiError::NotFound(format!("no webhook endpoint with id `{id}`")));
    }
    Ok(())
}

/// Turns endpoint `id` back on after it was disabled for repeated failures
/// (its failure count starts again from zero; waiting events resume), and
/// returns it.
///
/// # Errors
/// 404 if there is none, 503 if the database is unavailable.
pub(crate) async fn enable(state: &AppState, actor: Uuid, id: Uuid) -> Result<Endpoint, ApiError> {
    let e = endpoint(state, id).await?;
    state.store.enable_webhook(e.id, Some(actor)).await?;
    endpoint(state, id).await
}

/// Queues the message of attempt `attempt` of endpoint `id` to be sent
/// again (same `webhook-id`), as soon as the endpoint's rate allows.
///
/// # Errors
/// 404 if there is no such endpoint or attempt, 503 if the database is
/// unavailable.
pub(crate) async fn redeliver(state: &AppState, id: Uuid, attempt: i64) -> Result<(), ApiError> {
    let e = endpoint(state, id).await?;
    if !state.store.redeliver_webhook(e.id, attempt).await? {
        return Err(ApiError::NotFound(format!("no delivery attempt with that id for endpoint `{}`", e.id)));
    }
    Ok(())
}
