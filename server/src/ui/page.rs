//! The layout every page shares ([`Shell`]), rendering, and error pages
//! ([`UiError`]): empty states, refusals, 404s and outages render in the
//! layout, never as a bare JSON body or a stack trace.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use uuid::Uuid;

use super::UiUser;
use crate::error::ApiError;
use crate::store::StoreError;

/// The navigation entries; the current page's is marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    /// `/ui/`.
    Overview,
    /// `/ui/keys`.
    Keys,
    /// `/ui/customers`.
    Customers,
    /// `/ui/rules`.
    Rules,
    /// `/ui/logs`.
    Logs,
    /// `/ui/playground`.
    Playground,
    /// `/ui/audit`.
    Audit,
    /// `/ui/status`.
    Status,
    /// No entry (sign-in and error pages).
    None,
}

/// One navigation link.
#[derive(Debug)]
pub(crate) struct NavLink {
    /// Its text.
    pub label: &'static str,
    /// Its URL.
    pub href: &'static str,
    /// Whether it is the current page.
    pub current: bool,
}

/// What the layout needs: the page title, the current navigation entry,
/// who is signed in and their CSRF token. Every page's template struct
/// holds one in a field named `shell`.
pub(crate) struct Shell {
    /// The page's title (also the `<h1>` unless the page writes its own).
    pub title: String,
    /// The current navigation entry.
    pub nav: Nav,
    /// The signed-in key's name, when someone is signed in.
    pub user_name: Option<String>,
    /// The signed-in key's id.
    pub user_key_id: Option<Uuid>,
    /// Whether the signed-in key may change things (admin, not viewer).
    pub can_write: bool,
    /// The role's name as shown: `admin` or `viewer`.
    pub role: &'static str,
    /// The session's CSRF token, for forms and htmx requests.
    pub csrf: String,
}

/// Written by hand so the CSRF token never reaches a log through `{:?}`.
impl std::fmt::Debug for Shell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell")
            .field("title", &self.title)
            .field("nav", &self.nav)
            .field("user_name", &self.user_name)
            .field("can_write", &self.can_write)
            .field("csrf", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Shell {
    /// The layout for a signed-in page.
    pub(crate) fn new(user: &UiUser, nav: Nav, title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            nav,
            user_name: Some(user.key_name.clone()),
            user_key_id: Some(user.key_id),
            can_write: user.can_write(),
            role: user.access.as_str(),
            csrf: user.csrf.clone(),
        }
    }

    /// The layout for a page seen without a session (sign-in, errors).
    pub(crate) fn anonymous(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            nav: Nav::None,
            user_name: None,
            user_key_id: None,
            can_write: false,
            role: "",
            csrf: String::new(),
        }
    }

    /// The navigation links, the current one marked.
    pub(crate) fn links(&self) -> Vec<NavLink> {
        [
            ("Overview", "/ui/", Nav::Overview),
            ("Keys", "/ui/keys", Nav::Keys),
            ("Customers", "/ui/customers", Nav::Customers),
            ("Rules", "/ui/rules", Nav::Rules),
            ("Logs", "/ui/logs", Nav::Logs),
            ("Playground", "/ui/playground", Nav::Playground),
            ("Audit", "/ui/audit", Nav::Audit),
            ("Status", "/ui/status", Nav::Status),
        ]
        .into_iter()
        .map(|(label, href, nav)| NavLink { label, href, current: nav == self.nav })
        .collect()
    }

    /// The content-hashed URL of the asset `name` (e.g. `app.css`), or an
    /// empty string for an unknown name.
    pub(crate) fn asset(&self, name: &str) -> &'static str {
        super::assets::url(name).unwrap_or_default()
    }

    /// The URL of the script `name`, when it is compiled in.
    pub(crate) fn script(&self, name: &str) -> Option<&'static str> {
        super::assets::url(name)
    }
}

