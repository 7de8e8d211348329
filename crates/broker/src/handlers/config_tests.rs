//! The config APIs, DescribeLogDirs and the legacy request versions against a real broker:
//! what a client sees, what the partitions do, and what a restart keeps.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use cairn_protocol::kafka_protocol::messages::describe_log_dirs_response::DescribeLogDirsResult;
use cairn_protocol::kafka_protocol::messages::*;
use cairn_protocol::{client, message_sets, parse_request, ErrorCode, Request};

use super::{handle, str_bytes, topic_name};
use crate::node::Node;
use crate::{Broker, BrokerConfig};

async fn start(dir: &Path) -> Broker {
    let config = BrokerConfig::new(dir.to_path_buf(), "127.0.0.1:0".parse().expect("addr"));
    Broker::start(config).await.expect("start")
}

async fn ask(ctx: &Arc<Node>, version: i16, body: RequestKind) -> ResponseKind {
    let key = match &body {
        RequestKind::AlterConfigs(_) => ApiKey::AlterConfigs,
        RequestKind::IncrementalAlterConfigs(_) => ApiKey::IncrementalAlterConfigs,
        RequestKind::DescribeConfigs(_) => ApiKey::DescribeConfigs,
        RequestKind::DescribeLogDirs(_) => ApiKey::DescribeLogDirs,
        RequestKind::Produce(_) => ApiKey::Produce,
        RequestKind::Fetch(_) => ApiKey::Fetch,
        RequestKind::ListOffsets(_) => ApiKey::ListOffsets,
        RequestKind::OffsetCommit(_) => ApiKey::OffsetCommit,
        other => panic!("no key for {other:?}"),
    };
    // Through bytes, so the version's layout (and the legacy side fields) is what is read.
    let mut frame = client::encode_request(key, version, 1, Some("test"), &body)
        .expect("encode")
        .freeze();
    let _ = frame.split_to(4);
    let request: Request = parse_request(frame).expect("parse");
    let response = handle(
        Arc::clone(ctx),
        super::Conn::new("127.0.0.1:1".parse().expect("addr")),
        request,
    )
    .await
    .expect("answered");
    // And back: the answer must encode at that version.
    let frame = cairn_protocol::encode_response(1, key, version, &response).expect("encode");
    client::decode_response(Bytes::from(frame[4..].to_vec()), key, version)
        .expect("decode")
        .1
}

fn alter_configs(
    resource_type: i8,
    name: &str,
    configs: &[(&str, Option<&str>)],
    validate_only: bool,
) -> RequestKind {
    let mut res = alter_configs_request::AlterConfigsResource::default();
    res.resource_type = resource_type;
    res.resource_name = str_bytes(name);
    res.configs = configs
        .iter()
        .map(|(k, v)| {
            let mut c = alter_configs_request::AlterableConfig::default();
            c.name = str_bytes(k);
            c.value = v.map(str_bytes);
            c
        })
        .collect();
    let mut r = AlterConfigsRequest::default();
    r.resources = vec![res];
    r.validate_only = validate_only;
    RequestKind::AlterConfigs(r)
}

fn incremental(resource_type: i8, name: &str, ops: &[(&str, i8, Option<&str>)]) -> RequestKind {
    let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
    res.resource_type = resource_type;
    res.resource_name = str_bytes(name);
    res.configs = ops
        .iter()
        .map(|(k, op, v)| {
            let mut c = incremental_alter_configs_request::AlterableConfig::default();
            c.name = str_bytes(k);
            c.config_operation = *op;
            c.value = v.map(str_bytes);
            c
        })
        .collect();
    let mut r = IncrementalAlterConfigsRequest::default();
    r.resources = vec![res];
    RequestKind::IncrementalAlterConfigs(r)
}

/// (error code, message) of the one resource of an alter answer.
fn alter_result(r: ResponseKind) -> (i16, String) {
    let (code, message) = match r {
        ResponseKind::AlterConfigs(r) => (
            r.responses[0].error_code,
            r.responses[0].error_message.clone(),
        ),
        ResponseKind::IncrementalAlterConfigs(r) => (
            r.responses[0].error_code,
            r.responses[0].error_message.clone(),
        ),
        other => panic!("not an alter answer: {other:?}"),
    };
    (code, message.map(|m| m.to_string()).unwrap_or_default())
}

