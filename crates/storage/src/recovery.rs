//! Opening a partition directory: clean reopen, or recovery after a crash.
//!
//! **Clean path.** `Log::close` leaves `clean <base> <size> ...` in `partition.checkpoint`.
//! If the newest segment matches that record (same base, same file size) and the
//! leader-epoch history is readable, the log opens without reading any batch: sealed
//! segments are only listed (opened lazily on first read), the active one is reopened with
//! the recorded state. The record is then rewritten as `clean -` before anything else
//! happens, so a crash from here on takes the recovery path.
//!
//! **Recovery path.** Otherwise every segment from the one holding the checkpointed recovery
//! point (everything below it was fsynced) to the newest is scanned batch by batch:
//! framing, CRC-32C, base offsets continuing without gap from the segment base, and each
//! batch's `partitionLeaderEpoch` equal to the epoch the history assigns to its offset (so a
//! flipped bit in the two header fields the CRC does not cover is caught too). Indexes of
//! scanned segments are rebuilt. At the first invalid batch the file is cut and every later
//! segment deleted: what follows a torn or damaged write was never acknowledged as durable.
//! Without a readable epoch history or checkpoint, all segments are scanned and the history
//! rebuilt from the batches.
//!
//! A segment below the recovery point is trusted as fsynced; damage there is found when a
//! read reaches it (index sanity check on open, CRC check in `LogRead::load`) and reported
//! with path and position, never served.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::batch::BatchHeader;
use crate::checkpoint::{sync_dir, PartitionCheckpoint};
use crate::config::LogConfig;
use crate::epoch::LeaderEpochCache;
use crate::error::{IoContext, Result, StorageError};
use crate::log::{system_clock, Log, SealedSlot};
use crate::segment::{self, Segment, SegmentLimits};

/// Name of the lock file in a partition directory.
const LOCK_FILE: &str = ".lock";

fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .ctx("open", &path)?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(TryLockError::WouldBlock) => Err(StorageError::Locked {
            path: dir.to_path_buf(),
        }),
        Err(TryLockError::Error(e)) => Err(e).ctx("lock", &path),
    }
}

