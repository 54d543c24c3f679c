//! `/ui/webhooks`: the registered endpoints (URL, events, description,
//! state and failures), registering one (its signing secret shown once,
//! through [`super::reveal`]), deleting one after a confirmation page,
//! turning a disabled one back on, and an endpoint's recent deliveries with
//! "send again". The rules are those of the admin API
//! ([`crate::admin::webhooks`]).

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use uuid::Uuid;

use super::page::{Nav, Shell, render, render_with};
use super::reveal::Secret;
use super::{UiError, UiUser, no_store, see_other};
use crate::admin::webhooks::{self, EndpointRequest, MAX_DESCRIPTION, MAX_URL};
use crate::error::ApiError;
use crate::state::AppState;
use crate::webhooks::EventType;
use crate::webhooks::endpoints::{Attempt, Endpoint};

/// Endpoints per page (a deployment has a handful).
const PAGE_SIZE: u32 = 100;
/// Delivery attempts shown on an endpoint's page.
const RECENT_ATTEMPTS: u32 = 20;

/// The webhook routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/webhooks", get(list).post(create))
        .route("/ui/webhooks/{id}", get(detail))
        .route("/ui/webhooks/{id}/new", get(reveal))
        .route("/ui/webhooks/{id}/delete", get(delete_form).post(delete))
        .route("/ui/webhooks/{id}/enable", post(enable))
        .route("/ui/webhooks/{id}/deliveries/{attempt}/redeliver", post(redeliver))
}

/// `2026-11-30 09:41:07 UTC`.
fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The endpoint list with the register form.
#[derive(Template)]
#[template(path = "webhooks.html")]
struct ListPage {
    shell: Shell,
    endpoints: Vec<Endpoint>,
    total: i64,
    /// Every event name, for the form's checkboxes.
    event_names: Vec<&'static str>,
    max_url: usize,
    max_description: usize,
    /// Why the form was refused, and what was typed.
    error: Option<String>,
    form: Typed,
}

/// The register form as typed.
#[derive(Debug, Default)]
struct Typed {
    url: String,
    events: Vec<String>,
    description: String,
}

impl Typed {
    /// Reads a form body: `url`, `description` and any number of `events`
    /// (one per ticked box; `serde_urlencoded` can't read repeated keys).
    fn parse(body: &[u8]) -> Self {
        let mut typed = Self::default();
        for (k, v) in url::form_urlencoded::parse(body) {
            match k.as_ref() {
                "url" => typed.url = v.into_owned(),
                "description" => typed.description = v.into_owned(),
                "events" => typed.events.push(v.into_owned()),
                _ => {}
            }
        }
        typed
    }

    /// Whether `name` was ticked.
    fn has(&self, name: &str) -> bool {
        self.events.iter().any(|e| e == name)
    }
}

async fn list_page(state: &AppState, user: &UiUser, refused: Option<(Typed, UiError)>) -> Result<Response, UiError> {
    let found = state.store.list_webhooks(1, PAGE_SIZE).await?;
    let (status, error, form) = match refused {
        Some((form, e)) => (e.status(), Some(e.to_string()), form),
        None => (StatusCode::OK, None, Typed::default()),
    };
    let view = ListPage {
        shell: Shell::new(user, Nav::None, "Webhooks"),
        endpoints: found.items,
        total: found.total,
        event_names: EventType::ALL.iter().map(|e| e.as_str()).collect(),
        max_url: MAX_URL,
        max_description: MAX_DESCRIPTION,
        error,
        form,
    };
    Ok(render_with(status, &view))
}

/// `GET /ui/webhooks`.
async fn list(State(state): State<AppState>, user: UiUser) -> Response {
    list_page(&state, &user, None).await.unwrap_or_else(|e| e.page(Some(&user)))
}

/// `POST /ui/webhooks`: registers the endpoint and sends the browser to
/// its one-time secret page; invalid input shows the list again with the
/// form as typed and why (422).
async fn create(State(state): State<AppState>, user: UiUser, body: Bytes) -> Response {
    let typed = Typed::parse(&body);
    let request = EndpointRequest {
        url: typed.url.trim().to_owned(),
        events: typed.events.clone(),
        secret: None,
        description: Some(typed.description.trim().to_owned()).filter(|d| !d.is_empty()),
        filter: None,
    };
    match webhooks::register(&state, user.key_id, request).await {
        Ok(registered) => {
            let id = registered.endpoint.id;
            state.dashboard.reveals.put(&user.csrf, id, Secret::Webhook(registered));
            see_other(&format!("/ui/webhooks/{id}/new"))
        }
        Err(e @ ApiError::Invalid { .. }) => {
            list_page(&state, &user, Some((typed, UiError::from(e)))).await.unwrap_or_else(|e| e.page(Some(&user)))
        }
        Err(e) => UiError::from(e).page(Some(&user)),
    }
}

