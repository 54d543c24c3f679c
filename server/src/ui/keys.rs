//! `/ui/keys`: every key (name, id, customer, role, created, last used,
//! requests, active), filtered by customer; create, rotate (with an
//! optional grace period) and delete after a confirmation page. A new
//! secret is shown once, through [`super::reveal`]; the rules are those of
//! the admin API ([`crate::admin::keys`]).

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::page::{Nav, Shell, render, render_with};
use super::reveal::Secret;
use super::{UiError, UiUser, no_store, see_other};
use crate::admin::keys::{self, IssuedKey, KeyRequest, MAX_GRACE_SECONDS};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{Customer, KeySummary, Role};

/// Keys per page.
const PAGE_SIZE: u32 = 50;
/// Most customers offered in the create form's list; with more, the form
/// takes a customer id.
const MAX_CUSTOMER_CHOICES: u32 = 500;

/// The key routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/keys", get(list).post(create))
        .route("/ui/keys/{id}/new", get(reveal))
        .route("/ui/keys/{id}/rotate", get(rotate_form).post(rotate))
        .route("/ui/keys/{id}/delete", get(delete_form).post(delete))
}

/// A key as the table shows it.
struct Row {
    id: Uuid,
    name: String,
    customer_id: Uuid,
    customer_email: String,
    role: String,
    created: String,
    last_used: String,
    requests: i64,
    active: bool,
}

/// `2026-11-30 09:41 UTC`.
fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

impl From<KeySummary> for Row {
    fn from(k: KeySummary) -> Self {
        Self {
            id: k.id,
            name: k.name,
            customer_id: k.customer_id,
            customer_email: k.customer_email,
            role: k.role,
            created: when(k.created_at),
            last_used: k.last_used_at.map_or_else(|| "never".to_owned(), when),
            requests: k.request_count,
            active: k.active,
        }
    }
}

/// The key list with the create form.
#[derive(Template)]
#[template(path = "keys.html")]
struct ListPage {
    shell: Shell,
    keys: Vec<Row>,
    total: i64,
    /// The customer filter, as chosen ("" for all).
    customer: String,
    /// The customers to choose from; empty when there are too many to list.
    customers: Vec<Customer>,
    prev: Option<String>,
    next: Option<String>,
    /// Why the create form was refused, and what was typed.
    error: Option<String>,
    form: NewKeyForm,
}

/// `?customer_id=&page=`.
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    customer_id: String,
    #[serde(default)]
    page: Option<String>,
}

/// The create form (the session's `csrf` field is checked by the guard).
#[derive(Debug, Default, Deserialize)]
struct NewKeyForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    customer_id: String,
    #[serde(default)]
    role: String,
}

/// The list page's URL for `customer` and `page`.
fn list_url(customer: &str, page: u32) -> String {
    super::page::paged_url("/ui/keys", &[("customer_id", customer)], page)
}

/// The list page; `refused` is the create form as typed, with why it failed.
async fn list_page(
    state: &AppState,
    user: &UiUser,
    query: ListQuery,
    refused: Option<(NewKeyForm, UiError)>,
) -> Result<Response, UiError> {
    let page = query.page.as_deref().and_then(|p| p.parse::<u32>().ok()).filter(|p| *p > 0).unwrap_or(1);
    let customer = query.customer_id.trim().to_owned();
    let filter = if customer.is_empty() {
        None
    } else {
        Some(
            Uuid::try_parse(&customer)
                .map_err(|_| UiError::Invalid("the customer filter is not a customer id".into()))?,
        )
    };
    let found = state.store.list_keys(filter, page, PAGE_SIZE).await?;
    let choices = state.store.list_customers(None, 1, MAX_CUSTOMER_CHOICES).await?;
    let customers = if choices.total > i64::from(MAX_CUSTOMER_CHOICES) { Vec::new() } else { choices.items };
    let shown = i64::from(page) * i64::from(PAGE_SIZE);
    let (status, error, form) = match refused {
        Some((form, e)) => (e.status(), Some(e.to_string()), form),
        None => (StatusCode::OK, None, NewKeyForm { role: "app".into(), ..NewKeyForm::default() }),
    };
    let view = ListPage {
        shell: Shell::new(user, Nav::Keys, "Keys"),
        prev: (page > 1).then(|| list_url(&customer, page - 1)),
        next: (found.total > shown).then(|| list_url(&customer, page + 1)),
        keys: found.items.into_iter().map(Row::from).collect(),
        total: found.total,
        customer,
        customers,
        error,
        form,
    };
    Ok(render_with(status, &view))
}

