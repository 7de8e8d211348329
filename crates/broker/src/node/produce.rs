//! Produce: the checks and rules every produced batch goes through, whichever front end
//! received it, and the append through the partition.
//!
//! The topic's rules are Kafka's `LogValidator`'s: a batch's `maxTimestamp` is recomputed
//! from its records (the record walk of validation found it) and rewritten with the CRC when
//! the producer's header disagrees, so retention, the time index and ListOffsets see the
//! records' real times whatever the client wrote there; `LogAppendTime` topics get the
//! broker's clock instead; `message.timestamp.before/after.max.ms` (KIP-937) bound create
//! times; compacted topics refuse records without a key. Clients never write the internal
//! topics, and nothing is written while the disk is full (`crate::disk`).

use std::sync::Arc;

use bytes::Bytes;
use cairn_partition::{Acks, PartitionHandle, PendingProduce};
use cairn_protocol::{validate_produce_records, ErrorCode, ProducedBatch, RecordLimits};
use cairn_storage::VerifiedBatch;

use super::Node;
use crate::groups::wall_ms;
use crate::metrics::Metrics;
use crate::topic_config::ProducePolicy;
use crate::topics::Topic;

/// A partition's records refused: the Kafka error, a message, and the records at fault
/// (their indexes in their batch), which Produce v8+ lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProduceRefusal {
    pub(crate) code: ErrorCode,
    pub(crate) message: Option<String>,
    pub(crate) records: Vec<i32>,
}

impl From<(ErrorCode, Option<String>)> for ProduceRefusal {
    fn from((code, message): (ErrorCode, Option<String>)) -> ProduceRefusal {
        ProduceRefusal {
            code,
            message,
            records: Vec::new(),
        }
    }
}

impl ProduceRefusal {
    pub(crate) fn from_partition(e: &cairn_partition::PartitionError) -> ProduceRefusal {
        (crate::errors::partition_error(e), Some(e.to_string())).into()
    }
}

/// Where a partition's records were appended: base offset, log start offset, and the log
/// append time (`None` for create-time topics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Appended {
    pub(crate) base_offset: u64,
    pub(crate) log_start_offset: u64,
    pub(crate) append_time: Option<i64>,
}

/// A partition's batches with the topic's rules applied, ready to queue.
#[derive(Debug)]
pub(crate) struct ReadyBatches {
    pub(crate) handle: PartitionHandle,
    pub(crate) batches: Vec<VerifiedBatch>,
    /// The time LogAppendTime batches were stamped with.
    pub(crate) append_time: Option<i64>,
}

impl ReadyBatches {
    /// Queues the batches on their partition, behind what was queued before.
    pub(crate) async fn enqueue(self, acks: Acks) -> Result<PendingAppend, ProduceRefusal> {
        let pending = self
            .handle
            .enqueue_produce(self.batches, acks)
            .await
            .map_err(|e| ProduceRefusal::from_partition(&e))?;
        Ok(PendingAppend {
            pending,
            append_time: self.append_time,
            acks,
            queued: std::time::Instant::now(),
        })
    }
}

/// Queued batches waiting for their acknowledgement.
#[derive(Debug)]
pub(crate) struct PendingAppend {
    pending: PendingProduce,
    append_time: Option<i64>,
    acks: Acks,
    queued: std::time::Instant,
}

impl PendingAppend {
    /// Waits for the acknowledgement (per the `acks` they were queued with); the time it
    /// took goes to `metrics`.
    pub(crate) async fn wait(self, metrics: &Metrics) -> Result<Appended, ProduceRefusal> {
        let ack = self
            .pending
            .wait()
            .await
            .map_err(|e| ProduceRefusal::from_partition(&e))?;
        let acks = match self.acks {
            Acks::All => "all",
            _ => "1",
        };
        metrics.committed(acks, self.queued.elapsed());
        Ok(Appended {
            base_offset: ack.base_offset,
            log_start_offset: ack.log_start_offset,
            append_time: self.append_time,
        })
    }
}

impl Node {
    /// The partition records for `topic`-`index` go to, if clients may write there now: not
    /// an internal topic, the partition exists, the disk has room.
    pub(crate) fn produce_target(
        &self,
        topic: &str,
        index: i32,
    ) -> Result<(Arc<Topic>, PartitionHandle), ProduceRefusal> {
        if topic == crate::groups::OFFSETS_TOPIC {
            // Kafka's rule: clients do not write the internal topics.
            return Err((
                ErrorCode::InvalidTopicException,
                Some(format!("cannot append to the internal topic {topic}")),
            )
                .into());
        }
        let (t, handle) = self.partition(topic, index).map_err(|code| (code, None))?;
        if let Some(reason) = self.disk.full_reason() {
            // Refused before anything is written; reads and deletions go on (see `disk`).
            return Err((ErrorCode::KafkaStorageError, Some(reason)).into());
        }
        Ok((t, handle))
    }

    /// The limits records produced to `topic` are validated with.
    pub(crate) fn record_limits(&self, topic: &Topic) -> RecordLimits {
        RecordLimits {
            max_batch_bytes: topic.log.max_batch_bytes,
            max_uncompressed_bytes: self.config.max_uncompressed_batch_bytes,
            ..RecordLimits::default()
        }
    }

    /// Applies the topic's rules to validated batches for partition `index` of `topic`.
    pub(crate) fn prepare_batches(
        &self,
        topic: &Topic,
        handle: PartitionHandle,
        index: i32,
        batches: Vec<ProducedBatch>,
    ) -> Result<ReadyBatches, ProduceRefusal> {
        if batches.iter().any(|b| b.header().is_transactional()) {
            return Err((
                ErrorCode::InvalidRecord,
                Some("transactional batches are not supported yet".into()),
            )
                .into());
        }
        let policy = topic.configs.produce_policy();
        let now = wall_ms();
        let batches = batches
            .into_iter()
            .map(|b| apply_policy(b, &policy, now, &topic.name, index))
            .collect::<Result<Vec<_>, _>>()?;
        let (bytes, records) = batches.iter().fold((0, 0), |(bytes, records), b| {
            let h = b.header();
            (
                bytes + h.total_len(),
                records + h.records_count.max(0) as u64,
            )
        });
        self.metrics.produced(&topic.name, bytes, records);
        Ok(ReadyBatches {
            handle,
            batches,
            append_time: policy.log_append_time.then_some(now),
        })
    }

    /// Produces v2 record batches (`records`, one or more back to back) to `topic`-`index`
    /// through every check a Kafka Produce request's batches get, and waits for `acks`.
    pub(crate) async fn produce(
        &self,
        topic: &str,
        index: i32,
        records: Bytes,
        acks: Acks,
    ) -> Result<Appended, ProduceRefusal> {
        let (t, handle) = self.produce_target(topic, index)?;
        let batches = validate_produce_records(&records, &self.record_limits(&t))
            .map_err(|e| (ErrorCode::from(&e), Some(e.to_string())))?;
        self.prepare_batches(&t, handle, index, batches)?
            .enqueue(acks)
            .await?
            .wait(&self.metrics)
            .await
    }
}

/// The topic's rules for one batch (Kafka's `LogValidator`): keys on compacted topics, the
/// timestamp bounds, and the header's `maxTimestamp` and timestamp type set by the broker.
fn apply_policy(
    b: ProducedBatch,
    policy: &ProducePolicy,
    now: i64,
    topic: &str,
    index: i32,
) -> Result<VerifiedBatch, ProduceRefusal> {
    if policy.keys_required && b.records.keyless_count > 0 {
        return Err(ProduceRefusal {
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
