//! `consume --group G`: the CLI as one member of a classic consumer group (the protocol
//! Kafka's Java consumer and librdkafka speak, so the CLI can share a group with them).
//!
//! Joining: FindCoordinator, then JoinGroup (protocol type `consumer`, the `range` assignor
//! every Kafka client offers, a v0 `ConsumerProtocolSubscription` of the one topic); v4+
//! brokers answer the first JoinGroup MEMBER_ID_REQUIRED with the id to join with. The
//! member chosen as leader assigns partitions with the range assignor (per topic, members in
//! member-id order take consecutive ranges, the first ones one more when the count does not
//! divide) for every topic any member subscribed to; then SyncGroup hands each member its
//! assignment. Staying: Heartbeat every [`HEARTBEAT_EVERY`]; an answer of
//! REBALANCE_IN_PROGRESS means "commit and join again", UNKNOWN_MEMBER_ID or
//! ILLEGAL_GENERATION "join again as a new member". Commits carry the generation and member
//! id, so a member that lost its partitions cannot overwrite the new owner's offsets.
//! Leaving: LeaveGroup, so the others get the partitions at once rather than after the
//! session timeout.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use bytes::{BufMut as _, Bytes, BytesMut};
use cairn_protocol::kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use cairn_protocol::kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use cairn_protocol::kafka_protocol::messages::leave_group_request::MemberIdentity;
use cairn_protocol::kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use cairn_protocol::kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, FindCoordinatorRequest, GroupId,
    HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest,
};
use cairn_protocol::kafka_protocol::protocol::{Decodable as _, Encodable as _, StrBytes};
use cairn_protocol::ErrorCode;

use super::cluster::{topic_name, Cluster};
use super::error_code::KafkaError;
use super::group::{
    commit_request, committed_offsets, coordinator_of, decode_assignment, find_coordinator_request,
    is_coordinator_retriable, offset_fetch_request,
};

/// Kafka's `heartbeat.interval.ms` default.
pub(crate) const HEARTBEAT_EVERY: Duration = Duration::from_secs(3);
/// `session.timeout.ms`: a CLI that vanishes without leaving frees its partitions this soon.
const SESSION_TIMEOUT_MS: i32 = 10_000;
/// `max.poll.interval.ms` as the rebalance timeout: how long the coordinator waits for
/// members to join again.
const REBALANCE_TIMEOUT_MS: i32 = 30_000;
/// Pause before asking again while the coordinator is moving or loading.
const RETRY_BACKOFF: Duration = Duration::from_millis(200);
const PROTOCOL_TYPE: &str = "consumer";
const ASSIGNOR: &str = "range";

/// This CLI's membership of a group, once synced.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub group: String,
    pub member_id: String,
    pub generation: i32,
    /// The coordinator's node id.
    coordinator: i32,
    /// Partitions of the consumed topic assigned to this member, ascending.
    pub partitions: Vec<i32>,
}

/// What a heartbeat or commit says about the membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// Still a member of this generation.
    Member,
    /// The group is rebalancing: join again (with the same member id).
    Rejoin,
    /// The coordinator forgot this member (session expired, or a new generation started
    /// without it): join again as a new member.
    Expelled,
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn standing(code: i16) -> Result<Standing, KafkaError> {
    if code == ErrorCode::RebalanceInProgress.code() {
        Ok(Standing::Rejoin)
    } else if code == ErrorCode::UnknownMemberId.code()
        || code == ErrorCode::IllegalGeneration.code()
        || code == ErrorCode::FencedInstanceId.code()
    {
        Ok(Standing::Expelled)
    } else if is_coordinator_retriable(code) {
        // A new coordinator loads the group as it was: join it again.
        Ok(Standing::Rejoin)
    } else {
        KafkaError::check(code, None).map(|()| Standing::Member)
    }
}

