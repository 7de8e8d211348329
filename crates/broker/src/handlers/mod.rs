//! Request handlers: one module per group of APIs. Each takes the decoded request and
//! returns the response body; errors become Kafka error codes in the body (a handler never
//! fails the connection).

mod admin;
#[cfg(test)]
mod compat_tests;
#[cfg(test)]
mod config_tests;
mod configs;
mod fetch;
pub(crate) mod groups;
mod log_dirs;
mod metadata;
mod offsets;
pub(crate) mod produce;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use cairn_partition::PartitionState;
use cairn_protocol::kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind, TopicName};
use cairn_protocol::kafka_protocol::protocol::StrBytes;
use cairn_protocol::{api_versions_response, ErrorCode, Request};

use crate::node::Node;

/// What the requests of one connection share.
#[derive(Debug)]
pub(crate) struct Conn {
    /// The client's address.
    pub(crate) peer: SocketAddr,
    /// Partitions its last fetch left out, which its next fetch reads first.
    pub(crate) fetch_left_out: fetch::LeftOut,
}

impl Conn {
    pub(crate) fn new(peer: SocketAddr) -> Arc<Conn> {
        Arc::new(Conn {
            peer,
            fetch_left_out: fetch::LeftOut::default(),
        })
    }
}

/// The rest of a request's work once [`dispatch`] returned; `None` for no response.
pub(crate) type Work = Pin<Box<dyn Future<Output = Option<ResponseKind>> + Send>>;

/// Starts a request, in request order: what must happen in the order the connection sent
/// requests (queuing produced batches on their partitions) happens before this returns; the
/// returned work (waiting for acknowledgements, long-polling) may overlap other requests'.
pub(crate) async fn dispatch(ctx: Arc<Node>, conn: Arc<Conn>, request: Request) -> Work {
    if let RequestKind::Produce(r) = request.body {
        let enqueued = produce::enqueue(&ctx, request.api_version, r).await;
        return Box::pin(async move { enqueued.finish(&ctx).await.map(ResponseKind::Produce) });
    }
    Box::pin(handle(ctx, conn, request))
}

/// Whether a request changes state, so that it must take effect in the order its connection
/// sent it, after the state changes sent before it (Kafka handles a connection's requests one
/// at a time). Two pipelined OffsetCommits applied out of order lost the later commit.
/// Produce is not listed: the reader queues its batches on their partitions in order.
pub(crate) fn changes_state(key: ApiKey) -> bool {
    matches!(
        key,
        ApiKey::OffsetCommit
            | ApiKey::JoinGroup
            | ApiKey::SyncGroup
            | ApiKey::Heartbeat
            | ApiKey::LeaveGroup
            | ApiKey::DeleteGroups
            | ApiKey::OffsetDelete
            | ApiKey::CreateTopics
            | ApiKey::DeleteTopics
            | ApiKey::CreatePartitions
            | ApiKey::AlterConfigs
            | ApiKey::IncrementalAlterConfigs
            | ApiKey::DeleteRecords
            | ApiKey::InitProducerId
    )
}

/// Answers one request of connection `conn`; `None` for requests that get no response
/// (Produce with acks=0).
pub(crate) async fn handle(
    ctx: Arc<Node>,
    conn: Arc<Conn>,
    request: Request,
) -> Option<ResponseKind> {
    let v = request.api_version;
    let legacy = request.legacy.as_ref();
    let client = || groups::Client {
        client_id: request.client_id.clone().unwrap_or_default(),
        peer: conn.peer,
    };
    tracing::trace!(api = ?request.api_key, version = v, correlation_id = request.correlation_id, "request");
    Some(match request.body {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(api_versions_response(v)),
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata::metadata(&ctx, v, r).await),
        RequestKind::Produce(r) => {
            return produce::enqueue(&ctx, v, r)
                .await
                .finish(&ctx)
                .await
                .map(ResponseKind::Produce)
        }
        RequestKind::Fetch(r) => {
            ResponseKind::Fetch(fetch::fetch(&ctx, &conn.fetch_left_out, v, r).await)
        }
        RequestKind::ListOffsets(r) => {
            ResponseKind::ListOffsets(offsets::list_offsets(&ctx, v, r, legacy).await)
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
            ResponseKind::DescribeConfigs(configs::describe_configs(&ctx, v, r))
        }
        RequestKind::AlterConfigs(r) => {
            ResponseKind::AlterConfigs(configs::alter_configs(&ctx, r).await)
        }
        RequestKind::IncrementalAlterConfigs(r) => {
            ResponseKind::IncrementalAlterConfigs(configs::incremental_alter_configs(&ctx, r).await)
        }
        RequestKind::DescribeLogDirs(r) => {
            ResponseKind::DescribeLogDirs(log_dirs::describe_log_dirs(&ctx, r).await)
        }
        RequestKind::InitProducerId(r) => {
            ResponseKind::InitProducerId(admin::init_producer_id(&ctx, r))
        }
        RequestKind::DescribeCluster(r) => {
            ResponseKind::DescribeCluster(admin::describe_cluster(&ctx, v, r))
        }
        RequestKind::FindCoordinator(r) => {
            ResponseKind::FindCoordinator(groups::find_coordinator(&ctx, v, r).await)
        }
        RequestKind::JoinGroup(r) => {
            let client = client();
            ResponseKind::JoinGroup(groups::join_group(&ctx, v, &client, r).await)
        }
        RequestKind::SyncGroup(r) => ResponseKind::SyncGroup(groups::sync_group(&ctx, r).await),
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(groups::heartbeat(&ctx, r)),
        RequestKind::LeaveGroup(r) => ResponseKind::LeaveGroup(groups::leave_group(&ctx, v, r)),
        RequestKind::OffsetCommit(r) => {
            ResponseKind::OffsetCommit(groups::offset_commit(&ctx, v, r, legacy).await)
        }
        RequestKind::OffsetFetch(r) => ResponseKind::OffsetFetch(groups::offset_fetch(&ctx, v, r)),
        RequestKind::ListGroups(r) => ResponseKind::ListGroups(groups::list_groups(&ctx, r)),
        RequestKind::DescribeGroups(r) => {
            ResponseKind::DescribeGroups(groups::describe_groups(&ctx, r))
        }
        RequestKind::DeleteGroups(r) => {
            ResponseKind::DeleteGroups(groups::delete_groups(&ctx, r).await)
        }
        RequestKind::OffsetDelete(r) => {
            ResponseKind::OffsetDelete(groups::offset_delete(&ctx, r).await)
        }
        other => {
            // parse_request only yields the APIs in the version table, each handled above.
            tracing::error!(request = ?std::mem::discriminant(&other), "no handler for a supported API");
            return None;
        }
    })
}

/// Kafka's ACL operation codes (`AclOperation`), as bits of an "authorized operations" field.
const fn operations(codes: &[u8]) -> i32 {
    let mut bits = 0i32;
    let mut i = 0;
    while i < codes.len() {
        bits |= 1 << codes[i];
        i += 1;
    }
    bits
}

/// What a client may do with a topic when no authorizer is configured (Kafka's answer):
/// READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8, DESCRIBE_CONFIGS 10,
/// ALTER_CONFIGS 11.
pub(crate) const TOPIC_OPERATIONS: i32 = operations(&[3, 4, 5, 6, 7, 8, 10, 11]);
/// Likewise for the cluster: CREATE 5, ALTER 7, DESCRIBE 8, CLUSTER_ACTION 9,
/// DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12.
pub(crate) const CLUSTER_OPERATIONS: i32 = operations(&[5, 7, 8, 9, 10, 11, 12]);

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
