//! Fetch: whole batches below the high watermark, long-polled.
//!
//! A fetch reads every requested partition, each up to its `partition_max_bytes` and all of
//! them together up to the response's budget (`max_bytes`, capped by `fetch.max.bytes`).
//! Kafka's rule (KIP-74): the first partition with data gets at least one whole batch, even
//! one larger than its limit or the budget, so a large batch can never block a consumer;
//! every other partition gets only batches that fit, or nothing this time. An answer is so
//! at most one batch over the budget, which clients allow for (librdkafka refuses a response
//! larger than `receive.message.max.bytes`, which only has to exceed `fetch.max.bytes` by 512
//! bytes, and reconnects). Partitions left out for lack of budget are read first by the
//! connection's next fetch, so none starves (Kafka rotates partitions through its fetch
//! sessions; Cairn keeps no sessions, see below).
//!
//! If fewer than `min_bytes` came back the fetch waits, for at most `max_wait_ms`, on the
//! partitions' state watches, and reads again as soon as any of them moves: a waiting fetch
//! completes when data arrives, not when the wait ends. Fetch sessions (KIP-227) are not
//! kept: the answer's session id is 0, which tells clients to send full fetches.
//!
//! Batches are copied out of the segment files (verified once per process, see storage's
//! `LogRead`), all partitions of a response at once, and Cairn's raft control batches are cut
//! out: clients never see them, and a read that would hold nothing else moves on to the data
//! after them. The response goes to the socket with the records in their read buffers
//! (`encode_response_chunks`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_partition::{PartitionHandle, PartitionState};
use cairn_protocol::kafka_protocol::messages::fetch_response::{
    FetchableTopicResponse, PartitionData,
};
use cairn_protocol::kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use cairn_protocol::{message_sets, ErrorCode};
use cairn_storage::LogRead;
use tokio::sync::watch;

use super::check_leader_epoch;
use crate::errors::partition_error;
use crate::node::read::{self, read_batches};
use crate::node::Node;
use crate::read_buffers::ReadBuffers;

/// The longest a fetch waits, whatever it asks (clients ask for 500 ms by default).
const MAX_WAIT: Duration = Duration::from_secs(30);
/// Fetch v4 is the first version whose answer carries v2 record batches.
const FIRST_BATCH_FETCH: i16 = 4;

/// The partitions a connection's last fetch left out for lack of budget (topic, partition):
/// its next fetch reads them first.
#[derive(Debug, Default)]
pub(crate) struct LeftOut(Mutex<Vec<(String, i32)>>);

impl LeftOut {
    /// The order in which to read `wanted`: the partitions left out last time first (in the
    /// order they were left out, which is the order they were read in), then the others in
    /// request order.
    fn order(&self, wanted: &[Wanted]) -> Vec<usize> {
        let left = self.0.lock().map(|l| l.clone()).unwrap_or_default();
        let mut order = Vec::with_capacity(wanted.len());
        let mut taken = vec![false; wanted.len()];
        if !left.is_empty() {
            let index: std::collections::HashMap<(&str, i32), usize> = wanted
                .iter()
                .enumerate()
                .map(|(i, w)| ((w.topic.as_str(), w.partition), i))
                .collect();
            for (t, p) in &left {
                if let Some(&i) = index.get(&(t.as_str(), *p)) {
                    if !std::mem::replace(&mut taken[i], true) {
                        order.push(i);
                    }
                }
            }
        }
        order.extend((0..wanted.len()).filter(|&i| !taken[i]));
        order
    }

    fn remember(&self, left: Vec<(String, i32)>) {
        if let Ok(mut l) = self.0.lock() {
            *l = left;
        }
    }
}

/// One requested partition.
struct Wanted {
    topic: String,
    partition: i32,
    handle: Result<PartitionHandle, ErrorCode>,
    offset: i64,
    max_bytes: i32,
    leader_epoch: i32,
}

