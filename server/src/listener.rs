//! The HTTP listener: accepts TCP connections and serves each with hyper's
//! HTTP/1.1 server, with the limits `axum::serve` does not have.
//!
//! - **Request head**: a client has [`Limits::header_read_timeout`] to send a
//!   request's head (hyper's `header_read_timeout`). The timer also runs on a
//!   kept-alive connection waiting for its next request, so an idle
//!   connection is closed after the same time.
//! - **Body and answer**: from the head on, the body must arrive and the
//!   answer be ready within [`Limits::request_timeout`]; past it the client
//!   gets `408 Request Timeout` (tower-http's `TimeoutLayer`) and the
//!   connection is closed.
//! - **Connections**: at most [`Limits::max_connections`] are open at once.
//!   Past the cap the listener stops accepting: new connections wait in the
//!   kernel's accept backlog (and are served as slots free up, which the two
//!   timeouts above guarantee) rather than being accepted and dropped, so a
//!   burst of clients is slowed down, not refused.
//! - **Client address**: each request carries its connection's peer address
//!   as `axum::extract::ConnectInfo<SocketAddr>` (failed key verifications
//!   are limited per address).
//! - **Shutdown**: once `shutdown` resolves, the listening socket is closed,
//!   every connection is told to finish its in-flight request and close, and
//!   connections still open [`Limits::shutdown_grace`] later are closed
//!   abruptly. [`serve`] then returns, so the caller can drain the audit
//!   queue: a slow or stalled client cannot hold shutdown open.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::Layer as _;
use tower_http::timeout::TimeoutLayer;

use crate::metrics::Metrics;

/// Limits on clients and on shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time to receive a request's head (and an idle connection's next one).
    pub header_read_timeout: Duration,
    /// Time from the head to the answer, the body included; then 408.
    pub request_timeout: Duration,
    /// Connections open at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// How long in-flight requests get after shutdown begins.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// How long to back off after an accept error such as running out of file
/// descriptors, which would otherwise fail again at once in a busy loop.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `shutdown` resolves, then shuts down
/// within [`Limits::shutdown_grace`] (see the module documentation).
/// Returns how many connections were still open at the deadline and had
/// to be closed abruptly.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send,
) -> usize {
    let timeout_secs = limits.request_timeout.as_secs().max(1);
    let service = tower::ServiceBuilder::new()
        // The timeout's own 408 has no body; every error answer is an
        // `ErrorBody`, this one too.
        .layer(axum::middleware::map_response(move |response: axum::response::Response| async move {
            if response.status() == StatusCode::REQUEST_TIMEOUT {
                axum::response::IntoResponse::into_response(crate::error::ApiError::RequestTimeout(timeout_secs))
            } else {
                response
            }
        }))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout))
        .service(router);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (closing_tx, closing) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // A slot first, then the connection: past the cap, clients wait in
        // the backlog instead of being accepted and starved.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let service = axum::Extension(axum::extract::ConnectInfo(peer)).layer(service.clone());
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let mut closing = closing.clone();
        let open = OpenConnection::new(metrics.clone());
        connections.spawn(async move {
            let _held = (slot, open);
            tokio::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                // The watch guard isn't `Send`; don't hold it across the await.
                () = async { let _ = closing.wait_for(|c| *c).await; } => {
                    // Finish the request in flight (if any), then close.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = closing_tx.send(true);
    let open = connections.len();
    if open > 0 {
        tracing::info!(
            connections = open,
            grace_ms = limits.shutdown_grace.as_millis() as u64,
            "finishing in-flight requests"
        );
    }
    let deadline = tokio::time::sleep(limits.shutdown_grace);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = connections.join_next() => if next.is_none() { return 0 },
            () = &mut deadline => break,
        }
    }
    let left = connections.len();
    tracing::warn!(connections = left, "shutdown grace over; closing the connections still open");
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    left
}

/// Counts an open connection in `warden_http_connections` until dropped
/// (also when its task is aborted at the end of the shutdown grace).
struct OpenConnection(Arc<Metrics>);

impl OpenConnection {
    fn new(metrics: Arc<Metrics>) -> Self {
        metrics.connections(1);
        Self(metrics)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections(-1);
    }
}
