use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use cairn_protocol::kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use clap::Parser;

use super::consumer::{walk_batches, Cursor};
use super::producer::{
    batches_per_request, payload, records_per_batch, spread, Claims, Stamp, STAMP_BYTES,
};
use super::report::{self, Latency, Report};
use super::*;

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    Bench(BenchArgs),
}

fn parse(args: &[&str]) -> Result<BenchArgs, clap::Error> {
    Cli::try_parse_from(std::iter::once("cairn").chain(args.iter().copied())).map(|cli| {
        let Command::Bench(bench) = cli.command;
        bench
    })
}

#[test]
fn produce_defaults_and_flags() {
    let Ok(args) = parse(&["bench", "produce", "-t", "t"]) else {
        panic!("bench produce -t t parses");
    };
    let BenchCommand::Produce(p) = &args.command else {
        panic!("a produce bench");
    };
    assert_eq!(p.topic.name().ok(), Some("t"));
    assert_eq!(
        (p.record_size, p.acks, p.batch_size, p.in_flight),
        (1024, -1, 16_384, 5)
    );
    assert_eq!(
        p.limit.goal(Goal::Records(DEFAULT_RECORDS)),
        Goal::Records(100_000)
    );
    assert!(!p.json);

    let Ok(args) = parse(&[
        "bench",
        "produce",
        "-t",
        "t",
        "--records",
        "5000",
        "--record-size",
        "100",
        "--acks",
        "1",
        "--in-flight",
        "2",
        "-p",
        "3",
        "--create-partitions",
        "4",
        "--rate",
        "1000",
        "--json",
        "-b",
        "h:1",
    ]) else {
        panic!("bench produce with flags parses");
    };
    assert_eq!(args.client.bootstrap_server, "h:1");
    let BenchCommand::Produce(p) = &args.command else {
        panic!("a produce bench");
    };
    assert_eq!(p.limit.goal(Goal::AtEnd), Goal::Records(5000));
    assert_eq!(
        (
            p.record_size,
            p.acks,
            p.in_flight,
            p.partition,
            p.create_partitions,
            p.rate
        ),
        (100, 1, 2, Some(3), Some(4), Some(1000))
    );
    assert!(p.json);

    // The topic may also come first, as in `cairn produce TOPIC`.
    let Ok(args) = parse(&["bench", "e2e", "orders", "--duration", "1.5"]) else {
        panic!("bench e2e TOPIC parses");
    };
    let BenchCommand::E2e(p) = &args.command else {
        panic!("an e2e bench");
    };
    assert_eq!(p.topic.name().ok(), Some("orders"));
    assert_eq!(
        p.limit.goal(Goal::AtEnd),
        Goal::Duration(Duration::from_millis(1500))
    );
}

#[test]
fn invalid_command_lines_are_refused() {
    for bad in [
        &["bench", "produce"][..],
        &["bench", "produce", "-t", "a", "b"],
        &[
            "bench",
            "produce",
            "-t",
            "t",
            "--records",
            "1",
            "--duration",
            "1",
        ],
        &["bench", "produce", "-t", "t", "--records", "0"],
        &["bench", "produce", "-t", "t", "--duration", "0"],
        &["bench", "produce", "-t", "t", "--duration", "-1"],
        &["bench", "produce", "-t", "t", "--record-size", "0"],
        &["bench", "produce", "-t", "t", "--in-flight", "0"],
        &["bench", "produce", "-t", "t", "--in-flight", "65"],
        &["bench", "produce", "-t", "t", "--acks", "2"],
        &["bench", "produce", "-t", "t", "--create-partitions", "0"],
        &["bench", "consume", "-t", "t", "-o", "nowhere"],
        &["bench", "consume", "-t", "t", "--acks", "1"],
        &["bench", "nothing", "-t", "t"],
    ] {
        assert!(parse(bad).is_err(), "{bad:?} parses");
    }
    // e2e needs room for its stamp: clap accepts it, validate() explains.
    let Ok(args) = parse(&["bench", "e2e", "-t", "t", "--record-size", "8"]) else {
        panic!("e2e with a small record size parses");
    };
    let err = validate(&args.command).err().map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("--record-size 16")),
        "{err:?}"
    );
    let Ok(args) = parse(&["bench", "e2e", "-t", "t", "--record-size", "16"]) else {
        panic!("e2e with 16-byte records parses");
    };
    assert!(validate(&args.command).is_ok());
}

