//! Consumer-group benchmark: the real `cairn` binary under real Kafka consumers (librdkafka,
//! through the `rdkafka` crate, `BaseConsumer` + `subscribe`, each polled on its own thread),
//! next to baselines measured in the same run.
//!
//! The program builds nothing: it runs `<target>/release/cairn` (or `CAIRN_BIN`), which
//! `scripts/bench groups` builds first. Every part starts its own fresh broker (`cairn serve
//! --listen 127.0.0.1:0` on a fresh data directory under `<target>/cairn-bench/tmp`, or
//! `CAIRN_BENCH_DIR`), with `offsets.topic.num.partitions` at its default (50), and measures:
//!
//! - **rebalances** (`rebalance-3000`, `rebalance-0`: `group.initial.rebalance.delay.ms` at its
//!   default 3000, then at 0), on a topic of [`REBALANCE_PARTITIONS`] partitions:
//!   1. [`MEMBERS`] consumers subscribe to one new group: the time from the first `subscribe`
//!      until every consumer holds an assignment it received after that moment, and the
//!      assignments together cover every partition exactly once;
//!   2. [`LEAVERS`] of them close (librdkafka's close sends LeaveGroup): the time from the
//!      first close until the others hold new assignments that cover the topic again;
//!   3. one more consumer, in a child process (this program, `--group-child`), joins the
//!      stable group: from its `subscribe` until all hold new, complete assignments;
//!   4. that child is killed with SIGKILL (no LeaveGroup: the broker must notice the missing
//!      heartbeats; the child's `session.timeout.ms` is [`CHILD_SESSION_MS`]): from the kill
//!      until the others hold new, complete assignments again.
//!
//!   After each step the benchmark waits [`SETTLE`] (longer than a heartbeat interval) and
//!   checks that no further rebalance happened, that each consumer's `assignment()` is what its
//!   rebalance callback said, and that DescribeGroups (librdkafka's group list) shows the group
//!   Stable with the same members and the same assignments. Any overlap, gap or disagreement
//!   stops the benchmark with the details. Each row reports the rebalances (generations) every
//!   consumer went through (its assign callbacks), and the broker's and this process's CPU.
//!   Baseline: what the protocol and the client make the group wait, which is not the broker's
//!   doing, computed from the configured timeouts and the protocol's round trips (at the TCP
//!   ping-pong RTT), never from the measured run, as a floor–bound window ([`ProtocolWait`]):
//!   twice the initial delay for a new group (Kafka's `InitialDelayedJoin` waits once more when
//!   members arrived during the first delay); with no delay, the round trips, up to one of
//!   librdkafka's 1 s intervals between JoinGroups for a member that had to rejoin
//!   ([`LIBRDKAFKA_JOIN_INTERVAL`]); for a stable group, up to one `heartbeat.interval.ms`
//!   (3000) until the last member learns of the rebalance at its next heartbeat, plus two
//!   round trips — after the session timeout (less up to one heartbeat) for a killed member.
//!   The ratio is against the bound: over 1.00x, the broker made the group wait longer than the
//!   protocol can explain.
//! - **OffsetCommit** (`commits`): one consumer (a group of its own, assigned all
//!   [`COMMIT_PARTITIONS`] partitions) commits the 8 partitions synchronously
//!   (`commit(.., CommitMode::Sync)`) in a loop; then [`COMMIT_GROUPS`] such consumers, in 8
//!   groups placed on 8 different `__consumer_offsets` partitions, each on its own thread: commits
//!   per second and commit latency p50/p99. Baselines: the same loops producing one 100 B record
//!   with acks=all (one raft commit of one batch, the path a commit's offset records take) and
//!   a loopback TCP ping-pong of 100 B messages, back to back.
//!
//! The table is printed and written to `<target>/cairn-bench/groups.md`; the brokers' logs go
//! to `<target>/cairn-bench/groups-broker-*.log`, and their warnings and errors are reported.
//!
//! Arguments (after `cargo bench --bench groups --`): part ids (`rebalance-3000`,
//! `rebalance-0`, `commits`; a word selects every id containing it). docs/benchmarks.md
//! explains the rows and records results.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tempfile::TempDir;

use common::{
    batch_stats, cairn_binary, cpu_cell, cpu_model, filesystem_type, median, print_client_log,
    producer_config, quantile_us, render_table, sleep_until, target_dir, tcp_ping_pong,
    wait_for_topic, BrokerProcess, Cpu, CpuWindow, ProducerStats, Row,
};

/// Partitions of the topic the rebalancing group reads.
const REBALANCE_PARTITIONS: i32 = 300;
/// Consumers that join the group at once.
const MEMBERS: usize = 100;
/// Consumers that then close (LeaveGroup).
const LEAVERS: usize = 10;
/// librdkafka's defaults, written out (and what the baselines are computed from).
const HEARTBEAT_MS: u64 = 3_000;
const SESSION_MS: u64 = 45_000;
const MAX_POLL_MS: u64 = 300_000;
/// The session timeout of the consumer that is killed: shorter than librdkafka's 45 s so the
/// run stays short; the broker's `group.min.session.timeout.ms` is 6000.
const CHILD_SESSION_MS: u64 = 10_000;
/// Kafka's (and Cairn's) default `group.initial.rebalance.delay.ms`.
const DEFAULT_DELAY_MS: u64 = 3_000;
/// Quiet time after a convergence during which no further rebalance may happen (longer than
/// a heartbeat interval, so every member has heard of any rebalance still under way).
const SETTLE: Duration = Duration::from_millis(HEARTBEAT_MS + 1_000);
/// Longest a group may take to converge before the benchmark gives up.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(120);
/// librdkafka (classic protocol) sends a consumer's JoinGroups at least this far apart
/// (`rkcg_join_intvl` in `rdkafka_cgrp.c`; the MEMBER_ID_REQUIRED retry excepted), so a member
/// whose SyncGroup fails with REBALANCE_IN_PROGRESS rejoins a second or more later.
const LIBRDKAFKA_JOIN_INTERVAL: Duration = Duration::from_secs(1);
/// Protocol round trips of a consumer's first join: FindCoordinator, JoinGroup (answered
/// MEMBER_ID_REQUIRED, KIP-394), JoinGroup with the member id, SyncGroup.
const JOIN_ROUND_TRIPS: u32 = 4;

/// Partitions of the committed topic: every commit carries one offset for each.
const COMMIT_PARTITIONS: i32 = 8;
/// Concurrent committing consumers, one group each.
const COMMIT_GROUPS: usize = 8;
const COMMIT_WARMUP: Duration = Duration::from_secs(1);
const COMMIT_SECS: u64 = 5;
/// Size of the baseline's produced record: about one `__consumer_offsets` offset record.
const OFFSET_RECORD: usize = 100;
/// Back-to-back ping-pongs of the TCP baseline.
const PING_PONGS: u64 = 20_000;
/// Partitions of `__consumer_offsets` (the broker's default, which the benchmark keeps).
const OFFSETS_PARTITIONS: i32 = 50;

// ---------------------------------------------------------------------------------------------
// Group members and what their rebalance callbacks saw.

/// What one member's rebalance callbacks reported.
#[derive(Debug, Default)]
struct MemberState {
    /// Partitions held now (`None`: revoked, or never assigned).
    assignment: Option<Vec<i32>>,
    /// When each assign callback ran.
    assigns: Vec<Instant>,
    /// When each revoke callback ran.
    revokes: Vec<Instant>,
    /// Rebalance errors and consumer errors.
    errors: Vec<String>,
}

type Shared = Arc<Mutex<MemberState>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, MemberState> {
    state.lock().expect("member state mutex poisoned")
}

/// librdkafka errors reported to any client context in this process.
static CLIENT_ERRORS: AtomicU64 = AtomicU64::new(0);

/// Where a consumer's rebalance callbacks go: shared state (a member on a thread here), or
/// lines on stdout (the `--group-child` process, read by its parent).
enum Report {
    State(Shared),
    Stdout,
}

