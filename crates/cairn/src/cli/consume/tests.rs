use super::*;
use crate::cli::record_format::Printer;
use bytes::{BufMut as _, BytesMut};
use cairn_protocol::kafka_protocol::records::{
    Compression, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

fn record(offset: i64, value: &str, control: bool) -> Record {
    Record {
        transactional: false,
        control,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        sequence: (-1i32).wrapping_add(offset as i32),
        timestamp: 1_700_000_000_000,
        key: Some(Bytes::from(format!("k{offset}"))),
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        headers: Default::default(),
    }
}

/// One batch holding offsets `first..first + n`.
fn batch(first: i64, n: i64, control: bool, compression: Compression) -> Bytes {
    let records: Vec<Record> = (first..first + n)
        .map(|o| record(o, &format!("v{o}"), control))
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode");
    buf.freeze()
}

fn concat(parts: &[Bytes]) -> Bytes {
    let mut buf = BytesMut::new();
    for p in parts {
        buf.put_slice(p);
    }
    buf.freeze()
}

fn cursor(position: i64, end: Option<i64>) -> Cursor {
    Cursor {
        position,
        end,
        max_bytes: PARTITION_FETCH_BYTES,
        skip_until_timestamp: None,
    }
}

/// Runs `take_records` and returns the offsets emitted and the batch count.
fn take(records: &Bytes, cursor: &mut Cursor, remaining: &mut Option<u64>) -> (Vec<i64>, usize) {
    let mut seen = Vec::new();
    let batches = take_records(records, cursor, remaining, &mut |r| {
        seen.push(r.offset);
        Ok(())
    })
    .expect("take");
    (seen, batches)
}

#[test]
fn records_from_the_position_on() {
    let data = concat(&[
        batch(0, 3, false, Compression::None),
        batch(3, 3, false, Compression::Gzip),
        batch(6, 2, false, Compression::Zstd),
    ]);
    let mut c = cursor(4, None);
    let (seen, batches) = take(&data, &mut c, &mut None);
    assert_eq!(
        seen,
        [4, 5, 6, 7],
        "offsets before the position are skipped"
    );
    assert_eq!(batches, 3);
    assert_eq!(c.position, 8);
}

#[test]
fn stops_at_the_end_and_at_the_count() {
    let data = concat(&[
        batch(0, 5, false, Compression::None),
        batch(5, 5, false, Compression::Lz4),
    ]);
    let mut c = cursor(0, Some(7));
    let (seen, _) = take(&data, &mut c, &mut None);
    assert_eq!(seen, (0..7).collect::<Vec<_>>());
    assert_eq!(c.position, 7);
    assert!(c.done());

    let mut c = cursor(2, None);
    let mut remaining = Some(4);
    let (seen, _) = take(&data, &mut c, &mut remaining);
    assert_eq!(seen, [2, 3, 4, 5]);
    assert_eq!((remaining, c.position), (Some(0), 6));
}

#[test]
fn control_batches_are_skipped_but_passed() {
    let data = concat(&[
        batch(0, 2, false, Compression::None),
        batch(2, 1, true, Compression::None),
        batch(3, 2, false, Compression::Snappy),
    ]);
    let mut c = cursor(0, Some(5));
    let (seen, batches) = take(&data, &mut c, &mut None);
    assert_eq!(seen, [0, 1, 3, 4]);
    assert_eq!(batches, 3);
    assert!(c.done());

    // A partition whose last batch is a control batch still reaches its end.
    let mut c = cursor(0, Some(3));
    let (seen, _) = take(
        &data.slice(..data.len() - batch(3, 2, false, Compression::Snappy).len()),
        &mut c,
        &mut None,
    );
    assert_eq!(seen, [0, 1]);
    assert_eq!(c.position, 3);
    assert!(c.done());
}

#[test]
fn a_trailing_partial_batch_waits_for_the_next_fetch() {
    let first = batch(10, 2, false, Compression::None);
    let second = batch(12, 2, false, Compression::None);
    let data = concat(&[first.clone(), second.slice(..second.len() - 1)]);
    let mut c = cursor(10, None);
    let (seen, batches) = take(&data, &mut c, &mut None);
    assert_eq!((seen, batches, c.position), (vec![10, 11], 1, 12));
    // Only a fragment (even of the 12-byte prefix): nothing consumed.
    for cut in [5, 20] {
        let mut c = cursor(12, None);
        let (seen, batches) = take(&second.slice(..cut), &mut c, &mut None);
        assert_eq!((seen.len(), batches, c.position), (0, 0, 12));
    }
}

#[test]
fn corrupt_batches_are_errors() {
    let good = batch(0, 2, false, Compression::None);
    let mut bad_length = BytesMut::from(&good[..]);
    bad_length[8..12].copy_from_slice(&5i32.to_be_bytes());
    let mut bad_magic = BytesMut::from(&good[..]);
    bad_magic[16] = 1;
    let mut bad_crc = BytesMut::from(&good[..]);
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xff;
    for (bytes, expected) in [
        (bad_length.freeze(), "declares length 5"),
        (bad_magic.freeze(), "format v1"),
        (bad_crc.freeze(), "record batch at offset 0"),
    ] {
        let err = take_records(&bytes, &mut cursor(0, None), &mut None, &mut |_| Ok(()))
            .expect_err(expected);
        assert!(format!("{err:#}").contains(expected), "{err:#}");
    }
}

#[test]
fn timestamp_start_skips_earlier_records_of_the_batch() {
    // Timestamps 1000, 2000, ... 5000; then 1500 (out of order, after the start).
    let mut records: Vec<Record> = (0..5).map(|o| record(o, "v", false)).collect();
    records.push(record(5, "v", false));
    for (r, ts) in records.iter_mut().zip([1000, 2000, 3000, 4000, 5000, 1500]) {
        r.timestamp = ts;
    }
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode");
    let data = buf.freeze();
    let mut c = cursor(0, None);
    c.skip_until_timestamp = Some(2500);
    let (seen, _) = take(&data, &mut c, &mut None);
    assert_eq!(
        seen,
        [2, 3, 4, 5],
        "like Kafka: from the first record at or after T on"
    );
    assert_eq!(c.skip_until_timestamp, None);
    // Skipped records move the position, so the next fetch does not repeat them.
    let mut c = cursor(0, None);
    c.skip_until_timestamp = Some(9000);
    let (seen, _) = take(&data, &mut c, &mut None);
    assert!(seen.is_empty());
    assert_eq!((c.position, c.skip_until_timestamp), (6, Some(9000)));
}

#[test]
fn output_lines() {
    let mut out = Vec::new();
    let mut r = record(0, "hello", false);
    let plain = |sep: Option<&[u8]>| Printer::Plain {
        key_sep: sep.map(<[u8]>::to_vec),
    };
    plain(None).write(&mut out, "t", 0, &r).expect("write");
    plain(Some(b"\t"))
        .write(&mut out, "t", 0, &r)
        .expect("write");
    r.key = None;
    r.value = Some(Bytes::from_static(b"bad \xff utf-8"));
    plain(Some(b"::"))
        .write(&mut out, "t", 0, &r)
        .expect("write");
    r.value = None;
    plain(None).write(&mut out, "t", 0, &r).expect("write");
    assert_eq!(
        String::from_utf8(out).expect("utf-8"),
        "hello\nk0\thello\n::bad \u{fffd} utf-8\n\n"
    );
}

#[test]
fn fetch_request_is_sessionless_and_read_uncommitted() {
    let request = fetch_request(12, "t", &[(1, 42, 1024)], 250);
    assert_eq!(
        (
            request.max_wait_ms,
            request.min_bytes,
            request.isolation_level
        ),
        (250, 1, 0)
    );
    assert_eq!((request.session_id, request.session_epoch), (0, -1));
    assert_eq!(request.replica_id.0, -1);
    let p = &request.topics[0].partitions[0];
    assert_eq!(
        (p.partition, p.fetch_offset, p.partition_max_bytes),
        (1, 42, 1024)
    );
}
