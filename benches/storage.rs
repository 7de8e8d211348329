//! Storage benchmarks: Cairn's `Log` against a plain sequential `std::fs` file, same bytes,
//! same run.
//!
//! Four workloads, each a criterion group with two functions, `raw` (the baseline) and
//! `cairn`, measured with `Throughput::Bytes`:
//!
//! - `append_100x100B`, `append_16x1KiB`: one batch of 100 x 100 B or 16 x 1 KiB records
//!   (built by `batch::build_batch`), appended again and again until [`APPEND_BYTES`] have been
//!   written. Raw: a fresh `File` written with one `write_all` per batch. Cairn: a fresh `Log`
//!   (default `LogConfig`: 1 GiB segments, so no roll inside an iteration) with one
//!   `Log::append(batch, 0)` per batch. Both buffered, no fsync. Outside the timed part:
//!   creating the file or log, [`PRIME_BATCHES`] priming batches (see [`cairn_append`]), and
//!   deleting it.
//! - `read_16x1KiB`, `read_100x100B`: a log of about [`READ_LOG_BYTES`] built from such
//!   batches, read from its start to its end. Raw: `File::read` into one reused, page-aligned
//!   1 MiB buffer, on a file holding byte for byte what the log holds, written in lockstep
//!   with the log (one `write_all` per batch, so both have the same page-cache history).
//!   Cairn: `Log::read(offset, 1 MiB)` + `LogRead::load_into()` into its own reused,
//!   page-aligned buffer, advancing by `next_offset()`. The log was written by this process,
//!   so its batches were CRC-checked on append and are not re-checked (see storage's
//!   verify-once rule). `read_16x1KiB_after_restart` closes and reopens the log before each
//!   timed pass (untimed), so every batch is CRC-checked again by the read: what the first
//!   read of old data after a broker restart pays. A third function,
//!   `cairn_noload`, is a diagnostic: `Log::read` + one `pread` per returned `FileSlice` into
//!   the raw side's buffer, i.e. Cairn's lookup without `load()`'s allocation and CRC checks
//!   (what a `sendfile` server pays besides the socket). Everything is in the page cache.
//!
//! After criterion, a summary table is printed (and written to
//! `<target>/cairn-bench/storage.md`): per workload the median throughput of criterion's
//! measurement samples for raw and Cairn and their ratio, plus a *paired* ratio: the median of
//! [`PAIRS`] back-to-back raw/Cairn runs in alternating order, which a noisy machine disturbs
//! far less than two criterion runs seconds apart. The `target` column judges the paired ratio
//! against the project's acceptance bar ([`TARGET_RATIO`]) for the gated rows.
//!
//! Data lives under `<target>/cairn-bench/tmp` (override with `CAIRN_BENCH_DIR`), a real
//! filesystem rather than a tmpfs, so the page cache path is the one a broker takes.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::hint::black_box;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_storage::{batch, Log, LogConfig};
use criterion::{Criterion, SamplingMode, Throughput};
use tempfile::TempDir;

/// Bytes appended per timed iteration of an append benchmark.
const APPEND_BYTES: u64 = 64 << 20;
/// Approximate size of the log (and raw file) read by one iteration of a read benchmark.
const READ_LOG_BYTES: u64 = 64 << 20;
/// `max_bytes` of each `Log::read`, and the buffer size of the raw reads.
const READ_CHUNK: u32 = 1 << 20;
/// Number of interleaved raw/Cairn pairs of the paired comparison.
const PAIRS: usize = 30;
/// Criterion samples per benchmark (criterion's minimum; each sample is >= 64 MiB of I/O).
const SAMPLE_SIZE: usize = 10;
/// The ratio the project's acceptance criterion asks for.
const TARGET_RATIO: f64 = 0.80;
/// Batches appended before the timed part of an append iteration. The first append of a
/// leader epoch persists the leader-epoch checkpoint (two fsyncs); the second writes the
/// segment's first offset- and time-index entries, whose first write fault into the freshly
/// preallocated index mmaps triggers readahead over the sparse index file (up to
/// `read_ahead_kb`: 8 MiB, ~5 ms, on the reference machine). Both are once-per-segment costs,
/// which a 1 GiB segment amortises and a 64 MiB iteration would overstate 16-fold.
const PRIME_BATCHES: u64 = 2;
/// Timestamp of the benchmark batches (constant, so `segment.ms` never rolls).
const BATCH_TIMESTAMP: i64 = 1_700_000_000_000;

