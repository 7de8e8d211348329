use super::*;
use bytes::BytesMut;
use cairn_storage::batch::{build_batch, compute_crc};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as KpCompression, Record as KpRecord, RecordBatchEncoder, RecordEncodeOptions,
    TimestampType,
};
use proptest::prelude::*;
use std::io::Write;

const CODECS: [KpCompression; 5] = [
    KpCompression::None,
    KpCompression::Gzip,
    KpCompression::Snappy,
    KpCompression::Lz4,
    KpCompression::Zstd,
];

fn limits() -> RecordLimits {
    RecordLimits::default()
}

fn validate(b: &[u8]) -> Result<Vec<ProducedBatch>, RecordError> {
    validate_produce_records(&Bytes::copy_from_slice(b), &limits())
}

/// A batch built by kafka-protocol's encoder: keys, null keys, headers, repeated values.
fn kp_batch(codec: KpCompression, n: i64, producer_id: i64) -> Vec<u8> {
    let records: Vec<KpRecord> = (0..n)
        .map(|i| {
            let mut headers = IndexMap::new();
            headers.insert(
                StrBytes::from_static_str("trace"),
                Some(Bytes::from(format!("t-{i}"))),
            );
            if i % 2 == 0 {
                headers.insert(StrBytes::from_static_str("null"), None);
            }
            KpRecord {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch: if producer_id >= 0 { 0 } else { -1 },
                timestamp_type: TimestampType::Creation,
                offset: i,
                // kafka-protocol starts a new batch when offset - sequence changes.
                sequence: if producer_id >= 0 {
                    i as i32
                } else {
                    i as i32 - 1
                },
                timestamp: 1_700_000_000_000 + i,
                key: (i % 3 != 0).then(|| Bytes::from(format!("key-{i}"))),
                value: Some(Bytes::from(format!("value {i} ").repeat(20))),
                headers,
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: codec,
        },
    )
    .expect("encode");
    buf.to_vec()
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// One encoded record.
fn record(
    offset_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[(&[u8], Option<&[u8]>)],
) -> Vec<u8> {
    let mut body = vec![0u8]; // attributes
    put_varint(&mut body, 0); // timestampDelta
    put_varint(&mut body, offset_delta);
    for field in [key, value] {
        match field {
            None => put_varint(&mut body, -1),
            Some(b) => {
                put_varint(&mut body, b.len() as i64);
                body.extend_from_slice(b);
            }
        }
    }
    put_varint(&mut body, headers.len() as i64);
    for (k, v) in headers {
        put_varint(&mut body, k.len() as i64);
        body.extend_from_slice(k);
        match v {
            None => put_varint(&mut body, -1),
            Some(v) => {
                put_varint(&mut body, v.len() as i64);
                body.extend_from_slice(v);
            }
        }
    }
    let mut out = Vec::new();
    put_varint(&mut out, body.len() as i64);
    out.extend_from_slice(&body);
    out
}

/// Header fields a test may vary.
#[derive(Clone, Copy)]
struct Hdr {
    attributes: i16,
    count: i32,
    last_offset_delta: i32,
    producer_id: i64,
    base_sequence: i32,
}

impl Hdr {
    fn plain(count: i32) -> Hdr {
        Hdr {
            attributes: 0,
            count,
            last_offset_delta: count - 1,
            producer_id: -1,
            base_sequence: -1,
        }
    }
}

/// A batch around an already encoded (maybe compressed) records section, with a valid CRC.
fn batch(h: Hdr, records: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((HEADER_LEN - LOG_OVERHEAD + records.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.push(2);
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&h.attributes.to_be_bytes());
    b.extend_from_slice(&h.last_offset_delta.to_be_bytes());
    b.extend_from_slice(&1_000i64.to_be_bytes());
    b.extend_from_slice(&1_000i64.to_be_bytes());
    b.extend_from_slice(&h.producer_id.to_be_bytes());
    b.extend_from_slice(&(if h.producer_id >= 0 { 0i16 } else { -1 }).to_be_bytes());
    b.extend_from_slice(&h.base_sequence.to_be_bytes());
    b.extend_from_slice(&h.count.to_be_bytes());
    b.extend_from_slice(records);
    fix_crc(&mut b);
    b
}

fn fix_crc(b: &mut [u8]) {
    let crc = compute_crc(b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// The records of `n` simple records, uncompressed.
fn plain_records(n: i64) -> Vec<u8> {
    (0..n)
        .flat_map(|i| record(i, Some(b"k"), Some(b"value"), &[(b"h", Some(b"v"))]))
        .collect()
}

fn compress(codec: Compression, data: &[u8]) -> Vec<u8> {
    match codec {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).expect("gzip");
            e.finish().expect("gzip")
        }
        Compression::Snappy => snap::raw::Encoder::new()
            .compress_vec(data)
            .expect("snappy"),
        Compression::Lz4 => {
            let mut e = lz4::EncoderBuilder::new().build(Vec::new()).expect("lz4");
            e.write_all(data).expect("lz4");
            let (out, r) = e.finish();
            r.expect("lz4");
            out
        }
        Compression::Zstd => zstd::encode_all(data, 3).expect("zstd"),
    }
}

const COMPRESSED: [Compression; 4] = [
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn codec_attr(c: Compression) -> i16 {
    match c {
        Compression::None => 0,
        Compression::Gzip => 1,
        Compression::Snappy => 2,
        Compression::Lz4 => 3,
        Compression::Zstd => 4,
    }
}

#[test]
fn valid_batch_is_returned_zero_copy() {
    let input = Bytes::from(build_batch(5, &[b"a", b"bc", b""]));
    let out = validate_produce_records(&input, &limits()).expect("valid");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].bytes(), &input);
    assert_eq!(
        out[0].bytes().as_ptr(),
        input.as_ptr(),
        "a slice, not a copy"
    );
    assert_eq!(out[0].header().records_count, 3);
}

#[test]
fn kafka_protocol_batches_of_every_codec_pass() {
    for codec in CODECS {
        let b = kp_batch(codec, 25, -1);
        let out = validate(&b).unwrap_or_else(|e| panic!("{codec:?}: {e}"));
        assert_eq!(out[0].header().compression(), codec as u8);
        assert_eq!(out[0].header().records_count, 25);
        // Idempotent batches too.
        let idem = kp_batch(codec, 3, 7);
        let out = validate(&idem).unwrap_or_else(|e| panic!("{codec:?} idempotent: {e}"));
        assert_eq!(
            (out[0].header().producer_id, out[0].header().base_sequence),
            (7, 0)
        );
    }
}

/// librdkafka writes raw snappy (no xerial framing) and its own lz4/zstd/gzip streams; each
/// decoder takes streams from encoders other than kafka-protocol's.
#[test]
fn batches_from_other_encoders_pass() {
    let plain = plain_records(40);
    for codec in COMPRESSED {
        let h = Hdr {
            attributes: codec_attr(codec),
            ..Hdr::plain(40)
        };
        let b = batch(h, &compress(codec, &plain));
        validate(&b).unwrap_or_else(|e| panic!("{codec}: {e}"));
    }
}

#[test]
fn several_batches_of_a_plain_producer_pass() {
    let mut all = build_batch(1, &[b"x"]);
    all.extend(kp_batch(KpCompression::Zstd, 4, -1));
    all.extend(build_batch(2, &[b"y", b"z"]));
    let input = Bytes::from(all);
    let out = validate_produce_records(&input, &limits()).expect("valid");
    assert_eq!(out.len(), 3);
    let total: usize = out.iter().map(|b| b.bytes().len()).sum();
    assert_eq!(total, input.len());
    assert_eq!(out[2].header().records_count, 2);
}

#[test]
fn idempotent_producers_send_one_batch() {
    for (first, second) in [(7, -1), (-1, 7), (7, 7)] {
        let mut all = kp_batch(KpCompression::None, 1, first);
        all.extend(kp_batch(KpCompression::None, 1, second));
        assert!(matches!(
            validate(&all),
            Err(RecordError::MultipleBatches { producer_id: 7 })
        ));
    }
}

#[test]
fn framing_errors() {
    assert!(matches!(validate(&[]), Err(RecordError::NoBatches)));
    let good = build_batch(1, &[b"abc"]);
    for cut in [1, 11, 12, 16, 17, 60, 61, good.len() - 1] {
        assert!(
            matches!(validate(&good[..cut]), Err(RecordError::TruncatedBatch { position: 0, available, .. }) if available == cut),
            "cut at {cut}"
        );
    }
    let mut two = good.clone();
    two.extend_from_slice(&good[..30]);
    assert!(matches!(
        validate(&two),
        Err(RecordError::TruncatedBatch { position, available: 30, needed }) if position == good.len() && needed == good.len() as u64
    ));
    for magic in [0u8, 1] {
        let mut m = good.clone();
        m[16] = magic;
        assert!(
            matches!(validate(&m), Err(RecordError::UnsupportedMagic { magic: mm, .. }) if mm == magic as i8)
        );
    }
    let mut m3 = good.clone();
    m3[16] = 3;
    assert!(matches!(
        validate(&m3),
        Err(RecordError::Batch {
            source: BatchError::BadMagic { magic: 3 },
            ..
        })
    ));
    let mut small = good.clone();
    small[8..12].copy_from_slice(&10i32.to_be_bytes());
    assert!(matches!(
        validate(&small),
        Err(RecordError::Batch {
            source: BatchError::LengthTooSmall { declared: 10, .. },
            ..
        })
    ));
}

#[test]
fn header_errors() {
    let good = build_batch(1, &[b"abc"]);
    let mut crc = good.clone();
    *crc.last_mut().expect("non-empty") ^= 1;
    assert!(matches!(
        validate(&crc),
        Err(RecordError::Batch {
            source: BatchError::CrcMismatch { .. },
            ..
        })
    ));
    let tight = RecordLimits {
        max_batch_bytes: 70,
        ..limits()
    };
    assert!(matches!(
        validate_produce_records(&Bytes::from(good.clone()), &tight),
        Err(RecordError::Batch {
            source: BatchError::TooLarge { max: 70, .. },
            ..
        })
    ));
    let rec = plain_records(1);
    let control = Hdr {
        attributes: ATTR_CONTROL_BIT,
        ..Hdr::plain(1)
    };
    assert!(matches!(
        validate(&batch(control, &rec)),
        Err(RecordError::ControlBatch { position: 0 })
    ));
    let zero = Hdr {
        count: 0,
        last_offset_delta: 0,
        ..Hdr::plain(1)
    };
    assert!(matches!(
        validate(&batch(zero, &[])),
        Err(RecordError::RecordCount { count: 0, .. })
    ));
    let gap = Hdr {
        count: 1,
        last_offset_delta: 1,
        ..Hdr::plain(1)
    };
    assert!(matches!(
        validate(&batch(gap, &rec)),
        Err(RecordError::RecordCount {
            count: 1,
            last_offset_delta: 1,
            ..
        })
    ));
    let noseq = Hdr {
        producer_id: 3,
        base_sequence: -1,
        ..Hdr::plain(1)
    };
    assert!(matches!(
        validate(&batch(noseq, &rec)),
        Err(RecordError::MissingSequence {
            producer_id: 3,
            base_sequence: -1,
            ..
        })
    ));
    for codec in 5..=7 {
        let h = Hdr {
            attributes: codec,
            ..Hdr::plain(1)
        };
        assert!(
            matches!(validate(&batch(h, &rec)), Err(RecordError::UnknownCompression { codec: c, .. }) if i16::from(c) == codec)
        );
    }
}

const ATTR_CONTROL_BIT: i16 = cairn_storage::batch::ATTR_CONTROL;

fn fault(records: &[u8], count: i32) -> RecordFault {
    match validate(&batch(Hdr::plain(count), records)) {
        Err(RecordError::InvalidRecord { fault, .. }) => fault,
        other => panic!("expected a record fault, got {other:?}"),
    }
}

#[test]
fn record_faults() {
    // offsetDelta must be the index.
    assert_eq!(
        fault(
            &[record(0, None, None, &[]), record(5, None, None, &[])].concat(),
            2
        ),
        RecordFault::OffsetDelta { found: 5 }
    );
    // Negative record length.
    let mut neg = Vec::new();
    put_varint(&mut neg, -3);
    assert_eq!(fault(&neg, 1), RecordFault::NegativeLength { length: -3 });
    // Bad sizes: key -2, header count -1, header key -1.
    let bad_key = {
        let mut b = vec![0u8, 0, 0];
        put_varint(&mut b, -2);
        let mut r = Vec::new();
        put_varint(&mut r, b.len() as i64);
        r.extend(b);
        r
    };
    assert_eq!(
        fault(&bad_key, 1),
        RecordFault::BadSize {
            field: RecordField::Key,
            size: -2
        }
    );
    let mut hc = record(0, None, None, &[]);
    let last = hc.len() - 1;
    hc[last] = 1; // header count varint -1
    assert_eq!(
        fault(&hc, 1),
        RecordFault::BadSize {
            field: RecordField::HeaderCount,
            size: -1
        }
    );
    let mut hk = record(0, None, None, &[(b"", None)]);
    let at = hk.len() - 2; // header key length 0 -> -1
    hk[at] = 1;
    assert_eq!(
        fault(&hk, 1),
        RecordFault::BadSize {
            field: RecordField::HeaderKey,
            size: -1
        }
    );
    // A key longer than its record.
    let mut over = record(0, Some(b"kk"), None, &[]);
    over[4] = 40; // key length 20 in a record of 8 bytes
    assert_eq!(fault(&over, 1), RecordFault::Overrun { length: 8 });
    // A record declaring more than its fields take.
    let mut under = record(0, None, None, &[]);
    under[0] += 2; // zig-zag: length 6 -> 7
    under.push(0);
    assert_eq!(
        fault(&under, 1),
        RecordFault::Underrun { length: 7, used: 6 }
    );
    // Fewer records than the header declares.
    assert_eq!(
        fault(&record(0, None, None, &[]), 2),
        RecordFault::Truncated
    );
    // A record whose length runs past the data.
    let cut = record(0, Some(b"key"), Some(b"value"), &[]);
    assert_eq!(fault(&cut[..cut.len() - 2], 1), RecordFault::Truncated);
    // A 6-byte varint.
    assert_eq!(
        fault(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01], 1),
        RecordFault::Varint
    );
    // Trailing bytes after the declared records.
    let mut trailing = record(0, None, None, &[]);
    trailing.push(0);
    assert!(matches!(
        validate(&batch(Hdr::plain(1), &trailing)),
        Err(RecordError::TrailingBytes { position: 0 })
    ));
}

#[test]
fn compressed_faults() {
    let plain = plain_records(3);
    for codec in COMPRESSED {
        let h = Hdr {
            attributes: codec_attr(codec),
            ..Hdr::plain(3)
        };
        // Not compressed data at all, with a valid CRC.
        let garbage = batch(h, b"this is not compressed data at all, not in any codec");
        let result = validate(&garbage);
        let refused = match codec {
            // Raw snappy has no magic: garbage may decode into garbage records.
            Compression::Snappy => matches!(
                result,
                Err(RecordError::Decompression { .. } | RecordError::InvalidRecord { .. })
            ),
            _ => matches!(result, Err(RecordError::Decompression { codec: c, .. }) if c == codec),
        };
        assert!(refused, "{codec}: {result:?}");
        // Trailing records after the declared count.
        let two = Hdr {
            count: 2,
            last_offset_delta: 1,
            ..h
        };
        assert!(
            matches!(
                validate(&batch(two, &compress(codec, &plain))),
                Err(RecordError::TrailingBytes { .. })
            ),
            "{codec}"
        );
        // Fewer records than declared.
        let four = Hdr {
            count: 4,
            last_offset_delta: 3,
            ..h
        };
        assert!(
            matches!(
                validate(&batch(four, &compress(codec, &plain))),
                Err(RecordError::InvalidRecord {
                    index: 3,
                    fault: RecordFault::Truncated,
                    ..
                })
            ),
            "{codec}"
        );
    }
}

#[test]
fn decompression_budget_is_enforced_for_every_codec() {
    // One record whose 1 MiB value is zeros: tiny compressed, over a 64 KiB budget.
    let big = record(0, None, Some(&vec![0u8; 1 << 20]), &[]);
    let tight = RecordLimits {
        max_uncompressed_bytes: 64 * 1024,
        ..limits()
    };
    for codec in COMPRESSED {
        let h = Hdr {
            attributes: codec_attr(codec),
            ..Hdr::plain(1)
        };
        let b = Bytes::from(batch(h, &compress(codec, &big)));
        assert!(b.len() < 64 * 1024, "{codec}: {} bytes", b.len());
        assert!(
            matches!(validate_produce_records(&b, &tight), Err(RecordError::DecompressionBomb { limit: 65_536, codec: c, .. }) if c == codec),
            "{codec}"
        );
        validate_produce_records(&b, &limits())
            .unwrap_or_else(|e| panic!("{codec} within the default budget: {e}"));
    }
}

#[test]
fn zstd_window_is_capped() {
    let plain = plain_records(2);
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).expect("zstd");
    e.set_parameter(zstd::stream::raw::CParameter::WindowLog(27))
        .expect("window");
    e.write_all(&plain).expect("write");
    let data = e.finish().expect("finish");
    let h = Hdr {
        attributes: codec_attr(Compression::Zstd),
        ..Hdr::plain(2)
    };
    let b = Bytes::from(batch(h, &data));
    assert!(matches!(
        validate_produce_records(&b, &limits()),
        Err(RecordError::Decompression {
            codec: Compression::Zstd,
            ..
        })
    ));
    let wide = RecordLimits {
        zstd_window_log_max: 27,
        ..limits()
    };
    validate_produce_records(&b, &wide).expect("allowed with a wider cap");
}

