//! FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
//! ListGroups, DescribeGroups, DeleteGroups and OffsetDelete: Kafka requests translated to
//! and from the coordinator (`crate::groups`). A single node coordinates every group; a node
//! of a cluster those of the offsets partitions it leads (`Groups::check`).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use cairn_groups::records::{OffsetValue, RecordKey};
use cairn_groups::{
    GroupError, GroupState, HeartbeatRequest as Heartbeat, JoinRequest, LeavingMember, Output,
    SyncRequest,
};
use cairn_protocol::kafka_protocol::messages::{
    delete_groups_response::DeletableGroupResult,
    describe_groups_response::{DescribedGroup, DescribedGroupMember},
    find_coordinator_response::Coordinator as CoordinatorEntry,
    join_group_response::JoinGroupResponseMember,
    leave_group_response::MemberResponse,
    list_groups_response::ListedGroup,
    offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic},
    offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic},
    offset_fetch_response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
        OffsetFetchResponseTopic, OffsetFetchResponseTopics,
    },
    BrokerId, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse, GroupId,
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest,
    OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse,
};
use cairn_protocol::ErrorCode;

use crate::groups::{self, encoded, sb, wall_ms, OFFSETS_TOPIC};
use crate::handlers::topic_name;
use crate::node::Node;

/// Kafka's ACL operations on a group with no authorizer: READ 3, DELETE 6, DESCRIBE 8.
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

fn code(e: &GroupError) -> i16 {
    e.code()
}

fn group_name(g: &GroupId) -> &str {
    g.0.as_str()
}

/// The requesting connection, as the group APIs report it.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub(crate) client_id: String,
    pub(crate) peer: SocketAddr,
}

impl Client {
    fn host(&self) -> String {
        // Kafka reports "/<ip>".
        format!("/{}", self.peer.ip())
    }
}

pub(crate) async fn find_coordinator(
    ctx: &Node,
    version: i16,
    r: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let keys: Vec<String> = if version >= 4 {
        r.coordinator_keys
            .iter()
            .map(|k| k.as_str().to_string())
            .collect()
    } else {
        vec![r.key.as_str().to_string()]
    };
    let mut coordinators = Vec::with_capacity(keys.len());
    for key in keys {
        // key_type 0 = group, 1 = transaction (transactions are not served yet).
        let error = if r.key_type != 0 {
            Some((
                ErrorCode::CoordinatorNotAvailable,
                "transactions are not supported",
            ))
        } else if key.is_empty() {
            Some((ErrorCode::InvalidRequest, "empty group id"))
        } else {
            groups::ensure_offsets_topic(ctx)
                .await
                .err()
                .map(|c| (c, "the offsets topic is not available"))
        };
        // The coordinator is the leader of the group's offsets partition.
        let coordinator = match error {
            Some(e) => Err(e),
            None => groups::coordinator_of(ctx, &key).ok_or((
                ErrorCode::CoordinatorNotAvailable,
                "the group's offsets partition has no leader now",
            )),
        };
        let mut c = CoordinatorEntry::default();
        c.key = sb(&key);
        match coordinator {
            Err((e, msg)) => {
                c.node_id = BrokerId(-1);
                c.port = -1;
                c.host = sb("");
                c.error_code = e.code();
                c.error_message = Some(sb(msg));
            }
            Ok((node, host, port)) => {
                c.node_id = BrokerId(node);
                c.host = sb(&host);
                c.port = i32::from(port);
            }
        }
        coordinators.push(c);
    }
    let mut out = FindCoordinatorResponse::default();
    if version >= 4 {
        out.coordinators = coordinators;
    } else if let Some(c) = coordinators.pop() {
        out.error_code = c.error_code;
        out.error_message = c.error_message;
        out.node_id = c.node_id;
        out.host = c.host;
        out.port = c.port;
    }
    out
}