pub(super) async fn fetch(
    ctx: &Node,
    left_out: &LeftOut,
    version: i16,
    req: FetchRequest,
) -> FetchResponse {
    let mut wanted = Vec::new();
    for topic in &req.topics {
        for p in &topic.partitions {
            wanted.push(Wanted {
                topic: topic.topic.0.as_str().to_string(),
                partition: p.partition,
                handle: ctx
                    .leader_partition(topic.topic.0.as_str(), p.partition)
                    .map(|(_, h)| h),
                offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes,
                leader_epoch: p.current_leader_epoch,
            });
        }
    }
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT);
    let deadline = Instant::now() + wait;
    let min_bytes = req.min_bytes.max(0) as u64;
    // The client's budget, capped by the broker's `fetch.max.bytes` (0 or less: no limit
    // of the client's own).
    let cap = ctx.config.fetch_max_bytes.min(i32::MAX as usize) as u64;
    let budget = if req.max_bytes <= 0 {
        cap
    } else {
        (req.max_bytes as u64).min(cap)
    };
    // Subscribe before the first read, so a change between read and wait still wakes us.
    let mut watches: Vec<watch::Receiver<PartitionState>> = wanted
        .iter()
        .filter_map(|w| w.handle.as_ref().ok().map(|h| h.watch()))
        .collect();
    let mut shutdown = ctx.shutdown.clone();
    let order = left_out.order(&wanted);
    let started = Instant::now();
    let kind = if req.replica_id.0 >= 0 || req.replica_state.replica_id.0 >= 0 {
        "follower"
    } else {
        "consumer"
    };
    loop {
        for w in &mut watches {
            w.borrow_and_update();
        }
        let (partitions, bytes, errors, skipped) =
            read_all(&wanted, &order, budget, version, &ctx.read_buffers).await;
        let done = bytes >= min_bytes || errors || Instant::now() >= deadline || watches.is_empty();
        if done {
            ctx.metrics.fetch_waited(kind, started.elapsed());
            count_out(ctx, &wanted, &partitions);
            left_out.remember(
                skipped
                    .into_iter()
                    .map(|i| (wanted[i].topic.clone(), wanted[i].partition))
                    .collect(),
            );
            return respond(&req, partitions);
        }
        let changed =
            futures_util::future::select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep_until(deadline.into()) => {}
            _ = shutdown.changed() => return respond(&req, partitions),
        }
    }
}

/// Counts the records' bytes going out per topic (`partitions` is in `wanted`'s order).
fn count_out(ctx: &Node, wanted: &[Wanted], partitions: &[PartitionData]) {
    for (w, d) in wanted.iter().zip(partitions) {
        ctx.metrics
            .fetched(&w.topic, d.records.as_ref().map_or(0, |r| r.len() as u64));
    }
}

/// Reads every partition once; returns the answers (in request order), the bytes of records
/// read, whether any partition had an error (which ends the wait, as in Kafka), and the
/// partitions (indexes in `wanted`) that had data but no budget left.
///
/// Two steps: each partition's owner is asked, in `order`, which batches to send (the
/// response budget shrinks by each answer's size, so the order matters); then the batches of
/// all partitions are loaded from the segment files at once, large loads on the blocking
/// pool, so one response's reads overlap instead of queueing one behind the other.
async fn read_all(
    wanted: &[Wanted],
    order: &[usize],
    max_bytes: u64,
    version: i16,
    buffers: &Arc<ReadBuffers>,
) -> (Vec<PartitionData>, u64, bool, Vec<usize>) {
    let mut budget = max_bytes;
    let mut planned = 0u64;
    let mut located = Vec::with_capacity(wanted.len());
    let mut skipped = Vec::new();
    for &i in order {
        let w = &wanted[i];
        let mut d = PartitionData::default();
        d.partition_index = w.partition;
        d.high_watermark = -1;
        d.last_stable_offset = -1;
        d.log_start_offset = -1;
        d.preferred_read_replica = BrokerId(-1);
        d.aborted_transactions = Some(Vec::new());
        let result = match &w.handle {
            Err(code) => Err(*code),
            Ok(handle) => locate(handle, w, &mut budget, planned == 0, &mut d).await,
        };
        let result = match result {
            Ok(Located::Read(read)) => {
                planned += read.total_bytes();
                Ok(Some(read))
            }
            Ok(Located::Nothing) => Ok(None),
            Ok(Located::LeftOut) => {
                skipped.push(i);
                Ok(None)
            }
            Err(code) => Err(code),
        };
        if version < 5 {
            d.log_start_offset = -1;
        }
        located.push((i, d, result, w));
    }
    located.sort_by_key(|(i, ..)| *i);
    let out = futures_util::future::join_all(located.into_iter().map(
        |(_, mut d, result, w)| async move {
            let records = match result {
                Ok(Some(read)) => load(read, w, buffers, version).await,
                Ok(None) => Ok(Bytes::new()),
                Err(code) => Err(code),
            };
            match records {
                Ok(records) => d.records = Some(records),
                Err(code) => d.error_code = code.code(),
            }
            d
        },
    ))
    .await;
    let total = out
        .iter()
        .map(|d| d.records.as_ref().map_or(0, |r| r.len() as u64))
        .sum();
    let errors = out.iter().any(|d| d.error_code != 0);
    (out, total, errors, skipped)
}