/// The consumer context: records rebalances and makes librdkafka's problems visible.
struct Tracker {
    topic: String,
    report: Report,
}

impl ClientContext for Tracker {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        print_client_log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        CLIENT_ERRORS.fetch_add(1, Ordering::Relaxed);
        eprintln!("librdkafka consumer error: {error}: {reason}");
    }
}

impl ConsumerContext for Tracker {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let now = Instant::now();
        let parts = |tpl: &TopicPartitionList| -> Vec<i32> {
            tpl.elements()
                .iter()
                .map(|e| {
                    assert_eq!(
                        e.topic(),
                        self.topic,
                        "assigned a partition of another topic"
                    );
                    e.partition()
                })
                .collect()
        };
        match &self.report {
            Report::State(state) => {
                let mut s = lock(state);
                match rebalance {
                    Rebalance::Assign(tpl) => {
                        s.assignment = Some(parts(tpl));
                        s.assigns.push(now);
                    }
                    Rebalance::Revoke(_) => {
                        s.assignment = None;
                        s.revokes.push(now);
                    }
                    Rebalance::Error(e) => s.errors.push(format!("rebalance error: {e}")),
                }
            }
            Report::Stdout => {
                let line = match rebalance {
                    Rebalance::Assign(tpl) => {
                        let p: Vec<String> = parts(tpl).iter().map(i32::to_string).collect();
                        format!("assign {}", p.join(","))
                    }
                    Rebalance::Revoke(_) => "revoke".to_string(),
                    Rebalance::Error(e) => format!("error {e}"),
                };
                let mut out = std::io::stdout().lock();
                // The parent reads these lines; a closed pipe means it is gone.
                let _ = writeln!(out, "{line}").and_then(|()| out.flush());
            }
        }
    }
}

type GroupConsumer = BaseConsumer<Tracker>;

/// A group member's settings: librdkafka's defaults written out (classic protocol, eager
/// `range,roundrobin` assignment, heartbeat 3 s, session 45 s unless given, max poll interval
/// 5 min), except that nothing commits by itself (`enable.auto.commit=false`: the commit rows
/// commit explicitly, the rebalance rows not at all) and Nagle is off, as in the broker
/// benchmark.
fn group_consumer(
    bootstrap: &str,
    group: &str,
    client_id: &str,
    session_ms: u64,
    tracker: Tracker,
) -> GroupConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("client.id", client_id)
        .set("group.protocol", "classic")
        .set("partition.assignment.strategy", "range,roundrobin")
        .set("session.timeout.ms", session_ms.to_string())
        .set("heartbeat.interval.ms", HEARTBEAT_MS.to_string())
        .set("max.poll.interval.ms", MAX_POLL_MS.to_string())
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "latest")
        .set("enable.partition.eof", "false")
        .set("socket.nagle.disable", "true")
        .create_with_context(tracker)
        .expect("create the librdkafka consumer")
}

/// A member polled on its own thread. The thread closes the consumer (LeaveGroup) when
/// stopped, provided it holds the last reference.
struct ThreadMember {
    name: String,
    state: Shared,
    consumer: Option<Arc<GroupConsumer>>,
    stop: Arc<AtomicBool>,
    /// When the thread began closing its consumer, and when the close returned.
    closing: Arc<Mutex<(Option<Instant>, Option<Instant>)>>,
    thread: Option<JoinHandle<()>>,
}

impl ThreadMember {
    fn start(bootstrap: &str, group: &str, topic: &str, name: String) -> ThreadMember {
        let state = Shared::default();
        let consumer = group_consumer(
            bootstrap,
            group,
            &name,
            SESSION_MS,
            Tracker {
                topic: topic.to_string(),
                report: Report::State(Arc::clone(&state)),
            },
        );
        // Connected, and the topic known, before any timing starts.
        consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{name}: metadata: {e}"));
        let consumer = Arc::new(consumer);
        let stop = Arc::new(AtomicBool::new(false));
        let closing = Arc::new(Mutex::new((None, None)));
        let thread = {
            let (consumer, stop, closing, state) = (
                Arc::clone(&consumer),
                Arc::clone(&stop),
                Arc::clone(&closing),
                Arc::clone(&state),
            );
            thread::Builder::new()
                .name(format!("poll-{name}"))
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        match consumer.poll(Duration::from_millis(100)) {
                            None => {}
                            Some(Ok(_)) => lock(&state)
                                .errors
                                .push("a record arrived on an empty topic".into()),
                            Some(Err(e)) => lock(&state).errors.push(format!("poll: {e}")),
                        }
                    }
                    closing.lock().expect("closing mutex poisoned").0 = Some(Instant::now());
                    // The last reference: dropping it closes the consumer (revoke, LeaveGroup).
                    drop(consumer);
                    closing.lock().expect("closing mutex poisoned").1 = Some(Instant::now());
                })
                .expect("spawn a polling thread")
        };
        ThreadMember {
            name,
            state,
            consumer: Some(consumer),
            stop,
            closing,
            thread: Some(thread),
        }
    }

    fn consumer(&self) -> &GroupConsumer {
        self.consumer
            .as_ref()
            .expect("a live member has its consumer")
    }

    /// Lets the polling thread close the consumer (it holds the last reference from now on).
    fn begin_close(&mut self) {
        self.consumer = None;
        self.stop.store(true, Ordering::Release);
    }

    /// Waits for the close to finish.
    fn finish_close(&mut self) {
        if let Some(t) = self.thread.take() {
            t.join().expect("polling thread panicked");
        }
    }
}

impl Drop for ThreadMember {
    fn drop(&mut self) {
        self.begin_close();
        self.finish_close();
    }
}

/// A member in a child process (this program with `--group-child`), so that it can be killed
/// without leaving the group. Its rebalance callbacks arrive as lines on its stdout.
struct ChildMember {
    name: String,
    state: Shared,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl ChildMember {
    /// Starts the child and waits until its consumer is connected (not yet subscribed).
    fn start(bootstrap: &str, group: &str, topic: &str, name: &str) -> ChildMember {
        let exe = std::env::current_exe().expect("this program's path");
        let mut child = Command::new(exe)
            .args(["--group-child", bootstrap, group, topic, name])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the child consumer");
        let stdout = child.stdout.take().expect("child stdout");
        let stdin = child.stdin.take();
        let state = Shared::default();
        let (ready_tx, ready_rx) = mpsc::channel();
        {
            let state = Arc::clone(&state);
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let now = Instant::now();
                    let mut s = lock(&state);
                    if line == "ready" {
                        let _ = ready_tx.send(());
                    } else if let Some(parts) = line.strip_prefix("assign ") {
                        let parts = parts
                            .split(',')
                            .filter(|p| !p.is_empty())
                            .map(|p| p.parse().expect("child: a partition number"))
                            .collect();
                        s.assignment = Some(parts);
                        s.assigns.push(now);
                    } else if line == "assign" {
                        s.assignment = Some(Vec::new());
                        s.assigns.push(now);
                    } else if line == "revoke" {
                        s.assignment = None;
                        s.revokes.push(now);
                    } else {
                        s.errors.push(format!("child: {line}"));
                    }
                }
            });
        }
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the child consumer did not get ready within 30 s");
        ChildMember {
            name: name.to_string(),
            state,
            child,
            stdin,
        }
    }

    fn subscribe(&mut self) {
        let stdin = self.stdin.as_mut().expect("child stdin");
        writeln!(stdin, "go")
            .and_then(|()| stdin.flush())
            .expect("tell the child to subscribe");
    }

    /// SIGKILL: no close, no LeaveGroup; the kernel closes its connections.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildMember {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `--group-child` process: one group member that reports its rebalances on stdout,
