//! `/api/admin/webhooks`: register, list, fetch and delete endpoints; list
//! an endpoint's delivery attempts and send one again (the rules are in
//! [`crate::admin::webhooks`]). The secret is shown once, when the endpoint
//! is registered; listings never hold it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::input::{Params, PathParams, storable};
use super::{PageParams, invalid, parse_id};
use crate::admin::webhooks::{self, EndpointRequest, Registered};
use crate::error::{ApiError, ErrorBody};
use crate::http::Admin;
use crate::state::AppState;
use crate::store::Page;
use crate::webhooks::endpoints::{Attempt, Endpoint};
use crate::webhooks::{EventType, Filter};

/// Every webhook route.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_webhook, delete_webhook))
        .routes(routes!(enable_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(redeliver))
}

/// An endpoint to register.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewWebhook {
    /// `http://` or `https://` URL (at most 2048 characters); loopback and
    /// private addresses are refused unless the service runs with
    /// `webhook_allow_private`.
    #[schema(max_length = 2048)]
    url: String,
    /// Event names (`decision.blocked`, `decision.rejected`,
    /// `policy.reloaded`, `policy.reload_failed`, `key.created`,
    /// `key.rotated`, `key.deleted`, `override.changed`) or `*` for all.
    #[schema(schema_with = event_names)]
    events: Vec<String>,
    /// `whsec_` and the base64 of 24 to 64 random bytes; generated when
    /// absent. Shown in this answer only.
    secret: Option<String>,
    /// A note (at most 500 characters).
    #[schema(max_length = 500)]
    description: Option<String>,
    /// Limits decision events to some customers or reasons.
    filter: Option<Filter>,
}

/// `events`: a non-empty list of event names or `*`.
fn event_names() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let names: Vec<&str> = EventType::ALL.iter().map(|e| e.as_str()).chain(["*"]).collect();
    ArrayBuilder::new()
        .items(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(names)))
        .min_items(Some(1))
        .build()
}

/// Reads the body strictly (a key given twice, text with NUL, anything but
/// an object: 422 naming the field), allowing the list fields this body
/// has, which the shared admin reader refuses.
fn read_body(bytes: &[u8]) -> Result<NewWebhook, ApiError> {
    let value = warden_engine::json::parse(bytes).map_err(|e| match e {
        warden_engine::json::JsonError::DuplicateKey { path } => {
            invalid(&path.clone(), format!("`{path}` is given more than once; give each field once"))
        }
        other => ApiError::BadJson(other.to_string()),
    })?;
    if !value.is_object() {
        return Err(invalid("body", "the body must be a JSON object"));
    }
    fn nul(v: &serde_json::Value, path: &str) -> Option<String> {
        match v {
            serde_json::Value::String(s) if !storable(s) => Some(path.to_owned()),
            serde_json::Value::Array(items) => {
                items.iter().enumerate().find_map(|(i, item)| nul(item, &format!("{path}[{i}]")))
            }
            serde_json::Value::Object(map) => map.iter().find_map(|(k, item)| {
                let here = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                if storable(k) { nul(item, &here) } else { Some(here) }
            }),
            _ => None,
        }
    }
    if let Some(field) = nul(&value, "") {
        return Err(invalid(&field, format!("`{field}` contains a NUL character (U+0000), which can't be stored")));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let missing = message.strip_prefix("missing field `").and_then(|m| m.split('`').next());
        let field = match (path.as_str(), missing) {
            (".", Some(f)) => f.to_owned(),
            (".", None) => message.split('`').nth(1).unwrap_or("body").to_owned(),
            (p, _) => p.to_owned(),
        };
        ApiError::Invalid { field, message }
    })
}

/// Register an endpoint. The answer holds the signing secret, once.
#[utoipa::path(post, path = "/api/admin/webhooks", tag = "admin", request_body = NewWebhook,
    responses((status = 201, description = "Registered", body = Registered)))]
async fn create_webhook(
    State(state): State<AppState>,
    Admin(actor): Admin,
    bytes: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    let bytes = bytes.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(state.max_body_bytes)
        } else {
            ApiError::BadJson(r.body_text())
        }
    })?;
    let b = read_body(&bytes)?;
    let request = EndpointRequest {
        url: b.url,
        events: b.events,
        secret: b.secret,
        description: b.description,
        filter: b.filter,
    };
    Ok((StatusCode::CREATED, Json(webhooks::register(&state, actor.key_id, request).await?)))
}

