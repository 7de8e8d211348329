//! Behaviour of the partition log through its public API.

mod common;

use std::fs;
use std::sync::atomic::Ordering;

use cairn_storage::{
    batch, BatchError, Log, LogConfig, RetentionOutcome, StorageError, VerifiedBatch,
};
use common::{as_stored, batch, manual_clock, read_all, small_config};

fn open(dir: &std::path::Path, config: LogConfig) -> Log {
    Log::open(dir, config).expect("open log")
}

#[test]
fn append_assigns_offsets_and_reads_return_whole_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    let mut originals = Vec::new();
    for i in 0..50u8 {
        let b = batch(1000 + i as i64, 1 + (i as usize % 4), 30 + i as usize, i);
        let info = log.append(&b, 3).expect("append");
        let expected_base = originals.iter().map(|(_, n)| *n as u64).sum::<u64>();
        assert_eq!(info.base_offset, expected_base);
        assert_eq!(info.next_offset, expected_base + (1 + i as u64 % 4));
        originals.push((b, 1 + i as usize % 4));
    }
    let all = read_all(&mut log, 0);
    assert_eq!(all.len(), 50);
    let mut base = 0u64;
    for ((h, bytes), (orig, n)) in all.iter().zip(&originals) {
        assert_eq!(h.base_offset as u64, base);
        assert_eq!(
            bytes,
            &as_stored(orig, base, 3),
            "stored bytes differ only in offset/epoch"
        );
        base += *n as u64;
    }
    assert_eq!(log.log_end_offset(), base);
    // Reading from an offset in the middle of a batch (batch 1 holds offsets 1 and 2)
    // returns that whole batch.
    let r = log.read(2, 1).expect("read");
    assert_eq!(r.slices[0].first_offset(), 1);
    // At the end: nothing, not an error; past it: out of range.
    assert!(log.read(base, 100).expect("read at end").is_empty());
    assert!(matches!(
        log.read(base + 1, 100),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn max_bytes_is_respected_but_one_batch_always_returned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    let b = batch(1, 1, 500, 1);
    for _ in 0..10 {
        log.append(&b, 0).expect("append");
    }
    let len = b.len() as u64;
    let r = log.read(0, (3 * len + len / 2) as u32).expect("read");
    assert_eq!(r.total_bytes(), 3 * len);
    assert_eq!(r.next_offset(), Some(3));
    let r = log.read(4, 10).expect("read");
    assert_eq!(
        r.total_bytes(),
        len,
        "first batch is returned even if larger than max_bytes"
    );
    let r = log.read_bounded(2, 1 << 20, 5).expect("read bounded");
    assert_eq!(r.total_bytes(), 3 * len);
    assert_eq!(r.next_offset(), Some(5));
    assert!(log.read_bounded(5, 1 << 20, 5).expect("read").is_empty());
}

#[test]
fn rolls_segments_and_reads_across_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    for i in 0..100u8 {
        log.append(&batch(i as i64, 2, 100, i), 0).expect("append");
    }
    assert!(
        log.segment_count() >= 6,
        "28 KB in 4 KiB segments: {}",
        log.segment_count()
    );
    let r = log.read(0, 1 << 20).expect("read");
    assert!(r.slices.len() > 1, "one read spans segments");
    assert_eq!(read_all(&mut log, 0).len(), 100);
    for o in (0..200).step_by(7) {
        let r = log.read(o, 1).expect("read");
        let first = r.slices[0].first_offset();
        assert!(
            first <= o && o < r.slices[0].next_offset(),
            "offset {o} in first batch"
        );
    }
    // The bases are the file names.
    for base in log.segment_bases() {
        assert!(dir.path().join(format!("{base:020}.log")).exists());
    }
}

#[test]
fn clean_close_reopens_without_loss_and_continues() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    for i in 0..40u8 {
        log.append(&batch(i as i64, 1, 200, i), 7).expect("append");
    }
    let end = log.log_end_offset();
    let before = read_all(&mut log, 0);
    log.close().expect("close");
    let checkpoint = fs::read_to_string(dir.path().join("partition.checkpoint")).expect("read");
    assert!(
        checkpoint.contains("\nclean ") && !checkpoint.contains("clean -"),
        "{checkpoint}"
    );
    let mut log = open(dir.path(), small_config());
    let checkpoint = fs::read_to_string(dir.path().join("partition.checkpoint")).expect("read");
    assert!(
        checkpoint.contains("clean -"),
        "marker cleared once open: {checkpoint}"
    );
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(read_all(&mut log, 0), before);
    let info = log.append(&batch(99, 1, 10, 0), 7).expect("append");
    assert_eq!(info.base_offset, end);
    assert_eq!(log.latest_epoch(), Some(7));
}

