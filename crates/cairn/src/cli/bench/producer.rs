//! The sending side of `bench produce` and `bench e2e`.
//!
//! Per partition leader, `--in-flight` connections, each a task with one Produce request
//! outstanding (a [`Connection`] answers in order, one request at a time; K connections give
//! K requests in flight, without reordering concerns: a benchmark's records need no order).
//! Each request carries one batch of `--batch-size` bytes worth of records (at least one)
//! for each partition its leader leads, as a saturated Kafka producer's requests do, but no
//! more than [`MAX_REQUEST_BYTES`] of them (then the partitions take turns, round-robin,
//! starting at a different one on each connection).
//!
//! Records are claimed a request at a time from a shared counter ([`Claims`]), so `--records N`
//! sends exactly N however many tasks there are; with `--rate R` the record numbered i
//! is not sent before `start + i/R` seconds, which spreads the rate over all tasks.
//!
//! Values are `--record-size` random capital letters (as kafka-producer-perf-test's), made
//! once; e2e overwrites the first [`STAMP_BYTES`] of each batch's value with a [`Stamp`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail};
use bytes::{Bytes, BytesMut};
use cairn_protocol::kafka_protocol::messages::{ApiKey, ProduceResponse};
use cairn_protocol::kafka_protocol::records::Record;
use cairn_protocol::ErrorCode;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use super::report::{self, Latency, Report};
use super::{
    broker_addr, chosen_partitions, join_all, resolve_topic, spawn_worker, Goal, ProduceBench,
    Progress, Stop, Tally, DEFAULT_RECORDS,
};
use crate::cli::cluster::{metadata_request, Cluster, TopicInfo};
use crate::cli::conn::Connection;
use crate::cli::error_code::KafkaError;
use crate::cli::produce::produce_request;
use crate::cli::produce::{compression, encode_batch, record};
use crate::cli::{ClientArgs, Codec};

/// Bytes at the start of an e2e value: run id, then send time (both u64 big-endian).
pub(super) const STAMP_BYTES: usize = 16;
/// A record's framing beyond its value, at most (as `cairn produce` counts it): length,
/// attributes, timestamp and offset deltas, key and value lengths, header count.
const RECORD_OVERHEAD_BYTES: usize = 26;
/// A request stops taking batches at this many bytes of records (Kafka's default
/// `max.request.size`); one batch always goes.
const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// The send time e2e writes into each value, against a clock this process alone reads.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stamp {
    /// Tells this run's records from anyone else's in the same topic.
    run_id: u64,
    /// Times are microseconds since this instant.
    origin: Instant,
}

impl Stamp {
    /// A stamp with a fresh run id, whose clock starts now.
    pub fn start() -> Stamp {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Stamp {
            run_id: splitmix64(nanos ^ u64::from(std::process::id()).rotate_left(32)) | 1,
            origin: Instant::now(),
        }
    }

    /// Writes the stamp for time `at` into the first [`STAMP_BYTES`] of `value`.
    pub fn write(&self, value: &mut [u8], at: Instant) {
        debug_assert!(value.len() >= STAMP_BYTES, "e2e values hold a stamp");
        let micros = u64::try_from(at.saturating_duration_since(self.origin).as_micros())
            .unwrap_or(u64::MAX);
        value[..8].copy_from_slice(&self.run_id.to_be_bytes());
        value[8..STAMP_BYTES].copy_from_slice(&micros.to_be_bytes());
    }

    /// How long before `now` the record with `value` was sent, if this run stamped it.
    pub fn latency(&self, value: &[u8], now: Instant) -> Option<Duration> {
        let run_id = u64::from_be_bytes(value.get(..8)?.try_into().ok()?);
        if run_id != self.run_id {
            return None;
        }
        let micros = u64::from_be_bytes(value.get(8..STAMP_BYTES)?.try_into().ok()?);
        let sent = self.origin.checked_add(Duration::from_micros(micros))?;
        Some(now.saturating_duration_since(sent))
    }
}

