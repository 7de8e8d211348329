//! `cairn bench produce|consume|e2e`: load a topic, read it back, or both at once, and
//! report throughput and latency percentiles — what `kafka-producer-perf-test`,
//! `kafka-consumer-perf-test` and Kafka's `EndToEndLatency` tool do, against any
//! Kafka-compatible broker, with the CLI's own client (`conn`, `cluster`).
//!
//! ```text
//! produce   per partition leader, --in-flight connections, each with one Produce request
//!           outstanding (so K requests are in flight per leader, as Kafka's
//!           max.in.flight.requests.per.connection=K); each request carries a full batch of
//!           synthetic records for every partition that leader leads (up to 1 MiB, Kafka's
//!           max.request.size), as a saturated Kafka producer's requests do;
//!           latency = request written -> acknowledgement read
//! consume   per partition leader, one connection fetching every partition it leads;
//!           latency = Fetch written -> response read (includes any long-poll wait)
//! e2e       consumers start at the end of the topic, then producers send records whose
//!           value starts with a 16-byte stamp (run id, send time); latency = batch sent ->
//!           record decoded by the consumer, in this process (one monotonic clock)
//! ```
//!
//! Workers run on a multi-threaded runtime so encoding and decoding batches does not
//! queue behind one core; they share only atomic counters (progress, record claims) and
//! each keeps its own latency histogram (HdrHistogram, microseconds, 3 significant digits:
//! bounded memory however long the run), merged at the end.
//!
//! Stop rules: `--records N` (claimed one request at a time, so exactly N are sent or
//! counted) or `--duration SECS`; `consume` without either reads up to each partition's
//! high watermark as of start (like `cairn consume`). Ctrl-C stops every worker after its
//! current request and still prints what was measured, marked `interrupted`.
//!
//! The live progress bar goes to stderr and only when stderr is a terminal; the closing
//! table (or `--json` object) goes to stdout.

mod consumer;
mod producer;
mod report;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use cairn_protocol::ErrorCode;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;

use super::cluster::{metadata_request, Cluster, TopicInfo};
use super::error_code::KafkaError;
use super::record_format::{parse_start, StartAt};
use super::topic::create_topics_request;
use super::{parse_acks, ClientArgs, Codec};

use report::Report;

/// Largest `--record-size`: the largest batch `cairn produce` sends (a topic's
/// max.message.bytes decides what the broker takes).
const MAX_RECORD_BYTES: u32 = super::produce::MAX_BATCH_BYTES;
/// Largest `--in-flight`: connections per leader.
const MAX_IN_FLIGHT: u32 = 64;
/// Longest `--duration`: one day.
const MAX_DURATION_SECS: f64 = 86_400.0;
/// Records sent or read when neither `--records` nor `--duration` is given (produce and
/// e2e): about 100 MiB at the default record size, a few seconds on one node.
const DEFAULT_RECORDS: u64 = 100_000;
/// Runtime threads at most: workers are I/O-bound beyond encoding and decoding batches.
const MAX_THREADS: usize = 4;
/// How often the progress bar is redrawn.
const PROGRESS_TICK: Duration = Duration::from_millis(200);

/// `cairn bench`: throughput and latency of a broker, measured from this client.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, clap::Subcommand)]
enum BenchCommand {
    /// Produce synthetic records as fast as allowed (or at --rate) and report records/s,
    /// MiB/s and send->ack latency percentiles per request.
    Produce(ProduceBench),
    /// Read a topic and report records/s, MiB/s and fetch latency percentiles.
    Consume(ConsumeBench),
    /// Produce stamped records while tailing the topic in the same process, and report
    /// produce->consume latency percentiles and throughput.
    E2e(ProduceBench),
}

/// The topic: `-t TOPIC`, or as the first argument as in `cairn produce TOPIC`.
#[derive(Debug, Clone, clap::Args)]
struct TopicArg {
    /// Topic to benchmark
    #[arg(
        short = 't',
        long = "topic",
        value_name = "TOPIC",
        required_unless_present = "topic_name",
        conflicts_with = "topic_name"
    )]
    topic: Option<String>,
    /// The topic, as a positional argument (the same as -t)
    #[arg(value_name = "TOPIC", hide = true)]
    topic_name: Option<String>,
}

impl TopicArg {
    fn name(&self) -> anyhow::Result<&str> {
        self.topic
            .as_deref()
            .or(self.topic_name.as_deref())
            .ok_or_else(|| anyhow!("name the topic with -t TOPIC"))
    }
}

