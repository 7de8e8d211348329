//! The error codes one response carries, for `kafka_network_requestmetrics_errors_total`
//! (Kafka's `kafka.network:type=RequestMetrics,name=ErrorsPerSec,request=X,error=Y`).
//!
//! Which fields count follows Kafka's `AbstractResponse.errorCounts()` of each response
//! class, so a dashboard sees what a Kafka broker would report for the same answers:
//!
//! - one code per partition: Produce, ListOffsets, OffsetForLeaderEpoch, DeleteRecords,
//!   OffsetCommit;
//! - the top-level code plus one per partition: Fetch, OffsetDelete, OffsetFetch (v8+: each
//!   group's code plus its partitions');
//! - one per topic and one per partition: Metadata;
//! - one per topic, resource or group: CreateTopics, DeleteTopics, CreatePartitions,
//!   DescribeConfigs, AlterConfigs, IncrementalAlterConfigs, DescribeGroups, DeleteGroups;
//! - the top-level code plus one per item: DescribeLogDirs (per log dir), LeaveGroup (per
//!   member);
//! - FindCoordinator: one per coordinator key (v4+), else the top-level code;
//! - the top-level code alone: ApiVersions, InitProducerId, DescribeCluster, JoinGroup,
//!   SyncGroup, Heartbeat, ListGroups.
//!
//! `NONE` counts too, as in Kafka: the share of answers that carried an error is
//! `errors_total{error!="NONE"}` over `errors_total`. Names are those of Kafka's
//! `Errors.java`, a fixed table, so the label's values stay bounded.

use std::sync::OnceLock;

use cairn_protocol::kafka_protocol::messages::ResponseKind;

/// The lowest Kafka error code (UNKNOWN_SERVER_ERROR).
const MIN_CODE: i16 = -1;
/// The highest code the name table holds. Kafka's codes end near 130 (Kafka 4); the table
/// leaves room, and a test checks kafka-protocol knows no code above it.
const MAX_CODE: i16 = 255;
/// The label of a code outside the table, as Kafka's `Errors.forCode` names it.
const UNKNOWN: &str = "UNKNOWN_SERVER_ERROR";

/// The distinct error codes of one response, each with how many times it appears, in the
/// order they first appear.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ErrorCounts(Vec<(i16, u64)>);

impl ErrorCounts {
    fn add(&mut self, code: i16) {
        // A response holds few distinct codes (usually one), so a scan beats a map.
        match self.0.iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n += 1,
            None => self.0.push((code, 1)),
        }
    }

    fn add_all(&mut self, codes: impl IntoIterator<Item = i16>) {
        for code in codes {
            self.add(code);
        }
    }

    /// `(code, count)` pairs, each code once.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (i16, u64)> + '_ {
        self.0.iter().copied()
    }
}

