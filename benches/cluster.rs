//! Cluster benchmark: a 3-node Cairn cluster (every partition on all three, raft) beside a
//! single node, both on this machine, driven by librdkafka, with a plain baseline measured in
//! the same run.
//!
//! - **produce throughput**: 1 KiB records to a 6-partition topic, acks=all to the cluster
//!   (a batch is acknowledged once a majority has it fsynced) and acks=1 to the single node,
//!   alternating, [`REPS`] runs each of `CAIRN_BENCH_CLUSTER_MIB` MiB (default 1024).
//!   Baseline: a raw sequential write of the same bytes with its fsync, on the same
//!   filesystem; and the storage ceiling of three replicas on one machine: three such
//!   writes at once (every replica writes every byte, and here they share one disk). CPU: seconds of CPU per GB of payload, summed over the nodes, and this
//!   process's (librdkafka's) share, since all of it shares the 2 cores.
//! - **disk bytes per payload byte**: `write_bytes` from `/proc/<pid>/io` of each node over
//!   the produce runs, divided by the payload bytes (what each replica writes for a byte a
//!   client sent: the record, its batch header and the index entries, plus raft's state).
//! - **leader failover**: a producer (acks=all, linger.ms=0, idempotent) sends a record to
//!   partition 0 every millisecond; the node leading it is killed with SIGKILL; the row is
//!   the time from the kill to the first acknowledgement of a record sent after it. The
//!   node is restarted between repetitions.
//!
//! Everything runs on one machine: three brokers, their replication and the client share its
//! cores and its disk, so the cluster's throughput here is a floor, not what three machines
//! give. The table is printed and written to `<target>/cairn-bench/cluster.md`.

mod common;

use std::fs::{self, File};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseRecord, Producer};
use tempfile::TempDir;

use common::{
    cairn_binary, cpu_model, filesystem_type, median, produce_records, producer, producer_config,
    target_dir, wait_for_topic, BenchProducer, BrokerProcess, Payloads, ProducerStats, MIB,
};

const NODES: usize = 3;
const PARTITIONS: i32 = 6;
const RECORD: usize = 1024;
const REPS: usize = 3;
const FAILOVERS: usize = 3;
const CHUNK: usize = 1 << 20;
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// CPU seconds `pid` has used (user + system, from /proc/<pid>/stat).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

