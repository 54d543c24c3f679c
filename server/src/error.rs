//! The API's one error type, and the one body every error answer has
//! ([`ErrorBody`]): `{"error": "<code>", "message": "<what was wrong and what
//! was expected>"}`, plus `field`, `path` or `decision_id` where they apply.
//! Internal errors are logged and never sent to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use uuid::Uuid;
use warden_engine::Rejection;

use crate::auth::AuthError;
use crate::rate_limit::Verdict;

/// An error answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401: no usable key.
    #[error(transparent)]
    Unauthorized(AuthError),
    /// 403: an app key on an admin endpoint.
    #[error("this endpoint needs an admin key")]
    Forbidden,
    /// 403: the key's role may not do this (a viewer key writing, or asking
    /// for a decision); the message says which role may.
    #[error("{0}")]
    ForbiddenRole(&'static str),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 405.
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    /// 408: the body or the answer took longer than the request timeout.
    #[error("the request took longer than {0} s to arrive and be answered")]
    RequestTimeout(u64),
    /// 400: the body is not JSON.
    #[error("the body is not valid JSON: {0}")]
    BadJson(String),
    /// 413.
    #[error("the body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// 422: the engine refused the request before evaluation.
    #[error("{}", .0.message())]
    Rejected(Rejection, Option<Uuid>),
    /// 422: a field is invalid.
    #[error("{message}")]
    Invalid {
        /// Which field.
        field: String,
        /// What was wrong and what was expected.
        message: String,
    },
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 429.
    #[error("rate limit exceeded: {} requests per {} s; retry after {} s", .0.quota.requests, .0.quota.window.as_secs(), .0.retry_after_secs)]
    RateLimited(Verdict),
    /// 422: a policy set given in the body does not compile.
    #[error("the policy set has {} error(s); see `diagnostics`", .0.iter().filter(|d| d.severity == "error").count())]
    PolicyInvalid(Vec<DiagnosticBody>),
    /// 503.
    #[error("{0}")]
    Unavailable(String),
    /// 500: logged, never detailed to the client.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The `error` code in the body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized(AuthError::Throttled { .. }) => "too_many_failures",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden | Self::ForbiddenRole(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RequestTimeout(_) => "request_timeout",
            Self::BadJson(_) => "invalid_json",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::Rejected(r, _) => r.code(),
            Self::Invalid { .. } => "invalid_field",
            Self::PolicyInvalid(_) => "policy_invalid",
            Self::Conflict(_) => "conflict",
            Self::RateLimited(_) => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(AuthError::Store(_)) | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unauthorized(AuthError::Throttled { .. }) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::ForbiddenRole(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::BadJson(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Rejected(..) | Self::Invalid { .. } | Self::PolicyInvalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            other => {
                tracing::error!(error = %other, "database error");
                Self::Unavailable("the database is unavailable; try again".to_owned())
            }
        }
    }
}

/// `RateLimit-Policy` and `RateLimit` headers (IETF draft), on every answer
/// that went through the limiter.
pub fn rate_limit_headers(v: &Verdict, headers: &mut axum::http::HeaderMap) {
    let policy = format!("\"default\";q={};w={}", v.quota.requests, v.quota.window.as_secs().max(1));
    let state = format!("\"default\";r={};t={}", v.remaining, v.reset_secs);
    if let Ok(h) = HeaderValue::from_str(&policy) {
        headers.insert("ratelimit-policy", h);
    }
    if let Ok(h) = HeaderValue::from_str(&state) {
        headers.insert("ratelimit", h);
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable code: `unauthorized`, `forbidden`, `not_found`,
    /// `method_not_allowed`, `request_timeout`, `invalid_json`,
    /// `payload_too_large`, `invalid_field`, `conflict`, `rate_limited`,
    /// `too_many_failures` (429: too many failed key verifications),
    /// `unavailable`, `internal`, or one of the engine's rejection codes on
    /// `/v1/check` (`forbidden_field`, `duplicate_key`, `type_mismatch`,
    /// `missing_field`, `too_deep`, …).
    #[schema(example = "invalid_field")]
    pub error: String,
    /// What was wrong and what was expected, in words.
    pub message: String,
    /// With `invalid_field`: the invalid field's path in the body or the
    /// query parameter's name, e.g. `rate_limit.requests` or `page`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// With a rejection on `/v1/check`: where in the request, e.g.
    /// `metadata.messages` (empty for the whole request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// With a rejection on `/v1/check`: the id of the rejection's audit row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_id: Option<Uuid>,
    /// With `policy_invalid`: every error and warning, as `warden check
    /// --format json` prints them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Vec<DiagnosticBody>>,
}

/// One diagnostic of a policy set, as `warden check --format json` prints
/// it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct DiagnosticBody {
    /// A stable code, e.g. `unknown_field`, `syntax`.
    pub code: String,
    /// `error` or `warning`.
    pub severity: String,
    /// `file:line:column`, when it has one.
    pub position: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is advice.
    pub help: Option<String>,
}

impl DiagnosticBody {
    /// `d` as a body.
    pub fn of(d: &warden_engine::Diagnostic) -> Self {
        Self {
            code: d.code().to_owned(),
            severity: if d.is_error() { "error" } else { "warning" }.to_owned(),
            position: d.position().map(str::to_owned),
            message: d.kind().to_string(),
            help: d.help_text().map(str::to_owned),
        }
    }
}

impl ApiError {
    /// The body this error is answered with.
    pub fn body(&self) -> ErrorBody {
        let mut body = ErrorBody {
            error: self.code().to_owned(),
            message: self.to_string(),
            field: None,
            path: None,
            decision_id: None,
            diagnostics: None,
        };
        match self {
            Self::Unauthorized(AuthError::Store(_)) => {
                "the key store is unavailable; try again".clone_into(&mut body.message);
            }
            Self::Rejected(r, decision_id) => {
                body.path = Some(r.path.clone());
                body.decision_id = *decision_id;
            }
            Self::Invalid { field, .. } => body.field = Some(field.clone()),
            Self::PolicyInvalid(diagnostics) => body.diagnostics = Some(diagnostics.clone()),
            _ => {}
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(detail) => tracing::error!(%detail, "internal error"),
            Self::Unauthorized(AuthError::Store(e)) => {
                tracing::error!(error = %e, "database error during authentication");
            }
            _ => {}
        }
        let mut response = (self.status(), axum::Json(self.body())).into_response();
        if let Self::RateLimited(v) = &self {
            let headers = response.headers_mut();
            rate_limit_headers(v, headers);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(v.retry_after_secs));
        }
        if let Self::Unauthorized(AuthError::Throttled { retry_after_secs }) = &self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        response
    }
}