pub(crate) async fn join_group(
    ctx: &Node,
    version: i16,
    client: &Client,
    r: JoinGroupRequest,
) -> JoinGroupResponse {
    let request = JoinRequest {
        group_id: group_name(&r.group_id).to_string(),
        member_id: r.member_id.as_str().to_string(),
        group_instance_id: r.group_instance_id.as_ref().map(|s| s.as_str().to_string()),
        protocol_type: r.protocol_type.as_str().to_string(),
        protocols: r
            .protocols
            .iter()
            .map(|p| (p.name.as_str().to_string(), p.metadata.clone()))
            .collect(),
        session_timeout_ms: r.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version >= 1 {
            r.rebalance_timeout_ms
        } else {
            r.session_timeout_ms
        },
        // KIP-394: from v4 a new member must first learn its id.
        require_known_member_id: version >= 4,
        supports_skip_assignment: version >= 9,
        client_id: client.client_id.clone(),
        client_host: client.host(),
        reason: r.reason.as_ref().map(|s| s.as_str().to_string()),
    };
    let mut out = JoinGroupResponse::default();
    let ready = match groups::ensure_offsets_topic(ctx).await {
        Ok(()) if request.group_id.is_empty() => Ok(()),
        Ok(()) => ctx.groups.check(&request.group_id),
        Err(e) => Err(e),
    };
    if let Err(e) = ready {
        out.error_code = e.code();
        out.generation_id = -1;
        out.member_id = sb(&request.member_id);
        return out;
    }
    let answer = ctx
        .groups
        .deferred(move |c, now, token| c.join(now, token, request))
        .await;
    let Some(Output::Join { response, .. }) = answer else {
        out.error_code = ErrorCode::CoordinatorNotAvailable.code();
        out.generation_id = -1;
        return out;
    };
    out.error_code = response.error.as_ref().map_or(0, code);
    out.generation_id = response.generation_id;
    out.protocol_type = response.protocol_type.as_deref().map(sb);
    out.protocol_name = response.protocol_name.as_deref().map(sb);
    // Before v7 the protocol name is not nullable.
    if version < 7 && out.protocol_name.is_none() {
        out.protocol_name = Some(sb(""));
    }
    out.leader = sb(&response.leader);
    out.skip_assignment = version >= 9 && response.skip_assignment;
    out.member_id = sb(&response.member_id);
    out.members = response
        .members
        .into_iter()
        .map(|m| {
            let mut jm = JoinGroupResponseMember::default();
            jm.member_id = sb(&m.member_id);
            jm.group_instance_id = m.group_instance_id.as_deref().map(sb);
            jm.metadata = m.metadata;
            jm
        })
        .collect();
    out
}

pub(crate) async fn sync_group(ctx: &Node, r: SyncGroupRequest) -> SyncGroupResponse {
    let request = SyncRequest {
        group_id: group_name(&r.group_id).to_string(),
        generation_id: r.generation_id,
        member_id: r.member_id.as_str().to_string(),
        group_instance_id: r.group_instance_id.as_ref().map(|s| s.as_str().to_string()),
        protocol_type: r.protocol_type.as_ref().map(|s| s.as_str().to_string()),
        protocol_name: r.protocol_name.as_ref().map(|s| s.as_str().to_string()),
        assignments: r
            .assignments
            .iter()
            .map(|a| (a.member_id.as_str().to_string(), a.assignment.clone()))
            .collect(),
    };
    let mut out = SyncGroupResponse::default();
    if let Err(e) = ctx.groups.check(&request.group_id) {
        out.error_code = e.code();
        return out;
    }
    let answer = ctx
        .groups
        .deferred(move |c, now, token| c.sync(now, token, request))
        .await;
    let Some(Output::Sync { response, .. }) = answer else {
        out.error_code = ErrorCode::CoordinatorNotAvailable.code();
        return out;
    };
    out.error_code = response.error.as_ref().map_or(0, code);
    out.protocol_type = response.protocol_type.as_deref().map(sb);
    out.protocol_name = response.protocol_name.as_deref().map(sb);
    out.assignment = response.assignment;
    out
}