/// The error codes `response` carries, counted as Kafka counts them (see the module
/// comment); `None` for a kind of response this module does not know, which the tests
/// rule out for every API the broker serves.
pub(crate) fn error_counts(response: &ResponseKind) -> Option<ErrorCounts> {
    let mut c = ErrorCounts::default();
    match response {
        ResponseKind::Produce(r) => c.add_all(
            r.responses
                .iter()
                .flat_map(|t| &t.partition_responses)
                .map(|p| p.error_code),
        ),
        ResponseKind::Fetch(r) => {
            c.add(r.error_code);
            c.add_all(
                r.responses
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .map(|p| p.error_code),
            );
        }
        ResponseKind::ListOffsets(r) => c.add_all(
            r.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .map(|p| p.error_code),
        ),
        ResponseKind::OffsetForLeaderEpoch(r) => c.add_all(
            r.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .map(|p| p.error_code),
        ),
        ResponseKind::DeleteRecords(r) => c.add_all(
            r.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .map(|p| p.error_code),
        ),
        ResponseKind::OffsetCommit(r) => c.add_all(
            r.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .map(|p| p.error_code),
        ),
        ResponseKind::Metadata(r) => {
            for t in &r.topics {
                c.add_all(t.partitions.iter().map(|p| p.error_code));
                c.add(t.error_code);
            }
        }
        ResponseKind::OffsetFetch(r) if !r.groups.is_empty() => {
            // v8+: one entry per group asked about.
            for g in &r.groups {
                c.add(g.error_code);
                c.add_all(
                    g.topics
                        .iter()
                        .flat_map(|t| &t.partitions)
                        .map(|p| p.error_code),
                );
            }
        }
        ResponseKind::OffsetFetch(r) => {
            c.add(r.error_code);
            c.add_all(
                r.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .map(|p| p.error_code),
            );
        }
        ResponseKind::OffsetDelete(r) => {
            c.add(r.error_code);
            c.add_all(
                r.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .map(|p| p.error_code),
            );
        }
        ResponseKind::CreateTopics(r) => c.add_all(r.topics.iter().map(|t| t.error_code)),
        ResponseKind::DeleteTopics(r) => c.add_all(r.responses.iter().map(|t| t.error_code)),
        ResponseKind::CreatePartitions(r) => c.add_all(r.results.iter().map(|t| t.error_code)),
        ResponseKind::DescribeConfigs(r) => c.add_all(r.results.iter().map(|x| x.error_code)),
        ResponseKind::AlterConfigs(r) => c.add_all(r.responses.iter().map(|x| x.error_code)),
        ResponseKind::IncrementalAlterConfigs(r) => {
            c.add_all(r.responses.iter().map(|x| x.error_code))
        }
        ResponseKind::DescribeGroups(r) => c.add_all(r.groups.iter().map(|g| g.error_code)),
        ResponseKind::DeleteGroups(r) => c.add_all(r.results.iter().map(|g| g.error_code)),
        ResponseKind::DescribeLogDirs(r) => {
            c.add(r.error_code);
            c.add_all(r.results.iter().map(|d| d.error_code));
        }
        ResponseKind::LeaveGroup(r) => {
            c.add(r.error_code);
            c.add_all(r.members.iter().map(|m| m.error_code));
        }
        ResponseKind::FindCoordinator(r) if !r.coordinators.is_empty() => {
            // v4+ (KIP-699): one answer per key asked about.
            c.add_all(r.coordinators.iter().map(|k| k.error_code));
        }
        ResponseKind::FindCoordinator(r) => c.add(r.error_code),
        ResponseKind::ApiVersions(r) => c.add(r.error_code),
        ResponseKind::InitProducerId(r) => c.add(r.error_code),
        ResponseKind::DescribeCluster(r) => c.add(r.error_code),
        ResponseKind::JoinGroup(r) => c.add(r.error_code),
        ResponseKind::SyncGroup(r) => c.add(r.error_code),
        ResponseKind::Heartbeat(r) => c.add(r.error_code),
        ResponseKind::ListGroups(r) => c.add(r.error_code),
        _ => return None,
    }
    Some(c)
}

