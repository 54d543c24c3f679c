//! The application: shared state and the router, built as functions so
//! tests can call them without a port.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit::AuditQueue;
use crate::auth::Authenticator;
use crate::http;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::rate_limit::{Quota, RateLimiter};
use crate::store::Store;

/// The request id header, propagated or generated.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Everything handlers share, behind one `Arc`: extracting it costs one
/// reference-count increment per request.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    /// Wraps the services.
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services behind [`AppState`].
#[derive(Debug)]
pub struct Services {
    /// Policy and overrides.
    pub live: Arc<Live>,
    /// The database (never on the decision path).
    pub store: Store,
    /// API key verification.
    pub auth: Arc<Authenticator>,
    /// Per-key rate limiting.
    pub limiter: Arc<RateLimiter>,
    /// The default quota, for customers without their own.
    pub default_quota: Quota,
    /// The audit queue.
    pub audit: AuditQueue,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Largest accepted body.
    pub max_body_bytes: usize,
    /// Reloads the policy files (absent when the service was built without
    /// a policy directory, as in some tests).
    pub reloader: Option<Arc<crate::reload::PolicyReloader>>,
    /// bcrypt cost for keys made through the admin API.
    pub bcrypt_cost: u32,
    /// When the process started.
    pub started: Instant,
}

/// Every documented route. The router and the OpenAPI document are both
/// built from this one list, so they can't disagree.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(http::ApiDoc::openapi())
        .routes(routes!(http::health::health))
        .routes(routes!(http::health::ready))
        .routes(routes!(http::check::check))
        .routes(routes!(http::check::evaluate))
        .routes(routes!(http::health::metrics))
        .routes(routes!(http::health::openapi_json))
        .routes(routes!(http::admin::status))
        .routes(routes!(http::admin::customers::create_customer, http::admin::customers::list_customers))
        .routes(routes!(http::admin::customers::get_customer))
        .routes(routes!(http::admin::keys::list_keys, http::admin::keys::create_key))
        .routes(routes!(http::admin::keys::rotate_key))
        .routes(routes!(http::admin::keys::delete_key))
        .routes(routes!(http::admin::policies::list_policies))
        .routes(routes!(http::admin::policies::patch_policy))
        .routes(routes!(
            http::admin::policies::get_override,
            http::admin::policies::put_override,
            http::admin::policies::delete_override
        ))
        .routes(routes!(http::admin::policies::put_settings))
        .routes(routes!(http::admin::policies::effective_policy))
        .routes(routes!(http::admin::logs::list_logs))
        .routes(routes!(http::admin::logs::stats))
        .routes(routes!(http::admin::logs::admin_audit))
}

/// The application's router.
pub fn router(state: AppState) -> Router {
    let (api_router, api) = api_routes().split_for_parts();
    let max_body = state.max_body_bytes;
    api_router
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), http::track_requests))
        .fallback(http::not_found)
        .method_not_allowed_fallback(http::method_not_allowed)
        .layer(axum::Extension(Arc::new(api)))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(TraceLayer::new_for_http().make_span_with(http::request_span))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(axum::middleware::map_request(http::vet_request_id))
        .with_state(state)
}

/// The OpenAPI document alone.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().split_for_parts().1
}
