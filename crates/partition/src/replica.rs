//! One partition replica: the raft node, its log, producer state and waiting requests.
//!
//! Synchronous: the owner task (see `task`) calls [`Replica::handle`] for each command and
//! [`Replica::tick`] on a timer; each call ends by draining raft's `Ready`, so a produced
//! batch is proposed, appended to the log, committed and acknowledged within one call on a
//! single-voter group. The order of a `Ready` follows raft-rs: apply committed entries,
//! persist new entries (appending them to the log) and the hard state, then advance.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use cairn_storage::batch::{self, BatchHeader};
use cairn_storage::{Log, LogConfig, LogRead, StorageError, VerifiedBatch};
use raft::prelude::{Entry, EntryType, Message, MessageType};
use raft::{RawNode, StateRole};
use tokio::sync::{oneshot, watch};

use crate::error::{PartitionError, Result};
use crate::producers::{ProducerStates, SequenceCheck};
use crate::raft_log::{self, Core, RaftLog};
use crate::raft_state::RaftState;
use crate::{Acks, FetchData, OffsetQuery, PartitionState, ProduceAck, TimestampOffsetAnswer};

/// Write a producer-state snapshot after this many batches, so a restart replays at most
/// that many headers.
const SNAPSHOT_EVERY_BATCHES: u64 = 8192;
/// Raft timing in ticks of [`crate::TICK_MS`]: 1 s election timeout, 300 ms heartbeats.
const ELECTION_TICKS: usize = 10;
const HEARTBEAT_TICKS: usize = 3;

/// Commands from the rest of the broker to a partition's owner task.
#[derive(Debug)]
pub(crate) enum Command {
    Produce {
        batches: Vec<VerifiedBatch>,
        acks: Acks,
        reply: oneshot::Sender<Result<ProduceAck>>,
    },
    Fetch {
        offset: u64,
        max_bytes: u32,
        reply: oneshot::Sender<Result<FetchData>>,
    },
    ListOffsets {
        query: OffsetQuery,
        reply: oneshot::Sender<Result<TimestampOffsetAnswer>>,
    },
    EpochEndOffset {
        epoch: i32,
        reply: oneshot::Sender<Result<Option<(i32, u64)>>>,
    },
    DeleteRecords {
        before: Option<u64>,
        reply: oneshot::Sender<Result<u64>>,
    },
    SetConfig {
        config: LogConfig,
        reply: oneshot::Sender<Result<()>>,
    },
    SizeBytes {
        reply: oneshot::Sender<Result<u64>>,
    },
    Close {
        delete: bool,
        reply: oneshot::Sender<Result<()>>,
    },
}

/// A produce request waiting for its entries to be appended or committed.
#[derive(Debug)]
struct Pending {
    first_index: u64,
    last_index: u64,
    acks: Acks,
    base_offset: Option<u64>,
    reply: oneshot::Sender<Result<ProduceAck>>,
}

/// A partition replica.
pub(crate) struct Replica {
    name: String,
    dir: PathBuf,
    node: RawNode<RaftLog>,
    core: Rc<RefCell<Core>>,
    producers: ProducerStates,
    batches_since_snapshot: u64,
    pending: VecDeque<Pending>,
    /// This leader's proposed batches not yet appended, in proposal order: their entries are
    /// appended without checking their CRC again (see `append_entries`).
    verified: VecDeque<VerifiedBatch>,
    /// Offset after the last committed entry: reads stop here.
    high_watermark: u64,
    /// Raft index and base offset of the first of the raft control batches at the end of the
    /// log, if the log ends with some (each election appends one). Clients are shown a high
    /// watermark that stops before them (they hold no records), so a consumer that has read
    /// every record is at the end, not one offset short of it.
    trailing_control: Option<(u64, u64)>,
    /// Term and vote last written to `raft-state`.
    persisted_term_vote: (u64, u64),
    state_tx: watch::Sender<PartitionState>,
    ticks: u64,
    /// This node's raft id.
    node_id: u64,
    /// Set after a storage failure; writes are refused until [`Replica::try_recover`]
    /// restarts raft from what the log holds (a full disk: once space returns).
    failed: Option<String>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("name", &self.name)
            .field("high_watermark", &self.high_watermark)
            .finish_non_exhaustive()
    }
}