#[test]
fn unclean_shutdown_recovers_everything_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    for i in 0..60u8 {
        log.append(&batch(i as i64, 3, 50, i), 1).expect("append");
    }
    let before = read_all(&mut log, 0);
    let end = log.log_end_offset();
    drop(log); // no close: like a crash of the process
    let mut log = open(dir.path(), small_config());
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(read_all(&mut log, 0), before);
}

#[test]
fn invalid_batches_are_rejected_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(
        dir.path(),
        LogConfig {
            max_batch_bytes: 1000,
            ..LogConfig::default()
        },
    );
    let mut bad = batch(1, 2, 10, 0);
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    assert!(matches!(
        log.append(&bad, 0),
        Err(StorageError::InvalidBatch(BatchError::CrcMismatch { .. }))
    ));
    assert!(matches!(
        log.append(&batch(1, 1, 2000, 0), 0),
        Err(StorageError::InvalidBatch(BatchError::TooLarge { .. }))
    ));
    assert!(matches!(
        log.append(&[0u8; 10], 0),
        Err(StorageError::InvalidBatch(BatchError::Truncated { .. }))
    ));
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
}

#[test]
fn verified_batches_append_like_any_other_and_still_meet_the_logs_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut plain = open(&dir.path().join("plain"), small_config());
    let mut fast = open(
        &dir.path().join("verified"),
        LogConfig {
            max_batch_bytes: 1000,
            ..small_config()
        },
    );
    for i in 0..5u8 {
        let b = batch(i64::from(i), 3, 50, i);
        let a = plain.append(&b, 1).expect("append");
        let v = VerifiedBatch::new(b.into(), u32::MAX).expect("valid");
        let f = fast.append_verified(&v, 1).expect("append verified");
        assert_eq!(
            (a.base_offset, a.next_offset),
            (f.base_offset, f.next_offset)
        );
    }
    assert_eq!(read_all(&mut plain, 0), read_all(&mut fast, 0));
    // Verified against a larger limit than this log's: the log's own limit still holds.
    let big = VerifiedBatch::new(batch(9, 1, 2000, 0).into(), u32::MAX).expect("valid");
    assert!(matches!(
        fast.append_verified(&big, 1),
        Err(StorageError::InvalidBatch(BatchError::TooLarge { .. }))
    ));
    assert_eq!(fast.log_end_offset(), plain.log_end_offset());
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _log = open(dir.path(), LogConfig::default());
    assert!(matches!(
        Log::open(dir.path(), LogConfig::default()),
        Err(StorageError::Locked { .. })
    ));
}

#[test]
fn leader_epochs_are_tracked_checked_and_survive_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    for epoch in [0, 0, 2, 2, 5] {
        log.append(&batch(1, 2, 10, 0), epoch).expect("append");
    }
    assert_eq!(log.epoch_end_offset(0), Some((0, 4)));
    assert_eq!(log.epoch_end_offset(1), Some((0, 4)));
    assert_eq!(log.epoch_end_offset(2), Some((2, 8)));
    assert_eq!(log.epoch_end_offset(9), Some((5, 10)));
    assert!(matches!(
        log.append(&batch(1, 1, 1, 0), 4),
        Err(StorageError::EpochRegression {
            epoch: 4,
            latest: 5
        })
    ));
    drop(log);
    let mut log = open(dir.path(), LogConfig::default());
    assert_eq!(log.epoch_at(5), Some(2));
    log.truncate_to(6).expect("truncate");
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(log.latest_epoch(), Some(2), "epoch 5 started after the cut");
    log.append(&batch(1, 1, 1, 0), 6)
        .expect("new leader's epoch");
    assert_eq!(log.epoch_end_offset(2), Some((2, 6)));
}

#[test]
fn truncate_to_cuts_across_segments_and_is_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    for i in 0..100u8 {
        log.append(&batch(i as i64, 2, 100, i), 0).expect("append");
    }
    let segments = log.segment_count();
    log.truncate_to(51).expect("truncate");
    assert_eq!(
        log.log_end_offset(),
        50,
        "the batch holding 51 (50..=51) goes too"
    );
    assert!(log.segment_count() < segments);
    let kept = read_all(&mut log, 0);
    assert_eq!(kept.len(), 25);
    let info = log
        .append(&batch(7, 1, 5, 9), 0)
        .expect("append after truncate");
    assert_eq!(info.base_offset, 50);
    drop(log);
    let mut log = open(dir.path(), small_config());
    assert_eq!(log.log_end_offset(), 51);
    assert_eq!(read_all(&mut log, 0).len(), 26);
    // Truncating to the start empties the log.
    log.truncate_to(0).expect("truncate all");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    assert_eq!(log.segment_count(), 1);
}