/// A path's endpoint id, or a 404.
fn endpoint_id(raw: &str) -> Result<Uuid, UiError> {
    Uuid::try_parse(raw).map_err(|_| UiError::NotFound("There is no webhook endpoint with that id.".into()))
}

/// The one-time reveal of an endpoint's signing secret.
#[derive(Template)]
#[template(path = "webhooks_reveal.html")]
struct RevealPage {
    shell: Shell,
    id: Uuid,
    /// `(url, secret)`, this once; `None` when already shown.
    revealed: Option<(String, String)>,
}

/// `GET /ui/webhooks/{id}/new`: the secret left by the register form,
/// taken out as it is shown; a reload says it was shown already.
async fn reveal(State(state): State<AppState>, user: UiUser, Path(raw): Path<String>) -> Response {
    let id = match endpoint_id(&raw) {
        Ok(id) => id,
        Err(e) => return e.page(Some(&user)),
    };
    let revealed = match state.dashboard.reveals.take(&user.csrf, id) {
        Some(Secret::Webhook(r)) if r.endpoint.id == id => Some((r.endpoint.url, r.secret)),
        _ => None,
    };
    let title = if revealed.is_some() { "New webhook endpoint" } else { "Secret already shown" };
    no_store(render(&RevealPage { shell: Shell::new(&user, Nav::None, title), id, revealed }))
}

/// One endpoint and its recent deliveries.
#[derive(Template)]
#[template(path = "webhooks_detail.html")]
struct DetailPage {
    shell: Shell,
    endpoint: Endpoint,
    attempts: Vec<Attempt>,
    total_attempts: i64,
}

impl DetailPage {
    /// A time as the page shows it.
    fn when(&self, t: &chrono::DateTime<chrono::Utc>) -> String {
        when(*t)
    }
}

/// `GET /ui/webhooks/{id}`.
async fn detail(State(state): State<AppState>, user: UiUser, Path(raw): Path<String>) -> Response {
    let shown = async {
        let endpoint = webhooks::endpoint(&state, endpoint_id(&raw)?).await?;
        let attempts = state.store.webhook_attempts(endpoint.id, 1, RECENT_ATTEMPTS).await?;
        let shell = Shell::new(&user, Nav::None, "Webhook endpoint");
        Ok::<_, UiError>(render(&DetailPage {
            shell,
            endpoint,
            attempts: attempts.items,
            total_attempts: attempts.total,
        }))
    };
    shown.await.unwrap_or_else(|e| e.page(Some(&user)))
}

/// The delete confirmation page.
#[derive(Template)]
#[template(path = "webhooks_delete.html")]
struct DeletePage {
    shell: Shell,
    endpoint: Endpoint,
}

/// `GET /ui/webhooks/{id}/delete`: asks before deleting.
async fn delete_form(State(state): State<AppState>, user: UiUser, Path(raw): Path<String>) -> Response {
    let shown = async {
        user.require_write()?;
        let endpoint = webhooks::endpoint(&state, endpoint_id(&raw)?).await?;
        Ok::<_, UiError>(render(&DeletePage {
            shell: Shell::new(&user, Nav::None, "Delete webhook endpoint"),
            endpoint,
        }))
    };
    shown.await.unwrap_or_else(|e| e.page(Some(&user)))
}

/// `POST /ui/webhooks/{id}/delete`: deletes the endpoint with its waiting
/// events and its attempts, and returns to the list.
async fn delete(State(state): State<AppState>, user: UiUser, Path(raw): Path<String>) -> Response {
    let done = async { Ok::<_, UiError>(webhooks::delete(&state, user.key_id, endpoint_id(&raw)?).await?) };
    match done.await {
        Ok(()) => see_other("/ui/webhooks"),
        Err(e) => e.page(Some(&user)),
    }
}

/// `POST /ui/webhooks/{id}/enable`: turns a disabled endpoint back on.
async fn enable(State(state): State<AppState>, user: UiUser, Path(raw): Path<String>) -> Response {
    let done = async { Ok::<_, UiError>(webhooks::enable(&state, user.key_id, endpoint_id(&raw)?).await?) };
    match done.await {
        Ok(e) => see_other(&format!("/ui/webhooks/{}", e.id)),
        Err(e) => e.page(Some(&user)),
    }
}

/// `POST /ui/webhooks/{id}/deliveries/{attempt}/redeliver`: sends that
/// attempt's message again (same `webhook-id`) as soon as the endpoint's
/// rate allows.
async fn redeliver(
    State(state): State<AppState>,
    user: UiUser,
    Path((raw, attempt)): Path<(String, String)>,
) -> Response {
    let done = async {
        let id = endpoint_id(&raw)?;
        let attempt: i64 =
            attempt.parse().map_err(|_| UiError::NotFound("There is no such delivery attempt.".into()))?;
        webhooks::redeliver(&state, id, attempt).await?;
        Ok::<_, UiError>(id)
    };
    match done.await {
        Ok(id) => see_other(&format!("/ui/webhooks/{id}")),
        Err(e) => e.page(Some(&user)),
    }
}
