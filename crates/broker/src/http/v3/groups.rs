//! Consumer groups in REST Proxy v3's shapes.
//!
//! ```text
//! GET    /v3/clusters/{c}/consumer-groups                              KafkaConsumerGroupList
//! GET    /v3/clusters/{c}/consumer-groups/{g}                          KafkaConsumerGroup
//! DELETE /v3/clusters/{c}/consumer-groups/{g}                          204 (409 while it has members)
//! GET    /v3/clusters/{c}/consumer-groups/{g}/consumers                KafkaConsumerList
//! GET    /v3/clusters/{c}/consumer-groups/{g}/consumers/{m}            KafkaConsumer
//! GET    /v3/clusters/{c}/consumer-groups/{g}/consumers/{m}/assignments  KafkaConsumerAssignmentList
//! GET    /v3/clusters/{c}/consumer-groups/{g}/lags                     KafkaConsumerLagList
//! GET    /v3/clusters/{c}/consumer-groups/{g}/lags/{t}/partitions/{p}  KafkaConsumerLag
//! GET    /v3/clusters/{c}/consumer-groups/{g}/lag-summary              KafkaConsumerGroupLagSummary
//! ```
//!
//! A lag is listed for every partition the group has committed an offset for (as REST
//! Proxy's): `current_offset` is the committed offset, `log_end_offset` the partition's high
//! watermark, `lag` their difference (never below 0), `consumer_id` the member assigned the
//! partition ("" if none). Assignments are read from the members' consumer-protocol
//! assignments, which Kafka shows only while the group is Stable.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use cairn_groups::GroupState;
use serde_json::{json, Value};

use super::{no_params, ok, Cluster};
use crate::http::body::{path_id, segment, PathParams};
use crate::http::error::ApiError;
use crate::http::HttpState;
use crate::node::groups::{GroupDetail, MemberDetail, PartitionLag};
use crate::node::NodeError;

pub(super) fn routes() -> Router<Arc<HttpState>> {
    let g = "/v3/clusters/{cluster_id}/consumer-groups";
    Router::new()
        .route(g, get(list_groups))
        .route(
            &format!("{g}/{{group_id}}"),
            get(get_group).delete(delete_group),
        )
        .route(&format!("{g}/{{group_id}}/consumers"), get(list_consumers))
        .route(
            &format!("{g}/{{group_id}}/consumers/{{consumer_id}}"),
            get(get_consumer),
        )
        .route(
            &format!("{g}/{{group_id}}/consumers/{{consumer_id}}/assignments"),
            get(list_assignments),
        )
        .route(&format!("{g}/{{group_id}}/lags"), get(list_lags))
        .route(
            &format!("{g}/{{group_id}}/lags/{{topic_name}}/partitions/{{partition_id}}"),
            get(get_lag),
        )
        .route(&format!("{g}/{{group_id}}/lag-summary"), get(lag_summary))
}

/// REST Proxy's names of the classic group states.
fn state_name(state: GroupState) -> &'static str {
    match state {
        GroupState::Empty => "EMPTY",
        GroupState::PreparingRebalance => "PREPARING_REBALANCE",
        GroupState::CompletingRebalance => "COMPLETING_REBALANCE",
        GroupState::Stable => "STABLE",
        GroupState::Dead => "DEAD",
    }
}

fn group_path(group: &str) -> String {
    format!("/consumer-groups/{}", segment(group))
}

impl Cluster {
    fn group(&self, g: &GroupDetail) -> Value {
        let id = &g.description.group_id;
        let path = group_path(id);
        let node_id = self.node.config.node_id;
        json!({
            "kind": "KafkaConsumerGroup",
            "metadata": self.metadata(&path, &format!("/consumer-group={id}")),
            "cluster_id": self.id(),
            "consumer_group_id": id,
            "is_simple": g.is_simple(),
            "partition_assignor": g.description.protocol_name.clone().unwrap_or_default(),
            "state": state_name(g.description.state),
            "type": "CLASSIC",
            "is_mixed_consumer_group": false,
            "coordinator": self.related(&format!("/brokers/{node_id}")),
            "consumers": self.related(&format!("{path}/consumers")),
            "lag_summary": self.related(&format!("{path}/lag-summary")),
        })
    }

