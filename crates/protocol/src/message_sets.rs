//! Message formats 0 and 1 ("message sets"): what clients written before Kafka 0.11 send in
//! Produce v0–v2 and expect in Fetch v0–v3, converted to and from the v2 record batches
//! Cairn stores. Kafka 4 dropped these versions (KIP-896); Cairn keeps them because the Go
//! client Debian ships (segmentio/kafka-go 0.2.1) speaks nothing newer.
//!
//! ```text
//! message set  [offset int64][size int32][message] ...
//! message v0   crc int32 | magic int8 (0) | attributes int8 | key bytes | value bytes
//! message v1   crc int32 | magic int8 (1) | attributes int8 | timestamp int64 | key | value
//!              bytes = int32 length (-1: null) + data; crc = CRC-32 (IEEE) of magic..end
//!              attributes: bits 0-2 codec (1 gzip, 2 snappy, 3 lz4), bit 3 log-append time
//! ```
//!
//! A compressed message is a *wrapper* whose value is an inner message set, compressed. In
//! format 1 the inner offsets are relative (0, 1, ...) and the wrapper carries the absolute
//! offset of the last one; a log-append-time wrapper's timestamp is every inner message's.
//!
//! **Up-conversion** (Produce): every message, wrappers decompressed (one level, as Kafka),
//! becomes a record of one v2 batch compressed with the wrapper's codec, which then passes
//! the same validation as any produced batch. Decompression counts against
//! `max_uncompressed_bytes`, like a v2 batch's. Format 0 has no timestamps: its records get
//! -1, Kafka's `NO_TIMESTAMP`.
//!
//! **Down-conversion** (Fetch): the records of stored batches become uncompressed messages of
//! the asked format (record headers, which the old formats lack, are dropped; control
//! batches are skipped), up to a byte limit, but always at least one message, as KIP-74 asks
//! of any fetch.

use bytes::{Bytes, BytesMut};
use cairn_storage::batch;
use kafka_protocol::records::{
    Compression as KpCompression, Record, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType,
};

use crate::decompress::{self, Compression, Source, SourceError};
use crate::records::{RecordError, RecordLimits};

/// Bytes of a message-set entry before its message: offset and size.
const ENTRY_OVERHEAD: usize = 12;
/// Attribute bit: the timestamp is the broker's append time (format 1).
const ATTR_LOG_APPEND_TIME: u8 = 1 << 3;

/// One message of a message set, decompressed out of its wrapper if it had one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Message {
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
}

fn corrupt(position: usize, reason: impl Into<String>) -> RecordError {
    RecordError::LegacyMessage {
        position,
        reason: reason.into(),
    }
}

/// A cursor over message-set bytes.
struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let out = self.data.get(self.at..end)?;
        self.at = end;
        Some(out)
    }

    fn i64(&mut self) -> Option<i64> {
        self.take(8)
            .map(|b| i64::from_be_bytes(b.try_into().unwrap_or([0; 8])))
    }

    fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_be_bytes(b.try_into().unwrap_or([0; 4])))
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn bytes(&mut self) -> Option<Option<&'a [u8]>> {
        let len = self.i32()?;
        if len < 0 {
            return Some(None);
        }
        self.take(len as usize).map(Some)
    }
}

/// Parses a message set into `out`. `depth` 0 is the request's own set (wrappers allowed),
/// 1 a wrapper's inner set. `position` is where `data` starts in the request's records.
fn parse_set(
    data: &[u8],
    position: usize,
    depth: u8,
    limits: &RecordLimits,
    budget: &mut u64,
    codec_seen: &mut Option<Compression>,
    out: &mut Vec<Message>,
) -> Result<(), RecordError> {
    let mut c = Cursor { data, at: 0 };
    while c.at < data.len() {
        let start = position + c.at;
        let (_offset, size) = match (c.i64(), c.i32()) {
            (Some(o), Some(s)) => (o, s),
            _ => return Err(corrupt(start, "message set ends inside an entry header")),
        };
        let size = usize::try_from(size).map_err(|_| corrupt(start, "negative message size"))?;
        let body = c
            .take(size)
            .ok_or_else(|| corrupt(start, "message set ends inside a message"))?;
        parse_message(
            body,
            start + ENTRY_OVERHEAD,
            depth,
            limits,
            budget,
            codec_seen,
            out,
        )?;
    }
    Ok(())
}

