//! Shared by the broker benchmarks (`broker.rs`, `groups.rs`): the `cairn serve` process, CPU
//! accounting from `/proc`, librdkafka client plumbing, the loopback TCP ping-pong baseline,
//! quantiles and the summary table, and the benchmark environment (target dir, binary,
//! filesystem, CPU model). Each benchmark uses a part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;

/// Longest the broker may take to log `cairn ready`.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

pub const MIB: f64 = (1 << 20) as f64;

// ---------------------------------------------------------------------------------------------
// Payloads and CPU accounting.

/// Incompressible filler; record `i` is a slice at an offset that depends on `i`, so records
/// differ from each other (nothing downstream compresses, but nothing can dedupe either).
pub struct Payloads {
    pub buf: Vec<u8>,
}

impl Payloads {
    pub fn new() -> Payloads {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let buf = (0..4 << 20)
            .map(|_| {
                // xorshift64: cheap, deterministic filler.
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        Payloads { buf }
    }

    pub fn record(&self, i: u64, size: usize) -> &[u8] {
        let span = (self.buf.len() - size) as u64;
        let at = (i.wrapping_mul(4099) % span) as usize;
        &self.buf[at..at + size]
    }
}

/// CPU time (ns) used so far by each live thread of process `pid`, with the thread's name
/// (`/proc/<pid>/task/*/{comm,schedstat}`). Threads must outlive the measured window to be
/// counted, which the broker's and the clients' threads do.
pub fn thread_cpu_ns(pid: u32) -> BTreeMap<u32, (String, u64)> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return BTreeMap::new();
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| {
            let tid = t.file_name().to_str()?.parse().ok()?;
            let ns = fs::read_to_string(t.path().join("schedstat"))
                .ok()?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            let comm = fs::read_to_string(t.path().join("comm")).ok()?;
            Some((tid, (comm.trim().to_string(), ns)))
        })
        .collect()
}

/// CPU use of the broker and of this process over a window, in cores (CPU time / wall time).
#[derive(Debug, Clone, Default)]
pub struct Cpu {
    pub broker: f64,
    pub client: f64,
    /// Per thread name (threads of one name summed), busiest first: (process, name, cores).
    pub threads: Vec<(&'static str, String, f64)>,
}

impl Cpu {
    /// The busiest threads, e.g. `broker tokio-runtime-w 0.41, client rdk:broker1 0.93`.
    pub fn busiest(&self, n: usize) -> String {
        self.threads
            .iter()
            .take(n)
            .map(|(process, name, cores)| format!("{process} {name} {cores:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub struct CpuWindow {
    broker_pid: u32,
    broker0: BTreeMap<u32, (String, u64)>,
    client0: BTreeMap<u32, (String, u64)>,
}

impl CpuWindow {
    pub fn start(broker_pid: u32) -> CpuWindow {
        CpuWindow {
            broker_pid,
            broker0: thread_cpu_ns(broker_pid),
            client0: thread_cpu_ns(std::process::id()),
        }
    }

    pub fn finish(&self, wall: Duration) -> Cpu {
        let wall = wall.as_nanos().max(1) as f64;
        let mut by_name: BTreeMap<(&'static str, String), f64> = BTreeMap::new();
        let mut totals = [0.0f64; 2];
        let sides = [
            ("broker", self.broker_pid, &self.broker0),
            ("client", std::process::id(), &self.client0),
        ];
        for (i, (process, pid, before)) in sides.into_iter().enumerate() {
            for (tid, (name, ns)) in thread_cpu_ns(pid) {
                let used = ns.saturating_sub(before.get(&tid).map_or(0, |(_, b)| *b));
                let cores = used as f64 / wall;
                totals[i] += cores;
                *by_name.entry((process, name)).or_default() += cores;
            }
        }
        let mut threads: Vec<_> = by_name
            .into_iter()
            .map(|((process, name), cores)| (process, name, cores))
            .collect();
        threads.sort_by(|a, b| b.2.total_cmp(&a.2));
        Cpu {
            broker: totals[0],
            client: totals[1],
            threads,
        }
    }
}

/// Record batches in partitions `0..partitions` of `topic` (count, bytes), from the batch
/// headers of its segment files: what the broker's appends looked like (the client, or the
/// broker for `__consumer_offsets`, decides the batching).
pub fn batch_stats(data_dir: &Path, topic: &str, partitions: i32) -> (u64, u64) {
    let (mut count, mut bytes) = (0u64, 0u64);
    for p in 0..partitions {
        let Ok(entries) = fs::read_dir(data_dir.join(format!("{topic}-{p}"))) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "log") {
                continue;
            }
            let Ok(file) = File::open(&path) else {
                continue;
            };
            let len = file.metadata().map_or(0, |m| m.len());
            let mut pos = 0u64;
            let mut header = [0u8; 12];
            // baseOffset (8 bytes), then batchLength (4): the batch is 12 + batchLength bytes.
            while pos + 12 <= len && file.read_exact_at(&mut header, pos).is_ok() {
                let batch_len = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
                if batch_len == 0 || pos + 12 + u64::from(batch_len) > len {
                    break;
                }
                count += 1;
                bytes += 12 + u64::from(batch_len);
                pos += 12 + u64::from(batch_len);
            }
        }
    }
    (count, bytes)
}

// ---------------------------------------------------------------------------------------------
// The broker process.

/// A running `cairn serve`, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct BrokerProcess {
    child: Child,
    pub bootstrap: String,
    log_path: PathBuf,
}

impl BrokerProcess {
    /// Starts `cairn serve` on `data_dir` with the extra environment `env` (broker settings,
    /// e.g. `CAIRN_BROKER_NUM_PARTITIONS`), and waits for `cairn ready`.
    pub fn start(
        bin: &Path,
        data_dir: &Path,
        log_path: &Path,
        env: &[(&str, String)],
    ) -> BrokerProcess {
        Self::start_at(bin, data_dir, log_path, env, "127.0.0.1:0")
    }