#[test]
fn delete_records_moves_the_log_start_durably() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    for i in 0..100u8 {
        log.append(&batch(i as i64, 2, 100, i), 0).expect("append");
    }
    let segments = log.segment_count();
    log.delete_records_before(101).expect("delete records");
    assert_eq!(log.log_start_offset(), 101);
    assert!(
        log.segment_count() < segments,
        "segments below the start are deleted"
    );
    assert!(matches!(
        log.read(99, 100),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    let r = log.read(101, 1).expect("read at start");
    assert_eq!(
        r.slices[0].first_offset(),
        100,
        "the batch holding the start is served whole"
    );
    drop(log);
    let mut log = open(dir.path(), small_config());
    assert_eq!(log.log_start_offset(), 101);
    assert!(matches!(
        log.delete_records_before(500),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    log.delete_records_before(200).expect("delete everything");
    assert_eq!(log.log_start_offset(), 200);
    assert!(log.read(200, 10).expect("read").is_empty());
}

/// A sync job made on the owner's thread and run on another covers what was appended before
/// it, not after; a truncation in between keeps it from advancing the recovery point.
#[test]
fn sync_jobs_cover_what_was_appended_before_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    assert!(
        log.begin_sync().expect("begin").is_none(),
        "a new log is durable as opened"
    );
    for i in 0..5u8 {
        log.append(&batch(i as i64, 1, 100, i), 0).expect("append");
    }
    let job = log.begin_sync().expect("begin").expect("something to sync");
    assert_eq!(job.end_offset(), 5);
    log.append(&batch(5, 1, 100, 5), 0).expect("append");
    let result = std::thread::scope(|s| s.spawn(|| job.run()).join().expect("thread"));
    log.finish_sync(job, result).expect("finish");
    assert_eq!(
        log.flushed_offset(),
        5,
        "the append after begin_sync is not covered"
    );
    let job = log.begin_sync().expect("begin").expect("the sixth batch");
    assert_eq!(job.end_offset(), 6);
    let result = job.run();
    log.finish_sync(job, result).expect("finish");
    assert_eq!(log.flushed_offset(), 6);
    assert!(
        log.begin_sync().expect("begin").is_none(),
        "nothing left to sync"
    );

    // Truncated while the job runs: what it covered may be gone, the recovery point stays.
    log.append(&batch(6, 1, 100, 6), 0).expect("append");
    let job = log.begin_sync().expect("begin").expect("the seventh batch");
    log.truncate_to(6).expect("truncate");
    log.append(&batch(6, 1, 100, 9), 0).expect("append");
    let result = job.run();
    log.finish_sync(job, result).expect("finish");
    assert_eq!(log.flushed_offset(), 6);

    // A failed fsync fails the log: nothing may be reported durable after it.
    let job = log.begin_sync().expect("begin").expect("the replacement");
    let failed = Err(StorageError::Io {
        op: "fsync",
        path: dir.path().to_path_buf(),
        source: std::io::Error::other("EIO"),
    });
    assert!(log.finish_sync(job, failed).is_err());
    assert!(
        log.append(&batch(7, 1, 100, 7), 0).is_err(),
        "the log refuses writes"
    );
}

/// A raft log deletes no segment holding an entry not yet committed: marker batches take no
/// offset, so uncommitted ones can sit at the end of a segment wholly below the new start.
#[test]
fn delete_records_keeps_segments_holding_uncommitted_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    for i in 0..10u8 {
        log.append(&batch(i as i64, 1, 100, i), 0).expect("append");
    }
    // Two markers end the first segment (ordinals 10 and 11), then it is sealed.
    let noop = batch::marker::build(batch::control::RAFT_NOOP, &[]);
    log.append(&noop, 0).expect("marker");
    log.append(&noop, 0).expect("marker");
    log.roll().expect("roll");
    log.append(&batch(10, 1, 100, 10), 0).expect("append");
    assert_eq!(log.segment_bases(), vec![0, 10]);
    // Entries up to ordinal 10 committed: the first segment holds ordinal 11, so it stays.
    let out = log
        .delete_records_before_committed(10, 11)
        .expect("delete records");
    assert_eq!(out, cairn_storage::Deletion::default());
    assert_eq!(log.log_start_offset(), 10);
    assert_eq!(log.segment_bases(), vec![0, 10]);
    assert_eq!(log.first_ordinal(), 0);
    // Once everything in it is committed, the next call removes it.
    let out = log
        .delete_records_before_committed(10, 12)
        .expect("delete records");
    assert_eq!(out.outcome.segments_deleted, 1);
    assert_eq!(
        out.last_deleted,
        Some((11, 0)),
        "ordinal and epoch of the last one gone"
    );
    assert_eq!(log.segment_bases(), vec![10]);
    assert_eq!(log.first_ordinal(), 12);
    // Deleting up to the end rolls the active segment only when all of it is committed.
    log.append(&noop, 0).expect("marker");
    log.delete_records_before_committed(11, 13)
        .expect("delete records");
    assert_eq!(
        (log.log_start_offset(), log.segment_bases()),
        (11, vec![10])
    );
    log.delete_records_before_committed(11, 14)
        .expect("delete records");
    assert_eq!(
        log.segment_bases(),
        vec![10],
        "the start did not move: no roll"
    );
    drop(log);
    let log = open(dir.path(), small_config());
    assert_eq!(log.log_start_offset(), 11);
}

/// 200 batches of one 150-byte record, the batch at offset `i` stamped `1_000_000 + i` s,
/// in `small_config` segments, under `retention` limits. Returns the log, the manual clock
/// and the number of batches per segment. All batches have the same length, so the layout
/// is known: segment `n` is based at `n * per_segment`.
fn log_for_retention(
    dir: &std::path::Path,
    retention_bytes: Option<u64>,
    retention_ms: Option<u64>,
) -> (Log, std::sync::Arc<std::sync::atomic::AtomicI64>, u64) {
    let (clock, now) = manual_clock(1_000_000);
    let mut log = open(
        dir,
        LogConfig {
            retention_bytes,
            retention_ms,
            ..small_config()
        },
    );
    log.set_clock(clock);
    let len = batch(1_000_000, 1, 150, 0).len() as u64;
    for i in 0..200u8 {
        let b = batch(1_000_000 + i as i64 * 1000, 1, 150, i);
        assert_eq!(b.len() as u64, len, "every batch has the same length");
        log.append(&b, 0).expect("append");
    }
    // A segment rolls when the next batch would take it past segment.bytes (4096).
    let per_segment = 4096 / len;
    let bases: Vec<u64> = (0..200).step_by(per_segment as usize).collect();
    assert_eq!(
        log.segment_bases(),
        bases,
        "{len}-byte batches, {per_segment} a segment"
    );
    (log, now, per_segment)
}

#[test]
fn retention_by_time_deletes_exactly_the_expired_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, now, per) = log_for_retention(dir.path(), None, Some(60_000));
    let segment_bytes = per * batch(0, 1, 150, 0).len() as u64;
    // A segment goes when its newest batch is older than `now - retention.ms`. The first
    // segment's newest batch is offset `per - 1`, stamped `1_000_000 + (per - 1) * 1000`:
    // with "now" exactly retention.ms after it, it is not yet expired...
    let first_newest = 1_000_000 + (per as i64 - 1) * 1000;
    now.store(first_newest + 60_000, Ordering::SeqCst);
    let out = log.apply_retention().expect("retention");
    assert_eq!(
        out,
        RetentionOutcome::default(),
        "nothing is older than retention.ms"
    );
    assert_eq!(log.log_start_offset(), 0);
    // ...one millisecond later it is, and it alone goes.
    now.store(first_newest + 60_001, Ordering::SeqCst);
    let out = log.apply_retention().expect("retention");
    assert_eq!(
        out,
        RetentionOutcome {
            segments_deleted: 1,
            bytes_deleted: segment_bytes,
        }
    );
    assert_eq!(log.log_start_offset(), per);
    assert_eq!(log.segment_bases()[0], per);
    // "Now" 1_200_000 s: batches stamped below 1_140_000 s (offsets below 140) expired; the
    // segments wholly below offset 140 go, the one holding 140 (stamped 1_140_000) stays.
    now.store(1_000_000 + 200_000, Ordering::SeqCst);
    let out = log.apply_retention().expect("retention");
    let kept_from = 140 / per * per;
    assert_eq!(
        out,
        RetentionOutcome {
            segments_deleted: (kept_from / per - 1) as usize,
            bytes_deleted: (kept_from - per) / per * segment_bytes,
        }
    );
    assert_eq!(log.log_start_offset(), kept_from);
    let bases: Vec<u64> = (kept_from..200).step_by(per as usize).collect();
    assert_eq!(log.segment_bases(), bases);
    let left = read_all(&mut log, kept_from);
    assert_eq!(left.len() as u64, 200 - kept_from);
    assert_eq!(
        left.first().map(|(h, _)| h.base_offset as u64),
        Some(kept_from)
    );
    // Far in the future everything expires, the active segment included: it is rolled and
    // deleted, leaving one empty segment at the log end.
    now.store(10_000_000_000, Ordering::SeqCst);
    log.apply_retention().expect("retention");
    assert_eq!(log.log_start_offset(), 200);
    assert_eq!(log.log_end_offset(), 200);
    assert_eq!(log.segment_bases(), vec![200]);
    assert_eq!(log.size_bytes(), 0);
}

