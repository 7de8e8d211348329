//! The reading side: `bench consume`, and `bench e2e` (which starts readers at the end of
//! the topic, then producers, and waits until the readers have seen every record produced).
//!
//! One task per partition leader, with its own connection, fetching every chosen partition
//! that leader leads (read_uncommitted, min_bytes 1, `--max-wait-ms` long polls, Kafka's
//! default byte limits, as `cairn consume`). Batches are split by their headers and decoded
//! with kafka-protocol's `RecordBatchDecoder` (which decompresses), as a real consumer
//! must; control batches and records before the fetch position are skipped, and a
//! partition's limit doubles when only part of one batch came back.
//!
//! `--records N` is counted exactly across tasks: each record read takes one from a shared
//! counter, and a task stops at the record where it reaches zero.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use bytes::Bytes;
use cairn_protocol::kafka_protocol::records::Record;
use cairn_protocol::ErrorCode;
use hdrhistogram::Histogram;
use serde_json::json;

use super::producer::{connect_senders, spawn_senders, Claims, Load, Stamp};
use super::report::{self, Latency, Report};
use super::{
    broker_addr, chosen_partitions, join_all, resolve_topic, spawn_worker, ConsumeBench, Goal,
    ProduceBench, Progress, Stop, Tally, DEFAULT_RECORDS,
};
use crate::cli::cluster::{Cluster, TopicInfo};
use crate::cli::conn::Connection;
use crate::cli::consume::{
    self, fetch_request, Step, MAX_PARTITION_FETCH_BYTES, PARTITION_FETCH_BYTES,
};
use crate::cli::error_code::KafkaError;
use crate::cli::offsets::{list_offsets_or_fail, EARLIEST, LATEST};
use crate::cli::record_format::StartAt;
use crate::cli::ClientArgs;

/// How long e2e fetches may wait: short, so the readers notice the end soon.
const E2E_MAX_WAIT_MS: u32 = 100;

/// Where a partition is read from, and up to where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cursor {
    pub partition: i32,
    /// The next offset to read.
    pub position: i64,
    /// Stop before this offset (the high watermark at start); `None`: no end.
    pub end: Option<i64>,
    /// `partition_max_bytes` for the next fetch.
    pub max_bytes: i32,
}

impl Cursor {
    pub fn new(partition: i32, position: i64, end: Option<i64>) -> Cursor {
        Cursor {
            partition,
            position,
            end,
            max_bytes: PARTITION_FETCH_BYTES,
        }
    }

    pub fn done(&self) -> bool {
        self.end.is_some_and(|end| self.position >= end)
    }
}

/// What the reading tasks share.
#[derive(Debug)]
struct Reading {
    topic: String,
    max_wait: Duration,
    max_wait_ms: i32,
    /// e2e: records count only if they carry this run's stamp.
    stamp: Option<Stamp>,
    /// `--records`: how many more may be counted.
    remaining: Option<AtomicU64>,
    /// The end of `--duration`.
    deadline: Option<Instant>,
    /// e2e: stop once this many records were read (set when the producers are done).
    target: AtomicU64,
}

impl Reading {
    fn new(
        topic: &str,
        max_wait_ms: u32,
        goal: Goal,
        stamp: Option<Stamp>,
        start: Instant,
    ) -> Reading {
        Reading {
            topic: topic.to_string(),
            max_wait: Duration::from_millis(u64::from(max_wait_ms)),
            max_wait_ms: i32::try_from(max_wait_ms).unwrap_or(i32::MAX),
            stamp,
            remaining: match goal {
                Goal::Records(n) => Some(AtomicU64::new(n)),
                _ => None,
            },
            deadline: match goal {
                Goal::Duration(d) => Some(start + d),
                _ => None,
            },
            target: AtomicU64::new(u64::MAX),
        }
    }