pub(crate) fn heartbeat(ctx: &Node, r: HeartbeatRequest) -> HeartbeatResponse {
    let request = Heartbeat {
        group_id: group_name(&r.group_id).to_string(),
        generation_id: r.generation_id,
        member_id: r.member_id.as_str().to_string(),
        group_instance_id: r.group_instance_id.as_ref().map(|s| s.as_str().to_string()),
    };
    let mut out = HeartbeatResponse::default();
    if let Err(e) = ctx.groups.check(&request.group_id) {
        out.error_code = e.code();
        return out;
    }
    let result = ctx.groups.with(|c, now| c.heartbeat(now, &request));
    out.error_code = result.err().as_ref().map_or(0, code);
    out
}

pub(crate) fn leave_group(ctx: &Node, version: i16, r: LeaveGroupRequest) -> LeaveGroupResponse {
    let members: Vec<LeavingMember> = if version >= 3 {
        r.members
            .iter()
            .map(|m| LeavingMember {
                member_id: m.member_id.as_str().to_string(),
                group_instance_id: m.group_instance_id.as_ref().map(|s| s.as_str().to_string()),
            })
            .collect()
    } else {
        vec![LeavingMember {
            member_id: r.member_id.as_str().to_string(),
            group_instance_id: None,
        }]
    };
    let group = group_name(&r.group_id).to_string();
    let mut out = LeaveGroupResponse::default();
    if let Err(e) = ctx.groups.check(&group) {
        out.error_code = e.code();
        return out;
    }
    let result = ctx.groups.with(|c, now| c.leave(now, &group, &members));
    match result {
        Err(e) => out.error_code = e.code(),
        Ok(per_member) if version >= 3 => {
            out.members = members
                .iter()
                .zip(per_member)
                .map(|(m, res)| {
                    let mut mr = MemberResponse::default();
                    mr.member_id = sb(&m.member_id);
                    mr.group_instance_id = m.group_instance_id.as_deref().map(sb);
                    mr.error_code = res.err().as_ref().map_or(0, code);
                    mr
                })
                .collect();
        }
        Ok(per_member) => {
            // v0–v2: one member, its error is the response's.
            out.error_code = per_member
                .into_iter()
                .next()
                .and_then(|r| r.err())
                .as_ref()
                .map_or(0, code);
        }
    }
    out
}

