//! The partition log as raft's log: `raft::Storage` implemented over `cairn_storage::Log`.
//!
//! Raft entry `i` is the log's batch with ordinal `i - 1` (raft counts from 1), and its term is
//! the batch's `partitionLeaderEpoch`, so a batch is written once and is both the raft entry
//! and the Kafka data:
//!
//! | raft entry | stored batch |
//! |---|---|
//! | normal, with data (a produced record batch) | that batch, byte for byte |
//! | normal, empty (a new leader's first entry) | marker batch, kind `RAFT_NOOP` |
//! | configuration change (v1 or v2) | marker batch, kind `RAFT_CONF_CHANGE`, payload = entry type byte + encoded change |
//! | normal, a deletion (DeleteRecords, retention) | marker batch, kind `RAFT_DELETE_RECORDS`, payload = new log start (u64, big-endian); the entry's data is the marker itself |
//!
//! Marker batches (see `cairn_storage::batch::marker`) take no Kafka offset, so Kafka offsets
//! count records alone: a new partition's first record is at offset 0, and elections leave
//! no gaps. Logs written before markers existed hold these entries as control batches of one
//! record, which take an offset each; they are still read. Fetch never hands either to
//! clients.
//!
//! Entries below the log's first batch are gone (retention, DeleteRecords); raft sees them
//! as compacted, and a follower that needs them gets a *snapshot* instead: not a copy of the
//! data (the records below the leader's first batch no longer exist anywhere) but where the
//! log goes on — the offset of the leader's first batch, its log start and its producer
//! state. The follower empties its log and restarts it there (see
//! `ReplicaCore::install_snapshot`); entries after it then arrive as usual.
//!
//! ```text
//! snapshot data:   cairn-snapshot 1
//!                  next_offset <offset of the first batch after the snapshot's index>
//!                  log_start <the leader's log start offset>
//!                  <a producer-state body, complete up to next_offset>
//! ```

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use cairn_storage::batch::{self, control, marker};
use cairn_storage::Log;
use raft::prelude::{ConfState, Entry, EntryType, HardState, Snapshot};
use raft::{GetEntriesContext, StorageError};

use crate::producers::ProducerStates;
use crate::raft_state::RaftState;

/// What raft's storage and the partition's owner share: the log, the raft state and the
/// producer state (a snapshot carries it). Only the partition's owner task touches it
/// (single thread, hence `Rc<RefCell<_>>`).
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) log: Log,
    pub(crate) state: RaftState,
    pub(crate) producers: ProducerStates,
}

/// What a raft snapshot of a partition carries (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SnapshotData {
    /// The offset the log goes on at: the first batch after the snapshot's index.
    pub(crate) next_offset: u64,
    /// The leader's log start offset (at or after `next_offset`).
    pub(crate) log_start: u64,
    /// Producer state complete up to `next_offset`.
    pub(crate) producers: ProducerStates,
}

impl SnapshotData {
    pub(crate) fn encode(&self) -> Vec<u8> {
        format!(
            "cairn-snapshot 1\nnext_offset {}\nlog_start {}\n{}",
            self.next_offset,
            self.log_start,
            self.producers.encode(self.next_offset)
        )
        .into_bytes()
    }

    pub(crate) fn decode(data: &[u8]) -> Option<SnapshotData> {
        let text = std::str::from_utf8(data).ok()?;
        let rest = text.strip_prefix("cairn-snapshot 1\n")?;
        let (next, rest) = rest.split_once('\n')?;
        let (start, rest) = rest.split_once('\n')?;
        let next_offset = next.strip_prefix("next_offset ")?.parse().ok()?;
        let (producers, complete_to) = ProducerStates::decode(rest)?;
        (complete_to == next_offset).then_some(SnapshotData {
            next_offset,
            log_start: start.strip_prefix("log_start ")?.parse().ok()?,
            producers,
        })
    }
}