#[test]
fn consume_start_and_goal() {
    let Ok(args) = parse(&["bench", "consume", "-t", "t"]) else {
        panic!("bench consume parses");
    };
    let BenchCommand::Consume(c) = &args.command else {
        panic!("a consume bench");
    };
    assert_eq!(c.offset, None);
    assert_eq!(c.limit.goal(Goal::AtEnd), Goal::AtEnd);
    let Ok(args) = parse(&["bench", "consume", "-t", "t", "-o", "-10", "-n", "7"]) else {
        panic!("bench consume -o -10 parses");
    };
    let BenchCommand::Consume(c) = &args.command else {
        panic!("a consume bench");
    };
    assert_eq!(c.offset, Some(StartAt::FromEnd(10)));
    assert_eq!(c.limit.goal(Goal::AtEnd), Goal::Records(7));
}

#[test]
fn seconds() {
    assert_eq!(parse_seconds("2"), Ok(Duration::from_secs(2)));
    assert_eq!(parse_seconds("0.25"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_seconds("3s"), Ok(Duration::from_secs(3)));
    for bad in ["0", "-1", "abc", "NaN", "inf", "100000"] {
        assert!(parse_seconds(bad).is_err(), "{bad}");
    }
}

fn histogram_of(values_ms: impl IntoIterator<Item = u64>) -> hdrhistogram::Histogram<u64> {
    let mut h = report::histogram().expect("histogram");
    for ms in values_ms {
        report::record(&mut h, Duration::from_millis(ms));
    }
    h
}

#[test]
fn percentiles() {
    let h = histogram_of(1..=1000);
    let Some(l) = Latency::of(&h) else {
        panic!("a full histogram has percentiles");
    };
    assert_eq!(l.count, 1000);
    // 3 significant digits: within 0.1% (plus one bucket) of the exact value.
    let near = |got: u64, want_ms: u64| {
        let want = want_ms * 1000;
        got.abs_diff(want) <= want / 500 + 1
    };
    assert!(near(l.min, 1), "{l:?}");
    assert!(near(l.p50, 500), "{l:?}");
    assert!(near(l.p95, 950), "{l:?}");
    assert!(near(l.p99, 990), "{l:?}");
    assert!(near(l.p999, 999), "{l:?}");
    assert!(near(l.max, 1000), "{l:?}");
    assert!((l.mean - 500_500.0).abs() < 1000.0, "{l:?}");
    assert!(l.min <= l.p50 && l.p50 <= l.p95 && l.p95 <= l.p99);
    assert!(l.p99 <= l.p999 && l.p999 <= l.max);

    // One value: every percentile is that value, never above the maximum.
    let Some(one) = Latency::of(&histogram_of([7])) else {
        panic!("one value has percentiles");
    };
    assert_eq!((one.count, one.p50, one.p999), (1, one.max, one.max));
    // min is its bucket's lower edge, max its upper edge: 0.1% apart at most.
    assert!(one.min <= one.max && one.max - one.min <= 7, "{one:?}");

    assert_eq!(Latency::of(&histogram_of([])), None);

    // Merging adds counts; sub-microsecond latencies count as 1 µs, huge ones saturate.
    let mut tiny = report::histogram().expect("histogram");
    report::record(&mut tiny, Duration::from_nanos(10));
    report::record(&mut tiny, Duration::from_secs(100_000));
    let merged = report::merge([&h, &tiny]).expect("merge");
    assert_eq!(merged.len(), 1002);
    assert_eq!(merged.min(), 1);
}

#[test]
fn claims_hand_out_exactly_the_records_asked_for() {
    let start = Instant::now();
    let claims = Claims::new(Goal::Records(10), None, start);
    let mut got = Vec::new();
    while let Some(claim) = claims.claim(4) {
        got.push(claim);
    }
    assert_eq!(got, vec![(0, 4), (4, 4), (8, 2)]);
    assert_eq!(claims.claim(1), None);
    assert_eq!(claims.due(5), None, "no --rate: everything is due at once");

    // --rate 100: record 50 is due half a second in.
    let paced = Claims::new(Goal::Records(1000), Some(100), start);
    assert_eq!(paced.due(50), Some(start + Duration::from_millis(500)));

    // --duration: claims until the deadline, none after.
    let timed = Claims::new(Goal::Duration(Duration::from_secs(3600)), None, start);
    assert_eq!(timed.claim(3), Some((0, 3)));
    assert_eq!(timed.claim(3), Some((3, 3)));
    let over = Claims::new(Goal::Duration(Duration::from_nanos(1)), None, start);
    std::thread::sleep(Duration::from_millis(1));
    assert_eq!(over.claim(3), None);
}

#[test]
fn batches_hold_what_fits() {
    assert_eq!(records_per_batch(16_384, 1024), 15);
    assert_eq!(records_per_batch(16_384, 100), 130);
    assert_eq!(
        records_per_batch(100, 1024),
        1,
        "always at least one record"
    );
    // A request takes a batch per partition, up to 1 MiB.
    assert_eq!(batches_per_request(3, 15, 1024), 3);
    assert_eq!(batches_per_request(1000, 15, 1024), 66);
    assert_eq!(
        batches_per_request(2, 1, 8 << 20),
        1,
        "one batch always goes"
    );
    assert_eq!(
        spread(40, 15, &[0, 1, 2], 1),
        vec![(1, 15), (2, 15), (0, 10)]
    );
    assert_eq!(spread(5, 15, &[7], 0), vec![(7, 5)]);
    assert_eq!(spread(0, 15, &[7], 0), vec![]);
    let p = payload(1000, 7);
    assert_eq!(p.len(), 1000);
    assert!(p.iter().all(u8::is_ascii_uppercase));
    assert_eq!(p, payload(1000, 7), "the same seed, the same letters");
}

#[test]
fn stamps_measure_this_runs_records_only() {
    let stamp = Stamp::start();
    let mut value = vec![b'x'; 32];
    let sent = Instant::now();
    stamp.write(&mut value, sent);
    assert_eq!(
        &value[STAMP_BYTES..],
        &[b'x'; 16][..],
        "only the prefix changes"
    );
    let later = sent + Duration::from_millis(3);
    let latency = stamp.latency(&value, later).unwrap_or(Duration::MAX);
    assert!(
        latency >= Duration::from_millis(3) && latency < Duration::from_micros(3001),
        "{latency:?}"
    );
    // Microsecond resolution: a send time is rounded down to its microsecond.
    let latency = stamp.latency(&value, sent).unwrap_or(Duration::MAX);
    assert!(latency < Duration::from_micros(1), "{latency:?}");

    let other = Stamp::start();
    assert_eq!(other.latency(&value, later), None, "another run's record");
    assert_eq!(stamp.latency(&value[..10], later), None, "too short");
    assert_eq!(stamp.latency(b"", later), None);
}

fn record(offset: i64, value: &[u8]) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        sequence: (-1i32).wrapping_add(offset as i32),
        timestamp: 1_700_000_000_000,
        key: None,
        value: Some(Bytes::copy_from_slice(value)),
        headers: Default::default(),
    }
}