/// A list page's URL: `path?` then each non-empty filter and `page=N`,
/// form-encoded. The pairs start right after the `?` (`for_suffix`), with
/// no `&` before the first.
pub(crate) fn paged_url(path: &str, filters: &[(&str, &str)], page: u32) -> String {
    let base = format!("{path}?");
    let start = base.len();
    let mut url = url::form_urlencoded::Serializer::for_suffix(base, start);
    for (name, value) in filters.iter().filter(|(_, v)| !v.is_empty()) {
        url.append_pair(name, value);
    }
    url.append_pair("page", &page.to_string());
    url.finish()
}

/// Renders `page` as an HTML response with `status`.
pub(crate) fn render_with(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a dashboard template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, Html(FALLBACK_ERROR)).into_response()
        }
    }
}

/// Renders `page` as a 200 HTML response.
pub(crate) fn render(page: &impl Template) -> Response {
    render_with(StatusCode::OK, page)
}

/// Shown only if the error page itself can't render.
const FALLBACK_ERROR: &str = "<!doctype html><title>Error</title><p>Something went wrong; the error was logged.</p>";

/// Why a page could not be shown. Each renders as a page in the layout
/// with its status; internal details are logged, never shown.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UiError {
    /// 404: the message says what was not found.
    #[error("{0}")]
    NotFound(String),
    /// 403: the key may not do this (a viewer writing, a failed CSRF or
    /// origin check); the message says which.
    #[error("{0}")]
    Forbidden(String),
    /// 422: the input was wrong; the message says what and where.
    #[error("{0}")]
    Invalid(String),
    /// 409: it conflicts with what exists (e.g. a duplicate email).
    #[error("{0}")]
    Conflict(String),
    /// 429: too many attempts; retry after this many seconds.
    #[error("too many attempts; try again in {0} s")]
    TooMany(u64),
    /// 503: the database could not be reached.
    #[error("the database is not reachable right now")]
    Unavailable,
    /// 500: logged; the page says only that something went wrong.
    #[error("internal error")]
    Internal(String),
}

impl From<StoreError> for UiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            e if e.is_transient() => {
                tracing::warn!(error = %e, "dashboard: database unavailable");
                Self::Unavailable
            }
            e => Self::Internal(e.to_string()),
        }
    }
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::NotFound(m) => Self::NotFound(m),
            ApiError::Forbidden => Self::Forbidden("This key may not do that.".to_owned()),
            ApiError::ForbiddenRole(m) => Self::Forbidden(m.to_owned()),
            ApiError::Invalid { message, .. } => Self::Invalid(message),
            ApiError::Conflict(m) => Self::Conflict(m),
            ApiError::Unavailable(_) => Self::Unavailable,
            ApiError::BadJson(m) => Self::Invalid(format!("not valid JSON: {m}")),
            ApiError::Rejected(r, _) => Self::Invalid(r.message()),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// An error page in the layout.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    shell: Shell,
    status: u16,
    message: String,
}

impl UiError {
    /// The HTTP status.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error as a page, with the navigation when `user` is signed in.
    pub(crate) fn page(self, user: Option<&UiUser>) -> Response {
        let status = self.status();
        let title = status.canonical_reason().unwrap_or("Error").to_owned();
        let message = match &self {
            Self::Internal(detail) => {
                tracing::error!(error = %detail, "dashboard: internal error");
                "Something went wrong on our side; the error was logged.".to_owned()
            }
            Self::Unavailable => {
                "The database is not reachable right now, so this page can't be shown. Decisions are still served; \
                 try again shortly."
                    .to_owned()
            }
            other => other.to_string(),
        };
        let shell = match user {
            Some(user) => Shell::new(user, Nav::None, title),
            None => Shell::anonymous(title),
        };
        let mut response = render_with(status, &ErrorPage { shell, status: status.as_u16(), message });
        if let Self::TooMany(secs) = self {
            if let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        response
    }
}

impl IntoResponse for UiError {
    /// Without the signed-in user: handlers that have one should prefer
    /// [`UiError::page`], so the navigation shows.
    fn into_response(self) -> Response {
        self.page(None)
    }
}
