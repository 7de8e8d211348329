//! `cairn consume TOPIC`: records to stdout, one per line (or by `--format`, or `--json`;
//! see `record_format`).
//!
//! Start (`--offset`, default earliest): earliest and latest from ListOffsets; `N` used where
//! it lies between log start and high watermark, an error otherwise; `-N` that many before
//! the high watermark, no earlier than the log start; `@T` the first offset whose timestamp
//! is at least T (after the last record: the high watermark), skipping any records before
//! the first one stamped T or later (a broker may answer ListOffsets at batch granularity).
//!
//! Stop rule: with `--count N`, after N records, however long they take to arrive; with
//! `--follow`, never; with neither, once every chosen partition has been read up to the
//! high watermark it had when the command started (like `kcat -e`; records appended later
//! are not shown, and a partition that was empty is done at once).
//!
//! Fetch: read_uncommitted, `--max-wait-ms` long polls with min_bytes 1, Kafka's default
//! limits (50 MiB a request, 1 MiB a partition, grown for a partition whose next batch is
//! bigger). Batches are split by their headers (a response may end in a partial batch, which
//! is fetched again), decoded by kafka-protocol's `RecordBatchDecoder` (which decompresses),
//! control batches (transaction markers, raft entries) skipped, and records before the
//! fetch position (the rest of a batch the position falls inside) dropped.
//!
//! Values (and keys) print as UTF-8 with invalid bytes replaced; a null value or key
//! prints as nothing. A closed stdout (`| head`) ends the command quietly.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use bytes::{Buf as _, Bytes};
use cairn_protocol::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use cairn_protocol::kafka_protocol::messages::{BrokerId, FetchRequest};
use cairn_protocol::kafka_protocol::records::{Record, RecordBatchDecoder};
use cairn_protocol::ErrorCode;

use super::cluster::{topic_name, Cluster, TopicInfo};
use super::error_code::KafkaError;
use super::member;
use super::offsets::{list_offsets_or_fail, EARLIEST, LATEST};
use super::record_format::{Printer, StartAt};
use super::ConsumeArgs;

/// Kafka's default `fetch.max.bytes`: data per Fetch response.
const FETCH_MAX_BYTES: i32 = 50 * 1024 * 1024;
/// Kafka's default `max.partition.fetch.bytes`: data per partition per response.
pub(crate) const PARTITION_FETCH_BYTES: i32 = 1024 * 1024;
/// The per-partition limit grows (doubling) to this for a batch larger than the limit, if
/// a broker ever returns only part of one (Kafka itself returns a first batch whole).
pub(crate) const MAX_PARTITION_FETCH_BYTES: i32 = 64 * 1024 * 1024;
/// A v2 batch header: offset, length, epoch, magic, crc, attributes, last offset delta,
/// timestamps, producer id and epoch, base sequence, record count.
const BATCH_HEADER_BYTES: usize = 61;
/// Bytes before `batchLength`'s span starts (baseOffset, batchLength).
const LOG_OVERHEAD_BYTES: usize = 12;
/// Attribute bit of control batches.
const CONTROL_FLAG: i16 = 0x20;
/// Pause before asking for metadata again when leadership moved.
const LEADER_RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// Where a partition is read from, and up to where.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    /// The next offset to print.
    position: i64,
    /// Stop before this offset (the high watermark at start); `None` with `--count`.
    end: Option<i64>,
    /// `partition_max_bytes` for the next fetch.
    max_bytes: i32,
    /// With `--timestamp T`: records before the first one stamped T or later are skipped.
    /// ListOffsets should already have started there; this covers brokers that answer at
    /// batch granularity (a no-op against Kafka and Cairn, which answer per record).
    skip_until_timestamp: Option<i64>,
}

impl Cursor {
    fn done(&self) -> bool {
        self.end.is_some_and(|end| self.position >= end)
    }
}

