//! Log compaction (`cleanup.policy=compact`), each figure beside a baseline from the same run:
//!
//! - **Cleaner throughput** (part `cleaner`; storage level, no broker): a `Log` of
//!   [`RECORDS`] records with [`VALUE_BYTES`]-byte incompressible values over [`KEYS`] keys
//!   (key of record `i`: a hash of `i` modulo [`KEYS`]), appended in uncompressed v2 batches
//!   of [`BATCH_RECORDS`] records to 64 MiB segments, then rolled and fsynced (`flush`): all
//!   of it sealed and dirty. Timed: one clean, as `Log::clean_now` runs it (`begin_clean`,
//!   `CleanJob::run`: map, rewrite, fsync; `finish_clean`: the swap, timed apart). Reported:
//!   MB/s (10^6 bytes) of dirty log cleaned (the `.log` bytes of the dirty section over the
//!   clean's wall time), the log's size before and after, and the CPU time of the thread that
//!   ran the clean. Baseline: a plain copy of the same segment files just before the clean
//!   (read each in 1 MiB reads, write a copy, fsync it, then fsync the directory): the least
//!   I/O a rewrite of the dirty section needs. Both read what was just written, so both read
//!   the page cache. [`STORAGE_REPS`] runs, each on a fresh log with its own copy.
//! - **Produce latency while the broker cleans** (part `latency`): the release `cairn` binary
//!   with `CAIRN_BROKER_LOG_CLEANER_BACKOFF_MS=200`. Topic `compacted` (1 partition,
//!   `cleanup.policy=compact`, `segment.bytes` 64 MiB) is filled at full speed (librdkafka,
//!   acks=1) with [`RECORDS`] keyed records of 1 KiB over [`KEYS`] keys. Meanwhile cleaning is
//!   held off by `min.compaction.lag.ms` of a day: `min.cleanable.dirty.ratio` cannot hold it,
//!   since a log that was never cleaned is all dirty (dirty ratio 1.0, as in Kafka). Then a
//!   probe producer sends [`LATENCY_RATE`] records/s of 1 KiB (acks=all, linger.ms=0, open
//!   loop on a fixed schedule) to the plain topic `latency` ([`LATENCY_PARTITIONS`]
//!   partitions); after [`WARMUP`] and [`IDLE`] of that, `compacted`'s configs are altered
//!   (`min.compaction.lag.ms=0`, `min.cleanable.dirty.ratio=0.01`; the legacy AlterConfigs of
//!   librdkafka's admin client, so the whole set is sent), the cleaner takes the log within
//!   its backoff, and the broker logs `log cleaned partition=compacted-0 ... duration_ms=D`.
//!   `D` times `CleanJob::run` on the cleaner thread only; the line comes after the swap
//!   (`Log::finish_clean`) on the log owner's thread. The benchmark polls every 10 ms for the
//!   cleaner thread's (`cairn-cleaner-0`, idle until it gets a job) first CPU after the alter
//!   and for that line: from the one to the other is the **cleaning window** (the run and the
//!   swap); the **idle window** is the same length right before the alter (within the idle
//!   stretch, so nothing cleans in it). Reported: produce-to-ack p50/p99/p999 of the records
//!   sent in each window. A clean takes a second or two, so the fill and the clean are
//!   repeated [`ROUNDS`] times (`--rounds N`), re-holding the cleaner before each fill, and
//!   the windows of all rounds pooled. Every probe record goes to
//!   `<target>/cairn-bench/compaction-latency.csv` (send time from the alter, latency,
//!   window), to see when latency moved. The probe goes on for [`AFTER`] past each line, and
//!   a diagnostic row gives the latency of that **after window** too (what the clean leaves
//!   behind, e.g. the freeing of the replaced segments, is not in the cleaning window).
//!
//! The table goes to `<target>/cairn-bench/compaction.md` and the broker's log to
//! `<target>/cairn-bench/compaction-broker.log`. Data lives under `<target>/cairn-bench/tmp`
//! (override with `CAIRN_BENCH_DIR`; a real filesystem, never a tmpfs). `scripts/bench
//! compaction` builds the binary and runs this. Arguments (after `cargo bench --bench
//! compaction --`): part names (`cleaner`, `latency`; none: both) and `--rounds N`.

mod common;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cairn_storage::{batch, CleanStats, CleanerSettings, Log, LogConfig};
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;

use common::{
    cairn_binary, cpu_model, filesystem_type, median, producer, quantile_us, render_table,
    sleep_until, target_dir, wait_for_topic, BenchProducer, BrokerProcess, Cpu, CpuWindow,
    Payloads, ProducerStats, Row,
};

/// The workload of both parts: records, value size, distinct keys, records per batch.
const RECORDS: u64 = 1_000_000;
const VALUE_BYTES: usize = 1024;
const KEYS: u64 = 10_000;
const BATCH_RECORDS: u64 = 100;
const SEGMENT_BYTES: u32 = 64 << 20;
/// Cleaner-throughput runs (each on a fresh log, paired with its own copy).
const STORAGE_REPS: usize = 3;
/// The bars: cleaner throughput, and p99 while cleaning over idle p99.
const TARGET_MB_S: f64 = 100.0;
const TARGET_P99_RATIO: f64 = 1.5;
/// MB (the targets are in MB/s).
const MB: f64 = 1e6;

