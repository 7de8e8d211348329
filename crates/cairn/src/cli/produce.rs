//! `cairn produce TOPIC`: each stdin line becomes one record.
//!
//! A plain thread reads stdin (blocking reads cannot be cancelled, so they stay off the
//! runtime) and hands lines over a bounded channel: when the broker is slow the thread
//! blocks and the pipe fills, rather than lines piling up in memory.
//!
//! Batching, per partition, as Kafka's producer does: a batch is closed when the next
//! record would take it past `--batch-size` bytes, and sent when closed or when it is
//! `--linger-ms` old. Before sending, every line already read is added, so a fast pipe
//! gets full batches even with `--linger-ms 0`. Batches are v2 record batches built by
//! kafka-protocol's `RecordBatchEncoder` (with the chosen codec), one per partition per
//! request, requests up to [`MAX_REQUEST_BYTES`].
//!
//! One request is in flight at a time, so each partition's records are stored in input
//! order. A batch refused because leadership moved (NOT_LEADER_OR_FOLLOWER and friends: the
//! write certainly did not happen) is re-sent, after fresh metadata, before anything that
//! follows it, for up to `--timeout-ms`; any other error ends the command. With `--acks 0`
//! the broker never answers, so errors go unseen; a final Metadata round trip on each
//! connection at least makes sure the broker has read every request.

use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context as _};
use bytes::{Bytes, BytesMut};
use cairn_protocol::kafka_protocol::messages::produce_request::{
    PartitionProduceData, TopicProduceData,
};
use cairn_protocol::kafka_protocol::messages::{ApiKey, ProduceRequest};
use cairn_protocol::kafka_protocol::protocol::StrBytes;
use cairn_protocol::kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE,
};
use cairn_protocol::ErrorCode;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::cluster::{metadata_request, topic_name, Cluster, TopicInfo};
use super::error_code::KafkaError;
use super::partitioner::Partitioner;
use super::{Codec, ProduceArgs};

/// Largest `--batch-size` and `--max-line-bytes`. Kafka's default `max.message.bytes` is
/// about 1 MiB; a topic may raise it (the broker refuses a batch above the topic's limit
/// with MESSAGE_TOO_LARGE).
pub(crate) const MAX_BATCH_BYTES: u32 = 64 * 1024 * 1024;
/// A Produce request stops growing at this many bytes of batches (Kafka's default
/// `max.request.size`); a single larger batch still goes, alone.
const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// Lines read ahead of the sender: at most this many...
const READ_AHEAD_LINES: usize = 1024;
/// ...holding at most this many bytes (a semaphore of bytes; the channel bounds the count).
const READ_AHEAD_BYTES: usize = 16 * 1024 * 1024;
/// A record's framing beyond its key and value, at most: length, attributes, timestamp
/// and offset deltas, key and value lengths, header count (varints).
const RECORD_OVERHEAD_BYTES: usize = 26;
/// Pause before re-sending batches refused because leadership moved.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

