//! The HTTP API of the release `cairn` binary, each row beside a baseline from the same run:
//!
//! - **HTTP produce**: REST Proxy v2 produce (`POST /topics/{t}`, embedded JSON) of 1 KiB
//!   JSON records, 100 per request, from several keep-alive clients at once. Baseline: the
//!   same requests to a sink in this process (axum on tokio, the broker's HTTP stack) that
//!   parses each body as JSON and answers a REST Proxy shaped list of offsets without storing
//!   anything: what HTTP and JSON alone cost on this machine.
//! - **HTTP consume**: stateless consume (`GET .../records`, base64 embedded format) of a
//!   partition filled beforehand, in 8 MiB answers. Baseline: GETs of bodies of the same size
//!   from the sink (loopback HTTP transfer).
//! - **`/metrics` scrape** of a node with a 1,000-partition topic: latency of one scrape.
//!   Baseline: a GET of a body of the same size from the sink.
//! - **Metrics overhead**: librdkafka produce (acks=1) and consume throughput with a scraper
//!   hitting `/metrics` every second beside the same runs without it, alternated.
//!
//! `scripts/bench http` builds the binary and runs this; the table goes to
//! `target/cairn-bench/http.md`.

mod common;

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::Producer as _;
use rdkafka::{Offset, TopicPartitionList};

use common::{
    cairn_binary, cpu_model, filesystem_type, median, producer, quantile_us, render_table,
    target_dir, BrokerProcess, ConsumerLog, Cpu, CpuWindow, Payloads, ProducerStats, Row, MIB,
};

/// Records per HTTP produce request, and the size of each record's JSON value.
const RECORDS_PER_REQUEST: usize = 100;
const RECORD_BYTES: usize = 1024;
/// Concurrent HTTP clients (each one keep-alive connection, one request at a time).
const CLIENTS: usize = 4;
const WARM_UP: Duration = Duration::from_secs(2);
const MEASURE: Duration = Duration::from_secs(10);
/// The consume part: payload bytes put in the partition beforehand, and per answer.
const CONSUME_BYTES: u64 = 512 << 20;
const CONSUME_ANSWER_BYTES: u64 = 8 << 20;
/// The scrape part's topic, and scrapes measured.
const SCRAPE_PARTITIONS: u32 = 1000;
const SCRAPES: usize = 30;
/// The overhead part: bytes per librdkafka run, runs per side.
const OVERHEAD_BYTES: u64 = 2 << 30;
const OVERHEAD_REPS: usize = 5;
const OVERHEAD_PARTITIONS: i32 = 8;

const JSON_V2: &str = "application/vnd.kafka.json.v2+json";
const BINARY_V2: &str = "application/vnd.kafka.binary.v2+json";

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .max_idle_connections_per_host(CLIENTS * 2)
        .build()
}

/// A body's bytes, read whole.
fn body(resp: ureq::Response) -> Vec<u8> {
    let mut out = Vec::new();
    resp.into_reader()
        .take(256 << 20)
        .read_to_end(&mut out)
        .expect("read an HTTP answer");
    out
}

fn get_json(agent: &ureq::Agent, url: &str) -> serde_json::Value {
    let resp = agent
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    serde_json::from_slice(&body(resp)).unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
}

/// Creates `topic` with `partitions` partitions through the v3 admin API.
fn create_topic(http: &str, topic: &str, partitions: u32) {
    let agent = agent();
    let clusters = get_json(&agent, &format!("{http}/v3/clusters"));
    let cluster = clusters["data"][0]["cluster_id"]
        .as_str()
        .expect("a cluster id in /v3/clusters")
        .to_string();
    let url = format!("{http}/v3/clusters/{cluster}/topics");
    agent
        .post(&url)
        .set("Content-Type", "application/json")
        .send_string(
            &serde_json::json!({"topic_name": topic, "partitions_count": partitions}).to_string(),
        )
        .unwrap_or_else(|e| panic!("create topic {topic}: {e}"));
}

