//! Kafka v2 record batch header: layout, parsing and validation.
//!
//! A record batch is the unit Cairn stores, replicates and serves. Its bytes are kept exactly
//! as the producer sent them, except the two fields that lie outside the checksum and that the
//! log owns: `baseOffset` (assigned on append) and `partitionLeaderEpoch` (the leader's epoch,
//! which is the raft term of the entry).
//!
//! ```text
//! byte  width  field                  notes (all integers big-endian)
//!    0      8  baseOffset             rewritten by the log on append
//!    8      4  batchLength            bytes after this field; total = batchLength + 12
//!   12      4  partitionLeaderEpoch   rewritten by the log on append
//!   16      1  magic                  must be 2
//!   17      4  crc                    CRC-32C (Castagnoli) of bytes 21..end
//!   21      2  attributes             bits 0-2 compression, 3 timestamp type,
//!                                     4 transactional, 5 control, 6 delete horizon
//!   23      4  lastOffsetDelta        offsets spanned = lastOffsetDelta + 1
//!   27      8  baseTimestamp
//!   35      8  maxTimestamp
//!   43      8  producerId
//!   51      2  producerEpoch
//!   53      4  baseSequence
//!   57      4  recordsCount
//!   61      -  records                possibly compressed
//! ```
//!
//! Every byte of a batch is covered by some check: bytes 21.. by the CRC, `magic` by its value,
//! `batchLength` by the framing (a wrong length moves the CRC range and fails it), and the two
//! unprotected fields by the log (`baseOffset` must continue the previous batch,
//! `partitionLeaderEpoch` must match the leader-epoch history), see [`crate::recovery`].
//!
//! The parser never allocates: it reads fixed offsets of a borrowed slice. Callers bound the
//! size they are willing to read *before* reading the body, from [`peek_total_len`].

use bytes::Bytes;

use crate::error::BatchError;

/// Size of the fixed batch header, records excluded.
pub const HEADER_LEN: usize = 61;
/// Bytes before `batchLength` counts: `baseOffset` and `batchLength` themselves.
pub const LOG_OVERHEAD: usize = 12;
/// Smallest valid `batchLength` (a batch with no records).
pub const MIN_BATCH_LENGTH: i32 = (HEADER_LEN - LOG_OVERHEAD) as i32;

pub(crate) const BASE_OFFSET_AT: usize = 0;
pub(crate) const LENGTH_AT: usize = 8;
pub(crate) const LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
pub(crate) const CRC_AT: usize = 17;
const CRC_FROM: usize = 21;
pub(crate) const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
pub(crate) const RECORDS_COUNT_AT: usize = 57;

/// Attribute bit: the timestamps are broker append time, not producer create time.
pub const ATTR_LOG_APPEND_TIME: i16 = 1 << 3;
/// Attribute bit: the batch belongs to a transaction.
pub const ATTR_TRANSACTIONAL: i16 = 1 << 4;
/// Attribute bit: the batch is a control batch (transaction markers, raft no-ops).
pub const ATTR_CONTROL: i16 = 1 << 5;
/// Mask of the compression codec bits of `attributes`.
pub const ATTR_COMPRESSION_MASK: i16 = 0x07;

/// The parsed fixed header of a v2 record batch. `Copy` and allocation-free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the `batchLength` field.
    pub batch_length: i32,
    /// Epoch of the leader that appended the batch.
    pub partition_leader_epoch: i32,
    /// Format version; always 2 for a valid batch.
    pub magic: i8,
    /// CRC-32C of bytes 21..end.
    pub crc: u32,
    /// Compression, timestamp type, transactional and control flags.
    pub attributes: i16,
    /// Offset of the last record relative to `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Idempotent/transactional producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub records_count: i32,
}

impl BatchHeader {
    /// Total size of the batch in bytes, header included.
    pub fn total_len(&self) -> u64 {
        LOG_OVERHEAD as u64 + self.batch_length.max(0) as u64
    }