/// `GET /ui/keys`.
async fn list(
    State(state): State<AppState>,
    user: UiUser,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    list_page(&state, &user, query, None).await.unwrap_or_else(|e| e.page(Some(&user)))
}

/// The answer to a POST whose body is not a form (every field of these
/// forms is optional text, so only the body's type can be wrong).
fn not_a_form(user: &UiUser) -> Response {
    UiError::Invalid("the request was not a form post; use the page's form".into()).page(Some(user))
}

/// The form's role, or a 422.
fn role(raw: &str) -> Result<Role, ApiError> {
    match raw {
        "app" => Ok(Role::App),
        "admin" => Ok(Role::Admin),
        "viewer" => Ok(Role::Viewer),
        _ => Err(ApiError::Invalid { field: "role".into(), message: "choose a role: app, admin or viewer".into() }),
    }
}

/// The create form as a key request, or a 422.
fn request(form: &NewKeyForm) -> Result<KeyRequest, ApiError> {
    let customer_id = Uuid::try_parse(form.customer_id.trim()).map_err(|_| ApiError::Invalid {
        field: "customer_id".into(),
        message: "choose a customer (a customer id)".into(),
    })?;
    Ok(KeyRequest { name: form.name.clone(), customer_id, role: role(&form.role)? })
}

/// `POST /ui/keys`: makes the key and sends the browser to its one-time
/// reveal page; invalid input shows the list again with the form as typed
/// and why (422, or 404 for an unknown customer).
async fn create(
    State(state): State<AppState>,
    user: UiUser,
    form: Result<Form<NewKeyForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else { return not_a_form(&user) };
    let made = match request(&form) {
        Ok(request) => keys::create(&state, user.key_id, request).await,
        Err(e) => Err(e),
    };
    match made {
        Ok(issued) => {
            let id = issued.summary.id;
            state.dashboard.reveals.put(&user.csrf, id, Secret::Key(issued));
            see_other(&format!("/ui/keys/{id}/new"))
        }
        Err(e @ (ApiError::Invalid { .. } | ApiError::NotFound(_) | ApiError::Conflict(_))) => {
            let refused = Some((form, UiError::from(e)));
            list_page(&state, &user, ListQuery::default(), refused).await.unwrap_or_else(|e| e.page(Some(&user)))
        }
        Err(e) => UiError::from(e).page(Some(&user)),
    }
}

/// The one-time reveal of a key made or rotated.
#[derive(Template)]
#[template(path = "keys_reveal.html")]
struct RevealPage {
    shell: Shell,
    /// The key, this once; `None` when it was already shown.
    issued: Option<Revealed>,
    /// The key id from the URL.
    id: Uuid,
}

/// What the reveal page shows.
struct Revealed {
    key: String,
    name: String,
    role: String,
    customer_email: String,
    /// After a rotation with a grace period: until when the old secret works.
    old_valid_until: Option<String>,
    /// The rotation ended the viewer's own session.
    signed_out: bool,
}

impl Revealed {
    fn new(issued: IssuedKey, signed_out: bool) -> Self {
        Self {
            key: issued.key,
            name: issued.summary.name,
            role: issued.summary.role,
            customer_email: issued.summary.customer_email,
            old_valid_until: issued.old_secret_valid_until.map(when),
            signed_out,
        }
    }
}

/// A path's key id, or a 404.
fn key_id(raw: &str) -> Result<Uuid, UiError> {
    Uuid::try_parse(raw).map_err(|_| UiError::NotFound("There is no key with that id.".into()))
}

/// `GET /ui/keys/{id}/new`: the secret left by the create or rotate form,
/// taken out as it is shown; a reload says it was shown already.
async fn reveal(State(state): State<AppState>, user: UiUser, Path(id): Path<String>) -> Response {
    let id = match key_id(&id) {
        Ok(id) => id,
        Err(e) => return e.page(Some(&user)),
    };
    let issued = match state.dashboard.reveals.take(&user.csrf, id) {
        Some(Secret::Key(issued)) if issued.summary.id == id => Some(Revealed::new(issued, false)),
        _ => None,
    };
    let title = if issued.is_some() { "New key" } else { "Key already shown" };
    no_store(render(&RevealPage { shell: Shell::new(&user, Nav::Keys, title), issued, id }))
}