/// How long a run lasts: at most one of these.
#[derive(Debug, Clone, clap::Args)]
#[group(required = false, multiple = false)]
struct LimitArgs {
    /// Stop after this many records
    #[arg(short = 'n', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    records: Option<u64>,
    /// Stop after this many seconds (fractions allowed, e.g. 2.5)
    #[arg(short = 'd', long, value_name = "SECS", value_parser = parse_seconds)]
    duration: Option<Duration>,
}

/// `bench produce` and `bench e2e`.
#[derive(Debug, Clone, clap::Args)]
struct ProduceBench {
    #[command(flatten)]
    topic: TopicArg,
    #[command(flatten)]
    limit: LimitArgs,
    /// Bytes of each record's value (no key); e2e needs at least 16 for its stamp
    #[arg(short = 's', long, default_value_t = 1024, value_name = "BYTES",
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_RECORD_BYTES)))]
    record_size: u32,
    /// Acknowledgements to wait for: 0 (none; latency is then the time to write the
    /// request), 1 (leader), all
    #[arg(long, default_value = "all", value_parser = parse_acks)]
    acks: i16,
    /// Bytes of records per batch, as Kafka's batch.size (at least one record); a request
    /// carries one batch for each partition of its leader, up to 1 MiB
    #[arg(long, default_value_t = 16_384, value_name = "BYTES",
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_RECORD_BYTES)))]
    batch_size: u32,
    /// Requests in flight per partition leader (one connection each)
    #[arg(short = 'k', long, default_value_t = 5, value_name = "K",
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_IN_FLIGHT)))]
    in_flight: u32,
    /// Send at most this many records per second [default: as fast as the broker takes them]
    #[arg(long, visible_alias = "throughput", value_name = "RECORDS",
          value_parser = clap::value_parser!(u64).range(1..))]
    rate: Option<u64>,
    /// Write only to this partition [default: every partition]
    #[arg(short = 'p', long, value_name = "P", value_parser = clap::value_parser!(i32).range(0..))]
    partition: Option<i32>,
    /// Create the topic with N partitions if it does not exist
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    create_partitions: Option<i32>,
    /// Compression codec for record batches (the values are random letters, as
    /// kafka-producer-perf-test's, so they compress somewhat)
    #[arg(long, value_enum, default_value_t = Codec::None)]
    compression: Codec,
    /// Print one JSON object instead of the table
    #[arg(long)]
    json: bool,
}

/// `bench consume`.
#[derive(Debug, Clone, clap::Args)]
struct ConsumeBench {
    #[command(flatten)]
    topic: TopicArg,
    #[command(flatten)]
    limit: LimitArgs,
    /// Where to start in every partition: earliest, latest, an offset N, -N (N records
    /// before the end) or @TIME, as in `cairn consume` [default: earliest]. Without
    /// --records or --duration the run ends at the high watermarks as of start
    #[arg(short = 'o', long, value_name = "WHERE", value_parser = parse_start,
          allow_hyphen_values = true)]
    offset: Option<StartAt>,
    /// Read only this partition [default: all]
    #[arg(short = 'p', long, value_name = "P", value_parser = clap::value_parser!(i32).range(0..))]
    partition: Option<i32>,
    /// Longest time the broker may hold a fetch open waiting for data, in milliseconds
    #[arg(long, default_value_t = 500, value_name = "MS",
          value_parser = clap::value_parser!(u32).range(0..=i64::from(i32::MAX)))]
    max_wait_ms: u32,
    /// Print one JSON object instead of the table
    #[arg(long)]
    json: bool,
}

/// When a run ends (besides Ctrl-C and errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    /// After this many records.
    Records(u64),
    /// After this long.
    Duration(Duration),
    /// At the high watermarks as of start (consume only).
    AtEnd,
}

impl LimitArgs {
    /// The goal these flags set, `default` without either.
    fn goal(&self, default: Goal) -> Goal {
        match (self.records, self.duration) {
            (Some(n), _) => Goal::Records(n),
            (None, Some(d)) => Goal::Duration(d),
            (None, None) => default,
        }
    }
}

/// `--duration`: seconds, fractions allowed, more than 0 and at most a day.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    match text.trim().trim_end_matches('s').parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs <= MAX_DURATION_SECS => {
            Ok(Duration::from_secs_f64(secs))
        }
        _ => Err(format!(
            "expected a number of seconds above 0 and at most {MAX_DURATION_SECS}, got {text:?}"
        )),
    }
}

/// Checks what clap cannot: combinations of flags.
fn validate(command: &BenchCommand) -> anyhow::Result<()> {
    if let BenchCommand::E2e(args) = command {
        if (args.record_size as usize) < producer::STAMP_BYTES {
            bail!(
                "bench e2e stamps each value with its send time in {} bytes: use \
                 --record-size {} or more",
                producer::STAMP_BYTES,
                producer::STAMP_BYTES
            );
        }
    }
    Ok(())
}