    /// [`BrokerProcess::start`] with the Kafka listener on `listen` (a cluster node must
    /// know its port before it starts: its peers learn it from the node itself).
    pub fn start_at(
        bin: &Path,
        data_dir: &Path,
        log_path: &Path,
        env: &[(&str, String)],
        listen: &str,
    ) -> BrokerProcess {
        let log = File::create(log_path)
            .unwrap_or_else(|e| panic!("cannot create broker log {}: {e}", log_path.display()));
        let log_err = log.try_clone().expect("clone the broker log handle");
        // Port 0 (`start`): the kernel picks a free port, and `cairn ready` names it (no race
        // with another process taking a port we probed).
        let child = Command::new(bin)
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(listen)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            // The benchmark's own settings are not the broker's (it warns about unknown ones).
            .env_remove("CAIRN_BIN")
            .env_remove("CAIRN_BENCH_DIR")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut broker = BrokerProcess {
            child,
            bootstrap: String::new(),
            log_path: log_path.to_path_buf(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let text = fs::read_to_string(log_path).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.contains("cairn ready")) {
                let addr = line
                    .split_whitespace()
                    .find_map(|field| field.strip_prefix("listen="))
                    .unwrap_or_else(|| panic!("no listen= in the ready line: {line}"));
                broker.bootstrap = addr.to_string();
                return broker;
            }
            broker.check_alive("starting");
            assert!(
                Instant::now() < deadline,
                "cairn did not log `cairn ready` within {START_TIMEOUT:?}; log {}:\n{text}",
                log_path.display()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics with the log's tail if the broker has exited.
    pub fn check_alive(&mut self, phase: &str) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let text = fs::read_to_string(&self.log_path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "cairn exited ({status}) while {phase}; last lines of {}:\n{}",
                self.log_path.display(),
                tail.join("\n")
            );
        }
    }

    /// Log lines at WARN or ERROR (a healthy run has none).
    pub fn problems(&self) -> Vec<String> {
        fs::read_to_string(&self.log_path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .map(str::to_string)
            .collect()
    }

    /// SIGKILL and wait: a crash.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SIGTERM is cairn's clean shutdown; `kill(1)` (procps) keeps `unsafe` out of the
        // benchmark. Without it, SIGKILL: the data directory is thrown away anyway.
        let termed = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .is_ok_and(|s| s.success());
        if !termed {
            let _ = self.child.kill();
            let _ = self.child.wait();
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        eprintln!("cairn did not stop within 20 s of SIGTERM; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// librdkafka clients.

/// Prints librdkafka's warnings and errors (its default goes to the `log` crate, which has no
/// logger here, so they would vanish).
pub fn print_client_log(level: RDKafkaLogLevel, fac: &str, message: &str) {
    use RDKafkaLogLevel::{Alert, Critical, Emerg, Error, Warning};
    if matches!(level, Emerg | Alert | Critical | Error | Warning) {
        eprintln!("librdkafka {level:?} {fac}: {message}");
    }
}

/// Counts delivery reports; optionally records (record index, ack time) for latency.
pub struct ProducerStats {
    pub base: Instant,
    pub acked: AtomicU64,
    pub failed: AtomicU64,
    /// ns since `base` of the latest successful delivery report.
    pub last_ack_ns: AtomicU64,
    pub first_error: Mutex<Option<String>>,
    /// (record index, ack time in ns since `base`), when recording.
    pub acks: Mutex<Vec<(usize, u64)>>,
    pub record_acks: bool,
}

impl ProducerStats {
    pub fn new(base: Instant, record_acks: bool) -> ProducerStats {
        ProducerStats {
            base,
            acked: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            last_ack_ns: AtomicU64::new(0),
            first_error: Mutex::new(None),
            acks: Mutex::new(Vec::new()),
            record_acks,
        }
    }

    pub fn done(&self) -> u64 {
        self.acked.load(Ordering::Acquire) + self.failed.load(Ordering::Acquire)
    }
}

impl ClientContext for ProducerStats {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        print_client_log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        eprintln!("librdkafka producer error: {error}: {reason}");
    }
}

impl ProducerContext for ProducerStats {
    /// The record's index in its run.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let now = self.base.elapsed().as_nanos() as u64;
        match result {
            Ok(_) => {
                if self.record_acks {
                    self.acks
                        .lock()
                        .expect("ack record mutex poisoned")
                        .push((index, now));
                }
                self.last_ack_ns.fetch_max(now, Ordering::AcqRel);
                self.acked.fetch_add(1, Ordering::AcqRel);
            }
            Err((e, _)) => {
                self.first_error
                    .lock()
                    .expect("error record mutex poisoned")
                    .get_or_insert_with(|| e.to_string());
                self.failed.fetch_add(1, Ordering::AcqRel);
            }
        }
    }
}

/// Consumer context: only makes librdkafka's problems visible.
pub struct ConsumerLog;

impl ClientContext for ConsumerLog {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        print_client_log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        eprintln!("librdkafka consumer error: {error}: {reason}");
    }
}

impl ConsumerContext for ConsumerLog {}

pub type BenchProducer = ThreadedProducer<ProducerStats>;

/// Sends `count` records of `size` bytes (record indexes `first..first + count`),
/// round-robin over `partitions` partitions, and waits for every delivery report (panicking
/// on a failed one, or after `timeout`). Returns the time from the first send to the last
/// acknowledgement.
pub fn produce_records(
    producer: &BenchProducer,
    topic: &str,
    payloads: &Payloads,
    size: usize,
    (first, count): (u64, u64),
    partitions: i32,
    timeout: Duration,
) -> Duration {
    let stats = producer.context();
    let done_before = stats.done();
    let start = Instant::now();
    for i in first..first + count {
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(topic, i as usize)
                .payload(payloads.record(i, size))
                .partition((i % partitions as u64) as i32);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // The queue holds more than a run; this only happens if the broker stalls.
                    record = back;
                    thread::sleep(Duration::from_micros(200));
                    assert!(
                        start.elapsed() < timeout,
                        "producer queue full for too long"
                    );
                }
                Err((e, _)) => panic!("cannot enqueue a record for {topic}: {e}"),
            }
        }
    }
    while stats.done() < done_before + count {
        assert!(
            start.elapsed() < timeout,
            "only {} of {count} records to {topic} acknowledged after {timeout:?}",
            stats.done() - done_before
        );
        thread::sleep(Duration::from_micros(500));
    }
    if let Some(e) = stats
        .first_error
        .lock()
        .expect("error record mutex poisoned")
        .as_ref()
    {
        panic!(
            "{} records to {topic} failed; first error: {e}",
            stats.failed.load(Ordering::Acquire)
        );
    }
    let last_ack = stats.base + Duration::from_nanos(stats.last_ack_ns.load(Ordering::Acquire));
    last_ack.saturating_duration_since(start)
}

/// The producer settings. Throughput runs: linger.ms=5 and batches up to ~1 MB (librdkafka's
/// own defaults, written out), with `batch.num.messages` raised so that `batch.size`, not the
/// record count, closes a batch of 100 B records; no compression; a producer queue larger than
/// a whole run so the sending loop never waits on it; idempotence off (librdkafka's default;
/// acks=1 cannot use it anyway); Nagle off (librdkafka's default). Latency runs: linger.ms=0,
/// so each record is sent as soon as possible.
pub fn producer(
    bootstrap: &str,
    acks: &str,
    linger_ms: u32,
    stats: ProducerStats,
) -> BenchProducer {
    producer_config(bootstrap, acks, linger_ms)
        .create_with_context(stats)
        .expect("create the librdkafka producer")
}

/// The settings of [`producer`], for a producer of another kind (e.g. a `BaseProducer` that
/// its caller polls).
pub fn producer_config(bootstrap: &str, acks: &str, linger_ms: u32) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("acks", acks)
        .set("linger.ms", linger_ms.to_string())
        .set("batch.size", "1000000")
        .set("batch.num.messages", "100000")
        .set("compression.type", "none")
        .set("queue.buffering.max.messages", "2000000")
        .set("queue.buffering.max.kbytes", "2097151")
        .set("enable.idempotence", "false")
        .set("socket.nagle.disable", "true")
        .set("message.timeout.ms", "60000")
        .set("allow.auto.create.topics", "true");
    config
}