/// `raft::Storage` over the partition log.
#[derive(Debug, Clone)]
pub(crate) struct RaftLog {
    pub(crate) shared: Rc<RefCell<Shared>>,
}

fn store_err(e: impl std::error::Error + Send + Sync + 'static) -> raft::Error {
    raft::Error::Store(StorageError::Other(Box::new(e)))
}

/// The batch to append for a raft entry.
pub(crate) fn entry_to_batch(entry: &Entry) -> Bytes {
    match entry.entry_type {
        EntryType::EntryNormal if !entry.data.is_empty() => entry.data.clone(),
        EntryType::EntryNormal => Bytes::from(marker::build(control::RAFT_NOOP, &[])),
        t @ (EntryType::EntryConfChange | EntryType::EntryConfChangeV2) => {
            let mut value = Vec::with_capacity(entry.data.len() + 1);
            value.push(t as u8);
            value.extend_from_slice(&entry.data);
            Bytes::from(marker::build(control::RAFT_CONF_CHANGE, &value))
        }
    }
}

/// The entry data of a deletion: a `RAFT_DELETE_RECORDS` marker moving the log start to
/// `log_start`.
pub(crate) fn delete_records_entry(log_start: u64) -> Bytes {
    Bytes::from(marker::build(
        control::RAFT_DELETE_RECORDS,
        &log_start.to_be_bytes(),
    ))
}

/// The new log start of a deletion entry's data; `None` for any other entry.
pub(crate) fn delete_records_target(data: &[u8]) -> Option<u64> {
    match marker::parse(data)? {
        (control::RAFT_DELETE_RECORDS, payload) => {
            Some(u64::from_be_bytes(payload.get(..8)?.try_into().ok()?))
        }
        _ => None,
    }
}

/// The kind of raft entry a stored batch holds, and its payload: a marker batch, or (in
/// logs written before markers) a one-record control batch of a raft type. `None` for
/// record batches and Kafka's own control batches.
fn raft_control(bytes: &[u8]) -> Option<(i16, &[u8])> {
    if let Some(found) = marker::parse(bytes) {
        return Some(found);
    }
    match batch::control_type(bytes)? {
        kind @ (control::RAFT_NOOP | control::RAFT_CONF_CHANGE) => {
            Some((kind, batch::first_record_value(bytes).unwrap_or(&[])))
        }
        _ => None,
    }
}

/// The raft entry a stored batch stands for.
pub(crate) fn batch_to_entry(bytes: Bytes, header: &batch::BatchHeader, index: u64) -> Entry {
    let mut e = Entry {
        term: header.partition_leader_epoch.max(0) as u64,
        index,
        ..Default::default()
    };
    match raft_control(&bytes) {
        Some((control::RAFT_NOOP, _)) => {}
        Some((control::RAFT_CONF_CHANGE, value)) => {
            if let Some((&kind, data)) = value.split_first() {
                e.entry_type = if kind == EntryType::EntryConfChange as u8 {
                    EntryType::EntryConfChange
                } else {
                    EntryType::EntryConfChangeV2
                };
                e.data = bytes.slice_ref(data);
            }
        }
        _ => e.data = bytes,
    }
    e
}

/// Entries `low..high` (at least one, then as many as fit `max_size` bytes of batches) with
/// the data of normal entries left empty: headers are read, and only control batches whole.
fn entries_without_data(
    log: &mut Log,
    low: u64,
    high: u64,
    max_size: u64,
) -> raft::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut size = 0u64;
    for index in low..high {
        let header = log.header_at_ordinal(index - 1).map_err(store_err)?;
        size = size.saturating_add(header.batch_length.max(0) as u64 + 12);
        if !entries.is_empty() && size > max_size {
            break;
        }
        if header.is_control() {
            let bytes = log
                .read_ordinals(index - 1, 1, u32::MAX)
                .and_then(|r| r.load())
                .map_err(store_err)?;
            entries.push(batch_to_entry(bytes, &header, index));
        } else {
            entries.push(Entry {
                term: header.partition_leader_epoch.max(0) as u64,
                index,
                ..Default::default()
            });
        }
    }
    Ok(entries)
}

