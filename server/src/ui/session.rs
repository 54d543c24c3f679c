//! Dashboard sessions: the cookie, the session guard, CSRF and the origin
//! check.
//!
//! - A session id is 256 bits from the operating system's CSPRNG, sent to
//!   the browser once in an `HttpOnly`, `SameSite=Strict` (and, unless
//!   turned off for plain HTTP, `Secure`, `__Host-`-prefixed) cookie that
//!   holds nothing else. The database keeps only its SHA-256.
//! - The CSRF token is derived from the session id (SHA-256 over a label and
//!   the id), so it needs no storage and changes with every session. Forms
//!   send it as the `csrf` field, htmx as the `x-csrf-token` header.
//! - Every request other than GET/HEAD must come from this origin (`Origin`
//!   matching `Host`, or `Sec-Fetch-Site: same-origin`) and carry the
//!   token, or it gets 403. This follows OWASP's CSRF cheat sheet
//!   ("Synchronizer token" plus "Verifying origin with standard headers").
//! - A viewer may send only the few requests that change nothing
//!   ([`READ_ONLY_POSTS`]); every other write is refused here, so no page
//!   can forget to.

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Redirect, Response};
use base64::Engine as _;
use rand::Rng as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use uuid::Uuid;

use super::UiError;
use crate::state::AppState;
use crate::store::SessionRecord;

/// The cookie's name over HTTPS: the `__Host-` prefix makes browsers refuse
/// it unless it is `Secure`, has `Path=/` and no `Domain` (RFC 6265bis §4.1.3.2).
const SECURE_COOKIE: &str = "__Host-warden_session";
/// The cookie's name when `cookie_secure` is off (plain HTTP).
const PLAIN_COOKIE: &str = "warden_session";

/// POST paths a viewer may use: they change nothing.
const READ_ONLY_POSTS: [&str; 2] = ["/ui/logout", "/ui/playground"];

/// Paths served without a session.
fn is_public(path: &str) -> bool {
    path == "/ui/login" || path.starts_with("/ui/assets/")
}

/// What a signed-in key may do in the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Everything.
    Admin,
    /// Every page, no change.
    Viewer,
}

impl Access {
    /// From a key's stored role; app keys (and anything unknown) can't
    /// sign in.
    pub(crate) fn from_role(role: &str) -> Option<Self> {
        match role {
            "admin" => Some(Self::Admin),
            "viewer" => Some(Self::Viewer),
            _ => None,
        }
    }

    /// `admin` or `viewer`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Viewer => "viewer",
        }
    }
}

/// The signed-in key, as the session guard found it. Handlers take it as
/// an extractor; it is there on every page but the sign-in page.
#[derive(Clone)]
pub(crate) struct UiUser {
    /// The key that signed in (the actor of every change made).
    pub key_id: Uuid,
    /// Its name.
    pub key_name: String,
    /// Admin or viewer.
    pub access: Access,
    /// This session's CSRF token.
    pub csrf: String,
}

/// Written by hand so the CSRF token (tied to the session) never reaches a
/// log through `{:?}`.
impl std::fmt::Debug for UiUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiUser")
            .field("key_id", &self.key_id)
            .field("key_name", &self.key_name)
            .field("access", &self.access)
            .field("csrf", &"<redacted>")
            .finish()
    }
}

impl UiUser {
    /// Whether this key may change things.
    pub(crate) fn can_write(&self) -> bool {
        self.access == Access::Admin
    }

    #[allow(dead_code, reason = "confirmation pages use it")]
    /// Refuses viewers (the guard already does for POSTs; this is for
    /// handlers that want to say so on a GET page, e.g. a confirmation).
    pub(crate) fn require_write(&self) -> Result<(), UiError> {
        if self.can_write() {
            Ok(())
        } else {
            Err(UiError::Forbidden("A viewer key can see every page but change nothing.".to_owned()))
        }
    }
}

impl FromRequestParts<AppState> for UiUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Self>().cloned().ok_or_else(|| Redirect::to("/ui/login").into_response())
    }
}

impl axum::extract::OptionalFromRequestParts<AppState> for UiUser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Self>().cloned())
    }
}