/// The rotate and delete confirmation pages.
#[derive(Template)]
#[template(path = "keys_confirm.html")]
struct ConfirmPage {
    shell: Shell,
    key: Row,
    /// `rotate` or `delete`.
    action: &'static str,
    /// Whether the key is the one this session signed in with.
    own: bool,
    max_grace: u32,
    error: Option<String>,
}

/// The confirmation page for `action` on key `raw`.
async fn confirm(
    state: &AppState,
    user: &UiUser,
    raw: &str,
    action: &'static str,
    error: Option<UiError>,
) -> Result<Response, UiError> {
    user.require_write()?;
    let id = key_id(raw)?;
    let key =
        state.store.key_summary(id).await?.ok_or_else(|| UiError::NotFound(format!("There is no key `{id}`.")))?;
    let title = if action == "rotate" { "Rotate key" } else { "Delete key" };
    let status = error.as_ref().map_or(StatusCode::OK, UiError::status);
    let view = ConfirmPage {
        shell: Shell::new(user, Nav::Keys, title),
        key: Row::from(key),
        action,
        own: id == user.key_id,
        max_grace: MAX_GRACE_SECONDS,
        error: error.map(|e| e.to_string()),
    };
    Ok(render_with(status, &view))
}

/// `GET /ui/keys/{id}/rotate`: the rotate form (grace seconds).
async fn rotate_form(State(state): State<AppState>, user: UiUser, Path(id): Path<String>) -> Response {
    confirm(&state, &user, &id, "rotate", None).await.unwrap_or_else(|e| e.page(Some(&user)))
}

/// `GET /ui/keys/{id}/delete`: asks before deleting.
async fn delete_form(State(state): State<AppState>, user: UiUser, Path(id): Path<String>) -> Response {
    confirm(&state, &user, &id, "delete", None).await.unwrap_or_else(|e| e.page(Some(&user)))
}

/// The rotate form.
#[derive(Debug, Default, Deserialize)]
struct RotateForm {
    /// Seconds the old secret keeps working; blank is 0.
    #[serde(default)]
    grace_seconds: String,
}

/// The grace period typed, or a 422.
fn grace(raw: &str) -> Result<u32, ApiError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(0);
    }
    raw.parse::<u32>().ok().filter(|g| *g <= MAX_GRACE_SECONDS).ok_or_else(|| ApiError::Invalid {
        field: "grace_seconds".into(),
        message: format!("the grace period must be a whole number of seconds from 0 to {MAX_GRACE_SECONDS}"),
    })
}

/// `POST /ui/keys/{id}/rotate`: a new secret, shown once. Rotating the key
/// this session signed in with ends the session, so its secret is shown in
/// this answer (no redirect a signed-out browser couldn't follow).
async fn rotate(
    State(state): State<AppState>,
    user: UiUser,
    Path(raw): Path<String>,
    form: Result<Form<RotateForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else { return not_a_form(&user) };
    let id = match key_id(&raw) {
        Ok(id) => id,
        Err(e) => return e.page(Some(&user)),
    };
    let rotated = match grace(&form.grace_seconds) {
        Ok(g) => keys::rotate(&state, user.key_id, id, g).await,
        Err(e) => Err(e),
    };
    match rotated {
        Ok(issued) if id == user.key_id => {
            let shell = Shell::new(&user, Nav::Keys, "New key");
            no_store(render(&RevealPage { shell, issued: Some(Revealed::new(issued, true)), id }))
        }
        Ok(issued) => {
            state.dashboard.reveals.put(&user.csrf, id, Secret::Key(issued));
            see_other(&format!("/ui/keys/{id}/new"))
        }
        Err(e @ ApiError::Invalid { .. }) => {
            confirm(&state, &user, &raw, "rotate", Some(UiError::from(e))).await.unwrap_or_else(|e| e.page(Some(&user)))
        }
        Err(e) => UiError::from(e).page(Some(&user)),
    }
}

/// `POST /ui/keys/{id}/delete`: deletes the key (it fails at once, its
/// sessions end) and returns to the list; deleting one's own key signs out.
async fn delete(State(state): State<AppState>, user: UiUser, Path(raw): Path<String>) -> Response {
    let id = match key_id(&raw) {
        Ok(id) => id,
        Err(e) => return e.page(Some(&user)),
    };
    match keys::delete(&state, user.key_id, id).await {
        Ok(()) if id == user.key_id => see_other("/ui/login"),
        Ok(()) => see_other("/ui/keys"),
        Err(e) => UiError::from(e).page(Some(&user)),
    }
}
