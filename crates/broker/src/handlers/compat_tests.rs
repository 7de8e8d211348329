//! Every served API at every advertised version: a real broker answers a realistic request
//! and the answer encodes at that version (kafka-protocol refuses fields a version lacks)
//! and decodes back. Versions older than kafka-protocol's go through bytes both ways, so
//! the legacy reader and writer are on the path too.

use bytes::Bytes;
use cairn_protocol::kafka_protocol::messages::*;
use cairn_protocol::{client, encode_response, parse_request, Request, SUPPORTED_APIS};

use super::{handle, str_bytes, topic_name};
use crate::{Broker, BrokerConfig};

fn request_for(key: ApiKey, version: i16) -> RequestKind {
    let t = || topic_name("compat");
    match key {
        ApiKey::ApiVersions => RequestKind::ApiVersions(ApiVersionsRequest::default()),
        ApiKey::Metadata => {
            let mut topic = metadata_request::MetadataRequestTopic::default();
            topic.name = Some(t());
            let mut auto = metadata_request::MetadataRequestTopic::default();
            auto.name = Some(topic_name(&format!("auto-{version}")));
            let mut r = MetadataRequest::default();
            r.topics = Some(vec![topic, auto]);
            r.allow_auto_topic_creation = true;
            RequestKind::Metadata(r)
        }
        ApiKey::Produce => {
            let mut p = produce_request::PartitionProduceData::default();
            p.index = 0;
            p.records = Some(Bytes::from(cairn_storage::batch::build_batch(
                1_000,
                &[b"v"],
            )));
            let mut bad = produce_request::PartitionProduceData::default();
            bad.index = 7;
            bad.records = p.records.clone();
            let mut topic = produce_request::TopicProduceData::default();
            topic.name = t();
            topic.partition_data = vec![p, bad];
            let mut r = ProduceRequest::default();
            r.acks = -1;
            r.timeout_ms = 1000;
            r.topic_data = vec![topic];
            RequestKind::Produce(r)
        }
        ApiKey::Fetch => {
            let mut p = fetch_request::FetchPartition::default();
            p.partition = 0;
            p.fetch_offset = 0;
            p.partition_max_bytes = 1 << 20;
            let mut missing = fetch_request::FetchPartition::default();
            missing.partition = 9;
            let mut topic = fetch_request::FetchTopic::default();
            topic.topic = t();
            topic.partitions = vec![p, missing];
            let mut r = FetchRequest::default();
            r.max_wait_ms = 0;
            r.min_bytes = 1;
            r.max_bytes = 1 << 20;
            r.topics = vec![topic];
            RequestKind::Fetch(r)
        }
        ApiKey::ListOffsets => {
            let mut topic = list_offsets_request::ListOffsetsTopic::default();
            topic.name = t();
            topic.partitions = [-1i64, -2, -3, -4, -5, 500]
                .into_iter()
                .map(|ts| {
                    let mut p = list_offsets_request::ListOffsetsPartition::default();
                    p.timestamp = ts;
                    p
                })
                .collect();
            let mut r = ListOffsetsRequest::default();
            r.topics = vec![topic];
            RequestKind::ListOffsets(r)
        }
        ApiKey::OffsetForLeaderEpoch => {
            let mut p = offset_for_leader_epoch_request::OffsetForLeaderPartition::default();
            p.leader_epoch = 1;
            let mut topic = offset_for_leader_epoch_request::OffsetForLeaderTopic::default();
            topic.topic = t();
            topic.partitions = vec![p];
            let mut r = OffsetForLeaderEpochRequest::default();
            r.topics = vec![topic];
            RequestKind::OffsetForLeaderEpoch(r)
        }
        ApiKey::CreateTopics => {
            let mut ok = create_topics_request::CreatableTopic::default();
            ok.name = topic_name(&format!("created-{version}"));
            ok.num_partitions = 2;
            ok.replication_factor = 1;
            let mut c = create_topics_request::CreatableTopicConfig::default();
            c.name = str_bytes("retention.ms");
            c.value = Some(str_bytes("1000"));
            ok.configs = vec![c];
            let mut exists = create_topics_request::CreatableTopic::default();
            exists.name = t();
            exists.num_partitions = 1;
            exists.replication_factor = 1;
            let mut r = CreateTopicsRequest::default();
            r.topics = vec![ok, exists];
            RequestKind::CreateTopics(r)
        }
        ApiKey::DeleteTopics => {
            let mut r = DeleteTopicsRequest::default();
            let name = topic_name(&format!("created-{}", version + 1));
            if version >= 6 {
                let mut s = delete_topics_request::DeleteTopicState::default();
                s.name = Some(name);
                r.topics = vec![s];
            } else {
                r.topic_names = vec![name, topic_name("never-was")];
            }
            RequestKind::DeleteTopics(r)
        }
        ApiKey::CreatePartitions => {
            let mut topic = create_partitions_request::CreatePartitionsTopic::default();
            topic.name = t();
            topic.count = 1;
            let mut r = CreatePartitionsRequest::default();
            r.topics = vec![topic];
            RequestKind::CreatePartitions(r)
        }
        ApiKey::DescribeConfigs => {
            let mut topic = describe_configs_request::DescribeConfigsResource::default();
            topic.resource_type = 2;
            topic.resource_name = str_bytes("compat");
            let mut broker = describe_configs_request::DescribeConfigsResource::default();
            broker.resource_type = 4;
            broker.resource_name = str_bytes("1");
            let mut cluster = describe_configs_request::DescribeConfigsResource::default();
            cluster.resource_type = 4;
            let mut r = DescribeConfigsRequest::default();
            r.resources = vec![topic, broker, cluster];
            r.include_synonyms = version >= 1;
            r.include_documentation = version >= 3;
            RequestKind::DescribeConfigs(r)
        }
        ApiKey::IncrementalAlterConfigs => {
            let mut c = incremental_alter_configs_request::AlterableConfig::default();
            c.name = str_bytes("retention.ms");
            c.value = Some(str_bytes("86400000"));
            let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
            res.resource_type = 2;
            res.resource_name = str_bytes("compat");
            res.configs = vec![c];
            let mut r = IncrementalAlterConfigsRequest::default();
            r.resources = vec![res];
            RequestKind::IncrementalAlterConfigs(r)
        }
        ApiKey::AlterConfigs => {
            let mut c = alter_configs_request::AlterableConfig::default();
            c.name = str_bytes("retention.ms");
            c.value = Some(str_bytes("86400000"));
            let mut topic = alter_configs_request::AlterConfigsResource::default();
            topic.resource_type = 2;
            topic.resource_name = str_bytes("compat");
            topic.configs = vec![c];
            let mut b = alter_configs_request::AlterableConfig::default();
            b.name = str_bytes("log.flush.interval.ms");
            b.value = Some(str_bytes("60000"));
            let mut broker = alter_configs_request::AlterConfigsResource::default();
            broker.resource_type = 4;
            broker.resource_name = str_bytes("1");
            broker.configs = vec![b];
            let mut r = AlterConfigsRequest::default();
            r.resources = vec![topic, broker];
            r.validate_only = version % 2 == 1;
            RequestKind::AlterConfigs(r)
        }
        ApiKey::DescribeLogDirs => {
            let mut r = DescribeLogDirsRequest::default();
            if version % 2 == 1 {
                let mut topic = describe_log_dirs_request::DescribableLogDirTopic::default();
                topic.topic = t();
                topic.partitions = vec![0, 5];
                r.topics = Some(vec![topic]);
            }
            RequestKind::DescribeLogDirs(r)
        }
        ApiKey::InitProducerId => RequestKind::InitProducerId(InitProducerIdRequest::default()),
        ApiKey::DescribeCluster => RequestKind::DescribeCluster(DescribeClusterRequest::default()),
        ApiKey::DeleteRecords => {
            let mut p = delete_records_request::DeleteRecordsPartition::default();
            p.offset = -1;
            let mut topic = delete_records_request::DeleteRecordsTopic::default();
            topic.name = t();
            topic.partitions = vec![p];
            let mut r = DeleteRecordsRequest::default();
            r.topics = vec![topic];
            RequestKind::DeleteRecords(r)
        }
        ApiKey::FindCoordinator => {
            let mut r = FindCoordinatorRequest::default();
            r.key = str_bytes("compat-group");
            r.coordinator_keys = vec![str_bytes("compat-group"), str_bytes("other")];
            RequestKind::FindCoordinator(r)
        }
        ApiKey::JoinGroup => {
            // A group per version: a new member would otherwise wait for the previous
            // version's member to rejoin.
            let mut p = join_group_request::JoinGroupRequestProtocol::default();
            p.name = str_bytes("range");
            p.metadata = Bytes::from_static(b"meta");
            let mut r = JoinGroupRequest::default();
            r.group_id = GroupId(str_bytes(&format!("join-{version}")));
            r.session_timeout_ms = 10_000;
            r.rebalance_timeout_ms = 10_000;
            r.protocol_type = str_bytes("consumer");
            r.protocols = vec![p];
            RequestKind::JoinGroup(r)
        }
        ApiKey::SyncGroup => {
            let mut r = SyncGroupRequest::default();
            r.group_id = GroupId(str_bytes("compat-group"));
            r.generation_id = 1;
            r.member_id = str_bytes("nobody");
            RequestKind::SyncGroup(r)
        }
        ApiKey::Heartbeat => {
            let mut r = HeartbeatRequest::default();
            r.group_id = GroupId(str_bytes("compat-group"));
            r.member_id = str_bytes("nobody");
            RequestKind::Heartbeat(r)
        }
        ApiKey::LeaveGroup => {
            let mut m = leave_group_request::MemberIdentity::default();
            m.member_id = str_bytes("nobody");
            let mut r = LeaveGroupRequest::default();
            r.group_id = GroupId(str_bytes("compat-group"));
            r.member_id = str_bytes("nobody");
            r.members = vec![m];
            RequestKind::LeaveGroup(r)
        }
        ApiKey::OffsetCommit => {
            let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
            p.committed_offset = 1;
            p.committed_metadata = Some(str_bytes("m"));
            let mut topic = offset_commit_request::OffsetCommitRequestTopic::default();
            topic.name = t();
            topic.partitions = vec![p];
            let mut r = OffsetCommitRequest::default();
            r.group_id = GroupId(str_bytes("compat-group"));
            r.generation_id_or_member_epoch = -1;
            r.topics = vec![topic];
            RequestKind::OffsetCommit(r)
        }
        ApiKey::OffsetFetch => {
            let mut topic = offset_fetch_request::OffsetFetchRequestTopic::default();
            topic.name = t();
            topic.partition_indexes = vec![0, 1];
            let mut group = offset_fetch_request::OffsetFetchRequestGroup::default();
            group.group_id = GroupId(str_bytes("compat-group"));
            let mut r = OffsetFetchRequest::default();
            r.group_id = GroupId(str_bytes("compat-group"));
            if version >= 8 {
                r.groups = vec![group];
            } else {
                r.topics = Some(vec![topic]);
            }
            RequestKind::OffsetFetch(r)
        }
        ApiKey::ListGroups => RequestKind::ListGroups(ListGroupsRequest::default()),
        ApiKey::DescribeGroups => {
            let mut r = DescribeGroupsRequest::default();
            r.groups = vec![
                GroupId(str_bytes("compat-group")),
                GroupId(str_bytes("join-9")),
                GroupId(str_bytes("never-was")),
            ];
            RequestKind::DescribeGroups(r)
        }
        ApiKey::DeleteGroups => {
            let mut r = DeleteGroupsRequest::default();
            r.groups_names = vec![GroupId(str_bytes("never-was"))];
            RequestKind::DeleteGroups(r)
        }
        ApiKey::OffsetDelete => {
            let mut p = offset_delete_request::OffsetDeleteRequestPartition::default();
            p.partition_index = 0;
            let mut topic = offset_delete_request::OffsetDeleteRequestTopic::default();
            topic.name = t();
            topic.partitions = vec![p];
            let mut r = OffsetDeleteRequest::default();
            r.group_id = GroupId(str_bytes("compat-group"));
            r.topics = vec![topic];
            RequestKind::OffsetDelete(r)
        }
        other => panic!("no request built for {other:?}: add one here"),
    }
}