const MIB: f64 = (1 << 20) as f64;

/// A record batch shape.
#[derive(Debug, Clone, Copy)]
struct Shape {
    label: &'static str,
    records: usize,
    record_bytes: usize,
}

const SMALL: Shape = Shape {
    label: "100x100B",
    records: 100,
    record_bytes: 100,
};
const LARGE: Shape = Shape {
    label: "16x1KiB",
    records: 16,
    record_bytes: 1024,
};

impl Shape {
    /// One valid uncompressed batch of this shape, with non-repeating record values.
    fn batch(self) -> Vec<u8> {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ self.records as u64;
        let values: Vec<Vec<u8>> = (0..self.records)
            .map(|_| {
                (0..self.record_bytes)
                    .map(|_| {
                        // xorshift64: cheap, deterministic filler.
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed as u8
                    })
                    .collect()
            })
            .collect();
        let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        batch::build_batch(BATCH_TIMESTAMP, &refs)
    }
}

/// Whether a workload appends or reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Append,
    Read,
    /// A read that re-verifies every batch: the log is reopened before each pass.
    ReadAfterRestart,
}

/// Criterion group name of a workload.
fn group_name(kind: Kind, shape: Shape) -> String {
    match kind {
        Kind::Append => format!("append_{}", shape.label),
        Kind::Read => format!("read_{}", shape.label),
        Kind::ReadAfterRestart => format!("read_{}_after_restart", shape.label),
    }
}

// ---------------------------------------------------------------------------------------------
// Timings recorded from inside criterion's `iter_custom`, for the summary table.

