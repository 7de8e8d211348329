//! The offset index (dense) and time index (sparse) of a segment, memory-mapped.
//!
//! ```text
//! <base>.index      entries of 8 bytes, big-endian:
//!                     0  u32  batch base offset - segment base offset
//!                     4  u32  byte position of that batch in <base>.log
//! <base>.timeindex  entries of 12 bytes, big-endian:
//!                     0  i64  largest batch maxTimestamp seen so far in the segment
//!                     8  u32  base offset of the batch that first had it - segment base
//! ```
//!
//! The offset index is **dense**: entry *i* is the *i*-th batch of the segment (the first at
//! position 0). That makes a batch's ordinal in the log — its raft entry number — the
//! segment's base ordinal plus the entry number, and lets reads find batch boundaries without
//! reading headers. It costs 8 bytes per batch (0.05% of a 16 KiB batch); Kafka's sparse
//! index exists to save that, at the price of a scan after every lookup.
//!
//! A time-index entry is added once more than `index.interval.bytes` of log were written since
//! the previous one, if the running maximum grew, and once more when the segment is sealed, so
//! the last entry holds the segment's largest timestamp.
//!
//! Both files are preallocated to `segment.index.bytes` while their segment is active (the
//! entry count lives in memory) and trimmed to their entries when it is sealed or the log is
//! closed. Crash safety: after an unclean shutdown the indexes of every segment recovery scans
//! are rebuilt from the log, so stale or zeroed entries never matter; for the others a
//! [`OffsetIndex::check`]/[`TimeIndex::check`] sanity check on load sends a damaged index to be
//! rebuilt rather than trusted.

use std::path::Path;

use crate::error::Result;
use crate::mmap::MappedFile;

const OFFSET_ENTRY: usize = 8;
const TIME_ENTRY: usize = 12;

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Index of the last entry for which `le(entry)` holds, given that it holds for a prefix of
/// the entries; `None` if it holds for none.
pub(crate) fn last_where(entries: usize, mut le: impl FnMut(usize) -> bool) -> Option<usize> {
    let (mut lo, mut hi) = (0usize, entries);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if le(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo.checked_sub(1)
}

/// Offset index: batch base offset → byte position, dense (one entry per batch).
#[derive(Debug)]
pub(crate) struct OffsetIndex {
    file: MappedFile,
    base: u64,
    entries: usize,
}

/// One offset-index entry, in absolute terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub(crate) offset: u64,
    pub(crate) position: u32,
}

impl OffsetIndex {
    /// Opens the index of the segment based at `base`. With `prealloc` the file is sized for
    /// appending and holds `entries` valid entries; without, every entry in the file is valid.
    pub(crate) fn open(
        path: &Path,
        base: u64,
        prealloc: Option<u64>,
        entries: Option<usize>,
    ) -> Result<OffsetIndex> {
        let mut file = MappedFile::open(path, None)?;
        let in_file = (file.len() as usize) / OFFSET_ENTRY;
        let entries = entries.unwrap_or(in_file).min(in_file);
        if let Some(len) = prealloc {
            let len = len - len % OFFSET_ENTRY as u64;
            if len != file.len() {
                file.resize(len.max((entries * OFFSET_ENTRY) as u64))?;
            }
        }
        Ok(OffsetIndex {
            file,
            base,
            entries,
        })
    }

    /// Number of entries, which is the number of batches in the segment.
    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    /// Entry `i` (the `i`-th batch). `i` must be below [`Self::entries`].
    pub(crate) fn entry(&self, i: usize) -> IndexEntry {
        debug_assert!(i < self.entries, "index entry {i} of {}", self.entries);
        let b = self.file.bytes();
        let at = i * OFFSET_ENTRY;
        IndexEntry {
            offset: self.base + u32_at(b, at) as u64,
            position: u32_at(b, at + 4),
        }
    }

    pub(crate) fn last(&self) -> Option<IndexEntry> {
        self.entries.checked_sub(1).map(|i| self.entry(i))
    }

    pub(crate) fn is_full(&self) -> bool {
        (self.entries + 1) * OFFSET_ENTRY > self.file.len() as usize
    }

