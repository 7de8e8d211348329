//! The broker over a real socket, with requests encoded by the protocol crate's client side.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use cairn_broker::{Broker, BrokerConfig};
use cairn_protocol::kafka_protocol::messages::*;
use cairn_protocol::kafka_protocol::protocol::StrBytes;
use cairn_protocol::kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use cairn_protocol::{client, decode_frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Client {
    stream: TcpStream,
    buf: BytesMut,
    next_id: i32,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        Client {
            stream: TcpStream::connect(addr).await.expect("connect"),
            buf: BytesMut::new(),
            next_id: 1,
        }
    }

    async fn call(&mut self, key: ApiKey, version: i16, body: RequestKind) -> ResponseKind {
        let id = self.next_id;
        self.next_id += 1;
        let frame =
            client::encode_request(key, version, id, Some("wire-test"), &body).expect("encode");
        self.stream.write_all(&frame).await.expect("send");
        loop {
            if let Some(frame) = decode_frame(&mut self.buf, 1 << 28).expect("frame") {
                let (correlation_id, response) =
                    client::decode_response(frame, key, version).expect("decode");
                assert_eq!(correlation_id, id);
                return response;
            }
            let n = self.stream.read_buf(&mut self.buf).await.expect("read");
            assert!(n > 0, "broker closed the connection");
        }
    }
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Record `i` of a batch: a plain producer's, with `sequence` (the encoder keeps records in
/// one batch while `offset - sequence` stays the same).
fn record(i: usize, timestamp: i64, value: Bytes, sequence: i32) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: i as i64,
        sequence,
        timestamp,
        key: None,
        value: Some(value),
        headers: Default::default(),
    }
}

fn encode(records: &[Record], compression: Compression) -> Bytes {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode batch");
    buf.freeze()
}

/// A batch of records with the given timestamps (values "v0", "v1", ...).
fn batch_with_timestamps(timestamps: &[i64], compression: Compression) -> Bytes {
    let records: Vec<Record> = timestamps
        .iter()
        .enumerate()
        .map(|(i, ts)| record(i, *ts, Bytes::from(format!("v{i}")), -1))
        .collect();
    encode(&records, compression)
}

/// Creates `topic` (with the broker's `num.partitions`) through a Metadata request.
async fn create_topic(c: &mut Client, topic: &str) {
    let mut meta = MetadataRequest::default();
    let mut t = metadata_request::MetadataRequestTopic::default();
    t.name = Some(name(topic));
    meta.topics = Some(vec![t]);
    meta.allow_auto_topic_creation = true;
    c.call(ApiKey::Metadata, 12, RequestKind::Metadata(meta))
        .await;
}

async fn produce(c: &mut Client, topic: &str, records: Bytes) -> i64 {
    produce_to(c, topic, 0, records).await
}

/// Produces `records` (acks=all) to one partition; returns the base offset.
async fn produce_to(c: &mut Client, topic: &str, partition: i32, records: Bytes) -> i64 {
    let mut p = produce_request::PartitionProduceData::default();
    p.index = partition;
    p.records = Some(records);
    let mut t = produce_request::TopicProduceData::default();
    t.name = name(topic);
    t.partition_data = vec![p];
    let mut r = ProduceRequest::default();
    r.acks = -1;
    r.timeout_ms = 5000;
    r.topic_data = vec![t];
    match c.call(ApiKey::Produce, 9, RequestKind::Produce(r)).await {
        ResponseKind::Produce(resp) => {
            let p = &resp.responses[0].partition_responses[0];
            assert_eq!(p.error_code, 0, "produce error");
            p.base_offset
        }
        other => panic!("unexpected {other:?}"),
    }
}

