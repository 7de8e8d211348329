//! Leader-epoch history: which epoch wrote which range of offsets.
//!
//! Each entry `(epoch, start_offset)` says that batches from `start_offset` up to the next
//! entry's start were appended under `epoch` (Kafka's `LeaderEpochFileCache`, KIP-101/279).
//! It answers OffsetForLeaderEpoch (where did epoch N end?) and lets recovery check the one
//! header field no checksum covers: every batch's `partitionLeaderEpoch` must equal the epoch
//! this history assigns to its offset.
//!
//! Persistence rule that makes that check sound: a new epoch is written to
//! `leader-epoch-checkpoint` (atomically, fsynced) *before* the first batch of that epoch is
//! appended. A crash may therefore leave entries past the log end (removed on open), never a
//! batch whose epoch the file does not know.

use std::path::{Path, PathBuf};

use crate::checkpoint::{read_sealed, seal, write_atomically, EPOCH_FILE};
use crate::error::Result;

/// One entry of the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: i32,
    /// First offset written in this epoch.
    pub start_offset: u64,
}

/// The history, with its file.
#[derive(Debug)]
pub(crate) struct LeaderEpochCache {
    dir: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// Loads the history; `None` if the file is missing or damaged (the caller rebuilds it).
    pub(crate) fn load(dir: &Path) -> Result<Option<LeaderEpochCache>> {
        let Some(lines) = read_sealed(dir, EPOCH_FILE)? else {
            return Ok(None);
        };
        let parsed = Self::parse(&lines);
        if parsed.is_none() {
            tracing::warn!(dir = %dir.display(), "ignoring unparsable leader-epoch checkpoint");
        }
        Ok(parsed.map(|entries| LeaderEpochCache {
            dir: dir.to_path_buf(),
            entries,
        }))
    }

    fn parse(lines: &[String]) -> Option<Vec<EpochEntry>> {
        let (head, rest) = lines.split_first()?;
        if head != "cairn-leader-epochs 1" {
            return None;
        }
        let (count, rest) = rest.split_first()?;
        if count.parse::<usize>().ok()? != rest.len() {
            return None;
        }
        let mut entries: Vec<EpochEntry> = Vec::with_capacity(rest.len());
        for line in rest {
            let (e, s) = line.split_once(' ')?;
            let entry = EpochEntry {
                epoch: e.parse().ok()?,
                start_offset: s.parse().ok()?,
            };
            if entries
                .last()
                .is_some_and(|l| l.epoch >= entry.epoch || l.start_offset > entry.start_offset)
            {
                return None;
            }
            entries.push(entry);
        }
        Some(entries)
    }

    /// An empty history (new log, or one being rebuilt by a scan); not yet written.
    pub(crate) fn empty(dir: &Path) -> LeaderEpochCache {
        LeaderEpochCache {
            dir: dir.to_path_buf(),
            entries: Vec::new(),
        }
    }

    pub(crate) fn persist(&self) -> Result<()> {
        let mut body = format!("cairn-leader-epochs 1\n{}\n", self.entries.len());
        for e in &self.entries {
            body.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
        }
        write_atomically(&self.dir, EPOCH_FILE, &seal(body))
    }

    pub(crate) fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub(crate) fn latest(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    /// Records that `epoch` starts at `start_offset`, without persisting (scan rebuilds).
    pub(crate) fn push(&mut self, epoch: i32, start_offset: u64) {
        debug_assert!(self
            .latest()
            .is_none_or(|l| l.epoch < epoch && l.start_offset <= start_offset));
        // An earlier epoch that never got a batch is superseded by this one.
        if self
            .latest()
            .is_some_and(|l| l.start_offset == start_offset)
        {
            self.entries.pop();
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
    }

    /// Records and persists a new epoch; call before appending its first batch.
    pub(crate) fn assign(&mut self, epoch: i32, start_offset: u64) -> Result<()> {
        self.push(epoch, start_offset);
        self.persist()
    }

    /// The epoch that wrote `offset`, if the history covers it.
    pub(crate) fn epoch_for(&self, offset: u64) -> Option<i32> {
        let i = self.entries.partition_point(|e| e.start_offset <= offset);
        i.checked_sub(1).map(|i| self.entries[i].epoch)
    }

    /// Kafka's OffsetForLeaderEpoch answer for `epoch`: the largest epoch at or below it and
    /// the offset where that epoch ended (the next epoch's start, or `log_end` for the latest).
    /// `None` when `epoch` precedes the whole history (Kafka's UNDEFINED_EPOCH).
    pub(crate) fn end_offset_for(&self, epoch: i32, log_end: u64) -> Option<(i32, u64)> {
        let i = self.entries.partition_point(|e| e.epoch <= epoch);
        let found = self.entries.get(i.checked_sub(1)?)?;
        let end = self
            .entries
            .get(i)
            .map_or(log_end, |next| next.start_offset);
        Some((found.epoch, end))
    }

    /// Drops entries starting at or after `end` (the log was cut there). Persists if changed.
    pub(crate) fn truncate_from_end(&mut self, end: u64) -> Result<()> {
        let keep = self.entries.partition_point(|e| e.start_offset < end);
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            self.persist()?;
        }
        Ok(())
    }

    /// Forgets history before `start` (the log start moved), keeping the epoch in force at
    /// `start`. Persists if changed.
    pub(crate) fn truncate_from_start(&mut self, start: u64) -> Result<()> {
        let first_kept = self.entries.partition_point(|e| e.start_offset <= start);
        if first_kept <= 1 {
            return Ok(());
        }
        self.entries.drain(..first_kept - 1);
        self.persist()
    }

    /// Forgets everything (the log was emptied).
    pub(crate) fn clear(&mut self) -> Result<()> {
        self.entries.clear();
        self.persist()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_answers_and_persists() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(LeaderEpochCache::load(dir.path()).expect("load").is_none());
        let mut c = LeaderEpochCache::empty(dir.path());
        c.assign(1, 0).expect("assign");
        c.assign(3, 10).expect("assign");
        c.assign(4, 25).expect("assign");
        assert_eq!(c.epoch_for(0), Some(1));
        assert_eq!(c.epoch_for(9), Some(1));
        assert_eq!(c.epoch_for(10), Some(3));
        assert_eq!(c.epoch_for(100), Some(4));
        assert_eq!(c.end_offset_for(0, 40), None);
        assert_eq!(c.end_offset_for(1, 40), Some((1, 10)));
        assert_eq!(c.end_offset_for(2, 40), Some((1, 10)));
        assert_eq!(c.end_offset_for(3, 40), Some((3, 25)));
        assert_eq!(c.end_offset_for(9, 40), Some((4, 40)));
        let loaded = LeaderEpochCache::load(dir.path())
            .expect("load")
            .expect("present");
        assert_eq!(loaded.entries(), c.entries());
        c.truncate_from_end(25).expect("truncate");
        assert_eq!(c.latest().map(|e| e.epoch), Some(3));
        c.truncate_from_start(12).expect("truncate");
        assert_eq!(
            c.entries(),
            &[EpochEntry {
                epoch: 3,
                start_offset: 10
            }]
        );
        let loaded = LeaderEpochCache::load(dir.path())
            .expect("load")
            .expect("present");
        assert_eq!(loaded.entries(), c.entries());
    }
}