/// One produce request's body: `RECORDS_PER_REQUEST` JSON objects of about `RECORD_BYTES`
/// each (an id and an ASCII payload that differs per record).
fn produce_body(request: u64) -> String {
    let filler: String = (0..RECORD_BYTES - 40)
        .map(|i| (b'a' + ((i as u64 * 7 + request) % 26) as u8) as char)
        .collect();
    let records: Vec<serde_json::Value> = (0..RECORDS_PER_REQUEST)
        .map(|i| serde_json::json!({"value": {"id": request * 1000 + i as u64, "payload": filler}}))
        .collect();
    serde_json::json!({ "records": records }).to_string()
}

/// What a produce run did: records acknowledged in the measured window, its length, and
/// the broker's CPU over it.
struct Throughput {
    records: u64,
    bytes: u64,
    wall: Duration,
    cpu: Cpu,
}

/// `CLIENTS` threads post `bodies` in turn to `url` for `WARM_UP` + `MEASURE`; counts the
/// records of answers that arrived in the measured window (every record must have an
/// offset and no error).
fn http_produce(url: &str, bodies: &[String], pid: u32) -> Throughput {
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let records = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (stop, measuring) = (Arc::clone(&stop), Arc::clone(&measuring));
            let (records, bytes) = (Arc::clone(&records), Arc::clone(&bytes));
            let url = url.to_string();
            let bodies = bodies.to_vec();
            thread::spawn(move || {
                let agent = agent();
                let mut i = c;
                while !stop.load(Ordering::Acquire) {
                    let b = &bodies[i % bodies.len()];
                    i += CLIENTS;
                    let resp = agent
                        .post(&url)
                        .set("Content-Type", JSON_V2)
                        .send_string(b)
                        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
                    let answer: serde_json::Value =
                        serde_json::from_slice(&body(resp)).expect("a JSON produce answer");
                    let offsets = answer["offsets"].as_array().expect("offsets");
                    assert_eq!(offsets.len(), RECORDS_PER_REQUEST, "one offset per record");
                    for o in offsets {
                        assert!(o["error_code"].is_null(), "a record failed: {o}");
                    }
                    if measuring.load(Ordering::Acquire) {
                        records.fetch_add(offsets.len() as u64, Ordering::AcqRel);
                        bytes.fetch_add(b.len() as u64, Ordering::AcqRel);
                    }
                }
            })
        })
        .collect();
    thread::sleep(WARM_UP);
    let window = CpuWindow::start(pid);
    let start = Instant::now();
    measuring.store(true, Ordering::Release);
    thread::sleep(MEASURE);
    measuring.store(false, Ordering::Release);
    let wall = start.elapsed();
    let cpu = window.finish(wall);
    stop.store(true, Ordering::Release);
    for t in threads {
        t.join().expect("an HTTP client thread panicked");
    }
    Throughput {
        records: records.load(Ordering::Acquire),
        bytes: bytes.load(Ordering::Acquire),
        wall,
        cpu,
    }
}

/// The sink: the broker's HTTP stack (axum on tokio, two worker threads) without the broker.
mod sink {
    use std::net::SocketAddr;

    use axum::body::Bytes;
    use axum::extract::Query;
    use axum::http::header;
    use axum::response::IntoResponse;
    use axum::routing::{get, post};
    use axum::Router;

    #[derive(serde::Deserialize)]
    struct Size {
        bytes: usize,
    }

