//! `POST /v1/check` and `POST /api/evaluate`.

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;
use warden_engine::Decision;

use super::{Caller, request_id};
use crate::error::{ApiError, ErrorBody, rate_limit_headers};
use crate::live::Candidate;
use crate::rate_limit::Verdict;
use crate::state::AppState;
use crate::store::{
    AuditRecord, CandidateOutcome, Contribution, Outcome, ShadowMatch, ShadowOutcome, ShadowRecord, change_between,
};

/// The body of `/v1/check`: the fields the policy set declares in its
/// `input` blocks (the shipped set: `model`, `operation` and a few
/// `metadata` flags). Only declared fields are read; undeclared ones are
/// ignored; content fields (`prompt`, `messages`, …) anywhere are refused.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: the body is read as free JSON
pub struct CheckRequest {
    /// The model to be called, e.g. `gpt-4`.
    model: String,
    /// The operation, e.g. `classify`.
    operation: String,
    /// Metadata about the request (never its content). Absent or `null`
    /// reads as no metadata: declared fields take their defaults.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
}

/// One rule's part in the score.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ContributionBody {
    /// The rule.
    rule: String,
    /// What it added.
    score: i64,
}

/// The decision.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckResponse {
    /// Whether the operation may go ahead.
    allowed: bool,
    /// The summed score.
    risk_score: i64,
    /// Why.
    reason: String,
    /// Every rule that added to the score.
    contributions: Vec<ContributionBody>,
    /// The policy version it was decided under.
    policy_version: String,
    /// This decision's id, also on its audit row.
    decision_id: Uuid,
    /// The rules in shadow mode whose conditions held, in source order;
    /// left out when none did. They never change `allowed`, `risk_score`
    /// or `reason`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    shadow: Vec<ShadowMatch>,
    /// What the decision would have been had the rules in `shadow` been
    /// enforced; left out when `shadow` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    shadow_outcome: Option<ShadowOutcome>,
}

/// `/v1/check` and `/api/evaluate`.
pub(crate) fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(check)).routes(utoipa_axum::routes!(evaluate))
}

fn body_error(rejection: BytesRejection, limit: usize) -> ApiError {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(limit)
    } else {
        ApiError::BadJson(rejection.body_text())
    }
}

/// Longest string kept in an audit row; declared fields hold identifiers
/// and codes, not text.
const MAX_AUDIT_STRING: usize = 200;

/// A string fit for the audit log: at most [`MAX_AUDIT_STRING`]
/// characters, a NUL (which Postgres refuses in text and JSON) recorded as
/// U+FFFD, so a replay can tell the value was altered.
fn audit_string(s: &str) -> String {
    s.chars().map(|c| if c == '\0' { '\u{FFFD}' } else { c }).take(MAX_AUDIT_STRING).collect()
}

fn sanitize(v: &mut Value) {
    match v {
        Value::String(s) => *s = audit_string(s),
        Value::Array(items) => items.iter_mut().for_each(sanitize),
        Value::Object(map) => map.values_mut().for_each(sanitize),
        _ => {}
    }
}

async fn rate_limit(
    state: &AppState,
    caller: &Caller,
    quota: Option<crate::rate_limit::Quota>,
) -> Result<Verdict, ApiError> {
    let verdict = state.limiter.check(caller.0.key_id, quota.unwrap_or(state.default_quota)).await;
    if !verdict.allowed {
        state.metrics.rate_limited();
        return Err(ApiError::RateLimited(verdict));
    }
    Ok(verdict)
}

