//! Removing data: retention by size and age, `DeleteRecords`, and truncation of the tail.
//!
//! Retention and `delete_records_before` remove data from the head of the log, whole segments
//! at a time; the log start offset moves forward and is checkpointed (fsynced) before any
//! file is deleted, so a crash never makes deleted records visible again. Truncation removes
//! data from the tail (a raft follower whose log diverged from the leader's): newest segments
//! are deleted first and the cut is fsynced, so a crash leaves a prefix of the old log.

use crate::checkpoint::sync_dir;
use crate::error::{Result, StorageError};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::log::{Log, SealedSlot};
use crate::segment::Segment;

/// What a retention pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Segments deleted.
    pub segments_deleted: usize,
    /// Bytes of segment data deleted.
    pub bytes_deleted: u64,
}

/// What a deletion from the head of a raft log removed (see
/// [`Log::delete_records_before_committed`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deletion {
    /// Segments and bytes deleted.
    pub outcome: RetentionOutcome,
    /// The ordinal and leader epoch of the last batch deleted, if any: the raft entry just
    /// before the log's first, which raft must still know the term of.
    pub last_deleted: Option<(u64, i32)>,
}

impl Log {
    /// Deletes the oldest segments that `retention.ms` (by the segment's largest timestamp,
    /// or its file's modification time when it has none) or `retention.bytes` allow to go,
    /// and any left wholly below the log start. The active segment is rolled first when all
    /// of it has expired, as Kafka does. For a log nothing else decides for: a replicated
    /// log takes [`Log::retention_target`] through raft instead.
    pub fn apply_retention(&mut self) -> Result<RetentionOutcome> {
        let start = self.log_start_offset;
        let target = self.retention_target()?;
        if target == Some(start) && start == self.log_end_offset() && self.active_can_roll() {
            // Everything expired, and what the active segment holds is below the start
            // already: roll it so it goes with the rest.
            self.roll()?;
        }
        let target = target.unwrap_or(start).max(start);
        let outcome = self
            .delete_records_before_committed(target, u64::MAX)?
            .outcome;
        if outcome.segments_deleted > 0 {
            tracing::info!(
                dir = %self.dir.display(),
                segments = outcome.segments_deleted,
                bytes = outcome.bytes_deleted,
                log_start_offset = self.log_start_offset,
                "retention deleted segments"
            );
        }
        Ok(outcome)
    }

    /// The log start [`Log::apply_retention`] would leave, without deleting anything: the
    /// base of the first segment it would keep (the log end when every segment expired).
    /// `None` when it would delete nothing (it may also be the log start already: records
    /// hidden below the start but still in the active segment). For a replicated log, whose leader decides
    /// retention and has every replica apply it as `delete_records_before(target)`, so all
    /// agree on the log start.
    pub fn retention_target(&mut self) -> Result<Option<u64>> {
        self.check_usable()?;
        let sealed: Vec<(u64, u64)> = self.sealed.iter().map(|(b, s)| (*b, s.size)).collect();
        let mut deleted = 0usize;
        let mut everything = false;
        if let Some(retention_ms) = self.config.retention_ms {
            let expired_before = self.now_ms().saturating_sub(retention_ms as i64);
            while let Some(&(base, _)) = sealed.get(deleted) {
                let newest = match self.segment_max_timestamp(base)? {
                    Some((ts, _)) => ts,
                    None => self.segment_mtime_ms(base)?,
                };
                if newest >= expired_before {
                    break;
                }
                deleted += 1;
            }
            if deleted == sealed.len() {
                // As apply_retention: an active segment wholly expired is rolled and goes.
                everything = matches!(
                    self.active.max_timestamp(),
                    Some((max, _)) if max < expired_before && self.active_can_roll()
                );
            }
        }
        if !everything {
            if let Some(limit) = self.config.retention_bytes {
                let mut total =
                    self.size_bytes() - sealed[..deleted].iter().map(|(_, size)| size).sum::<u64>();
                while let Some(&(_, size)) = sealed.get(deleted) {
                    if total.saturating_sub(size) < limit {
                        break;
                    }
                    total -= size;
                    deleted += 1;
                }
            }
        }
        let target = if everything {
            self.log_end_offset()
        } else {
            sealed
                .get(deleted)
                .map_or(self.active.base(), |(base, _)| *base)
        };
        Ok((deleted > 0 || everything).then_some(target))
    }