pub(crate) async fn run(args: &ProduceArgs) -> anyhow::Result<()> {
    let mut cluster = Cluster::connect(&args.client).await?;
    // As other producers do: a missing topic is created if the broker allows it.
    cluster.set_auto_create(true);
    let fixed: Option<Vec<i32>> = args.partition.map(|p| vec![p]);
    let topic = cluster
        .topic_with_leaders(&args.topic, fixed.as_deref())
        .await?;
    if let Some(p) = args.partition {
        topic.partition(p)?;
    }
    let max_line_bytes = args.max_line_bytes as usize;
    let (tx, rx) = mpsc::channel(READ_AHEAD_LINES);
    let budget = Arc::new(Semaphore::new(READ_AHEAD_BYTES));
    let runtime = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            read_lines(&mut std::io::stdin().lock(), max_line_bytes, |item| {
                let item = match item {
                    Ok(bytes) => {
                        // A line never costs more than the whole budget (the cost is
                        // clamped to it), so this cannot wait forever.
                        let cost = bytes.len().clamp(1, READ_AHEAD_BYTES) as u32;
                        match runtime.block_on(Arc::clone(&budget).acquire_many_owned(cost)) {
                            Ok(permit) => Ok(Line {
                                bytes,
                                _permit: permit,
                            }),
                            Err(_) => return false,
                        }
                    }
                    Err(e) => Err(e),
                };
                tx.blocking_send(item).is_ok()
            });
        })
        .context("cannot start the stdin reader")?;
    let mut producer = Producer {
        partitioner: Partitioner::new(topic.partitions.len() as i32, args.partition),
        cluster,
        topic,
        args,
        open: BTreeMap::new(),
        closed: Vec::new(),
        produced: 0,
    };
    // Ctrl-C: stop taking lines, send what was read, say how far it got.
    let interrupted = Arc::new(tokio::sync::Notify::new());
    let notify = Arc::clone(&interrupted);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            notify.notify_one();
        }
    });
    let complete = producer.pump(rx, &interrupted).await?;
    if complete {
        eprintln!("produced {} records to {}", producer.produced, args.topic);
    } else {
        eprintln!(
            "interrupted: produced {} records to {} (lines not yet read were not sent)",
            producer.produced, args.topic
        );
    }
    Ok(())
}

/// A line read ahead, holding its share of [`READ_AHEAD_BYTES`] until it is batched.
#[derive(Debug)]
struct Line {
    bytes: Vec<u8>,
    _permit: OwnedSemaphorePermit,
}

/// Reads `input` line by line (without line endings) into `send` until EOF, an error (sent
/// as `Err` with the line number), or `send` returns false.
fn read_lines(
    input: &mut impl BufRead,
    max_line_bytes: usize,
    mut send: impl FnMut(Result<Vec<u8>, String>) -> bool,
) {
    let mut number: u64 = 0;
    loop {
        number += 1;
        let mut line = Vec::new();
        let item = match read_line(input, max_line_bytes, &mut line) {
            Ok(false) => return,
            Ok(true) => Ok(line),
            Err(ReadError::TooLong) => Err(format!(
                "line {number} is longer than --max-line-bytes ({max_line_bytes} bytes)"
            )),
            Err(ReadError::Io(e)) => Err(format!("cannot read stdin: {e}")),
        };
        let stop = item.is_err();
        if !send(item) || stop {
            return;
        }
    }
}

#[derive(Debug)]
enum ReadError {
    TooLong,
    Io(std::io::Error),
}

/// Reads one line into `line` without its "\n" or "\r\n"; `Ok(false)` at EOF. Reads at most
/// `max_line_bytes` plus the line ending, so a huge line costs a bounded buffer.
fn read_line(
    input: &mut impl BufRead,
    max_line_bytes: usize,
    line: &mut Vec<u8>,
) -> Result<bool, ReadError> {
    let limit = max_line_bytes as u64 + 2;
    let n = Read::take(&mut *input, limit)
        .read_until(b'\n', line)
        .map_err(ReadError::Io)?;
    if n == 0 {
        return Ok(false);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    if line.len() > max_line_bytes {
        return Err(ReadError::TooLong);
    }
    Ok(true)
}

/// Splits `line` at the first `sep` into key and value; without `sep`, or when the line
/// does not contain it, the key is null and the whole line is the value.
pub(crate) fn split_line<'a>(line: &'a [u8], sep: Option<&[u8]>) -> (Option<&'a [u8]>, &'a [u8]) {
    let Some(sep) = sep.filter(|s| !s.is_empty()) else {
        return (None, line);
    };
    match line.windows(sep.len()).position(|w| w == sep) {
        Some(at) => (Some(&line[..at]), &line[at + sep.len()..]),
        None => (None, line),
    }
}

/// A partition's batch being filled.
#[derive(Debug)]
struct OpenBatch {
    records: Vec<Record>,
    bytes: usize,
    opened: Instant,
}

/// An encoded batch on its way to a partition.
#[derive(Debug, Clone)]
struct EncodedBatch {
    partition: i32,
    records: u64,
    bytes: Bytes,
}