#[test]
fn retention_by_size_keeps_the_newest_segments_within_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, now, per) = log_for_retention(dir.path(), Some(20_000), None);
    let len = batch(0, 1, 150, 0).len() as u64;
    let segment_bytes = per * len;
    let segments = 200u64.div_ceil(per);
    let active_bytes = (200 - (segments - 1) * per) * len;
    assert_eq!(
        log.size_bytes(),
        (segments - 1) * segment_bytes + active_bytes
    );
    // Kafka's rule: the oldest segment goes while what remains without it is still at least
    // retention.bytes, so between retention.bytes and retention.bytes + one segment remain.
    let mut keep = segments;
    let mut size = log.size_bytes();
    while keep > 1 && size - segment_bytes >= 20_000 {
        size -= segment_bytes;
        keep -= 1;
    }
    assert!(size >= 20_000 && size < 20_000 + segment_bytes);
    // Time does not matter: a far-future clock changes nothing without retention.ms.
    now.store(10_000_000_000, Ordering::SeqCst);
    let out = log.apply_retention().expect("retention");
    let gone = segments - keep;
    assert_eq!(
        out,
        RetentionOutcome {
            segments_deleted: gone as usize,
            bytes_deleted: gone * segment_bytes,
        }
    );
    assert_eq!(log.log_start_offset(), gone * per);
    assert_eq!(log.size_bytes(), size);
    let bases: Vec<u64> = (gone * per..200).step_by(per as usize).collect();
    assert_eq!(log.segment_bases(), bases);
    // A second pass finds nothing more to delete.
    assert_eq!(
        log.apply_retention().expect("retention"),
        RetentionOutcome::default()
    );
    // With the limit exactly at what would remain without the oldest segment, it goes too
    // (">=", as in Kafka); the active segment never goes, however small the limit.
    let limit = size - segment_bytes;
    let config = LogConfig {
        retention_bytes: Some(limit),
        ..log.config().clone()
    };
    log.set_config(config.clone()).expect("config");
    let out = log.apply_retention().expect("retention");
    assert_eq!(out.segments_deleted, 1);
    assert_eq!(log.log_start_offset(), (gone + 1) * per);
    log.set_config(LogConfig {
        retention_bytes: Some(0),
        ..config
    })
    .expect("config");
    log.apply_retention().expect("retention");
    assert_eq!(log.segment_bases(), vec![(segments - 1) * per]);
    assert_eq!(log.log_start_offset(), (segments - 1) * per);
    assert_eq!(log.size_bytes(), active_bytes);
}

