//! Typed errors of the storage crate.

use std::io;
use std::path::PathBuf;

/// Why a byte string is not a valid Kafka v2 record batch.
///
/// Returned by [`crate::batch::validate`]; every variant names the value that failed so a
/// broker can log it and map it to a Kafka error code (`CORRUPT_MESSAGE`,
/// `MESSAGE_TOO_LARGE`, `INVALID_RECORD`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Fewer bytes than the fixed 61-byte batch header.
    #[error("record batch truncated: {available} bytes, the header alone needs {needed}")]
    Truncated {
        /// Bytes that were available.
        available: usize,
        /// Bytes that were needed.
        needed: usize,
    },
    /// `batchLength` is smaller than the header it must cover.
    #[error("record batch length field {declared} is smaller than the minimum {min}")]
    LengthTooSmall {
        /// The declared `batchLength`.
        declared: i32,
        /// The smallest valid `batchLength`.
        min: i32,
    },
    /// The batch is larger than the configured maximum.
    #[error("record batch of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Total size of the batch in bytes (header included).
        size: u64,
        /// The configured limit.
        max: u32,
    },
    /// The buffer holds more or fewer bytes than `batchLength` declares.
    #[error("record batch declares {declared} bytes but {actual} were given")]
    LengthMismatch {
        /// Total size the header declares.
        declared: u64,
        /// Size of the buffer.
        actual: u64,
    },
    /// `magic` is not 2; only v2 batches are stored.
    #[error("record batch magic {magic} is not supported (only 2)")]
    BadMagic {
        /// The magic byte found.
        magic: i8,
    },
    /// The CRC32C over attributes..end does not match the header.
    #[error("record batch CRC32C mismatch: header says {stored:#010x}, data has {computed:#010x}")]
    CrcMismatch {
        /// CRC stored in the header.
        stored: u32,
        /// CRC computed over the data.
        computed: u32,
    },
    /// `lastOffsetDelta` is negative.
    #[error("record batch lastOffsetDelta {0} is negative")]
    NegativeLastOffsetDelta(i32),
    /// `recordsCount` is negative or larger than the offsets the batch spans.
    #[error("record batch has {count} records but spans {span} offsets")]
    BadRecordCount {
        /// The declared record count.
        count: i32,
        /// `lastOffsetDelta + 1`.
        span: i64,
    },
    /// A timestamp below -1, or a create-time batch whose max timestamp precedes its base.
    #[error("record batch timestamps are invalid: base {base}, max {max}")]
    BadTimestamps {
        /// `baseTimestamp`.
        base: i64,
        /// `maxTimestamp`.
        max: i64,
    },
    /// `baseOffset` plus `lastOffsetDelta` leaves the range of offsets.
    #[error("record batch offsets overflow: base {base} + delta {delta}")]
    OffsetOverflow {
        /// `baseOffset`.
        base: i64,
        /// `lastOffsetDelta`.
        delta: i32,
    },
}

/// Errors of the segment log.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An operating-system call on a file of the log failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`"open"`, `"write"`, `"fsync"`, ...).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Data on disk fails validation where it is not allowed to (inside a sealed segment,
    /// or in a read of bytes recovery had accepted). Never served.
    #[error("corrupt log data in {path} at byte {position}: {reason}")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte position of the damaged batch within the file.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// A batch given to `append` is invalid.
    #[error("invalid record batch: {0}")]
    InvalidBatch(#[from] BatchError),
    /// A read or seek asked for an offset outside `[log_start_offset, log_end_offset]`.
    #[error("offset {offset} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        /// The requested offset.
        offset: u64,
        /// The log start offset.
        log_start: u64,
        /// The log end offset.
        log_end: u64,
    },
    /// A batch was asked for by an ordinal the log does not hold.
    #[error("batch ordinal {ordinal} is out of range [{first}, {next})")]
    OrdinalOutOfRange {
        /// The requested ordinal.
        ordinal: u64,
        /// The oldest batch's ordinal.
        first: u64,
        /// The ordinal the next batch will get.
        next: u64,
    },
    /// `append` was given a leader epoch older than one already in the log.
    #[error("leader epoch {epoch} is older than the log's latest epoch {latest}")]
    EpochRegression {
        /// The epoch given.
        epoch: i32,
        /// The newest epoch in the log.
        latest: i32,
    },
    /// A setting is out of the range the format supports.
    #[error("invalid log configuration: {reason}")]
    InvalidConfig {
        /// Which setting and why.
        reason: String,
    },
    /// [`crate::LogRead::load_into`] was given a buffer smaller than the read.
    #[error("read of {needed} bytes does not fit a buffer of {given}")]
    BufferTooSmall {
        /// Bytes the read holds.
        needed: u64,
        /// Size of the buffer given.
        given: u64,
    },
    /// The log directory is already open (lock held by another `Log`).
    #[error("log directory {path} is locked by another process or handle")]
    Locked {
        /// The log directory.
        path: PathBuf,
    },
}

/// Result alias for storage operations.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| StorageError::Io {
            op,
            path: path.to_path_buf(),
            source,
        })
    }
}
