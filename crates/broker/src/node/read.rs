//! Reading partitions: offsets by time (ListOffsets), whole batches without Cairn's raft
//! entries (Fetch), decoded records (the HTTP API's consume), and DeleteRecords.
//!
//! Clients never see Cairn's raft control batches (an election's no-op): a read that would
//! hold nothing else moves on to the data after them, and [`strip_raft_control`] cuts them
//! out of what is sent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use cairn_partition::{is_raft_control, FetchData, OffsetQuery, PartitionError, PartitionHandle};
use cairn_protocol::kafka_protocol::records::RecordBatchDecoder;
use cairn_protocol::ErrorCode;
use cairn_storage::{batch, LogRead};

use super::{Node, NodeError};
use crate::read_buffers::ReadBuffers;

/// A read this small may be nothing but raft control batches (a few dozen bytes each).
const CONTROL_ONLY_MAX_BYTES: u64 = 4096;
/// Loads larger than this run on the blocking pool rather than on a network thread.
const BLOCKING_LOAD_BYTES: u64 = 256 * 1024;
/// Runs of control batches skipped before a read gives up looking for data (there is one
/// per election, and elections follow one another only after restarts).
const MAX_CONTROL_SKIPS: usize = 16;
/// Reads one consume makes before answering with what it has: each read moves past at least
/// one batch, so this bounds the work of a consume that finds only batches it skips.
const MAX_CONSUME_READS: usize = 64;

/// Whole batches from the one holding `offset`, at most `limit` bytes but at least one
/// batch (KIP-74), below the high watermark. If all a read holds is Cairn's raft control
/// batches (an election's no-op, which clients never see) because the next data batch is
/// larger than the limit, the client would get nothing and ask again from the same offset
/// forever: the read goes on from after them, so the "at least one" is a data batch.
pub(crate) async fn read_batches(
    handle: &PartitionHandle,
    offset: u64,
    limit: u32,
) -> Result<FetchData, PartitionError> {
    let mut data = handle.fetch(offset, limit).await?;
    for _ in 0..MAX_CONTROL_SKIPS {
        if data.read.total_bytes() > CONTROL_ONLY_MAX_BYTES {
            break;
        }
        let Some(next) = data.read.next_offset() else {
            break;
        };
        if next >= data.high_watermark || !only_raft_control(&data.read) {
            break;
        }
        data = handle.fetch(next, limit).await?;
    }
    Ok(data)
}

/// Loads a read's batches into a pooled buffer (`ReadBuffers`), a large one on the blocking
/// pool so a network thread does not wait for the disk.
pub(crate) async fn load(buffers: &Arc<ReadBuffers>, read: LogRead) -> Result<Bytes, NodeError> {
    let loaded = if read.total_bytes() > BLOCKING_LOAD_BYTES {
        let buffers = Arc::clone(buffers);
        tokio::task::spawn_blocking(move || buffers.load(&read))
            .await
            .map_err(|e| NodeError::kafka(ErrorCode::UnknownServerError, e.to_string()))?
    } else {
        buffers.load(&read)
    };
    loaded.map_err(|e| NodeError::kafka(ErrorCode::from(&e), e.to_string()))
}

/// Whether a (small) read holds only Cairn's raft control batches.
fn only_raft_control(read: &LogRead) -> bool {
    read.load()
        .is_ok_and(|bytes| !bytes.is_empty() && strip_raft_control(bytes).is_empty())
}

/// The batches of `bytes` without Cairn's raft control batches (a copy only when there is
/// one to cut, which happens once per election).
pub(crate) fn strip_raft_control(bytes: Bytes) -> Bytes {
    let mut spans = Vec::new();
    let mut at = 0usize;
    let mut cut = false;
    while let Some((_, len)) = batch::peek_total_len(&bytes[at..]) {
        let Ok(len) = usize::try_from(len) else { break };
        let end = at.saturating_add(len).min(bytes.len());
        let b = &bytes[at..end];
        let control = batch::parse_header(b).is_ok_and(|h| h.is_control()) && is_raft_control(b);
        if control {
            cut = true;
        } else {
            spans.push(at..end);
        }
        if end == at {
            break;
        }
        at = end;
    }
    if !cut {
        return bytes;
    }
    let mut out = BytesMut::with_capacity(bytes.len());
    for span in spans {
        out.extend_from_slice(&bytes[span]);
    }
    out.freeze()
}

