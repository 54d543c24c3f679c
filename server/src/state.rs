//! The state every handler and background task shares.

use std::sync::Arc;
use std::time::Instant;

use crate::audit::AuditQueue;
use crate::auth::Authenticator;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::rate_limit::{Quota, RateLimiter};
use crate::store::Store;

/// Everything handlers share, behind one `Arc`: extracting it costs one
/// reference-count increment per request.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    /// Wraps the services.
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services behind [`AppState`].
#[derive(Debug)]
pub struct Services {
    /// Policy and overrides.
    pub live: Arc<Live>,
    /// The database (never on the decision path).
    pub store: Store,
    /// API key verification.
    pub auth: Arc<Authenticator>,
    /// Per-key rate limiting.
    pub limiter: Arc<RateLimiter>,
    /// The default quota, for customers without their own.
    pub default_quota: Quota,
    /// The audit queue.
    pub audit: AuditQueue,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Largest accepted body.
    pub max_body_bytes: usize,
    /// Reloads the policy files (absent when the service was built without
    /// a policy directory, as in some tests).
    pub reloader: Option<Arc<crate::reload::PolicyReloader>>,
    /// Reloads the shadow policy set (absent without `--shadow-policies`).
    pub shadow_reloader: Option<Arc<crate::reload::PolicyReloader>>,
    /// bcrypt cost for keys made through the admin API.
    pub bcrypt_cost: u32,
    /// When the process started.
    pub started: Instant,
    /// How webhook deliveries behave (the endpoints' URL rules too).
    pub webhooks: crate::webhooks::Settings,
    /// The web dashboard's settings and its in-process state (sign-in
    /// limits).
    pub dashboard: crate::ui::Dashboard,
}
