//! `/ui/customers`: the customer list with search by name or email and the
//! create form; one customer's page lives in [`detail`].

mod detail;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::page::{Nav, Shell, render_with};
use super::{UiError, UiUser, see_other};
use crate::admin::customers;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::Customer;

/// Customers per page.
const PAGE_SIZE: u32 = 50;

/// The customer routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/customers", get(list).post(create))
        .route("/ui/customers/{id}", get(detail::show))
        .route("/ui/customers/{id}/settings", post(detail::settings))
        .route("/ui/customers/{id}/rules/{key}", post(detail::rule_override))
}

/// The customer list.
#[derive(Template)]
#[template(path = "customers.html")]
struct ListPage {
    shell: Shell,
    /// The search as typed.
    q: String,
    customers: Vec<Customer>,
    /// Customers matching the search.
    total: i64,
    /// The previous and next pages' URLs.
    prev: Option<String>,
    next: Option<String>,
    /// Why the create form was refused, and what was typed.
    error: Option<String>,
    name: String,
    email: String,
}

/// `?q=&page=`.
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: Option<String>,
}

/// The create form (with the session's `csrf` field, checked by the guard).
#[derive(Debug, Default, Deserialize)]
struct NewCustomer {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
}

/// The list page's URL for `q` and `page`.
fn list_url(q: &str, page: u32) -> String {
    super::page::paged_url("/ui/customers", &[("q", q)], page)
}

/// The list page; `form` is the create form as typed, with why it failed.
async fn list_page(
    state: &AppState,
    user: &UiUser,
    query: ListQuery,
    form: Option<(NewCustomer, StatusCode, String)>,
) -> Result<Response, UiError> {
    // A page number that isn't one is the first page.
    let page = query.page.as_deref().and_then(|p| p.parse::<u32>().ok()).filter(|p| *p > 0).unwrap_or(1);
    let found = customers::list(state, Some(&query.q), page, PAGE_SIZE).await?;
    let shown = i64::from(page) * i64::from(PAGE_SIZE);
    let (status, error, typed) = match form {
        Some((typed, status, error)) => (status, Some(error), typed),
        None => (StatusCode::OK, None, NewCustomer::default()),
    };
    let view = ListPage {
        shell: Shell::new(user, Nav::Customers, "Customers"),
        prev: (page > 1).then(|| list_url(&query.q, page - 1)),
        next: (found.total > shown).then(|| list_url(&query.q, page + 1)),
        q: query.q,
        customers: found.items,
        total: found.total,
        error,
        name: typed.name,
        email: typed.email,
    };
    Ok(render_with(status, &view))
}

/// `GET /ui/customers`.
async fn list(
    State(state): State<AppState>,
    user: UiUser,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    // Every field is text, so only a malformed query string fails: list all.
    let query = query.map(|Query(q)| q).unwrap_or_default();
    list_page(&state, &user, query, None).await.unwrap_or_else(|e| e.page(Some(&user)))
}

/// `POST /ui/customers`: creates the customer and opens its page; invalid
/// input shows the list again with the form as typed and why (422).
async fn create(State(state): State<AppState>, user: UiUser, Form(form): Form<NewCustomer>) -> Response {
    match customers::create(&state, user.key_id, &form.name, &form.email).await {
        Ok(c) => see_other(&format!("/ui/customers/{}", c.id)),
        Err(e @ (ApiError::Invalid { .. } | ApiError::Conflict(_))) => {
            let refused = UiError::from(e);
            let typed = Some((form, refused.status(), refused.to_string()));
            list_page(&state, &user, ListQuery::default(), typed).await.unwrap_or_else(|e| e.page(Some(&user)))
        }
        Err(e) => UiError::from(e).page(Some(&user)),
    }
}