/// Bridges raft-rs's `slog` records to `tracing`.
struct TracingDrain {
    name: String,
}

impl slog::Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(
        &self,
        record: &slog::Record<'_>,
        _values: &slog::OwnedKVList,
    ) -> std::result::Result<(), slog::Never> {
        let msg = record.msg();
        match record.level() {
            slog::Level::Critical | slog::Level::Error => {
                tracing::error!(partition = %self.name, "raft: {msg}")
            }
            slog::Level::Warning => tracing::warn!(partition = %self.name, "raft: {msg}"),
            slog::Level::Info => tracing::debug!(partition = %self.name, "raft: {msg}"),
            slog::Level::Debug | slog::Level::Trace => {
                tracing::trace!(partition = %self.name, "raft: {msg}")
            }
        }
        Ok(())
    }
}

fn raft_err(e: raft::Error) -> PartitionError {
    PartitionError::Raft(e.to_string())
}

impl Replica {
    /// Opens (recovering if needed) the replica in `dir`. `voters` is the initial raft
    /// membership for a new replica (just this node, for a single-node broker).
    pub(crate) fn open(
        name: String,
        dir: &Path,
        config: LogConfig,
        node_id: u64,
        voters: Vec<u64>,
    ) -> Result<(Replica, watch::Receiver<PartitionState>)> {
        let mut log = Log::open(dir, config)?;
        let state = match RaftState::read(dir)? {
            Some(s) => s,
            None => {
                let s = raft_log::initial_state(voters);
                s.write(dir)?;
                s
            }
        };
        let producers = rebuild_producers(dir, &mut log)?;
        let core = Rc::new(RefCell::new(Core { log, state }));
        let (node, trailing_control, high_watermark, persisted_term_vote) =
            start_raft(&name, &core, node_id)?;
        let initial = PartitionState::default();
        let (state_tx, state_rx) = watch::channel(initial);
        let mut replica = Replica {
            name,
            dir: dir.to_path_buf(),
            node,
            core,
            producers,
            batches_since_snapshot: 0,
            pending: VecDeque::new(),
            verified: VecDeque::new(),
            high_watermark,
            trailing_control,
            persisted_term_vote,
            state_tx,
            ticks: 0,
            node_id,
            failed: None,
        };
        if let Err(e) = replica.process_ready() {
            // The new term's first entry could not be written (a full disk): the log is
            // readable, writes wait until `try_recover` succeeds.
            replica.fail(e);
        }
        replica.publish();
        Ok((replica, state_rx))
    }

    /// After a storage failure that left the log usable (a write refused for lack of space,
    /// undone), restarts raft from what the log and `raft-state` hold, which is all that was
    /// persisted: entries raft accepted but the log refused are gone with the old node, and
    /// their produces were already failed. A single voter elects itself again, which writes
    /// one marker batch; if that fails too, the replica stays failed until the next try.
    fn try_recover(&mut self) {
        let Some(reason) = self.failed.clone() else {
            return;
        };
        let restarted = (|| -> Result<()> {
            {
                let mut core = self.core.borrow_mut();
                core.log.check_usable()?;
                if let Some(state) = RaftState::read(&self.dir)? {
                    core.state = state;
                }
            }
            let (node, trailing_control, high_watermark, persisted_term_vote) =
                start_raft(&self.name, &self.core, self.node_id)?;
            self.node = node;
            self.trailing_control = trailing_control;
            self.high_watermark = high_watermark;
            self.persisted_term_vote = persisted_term_vote;
            self.verified.clear();
            self.failed = None;
            self.process_ready()
        })();
        match restarted {
            Ok(()) => {
                tracing::info!(partition = %self.name, failure = %reason, "partition writable again")
            }
            Err(e) => {
                tracing::debug!(partition = %self.name, error = %e, "partition still cannot write");
                self.failed = Some(e.to_string());
                for p in self.pending.drain(..) {
                    let _ = p
                        .reply
                        .send(Err(storage_failure(&self.dir, &e.to_string())));
                }
            }
        }
    }