/// subscribes when its stdin says `go`, and exits when its stdin closes (the parent is gone).
fn group_child(args: &[String]) {
    let [bootstrap, group, topic, name] = args else {
        eprintln!("usage: --group-child BOOTSTRAP GROUP TOPIC CLIENT_ID");
        std::process::exit(2);
    };
    let consumer = group_consumer(
        bootstrap,
        group,
        name,
        CHILD_SESSION_MS,
        Tracker {
            topic: topic.clone(),
            report: Report::Stdout,
        },
    );
    consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("child: metadata");
    println!("ready");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .expect("child: read stdin");
    consumer.subscribe(&[topic]).expect("child: subscribe");
    thread::spawn(|| {
        let mut rest = String::new();
        while std::io::stdin().read_line(&mut rest).is_ok_and(|n| n > 0) {}
        std::process::exit(0);
    });
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(600) {
        if let Some(Err(e)) = consumer.poll(Duration::from_millis(100)) {
            println!("error poll: {e}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Convergence.

/// A live member as the checks see it: its name (client.id), its callbacks' state, and its
/// consumer when it lives in this process.
struct Live<'a> {
    name: &'a str,
    state: &'a Shared,
    consumer: Option<&'a GroupConsumer>,
}

fn live_members<'a>(threads: &'a [ThreadMember], child: Option<&'a ChildMember>) -> Vec<Live<'a>> {
    let mut live: Vec<Live<'a>> = threads
        .iter()
        .filter(|m| m.consumer.is_some())
        .map(|m| Live {
            name: &m.name,
            state: &m.state,
            consumer: m.consumer.as_deref(),
        })
        .collect();
    if let Some(c) = child {
        live.push(Live {
            name: &c.name,
            state: &c.state,
            consumer: None,
        });
    }
    live
}

/// A group that converged.
#[derive(Debug, Clone)]
struct Converged {
    /// From the step's start to the last member's assign callback.
    time: Duration,
    /// Assign callbacks per member since the step's start (min, max): the generations each
    /// went through.
    rebalances: (usize, usize),
    /// From the step's start to the last revoke callback (when the last member learned of
    /// the rebalance), if any member revoked.
    last_revoke: Option<Duration>,
    /// Assign callbacks of each member so far (to detect later rebalances).
    assign_counts: Vec<usize>,
    /// Partitions of each member.
    assignments: Vec<Vec<i32>>,
}

/// Whether every live member holds an assignment received after `since` and the assignments
/// cover `0..partitions` exactly once. `Err` says why not.
fn check_converged(
    live: &[Live<'_>],
    since: Instant,
    partitions: i32,
) -> Result<Converged, String> {
    let mut owner: Vec<Option<usize>> = vec![None; partitions as usize];
    let mut last = since;
    let mut last_revoke = None::<Instant>;
    let (mut min_r, mut max_r) = (usize::MAX, 0);
    let mut assign_counts = Vec::new();
    let mut assignments = Vec::new();
    for (i, m) in live.iter().enumerate() {
        let s = lock(m.state);
        let Some(&at) = s.assigns.last() else {
            return Err(format!("{} has no assignment yet", m.name));
        };
        if at < since {
            return Err(format!("{} still holds its earlier assignment", m.name));
        }
        let Some(parts) = &s.assignment else {
            return Err(format!(
                "{} revoked its assignment and is rejoining",
                m.name
            ));
        };
        for &p in parts {
            let slot = usize::try_from(p)
                .ok()
                .and_then(|p| owner.get_mut(p))
                .unwrap_or_else(|| panic!("{} was assigned partition {p} of {partitions}", m.name));
            if let Some(other) = slot {
                return Err(format!(
                    "partition {p} is held by both {} and {}",
                    live[*other].name, m.name
                ));
            }
            *slot = Some(i);
        }
        last = last.max(at);
        if let Some(&r) = s.revokes.iter().rev().find(|&&r| r >= since) {
            last_revoke = Some(last_revoke.map_or(r, |l: Instant| l.max(r)));
        }
        let n = s.assigns.iter().filter(|&&a| a >= since).count();
        min_r = min_r.min(n);
        max_r = max_r.max(n);
        assign_counts.push(s.assigns.len());
        assignments.push(parts.clone());
    }
    let missing: Vec<usize> = owner
        .iter()
        .enumerate()
        .filter(|(_, o)| o.is_none())
        .map(|(p, _)| p)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{} partitions unassigned (e.g. {:?})",
            missing.len(),
            &missing[..missing.len().min(5)]
        ));
    }
    Ok(Converged {
        time: last - since,
        rebalances: (min_r, max_r),
        last_revoke: last_revoke.map(|r| r - since),
        assign_counts,
        assignments,
    })
}

/// Waits until [`check_converged`] holds; panics with the last reason after
/// [`CONVERGE_TIMEOUT`]. Returns the convergence and when it was detected.
fn wait_converged(
    live: &[Live<'_>],
    since: Instant,
    partitions: i32,
    step: &str,
) -> (Converged, Instant) {
    let mut overlaps = 0u64;
    loop {
        match check_converged(live, since, partitions) {
            Ok(c) => {
                if overlaps > 0 {
                    println!(
                        "  WARNING {step}: {overlaps} checks saw a partition held by two live \
                         members before convergence"
                    );
                }
                return (c, Instant::now());
            }
            Err(why) => {
                if why.contains("held by both") {
                    overlaps += 1;
                }
                assert!(
                    since.elapsed() < CONVERGE_TIMEOUT,
                    "{step}: the group did not converge within {CONVERGE_TIMEOUT:?}: {why}"
                );
            }
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// After a convergence: waits [`SETTLE`], then checks that nothing rebalanced since, that
/// each member's own `assignment()` agrees with its callbacks, and that DescribeGroups shows
/// the group Stable with exactly these members and assignments. Panics otherwise.
/// Prints a measured step and checks that the group stays as it converged (see
/// [`verify_settled`]); returns the step for the table.
fn settled(
    s: Step,
    live: &[Live<'_>],
    since: Instant,
    group: &str,
    topic: &str,
    step: &str,
) -> Step {
    s.print();
    verify_settled(
        live,
        &s.converged,
        since,
        group,
        topic,
        REBALANCE_PARTITIONS,
        step,
    );
    s
}

fn verify_settled(
    live: &[Live<'_>],
    converged: &Converged,
    since: Instant,
    group: &str,
    topic: &str,
    partitions: i32,
    step: &str,
) {
    thread::sleep(SETTLE);
    let now = check_converged(live, since, partitions)
        .unwrap_or_else(|why| panic!("{step}: the group came apart after converging: {why}"));
    assert_eq!(
        now.assign_counts, converged.assign_counts,
        "{step}: members rebalanced again within {SETTLE:?} of converging"
    );
    for m in live {
        let errors = &lock(m.state).errors;
        assert!(errors.is_empty(), "{step}: {} reported {errors:?}", m.name);
    }
    for (m, parts) in live.iter().zip(&now.assignments) {
        let Some(consumer) = m.consumer else { continue };
        let tpl = consumer
            .assignment()
            .unwrap_or_else(|e| panic!("{step}: {}: assignment(): {e}", m.name));
        let mut own: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
        let mut told = parts.clone();
        own.sort_unstable();
        told.sort_unstable();
        assert_eq!(
            own, told,
            "{step}: {}: assignment() disagrees with the rebalance callback",
            m.name
        );
    }
    // DescribeGroups, through any live member in this process.
    let asker = live
        .iter()
        .find_map(|m| m.consumer)
        .expect("a live member in this process");
    let list = asker
        .fetch_group_list(Some(group), Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{step}: DescribeGroups {group}: {e}"));
    let info = list
        .groups()
        .iter()
        .find(|g| g.name() == group)
        .unwrap_or_else(|| panic!("{step}: DescribeGroups does not list {group}"));
    assert_eq!(
        info.state(),
        "Stable",
        "{step}: group state per DescribeGroups"
    );
    let mut described: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for member in info.members() {
        let parts = parse_assignment(member.assignment().unwrap_or_default(), topic)
            .unwrap_or_else(|e| panic!("{step}: {}'s assignment: {e}", member.client_id()));
        let clash = described.insert(member.client_id().to_string(), parts);
        assert!(
            clash.is_none(),
            "{step}: DescribeGroups lists {} twice",
            member.client_id()
        );
    }
    let mut expected: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (m, parts) in live.iter().zip(&now.assignments) {
        expected.insert(m.name.to_string(), parts.clone());
    }
    for parts in described.values_mut().chain(expected.values_mut()) {
        parts.sort_unstable();
    }
    assert_eq!(
        described.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "{step}: DescribeGroups members differ from the live consumers"
    );
    assert_eq!(
        described, expected,
        "{step}: DescribeGroups assignments differ from the consumers'"
    );
}

/// The partitions of `topic` in a ConsumerProtocol Assignment (version, then
/// `[topic, [partition]]`, non-flexible encoding; user data ignored).
fn parse_assignment(b: &[u8], topic: &str) -> Result<Vec<i32>, String> {
    if b.is_empty() {
        return Ok(Vec::new());
    }
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8], String> {
        let s = b
            .get(at..at + n)
            .ok_or_else(|| format!("truncated at byte {at} of {}", b.len()))?;
        at += n;
        Ok(s)
    };
    let _version = i16::from_be_bytes(take(2)?.try_into().map_err(|_| "version")?);
    let topics = i32::from_be_bytes(take(4)?.try_into().map_err(|_| "topic count")?);
    let mut parts = Vec::new();
    for _ in 0..topics.max(0) {
        let len = i16::from_be_bytes(take(2)?.try_into().map_err(|_| "name length")?);
        let name = String::from_utf8_lossy(take(len.max(0) as usize)?).into_owned();
        let n = i32::from_be_bytes(take(4)?.try_into().map_err(|_| "partition count")?);
        for _ in 0..n.max(0) {
            let p = i32::from_be_bytes(take(4)?.try_into().map_err(|_| "partition")?);
            if name != topic {
                return Err(format!("assigned {name}-{p}, not a partition of {topic}"));
            }
            parts.push(p);
        }
    }
    Ok(parts)
}

// ---------------------------------------------------------------------------------------------
// Rebalance steps.

/// One measured rebalance.
struct Step {
    metric: String,
    converged: Converged,
    /// What the protocol makes the clients wait, from the settings alone.
    wait: ProtocolWait,
    cpu: Cpu,
}

/// What the protocol makes a rebalance wait, computed from the configured timeouts (initial
/// rebalance delay, heartbeat interval, session timeout) and the protocol's round trips (at
/// the TCP ping-pong RTT), never from the measured run: a broker that answers late shows as
/// time over `bound`.
#[derive(Debug, Clone)]
struct ProtocolWait {
    /// The least the protocol can take (a member whose heartbeat happened to fall right after
    /// the rebalance began, say).
    floor: Duration,
    /// The most it can take with a broker that answers at once (the last member's heartbeat
    /// a whole interval away).
    bound: Duration,
    /// How both are made up, for the table.
    name: String,
}

impl ProtocolWait {
    /// A wait known exactly (`floor == bound`).
    fn exactly(wait: Duration, name: String) -> ProtocolWait {
        ProtocolWait {
            floor: wait,
            bound: wait,
            name,
        }
    }

    /// The others learn of a rebalance at their next heartbeat (within one
    /// `heartbeat.interval.ms`), then rejoin and sync: two round trips. `before`, known
    /// within [`before.0`, `before.1`], comes first (e.g. the broker noticing a dead member).
    fn heartbeat(before: (Duration, Duration), rtt: Duration, what: &str) -> ProtocolWait {
        let heartbeat = Duration::from_millis(HEARTBEAT_MS);
        ProtocolWait {
            floor: before.0 + rtt * 2,
            bound: before.1 + heartbeat + rtt * 2,
            name: format!("{what}heartbeat.interval.ms {HEARTBEAT_MS} + 2 RTT"),
        }
    }

    fn cell(&self) -> String {
        if self.floor == self.bound {
            format!("{} {}", secs(self.bound), self.name)
        } else {
            format!("{}–{} {}", secs(self.floor), secs(self.bound), self.name)
        }
    }
}

impl Step {
    fn print(&self) {
        let c = &self.converged;
        println!(
            "  {:.3} s, rebalances per member {}–{}, last revoke {}, protocol wait {:.3}–{:.3} s \
             ({}); CPU broker {:.2}, client {:.2}; busiest: {}",
            c.time.as_secs_f64(),
            c.rebalances.0,
            c.rebalances.1,
            c.last_revoke
                .map_or_else(|| "-".to_string(), |r| format!("{:.3} s", r.as_secs_f64())),
            self.wait.floor.as_secs_f64(),
            self.wait.bound.as_secs_f64(),
            self.wait.name,
            self.cpu.broker,
            self.cpu.client,
            self.cpu.busiest(3)
        );
        if c.time < self.wait.floor {
            // Faster than the protocol allows: the benchmark's account of the protocol, not
            // the broker, is wrong, and the baseline says nothing.
            println!(
                "  warning: {:.3} s is below the protocol's floor of {:.3} s",
                c.time.as_secs_f64(),
                self.wait.floor.as_secs_f64()
            );
        }
    }

    fn row(&self) -> Row {
        let c = &self.converged;
        let rebalances = if c.rebalances.0 == c.rebalances.1 {
            format!("{}", c.rebalances.0)
        } else {
            format!("{}–{}", c.rebalances.0, c.rebalances.1)
        };
        let plural = if c.rebalances == (1, 1) { "" } else { "s" };
        let over = (c.time.as_secs_f64() - self.wait.bound.as_secs_f64()) * 1e3;
        Row {
            metric: self.metric.clone(),
            cairn: format!(
                "{} ({rebalances} rebalance{plural}; {over:+.0} ms over the bound)",
                secs(c.time)
            ),
            baseline: self.wait.cell(),
            ratio: format!(
                "{:.2}x",
                c.time.as_secs_f64() / self.wait.bound.as_secs_f64().max(1e-9)
            ),
            target: String::new(),
            cpu: cpu_cell(std::iter::once(&self.cpu)),
        }
    }
}

/// Seconds with two decimals, or four below 0.1 s (a few round trips still show).
fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 0.1 {
        format!("{s:.4}")
    } else {
        format!("{s:.2}")
    }
}

/// Waits until the offsets topic exists and takes commits: a commit without group
/// membership (generation -1) to a group nobody uses. The first FindCoordinator creates
/// `__consumer_offsets`; this keeps that out of the timed steps.
fn warm_offsets_topic(bootstrap: &str, topic: &str) -> Duration {
    let start = Instant::now();
    let consumer: BaseConsumer<Tracker> = group_consumer(
        bootstrap,
        "bench-warmup",
        "bench-warmup",
        SESSION_MS,
        Tracker {
            topic: topic.to_string(),
            report: Report::State(Shared::default()),
        },
    );
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(0))
        .expect("build the warm-up commit");
    loop {
        match consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => return start.elapsed(),
            Err(e) => {
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "no commit accepted within 60 s (is __consumer_offsets created?): {e}"
                );
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// A fresh broker, started with `env` on a fresh data dir under `root`.
fn start_broker(
    bin: &Path,
    root: &Path,
    log_path: &Path,
    env: &[(&str, String)],
) -> (BrokerProcess, TempDir) {
    let work = tempfile::Builder::new()
        .prefix("groups-")
        .tempdir_in(root)
        .expect("create the benchmark temp dir");
    let broker = BrokerProcess::start(bin, &work.path().join("data"), log_path, env);
    println!(
        "cairn ready on {} (data {}); log {}",
        broker.bootstrap,
        work.path().display(),
        log_path.display()
    );
    (broker, work)
}

/// Creates `topic` with `partitions` partitions (auto-created by a producer's Metadata
/// request; the broker runs with that `num.partitions`).
fn create_topic(bootstrap: &str, topic: &str, partitions: i32) -> Duration {
    let start = Instant::now();
    let producer: BaseProducer<ProducerStats> = producer_config(bootstrap, "all", 0)
        .create_with_context(ProducerStats::new(Instant::now(), false))
        .expect("create the librdkafka producer");
    wait_for_topic(producer.client(), topic, partitions);
    start.elapsed()
}

/// The four rebalance steps against a fresh broker whose `group.initial.rebalance.delay.ms`
/// is `delay_ms` (`None`: left at its default).
fn rebalance_steps(
    bin: &Path,
    root: &Path,
    out_dir: &Path,
    delay_ms: Option<u64>,
    rtt: Duration,
) -> (Vec<Step>, Vec<String>) {
    let delay = delay_ms.unwrap_or(DEFAULT_DELAY_MS);
    let delay_label = match delay_ms {
        None => format!("delay {delay} ms (default)"),
        Some(d) => format!("delay {d} ms"),
    };
    let log_path = out_dir.join(format!("groups-broker-delay{delay}.log"));
    let mut env = vec![(
        "CAIRN_BROKER_NUM_PARTITIONS",
        REBALANCE_PARTITIONS.to_string(),
    )];
    if let Some(d) = delay_ms {
        env.push((
            "CAIRN_BROKER_GROUP_INITIAL_REBALANCE_DELAY_MS",
            d.to_string(),
        ));
    }
    let (mut broker, _work) = start_broker(bin, root, &log_path, &env);
    let topic = "bench-rebalance";
    let group = "bench-rebalance";
    let t = create_topic(&broker.bootstrap, topic, REBALANCE_PARTITIONS);
    println!(
        "  topic {topic}: {REBALANCE_PARTITIONS} partitions in {:.2} s",
        t.as_secs_f64()
    );
    let t = warm_offsets_topic(&broker.bootstrap, topic);
    println!("  __consumer_offsets ready in {:.2} s", t.as_secs_f64());

    let t = Instant::now();
    let mut members: Vec<ThreadMember> = (0..MEMBERS)
        .map(|i| ThreadMember::start(&broker.bootstrap, group, topic, format!("bench-m{i:03}")))
        .collect();
    println!(
        "  {MEMBERS} consumers created and connected in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let mut steps = Vec::new();

    // 1. Every consumer subscribes to a new group.
    let step = format!("join-{delay}");
    println!("{step}: {MEMBERS} consumers subscribe ...");
    let window = CpuWindow::start(broker.pid());
    let since = Instant::now();
    for m in &members {
        m.consumer()
            .subscribe(&[topic])
            .unwrap_or_else(|e| panic!("{}: subscribe: {e}", m.name));
    }
    let live = live_members(&members, None);
    let (c, at) = wait_converged(&live, since, REBALANCE_PARTITIONS, &step);
    let cpu = window.finish(at - since);
    let wait = if delay > 0 {
        // Kafka's InitialDelayedJoin waits the delay once, and once more because members
        // arrived during the first.
        ProtocolWait::exactly(
            Duration::from_millis(2 * delay) + rtt * JOIN_ROUND_TRIPS,
            format!("2 × initial delay {delay} ms + {JOIN_ROUND_TRIPS} RTT"),
        )
    } else {
        // No delay: the protocol's round trips alone. Members that arrive while a generation
        // completes rejoin, no sooner than librdkafka's join interval, which shows as time
        // over this floor (by chance: it depends on arrival order).
        ProtocolWait {
            floor: rtt * JOIN_ROUND_TRIPS,
            bound: LIBRDKAFKA_JOIN_INTERVAL + rtt * JOIN_ROUND_TRIPS * 2,
            name: format!(
                "{JOIN_ROUND_TRIPS} RTT, up to a librdkafka rejoin interval (1 s) + {} RTT",
                2 * JOIN_ROUND_TRIPS
            ),
        }
    };
    let s = Step {
        metric: format!(
            "join: {MEMBERS} consumers subscribe to a new group, {REBALANCE_PARTITIONS} \
             partitions, {delay_label} (s)"
        ),
        converged: c,
        wait,
        cpu,
    };
    steps.push(settled(s, &live, since, group, topic, &step));
    broker.check_alive(&step);

    // 2. Some close (LeaveGroup).
    let step = format!("leave-{delay}");
    println!("{step}: {LEAVERS} of {MEMBERS} consumers close ...");
    let window = CpuWindow::start(broker.pid());
    let started = Instant::now();
    for m in &mut members[MEMBERS - LEAVERS..] {
        m.begin_close();
    }
    // The rebalance starts with the first LeaveGroup: time from the first close.
    let deadline = Instant::now() + Duration::from_secs(10);
    let since = loop {
        let starts: Vec<Option<Instant>> = members[MEMBERS - LEAVERS..]
            .iter()
            .map(|m| m.closing.lock().expect("closing mutex poisoned").0)
            .collect();
        if starts.iter().all(Option::is_some) {
            break starts.into_iter().flatten().min().expect("closing members");
        }
        assert!(
            Instant::now() < deadline,
            "{step}: polling threads did not stop"
        );
        thread::sleep(Duration::from_millis(1));
    };
    let live = live_members(&members, None);
    let (c, at) = wait_converged(&live, since, REBALANCE_PARTITIONS, &step);
    let cpu = window.finish(at - started);
    let closes: Vec<Option<Instant>> = members[MEMBERS - LEAVERS..]
        .iter()
        .map(|m| m.closing.lock().expect("closing mutex poisoned").1)
        .collect();
    println!(
        "  (closes began {:.0} ms after they were asked; {} of {LEAVERS} had returned at \
         convergence, the last {} after the first began)",
        (since - started).as_secs_f64() * 1e3,
        closes.iter().flatten().count(),
        closes.iter().flatten().max().map_or_else(
            || "-".to_string(),
            |t| format!("{:.3} s", (*t - since).as_secs_f64())
        )
    );
    let wait = ProtocolWait::heartbeat((Duration::ZERO, Duration::ZERO), rtt, "");
    let s = Step {
        metric: format!("leave: {LEAVERS} of {MEMBERS} close (LeaveGroup), {delay_label} (s)"),
        converged: c,
        wait,
        cpu,
    };
    steps.push(settled(s, &live, since, group, topic, &step));
    broker.check_alive(&step);
    drop(live);
    for m in &mut members[MEMBERS - LEAVERS..] {
        m.finish_close();
    }

    // 3. One more consumer (a child process) joins the stable group.
    let remaining = MEMBERS - LEAVERS;
    let step = format!("join1-{delay}");
    println!("{step}: a consumer in a child process joins the {remaining} ...");
    let mut child = ChildMember::start(&broker.bootstrap, group, topic, "bench-child");
    let window = CpuWindow::start(broker.pid());
    let since = Instant::now();
    child.subscribe();
    let live = live_members(&members, Some(&child));
    let (c, at) = wait_converged(&live, since, REBALANCE_PARTITIONS, &step);
    let cpu = window.finish(at - since);
    // The newcomer's own first round trips (FindCoordinator, JoinGroup twice) come first.
    let joining = rtt * (JOIN_ROUND_TRIPS - 1);
    let wait = ProtocolWait::heartbeat((joining, joining), rtt, "3 RTT + ");
    let s = Step {
        metric: format!(
            "join: 1 consumer joins the stable group of {remaining}, {delay_label} (s)"
        ),
        converged: c,
        wait,
        cpu,
    };
    steps.push(settled(s, &live, since, group, topic, &step));
    broker.check_alive(&step);

    // 4. The child is killed: no LeaveGroup, the broker must notice the silence.
    let step = format!("kill-{delay}");
    println!("{step}: the child consumer is killed (SIGKILL) ...");
    let window = CpuWindow::start(broker.pid());
    let since = Instant::now();
    child.kill();
    let live = live_members(&members, None);
    let (c, at) = wait_converged(&live, since, REBALANCE_PARTITIONS, &step);
    let cpu = window.finish(at - since);
    // The broker expires the child `session.timeout.ms` after its last heartbeat, which came
    // at most one heartbeat interval before the kill.
    let session = Duration::from_millis(CHILD_SESSION_MS);
    let expiry = (
        session.saturating_sub(Duration::from_millis(HEARTBEAT_MS)),
        session,
    );
    let wait = ProtocolWait::heartbeat(
        expiry,
        rtt,
        &format!("session.timeout.ms {CHILD_SESSION_MS} (less up to one heartbeat) + "),
    );
    let s = Step {
        metric: format!(
            "crash: that consumer is killed (no LeaveGroup; session.timeout.ms \
             {CHILD_SESSION_MS}), {delay_label} (s)"
        ),
        converged: c,
        wait,
        cpu,
    };
    steps.push(settled(s, &live, since, group, topic, &step));
    broker.check_alive(&step);

    drop(child);
    for m in &mut members {
        m.begin_close();
    }
    drop(members);
    let problems = broker
        .problems()
        .into_iter()
        .map(|l| format!("{}: {l}", log_path.display()))
        .collect();
    broker.stop();
    (steps, problems)
}

// ---------------------------------------------------------------------------------------------
// Commits.

/// Kafka's placement of a group in `__consumer_offsets`: `abs(groupId.hashCode()) % n` with
/// Java's `String.hashCode` and `Utils.abs(i) = i & 0x7fffffff`.
fn offsets_partition(group: &str, partitions: i32) -> i32 {
    let hash = group.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    (hash & 0x7fff_ffff) % partitions
}

/// `count` group names whose groups live on different `__consumer_offsets` partitions.
fn spread_groups(prefix: &str, count: usize, avoid: i32) -> Vec<String> {
    let mut used = vec![avoid];
    let mut names = Vec::new();
    for k in 0.. {
        let name = format!("{prefix}-{k}");
        let p = offsets_partition(&name, OFFSETS_PARTITIONS);
        if !used.contains(&p) {
            used.push(p);
            names.push(name);
            if names.len() == count {
                break;
            }
        }
    }
    names
}

/// The timing of a closed-loop run: started together, measured after a warm-up.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    measure: Instant,
    end: Instant,
}

impl Window {
    fn new() -> Window {
        let start = Instant::now() + Duration::from_millis(50);
        let measure = start + COMMIT_WARMUP;
        Window {
            start,
            measure,
            end: measure + Duration::from_secs(COMMIT_SECS),
        }
    }
}

/// Latencies (ns) of the operations that started inside the measured window, and when the
/// last of them finished.
struct Loop {
    latencies: Vec<u64>,
    finished: Instant,
}

/// Synchronous commits of all [`COMMIT_PARTITIONS`] partitions, the offset growing by one
/// each time. Returns the loop and the last offset committed.
fn commit_loop(consumer: &GroupConsumer, topic: &str, w: Window, who: &str) -> (Loop, i64) {
    sleep_until(w.start);
    let mut latencies = Vec::new();
    let mut offset = 0i64;
    let mut finished = w.measure;
    loop {
        let now = Instant::now();
        if now >= w.end {
            break;
        }
        offset += 1;
        let mut tpl = TopicPartitionList::with_capacity(COMMIT_PARTITIONS as usize);
        for p in 0..COMMIT_PARTITIONS {
            tpl.add_partition_offset(topic, p, Offset::Offset(offset))
                .expect("build a commit");
        }
        let t = Instant::now();
        consumer
            .commit(&tpl, CommitMode::Sync)
            .unwrap_or_else(|e| panic!("{who}: commit of offset {offset} failed: {e}"));
        finished = Instant::now();
        if t >= w.measure {
            latencies.push((finished - t).as_nanos() as u64);
        }
        // Serves the commit callbacks librdkafka queues (a real consumer polls between
        // commits); outside the timing.
        if let Some(Err(e)) = consumer.poll(Duration::ZERO) {
            panic!("{who}: poll: {e}");
        }
    }
    (
        Loop {
            latencies,
            finished,
        },
        offset,
    )
}

/// Delivery reports of a synchronous producer: its caller waits for each one.
#[derive(Default)]
struct SyncAcks {
    /// Reports so far, and the first failure.
    done: Mutex<(u64, Option<String>)>,
    reported: Condvar,
}

impl ClientContext for SyncAcks {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        print_client_log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        CLIENT_ERRORS.fetch_add(1, Ordering::Relaxed);
        eprintln!("librdkafka producer error: {error}: {reason}");
    }
}

impl ProducerContext for SyncAcks {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let mut done = self.done.lock().expect("delivery mutex poisoned");
        done.0 += 1;
        if let Err((e, _)) = result {
            done.1.get_or_insert_with(|| e.to_string());
        }
        self.reported.notify_all();
    }
}

/// A producer for the synchronous baseline: the broker benchmark's settings with acks=all
/// and linger.ms=0. Its own thread serves the delivery reports as they arrive (a
/// `BaseProducer`'s `poll` always waits out its timeout), and wakes the waiting sender.
type SyncProducer = ThreadedProducer<SyncAcks>;

fn sync_producer(bootstrap: &str, topic: &str) -> SyncProducer {
    let producer: SyncProducer = producer_config(bootstrap, "all", 0)
        .create_with_context(SyncAcks::default())
        .expect("create the librdkafka producer");
    wait_for_topic(producer.client(), topic, COMMIT_PARTITIONS);
    producer
}

/// Synchronous produce of one [`OFFSET_RECORD`]-byte record with acks=all to `partition`,
/// each waiting for its delivery report.
fn produce_loop(producer: &SyncProducer, topic: &str, partition: i32, w: Window) -> Loop {
    let value = [0x5au8; OFFSET_RECORD];
    let acks = producer.context();
    sleep_until(w.start);
    let mut latencies = Vec::new();
    let mut finished = w.measure;
    loop {
        if Instant::now() >= w.end {
            break;
        }
        let t = Instant::now();
        let mut done = acks.done.lock().expect("delivery mutex poisoned");
        let before = done.0;
        let record: BaseRecord<'_, [u8], [u8], ()> = BaseRecord::to(topic)
            .payload(&value[..])
            .partition(partition);
        if let Err((e, _)) = producer.send(record) {
            panic!("cannot enqueue a record: {e}");
        }
        while done.0 == before {
            let (d, timeout) = acks
                .reported
                .wait_timeout(done, Duration::from_secs(30))
                .expect("delivery mutex poisoned");
            done = d;
            assert!(!timeout.timed_out(), "no delivery report in 30 s");
        }
        if let Some(e) = &done.1 {
            panic!("produce baseline: a record failed: {e}");
        }
        drop(done);
        finished = Instant::now();
        if t >= w.measure {
            latencies.push((finished - t).as_nanos() as u64);
        }
    }
    Loop {
        latencies,
        finished,
    }
}

/// Commits (or records) per second over the measured window, and all latencies.
fn rate(loops: &[Loop], w: Window) -> (f64, Vec<u64>) {
    let count: usize = loops.iter().map(|l| l.latencies.len()).sum();
    let end = loops
        .iter()
        .map(|l| l.finished)
        .max()
        .unwrap_or(w.end)
        .max(w.end);
    let all = loops
        .iter()
        .flat_map(|l| l.latencies.iter().copied())
        .collect();
    (count as f64 / (end - w.measure).as_secs_f64(), all)
}

/// Runs `work` on `threads` threads in one [`Window`], measuring the CPU of the window.
fn timed<T: Send + 'static>(
    broker_pid: u32,
    work: Vec<Box<dyn FnOnce(Window) -> T + Send>>,
) -> (Vec<T>, Window, Cpu) {
    let w = Window::new();
    let handles: Vec<JoinHandle<T>> = work
        .into_iter()
        .map(|f| thread::spawn(move || f(w)))
        .collect();
    sleep_until(w.measure);
    let window = CpuWindow::start(broker_pid);
    sleep_until(w.end);
    let cpu = window.finish(w.end - w.measure);
    let out = handles
        .into_iter()
        .map(|h| h.join().expect("a loop thread panicked"))
        .collect();
    (out, w, cpu)
}

/// A consumer alone in `group`, subscribed to `topic` (its caller polls it until assigned).
fn single_member(bootstrap: &str, group: &str, topic: &str) -> (GroupConsumer, Shared) {
    let state = Shared::default();
    let consumer = group_consumer(
        bootstrap,
        group,
        group,
        SESSION_MS,
        Tracker {
            topic: topic.to_string(),
            report: Report::State(Arc::clone(&state)),
        },
    );
    consumer.subscribe(&[topic]).expect("subscribe");
    (consumer, state)
}

struct CommitResults {
    rows: Vec<Row>,
    problems: Vec<String>,
}

fn commit_part(bin: &Path, root: &Path, out_dir: &Path, rtts: &[u64]) -> CommitResults {
    let log_path = out_dir.join("groups-broker-commits.log");
    let env = [("CAIRN_BROKER_NUM_PARTITIONS", COMMIT_PARTITIONS.to_string())];
    let (mut broker, work) = start_broker(bin, root, &log_path, &env);
    let data_dir = work.path().join("data");
    let topic = "bench-commits";
    let produce_topic = "bench-produce";
    create_topic(&broker.bootstrap, topic, COMMIT_PARTITIONS);
    create_topic(&broker.bootstrap, produce_topic, COMMIT_PARTITIONS);
    let t = warm_offsets_topic(&broker.bootstrap, topic);
    println!("  __consumer_offsets ready in {:.2} s", t.as_secs_f64());

    let solo = "bench-commit-solo".to_string();
    let solo_partition = offsets_partition(&solo, OFFSETS_PARTITIONS);
    let names = spread_groups("bench-commit", COMMIT_GROUPS, solo_partition);
    println!(
        "  groups: {solo} on __consumer_offsets-{solo_partition}; {}",
        names
            .iter()
            .map(|n| format!("{n} on -{}", offsets_partition(n, OFFSETS_PARTITIONS)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut consumers: Vec<(String, GroupConsumer, Shared)> = std::iter::once(solo.clone())
        .chain(names.iter().cloned())
        .map(|g| {
            let (c, s) = single_member(&broker.bootstrap, &g, topic);
            (g, c, s)
        })
        .collect();
    // Poll every consumer until each holds all partitions (the initial delay runs meanwhile).
    let start = Instant::now();
    loop {
        let mut done = true;
        for (g, c, s) in &consumers {
            if let Some(Err(e)) = c.poll(Duration::from_millis(10)) {
                panic!("{g}: poll: {e}");
            }
            done &= lock(s)
                .assignment
                .as_ref()
                .is_some_and(|a| a.len() == COMMIT_PARTITIONS as usize);
        }
        if done {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the committing consumers were not assigned their partitions within 60 s"
        );
    }
    println!(
        "  {} single-member groups assigned in {:.2} s",
        consumers.len(),
        start.elapsed().as_secs_f64()
    );
    let producers: Vec<Arc<SyncProducer>> = (0..COMMIT_GROUPS)
        .map(|_| Arc::new(sync_producer(&broker.bootstrap, produce_topic)))
        .collect();
    let pid = broker.pid();

    // Baseline 1, then Cairn 1, Cairn 8, baseline 8: each baseline next to its Cairn run.
    println!("produce-1: acks=all, 1 × {OFFSET_RECORD} B, synchronous, {COMMIT_SECS} s ...");
    let p0 = Arc::clone(&producers[0]);
    let (loops, w, p1_cpu) = timed(
        pid,
        vec![Box::new(move |w| produce_loop(&p0, produce_topic, 0, w))],
    );
    let (p1_rate, p1_lat) = rate(&loops, w);
    print_loop("produce-1", p1_rate, &p1_lat, &p1_cpu);

    println!("commit-1: 1 consumer, {COMMIT_PARTITIONS} partitions per commit, sync, {COMMIT_SECS} s ...");
    let (g, c, s) = consumers.remove(0);
    let (mut out, w, c1_cpu) = timed(
        pid,
        vec![Box::new(move |w| {
            let r = commit_loop(&c, topic, w, &g);
            (r, g, c, s)
        })],
    );
    let ((l, last), g, c, s) = out.remove(0);
    let (c1_rate, c1_lat) = rate(std::slice::from_ref(&l), w);
    print_loop("commit-1", c1_rate, &c1_lat, &c1_cpu);
    consumers.insert(0, (g, c, s));
    let mut last_offsets = vec![last];

    println!(
        "commit-{COMMIT_GROUPS}: {COMMIT_GROUPS} consumers in {COMMIT_GROUPS} groups, sync on \
         {COMMIT_GROUPS} threads, {COMMIT_SECS} s ..."
    );
    let solo_member = consumers.remove(0);
    type Committer = ((Loop, i64), String, GroupConsumer, Shared);
    let work: Vec<Box<dyn FnOnce(Window) -> Committer + Send>> = consumers
        .drain(..)
        .map(|(g, c, s)| -> Box<dyn FnOnce(Window) -> Committer + Send> {
            Box::new(move |w| {
                let r = commit_loop(&c, topic, w, &g);
                (r, g, c, s)
            })
        })
        .collect();
    let (out, w, c8_cpu) = timed(pid, work);
    consumers.push(solo_member);
    let mut loops = Vec::new();
    for ((l, last), g, c, s) in out {
        loops.push(l);
        last_offsets.push(last);
        consumers.push((g, c, s));
    }
    let (c8_rate, c8_lat) = rate(&loops, w);
    print_loop(
        &format!("commit-{COMMIT_GROUPS}"),
        c8_rate,
        &c8_lat,
        &c8_cpu,
    );

    println!(
        "produce-{COMMIT_GROUPS}: acks=all, 1 × {OFFSET_RECORD} B, synchronous, on \
         {COMMIT_GROUPS} threads (partition each), {COMMIT_SECS} s ..."
    );
    let work: Vec<Box<dyn FnOnce(Window) -> Loop + Send>> = producers
        .iter()
        .enumerate()
        .map(|(p, producer)| -> Box<dyn FnOnce(Window) -> Loop + Send> {
            let producer = Arc::clone(producer);
            Box::new(move |w| produce_loop(&producer, produce_topic, p as i32, w))
        })
        .collect();
    let (loops, w, p8_cpu) = timed(pid, work);
    let (p8_rate, p8_lat) = rate(&loops, w);
    print_loop(
        &format!("produce-{COMMIT_GROUPS}"),
        p8_rate,
        &p8_lat,
        &p8_cpu,
    );
    broker.check_alive("commits");

    // Every group's committed offsets (OffsetFetch) are its last commit.
    for ((g, c, s), last) in consumers.iter().zip(&last_offsets) {
        let mut tpl = TopicPartitionList::new();
        for p in 0..COMMIT_PARTITIONS {
            tpl.add_partition(topic, p);
        }
        let committed = c
            .committed_offsets(tpl, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{g}: OffsetFetch: {e}"));
        for e in committed.elements() {
            assert_eq!(
                e.offset(),
                Offset::Offset(*last),
                "{g}: committed offset of partition {} is not the last commit",
                e.partition()
            );
        }
        let st = lock(s);
        assert_eq!(st.assigns.len(), 1, "{g}: rebalanced during the commits");
        assert!(st.errors.is_empty(), "{g}: {:?}", st.errors);
    }
    println!(
        "  committed offsets verified (OffsetFetch) for all {} groups",
        consumers.len()
    );
    let (ob, obytes) = batch_stats(&data_dir, "__consumer_offsets", OFFSETS_PARTITIONS);
    let (pb, pbytes) = batch_stats(&data_dir, produce_topic, COMMIT_PARTITIONS);
    println!(
        "  stored batches: __consumer_offsets {ob}, {:.0} B on average; {produce_topic} {pb}, \
         {:.0} B on average",
        obytes as f64 / ob.max(1) as f64,
        pbytes as f64 / pb.max(1) as f64
    );
    drop(consumers);
    drop(producers);

    let rtt50 = quantile_us(rtts, 0.5);
    let rtt99 = quantile_us(rtts, 0.99);
    let mut rows = Vec::new();
    for (label, c_rate, c_lat, c_cpu, p_rate, p_lat) in [
        (
            format!("OffsetCommit, 1 consumer, sync, {COMMIT_PARTITIONS} partitions per commit"),
            c1_rate,
            &c1_lat,
            &c1_cpu,
            p1_rate,
            &p1_lat,
        ),
        (
            format!(
                "OffsetCommit, {COMMIT_GROUPS} consumers in {COMMIT_GROUPS} groups, sync on \
                 {COMMIT_GROUPS} threads"
            ),
            c8_rate,
            &c8_lat,
            &c8_cpu,
            p8_rate,
            &p8_lat,
        ),
    ] {
        let threads = if label.contains("threads") {
            format!(" on {COMMIT_GROUPS} threads")
        } else {
            String::new()
        };
        rows.push(Row {
            metric: format!("{label} (commits/s)"),
            cairn: format!("{c_rate:.0}"),
            baseline: format!(
                "{p_rate:.0} produce acks=all, 1 × {OFFSET_RECORD} B, sync{threads} (rec/s)"
            ),
            ratio: format!("{:.2}", c_rate / p_rate),
            target: String::new(),
            cpu: cpu_cell(std::iter::once(c_cpu)),
        });
        for (q, name) in [(0.5, "p50"), (0.99, "p99")] {
            let (c, p) = (quantile_us(c_lat, q), quantile_us(p_lat, q));
            let rtt = if q < 0.9 { rtt50 } else { rtt99 };
            rows.push(Row {
                metric: format!("↳ commit latency {name} (µs)"),
                cairn: format!("{c:.0}"),
                baseline: format!("{p:.0} produce acks=all; {rtt:.0} TCP ping-pong RTT"),
                ratio: format!("{:.1}x ({:.0}x RTT)", c / p, c / rtt),
                target: String::new(),
                cpu: cpu_cell(std::iter::once(c_cpu)),
            });
        }
    }
    let problems = broker
        .problems()
        .into_iter()
        .map(|l| format!("{}: {l}", log_path.display()))
        .collect();
    broker.stop();
    CommitResults { rows, problems }
}

fn print_loop(what: &str, rate: f64, latencies: &[u64], cpu: &Cpu) {
    println!(
        "  {what}: {rate:.0}/s, p50 {:.0} µs, p99 {:.0} µs ({} samples); CPU broker {:.2}, \
         client {:.2}; busiest: {}",
        quantile_us(latencies, 0.5),
        quantile_us(latencies, 0.99),
        latencies.len(),
        cpu.broker,
        cpu.client,
        cpu.busiest(3)
    );
}

// ---------------------------------------------------------------------------------------------
// Main.

/// Command-line options (after `cargo bench ... --`).
struct Options {
    /// Run by `cargo bench` (which passes `--bench`).
    bench: bool,
    /// Words that select parts by id (`rebalance-3000`, `rebalance-0`, `commits`): a part
    /// runs if its id contains one of them. None: everything runs.
    filters: Vec<String>,
}

impl Options {
    fn parse(args: &[String]) -> Options {
        let mut options = Options {
            bench: false,
            filters: Vec::new(),
        };
        for arg in args {
            match arg.as_str() {
                "--bench" => options.bench = true,
                flag if flag.starts_with("--") => {
                    eprintln!("error: unknown option {flag} (arguments: part ids)");
                    std::process::exit(2);
                }
                word => options.filters.push(word.to_string()),
            }
        }
        options
    }

    fn selected(&self, id: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| id.contains(f.as_str()))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--group-child") {
        group_child(&args[1..]);
        return;
    }
    // `cargo bench` passes `--bench`; anything else (e.g. `cargo test --benches`) only checks
    // that the program starts, since a run takes minutes and needs the release binary.
    let options = Options::parse(&args);
    if !options.bench {
        println!(
            "groups benchmark: not run (use `cargo bench --bench groups` or `scripts/bench groups`)"
        );
        return;
    }
    let bin = cairn_binary("groups");
    let out_dir = target_dir().join("cairn-bench");
    let bench_root: PathBuf = std::env::var_os("CAIRN_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| out_dir.join("tmp"));
    fs::create_dir_all(&bench_root).expect("create the benchmark data dir");
    let fs_type = filesystem_type(&bench_root);
    if fs_type == "tmpfs" {
        eprintln!(
            "warning: {} is on a tmpfs; its numbers do not describe a broker on a disk",
            bench_root.display()
        );
    }
    let started = Instant::now();

    println!("tcp ping-pong: {PING_PONGS} round trips of {OFFSET_RECORD} B, back to back ...");
    let rtts = tcp_ping_pong(&[0x5a; OFFSET_RECORD], None, PING_PONGS);
    let rtt = Duration::from_nanos(
        median(rtts.iter().map(|&r| r as f64).collect()).unwrap_or(0.0) as u64,
    );
    println!(
        "  p50 {:.0} µs, p99 {:.0} µs",
        quantile_us(&rtts, 0.5),
        quantile_us(&rtts, 0.99)
    );

    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for (id, delay) in [("rebalance-3000", None), ("rebalance-0", Some(0))] {
        if !options.selected(id) {
            continue;
        }
        println!(
            "{id}: fresh broker, group.initial.rebalance.delay.ms {}",
            delay.unwrap_or(DEFAULT_DELAY_MS)
        );
        let (steps, mut p) = rebalance_steps(&bin, &bench_root, &out_dir, delay, rtt);
        rows.extend(steps.iter().map(Step::row));
        problems.append(&mut p);
    }
    if options.selected("commits") {
        println!("commits: fresh broker");
        let mut r = commit_part(&bin, &bench_root, &out_dir, &rtts);
        rows.append(&mut r.rows);
        problems.append(&mut r.problems);
    }

    let total = started.elapsed();
    let header = format!(
        "Cairn consumer-group benchmark: {} CPUs ({}), data dir {} ({fs_type}), {:.0} s.\n\
         librdkafka {} consumers run in the benchmark process, on the same CPUs as the broker; \
         a fresh broker per part.\n{}Rebalances: one run each; baseline: what the protocol \
         makes the clients wait, from the settings (floor–bound; the ratio is against the \
         bound; RTT: TCP ping-pong p50, {:.0} µs). Commits: {} s after {} s \
         of warm-up, next to the same loop producing with acks=all.\n\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model(),
        bench_root.display(),
        total.as_secs_f64(),
        rdkafka::util::get_rdkafka_version().1,
        if options.filters.is_empty() {
            String::new()
        } else {
            format!("Only the parts matching {:?}. ", options.filters)
        },
        rtt.as_secs_f64() * 1e6,
        COMMIT_SECS,
        COMMIT_WARMUP.as_secs(),
    );
    let table = render_table(&rows, &header);
    println!("\n{table}");
    let client_errors = CLIENT_ERRORS.load(Ordering::Relaxed);
    if client_errors > 0 {
        println!("librdkafka reported {client_errors} client errors (printed above)");
    }
    if !problems.is_empty() {
        println!(
            "brokers logged {} warnings/errors, e.g.:\n{}",
            problems.len(),
            problems
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let out = out_dir.join("groups.md");
    match fs::create_dir_all(&out_dir).and_then(|()| fs::write(&out, &table)) {
        Ok(()) => println!("table written to {}", out.display()),
        Err(e) => eprintln!("could not write {}: {e}", out.display()),
    }
}
