//! The admin API (admin keys; viewer keys for `GET` only; an app key gets
//! 403: see [`crate::http::Admin`]), one module per
//! resource, each with its own router, merged by [`router`]. Lists are
//! paged: `{items, page, page_size, total}` with `page_size` at most 500.

mod audit_chain;
mod customers;
mod effective;
mod input;
mod int;
mod keys;
mod logs;
mod orphans;
mod overrides;
mod params;
mod replay;
mod rules;
mod settings;
mod shadow;
mod status;
mod webhooks;

pub(crate) use logs::{AdminFilterParams, CursorParams, LogFilterParams};

use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::admin::{apply_now, invalid};
use crate::error::ApiError;
use crate::state::AppState;

/// Every admin route.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(status::router())
        .merge(customers::router())
        .merge(keys::router())
        .merge(rules::router())
        .merge(overrides::router())
        .merge(params::router())
        .merge(replay::router())
        .merge(orphans::router())
        .merge(settings::router())
        .merge(shadow::router())
        .merge(effective::router())
        .merge(logs::router())
        .merge(audit_chain::router())
        .merge(webhooks::router())
}

/// Largest page.
const MAX_PAGE_SIZE: u32 = 500;

/// `?page=&page_size=`.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PageParams {
    /// From 1 (default 1).
    #[param(minimum = 1, maximum = 4_294_967_295_u64, format = Int64)]
    page: Option<u32>,
    /// 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    page_size: Option<u32>,
}

impl PageParams {
    /// `(page, page_size)`, validated.
    fn resolve(self) -> Result<(u32, u32), ApiError> {
        let page = self.page.unwrap_or(1);
        let size = self.page_size.unwrap_or(50);
        if page == 0 {
            return Err(invalid("page", "`page` starts at 1"));
        }
        if size == 0 || size > MAX_PAGE_SIZE {
            return Err(invalid("page_size", format!("`page_size` must be between 1 and {MAX_PAGE_SIZE}")));
        }
        Ok((page, size))
    }
}

/// Parses a path id; a malformed one is as unknown as a missing one. The
/// raw text is not repeated: it may be anything the client typed.
fn parse_id(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw).map_err(|_| ApiError::NotFound(format!("no {what} with that id (ids are UUIDs)")))
}

/// The customer with this path id, or 404.
async fn customer(state: &AppState, raw: &str) -> Result<crate::store::Customer, ApiError> {
    crate::admin::customers::get(state, parse_id(raw, "customer")?).await
}