async fn find_coordinator(
    cluster: &mut Cluster,
    group: &str,
    deadline: Instant,
) -> anyhow::Result<i32> {
    loop {
        let response = cluster
            .admin()
            .call(|v| -> FindCoordinatorRequest { find_coordinator_request(v, group) })
            .await?;
        match coordinator_of(&response, group) {
            Ok((node, _)) => {
                // The coordinator's address comes from Metadata, which the cluster knows.
                if cluster.leader(node).await.is_ok() {
                    return Ok(node);
                }
                cluster.metadata(Some(&[])).await?;
                cluster.leader(node).await?;
                return Ok(node);
            }
            Err(e) if is_coordinator_retriable(e.code) && Instant::now() < deadline => {
                tokio::time::sleep(RETRY_BACKOFF).await;
            }
            Err(e) => {
                return Err(anyhow!(e).context(format!("cannot find group {group}'s coordinator")))
            }
        }
    }
}

/// Joins `group` consuming `topic` (as `member_id`, or as a new member when empty) and
/// returns the synced membership. Gives up after `timeout` plus the rebalance timeout.
pub(crate) async fn join(
    cluster: &mut Cluster,
    group: &str,
    topic: &str,
    member_id: &str,
    timeout: Duration,
) -> anyhow::Result<Member> {
    let deadline = Instant::now() + timeout + Duration::from_millis(REBALANCE_TIMEOUT_MS as u64);
    let mut member_id = member_id.to_string();
    let subscription = encode_subscription(topic);
    'find: loop {
        let coordinator = find_coordinator(cluster, group, deadline).await?;
        loop {
            if Instant::now() >= deadline {
                bail!(
                    "could not join group {group} within {} ms",
                    timeout.as_millis()
                );
            }
            let conn = cluster.leader(coordinator).await?;
            let joined = conn
                .call_waiting(Duration::from_millis(REBALANCE_TIMEOUT_MS as u64), |v| {
                    join_group_request(v, group, &member_id, &subscription)
                })
                .await?;
            let code = joined.error_code;
            if code == ErrorCode::MemberIdRequired.code() {
                member_id = joined.member_id.to_string();
                continue;
            }
            if code == ErrorCode::UnknownMemberId.code() {
                member_id.clear();
                continue;
            }
            if is_coordinator_retriable(code) || code == ErrorCode::RebalanceInProgress.code() {
                tokio::time::sleep(RETRY_BACKOFF).await;
                continue 'find;
            }
            KafkaError::check(code, None)
                .map_err(|e| anyhow!(e).context(format!("cannot join group {group}")))?;
            member_id = joined.member_id.to_string();
            let generation = joined.generation_id;
            let assignments = if joined.leader.as_str() == member_id {
                let members: Vec<(String, Vec<String>)> = joined
                    .members
                    .iter()
                    .map(|m| (m.member_id.to_string(), decode_subscription(&m.metadata)))
                    .collect();
                let topics: BTreeSet<&str> = members
                    .iter()
                    .flat_map(|(_, t)| t.iter().map(String::as_str))
                    .collect();
                let wanted: Vec<&str> = topics.into_iter().collect();
                let counts: BTreeMap<String, i32> = cluster
                    .metadata(Some(&wanted))
                    .await?
                    .into_iter()
                    .filter(|t| t.error.is_none())
                    .map(|t| (t.name, t.partitions.len() as i32))
                    .collect();
                range_assign(&members, &counts)
            } else {
                BTreeMap::new()
            };
            let conn = cluster.leader(coordinator).await?;
            let synced = conn
                .call_waiting(Duration::from_millis(REBALANCE_TIMEOUT_MS as u64), |v| {
                    sync_group_request(v, group, generation, &member_id, &assignments)
                })
                .await?;
            match standing(synced.error_code) {
                Ok(Standing::Member) => {}
                Ok(Standing::Rejoin) => continue 'find,
                Ok(Standing::Expelled) => {
                    member_id.clear();
                    continue 'find;
                }
                Err(e) => return Err(anyhow!(e).context(format!("cannot sync group {group}"))),
            }
            let partitions = decode_assignment(&synced.assignment)
                .map_err(|e| anyhow!("group {group}'s assignment: {e}"))?
                .into_iter()
                .filter(|(t, _)| t == topic)
                .map(|(_, p)| p)
                .collect();
            return Ok(Member {
                group: group.to_string(),
                member_id,
                generation,
                coordinator,
                partitions,
            });
        }
    }
}

