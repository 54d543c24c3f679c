//! The HTTP layer. Each resource module has its own router; [`routes`]
//! merges them into the one route table that the router, the OpenAPI
//! document and the metrics' route labels are all derived from. The shared
//! pieces live here too: the caller extractors, fallbacks, the request span
//! and request metrics.

pub(crate) mod admin;
pub(crate) mod check;
pub(crate) mod health;
mod openapi;

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AuthError, Principal};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::Role;

/// The request id header, propagated or generated.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Every route, merged from the resource modules, and the OpenAPI document
/// describing exactly those routes.
pub(crate) fn routes() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut api) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(operations())
        .merge(check::router())
        .merge(admin::router())
        .split_for_parts();
    openapi::document_common_responses(&mut api);
    (router, api)
}

/// `/health`, `/ready`, `/metrics` and `/openapi.json` (handlers in
/// [`health`]).
fn operations() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(health::metrics))
        .routes(routes!(health::openapi_json))
}

/// The route templates, as metric labels: read from the OpenAPI document
/// when the router is built, so they are exactly the routes served. A
/// request's label is its matched template, or `unmatched`, so metrics and
/// logs can't grow with client-chosen paths.
#[derive(Debug, Clone)]
pub(crate) struct RouteLabels(Arc<HashSet<Arc<str>>>);

impl RouteLabels {
    /// Every path in `api`.
    pub(crate) fn from_openapi(api: &utoipa::openapi::OpenApi) -> Self {
        Self(Arc::new(api.paths.paths.keys().map(|p| Arc::from(p.as_str())).collect()))
    }

    /// The template `req` matched, if it is one of ours: an API route, or a
    /// dashboard route (also a fixed template, never the path as sent).
    fn label(&self, req: &Request) -> Option<Arc<str>> {
        let matched = req.extensions().get::<MatchedPath>()?;
        self.0.get(matched.as_str()).cloned().or_else(|| {
            let path = matched.as_str();
            (path == "/" || path == "/ui" || path.starts_with("/ui/") || path == "/docs").then(|| Arc::from(path))
        })
    }
}

/// The key a request carries (`Authorization: Bearer …` or `x-api-key: …`),
/// verified. Any role: the extractors below decide what each role may do.
async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
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
    let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let client = state.auth.client_address(&parts.headers, peer);
    state.auth.authenticate(token, client).await.map_err(ApiError::Unauthorized)
}

/// The caller of a decision endpoint (`/v1/check`, `/api/evaluate`),
/// authenticated by API key: an app or admin key. A viewer key gets 403: it
/// is a person's read-only admin credential, not an application's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let principal = authenticate(parts, state).await?;
        if !principal.role.can_decide() {
            return Err(ApiError::ForbiddenRole(
                "a viewer key can't ask for decisions; use an app key (viewer keys are for reading the admin API and the dashboard)",
            ));
        }
        Ok(Caller(principal))
    }
}

/// The caller of the admin API: an admin key, or a viewer key on a read
/// (`GET` or `HEAD`). An app key gets 403, and so does a viewer key on any
/// other method. Decided here, by method, once for every admin route, so
/// no handler can forget it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admin(pub Principal);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let principal = authenticate(parts, state).await?;
        let read = matches!(parts.method, Method::GET | Method::HEAD);
        match principal.role {
            Role::Admin => Ok(Admin(principal)),
            Role::Viewer if read => Ok(Admin(principal)),
            Role::Viewer => Err(ApiError::ForbiddenRole("a viewer key can only read; this change needs an admin key")),
            Role::App => Err(ApiError::Forbidden),
        }
    }
}

/// Drops a client's `x-request-id` unless it looks like an id (1–128 of
/// `A-Z a-z 0-9 . _ -`), so the request-id layer generates one instead: the
/// id is logged and stored, and must not carry arbitrary text.
pub(crate) async fn vet_request_id(mut req: Request) -> Request {
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
pub(crate) fn request_id(headers: &axum::http::HeaderMap) -> String {
    headers.get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// A tracing span per request: method, route template and request id. Never
/// the path or query as sent (a key pasted into a URL would land in the
/// log), headers or bodies. The route is recorded once routing has matched
/// it (or `unmatched`, by the fallbacks); field values are only computed
/// when the span is enabled.
pub(crate) fn request_span(req: &Request) -> tracing::Span {
    tracing::info_span!(
        "request",
        method = %req.method(),
        route = tracing::field::Empty,
        request_id = %req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default(),
    )
}

/// Records the matched route on the request span and counts responses by
/// route and status.
pub(crate) async fn track_requests(
    State((state, routes)): State<(AppState, RouteLabels)>,
    req: Request,
    next: Next,
) -> Response {
    let route = routes.label(&req);
    tracing::Span::current().record("route", route.as_deref().unwrap_or("unmatched"));
    let response = next.run(req).await;
    let status = response.status().as_u16();
    match route {
        Some(route) => state.metrics.http_response(route, status),
        None => state.metrics.http_unmatched(status),
    }
    response
}

/// 404 for unknown paths, as JSON. The path is not repeated: it may hold
/// anything the client typed, a key included.
pub(crate) async fn not_found(State(state): State<AppState>) -> Response {
    tracing::Span::current().record("route", "unmatched");
    state.metrics.http_unmatched(404);
    ApiError::NotFound("no endpoint at this path; see /openapi.json".to_owned()).into_response()
}

/// 405 for known paths with the wrong method, as JSON.
pub(crate) async fn method_not_allowed(State(state): State<AppState>) -> Response {
    tracing::Span::current().record("route", "unmatched");
    state.metrics.http_unmatched(405);
    ApiError::MethodNotAllowed.into_response()
}
