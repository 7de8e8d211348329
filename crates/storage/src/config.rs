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
    /// `retention.check.interval.ms` (Kafka's broker setting
    /// `log.retention.check.interval.ms`): how often the log's owner applies retention.
    /// Kafka default 5 minutes.
    pub retention_check_interval_ms: u64,
    /// `delete.retention.ms`: on a compacted log, how long a tombstone (a record with a null
    /// value) is kept after its batch's newest timestamp, so consumers catch the deletion.
    /// Kafka default 1 day.
    pub delete_retention_ms: u64,
    /// `min.compaction.lag.ms`: records newer than this are not compacted. Kafka default 0.
    pub min_compaction_lag_ms: u64,
    /// `max.compaction.lag.ms`: dirty records older than this are compacted whatever the
    /// dirty ratio. Kafka default `Long.MAX_VALUE`.
    pub max_compaction_lag_ms: u64,
    /// `cleanup.policy` includes `compact`: the cleaner keeps the latest record per key
    /// (see the `clean` module). Not an integer: set by the layer that reads topic configs.
    pub compact: bool,
    /// `min.cleanable.dirty.ratio` in millionths (Kafka default 0.5 = 500000): a clean starts
    /// once this share of the cleanable bytes is dirty. Set like `compact`.
    pub min_cleanable_dirty_ratio_ppm: u32,
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
            retention_check_interval_ms: 300_000,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX as u64,
            compact: false,
            min_cleanable_dirty_ratio_ppm: 500_000,
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
        if self.retention_check_interval_ms == 0 {
            return invalid("retention.check.interval.ms must be positive".to_string());
        }
        if self.max_compaction_lag_ms == 0 {
            return invalid("max.compaction.lag.ms must be positive".to_string());
        }
        if self.min_cleanable_dirty_ratio_ppm > 1_000_000 {
            return invalid("min.cleanable.dirty.ratio must be between 0 and 1".to_string());
        }
        Ok(())
    }

    /// `min.cleanable.dirty.ratio` as a fraction.
    pub fn min_cleanable_dirty_ratio(&self) -> f64 {
        self.min_cleanable_dirty_ratio_ppm as f64 / 1e6
    }

    /// `flush.ms` as a duration, if set.
    pub fn flush_interval(&self) -> Option<Duration> {
        self.flush_ms.map(Duration::from_millis)
    }
}

/// The settings by their Kafka topic-config names (plus `max.open.segments`, Cairn's own, and
/// `retention.check.interval.ms`, a broker setting in Kafka, in the same style), in a fixed
/// order. Used for `cairn.toml`'s `[log]` table, `CAIRN_LOG_*` variables and topic configs
/// alike, so the three cannot drift apart.
pub const KAFKA_NAMES: [&str; 14] = [
    "segment.bytes",
    "segment.ms",
    "segment.index.bytes",
    "index.interval.bytes",
    "retention.bytes",
    "retention.ms",
    "flush.messages",
    "flush.ms",
    "max.message.bytes",
    "max.open.segments",
    "retention.check.interval.ms",
    "delete.retention.ms",
    "min.compaction.lag.ms",
    "max.compaction.lag.ms",
];

/// Names in [`KAFKA_NAMES`] that are the broker's alone: topics cannot override them.
pub const BROKER_ONLY_NAMES: [&str; 2] = ["max.open.segments", "retention.check.interval.ms"];

/// A value that must be a non-negative integer fitting the field's type.
fn non_negative<T: TryFrom<i64>>(value: i64) -> Result<T, String> {
    T::try_from(value).map_err(|_| {
        if value < 0 {
            "must not be negative".to_string()
        } else {
            "is too large".to_string()
        }
    })
}

/// A Kafka-style limit: `-1` means none, otherwise a non-negative integer.
fn limit(value: i64) -> Result<Option<u64>, String> {
    match value {
        -1 => Ok(None),
        _ => u64::try_from(value)
            .map(Some)
            .map_err(|_| "must be -1 (no limit) or a non-negative integer".to_string()),
    }
}

