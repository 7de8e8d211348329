//! Topics, partitions, replicas and DeleteRecords, in REST Proxy v3's shapes.
//!
//! ```text
//! GET    /v3/clusters/{c}/topics                                  KafkaTopicList
//! POST   /v3/clusters/{c}/topics                                  201 KafkaTopic (200 with validate_only)
//! GET    /v3/clusters/{c}/topics/{t}                              KafkaTopic
//! PATCH  /v3/clusters/{c}/topics/{t}        {"partitions_count"}  KafkaTopic
//! DELETE /v3/clusters/{c}/topics/{t}                              204
//! GET    /v3/clusters/{c}/topics/{t}/partitions                   KafkaPartitionList
//! GET    /v3/clusters/{c}/topics/{t}/partitions/{p}               KafkaPartition
//! GET    /v3/clusters/{c}/topics/{t}/partitions/{p}/replicas      KafkaReplicaList
//! GET    /v3/clusters/{c}/topics/{t}/partitions/{p}/replicas/{b}  KafkaReplica
//! POST   /v3/clusters/{c}/topics/{t}/partitions/{p}/records:delete {"before_offset"}
//!                                                                 KafkaDeletedRecords
//! ```
//!
//! REST Proxy v3 has no DeleteRecords route; Cairn's takes Kafka's DeleteRecords offset
//! (`-1`: the high watermark) and answers the new log start (`low_watermark`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{no_params, ok, Cluster, JSON};
use crate::http::body::{json_response, path_id, JsonBody, Params, PathParams};
use crate::http::error::ApiError;
use crate::http::HttpState;
use crate::node::topics::{NewTopic, PartitionDetail};
use crate::node::{Node, NodeError};
use crate::topics::Topic;

pub(super) fn routes() -> Router<Arc<HttpState>> {
    let p = "/v3/clusters/{cluster_id}/topics";
    Router::new()
        .route(p, get(list_topics).post(create_topic))
        .route(
            &format!("{p}/{{topic_name}}"),
            get(get_topic).patch(update_partitions).delete(delete_topic),
        )
        .route(
            &format!("{p}/{{topic_name}}/partitions"),
            get(list_partitions),
        )
        .route(
            &format!("{p}/{{topic_name}}/partitions/{{partition_id}}"),
            get(get_partition),
        )
        .route(
            &format!("{p}/{{topic_name}}/partitions/{{partition_id}}/replicas"),
            get(list_replicas),
        )
        .route(
            &format!("{p}/{{topic_name}}/partitions/{{partition_id}}/replicas/{{broker_id}}"),
            get(get_replica),
        )
        .route(
            &format!("{p}/{{topic_name}}/partitions/{{partition_id}}/records:delete"),
            post(delete_records),
        )
}

/// Kafka's ACL operations a client may use on a topic with no authorizer configured.
const TOPIC_OPERATIONS: [&str; 8] = [
    "READ",
    "WRITE",
    "CREATE",
    "DELETE",
    "ALTER",
    "DESCRIBE",
    "DESCRIBE_CONFIGS",
    "ALTER_CONFIGS",
];

impl Cluster {
    fn topic(&self, t: &Topic, with_operations: bool) -> Value {
        let name = &t.name;
        let mut v = json!({
            "kind": "KafkaTopic",
            "metadata": self.metadata(&format!("/topics/{name}"), &format!("/topic={name}")),
            "cluster_id": self.id(),
            "topic_name": name,
            "topic_id": t.id.to_string(),
            "is_internal": Node::is_internal(name),
            "replication_factor": 1,
            "partitions_count": t.partitions.len(),
            "partitions": self.related(&format!("/topics/{name}/partitions")),
            "configs": self.related(&format!("/topics/{name}/configs")),
            "partition_reassignments": self.related(&format!("/topics/{name}/partitions/-/reassignment")),
        });
        if with_operations {
            v["authorized_operations"] = json!(TOPIC_OPERATIONS);
        }
        v
    }

    fn partition(&self, topic: &str, d: &PartitionDetail) -> Value {
        let v = &d.view;
        let p = v.partition;
        let path = format!("/topics/{topic}/partitions/{p}");
        json!({
            "kind": "KafkaPartition",
            "metadata": self.metadata(&path, &format!("/topic={topic}/partition={p}")),
            "cluster_id": self.id(),
            "topic_name": topic,
            "partition_id": p,
            "leader": v.leader.map(|l| self.related(&format!("{path}/replicas/{l}"))),
            "replicas": self.related(&format!("{path}/replicas")),
            "reassignment": self.related(&format!("{path}/reassignment")),
            "leader_id": v.leader,
            "leader_epoch": v.leader_epoch,
            "replica_ids": v.replicas,
            "isr_ids": v.isr,
            "log_start_offset": v.log_start_offset,
            "high_watermark": v.high_watermark,
            "log_end_offset": v.log_end_offset,
            "size_bytes": d.size_bytes,
            "cleaner": d.cleaner.as_ref().map(crate::node::topics::cleaner_json),
        })
    }

