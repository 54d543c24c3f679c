//! The application as functions, so tests can call it without a port:
//! [`router`] (every route with its layers) and [`openapi`] (the document
//! describing them). Both come from the one route table in [`crate::http`].

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::http::{self, REQUEST_ID};
pub use crate::state::{AppState, Services};

/// The application's router: every route in [`crate::http`], the request
/// id, tracing, body limit and metrics layers, and JSON fallbacks.
pub fn router(state: AppState) -> Router {
    let (api_router, api) = http::routes();
    let routes = http::RouteLabels::from_openapi(&api);
    let max_body = state.max_body_bytes;
    api_router
        .merge(crate::ui::router(&state))
        .route_layer(axum::middleware::from_fn_with_state((state.clone(), routes), http::track_requests))
        .fallback(http::not_found)
        .method_not_allowed_fallback(http::method_not_allowed)
        .layer(axum::Extension(std::sync::Arc::new(api)))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(TraceLayer::new_for_http().make_span_with(http::request_span))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(axum::middleware::map_request(http::vet_request_id))
        .with_state(state)
}

/// The OpenAPI document alone.
pub fn openapi() -> utoipa::openapi::OpenApi {
    http::routes().1
}
