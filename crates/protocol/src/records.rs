//! Validation of the records a producer sends for one partition, without I/O.
//!
//! The `records` field of a Produce request's partition holds v2 record batches back to back
//! (the header layout is drawn in [`cairn_storage::batch`]). Inside a batch, after the 61-byte
//! header, come `recordsCount` records — compressed as a whole when `attributes & 7 != 0`:
//!
//! ```text
//! field           type     notes (varint/varlong: zig-zag, base-128, as in protobuf)
//! length          varint   bytes of the record after this field
//! attributes      int8     unused, 0
//! timestampDelta  varlong  relative to baseTimestamp
//! offsetDelta     varint   relative to baseOffset; must be the record's index in the batch
//! keyLength       varint   -1 for a null key
//! key             bytes
//! valueLength     varint   -1 for a null value
//! value           bytes
//! headerCount     varint   >= 0
//! headers         headerCount x { keyLength varint (>= 0), key, valueLength varint (-1: null), value }
//! ```
//!
//! # Checks, in order, and the Kafka error code each yields
//!
//! 1. The buffer splits into whole batches: magic 0/1 (legacy message sets; `magic` sits at
//!    byte 16 in every format) is `UNSUPPORTED_FOR_MESSAGE_FORMAT`, a partial batch
//!    `CORRUPT_MESSAGE`, no batch at all `INVALID_RECORD` (Kafka's
//!    `ProduceRequest.validateRecords`).
//! 2. Each batch passes [`cairn_storage::batch::validate`] (lengths, magic 2, CRC-32C, offsets,
//!    timestamps); over `max_batch_bytes` is `MESSAGE_TOO_LARGE`, see [`crate::errors`].
//! 3. Not a control batch, `recordsCount == lastOffsetDelta + 1 > 0`, and an idempotent
//!    producer's batch carries a sequence (Kafka's `LogValidator.validateBatch`):
//!    `INVALID_RECORD`.
//! 4. An idempotent or transactional producer (`producerId >= 0`) sends one batch per
//!    partition: `INVALID_RECORD`.
//! 5. The records parse exactly: each record's fields fill its `length`, `offsetDelta` is its
//!    index, there are `recordsCount` records and nothing after them: `INVALID_RECORD`. An
//!    unknown codec (5–7) or data the codec refuses is `CORRUPT_MESSAGE`.
//!
//! # Bounded decompression
//!
//! Compressed records are never materialised. The walk pulls decompressed bytes through an
//! 8 KiB buffer, reads the varints byte by byte and *skips* keys, values and headers, so
//! memory per batch is that buffer plus the codec's fixed state (see `decompress`),
//! whatever lengths the batch declares. Every field must fit inside its record's declared
//! `length`, so a lying length is caught when its record ends. And every decompressed byte
//! counts against `max_uncompressed_bytes`: past it the decoder is dropped and the batch
//! refused with [`RecordError::DecompressionBomb`], so the CPU a batch can cost is bounded
//! too. (kafka-protocol's own decompressors inflate a whole batch into memory, unbounded;
//! they are used only to build test batches here.)
//!
//! A decompression bomb maps to `INVALID_RECORD`, not `CORRUPT_MESSAGE`: the bytes are intact
//! (the CRC passed) and resending them cannot help, and clients retry `CORRUPT_MESSAGE` but
//! not `INVALID_RECORD`.

use bytes::Bytes;
use cairn_storage::batch::{self, BatchHeader, HEADER_LEN, LOG_OVERHEAD, MIN_BATCH_LENGTH};
use cairn_storage::{BatchError, VerifiedBatch};

pub use crate::decompress::Compression;
use crate::decompress::{self, SliceSource, Source, SourceError};

/// Kafka's default `message.max.bytes`: 1 MiB of records plus the 12-byte log overhead.
pub const DEFAULT_MAX_BATCH_BYTES: u32 = 1_048_588;

/// Default bound on the decompressed size of one batch: 64 MiB.
///
/// That is 64 times the default `message.max.bytes`. Real batches compress 2–10x (JSON,
/// logs) and rarely more than 30x (long runs of repeated records); 64x leaves room for
/// those while holding the work a hostile batch can cause to about 0.1 s of decompression.
/// Memory does not depend on it (see the module docs). Kafka itself has no such bound.
pub const DEFAULT_MAX_UNCOMPRESSED_BYTES: u64 = 64 * 1024 * 1024;