#[test]
fn offset_for_time_and_max_timestamp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    for i in 0..100i64 {
        // Non-monotonic timestamps: every 10th batch jumps ahead.
        let ts = if i % 10 == 5 {
            10_000 + i * 100
        } else {
            i * 100
        };
        log.append(&batch(ts, 1, 120, i as u8), 0).expect("append");
    }
    let found = log.offset_for_time(2_000).expect("lookup").expect("found");
    assert_eq!(found.offset, 5, "batch 5 has ts 10500 >= 2000");
    let found = log.offset_for_time(10_600).expect("lookup").expect("found");
    assert_eq!(found.offset, 15);
    assert_eq!(
        log.offset_for_time(0).expect("lookup").map(|t| t.offset),
        Some(0)
    );
    assert_eq!(log.offset_for_time(100_000).expect("lookup"), None);
    let max = log.max_timestamp().expect("max").expect("some");
    assert_eq!((max.timestamp, max.offset), (10_000 + 95 * 100, 95));
    // Same answers after a clean reopen (indexes from disk) and after a crash (rebuilt).
    log.close().expect("close");
    let mut log = open(dir.path(), small_config());
    assert_eq!(
        log.offset_for_time(2_000)
            .expect("lookup")
            .map(|t| t.offset),
        Some(5)
    );
    drop(log);
    let mut log = open(dir.path(), small_config());
    assert_eq!(
        log.offset_for_time(10_600)
            .expect("lookup")
            .map(|t| t.offset),
        Some(15)
    );
    assert_eq!(
        log.max_timestamp().expect("max").map(|t| t.offset),
        Some(95)
    );
}

