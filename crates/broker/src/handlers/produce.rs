//! Produce: validate each partition's records, apply the topic's rules, append them through
//! the partition, answer per `acks`.
//!
//! The topic's rules are Kafka's `LogValidator`'s: a batch's `maxTimestamp` is recomputed
//! from its records (the record walk of validation found it) and rewritten with the CRC when
//! the producer's header disagrees, so retention, the time index and ListOffsets see the
//! records' real times whatever the client wrote there; `LogAppendTime` topics get the
//! broker's clock instead; `message.timestamp.before/after.max.ms` (KIP-937) bound create
//! times; compacted topics refuse records without a key.

use bytes::Bytes;
use cairn_partition::{Acks, PartitionHandle, PendingProduce};
use cairn_protocol::kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use cairn_protocol::kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use cairn_protocol::message_sets;
use cairn_protocol::records::check_produce_compression;
use cairn_protocol::{validate_produce_records, ErrorCode, ProducedBatch, RecordLimits};
use cairn_storage::VerifiedBatch;

use super::{partition, str_bytes};
use crate::errors::partition_error;
use crate::groups::wall_ms;
use crate::server::Ctx;
use crate::topic_config::ProducePolicy;

/// A produce whose batches are queued on their partitions (or refused), waiting for
/// acknowledgements.
pub(crate) struct Enqueued {
    version: i16,
    no_response: bool,
    topics: Vec<(TopicName, Vec<Slot>)>,
}

enum Slot {
    Answered(PartitionProduceResponse),
    /// The partition, the append time its batches were stamped with (LogAppendTime topics),
    /// and the acknowledgement to wait for.
    Waiting(i32, Option<i64>, PendingProduce),
}

/// A partition's records refused: the Kafka error, a message, and the records at fault
/// (their indexes in their batch), which Produce v8+ lists.
struct Refusal {
    code: ErrorCode,
    message: Option<String>,
    records: Vec<i32>,
}

impl From<(ErrorCode, Option<String>)> for Refusal {
    fn from((code, message): (ErrorCode, Option<String>)) -> Refusal {
        Refusal {
            code,
            message,
            records: Vec::new(),
        }
    }
}

/// What a partition's answer says when it was appended: base offset, log start offset, and
/// the log append time (-1 for create-time topics).
type Appended = (u64, u64, Option<i64>);

