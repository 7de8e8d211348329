//! Log compaction: the cleaner against a model, with crashes at every step of the swap.
//!
//! The model is the list of records the log stores (offset, key, value, batch timestamp).
//! A completed clean up to `E` must leave exactly: every record at or past `E`, and below
//! `E` the records that have a key, no later record of that key below `E`, and are not a
//! tombstone past `delete.retention.ms`. A clean interrupted by a crash (the log dropped
//! after any rename or directory fsync of the swap, then reopened) must leave a state between
//! the two: nothing that was not stored, nothing the completed clean would keep missing.
//! Through all of it offsets, ordinals (raft entry numbers) and every kept record's bytes
//! stay as they were.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use cairn_storage::batch::{self, RecordEntry};
use cairn_storage::{CleanerSettings, Log, LogConfig, MAP_ENTRY_BYTES};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use common::{manual_clock, read_all, tempdir};

const CLOCK_START_MS: i64 = 1_700_000_000_000;
const RETENTION_MS: u64 = 10_000;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        segment_index_bytes: 1024,
        index_interval_bytes: 256,
        retention_ms: None,
        compact: true,
        min_cleanable_dirty_ratio_ppm: 0,
        delete_retention_ms: RETENTION_MS,
        ..LogConfig::default()
    }
}

/// A record as read back: offset, key, value.
type Seen = (u64, Option<Vec<u8>>, Option<Vec<u8>>);
/// An owned key and value.
type Owned = (Option<Vec<u8>>, Option<Vec<u8>>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    offset: u64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    ts: i64,
}

/// Every record the log serves, in offset order.
fn records(log: &mut Log) -> Vec<Seen> {
    let start = log.log_start_offset();
    let mut out = Vec::new();
    for (h, bytes) in read_all(log, start) {
        if h.is_control() {
            continue;
        }
        let recs = batch::records_of(&bytes).expect("records parse");
        assert_eq!(recs.len() as i32, h.records_count);
        for RecordEntry { offset, key, value } in recs {
            assert!(offset >= h.base_offset && offset <= h.last_offset());
            out.push((offset as u64, key, value));
        }
    }
    out
}

/// What a completed clean up to `end` at time `now` keeps of `stored`.
fn expected_after(stored: &[Rec], end: u64, now: i64) -> Vec<Rec> {
    let mut latest: BTreeMap<&[u8], u64> = BTreeMap::new();
    for r in stored.iter().filter(|r| r.offset < end) {
        if let Some(k) = &r.key {
            latest.insert(k, r.offset);
        }
    }
    stored
        .iter()
        .filter(|r| {
            if r.offset >= end {
                return true;
            }
            let Some(k) = &r.key else { return false };
            let newest = latest.get(k.as_slice()) == Some(&r.offset);
            let expired = r.value.is_none() && r.ts + RETENTION_MS as i64 <= now;
            newest && !expired
        })
        .cloned()
        .collect()
}

fn as_tuples(recs: &[Rec]) -> Vec<Seen> {
    recs.iter()
        .map(|r| (r.offset, r.key.clone(), r.value.clone()))
        .collect()
}

