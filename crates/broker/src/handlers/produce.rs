//! Produce: validate each partition's records, append them through the partition, answer
//! per `acks`.

use bytes::Bytes;
use cairn_partition::{Acks, PartitionHandle, PendingProduce};
use cairn_protocol::kafka_protocol::messages::produce_response::{
    PartitionProduceResponse, TopicProduceResponse,
};
use cairn_protocol::kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use cairn_protocol::records::check_produce_compression;
use cairn_protocol::{validate_produce_records, ErrorCode, ProducedBatch, RecordLimits};

use super::{partition, str_bytes};
use crate::errors::partition_error;
use crate::server::Ctx;

/// A produce whose batches are queued on their partitions (or refused), waiting for
/// acknowledgements.
pub(crate) struct Enqueued {
    version: i16,
    no_response: bool,
    topics: Vec<(TopicName, Vec<Slot>)>,
}

enum Slot {
    Answered(PartitionProduceResponse),
    Waiting(i32, PendingProduce),
}

fn response(
    version: i16,
    index: i32,
    result: Result<(u64, u64), Refusal>,
) -> PartitionProduceResponse {
    let mut r = PartitionProduceResponse::default();
    r.index = index;
    r.base_offset = -1;
    r.log_append_time_ms = -1;
    r.log_start_offset = -1;
    match result {
        Ok((base_offset, log_start_offset)) => {
            r.base_offset = base_offset as i64;
            if version >= 5 {
                r.log_start_offset = log_start_offset as i64;
            }
        }
        Err((code, message)) => {
            if code != ErrorCode::NotLeaderOrFollower {
                tracing::debug!(partition = index, error = ?code, message, "produce refused");
            }
            r.error_code = code.code();
            if version >= 8 {
                r.error_message = message.map(|m| str_bytes(&m));
            }
        }
    }
    r
}

/// Validates every partition's records and queues them on the partitions, in the order the
/// request lists them. The connection calls this for its requests one at a time, in request
/// order, so a client's pipelined produces reach each partition in the order it sent them
/// (as Kafka, which handles a connection's requests one at a time, guarantees).
pub(crate) async fn enqueue(ctx: &Ctx, version: i16, req: ProduceRequest) -> Enqueued {
    let acks = Acks::from_kafka(req.acks);
    let transactional = req.transactional_id.is_some();
    let mut topics = Vec::with_capacity(req.topic_data.len());
    for topic in req.topic_data {
        let name = topic.name.0.as_str().to_string();
        let mut slots = Vec::with_capacity(topic.partition_data.len());
        for p in topic.partition_data {
            let prepared = prepare(ctx, version, &name, p.index, p.records, acks, transactional);
            let slot = match prepared {
                Err(refusal) => Slot::Answered(response(version, p.index, Err(refusal))),
                Ok((handle, batches, acks)) => match handle.enqueue_produce(batches, acks).await {
                    Ok(pending) => Slot::Waiting(p.index, pending),
                    Err(e) => Slot::Answered(response(
                        version,
                        p.index,
                        Err((partition_error(&e), Some(e.to_string()))),
                    )),
                },
            };
            slots.push(slot);
        }
        topics.push((topic.name, slots));
    }
    Enqueued {
        version,
        no_response: acks == Some(Acks::None),
        topics,
    }
}

impl Enqueued {
    /// Waits for every partition's acknowledgement; `None` for acks=0 (no response).
    pub(crate) async fn finish(self) -> Option<ProduceResponse> {
        let version = self.version;
        let mut resp = ProduceResponse::default();
        for (name, slots) in self.topics {
            let answers = slots.into_iter().map(|slot| async move {
                match slot {
                    Slot::Answered(r) => r,
                    Slot::Waiting(index, pending) => {
                        let result = pending
                            .wait()
                            .await
                            .map(|ack| (ack.base_offset, ack.log_start_offset))
                            .map_err(|e| (partition_error(&e), Some(e.to_string())));
                        response(version, index, result)
                    }
                }
            });
            let mut t = TopicProduceResponse::default();
            t.name = name;
            t.partition_responses = futures_util::future::join_all(answers).await;
            resp.responses.push(t);
        }
        if self.no_response {
            return None;
        }
        Some(resp)
    }
}

type Refusal = (ErrorCode, Option<String>);

/// Checks one partition's part of the request; returns the partition and its batches.
fn prepare(
    ctx: &Ctx,
    version: i16,
    topic: &str,
    index: i32,
    records: Option<Bytes>,
    acks: Option<Acks>,
    transactional: bool,
) -> Result<(PartitionHandle, Vec<ProducedBatch>, Acks), Refusal> {
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
    if topic == crate::groups::OFFSETS_TOPIC {
        // Kafka's rule: clients do not write the internal topics.
        return Err((
            ErrorCode::InvalidTopicException,
            Some(format!("cannot append to the internal topic {topic}")),
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
    if batches.iter().any(|b| b.header().is_transactional()) {
        return Err((
            ErrorCode::InvalidRecord,
            Some("transactional batches are not supported yet".into()),
        ));
    }
    Ok((handle, batches, acks))
}