/// Per (group, function): every (iterations, elapsed) criterion asked for, warm-up first.
type Recorded = BTreeMap<(String, &'static str), Vec<(u64, Duration)>>;

static RECORDED: Mutex<Recorded> = Mutex::new(BTreeMap::new());

fn record(group: &str, function: &'static str, iters: u64, elapsed: Duration) {
    RECORDED
        .lock()
        .expect("timing record mutex poisoned")
        .entry((group.to_string(), function))
        .or_default()
        .push((iters, elapsed));
}

/// Median time per iteration over criterion's measurement samples of one benchmark: the last
/// `sample_size` calls of the routine (criterion calls it for warm-up first, then exactly once
/// per sample). `None` if the benchmark did not run (filtered out).
fn median_iteration(group: &str, function: &'static str, sample_size: usize) -> Option<f64> {
    let recorded = RECORDED.lock().expect("timing record mutex poisoned");
    let calls = recorded.get(&(group.to_string(), function))?;
    let samples = &calls[calls.len().saturating_sub(sample_size)..];
    let per_iter: Vec<f64> = samples
        .iter()
        .filter(|(iters, _)| *iters > 0)
        .map(|(iters, elapsed)| elapsed.as_secs_f64() / *iters as f64)
        .collect();
    median(per_iter)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

// ---------------------------------------------------------------------------------------------
// The measured operations. Each returns the time of its timed part only.

/// Raw append: a fresh file, one `write_all` per batch, `n` batches timed (after
/// [`PRIME_BATCHES`] untimed).
fn raw_append(dir: &Path, batch: &[u8], n: u64) -> Duration {
    let path = dir.join("raw-append.bin");
    let mut f = File::create(&path).expect("create raw append file");
    for _ in 0..PRIME_BATCHES {
        f.write_all(batch).expect("prime raw append file");
    }
    let start = Instant::now();
    for _ in 0..n {
        f.write_all(batch).expect("raw append write");
    }
    let elapsed = start.elapsed();
    drop(f);
    fs::remove_file(&path).expect("remove raw append file");
    elapsed
}

/// Cairn append: a fresh log, one `Log::append` per batch, `n` batches timed (after
/// [`PRIME_BATCHES`] untimed, see there).
fn cairn_append(dir: &Path, batch: &[u8], n: u64) -> Duration {
    let log_dir = dir.join("cairn-append");
    let mut log = Log::open(&log_dir, LogConfig::default()).expect("open benchmark log");
    for _ in 0..PRIME_BATCHES {
        log.append(batch, 0).expect("prime benchmark log");
    }
    let start = Instant::now();
    for _ in 0..n {
        black_box(log.append(black_box(batch), 0).expect("cairn append"));
    }
    let elapsed = start.elapsed();
    // Teardown. `Segment::create` truncates its new file to 0, which makes ext4
    // (auto_da_alloc) start writeback of the whole file when it is closed; emptying the
    // segment first drops its dirty pages instead, as deleting the raw file does.
    let read = log
        .read(log.log_start_offset(), 1)
        .expect("find the benchmark segment");
    for slice in &read.slices {
        slice
            .file()
            .set_len(0)
            .expect("empty the benchmark segment");
    }
    drop(read);
    drop(log);
    fs::remove_dir_all(&log_dir).expect("remove benchmark log");
    elapsed
}

/// A log and a raw file with identical bytes, both in the page cache.
struct ReadFixture {
    _dir: TempDir,
    log: Log,
    log_dir: PathBuf,
    /// Close and reopen the log before each Cairn pass, so the read re-verifies everything.
    reopen_each_pass: bool,
    /// Cairn's own reused, page-aligned buffer (`READ_CHUNK` bytes at `cairn_buf_at`).
    cairn_buf_storage: Vec<u8>,
    cairn_buf_at: usize,
    raw_path: PathBuf,
    bytes: u64,
    /// Page-aligned `READ_CHUNK` bytes inside `buf_storage` (see [`ReadFixture::buf`]).
    buf_storage: Vec<u8>,
    buf_at: usize,
}

impl ReadFixture {
    fn build(base: &Path, batch: &[u8], reopen_each_pass: bool) -> ReadFixture {
        let dir = tempfile::Builder::new()
            .prefix("read-")
            .tempdir_in(base)
            .expect("create read fixture dir");
        let log_dir = dir.path().join("log");
        let mut log = Log::open(&log_dir, LogConfig::default()).expect("open read fixture log");
        // Log and raw file are written in lockstep, one write per batch, so their page-cache
        // pages are allocated alike. The raw copy carries the offsets the log assigns.
        let raw_path = dir.path().join("raw-read.bin");
        let mut raw = File::create(&raw_path).expect("create raw read file");
        let mut patched = batch.to_vec();
        let batches = READ_LOG_BYTES.div_ceil(batch.len() as u64);
        for _ in 0..batches {
            let info = log.append(batch, 0).expect("fill read fixture log");
            patched[..8].copy_from_slice(&(info.base_offset as i64).to_be_bytes());
            patched[12..16].copy_from_slice(&0i32.to_be_bytes());
            raw.write_all(&patched).expect("write raw read file");
        }
        drop(raw);
        let bytes = log.size_bytes();
        let mut fixture = ReadFixture {
            _dir: dir,
            log,
            log_dir,
            reopen_each_pass,
            cairn_buf_storage: vec![0; READ_CHUNK as usize + 4096],
            cairn_buf_at: 0,
            raw_path,
            bytes,
            buf_storage: vec![0; READ_CHUNK as usize + 4096],
            buf_at: 0,
        };
        fixture.buf_at = fixture.buf_storage.as_ptr().align_offset(4096);
        fixture.cairn_buf_at = fixture.cairn_buf_storage.as_ptr().align_offset(4096);
        fixture.check_identical();
        fixture
    }

    /// The reused read buffer, page-aligned: a kernel copy into a misaligned destination can
    /// be several times slower on some CPUs, and the baseline should not depend on where the
    /// allocator happened to put it.
    fn buf(&mut self) -> &mut [u8] {
        &mut self.buf_storage[self.buf_at..self.buf_at + READ_CHUNK as usize]
    }

    /// Asserts that the raw file holds exactly the bytes Cairn's reads return.
    fn check_identical(&mut self) {
        let raw = fs::read(&self.raw_path).expect("read raw read file");
        let mut offset = self.log.log_start_offset();
        let mut at = 0usize;
        loop {
            let read = self.log.read(offset, READ_CHUNK).expect("read fixture log");
            let Some(next) = read.next_offset() else {
                break;
            };
            let data = read.load().expect("load fixture log");
            assert!(
                raw[at..].starts_with(&data),
                "raw file differs from the log at byte {at}"
            );
            at += data.len();
            offset = next;
        }
        assert_eq!(at, raw.len(), "raw file and log differ in length");
    }

    /// Raw read: the whole file, sequentially, into the reused buffer.
    fn raw_read(&mut self) -> Duration {
        let mut f = File::open(&self.raw_path).expect("open raw read file");
        let expected = self.bytes;
        let buf = self.buf();
        let mut total = 0u64;
        let start = Instant::now();
        loop {
            let n = f.read(buf).expect("raw read");
            if n == 0 {
                break;
            }
            black_box(&buf[..n]);
            total += n as u64;
        }
        let elapsed = start.elapsed();
        assert_eq!(total, expected, "raw read must read the whole file");
        elapsed
    }

    /// Closes and reopens the log (clean path), so no batch counts as verified any more.
    fn reopen(&mut self) {
        let placeholder = tempfile::tempdir().expect("placeholder dir");
        let fresh = Log::open(placeholder.path(), LogConfig::default()).expect("placeholder log");
        let old = std::mem::replace(&mut self.log, fresh);
        old.close().expect("close read fixture log");
        let reopened =
            Log::open(&self.log_dir, LogConfig::default()).expect("reopen read fixture log");
        drop(std::mem::replace(&mut self.log, reopened));
    }

    /// Cairn read: the whole log through `Log::read` + `LogRead::load_into`, 1 MiB at a time.
    fn cairn_read(&mut self) -> Duration {
        if self.reopen_each_pass {
            self.reopen();
        }
        let mut offset = self.log.log_start_offset();
        let mut total = 0u64;
        let at = self.cairn_buf_at;
        let start = Instant::now();
        loop {
            let read = self.log.read(offset, READ_CHUNK).expect("cairn read");
            let Some(next) = read.next_offset() else {
                break;
            };
            let buf = &mut self.cairn_buf_storage[at..at + READ_CHUNK as usize];
            let n = read.load_into(buf).expect("cairn load");
            total += n as u64;
            black_box(&buf[..n]);
            offset = next;
        }
        let elapsed = start.elapsed();
        assert_eq!(total, self.bytes, "cairn read must read the whole log");
        elapsed
    }

    /// Diagnostic: `Log::read` + one `pread` per slice into the reused buffer (no `load`).
    fn cairn_noload_read(&mut self) -> Duration {
        let mut offset = self.log.log_start_offset();
        let mut total = 0u64;
        let start = Instant::now();
        loop {
            let read = self.log.read(offset, READ_CHUNK).expect("cairn read");
            let Some(next) = read.next_offset() else {
                break;
            };
            for slice in &read.slices {
                let buf = &mut self.buf()[..slice.len() as usize];
                slice
                    .file()
                    .read_exact_at(buf, slice.position())
                    .expect("pread a slice");
                black_box(&buf[..]);
                total += slice.len();
            }
            offset = next;
        }
        let elapsed = start.elapsed();
        assert_eq!(total, self.bytes, "cairn read must read the whole log");
        elapsed
    }
}

/// One workload's two sides, callable once each for the paired comparison.
trait Workload {
    fn bytes_per_iter(&self) -> u64;
    fn raw(&mut self) -> Duration;
    fn cairn(&mut self) -> Duration;
    /// Whether the workload has a diagnostic third function.
    fn has_diagnostic(&self) -> bool {
        false
    }
    /// The diagnostic third function, if the workload has one.
    fn diagnostic(&mut self) -> Option<Duration> {
        None
    }
}

struct AppendWorkload {
    dir: PathBuf,
    batch: Vec<u8>,
    batches: u64,
}

impl Workload for AppendWorkload {
    fn bytes_per_iter(&self) -> u64 {
        self.batches * self.batch.len() as u64
    }
    fn raw(&mut self) -> Duration {
        raw_append(&self.dir, &self.batch, self.batches)
    }
    fn cairn(&mut self) -> Duration {
        cairn_append(&self.dir, &self.batch, self.batches)
    }
}

impl Workload for ReadFixture {
    fn bytes_per_iter(&self) -> u64 {
        self.bytes
    }
    fn raw(&mut self) -> Duration {
        self.raw_read()
    }
    fn cairn(&mut self) -> Duration {
        self.cairn_read()
    }
    fn has_diagnostic(&self) -> bool {
        true
    }
    fn diagnostic(&mut self) -> Option<Duration> {
        Some(self.cairn_noload_read())
    }
}

/// Criterion function name of the diagnostic.
const DIAGNOSTIC: &str = "cairn_noload";

/// Runs one criterion group (raw, Cairn, then the diagnostic if any) for a workload.
fn run_group(c: &mut Criterion, name: &str, w: &mut dyn Workload) {
    let mut group = c.benchmark_group(name);
    group
        .throughput(Throughput::Bytes(w.bytes_per_iter()))
        .sampling_mode(SamplingMode::Flat);
    group.bench_function("raw", |b| {
        b.iter_custom(|iters| {
            let total: Duration = (0..iters).map(|_| w.raw()).sum();
            record(name, "raw", iters, total);
            total
        })
    });
    group.bench_function("cairn", |b| {
        b.iter_custom(|iters| {
            let total: Duration = (0..iters).map(|_| w.cairn()).sum();
            record(name, "cairn", iters, total);
            total
        })
    });
    if w.has_diagnostic() {
        group.bench_function(DIAGNOSTIC, |b| {
            b.iter_custom(|iters| {
                let total: Duration = (0..iters).filter_map(|_| w.diagnostic()).sum();
                record(name, DIAGNOSTIC, iters, total);
                total
            })
        });
    }
    group.finish();
}

/// Paired comparison: `PAIRS` raw/Cairn runs back to back, alternating which goes first.
/// Returns the per-pair ratios cairn/raw (throughput), sorted.
fn paired_ratios(w: &mut dyn Workload) -> Vec<f64> {
    let mut ratios: Vec<f64> = (0..PAIRS)
        .map(|i| {
            let (raw, cairn) = if i % 2 == 0 {
                let raw = w.raw();
                (raw, w.cairn())
            } else {
                let cairn = w.cairn();
                (w.raw(), cairn)
            };
            raw.as_secs_f64() / cairn.as_secs_f64()
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios
}

// ---------------------------------------------------------------------------------------------
// Environment.

/// The cargo target directory: `CARGO_TARGET_DIR`, else derived from this executable's path
/// (`<target>/<profile>/deps/storage-<hash>`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(std::env::temp_dir)
}

/// Filesystem type of `path`, from the longest matching mount point in `/proc/self/mounts`.
fn filesystem_type(path: &Path) -> String {
    let path = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, mount, fstype) = (fields.next()?, fields.next()?, fields.next()?);
            let mount = mount.replace("\\040", " ");
            path.starts_with(&mount)
                .then(|| (mount.len(), fstype.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown".to_string(), |(_, fstype)| fstype)
}

/// Whether criterion will measure (not `--test`, `--list` or `--profile-time`, and run by
/// `cargo bench`, which passes `--bench`), mirroring criterion's own rule.
fn benchmark_mode(args: &[String]) -> bool {
    let has = |flag: &str| {
        args.iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    has("--bench") && !has("--test") && !has("--list") && !has("--profile-time")
}

/// The sample size in force: ours, unless `--sample-size N` overrides it.
fn sample_size(args: &[String]) -> usize {
    args.iter()
        .enumerate()
        .find_map(|(i, a)| {
            if a == "--sample-size" {
                args.get(i + 1)?.parse().ok()
            } else {
                a.strip_prefix("--sample-size=")?.parse().ok()
            }
        })
        .unwrap_or(SAMPLE_SIZE)
}

fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

// ---------------------------------------------------------------------------------------------
// Summary.

struct Row {
    name: String,
    gated: bool,
    bytes_per_iter: u64,
    raw: Option<f64>,
    cairn: Option<f64>,
    noload: Option<f64>,
    paired: Vec<f64>,
}

fn mib_s(bytes: u64, secs: Option<f64>) -> Option<f64> {
    secs.map(|s| bytes as f64 / MIB / s)
}

fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.decimals$}"))
}

fn render_table(rows: &[Row], bench_dir: &Path) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Cairn storage benchmarks: {} CPUs ({}), bench dir {} ({})\n\
         MiB/s: median of criterion's {} measurement samples; paired: median [min, max] of {} \
         interleaved raw/cairn runs.\n\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model(),
        bench_dir.display(),
        filesystem_type(bench_dir),
        sample_size(&std::env::args().collect::<Vec<_>>()),
        PAIRS,
    ));
    out.push_str(
        "| workload | MiB/iter | raw MiB/s | cairn MiB/s | cairn/raw | paired cairn/raw [min, max] | target | diagnostic: read w/o load MiB/s (/raw) |\n\
         |---|---:|---:|---:|---:|---:|---|---:|\n",
    );
    for r in rows {
        let raw = mib_s(r.bytes_per_iter, r.raw);
        let cairn = mib_s(r.bytes_per_iter, r.cairn);
        let ratio = raw.zip(cairn).map(|(raw, cairn)| cairn / raw);
        let noload = mib_s(r.bytes_per_iter, r.noload);
        let diagnostic = match (noload, raw) {
            (Some(n), Some(raw)) => format!("{n:.0} ({:.2})", n / raw),
            (Some(n), None) => format!("{n:.0}"),
            _ => "-".to_string(),
        };
        let paired = median(r.paired.clone());
        let spread = match (r.paired.first(), r.paired.last()) {
            (Some(lo), Some(hi)) => format!(" [{lo:.2}, {hi:.2}]"),
            _ => String::new(),
        };
        let target = if !r.gated {
            "(none)".to_string()
        } else {
            // The paired ratio is the verdict: it compares runs milliseconds apart, while
            // criterion's two medians come from runs seconds apart on a drifting machine.
            match paired.or(ratio) {
                Some(w) if w >= TARGET_RATIO => format!(">= {TARGET_RATIO:.2}: ok"),
                Some(_) => format!(">= {TARGET_RATIO:.2}: BELOW"),
                None => "-".to_string(),
            }
        };
        out.push_str(&format!(
            "| {} | {:.1} | {} | {} | {} | {}{} | {} | {} |\n",
            r.name,
            r.bytes_per_iter as f64 / MIB,
            fmt_opt(raw, 0),
            fmt_opt(cairn, 0),
            fmt_opt(ratio, 2),
            fmt_opt(paired, 2),
            spread,
            target,
            diagnostic,
        ));
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let measuring = benchmark_mode(&args);
    let samples = sample_size(&args);

    let bench_root = std::env::var_os("CAIRN_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("cairn-bench").join("tmp"));
    fs::create_dir_all(&bench_root).expect("create benchmark data dir");
    let work = tempfile::Builder::new()
        .prefix("storage-")
        .tempdir_in(&bench_root)
        .expect("create benchmark temp dir");

    let mut c = Criterion::default()
        .sample_size(SAMPLE_SIZE)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .nresamples(20_000)
        .without_plots()
        .configure_from_args();

    // Workload order: appends first (they allocate and free page cache), then reads.
    let plan = [
        (Kind::Append, SMALL, false),
        (Kind::Append, LARGE, true),
        (Kind::Read, LARGE, true),
        (Kind::Read, SMALL, true),
        (Kind::ReadAfterRestart, LARGE, false),
    ];
    let mut rows = Vec::new();
    for (kind, shape, gated) in plan {
        let name = group_name(kind, shape);
        let batch = shape.batch();
        let mut workload: Box<dyn Workload> = match kind {
            Kind::Append => Box::new(AppendWorkload {
                dir: work.path().to_path_buf(),
                batches: APPEND_BYTES.div_ceil(batch.len() as u64),
                batch,
            }),
            Kind::Read => Box::new(ReadFixture::build(work.path(), &batch, false)),
            Kind::ReadAfterRestart => Box::new(ReadFixture::build(work.path(), &batch, true)),
        };
        run_group(&mut c, &name, workload.as_mut());
        let raw = median_iteration(&name, "raw", samples);
        let cairn = median_iteration(&name, "cairn", samples);
        let noload = median_iteration(&name, DIAGNOSTIC, samples);
        let paired = if measuring && raw.is_some() && cairn.is_some() {
            paired_ratios(workload.as_mut())
        } else {
            Vec::new()
        };
        if raw.is_none() && cairn.is_none() {
            continue; // filtered out
        }
        rows.push(Row {
            name,
            gated,
            bytes_per_iter: workload.bytes_per_iter(),
            raw,
            cairn,
            noload,
            paired,
        });
    }
    c.final_summary();

    if !measuring {
        return;
    }
    let table = render_table(&rows, &bench_root);
    println!("\n{table}");
    let out_dir = target_dir().join("cairn-bench");
    let out = out_dir.join("storage.md");
    match fs::create_dir_all(&out_dir).and_then(|()| fs::write(&out, &table)) {
        Ok(()) => println!("table written to {}", out.display()),
        Err(e) => eprintln!("could not write {}: {e}", out.display()),
    }
}