/// Default cap on a zstd frame's window: 2^23 = 8 MiB.
///
/// zstd levels 1–19 use windows of at most 8 MiB (level 3, Kafka's and librdkafka's default,
/// uses 2 MiB); only the "ultra" levels 20–22 need more. A frame's header declares its
/// window and the decoder allocates it, so without a cap one small hostile frame costs
/// 128 MiB (zstd's own decoder limit).
pub const DEFAULT_ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// Limits applied to produced records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLimits {
    /// Largest batch accepted, header included (Kafka's `message.max.bytes`).
    pub max_batch_bytes: u32,
    /// Most decompressed bytes one compressed batch may produce.
    pub max_uncompressed_bytes: u64,
    /// Largest zstd window accepted, as a power of two (zstd's `windowLogMax`).
    pub zstd_window_log_max: u32,
}

impl Default for RecordLimits {
    fn default() -> Self {
        RecordLimits {
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            max_uncompressed_bytes: DEFAULT_MAX_UNCOMPRESSED_BYTES,
            zstd_window_log_max: DEFAULT_ZSTD_WINDOW_LOG_MAX,
        }
    }
}

/// Keyless records listed by index in a [`RecordSummary`], at most (the count goes on).
pub const MAX_LISTED_KEYLESS: usize = 1000;

/// What the walk over a batch's records learned, for the rules that depend on the topic
/// (timestamps, keys) and for the header fields the broker computes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSummary {
    /// The largest record timestamp (`baseTimestamp + timestampDelta`), as Kafka computes it
    /// while validating: the header's own `maxTimestamp` is a producer's claim (librdkafka
    /// and Sarama have sent 0 and -1 there). -1 for a batch without records.
    pub max_timestamp: i64,
    /// `offsetDelta` of the first record with [`Self::max_timestamp`].
    pub max_timestamp_delta: i32,
    /// Smallest and largest record timestamps other than -1 (Kafka's `NO_TIMESTAMP`), which
    /// `message.timestamp.before/after.max.ms` bound; `None` when every record has none.
    pub timestamp_range: Option<(i64, i64)>,
    /// Indexes of records with a null key (at most [`MAX_LISTED_KEYLESS`]).
    pub keyless: Vec<i32>,
    /// Number of records with a null key.
    pub keyless_count: u32,
}

impl Default for RecordSummary {
    fn default() -> Self {
        RecordSummary {
            max_timestamp: -1,
            max_timestamp_delta: 0,
            timestamp_range: None,
            keyless: Vec::new(),
            keyless_count: 0,
        }
    }
}

impl RecordSummary {
    fn note(&mut self, index: i32, timestamp: i64, null_key: bool) {
        if timestamp > self.max_timestamp {
            self.max_timestamp = timestamp;
            self.max_timestamp_delta = index;
        }
        if timestamp != -1 {
            self.timestamp_range = Some(match self.timestamp_range {
                None => (timestamp, timestamp),
                Some((lo, hi)) => (lo.min(timestamp), hi.max(timestamp)),
            });
        }
        if null_key {
            if self.keyless.len() < MAX_LISTED_KEYLESS {
                self.keyless.push(index);
            }
            self.keyless_count += 1;
        }
    }
}

/// One validated batch: the producer's bytes, untouched (a zero-copy slice of the request's
/// records) as storage's [`VerifiedBatch`] (the log appends it without checking its CRC
/// again), and what its records say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducedBatch {
    /// The batch.
    pub batch: VerifiedBatch,
    /// Its records' timestamps and keys.
    pub records: RecordSummary,
}

impl ProducedBatch {
    /// The batch's header, as received.
    pub fn header(&self) -> &BatchHeader {
        self.batch.header()
    }

    /// The batch's bytes, as received.
    pub fn bytes(&self) -> &Bytes {
        self.batch.bytes()
    }
}