pub(crate) async fn run(args: &ConsumeArgs) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match consume(args, &mut out)
        .await
        .and_then(|()| Ok(out.flush()?))
    {
        Err(e) if is_broken_pipe(&e) => Ok(()),
        result => result,
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

async fn consume(args: &ConsumeArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let mut cluster = Cluster::connect(&args.client).await?;
    let only: Option<Vec<i32>> = args.partition.map(|p| vec![p]);
    let topic = cluster
        .topic_with_leaders(&args.topic, only.as_deref())
        .await?;
    if let Some(group) = &args.group {
        return consume_in_group(args, group, cluster, topic, out).await;
    }
    let partitions: Vec<i32> = match args.partition {
        Some(p) => vec![topic.partition(p)?.index],
        None => topic.partitions.iter().map(|p| p.index).collect(),
    };
    let mut cursors = start(args, &mut cluster, &topic, &partitions, &BTreeMap::new()).await?;
    let mut reader = Reader::new(args, topic);
    loop {
        if !cursors.values().any(|c| !c.done()) || reader.remaining == Some(0) {
            return Ok(());
        }
        reader.round(&mut cluster, &mut cursors, out).await?;
    }
}

/// `--group`: reads what the group assigns this member, from the group's committed
/// offsets (else `--offset`), committing after each round that printed something and
/// heartbeating between rounds; joins again when the group rebalances; commits and leaves at
/// the end (or on Ctrl-C).
async fn consume_in_group(
    args: &ConsumeArgs,
    group: &str,
    mut cluster: Cluster,
    topic: TopicInfo,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let timeout = args.client.timeout();
    let mut member = member::join(&mut cluster, group, &topic.name, "", timeout).await?;
    let mut cursors = member_cursors(args, &mut cluster, &topic, &member).await?;
    let mut reader = Reader::new(args, topic);
    let mut heartbeat_at = Instant::now() + member::HEARTBEAT_EVERY;
    // Ctrl-C is noticed between rounds (at most --max-wait-ms late): a round cancelled
    // mid-request would leave its answer unread on the connection.
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupted);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::Relaxed);
        }
    });
    loop {
        let finished = (args.count.is_none() && !args.follow && cursors.values().all(Cursor::done))
            || reader.remaining == Some(0)
            || interrupted.load(Ordering::Relaxed);
        if finished {
            break;
        }
        let before: Vec<i64> = cursors.values().map(|c| c.position).collect();
        reader
            .round_or_wait(&mut cluster, &mut cursors, out)
            .await?;
        let mut standing = member::Standing::Member;
        if cursors.values().map(|c| c.position).ne(before) {
            standing = member
                .commit(&mut cluster, &reader.topic.name, &positions(&cursors))
                .await?;
        }
        if standing == member::Standing::Member && Instant::now() >= heartbeat_at {
            standing = member.heartbeat(&mut cluster).await?;
            heartbeat_at = Instant::now() + member::HEARTBEAT_EVERY;
        }
        if standing != member::Standing::Member {
            let id = if standing == member::Standing::Rejoin {
                member.member_id.clone()
            } else {
                String::new()
            };
            member = member::join(&mut cluster, group, &reader.topic.name, &id, timeout).await?;
            cursors = member_cursors(args, &mut cluster, &reader.topic, &member).await?;
            heartbeat_at = Instant::now() + member::HEARTBEAT_EVERY;
        }
    }
    out.flush()?;
    member
        .commit(&mut cluster, &reader.topic.name, &positions(&cursors))
        .await?;
    member.leave(&mut cluster).await;
    Ok(())
}

/// (partition, next offset) of every cursor: what a member commits.
fn positions(cursors: &BTreeMap<i32, Cursor>) -> Vec<(i32, i64)> {
    cursors.iter().map(|(&p, c)| (p, c.position)).collect()
}

/// Cursors for a member's assignment: committed offsets where the group has them.
async fn member_cursors(
    args: &ConsumeArgs,
    cluster: &mut Cluster,
    topic: &TopicInfo,
    member: &member::Member,
) -> anyhow::Result<BTreeMap<i32, Cursor>> {
    if member.partitions.is_empty() {
        return Ok(BTreeMap::new());
    }
    let committed = member
        .committed(cluster, &topic.name, &member.partitions)
        .await?;
    start(args, cluster, topic, &member.partitions, &committed).await
}

