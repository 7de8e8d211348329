//! The partition log: an ordered set of segments, one of them active.
//!
//! One `Log` owns one partition directory and is driven by one owner (`&mut self` everywhere):
//! the layer above serialises appends, reads and maintenance through it, so nothing here
//! needs a lock. See the crate docs for the directory layout and the durability rules.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::batch;
use crate::checkpoint::{sync_dir, PartitionCheckpoint};
use crate::config::LogConfig;
use crate::epoch::{EpochEntry, LeaderEpochCache};
use crate::error::BatchError;
use crate::error::{IoContext, Result, StorageError};
use crate::read::{FileSlice, LogRead};
use crate::segment::{Segment, SegmentLimits};

/// Source of wall-clock time in milliseconds since the Unix epoch (swappable for tests).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    })
}

/// Where an appended batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// The batch's ordinal: its position in the sequence of batches (its raft entry number).
    pub ordinal: u64,
    /// Offset assigned to the batch's first record.
    pub base_offset: u64,
    /// The offset after the batch (the new log end): `base_offset` for a marker batch.
    pub next_offset: u64,
    /// The batch's `maxTimestamp`.
    pub max_timestamp: i64,
}

/// Where the batch with a given ordinal lies in offset space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInfo {
    /// The batch's ordinal.
    pub ordinal: u64,
    /// Offset of its first record.
    pub base_offset: u64,
    /// The offset after it (the next batch's base offset, or the log end).
    pub next_offset: u64,
    /// The leader epoch it was appended in.
    pub leader_epoch: i32,
}

/// A timestamp and the offset it was found at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    /// The timestamp (a batch's `maxTimestamp`).
    pub timestamp: i64,
    /// The offset: the base offset of the batch, but never below the log start.
    pub offset: u64,
}

/// A sealed segment: always its size; its open files only while in the LRU set.
#[derive(Debug)]
pub(crate) struct SealedSlot {
    pub(crate) size: u64,
    /// The segment's largest timestamp and its offset, once known (`Some(None)`: no
    /// timestamps in the segment).
    pub(crate) max_timestamp: Option<Option<(i64, u64)>>,
    pub(crate) segment: Option<Segment>,
    /// How far reads have CRC-checked the segment; kept here so closing the files (LRU)
    /// does not forget it.
    pub(crate) verified_until: Arc<AtomicU64>,
    /// Ordinal of the segment's first batch.
    pub(crate) base_ordinal: u64,
    /// Number of batches in the segment.
    pub(crate) entries: u64,
}

/// A background fsync of a just-rolled segment.
#[derive(Debug)]
pub(crate) struct PendingFlush {
    /// Offsets below this are durable once the flush completes.
    pub(crate) end_offset: u64,
    pub(crate) done: Receiver<Result<()>>,
    pub(crate) thread: JoinHandle<()>,
}

/// At most this many rolled segments are being flushed in the background; a further roll
/// waits for the oldest (backpressure instead of an unbounded queue of threads).
const MAX_PENDING_FLUSHES: usize = 2;

/// A partition log. See the [crate documentation](crate).
pub struct Log {
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    pub(crate) limits: SegmentLimits,
    pub(crate) _lock: File,
    pub(crate) sealed: BTreeMap<u64, SealedSlot>,
    pub(crate) active: Segment,
    /// Ordinal of the active segment's first batch.
    pub(crate) active_base_ordinal: u64,
    /// Bases of sealed segments with open files, least recently used first.
    pub(crate) open_lru: VecDeque<u64>,
    pub(crate) log_start_offset: u64,
    /// Every offset below this is fsynced.
    pub(crate) recovery_point: u64,
    /// The recovery point last written to `partition.checkpoint`.
    pub(crate) checkpointed_recovery_point: u64,
    pub(crate) epochs: LeaderEpochCache,
    pub(crate) unflushed_messages: u64,
    pub(crate) oldest_unflushed_ms: Option<i64>,
    pub(crate) pending_flushes: VecDeque<PendingFlush>,
    /// A segment file was created or deleted since the directory was last fsynced.
    pub(crate) dir_dirty: bool,
    /// How many times the directory became dirty (an in-flight [`crate::SyncJob`] may mark
    /// it clean only if this did not change).
    pub(crate) dir_changes: u64,
    /// How many times the log was truncated (an in-flight [`crate::SyncJob`] covered data
    /// that may be gone since).
    pub(crate) truncations: u64,
    /// Largest timestamp of the active segment's first batch (Kafka's rolling-based
    /// timestamp): an append whose timestamp is `segment.ms` past it rolls the segment.
    pub(crate) rolling_ts: Option<i64>,
    /// Wall-clock time of the active segment's first append (or of the open): [`Log::tick`]
    /// rolls a segment idle for `segment.ms` so retention can reach it.
    pub(crate) active_since_ms: Option<i64>,
    pub(crate) clock: Clock,
    /// Offsets below this were compacted (see `clean`).
    pub(crate) cleaned_until: u64,
    /// What the last clean did.
    pub(crate) last_clean: Option<crate::clean::CleanStats>,
    /// Set after an I/O failure that may have lost data (a failed fsync, an unrecoverable
    /// partial write); every later write is refused, as Kafka takes a log dir offline.
    pub(crate) failed: Option<String>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.dir)
            .field("log_start_offset", &self.log_start_offset)
            .field("log_end_offset", &self.log_end_offset())
            .field("recovery_point", &self.recovery_point)
            .field("segments", &self.segment_count())
            .finish_non_exhaustive()
    }
}

