//! Three replicas of one partition, each on its own storage shard, talking raft through the
//! real node-to-node transport over loopback TCP: a leader is elected, acks=all produces
//! commit on a majority and every replica holds the same batches at the same offsets; when
//! the leader goes away the others elect another and produce continues without a gap in
//! the offsets; the old leader, back, catches up.

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
    PartitionSpec {
        name: format!("t-0@{id}"),
        dir: dir.join(format!("node{id}")).join("t-0"),
        log: LogConfig {
            segment_bytes: 64 * 1024,
            ..LogConfig::default()
        },
        node_id: id,
        voters: vec![1, 2, 3],
    }
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

async fn open_replica(
    shards: &StorageShards,
    dir: &Path,
    id: u64,
    node: &Node,
    handles: &Handles,
) -> PartitionHandle {
    let transport = Arc::clone(&node.transport);
    let outbox: Outbox = Arc::new(move |to, bytes| {
        transport.send(to, GROUP, bytes);
    });
    let h = PartitionHandle::open_replicated(shards, spec(dir, id), Some(outbox))
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
    let mut out = Vec::new();
    let mut at = 0u64;
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
    let addrs: BTreeMap<u64, SocketAddr> = (1..=3).map(|id| (id, free_addr())).collect();
    let handles: Handles = Arc::default();
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        nodes.insert(id, start_node(id, &addrs, &handles).await);
    }
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