    /// Offset of the last record (`base_offset + last_offset_delta`); for a [marker
    /// batch](BatchHeader::is_marker), which holds none, the offset before it.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(self.last_offset_delta as i64)
    }

    /// The offset after the batch: the next batch's base offset. Equal to `base_offset` for
    /// a [marker batch](BatchHeader::is_marker).
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// Number of offsets the batch takes: `lastOffsetDelta + 1`, 0 for a marker batch.
    pub fn offset_span(&self) -> u64 {
        (self.last_offset_delta as i64 + 1).max(0) as u64
    }

    /// Whether this is one of Cairn's marker batches: a control batch that takes no offset
    /// (`lastOffsetDelta` -1, no records), see [`marker`].
    pub fn is_marker(&self) -> bool {
        self.is_control() && self.last_offset_delta == -1 && self.records_count == 0
    }

    /// The compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> u8 {
        (self.attributes & ATTR_COMPRESSION_MASK) as u8
    }

    /// Whether this is a control batch, which consumers never see as records.
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    /// Whether the timestamps are log-append time.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_LOG_APPEND_TIME != 0
    }
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

/// Reads `baseOffset` and the total size of the batch starting at `buf` from its first 12
/// bytes, so a reader can bound how much it reads next. `None` if fewer than 12 bytes.
pub fn peek_total_len(buf: &[u8]) -> Option<(i64, i64)> {
    if buf.len() < LOG_OVERHEAD {
        return None;
    }
    let base = be_i64(buf, BASE_OFFSET_AT);
    let len = be_i32(buf, LENGTH_AT) as i64 + LOG_OVERHEAD as i64;
    Some((base, len))
}

/// Parses the 61-byte header at the start of `buf` without checking the CRC or the body.
pub fn parse_header(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    if buf.len() < HEADER_LEN {
        return Err(BatchError::Truncated {
            available: buf.len(),
            needed: HEADER_LEN,
        });
    }
    Ok(BatchHeader {
        base_offset: be_i64(buf, BASE_OFFSET_AT),
        batch_length: be_i32(buf, LENGTH_AT),
        partition_leader_epoch: be_i32(buf, LEADER_EPOCH_AT),
        magic: buf[MAGIC_AT] as i8,
        crc: be_i32(buf, CRC_AT) as u32,
        attributes: be_i16(buf, ATTRIBUTES_AT),
        last_offset_delta: be_i32(buf, LAST_OFFSET_DELTA_AT),
        base_timestamp: be_i64(buf, BASE_TIMESTAMP_AT),
        max_timestamp: be_i64(buf, MAX_TIMESTAMP_AT),
        producer_id: be_i64(buf, PRODUCER_ID_AT),
        producer_epoch: be_i16(buf, PRODUCER_EPOCH_AT),
        base_sequence: be_i32(buf, BASE_SEQUENCE_AT),
        records_count: be_i32(buf, RECORDS_COUNT_AT),
    })
}

/// Checks the header fields that do not need the body: length bounds against `max_bytes`,
/// magic, offset delta, record count and timestamps.
pub fn check_header(h: &BatchHeader, max_bytes: u32) -> Result<(), BatchError> {
    if h.batch_length < MIN_BATCH_LENGTH {
        return Err(BatchError::LengthTooSmall {
            declared: h.batch_length,
            min: MIN_BATCH_LENGTH,
        });
    }
    if h.total_len() > max_bytes as u64 {
        return Err(BatchError::TooLarge {
            size: h.total_len(),
            max: max_bytes,
        });
    }
    if h.magic != 2 {
        return Err(BatchError::BadMagic { magic: h.magic });
    }
    // -1 only for Cairn's own marker batches, which take no offset (see `marker`).
    if h.last_offset_delta < 0 && !h.is_marker() {
        return Err(BatchError::NegativeLastOffsetDelta(h.last_offset_delta));
    }
    // Compaction may remove records but keeps lastOffsetDelta, so count <= span, not ==.
    let span = h.last_offset_delta as i64 + 1;
    if h.records_count < 0 || h.records_count as i64 > span {
        return Err(BatchError::BadRecordCount {
            count: h.records_count,
            span,
        });
    }
    if h.base_offset
        .checked_add(h.last_offset_delta as i64)
        .is_none()
    {
        return Err(BatchError::OffsetOverflow {
            base: h.base_offset,
            delta: h.last_offset_delta,
        });
    }
    // -1 is Kafka's NO_TIMESTAMP. With log-append time the broker overwrote maxTimestamp
    // only, so a producer clock ahead of the broker's legitimately gives base > max.
    let ts_ok = h.base_timestamp >= -1
        && h.max_timestamp >= -1
        && (h.is_log_append_time()
            || h.records_count == 0
            || h.max_timestamp == -1
            || h.max_timestamp >= h.base_timestamp);
    if !ts_ok {
        return Err(BatchError::BadTimestamps {
            base: h.base_timestamp,
            max: h.max_timestamp,
        });
    }
    Ok(())
}