/// Which length of a record is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordField {
    /// The key length (must be >= -1).
    Key,
    /// The value length (must be >= -1).
    Value,
    /// The header count (must be >= 0).
    HeaderCount,
    /// A header key length (must be >= 0).
    HeaderKey,
    /// A header value length (must be >= -1).
    HeaderValue,
}

/// What is wrong with one record of a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordFault {
    /// The data ends inside the record.
    #[error("data ends inside the record")]
    Truncated,
    /// A varint runs past its maximum width.
    #[error("a varint is longer than its maximum width")]
    Varint,
    /// The record's length is negative.
    #[error("negative record length {length}")]
    NegativeLength {
        /// The declared length.
        length: i32,
    },
    /// `offsetDelta` is not the record's index in the batch.
    #[error("offsetDelta is {found}, not the record's index")]
    OffsetDelta {
        /// The declared offset delta.
        found: i32,
    },
    /// A size or count is out of range.
    #[error("{field:?} size {size} is invalid")]
    BadSize {
        /// Which size.
        field: RecordField,
        /// The declared size.
        size: i32,
    },
    /// The fields run past the record's declared length.
    #[error("fields run past the declared record length {length}")]
    Overrun {
        /// The declared length.
        length: i32,
    },
    /// The fields end before the record's declared length.
    #[error("fields use {used} of the declared record length {length}")]
    Underrun {
        /// The declared length.
        length: i32,
        /// Bytes the fields took.
        used: u64,
    },
}

/// Why the records of a produced partition are refused. `position` is the byte position of
/// the offending batch within the partition's records. [`crate::errors::ErrorCode`] maps
/// each variant to its Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The partition's records are empty.
    #[error("produce request has no record batch for the partition")]
    NoBatches,
    /// The last batch is cut short.
    #[error(
        "record batch at byte {position} is truncated: {available} bytes left, {needed} needed"
    )]
    TruncatedBatch {
        /// Position of the batch.
        position: usize,
        /// Bytes left in the records.
        available: usize,
        /// Bytes the batch needs.
        needed: u64,
    },
    /// A legacy (v0/v1) message set.
    #[error("record batch at byte {position} has magic {magic}; only magic 2 is accepted")]
    UnsupportedMagic {
        /// Position of the batch.
        position: usize,
        /// The magic byte.
        magic: i8,
    },
    /// The batch header or CRC is invalid.
    #[error("record batch at byte {position}: {source}")]
    Batch {
        /// Position of the batch.
        position: usize,
        /// What is wrong.
        #[source]
        source: BatchError,
    },
    /// Clients may not produce control batches (Kafka's `LogValidator`).
    #[error("record batch at byte {position} is a control batch, which clients may not produce")]
    ControlBatch {
        /// Position of the batch.
        position: usize,
    },
    /// `recordsCount` is not positive or disagrees with `lastOffsetDelta`.
    #[error("record batch at byte {position} has {count} records but lastOffsetDelta {last_offset_delta}")]
    RecordCount {
        /// Position of the batch.
        position: usize,
        /// `recordsCount`.
        count: i32,
        /// `lastOffsetDelta`.
        last_offset_delta: i32,
    },
    /// An idempotent producer's batch has no sequence number.
    #[error("record batch at byte {position} of producer {producer_id} has base sequence {base_sequence}")]
    MissingSequence {
        /// Position of the batch.
        position: usize,
        /// `producerId`.
        producer_id: i64,
        /// `baseSequence`.
        base_sequence: i32,
    },
    /// More than one batch for the partition, from an idempotent or transactional producer.
    #[error("idempotent producer {producer_id} sent more than one batch for a partition")]
    MultipleBatches {
        /// The producer id of the first idempotent batch.
        producer_id: i64,
    },
    /// A codec id outside 0–4.
    #[error("record batch at byte {position} uses unknown compression codec {codec}")]
    UnknownCompression {
        /// Position of the batch.
        position: usize,
        /// The codec id.
        codec: u8,
    },
    /// The codec refused the compressed records.
    #[error("record batch at byte {position}: {codec} data is invalid: {source}")]
    Decompression {
        /// Position of the batch.
        position: usize,
        /// The codec.
        codec: Compression,
        /// The codec's complaint.
        #[source]
        source: std::io::Error,
    },
    /// The records decompress to more than `max_uncompressed_bytes`.
    #[error(
        "record batch at byte {position}: {codec} records decompress to more than {limit} bytes"
    )]
    DecompressionBomb {
        /// Position of the batch.
        position: usize,
        /// The codec.
        codec: Compression,
        /// The configured `max_uncompressed_bytes`.
        limit: u64,
    },
    /// A record does not parse.
    #[error("record {index} of the batch at byte {position}: {fault}")]
    InvalidRecord {
        /// Position of the batch.
        position: usize,
        /// Index of the record in its batch.
        index: i32,
        /// What is wrong.
        fault: RecordFault,
    },
    /// Bytes follow the last record the batch declares.
    #[error("record batch at byte {position} has bytes after its last record")]
    TrailingBytes {
        /// Position of the batch.
        position: usize,
    },
    /// A message of a format 0/1 message set (Produce v0–v2) is damaged: CRC, framing or a
    /// compressed message nested in another.
    #[error("message at byte {position} of the message set: {reason}")]
    LegacyMessage {
        /// Position of the message.
        position: usize,
        /// What is wrong.
        reason: String,
    },
    /// zstd in a Produce request older than v7 (KIP-110).
    #[error("Produce v{api_version} may not carry {codec} batches")]
    CompressionNotAllowed {
        /// The codec.
        codec: Compression,
        /// The Produce request version.
        api_version: i16,
    },
}