/// Decide whether an AI operation may go ahead.
#[utoipa::path(
    post, path = "/v1/check", tag = "decisions",
    request_body = CheckRequest,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Decided (a block is `allowed: false`)", body = CheckResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing, malformed, unknown or inactive key", body = ErrorBody),
        (status = 403, description = "A viewer key: viewers read the admin API and the dashboard, and ask for no decisions", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 422, description = "Refused before evaluation: a forbidden content field, a key repeated in the JSON, a wrong type, a missing field, or nesting too deep", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
        (status = 503, description = "The decision could not be audited in time (the audit queue stayed full past the block timeout, or at once with `audit_on_full = reject`; in durable mode, the row could not be made durable), or the key store is unavailable", body = ErrorBody),
    )
)]
#[tracing::instrument(name = "check", skip_all)]
pub async fn check(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let caller = caller?;
    let snapshot = state.live.load();
    let (overrides, quota) = snapshot.for_customer(&caller.0.customer_id);
    let verdict = rate_limit(&state, &caller, quota).await?;
    let body = body.map_err(|r| body_error(r, state.max_body_bytes))?;
    let decision_id = Uuid::now_v7();
    let policy = &snapshot.policy;
    // One pass over the body parses it, refuses what must be refused (a
    // content field, a repeated key: both audited alike) and gives the
    // decision and what the audit row may hold: `model`, `operation` and
    // the declared fields, resolved by the engine when the policy was
    // compiled. Only text that is not JSON at all is a 400.
    let recorded = policy.decide_recorded_bytes(&body, overrides).map_err(|e| ApiError::BadJson(e.to_string()))?;
    let latency = started.elapsed();
    let mut record = AuditRecord {
        decision_id,
        request_id: request_id(&headers),
        customer_id: caller.0.customer_id,
        api_key_id: caller.0.key_id,
        model: recorded.model.as_deref().map(audit_string),
        operation: recorded.operation.as_deref().map(audit_string),
        meta: Value::Object(serde_json::Map::new()),
        risk_score: 0,
        allowed: false,
        outcome: Outcome::Rejected,
        reason: String::new(),
        policy_version: policy.version().to_owned(),
        latency_us: i64::try_from(latency.as_micros()).unwrap_or(i64::MAX),
        created_at: crate::store::now(),
        contributions: None,
        shadow: None,
    };
    let answer = match recorded.outcome {
        Ok(d) => {
            let mut meta = Value::Object(recorded.declared);
            sanitize(&mut meta);
            record.meta = meta;
            record.risk_score = d.risk_score;
            record.allowed = d.allowed;
            record.outcome = if d.allowed { Outcome::Allowed } else { Outcome::Blocked };
            record.reason = d.reason.to_owned();
            record.contributions = Some(
                d.contributions.iter().map(|c| Contribution { rule: c.rule.to_owned(), score: c.score }).collect(),
            );
            record.shadow = ShadowRecord::of(&d);
            state.metrics.shadow(&d);
            if let Some(candidate) = &snapshot.candidate {
                let enforced = (d.allowed, d.risk_score, d.reason);
                if let Some((other, change)) = candidate_differs_from(candidate, &body, &caller.0.customer_id, enforced)
                {
                    state.metrics.shadow_set_difference(change);
                    record.shadow.get_or_insert_with(ShadowRecord::default).candidate = Some(other);
                }
            }
            Ok(response_body(&d, decision_id))
        }
        Err(rejection) => {
            record.reason = rejection.code().to_owned();
            // The shadow set decides what the enforced set refused too.
            if let Some(candidate) = &snapshot.candidate {
                let refused = (false, 0, rejection.code());
                if let Some((other, change)) = candidate_differs_from(candidate, &body, &caller.0.customer_id, refused)
                {
                    state.metrics.shadow_set_difference(change);
                    record.shadow = Some(ShadowRecord { candidate: Some(other), ..ShadowRecord::default() });
                }
            }
            Err(rejection)
        }
    };
    state.metrics.decision(record.allowed, &record.reason, latency.as_secs_f64());
    state
        .audit
        .push(record)
        .await
        .map_err(|_| ApiError::Unavailable("the audit log is falling behind; try again shortly".to_owned()))?;
    let mut response = match answer {
        Ok(body) => Json(body).into_response(),
        Err(rejection) => ApiError::Rejected(rejection, Some(decision_id)).into_response(),
    };
    rate_limit_headers(&verdict, response.headers_mut());
    Ok(response)
}

/// The shadow policy set's decision of the request `body`, when it differs
/// from the enforced outcome `(allowed, risk_score, reason)`, and how (see
/// [`change_between`]). A refused request, by either set, counts as blocked
/// with score 0 and the rejection code as reason. The body parsed for the
/// enforced set, so it is JSON; were the candidate to find it not, that too
/// counts as refused.
fn candidate_differs_from(
    candidate: &Candidate,
    body: &[u8],
    customer: &Uuid,
    enforced: (bool, i64, &str),
) -> Option<(CandidateOutcome, &'static str)> {
    let version = candidate.policy.version();
    let (allowed, risk_score, reason, rejected) =
        match candidate.policy.decide_bytes_with(body, candidate.for_customer(customer)) {
            Ok(o) => (o.allowed, o.risk_score, o.reason, false),
            Err(warden_engine::RequestError::Rejected(r)) => (false, 0, r.code(), true),
            Err(warden_engine::RequestError::Malformed(_)) => (false, 0, "malformed_json", true),
        };
    let change = change_between(enforced, (allowed, risk_score, reason))?;
    let other = CandidateOutcome {
        allowed,
        risk_score,
        reason: reason.to_owned(),
        policy_version: version.to_owned(),
        rejected,
    };
    Some((other, change))
}

fn response_body(d: &Decision<'_>, decision_id: Uuid) -> CheckResponse {
    CheckResponse {
        allowed: d.allowed,
        risk_score: d.risk_score,
        reason: d.reason.to_owned(),
        contributions: d
            .contributions
            .iter()
            .map(|c| ContributionBody { rule: c.rule.to_owned(), score: c.score })
            .collect(),
        policy_version: d.policy_version.to_owned(),
        decision_id,
        shadow: ShadowMatch::of(d),
        shadow_outcome: ShadowOutcome::of(d),
    }
}

/// Confirmation that a key works.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EvaluateResponse {
    /// Always `ok`.
    status: &'static str,
    /// The key's customer.
    customer_id: Uuid,
    /// A human-readable confirmation.
    message: &'static str,
}

/// Verify an API key (counts against its rate limit).
#[utoipa::path(
    post, path = "/api/evaluate", tag = "decisions",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The key is valid", body = EvaluateResponse),
        (status = 401, description = "Missing, malformed, unknown or inactive key", body = ErrorBody),
        (status = 403, description = "A viewer key: viewers read the admin API and the dashboard, and ask for no decisions", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "The key store is unavailable", body = ErrorBody),
    )
)]
pub async fn evaluate(State(state): State<AppState>, caller: Result<Caller, ApiError>) -> Result<Response, ApiError> {
    let caller = caller?;
    let (_, quota) = state.live.load().for_customer(&caller.0.customer_id);
    let verdict = rate_limit(&state, &caller, quota).await?;
    let mut response = Json(EvaluateResponse {
        status: "ok",
        customer_id: caller.0.customer_id,
        message: "API key verified successfully",
    })
    .into_response();
    rate_limit_headers(&verdict, response.headers_mut());
    Ok(response)
}