/// CRC-32C of the checksummed part of a batch (bytes 21..end).
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[CRC_FROM.min(batch.len())..])
}

/// Fully validates one batch that must occupy exactly `batch`: header checks, exact length,
/// and the CRC-32C. Never allocates; never panics on any input.
pub fn validate(batch: &[u8], max_bytes: u32) -> Result<BatchHeader, BatchError> {
    let h = parse_header(batch)?;
    check_header(&h, max_bytes)?;
    if h.total_len() != batch.len() as u64 {
        return Err(BatchError::LengthMismatch {
            declared: h.total_len(),
            actual: batch.len() as u64,
        });
    }
    let computed = compute_crc(batch);
    if computed != h.crc {
        return Err(BatchError::CrcMismatch {
            stored: h.crc,
            computed,
        });
    }
    Ok(h)
}

/// A batch that passed [`validate`] (framing, header, CRC-32C), with its parsed header.
///
/// Only [`VerifiedBatch::new`] makes one, and `Bytes` never change, so holding one proves
/// that these very bytes were checked: [`crate::Log::append_verified`] appends it without
/// computing the CRC a second time (the protocol layer checks every produced batch anyway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBatch {
    bytes: Bytes,
    header: BatchHeader,
}

impl VerifiedBatch {
    /// Validates `bytes` as exactly one batch of at most `max_bytes`.
    pub fn new(bytes: Bytes, max_bytes: u32) -> Result<VerifiedBatch, BatchError> {
        let header = validate(&bytes, max_bytes)?;
        Ok(VerifiedBatch { bytes, header })
    }

    /// The batch.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Its header, as received (base offset and leader epoch are the producer's).
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The batch, giving up the proof.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// This batch with `maxTimestamp` set to `max_timestamp` and the timestamp type set to
    /// log-append time or create time, its CRC recomputed: what Kafka's validator does to
    /// every produced batch (`setMaxTimestamp`), so the stored header states the records'
    /// true maximum, or the broker's append time. A copy only when a field changes.
    pub fn with_max_timestamp(self, max_timestamp: i64, log_append_time: bool) -> VerifiedBatch {
        let h = self.header;
        if h.max_timestamp == max_timestamp && h.is_log_append_time() == log_append_time {
            return self;
        }
        let attributes = if log_append_time {
            h.attributes | ATTR_LOG_APPEND_TIME
        } else {
            h.attributes & !ATTR_LOG_APPEND_TIME
        };
        let mut b = self.bytes.to_vec();
        b[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
        b[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&max_timestamp.to_be_bytes());
        let crc = compute_crc(&b);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        VerifiedBatch {
            bytes: Bytes::from(b),
            header: BatchHeader {
                attributes,
                max_timestamp,
                crc,
                ..h
            },
        }
    }

    /// Whether `other` is this batch's own bytes (same memory, same length), not merely equal
    /// ones: how a caller finds that bytes it got back are the ones it verified.
    pub fn is_same(&self, other: &Bytes) -> bool {
        self.bytes.as_ptr() == other.as_ptr() && self.bytes.len() == other.len()
    }
}

/// Splits a buffer holding one or more whole batches, validating each (header and CRC).
/// Yields `Err` once at the first invalid batch and then stops.
pub fn iter_batches(buf: &[u8], max_bytes: u32) -> BatchIter<'_> {
    BatchIter {
        buf,
        pos: 0,
        max_bytes,
        failed: false,
    }
}

/// Iterator over the batches of a buffer; see [`iter_batches`].
#[derive(Debug)]
pub struct BatchIter<'a> {
    buf: &'a [u8],
    pos: usize,
    max_bytes: u32,
    failed: bool,
}

