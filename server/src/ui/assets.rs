//! The dashboard's static files, compiled into the binary and served under
//! content-hashed URLs (`/ui/assets/<stem>.<hash>.<ext>`, the first 16 hex
//! digits of the file's SHA-256), so browsers may keep them for a year:
//! a changed file gets a new URL. Nothing is fetched from another origin.
//! Third-party files are listed with their version, licence and hash in
//! `server/assets/VENDORED.md`.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use sha2::{Digest as _, Sha256};

use crate::state::AppState;

/// One file.
#[derive(Debug)]
struct Asset {
    /// Its name, as templates ask for it (`app.css`).
    name: &'static str,
    /// Its media type.
    content_type: &'static str,
    /// Its bytes.
    bytes: &'static [u8],
}

/// Every file.
static ASSETS: &[Asset] = &[
    Asset { name: "app.css", content_type: "text/css; charset=utf-8", bytes: include_bytes!("../../assets/app.css") },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/app.js"),
    },
];

/// Each file with its hashed file name, computed once.
static HASHED: LazyLock<Vec<(String, String, &'static Asset)>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let digest = Sha256::digest(a.bytes);
            let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
            let (stem, ext) = a.name.rsplit_once('.').unwrap_or((a.name, ""));
            let file = format!("{stem}.{hash}.{ext}");
            let url = format!("/ui/assets/{file}");
            (file, url, a)
        })
        .collect()
});

/// The URL of the asset `name`, if there is one.
pub(crate) fn url(name: &str) -> Option<&'static str> {
    HASHED.iter().find(|(_, _, a)| a.name == name).map(|(_, url, _)| url.as_str())
}

/// `GET /ui/assets/{file}`.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/ui/assets/{file}", get(serve))
}

async fn serve(Path(file): Path<String>) -> Response {
    let Some((_, _, asset)) = HASHED.iter().find(|(f, _, _)| *f == file) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let mut response = asset.bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn every_asset_has_a_distinct_hashed_url() {
        let urls: std::collections::HashSet<_> = ASSETS.iter().map(|a| url(a.name).unwrap()).collect();
        assert_eq!(urls.len(), ASSETS.len());
        assert!(url("app.css").unwrap().starts_with("/ui/assets/app.") && url("app.css").unwrap().ends_with(".css"));
        assert_eq!(url("nope.js"), None);
    }
}