fn parse_message(
    body: &[u8],
    position: usize,
    depth: u8,
    limits: &RecordLimits,
    budget: &mut u64,
    codec_seen: &mut Option<Compression>,
    out: &mut Vec<Message>,
) -> Result<(), RecordError> {
    let mut m = Cursor { data: body, at: 0 };
    let crc = m
        .i32()
        .ok_or_else(|| corrupt(position, "message shorter than its CRC"))? as u32;
    let computed = crc32fast::hash(&body[4..]);
    if crc != computed {
        return Err(corrupt(
            position,
            format!("message CRC {crc:#010x}, computed {computed:#010x}"),
        ));
    }
    let magic = m.u8().ok_or_else(|| corrupt(position, "no magic byte"))?;
    if magic > 1 {
        return Err(corrupt(position, format!("magic {magic} in a message set")));
    }
    let attributes = m.u8().ok_or_else(|| corrupt(position, "no attributes"))?;
    let timestamp = if magic == 1 {
        m.i64().ok_or_else(|| corrupt(position, "no timestamp"))?
    } else {
        -1
    };
    let (key, value) = match (m.bytes(), m.bytes()) {
        (Some(k), Some(v)) if m.at == body.len() => (k, v),
        (Some(_), Some(_)) => return Err(corrupt(position, "bytes after the message's value")),
        _ => return Err(corrupt(position, "message ends inside its key or value")),
    };
    let codec_id = attributes & 0x07;
    if codec_id == 0 {
        *budget = budget
            .checked_sub(body.len() as u64)
            .ok_or(RecordError::DecompressionBomb {
                position,
                codec: Compression::None,
                limit: limits.max_uncompressed_bytes,
            })?;
        out.push(Message {
            timestamp,
            key: key.map(Bytes::copy_from_slice),
            value: value.map(Bytes::copy_from_slice),
        });
        return Ok(());
    }
    let codec = match Compression::from_id(codec_id) {
        Some(c @ (Compression::Gzip | Compression::Snappy | Compression::Lz4)) => c,
        _ => {
            return Err(RecordError::UnknownCompression {
                position,
                codec: codec_id,
            })
        }
    };
    if depth > 0 {
        return Err(corrupt(
            position,
            "a compressed message inside a compressed message",
        ));
    }
    codec_seen.get_or_insert(codec);
    let compressed =
        value.ok_or_else(|| corrupt(position, "a compressed message without a value"))?;
    let inner = inflate(codec, compressed, position, limits, budget)?;
    let first = out.len();
    parse_set(&inner, position, 1, limits, budget, codec_seen, out)?;
    if magic == 1 && attributes & ATTR_LOG_APPEND_TIME != 0 {
        for msg in &mut out[first..] {
            msg.timestamp = timestamp;
        }
    }
    Ok(())
}

/// Decompresses a wrapper's value, counting against (and bounded by) `budget`.
fn inflate(
    codec: Compression,
    data: &[u8],
    position: usize,
    limits: &RecordLimits,
    budget: &mut u64,
) -> Result<Vec<u8>, RecordError> {
    let bounded = RecordLimits {
        max_uncompressed_bytes: *budget,
        ..*limits
    };
    let fail = |e: SourceError| match e {
        SourceError::Budget { .. } => RecordError::DecompressionBomb {
            position,
            codec,
            limit: limits.max_uncompressed_bytes,
        },
        SourceError::Codec(source) => RecordError::Decompression {
            position,
            codec,
            source,
        },
    };
    let mut src = decompress::open(codec, data, &bounded).map_err(fail)?;
    let mut out = Vec::new();
    while let Some(b) = src.byte().map_err(fail)? {
        out.push(b);
    }
    *budget -= out.len() as u64;
    Ok(out)
}

