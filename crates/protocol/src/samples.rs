//! Test-only sample requests: every array holds two elements, strings are non-empty, and
//! flexible versions carry an unknown tagged field, so a round trip exercises each part of
//! each schema in `shape`.

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn s(v: &'static str) -> StrBytes {
    StrBytes::from_static_str(v)
}

fn topic(v: &'static str) -> TopicName {
    TopicName(s(v))
}

fn tags(flexible: bool) -> std::collections::BTreeMap<i32, Bytes> {
    let mut m = std::collections::BTreeMap::new();
    if flexible {
        m.insert(99, Bytes::from_static(b"xyz"));
    }
    m
}

/// One valid uncompressed batch of two records.
pub(crate) fn records() -> Bytes {
    Bytes::from(cairn_storage::batch::build_batch(
        1_700_000_000_000,
        &[b"a", b"bc"],
    ))
}

/// A request of `key` at `version` with every array populated.
pub(crate) fn request(key: ApiKey, version: i16) -> RequestKind {
    let flex_from = crate::shape::SHAPES
        .iter()
        .find(|sh| sh.key == key)
        .map_or(i16::MAX, |sh| sh.flexible_from);
    let flex = version >= flex_from;
    match key {
        ApiKey::Produce => {
            let part = |i| {
                let mut p = produce_request::PartitionProduceData::default();
                p.index = i;
                p.records = Some(records());
                p.unknown_tagged_fields = tags(flex);
                p
            };
            let t = |n| {
                let mut t = produce_request::TopicProduceData::default();
                t.name = topic(n);
                t.partition_data = vec![part(0), part(1)];
                t
            };
            let mut r = ProduceRequest::default();
            if version >= 3 {
                r.transactional_id = Some(TransactionalId(s("tx")));
            }
            r.acks = -1;
            r.timeout_ms = 30_000;
            r.topic_data = vec![t("a"), t("b")];
            r.unknown_tagged_fields = tags(flex);
            RequestKind::Produce(r)
        }
        ApiKey::Fetch => {
            let part = |i| {
                let mut p = fetch_request::FetchPartition::default();
                p.partition = i;
                p.fetch_offset = 42;
                p.partition_max_bytes = 1 << 20;
                if version >= 9 {
                    p.current_leader_epoch = 3;
                }
                if version >= 12 {
                    p.last_fetched_epoch = 2;
                }
                if version >= 5 {
                    p.log_start_offset = 7;
                }
                p
            };
            let t = |n| {
                let mut t = fetch_request::FetchTopic::default();
                t.topic = topic(n);
                t.partitions = vec![part(0), part(1)];
                t
            };
            let mut r = FetchRequest::default();
            r.max_wait_ms = 500;
            r.min_bytes = 1;
            // max_bytes is v3+ (without it, no limit) and isolation_level v4+.
            r.max_bytes = if version >= 3 { 50 << 20 } else { i32::MAX };
            r.isolation_level = i8::from(version >= 4);
            r.topics = vec![t("a"), t("b")];
            if version >= 7 {
                r.session_id = 11;
                r.session_epoch = 2;
                let mut f = fetch_request::ForgottenTopic::default();
                f.topic = topic("gone");
                f.partitions = vec![4, 5];
                r.forgotten_topics_data = vec![f.clone(), f];
            }
            if version >= 11 {
                r.rack_id = s("rack-1");
            }
            if version >= 12 {
                r.cluster_id = Some(s("cluster"));
            }
            r.unknown_tagged_fields = tags(flex);
            RequestKind::Fetch(r)
        }
        ApiKey::ListOffsets => {
            let part = |i| {
                let mut p = list_offsets_request::ListOffsetsPartition::default();
                p.partition_index = i;
                p.timestamp = -2;
                if version >= 4 {
                    p.current_leader_epoch = 1;
                }
                p
            };
            let mut t = list_offsets_request::ListOffsetsTopic::default();
            t.name = topic("a");
            t.partitions = vec![part(0), part(1)];
            let mut r = ListOffsetsRequest::default();
            r.replica_id = BrokerId(-1);
            if version >= 2 {
                r.isolation_level = 1;
            }
            r.topics = vec![t.clone(), t];
            RequestKind::ListOffsets(r)
        }
        ApiKey::Metadata => {
            let t = |n| {
                let mut t = metadata_request::MetadataRequestTopic::default();
                t.name = Some(topic(n));
                t
            };
            let mut r = MetadataRequest::default();
            r.topics = Some(vec![t("a"), t("b")]);
            if version >= 8 {
                r.include_topic_authorized_operations = true;
            }
            r.unknown_tagged_fields = tags(flex);
            RequestKind::Metadata(r)
        }
        ApiKey::OffsetCommit => {
            let part = |i| {
                let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
                p.partition_index = i;
                p.committed_offset = 1234;
                if version >= 6 {
                    p.committed_leader_epoch = 3;
                }
                p.committed_metadata = Some(s("meta"));
                p.unknown_tagged_fields = tags(flex);
                p
            };
            let t = |n| {
                let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
                t.name = topic(n);
                t.partitions = vec![part(0), part(1)];
                t
            };
            let mut r = OffsetCommitRequest::default();
            r.group_id = GroupId(s("g"));
            if version >= 1 {
                r.generation_id_or_member_epoch = 4;
                r.member_id = s("consumer-1-abc");
            }
            if version >= 7 {
                r.group_instance_id = Some(s("instance-1"));
            }
            if (2..=4).contains(&version) {
                r.retention_time_ms = 86_400_000;
            }
            r.topics = vec![t("a"), t("b")];
            r.unknown_tagged_fields = tags(flex);
            RequestKind::OffsetCommit(r)
        }
        ApiKey::OffsetFetch => {
            let mut r = OffsetFetchRequest::default();
            if version <= 7 {
                let t = |n| {
                    let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
                    t.name = topic(n);
                    t.partition_indexes = vec![0, 1];
                    t
                };
                r.group_id = GroupId(s("g"));
                r.topics = Some(vec![t("a"), t("b")]);
            } else {
                let t = |n| {
                    let mut t = offset_fetch_request::OffsetFetchRequestTopics::default();
                    t.name = topic(n);
                    t.partition_indexes = vec![0, 1];
                    t.unknown_tagged_fields = tags(flex);
                    t
                };
                let mut g = offset_fetch_request::OffsetFetchRequestGroup::default();
                g.group_id = GroupId(s("g"));
                if version >= 9 {
                    g.member_id = Some(s("member-1"));
                    g.member_epoch = 5;
                }
                g.topics = Some(vec![t("a"), t("b")]);
                // A second group asking for all its topics.
                let mut all = offset_fetch_request::OffsetFetchRequestGroup::default();
                all.group_id = GroupId(s("h"));
                all.topics = None;
                r.groups = vec![g, all];
            }
            if version >= 7 {
                r.require_stable = true;
            }
            r.unknown_tagged_fields = tags(flex);
            RequestKind::OffsetFetch(r)
        }
        ApiKey::FindCoordinator => {
            let mut r = FindCoordinatorRequest::default();
            if version <= 3 {
                r.key = s("g");
            } else {
                r.coordinator_keys = vec![s("g"), s("h")];
            }
            if version >= 1 {
                r.key_type = 0;
            }
            r.unknown_tagged_fields = tags(flex);
            RequestKind::FindCoordinator(r)
        }
        ApiKey::JoinGroup => {
            let proto = |n| {
                let mut p = join_group_request::JoinGroupRequestProtocol::default();
                p.name = s(n);
                // ConsumerProtocolSubscription v0: topics ["a"], no user data.
                p.metadata =
                    Bytes::from_static(&[0, 0, 0, 0, 0, 1, 0, 1, b'a', 255, 255, 255, 255]);
                p.unknown_tagged_fields = tags(flex);
                p
            };
            let mut r = JoinGroupRequest::default();
            r.group_id = GroupId(s("g"));
            r.session_timeout_ms = 45_000;
            if version >= 1 {
                r.rebalance_timeout_ms = 300_000;
            }
            r.member_id = s("consumer-1-abc");
            if version >= 5 {
                r.group_instance_id = Some(s("instance-1"));
            }
            r.protocol_type = s("consumer");
            r.protocols = vec![proto("range"), proto("cooperative-sticky")];
            if version >= 8 {
                r.reason = Some(s("rebalance failed"));
            }
            r.unknown_tagged_fields = tags(flex);
            RequestKind::JoinGroup(r)
        }
        ApiKey::Heartbeat => {
            let mut r = HeartbeatRequest::default();
            r.group_id = GroupId(s("g"));
            r.generation_id = 4;
            r.member_id = s("consumer-1-abc");
            if version >= 3 {
                r.group_instance_id = Some(s("instance-1"));
            }
            r.unknown_tagged_fields = tags(flex);
            RequestKind::Heartbeat(r)
        }
        ApiKey::LeaveGroup => {
            let mut r = LeaveGroupRequest::default();
            r.group_id = GroupId(s("g"));
            if version <= 2 {
                r.member_id = s("consumer-1-abc");
            } else {
                let m = |id, instance| {
                    let mut m = leave_group_request::MemberIdentity::default();
                    m.member_id = s(id);
                    m.group_instance_id = instance;
                    if version >= 5 {
                        m.reason = Some(s("shutting down"));
                    }
                    m.unknown_tagged_fields = tags(flex);
                    m
                };
                r.members = vec![
                    m("consumer-1-abc", None),
                    m("consumer-2-def", Some(s("instance-2"))),
                ];
            }
            r.unknown_tagged_fields = tags(flex);
            RequestKind::LeaveGroup(r)
        }
        ApiKey::SyncGroup => {
            let a = |m| {
                let mut a = sync_group_request::SyncGroupRequestAssignment::default();
                a.member_id = s(m);
                // ConsumerProtocolAssignment v0: "a" partition 0, no user data.
                a.assignment = Bytes::from_static(&[
                    0, 0, 0, 0, 0, 1, 0, 1, b'a', 0, 0, 0, 1, 0, 0, 0, 0, 255, 255, 255, 255,
                ]);
                a.unknown_tagged_fields = tags(flex);
                a
            };
            let mut r = SyncGroupRequest::default();
            r.group_id = GroupId(s("g"));
            r.generation_id = 4;
            r.member_id = s("consumer-1-abc");
            if version >= 3 {
                r.group_instance_id = Some(s("instance-1"));
            }
            if version >= 5 {
                r.protocol_type = Some(s("consumer"));
                r.protocol_name = Some(s("range"));
            }
            r.assignments = vec![a("consumer-1-abc"), a("consumer-2-def")];
            r.unknown_tagged_fields = tags(flex);
            RequestKind::SyncGroup(r)
        }
        ApiKey::DescribeGroups => {
            let mut r = DescribeGroupsRequest::default();
            r.groups = vec![GroupId(s("g")), GroupId(s("h"))];
            if version >= 3 {
                r.include_authorized_operations = true;
            }
            r.unknown_tagged_fields = tags(flex);
            RequestKind::DescribeGroups(r)
        }
        ApiKey::ListGroups => {
            let mut r = ListGroupsRequest::default();
            if version >= 4 {
                r.states_filter = vec![s("Stable"), s("Empty")];
            }
            if version >= 5 {
                r.types_filter = vec![s("classic"), s("consumer")];
            }
            r.unknown_tagged_fields = tags(flex);
            RequestKind::ListGroups(r)
        }
        ApiKey::ApiVersions => {
            let mut r = ApiVersionsRequest::default();
            if version >= 3 {
                r.client_software_name = s("cairn-test");
                r.client_software_version = s("0.1.0");
            }
            r.unknown_tagged_fields = tags(flex);
            RequestKind::ApiVersions(r)
        }
        ApiKey::CreateTopics => {
            let mut a = create_topics_request::CreatableReplicaAssignment::default();
            a.partition_index = 0;
            a.broker_ids = vec![BrokerId(1), BrokerId(2)];
            let mut c = create_topics_request::CreatableTopicConfig::default();
            c.name = s("retention.ms");
            c.value = Some(s("1000"));
            let mut t = create_topics_request::CreatableTopic::default();
            t.name = topic("new");
            t.num_partitions = -1;
            t.replication_factor = -1;
            t.assignments = vec![a.clone(), a];
            t.configs = vec![c.clone(), c];
            t.unknown_tagged_fields = tags(flex);
            let mut r = CreateTopicsRequest::default();
            r.topics = vec![t.clone(), t];
            r.timeout_ms = 1000;
            r.validate_only = version >= 1;
            RequestKind::CreateTopics(r)
        }
        ApiKey::DeleteTopics => {
            let mut r = DeleteTopicsRequest::default();
            if version >= 6 {
                let mut t = delete_topics_request::DeleteTopicState::default();
                t.name = Some(topic("old"));
                r.topics = vec![t.clone(), t];
            } else {
                r.topic_names = vec![topic("old"), topic("older")];
            }
            r.timeout_ms = 1000;
            RequestKind::DeleteTopics(r)
        }
        ApiKey::DeleteRecords => {
            let mut p = delete_records_request::DeleteRecordsPartition::default();
            p.partition_index = 1;
            p.offset = 100;
            let mut t = delete_records_request::DeleteRecordsTopic::default();
            t.name = topic("a");
            t.partitions = vec![p.clone(), p];
            let mut r = DeleteRecordsRequest::default();
            r.topics = vec![t.clone(), t];
            r.timeout_ms = 1000;
            RequestKind::DeleteRecords(r)
        }
        ApiKey::InitProducerId => {
            let mut r = InitProducerIdRequest::default();
            r.transactional_id = Some(TransactionalId(s("tx")));
            r.transaction_timeout_ms = 60_000;
            if version >= 3 {
                r.producer_id = ProducerId(5);
                r.producer_epoch = 1;
            }
            r.unknown_tagged_fields = tags(flex);
            RequestKind::InitProducerId(r)
        }
        ApiKey::OffsetForLeaderEpoch => {
            let mut p = offset_for_leader_epoch_request::OffsetForLeaderPartition::default();
            p.partition = 0;
            if version >= 2 {
                p.current_leader_epoch = 4;
            }
            p.leader_epoch = 3;
            let mut t = offset_for_leader_epoch_request::OffsetForLeaderTopic::default();
            t.topic = topic("a");
            t.partitions = vec![p.clone(), p];
            let mut r = OffsetForLeaderEpochRequest::default();
            if version >= 3 {
                r.replica_id = BrokerId(-1);
            }
            r.topics = vec![t.clone(), t];
            RequestKind::OffsetForLeaderEpoch(r)
        }
        ApiKey::DescribeConfigs => {
            let mut res = describe_configs_request::DescribeConfigsResource::default();
            res.resource_type = 2;
            res.resource_name = s("a");
            res.configuration_keys = Some(vec![s("retention.ms"), s("segment.bytes")]);
            let mut r = DescribeConfigsRequest::default();
            r.resources = vec![res.clone(), res];
            r.include_synonyms = version >= 1;
            if version >= 3 {
                r.include_documentation = true;
            }
            RequestKind::DescribeConfigs(r)
        }
        ApiKey::AlterConfigs => {
            let mut c = alter_configs_request::AlterableConfig::default();
            c.name = s("retention.ms");
            c.value = Some(s("1000"));
            let mut res = alter_configs_request::AlterConfigsResource::default();
            res.resource_type = 2;
            res.resource_name = s("a");
            res.configs = vec![c.clone(), c];
            res.unknown_tagged_fields = tags(flex);
            let mut r = AlterConfigsRequest::default();
            r.resources = vec![res.clone(), res];
            r.validate_only = true;
            r.unknown_tagged_fields = tags(flex);
            RequestKind::AlterConfigs(r)
        }
        ApiKey::DescribeLogDirs => {
            let mut t = describe_log_dirs_request::DescribableLogDirTopic::default();
            t.topic = topic("a");
            t.partitions = vec![0, 1];
            t.unknown_tagged_fields = tags(flex);
            let mut r = DescribeLogDirsRequest::default();
            r.topics = Some(vec![t.clone(), t]);
            r.unknown_tagged_fields = tags(flex);
            RequestKind::DescribeLogDirs(r)
        }
        ApiKey::CreatePartitions => {
            let mut a = create_partitions_request::CreatePartitionsAssignment::default();
            a.broker_ids = vec![BrokerId(1), BrokerId(2)];
            let mut t = create_partitions_request::CreatePartitionsTopic::default();
            t.name = topic("a");
            t.count = 4;
            t.assignments = Some(vec![a.clone(), a]);
            let mut r = CreatePartitionsRequest::default();
            r.topics = vec![t.clone(), t];
            r.timeout_ms = 1000;
            RequestKind::CreatePartitions(r)
        }
        ApiKey::DeleteGroups => {
            let mut r = DeleteGroupsRequest::default();
            r.groups_names = vec![GroupId(s("g")), GroupId(s("h"))];
            r.unknown_tagged_fields = tags(flex);
            RequestKind::DeleteGroups(r)
        }
        ApiKey::OffsetDelete => {
            let mut p = offset_delete_request::OffsetDeleteRequestPartition::default();
            p.partition_index = 1;
            let mut t = offset_delete_request::OffsetDeleteRequestTopic::default();
            t.name = topic("a");
            t.partitions = vec![p.clone(), p];
            let mut r = OffsetDeleteRequest::default();
            r.group_id = GroupId(s("g"));
            r.topics = vec![t.clone(), t];
            RequestKind::OffsetDelete(r)
        }
        ApiKey::IncrementalAlterConfigs => {
            let mut c = incremental_alter_configs_request::AlterableConfig::default();
            c.name = s("retention.ms");
            c.config_operation = 0;
            c.value = Some(s("1000"));
            let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
            res.resource_type = 2;
            res.resource_name = s("a");
            res.configs = vec![c.clone(), c];
            let mut r = IncrementalAlterConfigsRequest::default();
            r.resources = vec![res.clone(), res];
            RequestKind::IncrementalAlterConfigs(r)
        }
        ApiKey::DescribeCluster => {
            let mut r = DescribeClusterRequest::default();
            r.include_cluster_authorized_operations = true;
            r.unknown_tagged_fields = tags(flex);
            RequestKind::DescribeCluster(r)
        }
        other => panic!("no sample request for {other:?}"),
    }
}

/// A whole request frame (length prefix included) of the sample request.
pub(crate) fn request_frame(key: ApiKey, version: i16, correlation_id: i32) -> bytes::BytesMut {
    crate::client::encode_request(
        key,
        version,
        correlation_id,
        Some("cairn-test"),
        &request(key, version),
    )
    .expect("sample requests encode")
}