/// name -> (value, source, read_only, synonym sources)
type Described = std::collections::BTreeMap<String, (String, i8, bool, Vec<(String, i8)>)>;

async fn describe(
    ctx: &Arc<Node>,
    version: i16,
    resource_type: i8,
    name: &str,
) -> (i16, Described) {
    let mut res = describe_configs_request::DescribeConfigsResource::default();
    res.resource_type = resource_type;
    res.resource_name = str_bytes(name);
    let mut r = DescribeConfigsRequest::default();
    r.resources = vec![res];
    r.include_synonyms = version >= 1;
    let ResponseKind::DescribeConfigs(resp) =
        ask(ctx, version, RequestKind::DescribeConfigs(r)).await
    else {
        panic!("not DescribeConfigs")
    };
    let result = &resp.results[0];
    let described = result
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                (
                    c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                    c.config_source,
                    c.read_only,
                    c.synonyms
                        .iter()
                        .map(|s| (s.name.to_string(), s.source))
                        .collect(),
                ),
            )
        })
        .collect();
    (result.error_code, described)
}

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

#[tokio::test]
async fn legacy_alter_configs_replaces_a_topics_whole_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path()).await;
    let ctx = broker.ctx();
    let configs = crate::TopicConfigs::from_pairs([
        ("retention.ms", Some("1000")),
        ("segment.bytes", Some("4096")),
    ])
    .expect("valid");
    ctx.topics
        .create("t", 1, configs, false)
        .await
        .expect("topic");

    let only_flush = alter_configs(TOPIC, "t", &[("flush.messages", Some("10"))], false);
    assert_eq!(alter_result(ask(&ctx, 0, only_flush).await).0, 0);
    let (_, d) = describe(&ctx, 1, TOPIC, "t").await;
    assert_eq!(d["flush.messages"].0, "10");
    assert_eq!(d["flush.messages"].1, 1, "TOPIC_CONFIG");
    assert_eq!(
        d["retention.ms"].0, "604800000",
        "unlisted overrides revert to the default"
    );
    assert_eq!(d["retention.ms"].1, 5, "DEFAULT_CONFIG");
    assert_eq!(d["segment.bytes"].0, "1073741824");
    let topic = ctx.topics.get("t").expect("topic");
    assert_eq!(topic.log.flush_messages, Some(10), "applied to the log");
    assert_eq!(topic.log.segment_bytes, 1 << 30);

    // validate_only changes nothing; bad values and nulls are refused.
    let dry = alter_configs(TOPIC, "t", &[("retention.ms", Some("5"))], true);
    assert_eq!(alter_result(ask(&ctx, 1, dry).await).0, 0);
    assert_eq!(
        describe(&ctx, 1, TOPIC, "t").await.1["retention.ms"].0,
        "604800000"
    );
    let bad = alter_configs(TOPIC, "t", &[("retention.ms", Some("soon"))], false);
    assert_eq!(
        alter_result(ask(&ctx, 2, bad).await).0,
        ErrorCode::InvalidConfig.code()
    );
    let null = alter_configs(TOPIC, "t", &[("retention.ms", None)], false);
    let (code, message) = alter_result(ask(&ctx, 2, null).await);
    assert_eq!(code, ErrorCode::InvalidRequest.code());
    assert!(message.contains("Null value"), "{message}");
    let missing = alter_configs(TOPIC, "nope", &[("retention.ms", Some("5"))], false);
    assert_eq!(
        alter_result(ask(&ctx, 0, missing).await).0,
        ErrorCode::UnknownTopicOrPartition.code()
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn dynamic_broker_log_defaults_reach_topics_without_overrides_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path()).await;
    let ctx = broker.ctx();
    ctx.topics
        .create("plain", 2, Default::default(), false)
        .await
        .expect("topic");
    let own = crate::TopicConfigs::from_pairs([("retention.ms", Some("1000"))]).expect("valid");
    ctx.topics
        .create("own", 1, own, false)
        .await
        .expect("topic");

    let set = incremental(BROKER, "1", &[("log.retention.ms", 0, Some("60000"))]);
    assert_eq!(alter_result(ask(&ctx, 1, set).await), (0, String::new()));
    let cluster = alter_configs(
        BROKER,
        "",
        &[("log.flush.interval.messages", Some("7"))],
        false,
    );
    assert_eq!(alter_result(ask(&ctx, 0, cluster).await).0, 0);

    let (code, b) = describe(&ctx, 1, BROKER, "1").await;
    assert_eq!(code, 0);
    assert_eq!(b["log.retention.ms"].0, "60000");
    assert_eq!(b["log.retention.ms"].1, 2, "DYNAMIC_BROKER_CONFIG");
    assert!(!b["log.retention.ms"].2, "dynamic: not read-only");
    assert_eq!(
        b["log.retention.ms"].3,
        [
            ("log.retention.ms".to_string(), 2),
            ("log.retention.ms".to_string(), 5)
        ]
    );
    assert_eq!(
        b["log.flush.interval.messages"].1, 3,
        "DYNAMIC_DEFAULT_BROKER_CONFIG"
    );
    assert_eq!(
        b["num.partitions"],
        ("1".into(), 5, true, vec![("num.partitions".into(), 5)])
    );
    let (_, defaults) = describe(&ctx, 1, BROKER, "").await;
    assert_eq!(
        defaults.keys().collect::<Vec<_>>(),
        ["log.flush.interval.messages"],
        "the cluster resource lists what is set there"
    );

    let (_, plain) = describe(&ctx, 1, TOPIC, "plain").await;
    assert_eq!(plain["retention.ms"].0, "60000", "inherited");
    assert_eq!(
        plain["retention.ms"].1, 2,
        "from the broker's dynamic value"
    );
    assert_eq!(plain["flush.messages"].1, 3);
    let (_, own) = describe(&ctx, 1, TOPIC, "own").await;
    assert_eq!(own["retention.ms"].0, "1000", "an override wins");
    assert_eq!(own["retention.ms"].1, 1);
    assert_eq!(own["retention.ms"].3[0], ("retention.ms".to_string(), 1));
    assert_eq!(
        own["retention.ms"].3[1],
        ("log.retention.ms".to_string(), 2)
    );
    let plain_log = ctx.topics.get("plain").expect("topic").log.clone();
    assert_eq!(
        (plain_log.retention_ms, plain_log.flush_messages),
        (Some(60_000), Some(7))
    );
    assert_eq!(
        ctx.topics.get("own").expect("topic").log.retention_ms,
        Some(1000)
    );
    // v0 answers is_default, read back as Java's client maps it.
    let (_, v0) = describe(&ctx, 0, TOPIC, "plain").await;
    assert_eq!(
        v0["retention.ms"].1, 1,
        "not default: TOPIC per Java's v0 mapping"
    );
    assert_eq!(v0["segment.bytes"].1, 5);

    // Refusals, with Kafka's codes; nothing changes.
    let read_only = incremental(BROKER, "1", &[("num.partitions", 0, Some("3"))]);
    let (code, message) = alter_result(ask(&ctx, 1, read_only).await);
    assert_eq!(code, ErrorCode::InvalidRequest.code());
    assert!(
        message.contains("Cannot update these configs dynamically: num.partitions"),
        "{message}"
    );
    let unknown = incremental(BROKER, "1", &[("log.retention.hourz", 0, Some("3"))]);
    let (code, message) = alter_result(ask(&ctx, 1, unknown).await);
    assert_eq!(code, ErrorCode::InvalidConfig.code());
    assert!(message.contains("log.retention.hourz"), "{message}");
    let other = incremental(BROKER, "2", &[("log.retention.ms", 0, Some("3"))]);
    assert_eq!(
        alter_result(ask(&ctx, 1, other).await).0,
        ErrorCode::InvalidRequest.code()
    );
    let append = incremental(BROKER, "1", &[("log.retention.ms", 2, Some("3"))]);
    assert_eq!(
        alter_result(ask(&ctx, 1, append).await).0,
        ErrorCode::InvalidConfig.code()
    );
    broker.shutdown().await;

    // A restart keeps the dynamic values and applies them before topics open.
    let broker = start(dir.path()).await;
    let ctx = broker.ctx();
    let (_, b) = describe(&ctx, 1, BROKER, "1").await;
    assert_eq!(
        (b["log.retention.ms"].0.as_str(), b["log.retention.ms"].1),
        ("60000", 2)
    );
    assert_eq!(
        ctx.topics.get("plain").expect("topic").log.retention_ms,
        Some(60_000)
    );

    // Legacy AlterConfigs on the broker replaces its whole per-broker set.
    let replace = alter_configs(
        BROKER,
        "1",
        &[("log.segment.bytes", Some("1048576"))],
        false,
    );
    assert_eq!(alter_result(ask(&ctx, 2, replace).await).0, 0);
    let (_, b) = describe(&ctx, 1, BROKER, "1").await;
    assert_eq!(b["log.retention.ms"].1, 5, "back to the default");
    assert_eq!(b["log.segment.bytes"].1, 2);
    assert_eq!(
        b["log.flush.interval.messages"].1, 3,
        "the cluster level is separate"
    );
    let log = ctx.topics.get("plain").expect("topic").log.clone();
    assert_eq!(
        (log.retention_ms, log.segment_bytes),
        (Some(604_800_000), 1 << 20)
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn static_broker_configs_are_reported_as_static() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = BrokerConfig::new(
        dir.path().to_path_buf(),
        "127.0.0.1:0".parse().expect("addr"),
    );
    config.num_partitions = 4;
    config.log.retention_ms = Some(86_400_000);
    config.static_configs = ["num.partitions", "log.retention.ms"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let broker = Broker::start(config).await.expect("start");
    let ctx = broker.ctx();
    ctx.topics
        .create("t", 1, Default::default(), false)
        .await
        .expect("topic");
    let (_, b) = describe(&ctx, 1, BROKER, "1").await;
    assert_eq!(
        (b["num.partitions"].0.as_str(), b["num.partitions"].1),
        ("4", 4)
    );
    assert_eq!(
        (b["log.retention.ms"].0.as_str(), b["log.retention.ms"].1),
        ("86400000", 4)
    );
    assert_eq!(b["log.segment.bytes"].1, 5);
    let (_, t) = describe(&ctx, 1, TOPIC, "t").await;
    assert_eq!(
        (t["retention.ms"].0.as_str(), t["retention.ms"].1),
        ("86400000", 4)
    );
    broker.shutdown().await;
}

fn produce(topic: &str, records: usize) -> RequestKind {
    let values: Vec<&[u8]> = vec![&b"0123456789abcdef"[..]; records];
    let mut p = produce_request::PartitionProduceData::default();
    p.index = 0;
    p.records = Some(Bytes::from(cairn_storage::batch::build_batch(
        1_000, &values,
    )));
    let mut t = produce_request::TopicProduceData::default();
    t.name = topic_name(topic);
    t.partition_data = vec![p];
    let mut r = ProduceRequest::default();
    r.acks = -1;
    r.timeout_ms = 5000;
    r.topic_data = vec![t];
    RequestKind::Produce(r)
}

async fn log_dir_sizes(
    ctx: &Arc<Node>,
    version: i16,
    topics: Option<&[(&str, &[i32])]>,
) -> (DescribeLogDirsResult, Vec<(String, i32, i64)>) {
    let mut r = DescribeLogDirsRequest::default();
    r.topics = topics.map(|ts| {
        ts.iter()
            .map(|(t, ps)| {
                let mut d = describe_log_dirs_request::DescribableLogDirTopic::default();
                d.topic = topic_name(t);
                d.partitions = ps.to_vec();
                d
            })
            .collect()
    });
    let ResponseKind::DescribeLogDirs(resp) =
        ask(ctx, version, RequestKind::DescribeLogDirs(r)).await
    else {
        panic!("not DescribeLogDirs")
    };
    let dir = resp.results[0].clone();
    let sizes = dir
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.partition_index, p.partition_size))
        })
        .collect();
    (dir, sizes)
}