/// Up-converts the message set of one partition of a Produce v0–v2 request into one v2
/// record batch (compressed as its wrappers were), to be validated like any produced batch.
pub fn upconvert(message_set: &[u8], limits: &RecordLimits) -> Result<Bytes, RecordError> {
    if message_set.is_empty() {
        return Err(RecordError::NoBatches);
    }
    let mut budget = limits.max_uncompressed_bytes;
    let mut codec = None;
    let mut messages = Vec::new();
    parse_set(
        message_set,
        0,
        0,
        limits,
        &mut budget,
        &mut codec,
        &mut messages,
    )?;
    if messages.is_empty() {
        return Err(RecordError::NoBatches);
    }
    let records: Vec<Record> = messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // No producer id: base sequence -1. kafka-protocol starts a new batch where
            // `offset - sequence` changes, so the sequence follows the offset.
            sequence: (i as i32).wrapping_sub(1),
            timestamp: m.timestamp,
            key: m.key,
            value: m.value,
            headers: Default::default(),
        })
        .collect();
    let compression = match codec {
        Some(Compression::Gzip) => KpCompression::Gzip,
        Some(Compression::Snappy) => KpCompression::Snappy,
        Some(Compression::Lz4) => KpCompression::Lz4,
        _ => KpCompression::None,
    };
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut out,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .map_err(|e| corrupt(0, format!("cannot re-encode the messages as a batch: {e}")))?;
    Ok(out.freeze())
}

/// Writes one message of format `magic` at `offset` into `out`.
fn put_message(
    out: &mut BytesMut,
    magic: u8,
    offset: i64,
    log_append_time: bool,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) {
    let mut body =
        Vec::with_capacity(22 + key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len));
    body.push(magic);
    body.push(if magic == 1 && log_append_time {
        ATTR_LOG_APPEND_TIME
    } else {
        0
    });
    if magic == 1 {
        body.extend_from_slice(&timestamp.to_be_bytes());
    }
    for field in [key, value] {
        match field {
            None => body.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(b) => {
                body.extend_from_slice(&(b.len() as i32).to_be_bytes());
                body.extend_from_slice(b);
            }
        }
    }
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    out.extend_from_slice(&body);
}

