//! Two diagnostics that separate the broker's cost from the client's in the produce rows.
//!
//! - [`NullBroker`]: a Kafka "broker" that only reads each request off the socket and answers
//!   it (ApiVersions, Metadata, Produce with success): it stores nothing and checks nothing.
//!   librdkafka producing to it measures **the client's ceiling** on this machine: no broker
//!   can be faster under the same client, since any broker at least reads the bytes. It runs
//!   as a child process (this benchmark binary with `--null-broker`), so its CPU is counted
//!   apart from the client's, as Cairn's is.
//! - [`light_produce`]: a minimal pipelined producer (one connection, requests encoded once
//!   and re-sent with a new correlation id, a few in flight): **the broker's own ceiling**
//!   when the client costs next to nothing. It sends the same valid record batches again and
//!   again, which the broker stores as new records like any others.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use cairn_protocol::client::{decode_response, encode_request};
use cairn_protocol::kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use cairn_protocol::kafka_protocol::messages::produce_request::{
    PartitionProduceData, TopicProduceData,
};
use cairn_protocol::kafka_protocol::messages::produce_response::{
    PartitionProduceResponse, TopicProduceResponse,
};
use cairn_protocol::kafka_protocol::messages::{
    ApiKey, BrokerId, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse,
    RequestHeader, RequestKind, ResponseKind, TopicName,
};
use cairn_protocol::kafka_protocol::protocol::{Decodable, StrBytes};
use cairn_protocol::kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use cairn_protocol::response::{api_versions_response, encode_response};

use crate::common::Payloads;

/// The argument that turns this benchmark binary into the null broker.
pub const NULL_BROKER_ARG: &str = "--null-broker";

/// Partitions the null broker reports for every topic (set by its parent).
const NULL_PARTITIONS_ENV: &str = "CAIRN_BENCH_NULL_PARTITIONS";

/// The null broker child process.
#[derive(Debug)]
pub struct NullBroker {
    child: Child,
    pub bootstrap: String,
}