impl LogConfig {
    /// Sets the setting named `name` (one of [`KAFKA_NAMES`]) to an integer, `-1` meaning
    /// "no limit" where Kafka allows it. `Err` says what is wrong (unknown name, bad value);
    /// the whole config is checked by [`LogConfig::validate`] afterwards.
    pub fn set_kafka(&mut self, name: &str, value: i64) -> Result<(), String> {
        match name {
            "segment.bytes" => self.segment_bytes = non_negative(value)?,
            "segment.ms" => self.segment_ms = non_negative(value)?,
            "segment.index.bytes" => self.segment_index_bytes = non_negative(value)?,
            "index.interval.bytes" => self.index_interval_bytes = non_negative(value)?,
            "retention.bytes" => self.retention_bytes = limit(value)?,
            "retention.ms" => self.retention_ms = limit(value)?,
            "flush.messages" => self.flush_messages = limit(value)?,
            "flush.ms" => self.flush_ms = limit(value)?,
            "max.message.bytes" => self.max_batch_bytes = non_negative(value)?,
            "max.open.segments" => self.max_open_segments = non_negative(value)?,
            "retention.check.interval.ms" => {
                self.retention_check_interval_ms = non_negative(value)?
            }
            "delete.retention.ms" => self.delete_retention_ms = non_negative(value)?,
            "min.compaction.lag.ms" => self.min_compaction_lag_ms = non_negative(value)?,
            "max.compaction.lag.ms" => self.max_compaction_lag_ms = non_negative(value)?,
            _ => {
                return Err(format!(
                    "is not a log setting (known: {})",
                    KAFKA_NAMES.join(", ")
                ))
            }
        }
        Ok(())
    }

    /// The settings by Kafka name, `-1` for "no limit", in [`KAFKA_NAMES`] order.
    ///
    /// The destructuring names every field on purpose: a field added to `LogConfig` breaks
    /// this build until it has a name here and in [`LogConfig::set_kafka`].
    pub fn kafka_settings(&self) -> Vec<(&'static str, i128)> {
        let LogConfig {
            segment_bytes,
            segment_ms,
            segment_index_bytes,
            index_interval_bytes,
            retention_bytes,
            retention_ms,
            flush_messages,
            flush_ms,
            max_batch_bytes,
            max_open_segments,
            retention_check_interval_ms,
            delete_retention_ms,
            min_compaction_lag_ms,
            max_compaction_lag_ms,
            // Not integers (a policy list and a ratio): the topic-config layer sets them.
            compact: _,
            min_cleanable_dirty_ratio_ppm: _,
        } = self;
        let limit = |value: &Option<u64>| value.map_or(-1, i128::from);
        vec![
            ("segment.bytes", i128::from(*segment_bytes)),
            ("segment.ms", i128::from(*segment_ms)),
            ("segment.index.bytes", i128::from(*segment_index_bytes)),
            ("index.interval.bytes", i128::from(*index_interval_bytes)),
            ("retention.bytes", limit(retention_bytes)),
            ("retention.ms", limit(retention_ms)),
            ("flush.messages", limit(flush_messages)),
            ("flush.ms", limit(flush_ms)),
            ("max.message.bytes", i128::from(*max_batch_bytes)),
            // usize always fits i128 on the targets Rust supports.
            ("max.open.segments", *max_open_segments as i128),
            (
                "retention.check.interval.ms",
                i128::from(*retention_check_interval_ms),
            ),
            ("delete.retention.ms", i128::from(*delete_retention_ms)),
            ("min.compaction.lag.ms", i128::from(*min_compaction_lag_ms)),
            ("max.compaction.lag.ms", i128::from(*max_compaction_lag_ms)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_names_and_settings_agree() {
        let defaults = LogConfig::default();
        let names: Vec<_> = defaults.kafka_settings().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, KAFKA_NAMES);
        // Setting each name changes exactly the setting of that name.
        for (index, name) in KAFKA_NAMES.iter().enumerate() {
            let mut log = defaults.clone();
            let before = log.kafka_settings()[index].1;
            let value = if before == 777 { 778 } else { 777 };
            log.set_kafka(name, value)
                .expect("777 is valid for every key");
            for (other, (n, setting)) in log.kafka_settings().iter().enumerate() {
                let expected = if other == index {
                    i128::from(value)
                } else {
                    defaults.kafka_settings()[other].1
                };
                assert_eq!(*setting, expected, "{n}");
            }
        }
        assert!(LogConfig::default().set_kafka("retention.ms", -1).is_ok());
        assert!(LogConfig::default().set_kafka("segment.bytes", -1).is_err());
        assert!(LogConfig::default().set_kafka("no.such", 1).is_err());
    }
}