/// Down-converts stored v2 batches (whole, as a Fetch read them) into a message set of
/// format `magic` (0 for Fetch v0–v1, 1 for v2–v3), uncompressed: at most `max_bytes`, but at
/// least one message. Control batches are skipped, record headers dropped. A batch that does
/// not decode ends the conversion there (what came before is still answered).
pub fn downconvert(batches: &[u8], magic: u8, max_bytes: usize) -> Bytes {
    let mut out = BytesMut::new();
    let mut at = 0usize;
    while let Some((_, len)) = batch::peek_total_len(&batches[at..]) {
        let Ok(len) = usize::try_from(len) else { break };
        let Some(one) = batches.get(at..at.saturating_add(len)) else {
            break;
        };
        at += len;
        let Ok(header) = batch::parse_header(one) else {
            break;
        };
        if header.is_control() {
            continue;
        }
        let mut buf = Bytes::copy_from_slice(one);
        let Ok(set) = RecordBatchDecoder::decode(&mut buf) else {
            tracing::warn!(
                offset = header.base_offset,
                "cannot down-convert a stored batch"
            );
            break;
        };
        for r in &set.records {
            let log_append = header.is_log_append_time();
            let timestamp = if log_append {
                header.max_timestamp
            } else {
                r.timestamp
            };
            let before = out.len();
            put_message(
                &mut out,
                magic,
                r.offset,
                log_append,
                timestamp,
                r.key.as_deref(),
                r.value.as_deref(),
            );
            if before > 0 && out.len() > max_bytes {
                out.truncate(before);
                return out.freeze();
            }
        }
        if at >= batches.len() {
            break;
        }
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> RecordLimits {
        RecordLimits::default()
    }

    /// A test message: key, value, timestamp.
    type TestMessage<'a> = (Option<&'a [u8]>, &'a [u8], i64);

    /// A message set of messages in format `magic`.
    fn set(magic: u8, messages: &[TestMessage<'_>]) -> Vec<u8> {
        let mut out = BytesMut::new();
        for (i, (k, v, ts)) in messages.iter().enumerate() {
            put_message(&mut out, magic, i as i64, false, *ts, *k, Some(v));
        }
        out.to_vec()
    }

    fn wrap(magic: u8, codec: u8, inner: &[u8]) -> Vec<u8> {
        let compressed = match codec {
            1 => {
                use std::io::Write;
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(inner).expect("gzip");
                e.finish().expect("gzip")
            }
            2 => snap::raw::Encoder::new()
                .compress_vec(inner)
                .expect("snappy"),
            _ => unreachable!(),
        };
        let mut body = vec![magic, codec];
        if magic == 1 {
            body.extend_from_slice(&7i64.to_be_bytes());
        }
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&(compressed.len() as i32).to_be_bytes());
        body.extend_from_slice(&compressed);
        let mut out = Vec::new();
        out.extend_from_slice(&1i64.to_be_bytes());
        out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn records_of(batch: &Bytes) -> Vec<(Option<Bytes>, Option<Bytes>, i64)> {
        let mut b = batch.clone();
        RecordBatchDecoder::decode(&mut b)
            .expect("a valid batch")
            .records
            .into_iter()
            .map(|r| (r.key, r.value, r.timestamp))
            .collect()
    }

    #[test]
    fn plain_and_compressed_sets_become_one_valid_batch() {
        let plain = set(1, &[(Some(b"k"), b"v1", 100), (None, b"v2", 200)]);
        let batch = upconvert(&plain, &limits()).expect("converts");
        crate::validate_produce_records(&batch, &limits()).expect("validates as v2");
        assert_eq!(
            records_of(&batch),
            vec![
                (
                    Some(Bytes::from_static(b"k")),
                    Some(Bytes::from_static(b"v1")),
                    100
                ),
                (None, Some(Bytes::from_static(b"v2")), 200),
            ]
        );
        for codec in [1u8, 2] {
            let wrapped = wrap(1, codec, &plain);
            let batch = upconvert(&wrapped, &limits()).expect("converts");
            let produced = crate::validate_produce_records(&batch, &limits()).expect("valid");
            assert_eq!(produced[0].header().compression(), codec);
            assert_eq!(records_of(&batch).len(), 2);
        }
        // Format 0: no timestamps.
        let old = set(0, &[(None, b"x", 0)]);
        assert_eq!(
            records_of(&upconvert(&old, &limits()).expect("v0"))[0].2,
            -1
        );
    }

    #[test]
    fn damage_is_refused_with_the_position() {
        let mut bad_crc = set(1, &[(None, b"v", 1)]);
        let last = bad_crc.len() - 1;
        bad_crc[last] ^= 1;
        assert!(matches!(
            upconvert(&bad_crc, &limits()),
            Err(RecordError::LegacyMessage { position: 12, .. })
        ));
        let good = set(1, &[(None, b"v", 1)]);
        for cut in 1..good.len() {
            assert!(upconvert(&good[..cut], &limits()).is_err(), "cut at {cut}");
        }
        let tight = RecordLimits {
            max_uncompressed_bytes: 10,
            ..limits()
        };
        let big = set(1, &[(None, &[0u8; 100], 1)]);
        assert!(matches!(
            upconvert(&wrap(1, 1, &big), &tight),
            Err(RecordError::DecompressionBomb { .. })
        ));
        assert!(matches!(
            upconvert(&big, &tight),
            Err(RecordError::DecompressionBomb { .. })
        ));
    }

    #[test]
    fn stored_batches_down_convert_within_the_limit() {
        let batch = upconvert(
            &set(
                1,
                &[
                    (Some(b"a"), b"1", 10),
                    (None, b"22", 20),
                    (None, b"333", 30),
                ],
            ),
            &limits(),
        )
        .expect("batch");
        let mut stored = batch.to_vec();
        stored[..8].copy_from_slice(&40i64.to_be_bytes()); // base offset 40
        let v1 = downconvert(&stored, 1, usize::MAX);
        // Back through up-conversion: the same records.
        let again = upconvert(&v1, &limits()).expect("a valid message set");
        assert_eq!(records_of(&again), records_of(&batch));
        assert_eq!(i64::from_be_bytes(v1[..8].try_into().expect("8")), 40);
        let v0 = downconvert(&stored, 0, usize::MAX);
        assert_eq!(v0[16], 0, "magic 0");
        // A limit smaller than one message still returns one.
        let one = downconvert(&stored, 1, 1);
        assert_eq!(
            records_of(&upconvert(&one, &limits()).expect("one")).len(),
            1
        );
        // Markers and other control batches are not messages.
        let marker = batch::marker::build(batch::control::RAFT_NOOP, &[]);
        assert!(downconvert(&marker, 1, usize::MAX).is_empty());
    }
}
