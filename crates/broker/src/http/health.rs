//! `/livez`, `/readyz` and `/v1/status`: whether the process answers, whether the node
//! serves, and a JSON picture of the node for the console and for scripts.
//!
//! `/livez` is 200 as long as the process answers. `/readyz` is 200 once the node serves
//! (logs recovered, consumer groups loaded, the Kafka listener bound) and 503 before that
//! and while it stops. Neither waits for a request slot, so a busy node still answers its
//! probes.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};

use super::body::json_response;
use super::HttpState;
use crate::disk;
use crate::node::Node;

pub(crate) fn routes() -> Router<Arc<HttpState>> {
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/v1/status", get(status))
}

#[derive(Serialize)]
struct Probe {
    status: &'static str,
}

async fn livez() -> Response {
    json_response(
        StatusCode::OK,
        "application/json",
        &Probe { status: "live" },
    )
}

async fn readyz(State(state): State<Arc<HttpState>>) -> Response {
    match state.node() {
        Ok(_) => json_response(
            StatusCode::OK,
            "application/json",
            &Probe { status: "ready" },
        ),
        Err(e) => e.into_response(),
    }
}

#[derive(Serialize)]
struct Status {
    node_id: i32,
    cluster_id: String,
    version: &'static str,
    /// `host:port` Kafka clients are told to connect to.
    kafka_advertised: String,
    /// The controller's node id (`None`: no metadata quorum leader now).
    controller: Option<i32>,
    /// Live brokers as clients see them.
    brokers: Vec<BrokerStatus>,
    /// Partitions with fewer in-sync replicas than replicas, and without a leader.
    under_replicated_partitions: usize,
    offline_partitions: usize,
    disk: Disk,
    topics: Vec<TopicStatus>,
    groups: Vec<GroupStatus>,
}

#[derive(Serialize)]
struct BrokerStatus {
    node_id: i32,
    host: String,
    port: u16,
}

#[derive(Serialize)]
struct Disk {
    data_dir: String,
    total_bytes: Option<u64>,
    available_bytes: Option<u64>,
    /// `storage.min.free.bytes`.
    min_free_bytes: u64,
    /// Whether produces are refused for lack of space.
    full: bool,
}

#[derive(Serialize)]
struct TopicStatus {
    name: String,
    internal: bool,
    partitions_count: usize,
    size_bytes: u64,
    /// Records held: the sum over partitions of high watermark minus log start.
    records: u64,
    partitions: Vec<PartitionStatus>,
}

#[derive(Serialize)]
struct PartitionStatus {
    partition: i32,
    leader: Option<i32>,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    leader_epoch: i32,
    log_start_offset: u64,
    high_watermark: u64,
    log_end_offset: u64,
    size_bytes: Option<u64>,
    /// The log cleaner's state, for a compacted topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    cleaner: Option<serde_json::Value>,
}

/// A consumer group as `/v1/status` shows it; in a cluster, peers send theirs in this
/// shape too (JSON over the node-to-node transport).
#[derive(Serialize, Deserialize)]
pub(crate) struct GroupStatus {
    group_id: String,
    /// The node coordinating the group.
    #[serde(default)]
    coordinator: Option<i32>,
    state: String,
    protocol_type: String,
    members: usize,
    /// Sum of the partitions' lag.
    total_lag: i64,
    partitions: Vec<GroupPartition>,
}

#[derive(Serialize, Deserialize)]
struct GroupPartition {
    topic: String,
    partition: i32,
    committed_offset: i64,
    log_end_offset: Option<u64>,
    lag: Option<i64>,
}

async fn status(State(state): State<Arc<HttpState>>) -> Response {
    match state.node() {
        Ok(node) => json_response(StatusCode::OK, "application/json", &snapshot(node).await),
        Err(e) => e.into_response(),
    }
}

