//! A partition replica through its handle: produce, fetch, restart, idempotence.

use std::path::Path;

use bytes::Bytes;
use cairn_partition::{
    is_raft_control, Acks, OffsetQuery, PartitionError, PartitionHandle, PartitionSpec,
    ProducerError, StorageShards,
};
use cairn_storage::batch::{self, BatchHeader};
use cairn_storage::{BatchError, LogConfig, VerifiedBatch};

fn spec(dir: &Path) -> PartitionSpec {
    PartitionSpec {
        name: "t-0".into(),
        dir: dir.join("t-0"),
        log: LogConfig {
            segment_bytes: 64 * 1024,
            ..LogConfig::default()
        },
        node_id: 1,
        voters: vec![1],
    }
}

fn data_batch(ts: i64, values: &[&[u8]]) -> VerifiedBatch {
    verified(batch::build_batch(ts, values))
}

fn verified(b: Vec<u8>) -> VerifiedBatch {
    VerifiedBatch::new(Bytes::from(b), u32::MAX).expect("a valid batch")
}

/// An idempotent producer's batch: producer id, epoch and base sequence set, CRC redone.
fn idempotent_batch(pid: i64, epoch: i16, seq: i32, values: &[&[u8]]) -> VerifiedBatch {
    let mut b = batch::build_batch(1_000, values);
    b[43..51].copy_from_slice(&pid.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    b[53..57].copy_from_slice(&seq.to_be_bytes());
    let crc = batch::compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    verified(b)
}

/// Every client-visible batch (Cairn's raft control batches filtered out) from `from`.
async fn read_all(p: &PartitionHandle, from: u64) -> Vec<(BatchHeader, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = from;
    loop {
        let data = p.fetch(at, 1 << 20).await.expect("fetch");
        let Some(next) = data.read.next_offset() else {
            break;
        };
        let bytes = data.read.load().expect("load");
        for item in batch::iter_batches(&bytes, u32::MAX) {
            let (_, h, b) = item.expect("valid");
            if !is_raft_control(b) {
                out.push((h, b.to_vec()));
            }
        }
        at = next;
    }
    out
}

#[tokio::test]
async fn produce_fetch_and_high_watermark() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shards = StorageShards::new(2).expect("shards");
    let p = PartitionHandle::open(&shards, spec(dir.path()))
        .await
        .expect("open");
    let s = p.state();
    assert!(s.is_leader, "a group of one elects itself");
    assert_eq!(s.leader_epoch, 1);
    // The new leader's no-op entry is committed and took no offset: the first record will
    // be at offset 0.
    assert_eq!((s.high_watermark, s.log_end_offset), (0, 0));

    let a = p
        .produce(vec![data_batch(10, &[b"a", b"b"])], Acks::Leader)
        .await
        .expect("produce");
    assert_eq!(a.base_offset, 0);
    let b = p
        .produce(vec![data_batch(20, &[b"c"])], Acks::All)
        .await
        .expect("produce");
    assert_eq!(b.base_offset, 2);
    assert_eq!(p.state().high_watermark, 3);
    let two = p
        .produce(
            vec![data_batch(30, &[b"d"]), data_batch(40, &[b"e", b"f"])],
            Acks::All,
        )
        .await
        .expect("two batches");
    assert_eq!(two.base_offset, 3);
    assert_eq!(p.state().high_watermark, 6);

    let batches = read_all(&p, 0).await;
    assert_eq!(batches.len(), 4);
    assert_eq!(batches[0].0.base_offset, 0);
    assert!(batches.iter().all(|(h, _)| h.partition_leader_epoch == 1));
    // Past the high watermark: out of range; at it: nothing.
    assert!(p.fetch(6, 100).await.expect("fetch at hw").read.is_empty());
    assert!(matches!(
        p.fetch(7, 100).await,
        Err(PartitionError::OffsetOutOfRange { .. })
    ));

    let latest = p.list_offsets(OffsetQuery::Latest).await.expect("latest");
    assert_eq!(latest.offset, Some(6));
    let by_time = p
        .list_offsets(OffsetQuery::Timestamp(25))
        .await
        .expect("by time");
    assert_eq!(by_time.offset, Some(3));
    let max = p
        .list_offsets(OffsetQuery::MaxTimestamp)
        .await
        .expect("max");
    assert_eq!((max.timestamp, max.offset), (40, Some(4)));
    assert_eq!(p.epoch_end_offset(1).await.expect("epoch"), Some((1, 6)));

    // Two batches passed as one (its length disagrees with its header) cannot even be
    // handed to a partition: only whole, verified batches can.
    let mut glued = data_batch(50, &[b"g"]).bytes().to_vec();
    glued.extend_from_slice(data_batch(60, &[b"h"]).bytes());
    assert!(matches!(
        VerifiedBatch::new(glued.into(), u32::MAX),
        Err(BatchError::LengthMismatch { .. })
    ));
    let after = p
        .produce(vec![data_batch(70, &[b"i"])], Acks::All)
        .await
        .expect("still serving");
    assert_eq!(after.base_offset, 6);
    p.close().await.expect("close");
    shards.shutdown();
}