/// A new session id: 32 bytes from `ThreadRng` (a CSPRNG seeded from the
/// operating system), as unpadded base64url (43 characters).
pub(crate) fn new_session_id() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 of a session id, as stored: 64 lowercase hex digits.
pub(crate) fn id_hash(session_id: &str) -> String {
    hex(&Sha256::digest(session_id.as_bytes()))
}

/// The session's CSRF token: 64 hex digits derived from its id.
fn csrf_token(session_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"warden dashboard csrf v1\0");
    h.update(session_id.as_bytes());
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The cookie's name under `settings`.
fn cookie_name(secure: bool) -> &'static str {
    if secure { SECURE_COOKIE } else { PLAIN_COOKIE }
}

/// The `Set-Cookie` value that starts a session.
pub(crate) fn session_cookie(state: &AppState, session_id: &str) -> String {
    let settings = &state.dashboard.settings;
    let max_age =
        cookie::time::Duration::seconds(i64::try_from(settings.session_lifetime.as_secs()).unwrap_or(i64::MAX));
    cookie::Cookie::build((cookie_name(settings.cookie_secure), session_id.to_owned()))
        .path("/")
        .http_only(true)
        .secure(settings.cookie_secure)
        .same_site(cookie::SameSite::Strict)
        .max_age(max_age)
        .build()
        .to_string()
}

/// The `Set-Cookie` value that removes the session cookie.
pub(crate) fn clear_cookie(state: &AppState) -> String {
    let secure = state.dashboard.settings.cookie_secure;
    cookie::Cookie::build((cookie_name(secure), ""))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(cookie::SameSite::Strict)
        .max_age(cookie::time::Duration::ZERO)
        .build()
        .to_string()
}

/// The session id in the request's cookie, if any.
pub(crate) fn session_id(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let name = cookie_name(state.dashboard.settings.cookie_secure);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// Whether the request comes from a page of this origin: `Sec-Fetch-Site:
/// same-origin` when the browser sends it, else an `Origin` whose host and
/// port equal `Host`. Neither header: refused (every browser that runs the
/// dashboard sends at least one on a POST).
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site.eq_ignore_ascii_case("same-origin");
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return false };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else { return false };
    url::Url::parse(origin).ok().is_some_and(|u| {
        let authority = match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => return false,
        };
        matches!(u.scheme(), "http" | "https") && authority.eq_ignore_ascii_case(host)
    })
}

/// Largest form body the guard reads to find the CSRF token.
const MAX_FORM_BYTES: usize = 256 * 1024;

/// The session guard, in front of every dashboard route but the assets:
/// loads the session (or sends the browser to sign in), enforces the
/// origin check, CSRF and the viewer's read-only access, and hands the
/// handler a [`UiUser`].
pub(crate) async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    if !safe && !same_origin(req.headers()) {
        return UiError::Forbidden("This form was not sent from this site's own pages.".to_owned()).page(None);
    }
    let path = req.uri().path().to_owned();
    if is_public(&path) {
        return next.run(req).await;
    }
    let Some(session_id) = session_id(&state, req.headers()) else { return to_sign_in(&path, safe) };
    let user = match load(&state, &session_id).await {
        Ok(Some(user)) => user,
        Ok(None) => return to_sign_in(&path, safe),
        Err(e) => return e.page(None),
    };
    let req = if safe {
        req
    } else {
        let (req, token) = match csrf_from(req).await {
            Ok(found) => found,
            Err(e) => return e.page(Some(&user)),
        };
        let valid = token.is_some_and(|t| bool::from(t.as_bytes().ct_eq(user.csrf.as_bytes())));
        if !valid {
            return UiError::Forbidden(
                "This form's security token is missing or stale; reload the page and try again.".to_owned(),
            )
            .page(Some(&user));
        }
        if !user.can_write() && !READ_ONLY_POSTS.contains(&path.as_str()) {
            return UiError::Forbidden("A viewer key can see every page but change nothing.".to_owned())
                .page(Some(&user));
        }
        req
    };
    let mut req = req;
    req.extensions_mut().insert(user);
    next.run(req).await
}