/// An offset found by time or position: the record's timestamp, its offset, and the leader
/// epoch of its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FoundOffset {
    pub(crate) timestamp: i64,
    pub(crate) offset: i64,
    pub(crate) leader_epoch: i32,
}

/// ListOffsets on one partition: `None` when nothing matches (a time after every record).
/// Storage answers with a batch; Kafka answers with the record, so for a time the batch is
/// decoded to find the first record at or after it.
pub(crate) async fn offset_for(
    handle: &PartitionHandle,
    query: OffsetQuery,
) -> Result<Option<FoundOffset>, PartitionError> {
    let answer = handle.list_offsets(query).await?;
    let Some(batch_offset) = answer.offset else {
        return Ok(None);
    };
    let exact = match query {
        OffsetQuery::Timestamp(t) => find_record(handle, batch_offset, |ts| ts >= t).await,
        OffsetQuery::MaxTimestamp => {
            find_record(handle, batch_offset, |ts| ts == answer.timestamp).await
        }
        _ => None,
    };
    let (timestamp, offset) = exact.unwrap_or((answer.timestamp, batch_offset as i64));
    Ok(Some(FoundOffset {
        timestamp,
        offset,
        leader_epoch: answer.leader_epoch,
    }))
}

/// The timestamp and offset of the first record of the batch at `batch_offset` whose
/// timestamp satisfies `wanted`. The batch passed produce-time validation, so decoding it is
/// bounded (its decompressed size was checked then).
async fn find_record(
    handle: &PartitionHandle,
    batch_offset: u64,
    wanted: impl Fn(i64) -> bool,
) -> Option<(i64, i64)> {
    let data = handle.fetch(batch_offset, 1).await.ok()?;
    let bytes = data.read.load().ok()?;
    let header = batch::parse_header(&bytes).ok()?;
    if header.is_log_append_time() {
        // Every record of a LogAppendTime batch has the batch's time.
        return wanted(header.max_timestamp).then_some((header.max_timestamp, header.base_offset));
    }
    let len = usize::try_from(header.total_len()).ok()?;
    let mut first = bytes.slice(..len.min(bytes.len()));
    let set = RecordBatchDecoder::decode(&mut first).ok()?;
    set.records
        .iter()
        .find(|r| wanted(r.timestamp))
        .map(|r| (r.timestamp, r.offset))
}

/// One record as a consumer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConsumedRecord {
    pub(crate) offset: i64,
    pub(crate) timestamp: i64,
    /// Whether `timestamp` is the broker's append time (else the producer's create time).
    pub(crate) log_append_time: bool,
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    pub(crate) headers: Vec<(String, Option<Bytes>)>,
}

impl ConsumedRecord {
    /// Bytes of key, value and headers: what a consume's `max_bytes` counts.
    pub(crate) fn size_bytes(&self) -> u64 {
        let len = |b: &Option<Bytes>| b.as_ref().map_or(0, |b| b.len() as u64);
        len(&self.key)
            + len(&self.value)
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() as u64 + len(v))
                .sum::<u64>()
    }
}

/// Where a consume starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartAt {
    /// At this offset (between the log start and the high watermark).
    Offset(u64),
    /// At the first record stamped this time (ms) or later; the high watermark if none is.
    Timestamp(i64),
}