pub(crate) async fn offset_commit(
    ctx: &Node,
    version: i16,
    r: OffsetCommitRequest,
    legacy: Option<&cairn_protocol::LegacyFields>,
) -> OffsetCommitResponse {
    let group = group_name(&r.group_id).to_string();
    // v0 has no generation or member: a "simple" commit.
    let (generation, member) = if version >= 1 {
        (r.generation_id_or_member_epoch, r.member_id.as_str())
    } else {
        (-1, "")
    };
    let instance = r.group_instance_id.as_ref().map(|s| s.as_str());
    let mut codes: Vec<Vec<i16>> = r
        .topics
        .iter()
        .map(|t| vec![0; t.partitions.len()])
        .collect();
    let group_error = if group.is_empty() {
        Some(ErrorCode::InvalidGroupId.code())
    } else if let Err(e) = ctx.groups.check(&group) {
        Some(e.code())
    } else {
        ctx.groups
            .with(|c, now| c.validate_offset_commit(now, &group, generation, member, instance))
            .err()
            .map(|e| match e {
                // Kafka's answer to a member commit for a group it does not know: v9
                // (KIP-848) says so; older versions call the generation illegal.
                GroupError::IllegalGeneration
                    if version >= 9 && ctx.groups.read(|c| c.describe_group(&group).is_none()) =>
                {
                    GroupError::GroupIdNotFound.code()
                }
                e => e.code(),
            })
    };
    let commit_ms = wall_ms();
    let mut entries = Vec::new();
    let mut applied = Vec::new();
    if group_error.is_none() {
        for (ti, t) in r.topics.iter().enumerate() {
            let topic = t.name.0.as_str();
            let partitions = ctx.topics.get(topic).map(|t| t.partitions.len());
            for (pi, p) in t.partitions.iter().enumerate() {
                let metadata = p
                    .committed_metadata
                    .as_ref()
                    .map_or(String::new(), |m| m.as_str().to_string());
                let exists = topic != OFFSETS_TOPIC
                    && partitions.is_some_and(|n| (0..n as i32).contains(&p.partition_index));
                codes[ti][pi] = if !exists {
                    ErrorCode::UnknownTopicOrPartition.code()
                } else if metadata.len() > ctx.groups.max_metadata_bytes {
                    ErrorCode::OffsetMetadataTooLarge.code()
                } else {
                    let key = RecordKey::Offset {
                        group: group.clone(),
                        topic: topic.to_string(),
                        partition: p.partition_index,
                    };
                    // v1 may name the commit time (Kafka keeps it as the commit timestamp,
                    // from which retention counts); -1 means now.
                    let commit_timestamp_ms = legacy
                        .map(|l| l.commit_timestamp(ti, pi))
                        .filter(|&t| t != -1)
                        .unwrap_or(commit_ms);
                    let value = OffsetValue {
                        offset: p.committed_offset,
                        leader_epoch: if version >= 6 {
                            p.committed_leader_epoch
                        } else {
                            -1
                        },
                        metadata,
                        commit_timestamp_ms,
                    };
                    match (key.encode(), value.encode()) {
                        (Ok(k), Ok(v)) => {
                            entries.push((k, Some(v)));
                            applied.push((topic.to_string(), p.partition_index, value));
                            0
                        }
                        _ => ErrorCode::InvalidRequest.code(),
                    }
                };
            }
        }
    }
    if let Some(e) = group_error {
        codes.iter_mut().flatten().for_each(|c| *c = e);
    } else if !entries.is_empty() {
        let partition = ctx.groups.partition_for(&group);
        match groups::append(ctx, partition, &entries).await {
            // Applied by the records' positions: a commit written after this one and
            // acknowledged first is not overwritten by it.
            Ok(first) => ctx.groups.with(|c, _| {
                for (position, (topic, partition, value)) in (first..).zip(applied) {
                    c.apply_offset_commit(&group, &topic, partition, value, Some(position));
                }
            }),
            Err(e) => codes
                .iter_mut()
                .flatten()
                .filter(|c| **c == 0)
                .for_each(|c| *c = e.code()),
        }
    }
    let mut out = OffsetCommitResponse::default();
    out.topics = r
        .topics
        .iter()
        .zip(codes)
        .map(|(t, codes)| {
            let mut rt = OffsetCommitResponseTopic::default();
            rt.name = t.name.clone();
            rt.partitions = t
                .partitions
                .iter()
                .zip(codes)
                .map(|(p, c)| {
                    let mut rp = OffsetCommitResponsePartition::default();
                    rp.partition_index = p.partition_index;
                    rp.error_code = c;
                    rp
                })
                .collect();
            rt
        })
        .collect();
    out
}

/// One group's committed offsets: `(topic, [(partition, offset, leader epoch, metadata)])`,
/// for the partitions asked (`None`: every partition with a commit).
type FetchedOffsets = Vec<(String, Vec<(i32, i64, i32, String)>)>;