async fn offset_for(c: &mut Client, topic: &str, timestamp: i64) -> (i64, i64) {
    let mut p = list_offsets_request::ListOffsetsPartition::default();
    p.timestamp = timestamp;
    let mut t = list_offsets_request::ListOffsetsTopic::default();
    t.name = name(topic);
    t.partitions = vec![p];
    let mut r = ListOffsetsRequest::default();
    r.topics = vec![t];
    match c
        .call(ApiKey::ListOffsets, 7, RequestKind::ListOffsets(r))
        .await
    {
        ResponseKind::ListOffsets(resp) => {
            let p = &resp.topics[0].partitions[0];
            assert_eq!(p.error_code, 0);
            (p.offset, p.timestamp)
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn list_offsets_by_time_finds_the_record_inside_the_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(BrokerConfig::new(
        dir.path().to_path_buf(),
        "127.0.0.1:0".parse().expect("addr"),
    ))
    .await
    .expect("start");
    let mut c = Client::connect(broker.local_addr()).await;
    create_topic(&mut c, "times").await;

    let plain = produce(
        &mut c,
        "times",
        batch_with_timestamps(&[100, 200, 300], Compression::None),
    )
    .await;
    let lz4 = produce(
        &mut c,
        "times",
        batch_with_timestamps(&[400, 900, 500], Compression::Lz4),
    )
    .await;
    assert_eq!(offset_for(&mut c, "times", 50).await, (plain, 100));
    assert_eq!(offset_for(&mut c, "times", 150).await, (plain + 1, 200));
    assert_eq!(offset_for(&mut c, "times", 300).await, (plain + 2, 300));
    assert_eq!(
        offset_for(&mut c, "times", 450).await,
        (lz4 + 1, 900),
        "inside a compressed batch"
    );
    assert_eq!(
        offset_for(&mut c, "times", 901).await,
        (-1, -1),
        "nothing that late"
    );
    // MAX_TIMESTAMP (-3): the record holding the largest timestamp.
    assert_eq!(offset_for(&mut c, "times", -3).await, (lz4 + 1, 900));
    // EARLIEST and LATEST.
    assert_eq!(offset_for(&mut c, "times", -2).await.0, 0);
    assert_eq!(offset_for(&mut c, "times", -1).await.0, lz4 + 3);
    broker.shutdown().await;
}

// Multi-threaded, as the broker runs: on one thread, spawned tasks run in spawn order and
// the race this guards against cannot happen.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pipelined_produces_are_appended_in_request_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(BrokerConfig::new(
        dir.path().to_path_buf(),
        "127.0.0.1:0".parse().expect("addr"),
    ))
    .await
    .expect("start");
    let mut c = Client::connect(broker.local_addr()).await;
    create_topic(&mut c, "piped").await;

    // Send every request before reading any answer, as a client with many in flight does.
    const N: i32 = 200;
    let mut frames = BytesMut::new();
    for i in 0..N {
        let mut p = produce_request::PartitionProduceData::default();
        p.index = 0;
        p.records = Some(batch_with_timestamps(&[i as i64], Compression::None));
        let mut t = produce_request::TopicProduceData::default();
        t.name = name("piped");
        t.partition_data = vec![p];
        let mut r = ProduceRequest::default();
        r.acks = 1;
        r.timeout_ms = 5000;
        r.topic_data = vec![t];
        frames.extend_from_slice(
            &client::encode_request(ApiKey::Produce, 7, 1000 + i, None, &RequestKind::Produce(r))
                .expect("encode"),
        );
    }
    c.stream.write_all(&frames).await.expect("send all");
    let mut offsets = Vec::new();
    while offsets.len() < N as usize {
        if let Some(frame) = decode_frame(&mut c.buf, 1 << 20).expect("frame") {
            let (id, resp) = client::decode_response(frame, ApiKey::Produce, 7).expect("decode");
            assert_eq!(id, 1000 + offsets.len() as i32, "answers in request order");
            let ResponseKind::Produce(resp) = resp else {
                panic!("not a produce response")
            };
            let p = &resp.responses[0].partition_responses[0];
            assert_eq!(p.error_code, 0);
            offsets.push(p.base_offset);
            continue;
        }
        assert!(
            c.stream.read_buf(&mut c.buf).await.expect("read") > 0,
            "closed"
        );
    }
    assert!(
        offsets.windows(2).all(|w| w[1] == w[0] + 1),
        "request i must get the offset after request i-1's: {offsets:?}"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn metadata_reports_authorized_operations_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(BrokerConfig::new(
        dir.path().to_path_buf(),
        "127.0.0.1:0".parse().expect("addr"),
    ))
    .await
    .expect("start");
    let mut c = Client::connect(broker.local_addr()).await;
    for all_topics in [false, true] {
        let mut meta = MetadataRequest::default();
        let mut topic = metadata_request::MetadataRequestTopic::default();
        topic.name = Some(name("ops"));
        // The default is an empty list ("no topics"); `None` asks for all of them.
        meta.topics = if all_topics { None } else { Some(vec![topic]) };
        meta.allow_auto_topic_creation = true;
        meta.include_cluster_authorized_operations = true;
        meta.include_topic_authorized_operations = true;
        let ResponseKind::Metadata(resp) = c
            .call(ApiKey::Metadata, 8, RequestKind::Metadata(meta))
            .await
        else {
            panic!("not a metadata response")
        };
        // READ WRITE CREATE DELETE ALTER DESCRIBE DESCRIBE_CONFIGS ALTER_CONFIGS: bits 3-8, 10, 11.
        assert_eq!(
            resp.topics[0].topic_authorized_operations, 0b1101_1111_1000,
            "all topics: {all_topics}"
        );
        // CREATE ALTER DESCRIBE CLUSTER_ACTION DESCRIBE_CONFIGS ALTER_CONFIGS IDEMPOTENT_WRITE.
        assert_eq!(resp.cluster_authorized_operations, 0b1_1111_1010_0000);
    }
    broker.shutdown().await;
}

