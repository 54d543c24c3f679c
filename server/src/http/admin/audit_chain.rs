//! The audit hash chain over HTTP: `GET /api/admin/audit/head` (the chain
//! heads, for an outside system to record as checkpoints), `POST
//! /api/admin/audit/verify` (run a verification in the background) and
//! `GET /api/admin/audit/verification` (the last one's result).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit::chain::Chain;
use crate::error::ApiError;
use crate::http::Admin;
use crate::state::AppState;
use crate::store::{ChainHead, VerificationRecord};

/// `/api/admin/audit/head`, `/api/admin/audit/verify`, `/api/admin/audit/verification`.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(head)).routes(routes!(start_verification)).routes(routes!(last_verification))
}

/// The head of each chain.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Heads {
    /// The decision log's chain.
    usage_log: ChainHead,
    /// The admin trail's chain.
    admin_audit: ChainHead,
}

/// The chain heads: for each chain, the position (rows ever appended), the
/// last row's hash, id and time. Record them elsewhere from time to time:
/// a later head that still has the recorded row, with the recorded hash,
/// at the recorded position (and a verification that passes) proves the
/// log up to that point was neither altered nor cut short.
#[utoipa::path(get, path = "/api/admin/audit/head", tag = "admin",
    responses((status = 200, description = "The chain heads", body = Heads)))]
async fn head(State(state): State<AppState>, _: Admin) -> Result<Json<Heads>, ApiError> {
    Ok(Json(Heads {
        usage_log: state.store.chain_head(Chain::UsageLog).await?,
        admin_audit: state.store.chain_head(Chain::AdminAudit).await?,
    }))
}

/// A verification was started.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Started {
    /// Always `started`: follow it at `GET /api/admin/audit/verification`.
    status: &'static str,
}

/// Starts a verification of both chains in the background (what `warden
/// audit verify` does); its result appears at `GET
/// /api/admin/audit/verification` and in `GET /api/admin/status`.
#[utoipa::path(post, path = "/api/admin/audit/verify", tag = "admin",
    responses(
        (status = 202, description = "Started", body = Started),
        (status = 409, description = "A verification started here is still running", body = crate::error::ErrorBody),
    ))]
async fn start_verification(State(state): State<AppState>, _: Admin) -> Result<(StatusCode, Json<Started>), ApiError> {
    crate::admin::audit_chain::start_verification(&state, "api")?;
    Ok((StatusCode::ACCEPTED, Json(Started { status: "started" })))
}

/// The last verification (from the command line or this API), running or
/// finished, with its report; 404 if none has run.
#[utoipa::path(get, path = "/api/admin/audit/verification", tag = "admin",
    responses(
        (status = 200, description = "The last verification", body = VerificationRecord),
        (status = 404, description = "No verification has run", body = crate::error::ErrorBody),
    ))]
async fn last_verification(State(state): State<AppState>, _: Admin) -> Result<Json<VerificationRecord>, ApiError> {
    state
        .store
        .last_verification()
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("no audit verification has run yet".to_owned()))
}