/// To the sign-in page; a GET remembers where it was going (a path of
/// ours only, so the redirect can't be pointed elsewhere).
fn to_sign_in(path: &str, safe: bool) -> Response {
    if safe && path.starts_with("/ui/") && path != "/ui/" && !path.contains("//") {
        let next: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
        Redirect::to(&format!("/ui/login?next={next}")).into_response()
    } else {
        Redirect::to("/ui/login").into_response()
    }
}

/// The signed-in key for `session_id`, ending the session when it has been
/// idle or alive too long.
async fn load(state: &AppState, session_id: &str) -> Result<Option<UiUser>, UiError> {
    let hash = id_hash(session_id);
    let Some(record) = state.store.session(&hash).await? else { return Ok(None) };
    let Some(access) = Access::from_role(&record.role) else {
        state.store.end_session(&hash, None).await?;
        return Ok(None);
    };
    if expired(state, &record) {
        state.store.end_session(&hash, None).await?;
        return Ok(None);
    }
    // One write a minute at most per session, not one per page view; the
    // idle timeout is at least a minute, so it stays exact to a minute.
    if (crate::store::now() - record.last_seen_at).num_seconds() >= 60 {
        state.store.touch_session(&hash).await?;
    }
    Ok(Some(UiUser { key_id: record.key_id, key_name: record.key_name, access, csrf: csrf_token(session_id) }))
}

/// Whether `record` is past its idle timeout or its lifetime.
fn expired(state: &AppState, record: &SessionRecord) -> bool {
    let settings = &state.dashboard.settings;
    let now = crate::store::now();
    let idle = chrono::Duration::from_std(settings.session_idle_timeout).unwrap_or(chrono::Duration::MAX);
    let life = chrono::Duration::from_std(settings.session_lifetime).unwrap_or(chrono::Duration::MAX);
    now - record.last_seen_at > idle || now - record.created_at > life
}

/// The CSRF token of a write: the `x-csrf-token` header, or the `csrf`
/// field of a form body (read, then put back for the handler).
async fn csrf_from(req: Request) -> Result<(Request, Option<String>), UiError> {
    if let Some(token) = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        let token = token.to_owned();
        return Ok((req, Some(token)));
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((req, None));
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| UiError::Invalid(format!("the form is larger than {MAX_FORM_BYTES} bytes")))?;
    let token = url::form_urlencoded::parse(&bytes).find(|(k, _)| k == "csrf").map(|(_, v)| v.into_owned());
    Ok((Request::from_parts(parts, Body::from(bytes)), token))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn origin_must_match_host_or_fetch_metadata_say_same_origin() {
        assert!(same_origin(&headers(&[("origin", "http://127.0.0.1:8080"), ("host", "127.0.0.1:8080")])));
        assert!(same_origin(&headers(&[("origin", "https://warden.example"), ("host", "warden.example")])));
        assert!(!same_origin(&headers(&[("origin", "http://evil.example"), ("host", "127.0.0.1:8080")])));
        assert!(!same_origin(&headers(&[("origin", "http://127.0.0.1:8081"), ("host", "127.0.0.1:8080")])));
        assert!(!same_origin(&headers(&[("origin", "null"), ("host", "127.0.0.1:8080")])));
        assert!(!same_origin(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin"), ("host", "x")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "cross-site"), ("origin", "http://x"), ("host", "x")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "same-site"), ("host", "x")])));
    }

    #[test]
    fn session_ids_are_distinct_and_their_hash_and_token_differ_from_them() {
        let a = new_session_id();
        let b = new_session_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(id_hash(&a).len(), 64);
        assert_ne!(id_hash(&a), csrf_token(&a));
        assert!(!id_hash(&a).contains(&a) && !csrf_token(&a).contains(&a));
    }

    #[test]
    fn the_sign_in_redirect_only_remembers_our_own_paths() {
        let location = |r: Response| r.headers().get(header::LOCATION).unwrap().to_str().unwrap().to_owned();
        assert_eq!(location(to_sign_in("/ui/logs", true)), "/ui/login?next=%2Fui%2Flogs");
        assert_eq!(location(to_sign_in("/ui//evil.example", true)), "/ui/login");
        assert_eq!(location(to_sign_in("/ui/keys", false)), "/ui/login");
    }
}