#[tokio::test]
async fn describe_log_dirs_reports_partition_sizes_that_grow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path()).await;
    let ctx = broker.ctx();
    ctx.topics
        .create("a", 2, Default::default(), false)
        .await
        .expect("topic");
    ctx.topics
        .create("b", 1, Default::default(), false)
        .await
        .expect("topic");

    let (result, before) = log_dir_sizes(&ctx, 4, None).await;
    assert_eq!(result.error_code, 0);
    assert_eq!(
        result.log_dir.as_str(),
        std::path::absolute(dir.path())
            .expect("abs")
            .to_string_lossy()
    );
    assert!(
        result.total_bytes > 0
            && result.usable_bytes > 0
            && result.usable_bytes <= result.total_bytes
    );
    let names: Vec<(String, i32)> = before.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
    assert_eq!(names, [("a".into(), 0), ("a".into(), 1), ("b".into(), 0)]);

    let ResponseKind::Produce(p) = ask(&ctx, 9, produce("a", 50)).await else {
        panic!("not Produce")
    };
    assert_eq!(p.responses[0].partition_responses[0].error_code, 0);
    let (_, after) = log_dir_sizes(&ctx, 0, Some(&[("a", &[0, 1, 9]), ("nope", &[0])])).await;
    assert_eq!(after.len(), 2, "unknown partitions and topics are left out");
    let grown = after[0].2 - before[0].2;
    assert!(grown >= 50 * 16, "partition a-0 grew by {grown} bytes");
    assert_eq!(after[1].2, before[1].2, "a-1 received nothing");
    broker.shutdown().await;
}