impl<'a> BatchIter<'a> {
    /// Byte position (in the buffer) of the next batch to be yielded.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for BatchIter<'a> {
    /// The batch's position in the buffer, its header and its bytes.
    type Item = Result<(usize, BatchHeader, &'a [u8]), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.pos..];
        let result = parse_header(rest).and_then(|h| {
            check_header(&h, self.max_bytes)?;
            let total = h.total_len() as usize;
            if total > rest.len() {
                return Err(BatchError::LengthMismatch {
                    declared: total as u64,
                    actual: rest.len() as u64,
                });
            }
            let bytes = &rest[..total];
            let computed = compute_crc(bytes);
            if computed != h.crc {
                return Err(BatchError::CrcMismatch {
                    stored: h.crc,
                    computed,
                });
            }
            Ok((h, bytes))
        });
        match result {
            Ok((h, bytes)) => {
                let at = self.pos;
                self.pos += bytes.len();
                Some(Ok((at, h, bytes)))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// The 16 leading bytes of `batch` with `baseOffset` and `partitionLeaderEpoch` replaced:
/// what the log writes in place of `batch[..16]`. Both fields lie outside the CRC.
pub(crate) fn patched_prefix(batch: &[u8], base_offset: u64, leader_epoch: i32) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&(base_offset as i64).to_be_bytes());
    p[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&batch[LENGTH_AT..LENGTH_AT + 4]);
    p[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&leader_epoch.to_be_bytes());
    p
}

/// Builds a valid uncompressed v2 batch holding `values` as records (no keys, no headers).
/// For tests, benchmarks and tools; the broker stores what producers send.
pub fn build_batch(base_timestamp: i64, values: &[&[u8]]) -> Vec<u8> {
    let records: Vec<(Option<&[u8]>, &[u8])> = values.iter().map(|v| (None, *v)).collect();
    build_records_batch(base_timestamp, 0, &records)
}

/// Control record types Cairn itself writes (Kafka uses 0 ABORT and 1 COMMIT for transaction
/// markers and 2–6 for KRaft; these stay clear of them). Today they are the kinds of
/// [`marker`] batches; logs written before markers existed hold them as control batches of
/// one record, which take an offset each.
pub mod control {
    /// The empty entry a raft leader appends when elected.
    pub const RAFT_NOOP: i16 = 16;
    /// A raft configuration change (the value holds the encoded change).
    pub const RAFT_CONF_CHANGE: i16 = 17;
    /// A deletion from the head of the log (DeleteRecords, retention): the value holds the
    /// new log start offset. Only ever a marker.
    pub const RAFT_DELETE_RECORDS: i16 = 18;
}

/// Builds a control batch (attribute bit 5) with one control record: key `[version 0: i16,
/// control_type: i16]`, the given value.
pub fn build_control_batch(timestamp: i64, control_type: i16, value: &[u8]) -> Vec<u8> {
    let mut key = [0u8; 4];
    key[2..].copy_from_slice(&control_type.to_be_bytes());
    build_records_batch(timestamp, ATTR_CONTROL, &[(Some(&key), value)])
}

/// Cairn's marker batches: control batches that take no offset.
///
/// The partition log is also the raft log, and raft writes entries of its own: a new
/// leader's empty entry, configuration changes. Stored as ordinary control batches they
/// would take an offset each, and Kafka offsets would no longer count records (a new
/// partition's first record would not be at 0, every election would leave a gap). A marker
/// batch takes none:
///
/// ```text
/// header   as any batch, with attributes = control (bit 5), lastOffsetDelta = -1,
///          recordsCount = 0, baseTimestamp = maxTimestamp = -1, no producer
/// 61  2    kind (i16): what the marker stands for (see [`control`])
/// 63  -    payload (the kind's own bytes)
/// ```
///
/// Its base offset is the offset of the next record, so `next_offset() == base_offset`;
/// several markers and then a data batch can share one base offset, and the dense offset
/// index tells them apart by position. The body after the header is covered by the CRC like
/// any batch. Fetch never hands markers to clients; Kafka never sees one.
pub mod marker {
    use super::{compute_crc, ATTR_CONTROL, CRC_AT, HEADER_LEN, LOG_OVERHEAD};

    /// Builds a marker batch of `kind` carrying `payload` (base offset and leader epoch are
    /// set by the log on append).
    pub fn build(kind: i16, payload: &[u8]) -> Vec<u8> {
        let body_len = 2 + payload.len();
        let mut b = Vec::with_capacity(HEADER_LEN + body_len);
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&((HEADER_LEN - LOG_OVERHEAD + body_len) as i32).to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b.push(2);
        b.extend_from_slice(&[0; 4]); // crc, filled below
        b.extend_from_slice(&ATTR_CONTROL.to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes()); // lastOffsetDelta: no offset taken
        b.extend_from_slice(&(-1i64).to_be_bytes()); // baseTimestamp
        b.extend_from_slice(&(-1i64).to_be_bytes()); // maxTimestamp
        b.extend_from_slice(&(-1i64).to_be_bytes()); // producerId
        b.extend_from_slice(&(-1i16).to_be_bytes()); // producerEpoch
        b.extend_from_slice(&(-1i32).to_be_bytes()); // baseSequence
        b.extend_from_slice(&0i32.to_be_bytes()); // recordsCount
        b.extend_from_slice(&kind.to_be_bytes());
        b.extend_from_slice(payload);
        let crc = compute_crc(&b);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        b
    }

    /// The kind and payload of a marker batch; `None` for any other batch (or a marker too
    /// short to hold its kind). Does not check the CRC.
    pub fn parse(batch: &[u8]) -> Option<(i16, &[u8])> {
        let h = super::parse_header(batch).ok()?;
        if !h.is_marker() {
            return None;
        }
        let end = usize::try_from(h.total_len()).ok()?.min(batch.len());
        let body = batch.get(HEADER_LEN..end)?;
        let (kind, payload) = body.split_first_chunk::<2>()?;
        Some((i16::from_be_bytes(*kind), payload))
    }
}

/// The control type of a control batch (from its first record's key), `None` for a data
/// batch or an unparsable control record. Only uncompressed control batches are understood,
/// which is all Kafka and Cairn write.
pub fn control_type(batch: &[u8]) -> Option<i16> {
    let h = parse_header(batch).ok()?;
    if !h.is_control() || h.compression() != 0 || h.records_count < 1 {
        return None;
    }
    let mut at = HEADER_LEN;
    let _len = get_varint(batch, &mut at)?;
    at += 1; // attributes
    let _ts = get_varint(batch, &mut at)?;
    let _delta = get_varint(batch, &mut at)?;
    let key_len = get_varint(batch, &mut at)?;
    if key_len != 4 || batch.len() < at + 4 {
        return None;
    }
    Some(i16::from_be_bytes([batch[at + 2], batch[at + 3]]))
}

/// The value of the first record of an uncompressed batch (for control batches).
pub fn first_record_value(batch: &[u8]) -> Option<&[u8]> {
    let h = parse_header(batch).ok()?;
    if h.compression() != 0 || h.records_count < 1 {
        return None;
    }
    let mut at = HEADER_LEN;
    let _len = get_varint(batch, &mut at)?;
    at += 1;
    let _ts = get_varint(batch, &mut at)?;
    let _delta = get_varint(batch, &mut at)?;
    let key_len = get_varint(batch, &mut at)?;
    if key_len > 0 {
        at = at.checked_add(key_len as usize)?;
    }
    let value_len = get_varint(batch, &mut at)?;
    if value_len < 0 {
        return Some(&[]);
    }
    batch.get(at..at.checked_add(value_len as usize)?)
}

/// A zig-zag varint of a record field at `*at`, advancing `*at`; `None` past the end or
/// past ten bytes.
pub(crate) fn get_varint(buf: &[u8], at: &mut usize) -> Option<i64> {
    let mut z: u64 = 0;
    for shift in (0..70).step_by(7) {
        let b = *buf.get(*at)?;
        *at += 1;
        z |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Some(((z >> 1) as i64) ^ -((z & 1) as i64));
        }
    }
    None
}

/// A record's key and value, `None` being null.
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// Builds an uncompressed batch of `(key, value)` records with `attributes` (non-null values).
fn build_records_batch(
    base_timestamp: i64,
    attributes: i16,
    values: &[(Option<&[u8]>, &[u8])],
) -> Vec<u8> {
    let records: Vec<KeyValue<'_>> = values.iter().map(|(k, v)| (*k, Some(*v))).collect();
    build_keyed_records(base_timestamp, attributes, &records)
}

/// Builds a valid uncompressed v2 batch of `(key, value)` records, `None` being null (a null
/// value is a tombstone), no headers. For tests, benchmarks and tools.
pub fn build_keyed_batch(base_timestamp: i64, records: &[KeyValue<'_>]) -> Vec<u8> {
    build_keyed_records(base_timestamp, 0, records)
}

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

fn build_keyed_records(base_timestamp: i64, attributes: i16, values: &[KeyValue<'_>]) -> Vec<u8> {
    let mut records = Vec::new();
    for (i, (key, v)) in values.iter().enumerate() {
        let mut body = Vec::with_capacity(v.map_or(0, <[u8]>::len) + 16);
        body.push(0u8); // attributes
        put_varint(&mut body, 0); // timestampDelta
        put_varint(&mut body, i as i64); // offsetDelta
        put_bytes(&mut body, *key);
        put_bytes(&mut body, *v);
        put_varint(&mut body, 0); // headers count
        put_varint(&mut records, body.len() as i64);
        records.extend_from_slice(&body);
    }
    let count = values.len() as i32;
    let mut b = Vec::with_capacity(HEADER_LEN + records.len());
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((HEADER_LEN - LOG_OVERHEAD + records.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.push(2);
    b.extend_from_slice(&[0; 4]); // crc, filled below
    b.extend_from_slice(&attributes.to_be_bytes());
    b.extend_from_slice(&(count - 1).max(0).to_be_bytes());
    b.extend_from_slice(&base_timestamp.to_be_bytes());
    b.extend_from_slice(&base_timestamp.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(&records);
    let crc = compute_crc(&b);
    b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

/// One record of an uncompressed batch, as [`records_of`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordEntry {
    /// The record's offset (batch base offset + offsetDelta).
    pub offset: i64,
    /// Its key, `None` if null.
    pub key: Option<Vec<u8>>,
    /// Its value, `None` if null (a tombstone).
    pub value: Option<Vec<u8>>,
}

/// The records of an uncompressed batch with their offsets, keys and values (headers
/// skipped); `None` for a compressed batch or records that do not parse. For tests and tools.
pub fn records_of(batch: &[u8]) -> Option<Vec<RecordEntry>> {
    let h = parse_header(batch).ok()?;
    if h.compression() != 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut at = HEADER_LEN;
    for _ in 0..h.records_count {
        let len = usize::try_from(get_varint(batch, &mut at)?).ok()?;
        let end = at.checked_add(len)?;
        let mut p = at + 1;
        let _ts = get_varint(batch, &mut p)?;
        let delta = get_varint(batch, &mut p)?;
        let field = |p: &mut usize| -> Option<Option<Vec<u8>>> {
            let n = get_varint(batch, p)?;
            if n < 0 {
                return Some(None);
            }
            let v = batch.get(*p..p.checked_add(n as usize)?)?.to_vec();
            *p += n as usize;
            Some(Some(v))
        };
        let key = field(&mut p)?;
        let value = field(&mut p)?;
        if p > end {
            return None;
        }
        out.push(RecordEntry {
            offset: h.base_offset.checked_add(delta)?,
            key,
            value,
        });
        at = end;
    }
    Some(out)
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    // Zig-zag then base-128, as Kafka's record fields use.
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        if z < 0x80 {
            out.push(z as u8);
            return;
        }
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: u32 = 1 << 20;

    #[test]
    fn built_batch_validates() {
        let b = build_batch(1000, &[b"a", b"bc", b"def"]);
        let h = validate(&b, MAX).expect("valid");
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.magic, 2);
        assert_eq!(h.total_len(), b.len() as u64);
        assert_eq!(h.base_timestamp, 1000);
    }

    #[test]
    fn control_batches_round_trip() {
        let b = build_control_batch(7, control::RAFT_CONF_CHANGE, b"payload");
        let h = validate(&b, MAX).expect("valid");
        assert!(h.is_control());
        assert_eq!(control_type(&b), Some(control::RAFT_CONF_CHANGE));
        assert_eq!(first_record_value(&b), Some(&b"payload"[..]));
        let data = build_batch(7, &[b"x"]);
        assert_eq!(control_type(&data), None);
        assert_eq!(first_record_value(&data), Some(&b"x"[..]));
        // Truncated or garbled control batches never panic.
        for cut in 0..b.len() {
            let _ = control_type(&b[..cut]);
            let _ = first_record_value(&b[..cut]);
        }
    }

    #[test]
    fn markers_take_no_offset_and_carry_their_payload() {
        let m = marker::build(control::RAFT_CONF_CHANGE, b"change");
        let h = validate(&m, MAX).expect("a marker is a valid batch");
        assert!(h.is_marker() && h.is_control());
        assert_eq!(
            (h.offset_span(), h.records_count, h.max_timestamp),
            (0, 0, -1)
        );
        let mut at_7 = m.clone();
        at_7[..16].copy_from_slice(&patched_prefix(&m, 7, 3));
        let h = validate(&at_7, MAX).expect("valid");
        assert_eq!((h.base_offset, h.next_offset(), h.last_offset()), (7, 7, 6));
        assert_eq!(
            marker::parse(&m),
            Some((control::RAFT_CONF_CHANGE, &b"change"[..]))
        );
        assert_eq!(marker::parse(&build_batch(1, &[b"x"])), None);
        let legacy = build_control_batch(-1, control::RAFT_NOOP, &[]);
        assert_eq!(
            marker::parse(&legacy),
            None,
            "old raft control batches are not markers"
        );
        for cut in 0..m.len() {
            let _ = marker::parse(&m[..cut]);
        }
        // Only a control batch without records may take no offset.
        let mut data = build_batch(1, &[]);
        data[23..27].copy_from_slice(&(-1i32).to_be_bytes());
        let crc = compute_crc(&data);
        data[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(
            validate(&data, MAX),
            Err(BatchError::NegativeLastOffsetDelta(-1))
        );
    }

    #[test]
    fn max_timestamp_is_rewritten_with_its_crc() {
        let b =
            VerifiedBatch::new(Bytes::from(build_batch(1000, &[b"a", b"b"])), MAX).expect("valid");
        let same = b.clone().with_max_timestamp(1000, false);
        assert!(same.is_same(b.bytes()), "nothing to change: no copy");
        let fixed = b.clone().with_max_timestamp(1234, false);
        let h = validate(fixed.bytes(), MAX).expect("CRC recomputed");
        assert_eq!(h, *fixed.header());
        assert_eq!((h.max_timestamp, h.is_log_append_time()), (1234, false));
        assert_eq!(fixed.bytes()[61..], b.bytes()[61..], "records untouched");
        let stamped = fixed.with_max_timestamp(99, true);
        let h = validate(stamped.bytes(), MAX).expect("valid");
        assert_eq!((h.max_timestamp, h.is_log_append_time()), (99, true));
        let back = stamped.with_max_timestamp(1000, false);
        assert_eq!(back.bytes(), b.bytes());
    }

    #[test]
    fn header_fields_outside_crc_do_not_break_it() {
        let b = build_batch(5, &[b"x"]);
        let mut p = b.clone();
        p[..16].copy_from_slice(&patched_prefix(&b, 77, 9));
        let h = validate(&p, MAX).expect("still valid");
        assert_eq!(h.base_offset, 77);
        assert_eq!(h.partition_leader_epoch, 9);
    }

    #[test]
    fn each_check_has_its_error() {
        let b = build_batch(5, &[b"xyz"]);
        assert!(matches!(
            validate(&b[..30], MAX),
            Err(BatchError::Truncated { .. })
        ));
        assert!(matches!(validate(&b, 20), Err(BatchError::TooLarge { .. })));
        let mut m = b.clone();
        m[16] = 1;
        assert_eq!(validate(&m, MAX), Err(BatchError::BadMagic { magic: 1 }));
        let mut c = b.clone();
        let last = c.len() - 1;
        c[last] ^= 1;
        assert!(matches!(
            validate(&c, MAX),
            Err(BatchError::CrcMismatch { .. })
        ));
        let mut l = b.clone();
        l.push(0);
        assert!(matches!(
            validate(&l, MAX),
            Err(BatchError::LengthMismatch { .. })
        ));
        let mut s = b.clone();
        s[8..12].copy_from_slice(&10i32.to_be_bytes());
        assert!(matches!(
            validate(&s, MAX),
            Err(BatchError::LengthTooSmall { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Fuzz: arbitrary bytes never panic the parser or the iterator.
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = validate(&data, MAX);
            let _ = peek_total_len(&data);
            for item in iter_batches(&data, MAX) {
                let _ = item;
            }
        }

        /// Fuzz: mutations of valid batches never panic, and a mutation inside the checksummed
        /// range or of magic/length is always rejected.
        #[test]
        fn mutated_batches_are_rejected(
            n in 1usize..5,
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
        ) {
            let vals: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; i * 7]).collect();
            let refs: Vec<&[u8]> = vals.iter().map(|v| v.as_slice()).collect();
            let good = build_batch(42, &refs);
            let mut bad = good.clone();
            for (idx, bit) in &flips {
                let i = idx.index(bad.len());
                bad[i] ^= 1 << bit;
            }
            let result = validate(&bad, MAX);
            // Only baseOffset and partitionLeaderEpoch are outside the batch's own checks.
            if bad[8..12] != good[8..12] || bad[16..] != good[16..] {
                prop_assert!(result.is_err(), "mutation went undetected: {:?}", result);
            }
        }
    }
}