/// Batches of `sizes` records each, starting at offset 0, concatenated.
fn batches(sizes: &[i64]) -> Bytes {
    let mut buf = BytesMut::new();
    let mut first = 0;
    for &n in sizes {
        let records: Vec<Record> = (first..first + n).map(|o| record(o, b"value")).collect();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .expect("encode");
        first += n;
    }
    buf.freeze()
}

#[test]
fn walking_batches_counts_records_between_position_and_end() {
    let data = batches(&[3, 4, 5]);
    let mut seen = Vec::new();

    // From offset 2 to the end of the data.
    let mut cursor = Cursor::new(0, 2, None);
    let n = walk_batches(&data, &mut cursor, &mut |r| {
        seen.push(r.offset);
        true
    })
    .expect("walk");
    assert_eq!(n, 3);
    assert_eq!(seen, (2..12).collect::<Vec<_>>());
    assert_eq!(cursor.position, 12);

    // Up to an end inside the second batch.
    seen.clear();
    let mut cursor = Cursor::new(0, 0, Some(5));
    walk_batches(&data, &mut cursor, &mut |r| {
        seen.push(r.offset);
        true
    })
    .expect("walk");
    assert_eq!(seen, (0..5).collect::<Vec<_>>());
    assert_eq!(cursor.position, 5);
    assert!(cursor.done());

    // A visitor that stops: the position stays at the record it refused.
    let mut cursor = Cursor::new(0, 0, None);
    let mut budget = 4;
    walk_batches(&data, &mut cursor, &mut |_| {
        budget -= 1;
        budget >= 0
    })
    .expect("walk");
    assert_eq!(cursor.position, 4);

    // A trailing partial batch is left for the next fetch.
    let cut = data.slice(..data.len() - 10);
    let mut cursor = Cursor::new(0, 0, None);
    let n = walk_batches(&cut, &mut cursor, &mut |_| true).expect("walk");
    assert_eq!((n, cursor.position), (2, 7));

    // A batch declaring a nonsense length is an error, not a panic.
    let mut bad = BytesMut::from(&data[..]);
    bad[8..12].copy_from_slice(&5i32.to_be_bytes());
    let mut cursor = Cursor::new(0, 0, None);
    assert!(walk_batches(&bad.freeze(), &mut cursor, &mut |_| true).is_err());
}