#[derive(Debug, Clone)]
enum Op {
    /// A batch of (key index or keyless, value or tombstone).
    Append(Vec<(Option<u8>, Option<u8>)>),
    Roll,
    Advance(u32),
    Clean {
        small_map: bool,
        crash_after: Option<usize>,
    },
    Reopen {
        crash: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let record = (
        prop_oneof![9 => (0u8..8).prop_map(Some), 1 => Just(None)],
        prop_oneof![8 => any::<u8>().prop_map(Some), 2 => Just(None)],
    );
    prop_oneof![
        10 => prop::collection::vec(record, 1..12).prop_map(Op::Append),
        3 => Just(Op::Roll),
        2 => (0u32..15_000).prop_map(Op::Advance),
        4 => (any::<bool>(), prop::option::weighted(0.3, 0usize..8))
            .prop_map(|(small_map, crash_after)| Op::Clean { small_map, crash_after }),
        1 => any::<bool>().prop_map(|crash| Op::Reopen { crash }),
    ]
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempdir();
    let (clock, now) = manual_clock(CLOCK_START_MS);
    let mut log = Log::open(dir.path(), config()).expect("open");
    log.set_clock(clock.clone());
    let mut stored: Vec<Rec> = Vec::new();
    let mut next_offset = 0u64;
    for op in ops {
        match op {
            Op::Append(recs) => {
                let ts = now.load(Ordering::SeqCst);
                let owned: Vec<Owned> = recs
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.map(|k| format!("key-{k}").into_bytes()),
                            v.map(|v| vec![v; 40]),
                        )
                    })
                    .collect();
                let refs: Vec<batch::KeyValue<'_>> = owned
                    .iter()
                    .map(|(k, v)| (k.as_deref(), v.as_deref()))
                    .collect();
                let info = log
                    .append(&batch::build_keyed_batch(ts, &refs), 1)
                    .expect("append");
                prop_assert_eq!(info.base_offset, next_offset);
                for (i, (key, value)) in owned.into_iter().enumerate() {
                    stored.push(Rec {
                        offset: next_offset + i as u64,
                        key,
                        value,
                        ts,
                    });
                }
                next_offset += recs.len() as u64;
            }
            Op::Roll => log.roll().expect("roll"),
            Op::Advance(ms) => {
                now.fetch_add(ms as i64, Ordering::SeqCst);
            }
            Op::Clean {
                small_map,
                crash_after,
            } => {
                log.flush().expect("flush");
                let settings = CleanerSettings {
                    dedupe_buffer_bytes: if small_map {
                        3 * MAP_ENTRY_BYTES
                    } else {
                        1 << 20
                    },
                    ..CleanerSettings::default()
                };
                let ordinals = log.next_ordinal();
                let Some(job) = log.begin_clean(u64::MAX).expect("begin") else {
                    continue;
                };
                let result = job.run(&settings);
                let at = now.load(Ordering::SeqCst);
                match crash_after {
                    None => {
                        let stats = log.finish_clean(result).expect("finish");
                        if let Some(stats) = stats {
                            stored = expected_after(&stored, stats.cleaned_until, at);
                        }
                    }
                    Some(n) => {
                        let finished = log.finish_clean(result.crash_after(n));
                        drop(log);
                        log = Log::open(dir.path(), config()).expect("reopen after crash");
                        log.set_clock(clock.clone());
                        let seen = records(&mut log);
                        if let Ok(Some(stats)) = finished {
                            // The crash point lay past the last step.
                            stored = expected_after(&stored, stats.cleaned_until, at);
                            prop_assert_eq!(&seen, &as_tuples(&stored));
                        } else {
                            // Between the old state and a completed clean: a subset of
                            // what was stored and a superset of what the clean keeps.
                            let all = as_tuples(&stored);
                            for r in &seen {
                                prop_assert!(all.contains(r), "{:?} was never stored", r);
                            }
                            let end = log.segment_bases().last().copied().unwrap_or(0);
                            for r in as_tuples(&expected_after(&stored, end, at)) {
                                prop_assert!(seen.contains(&r), "{:?} lost by a crash", r);
                            }
                            stored.retain(|r| {
                                seen.contains(&(r.offset, r.key.clone(), r.value.clone()))
                            });
                        }
                    }
                }
                prop_assert_eq!(log.next_ordinal(), ordinals, "a clean changed ordinals");
            }
            Op::Reopen { crash } => {
                if crash {
                    drop(log);
                } else {
                    log.close().expect("close");
                }
                log = Log::open(dir.path(), config()).expect("reopen");
                log.set_clock(clock.clone());
            }
        }
        prop_assert_eq!(log.log_end_offset(), next_offset);
        prop_assert_eq!(records(&mut log), as_tuples(&stored));
    }
    // Every batch is still there, each at its offsets.
    let start = log.log_start_offset();
    let batches = read_all(&mut log, start);
    prop_assert_eq!(
        batches.len() as u64,
        log.next_ordinal() - log.first_ordinal()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(300),
        ..ProptestConfig::default()
    })]

    #[test]
    fn cleaning_keeps_exactly_the_latest_record_per_key(ops in prop::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}