    /// Parses the records as the broker must, and answers one offset per record.
    async fn produce(body: Bytes) -> impl IntoResponse {
        let parsed: serde_json::Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return (axum::http::StatusCode::BAD_REQUEST, String::new()),
        };
        let count = parsed["records"].as_array().map_or(0, Vec::len);
        let offsets: Vec<serde_json::Value> = (0..count)
            .map(|i| {
                serde_json::json!({"partition": 0, "offset": i, "error_code": null, "error": null})
            })
            .collect();
        let answer = serde_json::json!({
            "key_schema_id": null, "value_schema_id": null, "offsets": offsets
        });
        (axum::http::StatusCode::OK, answer.to_string())
    }

    /// A body of `bytes` bytes (JSON text: a string of that length).
    async fn blob(Query(size): Query<Size>) -> impl IntoResponse {
        let mut b = Vec::with_capacity(size.bytes);
        b.push(b'"');
        b.resize(size.bytes.saturating_sub(1).max(1), b'x');
        b.push(b'"');
        ([(header::CONTENT_TYPE, "application/json")], b)
    }

    /// Starts the sink on a free loopback port, on its own runtime thread.
    pub fn start() -> SocketAddr {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind the sink");
                tx.send(listener.local_addr().expect("sink address"))
                    .expect("hand over the sink address");
                let app = Router::new()
                    .route("/topics/{topic}", post(produce))
                    .route("/blob", get(blob))
                    .layer(axum::extract::DefaultBodyLimit::disable());
                axum::serve(listener, app).await.expect("serve the sink");
            });
        });
        rx.recv().expect("the sink started")
    }
}

/// Reads partition 0 of `topic` from offset 0 to `end` in answers of up to
/// `CONSUME_ANSWER_BYTES`; answers (payload bytes, answer bytes, time).
fn http_consume(http: &str, topic: &str, end: u64, pid: u32) -> (u64, u64, Duration, Cpu) {
    let agent = agent();
    let (mut payload, mut answered, mut offset) = (0u64, 0u64, 0u64);
    let window = CpuWindow::start(pid);
    let start = Instant::now();
    while offset < end {
        let url = format!(
            "{http}/topics/{topic}/partitions/0/records?offset={offset}&max_records=10000&max_bytes={CONSUME_ANSWER_BYTES}"
        );
        let resp = agent
            .get(&url)
            .set("Accept", BINARY_V2)
            .call()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let b = body(resp);
        answered += b.len() as u64;
        let records: Vec<serde_json::Value> =
            serde_json::from_slice(&b).expect("a JSON records answer");
        assert!(!records.is_empty(), "no record at offset {offset} of {end}");
        for r in &records {
            let value = r["value"].as_str().expect("a base64 value");
            // Base64: 4 characters per 3 bytes, padded.
            payload += (value.len() / 4 * 3) as u64
                - value.bytes().rev().take_while(|c| *c == b'=').count() as u64;
        }
        offset = records
            .last()
            .and_then(|r| r["offset"].as_u64())
            .expect("an offset")
            + 1;
    }
    let wall = start.elapsed();
    (payload, answered, wall, window.finish(wall))
}

/// GETs of `size`-byte answers from the sink, as many as `http_consume` made; answers the time.
fn sink_transfer(sink: SocketAddr, size: u64, count: u64) -> Duration {
    let agent = agent();
    let url = format!("http://{sink}/blob?bytes={size}");
    let start = Instant::now();
    for _ in 0..count {
        let got = body(agent.get(&url).call().expect("GET from the sink"));
        assert_eq!(got.len() as u64, size.max(2));
    }
    start.elapsed()
}

/// `SCRAPES` timed GETs of `url` (after one untimed); answers (latencies in ns, body size).
fn timed_gets(url: &str) -> (Vec<u64>, usize) {
    let agent = agent();
    let mut size = body(agent.get(url).call().expect("GET")).len();
    let mut times = Vec::with_capacity(SCRAPES);
    for _ in 0..SCRAPES {
        let t = Instant::now();
        size = body(agent.get(url).call().expect("GET")).len();
        times.push(t.elapsed().as_nanos() as u64);
    }
    (times, size)
}

/// Fills `topic` (8 partitions) with `OVERHEAD_BYTES` of 1 KiB records through librdkafka;
/// answers the time.
fn kafka_produce(broker: &BrokerProcess, topic: &str, payloads: &Payloads, run: u64) -> Duration {
    let count = OVERHEAD_BYTES / RECORD_BYTES as u64;
    let p = producer(
        &broker.bootstrap,
        "1",
        5,
        ProducerStats::new(Instant::now(), false),
    );
    common::wait_for_topic(p.client(), topic, OVERHEAD_PARTITIONS);
    common::produce_records(
        &p,
        topic,
        payloads,
        RECORD_BYTES,
        (run * count, count),
        OVERHEAD_PARTITIONS,
        Duration::from_secs(300),
    )
}