    fn consumer(&self, group: &str, m: &MemberDetail) -> Value {
        let member = &m.member;
        let path = format!(
            "{}/consumers/{}",
            group_path(group),
            segment(&member.member_id)
        );
        json!({
            "kind": "KafkaConsumer",
            "metadata": self.metadata(&path, &format!("/consumer-group={group}/consumer={}", member.member_id)),
            "cluster_id": self.id(),
            "consumer_group_id": group,
            "consumer_id": member.member_id,
            "instance_id": member.group_instance_id,
            "client_id": member.client_id,
            "client_host": member.client_host,
            "assignments": self.related(&format!("{path}/assignments")),
        })
    }

    fn assignment(&self, group: &str, member: &str, topic: &str, partition: i32) -> Value {
        let path = format!(
            "{}/consumers/{}/assignments/{topic}/partitions/{partition}",
            group_path(group),
            segment(member)
        );
        json!({
            "kind": "KafkaConsumerAssignment",
            "metadata": self.metadata(&path, &format!(
                "/consumer-group={group}/consumer={member}/assignment={topic}/partition={partition}"
            )),
            "cluster_id": self.id(),
            "consumer_group_id": group,
            "consumer_id": member,
            "topic_name": topic,
            "partition_id": partition,
            "partition": self.related(&format!("/topics/{topic}/partitions/{partition}")),
            "lag": self.related(&format!("{}/lags/{topic}/partitions/{partition}", group_path(group))),
        })
    }

    fn lag(&self, g: &GroupDetail, lag: &PartitionLag) -> Value {
        let group = &g.description.group_id;
        let (topic, partition) = (&lag.topic, lag.partition);
        let member = lag.member_id.as_deref().and_then(|m| g.member(m));
        json!({
            "kind": "KafkaConsumerLag",
            "metadata": self.metadata(
                &format!("{}/lags/{topic}/partitions/{partition}", group_path(group)),
                &format!("/consumer-group={group}/lag={topic}/partition={partition}"),
            ),
            "cluster_id": self.id(),
            "consumer_group_id": group,
            "topic_name": topic,
            "partition_id": partition,
            "current_offset": lag.committed_offset,
            "log_end_offset": lag.log_end_offset,
            "lag": lag.lag,
            "consumer_id": lag.member_id.clone().unwrap_or_default(),
            "instance_id": member.and_then(|m| m.member.group_instance_id.clone()),
            "client_id": member.map(|m| m.member.client_id.clone()).unwrap_or_default(),
        })
    }

    fn member<'a>(
        &self,
        g: &'a GroupDetail,
        member_id: &str,
    ) -> Result<&'a MemberDetail, ApiError> {
        g.member(member_id).ok_or_else(|| {
            NodeError::UnknownMember {
                group: g.description.group_id.clone(),
                member: member_id.to_string(),
            }
            .into()
        })
    }
}

async fn list_groups(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams((cluster_id,)): PathParams<(String,)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let cluster = Cluster::open(&state, &headers, &cluster_id)?;
    let data = cluster
        .node
        .list_groups(&[])
        .iter()
        .filter_map(|listing| cluster.node.group(&listing.group_id).ok())
        .map(|g| cluster.group(&g))
        .collect();
    Ok(ok(&cluster.list(
        "KafkaConsumerGroupList",
        "/consumer-groups",
        data,
    )))
}

/// The cluster and group the path names.
fn open(
    state: &HttpState,
    headers: &HeaderMap,
    cluster_id: &str,
    group_id: &str,
) -> Result<(Cluster, GroupDetail), ApiError> {
    let cluster = Cluster::open(state, headers, cluster_id)?;
    let group = cluster.node.group(group_id)?;
    Ok((cluster, group))
}

async fn get_group(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams((cluster_id, group_id)): PathParams<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let (cluster, group) = open(&state, &headers, &cluster_id, &group_id)?;
    Ok(ok(&cluster.group(&group)))
}