/// Bytes `pid` has caused to be written to storage (`write_bytes` in /proc/<pid>/io).
fn write_bytes(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

struct Node {
    id: usize,
    dir: PathBuf,
    log: PathBuf,
    env: Vec<(&'static str, String)>,
    listen: String,
    process: Option<BrokerProcess>,
}

impl Node {
    fn start(&mut self, bin: &Path) {
        self.process = Some(BrokerProcess::start_at(
            bin,
            &self.dir,
            &self.log,
            &self.env,
            &self.listen,
        ));
    }

    fn pid(&self) -> u32 {
        self.process.as_ref().map_or(0, BrokerProcess::pid)
    }
}

fn cluster(bin: &Path, root: &Path, out: &Path) -> Vec<Node> {
    let peers: Vec<u16> = (0..NODES).map(|_| free_port()).collect();
    let voters = (1..=NODES)
        .map(|i| format!("{i}@127.0.0.1:{}", peers[i - 1]))
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes: Vec<Node> = (1..=NODES)
        .map(|i| Node {
            id: i,
            dir: root.join(format!("node{i}")),
            log: out.join(format!("cluster-node{i}.log")),
            env: vec![
                ("CAIRN_BROKER_NODE_ID", i.to_string()),
                ("CAIRN_BROKER_CONTROLLER_QUORUM_VOTERS", voters.clone()),
                ("CAIRN_BROKER_NUM_PARTITIONS", PARTITIONS.to_string()),
                ("CAIRN_HTTP_LISTEN", "off".to_string()),
            ],
            listen: format!("127.0.0.1:{}", free_port()),
            process: None,
        })
        .collect();
    for n in &mut nodes {
        n.start(bin);
    }
    nodes
}

fn bootstrap(nodes: &[Node]) -> String {
    nodes
        .iter()
        .map(|n| n.listen.clone())
        .collect::<Vec<_>>()
        .join(",")
}

/// Produces `bytes` of 1 KiB records round-robin over the partitions and waits for every
/// acknowledgement; returns the time from the first send to the last acknowledgement.
fn produce(p: &BenchProducer, topic: &str, payloads: &Payloads, bytes: u64) -> Duration {
    let count = bytes / RECORD as u64;
    produce_records(
        p,
        topic,
        payloads,
        RECORD,
        (0, count),
        PARTITIONS,
        RUN_TIMEOUT,
    )
}

/// Raw sequential write of `bytes` in 1 MiB writes, then fsync, timed together.
fn raw_write_fsync(dir: &Path, payloads: &Payloads, bytes: u64) -> Duration {
    let path = dir.join("raw-baseline.bin");
    let mut f = File::create(&path).expect("create the baseline file");
    let chunk = &payloads.buf[..CHUNK];
    let start = Instant::now();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        f.write_all(&chunk[..n]).expect("baseline write");
        left -= n as u64;
    }
    f.sync_all().expect("baseline fsync");
    let took = start.elapsed();
    drop(f);
    fs::remove_file(&path).expect("remove the baseline file");
    took
}

/// The storage ceiling of three replicas on this one machine: three raw sequential writes
/// of `bytes` each (1 MiB writes, then fsync), to three files at once, timed until the last
/// is durable. Every replica must write each payload byte once, and here all three share
/// one disk and one page cache, so `bytes` over this time is the most a 3-node cluster on
/// this machine can acknowledge per second, however cheap replication were.
fn three_raw_writes_fsync(dir: &Path, payloads: &Payloads, bytes: u64) -> Duration {
    let start = Instant::now();
    thread::scope(|s| {
        for i in 0..NODES {
            let replica = dir.join(format!("replica-{i}"));
            s.spawn(move || {
                fs::create_dir_all(&replica).expect("create a baseline directory");
                raw_write_fsync(&replica, payloads, bytes);
            });
        }
    });
    start.elapsed()
}

/// One measured produce run against `pids`: (MiB/s, CPU s per GB summed over `pids`, this
/// process's CPU s per GB, bytes written per pid).
fn measured_run(
    p: &BenchProducer,
    topic: &str,
    payloads: &Payloads,
    bytes: u64,
    pids: &[u32],
) -> (f64, f64, f64, Vec<u64>) {
    let cpu0: Vec<f64> = pids.iter().map(|&pid| cpu_seconds(pid)).collect();
    let w0: Vec<u64> = pids.iter().map(|&pid| write_bytes(pid)).collect();
    let me0 = cpu_seconds(std::process::id());
    let took = produce(p, topic, payloads, bytes);
    // Writeback of what the run dirtied is charged when dirtied, so read at once.
    let cpu: f64 = pids
        .iter()
        .zip(&cpu0)
        .map(|(&pid, c)| cpu_seconds(pid) - c)
        .sum();
    let written: Vec<u64> = pids
        .iter()
        .zip(&w0)
        .map(|(&pid, w)| write_bytes(pid).saturating_sub(*w))
        .collect();
    let me = cpu_seconds(std::process::id()) - me0;
    let gb = bytes as f64 / 1e9;
    (
        bytes as f64 / MIB / took.as_secs_f64(),
        cpu / gb,
        me / gb,
        written,
    )
}

/// The node leading partition 0 of `topic`, from any node's metadata.
fn leader_of_partition_0(p: &BenchProducer, topic: &str) -> Option<i32> {
    let md = p
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .ok()?;
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    let leader = t.partitions().iter().find(|p| p.id() == 0)?.leader();
    (leader > 0).then_some(leader)
}

/// Kill -9 of partition 0's leader while a record goes to it every millisecond: the time
/// from the kill to the first acknowledgement of a record sent after it.
fn failover(bin: &Path, nodes: &mut [Node], topic: &str, payloads: &Payloads) -> Duration {
    let stats = ProducerStats::new(Instant::now(), true);
    let base = stats.base;
    let mut config = producer_config(&bootstrap(nodes), "all", 0);
    config.set("enable.idempotence", "true");
    let p: BenchProducer = config.create_with_context(stats).expect("producer");
    wait_for_topic(p.client(), topic, PARTITIONS);
    let mut leader = 0;
    let mut sent_at: Vec<u64> = Vec::new();
    let mut killed_at: Option<u64> = None;
    let start = Instant::now();
    let mut i = 0usize;
    loop {
        let now = base.elapsed().as_nanos() as u64;
        let record = BaseRecord::with_opaque_to(topic, i)
            .payload(payloads.record(i as u64, RECORD))
            .partition(0);
        if p.send::<[u8], [u8]>(record).is_ok() {
            sent_at.push(now);
            i += 1;
        }
        if killed_at.is_none() && start.elapsed() > Duration::from_secs(2) {
            // Asked now, not at the start: leader balancing may have moved it meanwhile.
            leader = leader_of_partition_0(&p, topic).expect("a leader for partition 0");
            let node = &mut nodes[leader as usize - 1];
            if let Some(mut process) = node.process.take() {
                process.kill9();
            }
            killed_at = Some(base.elapsed().as_nanos() as u64);
        }
        if let Some(k) = killed_at {
            let acks = p.context().acks.lock().expect("poisoned").clone();
            if let Some(first) = acks
                .iter()
                .filter(|(idx, _)| sent_at.get(*idx).is_some_and(|&s| s > k))
                .map(|(_, at)| *at)
                .min()
            {
                let took = Duration::from_nanos(first - k);
                let _ = p.flush(Duration::from_secs(30));
                nodes[leader as usize - 1].start(bin);
                return took;
            }
            assert!(
                Duration::from_nanos(base.elapsed().as_nanos() as u64 - k)
                    < Duration::from_secs(30),
                "no acknowledgement 30 s after the leader was killed"
            );
        }
        thread::sleep(Duration::from_millis(1));
    }
}

fn main() {
    let bin = cairn_binary("cluster");
    let out = target_dir().join("cairn-bench");
    let base_dir = std::env::var_os("CAIRN_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| out.join("tmp"));
    fs::create_dir_all(&base_dir).expect("create the benchmark directory");
    let tmp = TempDir::new_in(&base_dir).expect("temp dir");
    let mib: u64 = std::env::var("CAIRN_BENCH_CLUSTER_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let bytes = mib << 20;
    let payloads = Payloads::new();
    println!(
        "cluster benchmark: {NODES} nodes vs 1, {mib} MiB of 1 KiB records per run, {REPS} runs; \
         {} CPUs ({}), {} on {}",
        thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model(),
        base_dir.display(),
        filesystem_type(&base_dir)
    );

    let single_dir = tmp.path().join("single");
    let single = BrokerProcess::start(
        &bin,
        &single_dir,
        &out.join("cluster-single.log"),
        &[
            ("CAIRN_BROKER_NUM_PARTITIONS", PARTITIONS.to_string()),
            ("CAIRN_HTTP_LISTEN", "off".to_string()),
        ],
    );
    let mut nodes = cluster(&bin, tmp.path(), &out);

    let single_p = producer(
        &single.bootstrap,
        "1",
        5,
        ProducerStats::new(Instant::now(), false),
    );
    let cluster_p = producer(
        &bootstrap(&nodes),
        "all",
        5,
        ProducerStats::new(Instant::now(), false),
    );
    wait_for_topic(single_p.client(), "bench-single", PARTITIONS);
    wait_for_topic(cluster_p.client(), "bench-cluster", PARTITIONS);
    // Warm-up: both paths once, untimed.
    produce(&single_p, "bench-single", &payloads, 16 << 20);
    produce(&cluster_p, "bench-cluster", &payloads, 16 << 20);

    let mut raw = Vec::new();
    let mut ceiling = Vec::new();
    let mut single_runs = Vec::new();
    let mut cluster_runs = Vec::new();
    for rep in 0..REPS {
        let r = raw_write_fsync(tmp.path(), &payloads, bytes);
        raw.push(bytes as f64 / MIB / r.as_secs_f64());
        let r = three_raw_writes_fsync(tmp.path(), &payloads, bytes);
        ceiling.push(bytes as f64 / MIB / r.as_secs_f64());
        let s = measured_run(&single_p, "bench-single", &payloads, bytes, &[single.pid()]);
        let pids: Vec<u32> = nodes.iter().map(Node::pid).collect();
        let c = measured_run(&cluster_p, "bench-cluster", &payloads, bytes, &pids);
        println!(
            "run {rep}: raw write+fsync {:.0} MiB/s, three at once {:.0} MiB/s each; single acks=1 \
             {:.0} MiB/s ({:.1} CPU-s/GB); cluster acks=all {:.0} MiB/s ({:.1} CPU-s/GB over 3 \
             nodes); written per node {:?}",
            raw[rep], ceiling[rep], s.0, s.1, c.0, c.1, c.3
        );
        single_runs.push(s);
        cluster_runs.push(c);
    }
    drop(single_p);
    drop(cluster_p);

    let mut failovers = Vec::new();
    for n in 0..FAILOVERS {
        let took = failover(&bin, &mut nodes, "bench-cluster", &payloads);
        println!("failover {n}: first acknowledgement {took:?} after the kill");
        failovers.push(took.as_secs_f64() * 1000.0);
        // Let the restarted node catch up before the next kill.
        thread::sleep(Duration::from_secs(5));
    }

    let med = |v: Vec<f64>| median(v).unwrap_or(0.0);
    let payload = bytes as f64;
    let single_ratio = med(single_runs
        .iter()
        .map(|r| r.3.iter().sum::<u64>() as f64 / payload)
        .collect());
    let per_node: Vec<f64> = (0..NODES)
        .map(|i| {
            med(cluster_runs
                .iter()
                .map(|r| r.3[i] as f64 / payload)
                .collect())
        })
        .collect();
    let table = format!(
        "| metric | cairn | baseline: raw write + fsync, same bytes | CPU s per GB: brokers / client |\n\
         |---|---:|---:|---:|\n\
         | 1 KiB produce, single node, acks=1 | {:.0} MiB/s | {:.0} MiB/s | {:.1} / {:.1} |\n\
         | 1 KiB produce, 3 nodes RF=3, acks=all | {:.0} MiB/s | {:.0} MiB/s | {:.1} (3 nodes) / {:.1} |\n\
         | storage ceiling of 3 replicas on this machine: 3 raw writes + fsync at once, per replica | {:.0} MiB/s | | |\n\
         | cluster acks=all / single acks=1; cluster / storage ceiling (median of per-run ratios) | {:.2}; {:.2} | | |\n\
         | disk bytes written per payload byte | single node {:.2}; cluster per node {} | 1.00 | |\n\
         | leader failover: kill -9 to first ack on the new leader (median of {FAILOVERS}) | {:.0} ms [{:.0}, {:.0}] | | |\n",
        med(single_runs.iter().map(|r| r.0).collect()),
        med(raw.clone()),
        med(single_runs.iter().map(|r| r.1).collect()),
        med(single_runs.iter().map(|r| r.2).collect()),
        med(cluster_runs.iter().map(|r| r.0).collect()),
        med(raw.clone()),
        med(cluster_runs.iter().map(|r| r.1).collect()),
        med(cluster_runs.iter().map(|r| r.2).collect()),
        med(ceiling.clone()),
        // Ratios within each run (the disk's speed drifts between runs), then the median.
        med(cluster_runs
            .iter()
            .zip(&single_runs)
            .map(|(c, s)| c.0 / s.0)
            .collect()),
        med(cluster_runs
            .iter()
            .zip(&ceiling)
            .map(|(c, limit)| c.0 / limit)
            .collect()),
        single_ratio,
        per_node
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(" / "),
        med(failovers.clone()),
        failovers.iter().copied().fold(f64::INFINITY, f64::min),
        failovers.iter().copied().fold(0.0, f64::max),
    );
    println!("\n{table}");
    fs::write(out.join("cluster.md"), &table).expect("write the table");
    for n in &nodes {
        println!("node {} log: {}", n.id, n.log.display());
    }
}
