//! `POST /api/admin/replay`: re-decide recorded decisions against a
//! candidate set given as files.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::input::{ListBody, ListFields};
use crate::admin::replay::{self, CandidateFile, Period};
use crate::error::{ApiError, ErrorBody};
use crate::http::Admin;
use crate::replay::ReplayReport;
use crate::state::AppState;

/// `/api/admin/replay`.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_replay))
}

/// A candidate and the decisions to replay against it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    /// The candidate's files (1 to 100). They replace the served files of
    /// the same name, and the rest of the served set is kept, unless
    /// `replace`.
    #[schema(min_items = 1, max_items = 100)]
    files: Vec<CandidateFile>,
    /// The candidate is `files` alone (default: the served set with
    /// `files` in place).
    #[serde(default)]
    replace: bool,
    /// The decisions of the last this long: a whole number and a unit, `s`,
    /// `m`, `h`, `d` or `w`, e.g. `7d` (default when no `from`/`to`: `7d`).
    /// Given with `from`, the later start applies.
    #[serde(default)]
    #[schema(pattern = "^[1-9][0-9]{0,5}[smhdw]$")]
    since: Option<String>,
    /// Decisions created at or after (RFC 3339).
    #[serde(default)]
    from: Option<DateTime<Utc>>,
    /// Decisions created before (RFC 3339); not after `from`: no decision.
    #[serde(default)]
    to: Option<DateTime<Utc>>,
    /// One customer's decisions only.
    #[serde(default)]
    customer_id: Option<Uuid>,
}

impl ListFields for ReplayBody {
    const LISTS: &'static [&'static str] = &["files"];
}

/// Re-decide the recorded decisions of a period against a candidate set,
/// with the overrides as they are now, and report what would change (as
/// `warden replay --format json`). Runs within the request timeout; for
/// long periods use `warden replay`.
#[utoipa::path(post, path = "/api/admin/replay", tag = "admin", request_body = ReplayBody,
    responses(
        (status = 200, description = "The report", body = ReplayReport),
        (status = 409, description = "Two files of one name", body = ErrorBody),
        (status = 422, description = "Bad files or period (`invalid_field`), or a candidate that does not compile (`policy_invalid`, with `diagnostics`)", body = ErrorBody),
    ))]
async fn post_replay(
    State(state): State<AppState>,
    _: Admin,
    body: Result<ListBody<ReplayBody>, ApiError>,
) -> Result<Json<ReplayReport>, ApiError> {
    let ListBody(b) = body?;
    let range = Period { since: b.since, from: b.from, to: b.to }.range(b.customer_id)?;
    let candidate = replay::candidate(&state, b.files, b.replace)?;
    Ok(Json(replay::run(&state, candidate, range).await?))
}