    fn is_leader(&self) -> bool {
        self.node.raft.state == StateRole::Leader
    }

    fn publish(&self) {
        let core = self.core.borrow();
        let state = PartitionState {
            high_watermark: self.visible_high_watermark(),
            log_start_offset: core.log.log_start_offset(),
            log_end_offset: core.log.log_end_offset(),
            leader_epoch: self.node.raft.term as i32,
            is_leader: self.is_leader(),
        };
        self.state_tx.send_if_modified(|s| {
            let changed = *s != state;
            *s = state;
            changed
        });
    }

    /// The high watermark clients see: the raft one, minus trailing raft control batches.
    fn visible_high_watermark(&self) -> u64 {
        match self.trailing_control {
            Some((index, base_offset)) if self.core.borrow().state.hard_state.commit >= index => {
                base_offset.min(self.high_watermark)
            }
            _ => self.high_watermark,
        }
    }

    /// Handles one command; returns `false` once the replica has closed.
    pub(crate) fn handle(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::Produce {
                batches,
                acks,
                reply,
            } => self.produce(batches, acks, reply),
            Command::Fetch {
                offset,
                max_bytes,
                reply,
            } => {
                let _ = reply.send(self.fetch(offset, max_bytes));
            }
            Command::ListOffsets { query, reply } => {
                let _ = reply.send(self.list_offsets(query));
            }
            Command::EpochEndOffset { epoch, reply } => {
                let _ = reply.send(Ok(self.core.borrow().log.epoch_end_offset(epoch)));
            }
            Command::DeleteRecords { before, reply } => {
                let _ = reply.send(self.delete_records(before));
            }
            Command::SetConfig { config, reply } => {
                let r = self.core.borrow_mut().log.set_config(config);
                let _ = reply.send(r.map_err(Into::into));
            }
            Command::SizeBytes { reply } => {
                let _ = reply.send(Ok(self.core.borrow().log.size_bytes()));
            }
            Command::Close { delete, reply } => {
                let _ = reply.send(self.close(delete));
                return false;
            }
        }
        if let Err(e) = self.process_ready() {
            self.fail(e);
        }
        self.publish();
        true
    }

    fn fail(&mut self, e: PartitionError) {
        tracing::error!(partition = %self.name, error = %e, "partition failed; refusing writes until it recovers");
        self.failed = Some(e.to_string());
        self.verified.clear();
        for p in self.pending.drain(..) {
            let _ = p
                .reply
                .send(Err(storage_failure(&self.dir, &e.to_string())));
        }
    }

    fn produce(
        &mut self,
        batches: Vec<VerifiedBatch>,
        acks: Acks,
        reply: oneshot::Sender<Result<ProduceAck>>,
    ) {
        if let Some(reason) = &self.failed {
            let _ = reply.send(Err(storage_failure(&self.dir, reason)));
            return;
        }
        if !self.is_leader() {
            let _ = reply.send(Err(PartitionError::NotLeader));
            return;
        }
        // The log's own limits, checked before raft accepts the batches: an append the log
        // refused after raft took the entry would fail the partition.
        let (max_batch_bytes, segment_bytes) = {
            let c = self.core.borrow();
            (c.log.config().max_batch_bytes, c.log.config().segment_bytes)
        };
        for b in &batches {
            let size = b.header().total_len();
            for (limit, setting) in [
                (max_batch_bytes, "max.message.bytes"),
                (segment_bytes, "segment.bytes"),
            ] {
                if size > u64::from(limit) {
                    let _ = reply.send(Err(PartitionError::BatchTooLarge {
                        size,
                        limit,
                        setting,
                    }));
                    return;
                }
            }
        }
        // Sequence checks against the state of every batch appended so far (appends happen
        // before the next command is handled, so the state is never behind a proposal).
        let mut headers = Vec::with_capacity(batches.len());
        for b in &batches {
            // Verified batches are whole (their length matches their header), so the append
            // cannot refuse them after raft accepted them, which would fail the partition.
            let h = *b.header();
            match self.producers.check(&h) {
                Ok(SequenceCheck::Append) => headers.push(h),
                Ok(SequenceCheck::Duplicate(meta)) if batches.len() == 1 => {
                    let _ = reply.send(Ok(ProduceAck {
                        base_offset: meta.base_offset,
                        log_start_offset: self.core.borrow().log.log_start_offset(),
                        duplicate: true,
                    }));
                    return;
                }
                Ok(SequenceCheck::Duplicate(_)) => headers.push(h),
                Err(e) => {
                    let _ = reply.send(Err(e.into()));
                    return;
                }
            }
        }
        let first_index = self.node.raft.raft_log.last_index() + 1;
        // One proposal for all of the request's batches (what `RawNode::propose` builds for
        // one entry), whose entries share the received bytes instead of copying them.
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgPropose);
        m.from = self.node.raft.id;
        m.entries = batches
            .iter()
            .map(|b| Entry {
                data: b.bytes().clone(),
                ..Default::default()
            })
            .collect::<Vec<_>>()
            .into();
        if let Err(e) = self.node.raft.step(m) {
            let _ = reply.send(Err(raft_err(e)));
            return;
        }
        self.verified.extend(batches);
        let last_index = self.node.raft.raft_log.last_index();
        debug_assert_eq!(last_index + 1 - first_index, headers.len() as u64);
        let pending = Pending {
            first_index,
            last_index,
            acks,
            base_offset: None,
            reply,
        };
        self.pending.push_back(pending);
    }

    /// Drains raft's ready state: commits, appends, persists, acknowledges.
    fn process_ready(&mut self) -> Result<()> {
        if !self.node.has_ready() {
            return Ok(());
        }
        let mut ready = self.node.ready();
        debug_assert!(
            ready.messages().is_empty(),
            "single-node groups send no messages"
        );
        self.apply_committed(ready.take_committed_entries())?;
        if !ready.entries().is_empty() {
            self.append_entries(ready.entries())?;
        }
        if let Some(hs) = ready.hs() {
            let hs = hs.clone();
            let term_vote = (hs.term, hs.vote);
            self.core.borrow_mut().state.hard_state = hs;
            if term_vote != self.persisted_term_vote {
                // Raft's safety rule: term and vote are durable before anything depends on
                // them. The commit index rides along (and is rewritten on close).
                let state = self.core.borrow().state.clone();
                state.write(&self.dir)?;
                self.persisted_term_vote = term_vote;
            }
        }
        let mut light = self.node.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.core.borrow_mut().state.hard_state.commit = commit;
        }
        self.apply_committed(light.take_committed_entries())?;
        self.node.advance_apply();
        Ok(())
    }

    fn append_entries(&mut self, entries: &[Entry]) -> Result<()> {
        for entry in entries {
            let bytes = raft_log::entry_to_batch(entry);
            let epoch = i32::try_from(entry.term).unwrap_or(i32::MAX);
            let info = {
                let mut core = self.core.borrow_mut();
                // raft may overwrite its own uncommitted tail (a new leader's entries
                // replacing an old one's); the log cuts there first.
                if core.log.next_ordinal() + 1 > entry.index {
                    let offset = core.log.batch_at_ordinal(entry.index - 1)?.base_offset;
                    core.log.truncate_to_ordinal(entry.index - 1)?;
                    self.producers.truncate_to(offset);
                }
                // The entries of this leader's own proposals are the batches it was given,
                // already verified: those skip a second CRC pass. Anything else (control
                // entries, another leader's entries) is checked in full.
                let own = match self.verified.front() {
                    Some(v) if v.is_same(&entry.data) => self.verified.pop_front(),
                    Some(_) if !entry.data.is_empty() => {
                        // Not the proposal the queue expected: raft replaced it. Nothing
                        // queued can be trusted to line up any more.
                        self.verified.clear();
                        None
                    }
                    _ => None,
                };
                match own {
                    Some(v) => core.log.append_verified(&v, epoch)?,
                    None => core.log.append(&bytes, epoch)?,
                }
            };
            debug_assert_eq!(info.ordinal + 1, entry.index, "raft index = ordinal + 1");
            let is_control = entry.entry_type != EntryType::EntryNormal || entry.data.is_empty();
            match self.trailing_control {
                Some((index, _)) if index >= entry.index => {
                    // The run was cut by a raft overwrite; this entry starts over.
                    self.trailing_control = is_control.then_some((entry.index, info.base_offset));
                }
                Some(_) if is_control => {}
                _ => self.trailing_control = is_control.then_some((entry.index, info.base_offset)),
            }
            if entry.entry_type == EntryType::EntryNormal && !entry.data.is_empty() {
                if let Ok(h) = batch::parse_header(&bytes) {
                    self.producers.record(&h, info.base_offset);
                }
                self.batches_since_snapshot += 1;
            }
            for p in self.pending.iter_mut() {
                if p.first_index == entry.index {
                    p.base_offset = Some(info.base_offset);
                }
            }
        }
        // acks=0/1: acknowledged once written to the leader's log.
        self.publish();
        let appended = self.core.borrow().log.next_ordinal();
        self.acknowledge(|p| p.acks != Acks::All && p.last_index <= appended);
        Ok(())
    }

    fn apply_committed(&mut self, entries: Vec<Entry>) -> Result<()> {
        let Some(last) = entries.last() else {
            return Ok(());
        };
        for e in &entries {
            if matches!(
                e.entry_type,
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2
            ) {
                // Membership changes arrive with the cluster; a single-node group never
                // proposes one.
                tracing::warn!(partition = %self.name, index = e.index, "ignoring a raft configuration change");
            }
        }
        let commit = last.index;
        self.high_watermark = committed_offset(&mut self.core.borrow_mut().log, commit)?;
        // Publish before acknowledging: a producer that reads the state after its ack must
        // see its records below the high watermark.
        self.publish();
        self.acknowledge(|p| p.last_index <= commit);
        Ok(())
    }

    /// Replies to the pending produces at the front that `done` says are complete.
    fn acknowledge(&mut self, done: impl Fn(&Pending) -> bool) {
        let log_start = self.core.borrow().log.log_start_offset();
        let mut kept = VecDeque::with_capacity(self.pending.len());
        for p in self.pending.drain(..) {
            if done(&p) {
                let ack = p.base_offset.map(|base_offset| ProduceAck {
                    base_offset,
                    log_start_offset: log_start,
                    duplicate: false,
                });
                let _ = p.reply.send(ack.ok_or(PartitionError::NotLeader));
            } else {
                kept.push_back(p);
            }
        }
        self.pending = kept;
    }

    fn fetch(&mut self, offset: u64, max_bytes: u32) -> Result<FetchData> {
        let hw = self.high_watermark;
        let visible = self.visible_high_watermark();
        let mut core = self.core.borrow_mut();
        let log = &mut core.log;
        let (start, end) = (log.log_start_offset(), log.log_end_offset());
        if offset < start || offset > end {
            return Err(PartitionError::OffsetOutOfRange {
                offset,
                log_start: start,
                high_watermark: visible,
            });
        }
        let read = if offset >= hw {
            LogRead::default()
        } else {
            log.read_bounded(offset, max_bytes, hw)?
        };
        Ok(FetchData {
            read,
            high_watermark: visible,
            log_start_offset: start,
        })
    }

    fn list_offsets(&mut self, query: OffsetQuery) -> Result<TimestampOffsetAnswer> {
        let hw = self.visible_high_watermark();
        let epoch = self.node.raft.term as i32;
        let mut core = self.core.borrow_mut();
        let log = &mut core.log;
        let answer = |timestamp: i64, offset: u64| TimestampOffsetAnswer {
            timestamp,
            offset: Some(offset),
            leader_epoch: epoch,
        };
        Ok(match query {
            OffsetQuery::Earliest => answer(-1, log.log_start_offset()),
            OffsetQuery::Latest => answer(-1, hw),
            OffsetQuery::Timestamp(ts) => match log.offset_for_time(ts)? {
                Some(found) if found.offset < hw => answer(found.timestamp, found.offset),
                _ => TimestampOffsetAnswer {
                    timestamp: -1,
                    offset: None,
                    leader_epoch: epoch,
                },
            },
            OffsetQuery::MaxTimestamp => match log.max_timestamp()? {
                Some(found) if found.offset < hw => answer(found.timestamp, found.offset),
                _ => TimestampOffsetAnswer {
                    timestamp: -1,
                    offset: None,
                    leader_epoch: epoch,
                },
            },
        })
    }

    fn delete_records(&mut self, before: Option<u64>) -> Result<u64> {
        let hw = self.visible_high_watermark();
        let target = before.unwrap_or(hw);
        let mut core = self.core.borrow_mut();
        let log = &mut core.log;
        if target > hw {
            return Err(PartitionError::OffsetOutOfRange {
                offset: target,
                log_start: log.log_start_offset(),
                high_watermark: hw,
            });
        }
        log.delete_records_before(target)?;
        Ok(log.log_start_offset())
    }

    /// Timer: raft ticks, the log's flush/roll housekeeping, retention, snapshots, and after
    /// a storage failure a restart of raft every second.
    pub(crate) fn tick(&mut self) {
        self.ticks += 1;
        if self.failed.is_some() && self.ticks.is_multiple_of(RECOVER_EVERY_TICKS) {
            self.try_recover();
        }
        self.node.tick();
        let result = (|| -> Result<()> {
            let mut core = self.core.borrow_mut();
            core.log.tick()?;
            // `retention.check.interval.ms`, in ticks.
            let every = (core.log.config().retention_check_interval_ms / crate::TICK_MS).max(1);
            if self.ticks.is_multiple_of(every) {
                core.log.apply_retention()?;
            }
            if self.batches_since_snapshot >= SNAPSHOT_EVERY_BATCHES {
                let end = core.log.log_end_offset();
                self.producers.write_snapshot(&self.dir, end)?;
                self.batches_since_snapshot = 0;
            }
            Ok(())
        })();
        if let Err(e) = result.and_then(|()| self.process_ready()) {
            self.fail(e);
        }
        self.publish();
    }

    /// Flushes and closes (optionally deleting the partition's directory).
    fn close(&mut self, delete: bool) -> Result<()> {
        for p in self.pending.drain(..) {
            let _ = p.reply.send(Err(PartitionError::Closed));
        }
        let mut core = self.core.borrow_mut();
        if delete {
            // Open files stay readable until dropped; nothing is written any more. Durably, so a
            // power cut cannot bring back a partition its topic no longer has.
            cairn_storage::durable::remove_dir_all(&self.dir)?;
            return Ok(());
        }
        let end = core.log.log_end_offset();
        self.producers.write_snapshot(&self.dir, end)?;
        core.state.write(&self.dir)?;
        core.log.close_in_place()?;
        Ok(())
    }
}