/// How long `/v1/status` waits for peers' group lists.
const PEER_GROUPS_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// The consumer groups this node coordinates.
fn local_groups(node: &Node) -> Vec<GroupStatus> {
    node.list_groups(&[])
        .into_iter()
        .filter_map(|listing| node.group(&listing.group_id).ok())
        .map(|g| GroupStatus {
            group_id: g.description.group_id.clone(),
            coordinator: Some(node.config.node_id),
            state: g.description.state.to_string(),
            protocol_type: g.description.protocol_type.clone(),
            members: g.members.len(),
            total_lag: g.offsets.iter().filter_map(|o| o.lag).sum(),
            partitions: g
                .offsets
                .into_iter()
                .map(|o| GroupPartition {
                    topic: o.topic,
                    partition: o.partition,
                    committed_offset: o.committed_offset,
                    log_end_offset: o.log_end_offset,
                    lag: o.lag,
                })
                .collect(),
        })
        .collect()
}

/// [`local_groups`] as JSON: what this node answers a peer asking for its groups.
pub(crate) fn local_groups_json(node: &Node) -> serde_json::Value {
    serde_json::to_value(local_groups(node))
        .unwrap_or_else(|_| serde_json::Value::Array(Vec::new()))
}

async fn snapshot(node: &Node) -> Status {
    let mut topics = Vec::new();
    for topic in node.topics.list() {
        let details = node.partition_details(&topic).await;
        topics.push(TopicStatus {
            name: topic.name.clone(),
            internal: Node::is_internal(&topic.name),
            partitions_count: details.len(),
            size_bytes: details.iter().filter_map(|d| d.size_bytes).sum(),
            records: details
                .iter()
                .map(|d| {
                    d.view
                        .high_watermark
                        .saturating_sub(d.view.log_start_offset)
                })
                .sum(),
            partitions: details
                .into_iter()
                .map(|d| PartitionStatus {
                    partition: d.view.partition,
                    leader: d.view.leader,
                    replicas: d.view.replicas.clone(),
                    isr: d.view.isr.clone(),
                    leader_epoch: d.view.leader_epoch,
                    log_start_offset: d.view.log_start_offset,
                    high_watermark: d.view.high_watermark,
                    log_end_offset: d.view.log_end_offset,
                    size_bytes: d.size_bytes,
                    cleaner: d.cleaner.as_ref().map(crate::node::topics::cleaner_json),
                })
                .collect(),
        });
    }
    let mut groups = local_groups(node);
    if let Some(cluster) = &node.cluster {
        // Each node coordinates the groups of the `__consumer_offsets` partitions it leads;
        // the others' come from them. While a coordinator moves two nodes may list a group:
        // this node's entry (first, the sort is stable) wins.
        groups.extend(
            cluster
                .peer_groups(PEER_GROUPS_WAIT)
                .await
                .into_iter()
                .filter_map(|g| serde_json::from_value::<GroupStatus>(g).ok()),
        );
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        groups.dedup_by(|later, first| later.group_id == first.group_id);
    }
    let space = disk::space_of(&node.config.data_dir).ok();
    let partitions = || topics.iter().flat_map(|t: &TopicStatus| &t.partitions);
    let under_replicated_partitions = partitions()
        .filter(|p| p.leader.is_some() && p.isr.len() < p.replicas.len())
        .count();
    let offline_partitions = partitions().filter(|p| p.leader.is_none()).count();
    Status {
        node_id: node.config.node_id,
        cluster_id: node.cluster_id.clone(),
        version: env!("CARGO_PKG_VERSION"),
        kafka_advertised: format!("{}:{}", node.config.advertise.0, node.config.advertise.1),
        controller: node.controller(),
        brokers: node
            .brokers()
            .into_iter()
            .map(|(node_id, host, port)| BrokerStatus {
                node_id,
                host,
                port,
            })
            .collect(),
        under_replicated_partitions,
        offline_partitions,
        disk: Disk {
            data_dir: node.config.data_dir.display().to_string(),
            total_bytes: space.map(|s| s.total),
            available_bytes: space.map(|s| s.available),
            min_free_bytes: node.config.storage_min_free_bytes,
            full: node.disk.full_reason().is_some(),
        },
        topics,
        groups,
    }
}