/// Reads `records` records of `topic` from offset `from` of every partition with a fresh
/// librdkafka consumer; answers the time from `assign()` to the last record.
fn kafka_consume(broker: &BrokerProcess, topic: &str, from: i64, records: u64) -> Duration {
    let consumer: BaseConsumer<ConsumerLog> = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("group.id", "cairn-bench-unused")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100")
        .set("queued.max.messages.kbytes", "262144")
        .create_with_context(ConsumerLog)
        .expect("a librdkafka consumer");
    common::wait_for_topic(consumer.client(), topic, OVERHEAD_PARTITIONS);
    let mut tpl = TopicPartitionList::new();
    for p in 0..OVERHEAD_PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Offset(from))
            .expect("assignment");
    }
    let start = Instant::now();
    consumer.assign(&tpl).expect("assign");
    let mut got = 0u64;
    let mut last = start;
    while got < records {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                got += 1;
                let _ = m.payload_len();
                last = Instant::now();
            }
            Some(Err(e)) => panic!("consume {topic}: {e}"),
            None => assert!(
                start.elapsed() < Duration::from_secs(300),
                "consumed {got} of {records}"
            ),
        }
    }
    last - start
}

/// A thread that GETs `url` every second until the returned flag is set.
fn scraper(url: String) -> (Arc<AtomicBool>, thread::JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let handle = thread::spawn(move || {
        let agent = agent();
        let mut scrapes = 0u64;
        while !flag.load(Ordering::Acquire) {
            let t = Instant::now();
            body(agent.get(&url).call().expect("scrape /metrics"));
            scrapes += 1;
            while t.elapsed() < Duration::from_secs(1) && !flag.load(Ordering::Acquire) {
                thread::sleep(Duration::from_millis(10));
            }
        }
        scrapes
    });
    (stop, handle)
}

fn mib_s(bytes: u64, wall: Duration) -> f64 {
    bytes as f64 / MIB / wall.as_secs_f64()
}

fn ratio_cell(values: &[f64]) -> String {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match (median(v.clone()), v.first(), v.last()) {
        (Some(m), Some(lo), Some(hi)) => format!("{m:.2}x [{lo:.2}, {hi:.2}]"),
        _ => "-".to_string(),
    }
}