#[test]
fn zstd_needs_produce_v7() {
    let z = validate(&kp_batch(KpCompression::Zstd, 2, -1)).expect("valid");
    assert!(matches!(
        check_produce_compression(6, &z),
        Err(RecordError::CompressionNotAllowed {
            codec: Compression::Zstd,
            api_version: 6
        })
    ));
    assert!(check_produce_compression(7, &z).is_ok());
    let g = validate(&kp_batch(KpCompression::Gzip, 2, -1)).expect("valid");
    assert!(check_produce_compression(3, &g).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Fuzz: arbitrary bytes never panic.
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = validate(&data);
    }

    /// Fuzz: arbitrary records sections (valid header and CRC) of every codec never panic.
    #[test]
    fn arbitrary_records_never_panic(codec in 0i16..5, count in 1i32..4, data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let h = Hdr { attributes: codec, ..Hdr::plain(count) };
        let _ = validate(&batch(h, &data));
    }

    /// Fuzz: valid batches of every codec with bytes of the records section flipped (and the
    /// CRC fixed, so the damage reaches the decompressors and the record walk) never panic.
    #[test]
    fn mutated_records_never_panic(
        codec in 0usize..5,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..5),
    ) {
        let mut b = kp_batch(CODECS[codec], 6, -1);
        let body = b.len() - HEADER_LEN;
        for (idx, x) in &flips {
            b[HEADER_LEN + idx.index(body)] ^= x | 1;
        }
        fix_crc(&mut b);
        let _ = validate(&b);
    }
}