/// Kafka's name for `code`, as `Errors.java` spells it (`NOT_LEADER_OR_FOLLOWER`, `NONE`);
/// a code kafka-protocol does not know is `UNKNOWN_SERVER_ERROR`, as Kafka's
/// `Errors.forCode` makes it.
pub(crate) fn error_name(code: i16) -> &'static str {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        (MIN_CODE..=MAX_CODE)
            // An empty name marks a gap in Kafka's table.
            .map(|code| cairn_protocol::errors::error_name(code).unwrap_or_default())
            .collect()
    });
    usize::try_from(i32::from(code) - i32::from(MIN_CODE))
        .ok()
        .and_then(|i| names.get(i))
        .filter(|name| !name.is_empty())
        .map_or(UNKNOWN, String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_protocol::kafka_protocol::messages::{
        create_topics_response, describe_groups_response, describe_log_dirs_response,
        fetch_response, find_coordinator_response, leave_group_response, metadata_response,
        offset_commit_response, offset_fetch_response, produce_response, AlterConfigsResponse,
        ApiKey, ApiVersionsResponse, CreatePartitionsResponse, CreateTopicsResponse,
        DeleteGroupsResponse, DeleteRecordsResponse, DeleteTopicsResponse, DescribeClusterResponse,
        DescribeConfigsResponse, DescribeGroupsResponse, DescribeLogDirsResponse, FetchResponse,
        FindCoordinatorResponse, HeartbeatResponse, IncrementalAlterConfigsResponse,
        InitProducerIdResponse, JoinGroupResponse, LeaveGroupResponse, ListGroupsResponse,
        ListOffsetsResponse, MetadataResponse, OffsetCommitResponse, OffsetDeleteResponse,
        OffsetFetchResponse, OffsetForLeaderEpochResponse, ProduceResponse, SyncGroupResponse,
    };
    use cairn_protocol::kafka_protocol::ResponseError;
    use cairn_protocol::{ErrorCode, SUPPORTED_APIS};

    const NONE: i16 = 0;
    const UNKNOWN_TOPIC: i16 = ErrorCode::UnknownTopicOrPartition.code();
    const NOT_LEADER: i16 = ErrorCode::NotLeaderOrFollower.code();
    const NOT_COORDINATOR: i16 = ErrorCode::NotCoordinator.code();

    /// The counts of `response`, sorted by code.
    fn counts(response: ResponseKind) -> Vec<(i16, u64)> {
        let mut found: Vec<(i16, u64)> = error_counts(&response)
            .expect("a response kind the broker answers")
            .iter()
            .collect();
        found.sort_unstable();
        found
    }

    /// A response of `key` with nothing in it, for every API the broker serves.
    fn empty_response(key: ApiKey) -> ResponseKind {
        match key {
            ApiKey::Produce => ResponseKind::Produce(ProduceResponse::default()),
            ApiKey::Fetch => ResponseKind::Fetch(FetchResponse::default()),
            ApiKey::ListOffsets => ResponseKind::ListOffsets(ListOffsetsResponse::default()),
            ApiKey::Metadata => ResponseKind::Metadata(MetadataResponse::default()),
            ApiKey::OffsetCommit => ResponseKind::OffsetCommit(OffsetCommitResponse::default()),
            ApiKey::OffsetFetch => ResponseKind::OffsetFetch(OffsetFetchResponse::default()),
            ApiKey::FindCoordinator => {
                ResponseKind::FindCoordinator(FindCoordinatorResponse::default())
            }
            ApiKey::JoinGroup => ResponseKind::JoinGroup(JoinGroupResponse::default()),
            ApiKey::Heartbeat => ResponseKind::Heartbeat(HeartbeatResponse::default()),
            ApiKey::LeaveGroup => ResponseKind::LeaveGroup(LeaveGroupResponse::default()),
            ApiKey::SyncGroup => ResponseKind::SyncGroup(SyncGroupResponse::default()),
            ApiKey::DescribeGroups => {
                ResponseKind::DescribeGroups(DescribeGroupsResponse::default())
            }
            ApiKey::ListGroups => ResponseKind::ListGroups(ListGroupsResponse::default()),
            ApiKey::ApiVersions => ResponseKind::ApiVersions(ApiVersionsResponse::default()),
            ApiKey::CreateTopics => ResponseKind::CreateTopics(CreateTopicsResponse::default()),
            ApiKey::DeleteTopics => ResponseKind::DeleteTopics(DeleteTopicsResponse::default()),
            ApiKey::DeleteRecords => ResponseKind::DeleteRecords(DeleteRecordsResponse::default()),
            ApiKey::InitProducerId => {
                ResponseKind::InitProducerId(InitProducerIdResponse::default())
            }
            ApiKey::OffsetForLeaderEpoch => {
                ResponseKind::OffsetForLeaderEpoch(OffsetForLeaderEpochResponse::default())
            }
            ApiKey::DescribeConfigs => {
                ResponseKind::DescribeConfigs(DescribeConfigsResponse::default())
            }
            ApiKey::AlterConfigs => ResponseKind::AlterConfigs(AlterConfigsResponse::default()),
            ApiKey::DescribeLogDirs => {
                ResponseKind::DescribeLogDirs(DescribeLogDirsResponse::default())
            }
            ApiKey::CreatePartitions => {
                ResponseKind::CreatePartitions(CreatePartitionsResponse::default())
            }
            ApiKey::DeleteGroups => ResponseKind::DeleteGroups(DeleteGroupsResponse::default()),
            ApiKey::IncrementalAlterConfigs => {
                ResponseKind::IncrementalAlterConfigs(IncrementalAlterConfigsResponse::default())
            }
            ApiKey::OffsetDelete => ResponseKind::OffsetDelete(OffsetDeleteResponse::default()),
            ApiKey::DescribeCluster => {
                ResponseKind::DescribeCluster(DescribeClusterResponse::default())
            }
            other => panic!(
                "the broker serves {other:?}: teach error_counts which of its fields count \
                 (Kafka's {other:?}Response.errorCounts()), then list it here"
            ),
        }
    }

    #[test]
    fn every_api_the_broker_serves_is_counted() {
        for api in SUPPORTED_APIS {
            assert!(
                error_counts(&empty_response(api.key)).is_some(),
                "{:?} responses are not counted",
                api.key
            );
        }
    }

    #[test]
    fn names_are_kafkas() {
        for (code, name) in [
            (-1, "UNKNOWN_SERVER_ERROR"),
            (0, "NONE"),
            (3, "UNKNOWN_TOPIC_OR_PARTITION"),
            (6, "NOT_LEADER_OR_FOLLOWER"),
            (17, "INVALID_TOPIC_EXCEPTION"),
            (35, "UNSUPPORTED_VERSION"),
            (56, "KAFKA_STORAGE_ERROR"),
            (69, "GROUP_ID_NOT_FOUND"),
            (87, "INVALID_RECORD"),
        ] {
            assert_eq!(error_name(code), name, "code {code}");
        }
        // Outside Kafka's table: one bounded label.
        for code in [-2, MAX_CODE + 1, i16::MIN, i16::MAX] {
            assert_eq!(error_name(code), UNKNOWN, "code {code}");
        }
    }

    #[test]
    fn the_name_table_covers_every_code_kafka_protocol_knows() {
        for code in (MAX_CODE + 1)..=i16::MAX {
            assert!(
                matches!(
                    ResponseError::try_from_code(code),
                    Some(ResponseError::Unknown(_))
                ),
                "kafka-protocol knows code {code}: raise MAX_CODE"
            );
        }
        // Each known code has its own name, so no two errors share a series.
        let mut names: Vec<&str> = (MIN_CODE..=MAX_CODE)
            .filter(|c| {
                !matches!(
                    ResponseError::try_from_code(*c),
                    Some(ResponseError::Unknown(_))
                )
            })
            .map(error_name)
            .collect();
        let known = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), known);
        assert!(known > 100, "{known} codes");
    }

    #[test]
    fn produce_counts_each_partition() {
        let partition =
            |code| produce_response::PartitionProduceResponse::default().with_error_code(code);
        let topic = |codes: &[i16]| {
            produce_response::TopicProduceResponse::default()
                .with_partition_responses(codes.iter().map(|c| partition(*c)).collect())
        };
        let r = ProduceResponse::default().with_responses(vec![
            topic(&[NONE, NOT_LEADER, NONE]),
            topic(&[UNKNOWN_TOPIC]),
        ]);
        assert_eq!(
            counts(ResponseKind::Produce(r)),
            [(NONE, 2), (UNKNOWN_TOPIC, 1), (NOT_LEADER, 1)]
        );
        // No partitions, no counts (as Kafka counts an empty produce's answer).
        assert!(counts(ResponseKind::Produce(ProduceResponse::default())).is_empty());
    }

    #[test]
    fn fetch_counts_the_top_level_and_each_partition() {
        let partition = |code| fetch_response::PartitionData::default().with_error_code(code);
        let r = FetchResponse::default()
            .with_responses(vec![fetch_response::FetchableTopicResponse::default()
                .with_partitions(vec![partition(NONE), partition(UNKNOWN_TOPIC)])]);
        assert_eq!(
            counts(ResponseKind::Fetch(r)),
            [(NONE, 2), (UNKNOWN_TOPIC, 1)]
        );
        // A fetch-session error comes alone.
        let r = FetchResponse::default().with_error_code(ErrorCode::UnknownServerError.code());
        assert_eq!(counts(ResponseKind::Fetch(r)), [(-1, 1)]);
    }

    #[test]
    fn metadata_counts_each_topic_and_partition() {
        let r = MetadataResponse::default().with_topics(vec![
            metadata_response::MetadataResponseTopic::default().with_partitions(vec![
                metadata_response::MetadataResponsePartition::default(),
                metadata_response::MetadataResponsePartition::default()
                    .with_error_code(ErrorCode::LeaderNotAvailable.code()),
            ]),
            metadata_response::MetadataResponseTopic::default()
                .with_error_code(ErrorCode::InvalidTopicException.code()),
        ]);
        assert_eq!(
            counts(ResponseKind::Metadata(r)),
            [(NONE, 2), (5, 1), (17, 1)]
        );
    }

    #[test]
    fn offsets_count_each_partition() {
        let commit = OffsetCommitResponse::default().with_topics(vec![
            offset_commit_response::OffsetCommitResponseTopic::default().with_partitions(vec![
                offset_commit_response::OffsetCommitResponsePartition::default(),
                offset_commit_response::OffsetCommitResponsePartition::default()
                    .with_error_code(ErrorCode::IllegalGeneration.code()),
            ]),
        ]);
        assert_eq!(
            counts(ResponseKind::OffsetCommit(commit)),
            [(NONE, 1), (22, 1)]
        );

        // Before v8: the top-level code and each partition's.
        let fetch = OffsetFetchResponse::default().with_topics(vec![
            offset_fetch_response::OffsetFetchResponseTopic::default().with_partitions(vec![
                offset_fetch_response::OffsetFetchResponsePartition::default(),
                offset_fetch_response::OffsetFetchResponsePartition::default(),
            ]),
        ]);
        assert_eq!(counts(ResponseKind::OffsetFetch(fetch)), [(NONE, 3)]);
        // v8+: each group's code and its partitions'.
        let fetch = OffsetFetchResponse::default().with_groups(vec![
            offset_fetch_response::OffsetFetchResponseGroup::default()
                .with_error_code(NOT_COORDINATOR),
            offset_fetch_response::OffsetFetchResponseGroup::default().with_topics(vec![
                offset_fetch_response::OffsetFetchResponseTopics::default().with_partitions(vec![
                    offset_fetch_response::OffsetFetchResponsePartitions::default(),
                ]),
            ]),
        ]);
        assert_eq!(
            counts(ResponseKind::OffsetFetch(fetch)),
            [(NONE, 2), (NOT_COORDINATOR, 1)]
        );
    }

    #[test]
    fn admin_apis_count_each_topic_or_resource() {
        let r = CreateTopicsResponse::default().with_topics(vec![
            create_topics_response::CreatableTopicResult::default(),
            create_topics_response::CreatableTopicResult::default()
                .with_error_code(ErrorCode::TopicAlreadyExists.code()),
            create_topics_response::CreatableTopicResult::default()
                .with_error_code(ErrorCode::TopicAlreadyExists.code()),
        ]);
        assert_eq!(counts(ResponseKind::CreateTopics(r)), [(NONE, 1), (36, 2)]);

        let r = DescribeLogDirsResponse::default().with_results(vec![
            describe_log_dirs_response::DescribeLogDirsResult::default(),
        ]);
        assert_eq!(counts(ResponseKind::DescribeLogDirs(r)), [(NONE, 2)]);
        assert_eq!(
            counts(ResponseKind::InitProducerId(
                InitProducerIdResponse::default()
            )),
            [(NONE, 1)]
        );
    }

    #[test]
    fn group_apis_count_the_top_level_code() {
        let join = JoinGroupResponse::default().with_error_code(ErrorCode::UnknownMemberId.code());
        assert_eq!(counts(ResponseKind::JoinGroup(join)), [(25, 1)]);
        let heartbeat =
            HeartbeatResponse::default().with_error_code(ErrorCode::RebalanceInProgress.code());
        assert_eq!(counts(ResponseKind::Heartbeat(heartbeat)), [(27, 1)]);
        assert_eq!(
            counts(ResponseKind::ListGroups(ListGroupsResponse::default())),
            [(NONE, 1)]
        );
        // LeaveGroup v3+ adds each member's code.
        let leave = LeaveGroupResponse::default()
            .with_members(vec![leave_group_response::MemberResponse::default()
                .with_error_code(ErrorCode::UnknownMemberId.code())]);
        assert_eq!(
            counts(ResponseKind::LeaveGroup(leave)),
            [(NONE, 1), (25, 1)]
        );
        // DescribeGroups: one per group.
        let describe = DescribeGroupsResponse::default().with_groups(vec![
            describe_groups_response::DescribedGroup::default(),
            describe_groups_response::DescribedGroup::default().with_error_code(NOT_COORDINATOR),
        ]);
        assert_eq!(
            counts(ResponseKind::DescribeGroups(describe)),
            [(NONE, 1), (NOT_COORDINATOR, 1)]
        );
        // FindCoordinator v4+: one per key; before, the top-level code.
        let batched = FindCoordinatorResponse::default().with_coordinators(vec![
            find_coordinator_response::Coordinator::default(),
            find_coordinator_response::Coordinator::default()
                .with_error_code(ErrorCode::CoordinatorNotAvailable.code()),
        ]);
        assert_eq!(
            counts(ResponseKind::FindCoordinator(batched)),
            [(NONE, 1), (15, 1)]
        );
        let single = FindCoordinatorResponse::default()
            .with_error_code(ErrorCode::CoordinatorNotAvailable.code());
        assert_eq!(counts(ResponseKind::FindCoordinator(single)), [(15, 1)]);
    }
}