#[test]
fn flush_policy_advances_the_flushed_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(
        dir.path(),
        LogConfig {
            flush_messages: Some(3),
            ..LogConfig::default()
        },
    );
    log.append(&batch(1, 2, 10, 0), 0).expect("append");
    assert_eq!(log.flushed_offset(), 0);
    log.append(&batch(1, 1, 10, 0), 0).expect("append");
    assert_eq!(log.flushed_offset(), 3, "3 messages reach flush.messages");
    log.append(&batch(1, 1, 10, 0), 0).expect("append");
    log.flush().expect("flush");
    assert_eq!(log.flushed_offset(), 4);

    let dir = tempfile::tempdir().expect("tempdir");
    let (clock, now) = manual_clock(0);
    let mut log = open(
        dir.path(),
        LogConfig {
            flush_ms: Some(1000),
            ..LogConfig::default()
        },
    );
    log.set_clock(clock);
    log.append(&batch(1, 1, 10, 0), 0).expect("append");
    log.tick().expect("tick");
    assert_eq!(log.flushed_offset(), 0);
    now.store(1000, Ordering::SeqCst);
    log.tick().expect("tick");
    assert_eq!(log.flushed_offset(), 1, "flush.ms elapsed");
}

#[test]
fn segment_ms_rolls_old_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (clock, now) = manual_clock(1_000);
    let mut log = open(
        dir.path(),
        LogConfig {
            segment_ms: 10_000,
            ..LogConfig::default()
        },
    );
    log.set_clock(clock);
    log.append(&batch(1_000, 1, 10, 0), 0).expect("append");
    now.store(5_000, Ordering::SeqCst);
    log.append(&batch(5_000, 1, 10, 0), 0).expect("append");
    assert_eq!(log.segment_count(), 1);
    now.store(11_000, Ordering::SeqCst);
    log.append(&batch(11_000, 1, 10, 0), 0).expect("append");
    assert_eq!(
        log.segment_count(),
        2,
        "segment older than segment.ms rolled on append"
    );
    now.store(30_000, Ordering::SeqCst);
    log.tick().expect("tick");
    assert_eq!(log.segment_count(), 3, "and on tick");
}

#[test]
fn few_open_segments_still_serve_every_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        max_open_segments: 2,
        ..small_config()
    };
    let mut log = open(dir.path(), config.clone());
    for i in 0..200u8 {
        log.append(&batch(i as i64, 1, 300, i), 0).expect("append");
    }
    assert!(log.segment_count() > 10);
    assert_eq!(read_all(&mut log, 0).len(), 200);
    // Reading from the back again after the LRU moved on.
    for o in [0u64, 150, 3, 199, 77] {
        assert_eq!(log.read(o, 1).expect("read").slices[0].first_offset(), o);
    }
}

#[test]
fn missing_or_damaged_index_of_a_sealed_segment_is_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    for i in 0..100u8 {
        log.append(&batch(i as i64, 1, 100, i), 0).expect("append");
    }
    let before = read_all(&mut log, 0);
    let bases = log.segment_bases();
    log.close().expect("close");
    fs::remove_file(dir.path().join(format!("{:020}.index", bases[1]))).expect("rm");
    fs::write(
        dir.path().join(format!("{:020}.index", bases[2])),
        [0xffu8; 24],
    )
    .expect("garble");
    fs::remove_file(dir.path().join(format!("{:020}.timeindex", bases[3]))).expect("rm");
    let mut log = open(dir.path(), small_config());
    assert_eq!(read_all(&mut log, 0), before);
    for o in 0..100u64 {
        assert_eq!(log.read(o, 1).expect("read").slices[0].first_offset(), o);
    }
    assert!(dir.path().join(format!("{:020}.index", bases[1])).exists());
}