impl Member {
    /// One heartbeat.
    pub(crate) async fn heartbeat(&self, cluster: &mut Cluster) -> anyhow::Result<Standing> {
        let conn = cluster.leader(self.coordinator).await?;
        let response = conn
            .call(|_v| {
                HeartbeatRequest::default()
                    .with_group_id(GroupId(str_bytes(&self.group)))
                    .with_generation_id(self.generation)
                    .with_member_id(str_bytes(&self.member_id))
            })
            .await?;
        standing(response.error_code)
            .map_err(|e| anyhow!(e).context(format!("heartbeat to group {}", self.group)))
    }

    /// Commits `offsets` (partition, next offset to read) of `topic` as this member.
    pub(crate) async fn commit(
        &self,
        cluster: &mut Cluster,
        topic: &str,
        offsets: &[(i32, i64)],
    ) -> anyhow::Result<Standing> {
        if offsets.is_empty() {
            return Ok(Standing::Member);
        }
        let conn = cluster.leader(self.coordinator).await?;
        let response = conn
            .call(|v| {
                commit_request(
                    v,
                    &self.group,
                    self.generation,
                    &self.member_id,
                    topic,
                    offsets,
                )
            })
            .await?;
        let mut worst = Standing::Member;
        for p in response.topics.iter().flat_map(|t| &t.partitions) {
            match standing(p.error_code) {
                Ok(Standing::Member) => {}
                Ok(s) => worst = s,
                Err(e) => {
                    return Err(anyhow!(e).context(format!(
                        "cannot commit partition {} of {topic} for group {}",
                        p.partition_index, self.group
                    )))
                }
            }
        }
        Ok(worst)
    }

    /// The group's committed offsets of `partitions` of `topic` (partitions without one are
    /// left out).
    pub(crate) async fn committed(
        &self,
        cluster: &mut Cluster,
        topic: &str,
        partitions: &[i32],
    ) -> anyhow::Result<BTreeMap<i32, i64>> {
        let deadline = Instant::now() + Duration::from_millis(REBALANCE_TIMEOUT_MS as u64);
        loop {
            let conn = cluster.leader(self.coordinator).await?;
            let response = conn
                .call(|v| offset_fetch_request(v, &self.group, Some((topic, partitions))))
                .await?;
            match committed_offsets(&response) {
                Ok(offsets) => {
                    return Ok(offsets
                        .into_iter()
                        .filter(|((t, _), _)| t == topic)
                        .map(|((_, p), o)| (p, o))
                        .collect())
                }
                Err(e) if is_coordinator_retriable(e.code) && Instant::now() < deadline => {
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
                Err(e) => {
                    return Err(anyhow!(e).context(format!(
                        "cannot read group {}'s committed offsets",
                        self.group
                    )))
                }
            }
        }
    }

    /// Leaves the group (errors ignored: the session timeout ends a membership anyway).
    pub(crate) async fn leave(&self, cluster: &mut Cluster) {
        if let Ok(conn) = cluster.leader(self.coordinator).await {
            let _ = conn
                .call(|v| leave_group_request(v, &self.group, &self.member_id))
                .await;
        }
    }
}

/// The range assignor: for each topic, its subscribers in member-id order take consecutive
/// ranges of partitions; with `n` partitions and `m` members the first `n % m` take one
/// more. Returns each member's assigned (topic, partitions).
pub(crate) fn range_assign(
    members: &[(String, Vec<String>)],
    partition_counts: &BTreeMap<String, i32>,
) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<i32>>> = members
        .iter()
        .map(|(m, _)| (m.clone(), BTreeMap::new()))
        .collect();
    for (topic, &count) in partition_counts {
        let mut subscribers: Vec<&str> = members
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(m, _)| m.as_str())
            .collect();
        subscribers.sort_unstable();
        subscribers.dedup();
        if subscribers.is_empty() || count <= 0 {
            continue;
        }
        let m = subscribers.len() as i32;
        let (per, extra) = (count / m, count % m);
        let mut next = 0;
        for (i, member) in subscribers.iter().enumerate() {
            let take = per + i32::from((i as i32) < extra);
            let partitions: Vec<i32> = (next..next + take).collect();
            next += take;
            if let Some(mine) = out.get_mut(*member) {
                mine.insert(topic.clone(), partitions);
            }
        }
    }
    out
}