/// Whether a stored batch is one of Cairn's raft entries of its own (a marker batch, or a
/// raft control batch of an older log), which clients never see.
pub fn is_raft_control(batch_bytes: &[u8]) -> bool {
    raft_control(batch_bytes).is_some()
}

impl raft::Storage for RaftLog {
    fn initial_state(&self) -> raft::Result<raft::RaftState> {
        let shared = self.shared.borrow();
        Ok(raft::RaftState {
            hard_state: shared.state.hard_state.clone(),
            conf_state: shared.state.conf_state.clone(),
        })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let mut shared = self.shared.borrow_mut();
        let log = &mut shared.log;
        if low <= log.first_ordinal() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > log.next_ordinal() + 1 || low > high {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        if low == high {
            return Ok(Vec::new());
        }
        let max_size = max_size.into().unwrap_or(u64::MAX);
        if !context.can_async() {
            // Raft wants these entries for itself (committed entries to apply, pending
            // configuration changes before a campaign), never to send: it looks at their
            // type, index and term, not at a data batch's bytes, which the log already holds
            // and which `Replica` never applies. Reading them back right after appending was
            // a fifth of the produce path's CPU; only control batches are loaded.
            return entries_without_data(log, low, high, max_size);
        }
        let max_bytes = max_size.min(u32::MAX as u64) as u32;
        let read = log
            .read_ordinals(low - 1, high - low, max_bytes)
            .map_err(store_err)?;
        let bytes = read.load().map_err(store_err)?;
        let mut entries = Vec::new();
        for (i, item) in batch::iter_batches(&bytes, u32::MAX).enumerate() {
            let (at, header, b) = item.map_err(store_err)?;
            entries.push(batch_to_entry(
                bytes.slice(at..at + b.len()),
                &header,
                low + i as u64,
            ));
        }
        Ok(entries)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let mut shared = self.shared.borrow_mut();
        let log = &mut shared.log;
        let first = log.first_ordinal() + 1;
        if idx == 0 {
            return Ok(0);
        }
        if idx + 1 == first {
            // The entry just before the first one on disk (deleted, or a snapshot's): its
            // term was recorded when it went. Logs from before that was recorded: the epoch
            // in force at the log's first batch bounds it from above, and raft only uses it
            // to match a follower's log (a wrong match is impossible: an entry of that
            // term at that index would be this one), which then needs a snapshot anyway.
            let (index, term) = shared.state.snapshot;
            if index == idx {
                return Ok(term);
            }
            let log = &mut shared.log;
            let base = log.batch_at_ordinal(first - 1).map(|b| b.leader_epoch);
            return Ok(base.map_or(0, |e| e.max(0) as u64));
        }
        if idx < first {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > log.next_ordinal() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let info = log.batch_at_ordinal(idx - 1).map_err(store_err)?;
        Ok(info.leader_epoch.max(0) as u64)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.shared.borrow().log.first_ordinal() + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.shared.borrow().log.next_ordinal())
    }

    /// A follower needs entries this log no longer has: where the log goes on instead.
    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let index = self.shared.borrow().log.first_ordinal();
        if index == 0 || index < request_index {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        let term = self.term(index)?;
        let mut shared = self.shared.borrow_mut();
        let next_offset = if index < shared.log.next_ordinal() {
            shared
                .log
                .batch_at_ordinal(index)
                .map_err(store_err)?
                .base_offset
        } else {
            shared.log.log_end_offset()
        };
        let mut producers = shared.producers.clone();
        producers.truncate_to(next_offset);
        let data = SnapshotData {
            next_offset,
            log_start: shared.log.log_start_offset().max(next_offset),
            producers,
        };
        let mut snapshot = Snapshot {
            data: data.encode().into(),
            ..Default::default()
        };
        let meta = snapshot.mut_metadata();
        meta.index = index;
        meta.term = term;
        meta.conf_state = Some(shared.state.conf_at(index)).into();
        tracing::info!(to, index, term, next_offset, "sending a raft snapshot");
        Ok(snapshot)
    }
}

/// A fresh replica's raft state: no term yet, the given voters.
pub(crate) fn initial_state(voters: Vec<u64>) -> RaftState {
    RaftState {
        snapshot: (0, 0),
        snapshot_log_start: 0,
        conf_history: Vec::new(),
        hard_state: HardState::default(),
        conf_state: ConfState {
            voters,
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_batches() {
        let data = Bytes::from(batch::build_batch(5, &[b"hello"]));
        for (kind, payload) in [
            (EntryType::EntryNormal, data.clone()),
            (EntryType::EntryNormal, Bytes::new()),
            (EntryType::EntryConfChange, Bytes::from_static(b"cc")),
            (EntryType::EntryConfChangeV2, Bytes::from_static(b"cc2")),
        ] {
            let entry = Entry {
                entry_type: kind,
                term: 3,
                index: 9,
                data: payload.clone(),
                ..Default::default()
            };
            let stored = entry_to_batch(&entry);
            let mut with_epoch = stored.to_vec();
            with_epoch[12..16].copy_from_slice(&3i32.to_be_bytes());
            let header = batch::validate(&with_epoch, u32::MAX).expect("valid batch");
            let back = batch_to_entry(Bytes::from(with_epoch.clone()), &header, 9);
            assert_eq!(back.entry_type, kind);
            assert_eq!((back.term, back.index), (3, 9));
            if kind == EntryType::EntryNormal && !payload.is_empty() {
                assert_eq!(&back.data[16..], &payload[16..]);
                assert!(!is_raft_control(&with_epoch));
            } else {
                assert_eq!(back.data, payload);
                assert!(is_raft_control(&with_epoch));
            }
        }
    }

    /// Entries raft reads for itself carry type, index and term but not a data batch's
    /// bytes; entries it reads to send carry everything.
    #[test]
    fn entries_for_raft_itself_skip_data_batches() -> Result<(), Box<dyn std::error::Error>> {
        use raft::Storage as _;
        let dir = tempfile::tempdir()?;
        let mut log = Log::open(dir.path(), cairn_storage::LogConfig::default())?;
        let stored = [
            Entry::default(), // a leader's no-op
            Entry {
                data: Bytes::from(batch::build_batch(0, &[b"hello"])),
                ..Default::default()
            },
            Entry {
                entry_type: EntryType::EntryConfChangeV2,
                data: Bytes::from_static(b"cc2"),
                ..Default::default()
            },
        ];
        for (i, e) in stored.iter().enumerate() {
            log.append(&entry_to_batch(e), 2 + i as i32)?;
        }
        let raft_log = RaftLog {
            shared: Rc::new(RefCell::new(Shared {
                log,
                state: RaftState::default(),
                producers: ProducerStates::default(),
            })),
        };
        let full = raft_log.entries(1, 4, None, GetEntriesContext::empty(true))?;
        let light = raft_log.entries(1, 4, None, GetEntriesContext::empty(false))?;
        assert_eq!(full.len(), 3);
        assert_eq!(light.len(), 3);
        for (i, (f, l)) in full.iter().zip(&light).enumerate() {
            assert_eq!((f.index, f.term), (i as u64 + 1, i as u64 + 2));
            assert_eq!(
                (l.index, l.term, l.entry_type),
                (f.index, f.term, f.entry_type)
            );
        }
        assert!(full[1].data.len() > 61, "a data batch comes back whole");
        assert!(light[1].data.is_empty(), "but not to raft itself");
        assert_eq!(
            light[2].data,
            Bytes::from_static(b"cc2"),
            "conf changes always"
        );
        // A size limit still returns at least one entry.
        assert_eq!(
            raft_log
                .entries(1, 4, 1, GetEntriesContext::empty(false))?
                .len(),
            1
        );
        Ok(())
    }
}