    /// Takes one record from `--records`; false when none are left.
    fn take_one(&self) -> bool {
        match &self.remaining {
            None => true,
            Some(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }

    /// The goal is met.
    fn finished(&self, tally: &Tally) -> bool {
        self.remaining
            .as_ref()
            .is_some_and(|left| left.load(Ordering::Relaxed) == 0)
            || self.deadline.is_some_and(|d| Instant::now() >= d)
            || tally.records() >= self.target.load(Ordering::Relaxed)
    }
}

/// What one reading task measured.
#[derive(Debug)]
struct Read {
    fetch: Histogram<u64>,
    end_to_end: Histogram<u64>,
}

/// The starting cursors of `partitions` for `start_at`, ending at the high watermarks as
/// of now when `to_end`.
async fn start_cursors(
    cluster: &mut Cluster,
    topic: &TopicInfo,
    partitions: &[i32],
    start_at: StartAt,
    to_end: bool,
) -> anyhow::Result<Vec<Cursor>> {
    let ends = list_offsets_or_fail(cluster, topic, partitions, LATEST).await?;
    let starts: BTreeMap<i32, i64> = match start_at {
        StartAt::Latest => ends.clone(),
        StartAt::Earliest => list_offsets_or_fail(cluster, topic, partitions, EARLIEST).await?,
        StartAt::Offset(offset) => {
            let log_starts = list_offsets_or_fail(cluster, topic, partitions, EARLIEST).await?;
            for &p in partitions {
                let (start, end) = (log_starts[&p], ends[&p]);
                if offset < start || offset > end {
                    bail!(
                        "offset {offset} is out of range for partition {p} of {} (log start \
                         {start}, high watermark {end}): OFFSET_OUT_OF_RANGE",
                        topic.name
                    );
                }
            }
            partitions.iter().map(|&p| (p, offset)).collect()
        }
        StartAt::FromEnd(back) => {
            let log_starts = list_offsets_or_fail(cluster, topic, partitions, EARLIEST).await?;
            partitions
                .iter()
                .map(|&p| (p, ends[&p].saturating_sub(back).max(log_starts[&p])))
                .collect()
        }
        StartAt::Timestamp(t) => list_offsets_or_fail(cluster, topic, partitions, t)
            .await?
            .into_iter()
            // -1: no record at or after the time; start at the end.
            .map(|(p, offset)| (p, if offset < 0 { ends[&p] } else { offset }))
            .collect(),
    };
    Ok(partitions
        .iter()
        .map(|&p| Cursor::new(p, starts[&p], to_end.then(|| ends[&p])))
        .collect())
}

/// One connection per leader of `cursors`, with that leader's cursors.
async fn connect_readers(
    topic: &TopicInfo,
    brokers: &BTreeMap<i32, String>,
    cursors: Vec<Cursor>,
    client: &ClientArgs,
) -> anyhow::Result<Vec<(Connection, Vec<Cursor>)>> {
    let partitions: Vec<i32> = cursors.iter().map(|c| c.partition).collect();
    let mut readers = Vec::new();
    for (leader, led) in topic.by_leader(&partitions)? {
        let conn = Connection::open(broker_addr(brokers, leader)?, client.timeout()).await?;
        let mine = cursors
            .iter()
            .filter(|c| led.contains(&c.partition))
            .cloned()
            .collect();
        readers.push((conn, mine));
    }
    Ok(readers)
}

fn spawn_readers(
    readers: Vec<(Connection, Vec<Cursor>)>,
    reading: &Arc<Reading>,
    tally: &Arc<Tally>,
    stop: &Arc<Stop>,
) -> Vec<tokio::task::JoinHandle<anyhow::Result<Read>>> {
    readers
        .into_iter()
        .map(|(conn, cursors)| {
            let work = read_loop(
                Arc::clone(reading),
                Arc::clone(tally),
                Arc::clone(stop),
                conn,
                cursors,
            );
            spawn_worker(stop, work)
        })
        .collect()
}

/// Fetches until the goal is met, the cursors are done, or the run stops.
async fn read_loop(
    reading: Arc<Reading>,
    tally: Arc<Tally>,
    stop: Arc<Stop>,
    mut conn: Connection,
    mut cursors: Vec<Cursor>,
) -> anyhow::Result<Read> {
    let mut fetch = report::histogram()?;
    let mut end_to_end = report::histogram()?;
    let topic = reading.topic.as_str();
    loop {
        if stop.is_set() || reading.finished(&tally) {
            break;
        }
        let asked: Vec<(i32, i64, i32)> = cursors
            .iter()
            .filter(|c| !c.done())
            .map(|c| (c.partition, c.position, c.max_bytes))
            .collect();
        if asked.is_empty() {
            break;
        }
        let sent = Instant::now();
        let response = conn
            .call_waiting(reading.max_wait, |v| {
                fetch_request(v, topic, &asked, reading.max_wait_ms)
            })
            .await?;
        let now = Instant::now();
        report::record(&mut fetch, now.duration_since(sent));
        KafkaError::check(response.error_code, None)
            .map_err(|e| anyhow!(e).context(format!("cannot fetch from {topic}")))?;
        let (mut records, mut bytes) = (0u64, 0u64);
        let mut limit_reached = false;
        let answers = response
            .responses
            .iter()
            .filter(|t| t.topic.0.as_str() == topic)
            .flat_map(|t| &t.partitions);
        for answer in answers {
            let index = answer.partition_index;
            let Some(cursor) = cursors
                .iter_mut()
                .find(|c| c.partition == index && !c.done())
            else {
                continue;
            };
            match KafkaError::check(answer.error_code, None) {
                Ok(()) => {}
                Err(e) if e.is_leader_change() => {
                    return Err(anyhow!(e).context(format!(
                        "partition {index} of {topic} changed leader during the benchmark; \
                         run it again once the cluster is settled (`cairn cluster health`)"
                    )))
                }
                Err(e) if e.code == ErrorCode::OffsetOutOfRange.code() => {
                    return Err(anyhow!(e).context(format!(
                        "offset {} of partition {index} of {topic} is gone (deleted by \
                         retention while reading?)",
                        cursor.position
                    )))
                }
                Err(e) => {
                    return Err(
                        anyhow!(e).context(format!("cannot fetch partition {index} of {topic}"))
                    )
                }
            }
            // The end may only shrink (a truncated log), never wait past what exists.
            if let Some(end) = cursor.end.as_mut() {
                if answer.high_watermark >= 0 && answer.high_watermark < *end {
                    *end = answer.high_watermark;
                }
            }
            let Some(data) = answer.records.as_ref().filter(|r| !r.is_empty()) else {
                continue;
            };
            let batches = walk_batches(data, cursor, &mut |record| {
                let value = record.value.as_deref().unwrap_or_default();
                if let Some(stamp) = &reading.stamp {
                    match stamp.latency(value, now) {
                        Some(latency) => report::record(&mut end_to_end, latency),
                        // Not this run's: someone else writes to the topic too.
                        None => return true,
                    }
                }
                if !reading.take_one() {
                    limit_reached = true;
                    return false;
                }
                records += 1;
                bytes += (value.len() + record.key.as_ref().map_or(0, Bytes::len)) as u64;
                true
            })
            .map_err(|e| {
                e.context(format!(
                    "cannot read records of partition {index} of {topic} at offset {}",
                    cursor.position
                ))
            })?;
            if limit_reached {
                break;
            }
            if batches == 0 {
                // Only part of one batch came back: ask for more next time.
                if cursor.max_bytes >= MAX_PARTITION_FETCH_BYTES {
                    bail!(
                        "the record batch at offset {} of partition {index} of {topic} is \
                         larger than {MAX_PARTITION_FETCH_BYTES} bytes",
                        cursor.position
                    );
                }
                cursor.max_bytes = cursor.max_bytes.saturating_mul(2);
            }
        }
        tally.add(records, bytes);
    }
    Ok(Read { fetch, end_to_end })
}

/// Walks the complete batches in `data` ([`consume::walk_batches`]), handing each record at
/// or after `cursor.position` (and before `cursor.end`) to `visit` until it returns false;
/// moves `cursor.position` past each record visited and each complete batch. Returns how
/// many complete batches there were.
pub(super) fn walk_batches(
    data: &Bytes,
    cursor: &mut Cursor,
    visit: &mut impl FnMut(&Record) -> bool,
) -> anyhow::Result<usize> {
    consume::walk_batches(data, &mut cursor.position, cursor.end, &mut |record| {
        Ok(if visit(record) {
            Step::Next
        } else {
            Step::Before
        })
    })
}

/// `cairn bench consume`.
pub(super) async fn consume(
    client: &ClientArgs,
    args: &ConsumeBench,
    stop: &Arc<Stop>,
) -> anyhow::Result<Report> {
    let name = args.topic.name()?;
    let mut cluster = Cluster::connect(client).await?;
    let (topic, brokers) =
        resolve_topic(&mut cluster, name, false, None, client.timeout_ms).await?;
    let partitions = chosen_partitions(&topic, args.partition)?;
    let goal = args.limit.goal(Goal::AtEnd);
    let start_at = args.offset.unwrap_or(StartAt::Earliest);
    let cursors = start_cursors(
        &mut cluster,
        &topic,
        &partitions,
        start_at,
        goal == Goal::AtEnd,
    )
    .await?;
    let total: Option<u64> = cursors
        .iter()
        .map(|c| {
            c.end
                .map(|end| u64::try_from(end - c.position).unwrap_or(0))
        })
        .sum();
    let readers = connect_readers(&topic, &brokers, cursors, client).await?;
    let tally = Arc::new(Tally::default());
    let progress = Progress::start(goal, total, "records", Arc::clone(&tally));
    let started = Instant::now();
    let reading = Arc::new(Reading::new(name, args.max_wait_ms, goal, None, started));
    let result = join_all(spawn_readers(readers, &reading, &tally, stop)).await;
    let elapsed = started.elapsed();
    progress.finish();
    let reads = result?;
    let fetch = report::merge(reads.iter().map(|r| &r.fetch))?;
    let start = match start_at {
        StartAt::Earliest => json!("earliest"),
        StartAt::Latest => json!("latest"),
        StartAt::Offset(n) => json!(n.to_string()),
        StartAt::FromEnd(n) => json!(format!("-{n}")),
        StartAt::Timestamp(t) => json!(format!("@{t}")),
    };
    Ok(Report {
        mode: "consume",
        topic: name.to_string(),
        interrupted: stop.interrupted(),
        elapsed,
        records: tally.records(),
        bytes: tally.bytes(),
        requests: tally.requests(),
        config: vec![
            ("offset", start),
            ("partitions", json!(partitions.len())),
            ("max_wait_ms", json!(args.max_wait_ms)),
        ],
        latencies: vec![("fetch", Latency::of(&fetch))],
        counts: Vec::new(),
    })
}

/// `cairn bench e2e`: readers at the end of the topic first, then the producers; the run
/// ends when the readers have read every record acknowledged (or `--timeout-ms` after the
/// producers finished, reporting the records still missing).
pub(super) async fn end_to_end(
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
    let cursors = start_cursors(&mut cluster, &topic, &partitions, StartAt::Latest, false).await?;
    let readers = connect_readers(&topic, &brokers, cursors, client).await?;
    let stamp = Stamp::start();
    let load = Arc::new(Load::new(args, name, client, Some(stamp)));
    let senders =
        connect_senders(&topic, &brokers, &partitions, args.in_flight, client, &load).await?;

    let (produced, read) = (Arc::new(Tally::default()), Arc::new(Tally::default()));
    let progress = Progress::start(goal, None, "records", Arc::clone(&read));
    let started = Instant::now();
    // The readers' own goal is the producers' count, set below; --duration and --records
    // bound the producers.
    let reading = Arc::new(Reading::new(
        name,
        E2E_MAX_WAIT_MS,
        Goal::AtEnd,
        Some(stamp),
        started,
    ));
    let reader_tasks = spawn_readers(readers, &reading, &read, stop);
    let claims = Arc::new(Claims::new(goal, args.rate, started));
    let sent = join_all(spawn_senders(senders, &load, &claims, &produced, stop)).await;
    if sent.is_ok() {
        reading.target.store(produced.records(), Ordering::Relaxed);
    } else {
        stop.set();
    }
    // Records not read back within --timeout-ms after the last acknowledgement are missing.
    let patience = {
        let (stop, timeout) = (Arc::clone(stop), client.timeout());
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            stop.set();
        })
    };
    let reads = join_all(reader_tasks).await;
    patience.abort();
    let elapsed = started.elapsed();
    progress.finish();
    let send_latency = report::merge(&sent?)?;
    let reads = reads?;
    let fetch = report::merge(reads.iter().map(|r| &r.fetch))?;
    let end_to_end = report::merge(reads.iter().map(|r| &r.end_to_end))?;
    let missing = produced.records().saturating_sub(read.records());
    let interrupted = stop.interrupted();
    if missing > 0 && !interrupted {
        eprintln!(
            "warning: {missing} of {} records produced were not read back within {} ms",
            produced.records(),
            client.timeout_ms
        );
    }
    let mut config = load.config(args, partitions.len());
    config.push(("max_wait_ms", json!(E2E_MAX_WAIT_MS)));
    Ok(Report {
        mode: "e2e",
        topic: name.to_string(),
        interrupted,
        elapsed,
        records: read.records(),
        bytes: read.bytes(),
        requests: produced.requests(),
        config,
        latencies: vec![
            ("end_to_end", Latency::of(&end_to_end)),
            ("produce", Latency::of(&send_latency)),
            ("fetch", Latency::of(&fetch)),
        ],
        counts: vec![("produced", produced.records()), ("missing", missing)],
    })
}