/// The cursors of `partitions`: at `committed` where given, else where `--offset` says;
/// each ending at the high watermark as of now unless `--count` or `--follow`.
async fn start(
    args: &ConsumeArgs,
    cluster: &mut Cluster,
    topic: &TopicInfo,
    partitions: &[i32],
    committed: &BTreeMap<i32, i64>,
) -> anyhow::Result<BTreeMap<i32, Cursor>> {
    let ends = list_offsets_or_fail(cluster, topic, partitions, LATEST).await?;
    let start_at = args.start_at();
    let open: Vec<i32> = partitions
        .iter()
        .copied()
        .filter(|p| !committed.contains_key(p))
        .collect();
    let mut starts: BTreeMap<i32, i64> = if open.is_empty() {
        BTreeMap::new()
    } else {
        match start_at {
            StartAt::Earliest => list_offsets_or_fail(cluster, topic, &open, EARLIEST).await?,
            StartAt::Latest => open.iter().map(|p| (*p, ends[p])).collect(),
            StartAt::Offset(offset) => {
                let log_starts = list_offsets_or_fail(cluster, topic, &open, EARLIEST).await?;
                for &p in &open {
                    let (start, end) = (log_starts[&p], ends[&p]);
                    if offset < start || offset > end {
                        return Err(out_of_range(&topic.name, p, offset, Some((start, end))));
                    }
                }
                open.iter().map(|&p| (p, offset)).collect()
            }
            StartAt::FromEnd(back) => {
                let log_starts = list_offsets_or_fail(cluster, topic, &open, EARLIEST).await?;
                open.iter()
                    .map(|&p| (p, ends[&p].saturating_sub(back).max(log_starts[&p])))
                    .collect()
            }
            StartAt::Timestamp(timestamp) => {
                let found = list_offsets_or_fail(cluster, topic, &open, timestamp).await?;
                // -1: no record at or after the timestamp; start at the end.
                found
                    .into_iter()
                    .map(|(p, offset)| (p, if offset < 0 { ends[&p] } else { offset }))
                    .collect()
            }
        }
    };
    starts.extend(committed.iter().map(|(p, o)| (*p, *o)));
    let stop_at_end = args.count.is_none() && !args.follow;
    Ok(partitions
        .iter()
        .map(|&p| {
            let cursor = Cursor {
                position: starts[&p],
                end: stop_at_end.then(|| ends[&p]),
                max_bytes: PARTITION_FETCH_BYTES,
                skip_until_timestamp: match start_at {
                    StartAt::Timestamp(t) if !committed.contains_key(&p) => Some(t),
                    _ => None,
                },
            };
            (p, cursor)
        })
        .collect())
}

/// Fetches and prints, round after round, following leadership changes.
struct Reader {
    topic: TopicInfo,
    printer: Printer,
    max_wait: Duration,
    max_wait_ms: i32,
    remaining: Option<u64>,
    leader_trouble_since: Option<Instant>,
    timeout: Duration,
    timeout_ms: u32,
}

impl Reader {
    fn new(args: &ConsumeArgs, topic: TopicInfo) -> Reader {
        Reader {
            topic,
            printer: args.printer(),
            max_wait: Duration::from_millis(u64::from(args.max_wait_ms)),
            max_wait_ms: i32::try_from(args.max_wait_ms).unwrap_or(i32::MAX),
            remaining: args.count,
            leader_trouble_since: None,
            timeout: args.client.timeout(),
            timeout_ms: args.client.timeout_ms,
        }
    }

    /// A round when some cursor has more to read; otherwise a pause of `--max-wait-ms`
    /// (a member with nothing assigned, or at the end of its partitions).
    async fn round_or_wait(
        &mut self,
        cluster: &mut Cluster,
        cursors: &mut BTreeMap<i32, Cursor>,
        out: &mut impl Write,
    ) -> anyhow::Result<()> {
        if cursors.values().all(Cursor::done) {
            tokio::time::sleep(self.max_wait).await;
            return Ok(());
        }
        self.round(cluster, cursors, out).await
    }