/// Runs `cairn bench ...` on its own multi-threaded runtime.
pub(crate) fn run(args: &BenchArgs) -> anyhow::Result<()> {
    validate(&args.command)?;
    let threads = std::thread::available_parallelism()
        .map_or(2, std::num::NonZeroUsize::get)
        .clamp(2, MAX_THREADS);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(bench(args));
    runtime.shutdown_background();
    let (report, json) = result?;
    let text = if json {
        format!("{}\n", report.to_json())
    } else {
        report.table()
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // `| head`: the reader has what it wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("cannot write the report to stdout"),
    }
}

async fn bench(args: &BenchArgs) -> anyhow::Result<(Report, bool)> {
    let stop = Stop::new();
    let on_interrupt = Arc::clone(&stop);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_interrupt.interrupt();
        }
    });
    let client = &args.client;
    match &args.command {
        BenchCommand::Produce(p) => Ok((producer::produce(client, p, &stop).await?, p.json)),
        BenchCommand::Consume(c) => Ok((consumer::consume(client, c, &stop).await?, c.json)),
        BenchCommand::E2e(p) => Ok((consumer::end_to_end(client, p, &stop).await?, p.json)),
    }
}

/// Tells every worker to finish: set by Ctrl-C, by a worker that failed, or when a goal
/// is reached.
#[derive(Debug)]
struct Stop {
    flag: watch::Sender<bool>,
    interrupted: AtomicBool,
}

impl Stop {
    fn new() -> Arc<Stop> {
        Arc::new(Stop {
            flag: watch::Sender::new(false),
            interrupted: AtomicBool::new(false),
        })
    }

    /// Stops every worker.
    fn set(&self) {
        self.flag.send_replace(true);
    }

    /// Ctrl-C: stops every worker, and the report says so.
    fn interrupt(&self) {
        self.interrupted.store(true, Ordering::Relaxed);
        self.set();
    }

    fn is_set(&self) -> bool {
        *self.flag.borrow()
    }

    fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed)
    }

    /// Resolves once [`Stop::set`] was called (at once if it already was).
    async fn wait(&self) {
        let mut rx = self.flag.subscribe();
        // Err only if the sender is gone, which it is not while `self` lives.
        let _ = rx.wait_for(|&stopped| stopped).await;
    }
}

/// Counters the workers add to and the progress bar reads.
#[derive(Debug, Default)]
struct Tally {
    records: AtomicU64,
    bytes: AtomicU64,
    requests: AtomicU64,
}

impl Tally {
    fn add(&self, records: u64, bytes: u64) {
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// The live progress bar on stderr (hidden when stderr is not a terminal), redrawn every
/// [`PROGRESS_TICK`] with the current rate.
struct Progress {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress").finish_non_exhaustive()
    }
}

impl Progress {
    /// Starts drawing: a bar of records for `--records` (or, reading to the end, of
    /// `total_records`), a bar of time for `--duration`, else a counter. `label` names what
    /// is counted.
    fn start(
        goal: Goal,
        total_records: Option<u64>,
        label: &'static str,
        tally: Arc<Tally>,
    ) -> Progress {
        let started = Instant::now();
        let length = match (goal, total_records) {
            (Goal::Records(n), _) => Some(n),
            (Goal::Duration(d), _) => Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            (Goal::AtEnd, total) => total,
        };
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(length, ProgressDrawTarget::stderr());
            let template = match (goal, length) {
                (Goal::Duration(_), _) => "{spinner} {elapsed:>4} [{bar:30}] {msg}",
                (_, Some(_)) => "{spinner} {elapsed:>4} [{bar:30}] {pos}/{len} {msg}",
                (_, None) => "{spinner} {elapsed:>4} {pos} {msg}",
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        } else {
            ProgressBar::hidden()
        };
        let shown = bar.clone();
        let ticker = tokio::spawn(async move {
            let mut last = (Instant::now(), 0u64, 0u64);
            let mut interval = tokio::time::interval(PROGRESS_TICK);
            loop {
                interval.tick().await;
                let now = Instant::now();
                let (records, bytes) = (tally.records(), tally.bytes());
                let secs = now.duration_since(last.0).as_secs_f64().max(1e-6);
                let rate = records.saturating_sub(last.1) as f64 / secs;
                let mib = bytes.saturating_sub(last.2) as f64 / secs / report::MIB;
                last = (now, records, bytes);
                shown.tick();
                match goal {
                    Goal::Duration(_) => {
                        let ms = now.duration_since(started).as_millis();
                        shown.set_position(u64::try_from(ms).unwrap_or(u64::MAX));
                        shown.set_message(format!(
                            "{records} {label}  {rate:.0} {label}/s  {mib:.2} MiB/s"
                        ));
                    }
                    _ => {
                        shown.set_position(records);
                        shown.set_message(format!("{label}  {rate:.0}/s  {mib:.2} MiB/s"));
                    }
                }
            }
        });
        Progress { bar, ticker }
    }