fn fetch_group_offsets(
    ctx: &Node,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> FetchedOffsets {
    ctx.groups.read(|c| match topics {
        Some(topics) => topics
            .into_iter()
            .map(|(topic, partitions)| {
                let ps = partitions
                    .into_iter()
                    .map(|p| match c.committed_offset(group, &topic, p) {
                        Some(v) => (p, v.offset, v.leader_epoch, v.metadata.clone()),
                        None => (p, -1, -1, String::new()),
                    })
                    .collect();
                (topic, ps)
            })
            .collect(),
        None => {
            let mut by_topic: BTreeMap<String, Vec<(i32, i64, i32, String)>> = BTreeMap::new();
            for (topic, p, v) in c.committed_offsets(group) {
                by_topic
                    .entry(topic)
                    .or_default()
                    .push((p, v.offset, v.leader_epoch, v.metadata));
            }
            by_topic.into_iter().collect()
        }
    })
}

pub(crate) fn offset_fetch(ctx: &Node, version: i16, r: OffsetFetchRequest) -> OffsetFetchResponse {
    let mut out = OffsetFetchResponse::default();
    if version >= 8 {
        out.groups = r
            .groups
            .iter()
            .map(|g| {
                let group = group_name(&g.group_id);
                let topics = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (t.name.0.as_str().to_string(), t.partition_indexes.clone()))
                        .collect()
                });
                let mut rg = OffsetFetchResponseGroup::default();
                rg.group_id = g.group_id.clone();
                if let Err(e) = ctx.groups.check(group) {
                    rg.error_code = e.code();
                    return rg;
                }
                rg.topics = fetch_group_offsets(ctx, group, topics)
                    .into_iter()
                    .map(|(topic, ps)| {
                        let mut rt = OffsetFetchResponseTopics::default();
                        rt.name = topic_name(&topic);
                        rt.partitions = ps
                            .into_iter()
                            .map(|(p, offset, epoch, metadata)| {
                                let mut rp = OffsetFetchResponsePartitions::default();
                                rp.partition_index = p;
                                rp.committed_offset = offset;
                                rp.committed_leader_epoch = epoch;
                                rp.metadata = Some(sb(&metadata));
                                rp
                            })
                            .collect();
                        rt
                    })
                    .collect();
                rg
            })
            .collect();
        return out;
    }
    let group = group_name(&r.group_id);
    if let Err(e) = ctx.groups.check(group) {
        // v2+ carry a top-level error; v0–v1 only per partition.
        out.error_code = e.code();
        out.topics = r
            .topics
            .iter()
            .flatten()
            .map(|t| {
                let mut rt = OffsetFetchResponseTopic::default();
                rt.name = t.name.clone();
                rt.partitions = t
                    .partition_indexes
                    .iter()
                    .map(|&p| {
                        let mut rp = OffsetFetchResponsePartition::default();
                        rp.partition_index = p;
                        rp.committed_offset = -1;
                        rp.committed_leader_epoch = -1;
                        rp.metadata = Some(sb(""));
                        rp.error_code = e.code();
                        rp
                    })
                    .collect();
                rt
            })
            .collect();
        return out;
    }
    // v0–v1 have no "all topics" null; v2+ do.
    let topics = r.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.0.as_str().to_string(), t.partition_indexes.clone()))
            .collect()
    });
    out.topics = fetch_group_offsets(ctx, group, topics)
        .into_iter()
        .map(|(topic, ps)| {
            let mut rt = OffsetFetchResponseTopic::default();
            rt.name = topic_name(&topic);
            rt.partitions = ps
                .into_iter()
                .map(|(p, offset, epoch, metadata)| {
                    let mut rp = OffsetFetchResponsePartition::default();
                    rp.partition_index = p;
                    rp.committed_offset = offset;
                    rp.committed_leader_epoch = epoch;
                    rp.metadata = Some(sb(&metadata));
                    rp
                })
                .collect();
            rt
        })
        .collect();
    out
}

pub(crate) fn list_groups(ctx: &Node, r: ListGroupsRequest) -> ListGroupsResponse {
    let mut states = Vec::new();
    for s in &r.states_filter {
        match GroupState::parse(s.as_str()) {
            Some(state) => states.push(state),
            // An unknown state matches no group.
            None => return ListGroupsResponse::default(),
        }
    }
    // Every group here is a classic group.
    let types_ok = r.types_filter.is_empty()
        || r.types_filter
            .iter()
            .any(|t| t.as_str().eq_ignore_ascii_case("classic"));
    let mut out = ListGroupsResponse::default();
    if !types_ok {
        return out;
    }
    out.groups = ctx
        .groups
        .read(|c| c.list_groups(&states))
        .into_iter()
        .map(|g| {
            let mut lg = ListedGroup::default();
            lg.group_id = GroupId(sb(&g.group_id));
            lg.protocol_type = sb(&g.protocol_type);
            lg.group_state = sb(&g.state.to_string());
            lg.group_type = sb("classic");
            lg
        })
        .collect();
    out
}

