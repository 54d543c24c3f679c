//! Dashboard test support: a browser-like client that signs in, keeps the
//! session cookie, and sends forms with the CSRF token and this origin.

use axum::body::Body;
use axum::http::{HeaderMap, Request, Response};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use crate::support::TestApp;

/// The origin the test client claims (with `Host: warden.test`).
pub const ORIGIN: &str = "http://warden.test";

/// A response as a browser sees it.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub html: String,
}

impl Page {
    /// The `Location` header of a redirect.
    pub fn location(&self) -> &str {
        self.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// A header's value, or "".
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// The CSRF token in the page's forms.
    pub fn csrf(&self) -> Option<String> {
        let at = self.html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
        Some(self.html[at..].split('"').next()?.to_owned())
    }
}

/// URL-encodes form fields.
pub fn form(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish()
}

/// Sends `req` through `app`'s router.
pub async fn send(app: &TestApp, req: Request<Body>) -> Page {
    let response: Response<Body> = app.router.clone().oneshot(req).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Page { status, headers, html: String::from_utf8_lossy(&bytes).into_owned() }
}

/// A GET with an optional cookie.
pub async fn get(app: &TestApp, path: &str, cookie: Option<&str>) -> Page {
    let mut req = Request::get(path).header("host", "warden.test");
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    send(app, req.body(Body::empty()).unwrap()).await
}

/// A form POST from this origin, with an optional cookie.
pub async fn post(app: &TestApp, path: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> Page {
    let mut req = Request::post(path)
        .header("host", "warden.test")
        .header("origin", ORIGIN)
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    send(app, req.body(Body::from(form(fields))).unwrap()).await
}

/// A signed-in dashboard client.
#[derive(Debug, Clone)]
pub struct Session {
    /// `name=value` of the session cookie.
    pub cookie: String,
    /// The session's CSRF token.
    pub csrf: String,
}

/// Signs in with `key`; panics unless it works.
pub async fn sign_in(app: &TestApp, key: &str) -> Session {
    let page = post(app, "/ui/login", None, &[("key", key)]).await;
    assert_eq!(page.status, 303, "sign-in failed: {}", page.html);
    let set = page.header("set-cookie");
    let cookie = set.split(';').next().unwrap().to_owned();
    let home = get(app, "/ui/", Some(&cookie)).await;
    assert_eq!(home.status, 200, "{}", home.html);
    let csrf = home.csrf().expect("every signed-in page has the CSRF token in its sign-out form");
    Session { cookie, csrf }
}

impl Session {
    /// A GET with this session.
    pub async fn get(&self, app: &TestApp, path: &str) -> Page {
        get(app, path, Some(&self.cookie)).await
    }

    /// A form POST with this session and its CSRF token.
    pub async fn post(&self, app: &TestApp, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        post(app, path, Some(&self.cookie), &all).await
    }
}