/// Segment base offsets and `.log` sizes in `dir`, oldest first. Removes leftovers of
/// interrupted operations: `*.tmp` files and indexes whose `.log` is gone.
fn list_segments(dir: &Path) -> Result<Vec<(u64, u64)>> {
    let mut logs = BTreeMap::new();
    let mut indexes = Vec::new();
    for entry in fs::read_dir(dir).ctx("list", dir)? {
        let entry = entry.ctx("list", dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = entry.path();
        if name.ends_with(".tmp") {
            fs::remove_file(&path).ctx("remove", &path)?;
            continue;
        }
        let Some((stem, ext)) = name.split_once('.') else {
            continue;
        };
        if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(base) = stem.parse::<u64>() else {
            continue;
        };
        match ext {
            segment::LOG_EXT => {
                let size = entry.metadata().ctx("stat", &path)?.len();
                logs.insert(base, size);
            }
            segment::INDEX_EXT | segment::TIME_INDEX_EXT => indexes.push((base, path)),
            _ => {}
        }
    }
    for (base, path) in indexes {
        if !logs.contains_key(&base) {
            tracing::info!(path = %path.display(), "removing index of a deleted segment");
            fs::remove_file(&path).ctx("remove", &path)?;
        }
    }
    Ok(logs.into_iter().collect())
}

impl Log {
    /// Opens (creating if needed) the log in `dir`, recovering from an unclean shutdown if
    /// there was one. Takes an exclusive lock on the directory for the life of the `Log`.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Log> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        // Durably: a partition directory whose name a power cut can take takes its data along.
        crate::durable::create_dir_all(&dir)?;
        let lock = lock_dir(&dir)?;
        let limits = SegmentLimits {
            index_bytes: config.segment_index_bytes as u64,
            index_interval_bytes: config.index_interval_bytes as u64,
        };
        let checkpoint = PartitionCheckpoint::read(&dir)?;
        crate::clean::recover_swaps(&dir)?;
        let listing = drop_segments_below_anchor(&dir, list_segments(&dir)?, checkpoint.as_ref())?;
        let epochs = LeaderEpochCache::load(&dir)?;
        let started = std::time::Instant::now();

        let mut log = match (listing.last(), &checkpoint, epochs) {
            (None, _, epochs) => {
                let start = checkpoint.as_ref().map_or(0, |c| c.log_start_offset);
                let active = Segment::create(&dir, start, limits)?;
                let mut epochs = epochs.unwrap_or_else(|| LeaderEpochCache::empty(&dir));
                epochs.clear()?;
                Log::assemble(
                    dir,
                    config,
                    limits,
                    lock,
                    BTreeMap::new(),
                    active,
                    start,
                    epochs,
                    checkpoint.as_ref().map(|c| (start, c.ordinal_anchor.1)),
                )
            }
            (
                Some(&(last_base, last_size)),
                Some(PartitionCheckpoint {
                    clean: Some((clean_base, state)),
                    log_start_offset,
                    ..
                }),
                Some(epochs),
            ) if *clean_base == last_base && state.size == last_size => {
                match Segment::open_active(&dir, last_base, *state, limits) {
                    Ok(active) => {
                        let sealed =
                            lazy_slots(&dir, limits, &listing[..listing.len() - 1], last_base)?;
                        let start = (*log_start_offset).max(listing[0].0);
                        let anchor = checkpoint.as_ref().map(|c| c.ordinal_anchor);
                        Log::assemble(
                            dir, config, limits, lock, sealed, active, start, epochs, anchor,
                        )
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "clean-shutdown state does not match the files; recovering");
                        recover(
                            dir,
                            config,
                            limits,
                            lock,
                            &listing,
                            checkpoint.as_ref(),
                            Some(epochs),
                        )?
                    }
                }
            }
            (Some(_), _, epochs) => recover(
                dir,
                config,
                limits,
                lock,
                &listing,
                checkpoint.as_ref(),
                epochs,
            )?,
        };
        log.finish_open(checkpoint.as_ref())?;
        // Debug: one line per partition; the broker logs a summary of all of them.
        tracing::debug!(
            dir = %log.dir.display(),
            log_start_offset = log.log_start_offset,
            log_end_offset = log.log_end_offset(),
            segments = log.segment_count(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "log opened"
        );
        Ok(log)
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        dir: PathBuf,
        config: LogConfig,
        limits: SegmentLimits,
        lock: File,
        sealed: BTreeMap<u64, SealedSlot>,
        active: Segment,
        log_start_offset: u64,
        epochs: LeaderEpochCache,
        anchor: Option<(u64, u64)>,
    ) -> Log {
        let end = active.next_offset();
        let mut sealed = sealed;
        let active_base_ordinal = number_segments(&mut sealed, &active, anchor);
        Log {
            dir,
            config,
            limits,
            _lock: lock,
            sealed,
            active,
            active_base_ordinal,
            open_lru: VecDeque::new(),
            log_start_offset,
            recovery_point: end,
            checkpointed_recovery_point: 0,
            epochs,
            unflushed_messages: 0,
            oldest_unflushed_ms: None,
            pending_flushes: VecDeque::new(),
            dir_dirty: false,
            dir_changes: 0,
            truncations: 0,
            rolling_ts: None,
            active_since_ms: None,
            clock: system_clock(),
            cleaned_until: 0,
            last_clean: None,
            failed: None,
        }
    }

    /// Common tail of both paths: reconcile log start, epochs and the segment roll clock,
    /// then record (durably) that the log is open and not cleanly shut down.
    fn finish_open(&mut self, checkpoint: Option<&PartitionCheckpoint>) -> Result<()> {
        let end = self.log_end_offset();
        let first_base = self
            .sealed
            .keys()
            .next()
            .copied()
            .unwrap_or(self.active.base());
        let wanted_start = checkpoint.map_or(0, |c| c.log_start_offset).max(first_base);
        if wanted_start > end {
            // The log start was moved past data a crash then lost: nothing valid remains.
            tracing::warn!(
                log_start = wanted_start,
                log_end = end,
                "log start is past the recovered end; emptying the log"
            );
            let ordinal = self.next_ordinal();
            self.truncate_fully_and_start_at(wanted_start, ordinal)?;
        }
        self.log_start_offset = wanted_start.max(self.log_start_offset);
        self.epochs.truncate_from_end(self.next_ordinal())?;
        self.trim_epochs_to_disk()?;
        self.reset_roll_clock()?;
        self.recovery_point = self.log_end_offset();
        self.cleaned_until = crate::clean::read_checkpoint(&self.dir).min(self.recovery_point);
        self.write_checkpoint(None)?;
        sync_dir(&self.dir)
    }
}