/// Validates the records of one partition of a Produce request and returns its batches,
/// zero-copy. See the module docs for the checks and their order.
pub fn validate_produce_records(
    records: &Bytes,
    limits: &RecordLimits,
) -> Result<Vec<ProducedBatch>, RecordError> {
    if records.is_empty() {
        return Err(RecordError::NoBatches);
    }
    let mut batches: Vec<ProducedBatch> = Vec::new();
    let mut position = 0usize;
    while position < records.len() {
        let total = batch_extent(&records[position..], position)?;
        let bytes = records.slice(position..position + total);
        let batch = check_batch(bytes, position, limits)?;
        let header = *batch.header();
        if let Some(first) = batches.first() {
            let idempotent = [first.header().producer_id, header.producer_id]
                .into_iter()
                .find(|&id| id >= 0);
            if let Some(producer_id) = idempotent {
                return Err(RecordError::MultipleBatches { producer_id });
            }
        }
        let records = check_records(batch.bytes(), &header, position, limits)?;
        batches.push(ProducedBatch { batch, records });
        position += total;
    }
    Ok(batches)
}

/// Refuses zstd batches in Produce requests older than v7, which predate zstd (KIP-110):
/// Kafka answers `UNSUPPORTED_COMPRESSION_TYPE`.
pub fn check_produce_compression(
    api_version: i16,
    batches: &[ProducedBatch],
) -> Result<(), RecordError> {
    const ZSTD_SINCE_PRODUCE_VERSION: i16 = 7;
    for b in batches {
        if api_version < ZSTD_SINCE_PRODUCE_VERSION
            && Compression::from_id(b.header().compression()) == Some(Compression::Zstd)
        {
            return Err(RecordError::CompressionNotAllowed {
                codec: Compression::Zstd,
                api_version,
            });
        }
    }
    Ok(())
}

/// The size of the batch at the start of `rest`, checked to be whole.
fn batch_extent(rest: &[u8], position: usize) -> Result<usize, RecordError> {
    const MAGIC_AT: usize = 16;
    let Some((_, total)) = batch::peek_total_len(rest) else {
        return Err(RecordError::TruncatedBatch {
            position,
            available: rest.len(),
            needed: LOG_OVERHEAD as u64,
        });
    };
    let Some(&magic) = rest.get(MAGIC_AT) else {
        return Err(RecordError::TruncatedBatch {
            position,
            available: rest.len(),
            needed: (MAGIC_AT as u64 + 1).max(u64::try_from(total).unwrap_or(0)),
        });
    };
    // v0 and v1 message sets keep `magic` at byte 16 too (offset, size, crc, magic).
    if magic == 0 || magic == 1 {
        return Err(RecordError::UnsupportedMagic {
            position,
            magic: magic as i8,
        });
    }
    if total < HEADER_LEN as i64 {
        return Err(RecordError::Batch {
            position,
            source: BatchError::LengthTooSmall {
                declared: (total - LOG_OVERHEAD as i64) as i32,
                min: MIN_BATCH_LENGTH,
            },
        });
    }
    match usize::try_from(total) {
        Ok(total) if total <= rest.len() => Ok(total),
        _ => Err(RecordError::TruncatedBatch {
            position,
            available: rest.len(),
            needed: total as u64,
        }),
    }
}

