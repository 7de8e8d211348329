//! The HTTP API: one axum server beside the Kafka listener, over the same node layer.
//!
//! ```text
//! HTTP client ──TCP──► listener (at most `max_connections`) ──► hyper (HTTP/1.1)
//!   ─► json_errors (every error answer is {"error_code", "message"})
//!   ─► request timeout (503 50301; includes waiting for a slot)
//!   ├─► /livez, /readyz, /v1/status                       health  (no slot needed)
//!   └─► concurrency limit (`max_in_flight` requests at once)
//!        ├─► /metrics       Prometheus text format         metrics
//!        ├─► /v3/...        admin, REST Proxy v3 shapes    v3      body ≤ admin_body_bytes
//!        └─► /topics/...    data, REST Proxy v2 shapes     v2      body ≤ produce_body_bytes
//!                │
//!                ▼
//!              Node (crate::node) ─► topics, partitions, groups, configs
//! ```
//!
//! Invariant: routes call the node layer, never the Kafka handlers, and build no Kafka
//! request structs; produced records become v2 record batches that go through the node's
//! produce path like a Produce request's.
//!
//! The server starts before the node has opened its logs: `/livez` answers at once,
//! `/readyz` and every other route answer 503 until [`HttpServer::serve`] hands it the node
//! (logs recovered, groups loaded, the Kafka listener bound), and again once the node stops.
//! Everything a client can make the server hold is bounded: connections, requests in
//! flight, body sizes, produce bytes in flight, consume waits and answer sizes, and the time
//! of every request. The router is built from parts ([`router`]) so later parts (metrics,
//! the console) are merged in the same way.

mod body;
mod console;
mod error;
pub(crate) mod health;
mod listener;
mod metrics;
#[cfg(test)]
mod tests;
mod v2;
mod v3;

use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::sync::{watch, Semaphore};
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::node::Node;
pub(crate) use error::ApiError;

/// The HTTP API's limits. Defaults: [`HttpLimits::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    /// Connections served at once; more wait in the accept queue.
    pub max_connections: usize,
    /// Requests handled at once (health probes aside); more wait for a slot, within the
    /// request timeout.
    pub max_in_flight: usize,
    /// The longest a request may take, waiting for a slot included (a consume's wait is
    /// capped below it).
    pub request_timeout: Duration,
    /// Largest body of an admin request (`/v3/...`).
    pub admin_body_bytes: usize,
    /// Largest body of a produce request (`http_max_request_bytes`).
    pub produce_body_bytes: usize,
    /// Produce body bytes held by all requests at once (bodies being read and parsed):
    /// bounds the memory of concurrent produces, which otherwise wait.
    pub produce_bytes_in_flight: usize,
    /// The longest a consume waits for its first record (`timeout_ms` is capped to this).
    pub consume_max_wait: Duration,
    /// Most records one consume answers with.
    pub consume_max_records: usize,
    /// Most record bytes (keys, values, headers) one consume answers with.
    pub consume_max_bytes: u64,
}

impl HttpLimits {
    /// The defaults, with `produce_body_bytes` as the largest produce body.
    pub fn new(produce_body_bytes: usize) -> HttpLimits {
        HttpLimits {
            max_connections: 1024,
            max_in_flight: 256,
            request_timeout: Duration::from_secs(60),
            admin_body_bytes: 1 << 20,
            produce_body_bytes,
            produce_bytes_in_flight: produce_body_bytes.saturating_mul(4).max(64 << 20),
            consume_max_wait: Duration::from_secs(30),
            consume_max_records: 10_000,
            consume_max_bytes: 16 << 20,
        }
    }
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits::new(16 << 20)
    }
}

/// What every route shares.
#[derive(Debug)]
pub(crate) struct HttpState {
    /// Set once the node serves.
    node: OnceLock<Arc<Node>>,
    pub(crate) limits: HttpLimits,
    /// Permits of `produce_bytes_in_flight`, one per body byte.
    pub(crate) produce_bytes: Arc<Semaphore>,
    /// Counts produce requests: which partition the null-keyed records of the next one
    /// stick to.
    pub(crate) next_sticky: AtomicUsize,
}

impl HttpState {
    pub(crate) fn new(limits: HttpLimits) -> HttpState {
        let permits = limits
            .produce_bytes_in_flight
            .min(Semaphore::MAX_PERMITS)
            .max(limits.produce_body_bytes.min(Semaphore::MAX_PERMITS));
        HttpState {
            node: OnceLock::new(),
            limits,
            produce_bytes: Arc::new(Semaphore::new(permits)),
            next_sticky: AtomicUsize::new(0),
        }
    }

    /// The node, once it serves and until it stops.
    pub(crate) fn node(&self) -> Result<&Arc<Node>, ApiError> {
        match self.node.get() {
            None => Err(ApiError::not_ready(
                "the node is starting: recovering logs and loading consumer groups",
            )),
            Some(node) if node.is_shutting_down() => {
                Err(ApiError::not_ready("the node is shutting down"))
            }
            Some(node) => Ok(node),
        }
    }
}

/// Every error answer is JSON: those of axum (405), of tower-http (413 by Content-Length, a
/// timeout) and of unknown routes get the shape of the API's own.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        return ApiError::status(status).into_response();
    }
    response
}

/// The whole API.
pub(crate) fn router(state: Arc<HttpState>) -> Router {
    let limits = &state.limits;
    let limited = Router::new()
        .merge(v3::routes(limits))
        .merge(v2::routes(limits))
        .merge(metrics::routes())
        .layer(GlobalConcurrencyLimitLayer::new(
            limits.max_in_flight.max(1),
        ));
    Router::new()
        .merge(health::routes())
        .merge(console::routes())
        .merge(limited)
        .fallback(|| async { ApiError::status(StatusCode::NOT_FOUND) })
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ))
        .layer(axum::middleware::map_response(json_errors))
        .with_state(state)
}

/// How long stopping waits for requests in progress before closing their connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The running HTTP server.
#[derive(Debug)]
pub(crate) struct HttpServer {
    state: Arc<HttpState>,
    local_addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    /// Binds `addr` and starts serving: `/livez` at once, the rest once [`HttpServer::serve`]
    /// is called. Stops (gracefully) when `shutdown` turns true.
    pub(crate) async fn bind(
        addr: SocketAddr,
        limits: HttpLimits,
        mut shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<HttpServer> {
        let tcp = tokio::net::TcpListener::bind(addr).await?;
        let local_addr = tcp.local_addr()?;
        let listener = listener::Limited::new(tcp, limits.max_connections);
        let state = Arc::new(HttpState::new(limits));
        let app = router(Arc::clone(&state));
        let task = tokio::spawn(async move {
            let stop = async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::error!(error = %e, "the HTTP server failed");
            }
        });
        Ok(HttpServer {
            state,
            local_addr,
            task,
        })
    }

    /// The address the server is bound to.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `node` from now on: `/readyz` answers 200.
    pub(crate) fn serve(&self, node: Arc<Node>) {
        let _ = self.state.node.set(node);
    }

    /// Waits for the server to stop (after the shutdown signal), for a bounded time: requests
    /// still running then are cut off with their connections.
    pub(crate) async fn stopped(self) {
        let mut task = self.task;
        if tokio::time::timeout(DRAIN_TIMEOUT, &mut task)
            .await
            .is_err()
        {
            tracing::warn!("HTTP requests still running after {DRAIN_TIMEOUT:?}; closing them");
            task.abort();
            let _ = task.await;
        }
    }
}
