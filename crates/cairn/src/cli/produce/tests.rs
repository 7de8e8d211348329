use super::*;
use cairn_protocol::kafka_protocol::records::RecordBatchDecoder;
use cairn_protocol::{validate_produce_records, RecordLimits};

#[test]
fn lines_split_at_the_first_separator() {
    let sep = Some(&b":"[..]);
    assert_eq!(split_line(b"k:v", sep), (Some(&b"k"[..]), &b"v"[..]));
    assert_eq!(split_line(b"k:v:w", sep), (Some(&b"k"[..]), &b"v:w"[..]));
    assert_eq!(
        split_line(b":v", sep),
        (Some(&b""[..]), &b"v"[..]),
        "empty key, not null"
    );
    assert_eq!(split_line(b"k:", sep), (Some(&b"k"[..]), &b""[..]));
    assert_eq!(
        split_line(b"no separator", sep),
        (None, &b"no separator"[..])
    );
    assert_eq!(split_line(b"", sep), (None, &b""[..]));
    assert_eq!(split_line(b"k:v", None), (None, &b"k:v"[..]));
    let multi = Some(&b"::"[..]);
    assert_eq!(
        split_line(b"a:b::c::d", multi),
        (Some(&b"a:b"[..]), &b"c::d"[..])
    );
    assert_eq!(split_line(b"a:b", multi), (None, &b"a:b"[..]));
    // Bytes need not be UTF-8.
    assert_eq!(
        split_line(b"\xff\t\xfe", Some(b"\t")),
        (Some(&b"\xff"[..]), &b"\xfe"[..])
    );
}

type LineResult = Result<Vec<u8>, String>;

fn lines(input: &[u8], max: usize) -> Vec<LineResult> {
    let mut got = Vec::new();
    read_lines(&mut std::io::Cursor::new(input.to_vec()), max, |item| {
        got.push(item);
        true
    });
    got
}

#[test]
fn stdin_lines_lose_their_endings() {
    let ok = |s: &str| Ok(s.as_bytes().to_vec());
    assert_eq!(
        lines(b"a\nb\r\n\nlast", 100),
        vec![ok("a"), ok("b"), ok(""), ok("last")]
    );
    assert_eq!(lines(b"a\n", 100), vec![ok("a")], "no phantom last line");
    assert_eq!(lines(b"", 100), Vec::<LineResult>::new());
    assert_eq!(lines(b"a\rb\n", 100), vec![ok("a\rb")], "a lone CR stays");
}

#[test]
fn long_lines_are_refused_with_their_number() {
    assert_eq!(
        lines(b"1234\n12345\r\n123456\nnever read\n", 5),
        vec![
            Ok(b"1234".to_vec()),
            Ok(b"12345".to_vec()),
            Err("line 3 is longer than --max-line-bytes (5 bytes)".to_string())
        ]
    );
    let long = vec![b'x'; 10_000];
    assert_eq!(
        lines(&long, 5),
        vec![Err(
            "line 1 is longer than --max-line-bytes (5 bytes)".to_string()
        )]
    );
}

fn records_of(pairs: &[(Option<&str>, &str)]) -> Vec<Record> {
    pairs
        .iter()
        .enumerate()
        .map(|(i, (key, value))| {
            record(
                key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
                Some(Bytes::copy_from_slice(value.as_bytes())),
                i as i64,
                1_700_000_000_000 + i as i64,
            )
        })
        .collect()
}

/// Batches are one v2 batch each, pass Cairn's own produce validation with every codec,
/// and decode back to the same keys and values.
#[test]
fn batches_pass_the_brokers_validation_with_every_codec() {
    let pairs = [
        (Some("k1"), "v1"),
        (None, "null key"),
        (Some(""), "empty key"),
        (Some("k4"), ""),
    ];
    let records = records_of(&pairs);
    for codec in [
        Codec::None,
        Codec::Gzip,
        Codec::Snappy,
        Codec::Lz4,
        Codec::Zstd,
    ] {
        let bytes = encode_batch(&records, compression(codec)).expect("encode");
        let validated = validate_produce_records(&bytes, &RecordLimits::default())
            .unwrap_or_else(|e| panic!("{codec:?}: {e}"));
        assert_eq!(validated.len(), 1, "{codec:?}: one batch");
        let set = RecordBatchDecoder::decode(&mut bytes.clone()).expect("decode");
        assert_eq!(set.compression, compression(codec));
        let got: Vec<(Option<Bytes>, Option<Bytes>, i64)> = set
            .records
            .iter()
            .map(|r| (r.key.clone(), r.value.clone(), r.offset))
            .collect();
        let want: Vec<(Option<Bytes>, Option<Bytes>, i64)> = records
            .iter()
            .map(|r| (r.key.clone(), r.value.clone(), r.offset))
            .collect();
        assert_eq!(got, want, "{codec:?}");
        for r in &set.records {
            assert_eq!((r.producer_id, r.producer_epoch), (-1, -1));
            assert!(!r.transactional && !r.control);
        }
        // The base sequence of a plain producer's batch is -1 (bytes 53..57).
        assert_eq!(&bytes[53..57], &(-1i32).to_be_bytes(), "{codec:?}");
        // Record count (bytes 57..61).
        assert_eq!(&bytes[57..61], &4i32.to_be_bytes(), "{codec:?}");
    }
}

#[test]
fn requests_are_bounded() {
    let batch = |partition: i32, size: usize| EncodedBatch {
        partition,
        records: 1,
        bytes: Bytes::from(vec![0u8; size]),
    };
    let batches = [
        batch(0, 400_000),
        batch(1, 400_000),
        batch(2, 400_000),
        batch(3, 2_000_000),
        batch(4, 10),
    ];
    let refs: Vec<&EncodedBatch> = batches.iter().collect();
    let split: Vec<Vec<i32>> = split_requests(&refs)
        .iter()
        .map(|r| r.iter().map(|b| b.partition).collect())
        .collect();
    assert_eq!(split, vec![vec![0, 1], vec![2], vec![3], vec![4]]);
    assert!(split_requests(&[]).is_empty());
}

#[test]
fn produce_request_names_topic_and_partitions() {
    let data = [(2, Bytes::from_static(b"x")), (0, Bytes::from_static(b"y"))];
    let request = produce_request(9, "orders", -1, 1000, &data);
    assert_eq!((request.acks, request.timeout_ms), (-1, 1000));
    assert_eq!(request.topic_data.len(), 1);
    assert_eq!(request.topic_data[0].name.0.as_str(), "orders");
    let partitions: Vec<i32> = request.topic_data[0]
        .partition_data
        .iter()
        .map(|p| p.index)
        .collect();
    assert_eq!(partitions, [2, 0]);
}

#[test]
fn reading_stops_when_the_sender_is_gone() {
    let mut calls = 0;
    read_lines(&mut std::io::Cursor::new(b"a\nb\nc\n".to_vec()), 10, |_| {
        calls += 1;
        false
    });
    assert_eq!(calls, 1);
}
