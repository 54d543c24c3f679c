//! What the admin API reads from a request: JSON bodies, query strings and
//! path parameters. Malformed JSON is 400; anything well-formed but invalid
//! is 422 naming the field; a path that names nothing is 404. Every
//! rejection is the API's JSON error body, never axum's plain text.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::error::ApiError;

/// A JSON body for the admin API. An empty body reads as `{}`.
#[derive(Debug)]
pub(super) struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = state.max_body_bytes;
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(limit)
            } else {
                ApiError::BadJson(r.body_text())
            }
        })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        let mut de = serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(&mut de).map(Body).map_err(|e| {
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
}

/// Query parameters, with a malformed one reported as 422 naming it.
#[derive(Debug)]
pub(super) struct Params<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts<AppState> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
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