/// A v0 `ConsumerProtocolSubscription` of `topic`, with its version prefix.
fn encode_subscription(topic: &str) -> Bytes {
    let subscription = ConsumerProtocolSubscription::default()
        .with_topics(vec![str_bytes(topic)])
        .with_user_data(None);
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    // Encoding a default-shaped v0 message cannot fail; an empty body would only make the
    // leader assign this member nothing.
    let _ = subscription.encode(&mut buf, 0);
    buf.freeze()
}

/// The topics of a member's subscription (any version; a newer one read as the newest
/// known, since versions only append fields). Undecodable: none.
fn decode_subscription(bytes: &Bytes) -> Vec<String> {
    let mut buf = bytes.clone();
    if buf.len() < 2 {
        return Vec::new();
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]);
    let _ = bytes::Buf::get_i16(&mut buf);
    if version < 0 {
        return Vec::new();
    }
    let version = version.min(3);
    ConsumerProtocolSubscription::decode(&mut buf, version)
        .map(|s| s.topics.iter().map(|t| t.to_string()).collect())
        .unwrap_or_default()
}

/// A v0 `ConsumerProtocolAssignment` with its version prefix.
fn encode_assignment(topics: &BTreeMap<String, Vec<i32>>) -> Bytes {
    let assignment = ConsumerProtocolAssignment::default()
        .with_assigned_partitions(
            topics
                .iter()
                .map(|(t, p)| {
                    TopicPartition::default()
                        .with_topic(topic_name(t))
                        .with_partitions(p.clone())
                })
                .collect(),
        )
        .with_user_data(None);
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    let _ = assignment.encode(&mut buf, 0);
    buf.freeze()
}

// --- request builders ---------------------------------------------------------------------

pub(crate) fn join_group_request(
    _version: i16,
    group: &str,
    member_id: &str,
    subscription: &Bytes,
) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(str_bytes(group)))
        .with_session_timeout_ms(SESSION_TIMEOUT_MS)
        .with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS)
        .with_member_id(str_bytes(member_id))
        .with_group_instance_id(None)
        .with_protocol_type(str_bytes(PROTOCOL_TYPE))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(str_bytes(ASSIGNOR))
            .with_metadata(subscription.clone())])
}

pub(crate) fn sync_group_request(
    version: i16,
    group: &str,
    generation: i32,
    member_id: &str,
    assignments: &BTreeMap<String, BTreeMap<String, Vec<i32>>>,
) -> SyncGroupRequest {
    let request = SyncGroupRequest::default()
        .with_group_id(GroupId(str_bytes(group)))
        .with_generation_id(generation)
        .with_member_id(str_bytes(member_id))
        .with_assignments(
            assignments
                .iter()
                .map(|(member, topics)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(str_bytes(member))
                        .with_assignment(encode_assignment(topics))
                })
                .collect(),
        );
    if version >= 5 {
        request
            .with_protocol_type(Some(str_bytes(PROTOCOL_TYPE)))
            .with_protocol_name(Some(str_bytes(ASSIGNOR)))
    } else {
        request
    }
}

pub(crate) fn leave_group_request(version: i16, group: &str, member_id: &str) -> LeaveGroupRequest {
    let request = LeaveGroupRequest::default().with_group_id(GroupId(str_bytes(group)));
    if version >= 3 {
        request.with_members(vec![MemberIdentity::default()
            .with_member_id(str_bytes(member_id))
            .with_group_instance_id(None)])
    } else {
        request.with_member_id(str_bytes(member_id))
    }
}

