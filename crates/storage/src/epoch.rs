//! Leader-epoch history: which epoch wrote which range of the log.
//!
//! Each entry `(epoch, start_offset, start_ordinal)` says that batches from the one numbered
//! `start_ordinal` (whose base offset is `start_offset`) up to the next entry's start were
//! appended under `epoch` (Kafka's `LeaderEpochFileCache`, KIP-101/279, which keys by offset
//! alone). It answers OffsetForLeaderEpoch (where did epoch N end?), gives raft the term of
//! any entry, and lets recovery check the one header field no checksum covers: every batch's
//! `partitionLeaderEpoch` must equal the epoch this history assigns to its ordinal.
//!
//! The ordinal is what identifies a batch: marker batches take no offset, so an epoch whose
//! only batch is a marker (a leader elected and replaced before any record arrived) starts at
//! the same offset as the next epoch. Offsets still answer Kafka's questions: for an offset,
//! the epoch of the batch that holds it.
//!
//! Persistence rule that makes the recovery check sound: a new epoch is written to
//! `leader-epoch-checkpoint` (atomically, fsynced) *before* the first batch of that epoch is
//! appended. A crash may therefore leave entries past the log end (removed on open), never a
//! batch whose epoch the file does not know.
//!
//! File: `cairn-leader-epochs 2`, the number of entries, then `epoch start_offset
//! start_ordinal` per line (sealed with a CRC line, see `checkpoint`). Version 1 files (no
//! ordinals) are not read: the history is rebuilt by a scan, once.

use std::path::{Path, PathBuf};

use crate::checkpoint::{read_sealed, seal, write_atomically, EPOCH_FILE};
use crate::error::Result;