fn response(
    version: i16,
    index: i32,
    result: Result<Appended, Refusal>,
) -> PartitionProduceResponse {
    let mut r = PartitionProduceResponse::default();
    r.index = index;
    r.base_offset = -1;
    r.log_append_time_ms = -1;
    r.log_start_offset = -1;
    match result {
        Ok((base_offset, log_start_offset, append_time)) => {
            r.base_offset = base_offset as i64;
            if version >= 2 {
                r.log_append_time_ms = append_time.unwrap_or(-1);
            }
            if version >= 5 {
                r.log_start_offset = log_start_offset as i64;
            }
        }
        Err(refusal) => {
            let Refusal {
                code,
                message,
                records,
            } = refusal;
            if code != ErrorCode::NotLeaderOrFollower {
                tracing::debug!(partition = index, error = ?code, message, "produce refused");
            }
            r.error_code = code.code();
            if version >= 8 {
                r.record_errors = records
                    .into_iter()
                    .map(|i| {
                        let mut e = BatchIndexAndErrorMessage::default();
                        e.batch_index = i;
                        e.batch_index_error_message = message.as_deref().map(str_bytes);
                        e
                    })
                    .collect();
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
                Ok(ready) => match ready
                    .handle
                    .enqueue_produce(ready.batches, ready.acks)
                    .await
                {
                    Ok(pending) => Slot::Waiting(p.index, ready.append_time, pending),
                    Err(e) => Slot::Answered(response(
                        version,
                        p.index,
                        Err((partition_error(&e), Some(e.to_string())).into()),
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
                    Slot::Waiting(index, append_time, pending) => {
                        let result = pending
                            .wait()
                            .await
                            .map(|ack| (ack.base_offset, ack.log_start_offset, append_time))
                            .map_err(|e| (partition_error(&e), Some(e.to_string())).into());
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

/// A partition's batches, ready to queue.
struct Ready {
    handle: PartitionHandle,
    batches: Vec<VerifiedBatch>,
    acks: Acks,
    /// The time LogAppendTime batches were stamped with.
    append_time: Option<i64>,
}

/// Checks one partition's part of the request; returns the partition and its batches, with
/// the topic's rules applied.
fn prepare(
    ctx: &Ctx,
    version: i16,
    topic: &str,
    index: i32,
    records: Option<Bytes>,
    acks: Option<Acks>,
    transactional: bool,
) -> Result<Ready, Refusal> {
    let acks = acks.ok_or((
        ErrorCode::InvalidRequiredAcks,
        Some("acks must be 0, 1 or -1".into()),
    ))?;
    if transactional {
        return Err((
            ErrorCode::InvalidRequest,
            Some("transactions are not supported yet".into()),
        )
            .into());
    }
    if topic == crate::groups::OFFSETS_TOPIC {
        // Kafka's rule: clients do not write the internal topics.
        return Err((
            ErrorCode::InvalidTopicException,
            Some(format!("cannot append to the internal topic {topic}")),
        )
            .into());
    }
    let (t, handle) = partition(ctx, topic, index).map_err(|code| (code, None))?;
    if let Some(reason) = ctx.disk.full_reason() {
        // Refused before anything is written; reads and deletions go on (see `disk`).
        return Err((ErrorCode::KafkaStorageError, Some(reason)).into());
    }
    let records = records.ok_or((ErrorCode::InvalidRecord, Some("null records".into())))?;
    let limits = RecordLimits {
        max_batch_bytes: t.log.max_batch_bytes,
        max_uncompressed_bytes: ctx.config.max_uncompressed_batch_bytes,
        ..RecordLimits::default()
    };
    let refuse = |e: cairn_protocol::RecordError| (ErrorCode::from(&e), Some(e.to_string()));
    // Produce v0–v2 carry a message set of format 0/1: up-converted to one v2 batch, which
    // is then checked like any other.
    let records = if version < 3 {
        message_sets::upconvert(&records, &limits).map_err(refuse)?
    } else {
        records
    };
    let batches = validate_produce_records(&records, &limits).map_err(refuse)?;
    check_produce_compression(version, &batches).map_err(refuse)?;
    if batches.iter().any(|b| b.header().is_transactional()) {
        return Err((
            ErrorCode::InvalidRecord,
            Some("transactional batches are not supported yet".into()),
        )
            .into());
    }
    let policy = t.configs.produce_policy();
    let now = wall_ms();
    let batches = batches
        .into_iter()
        .map(|b| apply_policy(b, &policy, now, topic, index))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Ready {
        handle,
        batches,
        acks,
        append_time: policy.log_append_time.then_some(now),
    })
}

/// The topic's rules for one batch (Kafka's `LogValidator`): keys on compacted topics, the
/// timestamp bounds, and the header's `maxTimestamp` and timestamp type set by the broker.
fn apply_policy(
    b: ProducedBatch,
    policy: &ProducePolicy,
    now: i64,
    topic: &str,
    index: i32,
) -> Result<VerifiedBatch, Refusal> {
    if policy.keys_required && b.records.keyless_count > 0 {
        return Err(Refusal {
            code: ErrorCode::InvalidRecord,
            message: Some(format!(
                "Compacted topic cannot accept message without key in topic partition {topic}-{index}."
            )),
            records: b.records.keyless,
        });
    }
    if policy.log_append_time {
        return Ok(b.batch.with_max_timestamp(now, true));
    }
    if let Some((oldest, newest)) = b.records.timestamp_range {
        let (low, high) = (
            now.saturating_sub(policy.before_max_ms),
            now.saturating_add(policy.after_max_ms),
        );
        if let Some(bad) = [oldest, newest].into_iter().find(|t| *t < low || *t > high) {
            return Err((
                ErrorCode::InvalidTimestamp,
                Some(format!(
                    "Timestamp {bad} of a record in topic partition {topic}-{index} is out of range: \
                     it must be within [{low}, {high}] (message.timestamp.before.max.ms, \
                     message.timestamp.after.max.ms)"
                )),
            )
                .into());
        }
    }
    Ok(b.batch.with_max_timestamp(b.records.max_timestamp, false))
}