/// One batch of `count` records of `size` bytes whose values are all `tag`.
fn big_batch(tag: u8, count: usize, size: usize) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| record(i, 1_000, Bytes::from(vec![tag; size]), i as i32 - 1))
        .collect();
    encode(&records, Compression::None)
}

/// Fetches partitions 0..3 of `topic` from offset 0; returns each partition's records.
async fn fetch_three(c: &mut Client, topic: &str, version: i16, max_bytes: i32) -> Vec<Bytes> {
    let mut t = fetch_request::FetchTopic::default();
    t.topic = name(topic);
    t.partitions = (0..3)
        .map(|p| {
            let mut fp = fetch_request::FetchPartition::default();
            fp.partition = p;
            fp.partition_max_bytes = 1 << 20;
            fp
        })
        .collect();
    let mut r = FetchRequest::default();
    r.max_wait_ms = 0;
    r.min_bytes = 1;
    r.max_bytes = max_bytes;
    r.topics = vec![t];
    match c.call(ApiKey::Fetch, version, RequestKind::Fetch(r)).await {
        ResponseKind::Fetch(resp) => resp.responses[0]
            .partitions
            .iter()
            .map(|p| {
                assert_eq!(p.error_code, 0);
                p.records.clone().unwrap_or_default()
            })
            .collect(),
        other => panic!("unexpected {other:?}"),
    }
}

/// A broker (with `fetch_max_bytes`) whose topic "multi" has three partitions of two ~20 KB
/// batches each; returns the broker, a client and the batches as produced.
async fn three_partitions(
    dir: &std::path::Path,
    fetch_max_bytes: usize,
) -> (Broker, Client, Vec<(Bytes, Bytes)>) {
    let mut config = BrokerConfig::new(dir.to_path_buf(), "127.0.0.1:0".parse().expect("addr"));
    config.num_partitions = 3;
    config.fetch_max_bytes = fetch_max_bytes;
    let broker = Broker::start(config).await.expect("start");
    let mut c = Client::connect(broker.local_addr()).await;
    create_topic(&mut c, "multi").await;
    // Large enough to travel as their own chunks of the response.
    let mut stored = Vec::new();
    for p in 0..3u8 {
        let (a, b) = (big_batch(b'a' + p, 20, 1000), big_batch(b'A' + p, 20, 1000));
        for batch in [&a, &b] {
            produce_to(&mut c, "multi", i32::from(p), batch.clone()).await;
        }
        stored.push((a, b));
    }
    (broker, c, stored)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_brokers_fetch_max_bytes_caps_what_a_client_asks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (broker, mut c, stored) = three_partitions(dir.path(), 50_000).await;
    // The client asks for 50 MiB; the broker's cap is 50 kB. Partition 0's two ~20 kB
    // batches fit; ~9 kB are left, less than a batch: only the first partition with data may
    // go over the budget (KIP-74), so partitions 1 and 2 get nothing this time, and the
    // answer stays within the cap.
    let got = fetch_three(&mut c, "multi", 12, 50 << 20).await;
    let total: usize = got.iter().map(Bytes::len).sum();
    assert_eq!(got[0].len(), stored[0].0.len() + stored[0].1.len());
    assert!(got[1].is_empty() && got[2].is_empty(), "no budget left");
    assert!(total <= 50_000, "within the broker's cap: {total}");
    // The same fetch again (the client did not move): the partitions left out are read
    // first, so each gets its turn and none starves behind partition 0.
    let got = fetch_three(&mut c, "multi", 12, 50 << 20).await;
    assert_eq!(got[1].len(), stored[1].0.len() + stored[1].1.len());
    assert!(got[0].is_empty() && got[2].is_empty());
    let got = fetch_three(&mut c, "multi", 12, 50 << 20).await;
    assert_eq!(got[2].len(), stored[2].0.len() + stored[2].1.len());
    assert!(got[0].is_empty() && got[1].is_empty());
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_of_several_partitions_returns_each_whole_and_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (broker, mut c, stored) = three_partitions(dir.path(), 57_671_680).await;
    // The records as stored: base offsets and leader epochs are the broker's, the rest the
    // producer's; compare values by the batch's tail (after the 61-byte header).
    let tail = |b: &Bytes| b.slice(61..);
    for version in [4, 11, 12] {
        let all = fetch_three(&mut c, "multi", version, 50 << 20).await;
        for (p, (a, b)) in stored.iter().enumerate() {
            let got = &all[p];
            assert_eq!(got.len(), a.len() + b.len(), "v{version} partition {p}");

            assert_eq!(got.slice(61..a.len()), tail(a), "v{version} partition {p}");
            assert_eq!(
                got.slice(a.len() + 61..),
                tail(b),
                "v{version} partition {p}"
            );
        }
    }
    // KIP-74: a budget smaller than one batch still returns the first partition's first
    // batch, whole; the budget is then spent, and the others get nothing this time, but
    // they come first in the connection's next fetch.
    for (turn, version) in [4, 11, 12].into_iter().enumerate() {
        let tiny = fetch_three(&mut c, "multi", version, 10).await;
        for (p, got) in tiny.iter().enumerate() {
            let want = if p == turn { stored[p].0.len() } else { 0 };
            assert_eq!(got.len(), want, "v{version} partition {p}");
        }
    }
    broker.shutdown().await;
}