impl NullBroker {
    /// Starts `<this binary> --null-broker` and reads its address from its first line.
    pub fn start(partitions: i32) -> NullBroker {
        let exe = std::env::current_exe().expect("the benchmark's own path");
        let mut child = Command::new(exe)
            .arg(NULL_BROKER_ARG)
            .env(NULL_PARTITIONS_ENV, partitions.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the null broker");
        let stdout = child.stdout.take().expect("the null broker's stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the null broker's address");
        let bootstrap = line
            .trim()
            .strip_prefix("null broker listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from the null broker: {line:?}"))
            .to_string();
        NullBroker { child, bootstrap }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for NullBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The null broker's main: serves until killed.
pub fn null_broker_main() -> ! {
    let partitions: i32 = std::env::var(NULL_PARTITIONS_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the null broker");
    let addr = listener.local_addr().expect("the null broker's address");
    println!("null broker listening on {addr}");
    io::stdout().flush().expect("flush stdout");
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        thread::spawn(move || {
            // A client closing its connection ends the thread; nothing else can go wrong
            // that matters to a benchmark sink.
            let _ = serve_null(stream, addr.port(), partitions);
        });
    }
    std::process::exit(0);
}

fn serve_null(stream: TcpStream, port: u16, partitions: i32) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::with_capacity(64 << 10, stream.try_clone()?);
    let mut writer = stream;
    let mut offsets = vec![0i64; partitions as usize];
    loop {
        let mut len = [0u8; 4];
        reader.read_exact(&mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        let mut frame = BytesMut::zeroed(len);
        reader.read_exact(&mut frame)?;
        let mut frame: Bytes = frame.freeze();
        let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let api_key = ApiKey::try_from(key).map_err(|()| invalid(format!("api key {key}")))?;
        let header = RequestHeader::decode(&mut frame, api_key.request_header_version(version))
            .map_err(|e| invalid(format!("header: {e:#}")))?;
        let body = match api_key {
            // Cairn's own list: librdkafka derives features from it (without Fetch v4+ it
            // falls back to the v1 message format with a CRC-32 per record), and a producer
            // without idempotence calls only these three.
            ApiKey::ApiVersions => Some(ResponseKind::ApiVersions(api_versions_response(version))),
            ApiKey::Metadata => {
                let req = MetadataRequest::decode(&mut frame, version)
                    .map_err(|e| invalid(format!("metadata: {e:#}")))?;
                Some(ResponseKind::Metadata(null_metadata(req, port, partitions)))
            }
            ApiKey::Produce => {
                let req = ProduceRequest::decode(&mut frame, version)
                    .map_err(|e| invalid(format!("produce: {e:#}")))?;
                let resp = null_produce(&req, &mut offsets);
                (req.acks != 0).then_some(ResponseKind::Produce(resp))
            }
            other => return Err(invalid(format!("unexpected {other:?}"))),
        };
        if let Some(body) = body {
            let out = encode_response(header.correlation_id, api_key, version, &body)
                .map_err(|e| invalid(format!("encode: {e}")))?;
            writer.write_all(&out)?;
        }
    }
}

fn null_metadata(req: MetadataRequest, port: u16, partitions: i32) -> MetadataResponse {
    let mut resp = MetadataResponse::default();
    let mut broker = MetadataResponseBroker::default();
    broker.node_id = BrokerId(0);
    broker.host = StrBytes::from_static_str("127.0.0.1");
    broker.port = port as i32;
    resp.brokers = vec![broker];
    resp.cluster_id = Some(StrBytes::from_static_str("null"));
    resp.controller_id = BrokerId(0);
    for requested in req.topics.unwrap_or_default() {
        let mut topic = MetadataResponseTopic::default();
        topic.name = requested.name;
        topic.topic_id = requested.topic_id;
        topic.partitions = (0..partitions)
            .map(|p| {
                let mut part = MetadataResponsePartition::default();
                part.partition_index = p;
                part.leader_id = BrokerId(0);
                part.leader_epoch = 0;
                part.replica_nodes = vec![BrokerId(0)];
                part.isr_nodes = vec![BrokerId(0)];
                part
            })
            .collect();
        resp.topics.push(topic);
    }
    resp
}

/// Answers every partition with success, advancing a per-partition offset by the batch's
/// record count (read from its header, bytes 57..61 of a v2 batch).
fn null_produce(req: &ProduceRequest, offsets: &mut [i64]) -> ProduceResponse {
    let mut resp = ProduceResponse::default();
    for topic in &req.topic_data {
        let mut t = TopicProduceResponse::default();
        t.name = topic.name.clone();
        for part in &topic.partition_data {
            let mut r = PartitionProduceResponse::default();
            r.index = part.index;
            r.log_append_time_ms = -1;
            let count = part
                .records
                .as_ref()
                .and_then(|b| b.get(57..61))
                .map_or(0, |c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]));
            match offsets.get_mut(part.index as usize) {
                Some(next) => {
                    r.base_offset = *next;
                    *next += i64::from(count.max(0));
                }
                None => r.error_code = 3, // UNKNOWN_TOPIC_OR_PARTITION
            }
            t.partition_responses.push(r);
        }
        resp.responses.push(t);
    }
    resp
}

/// Records per batch of the light producer: 256 records of 1 KiB make a 262 KB batch, a
/// quarter of librdkafka's `batch.size`, well under `message.max.bytes`.
const LIGHT_BATCH_RECORDS: usize = 256;
/// Produce requests the light producer keeps in flight on its connection.
const LIGHT_IN_FLIGHT: usize = 16;
/// The Produce version the light producer speaks.
const LIGHT_PRODUCE_VERSION: i16 = 9;

