//! `GET /docs`: an interactive reference of `/openapi.json` (Swagger UI,
//! vendored: `server/assets/VENDORED.md`), started by
//! `server/assets/docs.js`. Served with the dashboard (off with
//! `--no-dashboard`), but without a session: like `/openapi.json`, it
//! shows only what the document says, and its "Try it out" calls the API
//! with whatever key the reader types in.

use askama::Template;
use axum::Router;
use axum::response::Response;
use axum::routing::get;

use super::{assets, render};
use crate::state::AppState;

/// The page: Swagger UI's stylesheet and script, and our initializer.
#[derive(Template)]
#[template(path = "docs.html")]
struct DocsPage {
    /// URL of `swagger-ui.css`.
    css: &'static str,
    /// URL of `swagger-ui-bundle.js`.
    bundle: &'static str,
    /// URL of `docs.js`.
    init: &'static str,
    /// URL of the icon.
    icon: &'static str,
}

/// `GET /docs`.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/docs", get(docs))
}

async fn docs() -> Response {
    render(&DocsPage {
        css: assets::url("swagger-ui.css").unwrap_or_default(),
        bundle: assets::url("swagger-ui-bundle.js").unwrap_or_default(),
        init: assets::url("docs.js").unwrap_or_default(),
        icon: assets::url("favicon.svg").unwrap_or_default(),
    })
}