impl Log {
    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The settings in force.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Replaces the settings (topic config change). Takes effect from the next append;
    /// index preallocation of the active segment changes at the next roll.
    pub fn set_config(&mut self, config: LogConfig) -> Result<()> {
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// Replaces the wall clock used for `segment.ms`, `flush.ms` and retention.
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// The first offset that may be read.
    pub fn log_start_offset(&self) -> u64 {
        self.log_start_offset
    }

    /// The offset the next appended record gets.
    pub fn log_end_offset(&self) -> u64 {
        self.active.next_offset()
    }

    /// Every offset below this is on stable storage (fsynced).
    pub fn flushed_offset(&self) -> u64 {
        self.recovery_point
    }

    /// Number of segments, active included.
    pub fn segment_count(&self) -> usize {
        self.sealed.len() + 1
    }

    /// Bytes in all segment files.
    pub fn size_bytes(&self) -> u64 {
        self.sealed.values().map(|s| s.size).sum::<u64>() + self.active.size()
    }

    /// Base offsets of all segments, oldest first.
    pub fn segment_bases(&self) -> Vec<u64> {
        self.sealed
            .keys()
            .copied()
            .chain([self.active.base()])
            .collect()
    }

    /// Ordinal of the first batch of every segment, in the order of [`Log::segment_bases`]
    /// (for an empty active segment, the ordinal its first batch will get).
    pub fn segment_base_ordinals(&self) -> Vec<u64> {
        self.sealed
            .values()
            .map(|s| s.base_ordinal)
            .chain([self.active_base_ordinal])
            .collect()
    }

    /// The leader-epoch history (oldest first).
    pub fn epochs(&self) -> &[EpochEntry] {
        self.epochs.entries()
    }

    /// The newest leader epoch, if any batch was ever appended.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest().map(|e| e.epoch)
    }