#[derive(Debug)]
struct Producer<'a> {
    cluster: Cluster,
    topic: TopicInfo,
    args: &'a ProduceArgs,
    partitioner: Partitioner,
    open: BTreeMap<i32, OpenBatch>,
    /// Full batches, in the order they were closed.
    closed: Vec<(i32, OpenBatch)>,
    /// Records the broker acknowledged (or, with acks=0, that were sent).
    produced: u64,
}

impl Producer<'_> {
    /// Moves lines into batches and batches to the brokers until stdin ends (`true`) or
    /// `interrupted` fires (`false`); either way every line taken is sent.
    async fn pump(
        &mut self,
        mut rx: mpsc::Receiver<Result<Line, String>>,
        interrupted: &tokio::sync::Notify,
    ) -> anyhow::Result<bool> {
        let linger = Duration::from_millis(self.args.linger_ms);
        let mut complete = true;
        loop {
            let deadline = self.open.values().map(|b| b.opened + linger).min();
            let next = tokio::select! {
                line = rx.recv() => Some(line),
                () = sleep_until(deadline) => None,
                () = interrupted.notified() => {
                    complete = false;
                    break;
                }
            };
            match next {
                Some(None) => break,
                Some(Some(line)) => {
                    self.add(line.map_err(|e| anyhow!(e))?.bytes);
                    // Take whatever else is already read, up to the first full batch.
                    while self.closed.is_empty() {
                        match rx.try_recv() {
                            Ok(line) => self.add(line.map_err(|e| anyhow!(e))?.bytes),
                            Err(_) => break,
                        }
                    }
                }
                None => {}
            }
            let now = Instant::now();
            let mut ready = std::mem::take(&mut self.closed);
            let due: Vec<i32> = self
                .open
                .iter()
                .filter(|(_, b)| now >= b.opened + linger)
                .map(|(&p, _)| p)
                .collect();
            ready.extend(
                due.into_iter()
                    .filter_map(|p| self.open.remove(&p).map(|b| (p, b))),
            );
            self.send(ready).await?;
        }
        let mut rest = std::mem::take(&mut self.closed);
        rest.extend(std::mem::take(&mut self.open));
        self.send(rest).await?;
        if self.args.acks == 0 {
            self.confirm_reads().await?;
        }
        Ok(complete)
    }

    fn add(&mut self, line: Vec<u8>) {
        let line = Bytes::from(line);
        let (key, value) = split_line(&line, self.args.key_sep.as_deref().map(str::as_bytes));
        let null_empty = self.args.null_empty;
        let key = key
            .filter(|k| !(null_empty && k.is_empty()))
            .map(|k| line.slice_ref(k));
        // -Z: an empty value is a null one, a tombstone.
        let value = (!(null_empty && value.is_empty())).then(|| line.slice_ref(value));
        let partition = self.partitioner.partition(key.as_deref());
        let headers_size: usize = self
            .args
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 10)
            .sum();
        let size = RECORD_OVERHEAD_BYTES
            + key.as_ref().map_or(0, Bytes::len)
            + value.as_ref().map_or(0, Bytes::len)
            + headers_size;
        let batch_size = self.args.batch_size as usize;
        if let Some(batch) = self.open.get(&partition) {
            if batch.bytes + size > batch_size {
                if let Some(full) = self.open.remove(&partition) {
                    self.closed.push((partition, full));
                }
            }
        }
        let batch = self.open.entry(partition).or_insert_with(|| OpenBatch {
            records: Vec::new(),
            bytes: 0,
            opened: Instant::now(),
        });
        let offset_delta = batch.records.len() as i64;
        let mut r = record(key, value, offset_delta, now_ms());
        for (k, v) in &self.args.headers {
            r.headers.insert(
                StrBytes::from_string(k.clone()),
                Some(Bytes::copy_from_slice(v.as_bytes())),
            );
        }
        batch.records.push(r);
        batch.bytes += size;
    }

    /// Sends `batches` in order: a partition's second batch goes in a later request than
    /// its first.
    async fn send(&mut self, batches: Vec<(i32, OpenBatch)>) -> anyhow::Result<()> {
        let compression = compression(self.args.compression);
        let mut rounds: Vec<Vec<EncodedBatch>> = Vec::new();
        let mut seen: BTreeMap<i32, usize> = BTreeMap::new();
        for (partition, batch) in batches {
            let round = seen.entry(partition).or_default();
            if rounds.len() <= *round {
                rounds.push(Vec::new());
            }
            rounds[*round].push(EncodedBatch {
                partition,
                records: batch.records.len() as u64,
                bytes: encode_batch(&batch.records, compression)?,
            });
            *round += 1;
        }
        for round in rounds {
            self.send_round(round).await?;
        }
        Ok(())
    }

    /// Sends batches for distinct partitions, re-sending those refused for a leadership
    /// change until `--timeout-ms` has passed.
    async fn send_round(&mut self, mut pending: Vec<EncodedBatch>) -> anyhow::Result<()> {
        let deadline = Instant::now() + self.args.client.timeout();
        loop {
            let mut retry = Vec::new();
            let mut last_error = None;
            let partitions: Vec<i32> = pending.iter().map(|b| b.partition).collect();
            let by_leader = self.topic.by_leader(&partitions)?;
            for (leader, indexes) in by_leader {
                let group: Vec<&EncodedBatch> = pending
                    .iter()
                    .filter(|b| indexes.contains(&b.partition))
                    .collect();
                for request in split_requests(&group) {
                    let refused = self.send_request(leader, &request).await?;
                    for (batch, error) in refused {
                        retry.push(batch.clone());
                        last_error = Some(error);
                    }
                }
            }
            let Some(error) = last_error else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                let partition = retry.first().map_or(-1, |b| b.partition);
                return Err(anyhow!(error).context(format!(
                    "cannot produce to partition {partition} of {} within {} ms",
                    self.topic.name, self.args.client.timeout_ms
                )));
            }
            tokio::time::sleep(RETRY_BACKOFF).await;
            let partitions: Vec<i32> = retry.iter().map(|b| b.partition).collect();
            self.topic = self
                .cluster
                .topic_with_leaders(&self.args.topic, Some(&partitions))
                .await?;
            pending = retry;
        }
    }

    /// One Produce request to `leader`; returns the batches refused for a leadership
    /// change, fails on any other error.
    async fn send_request<'b>(
        &mut self,
        leader: i32,
        batches: &[&'b EncodedBatch],
    ) -> anyhow::Result<Vec<(&'b EncodedBatch, KafkaError)>> {
        let (topic, acks) = (self.args.topic.as_str(), self.args.acks);
        let timeout_ms = i32::try_from(self.args.client.timeout_ms).unwrap_or(i32::MAX);
        let conn = self.cluster.leader(leader).await?;
        let version = conn.version(ApiKey::Produce)?;
        // KIP-110: zstd batches need Produce v7; older brokers would refuse them.
        if self.args.compression == Codec::Zstd && version < 7 {
            bail!(
                "broker {} speaks Produce up to v{version}, and zstd needs v7",
                conn.addr()
            );
        }
        let data: Vec<(i32, Bytes)> = batches
            .iter()
            .map(|b| (b.partition, b.bytes.clone()))
            .collect();
        let build = |v| produce_request(v, topic, acks, timeout_ms, &data);
        if acks == 0 {
            conn.send_only(build).await?;
            self.produced += batches.iter().map(|b| b.records).sum::<u64>();
            return Ok(Vec::new());
        }
        let response = conn.call(build).await?;
        let mut refused = Vec::new();
        for &batch in batches {
            let answer = response
                .responses
                .iter()
                .filter(|t| t.name.0.as_str() == topic)
                .flat_map(|t| &t.partition_responses)
                .find(|p| p.index == batch.partition)
                .ok_or_else(|| {
                    anyhow!(
                        "the broker's Produce answer left out partition {} of {topic}",
                        batch.partition
                    )
                })?;
            match KafkaError::check(answer.error_code, answer.error_message.as_ref()) {
                Ok(()) => self.produced += batch.records,
                Err(e) if e.is_leader_change() => refused.push((batch, e)),
                Err(e) => {
                    let hint = if e.code == ErrorCode::MessageTooLarge.code()
                        || e.code == ErrorCode::RecordListTooLarge.code()
                    {
                        format!(
                            " (a batch of {} bytes is over the topic's max.message.bytes: \
                             raise it with `cairn topic alter {topic} --config \
                             max.message.bytes=N`, or send smaller lines or a smaller \
                             --batch-size)",
                            batch.bytes.len()
                        )
                    } else {
                        String::new()
                    };
                    return Err(anyhow!(e).context(format!(
                        "cannot produce to partition {} of {topic}{hint}",
                        batch.partition
                    )));
                }
            }
        }
        Ok(refused)
    }

    /// After acks=0 requests: one answered request per leader connection, which the
    /// broker handles after everything sent before it.
    async fn confirm_reads(&mut self) -> anyhow::Result<()> {
        let mut leaders: Vec<i32> = self.topic.partitions.iter().map(|p| p.leader).collect();
        leaders.sort_unstable();
        leaders.dedup();
        let topic = self.args.topic.as_str();
        for leader in leaders.into_iter().filter(|&l| l >= 0) {
            let conn = self.cluster.leader(leader).await?;
            conn.call(|v| metadata_request(v, Some(&[topic]))).await?;
        }
        Ok(())
    }
}

