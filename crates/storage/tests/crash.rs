//! Crash recovery: torn tails, flipped bits, garbage and lost metadata.
//!
//! Each test builds a log, "crashes" it (drops it without `close`, as a killed process
//! would leave it), damages a copy of the directory and reopens the copy. The rule checked
//! everywhere: recovery keeps every batch before the damage, byte for byte, and serves
//! nothing from the damage on; and the recovered log accepts appends again.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use cairn_storage::batch::BatchHeader;
use cairn_storage::{Log, LogConfig};
use common::{batch, read_all};

type Batches = Vec<(BatchHeader, Vec<u8>)>;

/// Seeded xorshift64*: reproducible damage without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 8192,
        segment_index_bytes: 4096,
        index_interval_bytes: 128,
        ..LogConfig::default()
    }
}

/// A crashed log with several segments and batches of varied sizes and epochs.
fn crashed_log(dir: &Path) -> Batches {
    let mut log = Log::open(dir, config()).expect("open");
    for i in 0..120u32 {
        let records = 1 + (i % 4) as usize;
        let size = 10 + (i * 37 % 200) as usize;
        log.append(
            &batch(1_000 + i as i64, records, size, i as u8),
            (i / 40) as i32,
        )
        .expect("append");
    }
    let all = read_all(&mut log, 0);
    drop(log);
    all
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        if entry.file_name() != ".lock" {
            fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
}

fn segment_logs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

/// Batches of `all` that lie wholly inside the first `valid_bytes` of the segment starting
/// at `seg_base`, plus all batches of earlier segments.
fn expected_prefix(all: &Batches, seg_base: u64, valid_bytes: u64) -> Batches {
    let mut pos = 0u64;
    all.iter()
        .filter(|(h, _)| {
            if (h.base_offset as u64) < seg_base {
                return true;
            }
            pos += h.total_len();
            pos <= valid_bytes
        })
        .cloned()
        .collect()
}

/// Opens the damaged copy and checks it holds exactly `expected`, then that it takes a new
/// batch at the right offset and keeps it across another crash.
fn check_recovers_to(dir: &Path, expected: &Batches, what: &str) {
    let mut log = Log::open(dir, config()).unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
    let end = expected
        .last()
        .map_or(0, |(h, _)| h.last_offset() as u64 + 1);
    assert_eq!(log.log_end_offset(), end, "{what}: log end offset");
    let got = read_all(&mut log, 0);
    assert_eq!(got.len(), expected.len(), "{what}: batch count");
    assert!(got == *expected, "{what}: recovered batches differ");
    let epoch = log.latest_epoch().unwrap_or(0);
    let info = log
        .append(&batch(5, 2, 10, 0xee), epoch)
        .expect("append after recovery");
    assert_eq!(info.base_offset, end, "{what}: next offset");
    drop(log);
    let mut log = Log::open(dir, config()).expect("reopen");
    assert_eq!(
        log.log_end_offset(),
        end + 2,
        "{what}: appended batch survives"
    );
    assert_eq!(read_all(&mut log, 0).len(), expected.len() + 1);
}

#[test]
fn cut_at_every_byte_of_the_last_batches() {
    let pristine = common::tempdir();
    let all = crashed_log(pristine.path());
    let logs = segment_logs(pristine.path());
    let active = logs.last().expect("a segment").clone();
    let name = active.file_name().expect("name").to_owned();
    let seg_base: u64 = name
        .to_str()
        .and_then(|n| n[..20].parse().ok())
        .expect("base");
    let len = fs::metadata(&active).expect("stat").len();
    // The last three batches of the active segment.
    let tail: u64 = all.iter().rev().take(3).map(|(h, _)| h.total_len()).sum();
    assert!(tail < len, "the active segment holds more than the tail");
    let work = common::tempdir();
    for cut in (len - tail)..len {
        let dir = work.path().join(format!("cut{cut}"));
        copy_dir(pristine.path(), &dir);
        let f = fs::OpenOptions::new()
            .write(true)
            .open(dir.join(&name))
            .expect("open");
        f.set_len(cut).expect("cut");
        drop(f);
        check_recovers_to(
            &dir,
            &expected_prefix(&all, seg_base, cut),
            &format!("cut at {cut}"),
        );
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}

#[test]
fn a_torn_sealed_segment_without_checkpoint_drops_everything_after_it() {
    // Without partition.checkpoint every segment is scanned (nothing is known to be fsynced);
    // a tear in an older segment then ends the log there.
    let pristine = common::tempdir();
    let all = crashed_log(pristine.path());
    let logs = segment_logs(pristine.path());
    assert!(
        logs.len() >= 3,
        "needs several segments, got {}",
        logs.len()
    );
    let victim = &logs[1];
    let seg_base: u64 = victim
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n[..20].parse().ok())
        .expect("base");
    let len = fs::metadata(victim).expect("stat").len();
    let work = common::tempdir();
    for cut in [0, 1, 60, len / 2, len - 1] {
        let dir = work.path().join(format!("cut{cut}"));
        copy_dir(pristine.path(), &dir);
        fs::remove_file(dir.join("partition.checkpoint")).expect("rm checkpoint");
        let f = fs::OpenOptions::new()
            .write(true)
            .open(dir.join(victim.file_name().expect("name")))
            .expect("open");
        f.set_len(cut).expect("cut");
        drop(f);
        let expected: Batches = expected_prefix(&all, seg_base, cut)
            .into_iter()
            .filter(|(h, _)| (h.base_offset as u64) < seg_base || cut > 0)
            .collect();
        check_recovers_to(&dir, &expected, &format!("segment 1 cut at {cut}"));
        for later in &logs[2..] {
            assert!(
                !dir.join(later.file_name().expect("name")).exists(),
                "later segments are deleted"
            );
        }
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}

/// Position (in the active segment) and index (in `all`) of each batch of that segment.
fn active_layout(all: &Batches, seg_base: u64) -> Vec<(u64, usize)> {
    let mut pos = 0u64;
    let mut out = Vec::new();
    for (i, (h, _)) in all.iter().enumerate() {
        if (h.base_offset as u64) >= seg_base {
            out.push((pos, i));
            pos += h.total_len();
        }
    }
    out
}

#[test]
fn random_bit_flips_in_the_active_segment_cut_the_log_at_the_damaged_batch() {
    let pristine = common::tempdir();
    let all = crashed_log(pristine.path());
    let active = segment_logs(pristine.path())
        .last()
        .expect("segment")
        .clone();
    let name = active.file_name().expect("name").to_owned();
    let seg_base: u64 = name
        .to_str()
        .and_then(|n| n[..20].parse().ok())
        .expect("base");
    let original = fs::read(&active).expect("read");
    let layout = active_layout(&all, seg_base);
    let mut rng = Rng(0x5eed_0001);
    let work = common::tempdir();
    for trial in 0..300 {
        // Every byte of a batch is covered: CRC (21..), magic, length framing, and the
        // two fields outside the CRC by offset continuity and the epoch history.
        let byte = rng.below(original.len() as u64) as usize;
        let bit = rng.below(8);
        let mut damaged = original.clone();
        damaged[byte] ^= 1 << bit;
        let dir = work.path().join(format!("flip{trial}"));
        copy_dir(pristine.path(), &dir);
        fs::write(dir.join(&name), &damaged).expect("write");
        let hit = layout
            .iter()
            .rposition(|(pos, _)| *pos <= byte as u64)
            .expect("inside some batch");
        let keep_until = layout[hit].1;
        let expected: Batches = all[..keep_until].to_vec();
        check_recovers_to(
            &dir,
            &expected,
            &format!("flip of bit {bit} at byte {byte}"),
        );
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}

#[test]
fn garbage_after_the_tail_and_garbage_segments_never_panic() {
    let pristine = common::tempdir();
    let all = crashed_log(pristine.path());
    let active = segment_logs(pristine.path())
        .last()
        .expect("segment")
        .clone();
    let name = active.file_name().expect("name").to_owned();
    let work = common::tempdir();
    let mut rng = Rng(0x5eed_0002);
    // Zeros (a preallocated or torn tail) and random bytes after the last batch are cut.
    for (i, tail) in [
        vec![0u8; 4096],
        (0..777).map(|_| rng.byte()).collect::<Vec<u8>>(),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = work.path().join(format!("tail{i}"));
        copy_dir(pristine.path(), &dir);
        let mut bytes = fs::read(dir.join(&name)).expect("read");
        bytes.extend_from_slice(&tail);
        fs::write(dir.join(&name), bytes).expect("write");
        check_recovers_to(&dir, &all, "garbage tail");
    }
    // A directory of random segment files: opening must fail or recover, never panic.
    for trial in 0..50 {
        let dir = work.path().join(format!("garbage{trial}"));
        fs::create_dir_all(&dir).expect("mkdir");
        for seg in 0..1 + rng.below(3) {
            let len = rng.below(3000);
            let bytes: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
            fs::write(dir.join(format!("{:020}.log", seg * 100)), bytes).expect("write");
            if rng.below(2) == 0 {
                let idx: Vec<u8> = (0..rng.below(200)).map(|_| rng.byte()).collect();
                fs::write(dir.join(format!("{:020}.index", seg * 100)), idx).expect("write");
            }
        }
        if let Ok(mut log) = Log::open(&dir, config()) {
            assert_eq!(
                log.log_end_offset(),
                log.log_start_offset(),
                "random bytes hold no valid batch"
            );
            let epoch = log.latest_epoch().unwrap_or(0);
            log.append(&batch(1, 1, 1, 1), epoch).expect("append");
        }
    }
}

#[test]
fn lost_or_damaged_metadata_files_fall_back_to_a_full_scan() {
    let pristine = common::tempdir();
    let all = crashed_log(pristine.path());
    let epochs_before = {
        let log = Log::open(pristine.path(), config()).expect("open");
        log.epochs().to_vec()
    };
    let work = common::tempdir();
    for (i, victim) in ["partition.checkpoint", "leader-epoch-checkpoint"]
        .iter()
        .enumerate()
    {
        for damage in ["delete", "garble"] {
            let dir = work.path().join(format!("{i}{damage}"));
            copy_dir(pristine.path(), &dir);
            if damage == "delete" {
                fs::remove_file(dir.join(victim)).expect("rm");
            } else {
                let mut b = fs::read(dir.join(victim)).expect("read");
                b[3] ^= 0x20;
                fs::write(dir.join(victim), b).expect("write");
            }
            let log = Log::open(&dir, config()).expect("open");
            assert_eq!(
                log.epochs(),
                &epochs_before[..],
                "{damage} {victim}: epochs rebuilt"
            );
            drop(log);
            check_recovers_to(&dir, &all, &format!("{damage} {victim}"));
        }
    }
    // Index files of every segment deleted: all rebuilt.
    let dir = work.path().join("noindex");
    copy_dir(pristine.path(), &dir);
    for e in fs::read_dir(&dir).expect("list") {
        let p = e.expect("entry").path();
        if p.extension()
            .is_some_and(|x| x == "index" || x == "timeindex")
        {
            fs::remove_file(p).expect("rm");
        }
    }
    check_recovers_to(&dir, &all, "all indexes deleted");
}
