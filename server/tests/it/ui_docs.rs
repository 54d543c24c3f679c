//! `/docs`: the API reference page and the vendored Swagger UI files it
//! loads, without a session, under the dashboard's headers; off with the
//! dashboard.

use crate::support::{Backend, TestApp};
use crate::ui_support::get;

/// The `src`/`href` URLs under `/ui/assets/` in `html`.
fn asset_urls(html: &str) -> Vec<String> {
    html.match_indices("\"/ui/assets/").map(|(at, _)| html[at + 1..].split('"').next().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn docs_loads_swagger_ui_from_this_origin_without_a_session() {
    let app = TestApp::new(Backend::Sqlite).await;
    let page = get(&app, "/docs", None).await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").starts_with("text/html"));
    let csp = page.header("content-security-policy");
    assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    assert!(!page.html.contains("<script>"), "no inline script");
    assert!(page.html.contains("/openapi.json"));

    let urls = asset_urls(&page.html);
    assert_eq!(urls.len(), 4, "{urls:?}");
    for url in &urls {
        let req = axum::http::Request::get(url.as_str())
            .header("host", "warden.test")
            .header("accept-encoding", "gzip, deflate, br")
            .body(axum::body::Body::empty())
            .unwrap();
        let file = crate::ui_support::send(&app, req).await;
        assert_eq!(file.status, 200, "{url}");
        assert_eq!(file.header("cache-control"), "public, max-age=31536000, immutable");
        let gzipped = url.contains("/swagger-ui");
        assert_eq!(file.header("content-encoding"), if gzipped { "gzip" } else { "" }, "{url}");
        if gzipped {
            assert_eq!(get(&app, url, None).await.status, 406, "{url} without Accept-Encoding");
        }
    }
}

#[tokio::test]
async fn docs_is_off_with_the_dashboard() {
    let mut options = TestApp::options();
    options.dashboard.enabled = false;
    let app = TestApp::with_options(Backend::Sqlite, options).await;
    assert_eq!(get(&app, "/docs", None).await.status, 404);
    assert_eq!(get(&app, "/openapi.json", None).await.status, 200, "the document itself stays");
}