#[tokio::test]
async fn restart_keeps_data_and_bumps_the_epoch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shards = StorageShards::new(1).expect("shards");
    let p = PartitionHandle::open(&shards, spec(dir.path()))
        .await
        .expect("open");
    for i in 0..50u8 {
        p.produce(vec![data_batch(i as i64, &[&[i; 100]])], Acks::All)
            .await
            .expect("produce");
    }
    let before = read_all(&p, 0).await;
    p.close().await.expect("close");
    // Five restarts.
    for round in 2..7 {
        let p = PartitionHandle::open(&shards, spec(dir.path()))
            .await
            .expect("reopen");
        let s = p.state();
        assert_eq!(s.leader_epoch, round, "each restart is a new term");
        // Everything is committed again, and the raft entries the restarts appended (one per
        // restart) took no offset: offsets still count records.
        assert_eq!(
            (s.log_start_offset, s.high_watermark, s.log_end_offset),
            (0, 50, 50),
            "round {round}"
        );
        assert_eq!(
            p.list_offsets(OffsetQuery::Latest)
                .await
                .expect("latest")
                .offset,
            Some(50)
        );
        assert_eq!(read_all(&p, 0).await, before, "round {round}");
        assert_eq!(
            p.epoch_end_offset(1).await.expect("epoch"),
            Some((1, 50)),
            "epoch 1 ended where the first restart began"
        );
        p.close().await.expect("close");
    }
    // A record after the restarts continues the offsets without a gap, and the log start
    // moved by DeleteRecords stays where it was put across one more restart.
    let p = PartitionHandle::open(&shards, spec(dir.path()))
        .await
        .expect("reopen");
    let ack = p
        .produce(vec![data_batch(99, &[b"after"])], Acks::All)
        .await
        .expect("produce");
    assert_eq!(ack.base_offset, 50);
    assert_eq!(
        p.delete_records(Some(50)).await.expect("delete records"),
        50
    );
    p.close().await.expect("close");
    let p = PartitionHandle::open(&shards, spec(dir.path()))
        .await
        .expect("reopen");
    let s = p.state();
    assert_eq!((s.log_start_offset, s.high_watermark), (50, 51));
    let read = read_all(&p, 50).await;
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].0.base_offset, 50);
    p.close().await.expect("close");
    shards.shutdown();
}