/// An OffsetCommit (v8, a simple commit: no generation or member) of `offset` for partition
/// 0 of `topic`.
fn offset_commit(group: &str, topic: &str, offset: i64) -> RequestKind {
    let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = offset;
    p.committed_leader_epoch = -1;
    let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = name(topic);
    t.partitions = vec![p];
    let mut r = OffsetCommitRequest::default();
    r.group_id = GroupId(StrBytes::from_string(group.to_string()));
    r.generation_id_or_member_epoch = -1;
    r.topics = vec![t];
    RequestKind::OffsetCommit(r)
}

fn offset_fetch(group: &str, topic: &str) -> RequestKind {
    let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
    t.name = name(topic);
    t.partition_indexes = vec![0];
    let mut r = OffsetFetchRequest::default();
    r.group_id = GroupId(StrBytes::from_string(group.to_string()));
    r.topics = Some(vec![t]);
    RequestKind::OffsetFetch(r)
}

fn fetched_offset(resp: ResponseKind) -> i64 {
    let ResponseKind::OffsetFetch(resp) = resp else {
        panic!("not an OffsetFetch response: {resp:?}")
    };
    assert_eq!(resp.error_code, 0);
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.committed_offset
}

/// Two OffsetCommits sent back to back on one connection take effect in the order sent,
/// and an OffsetFetch pipelined after them sees the later one; after a restart the later
/// one is still the committed offset. (Each request used to run in its own task: the
/// earlier commit could be applied last and win, in memory and in the log.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pipelined_offset_commits_take_effect_in_request_order() {
    let rounds: i64 = std::env::var("CAIRN_COMMIT_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = BrokerConfig::new(
        dir.path().to_path_buf(),
        "127.0.0.1:0".parse().expect("addr"),
    );
    let broker = Broker::start(config.clone()).await.expect("start");
    let mut c = Client::connect(broker.local_addr()).await;
    create_topic(&mut c, "committed").await;
    let mut id = 10_000;
    for round in 0..rounds {
        let mut frames = BytesMut::new();
        let requests = [
            (
                ApiKey::OffsetCommit,
                8,
                offset_commit("g", "committed", 2 * round),
            ),
            (
                ApiKey::OffsetCommit,
                8,
                offset_commit("g", "committed", 2 * round + 1),
            ),
            (ApiKey::OffsetFetch, 7, offset_fetch("g", "committed")),
        ];
        for (key, version, body) in &requests {
            frames.extend_from_slice(
                &client::encode_request(*key, *version, id, None, body).expect("encode"),
            );
            id += 1;
        }
        c.stream.write_all(&frames).await.expect("send");
        let mut answers = Vec::new();
        while answers.len() < requests.len() {
            if let Some(frame) = decode_frame(&mut c.buf, 1 << 20).expect("frame") {
                let (key, version, _) = &requests[answers.len()];
                let (_, resp) = client::decode_response(frame, *key, *version).expect("decode");
                answers.push(resp);
                continue;
            }
            assert!(
                c.stream.read_buf(&mut c.buf).await.expect("read") > 0,
                "closed"
            );
        }
        for commit in &answers[..2] {
            let ResponseKind::OffsetCommit(resp) = commit else {
                panic!("not an OffsetCommit response")
            };
            assert_eq!(resp.topics[0].partitions[0].error_code, 0);
        }
        let seen = fetched_offset(answers.pop().expect("three answers"));
        assert_eq!(
            seen,
            2 * round + 1,
            "round {round}: the later commit must win"
        );
    }
    drop(c);
    broker.shutdown().await;
    let broker = Broker::start(config).await.expect("restart");
    let mut c = Client::connect(broker.local_addr()).await;
    let after = fetched_offset(
        c.call(ApiKey::OffsetFetch, 7, offset_fetch("g", "committed"))
            .await,
    );
    assert_eq!(
        after,
        2 * rounds - 1,
        "the later commit wins after a restart too"
    );
    broker.shutdown().await;
}