/// The latency part: the broker's cleaner backoff, the probe's rate and topic, its warm-up
/// and idle stretch per round, fill+clean rounds.
const CLEANER_BACKOFF_MS: u64 = 200;
const LATENCY_RATE: u64 = 2_000;
const LATENCY_PARTITIONS: i32 = 8;
const WARMUP: Duration = Duration::from_secs(2);
const IDLE: Duration = Duration::from_secs(15);
const ROUNDS: usize = 5;
/// How long the probe goes on after a clean's `log cleaned` line (the **after window**).
const AFTER: Duration = Duration::from_secs(5);
/// `min.compaction.lag.ms` that holds the cleaner off while filling (a day).
const HOLD_LAG_MS: &str = "86400000";
const COMPACTED: &str = "compacted";
const LATENCY_TOPIC: &str = "latency";
/// Longest a fill or a clean may take before the benchmark gives up.
const FILL_TIMEOUT: Duration = Duration::from_secs(600);
const CLEAN_TIMEOUT: Duration = Duration::from_secs(300);

// ---------------------------------------------------------------------------------------------
// The workload.

/// The key of record `i`: one of [`KEYS`], picked by a hash of `i` (splitmix64), so every key
/// is overwritten about `RECORDS / KEYS` times at random places.
fn key_of(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) % KEYS
}