/// Deletes the segments below the checkpoint's ordinal anchor (the oldest segment when it
/// was written): a crash interrupted their deletion by retention, after the log start had
/// moved past them. Numbering then always starts at the anchor.
fn drop_segments_below_anchor(
    dir: &Path,
    listing: Vec<(u64, u64)>,
    checkpoint: Option<&PartitionCheckpoint>,
) -> Result<Vec<(u64, u64)>> {
    let Some(c) = checkpoint else {
        return Ok(listing);
    };
    let anchor = c.ordinal_anchor.0;
    if !listing.iter().any(|(base, _)| *base == anchor) || anchor > c.log_start_offset {
        return Ok(listing);
    }
    let mut kept = Vec::with_capacity(listing.len());
    for (base, size) in listing {
        if base < anchor {
            tracing::info!(
                base,
                "deleting a segment below the log start left by a crash"
            );
            Segment::delete_files(dir, base)?;
        } else {
            kept.push((base, size));
        }
    }
    Ok(kept)
}

/// Slots for sealed segments that stay closed until a read needs them. Their batch counts
/// come from their (trimmed, fsynced-at-roll) index files, checked cheaply; a segment whose
/// index fails the checks is opened now, which rebuilds the index, to count it.
/// Gives every segment its base ordinal, counting from the checkpoint's anchor (forwards,
/// and backwards for segments a crash left below it). Returns the active segment's.
fn number_segments(
    sealed: &mut BTreeMap<u64, SealedSlot>,
    active: &Segment,
    anchor: Option<(u64, u64)>,
) -> u64 {
    let counts: Vec<(u64, u64)> = sealed
        .iter()
        .map(|(b, s)| (*b, s.entries))
        .chain([(active.base(), active.entries())])
        .collect();
    let (at, ordinal) = match anchor {
        None => (0, 0),
        Some((base, ordinal)) => match counts.iter().position(|(b, _)| *b == base) {
            Some(i) => (i, ordinal),
            None => {
                tracing::warn!(
                    anchor_base = base,
                    "ordinal anchor segment is gone; numbering from the first segment"
                );
                (0, ordinal)
            }
        },
    };
    let mut ordinals = vec![0u64; counts.len()];
    ordinals[at] = ordinal;
    for i in at + 1..counts.len() {
        ordinals[i] = ordinals[i - 1] + counts[i - 1].1;
    }
    for i in (0..at).rev() {
        ordinals[i] = ordinals[i + 1].saturating_sub(counts[i].1);
    }
    for (slot, ordinal) in sealed.values_mut().zip(&ordinals) {
        slot.base_ordinal = *ordinal;
    }
    ordinals[counts.len() - 1]
}

fn lazy_slots(
    dir: &Path,
    limits: SegmentLimits,
    segments: &[(u64, u64)],
    next_after_last: u64,
) -> Result<BTreeMap<u64, SealedSlot>> {
    let mut slots = BTreeMap::new();
    for (i, &(base, size)) in segments.iter().enumerate() {
        // Written by an earlier run: verified by reads as they reach it.
        let verified_until = Arc::new(AtomicU64::new(0));
        let entries = match Segment::count_batches(dir, base, size)? {
            Some(n) => n,
            None => {
                let next = segments.get(i + 1).map_or(next_after_last, |s| s.0);
                Segment::open_sealed(dir, base, next, limits, Arc::clone(&verified_until))?
                    .entries()
            }
        };
        slots.insert(
            base,
            SealedSlot {
                size,
                max_timestamp: None,
                segment: None,
                verified_until,
                base_ordinal: 0, // numbered by `Log::assemble`
                entries,
            },
        );
    }
    Ok(slots)
}