    fn replica(&self, topic: &str, d: &PartitionDetail, broker: i32) -> Value {
        let p = d.view.partition;
        let path = format!("/topics/{topic}/partitions/{p}/replicas/{broker}");
        json!({
            "kind": "KafkaReplica",
            "metadata": self.metadata(&path, &format!("/topic={topic}/partition={p}/replica={broker}")),
            "cluster_id": self.id(),
            "topic_name": topic,
            "partition_id": p,
            "broker_id": broker,
            "is_leader": d.view.leader == Some(broker),
            "is_in_sync": d.view.isr.contains(&broker),
            "broker": self.related(&format!("/brokers/{broker}")),
        })
    }

    /// Partition `raw` of topic `name`, described.
    async fn partition_detail(&self, name: &str, raw: &str) -> Result<PartitionDetail, ApiError> {
        let index = path_id("partition_id", raw)?;
        let topic = self.node.topic(name)?;
        let handle = usize::try_from(index)
            .ok()
            .and_then(|i| topic.partitions.get(i))
            .ok_or_else(|| NodeError::UnknownPartition {
                topic: name.to_string(),
                partition: index,
            })?;
        let stats = handle.log_stats().await.ok();
        Ok(PartitionDetail {
            view: self.node.partition_view(topic.id, index as usize, handle),
            size_bytes: stats.map(|s| s.size_bytes),
            cleaner: stats.and_then(|s| s.cleaner),
            leader_changes: handle.state().leader_changes,
        })
    }
}

/// `include_authorized_operations`, the one query parameter of the topic routes.
fn operations_param(query: &Option<String>) -> Result<bool, ApiError> {
    let params = Params::parse(query.as_deref(), &["include_authorized_operations"])?;
    Ok(params
        .bool("include_authorized_operations")?
        .unwrap_or(false))
}

async fn list_topics(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams((cluster_id,)): PathParams<(String,)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let with_operations = operations_param(&query)?;
    let cluster = Cluster::open(&state, &headers, &cluster_id)?;
    let data = cluster
        .node
        .topics
        .list()
        .iter()
        .map(|t| cluster.topic(t, with_operations))
        .collect();
    Ok(ok(&cluster.list("KafkaTopicList", "/topics", data)))
}

/// REST Proxy v3's `CreateTopicRequestData`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTopic {
    topic_name: String,
    partitions_count: Option<i32>,
    replication_factor: Option<i32>,
    /// Partition id (a string, JSON keys are) to broker ids.
    replicas_assignments: Option<BTreeMap<String, Vec<i32>>>,
    #[serde(default)]
    configs: Vec<ConfigPair>,
    #[serde(default)]
    validate_only: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigPair {
    name: String,
    value: Option<String>,
}

async fn create_topic(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams((cluster_id,)): PathParams<(String,)>,
    RawQuery(query): RawQuery,
    JsonBody(body): JsonBody<CreateTopic>,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let cluster = Cluster::open(&state, &headers, &cluster_id)?;
    let mut assignments = Vec::new();
    for (partition, brokers) in body.replicas_assignments.unwrap_or_default() {
        let index = partition
            .parse::<i32>()
            .ok()
            .filter(|p| *p >= 0)
            .ok_or_else(|| {
                ApiError::bad_field(
                    &format!("replicas_assignments.{partition}"),
                    "the key must be a partition id (a non-negative integer)",
                )
            })?;
        assignments.push((index, brokers));
    }
    assignments.sort_by_key(|(p, _)| *p);
    let new = NewTopic {
        name: body.topic_name.clone(),
        partitions: body.partitions_count.unwrap_or(-1),
        replication_factor: body.replication_factor.unwrap_or(-1),
        assignments,
        configs: body
            .configs
            .into_iter()
            .map(|c| (c.name, c.value))
            .collect(),
    };
    let created = cluster.node.create_topic(&new, body.validate_only).await?;
    if body.validate_only {
        // Nothing was created: describe what would be.
        let name = &body.topic_name;
        let v = json!({
            "kind": "KafkaTopic",
            "metadata": cluster.metadata(&format!("/topics/{name}"), &format!("/topic={name}")),
            "cluster_id": cluster.id(),
            "topic_name": name,
            "is_internal": false,
            "replication_factor": 1,
            "partitions_count": created.partitions,
            "partitions": cluster.related(&format!("/topics/{name}/partitions")),
            "configs": cluster.related(&format!("/topics/{name}/configs")),
            "partition_reassignments": cluster.related(&format!("/topics/{name}/partitions/-/reassignment")),
        });
        return Ok(ok(&v));
    }
    let topic = cluster.node.topic(&body.topic_name)?;
    Ok(json_response(
        StatusCode::CREATED,
        JSON,
        &cluster.topic(&topic, false),
    ))
}