/// Groups batches into requests of at most [`MAX_REQUEST_BYTES`] (a larger batch alone).
fn split_requests<'b>(batches: &[&'b EncodedBatch]) -> Vec<Vec<&'b EncodedBatch>> {
    let mut requests: Vec<Vec<&EncodedBatch>> = Vec::new();
    let mut bytes = 0;
    for &batch in batches {
        match requests.last_mut() {
            Some(last) if bytes + batch.bytes.len() <= MAX_REQUEST_BYTES => {
                last.push(batch);
                bytes += batch.bytes.len();
            }
            _ => {
                requests.push(vec![batch]);
                bytes = batch.bytes.len();
            }
        }
    }
    requests
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) fn compression(codec: Codec) -> Compression {
    match codec {
        Codec::None => Compression::None,
        Codec::Gzip => Compression::Gzip,
        Codec::Snappy => Compression::Snappy,
        Codec::Lz4 => Compression::Lz4,
        Codec::Zstd => Compression::Zstd,
    }
}

/// A plain (non-idempotent, non-transactional) producer's record.
pub(crate) fn record(
    key: Option<Bytes>,
    value: Option<Bytes>,
    offset_delta: i64,
    timestamp: i64,
) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
        producer_id: NO_PRODUCER_ID,
        producer_epoch: NO_PRODUCER_EPOCH,
        timestamp_type: TimestampType::Creation,
        offset: offset_delta,
        // The encoder puts records in one batch only while `offset - sequence` is constant
        // and derives the batch's base sequence from the first record: counting up from
        // NO_SEQUENCE keeps one batch with base sequence -1, as a plain producer sends.
        sequence: NO_SEQUENCE.wrapping_add(offset_delta as i32),
        timestamp,
        key,
        value,
        headers: Default::default(),
    }
}

/// One v2 record batch holding `records`.
pub(crate) fn encode_batch(records: &[Record], compression: Compression) -> anyhow::Result<Bytes> {
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, records, &options)
        .map_err(|e| anyhow!("cannot encode a record batch: {e:#}"))?;
    Ok(buf.freeze())
}

pub(crate) fn produce_request(
    _version: i16,
    topic: &str,
    acks: i16,
    timeout_ms: i32,
    batches: &[(i32, Bytes)],
) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(
                batches
                    .iter()
                    .map(|(partition, records)| {
                        PartitionProduceData::default()
                            .with_index(*partition)
                            .with_records(Some(records.clone()))
                    })
                    .collect(),
            )])
}

#[cfg(test)]
mod tests;