/// How often a failed replica tries to restart raft, in ticks (1 s).
const RECOVER_EVERY_TICKS: u64 = 10;

/// The error a write gets while the replica is failed.
fn storage_failure(dir: &Path, reason: &str) -> PartitionError {
    PartitionError::Storage(StorageError::Io {
        op: "append",
        path: dir.to_path_buf(),
        source: std::io::Error::other(reason.to_string()),
    })
}

/// Starts raft over `core` (the log and the raft state as persisted): commit clamped to the
/// log (a machine crash under a lenient flush policy can lose committed entries), applied =
/// commit, and a single voter campaigns at once. Returns the node, the trailing run of raft
/// entries, the high watermark and the persisted term and vote.
#[allow(clippy::type_complexity)]
fn start_raft(
    name: &str,
    core: &Rc<RefCell<Core>>,
    node_id: u64,
) -> Result<(RawNode<RaftLog>, Option<(u64, u64)>, u64, (u64, u64))> {
    let (commit, trailing_control, high_watermark, term_vote, single_voter) = {
        let mut c = core.borrow_mut();
        let last_index = c.log.next_ordinal();
        if c.state.hard_state.commit > last_index {
            // Raft must not believe in entries the log no longer has.
            tracing::warn!(
                partition = %name, commit = c.state.hard_state.commit, last_index,
                "raft commit index is past the log end after recovery; lowering it"
            );
            c.state.hard_state.commit = last_index;
        }
        let commit = c.state.hard_state.commit;
        let trailing_control = find_trailing_control(&mut c.log)?;
        let high_watermark = committed_offset(&mut c.log, commit)?;
        let hs = &c.state.hard_state;
        let single_voter = c.state.conf_state.voters == [node_id];
        (
            commit,
            trailing_control,
            high_watermark,
            (hs.term, hs.vote),
            single_voter,
        )
    };
    let raft_config = raft::Config {
        id: node_id,
        election_tick: ELECTION_TICKS,
        heartbeat_tick: HEARTBEAT_TICKS,
        applied: commit,
        pre_vote: true,
        check_quorum: true,
        max_size_per_msg: 1 << 20,
        max_inflight_msgs: 256,
        ..Default::default()
    };
    raft_config.validate().map_err(raft_err)?;
    let logger = slog::Logger::root(
        slog::Fuse(TracingDrain {
            name: name.to_string(),
        }),
        slog::o!(),
    );
    let mut node = RawNode::new(
        &raft_config,
        RaftLog {
            core: Rc::clone(core),
        },
        &logger,
    )
    .map_err(raft_err)?;
    if single_voter {
        // A group of one elects itself at once instead of after an election timeout.
        node.campaign().map_err(raft_err)?;
    }
    Ok((node, trailing_control, high_watermark, term_vote))
}