/// Sebastiano Vigna's splitmix64: spreads a seed's bits.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `size` random capital letters.
pub(super) fn payload(size: usize, seed: u64) -> Bytes {
    let mut state = seed;
    (0..size)
        .map(|_| {
            state = splitmix64(state);
            b'A' + (state % 26) as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// Records per batch: as many as fit in `batch_size` bytes, at least one.
pub(super) fn records_per_batch(batch_size: usize, record_size: usize) -> u64 {
    (batch_size / (record_size + RECORD_OVERHEAD_BYTES)).max(1) as u64
}

/// Batches per request to a leader of `partitions` partitions: one each, as long as they
/// fit in [`MAX_REQUEST_BYTES`], at least one.
pub(super) fn batches_per_request(
    partitions: usize,
    records_per_batch: u64,
    record_size: usize,
) -> usize {
    let batch_bytes =
        (records_per_batch as usize).saturating_mul(record_size + RECORD_OVERHEAD_BYTES);
    partitions
        .min(MAX_REQUEST_BYTES / batch_bytes.max(1))
        .max(1)
}

/// Splits `count` records into batches of at most `per_batch`, for the partitions of
/// `partitions` from index `first` on, round-robin: `(partition, records)`.
pub(super) fn spread(
    count: u64,
    per_batch: u64,
    partitions: &[i32],
    first: usize,
) -> Vec<(i32, u64)> {
    let mut out = Vec::new();
    let mut left = count;
    let mut turn = first;
    while left > 0 && !partitions.is_empty() {
        let n = left.min(per_batch.max(1));
        out.push((partitions[turn % partitions.len()], n));
        turn = turn.wrapping_add(1);
        left -= n;
    }
    out
}

/// Hands out record numbers: a batch's worth at a time, until the goal is met.
#[derive(Debug)]
pub(super) struct Claims {
    next: AtomicU64,
    /// `--records`.
    limit: Option<u64>,
    /// The end of `--duration`.
    deadline: Option<Instant>,
    /// `--rate`, records per second.
    rate: Option<u64>,
    start: Instant,
}

impl Claims {
    /// Claims for a run that starts at `start`.
    pub fn new(goal: Goal, rate: Option<u64>, start: Instant) -> Claims {
        let (limit, deadline) = match goal {
            Goal::Records(n) => (Some(n), None),
            Goal::Duration(d) => (None, Some(start + d)),
            Goal::AtEnd => (Some(0), None),
        };
        Claims {
            next: AtomicU64::new(0),
            limit,
            deadline,
            rate,
            start,
        }
    }

    /// The number of the first record of the next batch and how many records it has (at
    /// most `want`); `None` once the goal is met.
    pub fn claim(&self, want: u64) -> Option<(u64, u64)> {
        if self.past_deadline(Instant::now()) {
            return None;
        }
        match self.limit {
            Some(limit) => {
                let first = self
                    .next
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                        (n < limit).then(|| n + want.min(limit - n))
                    })
                    .ok()?;
                Some((first, want.min(limit - first)))
            }
            None => Some((self.next.fetch_add(want, Ordering::Relaxed), want)),
        }
    }

    /// When record `index` may be sent under `--rate` (`None`: at once).
    pub fn due(&self, index: u64) -> Option<Instant> {
        let rate = self.rate?;
        Some(self.start + Duration::from_secs_f64(index as f64 / rate as f64))
    }

    fn past_deadline(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| now >= d)
    }
}

/// What every producing task sends.
#[derive(Debug)]
pub(super) struct Load {
    topic: String,
    acks: i16,
    timeout_ms: i32,
    codec: Codec,
    record_size: usize,
    records_per_batch: u64,
    payload: Bytes,
    stamp: Option<Stamp>,
}

impl Load {
    pub fn new(
        args: &ProduceBench,
        topic: &str,
        client: &ClientArgs,
        stamp: Option<Stamp>,
    ) -> Load {
        let record_size = args.record_size as usize;
        Load {
            topic: topic.to_string(),
            acks: args.acks,
            timeout_ms: i32::try_from(client.timeout_ms).unwrap_or(i32::MAX),
            codec: args.compression,
            record_size,
            records_per_batch: records_per_batch(args.batch_size as usize, record_size),
            payload: payload(record_size, stamp.map_or(7, |s| s.run_id)),
            stamp,
        }
    }