#[test]
fn corruption_inside_a_sealed_segment_is_reported_not_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    for i in 0..100u8 {
        log.append(&batch(i as i64, 1, 100, i), 0).expect("append");
    }
    let bases = log.segment_bases();
    let victim_base = bases[1];
    log.close().expect("close");
    // Damage the body of the third batch of the second segment.
    let path = dir.path().join(format!("{victim_base:020}.log"));
    let mut bytes = fs::read(&path).expect("read");
    let batch_len = batch(0, 1, 100, 0).len();
    bytes[2 * batch_len + 70] ^= 0x01;
    fs::write(&path, &bytes).expect("write");
    let mut log = open(dir.path(), small_config());
    // Reads before the damage are served; the read that starts at it fails with the path.
    let r = log.read(victim_base, 1 << 20).expect("read");
    let good = r.load().expect("prefix before the damage");
    assert_eq!(good.len(), 2 * batch_len);
    let r = log.read(victim_base + 2, 1 << 20).expect("read");
    match r.load() {
        Err(StorageError::Corrupt {
            path: p, position, ..
        }) => {
            assert_eq!(p, path);
            assert_eq!(position, 2 * batch_len as u64);
        }
        other => panic!("expected a corruption error, got {other:?}"),
    }
    // Other segments are unaffected.
    assert!(log.read(bases[2], 1 << 20).expect("read").load().is_ok());
}

#[test]
fn batch_validator_agrees_with_stored_bytes() {
    // What the log stores still validates as a batch (offset/epoch are outside the CRC).
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    log.append(&batch(5, 3, 10, 1), 9).expect("append");
    log.append(&batch(5, 3, 10, 1), 9).expect("append");
    let bytes = log.read(3, 1 << 20).expect("read").load().expect("load");
    let h = batch::validate(&bytes, u32::MAX).expect("valid");
    assert_eq!((h.base_offset, h.partition_leader_epoch), (3, 9));
}

#[test]
fn data_from_an_earlier_run_is_verified_where_reads_first_reach_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    for i in 0..30u8 {
        log.append(&batch(i as i64, 1, 100, i), 0).expect("append");
    }
    log.close().expect("close");
    let mut log = open(dir.path(), LogConfig::default());
    let batch_len = batch(0, 1, 100, 0).len();
    // The first read after the restart checks batches 0..5 and moves the watermark there.
    let r = log.read(0, (5 * batch_len) as u32).expect("read");
    assert_eq!(r.load().expect("load").len(), 5 * batch_len);
    // Damage batch 20, past the watermark: the next read that reaches it must notice.
    let path = dir.path().join(format!("{:020}.log", 0));
    let mut bytes = fs::read(&path).expect("read");
    bytes[20 * batch_len + 80] ^= 0x10;
    fs::write(&path, &bytes).expect("write");
    let r = log.read(0, 1 << 20).expect("read");
    let mut buf = vec![0u8; r.total_bytes() as usize];
    assert_eq!(r.load_into(&mut buf).expect("prefix"), 20 * batch_len);
    assert!(matches!(
        log.read(20, 1 << 20).expect("read").load(),
        Err(StorageError::Corrupt { position, .. }) if position == (20 * batch_len) as u64
    ));
    // A too-small buffer is an error, not a partial copy.
    let r = log.read(0, 1 << 20).expect("read");
    assert!(matches!(
        r.load_into(&mut [0u8; 10]),
        Err(StorageError::BufferTooSmall { .. })
    ));
}