/// Produces `records` records of `record_bytes` (acks=1) to `topic`'s `partitions`
/// partitions over one connection: each request carries one batch of
/// [`LIGHT_BATCH_RECORDS`] per partition, encoded once, and is re-sent with a new
/// correlation id; up to [`LIGHT_IN_FLIGHT`] requests are in flight. Panics unless every
/// partition of every response is a success. Returns the time from the first byte sent to
/// the last response, and the records actually sent (`records` rounded up to whole requests).
pub fn light_produce(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    payloads: &Payloads,
    record_bytes: usize,
    records: u64,
) -> (Duration, u64) {
    let per_request = LIGHT_BATCH_RECORDS as u64 * partitions as u64;
    let requests = records.div_ceil(per_request);
    let frame = light_request(topic, partitions, payloads, record_bytes);
    let stream = TcpStream::connect(bootstrap).expect("connect to the broker");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let mut writer = stream.try_clone().expect("clone the socket");
    let (credit_tx, credit_rx) = mpsc::sync_channel::<()>(LIGHT_IN_FLIGHT);
    for _ in 0..LIGHT_IN_FLIGHT {
        credit_tx.send(()).expect("initial credits");
    }
    let reader = thread::spawn(move || {
        let mut reader = BufReader::with_capacity(64 << 10, stream);
        for n in 0..requests {
            let mut len = [0u8; 4];
            reader.read_exact(&mut len).expect("read a response length");
            let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
            reader.read_exact(&mut body).expect("read a response");
            let (correlation, resp) =
                decode_response(Bytes::from(body), ApiKey::Produce, LIGHT_PRODUCE_VERSION)
                    .expect("decode a Produce response");
            assert_eq!(correlation as u64, n, "responses come in request order");
            let ResponseKind::Produce(resp) = resp else {
                panic!("not a Produce response")
            };
            for t in &resp.responses {
                for p in &t.partition_responses {
                    assert_eq!(
                        p.error_code, 0,
                        "partition {} refused a light-producer batch",
                        p.index
                    );
                }
            }
            // The writer may be done and gone; a missing receiver is fine.
            let _ = credit_tx.send(());
        }
        Instant::now()
    });
    let mut frame = frame.to_vec();
    let start = Instant::now();
    for n in 0..requests {
        credit_rx.recv().expect("the response reader stopped early");
        // Bytes 8..12 of the frame (after the length and api key/version) are the
        // correlation id.
        frame[8..12].copy_from_slice(&(n as i32).to_be_bytes());
        writer.write_all(&frame).expect("send a Produce request");
    }
    let end = reader.join().expect("the response reader panicked");
    let _ = writer.shutdown(Shutdown::Both);
    (end - start, requests * per_request)
}

fn light_request(
    topic: &str,
    partitions: i32,
    payloads: &Payloads,
    record_bytes: usize,
) -> BytesMut {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut req = ProduceRequest::default();
    req.acks = 1;
    req.timeout_ms = 30_000;
    let mut data = TopicProduceData::default();
    data.name = TopicName(StrBytes::from_string(topic.to_string()));
    for p in 0..partitions {
        let records: Vec<Record> = (0..LIGHT_BATCH_RECORDS)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // Constant `offset - sequence` keeps one batch (base sequence -1).
                sequence: (i as i32) - 1,
                timestamp: now,
                key: None,
                value: Some(Bytes::copy_from_slice(payloads.record(
                    (p as usize * LIGHT_BATCH_RECORDS + i) as u64,
                    record_bytes,
                ))),
                headers: Default::default(),
            })
            .collect();
        let mut batch = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut batch,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .expect("encode a record batch");
        let mut part = PartitionProduceData::default();
        part.index = p;
        part.records = Some(batch.freeze());
        data.partition_data.push(part);
    }
    req.topic_data.push(data);
    encode_request(
        ApiKey::Produce,
        LIGHT_PRODUCE_VERSION,
        0,
        Some("cairn-bench-light"),
        &RequestKind::Produce(req),
    )
    .expect("encode the light producer's request")
}