fn recover(
    dir: PathBuf,
    config: LogConfig,
    limits: SegmentLimits,
    lock: File,
    listing: &[(u64, u64)],
    checkpoint: Option<&PartitionCheckpoint>,
    epochs: Option<LeaderEpochCache>,
) -> Result<Log> {
    let rebuild_epochs = epochs.is_none();
    let mut epochs = epochs.unwrap_or_else(|| LeaderEpochCache::empty(&dir));
    let recovery_point = match (rebuild_epochs, checkpoint) {
        (false, Some(c)) => c.recovery_point,
        _ => 0,
    };
    let first_scanned = listing
        .iter()
        .rposition(|(base, _)| *base <= recovery_point)
        .unwrap_or(0);
    tracing::debug!(
        dir = %dir.display(),
        recovery_point,
        segments_to_scan = listing.len() - first_scanned,
        "unclean shutdown; recovering"
    );
    let next_lazy = listing.get(first_scanned).map_or(0, |s| s.0);
    let mut sealed = lazy_slots(&dir, limits, &listing[..first_scanned], next_lazy)?;
    // The ordinal of the first scanned batch, numbered as `Log::assemble` will number it:
    // from the anchor (the first segment, see `drop_segments_below_anchor`) onwards.
    let mut ordinal = checkpoint.map_or(0, |c| c.ordinal_anchor.1)
        + sealed.values().map(|s| s.entries).sum::<u64>();
    let mut scanned: Vec<Segment> = Vec::new();
    let mut remaining = listing[first_scanned..].iter();
    for &(base, _) in remaining.by_ref() {
        if let Some(prev) = scanned.last() {
            if prev.next_offset() != base {
                // The previous segment lost its tail; this one cannot follow it.
                tracing::warn!(
                    base,
                    expected = prev.next_offset(),
                    "segment does not continue the log; deleting it and those after it"
                );
                Segment::delete_files(&dir, base)?;
                break;
            }
        }
        let mut check = |h: &BatchHeader| -> std::result::Result<(), String> {
            let epoch = h.partition_leader_epoch;
            let verdict = if rebuild_epochs {
                match epochs.latest() {
                    Some(l) if epoch < l.epoch => Err(format!(
                        "leader epoch {epoch} after epoch {} in the log",
                        l.epoch
                    )),
                    Some(l) if epoch == l.epoch => Ok(()),
                    _ if epoch < 0 => Err(format!("negative leader epoch {epoch}")),
                    _ => {
                        epochs.push(epoch, h.base_offset as u64, ordinal);
                        Ok(())
                    }
                }
            } else {
                match epochs.epoch_for_ordinal(ordinal) {
                    Some(e) if e == epoch => Ok(()),
                    known => Err(format!(
                        "leader epoch {epoch} does not match the epoch history ({known:?}) at batch {ordinal} (offset {})",
                        h.base_offset
                    )),
                }
            };
            if verdict.is_ok() {
                ordinal += 1;
            }
            verdict
        };
        let recovered = Segment::recover(&dir, base, limits, &mut check, true)?;
        let cut = recovered.truncated_at.is_some();
        scanned.push(recovered.segment);
        if cut {
            break;
        }
    }
    for &(base, _) in remaining {
        tracing::warn!(base, "deleting segment after the recovered end of the log");
        Segment::delete_files(&dir, base)?;
    }
    // A segment emptied by recovery (torn first batch) that follows another is dropped so
    // the previous one stays active; the log end is the same either way.
    while scanned.len() > 1 && scanned.last().is_some_and(|s| s.size() == 0) {
        if let Some(empty) = scanned.pop() {
            Segment::delete_files(&dir, empty.base())?;
        }
    }
    // The first scanned segment is always kept (possibly emptied), so one remains.
    let Some(active) = scanned.pop() else {
        return Err(StorageError::Corrupt {
            path: dir,
            position: 0,
            reason: "recovery kept no segment".into(),
        });
    };
    for mut seg in scanned {
        seg.seal()?;
        seg.sync_all()?;
        sealed.insert(
            seg.base(),
            SealedSlot {
                size: seg.size(),
                max_timestamp: Some(seg.max_timestamp()),
                segment: None,
                verified_until: Arc::clone(seg.verified_until()),
                base_ordinal: 0, // numbered by `Log::assemble`
                entries: seg.entries(),
            },
        );
    }
    active.sync_all()?;
    Log::assemble_recovered(
        dir,
        config,
        limits,
        lock,
        sealed,
        active,
        epochs,
        rebuild_epochs,
        checkpoint.map(|c| c.ordinal_anchor),
    )
}

impl Log {
    #[allow(clippy::too_many_arguments)]
    fn assemble_recovered(
        dir: PathBuf,
        config: LogConfig,
        limits: SegmentLimits,
        lock: File,
        sealed: BTreeMap<u64, SealedSlot>,
        active: Segment,
        epochs: LeaderEpochCache,
        rebuilt_epochs: bool,
        anchor: Option<(u64, u64)>,
    ) -> Result<Log> {
        if rebuilt_epochs {
            epochs.persist()?;
        }
        let start = sealed.keys().next().copied().unwrap_or(active.base());
        Ok(Log::assemble(
            dir, config, limits, lock, sealed, active, start, epochs, anchor,
        ))
    }
}