    /// Removes the bar, so the table starts on a clean line.
    fn finish(self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}

/// The topic the run uses, with its partitions' leaders and the brokers' addresses; with
/// `create_partitions`, created first if missing.
/// `creatable`: the command has `--create-partitions` (the error for a missing topic says
/// so).
async fn resolve_topic(
    cluster: &mut Cluster,
    name: &str,
    creatable: bool,
    create_partitions: Option<i32>,
    timeout_ms: u32,
) -> anyhow::Result<(TopicInfo, BTreeMap<i32, String>)> {
    let known = cluster.metadata(Some(&[name])).await?;
    let missing = known.iter().find(|t| t.name == name).is_none_or(|t| {
        t.error
            .as_ref()
            .is_some_and(|e| e.code == ErrorCode::UnknownTopicOrPartition.code())
    });
    if missing {
        let Some(partitions) = create_partitions else {
            let or = if creatable {
                ", or pass --create-partitions N"
            } else {
                " and fill it with `cairn bench produce`"
            };
            bail!(
                "topic {name} does not exist: create it with `cairn topic create {name} \
                 --partitions N`{or}"
            );
        };
        let timeout = i32::try_from(timeout_ms).unwrap_or(i32::MAX);
        let response = cluster
            .admin()
            .call(|v| create_topics_request(v, name, partitions, -1, &[], timeout))
            .await?;
        let result = response
            .topics
            .iter()
            .find(|t| t.name.0.as_str() == name)
            .ok_or_else(|| anyhow!("the broker's CreateTopics answer left out topic {name}"))?;
        match KafkaError::check(result.error_code, result.error_message.as_ref()) {
            Ok(()) => eprintln!("created topic {name} with {partitions} partition(s)"),
            // Someone else created it meanwhile: use theirs.
            Err(e) if e.code == ErrorCode::TopicAlreadyExists.code() => {}
            Err(e) => return Err(anyhow!(e).context(format!("cannot create topic {name}"))),
        }
    }
    // A topic just created may be unknown for a moment to a broker that learns of it
    // asynchronously (Kafka's metadata propagation): ask again until --timeout-ms.
    let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
    let topic = loop {
        match cluster.topic_with_leaders(name, None).await {
            Err(e) if missing && Instant::now() < deadline && is_unknown_topic(&e) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            result => break result?,
        }
    };
    let response = cluster
        .admin()
        .call(|v| metadata_request(v, Some(&[name])))
        .await?;
    let brokers = response
        .brokers
        .iter()
        .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
        .collect();
    Ok((topic, brokers))
}

fn is_unknown_topic(e: &anyhow::Error) -> bool {
    e.downcast_ref::<KafkaError>()
        .is_some_and(|k| k.code == ErrorCode::UnknownTopicOrPartition.code())
}

/// The partitions a run uses: `only`, or all of them.
fn chosen_partitions(topic: &TopicInfo, only: Option<i32>) -> anyhow::Result<Vec<i32>> {
    match only {
        Some(p) => Ok(vec![topic.partition(p)?.index]),
        None => Ok(topic.partitions.iter().map(|p| p.index).collect()),
    }
}

/// `host:port` of broker `node`.
fn broker_addr(brokers: &BTreeMap<i32, String>, node: i32) -> anyhow::Result<&str> {
    brokers
        .get(&node)
        .map(String::as_str)
        .ok_or_else(|| anyhow!("broker {node} leads partitions but is not in the metadata"))
}

/// Awaits every worker; the first error (a failed worker already stopped the others).
async fn join_all<T>(
    workers: Vec<tokio::task::JoinHandle<anyhow::Result<T>>>,
) -> anyhow::Result<Vec<T>> {
    let mut results = Vec::with_capacity(workers.len());
    let mut first_error = None;
    for worker in workers {
        match worker.await {
            Ok(Ok(value)) => results.push(value),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(anyhow!("a benchmark worker failed: {e}"));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(results),
    }
}

/// Runs `work` as a worker: when it fails, every other worker is told to stop.
fn spawn_worker<T: Send + 'static>(
    stop: &Arc<Stop>,
    work: impl std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
) -> tokio::task::JoinHandle<anyhow::Result<T>> {
    let stop = Arc::clone(stop);
    tokio::spawn(async move {
        let result = work.await;
        if result.is_err() {
            stop.set();
        }
        result
    })
}