/// Kept records, batch headers and offsets are byte for byte what was appended; a batch
/// whose records all went stays as an empty batch with its header.
#[test]
fn kept_records_and_headers_are_unchanged() {
    let dir = tempdir();
    let mut log = Log::open(dir.path(), config()).expect("open");
    let a = batch::build_keyed_batch(
        CLOCK_START_MS,
        &[(Some(b"k1"), Some(b"old")), (Some(b"k2"), Some(b"two"))],
    );
    let b = batch::build_keyed_batch(CLOCK_START_MS + 5, &[(Some(b"k1"), Some(b"new"))]);
    log.append(&a, 3).expect("append");
    log.append(&b, 3).expect("append");
    log.roll().expect("roll");
    let c = batch::build_keyed_batch(CLOCK_START_MS + 9, &[(Some(b"k2"), Some(b"2"))]);
    log.append(&c, 3).expect("append");
    log.roll().expect("roll");
    log.flush().expect("flush");
    let before = read_all(&mut log, 0);
    let stats = log
        .clean_now(u64::MAX, &CleanerSettings::default())
        .expect("clean")
        .expect("something to clean");
    assert_eq!(stats.cleaned_until, 4);
    assert_eq!(stats.records_removed, 2);
    let after = read_all(&mut log, 0);
    assert_eq!(after.len(), before.len(), "every batch stays");
    // Batch a lost everything: an empty batch with a's header fields.
    let (h0, b0) = &after[0];
    let (o0, _) = &before[0];
    assert_eq!(h0.records_count, 0);
    assert_eq!(b0.len(), batch::HEADER_LEN);
    for (x, y) in [
        (h0.base_offset, o0.base_offset),
        (h0.last_offset_delta as i64, o0.last_offset_delta as i64),
        (h0.base_timestamp, o0.base_timestamp),
        (h0.max_timestamp, o0.max_timestamp),
        (h0.producer_id, o0.producer_id),
        (
            h0.partition_leader_epoch as i64,
            o0.partition_leader_epoch as i64,
        ),
    ] {
        assert_eq!(x, y);
    }
    // Batches b and c kept everything: byte for byte.
    assert_eq!(after[1].1, before[1].1);
    assert_eq!(after[2].1, before[2].1);
    // Reads by offset inside the empty batch land on the next batch.
    let r = log.read(1, 1 << 20).expect("read inside the emptied batch");
    assert!(r.next_offset().is_some());
    // Survives a clean reopen and a crash.
    log.close().expect("close");
    let mut log = Log::open(dir.path(), config()).expect("open");
    assert_eq!(read_all(&mut log, 0), after);
    drop(log);
    let mut log = Log::open(dir.path(), config()).expect("open after crash");
    assert_eq!(read_all(&mut log, 0), after);
    assert_eq!(log.cleaner_state().cleaned_until, 4);
}

/// A tombstone stays for `delete.retention.ms` after its batch's timestamp, then goes.
#[test]
fn tombstones_go_after_delete_retention() {
    let dir = tempdir();
    let (clock, now) = manual_clock(CLOCK_START_MS);
    let mut log = Log::open(dir.path(), config()).expect("open");
    log.set_clock(clock);
    let settings = CleanerSettings::default();
    log.append(
        &batch::build_keyed_batch(CLOCK_START_MS, &[(Some(b"k"), Some(b"v"))]),
        0,
    )
    .expect("append");
    log.append(
        &batch::build_keyed_batch(CLOCK_START_MS, &[(Some(b"k"), None)]),
        0,
    )
    .expect("append");
    log.roll().expect("roll");
    log.flush().expect("flush");
    log.clean_now(u64::MAX, &settings).expect("clean");
    let keys = |log: &mut Log| {
        records(log)
            .into_iter()
            .map(|(o, _, v)| (o, v))
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&mut log), vec![(1, None)], "the tombstone stays");
    now.fetch_add(RETENTION_MS as i64, Ordering::SeqCst);
    // Nothing new is dirty: a clean now needs the ratio or the max lag to fire.
    let mut forced = config();
    forced.max_compaction_lag_ms = 1;
    log.set_config(forced).expect("config");
    log.append(
        &batch::build_keyed_batch(CLOCK_START_MS, &[(Some(b"x"), Some(b"1"))]),
        0,
    )
    .expect("append");
    log.roll().expect("roll");
    log.flush().expect("flush");
    log.clean_now(u64::MAX, &settings).expect("clean");
    assert_eq!(
        keys(&mut log),
        vec![(2, Some(b"1".to_vec()))],
        "the tombstone went"
    );
}