fn keys() -> Vec<Vec<u8>> {
    (0..KEYS)
        .map(|k| format!("key-{k:05}").into_bytes())
        .collect()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn mb_s(bytes: u64, wall: Duration) -> f64 {
    bytes as f64 / MB / wall.as_secs_f64()
}

/// CPU time (ns) this thread has used (`/proc/thread-self/schedstat`).
fn thread_cpu_ns() -> u64 {
    fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn ratio_cell(values: &[f64]) -> String {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match (median(v.clone()), v.first(), v.last()) {
        (Some(m), Some(lo), Some(hi)) => format!("{m:.2}x [{lo:.2}, {hi:.2}]"),
        _ => "-".to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Cleaner throughput (storage level).

struct StorageRun {
    /// `.log` bytes of the dirty section (every sealed segment) before the clean.
    dirty: u64,
    after: u64,
    stats: CleanStats,
    wall: Duration,
    /// Of `wall`, `Log::finish_clean` (the swap).
    swap: Duration,
    cpu_ns: u64,
    copy_wall: Duration,
    copy_cpu_ns: u64,
}

fn log_config() -> LogConfig {
    LogConfig {
        compact: true,
        min_cleanable_dirty_ratio_ppm: 0,
        segment_bytes: SEGMENT_BYTES,
        retention_ms: None,
        ..LogConfig::default()
    }
}

/// The `.log` files of `dir` with their sizes, by name.
fn segment_files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut files: Vec<(PathBuf, u64)> = fs::read_dir(dir)
        .expect("list the log dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| {
            let len = fs::metadata(&p).map_or(0, |m| m.len());
            (p, len)
        })
        .collect();
    files.sort();
    files
}

/// The log: [`RECORDS`] keyed records in batches of [`BATCH_RECORDS`], rolled and fsynced.
fn build_log(dir: &Path, payloads: &Payloads, keys: &[Vec<u8>]) -> Log {
    let mut log = Log::open(dir, log_config()).expect("open the log");
    let ts = now_ms();
    for b in 0..RECORDS / BATCH_RECORDS {
        let records: Vec<batch::KeyValue<'_>> = (b * BATCH_RECORDS..(b + 1) * BATCH_RECORDS)
            .map(|i| {
                (
                    Some(&keys[key_of(i) as usize][..]),
                    Some(payloads.record(i, VALUE_BYTES)),
                )
            })
            .collect();
        log.append(&batch::build_keyed_batch(ts, &records), 0)
            .expect("append a batch");
    }
    log.roll().expect("roll");
    log.flush().expect("flush");
    log
}

/// The baseline: copies `files` into `to` (1 MiB reads and writes, fsync per file, then the
/// directory); answers (bytes, wall time, this thread's CPU time).
fn copy_segments(files: &[(PathBuf, u64)], to: &Path) -> (u64, Duration, u64) {
    fs::create_dir_all(to).expect("create the copy dir");
    let mut buf = vec![0u8; 1 << 20];
    let cpu0 = thread_cpu_ns();
    let start = Instant::now();
    let mut bytes = 0u64;
    for (path, _) in files {
        let mut src = File::open(path).expect("open a segment");
        let mut dst =
            File::create(to.join(path.file_name().expect("a file name"))).expect("create the copy");
        loop {
            let n = src.read(&mut buf).expect("read a segment");
            if n == 0 {
                break;
            }
            dst.write_all(&buf[..n]).expect("write the copy");
            bytes += n as u64;
        }
        dst.sync_all().expect("fsync the copy");
    }
    File::open(to)
        .and_then(|d| d.sync_all())
        .expect("fsync the copy dir");
    let wall = start.elapsed();
    (bytes, wall, thread_cpu_ns() - cpu0)
}

fn storage_run(base: &Path, payloads: &Payloads, keys: &[Vec<u8>]) -> StorageRun {
    let work = tempfile::Builder::new()
        .prefix("compaction-")
        .tempdir_in(base)
        .expect("create the run dir");
    let dir = work.path().join("log");
    let built = Instant::now();
    let mut log = build_log(&dir, payloads, keys);
    let files = segment_files(&dir);
    let dirty: u64 = files.iter().map(|(_, len)| len).sum();
    println!(
        "  built {} segments, {:.0} MB, in {:.1} s",
        files.iter().filter(|(_, len)| *len > 0).count(),
        dirty as f64 / MB,
        built.elapsed().as_secs_f64()
    );

    let (copied, copy_wall, copy_cpu_ns) = copy_segments(&files, &work.path().join("copy"));
    assert_eq!(copied, dirty, "the copy read every segment byte");
    fs::remove_dir_all(work.path().join("copy")).expect("remove the copy");

    // `Log::clean_now`, step by step, to time the swap apart: it is the part that runs on
    // the log owner's thread in the broker.
    let cpu0 = thread_cpu_ns();
    let start = Instant::now();
    let job = log
        .begin_clean(u64::MAX)
        .expect("begin a clean")
        .expect("a clean to do (the whole log is dirty)");
    let result = job.run(&CleanerSettings::default());
    let swap_start = Instant::now();
    let stats = log
        .finish_clean(result)
        .expect("finish the clean")
        .expect("the clean swapped in");
    let swap = swap_start.elapsed();
    let wall = start.elapsed();
    let cpu_ns = thread_cpu_ns() - cpu0;
    let after: u64 = segment_files(&dir).iter().map(|(_, len)| len).sum();
    assert_eq!(
        stats.cleaned_until, RECORDS,
        "the clean reached the log end"
    );
    assert_eq!(
        after,
        log.size_bytes(),
        "the log's size is its .log files' size"
    );
    drop(log);
    StorageRun {
        dirty,
        after,
        stats,
        wall,
        swap,
        cpu_ns,
        copy_wall,
        copy_cpu_ns,
    }
}

fn cleaner_part(base: &Path, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    let payloads = Payloads::new();
    let keys = keys();
    let mut runs = Vec::new();
    let mut disturbed = Vec::new();
    for rep in 0..STORAGE_REPS {
        println!("cleaner rep {rep}: building the log ...");
        let stop = AtomicBool::new(false);
        let (r, others) = thread::scope(|s| {
            let watcher = s.spawn(|| watch_other_cairns(0, &stop));
            let r = storage_run(base, &payloads, &keys);
            stop.store(true, Ordering::Release);
            (r, watcher.join().expect("the watcher thread panicked"))
        });
        if !others.0.is_empty() {
            println!(
                "  warning: {} cairn processes ran meanwhile ({:.0}% of the time): a shared \
                 machine, this rep is disturbed",
                others.0.len(),
                others.1 * 100.0
            );
            disturbed.push((rep, others.0.len(), others.1));
        }
        println!(
            "  clean: {:.0} MB -> {:.1} MB in {} ms (swap {} ms) = {:.0} MB/s of dirty log \
             ({} segments, {} records removed, {:.0} MB read, {:.2} cores); copy baseline \
             {:.0} MB/s ({:.2} cores)",
            r.dirty as f64 / MB,
            r.after as f64 / MB,
            r.wall.as_millis(),
            r.swap.as_millis(),
            mb_s(r.dirty, r.wall),
            r.stats.segments_rewritten,
            r.stats.records_removed,
            r.stats.bytes_read as f64 / MB,
            r.cpu_ns as f64 / r.wall.as_nanos() as f64,
            mb_s(r.dirty, r.copy_wall),
            r.copy_cpu_ns as f64 / r.copy_wall.as_nanos() as f64,
        );
        runs.push(r);
    }
    let cairn = median(runs.iter().map(|r| mb_s(r.dirty, r.wall)).collect()).unwrap_or(0.0);
    let copy = median(runs.iter().map(|r| mb_s(r.dirty, r.copy_wall)).collect()).unwrap_or(0.0);
    let ratios: Vec<f64> = runs
        .iter()
        .map(|r| r.copy_wall.as_secs_f64() / r.wall.as_secs_f64())
        .collect();
    let cores = median(
        runs.iter()
            .map(|r| r.cpu_ns as f64 / r.wall.as_nanos() as f64)
            .collect(),
    )
    .unwrap_or(0.0);
    let copy_cores = median(
        runs.iter()
            .map(|r| r.copy_cpu_ns as f64 / r.copy_wall.as_nanos() as f64)
            .collect(),
    )
    .unwrap_or(0.0);
    let dirty = median(runs.iter().map(|r| r.dirty as f64).collect()).unwrap_or(0.0);
    let after = median(runs.iter().map(|r| r.after as f64).collect()).unwrap_or(0.0);
    let ms = median(runs.iter().map(|r| r.wall.as_millis() as f64).collect()).unwrap_or(0.0);
    let swaps: Vec<String> = runs
        .iter()
        .map(|r| r.swap.as_millis().to_string())
        .collect();
    let removed = runs.first().map_or(0, |r| r.stats.records_removed);
    rows.push(Row {
        metric: format!(
            "cleaner throughput: `Log::clean_now` of {RECORDS} x 1 KiB over {KEYS} keys ({:.0} MB \
             dirty, 64 MiB segments), MB/s of dirty log (median of {STORAGE_REPS}; {ms:.0} ms, \
             of which the swap `finish_clean` {} ms)",
            dirty / MB,
            swaps.join(" / ")
        ),
        cairn: format!("{cairn:.0} MB/s"),
        baseline: format!("{copy:.0} MB/s (copy + fsync of the same segment files)"),
        ratio: ratio_cell(&ratios),
        target: format!("≥ {TARGET_MB_S:.0} MB/s"),
        cpu: format!("{cores:.2} (cleaning thread) / {copy_cores:.2} (copy)"),
    });
    if !disturbed.is_empty() {
        notes.push(format!(
            "Not alone on the machine: `cairn` processes ran during {} of the {STORAGE_REPS} \
             cleaner reps ({}).",
            disturbed.len(),
            disturbed
                .iter()
                .map(|(rep, n, share)| format!(
                    "rep {rep}: {n} processes, {:.0}% of the time",
                    share * 100.0
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    rows.push(Row {
        metric: "log size before → after the clean (`.log` bytes)".to_string(),
        cairn: format!(
            "{:.0} MB → {:.1} MB ({removed} records removed)",
            dirty / MB,
            after / MB
        ),
        // The floor: one record per key (value, 9-byte key, ~10 bytes of record framing),
        // and every batch's 61-byte header (a clean keeps every batch, see clean.rs).
        baseline: format!(
            "≈ {:.1} MB floor ({KEYS} latest records + a 61 B header per batch)",
            (KEYS * (VALUE_BYTES as u64 + 19) + RECORDS / BATCH_RECORDS * 61) as f64 / MB
        ),
        ratio: "-".to_string(),
        target: "-".to_string(),
        cpu: String::new(),
    });
}

// ---------------------------------------------------------------------------------------------
// Produce latency while the broker cleans.

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(f)
}

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("a librdkafka admin client")
}

fn admin_options() -> AdminOptions {
    AdminOptions::new().request_timeout(Some(Duration::from_secs(30)))
}

/// `compacted`'s configs: held (cleaning waits for `min.compaction.lag.ms` of a day, ratio
/// 0.99) or released (lag 0, ratio 0.01).
fn compacted_configs(held: bool) -> [(&'static str, String); 4] {
    [
        ("cleanup.policy", "compact".to_string()),
        ("segment.bytes", SEGMENT_BYTES.to_string()),
        (
            "min.cleanable.dirty.ratio",
            if held { "0.99" } else { "0.01" }.to_string(),
        ),
        (
            "min.compaction.lag.ms",
            if held { HOLD_LAG_MS } else { "0" }.to_string(),
        ),
    ]
}

fn create_topics(admin: &AdminClient<DefaultClientContext>) {
    let configs = compacted_configs(true);
    let mut compacted = NewTopic::new(COMPACTED, 1, TopicReplication::Fixed(1));
    for (name, value) in &configs {
        compacted = compacted.set(name, value);
    }
    let latency = NewTopic::new(
        LATENCY_TOPIC,
        LATENCY_PARTITIONS,
        TopicReplication::Fixed(1),
    );
    let results = block_on(admin.create_topics([&compacted, &latency], &admin_options()))
        .expect("CreateTopics");
    for r in results {
        if let Err((topic, code)) = r {
            panic!("cannot create topic {topic}: {code}");
        }
    }
}

/// Sets `compacted`'s whole config set (the legacy AlterConfigs replaces it).
fn alter_compacted(admin: &AdminClient<DefaultClientContext>, held: bool) {
    let configs = compacted_configs(held);
    let mut alter = AlterConfig::new(ResourceSpecifier::Topic(COMPACTED));
    for (name, value) in &configs {
        alter = alter.set(name, value);
    }
    let results = block_on(admin.alter_configs([&alter], &admin_options())).expect("AlterConfigs");
    for r in results {
        if let Err((resource, code)) = r {
            panic!("cannot alter {resource:?}: {code}");
        }
    }
}

/// Produces [`RECORDS`] keyed records (indexes `first..`) to `compacted` at full speed and
/// waits for every acknowledgement; answers the time.
fn fill(producer: &BenchProducer, payloads: &Payloads, keys: &[Vec<u8>], first: u64) -> Duration {
    let stats = producer.context();
    let done_before = stats.done();
    let start = Instant::now();
    for i in first..first + RECORDS {
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(COMPACTED, i as usize)
                .key(&keys[key_of(i) as usize][..])
                .payload(payloads.record(i, VALUE_BYTES))
                .partition(0);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    thread::sleep(Duration::from_micros(200));
                    assert!(
                        start.elapsed() < FILL_TIMEOUT,
                        "producer queue full for too long"
                    );
                }
                Err((e, _)) => panic!("cannot enqueue a record for {COMPACTED}: {e}"),
            }
        }
    }
    while stats.done() < done_before + RECORDS {
        assert!(
            start.elapsed() < FILL_TIMEOUT,
            "only {} of {RECORDS} records to {COMPACTED} acknowledged after {FILL_TIMEOUT:?}",
            stats.done() - done_before
        );
        thread::sleep(Duration::from_millis(1));
    }
    if let Some(e) = stats
        .first_error
        .lock()
        .expect("error record mutex poisoned")
        .as_ref()
    {
        panic!(
            "{} records to {COMPACTED} failed; first error: {e}",
            stats.failed.load(Ordering::Acquire)
        );
    }
    start.elapsed()
}

/// One `log cleaned` line of the broker for `compacted-0`.
#[derive(Debug, Clone, Default)]
struct CleanLine {
    duration_ms: u64,
    bytes_before: u64,
    bytes_after: u64,
    records_removed: u64,
    segments: u64,
}

/// The broker's `log cleaned` lines for `compacted-0`, oldest first.
fn clean_lines(log: &Path) -> Vec<CleanLine> {
    let partition = format!("partition={COMPACTED}-0");
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("log cleaned") && l.split_whitespace().any(|f| f == partition))
        .map(|l| {
            let field = |name: &str| {
                l.split_whitespace()
                    .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("no {name}= in the broker's line: {l}"))
            };
            CleanLine {
                duration_ms: field("duration_ms"),
                bytes_before: field("bytes_before"),
                bytes_after: field("bytes_after"),
                records_removed: field("records_removed"),
                segments: field("segments"),
            }
        })
        .collect()
}

/// Other `cairn` processes than `own` (a shared machine: someone's tests, another broker).
fn other_cairns(own: u32) -> Vec<u32> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != own)
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "cairn")
        })
        .collect()
}

