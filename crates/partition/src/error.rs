//! Typed errors of the partition layer.

use cairn_storage::StorageError;

/// Why an idempotent producer's batch is refused (Kafka's sequence rules, KIP-98).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    /// The batch's producer epoch is older than one already seen (a fenced producer).
    #[error("producer {producer_id} epoch {epoch} is older than the current epoch {current}")]
    InvalidProducerEpoch {
        /// The producer id.
        producer_id: i64,
        /// Epoch of the batch.
        epoch: i16,
        /// Newest epoch seen for this producer.
        current: i16,
    },
    /// The batch's first sequence does not follow the last one written.
    #[error("producer {producer_id} epoch {epoch}: sequence {first_sequence} where {expected} was expected")]
    OutOfOrderSequence {
        /// The producer id.
        producer_id: i64,
        /// Epoch of the batch.
        epoch: i16,
        /// First sequence of the batch.
        first_sequence: i32,
        /// The sequence that would have been in order.
        expected: i32,
    },
}

/// Errors of a partition.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    /// The storage layer failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// An idempotent producer's batch breaks the sequence rules.
    #[error(transparent)]
    Producer(#[from] ProducerError),
    /// A batch too large for the log: over `max.message.bytes`, or over `segment.bytes` (a
    /// segment must hold it). Refused before raft sees it.
    #[error(
        "record batch of {size} bytes is larger than the log allows ({limit} bytes, {setting})"
    )]
    BatchTooLarge {
        /// The batch's size.
        size: u64,
        /// The limit it exceeds.
        limit: u32,
        /// The setting that sets the limit.
        setting: &'static str,
    },
    /// This replica is not the leader (or not yet: it is still being elected).
    #[error("not the leader of this partition")]
    NotLeader,
    /// A fetch or list-offsets asked for an offset outside the readable range.
    #[error("offset {offset} is out of range [{log_start}, {high_watermark}]")]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: u64,
        /// The log start offset.
        log_start: u64,
        /// The high watermark.
        high_watermark: u64,
    },
    /// The partition's task has stopped (it is being deleted or the broker shuts down).
    #[error("partition is closed")]
    Closed,
    /// Raft refused the operation.
    #[error("raft: {0}")]
    Raft(String),
    /// The partition's on-disk raft state is unreadable or inconsistent with its log.
    #[error("raft state of {path}: {reason}")]
    RaftState {
        /// The partition directory.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Result alias for partition operations.
pub type Result<T, E = PartitionError> = std::result::Result<T, E>;
