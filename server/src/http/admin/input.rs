//! What the admin API reads from a request: JSON bodies, query strings and
//! path parameters. Malformed JSON is 400; anything well-formed but invalid
//! is 422 naming the field; a path that names nothing is 404. Every
//! rejection is the API's JSON error body, never axum's plain text.
//!
//! Text either database can't store is refused here, for every field of
//! every admin body and query string alike, so both backends answer the
//! same 422 rather than Postgres failing the statement: see [`storable`].

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;
use warden_engine::json::JsonError;

use crate::error::ApiError;
use crate::state::AppState;

pub(super) use crate::admin::storable;

fn unstorable(field: String) -> ApiError {
    let message = format!("`{field}` contains a NUL character (U+0000), which can't be stored; remove it");
    ApiError::Invalid { field, message }
}

/// The first string (or object key) in `v` that can't be stored, or the
/// first list not at one of `lists`, as a 422 naming its path (`name`,
/// `rate_limit.requests`).
///
/// serde would read a list where a body or a nested object belongs as that
/// object's fields in order (`[100, null]` as a threshold and a rate
/// limit), which the document doesn't allow; so a list is refused except
/// where a body declares one ([`ListFields`]).
fn check_storable(v: &Value, path: &mut String, lists: &[&str]) -> Result<(), ApiError> {
    let here = |path: &String| if path.is_empty() { "body".to_owned() } else { path.clone() };
    match v {
        Value::String(s) if !storable(s) => Err(unstorable(here(path))),
        // A list field the body declares (see [`ListFields`]): each item
        // is checked, at `field[i]`.
        Value::Array(items) if lists.contains(&path.as_str()) => {
            for (i, item) in items.iter().enumerate() {
                let mut at = format!("{path}[{i}]");
                check_storable(item, &mut at, &[])?;
            }
            Ok(())
        }
        Value::Array(_) => {
            let field = here(path);
            let message = format!("`{field}` must be an object or a single value, not a list");
            Err(ApiError::Invalid { field, message })
        }
        Value::Object(map) => {
            for (k, item) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                if !storable(k) {
                    return Err(unstorable(path.clone()));
                }
                check_storable(item, path, lists)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Parses an admin body with the engine's strict parser (a key given twice
/// is refused, naming it, rather than the last one silently winning) and
/// refuses text the database can't store.
fn parse_body(bytes: &[u8], lists: &[&str]) -> Result<Value, ApiError> {
    let value = warden_engine::json::parse(bytes).map_err(|e| match e {
        JsonError::Syntax { .. } => ApiError::BadJson(e.to_string()),
        JsonError::DuplicateKey { path } => ApiError::Invalid {
            message: format!("`{path}` is given more than once; give each field once"),
            field: path,
        },
        JsonError::TooDeep => ApiError::Invalid { field: "body".to_owned(), message: e.to_string() },
    })?;
    if !value.is_object() {
        return Err(ApiError::Invalid {
            field: "body".to_owned(),
            message: "the body must be a JSON object".to_owned(),
        });
    }
    check_storable(&value, &mut String::new(), lists)?;
    Ok(value)
}

/// A JSON body for the admin API. An empty body reads as `{}`.
#[derive(Debug)]
pub(super) struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        read_body(req, state, &[]).await.map(Body)
    }
}

/// A body type with list fields, which [`ListBody`] accepts at the paths
/// named (every other list is refused, as by [`Body`]).
pub(super) trait ListFields {
    /// The dotted paths of the list fields, e.g. `["files"]`.
    const LISTS: &'static [&'static str];
}

/// A JSON body with list fields (see [`ListFields`]).
#[derive(Debug)]
pub(super) struct ListBody<T>(pub T);

impl<T: DeserializeOwned + ListFields> FromRequest<AppState> for ListBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        read_body(req, state, T::LISTS).await.map(ListBody)
    }
}

/// Reads and checks a body, lists allowed only at `lists`, and
/// deserialises it, naming the field of any error.
async fn read_body<T: DeserializeOwned>(req: Request, state: &AppState, lists: &[&str]) -> Result<T, ApiError> {
    let limit = state.max_body_bytes;
    let bytes = Bytes::from_request(req, state).await.map_err(|r| {
        if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(limit)
        } else {
            ApiError::BadJson(r.body_text())
        }
    })?;
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
    let value = parse_body(bytes, lists)?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if !inner.is_data() {
            return ApiError::BadJson(inner.to_string());
        }
        let message = inner.to_string();
        // A missing field is reported at its parent's path, with the
        // field named in the message: "missing field `email`".
        let missing = message.strip_prefix("missing field `").and_then(|m| m.split('`').next());
        let named = message.split('`').nth(1);
        let field = match (path.as_str(), missing) {
            (".", Some(f)) => f.to_owned(),
            (p, Some(f)) => format!("{p}.{f}"),
            (".", None) => named.unwrap_or("body").to_owned(),
            (p, None) => p.to_owned(),
        };
        ApiError::Invalid { field, message }
    })
}

/// Query parameters, with a malformed one reported as 422 naming it.
#[derive(Debug)]
pub(super) struct Params<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts<AppState> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        // Every parameter, known or not, must be storable text: a filter is
        // bound into a query, and an unknown one may be known tomorrow.
        if let Ok(axum::extract::Query(pairs)) = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
        {
            for (k, v) in pairs {
                if !storable(&k) {
                    return Err(unstorable("query".to_owned()));
                }
                if !storable(&v) {
                    return Err(unstorable(k));
                }
            }
        }
        match axum::extract::Query::<T>::try_from_uri(&parts.uri) {
            Ok(axum::extract::Query(v)) => Ok(Params(v)),
            Err(e) => {
                let message = e.body_text();
                // "Failed to deserialize query string: page: invalid digit …"
                let detail = message.split_once("query string: ").map_or(message.as_str(), |(_, d)| d);
                let field = match detail.split_once(": ") {
                    Some((f, _)) if !f.contains(' ') => f.to_owned(),
                    _ => "query".to_owned(),
                };
                Err(ApiError::Invalid { field, message })
            }
        }
    }
}

/// Path parameters. A path that can't be read (bad percent-encoding, not
/// UTF-8) names nothing, so it is 404 like an unknown id.
#[derive(Debug)]
pub(super) struct PathParams<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(PathParams(v)),
            Err(_) => Err(ApiError::NotFound("nothing at this path: a path parameter can't be read".to_owned())),
        }
    }
}
