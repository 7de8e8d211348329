//! Request handlers: one module per group of APIs. Each takes the decoded request and
//! returns the response body; errors become Kafka error codes in the body (a handler never
//! fails the connection).

mod admin;
#[cfg(test)]
mod compat_tests;
mod fetch;
mod metadata;
mod offsets;
mod produce;

use std::sync::Arc;

use cairn_partition::{PartitionHandle, PartitionState};
use cairn_protocol::kafka_protocol::messages::{RequestKind, ResponseKind, TopicName};
use cairn_protocol::kafka_protocol::protocol::StrBytes;
use cairn_protocol::{api_versions_response, ErrorCode, Request};

use crate::server::Ctx;
use crate::topics::Topic;

/// Answers one request; `None` for requests that get no response (Produce with acks=0).
pub(crate) async fn handle(ctx: Arc<Ctx>, request: Request) -> Option<ResponseKind> {
    let v = request.api_version;
    tracing::trace!(api = ?request.api_key, version = v, correlation_id = request.correlation_id, "request");
    Some(match request.body {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(api_versions_response(v)),
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata::metadata(&ctx, v, r).await),
        RequestKind::Produce(r) => {
            return produce::produce(&ctx, v, r)
                .await
                .map(ResponseKind::Produce)
        }
        RequestKind::Fetch(r) => ResponseKind::Fetch(fetch::fetch(&ctx, v, r).await),
        RequestKind::ListOffsets(r) => {
            ResponseKind::ListOffsets(offsets::list_offsets(&ctx, v, r).await)
        }
        RequestKind::OffsetForLeaderEpoch(r) => {
            ResponseKind::OffsetForLeaderEpoch(offsets::offset_for_leader_epoch(&ctx, r).await)
        }
        RequestKind::DeleteRecords(r) => {
            ResponseKind::DeleteRecords(offsets::delete_records(&ctx, r).await)
        }
        RequestKind::CreateTopics(r) => {
            ResponseKind::CreateTopics(admin::create_topics(&ctx, v, r).await)
        }
        RequestKind::DeleteTopics(r) => {
            ResponseKind::DeleteTopics(admin::delete_topics(&ctx, v, r).await)
        }
        RequestKind::CreatePartitions(r) => {
            ResponseKind::CreatePartitions(admin::create_partitions(&ctx, r).await)
        }
        RequestKind::DescribeConfigs(r) => {
            ResponseKind::DescribeConfigs(admin::describe_configs(&ctx, v, r))
        }
        RequestKind::IncrementalAlterConfigs(r) => {
            ResponseKind::IncrementalAlterConfigs(admin::incremental_alter_configs(&ctx, r).await)
        }
        RequestKind::InitProducerId(r) => {
            ResponseKind::InitProducerId(admin::init_producer_id(&ctx, r))
        }
        RequestKind::DescribeCluster(r) => {
            ResponseKind::DescribeCluster(admin::describe_cluster(&ctx, v, r))
        }
        other => {
            // parse_request only yields the APIs in the version table, each handled above.
            tracing::error!(request = ?std::mem::discriminant(&other), "no handler for a supported API");
            return None;
        }
    })
}

pub(crate) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

pub(crate) fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

/// Kafka's leader-epoch fencing (KIP-320): a client that names an epoch must name ours.
/// `-1` means the client does not check.
pub(crate) fn check_leader_epoch(client_epoch: i32, state: &PartitionState) -> Option<ErrorCode> {
    if client_epoch < 0 || client_epoch == state.leader_epoch {
        None
    } else if client_epoch < state.leader_epoch {
        Some(ErrorCode::FencedLeaderEpoch)
    } else {
        Some(ErrorCode::UnknownLeaderEpoch)
    }
}

/// The partition `index` of `topic`, or the error a client gets for it.
pub(crate) fn partition(
    ctx: &Ctx,
    topic: &str,
    index: i32,
) -> Result<(Arc<Topic>, PartitionHandle), ErrorCode> {
    let t = ctx
        .topics
        .get(topic)
        .ok_or(ErrorCode::UnknownTopicOrPartition)?;
    let p = usize::try_from(index)
        .ok()
        .and_then(|i| t.partitions.get(i))
        .cloned()
        .ok_or(ErrorCode::UnknownTopicOrPartition)?;
    Ok((t, p))
}