    /// OffsetForLeaderEpoch: the largest epoch at or below `epoch` and the offset where it
    /// ended (the log end offset for the newest). `None` if `epoch` predates the history.
    pub fn epoch_end_offset(&self, epoch: i32) -> Option<(i32, u64)> {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    /// The epoch that wrote `offset`, if known.
    pub fn epoch_at(&self, offset: u64) -> Option<i32> {
        self.epochs.epoch_for(offset)
    }

    pub(crate) fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    /// `Err` once the log has refused further writes after an I/O failure that may have lost
    /// data (a failed fsync, an unrecoverable partial write): only a reopen clears it.
    pub fn check_usable(&self) -> Result<()> {
        match &self.failed {
            None => Ok(()),
            Some(reason) => Err(StorageError::Io {
                op: "use a log that failed earlier",
                path: self.dir.clone(),
                source: std::io::Error::other(reason.clone()),
            }),
        }
    }

    /// Records an error that may have lost data and makes the log refuse further writes.
    pub(crate) fn fail<T>(&mut self, e: StorageError) -> Result<T> {
        tracing::error!(dir = %self.dir.display(), error = %e, "log failed; refusing further writes");
        self.failed = Some(e.to_string());
        Err(e)
    }

    /// Appends one record batch, assigning it the next offsets and `leader_epoch`.
    ///
    /// The batch is validated first (framing, magic, CRC-32C, `max.message.bytes`); nothing is
    /// written if it is invalid. On return the batch is in the page cache (it survives a
    /// process crash); it is on stable storage once [`Log::flushed_offset`] passes it,
    /// which the flush policy or an explicit [`Log::flush`] ensures.
    pub fn append(&mut self, batch: &[u8], leader_epoch: i32) -> Result<AppendInfo> {
        self.check_usable()?;
        let header = batch::validate(batch, self.config.max_batch_bytes)?;
        self.append_checked(batch, header, leader_epoch)
    }

    /// [`Log::append`] for a batch whose framing and CRC-32C were already checked: only the
    /// header checks that depend on this log (`max.message.bytes`) run again.
    pub fn append_verified(
        &mut self,
        batch: &batch::VerifiedBatch,
        leader_epoch: i32,
    ) -> Result<AppendInfo> {
        self.check_usable()?;
        batch::check_header(batch.header(), self.config.max_batch_bytes)?;
        self.append_checked(batch.bytes(), *batch.header(), leader_epoch)
    }

    /// The append itself, for a batch that passed validation.
    fn append_checked(
        &mut self,
        batch: &[u8],
        mut header: batch::BatchHeader,
        leader_epoch: i32,
    ) -> Result<AppendInfo> {
        if header.total_len() > self.config.segment_bytes as u64 {
            return Err(BatchError::TooLarge {
                size: header.total_len(),
                max: self.config.segment_bytes,
            }
            .into());
        }
        let latest = self.epochs.latest();
        if let Some(latest) = latest {
            if leader_epoch < latest.epoch {
                return Err(StorageError::EpochRegression {
                    epoch: leader_epoch,
                    latest: latest.epoch,
                });
            }
        }
        if leader_epoch < 0 {
            return Err(StorageError::EpochRegression {
                epoch: leader_epoch,
                latest: 0,
            });
        }
        self.poll_flushes(false)?;
        if self.should_roll(&header) {
            self.roll()?;
        }
        let base = self.active.next_offset();
        let ordinal = self.next_ordinal();
        if latest.is_none_or(|l| leader_epoch > l.epoch) {
            self.epochs.assign(leader_epoch, base, ordinal)?;
        }
        let prefix = batch::patched_prefix(batch, base, leader_epoch);
        header.base_offset = base as i64;
        header.partition_leader_epoch = leader_epoch;
        let interval = self.config.index_interval_bytes as u64;
        if let Err(e) = self.active.append(batch, &prefix, &header, interval) {
            if let StorageError::Io { op, .. } = &e {
                if op.starts_with("undo") {
                    return self.fail(e);
                }
            }
            return Err(e);
        }
        let now = self.now_ms();
        if self.active_since_ms.is_none() {
            self.active_since_ms = Some(now);
            self.rolling_ts = (header.max_timestamp >= 0).then_some(header.max_timestamp);
        }
        // A marker counts as one: with `flush.messages = 1` every raft entry is fsynced.
        self.unflushed_messages += header.offset_span().max(1);
        self.oldest_unflushed_ms.get_or_insert(now);
        if self
            .config
            .flush_messages
            .is_some_and(|n| self.unflushed_messages >= n)
        {
            self.flush()?;
        }
        Ok(AppendInfo {
            ordinal,
            base_offset: base,
            next_offset: base + header.offset_span(),
            max_timestamp: header.max_timestamp,
        })
    }

    fn should_roll(&self, header: &batch::BatchHeader) -> bool {
        let a = &self.active;
        if !self.active_can_roll() {
            return false;
        }
        let last_rel = (a.next_offset() - a.base() + header.offset_span()).saturating_sub(1);
        // Kafka: with timestamps, compare the incoming batch with the segment's first batch
        // (so replaying old data does not roll every append); without, use wall-clock age.
        let waited = match self.rolling_ts {
            Some(first) => header.max_timestamp.saturating_sub(first),
            None => self
                .active_since_ms
                .map_or(0, |since| self.now_ms().saturating_sub(since)),
        };
        a.size() + header.total_len() > self.config.segment_bytes as u64
            || a.indexes_full()
            || last_rel > u32::MAX as u64
            || waited >= self.config.segment_ms as i64
    }

    /// Whether the active segment may be sealed: only once it holds an offset. A segment of
    /// nothing but marker batches ends at its own base offset, the name its successor would
    /// get.
    pub(crate) fn active_can_roll(&self) -> bool {
        self.active.next_offset() > self.active.base()
    }

    /// Seals the active segment and starts a new one at the log end offset (no-op if the
    /// active segment holds no offset yet: empty, or only marker batches). The sealed
    /// segment is fsynced in the background; the recovery point advances past it when that
    /// completes.
    pub fn roll(&mut self) -> Result<()> {
        self.check_usable()?;
        if !self.active_can_roll() {
            return Ok(());
        }
        let new_base = self.active.next_offset();
        let fresh = Segment::create(&self.dir, new_base, self.limits)?;
        let mut old = std::mem::replace(&mut self.active, fresh);
        self.mark_dir_dirty();
        self.rolling_ts = None;
        self.active_since_ms = None;
        if let Err(e) = old.seal() {
            return self.fail(e);
        }
        let handles = old.sync_handles()?;
        let base = old.base();
        let entries = old.entries();
        self.sealed.insert(
            base,
            SealedSlot {
                size: old.size(),
                max_timestamp: Some(old.max_timestamp()),
                verified_until: Arc::clone(old.verified_until()),
                base_ordinal: self.active_base_ordinal,
                entries,
                segment: Some(old),
            },
        );
        self.active_base_ordinal += entries;
        self.touch(base);
        self.schedule_flush(handles, new_base)
    }

    fn schedule_flush(
        &mut self,
        handles: Vec<(PathBuf, Arc<File>)>,
        end_offset: u64,
    ) -> Result<()> {
        while self.pending_flushes.len() >= MAX_PENDING_FLUSHES {
            self.poll_one_flush(true)?;
        }
        let dir = self.dir.clone();
        let (tx, done) = mpsc::sync_channel(1);
        let work = move || {
            let result = handles
                .iter()
                .try_for_each(|(path, f)| f.sync_all().ctx("fsync", path))
                .and_then(|()| sync_dir(&dir));
            let _ = tx.send(result);
        };
        match std::thread::Builder::new()
            .name("cairn-roll-flush".into())
            .spawn(work)
        {
            Ok(thread) => {
                self.pending_flushes.push_back(PendingFlush {
                    end_offset,
                    done,
                    thread,
                });
                Ok(())
            }
            Err(e) => {
                // No thread to be had: flush inline rather than not at all.
                tracing::warn!(error = %e, "could not spawn a flush thread; flushing inline");
                self.flush()
            }
        }
    }

    /// Takes the result of the oldest background flush; returns false if none is pending
    /// (or, without `block`, if it has not finished).
    fn poll_one_flush(&mut self, block: bool) -> Result<bool> {
        let Some(front) = self.pending_flushes.front() else {
            return Ok(false);
        };
        let result = if block {
            front.done.recv().ok()
        } else {
            match front.done.try_recv() {
                Ok(r) => Some(r),
                Err(TryRecvError::Empty) => return Ok(false),
                Err(TryRecvError::Disconnected) => None,
            }
        };
        let Some(pending) = self.pending_flushes.pop_front() else {
            return Ok(false);
        };
        let _ = pending.thread.join();
        match result {
            Some(Ok(())) => {
                self.recovery_point = self.recovery_point.max(pending.end_offset);
                Ok(true)
            }
            Some(Err(e)) => self.fail(e),
            None => self.fail(StorageError::Io {
                op: "flush rolled segment",
                path: self.dir.clone(),
                source: std::io::Error::other("flush thread ended without a result"),
            }),
        }
    }

    pub(crate) fn poll_flushes(&mut self, block: bool) -> Result<()> {
        while self.poll_one_flush(block)? {}
        self.maybe_checkpoint()
    }

    /// Writes `partition.checkpoint` when the recovery point moved into another segment:
    /// recovery scans whole segments, so finer progress would buy nothing.
    pub(crate) fn maybe_checkpoint(&mut self) -> Result<()> {
        if self.segment_base_for(self.recovery_point)
            != self.segment_base_for(self.checkpointed_recovery_point)
        {
            self.write_checkpoint(None)?;
        }
        Ok(())
    }

    pub(crate) fn write_checkpoint(
        &mut self,
        clean: Option<(u64, crate::segment::ActiveState)>,
    ) -> Result<()> {
        PartitionCheckpoint {
            log_start_offset: self.log_start_offset,
            recovery_point: self.recovery_point,
            ordinal_anchor: (self.first_segment_base(), self.first_ordinal()),
            clean,
        }
        .write(&self.dir)?;
        self.checkpointed_recovery_point = self.recovery_point;
        Ok(())
    }

    /// Base of the segment that holds `offset` (the first segment for offsets below it).
    pub(crate) fn segment_base_for(&self, offset: u64) -> u64 {
        if offset >= self.active.base() {
            return self.active.base();
        }
        self.sealed
            .range(..=offset)
            .next_back()
            .or_else(|| self.sealed.iter().next())
            .map_or(self.active.base(), |(b, _)| *b)
    }

    /// Base offset of the oldest segment: the first batch still on disk.
    pub(crate) fn first_segment_base(&self) -> u64 {
        self.sealed
            .keys()
            .next()
            .copied()
            .unwrap_or(self.active.base())
    }

    /// Forgets leader epochs that ended before the oldest batch on disk. The history must
    /// keep covering every stored batch, even below the log start: recovery checks each
    /// scanned batch's epoch against it.
    pub(crate) fn trim_epochs_to_disk(&mut self) -> Result<()> {
        let first = self.first_ordinal();
        self.epochs.truncate_from_start(first)
    }

    /// A segment file was created or deleted: the directory needs an fsync.
    pub(crate) fn mark_dir_dirty(&mut self) {
        self.dir_dirty = true;
        self.dir_changes += 1;
    }

    /// Base of the segment after the one based at `base`.
    pub(crate) fn next_base_after(&self, base: u64) -> u64 {
        self.sealed
            .range(base + 1..)
            .next()
            .map_or(self.active.base(), |(b, _)| *b)
    }

    /// Forces everything appended so far to stable storage: waits for background flushes of
    /// rolled segments, fsyncs the active segment and, if segments were created or deleted,
    /// the directory. After it returns, [`Log::flushed_offset`] equals the log end offset.
    pub fn flush(&mut self) -> Result<()> {
        self.check_usable()?;
        self.poll_flushes(true)?;
        let end = self.log_end_offset();
        if self.recovery_point < end || self.dir_dirty {
            if let Err(e) = self.active.sync_data() {
                return self.fail(e);
            }
            if self.dir_dirty {
                if let Err(e) = sync_dir(&self.dir) {
                    return self.fail(e);
                }
                self.dir_dirty = false;
            }
            self.recovery_point = end;
        }
        self.unflushed_messages = 0;
        self.oldest_unflushed_ms = None;
        self.maybe_checkpoint()
    }

    /// Periodic housekeeping, to be called by the owner every few hundred milliseconds:
    /// collects finished background flushes, applies `flush.ms`, and rolls an active segment
    /// older than `segment.ms` so retention can reach idle partitions.
    pub fn tick(&mut self) -> Result<()> {
        self.check_usable()?;
        self.poll_flushes(false)?;
        let now = self.now_ms();
        if let (Some(ms), Some(oldest)) = (self.config.flush_ms, self.oldest_unflushed_ms) {
            if now.saturating_sub(oldest) >= ms as i64 {
                self.flush()?;
            }
        }
        if self.active.size() > 0
            && self
                .active_since_ms
                .is_some_and(|since| now.saturating_sub(since) >= self.config.segment_ms as i64)
        {
            self.roll()?;
        }
        Ok(())
    }

    /// Re-derives the `segment.ms` clocks of the active segment after it was reopened or cut:
    /// its first batch's timestamp, and "now" for the wall-clock age.
    pub(crate) fn reset_roll_clock(&mut self) -> Result<()> {
        self.rolling_ts = None;
        self.active_since_ms = None;
        if self.active.size() > 0 {
            let first = self.active.header_at(0)?;
            self.rolling_ts = (first.max_timestamp >= 0).then_some(first.max_timestamp);
            self.active_since_ms = Some(self.now_ms());
        }
        Ok(())
    }

    /// Marks `base` most recently used and closes the least recently used sealed segments
    /// beyond `max_open_segments`.
    pub(crate) fn touch(&mut self, base: u64) {
        if let Some(i) = self.open_lru.iter().position(|b| *b == base) {
            self.open_lru.remove(i);
        }
        self.open_lru.push_back(base);
        while self.open_lru.len() > self.config.max_open_segments {
            if let Some(evict) = self.open_lru.pop_front() {
                if let Some(slot) = self.sealed.get_mut(&evict) {
                    slot.segment = None;
                }
            }
        }
    }

    /// The segment based at `base`, opening a sealed one if needed.
    pub(crate) fn segment(&mut self, base: u64) -> Result<&Segment> {
        if base == self.active.base() {
            return Ok(&self.active);
        }
        let next = self.next_base_after(base);
        let slot = self
            .sealed
            .get_mut(&base)
            .ok_or_else(|| StorageError::Corrupt {
                path: self.dir.clone(),
                position: 0,
                reason: format!("no segment based at {base}"),
            })?;
        if slot.segment.is_none() {
            let verified = Arc::clone(&slot.verified_until);
            let seg = Segment::open_sealed(&self.dir, base, next, self.limits, verified)?;
            if seg.entries() != slot.entries {
                // The ordinals of every later batch were derived from the old count: they
                // would all be wrong. Refuse writes rather than renumber the log.
                let e = StorageError::Corrupt {
                    path: seg.paths().index.clone(),
                    position: 0,
                    reason: format!(
                        "index holds {} batches where {} were counted at open",
                        seg.entries(),
                        slot.entries
                    ),
                };
                return self.fail(e);
            }
            slot.max_timestamp = Some(seg.max_timestamp());
            slot.segment = Some(seg);
        }
        self.touch(base);
        self.sealed
            .get(&base)
            .and_then(|s| s.segment.as_ref())
            .ok_or_else(|| StorageError::Corrupt {
                path: self.dir.clone(),
                position: 0,
                reason: format!("segment {base} closed while in use (max_open_segments too small)"),
            })
    }

    /// The largest timestamp in the segment based at `base`, with its offset.
    pub(crate) fn segment_max_timestamp(&mut self, base: u64) -> Result<Option<(i64, u64)>> {
        if base == self.active.base() {
            return Ok(self.active.max_timestamp());
        }
        if let Some(known) = self.sealed.get(&base).and_then(|s| s.max_timestamp) {
            return Ok(known);
        }
        Ok(self.segment(base)?.max_timestamp())
    }

    /// Ordinal of the oldest batch on disk (possibly below the log start).
    pub fn first_ordinal(&self) -> u64 {
        self.sealed
            .values()
            .next()
            .map_or(self.active_base_ordinal, |s| s.base_ordinal)
    }

    /// The ordinal the next appended batch gets.
    pub fn next_ordinal(&self) -> u64 {
        self.active_base_ordinal + self.active.entries()
    }

    /// Base of the segment holding the batch with `ordinal` and that segment's base ordinal.
    fn segment_for_ordinal(&self, ordinal: u64) -> Result<(u64, u64)> {
        if ordinal < self.first_ordinal() || ordinal >= self.next_ordinal() {
            return Err(StorageError::OrdinalOutOfRange {
                ordinal,
                first: self.first_ordinal(),
                next: self.next_ordinal(),
            });
        }
        if ordinal >= self.active_base_ordinal {
            return Ok((self.active.base(), self.active_base_ordinal));
        }
        self.sealed
            .iter()
            .rev()
            .find(|(_, s)| s.base_ordinal <= ordinal)
            .map(|(b, s)| (*b, s.base_ordinal))
            .ok_or(StorageError::OrdinalOutOfRange {
                ordinal,
                first: self.first_ordinal(),
                next: self.next_ordinal(),
            })
    }

    /// Where the batch with `ordinal` lies, and its leader epoch.
    pub fn batch_at_ordinal(&mut self, ordinal: u64) -> Result<BatchInfo> {
        let (base, base_ordinal) = self.segment_for_ordinal(ordinal)?;
        let loc = self.segment(base)?.batch((ordinal - base_ordinal) as usize);
        let leader_epoch = self.epochs.epoch_for_ordinal(ordinal).unwrap_or(-1);
        Ok(BatchInfo {
            ordinal,
            base_offset: loc.base_offset,
            next_offset: loc.next_offset,
            leader_epoch,
        })
    }

    /// The header of the batch with `ordinal` (one small read).
    pub fn header_at_ordinal(&mut self, ordinal: u64) -> Result<crate::batch::BatchHeader> {
        let (base, base_ordinal) = self.segment_for_ordinal(ordinal)?;
        let seg = self.segment(base)?;
        seg.header_at(seg.batch((ordinal - base_ordinal) as usize).position)
    }

    /// Ordinal of the batch holding `offset` (or of the first batch after it); the next
    /// ordinal for offsets at or past the log end, the first for offsets below the log.
    pub fn ordinal_of_offset(&mut self, offset: u64) -> Result<u64> {
        if offset >= self.log_end_offset() {
            return Ok(self.next_ordinal());
        }
        if offset < self.first_segment_base() {
            return Ok(self.first_ordinal());
        }
        let base = self.segment_base_for(offset);
        let base_ordinal = if base == self.active.base() {
            self.active_base_ordinal
        } else {
            self.sealed.get(&base).map_or(0, |s| s.base_ordinal)
        };
        let seg = self.segment(base)?;
        Ok(match seg.find_batch(offset)? {
            Some(loc) => base_ordinal + loc.entry as u64,
            None => base_ordinal + seg.entries(),
        })
    }

    /// Reads whole batches starting with the one numbered `from`: at most `max_batches` of
    /// them and `max_bytes` (but always at least one). For raft, which addresses entries by
    /// number.
    pub fn read_ordinals(
        &mut self,
        from: u64,
        max_batches: u64,
        max_bytes: u32,
    ) -> Result<LogRead> {
        let mut out = LogRead {
            slices: Vec::new(),
            log_end_offset: self.log_end_offset(),
            log_start_offset: self.log_start_offset,
        };
        let stop_ordinal = from.saturating_add(max_batches).min(self.next_ordinal());
        let mut budget = max_bytes as u64;
        let mut ordinal = from;
        while ordinal < stop_ordinal {
            let (base, base_ordinal) = self.segment_for_ordinal(ordinal)?;
            let seg = self.segment(base)?;
            let first = (ordinal - base_ordinal) as usize;
            let last = ((stop_ordinal - base_ordinal).min(seg.entries()) - 1) as usize;
            let taken = if out.slices.is_empty() {
                seg.fit_batches(first, last, budget)
            } else {
                // Past the first slice, only batches that fit (none is forced).
                match seg.fit_batches(first, last, budget) {
                    1 if seg.batch(first).end - seg.batch(first).position > budget => 0,
                    n => n,
                }
            };
            if taken == 0 {
                break;
            }
            let (head, tail) = (seg.batch(first), seg.batch(first + taken - 1));
            out.slices.push(FileSlice {
                file: Arc::clone(seg.file()),
                path: Arc::clone(&seg.paths().log),
                verified_until: Arc::clone(seg.verified_until()),
                position: head.position,
                len: tail.end - head.position,
                first_offset: head.base_offset,
                next_offset: tail.next_offset,
            });
            budget = budget.saturating_sub(tail.end - head.position);
            ordinal += taken as u64;
            if first + taken <= last {
                break; // out of budget inside this segment
            }
        }
        Ok(out)
    }

    /// Removes the batch numbered `ordinal` and every later one (raft log truncation).
    pub fn truncate_to_ordinal(&mut self, ordinal: u64) -> Result<()> {
        self.check_usable()?;
        if ordinal >= self.next_ordinal() {
            return Ok(());
        }
        if ordinal <= self.first_ordinal() {
            let offset = self.first_segment_base();
            return self.truncate_fully_and_start_at(offset, ordinal);
        }
        // By position, not by offset: marker batches share their base offset with the
        // batch after them.
        let (base, base_ordinal) = self.segment_for_ordinal(ordinal)?;
        self.truncate_at(base, (ordinal - base_ordinal) as usize)
    }

    /// Reads whole batches from the one holding `from_offset`, up to `max_bytes` (but always
    /// at least one batch, as Kafka does since KIP-74), up to the log end.
    pub fn read(&mut self, from_offset: u64, max_bytes: u32) -> Result<LogRead> {
        let end = self.log_end_offset();
        self.read_bounded(from_offset, max_bytes, end)
    }

    /// As [`Log::read`], but returns no batch holding offsets at or past `end_offset`
    /// (the high watermark, for a replicated log). `end_offset` should be a batch boundary.
    pub fn read_bounded(
        &mut self,
        from_offset: u64,
        max_bytes: u32,
        end_offset: u64,
    ) -> Result<LogRead> {
        let leo = self.log_end_offset();
        if from_offset < self.log_start_offset || from_offset > leo {
            return Err(StorageError::OffsetOutOfRange {
                offset: from_offset,
                log_start: self.log_start_offset,
                log_end: leo,
            });
        }
        let end = end_offset.min(leo);
        let mut out = LogRead {
            slices: Vec::new(),
            log_end_offset: leo,
            log_start_offset: self.log_start_offset,
        };
        let mut budget = max_bytes as u64;
        let mut base = self.segment_base_for(from_offset);
        let active_base = self.active.base();
        // The first segment is read from the batch holding `from_offset` (past any marker
        // batches at that offset); the following ones from their first batch.
        let mut from = Some(from_offset);
        while from.unwrap_or(base) < end {
            let seg = self.segment(base)?;
            let first = match from.take() {
                Some(offset) => seg.find_batch(offset)?,
                None if seg.entries() > 0 => Some(seg.batch(0)),
                None => None,
            };
            if let Some(first) = first {
                let end_pos = seg.end_position(end)?;
                if first.position >= end_pos {
                    break;
                }
                let limit = end_pos.min(first.position.saturating_add(budget));
                let (mut stop, mut next) = seg.last_boundary(first.position, limit);
                if stop == first.position {
                    if !out.slices.is_empty() {
                        break;
                    }
                    stop = first.end;
                    next = first.next_offset;
                }
                out.slices.push(FileSlice {
                    file: Arc::clone(seg.file()),
                    path: Arc::clone(&seg.paths().log),
                    verified_until: Arc::clone(seg.verified_until()),
                    position: first.position,
                    len: stop - first.position,
                    first_offset: first.base_offset,
                    next_offset: next,
                });
                budget = budget.saturating_sub(stop - first.position);
                if stop < seg.size() || budget == 0 {
                    break;
                }
            }
            if base == active_base {
                break;
            }
            base = self.next_base_after(base);
        }
        Ok(out)
    }

    /// The first batch whose largest timestamp is at or after `timestamp` (Kafka ListOffsets
    /// by timestamp, at batch granularity): its `maxTimestamp` and base offset (not below the
    /// log start). `None` if every record is older.
    pub fn offset_for_time(&mut self, timestamp: i64) -> Result<Option<TimestampOffset>> {
        let log_start = self.log_start_offset;
        for base in self.segment_bases() {
            if self.next_base_after(base) <= log_start && base != self.active.base() {
                continue;
            }
            if self
                .segment_max_timestamp(base)?
                .is_none_or(|(max, _)| max < timestamp)
            {
                continue;
            }
            let seg = self.segment(base)?;
            let from = seg.time_lookup_before(timestamp).max(log_start);
            let Some(first) = seg.find_batch(from)? else {
                continue;
            };
            for entry in first.entry..seg.entries() as usize {
                let h = seg.header_at(seg.batch(entry).position)?;
                if h.max_timestamp >= timestamp {
                    return Ok(Some(TimestampOffset {
                        timestamp: h.max_timestamp,
                        offset: (h.base_offset as u64).max(log_start),
                    }));
                }
            }
        }
        Ok(None)
    }

    /// The largest timestamp in the log and the base offset of the batch holding it (Kafka
    /// ListOffsets `MAX_TIMESTAMP`, KIP-734, at batch granularity).
    pub fn max_timestamp(&mut self) -> Result<Option<TimestampOffset>> {
        let mut best: Option<TimestampOffset> = None;
        for base in self.segment_bases() {
            if let Some((timestamp, offset)) = self.segment_max_timestamp(base)? {
                if best.is_none_or(|b| timestamp > b.timestamp) && offset >= self.log_start_offset {
                    best = Some(TimestampOffset { timestamp, offset });
                }
            }
        }
        Ok(best)
    }

    /// Flushes everything and records a clean shutdown, so the next open needs no scan.
    pub fn close(mut self) -> Result<()> {
        self.close_in_place()
    }

    /// [`Log::close`] for an owner that cannot give the log away: afterwards the log refuses
    /// every write; dropping it releases the directory lock.
    pub fn close_in_place(&mut self) -> Result<()> {
        self.check_usable()?;
        self.poll_flushes(true)?;
        self.active.trim_for_close()?;
        self.active.sync_all()?;
        sync_dir(&self.dir)?;
        self.recovery_point = self.log_end_offset();
        let clean = (self.active.base(), self.active.active_state());
        self.write_checkpoint(Some(clean))?;
        self.failed = Some("the log was closed".to_string());
        tracing::debug!(dir = %self.dir.display(), "log closed cleanly");
        Ok(())
    }
}
