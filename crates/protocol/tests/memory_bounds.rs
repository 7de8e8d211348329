//! Hostile input costs little memory: requests declaring huge arrays, and decompression
//! bombs of about 1 GiB, are refused after allocating a few MiB at most.
//!
//! The counting allocator is process-wide, so the tests of this binary take turns.

use std::alloc::System;
use std::sync::Mutex;

use bytes::{BufMut, Bytes, BytesMut};
use cairn_protocol::kafka_protocol::messages::ApiKey;
use cairn_protocol::records::{validate_produce_records, Compression, RecordError, RecordLimits};
use cairn_protocol::request::{parse_request, MalformedReason, RequestError, ShapeError};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

static TURN: Mutex<()> = Mutex::new(());

const MIB: usize = 1024 * 1024;

/// What a call held at once, at most, measured two ways.
#[derive(Debug, Clone, Copy)]
struct Held {
    /// Rust allocations: every byte allocated or grown by reallocation, frees ignored.
    rust: usize,
    /// Growth of the process's peak resident set (Linux), which also sees what the C
    /// codecs (liblz4, libzstd) `malloc`, and only memory actually touched; 0 where it
    /// cannot be measured.
    rss: usize,
}

fn measured<T>(f: impl FnOnce() -> T) -> (T, Held) {
    let rss_before = proc_status_kib("VmRSS");
    let hwm_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let region = Region::new(GLOBAL);
    let out = f();
    let s = region.change();
    let rust = s.bytes_allocated + s.bytes_reallocated.max(0) as usize;
    let rss = match (hwm_reset, rss_before, proc_status_kib("VmHWM")) {
        (true, Some(before), Some(peak)) => peak.saturating_sub(before) * 1024,
        _ => {
            eprintln!("peak RSS not measurable here; Rust allocations only");
            0
        }
    };
    (out, Held { rust, rss })
}

/// A `kB` line of `/proc/self/status`.
fn proc_status_kib(field: &str) -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// The bytes before and after a record whose value is `value_len` zero bytes.
fn bomb_record(value_len: u64) -> (Vec<u8>, Vec<u8>) {
    let mut len_prefix = Vec::new();
    put_varint(&mut len_prefix, value_len as i64);
    let body_len = 3 + 1 + len_prefix.len() as u64 + value_len + 1;
    let mut prefix = Vec::new();
    put_varint(&mut prefix, body_len as i64);
    prefix.extend_from_slice(&[0, 0, 0]); // attributes, timestampDelta, offsetDelta
    put_varint(&mut prefix, -1); // null key
    prefix.extend_from_slice(&len_prefix);
    (prefix, vec![0]) // header count
}

