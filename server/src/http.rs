//! HTTP handlers, one module per resource, plus the shared pieces: the
//! OpenAPI document, the caller extractor, fallbacks and request metrics.

pub mod admin;
pub mod check;
pub mod health;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::app::{AppState, REQUEST_ID};
use crate::auth::{AuthError, Principal};
use crate::error::ApiError;

/// The OpenAPI document's fixed parts.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Warden", description = "Decides whether an AI operation is allowed, with a risk score and a reason."),
    modifiers(&Security),
    tags((name = "decisions", description = "Ask for a decision"), (name = "operations", description = "Health, readiness, metrics"))
)]
#[derive(Debug)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("wdn_<key id>_<secret>").build(),
            ),
        );
        components
            .add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))));
    }
}

/// The caller, authenticated by API key (`Authorization: Bearer …` or
/// `x-api-key: …`). Any role.
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let token = match (header("authorization"), header("x-api-key")) {
            (Some(auth), _) => {
                let (scheme, token) = auth.split_once(' ').ok_or(ApiError::Unauthorized(AuthError::Malformed))?;
                if !scheme.eq_ignore_ascii_case("bearer") {
                    return Err(ApiError::Unauthorized(AuthError::Malformed));
                }
                token.trim()
            }
            (None, Some(key)) => key.trim(),
            (None, None) => return Err(ApiError::Unauthorized(AuthError::Missing)),
        };
        state.auth.authenticate(token).await.map(Caller).map_err(ApiError::Unauthorized)
    }
}

/// Drops a client's `x-request-id` unless it looks like an id (1–128 of
/// `A-Z a-z 0-9 . _ -`), so the request-id layer generates one instead: the
/// id is logged and stored, and must not carry arbitrary text.
pub async fn vet_request_id(mut req: Request) -> Request {
    let ok = req.headers().get(REQUEST_ID).is_none_or(|v| {
        let b = v.as_bytes();
        !b.is_empty()
            && b.len() <= 128
            && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
    });
    if !ok {
        req.headers_mut().remove(REQUEST_ID);
    }
    req
}

/// The request's id, as set or propagated by the request-id layer.
pub fn request_id(headers: &axum::http::HeaderMap) -> String {
    headers.get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// The route template a request matched, as a `'static` label. Routes are a
/// fixed set, so metrics can't grow with client-chosen paths.
fn route_label(req: &Request) -> &'static str {
    let matched = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    ROUTES.iter().copied().find(|r| Some(*r) == matched).unwrap_or("unmatched")
}

/// Every route the router serves.
pub const ROUTES: [&str; 20] = [
    "/health",
    "/ready",
    "/v1/check",
    "/api/evaluate",
    "/metrics",
    "/openapi.json",
    "/api/admin/status",
    "/api/admin/customers",
    "/api/admin/customers/{id}",
    "/api/admin/keys",
    "/api/admin/keys/{id}",
    "/api/admin/keys/{id}/rotate",
    "/api/admin/policies",
    "/api/admin/policies/{key}",
    "/api/admin/customers/{id}/policies/{key}",
    "/api/admin/customers/{id}/settings",
    "/api/admin/customers/{id}/effective-policy",
    "/api/admin/logs",
    "/api/admin/stats",
    "/api/admin/audit",
];

/// A tracing span per request: method, route and request id, never headers
/// or bodies (they may carry keys or content). Field values are only
/// computed when the span is enabled.
pub fn request_span(req: &Request) -> tracing::Span {
    tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = %req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default(),
    )
}

/// Counts responses by route and status.
pub async fn track_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = route_label(&req);
    let response = next.run(req).await;
    state.metrics.http_response(route, response.status().as_u16());
    response
}

/// 404 for unknown paths, as JSON.
pub async fn not_found(State(state): State<AppState>, req: Request) -> Response {
    state.metrics.http_response("unmatched", 404);
    ApiError::NotFound(format!("no endpoint at `{}`; see /openapi.json", req.uri().path())).into_response()
}

/// 405 for known paths with the wrong method, as JSON.
pub async fn method_not_allowed(State(state): State<AppState>) -> Response {
    state.metrics.http_response("unmatched", 405);
    ApiError::MethodNotAllowed.into_response()
}

/// The caller, who must hold an admin key; an app key gets 403.
#[derive(Debug, Clone, Copy)]
pub struct Admin(pub Principal);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        if principal.role != crate::store::Role::Admin {
            return Err(ApiError::Forbidden);
        }
        Ok(Admin(principal))
    }
}