/// What a partition contributes to a fetch.
enum Located {
    /// These batches.
    Read(LogRead),
    /// Nothing: nothing new to read.
    Nothing,
    /// Nothing, although it has data: the budget would not hold its next batch.
    LeftOut,
}

/// Asks the partition's owner which batches to send, and fills in the partition's offsets.
/// `first`: no partition before it had data, so it may get one batch over its limits.
async fn locate(
    handle: &PartitionHandle,
    w: &Wanted,
    budget: &mut u64,
    first: bool,
    d: &mut PartitionData,
) -> Result<Located, ErrorCode> {
    let state = handle.state();
    if let Some(code) = check_leader_epoch(w.leader_epoch, &state) {
        return Err(code);
    }
    d.high_watermark = state.high_watermark as i64;
    d.last_stable_offset = state.high_watermark as i64;
    d.log_start_offset = state.log_start_offset as i64;
    let offset = u64::try_from(w.offset).map_err(|_| ErrorCode::OffsetOutOfRange)?;
    if state.is_leader && offset == state.high_watermark {
        // Nothing to read yet, as the state says: no round trip to the partition's owner.
        // A long-polling fetch re-reads every partition whenever one of them moves, so this
        // is most of its reads. (The watch was marked seen before this state was read, so
        // data arriving now still wakes the fetch.)
        return Ok(Located::Nothing);
    }
    // Past the response's budget only the first partition still gets a batch (KIP-74).
    let limit = (w.max_bytes.max(0) as u64).min(*budget);
    if limit == 0 && !first {
        return Ok(if offset < state.high_watermark {
            Located::LeftOut
        } else {
            Located::Nothing
        });
    }
    let limit = limit.min(u32::MAX as u64) as u32;
    let data = read_batches(handle, offset, limit)
        .await
        .map_err(|e| partition_error(&e))?;
    d.high_watermark = data.high_watermark as i64;
    d.last_stable_offset = data.high_watermark as i64;
    d.log_start_offset = data.log_start_offset as i64;
    if data.read.is_empty() {
        return Ok(Located::Nothing);
    }
    if !first && data.read.total_bytes() > limit as u64 {
        // The read forced in one batch over the limit (reads always hold one): only the
        // first partition with data may have that.
        return Ok(Located::LeftOut);
    }
    *budget = budget.saturating_sub(data.read.total_bytes());
    Ok(Located::Read(data.read))
}

/// Loads the located batches into a pooled buffer, without Cairn's raft control batches;
/// for Fetch v0–v3, as a message set of format 0 or 1 (down-converted, see
/// `cairn_protocol::message_sets`).
async fn load(
    read: LogRead,
    w: &Wanted,
    buffers: &Arc<ReadBuffers>,
    version: i16,
) -> Result<Bytes, ErrorCode> {
    match read::load(buffers, read).await {
        Ok(bytes) if version < FIRST_BATCH_FETCH => {
            let magic = if version < 2 { 0 } else { 1 };
            let limit = usize::try_from(w.max_bytes.max(0)).unwrap_or(usize::MAX);
            Ok(message_sets::downconvert(&bytes, magic, limit))
        }
        Ok(bytes) => Ok(read::strip_raft_control(bytes)),
        Err(e) => {
            let name = w.handle.as_ref().map_or("?", |h| h.name());
            tracing::error!(partition = name, offset = w.offset, error = %e, "fetch read failed");
            Err(e.code())
        }
    }
}

fn respond(req: &FetchRequest, partitions: Vec<PartitionData>) -> FetchResponse {
    let mut resp = FetchResponse::default();
    resp.session_id = 0;
    let mut partitions = partitions.into_iter();
    for topic in &req.topics {
        let mut t = FetchableTopicResponse::default();
        t.topic = topic.topic.clone();
        t.topic_id = topic.topic_id;
        t.partitions = topic
            .partitions
            .iter()
            .filter_map(|_| partitions.next())
            .collect();
        resp.responses.push(t);
    }
    resp
}