/// Offset after the entry with raft index `commit` (0: nothing committed).
fn committed_offset(log: &mut Log, commit: u64) -> Result<u64> {
    if commit == 0 || commit <= log.first_ordinal() {
        return Ok(log.log_start_offset());
    }
    Ok(log
        .batch_at_ordinal(commit - 1)?
        .next_offset
        .max(log.log_start_offset()))
}

/// The raft index and base offset of the first raft control batch of the run of them that
/// ends the log, if it ends with one (read back at open; maintained in memory afterwards).
fn find_trailing_control(log: &mut Log) -> Result<Option<(u64, u64)>> {
    let mut found = None;
    let mut ordinal = log.next_ordinal();
    while ordinal > log.first_ordinal() {
        ordinal -= 1;
        let header = log.header_at_ordinal(ordinal)?;
        if !header.is_control() {
            break;
        }
        let bytes = log.read_ordinals(ordinal, 1, u32::MAX)?.load()?;
        if !raft_log::is_raft_control(&bytes) {
            break;
        }
        found = Some((ordinal + 1, header.base_offset as u64));
    }
    Ok(found)
}

/// Producer state from the last snapshot plus the batch headers written after it.
fn rebuild_producers(dir: &Path, log: &mut Log) -> Result<ProducerStates> {
    let (mut states, from) = match ProducerStates::read_snapshot(dir)? {
        Some((s, offset)) if offset <= log.log_end_offset() => (s, offset),
        _ => (ProducerStates::default(), 0),
    };
    states.truncate_to(log.log_end_offset());
    let start = log.ordinal_of_offset(from)?.max(log.first_ordinal());
    for ordinal in start..log.next_ordinal() {
        let h: BatchHeader = log.header_at_ordinal(ordinal)?;
        if (h.base_offset as u64) >= from {
            states.record(&h, h.base_offset as u64);
        }
    }
    Ok(states)
}
