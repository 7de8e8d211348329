//! ListOffsets, OffsetForLeaderEpoch and DeleteRecords.

use cairn_partition::OffsetQuery;
use cairn_protocol::kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use cairn_protocol::kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use cairn_protocol::kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use cairn_protocol::kafka_protocol::messages::{
    DeleteRecordsRequest, DeleteRecordsResponse, ListOffsetsRequest, ListOffsetsResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
};
use cairn_protocol::{ErrorCode, LegacyFields};

use super::check_leader_epoch;
use crate::errors::partition_error;
use crate::node::read;
use crate::node::Node;

/// ListOffsets' special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
/// KIP-1005: the earliest offset on local storage (all storage is local here).
const EARLIEST_LOCAL: i64 = -4;
/// KIP-1005: the latest offset in tiered storage (there is none: offset -1).
const LATEST_TIERED: i64 = -5;

pub(super) async fn list_offsets(
    ctx: &Node,
    version: i16,
    req: ListOffsetsRequest,
    legacy: Option<&LegacyFields>,
) -> ListOffsetsResponse {
    let mut resp = ListOffsetsResponse::default();
    for (ti, topic) in req.topics.into_iter().enumerate() {
        let mut t = ListOffsetsTopicResponse::default();
        t.name = topic.name.clone();
        for (pi, p) in topic.partitions.into_iter().enumerate() {
            let mut r = ListOffsetsPartitionResponse::default();
            r.partition_index = p.partition_index;
            r.timestamp = -1;
            r.offset = -1;
            r.leader_epoch = -1;
            if version == 0 {
                let max = legacy.map_or(1, |l| l.max_num_offsets(ti, pi));
                match list_v0(
                    ctx,
                    topic.name.0.as_str(),
                    p.partition_index,
                    p.timestamp,
                    max,
                )
                .await
                {
                    Ok(offset) => r.offset = offset,
                    Err(code) => r.error_code = code.code(),
                }
                t.partitions.push(r);
                continue;
            }
            match list_one(
                ctx,
                topic.name.0.as_str(),
                p.partition_index,
                p.current_leader_epoch,
                p.timestamp,
            )
            .await
            {
                Ok(Some((timestamp, offset, epoch))) => {
                    r.timestamp = timestamp;
                    r.offset = offset;
                    if version >= 4 {
                        r.leader_epoch = epoch;
                    }
                }
                Ok(None) => {}
                Err(code) => r.error_code = code.code(),
            }
            t.partitions.push(r);
        }
        resp.topics.push(t);
    }
    resp
}

/// ListOffsets v0 (Kafka 4 dropped it; old clients still ask for earliest/latest with it).
/// Kafka answered v0 from segment files: a list of up to `max_num_offsets` segment base
/// offsets, newest first, that were last modified before the timestamp, headed by the log
/// end for -1. Cairn answers with one offset, the one v1 gives (for a timestamp: the first
/// record at or after it, or the high watermark when no record is that new, where Kafka's
/// list also starts at the log end); `-1` (an empty list) when `max_num_offsets` is 0. As
/// in Kafka, the only negative timestamps v0 knows are -1 and -2.
async fn list_v0(
    ctx: &Node,
    topic: &str,
    index: i32,
    timestamp: i64,
    max_num_offsets: i32,
) -> Result<i64, ErrorCode> {
    if timestamp < EARLIEST {
        return Err(ErrorCode::UnsupportedVersion);
    }
    let found = list_one(ctx, topic, index, -1, timestamp).await?;
    let offset = match found {
        Some((_, offset, _)) => offset,
        None => list_one(ctx, topic, index, -1, LATEST)
            .await?
            .map_or(-1, |(_, offset, _)| offset),
    };
    Ok(if max_num_offsets > 0 { offset } else { -1 })
}

async fn list_one(
    ctx: &Node,
    topic: &str,
    index: i32,
    leader_epoch: i32,
    timestamp: i64,
) -> Result<Option<(i64, i64, i32)>, ErrorCode> {
    let (_, handle) = ctx.leader_partition(topic, index)?;
    if let Some(code) = check_leader_epoch(leader_epoch, &handle.state()) {
        return Err(code);
    }
    let query = match timestamp {
        LATEST => OffsetQuery::Latest,
        EARLIEST | EARLIEST_LOCAL => OffsetQuery::Earliest,
        MAX_TIMESTAMP => OffsetQuery::MaxTimestamp,
        LATEST_TIERED => return Ok(None),
        t if t >= 0 => OffsetQuery::Timestamp(t),
        _ => return Err(ErrorCode::InvalidRequest),
    };
    let found = read::offset_for(&handle, query)
        .await
        .map_err(|e| partition_error(&e))?;
    Ok(found.map(|f| (f.timestamp, f.offset, f.leader_epoch)))
}

pub(super) async fn offset_for_leader_epoch(
    ctx: &Node,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let mut resp = OffsetForLeaderEpochResponse::default();
    for topic in req.topics {
        let mut t = OffsetForLeaderTopicResult::default();
        t.topic = topic.topic.clone();
        for p in topic.partitions {
            let mut r = EpochEndOffset::default();
            r.partition = p.partition;
            r.leader_epoch = -1;
            r.end_offset = -1;
            let answer = async {
                let (_, handle) = ctx.leader_partition(topic.topic.0.as_str(), p.partition)?;
                if let Some(code) = check_leader_epoch(p.current_leader_epoch, &handle.state()) {
                    return Err(code);
                }
                handle
                    .epoch_end_offset(p.leader_epoch)
                    .await
                    .map_err(|e| partition_error(&e))
            };
            match answer.await {
                Ok(Some((epoch, end))) => {
                    r.leader_epoch = epoch;
                    r.end_offset = end as i64;
                }
                // The epoch predates the log's history: Kafka's UNDEFINED (-1, -1).
                Ok(None) => {}
                Err(code) => r.error_code = code.code(),
            }
            t.partitions.push(r);
        }
        resp.topics.push(t);
    }
    resp
}

pub(super) async fn delete_records(ctx: &Node, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut resp = DeleteRecordsResponse::default();
    for topic in req.topics {
        let mut t = DeleteRecordsTopicResult::default();
        t.name = topic.name.clone();
        for p in topic.partitions {
            let mut r = DeleteRecordsPartitionResult::default();
            r.partition_index = p.partition_index;
            r.low_watermark = -1;
            let answer = async {
                ctx.leader_partition(topic.name.0.as_str(), p.partition_index)?;
                // -1: up to the high watermark.
                let before = match p.offset {
                    -1 => None,
                    o if o >= 0 => Some(o as u64),
                    _ => return Err(ErrorCode::OffsetOutOfRange),
                };
                ctx.delete_records(topic.name.0.as_str(), p.partition_index, before)
                    .await
                    .map_err(|e| e.code())
            };
            match answer.await {
                Ok(low) => r.low_watermark = low as i64,
                Err(code) => r.error_code = code.code(),
            }
            t.partitions.push(r);
        }
        resp.topics.push(t);
    }
    resp
}
