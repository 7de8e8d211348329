//! Per-log settings. Names and defaults follow Kafka's topic configs
//! (`segment.bytes`, `retention.ms`, ...) so operators can carry their habits over.

use std::time::Duration;

use crate::error::StorageError;

/// Settings of one partition log. Every field is a limit or a policy with a unit in its name;
/// the defaults are Kafka's defaults for the topic config of the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll to a new segment before the active one would exceed this size.
    /// Kafka default 1 GiB. Must be at most `i32::MAX` (positions in the index are 32-bit).
    pub segment_bytes: u32,
    /// `segment.ms`: roll a non-empty segment once its first batch is older than this.
    /// Kafka default 7 days.
    pub segment_ms: u64,
    /// `segment.index.bytes`: size to which the offset and time indexes of the active segment
    /// are preallocated; a full index rolls the segment. Kafka default 10 MiB.
    pub segment_index_bytes: u32,
    /// `index.interval.bytes`: a time-index entry is written every this many bytes of log (the
    /// offset index is dense: one entry per batch).
    /// Kafka default 4096.
    pub index_interval_bytes: u32,
    /// `retention.bytes`: delete the oldest segments while the log is larger than this.
    /// `None` (Kafka's `-1`, the default) keeps everything.
    pub retention_bytes: Option<u64>,
    /// `retention.ms`: delete sealed segments whose newest record is older than this.
    /// Kafka default 7 days; `None` (Kafka's `-1`) keeps everything.
    pub retention_ms: Option<u64>,
    /// `flush.messages`: fsync after this many appended records. `None` (Kafka's default of
    /// `Long.MAX_VALUE`) never forces a flush by count.
    pub flush_messages: Option<u64>,
    /// `flush.ms`: fsync when the oldest unflushed append is this old. `None` (Kafka's default)
    /// never forces a flush by time.
    pub flush_ms: Option<u64>,
    /// `max.message.bytes`: the largest record batch accepted, header included.
    /// Kafka default 1048588.
    pub max_batch_bytes: u32,
    /// How many sealed segments may hold open file handles and index mappings at once;
    /// the least recently used beyond this are closed (reopened lazily on the next read).
    pub max_open_segments: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        const WEEK_MS: u64 = 7 * 24 * 60 * 60 * 1000;
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: WEEK_MS,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            retention_bytes: None,
            retention_ms: Some(WEEK_MS),
            flush_messages: None,
            flush_ms: None,
            max_batch_bytes: 1_048_588,
            max_open_segments: 64,
        }
    }
}

impl LogConfig {
    /// Checks the settings against the limits the on-disk format imposes.
    pub fn validate(&self) -> Result<(), StorageError> {
        let invalid = |reason: String| Err(StorageError::InvalidConfig { reason });
        if self.segment_bytes < 1024 || self.segment_bytes > i32::MAX as u32 {
            return invalid(format!(
                "segment.bytes must be between 1024 and {}, got {}",
                i32::MAX,
                self.segment_bytes
            ));
        }
        if self.segment_index_bytes < 64 {
            return invalid(format!(
                "segment.index.bytes must be at least 64, got {}",
                self.segment_index_bytes
            ));
        }
        if self.max_batch_bytes < crate::batch::HEADER_LEN as u32 {
            return invalid(format!(
                "max.message.bytes must be at least {}, got {}",
                crate::batch::HEADER_LEN,
                self.max_batch_bytes
            ));
        }
        if self.max_open_segments == 0 {
            return invalid("max.open.segments must be at least 1".to_string());
        }
        if self.segment_ms == 0 {
            return invalid("segment.ms must be positive".to_string());
        }
        Ok(())
    }

    /// `flush.ms` as a duration, if set.
    pub fn flush_interval(&self) -> Option<Duration> {
        self.flush_ms.map(Duration::from_millis)
    }
}
