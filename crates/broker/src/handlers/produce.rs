//! Produce: validate each partition's records, append them through the partition, answer
//! per `acks`.

use bytes::Bytes;
use cairn_partition::Acks;
use cairn_protocol::kafka_protocol::messages::produce_response::{
    PartitionProduceResponse, TopicProduceResponse,
};
use cairn_protocol::kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use cairn_protocol::records::check_produce_compression;
use cairn_protocol::{validate_produce_records, ErrorCode, RecordLimits};

use super::{partition, str_bytes};
use crate::errors::partition_error;
use crate::server::Ctx;

pub(super) async fn produce(
    ctx: &Ctx,
    version: i16,
    req: ProduceRequest,
) -> Option<ProduceResponse> {
    let acks = Acks::from_kafka(req.acks);
    let transactional = req.transactional_id.is_some();
    let mut work = Vec::new();
    for topic in &req.topic_data {
        let name = topic.name.0.as_str();
        for p in &topic.partition_data {
            work.push(produce_partition(
                ctx,
                version,
                name,
                p.index,
                p.records.clone(),
                acks,
                transactional,
            ));
        }
    }
    let results = futures_util::future::join_all(work).await;
    if acks == Some(Acks::None) {
        return None;
    }
    let mut results = results.into_iter();
    let mut resp = ProduceResponse::default();
    for topic in req.topic_data {
        let mut t = TopicProduceResponse::default();
        t.name = topic.name;
        t.partition_responses = topic
            .partition_data
            .iter()
            .filter_map(|_| results.next())
            .collect();
        resp.responses.push(t);
    }
    Some(resp)
}

async fn produce_partition(
    ctx: &Ctx,
    version: i16,
    topic: &str,
    index: i32,
    records: Option<Bytes>,
    acks: Option<Acks>,
    transactional: bool,
) -> PartitionProduceResponse {
    let mut r = PartitionProduceResponse::default();
    r.index = index;
    r.base_offset = -1;
    r.log_append_time_ms = -1;
    r.log_start_offset = -1;
    match append(ctx, version, topic, index, records, acks, transactional).await {
        Ok((base_offset, log_start_offset)) => {
            r.base_offset = base_offset as i64;
            if version >= 5 {
                r.log_start_offset = log_start_offset as i64;
            }
        }
        Err((code, message)) => {
            if code != ErrorCode::NotLeaderOrFollower {
                tracing::debug!(topic, partition = index, error = ?code, message, "produce refused");
            }
            r.error_code = code.code();
            if version >= 8 {
                r.error_message = message.map(|m| str_bytes(&m));
            }
        }
    }
    r
}

type Refusal = (ErrorCode, Option<String>);

async fn append(
    ctx: &Ctx,
    version: i16,
    topic: &str,
    index: i32,
    records: Option<Bytes>,
    acks: Option<Acks>,
    transactional: bool,
) -> Result<(u64, u64), Refusal> {
    let acks = acks.ok_or((
        ErrorCode::InvalidRequiredAcks,
        Some("acks must be 0, 1 or -1".into()),
    ))?;
    if transactional {
        return Err((
            ErrorCode::InvalidRequest,
            Some("transactions are not supported yet".into()),
        ));
    }
    let (t, handle) = partition(ctx, topic, index).map_err(|code| (code, None))?;
    let records = records.ok_or((ErrorCode::InvalidRecord, Some("null records".into())))?;
    let limits = RecordLimits {
        max_batch_bytes: t.log.max_batch_bytes,
        max_uncompressed_bytes: ctx.config.max_uncompressed_batch_bytes,
        ..RecordLimits::default()
    };
    let refuse = |e: cairn_protocol::RecordError| (ErrorCode::from(&e), Some(e.to_string()));
    let batches = validate_produce_records(&records, &limits).map_err(refuse)?;
    check_produce_compression(version, &batches).map_err(refuse)?;
    if batches.iter().any(|b| b.header.is_transactional()) {
        return Err((
            ErrorCode::InvalidRecord,
            Some("transactional batches are not supported yet".into()),
        ));
    }
    let bytes = batches.into_iter().map(|b| b.bytes).collect();
    let ack = handle
        .produce(bytes, acks)
        .await
        .map_err(|e| (partition_error(&e), Some(e.to_string())))?;
    Ok((ack.base_offset, ack.log_start_offset))
}
