//! Helpers shared by the storage integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use cairn_storage::batch::{self, BatchHeader};
use cairn_storage::{Clock, Log, LogConfig};

/// A valid batch of `records` records of `size` bytes each, filled with `seed`, whose
/// timestamps are all `ts`.
pub fn batch(ts: i64, records: usize, size: usize, seed: u8) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (0..records)
        .map(|i| vec![seed.wrapping_add(i as u8); size])
        .collect();
    let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
    batch::build_batch(ts, &refs)
}

/// Small segments and a dense index, so tests exercise rolls and index lookups.
pub fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        segment_index_bytes: 1024,
        index_interval_bytes: 256,
        retention_ms: None,
        ..LogConfig::default()
    }
}

/// Every batch from `from` to the end: (header, bytes), via verified loads.
pub fn read_all(log: &mut Log, from: u64) -> Vec<(BatchHeader, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = from;
    loop {
        let r = log.read(at, 64 * 1024).expect("read");
        let Some(next) = r.next_offset() else { break };
        let bytes = r.load().expect("load");
        for item in batch::iter_batches(&bytes, u32::MAX) {
            let (_, h, b) = item.expect("valid batch");
            out.push((h, b.to_vec()));
        }
        at = next;
    }
    out
}

/// The bytes a batch has on disk once appended at `base` with `epoch`.
pub fn as_stored(original: &[u8], base: u64, epoch: i32) -> Vec<u8> {
    let mut v = original.to_vec();
    v[0..8].copy_from_slice(&(base as i64).to_be_bytes());
    v[12..16].copy_from_slice(&epoch.to_be_bytes());
    v
}

/// A clock tests move by hand.
pub fn manual_clock(start_ms: i64) -> (Clock, Arc<AtomicI64>) {
    let now = Arc::new(AtomicI64::new(start_ms));
    let n = Arc::clone(&now);
    (Arc::new(move || n.load(Ordering::SeqCst)), now)
}

/// A temporary directory on tmpfs when there is one. These tests check the logic of
/// recovery, not the disk: on tmpfs fsync costs nothing, which keeps hundreds of
/// crash-and-reopen rounds fast. (The kill -9 test and the benchmarks use the real disk.)
pub fn tempdir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().expect("tempdir")
}