/// Produce v0–v2 carry message sets (formats 0 and 1): they are up-converted and stored
/// as v2 batches, and Fetch v0–v3 down-convert them back, each in its own format.
#[tokio::test]
async fn message_sets_are_produced_and_fetched_in_the_old_versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path()).await;
    let ctx = broker.ctx();
    ctx.topics
        .create("t", 1, Default::default(), false)
        .await
        .expect("topic");
    for version in 0..=2i16 {
        let values: Vec<Vec<u8>> = (0..3)
            .map(|i| format!("v{version}-{i}").into_bytes())
            .collect();
        let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        let batch = cairn_storage::batch::build_batch(1_000 + i64::from(version), &refs);
        // An old client's message set: format 0 for Produce v0-v1, 1 for v2.
        let magic = u8::from(version == 2);
        let set = message_sets::downconvert(&batch, magic, usize::MAX);
        let RequestKind::Produce(mut req) = produce("t", 1) else {
            unreachable!()
        };
        req.topic_data[0].partition_data[0].records = Some(set);
        let ResponseKind::Produce(resp) = ask(&ctx, version, RequestKind::Produce(req)).await
        else {
            panic!("not Produce")
        };
        let p = &resp.responses[0].partition_responses[0];
        assert_eq!(
            (p.error_code, p.base_offset),
            (0, 3 * i64::from(version)),
            "v{version}"
        );
    }
    assert_eq!(
        ctx.topics.get("t").expect("topic").partitions[0]
            .state()
            .high_watermark,
        9
    );
    for version in 0..=4i16 {
        let mut fp = fetch_request::FetchPartition::default();
        fp.partition = 0;
        fp.partition_max_bytes = 1 << 20;
        let mut ft = fetch_request::FetchTopic::default();
        ft.topic = topic_name("t");
        ft.partitions = vec![fp];
        let mut r = FetchRequest::default();
        r.max_bytes = 1 << 20;
        r.topics = vec![ft];
        let ResponseKind::Fetch(resp) = ask(&ctx, version, RequestKind::Fetch(r)).await else {
            panic!("not Fetch")
        };
        let p = &resp.responses[0].partitions[0];
        assert_eq!((p.error_code, p.high_watermark), (0, 9), "v{version}");
        let records = p.records.clone().expect("records");
        if version < 4 {
            let magic = if version < 2 { 0 } else { 1 };
            assert_eq!(records[16], magic, "v{version} answers format {magic}");
            // The message set reads back (through up-conversion) as the nine records.
            let batch = message_sets::upconvert(&records, &Default::default()).expect("valid");
            let mut b = batch.clone();
            let set = cairn_protocol::kafka_protocol::records::RecordBatchDecoder::decode(&mut b)
                .expect("decodes");
            let values: Vec<_> = set.records.iter().filter_map(|r| r.value.clone()).collect();
            assert_eq!(values.len(), 9, "v{version}");
            assert_eq!(&values[8][..], b"v2-2");
        } else {
            assert_eq!(records[16], 2, "v4 answers v2 batches");
        }
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn list_offsets_v0_and_offset_commit_v1_keep_their_meaning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = BrokerConfig::new(
        dir.path().to_path_buf(),
        "127.0.0.1:0".parse().expect("addr"),
    );
    config.groups.offsets_topic_partitions = 1;
    let broker = Broker::start(config).await.expect("start");
    let ctx = broker.ctx();
    ctx.topics
        .create("t", 1, Default::default(), false)
        .await
        .expect("topic");
    ask(&ctx, 9, produce("t", 3)).await;
    let hw = ctx.topics.get("t").expect("topic").partitions[0]
        .state()
        .high_watermark as i64;

    // ListOffsets v0: latest, earliest, an unsupported special timestamp. The encoder sends
    // max_num_offsets 1.
    let mut t = list_offsets_request::ListOffsetsTopic::default();
    t.name = topic_name("t");
    t.partitions = [-1i64, -2, -3, 0, i64::MAX]
        .iter()
        .map(|ts| {
            let mut p = list_offsets_request::ListOffsetsPartition::default();
            p.timestamp = *ts;
            p
        })
        .collect();
    let mut r = ListOffsetsRequest::default();
    r.replica_id = BrokerId(-1);
    r.topics = vec![t];
    let ResponseKind::ListOffsets(resp) = ask(&ctx, 0, RequestKind::ListOffsets(r)).await else {
        panic!("not ListOffsets")
    };
    let got: Vec<(i16, i64)> = resp.topics[0]
        .partitions
        .iter()
        .map(|p| (p.error_code, p.offset))
        .collect();
    let start = ctx.topics.get("t").expect("topic").partitions[0]
        .state()
        .log_start_offset as i64;
    assert_eq!(
        got,
        [
            (0, hw),
            (0, start),
            (ErrorCode::UnsupportedVersion.code(), -1),
            (0, hw - 3),
            (0, hw),
        ],
        "a time after every record answers the log end, as Kafka's v0 did"
    );

    // OffsetCommit v1 keeps the commit timestamp the client gave; v0 commits simply.
    let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
    p.committed_offset = 2;
    let mut topic = offset_commit_request::OffsetCommitRequestTopic::default();
    topic.name = topic_name("t");
    topic.partitions = vec![p];
    let mut r = OffsetCommitRequest::default();
    r.group_id = GroupId(str_bytes("old"));
    r.generation_id_or_member_epoch = -1;
    r.topics = vec![topic];
    let ResponseKind::OffsetCommit(resp) = ask(&ctx, 0, RequestKind::OffsetCommit(r.clone())).await
    else {
        panic!("not OffsetCommit")
    };
    assert_eq!(resp.topics[0].partitions[0].error_code, 0);
    let committed = ctx
        .groups
        .read(|c| c.committed_offset("old", "t", 0).cloned());
    assert_eq!(committed.map(|v| v.offset), Some(2));

    // v1 with an explicit timestamp goes through the legacy writer by hand here: the
    // client encoder has no room for it, so build the bytes.
    let mut frame = bytes::BytesMut::new();
    use bytes::BufMut;
    frame.put_i16(ApiKey::OffsetCommit as i16);
    frame.put_i16(1);
    frame.put_i32(1);
    frame.put_i16(-1);
    frame.put_i16(3);
    frame.put_slice(b"old");
    frame.put_i32(-1);
    frame.put_i16(0);
    frame.put_i32(1);
    frame.put_i16(1);
    frame.put_slice(b"t");
    frame.put_i32(1);
    frame.put_i32(0);
    frame.put_i64(3);
    frame.put_i64(1_234_567);
    frame.put_i16(-1);
    let request = parse_request(frame.freeze()).expect("parse");
    handle(
        Arc::clone(&ctx),
        super::Conn::new("127.0.0.1:1".parse().expect("addr")),
        request,
    )
    .await
    .expect("answered");
    let committed = ctx
        .groups
        .read(|c| c.committed_offset("old", "t", 0).cloned())
        .expect("committed");
    assert_eq!(
        (committed.offset, committed.commit_timestamp_ms),
        (3, 1_234_567)
    );
    broker.shutdown().await;
}