fn sample_report() -> Report {
    Report {
        mode: "produce",
        topic: "orders".to_string(),
        interrupted: false,
        elapsed: Duration::from_secs(2),
        records: 4000,
        bytes: 4 * 1024 * 1024,
        requests: 100,
        config: vec![("acks", serde_json::json!("all"))],
        latencies: vec![
            ("request", Latency::of(&histogram_of([1, 2, 3]))),
            ("fetch", None),
        ],
        counts: vec![("produced", 4000)],
    }
}

#[test]
fn json_report() {
    let json = sample_report().to_json();
    assert_eq!(json["mode"], "produce");
    assert_eq!(json["topic"], "orders");
    assert_eq!(json["records"], 4000);
    assert_eq!(json["records_per_s"], 2000.0);
    assert_eq!(json["mib_per_s"], 2.0);
    assert_eq!(json["elapsed_s"], 2.0);
    assert_eq!(json["produced"], 4000);
    assert_eq!(json["interrupted"], false);
    assert_eq!(json["config"]["acks"], "all");
    let request = &json["latency_ms"]["request"];
    assert_eq!(request["count"], 3);
    assert_eq!(request["min"], 1.0);
    // HdrHistogram's buckets: within 0.1%.
    let max = request["max"].as_f64().unwrap_or(0.0);
    assert!((3.0..3.004).contains(&max), "{request}");
    assert_eq!(request["p50"], 2.0);
    assert!(json["latency_ms"]["fetch"].is_null());
}

#[test]
fn table_report() {
    let table = sample_report().table();
    assert!(
        table.starts_with("bench produce on topic orders\n"),
        "{table}"
    );
    assert!(table.contains("acks=all"), "{table}");
    assert!(table.contains("2000.0 records/s  2.00 MiB/s"), "{table}");
    assert!(table.contains("p99.9"), "{table}");
    assert!(table.contains("request"), "{table}");
    assert!(table.contains("(nothing measured)"), "{table}");
    assert!(!table.contains('\u{1b}'), "no terminal control characters");

    let mut interrupted = sample_report();
    interrupted.interrupted = true;
    interrupted.elapsed = Duration::ZERO;
    let table = interrupted.table();
    assert!(table.contains("(interrupted)"), "{table}");
    assert!(
        table.contains("0.0 records/s"),
        "no division by zero: {table}"
    );
}