async fn delete_group(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams((cluster_id, group_id)): PathParams<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let cluster = Cluster::open(&state, &headers, &cluster_id)?;
    cluster.node.delete_group(&group_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_consumers(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams((cluster_id, group_id)): PathParams<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let (cluster, group) = open(&state, &headers, &cluster_id, &group_id)?;
    let data = group
        .members
        .iter()
        .map(|m| cluster.consumer(&group_id, m))
        .collect();
    Ok(ok(&cluster.list(
        "KafkaConsumerList",
        &format!("{}/consumers", group_path(&group_id)),
        data,
    )))
}

async fn get_consumer(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams((cluster_id, group_id, member_id)): PathParams<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let (cluster, group) = open(&state, &headers, &cluster_id, &group_id)?;
    let member = cluster.member(&group, &member_id)?;
    Ok(ok(&cluster.consumer(&group_id, member)))
}

async fn list_assignments(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams((cluster_id, group_id, member_id)): PathParams<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let (cluster, group) = open(&state, &headers, &cluster_id, &group_id)?;
    let member = cluster.member(&group, &member_id)?;
    let data = member
        .assignment
        .iter()
        .map(|(t, p)| cluster.assignment(&group_id, &member_id, t, *p))
        .collect();
    Ok(ok(&cluster.list(
        "KafkaConsumerAssignmentList",
        &format!(
            "{}/consumers/{}/assignments",
            group_path(&group_id),
            segment(&member_id)
        ),
        data,
    )))
}

async fn list_lags(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams((cluster_id, group_id)): PathParams<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let (cluster, group) = open(&state, &headers, &cluster_id, &group_id)?;
    let data = group
        .offsets
        .iter()
        .map(|l| cluster.lag(&group, l))
        .collect();
    Ok(ok(&cluster.list(
        "KafkaConsumerLagList",
        &format!("{}/lags", group_path(&group_id)),
        data,
    )))
}

async fn get_lag(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams((cluster_id, group_id, topic, partition)): PathParams<(
        String,
        String,
        String,
        String,
    )>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let partition = path_id("partition_id", &partition)?;
    let (cluster, group) = open(&state, &headers, &cluster_id, &group_id)?;
    let Some(lag) = group
        .offsets
        .iter()
        .find(|l| l.topic == topic && l.partition == partition)
    else {
        cluster.node.find_partition(&topic, partition)?;
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            crate::http::error::PARTITION_NOT_FOUND,
            format!("consumer group {group_id} has no committed offset for {topic}-{partition}"),
        ));
    };
    Ok(ok(&cluster.lag(&group, lag)))
}

async fn lag_summary(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams((cluster_id, group_id)): PathParams<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let (cluster, group) = open(&state, &headers, &cluster_id, &group_id)?;
    let total: i64 = group.offsets.iter().filter_map(|l| l.lag).sum();
    // The first partition with the largest lag.
    let max =
        group
            .offsets
            .iter()
            .filter(|l| l.lag.is_some())
            .fold(None::<&PartitionLag>, |best, l| match best {
                Some(b) if b.lag >= l.lag => Some(b),
                _ => Some(l),
            });
    let path = group_path(&group_id);
    let member = max
        .and_then(|l| l.member_id.as_deref())
        .and_then(|m| group.member(m));
    let v = json!({
        "kind": "KafkaConsumerGroupLagSummary",
        "metadata": cluster.metadata(&format!("{path}/lag-summary"), &format!("/consumer-group={group_id}/lag-summary")),
        "cluster_id": cluster.id(),
        "consumer_group_id": group_id,
        "max_lag_consumer_id": max.and_then(|l| l.member_id.clone()).unwrap_or_default(),
        "max_lag_instance_id": member.and_then(|m| m.member.group_instance_id.clone()),
        "max_lag_client_id": member.map(|m| m.member.client_id.clone()).unwrap_or_default(),
        "max_lag_topic_name": max.map(|l| l.topic.clone()).unwrap_or_default(),
        "max_lag_partition_id": max.map_or(0, |l| l.partition),
        "max_lag": max.and_then(|l| l.lag).unwrap_or(0),
        "total_lag": total,
        "max_lag_consumer": max.and_then(|l| l.member_id.as_deref()).map(|m| cluster.related(&format!("{path}/consumers/{}", segment(m)))),
        "max_lag_partition": max.map(|l| cluster.related(&format!("/topics/{}/partitions/{}", l.topic, l.partition))),
    });
    Ok(ok(&v))
}