/// What a consume asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConsumeLimits {
    /// Records returned at most.
    pub(crate) max_records: usize,
    /// Bytes of records ([`ConsumedRecord::size_bytes`]) returned at most, except that a
    /// first record larger than this is returned alone.
    pub(crate) max_bytes: u64,
    /// How long to wait for a first record when there is none yet.
    pub(crate) wait: Duration,
}

/// A consume's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Consumed {
    /// The offset the consume started at (resolved from a time, if it started at one).
    pub(crate) start_offset: u64,
    pub(crate) records: Vec<ConsumedRecord>,
    /// The offset to consume from next.
    pub(crate) next_offset: u64,
    pub(crate) high_watermark: u64,
    pub(crate) log_start_offset: u64,
}

fn out_of_range(offset: u64, log_start: u64, high_watermark: u64) -> NodeError {
    NodeError::kafka(
        ErrorCode::OffsetOutOfRange,
        format!(
            "offset {offset} is out of range: the partition holds offsets {log_start} to \
             {high_watermark} (the high watermark, where the next record will be)"
        ),
    )
}

impl Node {
    /// Reads committed records of `topic`-`partition` from `start`, decoded, up to `limits`;
    /// waits up to `limits.wait` for the first one if there is none yet (ending early when the
    /// node stops). Records are decoded batch by batch: a batch's decompressed size was
    /// bounded when it was produced (`max.uncompressed.batch.bytes`), and reading stops once
    /// the limits are reached.
    pub(crate) async fn consume(
        &self,
        topic: &str,
        partition: i32,
        start: StartAt,
        limits: ConsumeLimits,
    ) -> Result<Consumed, NodeError> {
        let (_, handle) = self.find_partition(topic, partition)?;
        let deadline = Instant::now() + limits.wait;
        // Subscribe before the first read, so a change between read and wait still wakes us.
        let mut watch = handle.watch();
        let mut shutdown = self.shutdown.clone();
        let state = *watch.borrow_and_update();
        let start_offset = match start {
            StartAt::Offset(o) => {
                if o < state.log_start_offset || o > state.high_watermark {
                    return Err(out_of_range(
                        o,
                        state.log_start_offset,
                        state.high_watermark,
                    ));
                }
                o
            }
            StartAt::Timestamp(t) => match offset_for(&handle, OffsetQuery::Timestamp(t)).await? {
                Some(found) => u64::try_from(found.offset).unwrap_or(0),
                None => state.high_watermark,
            },
        };
        let mut offset = start_offset;
        let max_records = limits.max_records.max(1);
        loop {
            let state = *watch.borrow_and_update();
            let mut records = Vec::new();
            let mut bytes = 0u64;
            let mut reads = 0;
            while offset < state.high_watermark
                && records.len() < max_records
                && reads < MAX_CONSUME_READS
            {
                reads += 1;
                let budget = limits.max_bytes.saturating_sub(bytes).max(1);
                let data = read_batches(&handle, offset, budget.min(u32::MAX as u64) as u32)
                    .await
                    .map_err(|e| match e {
                        PartitionError::OffsetOutOfRange {
                            offset,
                            log_start,
                            high_watermark,
                        } => out_of_range(offset, log_start, high_watermark),
                        e => e.into(),
                    })?;
                if data.read.is_empty() {
                    break;
                }
                let next = data.read.next_offset();
                let loaded = load(&self.read_buffers, data.read).await.map_err(|e| {
                    tracing::error!(partition = handle.name(), offset, error = %e, "consume read failed");
                    e
                })?;
                let full = decode_into(
                    &strip_raft_control(loaded),
                    offset,
                    max_records,
                    limits.max_bytes,
                    &mut records,
                    &mut bytes,
                    &mut offset,
                );
                if full {
                    break;
                }
                // Past everything read, records or not (control batches take no offset, so
                // the read's end is where the next one starts).
                match next {
                    Some(next) if next > offset => offset = next,
                    _ => {}
                }
            }
            let done = !records.is_empty() || Instant::now() >= deadline || self.is_shutting_down();
            if done {
                let state = handle.state();
                return Ok(Consumed {
                    start_offset,
                    records,
                    next_offset: offset,
                    high_watermark: state.high_watermark,
                    log_start_offset: state.log_start_offset,
                });
            }
            tokio::select! {
                changed = watch.changed() => {
                    if changed.is_err() {
                        return Err(PartitionError::Closed.into());
                    }
                }
                _ = tokio::time::sleep_until(deadline.into()) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// DeleteRecords: moves the log start of `topic`-`partition` to `before` (the high
    /// watermark for `None`); returns the new log start.
    pub(crate) async fn delete_records(
        &self,
        topic: &str,
        partition: i32,
        before: Option<u64>,
    ) -> Result<u64, NodeError> {
        let (_, handle) = self.find_partition(topic, partition)?;
        Ok(handle.delete_records(before).await?)
    }
}

/// Decodes the batches of `bytes` (whole data batches, read from `from`) into `records`:
/// those at `from` or later, until `max_records` or `max_bytes` (counted in `bytes`; the
/// first record always fits) is reached. Moves `offset` past each record taken and each
/// batch passed. Returns whether a limit was reached.
fn decode_into(
    bytes: &Bytes,
    from: u64,
    max_records: usize,
    max_bytes: u64,
    records: &mut Vec<ConsumedRecord>,
    taken_bytes: &mut u64,
    offset: &mut u64,
) -> bool {
    for item in batch::iter_batches(bytes, u32::MAX) {
        let Ok((at, header, b)) = item else {
            // The read was verified when loaded; a batch that does not parse now ends it.
            break;
        };
        let batch_end = header.next_offset().max(0) as u64;
        if header.is_control() {
            // Kafka's transaction markers: consumers skip them too.
            *offset = (*offset).max(batch_end);
            continue;
        }
        let mut one = bytes.slice(at..at + b.len());
        let set = match RecordBatchDecoder::decode(&mut one) {
            Ok(set) => set,
            Err(e) => {
                tracing::warn!(offset = header.base_offset, error = %e, "cannot decode a stored batch; skipping it");
                *offset = (*offset).max(batch_end);
                continue;
            }
        };
        let append_time = header.is_log_append_time();
        for r in set.records {
            let Ok(record_offset) = u64::try_from(r.offset) else {
                continue;
            };
            if record_offset < from || record_offset < *offset {
                continue;
            }
            let record = ConsumedRecord {
                offset: r.offset,
                // A LogAppendTime batch's records all carry the broker's time (the batch's).
                timestamp: if append_time {
                    header.max_timestamp
                } else {
                    r.timestamp
                },
                log_append_time: append_time,
                key: r.key,
                value: r.value,
                headers: r
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            };
            let size = record.size_bytes();
            if !records.is_empty() && *taken_bytes + size > max_bytes {
                return true;
            }
            *taken_bytes += size;
            records.push(record);
            *offset = record_offset + 1;
            if records.len() >= max_records {
                return true;
            }
        }
        *offset = (*offset).max(batch_end);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_storage::batch::{build_batch, build_control_batch, control};

    #[test]
    fn raft_control_batches_are_cut_out() {
        let a = build_batch(1, &[b"a"]);
        let noop = build_control_batch(-1, control::RAFT_NOOP, &[]);
        let txn_marker = build_control_batch(1, 1, &[0, 0, 0, 0, 0, 0]);
        let b = build_batch(2, &[b"b"]);
        let all: Vec<u8> = [a.clone(), noop.clone(), txn_marker.clone(), b.clone()].concat();
        let stripped = strip_raft_control(Bytes::from(all));
        assert_eq!(
            &stripped[..],
            &[a.clone(), txn_marker, b.clone()].concat()[..],
            "Kafka's own markers stay"
        );
        let untouched = Bytes::from([a, b].concat());
        assert_eq!(strip_raft_control(untouched.clone()), untouched);
        assert!(strip_raft_control(Bytes::from(noop)).is_empty());
    }
}