/// Fetches metadata until `topic` has `partitions` partitions, each with a leader. The
/// producer's Metadata request auto-creates the topic (the broker runs with
/// `CAIRN_BROKER_NUM_PARTITIONS` set to that count).
pub fn wait_for_topic<C: ClientContext>(
    client: &rdkafka::client::Client<C>,
    topic: &str,
    partitions: i32,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while Instant::now() < deadline {
        match client.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            Ok(md) => {
                if let Some(t) = md.topics().iter().find(|t| t.name() == topic) {
                    let ready = t.error().is_none()
                        && t.partitions().len() == partitions as usize
                        && t.partitions()
                            .iter()
                            .all(|p| p.error().is_none() && p.leader() >= 0);
                    if ready {
                        return;
                    }
                    last = format!(
                        "topic error {:?}, {} partitions",
                        t.error(),
                        t.partitions().len()
                    );
                }
            }
            Err(e) => last = e.to_string(),
        }
        thread::sleep(Duration::from_millis(100));
    }
    panic!("topic {topic} not ready with {partitions} partitions after 30 s: {last}");
}

// ---------------------------------------------------------------------------------------------
// Baselines.

/// Loopback TCP ping-pong: `count` messages `msg` echoed by a std thread (`TCP_NODELAY` on both
/// ends), one at a time. With `interval`, sent on that fixed schedule (as the latency runs
/// are, so both sides wake up from idle alike); without, back to back. Returns round-trip
/// times in ns.
pub fn tcp_ping_pong(msg: &[u8], interval: Option<Duration>, count: u64) -> Vec<u64> {
    let size = msg.len();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the ping-pong listener");
    let addr = listener.local_addr().expect("ping-pong listener address");
    let echo = thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept the ping-pong client");
        s.set_nodelay(true).expect("TCP_NODELAY");
        let mut buf = vec![0u8; size];
        while s.read_exact(&mut buf).is_ok() {
            s.write_all(&buf).expect("ping-pong echo");
        }
    });
    let mut s = TcpStream::connect(addr).expect("connect to the ping-pong echo");
    s.set_nodelay(true).expect("TCP_NODELAY");
    let mut reply = vec![0u8; size];
    let mut rtts = Vec::with_capacity(count as usize);
    let t0 = Instant::now();
    for i in 0..count {
        if let Some(interval) = interval {
            sleep_until(t0 + interval * i as u32);
        }
        let sent = Instant::now();
        s.write_all(msg).expect("ping-pong send");
        s.read_exact(&mut reply).expect("ping-pong receive");
        rtts.push(sent.elapsed().as_nanos() as u64);
    }
    drop(s);
    echo.join().expect("ping-pong echo thread panicked");
    rtts
}

