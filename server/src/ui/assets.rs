//! The dashboard's static files, compiled into the binary and served under
//! content-hashed URLs (`/ui/assets/<stem>.<hash>.<ext>`, the first 16 hex
//! digits of the file's SHA-256), so browsers may keep them for a year:
//! a changed file gets a new URL. Nothing is fetched from another origin.
//! Third-party files are listed with their version, licence and hash in
//! `server/assets/VENDORED.md`; a test checks the hashes.
//!
//! The largest files (Swagger UI, for `/docs`) are stored gzip-compressed
//! to keep the binary small, and sent as stored with `Content-Encoding:
//! gzip`; a client whose `Accept-Encoding` refuses gzip gets 406 (the
//! server carries no decompressor, and only browsers use these files).

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use sha2::{Digest as _, Sha256};

use crate::state::AppState;

/// How a file's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    /// As served.
    Plain,
    /// gzip-compressed (`gzip -9n`), served with `Content-Encoding: gzip`.
    Gzip,
}

/// One file.
#[derive(Debug)]
struct Asset {
    /// Its name, as templates ask for it (`app.css`).
    name: &'static str,
    /// Its media type.
    content_type: &'static str,
    /// Its bytes, as stored.
    bytes: &'static [u8],
    /// How they are stored.
    stored: Stored,
}

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// An [`Asset`] from a file under `server/assets/`.
macro_rules! asset {
    ($name:literal, $type:expr, $file:literal, $stored:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!("../../assets/", $file)),
            stored: $stored,
        }
    };
}

/// Every file.
static ASSETS: &[Asset] = &[
    asset!("app.css", CSS, "app.css", Stored::Plain),
    asset!("app.js", JS, "app.js", Stored::Plain),
    asset!("htmx.min.js", JS, "vendor/htmx.min.js", Stored::Plain),
    asset!("swagger-ui.css", CSS, "vendor/swagger-ui.css.gz", Stored::Gzip),
    asset!("swagger-ui-bundle.js", JS, "vendor/swagger-ui-bundle.js.gz", Stored::Gzip),
    asset!("docs.js", JS, "docs.js", Stored::Plain),
    asset!("favicon.svg", "image/svg+xml", "favicon.svg", Stored::Plain),
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

async fn serve(Path(file): Path<String>, request: HeaderMap) -> Response {
    let Some((_, _, asset)) = HASHED.iter().find(|(f, _, _)| *f == file) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    if asset.stored == Stored::Gzip && !accepts_gzip(&request) {
        let mut response =
            (StatusCode::NOT_ACCEPTABLE, "this file is only sent gzip-compressed (Accept-Encoding: gzip)")
                .into_response();
        response.headers_mut().insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        return response;
    }
    let mut response = asset.bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    if asset.stored == Stored::Gzip {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

/// Whether `Accept-Encoding` accepts gzip (RFC 9110 §12.5.3): `gzip` (or
/// `x-gzip`) with a non-zero weight, or else `*` with one. No header at
/// all counts as no: a client that says nothing may not decode it.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut star = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            let weight = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                return weight > 0.0;
            }
            if coding == "*" {
                star = Some(weight > 0.0);
            }
        }
    }
    star.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use std::collections::BTreeMap;

    use axum::body::to_bytes;

    use super::*;

    #[test]
    fn every_asset_has_a_distinct_hashed_url() {
        let urls: std::collections::HashSet<_> = ASSETS.iter().map(|a| url(a.name).unwrap()).collect();
        assert_eq!(urls.len(), ASSETS.len());
        assert!(url("app.css").unwrap().starts_with("/ui/assets/app.") && url("app.css").unwrap().ends_with(".css"));
        assert_eq!(url("nope.js"), None);
    }

    /// `file` → SHA-256 (stored file), from the table in VENDORED.md.
    fn recorded_hashes() -> BTreeMap<String, String> {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/VENDORED.md")).unwrap();
        text.lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(|c| c.trim().trim_matches('`')).collect();
                // | stored file | package | version | licence | upstream | sha upstream | sha stored |
                let is_row = cells.len() == 9 && cells[7].len() == 64 && cells[1].starts_with("vendor/");
                is_row.then(|| (cells[1].to_owned(), cells[7].to_owned()))
            })
            .collect()
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn vendored_files_match_their_recorded_hashes() {
        let recorded = recorded_hashes();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/vendor");
        let mut on_disk = BTreeMap::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                let name = format!("vendor/{}", entry.file_name().to_str().unwrap());
                on_disk.insert(name, sha256_hex(&std::fs::read(entry.path()).unwrap()));
            }
        }
        assert!(on_disk.len() >= 3, "the vendored files are there: {on_disk:?}");
        assert_eq!(on_disk, recorded, "server/assets/vendor/ against the hashes in server/assets/VENDORED.md");
    }

    #[test]
    fn the_served_vendored_files_are_the_recorded_ones() {
        let recorded: std::collections::BTreeSet<String> = recorded_hashes().into_values().collect();
        for name in ["htmx.min.js", "swagger-ui.css", "swagger-ui-bundle.js"] {
            let asset = ASSETS.iter().find(|a| a.name == name).unwrap();
            assert!(recorded.contains(&sha256_hex(asset.bytes)), "{name} is compiled in as recorded in VENDORED.md");
        }
    }

    fn accept(value: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(v) = value {
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn accept_encoding_is_read_with_its_weights() {
        for yes in ["gzip", "gzip, deflate, br, zstd", "br;q=1.0, GZIP;q=0.5", "*", "identity, *;q=0.1", "x-gzip"] {
            assert!(accepts_gzip(&accept(Some(yes))), "{yes}");
        }
        for no in ["identity", "br, deflate", "gzip;q=0", "gzip; q=0.0, *", "*;q=0", ""] {
            assert!(!accepts_gzip(&accept(Some(no))), "{no}");
        }
        assert!(!accepts_gzip(&accept(None)));
    }

    #[tokio::test]
    async fn a_gzip_stored_file_is_sent_encoded_or_refused() {
        let (file, _, asset) = HASHED.iter().find(|(_, _, a)| a.name == "swagger-ui.css").unwrap();

        let response = serve(Path(file.clone()), accept(Some("gzip, deflate, br"))).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(response.headers()[header::VARY], "accept-encoding");
        assert_eq!(response.headers()[header::CONTENT_TYPE], CSS);
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        assert_eq!(&body[..], asset.bytes);
        assert_eq!(&body[..2], [0x1f, 0x8b], "gzip magic");

        let refused = serve(Path(file.clone()), accept(Some("identity"))).await;
        assert_eq!(refused.status(), StatusCode::NOT_ACCEPTABLE);
        assert!(refused.headers().get(header::CONTENT_ENCODING).is_none());

        let plain = url("htmx.min.js").unwrap().rsplit('/').next().unwrap().to_owned();
        let response = serve(Path(plain), accept(None)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().get(header::CONTENT_ENCODING).is_none());
    }
}