    /// One Fetch to each leader of the cursors not done; prints what comes back.
    async fn round(
        &mut self,
        cluster: &mut Cluster,
        cursors: &mut BTreeMap<i32, Cursor>,
        out: &mut impl Write,
    ) -> anyhow::Result<()> {
        let active: Vec<i32> = cursors
            .iter()
            .filter(|(_, c)| !c.done())
            .map(|(&p, _)| p)
            .collect();
        let topic = &self.topic;
        let mut leader_moved = false;
        for (leader, indexes) in topic.by_leader(&active)? {
            let asked: Vec<(i32, i64, i32)> = indexes
                .iter()
                .map(|p| (*p, cursors[p].position, cursors[p].max_bytes))
                .collect();
            let conn = cluster.leader(leader).await?;
            let max_wait_ms = self.max_wait_ms;
            let response = conn
                .call_waiting(self.max_wait, |v| {
                    fetch_request(v, &topic.name, &asked, max_wait_ms)
                })
                .await?;
            KafkaError::check(response.error_code, None)
                .map_err(|e| anyhow!(e).context(format!("cannot fetch from {}", topic.name)))?;
            let answers = response
                .responses
                .iter()
                .filter(|t| t.topic.0.as_str() == topic.name)
                .flat_map(|t| &t.partitions);
            for answer in answers {
                let index = answer.partition_index;
                let Some(cursor) = cursors.get_mut(&index).filter(|_| indexes.contains(&index))
                else {
                    continue;
                };
                match KafkaError::check(answer.error_code, None) {
                    Ok(()) => {}
                    Err(e) if e.is_leader_change() => {
                        leader_moved = true;
                        continue;
                    }
                    Err(e) if e.code == ErrorCode::OffsetOutOfRange.code() => {
                        let range = list_offsets_or_fail(cluster, topic, &[index], EARLIEST)
                            .await
                            .ok()
                            .zip(
                                list_offsets_or_fail(cluster, topic, &[index], LATEST)
                                    .await
                                    .ok(),
                            )
                            .and_then(|(s, e)| Some((*s.get(&index)?, *e.get(&index)?)));
                        return Err(out_of_range(&topic.name, index, cursor.position, range));
                    }
                    Err(e) => {
                        return Err(anyhow!(e)
                            .context(format!("cannot fetch partition {index} of {}", topic.name)))
                    }
                }
                // The end may only shrink (a truncated log), never wait past what exists.
                if let Some(end) = cursor.end.as_mut() {
                    if answer.high_watermark >= 0 && answer.high_watermark < *end {
                        *end = answer.high_watermark;
                    }
                }
                let Some(records) = answer.records.as_ref().filter(|r| !r.is_empty()) else {
                    continue;
                };
                let printer = &self.printer;
                let batches = take_records(records, cursor, &mut self.remaining, &mut |r| {
                    printer.write(out, &topic.name, index, r)
                })
                .map_err(|e| match e.downcast::<std::io::Error>() {
                    Ok(io) => anyhow::Error::from(io),
                    Err(e) => e.context(format!(
                        "cannot read records of partition {index} of {} at offset {}",
                        topic.name, cursor.position
                    )),
                })?;
                if batches == 0 && self.remaining != Some(0) {
                    // Only part of one batch came back: ask for more next time.
                    if cursor.max_bytes >= MAX_PARTITION_FETCH_BYTES {
                        bail!(
                            "the record batch at offset {} of partition {index} of {} is larger \
                             than {MAX_PARTITION_FETCH_BYTES} bytes",
                            cursor.position,
                            topic.name
                        );
                    }
                    cursor.max_bytes = cursor.max_bytes.saturating_mul(2);
                }
                if self.remaining == Some(0) {
                    break;
                }
            }
            if self.remaining == Some(0) {
                break;
            }
        }
        out.flush()?;
        if leader_moved {
            let since = *self.leader_trouble_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= self.timeout {
                bail!(
                    "partitions of {} found no stable leader within {} ms",
                    self.topic.name,
                    self.timeout_ms
                );
            }
            tokio::time::sleep(LEADER_RETRY_BACKOFF).await;
            let name = self.topic.name.clone();
            self.topic = cluster.topic_with_leaders(&name, Some(&active)).await?;
        } else {
            self.leader_trouble_since = None;
        }
        Ok(())
    }
}

fn out_of_range(
    topic: &str,
    partition: i32,
    offset: i64,
    range: Option<(i64, i64)>,
) -> anyhow::Error {
    match range {
        Some((start, end)) => anyhow!(
            "offset {offset} is out of range for partition {partition} of {topic} \
             (log start {start}, high watermark {end}): OFFSET_OUT_OF_RANGE"
        ),
        None => anyhow!("offset {offset} is out of range for partition {partition} of {topic}: OFFSET_OUT_OF_RANGE"),
    }
}

