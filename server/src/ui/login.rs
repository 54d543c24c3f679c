//! `GET/POST /ui/login` and `POST /ui/logout`.
//!
//! Signing in takes an admin or viewer key, checked by the same
//! [`crate::auth::Authenticator`] as the API (its cache, its failed-
//! verification limits). Attempts are limited per client address; every
//! sign-in, failed sign-in and sign-out is a row in the admin trail. The
//! key itself is never stored, logged or echoed.

use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::page::{Shell, render_with};
use super::session::{self, Access, UiUser};
use super::{UiError, see_other};
use crate::auth::AuthError;
use crate::state::AppState;

/// The sign-in and sign-out routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/ui/login", get(form).post(sign_in)).route("/ui/logout", post(sign_out))
}

/// The sign-in page.
#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    shell: Shell,
    /// Why the last attempt failed.
    error: Option<String>,
    /// Where to go after signing in.
    next: String,
}

/// `?next=`.
#[derive(Debug, Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// The sign-in form.
#[derive(Deserialize)]
struct SignIn {
    /// The admin or viewer key (never logged: this type has no `Debug`).
    key: String,
    /// Where to go after.
    #[serde(default)]
    next: String,
}

/// `next` if it is a dashboard path, else the overview.
fn destination(next: Option<&str>) -> String {
    match next {
        // Printable ASCII only: a header value can hold nothing else, and
        // browsers send paths percent-encoded.
        Some(n)
            if n.starts_with("/ui/")
                && !n.contains("//")
                && !n.contains('\\')
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n.to_owned()
        }
        _ => "/ui/".to_owned(),
    }
}

/// `GET /ui/login`: the form (or, when already signed in, the overview).
async fn form(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<NextQuery>) -> Response {
    if let Some(id) = session::session_id(&state, &headers) {
        if matches!(state.store.session(&session::id_hash(&id)).await, Ok(Some(_))) {
            return see_other(&destination(q.next.as_deref()));
        }
    }
    page(StatusCode::OK, None, destination(q.next.as_deref()))
}

fn page(status: StatusCode, error: Option<String>, next: String) -> Response {
    render_with(status, &LoginPage { shell: Shell::anonymous("Sign in"), error, next })
}

/// `POST /ui/login`: a session for a valid admin or viewer key.
async fn sign_in(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    Form(f): Form<SignIn>,
) -> Response {
    let next = destination(Some(&f.next));
    let peer = extensions.get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let client = state.auth.client_address(&headers, peer);
    let verdict = state.dashboard.sign_in_attempt(client);
    if !verdict.allowed {
        return UiError::TooMany(verdict.retry_after_secs.max(1)).page(None);
    }
    let key = f.key.trim();
    let refused = |reason: &'static str, message: &str| {
        let key_id = crate::auth::parse(key).map(|(id, _)| id);
        let state = state.clone();
        let message = message.to_owned();
        let next = next.clone();
        async move {
            if let Err(e) = state.store.record_failed_sign_in(key_id, reason).await {
                return UiError::from(e).page(None);
            }
            page(StatusCode::UNAUTHORIZED, Some(message), next)
        }
    };
    let principal = match state.auth.authenticate(key, client).await {
        Ok(p) => p,
        Err(AuthError::Throttled { retry_after_secs }) => return UiError::TooMany(retry_after_secs).page(None),
        Err(AuthError::Store(e)) => return UiError::from(e).page(None),
        // The same words as a wrong key: an inactive key is found before its
        // secret is checked, so saying so would tell anyone which ids exist.
        Err(AuthError::Inactive) => {
            return refused("inactive", "That key was not accepted. Paste a whole admin or viewer key.").await;
        }
        Err(_) => return refused("unknown", "That key was not accepted. Paste a whole admin or viewer key.").await,
    };
    let role = principal.role.as_str();
    if Access::from_role(role).is_none() {
        return refused("app_key", "This is an app key. Sign in with an admin or viewer key.").await;
    }
    let session_id = session::new_session_id();
    if let Err(e) = state.store.create_session(&session::id_hash(&session_id), principal.key_id).await {
        return UiError::from(e).page(None);
    }
    let mut response = see_other(&next);
    if let Ok(v) = session::session_cookie(&state, &session_id).parse() {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// `POST /ui/logout`: ends the session here and on every instance (it
/// lives in the database), and clears the cookie.
async fn sign_out(State(state): State<AppState>, user: UiUser, headers: HeaderMap) -> Response {
    if let Some(id) = session::session_id(&state, &headers) {
        if let Err(e) = state.store.end_session(&session::id_hash(&id), Some(user.key_id)).await {
            return UiError::from(e).page(Some(&user));
        }
    }
    let mut response = see_other("/ui/login");
    if let Ok(v) = session::clear_cookie(&state).parse() {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response.into_response()
}

#[cfg(test)]
mod tests {
    use super::destination;

    #[test]
    fn only_printable_dashboard_paths_are_followed_after_sign_in() {
        assert_eq!(destination(Some("/ui/logs?status=blocked")), "/ui/logs?status=blocked");
        for bad in
            ["/ui/\r", "/ui/\nx", "/ui/é", "https://evil.example/", "//evil.example", "/ui//x", "/ui/\\x", "/ui/ x"]
        {
            assert_eq!(destination(Some(bad)), "/ui/", "{bad:?}");
        }
        assert_eq!(destination(None), "/ui/");
    }
}