/// Polls [`other_cairns`] every 100 ms until `stop`; answers the distinct pids seen and the
/// share of polls that saw any.
fn watch_other_cairns(own: u32, stop: &AtomicBool) -> (BTreeSet<u32>, f64) {
    let (mut seen, mut polls, mut busy) = (BTreeSet::new(), 0u32, 0u32);
    while !stop.load(Ordering::Acquire) {
        let others = other_cairns(own);
        polls += 1;
        busy += u32::from(!others.is_empty());
        seen.extend(others);
        thread::sleep(Duration::from_millis(100));
    }
    (seen, f64::from(busy) / f64::from(polls.max(1)))
}

/// CPU time (ns) of the broker's cleaner thread (`cairn-cleaner-0`), if it exists.
fn cleaner_thread_cpu_ns(pid: u32) -> Option<u64> {
    common::thread_cpu_ns(pid)
        .into_values()
        .find(|(name, _)| name == "cairn-cleaner-0")
        .map(|(_, ns)| ns)
}

/// Sends [`LATENCY_RATE`] records/s of 1 KiB to `latency` on a fixed schedule (open loop)
/// until `stop`; record indexes continue from `first`. Answers each record's send time (ns
/// since the producer's `base`), by index minus `first`.
fn probe(
    producer: &BenchProducer,
    payloads: &Payloads,
    first: usize,
    stop: &AtomicBool,
) -> Vec<u64> {
    let base = producer.context().base;
    let interval = Duration::from_nanos(1_000_000_000 / LATENCY_RATE);
    let value = payloads.record(7, VALUE_BYTES);
    let mut sent = Vec::new();
    let t0 = Instant::now();
    while !stop.load(Ordering::Acquire) {
        let n = sent.len();
        sleep_until(t0 + interval * n as u32);
        let index = first + n;
        sent.push(base.elapsed().as_nanos() as u64);
        let record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(LATENCY_TOPIC, index)
                .payload(value)
                .partition((index % LATENCY_PARTITIONS as usize) as i32);
        if let Err((e, _)) = producer.send(record) {
            panic!("cannot enqueue a latency record: {e}");
        }
    }
    sent
}