/// What a record visitor of [`walk_batches`] asks for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The record is taken: move past it and go on.
    Next,
    /// The record is taken and the walk ends.
    Last,
    /// The walk ends before this record (it is left for later).
    Before,
}

/// Walks the complete v2 batches in a Fetch answer's `data`, handing each record at or after
/// `*position` (and before `end`) to `visit`; control batches are passed over. Moves
/// `*position` past each record taken and each complete batch, or to `end` when it is
/// reached. Returns how many complete batches there were (a trailing partial batch is left
/// for the next fetch).
pub(crate) fn walk_batches(
    data: &Bytes,
    position: &mut i64,
    end: Option<i64>,
    visit: &mut impl FnMut(&Record) -> anyhow::Result<Step>,
) -> anyhow::Result<usize> {
    let mut rest = data.clone();
    let mut batches = 0;
    while rest.len() >= LOG_OVERHEAD_BYTES {
        let base_offset = (&rest[0..8]).get_i64();
        let batch_length = (&rest[8..12]).get_i32();
        let Some(total) = usize::try_from(batch_length)
            .ok()
            .map(|len| len + LOG_OVERHEAD_BYTES)
            .filter(|&total| total >= BATCH_HEADER_BYTES)
        else {
            bail!("record batch at offset {base_offset} declares length {batch_length}");
        };
        if rest.len() < total {
            break;
        }
        let batch = rest.split_to(total);
        batches += 1;
        let magic = batch[16];
        if magic != 2 {
            bail!("record batch at offset {base_offset} has format v{magic}; only v2 is read");
        }
        let attributes = (&batch[21..23]).get_i16();
        let last_offset_delta = (&batch[23..27]).get_i32();
        let next_offset = base_offset + i64::from(last_offset_delta) + 1;
        if attributes & CONTROL_FLAG == 0 && next_offset > *position {
            let set = RecordBatchDecoder::decode(&mut batch.clone())
                .map_err(|e| anyhow!("record batch at offset {base_offset}: {e:#}"))?;
            for record in &set.records {
                if record.offset < *position {
                    continue;
                }
                if let Some(end) = end.filter(|&end| record.offset >= end) {
                    *position = end;
                    return Ok(batches);
                }
                match visit(record)? {
                    Step::Before => return Ok(batches),
                    Step::Next => *position = record.offset + 1,
                    Step::Last => {
                        *position = record.offset + 1;
                        return Ok(batches);
                    }
                }
            }
        }
        *position = (*position).max(next_offset);
    }
    Ok(batches)
}

/// Walks the batches in `records` ([`walk_batches`]), handing each record at or after
/// `cursor.position` (and before `cursor.end`, and stamped at or after a `--offset @TIME`)
/// to `emit`, until `remaining` reaches 0.
fn take_records(
    records: &Bytes,
    cursor: &mut Cursor,
    remaining: &mut Option<u64>,
    emit: &mut impl FnMut(&Record) -> std::io::Result<()>,
) -> anyhow::Result<usize> {
    let skip_until = &mut cursor.skip_until_timestamp;
    walk_batches(records, &mut cursor.position, cursor.end, &mut |record| {
        if let Some(timestamp) = *skip_until {
            if record.timestamp < timestamp {
                return Ok(Step::Next);
            }
            *skip_until = None;
        }
        emit(record)?;
        Ok(match remaining.as_mut() {
            Some(n) => {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    Step::Last
                } else {
                    Step::Next
                }
            }
            None => Step::Next,
        })
    })
}

/// A consumer's Fetch (replica id -1, read_uncommitted, no fetch session) of
/// `(partition, offset, max bytes)`s.
pub(crate) fn fetch_request(
    _version: i16,
    topic: &str,
    partitions: &[(i32, i64, i32)],
    max_wait_ms: i32,
) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(FETCH_MAX_BYTES)
        .with_isolation_level(0)
        // Session 0, epoch -1: a full fetch outside any session (KIP-227).
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(
                partitions
                    .iter()
                    .map(|&(partition, offset, max_bytes)| {
                        FetchPartition::default()
                            .with_partition(partition)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(max_bytes)
                    })
                    .collect(),
            )])
}

#[cfg(test)]
mod tests;