#[tokio::test]
async fn idempotent_producer_dedups_orders_and_fences_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shards = StorageShards::new(1).expect("shards");
    let p = PartitionHandle::open(&shards, spec(dir.path()))
        .await
        .expect("open");
    let b0 = idempotent_batch(42, 0, 0, &[b"x", b"y"]);
    let b1 = idempotent_batch(42, 0, 2, &[b"z"]);
    let first = p.produce(vec![b0.clone()], Acks::All).await.expect("b0");
    let second = p.produce(vec![b1.clone()], Acks::All).await.expect("b1");
    // A retry is acknowledged with the original offset and written only once.
    let retry = p.produce(vec![b0.clone()], Acks::All).await.expect("retry");
    assert!(retry.duplicate);
    assert_eq!(retry.base_offset, first.base_offset);
    assert!(matches!(
        p.produce(vec![idempotent_batch(42, 0, 7, &[b"gap"])], Acks::All)
            .await,
        Err(PartitionError::Producer(
            ProducerError::OutOfOrderSequence { expected: 3, .. }
        ))
    ));
    assert_eq!(read_all(&p, 0).await.len(), 2);
    p.close().await.expect("close");

    // After a clean restart (snapshot) and after a crash-like reopen without the snapshot
    // (rebuilt from batch headers), the retry is still recognised.
    for drop_snapshot in [false, true] {
        if drop_snapshot {
            std::fs::remove_file(dir.path().join("t-0").join("producer-state")).expect("rm");
        }
        let p = PartitionHandle::open(&shards, spec(dir.path()))
            .await
            .expect("reopen");
        let retry = p.produce(vec![b1.clone()], Acks::All).await.expect("retry");
        assert!(retry.duplicate, "snapshot dropped: {drop_snapshot}");
        assert_eq!(retry.base_offset, second.base_offset);
        p.close().await.expect("close");
    }
    let p = PartitionHandle::open(&shards, spec(dir.path()))
        .await
        .expect("reopen");
    // A new epoch starts at 0; the old epoch is then fenced.
    p.produce(vec![idempotent_batch(42, 1, 0, &[b"new"])], Acks::All)
        .await
        .expect("new epoch");
    assert!(matches!(
        p.produce(vec![idempotent_batch(42, 0, 3, &[b"old"])], Acks::All)
            .await,
        Err(PartitionError::Producer(
            ProducerError::InvalidProducerEpoch { .. }
        ))
    ));
    p.close().await.expect("close");
    shards.shutdown();
}

#[tokio::test]
async fn delete_records_and_long_poll_watch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shards = StorageShards::new(1).expect("shards");
    let p = PartitionHandle::open(&shards, spec(dir.path()))
        .await
        .expect("open");
    for i in 0..10u8 {
        p.produce(vec![data_batch(i as i64, &[&[i; 10]])], Acks::All)
            .await
            .expect("produce");
    }
    assert!(matches!(
        p.delete_records(Some(100)).await,
        Err(PartitionError::OffsetOutOfRange { .. })
    ));
    assert_eq!(p.delete_records(Some(5)).await.expect("delete"), 5);
    assert!(matches!(
        p.fetch(2, 100).await,
        Err(PartitionError::OffsetOutOfRange { .. })
    ));
    assert_eq!(
        p.list_offsets(OffsetQuery::Earliest)
            .await
            .expect("earliest")
            .offset,
        Some(5)
    );

    // A waiter on the state sees the high watermark move when another task produces.
    let mut watch = p.watch();
    let hw = watch.borrow_and_update().high_watermark;
    let producer = p.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        producer
            .produce(vec![data_batch(99, &[b"late"])], Acks::All)
            .await
            .expect("produce");
    });
    // As a long-polling fetch does: wait for changes until the high watermark moved.
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while watch.borrow_and_update().high_watermark <= hw {
            watch.changed().await.expect("sender alive");
        }
    })
    .await
    .expect("woken before the timeout");
    p.delete().await.expect("delete partition");
    assert!(!dir.path().join("t-0").exists());
    shards.shutdown();
}

/// A batch larger than a segment (though under max.message.bytes) is refused before raft
/// takes it, and the partition keeps serving (it used to fail for good).
#[tokio::test]
async fn a_batch_larger_than_a_segment_is_refused_and_nothing_breaks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shards = StorageShards::new(1).expect("shards");
    let mut s = spec(dir.path());
    s.log.segment_bytes = 1024;
    let p = PartitionHandle::open(&shards, s).await.expect("open");
    let big = data_batch(1, &[&[7u8; 3000]]);
    match p.produce(vec![big], Acks::All).await {
        Err(PartitionError::BatchTooLarge {
            limit: 1024,
            setting: "segment.bytes",
            ..
        }) => {}
        other => panic!("expected BatchTooLarge, got {other:?}"),
    }
    let ack = p
        .produce(vec![data_batch(2, &[b"small"])], Acks::All)
        .await
        .expect("the partition still takes writes");
    assert_eq!(ack.base_offset, 0);
    p.close().await.expect("close");
    shards.shutdown();
}