/// What one round measured; times in ns since the probe producer's `base`.
struct Round {
    fill: Duration,
    /// The alter that released the cleaner.
    alter_ns: u64,
    /// The clean: as the broker timed it (`CleanJob::run` only), when the cleaner thread
    /// first used CPU after the alter (`None`: not seen), and when its line was seen (after
    /// the swap on the log owner's thread).
    clean: CleanLine,
    start_ns: Option<u64>,
    seen_ns: u64,
    /// (send time, index) of the probe's records.
    sent: Vec<(u64, usize)>,
    idle_cpu: Cpu,
    clean_cpu: Cpu,
}

impl Round {
    /// The whole clean: from the cleaner thread's start (else the line's `duration_ms`
    /// before the line) to the line, so the swap is inside.
    fn clean_window(&self) -> (u64, u64) {
        let start = self.start_ns.unwrap_or_else(|| {
            self.seen_ns
                .saturating_sub(self.clean.duration_ms * 1_000_000)
        });
        (start, self.seen_ns)
    }

    /// The same length as the clean window, ending at the alter (capped at the idle stretch).
    fn idle_window(&self) -> (u64, u64) {
        let (from, to) = self.clean_window();
        let d = (to - from).min(IDLE.as_nanos() as u64);
        (self.alter_ns - d, self.alter_ns)
    }

    /// The [`AFTER`] following the clean window.
    fn after_window(&self) -> (u64, u64) {
        (self.seen_ns, self.seen_ns + AFTER.as_nanos() as u64)
    }

    /// Time from the end of `CleanJob::run` to the line: the swap, roughly (`None` if the
    /// cleaner thread's start was not seen).
    fn swap_ms(&self) -> Option<i64> {
        self.start_ns.map(|start| {
            (self.seen_ns as i64 - start as i64) / 1_000_000 - self.clean.duration_ms as i64
        })
    }
}

/// Produce-to-ack latencies (ns) of the records sent within `window`, from every round.
fn window_latencies(
    rounds: &[Round],
    acks: &[u64],
    window: impl Fn(&Round) -> (u64, u64),
) -> Vec<u64> {
    rounds
        .iter()
        .flat_map(|r| {
            let (from, to) = window(r);
            r.sent
                .iter()
                .filter(move |(at, _)| *at >= from && *at < to)
                .map(|&(at, i)| acks[i].saturating_sub(at))
        })
        .collect()
}

/// Every probe record as CSV (round, send time in ms from the round's alter, latency in µs,
/// window), to see when latency moved.
fn write_timeline(path: &Path, rounds: &[Round], acks: &[u64]) {
    let mut csv = String::from("round,sent_ms_from_alter,latency_us,window\n");
    for (n, r) in rounds.iter().enumerate() {
        let (c0, c1) = r.clean_window();
        let (i0, i1) = r.idle_window();
        for &(at, i) in &r.sent {
            let (a0, a1) = r.after_window();
            let window = match at {
                _ if at >= c0 && at < c1 => "clean",
                _ if at >= i0 && at < i1 => "idle",
                _ if at >= a0 && at < a1 => "after",
                _ => "-",
            };
            csv.push_str(&format!(
                "{n},{:.3},{:.0},{window}\n",
                (at as f64 - r.alter_ns as f64) / 1e6,
                acks[i].saturating_sub(at) as f64 / 1e3
            ));
        }
    }
    fs::write(path, csv).expect("write the latency timeline");
}