    /// One encoded batch of `count` records, stamped with `now` for e2e.
    fn batch(&self, count: u64, now: Instant) -> anyhow::Result<Bytes> {
        let value = match &self.stamp {
            Some(stamp) => {
                let mut value = BytesMut::from(&self.payload[..]);
                stamp.write(&mut value, now);
                value.freeze()
            }
            None => self.payload.clone(),
        };
        let timestamp = now_ms();
        let records: Vec<Record> = (0..count)
            .map(|i| record(None, Some(value.clone()), i as i64, timestamp))
            .collect();
        encode_batch(&records, compression(self.codec))
    }

    /// The settings a report shows.
    pub fn config(&self, args: &ProduceBench, partitions: usize) -> Vec<(&'static str, Value)> {
        let acks = match self.acks {
            -1 => json!("all"),
            n => json!(n.to_string()),
        };
        let compression = match self.codec {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        };
        vec![
            ("record_size", json!(self.record_size)),
            ("records_per_batch", json!(self.records_per_batch)),
            ("acks", acks),
            ("in_flight", json!(args.in_flight)),
            ("partitions", json!(partitions)),
            ("compression", json!(compression)),
            ("rate", args.rate.map_or(Value::Null, |r| json!(r))),
        ]
    }
}

/// A connection ready to produce, with the partitions it writes to.
#[derive(Debug)]
pub(super) struct Sender {
    conn: Connection,
    partitions: Vec<i32>,
    /// Where in `partitions` its round-robin starts.
    first: usize,
}

/// Opens `in_flight` connections to each leader of `partitions`.
pub(super) async fn connect_senders(
    topic: &TopicInfo,
    brokers: &BTreeMap<i32, String>,
    partitions: &[i32],
    in_flight: u32,
    client: &ClientArgs,
    load: &Load,
) -> anyhow::Result<Vec<Sender>> {
    let mut senders = Vec::new();
    for (leader, led) in topic.by_leader(partitions)? {
        let addr = broker_addr(brokers, leader)?;
        for k in 0..in_flight as usize {
            let conn = Connection::open(addr, client.timeout()).await?;
            let version = conn.version(ApiKey::Produce)?;
            // KIP-110: zstd batches need Produce v7; older brokers would refuse them.
            if load.codec == Codec::Zstd && version < 7 {
                bail!("broker {addr} speaks Produce up to v{version}, and zstd needs v7");
            }
            senders.push(Sender {
                conn,
                partitions: led.clone(),
                first: k,
            });
        }
    }
    Ok(senders)
}

/// Starts one task per sender.
pub(super) fn spawn_senders(
    senders: Vec<Sender>,
    load: &Arc<Load>,
    claims: &Arc<Claims>,
    tally: &Arc<Tally>,
    stop: &Arc<Stop>,
) -> Vec<tokio::task::JoinHandle<anyhow::Result<Histogram<u64>>>> {
    senders
        .into_iter()
        .map(|sender| {
            let work = send_loop(
                Arc::clone(load),
                Arc::clone(claims),
                Arc::clone(tally),
                Arc::clone(stop),
                sender,
            );
            spawn_worker(stop, work)
        })
        .collect()
}

