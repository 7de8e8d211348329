//! Three replicas of one partition, each on its own storage shard, talking raft through the
//! real node-to-node transport over loopback TCP: a leader is elected, acks=all produces
//! commit on a majority and every replica holds the same batches at the same offsets; when
//! the leader goes away the others elect another and produce continues without a gap in
//! the offsets; the old leader, back, catches up. A replica away while the leader deleted
//! the records it would need catches up through a raft snapshot.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_cluster::{Transport, TransportConfig};
use cairn_partition::{
    is_raft_control, Acks, Outbox, PartitionError, PartitionHandle, PartitionSpec, StorageShards,
};
use cairn_storage::batch;
use cairn_storage::{LogConfig, VerifiedBatch};

const GROUP: u64 = 42;

type Handles = Arc<Mutex<BTreeMap<u64, PartitionHandle>>>;

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

fn spec(dir: &Path, id: u64) -> PartitionSpec {
    spec_with(
        dir,
        id,
        LogConfig {
            segment_bytes: 64 * 1024,
            ..LogConfig::default()
        },
    )
}

fn spec_with(dir: &Path, id: u64, log: LogConfig) -> PartitionSpec {
    PartitionSpec {
        name: format!("t-0@{id}"),
        dir: replica_dir(dir, id),
        log,
        node_id: id,
        voters: vec![1, 2, 3],
    }
}

fn replica_dir(dir: &Path, id: u64) -> std::path::PathBuf {
    dir.join(format!("node{id}")).join("t-0")
}

/// Base offsets of the segment files in a replica's directory.
fn segment_bases(dir: &Path) -> Vec<u64> {
    let mut bases: Vec<u64> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".log")?.parse().ok()
        })
        .collect();
    bases.sort_unstable();
    bases
}

fn data_batch(i: u32) -> VerifiedBatch {
    let b = batch::build_batch(1_000 + i64::from(i), &[format!("value-{i}").as_bytes()]);
    VerifiedBatch::new(Bytes::from(b), u32::MAX).expect("valid")
}

/// One node: its transport, and a task handing what arrives to its replica.
struct Node {
    transport: Arc<Transport>,
    pump: tokio::task::JoinHandle<()>,
}

async fn start_node(id: u64, addrs: &BTreeMap<u64, SocketAddr>, handles: &Handles) -> Node {
    let config = TransportConfig::new(id, "test-cluster", addrs[&id], addrs.clone());
    let (transport, mut inbound) = Transport::start(config).await.expect("transport");
    let transport = Arc::new(transport);
    let handles = Arc::clone(handles);
    let pump = tokio::spawn(async move {
        while let Some(m) = inbound.recv().await {
            let handle = handles.lock().expect("lock").get(&id).cloned();
            if let (Some(h), GROUP) = (handle, m.group) {
                h.step(m.message);
            }
        }
    });
    Node { transport, pump }
}

/// Transports for nodes 1, 2 and 3 on free loopback ports, routing to `handles`.
async fn three_nodes(handles: &Handles) -> BTreeMap<u64, Node> {
    let addrs: BTreeMap<u64, SocketAddr> = (1..=3).map(|id| (id, free_addr())).collect();
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        nodes.insert(id, start_node(id, &addrs, handles).await);
    }
    nodes
}

async fn open_replica(
    shards: &StorageShards,
    dir: &Path,
    id: u64,
    node: &Node,
    handles: &Handles,
) -> PartitionHandle {
    open_replica_with(shards, spec(dir, id), id, node, handles).await
}

async fn open_replica_with(
    shards: &StorageShards,
    spec: PartitionSpec,
    id: u64,
    node: &Node,
    handles: &Handles,
) -> PartitionHandle {
    let transport = Arc::clone(&node.transport);
    let outbox: Outbox = Arc::new(move |to, bytes| {
        transport.send(to, GROUP, bytes);
    });
    let h = PartitionHandle::open_replicated(shards, spec, Some(outbox))
        .await
        .expect("open");
    handles.lock().expect("lock").insert(id, h.clone());
    h
}