fn latency_part(
    base: &Path,
    out: &Path,
    rounds_wanted: usize,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) {
    let bin = cairn_binary("compaction");
    let work = tempfile::Builder::new()
        .prefix("compaction-broker-")
        .tempdir_in(base)
        .expect("create the broker dir");
    let log_path = out.join("compaction-broker.log");
    let mut broker = BrokerProcess::start(
        &bin,
        &work.path().join("data"),
        &log_path,
        &[(
            "CAIRN_BROKER_LOG_CLEANER_BACKOFF_MS",
            CLEANER_BACKOFF_MS.to_string(),
        )],
    );
    println!(
        "cairn {} ready on {}; log {}",
        bin.display(),
        broker.bootstrap,
        log_path.display()
    );
    let admin = admin(&broker.bootstrap);
    create_topics(&admin);
    let payloads = Payloads::new();
    let keys = keys();
    let filler = producer(
        &broker.bootstrap,
        "1",
        5,
        ProducerStats::new(Instant::now(), false),
    );
    wait_for_topic(filler.client(), COMPACTED, 1);
    let prober = producer(
        &broker.bootstrap,
        "all",
        0,
        ProducerStats::new(Instant::now(), true),
    );
    wait_for_topic(prober.client(), LATENCY_TOPIC, LATENCY_PARTITIONS);
    let base = prober.context().base;
    let ns = || base.elapsed().as_nanos() as u64;

    let mut rounds = Vec::new();
    let mut disturbed = Vec::new();
    let mut probe_index = 0usize;
    for round in 0..rounds_wanted {
        if round > 0 {
            alter_compacted(&admin, true);
        }
        let cleans_before = clean_lines(&log_path).len();
        println!("latency round {round}: filling {COMPACTED} with {RECORDS} x 1 KiB ...");
        let fill_time = fill(&filler, &payloads, &keys, round as u64 * RECORDS);
        broker.check_alive("filling");
        println!(
            "  filled in {:.1} s ({:.0} MB/s of values)",
            fill_time.as_secs_f64(),
            mb_s(RECORDS * VALUE_BYTES as u64, fill_time)
        );
        // The fill's last segments are fsynced in the background; let that and the page
        // cache's writeback settle before measuring.
        thread::sleep(Duration::from_secs(3));
        assert_eq!(
            clean_lines(&log_path).len(),
            cleans_before,
            "the broker cleaned {COMPACTED} while it was held off (min.compaction.lag.ms={HOLD_LAG_MS})"
        );

        let stop = AtomicBool::new(false);
        let (sent, alter_ns, start_ns, seen_ns, idle_cpu, clean_cpu, others) = thread::scope(|s| {
            let sender = s.spawn(|| probe(&prober, &payloads, probe_index, &stop));
            let watcher = s.spawn(|| watch_other_cairns(broker.pid(), &stop));
            thread::sleep(WARMUP);
            let idle_at = Instant::now();
            let window = CpuWindow::start(broker.pid());
            thread::sleep(IDLE);
            let idle_cpu = window.finish(idle_at.elapsed());

            let released = Instant::now();
            let window = CpuWindow::start(broker.pid());
            let alter_ns = ns();
            alter_compacted(&admin, false);
            // The cleaner thread is idle until it gets the job: its first CPU after the
            // alter marks the clean's start.
            let pid = broker.pid();
            let cleaner_cpu0 = cleaner_thread_cpu_ns(pid);
            let mut start_ns = None;
            let seen_ns = loop {
                let now = ns();
                if start_ns.is_none()
                    && cleaner_thread_cpu_ns(pid)
                        .zip(cleaner_cpu0)
                        .is_some_and(|(c, c0)| c > c0)
                {
                    start_ns = Some(now);
                }
                if clean_lines(&log_path).len() > cleans_before {
                    break now;
                }
                if released.elapsed() > CLEAN_TIMEOUT {
                    stop.store(true, Ordering::Release);
                    panic!(
                        "no `log cleaned` line for {COMPACTED}-0 within {CLEAN_TIMEOUT:?} of \
                         setting min.compaction.lag.ms=0 and min.cleanable.dirty.ratio=0.01"
                    );
                }
                thread::sleep(Duration::from_millis(10));
            };
            let clean_cpu = window.finish(released.elapsed());
            // The probe goes on a while after the line: what the clean leaves behind (the
            // freed segments' blocks) may still cost the produce path something.
            thread::sleep(AFTER);
            stop.store(true, Ordering::Release);
            let sent = sender.join().expect("the probe thread panicked");
            let others = watcher.join().expect("the watcher thread panicked");
            (
                sent, alter_ns, start_ns, seen_ns, idle_cpu, clean_cpu, others,
            )
        });
        broker.check_alive("cleaning");
        let lines = clean_lines(&log_path);
        let clean = lines[cleans_before].clone();
        let sent: Vec<(u64, usize)> = sent
            .into_iter()
            .enumerate()
            .map(|(n, at)| (at, probe_index + n))
            .collect();
        probe_index += sent.len();
        let r = Round {
            fill: fill_time,
            alter_ns,
            clean,
            start_ns,
            seen_ns,
            sent,
            idle_cpu,
            clean_cpu,
        };
        let (c0, c1) = r.clean_window();
        println!(
            "  clean: {} segments, {:.0} MB -> {:.1} MB, {} records removed, run {} ms \
             ({:.0} MB/s); cleaner thread started {} ms after the alter{}, line seen {} ms \
             after it (swap ≈ {} ms){}",
            r.clean.segments,
            r.clean.bytes_before as f64 / MB,
            r.clean.bytes_after as f64 / MB,
            r.clean.records_removed,
            r.clean.duration_ms,
            r.clean.bytes_before as f64 / MB / (r.clean.duration_ms.max(1) as f64 / 1e3),
            (c0.saturating_sub(alter_ns)) / 1_000_000,
            if r.start_ns.is_none() {
                " (not seen: estimated from duration_ms)"
            } else {
                ""
            },
            (c1 - alter_ns) / 1_000_000,
            r.swap_ms().map_or("?".to_string(), |ms| ms.to_string()),
            if lines.len() > cleans_before + 1 {
                format!(
                    " ({} more cleans followed)",
                    lines.len() - cleans_before - 1
                )
            } else {
                String::new()
            }
        );
        println!(
            "  CPU idle: broker {:.2} / client {:.2} ({}); alter to clean end: broker {:.2} / \
             client {:.2} ({})",
            r.idle_cpu.broker,
            r.idle_cpu.client,
            r.idle_cpu.busiest(3),
            r.clean_cpu.broker,
            r.clean_cpu.client,
            r.clean_cpu.busiest(3)
        );
        if !others.0.is_empty() {
            println!(
                "  warning: {} other cairn processes ran during this round ({:.0}% of the time): \
                 a shared machine, the windows are disturbed",
                others.0.len(),
                others.1 * 100.0
            );
            disturbed.push((round, others.0.len(), others.1));
        }
        rounds.push(r);
    }

    // Every probe record acknowledged, and none failed.
    let stats = prober.context();
    let deadline = Instant::now() + Duration::from_secs(60);
    while stats.done() < probe_index as u64 {
        assert!(
            Instant::now() < deadline,
            "only {} of {probe_index} latency records acknowledged",
            stats.done()
        );
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        stats.failed.load(Ordering::Acquire),
        0,
        "latency records failed: {:?}",
        stats
            .first_error
            .lock()
            .expect("error record mutex poisoned")
    );
    let mut acks = vec![0u64; probe_index];
    for &(i, at) in stats.acks.lock().expect("ack record mutex poisoned").iter() {
        acks[i] = at;
    }
    write_timeline(&out.join("compaction-latency.csv"), &rounds, &acks);
    let cleaning = window_latencies(&rounds, &acks, Round::clean_window);
    let idle = window_latencies(&rounds, &acks, Round::idle_window);
    let after_clean = window_latencies(&rounds, &acks, Round::after_window);
    let idle_all = window_latencies(&rounds, &acks, |r| {
        (r.alter_ns - IDLE.as_nanos() as u64, r.alter_ns)
    });
    let window_ms: u64 = rounds
        .iter()
        .map(|r| {
            let (from, to) = r.clean_window();
            (to - from) / 1_000_000
        })
        .sum();
    println!(
        "latency: cleaning {} records p50/p99/p999 {:.0}/{:.0}/{:.0} µs; idle (same length) {} \
         records {:.0}/{:.0}/{:.0} µs; idle (whole {} s stretches) {} records {:.0}/{:.0}/{:.0} µs",
        cleaning.len(),
        quantile_us(&cleaning, 0.5),
        quantile_us(&cleaning, 0.99),
        quantile_us(&cleaning, 0.999),
        idle.len(),
        quantile_us(&idle, 0.5),
        quantile_us(&idle, 0.99),
        quantile_us(&idle, 0.999),
        IDLE.as_secs(),
        idle_all.len(),
        quantile_us(&idle_all, 0.5),
        quantile_us(&idle_all, 0.99),
        quantile_us(&idle_all, 0.999),
    );

    let durations: Vec<String> = rounds
        .iter()
        .map(|r| r.clean.duration_ms.to_string())
        .collect();
    let starts: Vec<String> = rounds
        .iter()
        .map(|r| ((r.clean_window().0.saturating_sub(r.alter_ns)) / 1_000_000).to_string())
        .collect();
    let windows: Vec<String> = rounds
        .iter()
        .map(|r| {
            let (from, to) = r.clean_window();
            ((to - from) / 1_000_000).to_string()
        })
        .collect();
    let swaps: Vec<String> = rounds
        .iter()
        .map(|r| r.swap_ms().map_or("?".to_string(), |ms| ms.to_string()))
        .collect();
    let broker_rates: Vec<f64> = rounds
        .iter()
        .map(|r| r.clean.bytes_before as f64 / MB / (r.clean.duration_ms.max(1) as f64 / 1e3))
        .collect();
    let fills: Vec<f64> = rounds
        .iter()
        .map(|r| mb_s(RECORDS * VALUE_BYTES as u64, r.fill))
        .collect();
    let before =
        median(rounds.iter().map(|r| r.clean.bytes_before as f64).collect()).unwrap_or(0.0);
    let after = median(rounds.iter().map(|r| r.clean.bytes_after as f64).collect()).unwrap_or(0.0);
    let cpu_cell = |pick: fn(&Round) -> &Cpu| {
        let b = median(rounds.iter().map(|r| pick(r).broker).collect()).unwrap_or(0.0);
        let c = median(rounds.iter().map(|r| pick(r).client).collect()).unwrap_or(0.0);
        format!("{b:.2} / {c:.2}")
    };
    rows.push(Row {
        metric: format!(
            "broker clean of `{COMPACTED}-0` ({:.0} MB → {:.1} MB) after a fill of {RECORDS} x 1 KiB \
             ({} rounds; fill {:.0} MB/s), from the broker's `log cleaned` line",
            before / MB,
            after / MB,
            rounds.len(),
            median(fills).unwrap_or(0.0)
        ),
        cairn: format!(
            "{:.0} MB/s (run {} ms)",
            median(broker_rates).unwrap_or(0.0),
            durations.join(" / ")
        ),
        baseline: "-".to_string(),
        ratio: "-".to_string(),
        target: format!("≥ {TARGET_MB_S:.0} MB/s"),
        cpu: format!("{} (alter to clean end)", cpu_cell(|r| &r.clean_cpu)),
    });
    rows.push(Row {
        metric: "clean window per round: the cleaner thread's first CPU after the alter → the \
                 `log cleaned` line (run, then the swap on the log owner's thread)"
            .to_string(),
        cairn: format!(
            "{} ms (swap ≈ {} ms)",
            windows.join(" / "),
            swaps.join(" / ")
        ),
        baseline: format!(
            "started {} ms after the alter (backoff {CLEANER_BACKOFF_MS} ms)",
            starts.join(" / ")
        ),
        ratio: "-".to_string(),
        target: "-".to_string(),
        cpu: String::new(),
    });
    // Per round: cleaning / idle ratios of a quantile, as `[min, max]`.
    let per_round_range = |q: f64| {
        let ratios: Vec<f64> = rounds
            .iter()
            .map(|r| {
                let one = std::slice::from_ref(r);
                quantile_us(&window_latencies(one, &acks, Round::clean_window), q)
                    / quantile_us(&window_latencies(one, &acks, Round::idle_window), q)
            })
            .collect();
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(0.0, f64::max);
        format!("[{lo:.2}, {hi:.2}] per round")
    };
    for (n, r) in rounds.iter().enumerate() {
        let one = std::slice::from_ref(r);
        let [i, c, a] = [Round::idle_window, Round::clean_window, Round::after_window]
            .map(|w| window_latencies(one, &acks, w));
        println!(
            "  round {n}: p50/p99/p999 µs: idle {:.0}/{:.0}/{:.0}, cleaning {:.0}/{:.0}/{:.0}, \
             after {:.0}/{:.0}/{:.0}",
            quantile_us(&i, 0.5),
            quantile_us(&i, 0.99),
            quantile_us(&i, 0.999),
            quantile_us(&c, 0.5),
            quantile_us(&c, 0.99),
            quantile_us(&c, 0.999),
            quantile_us(&a, 0.5),
            quantile_us(&a, 0.99),
            quantile_us(&a, 0.999),
        );
    }
    for (q, label) in [(0.5, "p50"), (0.99, "p99"), (0.999, "p999")] {
        let (c, i) = (quantile_us(&cleaning, q), quantile_us(&idle, q));
        rows.push(Row {
            metric: format!(
                "produce {label} while the broker cleans, acks=all, linger.ms=0, 1 KiB at \
                 {LATENCY_RATE}/s to {LATENCY_PARTITIONS} partitions (µs; windows = the cleans, \
                 {window_ms} ms in all, {} vs {} records)",
                cleaning.len(),
                idle.len()
            ),
            cairn: format!("{c:.0}"),
            baseline: format!(
                "{i:.0} idle (same length, right before each clean; {:.0} over the whole {} s \
                 idle stretches)",
                quantile_us(&idle_all, q),
                IDLE.as_secs()
            ),
            ratio: format!("{:.2}x {}", c / i, per_round_range(q)),
            target: if label == "p99" {
                format!("≤ {TARGET_P99_RATIO}x idle p99")
            } else {
                "-".to_string()
            },
            cpu: format!("{} (idle stretch)", cpu_cell(|r| &r.idle_cpu)),
        });
    }
    rows.push(Row {
        metric: format!(
            "produce p50 / p99 / p999 in the {} s after each clean's `log cleaned` line (µs; \
             {} records)",
            AFTER.as_secs(),
            after_clean.len()
        ),
        cairn: format!(
            "{:.0} / {:.0} / {:.0}",
            quantile_us(&after_clean, 0.5),
            quantile_us(&after_clean, 0.99),
            quantile_us(&after_clean, 0.999)
        ),
        baseline: format!(
            "{:.0} / {:.0} / {:.0} idle",
            quantile_us(&idle, 0.5),
            quantile_us(&idle, 0.99),
            quantile_us(&idle, 0.999)
        ),
        ratio: format!(
            "{:.2}x (p99)",
            quantile_us(&after_clean, 0.99) / quantile_us(&idle, 0.99)
        ),
        target: "(diagnostic)".to_string(),
        cpu: String::new(),
    });
    if !disturbed.is_empty() {
        notes.push(format!(
            "Not alone on the machine: other `cairn` processes ran during {} of the {} latency \
             rounds ({}).",
            disturbed.len(),
            rounds.len(),
            disturbed
                .iter()
                .map(|(round, n, share)| format!(
                    "round {round}: {n} processes, {:.0}% of the time",
                    share * 100.0
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    // The clients go before the broker (librdkafka would report it down).
    drop(filler);
    drop(prober);
    broker.check_alive("the end");
    let problems = broker.problems();
    broker.stop();
    if !problems.is_empty() {
        println!("broker warnings and errors ({}):", problems.len());
        for p in problems.iter().take(20) {
            println!("  {p}");
        }
    }
}

// ---------------------------------------------------------------------------------------------

struct Options {
    /// Run by `cargo bench` (which passes `--bench`).
    bench: bool,
    rounds: usize,
    parts: Vec<String>,
}

impl Options {
    fn parse() -> Options {
        let mut options = Options {
            bench: false,
            rounds: ROUNDS,
            parts: Vec::new(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--bench" => options.bench = true,
                "--rounds" => {
                    options.rounds = args
                        .next()
                        .and_then(|n| n.parse().ok())
                        .filter(|&n| n > 0)
                        .unwrap_or_else(|| {
                            eprintln!("error: --rounds needs a positive number");
                            std::process::exit(2);
                        });
                }
                "cleaner" | "latency" => options.parts.push(arg),
                other => {
                    eprintln!(
                        "error: unknown argument {other} (parts: cleaner, latency; --rounds N)"
                    );
                    std::process::exit(2);
                }
            }
        }
        options
    }

    fn selected(&self, part: &str) -> bool {
        self.parts.is_empty() || self.parts.iter().any(|p| p == part)
    }
}

fn main() {
    // `cargo bench` passes `--bench`; anything else (e.g. `cargo test --benches`) only checks
    // that the program starts, since a run takes minutes and needs the release binary.
    let options = Options::parse();
    if !options.bench {
        println!("compaction benchmark: not run (use `cargo bench --bench compaction` or `scripts/bench compaction`)");
        return;
    }
    let out = target_dir().join("cairn-bench");
    let base = std::env::var_os("CAIRN_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| out.join("tmp"));
    fs::create_dir_all(&base).expect("create the benchmark data dir");
    let fs_type = filesystem_type(&base);
    if fs_type == "tmpfs" {
        eprintln!(
            "warning: {} is on a tmpfs; its numbers do not describe a log on a disk",
            base.display()
        );
    }
    println!(
        "compaction: {} CPUs, {}; data on {fs_type} ({})",
        thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model(),
        base.display()
    );
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    if options.selected("cleaner") {
        cleaner_part(&base, &mut rows, &mut notes);
    }
    if options.selected("latency") {
        latency_part(&base, &out, options.rounds, &mut rows, &mut notes);
    }
    let mut table = render_table(&rows, "\n### Log compaction (`benches/compaction.rs`)\n\n");
    for note in &notes {
        table.push_str(&format!("\n{note}\n"));
    }
    println!("{table}");
    fs::write(out.join("compaction.md"), &table).expect("write the table");
}