/// One entry of the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: i32,
    /// Base offset of the first batch written in this epoch.
    pub start_offset: u64,
    /// Ordinal of that batch.
    pub start_ordinal: u64,
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
        if head != "cairn-leader-epochs 2" {
            return None;
        }
        let (count, rest) = rest.split_first()?;
        if count.parse::<usize>().ok()? != rest.len() {
            return None;
        }
        let mut entries: Vec<EpochEntry> = Vec::with_capacity(rest.len());
        for line in rest {
            let mut fields = line.split(' ');
            let entry = EpochEntry {
                epoch: fields.next()?.parse().ok()?,
                start_offset: fields.next()?.parse().ok()?,
                start_ordinal: fields.next()?.parse().ok()?,
            };
            if fields.next().is_some()
                || entries.last().is_some_and(|l| {
                    l.epoch >= entry.epoch
                        || l.start_offset > entry.start_offset
                        || l.start_ordinal >= entry.start_ordinal
                })
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
        let mut body = format!("cairn-leader-epochs 2\n{}\n", self.entries.len());
        for e in &self.entries {
            body.push_str(&format!(
                "{} {} {}\n",
                e.epoch, e.start_offset, e.start_ordinal
            ));
        }
        write_atomically(&self.dir, EPOCH_FILE, &seal(body))
    }

    pub(crate) fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub(crate) fn latest(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    /// Records that `epoch` starts with the batch numbered `start_ordinal` at `start_offset`,
    /// without persisting (scan rebuilds).
    pub(crate) fn push(&mut self, epoch: i32, start_offset: u64, start_ordinal: u64) {
        debug_assert!(self.latest().is_none_or(|l| l.epoch < epoch
            && l.start_offset <= start_offset
            && l.start_ordinal <= start_ordinal));
        // An earlier epoch that never got a batch (a crash between recording it and its
        // first append) is superseded by this one.
        if self
            .latest()
            .is_some_and(|l| l.start_ordinal == start_ordinal)
        {
            self.entries.pop();
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
            start_ordinal,
        });
    }

    /// Records and persists a new epoch; call before appending its first batch.
    pub(crate) fn assign(
        &mut self,
        epoch: i32,
        start_offset: u64,
        start_ordinal: u64,
    ) -> Result<()> {
        self.push(epoch, start_offset, start_ordinal);
        self.persist()
    }

    /// The epoch that wrote the batch holding `offset`, if the history covers it. (Marker
    /// batches hold no offset: an epoch whose only batches are markers is never the answer.)
    pub(crate) fn epoch_for(&self, offset: u64) -> Option<i32> {
        let i = self.entries.partition_point(|e| e.start_offset <= offset);
        i.checked_sub(1).map(|i| self.entries[i].epoch)
    }

    /// The epoch that wrote the batch numbered `ordinal`, if the history covers it.
    pub(crate) fn epoch_for_ordinal(&self, ordinal: u64) -> Option<i32> {
        let i = self.entries.partition_point(|e| e.start_ordinal <= ordinal);
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

    /// Drops the entries of epochs that start at or after the batch numbered `next_ordinal`
    /// (the log was cut there). Persists if changed.
    pub(crate) fn truncate_from_end(&mut self, next_ordinal: u64) -> Result<()> {
        let keep = self
            .entries
            .partition_point(|e| e.start_ordinal < next_ordinal);
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            self.persist()?;
        }
        Ok(())
    }

    /// Forgets history before the batch numbered `first_ordinal` (the oldest batch on disk
    /// moved), keeping the epoch in force there. Persists if changed.
    pub(crate) fn truncate_from_start(&mut self, first_ordinal: u64) -> Result<()> {
        let first_kept = self
            .entries
            .partition_point(|e| e.start_ordinal <= first_ordinal);
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
        c.assign(1, 0, 0).expect("assign");
        c.assign(3, 10, 4).expect("assign");
        // Epoch 4 wrote only a marker (ordinal 9, no offset) before epoch 5 took over.
        c.assign(4, 25, 9).expect("assign");
        c.assign(5, 25, 10).expect("assign");
        assert_eq!(c.epoch_for(0), Some(1));
        assert_eq!(c.epoch_for(9), Some(1));
        assert_eq!(c.epoch_for(10), Some(3));
        assert_eq!(c.epoch_for(100), Some(5));
        assert_eq!(c.epoch_for_ordinal(3), Some(1));
        assert_eq!(c.epoch_for_ordinal(4), Some(3));
        assert_eq!(c.epoch_for_ordinal(9), Some(4));
        assert_eq!(c.epoch_for_ordinal(10), Some(5));
        assert_eq!(c.end_offset_for(0, 40), None);
        assert_eq!(c.end_offset_for(1, 40), Some((1, 10)));
        assert_eq!(c.end_offset_for(2, 40), Some((1, 10)));
        assert_eq!(c.end_offset_for(3, 40), Some((3, 25)));
        assert_eq!(c.end_offset_for(4, 40), Some((4, 25)));
        assert_eq!(c.end_offset_for(9, 40), Some((5, 40)));
        let loaded = LeaderEpochCache::load(dir.path())
            .expect("load")
            .expect("present");
        assert_eq!(loaded.entries(), c.entries());
        c.truncate_from_end(10).expect("truncate");
        assert_eq!(
            c.latest().map(|e| e.epoch),
            Some(4),
            "the marker's epoch stays"
        );
        c.truncate_from_end(9).expect("truncate");
        assert_eq!(c.latest().map(|e| e.epoch), Some(3));
        c.truncate_from_start(6).expect("truncate");
        assert_eq!(
            c.entries(),
            &[EpochEntry {
                epoch: 3,
                start_offset: 10,
                start_ordinal: 4,
            }]
        );
        let loaded = LeaderEpochCache::load(dir.path())
            .expect("load")
            .expect("present");
        assert_eq!(loaded.entries(), c.entries());
    }

    #[test]
    fn version_1_files_are_rebuilt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let body = seal("cairn-leader-epochs 1\n1\n0 0\n".to_string());
        write_atomically(dir.path(), EPOCH_FILE, &body).expect("write");
        assert!(LeaderEpochCache::load(dir.path()).expect("load").is_none());
    }
}