/// Header-level checks of one whole batch.
fn check_batch(
    bytes: Bytes,
    position: usize,
    limits: &RecordLimits,
) -> Result<VerifiedBatch, RecordError> {
    let batch = VerifiedBatch::new(bytes, limits.max_batch_bytes)
        .map_err(|source| RecordError::Batch { position, source })?;
    let header = batch.header();
    if header.is_control() {
        return Err(RecordError::ControlBatch { position });
    }
    if header.records_count <= 0
        || i64::from(header.records_count) != i64::from(header.last_offset_delta) + 1
    {
        return Err(RecordError::RecordCount {
            position,
            count: header.records_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    if header.producer_id >= 0 && header.base_sequence < 0 {
        return Err(RecordError::MissingSequence {
            position,
            producer_id: header.producer_id,
            base_sequence: header.base_sequence,
        });
    }
    Ok(batch)
}

/// Walks the records of a batch whose header passed [`check_batch`].
fn check_records(
    bytes: &[u8],
    header: &BatchHeader,
    position: usize,
    limits: &RecordLimits,
) -> Result<RecordSummary, RecordError> {
    let data = bytes.get(HEADER_LEN..).unwrap_or_default();
    let codec = header.compression();
    let Some(codec) = Compression::from_id(codec) else {
        return Err(RecordError::UnknownCompression { position, codec });
    };
    let mut summary = RecordSummary::default();
    let base_timestamp = header.base_timestamp;
    let result = if codec == Compression::None {
        walk(
            &mut SliceSource::new(data),
            header.records_count,
            base_timestamp,
            &mut summary,
        )
    } else {
        match decompress::open(codec, data, limits) {
            Ok(mut source) => walk(
                &mut source,
                header.records_count,
                base_timestamp,
                &mut summary,
            ),
            Err(e) => Err(Stop::Source(e)),
        }
    };
    result.map(|()| summary).map_err(|stop| match stop {
        Stop::Source(SourceError::Budget { limit }) => RecordError::DecompressionBomb {
            position,
            codec,
            limit,
        },
        Stop::Source(SourceError::Codec(source)) => RecordError::Decompression {
            position,
            codec,
            source,
        },
        Stop::Fault { index, fault } => RecordError::InvalidRecord {
            position,
            index,
            fault,
        },
        Stop::Trailing => RecordError::TrailingBytes { position },
    })
}

/// Why the walk stopped.
#[derive(Debug)]
enum Stop {
    Source(SourceError),
    Fault { index: i32, fault: RecordFault },
    Trailing,
}

/// A failure inside one record, before its index is attached.
#[derive(Debug)]
enum Fail {
    Source(SourceError),
    Fault(RecordFault),
}

impl From<SourceError> for Fail {
    fn from(e: SourceError) -> Self {
        Fail::Source(e)
    }
}

/// Reads exactly `count` records from `src` and checks nothing follows them, noting each
/// record's timestamp and key in `summary`.
fn walk<S: Source>(
    src: &mut S,
    count: i32,
    base_timestamp: i64,
    summary: &mut RecordSummary,
) -> Result<(), Stop> {
    for index in 0..count {
        let (timestamp_delta, null_key) = walk_record(src, index).map_err(|f| match f {
            Fail::Source(e) => Stop::Source(e),
            Fail::Fault(fault) => Stop::Fault { index, fault },
        })?;
        summary.note(
            index,
            base_timestamp.saturating_add(timestamp_delta),
            null_key,
        );
    }
    if src.at_end().map_err(Stop::Source)? {
        Ok(())
    } else {
        Err(Stop::Trailing)
    }
}

/// Walks one record; returns its `timestampDelta` and whether its key is null.
fn walk_record<S: Source>(src: &mut S, index: i32) -> Result<(i64, bool), Fail> {
    let length = read_varint(|| src.byte()?.ok_or(Fail::Fault(RecordFault::Truncated)))?;
    let Ok(left) = u64::try_from(length) else {
        return Err(Fail::Fault(RecordFault::NegativeLength { length }));
    };
    let mut rec = Record { src, length, left };
    rec.byte()?; // attributes: unused
    let timestamp_delta = read_varlong(|| rec.byte())?;
    let offset_delta = read_varint(|| rec.byte())?;
    if offset_delta != index {
        return Err(Fail::Fault(RecordFault::OffsetDelta {
            found: offset_delta,
        }));
    }
    let key = rec.sized(RecordField::Key, -1)?;
    rec.sized(RecordField::Value, -1)?;
    let headers = read_varint(|| rec.byte())?;
    if headers < 0 {
        return Err(Fail::Fault(RecordFault::BadSize {
            field: RecordField::HeaderCount,
            size: headers,
        }));
    }
    // Each header takes at least two bytes of the record, so this loop is bounded by the
    // record's length, not by the declared count.
    for _ in 0..headers {
        rec.sized(RecordField::HeaderKey, 0)?;
        rec.sized(RecordField::HeaderValue, -1)?;
    }
    if rec.left != 0 {
        return Err(Fail::Fault(RecordFault::Underrun {
            length,
            used: u64::try_from(length).unwrap_or(0) - rec.left,
        }));
    }
    Ok((timestamp_delta, key < 0))
}

/// One record's bytes: reads fail past its declared length.
struct Record<'s, S> {
    src: &'s mut S,
    length: i32,
    left: u64,
}

impl<S: Source> Record<'_, S> {
    fn byte(&mut self) -> Result<u8, Fail> {
        if self.left == 0 {
            return Err(Fail::Fault(RecordFault::Overrun {
                length: self.length,
            }));
        }
        let b = self
            .src
            .byte()?
            .ok_or(Fail::Fault(RecordFault::Truncated))?;
        self.left -= 1;
        Ok(b)
    }

    /// A varint size (>= `min`; -1 means null) and that many bytes, skipped; returns the size.
    fn sized(&mut self, field: RecordField, min: i32) -> Result<i32, Fail> {
        let size = read_varint(|| self.byte())?;
        if size < min {
            return Err(Fail::Fault(RecordFault::BadSize { field, size }));
        }
        let n = u64::try_from(size).unwrap_or(0);
        if n > self.left {
            return Err(Fail::Fault(RecordFault::Overrun {
                length: self.length,
            }));
        }
        if self.src.skip(n)? < n {
            return Err(Fail::Fault(RecordFault::Truncated));
        }
        self.left -= n;
        Ok(size)
    }
}

/// A zig-zag varint of at most 5 bytes, decoded as Kafka's `ByteUtils.readVarint` does.
fn read_varint(mut next: impl FnMut() -> Result<u8, Fail>) -> Result<i32, Fail> {
    let mut value: u32 = 0;
    let mut shift = 0;
    loop {
        let b = next()?;
        if b & 0x80 == 0 {
            value |= u32::from(b) << shift;
            break;
        }
        value |= u32::from(b & 0x7f) << shift;
        shift += 7;
        if shift > 28 {
            return Err(Fail::Fault(RecordFault::Varint));
        }
    }
    Ok(((value >> 1) as i32) ^ -((value & 1) as i32))
}

/// A zig-zag varlong of at most 10 bytes, as Kafka's `ByteUtils.readVarlong`.
fn read_varlong(mut next: impl FnMut() -> Result<u8, Fail>) -> Result<i64, Fail> {
    let mut value: u64 = 0;
    let mut shift = 0;
    loop {
        let b = next()?;
        if b & 0x80 == 0 {
            value |= u64::from(b) << shift;
            break;
        }
        value |= u64::from(b & 0x7f) << shift;
        shift += 7;
        if shift > 63 {
            return Err(Fail::Fault(RecordFault::Varint));
        }
    }
    Ok(((value >> 1) as i64) ^ -((value & 1) as i64))
}

#[cfg(test)]
mod tests;