/// Registered endpoints, oldest first (never their secrets).
#[utoipa::path(get, path = "/api/admin/webhooks", tag = "admin", params(PageParams),
    responses((status = 200, description = "A page of endpoints", body = Page<Endpoint>)))]
async fn list_webhooks(
    State(state): State<AppState>,
    _: Admin,
    Params(params): Params<PageParams>,
) -> Result<Json<Page<Endpoint>>, ApiError> {
    let (page, size) = params.resolve()?;
    Ok(Json(state.store.list_webhooks(page, size).await?))
}

async fn endpoint(state: &AppState, raw: &str) -> Result<Endpoint, ApiError> {
    webhooks::endpoint(state, parse_id(raw, "webhook endpoint")?).await
}

/// One endpoint: its subscription, and whether it is active or was
/// disabled after repeated failures (when, and why).
#[utoipa::path(get, path = "/api/admin/webhooks/{id}", tag = "admin",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses((status = 200, description = "The endpoint", body = Endpoint), (status = 404, description = "Unknown endpoint", body = ErrorBody)))]
async fn get_webhook(
    State(state): State<AppState>,
    _: Admin,
    PathParams(id): PathParams<String>,
) -> Result<Json<Endpoint>, ApiError> {
    Ok(Json(endpoint(&state, &id).await?))
}

/// Delete an endpoint, with its undelivered events and its attempts.
#[utoipa::path(delete, path = "/api/admin/webhooks/{id}", tag = "admin",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Unknown endpoint", body = ErrorBody)))]
async fn delete_webhook(
    State(state): State<AppState>,
    Admin(actor): Admin,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    webhooks::delete(&state, actor.key_id, parse_id(&id, "webhook endpoint")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Turn an endpoint back on after it was disabled for repeated failures
/// (its failure count starts again from zero; undelivered events resume).
#[utoipa::path(post, path = "/api/admin/webhooks/{id}/enable", tag = "admin",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses((status = 200, description = "The endpoint, active", body = Endpoint), (status = 404, description = "Unknown endpoint", body = ErrorBody)))]
async fn enable_webhook(
    State(state): State<AppState>,
    Admin(actor): Admin,
    PathParams(id): PathParams<String>,
) -> Result<Json<Endpoint>, ApiError> {
    Ok(Json(webhooks::enable(&state, actor.key_id, parse_id(&id, "webhook endpoint")?).await?))
}

/// An endpoint's delivery attempts, newest first: result, HTTP status,
/// latency, error, and the message's state now.
#[utoipa::path(get, path = "/api/admin/webhooks/{id}/deliveries", tag = "admin",
    params(("id" = Uuid, Path, description = "Endpoint id"), PageParams),
    responses((status = 200, description = "A page of attempts", body = Page<Attempt>), (status = 404, description = "Unknown endpoint", body = ErrorBody)))]
async fn list_deliveries(
    State(state): State<AppState>,
    _: Admin,
    PathParams(id): PathParams<String>,
    Params(params): Params<PageParams>,
) -> Result<Json<Page<Attempt>>, ApiError> {
    let (page, size) = params.resolve()?;
    let e = endpoint(&state, &id).await?;
    Ok(Json(state.store.webhook_attempts(e.id, page, size).await?))
}

/// Queued for sending again.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Queued {
    /// Always `queued`.
    status: &'static str,
}

/// Send the message of an attempt again (same `webhook-id`), as soon as the
/// endpoint's rate allows.
#[utoipa::path(post, path = "/api/admin/webhooks/{id}/deliveries/{delivery}/redeliver", tag = "admin",
    params(("id" = Uuid, Path, description = "Endpoint id"), ("delivery" = i64, Path, description = "Attempt id")),
    responses((status = 202, description = "Queued", body = Queued), (status = 404, description = "Unknown endpoint or attempt", body = ErrorBody)))]
async fn redeliver(
    State(state): State<AppState>,
    _: Admin,
    PathParams((id, delivery)): PathParams<(String, String)>,
) -> Result<(StatusCode, Json<Queued>), ApiError> {
    let e = endpoint(&state, &id).await?;
    let attempt: i64 = delivery
        .parse()
        .map_err(|_| ApiError::NotFound(format!("no delivery attempt with that id for endpoint `{}`", e.id)))?;
    webhooks::redeliver(&state, e.id, attempt).await?;
    Ok((StatusCode::ACCEPTED, Json(Queued { status: "queued" })))
}
