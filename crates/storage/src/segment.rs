//! One segment: a `.log` file of record batches and its two indexes.
//!
//! ```text
//! <dir>/00000000000000000000.log        batches, back to back, exactly as on the wire
//!                                        (baseOffset/partitionLeaderEpoch set by the log)
//! <dir>/00000000000000000000.index      offset index   (see crate::index)
//! <dir>/00000000000000000000.timeindex  time index     (see crate::index)
//! ```
//!
//! The file name is the offset of the segment's first batch, zero-padded to 20 digits, as in
//! Kafka. Batches are appended with one `writev` each, straight into the page cache: a
//! process crash (`kill -9`) loses nothing that `append` returned for; what survives a power
//! loss is governed by the flush policy (see the crate docs).
//!
//! Positions inside a segment are 32-bit (`segment.bytes` is at most `i32::MAX`), offsets in
//! the indexes are stored relative to the base, so a segment also rolls before its offsets
//! span more than `u32::MAX`.

use std::fs::{self, File, OpenOptions};
use std::io::{IoSlice, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::batch::{self, BatchHeader, HEADER_LEN};
use crate::error::{IoContext, Result, StorageError};
use crate::index::{OffsetIndex, TimeIndex};
use crate::scan::{read_full_at, Scanned, Scanner};

/// File name of a segment file: the base offset as 20 digits and the extension.
pub(crate) fn file_name(base: u64, ext: &str) -> String {
    format!("{base:020}.{ext}")
}

/// Extension of segment data files.
pub(crate) const LOG_EXT: &str = "log";
/// Extension of offset index files.
pub(crate) const INDEX_EXT: &str = "index";
/// Extension of time index files.
pub(crate) const TIME_INDEX_EXT: &str = "timeindex";

/// The three paths of the segment based at `base` in `dir`.
#[derive(Debug, Clone)]
pub(crate) struct SegmentPaths {
    pub(crate) log: Arc<Path>,
    pub(crate) index: PathBuf,
    pub(crate) time_index: PathBuf,
}

impl SegmentPaths {
    pub(crate) fn new(dir: &Path, base: u64) -> SegmentPaths {
        SegmentPaths {
            log: Arc::from(dir.join(file_name(base, LOG_EXT))),
            index: dir.join(file_name(base, INDEX_EXT)),
            time_index: dir.join(file_name(base, TIME_INDEX_EXT)),
        }
    }
}

/// State of an active segment that the clean-shutdown record carries across a restart, so
/// reopening needs no scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ActiveState {
    pub(crate) size: u64,
    pub(crate) next_offset: u64,
    pub(crate) max_timestamp: i64,
    pub(crate) offset_of_max_timestamp: u64,
    pub(crate) bytes_since_time_entry: u64,
}

/// Sizes that shape a segment's files.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentLimits {
    pub(crate) index_bytes: u64,
    pub(crate) index_interval_bytes: u64,
}

/// What a recovery scan of a segment found.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) segment: Segment,
    /// Where the valid data ended early, and why; the file was cut there.
    pub(crate) truncated_at: Option<(u64, String)>,
}

/// A segment with its files open. Sealed segments are opened lazily for reads and may be
/// closed again (dropped) at any time; the active one stays open and takes appends.
#[derive(Debug)]
pub(crate) struct Segment {
    base: u64,
    paths: SegmentPaths,
    log: Arc<File>,
    size: u64,
    next_offset: u64,
    index: OffsetIndex,
    time_index: TimeIndex,
    bytes_since_time_entry: u64,
    max_timestamp: i64,
    offset_of_max_timestamp: u64,
    active: bool,
    /// Bytes `[0, verified_until)` of the file were CRC-checked by this process (on append,
    /// by a recovery scan, or by an earlier read); reads skip re-checking them. Shared with
    /// the log's record of the segment and with the slices reads hand out.
    verified_until: Arc<AtomicU64>,
    /// A sealed segment whose index rebuild stopped at a damaged batch: where, and the offset
    /// after the last good batch. Reads that reach it fail instead of skipping over it.
    damage: Option<(u64, u64)>,
}