/// Nothing is cleaned past the caller's bound (a replicated log's high watermark), in the
/// active segment, or before it is fsynced; a log that is not compacted is never cleaned.
#[test]
fn cleans_only_what_it_may() {
    let dir = tempdir();
    let mut log = Log::open(dir.path(), config()).expect("open");
    for i in 0..3u8 {
        log.append(
            &batch::build_keyed_batch(CLOCK_START_MS, &[(Some(b"k"), Some(&[i][..]))]),
            0,
        )
        .expect("append");
        log.roll().expect("roll");
    }
    log.flush().expect("flush");
    let settings = CleanerSettings::default();
    let stats = log
        .clean_now(2, &settings)
        .expect("clean")
        .expect("cleaned");
    assert_eq!(stats.cleaned_until, 2, "stopped at the bound");
    assert_eq!(
        records(&mut log).iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![1, 2]
    );
    let mut plain = config();
    plain.compact = false;
    log.set_config(plain).expect("config");
    assert!(log.begin_clean(u64::MAX).expect("begin").is_none());
}

/// Cleaned segments that together fit `segment.bytes` become one; reads, time lookups and
/// ordinals are as before, after a clean reopen and after a crash at every step of the
/// swap.
#[test]
fn small_cleaned_segments_are_merged() {
    for crash_after in [None].into_iter().chain((0..7).map(Some)) {
        let dir = tempdir();
        let mut log = Log::open(dir.path(), config()).expect("open");
        // Ten segments, each rewriting the same three keys.
        for seg in 0..10i64 {
            for k in 0..3u8 {
                let ts = CLOCK_START_MS + seg * 10 + k as i64;
                let key = [b'k', k];
                let value = vec![seg as u8; 300];
                log.append(
                    &batch::build_keyed_batch(ts, &[(Some(&key), Some(&value))]),
                    0,
                )
                .expect("append");
            }
            log.roll().expect("roll");
        }
        log.flush().expect("flush");
        let (segments, ordinals) = (log.segment_count(), log.next_ordinal());
        let job = log.begin_clean(u64::MAX).expect("begin").expect("a job");
        let mut result = job.run(&CleanerSettings::default());
        if let Some(n) = crash_after {
            result = result.crash_after(n);
        }
        let finished = log.finish_clean(result);
        if crash_after.is_some() {
            drop(log);
            log = Log::open(dir.path(), config()).expect("reopen after a crash");
        } else {
            let stats = finished.expect("finish").expect("stats");
            assert_eq!(stats.records_removed, 27);
            assert!(
                log.segment_count() < segments / 2,
                "{} segments of {segments} left",
                log.segment_count()
            );
        }
        assert_eq!(log.next_ordinal(), ordinals);
        let mut seen = records(&mut log);
        if seen.len() > 3 {
            // An interrupted swap: a later clean finishes the job.
            log.flush().expect("flush");
            log.clean_now(u64::MAX, &CleanerSettings::default())
                .expect("clean again");
            seen = records(&mut log);
        }
        let expect: Vec<Seen> = (0..3u8)
            .map(|k| (27 + k as u64, Some(vec![b'k', k]), Some(vec![9; 300])))
            .collect();
        assert_eq!(seen, expect, "crash after {crash_after:?}");
        // Time lookups still find the newest batches (the merged time index).
        let hit = log
            .offset_for_time(CLOCK_START_MS + 90)
            .expect("time lookup")
            .expect("found");
        assert_eq!(hit.offset, 27);
        let max = log.max_timestamp().expect("max").expect("some");
        assert_eq!((max.timestamp, max.offset), (CLOCK_START_MS + 92, 29));
        log.close().expect("close");
        let mut log = Log::open(dir.path(), config()).expect("clean reopen");
        assert_eq!(records(&mut log), expect);
        assert_eq!(log.next_ordinal(), ordinals);
    }
}