/// Raft's own entries are marker batches: they take no offset, so record offsets stay dense
/// across "elections" (a marker in a new epoch each), restarts and truncation by ordinal.
#[test]
fn marker_batches_take_no_offset() {
    use cairn_storage::batch::{control, marker};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    let noop = marker::build(control::RAFT_NOOP, &[]);
    // Epoch 1: a marker, then 3 records; epochs 2 and 3: only a marker each (two elections
    // with no data); epoch 4: a marker and 2 records.
    let m1 = log.append(&noop, 1).expect("marker");
    assert_eq!((m1.ordinal, m1.base_offset, m1.next_offset), (0, 0, 0));
    let d1 = log.append(&batch(1, 3, 10, 0), 1).expect("append");
    assert_eq!((d1.ordinal, d1.base_offset, d1.next_offset), (1, 0, 3));
    for epoch in [2, 3, 4] {
        let m = log.append(&noop, epoch).expect("marker");
        assert_eq!((m.base_offset, m.next_offset), (3, 3));
    }
    let d2 = log.append(&batch(1, 2, 10, 1), 4).expect("append");
    assert_eq!((d2.ordinal, d2.base_offset, d2.next_offset), (5, 3, 5));
    assert_eq!(log.log_end_offset(), 5, "offsets count records only");
    // Every batch keeps its own epoch (the raft term), found by ordinal.
    let epochs: Vec<i32> = (0..6)
        .map(|o| log.batch_at_ordinal(o).expect("batch").leader_epoch)
        .collect();
    assert_eq!(epochs, [1, 1, 2, 3, 4, 4]);
    assert_eq!(log.epoch_end_offset(2), Some((2, 3)));
    assert_eq!(log.epoch_at(3), Some(4), "offset 3 is a record of epoch 4");
    // A read from offset 3 starts at the record batch, past the markers sharing its offset;
    // one from 0 includes the markers between the records (Fetch cuts them out).
    let from3 = log.read(3, 1 << 20).expect("read").load().expect("load");
    assert_eq!(batch::iter_batches(&from3, u32::MAX).count(), 1);
    let all = log.read(0, 1 << 20).expect("read").load().expect("load");
    assert_eq!(batch::iter_batches(&all, u32::MAX).count(), 5);
    // Crash and reopen: the scan checks each batch's epoch against the history by ordinal.
    drop(log);
    let mut log = open(dir.path(), small_config());
    assert_eq!((log.log_end_offset(), log.next_ordinal()), (5, 6));
    let epochs: Vec<i32> = (0..6)
        .map(|o| log.batch_at_ordinal(o).expect("batch").leader_epoch)
        .collect();
    assert_eq!(epochs, [1, 1, 2, 3, 4, 4]);
    // Raft truncation cuts by ordinal: removing the epoch-3 marker keeps epoch 2's, though
    // both lie at offset 3.
    log.truncate_to_ordinal(3).expect("truncate");
    assert_eq!((log.log_end_offset(), log.next_ordinal()), (3, 3));
    assert_eq!(log.latest_epoch(), Some(2));
    log.append(&batch(1, 1, 10, 2), 5).expect("new leader");
    log.close().expect("close");
    let mut log = open(dir.path(), small_config());
    assert_eq!((log.log_end_offset(), log.next_ordinal()), (4, 4));
    let epochs: Vec<i32> = (0..4)
        .map(|o| log.batch_at_ordinal(o).expect("batch").leader_epoch)
        .collect();
    assert_eq!(epochs, [1, 1, 2, 5]);
}

/// A marker-only active segment never rolls (its successor would get its name); its index
/// grows instead when a tiny `segment.index.bytes` fills.
#[test]
fn a_segment_of_markers_does_not_roll() {
    use cairn_storage::batch::{control, marker};
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_index_bytes: 64,
        segment_ms: 1,
        ..small_config()
    };
    let (clock, now) = manual_clock(1_000_000);
    let mut log = open(dir.path(), config.clone());
    log.set_clock(clock.clone());
    for epoch in 0..40 {
        now.fetch_add(10, Ordering::SeqCst);
        log.append(&marker::build(control::RAFT_NOOP, &[]), epoch)
            .expect("marker");
        log.tick().expect("tick");
        log.roll().expect("roll");
    }
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.next_ordinal(), 40);
    log.append(&batch(1, 1, 10, 0), 40).expect("append");
    log.roll().expect("roll");
    assert_eq!(log.segment_bases(), vec![0, 1]);
    drop(log);
    let mut log = open(dir.path(), config);
    assert_eq!((log.log_end_offset(), log.next_ordinal()), (1, 41));
    assert_eq!(log.batch_at_ordinal(39).expect("batch").leader_epoch, 39);
}

/// Logs written before epochs were numbered by ordinal (`cairn-leader-epochs 1`) rebuild the
/// history with one scan.
#[test]
fn a_version_1_epoch_checkpoint_is_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    for (i, epoch) in [0, 0, 3, 3, 7].into_iter().enumerate() {
        log.append(&batch(1, 1 + i % 3, 100, i as u8), epoch)
            .expect("append");
    }
    let history = log.epochs().to_vec();
    log.close().expect("close");
    let body = "cairn-leader-epochs 1\n3\n0 0\n3 3\n7 7\n";
    let crc = crc32fast::hash(body.as_bytes());
    std::fs::write(
        dir.path().join("leader-epoch-checkpoint"),
        format!("{body}crc32 {crc:08x}\n"),
    )
    .expect("write v1 file");
    let log = open(dir.path(), small_config());
    assert_eq!(log.epochs(), &history[..]);
    assert_eq!(log.log_end_offset(), 9);
}