    fn segment_mtime_ms(&self, base: u64) -> Result<i64> {
        let path = crate::segment::SegmentPaths::new(&self.dir, base).log;
        let modified = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .map_err(|source| StorageError::Io {
                op: "stat",
                path: path.to_path_buf(),
                source,
            })?;
        Ok(modified
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64))
    }

    /// Deletes the oldest sealed segment, advancing (and checkpointing) the log start first.
    /// Returns its size.
    fn delete_oldest_segment(&mut self) -> Result<u64> {
        let Some((&base, _)) = self.sealed.iter().next() else {
            return Ok(0);
        };
        let next = self.next_base_after(base);
        let size = self.sealed.remove(&base).map_or(0, |s| s.size);
        self.open_lru.retain(|b| *b != base);
        // Checkpoint first (log start and the ordinal anchor now name the next segment): a
        // crash before the files go leaves a segment below the anchor, which the next open
        // numbers backwards from it and retention deletes again.
        self.log_start_offset = self.log_start_offset.max(next);
        self.write_checkpoint(None)?;
        Segment::delete_files(&self.dir, base)?;
        self.mark_dir_dirty();
        self.trim_epochs_to_disk()?;
        Ok(size)
    }

    /// Kafka DeleteRecords: makes `offset` the new log start (reads below it fail with
    /// out-of-range) and deletes the segments wholly below it. The new start is durable when
    /// this returns.
    pub fn delete_records_before(&mut self, offset: u64) -> Result<()> {
        self.delete_records_before_committed(offset, u64::MAX)
            .map(|_| ())
    }

    /// [`Log::delete_records_before`] for a raft log: a segment holding any batch with an
    /// ordinal at or past `ordinal_limit` (raft's commit index: entries not committed yet)
    /// stays, even when all its offsets are below `offset`, since raft may still need those
    /// entries (marker batches take no offset, so uncommitted ones can sit at the very end
    /// of a segment below the new start). Segments left wholly below the log start go when
    /// this is called again with a higher limit; an `offset` at or below the log start only
    /// does that.
    pub fn delete_records_before_committed(
        &mut self,
        offset: u64,
        ordinal_limit: u64,
    ) -> Result<Deletion> {
        self.check_usable()?;
        let end = self.log_end_offset();
        if offset > end {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start: self.log_start_offset,
                log_end: end,
            });
        }
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
            self.write_checkpoint(None)?;
            if offset == end && self.active.size() > 0 && self.next_ordinal() <= ordinal_limit {
                self.roll()?;
            }
        }
        let mut deletion = Deletion::default();
        while let Some(&base) = self.sealed.keys().next() {
            let (next_base, next_ordinal) = self
                .sealed
                .range(base + 1..)
                .next()
                .map_or((self.active.base(), self.active_base_ordinal), |(b, s)| {
                    (*b, s.base_ordinal)
                });
            if next_base > self.log_start_offset || next_ordinal > ordinal_limit {
                break;
            }
            let last = next_ordinal.saturating_sub(1);
            let epoch = self.epochs.epoch_for_ordinal(last).unwrap_or(-1);
            deletion.outcome.bytes_deleted += self.delete_oldest_segment()?;
            deletion.outcome.segments_deleted += 1;
            if next_ordinal > 0 {
                deletion.last_deleted = Some((last, epoch));
            }
        }
        Ok(deletion)
    }

    /// Removes every batch holding an offset at or after `offset` (the batch holding `offset`
    /// goes entirely), so the log end becomes the base offset of that batch. For a raft
    /// follower whose log diverged. Durable when it returns. An `offset` at or below the log
    /// start empties the log and restarts it at `offset`. Marker batches right before the
    /// cut, which hold no offset, stay.
    pub fn truncate_to(&mut self, offset: u64) -> Result<()> {
        self.check_usable()?;
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        if offset <= self.log_start_offset {
            let ordinal = self.ordinal_of_offset(offset)?;
            return self.truncate_fully_and_start_at(offset, ordinal);
        }
        let keep = self.segment_base_for(offset);
        let Some(loc) = self.segment(keep)?.find_batch(offset)? else {
            return Ok(());
        };
        self.truncate_at(keep, loc.entry)
    }

    /// Removes batch number `entry` of the segment based at `keep` and every later batch.
    pub(crate) fn truncate_at(&mut self, keep: u64, entry: usize) -> Result<()> {
        // Finish background flushes first: they hold handles on segments about to change.
        self.poll_flushes(true)?;
        if keep != self.active.base() {
            // Newest first, so a crash midway leaves a prefix of the log.
            let doomed: Vec<u64> = self.sealed.range(keep + 1..).map(|(b, _)| *b).collect();
            let active_base = self.active.base();
            Segment::delete_files(&self.dir, active_base)?;
            for base in doomed.into_iter().rev() {
                self.sealed.remove(&base);
                self.open_lru.retain(|b| *b != base);
                Segment::delete_files(&self.dir, base)?;
            }
            let next = self.next_base_after(keep);
            let keep_ordinal = self.sealed.get(&keep).map_or(0, |s| s.base_ordinal);
            let mut seg = match self.sealed.remove(&keep) {
                Some(SealedSlot {
                    segment: Some(seg), ..
                }) => seg,
                Some(slot) => {
                    Segment::open_sealed(&self.dir, keep, next, self.limits, slot.verified_until)?
                }
                None => Segment::open_sealed(
                    &self.dir,
                    keep,
                    next,
                    self.limits,
                    Arc::new(AtomicU64::new(0)),
                )?,
            };
            self.open_lru.retain(|b| *b != keep);
            seg.reactivate(self.limits)?;
            self.active = seg;
            self.active_base_ordinal = keep_ordinal;
            self.mark_dir_dirty();
        }
        if let Err(e) = self.active.truncate_to_entry(entry) {
            return self.fail(e);
        }
        if self.dir_dirty {
            sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        let end = self.log_end_offset();
        self.truncations += 1;
        self.reset_roll_clock()?;
        // The cut is at the base of a batch, which may lie below a log start inside that
        // batch: the start follows the end down (as in Kafka's truncateTo).
        self.log_start_offset = self.log_start_offset.min(end);
        self.recovery_point = self.recovery_point.min(end);
        self.write_checkpoint(None)?;
        self.epochs.truncate_from_end(self.next_ordinal())?;
        if self.cleaned_until > end {
            self.set_cleaned_until(end)?;
        }
        tracing::info!(dir = %self.dir.display(), log_end_offset = end, "log truncated");
        Ok(())
    }

    /// Deletes every segment and restarts the log, empty, at `offset` (which becomes both the
    /// log start and the log end), the next batch getting ordinal `ordinal`.
    pub fn truncate_fully_and_start_at(&mut self, offset: u64, ordinal: u64) -> Result<()> {
        self.check_usable()?;
        self.truncations += 1;
        self.poll_flushes(true)?;
        let doomed: Vec<u64> = self.sealed.keys().copied().collect();
        let active_base = self.active.base();
        Segment::delete_files(&self.dir, active_base)?;
        for base in doomed.into_iter().rev() {
            Segment::delete_files(&self.dir, base)?;
        }
        self.sealed.clear();
        self.open_lru.clear();
        self.active = Segment::create(&self.dir, offset, self.limits)?;
        self.active_base_ordinal = ordinal;
        sync_dir(&self.dir)?;
        self.dir_dirty = false;
        self.log_start_offset = offset;
        self.recovery_point = offset;
        self.reset_roll_clock()?;
        self.write_checkpoint(None)?;
        self.epochs.clear()?;
        if self.cleaned_until != offset {
            self.set_cleaned_until(offset)?;
        }
        tracing::info!(dir = %self.dir.display(), offset, "log emptied and restarted");
        Ok(())
    }
}
