//! The admin API in the shape of Confluent's REST Proxy v3 (`/v3/clusters/{cluster_id}/...`):
//! every answer is a resource (`kind`, `metadata.self`, `metadata.resource_name`, its fields,
//! and `related` links to other resources) or a list of them (`kind` ending in `List`,
//! `metadata.self`, `metadata.next` = null, `data`). Cairn adds fields REST Proxy lacks where
//! an operator needs them (a partition's offsets, size and leader; a topic's id), and names
//! them as Kafka's tools do.
//!
//! Served: cluster and brokers (`clusters.rs` here), topics, partitions, replicas and
//! DeleteRecords (`topics`), topic, broker and cluster-wide broker configs (`configs`),
//! consumer groups, their consumers, assignments and lags (`groups`). Not served: ACLs,
//! partition reassignments, v3's produce (`/records`; the v2 shapes are served, see `v2`).

mod configs;
mod groups;
mod topics;

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tower_http::limit::RequestBodyLimitLayer;

use super::body::{base_url, json_response, path_id, segment, Params, PathParams};
use super::error::{ApiError, BROKER_NOT_FOUND};
use super::{HttpLimits, HttpState};
use crate::node::Node;

/// The content type of every v3 answer.
const JSON: &str = "application/json";

pub(crate) fn routes(limits: &HttpLimits) -> Router<Arc<HttpState>> {
    Router::new()
        .route("/v3/clusters", get(list_clusters))
        .route("/v3/clusters/{cluster_id}", get(get_cluster))
        .route("/v3/clusters/{cluster_id}/brokers", get(list_brokers))
        .route(
            "/v3/clusters/{cluster_id}/brokers/{broker_id}",
            get(get_broker),
        )
        .merge(topics::routes())
        .merge(configs::routes())
        .merge(groups::routes())
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(limits.admin_body_bytes))
}

/// One cluster as the request sees it: the node, and the base of its links.
pub(super) struct Cluster {
    node: Arc<Node>,
    /// `http://host/v3/clusters/{cluster_id}`.
    base: String,
}

impl Cluster {
    /// The cluster `cluster_id`, which must be this node's (404 otherwise).
    fn open(state: &HttpState, headers: &HeaderMap, cluster_id: &str) -> Result<Cluster, ApiError> {
        let node = Arc::clone(state.node()?);
        if node.cluster_id != cluster_id {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                404,
                format!("Cluster {cluster_id} cannot be found."),
            ));
        }
        let base = format!(
            "{}/v3/clusters/{}",
            base_url(headers),
            segment(&node.cluster_id)
        );
        Ok(Cluster { node, base })
    }

    fn id(&self) -> &str {
        &self.node.cluster_id
    }

    /// The URL of `path` (which starts with `/`, or is empty for the cluster).
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A `related` link.
    fn related(&self, path: &str) -> Value {
        json!({ "related": self.url(path) })
    }

    /// A resource's `metadata`: its URL and its CRN (`crn:///kafka=ID` + `crn`).
    fn metadata(&self, path: &str, crn: &str) -> Value {
        json!({
            "self": self.url(path),
            "resource_name": format!("crn:///kafka={}{crn}", self.id()),
        })
    }

    /// A list resource.
    fn list(&self, kind: &str, path: &str, data: Vec<Value>) -> Value {
        json!({
            "kind": kind,
            "metadata": { "self": self.url(path), "next": null },
            "data": data,
        })
    }

    fn cluster(&self) -> Value {
        // The metadata quorum's leader (this node alone on a single node); null while a
        // cluster elects one.
        let controller = match self.node.controller() {
            Some(id) => self.related(&format!("/brokers/{id}")),
            None => Value::Null,
        };
        json!({
            "kind": "KafkaCluster",
            "metadata": self.metadata("", ""),
            "cluster_id": self.id(),
            "controller": controller,
            "acls": self.related("/acls"),
            "brokers": self.related("/brokers"),
            "broker_configs": self.related("/broker-configs"),
            "consumer_groups": self.related("/consumer-groups"),
            "topics": self.related("/topics"),
            "partition_reassignments": self.related("/topics/-/partitions/-/reassignment"),
        })
    }

    /// Every live broker (this node, and in a cluster each peer heard from recently).
    fn brokers(&self) -> Vec<Value> {
        self.node
            .brokers()
            .into_iter()
            .map(|(id, host, port)| self.broker(id, &host, port))
            .collect()
    }

    /// Live broker `raw` (a path segment), 404 otherwise.
    fn find_broker(&self, raw: &str) -> Result<Value, ApiError> {
        let id = path_id("broker_id", raw)?;
        self.node
            .brokers()
            .into_iter()
            .find(|(b, _, _)| *b == id)
            .map(|(id, host, port)| self.broker(id, &host, port))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    BROKER_NOT_FOUND,
                    format!("Broker {id} cannot be found."),
                )
            })
    }

    fn broker(&self, node_id: i32, host: &str, port: u16) -> Value {
        json!({
            "kind": "KafkaBroker",
            "metadata": self.metadata(&format!("/brokers/{node_id}"), &format!("/broker={node_id}")),
            "cluster_id": self.id(),
            "broker_id": node_id,
            "host": host,
            "port": port,
            "rack": null,
            "configs": self.related(&format!("/brokers/{node_id}/configs")),
            "partition_replicas": self.related(&format!("/brokers/{node_id}/partition-replicas")),
        })
    }

    /// Broker `raw` (a path segment), which must be this node (404 otherwise): the routes
    /// about a broker's own state (its configs, its replicas) answer for this node only.
    fn check_broker(&self, raw: &str) -> Result<i32, ApiError> {
        let id = path_id("broker_id", raw)?;
        if id != self.node.config.node_id {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                BROKER_NOT_FOUND,
                format!("Broker {id} cannot be found."),
            ));
        }
        Ok(id)
    }
}

fn ok(body: &Value) -> Response {
    json_response(StatusCode::OK, JSON, body)
}

/// Refuses query parameters the route does not take.
fn no_params(query: &Option<String>) -> Result<(), ApiError> {
    Params::parse(query.as_deref(), &[]).map(|_| ())
}

async fn list_clusters(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let node = state.node()?;
    let cluster = Cluster::open(&state, &headers, &node.cluster_id)?;
    let list = json!({
        "kind": "KafkaClusterList",
        "metadata": { "self": format!("{}/v3/clusters", base_url(&headers)), "next": null },
        "data": [cluster.cluster()],
    });
    Ok(ok(&list))
}

async fn get_cluster(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams((cluster_id,)): PathParams<(String,)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let cluster = Cluster::open(&state, &headers, &cluster_id)?;
    Ok(ok(&cluster.cluster()))
}

async fn list_brokers(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams((cluster_id,)): PathParams<(String,)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let cluster = Cluster::open(&state, &headers, &cluster_id)?;
    Ok(ok(&cluster.list(
        "KafkaBrokerList",
        "/brokers",
        cluster.brokers(),
    )))
}

async fn get_broker(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams((cluster_id, broker_id)): PathParams<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let cluster = Cluster::open(&state, &headers, &cluster_id)?;
    Ok(ok(&cluster.find_broker(&broker_id)?))
}