#[tokio::test]
async fn every_api_at_every_version_answers_and_encodes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = BrokerConfig::new(
        dir.path().to_path_buf(),
        "127.0.0.1:0".parse().expect("addr"),
    );
    // JoinGroup before v4 joins at once (no member-id round trip): no initial delay, and
    // few offsets partitions to keep the test quick.
    config.groups.coordinator.group_initial_rebalance_delay_ms = 0;
    config.groups.offsets_topic_partitions = 3;
    let broker = Broker::start(config).await.expect("start");
    let ctx = broker.ctx();
    ctx.topics
        .create("compat", 1, Default::default(), false)
        .await
        .expect("topic");
    let mut answered = 0;
    for api in SUPPORTED_APIS {
        for version in api.min..=api.max {
            let body = request_for(api.key, version);
            let request = if version < api.key.valid_versions().min {
                let mut frame = client::encode_request(api.key, version, 7, Some("compat"), &body)
                    .unwrap_or_else(|e| panic!("{:?} v{version}: {e}", api.key))
                    .freeze();
                let _ = frame.split_to(4);
                parse_request(frame).unwrap_or_else(|e| panic!("{:?} v{version}: {e}", api.key))
            } else {
                Request {
                    api_key: api.key,
                    api_version: version,
                    correlation_id: 7,
                    client_id: Some("compat".into()),
                    body,
                    legacy: None,
                    trailing_bytes: 0,
                }
            };
            let conn = super::Conn::new("127.0.0.1:1".parse().expect("addr"));
            let response = handle(ctx.clone(), conn, request)
                .await
                .unwrap_or_else(|| panic!("{:?} v{version} gave no response", api.key));
            let frame = encode_response(7, api.key, version, &response)
                .unwrap_or_else(|e| panic!("{:?} v{version} does not encode: {e}", api.key));
            let (correlation_id, _) =
                client::decode_response(Bytes::from(frame[4..].to_vec()), api.key, version)
                    .unwrap_or_else(|e| panic!("{:?} v{version} does not decode: {e}", api.key));
            assert_eq!(correlation_id, 7);
            answered += 1;
        }
    }
    let advertised: i32 = SUPPORTED_APIS
        .iter()
        .map(|a| (a.max - a.min + 1) as i32)
        .sum();
    assert_eq!(answered, advertised, "every advertised version answered");
    broker.shutdown().await;
}
