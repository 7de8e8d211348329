//! `/metrics`: the node's metrics in the Prometheus text format (`crate::metrics`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::HttpState;

pub(crate) fn routes() -> Router<Arc<HttpState>> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<Arc<HttpState>>) -> Response {
    let node = match state.node() {
        Ok(node) => Arc::clone(node),
        Err(e) => return e.into_response(),
    };
    let body = node.metrics.render(&node).await;
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