    /// Grows the file by half when full (scans rebuilding an index that an older, smaller
    /// `segment.index.bytes` sized; appends roll instead).
    pub(crate) fn ensure_room(&mut self) -> Result<()> {
        if self.is_full() {
            let len = self.file.len();
            let grown = (len + len / 2).max(len + OFFSET_ENTRY as u64 * 64);
            self.file.resize(grown - grown % OFFSET_ENTRY as u64)?;
        }
        Ok(())
    }

    /// Gives the next entry's bytes their disk blocks (see `MappedFile::ensure_allocated`):
    /// call before writing the batch the entry is for, so a full disk fails the append
    /// before anything was written.
    pub(crate) fn reserve_next(&mut self) -> Result<()> {
        self.file
            .ensure_allocated(((self.entries + 1) * OFFSET_ENTRY) as u64)
    }

    /// Appends the entry of the next batch; the caller guarantees room and monotonicity.
    pub(crate) fn append(&mut self, offset: u64, position: u32) {
        debug_assert!(
            !self.is_full(),
            "offset index append past its preallocated size"
        );
        debug_assert!(
            self.last().map_or(position == 0, |l| l.offset <= offset
                && l.position < position),
            "offset index entries must start at byte 0, grow in offset and strictly in position"
        );
        let rel = u32::try_from(offset - self.base).expect("relative offset fits u32 (roll)");
        let at = self.entries * OFFSET_ENTRY;
        let b = self.file.bytes_mut();
        b[at..at + 4].copy_from_slice(&rel.to_be_bytes());
        b[at + 4..at + 8].copy_from_slice(&position.to_be_bytes());
        self.entries += 1;
    }

    /// Number of the last batch whose base offset is at or before `offset` (after any
    /// marker batches sharing that base offset: the batch that holds `offset`).
    pub(crate) fn lookup(&self, offset: u64) -> Option<usize> {
        last_where(self.entries, |i| self.entry(i).offset <= offset)
    }

    /// Number of the last batch that starts at or before byte `position`.
    pub(crate) fn lookup_position(&self, position: u64) -> Option<usize> {
        last_where(self.entries, |i| self.entry(i).position as u64 <= position)
    }

    /// Keeps the first `entries` entries (the log is being cut before batch `entries`).
    pub(crate) fn truncate_entries(&mut self, entries: usize) {
        self.entries = self.entries.min(entries);
    }

    pub(crate) fn clear(&mut self) {
        self.entries = 0;
    }

    /// Shrinks the file to its entries (sealing) or grows it to `prealloc` (reactivating).
    pub(crate) fn resize_for(&mut self, prealloc: Option<u64>) -> Result<()> {
        let want = match prealloc {
            Some(len) => {
                (len - len % OFFSET_ENTRY as u64).max((self.entries * OFFSET_ENTRY) as u64)
            }
            None => (self.entries * OFFSET_ENTRY) as u64,
        };
        if want != self.file.len() {
            self.file.resize(want)?;
        }
        Ok(())
    }

    /// Sanity check of a loaded index against its log size: the first entry is the batch at
    /// byte 0, entries increase in offset (marker batches, which take no offset, share the
    /// next batch's) and strictly in position, positions lie inside the log.
    /// (That the last entry is the segment's last batch is checked by the segment, which can
    /// read that batch's header.)
    pub(crate) fn check(&self, log_size: u64) -> std::result::Result<(), String> {
        if log_size > 0 && self.entries == 0 {
            return Err("no entries for a non-empty segment".to_string());
        }
        let mut prev: Option<IndexEntry> = None;
        for i in 0..self.entries {
            let e = self.entry(i);
            if e.position as u64 >= log_size.max(1) {
                return Err(format!(
                    "entry {i} points at byte {} past the log end {log_size}",
                    e.position
                ));
            }
            match prev {
                Some(p) if e.offset < p.offset || e.position <= p.position => {
                    return Err(format!(
                        "entry {i} ({}, {}) does not follow ({}, {})",
                        e.offset, e.position, p.offset, p.position
                    ));
                }
                None if e.position != 0 || e.offset != self.base => {
                    return Err(format!(
                        "first entry ({}, {}) is not the segment's first batch",
                        e.offset, e.position
                    ));
                }
                _ => {}
            }
            prev = Some(e);
        }
        Ok(())
    }

    pub(crate) fn file(&self) -> &MappedFile {
        &self.file
    }
}

/// Time index: running maximum timestamp → base offset of the batch that reached it.
#[derive(Debug)]
pub(crate) struct TimeIndex {
    file: MappedFile,
    base: u64,
    entries: usize,
}