pub(crate) fn describe_groups(ctx: &Node, r: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let mut out = DescribeGroupsResponse::default();
    out.groups = r
        .groups
        .iter()
        .map(|g| {
            let mut dg = DescribedGroup::default();
            dg.group_id = g.clone();
            if r.include_authorized_operations {
                dg.authorized_operations = GROUP_OPERATIONS;
            } else {
                dg.authorized_operations = i32::MIN;
            }
            if let Err(e) = ctx.groups.check(group_name(g)) {
                dg.error_code = e.code();
                dg.group_state = sb("");
                return dg;
            }
            match ctx.groups.read(|c| c.describe_group(group_name(g))) {
                None => {
                    // Kafka's answer for a group it does not know: no error, state Dead.
                    dg.group_state = sb(&GroupState::Dead.to_string());
                }
                Some(d) => {
                    dg.group_state = sb(&d.state.to_string());
                    dg.protocol_type = sb(&d.protocol_type);
                    dg.protocol_data = sb(d.protocol_name.as_deref().unwrap_or(""));
                    dg.members = d
                        .members
                        .into_iter()
                        .map(|m| {
                            let mut dm = DescribedGroupMember::default();
                            dm.member_id = sb(&m.member_id);
                            dm.group_instance_id = m.group_instance_id.as_deref().map(sb);
                            dm.client_id = sb(&m.client_id);
                            dm.client_host = sb(&m.client_host);
                            dm.member_metadata = m.metadata;
                            dm.member_assignment = m.assignment;
                            dm
                        })
                        .collect();
                }
            }
            dg
        })
        .collect();
    out
}

pub(crate) async fn delete_groups(ctx: &Node, r: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut out = DeleteGroupsResponse::default();
    for g in &r.groups_names {
        let group = group_name(g).to_string();
        let mut result = DeletableGroupResult::default();
        result.group_id = g.clone();
        result.error_code = match ctx.delete_group(&group).await {
            Ok(()) => 0,
            Err(e) => e.code().code(),
        };
        out.results.push(result);
    }
    out
}

pub(crate) async fn offset_delete(ctx: &Node, r: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group = group_name(&r.group_id).to_string();
    let asked: Vec<(String, Vec<i32>)> = r
        .topics
        .iter()
        .map(|t| {
            (
                t.name.0.as_str().to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let mut out = OffsetDeleteResponse::default();
    if let Err(e) = ctx.groups.check(&group) {
        out.error_code = e.code();
        return out;
    }
    let checked = ctx
        .groups
        .read(|c| c.validate_offset_delete(&group, &asked));
    let per_partition = match checked {
        Err(e) => {
            out.error_code = e.code();
            return out;
        }
        Ok(p) => p,
    };
    let mut entries = Vec::new();
    let mut deleted = Vec::new();
    for ((topic, partitions), results) in asked.iter().zip(&per_partition) {
        for (p, res) in partitions.iter().zip(results) {
            if res.is_ok() {
                let key = RecordKey::Offset {
                    group: group.clone(),
                    topic: topic.clone(),
                    partition: *p,
                };
                if let Some(key) = encoded(&key) {
                    entries.push((key, None));
                    deleted.push((topic.clone(), *p));
                }
            }
        }
    }
    let mut write_error = None;
    if !entries.is_empty() {
        let partition = ctx.groups.partition_for(&group);
        match groups::append(ctx, partition, &entries).await {
            Ok(_) => ctx.groups.with(|c, _| {
                for (topic, p) in &deleted {
                    c.apply_offset_delete(&group, topic, *p);
                }
            }),
            Err(e) => write_error = Some(e.code()),
        }
    }
    out.topics = asked
        .iter()
        .zip(per_partition)
        .map(|((topic, partitions), results)| {
            let mut rt = OffsetDeleteResponseTopic::default();
            rt.name = topic_name(topic);
            rt.partitions = partitions
                .iter()
                .zip(results)
                .map(|(p, res)| {
                    let mut rp = OffsetDeleteResponsePartition::default();
                    rp.partition_index = *p;
                    rp.error_code = match res {
                        Ok(()) => write_error.unwrap_or(0),
                        Err(e) => e.code(),
                    };
                    rp
                })
                .collect();
            rt
        })
        .collect();
    out
}