/// Every membership request the CLI builds, at version `v` (`conn`'s tests encode each at
/// every version in `CLIENT_APIS`).
#[cfg(test)]
pub(crate) fn requests_for_tests(
    key: cairn_protocol::kafka_protocol::messages::ApiKey,
    v: i16,
) -> Vec<cairn_protocol::kafka_protocol::messages::RequestKind> {
    use cairn_protocol::kafka_protocol::messages::ApiKey;
    let mut assignments = BTreeMap::new();
    assignments.insert(
        "m-1".to_string(),
        BTreeMap::from([("t".to_string(), vec![0, 1])]),
    );
    match key {
        ApiKey::JoinGroup => vec![
            join_group_request(v, "g", "", &encode_subscription("t")).into(),
            join_group_request(v, "g", "m-1", &encode_subscription("t")).into(),
        ],
        ApiKey::SyncGroup => vec![
            sync_group_request(v, "g", 3, "m-1", &assignments).into(),
            sync_group_request(v, "g", 3, "m-2", &BTreeMap::new()).into(),
        ],
        ApiKey::Heartbeat => vec![HeartbeatRequest::default()
            .with_group_id(GroupId(str_bytes("g")))
            .with_generation_id(3)
            .with_member_id(str_bytes("m-1"))
            .into()],
        ApiKey::LeaveGroup => vec![leave_group_request(v, "g", "m-1").into()],
        other => panic!("no membership request builder for {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(list: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        list.iter()
            .map(|(m, t)| (m.to_string(), t.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn range_assignor_matches_kafkas() {
        let counts = BTreeMap::from([("a".to_string(), 7), ("b".to_string(), 2)]);
        let got = range_assign(
            &members(&[("m2", &["a"]), ("m1", &["a", "b"]), ("m3", &["a", "b"])]),
            &counts,
        );
        // a: 7 over m1, m2, m3 -> 3, 2, 2; b: 2 over m1, m3 -> 1, 1.
        assert_eq!(got["m1"]["a"], vec![0, 1, 2]);
        assert_eq!(got["m2"]["a"], vec![3, 4]);
        assert_eq!(got["m3"]["a"], vec![5, 6]);
        assert_eq!(got["m1"]["b"], vec![0]);
        assert_eq!(got["m3"]["b"], vec![1]);
        assert!(!got["m2"].contains_key("b"));
        // More members than partitions: the last ones get none.
        let got = range_assign(
            &members(&[("x", &["b"]), ("y", &["b"]), ("z", &["b"])]),
            &counts,
        );
        assert_eq!(got["x"]["b"], vec![0]);
        assert_eq!(got["y"]["b"], vec![1]);
        assert!(got["z"]["b"].is_empty());
    }

    #[test]
    fn subscriptions_and_assignments_round_trip() {
        assert_eq!(
            decode_subscription(&encode_subscription("orders")),
            vec!["orders"]
        );
        assert!(decode_subscription(&Bytes::from_static(b"\x00")).is_empty());
        let topics = BTreeMap::from([("orders".to_string(), vec![2, 0])]);
        assert_eq!(
            decode_assignment(&encode_assignment(&topics)),
            Ok(vec![("orders".to_string(), 0), ("orders".to_string(), 2)])
        );
    }

    #[test]
    fn error_codes_map_to_standing() {
        assert_eq!(standing(0), Ok(Standing::Member));
        assert_eq!(
            standing(ErrorCode::RebalanceInProgress.code()),
            Ok(Standing::Rejoin)
        );
        assert_eq!(
            standing(ErrorCode::IllegalGeneration.code()),
            Ok(Standing::Expelled)
        );
        assert_eq!(
            standing(ErrorCode::NotCoordinator.code()),
            Ok(Standing::Rejoin)
        );
        assert!(standing(ErrorCode::InvalidSessionTimeout.code()).is_err());
    }
}