/// A one-record batch around compressed records, with a valid CRC.
fn batch(codec: i16, records: &[u8]) -> Bytes {
    let mut b = Vec::new();
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((49 + records.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.push(2);
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&codec.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // lastOffsetDelta
    b.extend_from_slice(&1000i64.to_be_bytes());
    b.extend_from_slice(&1000i64.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes()); // recordsCount
    b.extend_from_slice(records);
    let crc = cairn_storage::batch::compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

/// zstd: concatenated frames decode as one stream, so 1 GiB of zeros is one small frame
/// repeated, built without ever holding the zeros.
fn zstd_bomb(total: u64) -> Vec<u8> {
    let (prefix, suffix) = bomb_record(total);
    let chunk = zstd::encode_all(&vec![0u8; MIB][..], 19).expect("zstd");
    let mut out = zstd::encode_all(&prefix[..], 3).expect("zstd");
    for _ in 0..total / MIB as u64 {
        out.extend_from_slice(&chunk);
    }
    out.extend(zstd::encode_all(&suffix[..], 3).expect("zstd"));
    out
}

/// gzip: a full flush ends a deflate segment on a byte boundary with no references
/// backwards, so one compressed MiB of zeros can be repeated. The trailer's CRC is left
/// wrong: validation must stop long before it.
fn gzip_bomb(total: u64) -> Vec<u8> {
    use flate2::{Compress, FlushCompress};
    let (prefix, suffix) = bomb_record(total);
    let mut c = Compress::new(flate2::Compression::best(), false);
    let mut segment = |data: &[u8], flush| {
        let mut out = Vec::with_capacity(data.len() + 1024);
        c.compress_vec(data, &mut out, flush).expect("deflate");
        out
    };
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend(segment(&prefix, FlushCompress::Full));
    let zeros = segment(&vec![0u8; MIB], FlushCompress::Full);
    for _ in 0..total / MIB as u64 {
        out.extend_from_slice(&zeros);
    }
    out.extend(segment(&suffix, FlushCompress::Finish));
    out.extend_from_slice(&[0; 8]);
    out
}

/// lz4: one frame of independent 64 KiB blocks, the block of zeros repeated. The frame
/// header (with its checksum byte) is taken from liblz4's own encoder.
fn lz4_bomb(total: u64) -> Vec<u8> {
    let (prefix, suffix) = bomb_record(total);
    let empty = lz4::EncoderBuilder::new()
        .block_size(lz4::BlockSize::Max64KB)
        .block_mode(lz4::BlockMode::Independent)
        .checksum(lz4::ContentChecksum::NoChecksum)
        .block_checksum(lz4::liblz4::BlockChecksum::NoBlockChecksum)
        .build(Vec::new())
        .expect("lz4");
    let (frame, r) = empty.finish();
    r.expect("lz4");
    // magic, FLG (version 01, independent blocks, nothing else), BD (64 KiB), checksum.
    assert_eq!(&frame[..6], &[0x04, 0x22, 0x4d, 0x18, 0x60, 0x40]);
    let mut out = frame[..7].to_vec();
    let block = |data: &[u8]| {
        let c = lz4::block::compress(data, None, false).expect("lz4 block");
        let mut b = (c.len() as u32).to_le_bytes().to_vec();
        b.extend(c);
        b
    };
    out.extend(block(&prefix));
    let zeros = block(&vec![0u8; 64 * 1024]);
    for _ in 0..total / (64 * 1024) {
        out.extend_from_slice(&zeros);
    }
    out.extend(block(&suffix));
    out.extend_from_slice(&0u32.to_le_bytes()); // end mark
    out
}

fn expect_bomb(
    name: &str,
    codec: i16,
    compressed: Vec<u8>,
    limits: &RecordLimits,
    expected: Compression,
) {
    let b = batch(codec, &compressed);
    let (result, held) = measured(|| validate_produce_records(&b, limits));
    assert!(
        matches!(result, Err(RecordError::DecompressionBomb { codec: c, limit, .. }) if c == expected && limit == limits.max_uncompressed_bytes),
        "{name}: {result:?}"
    );
    eprintln!(
        "{name}: {} KiB compressed; refusing it held {held:?} bytes",
        b.len() / 1024
    );
    assert!(held.rust < MIB && held.rss < 16 * MIB, "{name}: {held:?}");
}

#[test]
fn zstd_bomb_of_one_gib() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let bomb = zstd_bomb(1 << 30);
    assert!(bomb.len() < 100 * 1024, "{} bytes", bomb.len());
    expect_bomb(
        "zstd 1 GiB",
        4,
        bomb,
        &RecordLimits::default(),
        Compression::Zstd,
    );
}

#[test]
fn gzip_bomb_of_one_gib() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let bomb = gzip_bomb(1 << 30);
    // Deflate tops out near 1000:1, so 1 GiB needs about 1 MiB: allow a larger batch.
    let limits = RecordLimits {
        max_batch_bytes: 4 << 20,
        ..RecordLimits::default()
    };
    expect_bomb("gzip 1 GiB", 1, bomb, &limits, Compression::Gzip);
}

#[test]
fn lz4_bomb_of_256_mib() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let bomb = lz4_bomb(256 << 20);
    // LZ4 tops out near 250:1.
    let limits = RecordLimits {
        max_batch_bytes: 4 << 20,
        ..RecordLimits::default()
    };
    expect_bomb("lz4 256 MiB", 3, bomb, &limits, Compression::Lz4);
}

/// A 2^31-element array declared in a tiny frame is refused before anything is reserved
/// for it (kafka-protocol alone would `Vec::with_capacity(2^31)`).
#[test]
fn huge_declared_arrays_allocate_nothing_large() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let header = |version: i16| {
        let mut b = BytesMut::new();
        b.put_i16(ApiKey::Metadata as i16);
        b.put_i16(version);
        b.put_i32(42);
        b.put_i16(-1); // null client id
        if version >= 9 {
            b.put_u8(0); // header tagged fields
        }
        b
    };
    let mut classic = header(1);
    classic.put_i32(i32::MAX);
    classic.put_slice(&[0; 16]);
    let mut compact = header(9);
    compact.put_slice(&[0x81, 0x80, 0x80, 0x80, 0x08]); // 2^31 + 1: 2^31 elements
    compact.put_slice(&[0; 16]);
    // CreateTopics v2: a real first element, then its configs array declares 2^31 - 1.
    let mut nested = BytesMut::new();
    nested.put_i16(ApiKey::CreateTopics as i16);
    nested.put_i16(2);
    nested.put_i32(43);
    nested.put_i16(-1);
    nested.put_i32(1); // topics: 1
    nested.put_i16(1);
    nested.put_u8(b't');
    nested.put_i32(1); // num_partitions
    nested.put_i16(1); // replication_factor
    nested.put_i32(0); // assignments: empty
    nested.put_i32(i32::MAX); // configs
    nested.put_slice(&[0; 8]);
    for frame in [classic, compact, nested] {
        let frame = frame.freeze();
        let (result, held) = measured(|| parse_request(frame.clone()));
        assert!(
            matches!(
                result,
                Err(RequestError::Malformed {
                    reason: MalformedReason::Shape(ShapeError::LengthExceedsFrame { .. }),
                    ..
                })
            ),
            "{result:?}"
        );
        // A reservation is not touched, so only the allocator sees it.
        assert!(held.rust < 64 * 1024, "{held:?}");
    }
}