pub fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        thread::sleep(t - now);
    }
}

// ---------------------------------------------------------------------------------------------
// Summary.

pub fn median(mut v: Vec<f64>) -> Option<f64> {
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

/// The `q` quantile (0..=1) of `v` (nearest rank), in microseconds.
pub fn quantile_us(v: &[u64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1] as f64 / 1000.0
}

pub struct Row {
    pub metric: String,
    pub cairn: String,
    pub baseline: String,
    pub ratio: String,
    pub target: String,
    pub cpu: String,
}

pub fn cpu_cell<'a>(cpus: impl Iterator<Item = &'a Cpu> + Clone) -> String {
    let broker = median(cpus.clone().map(|c| c.broker).collect()).unwrap_or(0.0);
    let client = median(cpus.map(|c| c.client).collect()).unwrap_or(0.0);
    format!("{broker:.2} / {client:.2}")
}

/// The summary table after `header`. The `target` column is left out when no row has one
/// (every row's `target` is empty).
pub fn render_table(rows: &[Row], header: &str) -> String {
    let mut out = String::new();
    out.push_str(header);
    if rows.iter().all(|r| r.target.is_empty()) {
        out.push_str(
            "| metric | cairn | baseline | ratio cairn/baseline [min, max] | CPU cores: broker / client |\n\
             |---|---:|---:|---:|---:|\n",
        );
        for r in rows {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                r.metric, r.cairn, r.baseline, r.ratio, r.cpu
            ));
        }
        return out;
    }
    out.push_str(
        "| metric | cairn | baseline | ratio cairn/baseline [min, max] | target | CPU cores: broker / client |\n\
         |---|---:|---:|---:|---|---:|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.metric, r.cairn, r.baseline, r.ratio, r.target, r.cpu
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Environment.

/// The cargo target directory: `CARGO_TARGET_DIR`, else derived from this executable's path
/// (`<target>/<profile>/deps/<bench>-<hash>`).
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// The broker binary: `CAIRN_BIN`, else `<target>/release/cairn`; exits with a message if it
/// is missing (`section`: the `scripts/bench` section that builds it).
pub fn cairn_binary(section: &str) -> PathBuf {
    let bin = std::env::var_os("CAIRN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("release").join("cairn"));
    if !bin.is_file() {
        eprintln!(
            "error: the broker binary {} does not exist.\n\
             This benchmark does not build it: run `cargo build --release -p cairn` first \
             (`scripts/bench {section}` does), or point CAIRN_BIN at a cairn binary.",
            bin.display()
        );
        std::process::exit(2);
    }
    bin
}

/// Filesystem type of `path`, from the longest matching mount point in `/proc/self/mounts`.
pub fn filesystem_type(path: &Path) -> String {
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

pub fn cpu_model() -> String {
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