/// Where a batch lies, from the dense offset index alone (no file read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchLoc {
    /// Entry number in the segment (the batch's ordinal minus the segment's base ordinal).
    pub(crate) entry: usize,
    /// Byte position of the batch.
    pub(crate) position: u64,
    /// Byte position after the batch.
    pub(crate) end: u64,
    /// Base offset of the batch.
    pub(crate) base_offset: u64,
    /// Base offset of the batch after it (the segment's next offset for the last one).
    pub(crate) next_offset: u64,
}

/// `verified_until` of a segment every byte of which this process checked.
pub(crate) fn fully_verified() -> Arc<AtomicU64> {
    Arc::new(AtomicU64::new(u64::MAX))
}

fn open_log(path: &Path, writable: bool) -> Result<File> {
    let mut o = OpenOptions::new();
    o.read(true);
    if writable {
        // O_APPEND: every write lands at the end; truncation moves the end, nothing else does.
        o.append(true).create(true);
    }
    o.open(path).ctx("open", path)
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).ctx("remove", path),
        _ => Ok(()),
    }
}

impl Segment {
    /// Creates a new, empty active segment at `base` (replacing leftovers of that name).
    pub(crate) fn create(dir: &Path, base: u64, limits: SegmentLimits) -> Result<Segment> {
        let paths = SegmentPaths::new(dir, base);
        let log = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&paths.log)
            .ctx("create", &paths.log)?;
        log.set_len(0).ctx("truncate", &paths.log)?;
        remove_if_exists(&paths.index)?;
        remove_if_exists(&paths.time_index)?;
        let index = OffsetIndex::open(&paths.index, base, Some(limits.index_bytes), Some(0))?;
        let time_index =
            TimeIndex::open(&paths.time_index, base, Some(limits.index_bytes), Some(0))?;
        Ok(Segment {
            base,
            paths,
            log: Arc::new(log),
            size: 0,
            next_offset: base,
            index,
            time_index,
            bytes_since_time_entry: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: base,
            active: true,
            verified_until: fully_verified(),
            damage: None,
        })
    }

    /// Opens a sealed segment for reading. Its indexes are sanity-checked and rebuilt from the
    /// log if missing or damaged.
    pub(crate) fn open_sealed(
        dir: &Path,
        base: u64,
        next_offset: u64,
        limits: SegmentLimits,
        verified_until: Arc<AtomicU64>,
    ) -> Result<Segment> {
        let paths = SegmentPaths::new(dir, base);
        let log = open_log(&paths.log, false)?;
        let size = log.metadata().ctx("stat", &paths.log)?.len();
        let have_indexes = paths.index.exists() && paths.time_index.exists();
        let index = OffsetIndex::open(&paths.index, base, None, None)?;
        let time_index = TimeIndex::open(&paths.time_index, base, None, None)?;
        let mut seg = Segment {
            base,
            paths,
            log: Arc::new(log),
            size,
            next_offset,
            index,
            time_index,
            bytes_since_time_entry: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: base,
            active: false,
            verified_until,
            damage: None,
        };
        let problem = if !have_indexes {
            Some("index file missing".to_string())
        } else {
            seg.index
                .check(size)
                .and_then(|()| seg.time_index.check(next_offset))
                .err()
                .or_else(|| seg.last_entry_problem())
        };
        match problem {
            None => {
                if let Some(last) = seg.time_index.last() {
                    seg.max_timestamp = last.timestamp;
                    seg.offset_of_max_timestamp = last.offset;
                }
            }
            Some(reason) => {
                tracing::warn!(path = %seg.paths.index.display(), %reason, "rebuilding segment index");
                seg.rebuild_sealed_indexes(limits)?;
            }
        }
        Ok(seg)
    }

    /// Rebuilds both indexes of a sealed segment by scanning it. Damage inside a sealed
    /// segment is not cut away (it may hold acknowledged data after it); it is reported and
    /// the index ends before it, so reads that reach it fail instead of serving it.
    fn rebuild_sealed_indexes(&mut self, limits: SegmentLimits) -> Result<()> {
        self.index.clear();
        self.time_index.clear();
        self.index.resize_for(Some(limits.index_bytes))?;
        self.time_index.resize_for(Some(limits.index_bytes))?;
        let (size, next_offset) = (self.size, self.next_offset);
        let damage = self.scan_into_indexes(limits, &mut |_| Ok(()))?;
        // The scan checked every batch before the damage (or all of them).
        let checked = damage.as_ref().map_or(self.size, |(position, _)| *position);
        self.verified_until
            .fetch_max(checked, std::sync::atomic::Ordering::Relaxed);
        // Keep the segment's true extent and remember the damage: a read that reaches it
        // must fail there, not skip to the next segment as if the offsets did not exist.
        self.damage = damage
            .as_ref()
            .map(|(position, _)| (*position, self.next_offset));
        self.size = size;
        self.next_offset = next_offset;
        if let Some((position, reason)) = damage {
            tracing::error!(
                path = %self.paths.log.display(), position, %reason,
                "corrupt batch inside a sealed segment; reads stop before it"
            );
        }
        self.time_index
            .append_final(self.max_timestamp, self.offset_of_max_timestamp)?;
        self.index.resize_for(None)?;
        self.time_index.resize_for(None)?;
        Ok(())
    }

    /// Scans the whole log file from the start, checking each batch (CRC, framing, offsets
    /// continuing from the base, and `check` for the leader epoch), appending index entries
    /// as `append` would. Stops at the first invalid batch and returns its position and why;
    /// `size`/`next_offset` then describe the valid prefix.
    fn scan_into_indexes(
        &mut self,
        limits: SegmentLimits,
        check: &mut dyn FnMut(&BatchHeader) -> std::result::Result<(), String>,
    ) -> Result<Option<(u64, String)>> {
        let file_len = self.log.metadata().ctx("stat", &self.paths.log)?.len();
        let log = Arc::clone(&self.log);
        let path = Arc::clone(&self.paths.log);
        let mut scanner = Scanner::new(&log, &path, 0, file_len);
        self.size = 0;
        self.next_offset = self.base;
        self.bytes_since_time_entry = 0;
        self.max_timestamp = -1;
        self.offset_of_max_timestamp = self.base;
        loop {
            let (position, header) = match scanner.next_batch()? {
                None => return Ok(None),
                Some(Scanned::Invalid { position, reason }) => return Ok(Some((position, reason))),
                Some(Scanned::Batch { position, header }) => (position, header),
            };
            let expected = self.next_offset;
            if header.base_offset != expected as i64 {
                return Ok(Some((
                    position,
                    format!(
                        "batch base offset {} where {expected} was expected",
                        header.base_offset
                    ),
                )));
            }
            if let Err(reason) = check(&header) {
                return Ok(Some((position, reason)));
            }
            // An index sized by a smaller segment.index.bytes than the segment needs grows.
            self.index.ensure_room()?;
            self.time_index.ensure_room()?;
            self.index.reserve_next()?;
            self.time_index.reserve_next()?;
            self.note_appended(&header, position, limits.index_interval_bytes);
        }
    }

    /// Recovery: scans the segment, rebuilds its indexes, and cuts the file at the first
    /// invalid batch. The segment comes back active (indexes preallocated) or sealed.
    pub(crate) fn recover(
        dir: &Path,
        base: u64,
        limits: SegmentLimits,
        check: &mut dyn FnMut(&BatchHeader) -> std::result::Result<(), String>,
        as_active: bool,
    ) -> Result<Recovered> {
        let paths = SegmentPaths::new(dir, base);
        let log = open_log(&paths.log, true)?;
        let index = OffsetIndex::open(&paths.index, base, Some(limits.index_bytes), Some(0))?;
        let time_index =
            TimeIndex::open(&paths.time_index, base, Some(limits.index_bytes), Some(0))?;
        let mut seg = Segment {
            base,
            paths,
            log: Arc::new(log),
            size: 0,
            next_offset: base,
            index,
            time_index,
            bytes_since_time_entry: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: base,
            active: true,
            verified_until: fully_verified(),
            damage: None,
        };
        let truncated_at = seg.scan_into_indexes(limits, check)?;
        if let Some((position, reason)) = &truncated_at {
            tracing::warn!(
                path = %seg.paths.log.display(), position, %reason,
                "truncating log at invalid batch found by recovery"
            );
            seg.log.set_len(*position).ctx("truncate", &seg.paths.log)?;
        }
        seg.log.sync_all().ctx("fsync", &seg.paths.log)?;
        if !as_active {
            seg.seal()?;
        }
        Ok(Recovered {
            segment: seg,
            truncated_at,
        })
    }

    /// Counts the batches of a closed sealed segment from its index file without mapping it,
    /// if the index passes cheap checks: a whole number of entries, the first entry the batch
    /// at byte 0, the last entry a batch that ends exactly at the segment's end. `None` means
    /// the index cannot be trusted (open the segment, which rebuilds it).
    pub(crate) fn count_batches(dir: &Path, base: u64, size: u64) -> Result<Option<u64>> {
        let paths = SegmentPaths::new(dir, base);
        let index = match File::open(&paths.index) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).ctx("open", &paths.index),
        };
        let len = index.metadata().ctx("stat", &paths.index)?.len();
        if len % 8 != 0 || (len == 0) != (size == 0) {
            return Ok(None);
        }
        if len == 0 {
            return Ok(Some(0));
        }
        let mut entry = [0u8; 8];
        let entry_at = |pos: u64, out: &mut [u8; 8]| -> Result<(u64, u64)> {
            read_full_at(&index, &paths.index, out, pos)?;
            let rel = u32::from_be_bytes([out[0], out[1], out[2], out[3]]) as u64;
            let position = u32::from_be_bytes([out[4], out[5], out[6], out[7]]) as u64;
            Ok((rel, position))
        };
        if entry_at(0, &mut entry)? != (0, 0) {
            return Ok(None);
        }
        let (rel, position) = entry_at(len - 8, &mut entry)?;
        let log = File::open(&paths.log).ctx("open", &paths.log)?;
        let mut header = [0u8; HEADER_LEN];
        if read_full_at(&log, &paths.log, &mut header, position)? < HEADER_LEN {
            return Ok(None);
        }
        let ok = batch::parse_header(&header)
            .is_ok_and(|h| h.base_offset as u64 == base + rel && position + h.total_len() == size);
        Ok(ok.then_some(len / 8))
    }

    /// Reopens the active segment after a clean shutdown, trusting the recorded state.
    pub(crate) fn open_active(
        dir: &Path,
        base: u64,
        state: ActiveState,
        limits: SegmentLimits,
    ) -> Result<Segment> {
        // Written by an earlier run: verified by reads as they reach it.
        let verified_until = Arc::new(AtomicU64::new(0));
        let paths = SegmentPaths::new(dir, base);
        let log = open_log(&paths.log, true)?;
        let index = OffsetIndex::open(&paths.index, base, Some(limits.index_bytes), None)?;
        let time_index = TimeIndex::open(&paths.time_index, base, Some(limits.index_bytes), None)?;
        let seg = Segment {
            base,
            paths,
            log: Arc::new(log),
            size: state.size,
            next_offset: state.next_offset,
            index,
            time_index,
            bytes_since_time_entry: state.bytes_since_time_entry,
            max_timestamp: state.max_timestamp,
            offset_of_max_timestamp: state.offset_of_max_timestamp,
            active: true,
            verified_until,
            damage: None,
        };
        if let Err(reason) = seg
            .index
            .check(seg.size)
            .and_then(|()| seg.time_index.check(seg.next_offset))
        {
            return Err(StorageError::Corrupt {
                path: seg.paths.index.clone(),
                position: 0,
                reason,
            });
        }
        Ok(seg)
    }

    /// Turns a sealed segment back into the active one (after a truncation reached into it).
    pub(crate) fn reactivate(&mut self, limits: SegmentLimits) -> Result<()> {
        if self.active {
            return Ok(());
        }
        self.log = Arc::new(open_log(&self.paths.log, true)?);
        self.index.resize_for(Some(limits.index_bytes))?;
        self.time_index.resize_for(Some(limits.index_bytes))?;
        self.recompute_running_state()?;
        self.active = true;
        Ok(())
    }

    pub(crate) fn base(&self) -> u64 {
        self.base
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn next_offset(&self) -> u64 {
        self.next_offset
    }

    pub(crate) fn max_timestamp(&self) -> Option<(i64, u64)> {
        (self.max_timestamp >= 0).then_some((self.max_timestamp, self.offset_of_max_timestamp))
    }

    pub(crate) fn paths(&self) -> &SegmentPaths {
        &self.paths
    }

    pub(crate) fn file(&self) -> &Arc<File> {
        &self.log
    }

    pub(crate) fn verified_until(&self) -> &Arc<AtomicU64> {
        &self.verified_until
    }

    pub(crate) fn active_state(&self) -> ActiveState {
        ActiveState {
            size: self.size,
            next_offset: self.next_offset,
            max_timestamp: self.max_timestamp,
            offset_of_max_timestamp: self.offset_of_max_timestamp,
            bytes_since_time_entry: self.bytes_since_time_entry,
        }
    }

    /// The offset a search for the first batch with a timestamp at or after `timestamp` can
    /// start from (every batch before it is older).
    pub(crate) fn time_lookup_before(&self, timestamp: i64) -> u64 {
        self.time_index
            .lookup_before(timestamp)
            .map_or(self.base, |e| e.offset)
    }

    /// Whether the indexes have no room for another entry (the segment must roll).
    pub(crate) fn indexes_full(&self) -> bool {
        self.index.is_full() || self.time_index.is_full()
    }

    /// Bookkeeping after a batch was written at `position` (or found there by a scan). The
    /// caller made room in the indexes.
    fn note_appended(&mut self, h: &BatchHeader, position: u64, interval: u64) {
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.offset_of_max_timestamp = h.base_offset as u64;
        }
        self.index.append(h.base_offset as u64, position as u32);
        // Kafka's rule for the (sparse) time index: an entry once more than `interval`
        // bytes were written since the last one, if the running maximum grew.
        if self.bytes_since_time_entry > interval {
            self.time_index
                .maybe_append(self.max_timestamp, self.offset_of_max_timestamp);
            self.bytes_since_time_entry = 0;
        }
        self.bytes_since_time_entry += h.total_len();
        self.size = position + h.total_len();
        self.next_offset = h.base_offset as u64 + h.offset_span();
    }

    /// Appends a validated batch, writing `prefix` in place of its first 16 bytes.
    /// On a write error the file is cut back to its previous size.
    pub(crate) fn append(
        &mut self,
        batch: &[u8],
        prefix: &[u8; 16],
        header: &BatchHeader,
        interval: u64,
    ) -> Result<()> {
        debug_assert!(self.active, "append to a sealed segment");
        debug_assert_eq!(
            header.base_offset as u64, self.next_offset,
            "batch header must carry its assigned offset"
        );
        // Appends roll the segment before its indexes fill, except while it holds only
        // marker batches (a segment must take an offset before it rolls, or the next one
        // would have the same name): then the index grows.
        self.index.ensure_room()?;
        self.time_index.ensure_room()?;
        self.index.reserve_next()?;
        self.time_index.reserve_next()?;
        let position = self.size;
        if let Err(e) = write_all_vectored(
            &self.log,
            &mut [IoSlice::new(prefix), IoSlice::new(&batch[16..])],
        ) {
            // Leave no partial batch behind: the next append would land after it.
            let undo = self.log.set_len(position);
            return match undo {
                Ok(()) => Err(e).ctx("write", &self.paths.log),
                Err(undo_err) => Err(StorageError::Io {
                    op: "undo partial write (after a failed write)",
                    path: self.paths.log.to_path_buf(),
                    source: undo_err,
                }),
            };
        }
        self.note_appended(header, position, interval);
        Ok(())
    }

    /// Reads and frames the batch header at `position`.
    pub(crate) fn header_at(&self, position: u64) -> Result<BatchHeader> {
        let mut buf = [0u8; HEADER_LEN];
        let got = read_full_at(&self.log, &self.paths.log, &mut buf, position)?;
        let corrupt = |reason: String| StorageError::Corrupt {
            path: self.paths.log.to_path_buf(),
            position,
            reason,
        };
        let h = batch::parse_header(&buf[..got]).map_err(|e| corrupt(e.to_string()))?;
        batch::check_header(&h, u32::MAX).map_err(|e| corrupt(e.to_string()))?;
        if position + h.total_len() > self.size {
            return Err(corrupt(format!(
                "batch of {} bytes runs past the segment end {}",
                h.total_len(),
                self.size
            )));
        }
        Ok(h)
    }

    /// Number of batches in the segment.
    pub(crate) fn entries(&self) -> u64 {
        self.index.entries() as u64
    }

    /// Where batch number `entry` of the segment lies. `entry` must be below
    /// [`Self::entries`].
    pub(crate) fn batch(&self, entry: usize) -> BatchLoc {
        let e = self.index.entry(entry);
        let (end, next_offset) = if entry + 1 < self.index.entries() {
            let n = self.index.entry(entry + 1);
            (n.position as u64, n.offset)
        } else if let Some((position, next)) = self.damage {
            (position, next)
        } else {
            (self.size, self.next_offset)
        };
        BatchLoc {
            entry,
            position: e.position as u64,
            end,
            base_offset: e.offset,
            next_offset,
        }
    }

    fn damaged(&self, position: u64) -> StorageError {
        StorageError::Corrupt {
            path: self.paths.log.to_path_buf(),
            position,
            reason: "damaged batch in a sealed segment (see the log line from its index rebuild)"
                .into(),
        }
    }

    /// The batch holding `offset` (or the first one after it), `None` past the segment's end.
    /// Offsets at or past damage found in this segment are an error.
    pub(crate) fn find_batch(&self, offset: u64) -> Result<Option<BatchLoc>> {
        if offset >= self.next_offset || self.index.entries() == 0 {
            if let Some((position, _)) = self.damage {
                if offset < self.next_offset {
                    return Err(self.damaged(position));
                }
            }
            return Ok(None);
        }
        let loc = self.batch(self.index.lookup(offset).unwrap_or(0));
        if let Some((position, good_end)) = self.damage {
            if offset >= good_end {
                return Err(self.damaged(position));
            }
        }
        Ok(Some(loc))
    }

    /// Byte position where a read bounded by `end` stops: before the batch holding `end`
    /// and before marker batches at `end` (they belong with what follows), i.e. after the
    /// last batch whose offsets all lie below `end`; the segment size if every batch does.
    pub(crate) fn end_position(&self, end: u64) -> Result<u64> {
        // Reaching into damage fails as `find_batch` does.
        self.find_batch(end)?;
        let below =
            crate::index::last_where(self.index.entries(), |i| self.index.entry(i).offset < end);
        Ok(match below {
            None => 0,
            Some(j) => {
                let loc = self.batch(j);
                if loc.next_offset > end {
                    loc.position
                } else {
                    loc.end
                }
            }
        })
    }

    /// The end of the last whole batch that starts at or after `start` and ends at or before
    /// `limit`, with the offset that follows it. Returns `start` if not even one fits.
    pub(crate) fn last_boundary(&self, start: u64, limit: u64) -> (u64, u64) {
        let (data_end, data_next) = self.damage.unwrap_or((self.size, self.next_offset));
        if limit >= data_end {
            return (data_end, data_next);
        }
        // Batch starts are the boundaries: the last one at or before `limit`.
        match self.index.lookup_position(limit) {
            Some(j) => {
                let e = self.index.entry(j);
                if e.position as u64 > start {
                    (e.position as u64, e.offset)
                } else {
                    (start, e.offset)
                }
            }
            None => (start, self.base),
        }
    }

    /// How many of batches `first..=last` fit in `budget` bytes, counted from `first`, but at
    /// least one.
    pub(crate) fn fit_batches(&self, first: usize, last: usize, budget: u64) -> usize {
        let start = self.batch(first).position;
        let fitting = crate::index::last_where(last + 1 - first, |m| {
            self.batch(first + m).end - start <= budget
        });
        fitting.map_or(1, |m| m + 1)
    }

    /// Cuts the segment before batch number `entry` (that batch goes too) and makes the cut
    /// durable. Returns whether anything was removed.
    pub(crate) fn truncate_to_entry(&mut self, entry: usize) -> Result<bool> {
        debug_assert!(
            self.active,
            "truncate a sealed segment (reactivate it first)"
        );
        if entry >= self.index.entries() {
            return Ok(false);
        }
        let loc = self.batch(entry);
        self.log
            .set_len(loc.position)
            .ctx("truncate", &self.paths.log)?;
        self.log.sync_all().ctx("fsync", &self.paths.log)?;
        self.size = loc.position;
        self.next_offset = loc.base_offset;
        self.damage = None;
        self.index.truncate_entries(loc.entry);
        self.time_index.truncate_to_offset(loc.base_offset);
        self.recompute_running_state()?;
        Ok(true)
    }

    /// Recomputes the running maximum timestamp from the time index and the headers of the
    /// batches after the one its last entry names (rare: truncation, reactivation).
    fn recompute_running_state(&mut self) -> Result<()> {
        let last = self.time_index.last();
        self.max_timestamp = last.map_or(-1, |e| e.timestamp);
        self.offset_of_max_timestamp = last.map_or(self.base, |e| e.offset);
        let from = last.map_or(0, |e| self.index.lookup(e.offset).unwrap_or(0));
        for entry in from..self.index.entries() {
            let h = self.header_at(self.batch(entry).position)?;
            if h.max_timestamp > self.max_timestamp {
                self.max_timestamp = h.max_timestamp;
                self.offset_of_max_timestamp = h.base_offset as u64;
            }
        }
        self.bytes_since_time_entry = 0;
        Ok(())
    }

    /// Why the index's last entry is not the segment's last batch, if it is not.
    fn last_entry_problem(&self) -> Option<String> {
        let last = self.index.last()?;
        match self.header_at(last.position as u64) {
            Ok(h) if last.position as u64 + h.total_len() == self.size => None,
            Ok(h) => Some(format!(
                "last index entry's batch ends at {}, the segment at {}",
                last.position as u64 + h.total_len(),
                self.size
            )),
            Err(e) => Some(format!("last index entry's batch is unreadable: {e}")),
        }
    }

    /// Seals the segment: final time-index entry with its largest timestamp, indexes trimmed
    /// to their entries.
    pub(crate) fn seal(&mut self) -> Result<()> {
        self.time_index
            .append_final(self.max_timestamp, self.offset_of_max_timestamp)?;
        self.index.resize_for(None)?;
        self.time_index.resize_for(None)?;
        self.active = false;
        Ok(())
    }

    /// Trims the indexes for a clean close, keeping the segment's role.
    pub(crate) fn trim_for_close(&mut self) -> Result<()> {
        self.index.resize_for(None)?;
        self.time_index.resize_for(None)
    }

    /// fsyncs the log data (not the indexes, which recovery can rebuild).
    pub(crate) fn sync_data(&self) -> Result<()> {
        self.log.sync_data().ctx("fsync", &self.paths.log)
    }

    /// fsyncs the log and both indexes.
    pub(crate) fn sync_all(&self) -> Result<()> {
        self.log.sync_all().ctx("fsync", &self.paths.log)?;
        self.index.file().sync()?;
        self.time_index.file().sync()
    }

    /// The log file, for an fsync of its data from another thread.
    pub(crate) fn log_sync_handle(&self) -> (PathBuf, Arc<File>) {
        (self.paths.log.to_path_buf(), Arc::clone(&self.log))
    }

    /// Handles for syncing this segment's files from another thread.
    pub(crate) fn sync_handles(&self) -> Result<Vec<(PathBuf, Arc<File>)>> {
        Ok(vec![
            (self.paths.log.to_path_buf(), Arc::clone(&self.log)),
            (
                self.paths.index.clone(),
                Arc::new(self.index.file().try_clone_file()?),
            ),
            (
                self.paths.time_index.clone(),
                Arc::new(self.time_index.file().try_clone_file()?),
            ),
        ])
    }

    /// Deletes the segment's files, data first (an index without its log is cleaned up on
    /// the next open; a log without its index gets the index rebuilt).
    pub(crate) fn delete_files(dir: &Path, base: u64) -> Result<()> {
        let paths = SegmentPaths::new(dir, base);
        remove_if_exists(&paths.log)?;
        remove_if_exists(&paths.index)?;
        remove_if_exists(&paths.time_index)
    }
}

fn write_all_vectored(file: &File, mut bufs: &mut [IoSlice<'_>]) -> std::io::Result<()> {
    let mut f = file;
    while !bufs.is_empty() {
        match f.write_vectored(bufs) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