/// One time-index entry, in absolute terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub(crate) timestamp: i64,
    pub(crate) offset: u64,
}

impl TimeIndex {
    /// Opens the time index; arguments as for [`OffsetIndex::open`].
    pub(crate) fn open(
        path: &Path,
        base: u64,
        prealloc: Option<u64>,
        entries: Option<usize>,
    ) -> Result<TimeIndex> {
        let mut file = MappedFile::open(path, None)?;
        let in_file = (file.len() as usize) / TIME_ENTRY;
        let entries = entries.unwrap_or(in_file).min(in_file);
        if let Some(len) = prealloc {
            let len = len - len % TIME_ENTRY as u64;
            if len != file.len() {
                file.resize(len.max((entries * TIME_ENTRY) as u64))?;
            }
        }
        Ok(TimeIndex {
            file,
            base,
            entries,
        })
    }

    fn entry(&self, i: usize) -> TimeEntry {
        let b = self.file.bytes();
        let at = i * TIME_ENTRY;
        TimeEntry {
            timestamp: i64_at(b, at),
            offset: self.base + u32_at(b, at + 8) as u64,
        }
    }

    pub(crate) fn last(&self) -> Option<TimeEntry> {
        self.entries.checked_sub(1).map(|i| self.entry(i))
    }

    /// Whether only the slot reserved for the sealing entry is left.
    pub(crate) fn is_full(&self) -> bool {
        (self.entries + 2) * TIME_ENTRY > self.file.len() as usize
    }

    /// Grows the file by half when full (scans rebuilding an index sized by a smaller
    /// `segment.index.bytes`).
    pub(crate) fn ensure_room(&mut self) -> Result<()> {
        if self.is_full() {
            let len = self.file.len();
            let grown = (len + len / 2).max(len + TIME_ENTRY as u64 * 64);
            self.file.resize(grown - grown % TIME_ENTRY as u64)?;
        }
        Ok(())
    }

    /// The entry written when the segment is sealed, so the last entry holds the segment's
    /// largest timestamp; uses the slot [`Self::is_full`] keeps in reserve.
    pub(crate) fn append_final(&mut self, timestamp: i64, offset: u64) -> Result<()> {
        if (self.entries + 1) * TIME_ENTRY > self.file.len() as usize {
            self.file.resize(((self.entries + 1) * TIME_ENTRY) as u64)?;
        }
        self.reserve_next()?;
        self.maybe_append(timestamp, offset);
        Ok(())
    }

    /// Gives the next entry's bytes their disk blocks, as [`OffsetIndex::reserve_next`].
    pub(crate) fn reserve_next(&mut self) -> Result<()> {
        self.file
            .ensure_allocated(((self.entries + 1) * TIME_ENTRY) as u64)
    }

    /// Appends `(timestamp, offset)` if `timestamp` is larger than the last entry's; returns
    /// whether it did. The caller guarantees room.
    pub(crate) fn maybe_append(&mut self, timestamp: i64, offset: u64) -> bool {
        if self.last().is_some_and(|l| l.timestamp >= timestamp) || timestamp < 0 {
            return false;
        }
        debug_assert!(
            (self.entries + 1) * TIME_ENTRY <= self.file.len() as usize,
            "time index append past its preallocated size"
        );
        debug_assert!(self.last().is_none_or(|l| l.offset <= offset));
        let rel = u32::try_from(offset - self.base).expect("relative offset fits u32 (roll)");
        let at = self.entries * TIME_ENTRY;
        let b = self.file.bytes_mut();
        b[at..at + 8].copy_from_slice(&timestamp.to_be_bytes());
        b[at + 8..at + 12].copy_from_slice(&rel.to_be_bytes());
        self.entries += 1;
        true
    }

    /// The last entry whose timestamp is below `timestamp`: every batch up to its offset has
    /// a smaller maximum, so a search for the first batch at or after `timestamp` starts
    /// there. `None` means start at the segment's beginning.
    pub(crate) fn lookup_before(&self, timestamp: i64) -> Option<TimeEntry> {
        last_where(self.entries, |i| self.entry(i).timestamp < timestamp).map(|i| self.entry(i))
    }

    /// Drops entries whose offset is at or after `offset`.
    pub(crate) fn truncate_to_offset(&mut self, offset: u64) {
        self.entries =
            last_where(self.entries, |i| self.entry(i).offset < offset).map_or(0, |i| i + 1);
    }