async fn get_topic(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams((cluster_id, topic)): PathParams<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let with_operations = operations_param(&query)?;
    let cluster = Cluster::open(&state, &headers, &cluster_id)?;
    let topic = cluster.node.topic(&topic)?;
    Ok(ok(&cluster.topic(&topic, with_operations)))
}

/// REST Proxy v3's `UpdatePartitionCountRequestData`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdatePartitions {
    partitions_count: i32,
}

async fn update_partitions(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams((cluster_id, topic)): PathParams<(String, String)>,
    RawQuery(query): RawQuery,
    JsonBody(body): JsonBody<UpdatePartitions>,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let cluster = Cluster::open(&state, &headers, &cluster_id)?;
    cluster
        .node
        .add_partitions(&topic, body.partitions_count, &[], false)
        .await?;
    let topic = cluster.node.topic(&topic)?;
    Ok(ok(&cluster.topic(&topic, false)))
}

async fn delete_topic(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams((cluster_id, topic)): PathParams<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let cluster = Cluster::open(&state, &headers, &cluster_id)?;
    cluster.node.delete_topic(&topic).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_partitions(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams((cluster_id, topic)): PathParams<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let cluster = Cluster::open(&state, &headers, &cluster_id)?;
    let t = cluster.node.topic(&topic)?;
    let data = cluster
        .node
        .partition_details(&t)
        .await
        .iter()
        .map(|d| cluster.partition(&topic, d))
        .collect();
    Ok(ok(&cluster.list(
        "KafkaPartitionList",
        &format!("/topics/{topic}/partitions"),
        data,
    )))
}

async fn get_partition(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams((cluster_id, topic, partition)): PathParams<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let cluster = Cluster::open(&state, &headers, &cluster_id)?;
    let d = cluster.partition_detail(&topic, &partition).await?;
    Ok(ok(&cluster.partition(&topic, &d)))
}

async fn list_replicas(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams((cluster_id, topic, partition)): PathParams<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let cluster = Cluster::open(&state, &headers, &cluster_id)?;
    let d = cluster.partition_detail(&topic, &partition).await?;
    let data = d
        .view
        .replicas
        .iter()
        .map(|b| cluster.replica(&topic, &d, *b))
        .collect();
    let path = format!("/topics/{topic}/partitions/{}/replicas", d.view.partition);
    Ok(ok(&cluster.list("KafkaReplicaList", &path, data)))
}

async fn get_replica(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams((cluster_id, topic, partition, broker)): PathParams<(
        String,
        String,
        String,
        String,
    )>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let cluster = Cluster::open(&state, &headers, &cluster_id)?;
    let d = cluster.partition_detail(&topic, &partition).await?;
    let broker = cluster.check_broker(&broker)?;
    Ok(ok(&cluster.replica(&topic, &d, broker)))
}

/// The body of `records:delete`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteRecords {
    /// Records below this offset go; `-1` means up to the high watermark (Kafka's rule).
    before_offset: i64,
}

async fn delete_records(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams((cluster_id, topic, partition)): PathParams<(String, String, String)>,
    RawQuery(query): RawQuery,
    JsonBody(body): JsonBody<DeleteRecords>,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let cluster = Cluster::open(&state, &headers, &cluster_id)?;
    let index = path_id("partition_id", &partition)?;
    let before = match body.before_offset {
        -1 => None,
        o if o >= 0 => Some(o as u64),
        o => {
            return Err(ApiError::bad_field(
                "before_offset",
                format!("{o}: must be an offset, or -1 for the high watermark"),
            ))
        }
    };
    let low = cluster.node.delete_records(&topic, index, before).await?;
    let path = format!("/topics/{topic}/partitions/{index}");
    Ok(ok(&json!({
        "kind": "KafkaDeletedRecords",
        "metadata": cluster.metadata(&format!("{path}/records:delete"), &format!("/topic={topic}/partition={index}")),
        "cluster_id": cluster.id(),
        "topic_name": topic,
        "partition_id": index,
        "low_watermark": low,
        "partition": cluster.related(&path),
    })))
}