fn main() {
    let bin = cairn_binary("http");
    let out = target_dir().join("cairn-bench");
    let base = std::env::var_os("CAIRN_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| out.join("tmp"));
    std::fs::create_dir_all(&base).expect("bench dir");
    let data = tempfile::tempdir_in(&base).expect("data dir");
    println!(
        "http: {} CPUs, {}; data on {}",
        thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model(),
        filesystem_type(data.path())
    );
    let log = out.join("http-broker.log");
    let mut broker = BrokerProcess::start(
        &bin,
        &data.path().join("data"),
        &log,
        &[("CAIRN_HTTP_LISTEN", "127.0.0.1:0".to_string())],
    );
    let http = http_address(&log);
    let sink = sink::start();
    let pid = broker.pid();
    let mut rows = Vec::new();

    // HTTP produce, beside the sink.
    create_topic(&http, "http-produce", 8);
    let bodies: Vec<String> = (0..16).map(produce_body).collect();
    let cairn = http_produce(&format!("{http}/topics/http-produce"), &bodies, pid);
    broker.check_alive("HTTP produce");
    let baseline = http_produce(&format!("http://{sink}/topics/http-produce"), &bodies, pid);
    let (c_rate, b_rate) = (
        cairn.records as f64 / cairn.wall.as_secs_f64(),
        baseline.records as f64 / baseline.wall.as_secs_f64(),
    );
    println!(
        "HTTP produce: {c_rate:.0} records/s ({:.1} MiB/s of request bodies), sink {b_rate:.0} records/s",
        mib_s(cairn.bytes, cairn.wall)
    );
    rows.push(Row {
        metric: format!(
            "HTTP produce, 1 KiB JSON records, {RECORDS_PER_REQUEST} per request, {CLIENTS} clients"
        ),
        cairn: format!("{c_rate:.0} records/s"),
        baseline: format!("{b_rate:.0} records/s (JSON sink)"),
        ratio: format!("{:.2}x", c_rate / b_rate),
        target: "≥ 20,000 records/s".to_string(),
        cpu: format!("{:.2} / {:.2}", cairn.cpu.broker, cairn.cpu.client),
    });

    // HTTP consume: fill partition 0 of a one-partition topic through librdkafka first.
    create_topic(&http, "http-consume", 1);
    let payloads = Payloads::new();
    {
        let p = producer(
            &broker.bootstrap,
            "1",
            5,
            ProducerStats::new(Instant::now(), false),
        );
        common::wait_for_topic(p.client(), "http-consume", 1);
        common::produce_records(
            &p,
            "http-consume",
            &payloads,
            RECORD_BYTES,
            (0, CONSUME_BYTES / RECORD_BYTES as u64),
            1,
            Duration::from_secs(300),
        );
    }
    let records = CONSUME_BYTES / RECORD_BYTES as u64;
    let (payload, answered, wall, cpu) = http_consume(&http, "http-consume", records, pid);
    assert_eq!(payload, CONSUME_BYTES, "every payload byte read back");
    let answers = answered.div_ceil(CONSUME_ANSWER_BYTES * 4 / 3).max(1);
    let sink_wall = sink_transfer(sink, answered / answers, answers);
    println!(
        "HTTP consume: {:.1} MiB/s of payload ({:.1} MiB/s of answers); sink transfer {:.1} MiB/s",
        mib_s(payload, wall),
        mib_s(answered, wall),
        mib_s(answered, sink_wall)
    );
    rows.push(Row {
        metric: format!(
            "HTTP consume, base64, 1 partition, {} MiB in answers of up to {} MiB",
            CONSUME_BYTES >> 20,
            CONSUME_ANSWER_BYTES >> 20
        ),
        cairn: format!(
            "{:.0} MiB/s payload ({:.0} MiB/s answers)",
            mib_s(payload, wall),
            mib_s(answered, wall)
        ),
        baseline: format!(
            "{:.0} MiB/s (same answer bytes from the sink)",
            mib_s(answered, sink_wall)
        ),
        ratio: format!("{:.2}x", sink_wall.as_secs_f64() / wall.as_secs_f64()),
        target: "≥ 50 MB/s".to_string(),
        cpu: format!("{:.2} / {:.2}", cpu.broker, cpu.client),
    });

    // /metrics of a node with a 1,000-partition topic.
    create_topic(&http, "http-scrape", SCRAPE_PARTITIONS);
    let (scrapes, size) = timed_gets(&format!("{http}/metrics"));
    let (blobs, _) = timed_gets(&format!("http://{sink}/blob?bytes={size}"));
    let (p50, p99) = (quantile_us(&scrapes, 0.5), quantile_us(&scrapes, 0.99));
    let (b50, b99) = (quantile_us(&blobs, 0.5), quantile_us(&blobs, 0.99));
    println!(
        "scrape: {} KB, p50 {:.1} ms p99 {:.1} ms; sink p50 {:.2} ms",
        size / 1000,
        p50 / 1e3,
        p99 / 1e3,
        b50 / 1e3
    );
    rows.push(Row {
        metric: format!("`/metrics` scrape, {SCRAPE_PARTITIONS}-partition topic + 9 others ({} KB of text), {SCRAPES} scrapes p50 / p99", size / 1000),
        cairn: format!("{:.1} / {:.1} ms", p50 / 1e3, p99 / 1e3),
        baseline: format!("{:.2} / {:.2} ms (same bytes from the sink)", b50 / 1e3, b99 / 1e3),
        ratio: format!("{:.1}x", p50 / b50),
        target: "fast: well under a 1 s scrape interval".to_string(),
        cpu: String::new(),
    });

    // Metrics overhead on the Kafka path: runs with a scraper every second and without,
    // alternated (ABAB...), on one topic.
    let topic = "http-overhead";
    create_topic(&http, topic, OVERHEAD_PARTITIONS as u32);
    let mut produce_ratios = Vec::new();
    let mut consume_ratios = Vec::new();
    let (mut with_p, mut without_p, mut with_c, mut without_c) = (vec![], vec![], vec![], vec![]);
    let count = OVERHEAD_BYTES / RECORD_BYTES as u64;
    let mut run = 0u64;
    for rep in 0..OVERHEAD_REPS {
        let mut pair = [Duration::ZERO; 4];
        for (side, scraping) in [false, true].into_iter().enumerate() {
            let s = scraping.then(|| scraper(format!("{http}/metrics")));
            pair[side] = kafka_produce(&broker, topic, &payloads, run);
            // This run's records: round-robin, so the same share of every partition.
            let from = (run * count / OVERHEAD_PARTITIONS as u64) as i64;
            pair[2 + side] = kafka_consume(&broker, topic, from, count);
            run += 1;
            if let Some((stop, handle)) = s {
                stop.store(true, Ordering::Release);
                let n = handle.join().expect("scraper panicked");
                assert!(n > 0, "the scraper scraped");
            }
            broker.check_alive("the overhead runs");
        }
        let [p_without, p_with, c_without, c_with] = pair;
        println!(
            "overhead rep {rep}: produce {:.0} / {:.0} MiB/s, consume {:.1} / {:.1} s (without / with scraping)",
            mib_s(OVERHEAD_BYTES, p_without),
            mib_s(OVERHEAD_BYTES, p_with),
            c_without.as_secs_f64(),
            c_with.as_secs_f64()
        );
        produce_ratios.push(p_without.as_secs_f64() / p_with.as_secs_f64());
        consume_ratios.push(c_without.as_secs_f64() / c_with.as_secs_f64());
        without_p.push(mib_s(OVERHEAD_BYTES, p_without));
        with_p.push(mib_s(OVERHEAD_BYTES, p_with));
        without_c.push(mib_s(OVERHEAD_BYTES, c_without));
        with_c.push(mib_s(OVERHEAD_BYTES, c_with));
    }
    rows.push(Row {
        metric: format!("Kafka produce, acks=1, 1 KiB, {} MiB per run, with `/metrics` scraped every second (median of {OVERHEAD_REPS})", OVERHEAD_BYTES >> 20),
        cairn: format!("{:.0} MiB/s", median(with_p.clone()).unwrap_or(0.0)),
        baseline: format!("{:.0} MiB/s (no scraping, alternated)", median(without_p.clone()).unwrap_or(0.0)),
        ratio: ratio_cell(&produce_ratios),
        target: "no measurable cost".to_string(),
        cpu: String::new(),
    });
    rows.push(Row {
        metric: format!(
            "Kafka consume of each run's {} MiB, with `/metrics` scraped every second",
            OVERHEAD_BYTES >> 20
        ),
        cairn: format!("{:.0} MiB/s", median(with_c).unwrap_or(0.0)),
        baseline: format!(
            "{:.0} MiB/s (no scraping)",
            median(without_c).unwrap_or(0.0)
        ),
        ratio: ratio_cell(&consume_ratios),
        target: "no measurable cost".to_string(),
        cpu: String::new(),
    });

    broker.check_alive("the end");
    let problems = broker.problems();
    broker.stop();
    let table = render_table(&rows, "\n### HTTP API (`benches/http.rs`)\n\n");
    println!("{table}");
    std::fs::write(out.join("http.md"), &table).expect("write the table");
    if !problems.is_empty() {
        println!("broker warnings and errors ({}):", problems.len());
        for p in problems.iter().take(20) {
            println!("  {p}");
        }
    }
}

/// The HTTP API's address, from the `http=` field of the broker's ready line.
fn http_address(log: &Path) -> String {
    let text = std::fs::read_to_string(log).expect("the broker log");
    let line = text
        .lines()
        .find(|l| l.contains("cairn ready"))
        .expect("a ready line");
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("http="))
        .unwrap_or_else(|| panic!("no http= in the ready line: {line}"))
        .to_string()
}