    pub(crate) fn clear(&mut self) {
        self.entries = 0;
    }

    /// As [`OffsetIndex::resize_for`].
    pub(crate) fn resize_for(&mut self, prealloc: Option<u64>) -> Result<()> {
        let want = match prealloc {
            Some(len) => (len - len % TIME_ENTRY as u64).max((self.entries * TIME_ENTRY) as u64),
            None => (self.entries * TIME_ENTRY) as u64,
        };
        if want != self.file.len() {
            self.file.resize(want)?;
        }
        Ok(())
    }

    /// Sanity check: timestamps strictly increasing and non-negative, offsets non-decreasing
    /// and below `next_offset`.
    pub(crate) fn check(&self, next_offset: u64) -> std::result::Result<(), String> {
        let mut prev: Option<TimeEntry> = None;
        for i in 0..self.entries {
            let e = self.entry(i);
            if e.timestamp < 0 || e.offset >= next_offset.max(self.base + 1) {
                return Err(format!(
                    "time entry {i} ({}, {}) is out of range",
                    e.timestamp, e.offset
                ));
            }
            if let Some(p) = prev {
                if e.timestamp <= p.timestamp || e.offset < p.offset {
                    return Err(format!("time entry {i} does not follow the previous one"));
                }
            }
            prev = Some(e);
        }
        Ok(())
    }

    pub(crate) fn file(&self) -> &MappedFile {
        &self.file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_lookup_and_truncate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("0.index");
        let mut ix = OffsetIndex::open(&p, 100, Some(80), Some(0)).expect("open");
        assert_eq!(ix.lookup(150), None);
        for i in 0..5u64 {
            ix.append(100 + i * 10, (i * 1000) as u32);
        }
        assert_eq!(ix.lookup(125), Some(2));
        assert_eq!(
            ix.entry(3),
            IndexEntry {
                offset: 130,
                position: 3000
            }
        );
        assert_eq!(ix.lookup(99), None);
        assert_eq!(ix.lookup_position(2500), Some(2));
        assert!(ix.check(10_000).is_ok());
        ix.truncate_entries(2);
        assert_eq!(ix.entries(), 2);
        ix.resize_for(None).expect("trim");
        assert_eq!(ix.file().len(), 16);
        drop(ix);
        let ix = OffsetIndex::open(&p, 100, None, None).expect("reopen");
        assert_eq!(ix.entries(), 2);
        assert_eq!(
            ix.last(),
            Some(IndexEntry {
                offset: 110,
                position: 1000
            })
        );
        assert!(
            ix.check(900).is_err(),
            "position past the log end is caught"
        );
    }

    #[test]
    fn index_full_and_zeroed_entries_fail_check() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("0.index");
        let mut ix = OffsetIndex::open(&p, 0, Some(24), Some(0)).expect("open");
        ix.append(0, 0);
        ix.append(2, 20);
        ix.append(3, 30);
        assert!(ix.is_full());
        ix.ensure_room().expect("grow");
        assert!(!ix.is_full());
        drop(ix);
        // A preallocated, untrimmed file with trailing zeros is not a valid index.
        let p2 = dir.path().join("1.index");
        let mut ix = OffsetIndex::open(&p2, 0, Some(32), Some(0)).expect("open");
        ix.append(0, 0);
        ix.append(1, 10);
        drop(ix);
        let ix = OffsetIndex::open(&p2, 0, None, None).expect("reopen");
        assert!(ix.check(100).is_err());
    }

    #[test]
    fn time_index_keeps_running_max() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("0.timeindex");
        let mut ix = TimeIndex::open(&p, 0, Some(120), Some(0)).expect("open");
        assert!(ix.maybe_append(10, 0));
        assert!(!ix.maybe_append(10, 5));
        assert!(!ix.maybe_append(5, 6));
        assert!(ix.maybe_append(20, 7));
        assert!(ix.maybe_append(30, 9));
        assert_eq!(ix.lookup_before(10), None);
        assert_eq!(ix.lookup_before(11).map(|e| e.offset), Some(0));
        assert_eq!(ix.lookup_before(25).map(|e| e.offset), Some(7));
        ix.truncate_to_offset(9);
        assert_eq!(ix.last().map(|e| e.timestamp), Some(20));
        assert!(ix.check(10).is_ok());
    }
}