/// Sends batches until the claims run out or the run stops; returns its latencies.
async fn send_loop(
    load: Arc<Load>,
    claims: Arc<Claims>,
    tally: Arc<Tally>,
    stop: Arc<Stop>,
    sender: Sender,
) -> anyhow::Result<Histogram<u64>> {
    let Sender {
        mut conn,
        partitions,
        mut first,
    } = sender;
    let mut latency = report::histogram()?;
    let topic = load.topic.as_str();
    let batches = batches_per_request(partitions.len(), load.records_per_batch, load.record_size);
    let per_request = load.records_per_batch * batches as u64;
    loop {
        if stop.is_set() {
            break;
        }
        let Some((index, count)) = claims.claim(per_request) else {
            break;
        };
        if let Some(due) = claims.due(index) {
            if due > Instant::now() {
                tokio::select! {
                    () = tokio::time::sleep_until(due.into()) => {}
                    () = stop.wait() => break,
                }
            }
            if claims.past_deadline(Instant::now()) {
                break;
            }
        }
        let now = Instant::now();
        let data = spread(count, load.records_per_batch, &partitions, first)
            .into_iter()
            .map(|(partition, n)| Ok((partition, load.batch(n, now)?)))
            .collect::<anyhow::Result<Vec<(i32, Bytes)>>>()?;
        // The next request starts one partition further, so a short last request does
        // not always fall on the same partitions.
        first = first.wrapping_add(1);
        let sent = Instant::now();
        if load.acks == 0 {
            conn.send_only(|v| produce_request(v, topic, 0, load.timeout_ms, &data))
                .await?;
        } else {
            let response = conn
                .call(|v| produce_request(v, topic, load.acks, load.timeout_ms, &data))
                .await?;
            for (partition, batch) in &data {
                check_answer(&response, topic, *partition, batch.len())?;
            }
        }
        report::record(&mut latency, sent.elapsed());
        tally.add(count, count * load.record_size as u64);
    }
    if load.acks == 0 {
        // No answers come: one answered request makes sure the broker read everything.
        conn.call(|v| metadata_request(v, Some(&[topic]))).await?;
    }
    Ok(latency)
}

/// Fails unless the broker stored the batch sent to `partition`, saying what to do.
fn check_answer(
    response: &ProduceResponse,
    topic: &str,
    partition: i32,
    batch_bytes: usize,
) -> anyhow::Result<()> {
    let answer = response
        .responses
        .iter()
        .filter(|t| t.name.0.as_str() == topic)
        .flat_map(|t| &t.partition_responses)
        .find(|p| p.index == partition)
        .ok_or_else(|| {
            anyhow!("the broker's Produce answer left out partition {partition} of {topic}")
        })?;
    match KafkaError::check(answer.error_code, answer.error_message.as_ref()) {
        Ok(()) => Ok(()),
        Err(e) if e.is_leader_change() => Err(anyhow!(e).context(format!(
            "partition {partition} of {topic} changed leader during the benchmark; run it \
             again once the cluster is settled (`cairn cluster health`)"
        ))),
        Err(e)
            if e.code == ErrorCode::MessageTooLarge.code()
                || e.code == ErrorCode::RecordListTooLarge.code() =>
        {
            Err(anyhow!(e).context(format!(
                "cannot produce to partition {partition} of {topic} (a batch of {batch_bytes} \
                 bytes is over the topic's max.message.bytes: use a smaller --batch-size or \
                 --record-size, or raise it with `cairn topic alter {topic} --config \
                 max.message.bytes=N`)"
            )))
        }
        Err(e) => Err(anyhow!(e).context(format!(
            "cannot produce to partition {partition} of {topic}"
        ))),
    }
}

/// `cairn bench produce`.
pub(super) async fn produce(
    client: &ClientArgs,
    args: &ProduceBench,
    stop: &Arc<Stop>,
) -> anyhow::Result<Report> {
    let name = args.topic.name()?;
    let mut cluster = Cluster::connect(client).await?;
    let (topic, brokers) = resolve_topic(
        &mut cluster,
        name,
        true,
        args.create_partitions,
        client.timeout_ms,
    )
    .await?;
    let partitions = chosen_partitions(&topic, args.partition)?;
    let goal = args.limit.goal(Goal::Records(DEFAULT_RECORDS));
    let load = Arc::new(Load::new(args, name, client, None));
    let senders =
        connect_senders(&topic, &brokers, &partitions, args.in_flight, client, &load).await?;
    let tally = Arc::new(Tally::default());
    let progress = Progress::start(goal, None, "records", Arc::clone(&tally));
    let started = Instant::now();
    let claims = Arc::new(Claims::new(goal, args.rate, started));
    let workers = spawn_senders(senders, &load, &claims, &tally, stop);
    let result = join_all(workers).await;
    let elapsed = started.elapsed();
    progress.finish();
    let latency = report::merge(&result?)?;
    Ok(Report {
        mode: "produce",
        topic: name.to_string(),
        interrupted: stop.interrupted(),
        elapsed,
        records: tally.records(),
        bytes: tally.bytes(),
        requests: tally.requests(),
        config: load.config(args, partitions.len()),
        latencies: vec![("request", Latency::of(&latency))],
        counts: Vec::new(),
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