async fn leader_among(handles: &Handles, within: Duration) -> (u64, PartitionHandle) {
    let started = Instant::now();
    loop {
        let found = handles
            .lock()
            .expect("lock")
            .iter()
            .find(|(_, h)| h.state().is_leader)
            .map(|(id, h)| (*id, h.clone()));
        if let Some(found) = found {
            return found;
        }
        assert!(started.elapsed() < within, "no leader within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every value a replica serves from offset 0, as (offset, value).
async fn read_values(h: &PartitionHandle) -> Vec<(u64, String)> {
    read_values_from(h, 0).await
}

/// Every value a replica serves from `from`, as (offset, value).
async fn read_values_from(h: &PartitionHandle, from: u64) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut at = from;
    loop {
        let data = h.fetch(at, 1 << 20).await.expect("fetch");
        let bytes = data.read.load().expect("load");
        if bytes.is_empty() {
            return out;
        }
        for item in batch::iter_batches(&bytes, u32::MAX) {
            let (_, header, b) = item.expect("valid");
            at = header.next_offset() as u64;
            if is_raft_control(b) {
                continue;
            }
            let value = batch::first_record_value(b).expect("a value");
            out.push((
                header.base_offset as u64,
                String::from_utf8_lossy(value).into_owned(),
            ));
        }
    }
}

async fn wait_for_high_watermark(h: &PartitionHandle, hw: u64) {
    let started = Instant::now();
    while h.state().high_watermark < hw {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{} stuck at high watermark {}",
            h.name(),
            h.state().high_watermark
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_replicate_fail_over_and_catch_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shards = StorageShards::new(3).expect("shards");
    let handles: Handles = Arc::default();
    let nodes = three_nodes(&handles).await;
    for id in 1..=3 {
        open_replica(&shards, dir.path(), id, &nodes[&id], &handles).await;
    }
    let (leader_id, leader) = leader_among(&handles, Duration::from_secs(10)).await;
    for i in 0..100u32 {
        let ack = leader
            .produce(vec![data_batch(i)], Acks::All)
            .await
            .expect("acks=all produce");
        assert_eq!(ack.base_offset, u64::from(i), "offsets are dense");
    }
    let follower = handles
        .lock()
        .expect("lock")
        .iter()
        .find(|(id, _)| **id != leader_id)
        .map(|(_, h)| h.clone())
        .expect("a follower");
    assert!(matches!(
        follower.produce(vec![data_batch(999)], Acks::All).await,
        Err(PartitionError::NotLeader)
    ));
    // Every replica knows the leader and the voters; the leader knows who is in sync.
    assert_eq!(follower.state().leader_id, leader_id);
    assert_eq!(follower.replicas().voters, vec![1, 2, 3]);
    assert!(
        follower.replicas().in_sync.is_empty(),
        "only the leader knows"
    );
    wait_for("every replica in sync", || {
        leader.replicas().in_sync == vec![1, 2, 3]
    })
    .await;
    let replicas: Vec<PartitionHandle> = handles.lock().expect("lock").values().cloned().collect();
    let expected: Vec<(u64, String)> = (0..100).map(|i| (i, format!("value-{i}"))).collect();
    for h in &replicas {
        wait_for_high_watermark(h, 100).await;
        assert_eq!(read_values(h).await, expected, "{}", h.name());
    }

    // The leader goes away; the two others elect one of them and go on.
    let gone = handles
        .lock()
        .expect("lock")
        .remove(&leader_id)
        .expect("the leader");
    gone.close().await.expect("close");
    let failed_over = Instant::now();
    let survivor = handles
        .lock()
        .expect("lock")
        .values()
        .next()
        .cloned()
        .expect("a survivor");
    let (new_id, new_leader) = leader_among(&handles, Duration::from_secs(10)).await;
    assert_ne!(new_id, leader_id);
    let mut first_ack = None;
    for i in 100..200u32 {
        let ack = loop {
            match new_leader.produce(vec![data_batch(i)], Acks::All).await {
                Ok(ack) => break ack,
                // The new leader is confirmed once its own entry commits.
                Err(PartitionError::NotLeader) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("produce {i}: {e}"),
            }
        };
        first_ack.get_or_insert(failed_over.elapsed());
        assert_eq!(ack.base_offset, u64::from(i), "no gap after the election");
    }
    let first_ack = first_ack.expect("acknowledged");
    // The closed replica drops out of the new leader's in-sync set.
    wait_for("the closed replica to leave the in-sync set", || {
        !new_leader.replicas().in_sync.contains(&leader_id)
    })
    .await;
    assert!(new_leader.replicas().in_sync.contains(&new_id));
    assert_eq!(survivor.state().leader_id, new_id);
    eprintln!("first acknowledged produce {first_ack:?} after the leader closed");
    assert!(
        first_ack < Duration::from_secs(3),
        "the first acknowledged produce after the leader left took {first_ack:?}"
    );

    // The old leader comes back and catches up.
    let back = open_replica(&shards, dir.path(), leader_id, &nodes[&leader_id], &handles).await;
    wait_for_high_watermark(&back, 200).await;
    let expected: Vec<(u64, String)> = (0..200).map(|i| (i, format!("value-{i}"))).collect();
    let replicas: Vec<PartitionHandle> = handles.lock().expect("lock").values().cloned().collect();
    for h in &replicas {
        wait_for_high_watermark(h, 200).await;
        assert_eq!(read_values(h).await, expected, "{}", h.name());
    }
    for h in replicas {
        h.close().await.expect("close");
    }
    for (_, node) in nodes {
        node.pump.abort();
    }
    shards.shutdown();
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "waited 10 s for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn produce_until_acked(leader: &PartitionHandle, i: u32) -> u64 {
    loop {
        match leader.produce(vec![data_batch(i)], Acks::All).await {
            Ok(ack) => return ack.base_offset,
            Err(PartitionError::NotLeader) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => panic!("produce {i}: {e}"),
        }
    }
}

/// DeleteRecords is a raft entry every replica applies; a replica that was away while the
/// leader deleted the segments it would need gets a snapshot (where the log goes on, not
/// the deleted data) and continues from there with the leader's log start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_behind_deleted_records_catches_up_through_a_snapshot() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().expect("tempdir");
    let shards = StorageShards::new(3).expect("shards");
    let handles: Handles = Arc::default();
    let nodes = three_nodes(&handles).await;
    // Small segments (about 50 batches each), and deletions retried every second (no
    // retention by time: the records are stamped 1970).
    let log = LogConfig {
        segment_bytes: 4096,
        retention_check_interval_ms: 1000,
        retention_ms: None,
        ..LogConfig::default()
    };
    for id in 1..=3 {
        let spec = spec_with(dir.path(), id, log.clone());
        open_replica_with(&shards, spec, id, &nodes[&id], &handles).await;
    }
    let (leader_id, leader) = leader_among(&handles, Duration::from_secs(10)).await;
    for i in 0..50u32 {
        assert_eq!(produce_until_acked(&leader, i).await, u64::from(i));
    }
    let away_id = (1..=3).find(|id| *id != leader_id).expect("a follower");
    let away = handles.lock().expect("lock")[&away_id].clone();
    wait_for_high_watermark(&away, 50).await;
    handles.lock().expect("lock").remove(&away_id);
    away.close().await.expect("close");
    for i in 50..450u32 {
        assert_eq!(produce_until_acked(&leader, i).await, u64::from(i));
    }
    // Acknowledged once committed; both running replicas apply it.
    assert_eq!(
        leader
            .delete_records(Some(300))
            .await
            .expect("delete records"),
        300
    );
    let running: Vec<PartitionHandle> = handles.lock().expect("lock").values().cloned().collect();
    for h in &running {
        wait_for(&format!("{}'s log start", h.name()), || {
            h.state().log_start_offset == 300
        })
        .await;
    }
    // The leader's segments below the new start go (at once, or at the next retention
    // check once the absent replica no longer counts as active): nothing it has is what
    // the absent replica needs next.
    let leader_dir = replica_dir(dir.path(), leader_id);
    wait_for("the leader to delete its old segments", || {
        segment_bases(&leader_dir).first().is_some_and(|b| *b > 50)
    })
    .await;

    // Back, the replica installs a snapshot and catches up from the leader's log start.
    let spec = spec_with(dir.path(), away_id, log.clone());
    let back = open_replica_with(&shards, spec, away_id, &nodes[&away_id], &handles).await;
    wait_for_high_watermark(&back, 450).await;
    wait_for("the log start to reach the replica", || {
        back.state().log_start_offset == 300
    })
    .await;
    let expected: Vec<(u64, String)> = (300..450).map(|i| (i, format!("value-{i}"))).collect();
    assert_eq!(read_values_from(&back, 300).await, expected);
    assert!(matches!(
        back.fetch(100, 1 << 20).await,
        Err(PartitionError::OffsetOutOfRange { .. })
    ));
    assert!(
        segment_bases(&replica_dir(dir.path(), away_id))
            .first()
            .is_some_and(|b| *b > 50),
        "the snapshot replaced the replica's old log"
    );

    // It goes on as a replica: more records reach it, and if the leader leaves, the two
    // others (it among them) elect a leader that continues the offsets.
    let gone = handles
        .lock()
        .expect("lock")
        .remove(&leader_id)
        .expect("the leader");
    gone.close().await.expect("close");
    let (_, new_leader) = leader_among(&handles, Duration::from_secs(10)).await;
    for i in 450..470u32 {
        assert_eq!(produce_until_acked(&new_leader, i).await, u64::from(i));
    }
    wait_for_high_watermark(&back, 470).await;
    let expected: Vec<(u64, String)> = (300..470).map(|i| (i, format!("value-{i}"))).collect();
    let replicas: Vec<PartitionHandle> = handles.lock().expect("lock").values().cloned().collect();
    for h in &replicas {
        wait_for_high_watermark(h, 470).await;
        assert_eq!(read_values_from(h, 300).await, expected, "{}", h.name());
        h.close().await.expect("close");
    }
    for (_, node) in nodes {
        node.pump.abort();
    }
    shards.shutdown();
}

/// A leader asked to step down (graceful shutdown) hands the leadership to a caught-up
/// follower: a new leader acknowledges produces well within an election timeout, with no
/// offset gap, and the old leader refuses produces with the retriable NOT_LEADER meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_hands_its_leadership_to_a_follower() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shards = StorageShards::new(3).expect("shards");
    let handles: Handles = Arc::default();
    let nodes = three_nodes(&handles).await;
    for id in 1..=3 {
        open_replica(&shards, dir.path(), id, &nodes[&id], &handles).await;
    }
    let (old_id, old) = leader_among(&handles, Duration::from_secs(10)).await;
    for i in 0..50u32 {
        produce_until_acked(&old, i).await;
    }
    wait_for("every replica in sync", || {
        old.replicas().in_sync == vec![1, 2, 3]
    })
    .await;
    let started = Instant::now();
    let target = old
        .transfer_leadership(None)
        .await
        .expect("transfer")
        .expect("a follower to take over");
    assert_ne!(target, old_id);
    let new = loop {
        let found = handles
            .lock()
            .expect("lock")
            .iter()
            .find(|(id, h)| **id != old_id && h.state().is_leader)
            .map(|(_, h)| h.clone());
        if let Some(h) = found {
            break h;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "no new leader 1 s after the handoff started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(matches!(
        old.produce(vec![data_batch(999)], Acks::All).await,
        Err(PartitionError::NotLeader)
    ));
    let offset = produce_until_acked(&new, 50).await;
    let took = started.elapsed();
    eprintln!("handoff: first acknowledged produce on the new leader after {took:?}");
    assert_eq!(offset, 50, "no gap across the handoff");
    assert!(took < Duration::from_secs(1), "handoff took {took:?}");
    let replicas: Vec<PartitionHandle> = handles.lock().expect("lock").values().cloned().collect();
    for h in replicas {
        h.close().await.expect("close");
    }
    for (_, node) in nodes {
        node.pump.abort();
    }
    shards.shutdown();
}

/// A new group elects the voter listed first (its preferred leader) in its first term,
/// whether that replica opens before the others (its first pre-vote is lost) or after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_group_elects_its_preferred_leader_first() {
    for (preferred, open_order) in [(2, [2, 1, 3]), (3, [1, 2, 3]), (1, [3, 1, 2])] {
        let dir = tempfile::tempdir().expect("tempdir");
        let shards = StorageShards::new(3).expect("shards");
        let handles: Handles = Arc::default();
        let nodes = three_nodes(&handles).await;
        let mut voters = vec![preferred];
        voters.extend((1..=3).filter(|id| *id != preferred));
        for id in open_order {
            let mut spec = spec(dir.path(), id);
            spec.voters = voters.clone();
            open_replica_with(&shards, spec, id, &nodes[&id], &handles).await;
        }
        let (leader_id, leader) = leader_among(&handles, Duration::from_secs(5)).await;
        assert_eq!(
            (leader_id, leader.state().leader_epoch),
            (preferred, 1),
            "voters {voters:?} opened in the order {open_order:?}"
        );
        let opened: Vec<PartitionHandle> =
            handles.lock().expect("lock").values().cloned().collect();
        for h in opened {
            h.close().await.ok();
        }
        for node in nodes.values() {
            node.pump.abort();
        }
    }
}
