//! The replica's core: raft, the log it writes, producer state and the produces waiting for
//! acknowledgement, with no network, timers or reply channels of its own.
//!
//! ```text
//!   inputs                                   effects (ReplicaCore::take_effects)
//!   propose(token, batches, acks) ─┐       ┌─ Send(message)             to a peer, in order
//!   delete_records(token, before)  │       │
//!   step(message from a peer)      ├─► core ┼─ Persist { number }        writes to make durable
//!   tick()                         │        └─ Answered { token, result } a produce's or a
//!   persisted(number) ─────────────┘                                      deletion's answer
//! ```
//!
//! It follows raft-rs's Ready protocol for asynchronous persistence. Each `Ready` is handled
//! in raft-rs's documented order: the leader's messages are sent at once (they may go before
//! persistence); committed entries are applied; new entries are appended to the log and the
//! hard state written (raft reads entries back from the log, so they must be there before
//! `advance_append_async`); the messages that depend on them (votes, append answers) wait
//! until the driver reports the ready *persisted* — durable under the flush policy — and are
//! sent then. The log writes themselves are page-cache writes the core does; making them
//! durable, and when, is the driver's (so one fsync can cover many partitions).
//!
//! Produces are tracked by the raft term and index of their entries: a produce is
//! acknowledged only when the entry committed at its index has its term (another leader's
//! entry at the same index is someone else's), and fails with NOT_LEADER_OR_FOLLOWER the
//! moment this replica stops leading or its entries are cut. A replica whose storage failed
//! neither votes nor campaigns until it recovers.
//!
//! Removing records from the head of the log (DeleteRecords, retention) is a raft entry too,
//! a `RAFT_DELETE_RECORDS` marker carrying the new log start, which every replica applies
//! when it commits: replicas agree on the log start, and a deletion acknowledged to a client
//! survives a change of leader. Retention is decided by the leader alone (at every
//! `retention.check.interval.ms`) and proposed the same way. Segments go only once every
//! entry in them is applied and, on the leader, sent to every active follower; the log
//! start moves at once.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use cairn_storage::batch::BatchHeader;
use cairn_storage::{Log, LogConfig, LogRead, StorageError, VerifiedBatch};
use protobuf::Message as _;
use raft::prelude::{ConfChange, ConfChangeV2, Entry, EntryType, Message, MessageType};
use raft::{RawNode, StateRole};

use crate::error::{PartitionError, Result};
use crate::producers::{BatchMeta, ProducerStates, SequenceCheck};
use crate::raft_log::{self, RaftLog, Shared, SnapshotData};
use crate::raft_state::RaftState;
use crate::{Acks, FetchData, OffsetQuery, PartitionState, ProduceAck, TimestampOffsetAnswer};

/// Write a producer-state snapshot after this many batches, so a restart replays at most
/// that many headers.
const SNAPSHOT_EVERY_BATCHES: u64 = 8192;
/// How often a failed replica tries to restart raft, in ticks (1 s).
const RECOVER_EVERY_TICKS: u64 = 10;
/// How many entries behind the commit index a follower may be and still be handed the
/// leadership by name (leader balancing): raft catches it up before it campaigns, and
/// proposals wait meanwhile.
const TRANSFER_MAX_LAG: u64 = 64;
/// A follower is in sync (Kafka's ISR) while it replicates and was heard from within this
/// many ticks (1.5 s, the longest election timeout).
const IN_SYNC_HEARD_TICKS: u64 = 15;

/// Identifies a produce to its caller (the driver keeps the reply channel).
pub(crate) type Token = u64;

/// What the core asks its driver to do.
#[derive(Debug)]
pub(crate) enum Effect {
    /// Deliver a raft message to `message.to`. Messages to one peer keep their order.
    Send(Message),
    /// The log writes and hard state of ready `number` (and of every ready before it) are in
    /// the page cache: once they are durable under the flush policy, call
    /// [`ReplicaCore::persisted`].
    Persist { number: u64 },
    /// The answer to a produce or a DeleteRecords (whose answer is the ack's log start, the
    /// one its deletion left).
    Answered {
        token: Token,
        result: Result<ProduceAck>,
    },
}

/// Raft timing, in ticks of [`crate::TICK_MS`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// Election timeout: randomized in `[election, max_election)`.
    pub(crate) election: usize,
    /// Upper bound (exclusive) of the randomized election timeout.
    pub(crate) max_election: usize,
    /// Heartbeat interval.
    pub(crate) heartbeat: usize,
}

impl Default for Timing {
    /// 1–1.5 s election timeout (100 ms ticks), 300 ms heartbeats.
    fn default() -> Self {
        Timing {
            election: 10,
            max_election: 15,
            heartbeat: 3,
        }
    }
}

/// A produce waiting for its entries to be appended (acks=1) or committed (acks=all).
#[derive(Debug)]
struct Pending {
    token: Token,
    term: u64,
    first_index: u64,
    last_index: u64,
    acks: Acks,
    base_offset: Option<u64>,
    /// A retry of a batch already in the log: answered with the original's offsets.
    duplicate: bool,
}

/// The replica state machine. See the module docs.
pub(crate) struct ReplicaCore {
    name: String,
    dir: PathBuf,
    node_id: u64,
    timing: Timing,
    node: RawNode<RaftLog>,
    shared: Rc<RefCell<Shared>>,
    batches_since_snapshot: u64,
    pending: VecDeque<Pending>,
    /// This leader's proposed batches not yet appended, in proposal order: their entries are
    /// appended without checking their CRC again.
    verified: VecDeque<VerifiedBatch>,
    /// Offset after the last committed entry: reads stop here.
    high_watermark: u64,
    /// Raft index and base offset of the first of the raft control batches at the end of the
    /// log (older logs' one-offset control batches; markers take no offset).
    trailing_control: Option<(u64, u64)>,
    /// Term and vote last written to `raft-state`.
    persisted_term_vote: (u64, u64),
    /// Messages that may leave only once their ready is persisted: (ready number, messages).
    awaiting_persist: VecDeque<(u64, Vec<Message>)>,
    /// The number of the last ready whose writes were handed to the driver.
    last_ready: u64,
    effects: Vec<Effect>,
    ticks: u64,
    /// The tick at which each peer was last heard from (any raft message). raft-rs's own
    /// `recent_active` is cleared at every quorum check and set again by the next answer,
    /// so sampled from outside it reads false a third of the time.
    heard: std::collections::HashMap<u64, u64>,
    /// Snapshots installed since open.
    snapshots_installed: u64,
    /// The newest term of an entry this replica saw committed: a leader is confirmed once
    /// it equals its own term.
    confirmed_term: u64,
    /// The leader last seen (raft id, 0: none) and how often a new one appeared since open.
    last_leader: u64,
    leader_changes: u64,
    /// Peers sent a snapshot, and the tick it left at. Messages can be lost and the
    /// transport does not report delivery: a snapshot not answered within an election
    /// timeout is reported failed to raft, which then probes the follower again (and sends
    /// another snapshot if it still needs one).
    snapshots_sent: Vec<(u64, u64)>,
    /// Set after a storage failure: writes are refused and raft neither votes nor campaigns
    /// until [`ReplicaCore::try_recover`] restarts it from what the log holds.
    failed: Option<String>,
}

impl std::fmt::Debug for ReplicaCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaCore")
            .field("name", &self.name)
            .field("node_id", &self.node_id)
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

pub(crate) fn raft_err(e: raft::Error) -> PartitionError {
    match e {
        // A leader handing its leadership over drops proposals: the client should retry
        // on the next leader.
        raft::Error::ProposalDropped => PartitionError::NotLeader,
        e => PartitionError::Raft(e.to_string()),
    }
}

/// The error a write gets while the replica is failed.
fn storage_failure(dir: &Path, reason: &str) -> PartitionError {
    PartitionError::Storage(StorageError::Io {
        op: "append",
        path: dir.to_path_buf(),
        source: std::io::Error::other(reason.to_string()),
    })
}

impl ReplicaCore {
    /// Opens (recovering if needed) the replica in `dir`. `voters` is the initial raft
    /// membership of a new replica (just this node, for a single-node broker), its preferred
    /// leader first; a group of one elects itself at once, and in a new group of several the
    /// preferred leader campaigns at once while the others wait the longest election timeout
    /// (see [`ReplicaCore::head_start`]).
    pub(crate) fn open(
        name: String,
        dir: &Path,
        config: LogConfig,
        node_id: u64,
        voters: Vec<u64>,
        timing: Timing,
    ) -> Result<ReplicaCore> {
        let mut log = Log::open(dir, config)?;
        let preferred = voters.first().copied();
        let state = match RaftState::read(dir)? {
            Some(s) => s,
            None => {
                let s = raft_log::initial_state(voters);
                s.write(dir)?;
                s
            }
        };
        let producers = rebuild_producers(dir, &mut log)?;
        let shared = Rc::new(RefCell::new(Shared {
            log,
            state,
            producers,
        }));
        let started = start_raft(&name, &shared, node_id, timing)?;
        let mut core = ReplicaCore {
            name,
            dir: dir.to_path_buf(),
            node_id,
            timing,
            node: started.node,
            shared,
            batches_since_snapshot: 0,
            pending: VecDeque::new(),
            verified: VecDeque::new(),
            high_watermark: started.high_watermark,
            trailing_control: started.trailing_control,
            persisted_term_vote: started.term_vote,
            awaiting_persist: VecDeque::new(),
            last_ready: 0,
            effects: Vec::new(),
            ticks: 0,
            heard: std::collections::HashMap::new(),
            snapshots_installed: 0,
            confirmed_term: 0,
            last_leader: 0,
            leader_changes: 0,
            snapshots_sent: Vec::new(),
            failed: None,
        };
        core.head_start(preferred);
        if let Err(e) = core.process() {
            // The new term's first entry could not be written (a full disk): the log is
            // readable, writes wait until `try_recover` succeeds.
            core.fail(e);
        }
        Ok(core)
    }

    /// A new group of several voters (term 0, nothing written) elects its preferred leader
    /// first, as Kafka's controller makes the first replica the leader of a new partition:
    /// that replica campaigns at once and retries after the shortest election timeout, the
    /// others wait the longest one. Without it the first leaders are whoever times out first,
    /// and leader balancing moves them seconds later (clients see the move). Only timing
    /// changes, so raft's safety is untouched; if the preferred replica is not open yet on
    /// the others, its pre-vote is lost and it simply campaigns again first.
    fn head_start(&mut self, preferred: Option<u64>) {
        let raft = &mut self.node.raft;
        if raft.term != 0
            || raft.raft_log.last_index() != 0
            || raft.prs().conf().voters().ids().len() < 2
        {
            return;
        }
        let (min, max) = (self.timing.election, self.timing.max_election);
        if preferred == Some(self.node_id) {
            if let Err(e) = self.node.campaign() {
                tracing::debug!(partition = %self.name, error = %e, "cannot campaign");
            }
            self.node.raft.set_randomized_election_timeout(min);
        } else if preferred.is_some() {
            self.node
                .raft
                .set_randomized_election_timeout(max.saturating_sub(1).max(min));
        }
    }

    /// This replica's raft id.
    // Used by the multi-replica simulation; the driver needs it once nodes talk.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn id(&self) -> u64 {
        self.node_id
    }

    /// Whether this replica leads its group now.
    pub(crate) fn is_leader(&self) -> bool {
        self.node.raft.state == StateRole::Leader
    }

    /// The current raft term.
    // Used by the multi-replica simulation; the driver needs it once nodes talk.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn term(&self) -> u64 {
        self.node.raft.term
    }

    /// The raft commit index.
    // Used by the multi-replica simulation; the driver needs it once nodes talk.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn commit_index(&self) -> u64 {
        self.node.raft.raft_log.committed
    }

    /// The voters and, on the leader, those in sync.
    pub(crate) fn replicas(&self) -> crate::Replicas {
        let mut voters: Vec<u64> = self.node.raft.prs().conf().voters().ids().iter().collect();
        voters.sort_unstable();
        let in_sync = if self.is_leader() {
            let me = self.node_id;
            voters
                .iter()
                .copied()
                .filter(|id| {
                    *id == me
                        || (self.heard_recently(*id)
                            && self
                                .node
                                .raft
                                .prs()
                                .get(*id)
                                .is_some_and(|p| p.state == raft::ProgressState::Replicate))
                })
                .collect()
        } else {
            Vec::new()
        };
        crate::Replicas { voters, in_sync }
    }

    /// Whether peer `id` sent this replica a raft message within [`IN_SYNC_HEARD_TICKS`].
    fn heard_recently(&self, id: u64) -> bool {
        self.heard
            .get(&id)
            .is_some_and(|t| self.ticks.saturating_sub(*t) <= IN_SYNC_HEARD_TICKS)
    }

    /// Starts handing the leadership to follower `to`, or (`None`) to the most caught-up
    /// active follower (raft's leader transfer: it catches the follower up, then tells it to
    /// campaign at once); proposals are refused with NOT_LEADER_OR_FOLLOWER meanwhile.
    /// Answers the follower chosen, or `None` when this replica does not lead, has no active
    /// follower, or `to` is not an active voter replicating within [`TRANSFER_MAX_LAG`]
    /// entries of the commit index (so a transfer never waits long on a lagging follower,
    /// while one a few appends behind under steady load still qualifies).
    pub(crate) fn transfer_leadership(&mut self, to: Option<u64>) -> Option<u64> {
        if !self.is_leader() || self.failed.is_some() {
            return None;
        }
        let me = self.node_id;
        let committed = self.node.raft.raft_log.committed;
        let prs = self.node.raft.prs();
        let candidates = prs.iter().filter(|(id, _)| {
            **id != me && self.heard_recently(**id) && prs.conf().voters().contains(**id)
        });
        let target = match to {
            Some(to) => candidates
                .filter(|(id, p)| {
                    **id == to
                        && p.state == raft::ProgressState::Replicate
                        && p.matched + TRANSFER_MAX_LAG >= committed
                })
                .map(|(id, _)| *id)
                .next()?,
            None => candidates
                .max_by_key(|(_, p)| p.matched)
                .map(|(id, _)| *id)?,
        };
        self.node.transfer_leader(target);
        Some(target)
    }

    /// The effects produced since the last call, in order.
    pub(crate) fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// The state clients see.
    pub(crate) fn state(&self) -> PartitionState {
        let shared = self.shared.borrow();
        PartitionState {
            high_watermark: self.visible_high_watermark(),
            log_start_offset: shared.log.log_start_offset(),
            log_end_offset: shared.log.log_end_offset(),
            leader_epoch: self.node.raft.term as i32,
            is_leader: self.is_leader() && self.confirmed_term == self.node.raft.term,
            leader_id: self.node.raft.leader_id,
            leader_changes: self.leader_changes,
        }
    }

    /// The high watermark clients see: the raft one, minus trailing raft control batches
    /// of older logs (markers take no offset).
    fn visible_high_watermark(&self) -> u64 {
        match self.trailing_control {
            Some((index, base_offset)) if self.node.raft.raft_log.committed >= index => {
                base_offset.min(self.high_watermark)
            }
            _ => self.high_watermark,
        }
    }

    fn fail(&mut self, e: PartitionError) {
        tracing::error!(partition = %self.name, error = %e, "partition failed; refusing writes until it recovers");
        self.failed = Some(e.to_string());
        self.verified.clear();
        self.awaiting_persist.clear();
        let reason = e.to_string();
        for p in std::mem::take(&mut self.pending) {
            self.effects.push(Effect::Answered {
                token: p.token,
                result: Err(storage_failure(&self.dir, &reason)),
            });
        }
    }

    /// Fails every waiting produce with NOT_LEADER_OR_FOLLOWER (leadership lost).
    fn fail_pending_not_leader(&mut self) {
        for p in std::mem::take(&mut self.pending) {
            self.effects.push(Effect::Answered {
                token: p.token,
                result: Err(PartitionError::NotLeader),
            });
        }
        self.verified.clear();
    }

    /// Proposes a produce's batches (all in one raft message, their entries sharing the
    /// received bytes). The answer comes as an [`Effect::Answered`] with `token`.
    pub(crate) fn propose(&mut self, token: Token, batches: Vec<VerifiedBatch>, acks: Acks) {
        if let Err(e) = self.check_produce(&batches) {
            self.effects.push(Effect::Answered {
                token,
                result: Err(e),
            });
            return;
        }
        // Sequence checks against the state of every batch appended so far (appends happen
        // before the next input is handled, so the state is never behind a proposal).
        for b in &batches {
            let check = self.shared.borrow().producers.check(b.header());
            match check {
                Ok(SequenceCheck::Append) => {}
                Ok(SequenceCheck::Duplicate(meta)) if batches.len() == 1 => {
                    self.answer_duplicate(token, meta, acks);
                    return;
                }
                Ok(SequenceCheck::Duplicate(_)) => {}
                Err(e) => {
                    self.effects.push(Effect::Answered {
                        token,
                        result: Err(e.into()),
                    });
                    return;
                }
            }
        }
        let first_index = self.node.raft.raft_log.last_index() + 1;
        let term = self.node.raft.term;
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
        if let Err(e) = self.node.step(m) {
            self.effects.push(Effect::Answered {
                token,
                result: Err(raft_err(e)),
            });
            return;
        }
        let last_index = self.node.raft.raft_log.last_index();
        debug_assert_eq!(last_index + 1 - first_index, batches.len() as u64);
        self.verified.extend(batches);
        self.pending.push_back(Pending {
            token,
            term,
            first_index,
            last_index,
            acks,
            base_offset: None,
            duplicate: false,
        });
    }

    /// A retry of a batch this log holds (its acknowledgement was lost, or the client gave
    /// up waiting) is answered with the original's offsets, and only once the original is
    /// as durable as `acks` asks: with acks=all, once it is committed. The original may be
    /// an uncommitted entry that a new leader still truncates; acknowledging the retry
    /// before then would acknowledge a batch that is never in the log. It waits for the
    /// commit of this log's last entry (term included), which holds the original's: if
    /// that entry is replaced or leadership is lost first, the retry fails with
    /// NOT_LEADER_OR_FOLLOWER and the client retries again.
    fn answer_duplicate(&mut self, token: Token, meta: BatchMeta, acks: Acks) {
        if acks != Acks::All || meta.last_offset < self.high_watermark {
            let ack = ProduceAck {
                base_offset: meta.base_offset,
                log_start_offset: self.shared.borrow().log.log_start_offset(),
                duplicate: true,
            };
            self.effects.push(Effect::Answered {
                token,
                result: Ok(ack),
            });
            return;
        }
        let last_index = self.node.raft.raft_log.last_index();
        // An unknown term (0) can only make the wait fail, never acknowledge wrongly.
        let term = self.node.raft.raft_log.term(last_index).unwrap_or(0);
        self.pending.push_back(Pending {
            token,
            term,
            first_index: last_index,
            last_index,
            acks,
            base_offset: Some(meta.base_offset),
            duplicate: true,
        });
    }

    /// Refusals that need no raft: a failed replica, a follower, and batches the log's own
    /// limits would refuse (an append refused after raft took the entry would fail the
    /// partition).
    fn check_produce(&self, batches: &[VerifiedBatch]) -> Result<()> {
        if let Some(reason) = &self.failed {
            return Err(storage_failure(&self.dir, reason));
        }
        if !self.is_leader() || self.node.raft.lead_transferee.is_some() {
            return Err(PartitionError::NotLeader);
        }
        let (max_batch_bytes, segment_bytes) = {
            let s = self.shared.borrow();
            (s.log.config().max_batch_bytes, s.log.config().segment_bytes)
        };
        for b in batches {
            let size = b.header().total_len();
            for (limit, setting) in [
                (max_batch_bytes, "max.message.bytes"),
                (segment_bytes, "segment.bytes"),
            ] {
                if size > u64::from(limit) {
                    return Err(PartitionError::BatchTooLarge {
                        size,
                        limit,
                        setting,
                    });
                }
            }
        }
        Ok(())
    }

    /// A raft message from a peer. Ignored while the replica is failed (it does not vote).
    // Used by the multi-replica simulation; the driver needs it once nodes talk.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn step(&mut self, m: Message) {
        if self.failed.is_some() {
            return;
        }
        self.heard.insert(m.from, self.ticks);
        if let Err(e) = self.node.step(m) {
            tracing::debug!(partition = %self.name, error = %e, "raft refused a message");
        }
    }

    /// Peer `peer` is down for sure (its address refused a connection: no process listens
    /// there). A follower of that peer stops waiting out its election timeout. Of the other
    /// voters, the one with the lowest id campaigns at once, as a leader transfer does (no
    /// pre-vote round, and the others grant the vote despite their lease on the old leader);
    /// every other follower ends its lease now and campaigns after the random part of its
    /// timeout, in case the first one is down too or its log is behind. Only one node
    /// campaigning at once keeps the two survivors of three from splitting the vote. Raft's
    /// safety does not depend on when a node campaigns: a wrong "down" costs one election.
    pub(crate) fn peer_down(&mut self, peer: u64) {
        if self.failed.is_some() {
            return;
        }
        let raft = &self.node.raft;
        if raft.state != StateRole::Follower
            || raft.leader_id != peer
            || raft.election_elapsed >= raft.election_timeout()
        {
            return;
        }
        let first = raft
            .prs()
            .conf()
            .voters()
            .ids()
            .iter()
            .filter(|v| *v != peer)
            .min();
        if first == Some(self.node_id) {
            tracing::info!(partition = %self.name, peer, term = raft.term, "the leader's node is down; campaigning now");
            let mut m = Message::default();
            m.set_msg_type(MessageType::MsgTimeoutNow);
            m.from = peer;
            m.to = self.node_id;
            m.term = raft.term;
            if let Err(e) = self.node.step(m) {
                tracing::debug!(partition = %self.name, error = %e, "cannot campaign");
            }
        } else {
            tracing::debug!(partition = %self.name, peer, "the leader's node is down; lease ended");
            let timeout = self.node.raft.election_timeout();
            self.node.raft.election_elapsed = timeout;
        }
    }

    /// Raft's clock and the log's housekeeping (flush.ms, segment.ms, retention, producer
    /// snapshots); after a storage failure, a restart of raft every second. A failed replica
    /// does not tick raft, so it never campaigns.
    pub(crate) fn tick(&mut self) {
        self.ticks += 1;
        if self.failed.is_some() {
            if self.ticks.is_multiple_of(RECOVER_EVERY_TICKS) {
                self.try_recover();
            }
            return;
        }
        self.node.tick();
        self.expire_snapshots();
        let result = (|| -> Result<()> {
            let every = {
                let mut shared = self.shared.borrow_mut();
                shared.log.tick()?;
                if self.batches_since_snapshot >= SNAPSHOT_EVERY_BATCHES {
                    let end = shared.log.log_end_offset();
                    shared.producers.write_snapshot(&self.dir, end)?;
                    self.batches_since_snapshot = 0;
                }
                // `retention.check.interval.ms`, in ticks.
                (shared.log.config().retention_check_interval_ms / crate::TICK_MS).max(1)
            };
            if self.ticks.is_multiple_of(every) {
                self.check_retention()?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            self.fail(e);
        }
    }

    /// Reports to raft the snapshots a follower has not answered within an election
    /// timeout (see `snapshots_sent`).
    fn expire_snapshots(&mut self) {
        if self.snapshots_sent.is_empty() {
            return;
        }
        let now = self.ticks;
        let timeout = self.timing.election as u64;
        let mut expired = Vec::new();
        self.snapshots_sent.retain(|(to, at)| {
            let done = now.saturating_sub(*at) >= timeout;
            if done {
                expired.push(*to);
            }
            !done
        });
        for to in expired {
            let waiting = self
                .node
                .raft
                .prs()
                .get(to)
                .is_some_and(|p| p.state == raft::ProgressState::Snapshot);
            if waiting && self.is_leader() {
                tracing::debug!(partition = %self.name, to, "snapshot unanswered; probing again");
                self.node.report_snapshot(to, raft::SnapshotStatus::Failure);
            }
        }
    }

    /// A clean of the log, if it is compacted and dirty enough: only committed entries
    /// (below the high watermark) are cleaned, so no record that raft could still truncate
    /// makes an older value of its key go.
    pub(crate) fn begin_clean(&mut self) -> Option<cairn_storage::CleanJob> {
        if self.failed.is_some() {
            return None;
        }
        let bound = self.visible_high_watermark();
        let begun = self.shared.borrow_mut().log.begin_clean(bound);
        match begun {
            Ok(job) => job,
            Err(e) => {
                tracing::warn!(partition = %self.name, error = %e, "cannot start a log clean");
                None
            }
        }
    }

    /// Swaps in what a clean wrote.
    pub(crate) fn finish_clean(&mut self, result: cairn_storage::CleanResult) {
        let finished = self.shared.borrow_mut().log.finish_clean(result);
        match finished {
            Ok(Some(stats)) => tracing::info!(
                partition = %self.name,
                cleaned_until = stats.cleaned_until,
                segments = stats.segments_rewritten,
                bytes_before = stats.bytes_before,
                bytes_after = stats.bytes_after,
                records_removed = stats.records_removed,
                duration_ms = stats.duration_ms,
                "log cleaned"
            ),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(partition = %self.name, error = %e, "log clean failed")
            }
        }
    }

    /// Every `retention.check.interval.ms`: deletes the segments an earlier deletion had to
    /// leave (they held entries not applied or not sent then) and, on the leader, proposes
    /// the log start that retention allows.
    fn check_retention(&mut self) -> Result<()> {
        let limit = self.ordinal_limit(self.node.raft.raft_log.applied);
        let hw = self.visible_high_watermark();
        let (start, target) = {
            let mut shared = self.shared.borrow_mut();
            let start = shared.log.log_start_offset();
            let deletion = shared.log.delete_records_before_committed(start, limit)?;
            let target = match self.is_leader() {
                true => shared.log.retention_target()?,
                false => None,
            };
            drop(shared);
            self.record_deletion(deletion)?;
            (start, target)
        };
        if let Some(target) = target.map(|t| t.min(hw)).filter(|t| *t > start) {
            tracing::info!(partition = %self.name, log_start_offset = target, "retention moves the log start");
            if let Err(e) = self.propose_marker(raft_log::delete_records_entry(target)) {
                // Raft refused the proposal (leadership moving): the next check retries.
                tracing::debug!(partition = %self.name, error = %e, "retention proposal dropped");
            }
        }
        Ok(())
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
                let mut shared = self.shared.borrow_mut();
                shared.log.check_usable()?;
                if let Some(state) = RaftState::read(&self.dir)? {
                    shared.state = state;
                }
            }
            let started = start_raft(&self.name, &self.shared, self.node_id, self.timing)?;
            self.node = started.node;
            self.trailing_control = started.trailing_control;
            self.high_watermark = started.high_watermark;
            self.persisted_term_vote = started.term_vote;
            self.verified.clear();
            self.awaiting_persist.clear();
            self.last_ready = 0;
            self.failed = None;
            self.process()
        })();
        match restarted {
            Ok(()) => {
                tracing::info!(partition = %self.name, failure = %reason, "partition writable again")
            }
            Err(e) => {
                tracing::debug!(partition = %self.name, error = %e, "partition still cannot write");
                self.failed = Some(e.to_string());
            }
        }
    }

    /// Drains raft's ready states: sends, applies, appends, persists hard state; fails the
    /// replica on a storage error. Call after every input.
    pub(crate) fn run(&mut self) {
        if self.failed.is_some() {
            return;
        }
        if let Err(e) = self.process() {
            self.fail(e);
        }
        let leader = self.node.raft.leader_id;
        if leader != self.last_leader {
            self.last_leader = leader;
            self.leader_changes += u64::from(leader != 0);
        }
    }

    fn process(&mut self) -> Result<()> {
        while self.node.has_ready() {
            let mut ready = self.node.ready();
            for m in ready.take_messages() {
                if m.get_msg_type() == MessageType::MsgSnapshot {
                    self.snapshots_sent.retain(|(to, _)| *to != m.to);
                    self.snapshots_sent.push((m.to, self.ticks));
                }
                self.effects.push(Effect::Send(m));
            }
            let snapshot_index = match ready.snapshot().is_empty() {
                true => None,
                false => {
                    self.install_snapshot(ready.snapshot())?;
                    Some(ready.snapshot().get_metadata().index)
                }
            };
            self.apply_committed(ready.take_committed_entries())?;
            if !ready.entries().is_empty() {
                let entries = ready.take_entries();
                self.append_entries(&entries)?;
            }
            if let Some(hs) = ready.hs() {
                let hs = hs.clone();
                let term_vote = (hs.term, hs.vote);
                self.shared.borrow_mut().state.hard_state = hs;
                if term_vote != self.persisted_term_vote {
                    // Raft's safety rule: term and vote are durable before anything depends
                    // on them (the messages held below). The commit index rides along.
                    let state = self.shared.borrow().state.clone();
                    state.write(&self.dir)?;
                    self.persisted_term_vote = term_vote;
                }
            }
            let number = ready.number();
            let after = ready.take_persisted_messages();
            self.node.advance_append_async(ready);
            if !after.is_empty() {
                self.awaiting_persist.push_back((number, after));
            }
            self.last_ready = number;
            self.effects.push(Effect::Persist { number });
            if let Some(index) = snapshot_index {
                // Installing a snapshot is durable by itself (the log cut and the raft state
                // are fsynced), and supersedes every earlier ready's entries: raft may count
                // it persisted now, and applied, so it never looks for entries before it.
                self.mark_persisted(number);
                if index > self.node.raft.raft_log.applied {
                    self.node.advance_apply_to(index);
                }
            }
            if !self.is_leader() && !self.pending.is_empty() {
                self.fail_pending_not_leader();
            }
        }
        if !self.is_leader() && !self.pending.is_empty() {
            self.fail_pending_not_leader();
        }
        Ok(())
    }

    /// The writes of ready `number` (and all before it) are durable: raft may count them
    /// (commit, for a leader), and the messages that waited for them leave.
    pub(crate) fn persisted(&mut self, number: u64) {
        if self.failed.is_some() || number > self.last_ready {
            return;
        }
        self.mark_persisted(number);
        self.run();
    }

    fn mark_persisted(&mut self, number: u64) {
        self.node.on_persist_ready(number);
        while self
            .awaiting_persist
            .front()
            .is_some_and(|(n, _)| *n <= number)
        {
            if let Some((_, messages)) = self.awaiting_persist.pop_front() {
                self.effects.extend(messages.into_iter().map(Effect::Send));
            }
        }
    }

    fn append_entries(&mut self, entries: &[Entry]) -> Result<()> {
        for entry in entries {
            let bytes = raft_log::entry_to_batch(entry);
            // Raft's own entries: empty (a new leader's), membership changes, and normal
            // entries holding a marker (a deletion).
            let is_control = entry.entry_type != EntryType::EntryNormal
                || entry.data.is_empty()
                || raft_log::is_raft_control(&entry.data);
            let epoch = i32::try_from(entry.term).unwrap_or(i32::MAX);
            let info = {
                let mut shared = self.shared.borrow_mut();
                // raft may overwrite an uncommitted tail (a new leader's entries replacing
                // an old one's); the log cuts there first.
                if shared.log.next_ordinal() + 1 > entry.index {
                    let offset = shared.log.batch_at_ordinal(entry.index - 1)?.base_offset;
                    shared.log.truncate_to_ordinal(entry.index - 1)?;
                    shared.producers.truncate_to(offset);
                    if self
                        .trailing_control
                        .is_some_and(|(index, _)| index >= entry.index)
                    {
                        self.trailing_control = None;
                    }
                }
                // The entries of this leader's own proposals are the batches it was given,
                // already verified: those skip a second CRC pass. Anything else (markers,
                // another leader's entries) is checked in full.
                let own = match self.verified.front() {
                    Some(v) if v.is_same(&entry.data) => self.verified.pop_front(),
                    Some(_) if !is_control => {
                        // Not the proposal the queue expected: raft replaced it.
                        self.verified.clear();
                        None
                    }
                    _ => None,
                };
                match own {
                    Some(v) => shared.log.append_verified(&v, epoch)?,
                    None => shared.log.append(&bytes, epoch)?,
                }
            };
            debug_assert_eq!(info.ordinal + 1, entry.index, "raft index = ordinal + 1");
            match self.trailing_control {
                Some(_) if is_control => {}
                _ => self.trailing_control = is_control.then_some((entry.index, info.base_offset)),
            }
            if !is_control {
                if let Ok(h) = cairn_storage::batch::parse_header(&bytes) {
                    self.shared
                        .borrow_mut()
                        .producers
                        .record(&h, info.base_offset);
                }
                self.batches_since_snapshot += 1;
            }
            for p in self.pending.iter_mut() {
                if p.first_index == entry.index && p.term == entry.term {
                    p.base_offset = Some(info.base_offset);
                }
            }
        }
        // acks=1 (and acks=0): acknowledged once in the leader's log.
        let appended = self.shared.borrow().log.next_ordinal();
        self.acknowledge(|p| p.acks != Acks::All && p.last_index <= appended);
        Ok(())
    }

    fn apply_committed(&mut self, entries: Vec<Entry>) -> Result<()> {
        let Some(last) = entries.last() else {
            return Ok(());
        };
        let commit = last.index;
        self.confirmed_term = self.confirmed_term.max(last.term);
        for e in &entries {
            match e.entry_type {
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    self.apply_conf_change(e)?
                }
                EntryType::EntryNormal => {
                    if let Some(target) = raft_log::delete_records_target(&e.data) {
                        self.apply_delete_records(target, commit)?;
                    }
                }
            }
            // A committed entry at a pending produce's index with another term is another
            // leader's: that produce is lost.
            let lost: Vec<Token> = self
                .pending
                .iter()
                .filter(|p| p.first_index <= e.index && e.index <= p.last_index && p.term != e.term)
                .map(|p| p.token)
                .collect();
            if !lost.is_empty() {
                self.pending.retain(|p| !lost.contains(&p.token));
                for token in lost {
                    self.effects.push(Effect::Answered {
                        token,
                        result: Err(PartitionError::NotLeader),
                    });
                }
            }
        }
        self.high_watermark = committed_offset(&mut self.shared.borrow_mut().log, commit)?;
        self.shared.borrow_mut().state.hard_state.commit = commit;
        self.apply_snapshot_log_start(commit)?;
        self.acknowledge(|p| p.last_index <= commit);
        self.node.advance_apply_to(commit);
        Ok(())
    }

    /// Applies a committed `RAFT_DELETE_RECORDS` entry: the log start moves to `target` (never
    /// past the log end or backwards); segments holding entries past `commit` (not applied
    /// yet) or, on the leader, not yet sent to an active follower stay for now (see
    /// [`ReplicaCore::ordinal_limit`]).
    fn apply_delete_records(&mut self, target: u64, commit: u64) -> Result<()> {
        let limit = self.ordinal_limit(commit);
        let deletion = {
            let mut shared = self.shared.borrow_mut();
            let target = target.min(shared.log.log_end_offset());
            shared.log.delete_records_before_committed(target, limit)?
        };
        self.record_deletion(deletion)
    }

    /// After segments went: raft must still know the term of the entry before the log's
    /// first, and the commit index on disk must not be below it (raft refuses to start with
    /// a commit index below its first entry).
    fn record_deletion(&mut self, deletion: cairn_storage::Deletion) -> Result<()> {
        let Some((ordinal, epoch)) = deletion.last_deleted else {
            return Ok(());
        };
        let state = {
            let mut shared = self.shared.borrow_mut();
            shared
                .state
                .set_snapshot(ordinal + 1, u64::try_from(epoch).unwrap_or(0));
            shared.state.clone()
        };
        tracing::debug!(
            partition = %self.name, segments = deletion.outcome.segments_deleted,
            bytes = deletion.outcome.bytes_deleted, first_index = ordinal + 2,
            "segments deleted"
        );
        state.write(&self.dir)
    }

    /// A follower too far behind (the leader no longer has the entries it needs) installs
    /// the leader's snapshot: its log is emptied and restarted where the leader's goes on,
    /// with the leader's producer state; the leader's log start, if past that, is applied
    /// as soon as the log reaches it. The log is cut first and the raft state written
    /// after: a crash in between leaves an empty log at the snapshot's index, which the
    /// next open counts as committed, and the leader sends the snapshot again.
    fn install_snapshot(&mut self, snapshot: &raft::prelude::Snapshot) -> Result<()> {
        let meta = snapshot.get_metadata();
        let data = SnapshotData::decode(&snapshot.data).ok_or_else(|| {
            PartitionError::Raft(format!(
                "undecodable snapshot at index {} from the leader",
                meta.index
            ))
        })?;
        tracing::info!(
            partition = %self.name, index = meta.index, term = meta.term,
            next_offset = data.next_offset, log_start_offset = data.log_start,
            "installing a raft snapshot: the log restarts where the leader's goes on"
        );
        let state = {
            let mut shared = self.shared.borrow_mut();
            shared
                .log
                .truncate_fully_and_start_at(data.next_offset, meta.index)?;
            shared.producers = data.producers;
            let mut state = shared.state.clone();
            state.conf_state = meta.get_conf_state().clone();
            state.conf_history = vec![(meta.index, state.conf_state.clone())];
            state.set_snapshot(meta.index, meta.term);
            state.hard_state.commit = state.hard_state.commit.max(meta.index);
            state.snapshot_log_start = data.log_start;
            shared.state = state.clone();
            state
        };
        state.write(&self.dir)?;
        self.trailing_control = None;
        self.verified.clear();
        self.high_watermark = data.next_offset;
        self.snapshots_installed += 1;
        Ok(())
    }

    /// Applies the log start an installed snapshot brought once the committed log has
    /// reached it (the log start never passes the high watermark).
    fn apply_snapshot_log_start(&mut self, commit: u64) -> Result<()> {
        let (start, reached) = {
            let s = self.shared.borrow();
            let start = s.state.snapshot_log_start;
            (
                start,
                start > s.log.log_start_offset() && self.high_watermark >= start,
            )
        };
        if reached {
            self.apply_delete_records(start, commit)?;
        }
        Ok(())
    }

    /// Below which ordinal segments may be deleted: entries up to `applied` are applied (so
    /// raft never reads them again to apply), and a leader keeps what an active follower
    /// has not received yet, so it can still send it entries rather than a snapshot.
    fn ordinal_limit(&self, applied: u64) -> u64 {
        let mut limit = applied;
        if self.is_leader() {
            let me = self.node_id;
            for (id, progress) in self.node.raft.prs().iter() {
                if *id != me && progress.recent_active {
                    limit = limit.min(progress.matched);
                }
            }
        }
        limit
    }

    /// DeleteRecords: proposes moving the log start to `before` (the high watermark if
    /// `None`). Answered with [`Effect::Answered`] once committed and applied, its ack's log
    /// start the new one; at once when there is nothing to delete or it cannot be done.
    pub(crate) fn delete_records(&mut self, token: Token, before: Option<u64>) {
        let answer = (|| -> Result<Option<ProduceAck>> {
            if let Some(reason) = &self.failed {
                return Err(storage_failure(&self.dir, reason));
            }
            if !self.is_leader() {
                return Err(PartitionError::NotLeader);
            }
            let hw = self.visible_high_watermark();
            let log_start = self.shared.borrow().log.log_start_offset();
            let target = before.unwrap_or(hw);
            if target > hw {
                return Err(PartitionError::OffsetOutOfRange {
                    offset: target,
                    log_start,
                    high_watermark: hw,
                });
            }
            if target <= log_start {
                return Ok(Some(ProduceAck {
                    base_offset: log_start,
                    log_start_offset: log_start,
                    duplicate: false,
                }));
            }
            let index = self.propose_marker(raft_log::delete_records_entry(target))?;
            self.pending.push_back(Pending {
                token,
                term: self.node.raft.term,
                first_index: index,
                last_index: index,
                acks: Acks::All,
                base_offset: None,
                duplicate: false,
            });
            Ok(None)
        })();
        match answer {
            Ok(None) => {}
            Ok(Some(ack)) => self.effects.push(Effect::Answered {
                token,
                result: Ok(ack),
            }),
            Err(e) => self.effects.push(Effect::Answered {
                token,
                result: Err(e),
            }),
        }
    }

    /// Proposes one normal entry holding a marker batch; returns its raft index.
    fn propose_marker(&mut self, data: bytes::Bytes) -> Result<u64> {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgPropose);
        m.from = self.node.raft.id;
        m.entries = vec![Entry {
            data,
            ..Default::default()
        }]
        .into();
        self.node.step(m).map_err(raft_err)?;
        Ok(self.node.raft.raft_log.last_index())
    }

    /// Applies a committed membership change and persists the new configuration.
    fn apply_conf_change(&mut self, e: &Entry) -> Result<()> {
        let applied = if e.entry_type == EntryType::EntryConfChange {
            let cc = ConfChange::parse_from_bytes(&e.data)
                .map_err(|err| PartitionError::Raft(err.to_string()))?;
            self.node.apply_conf_change(&cc)
        } else {
            let cc = ConfChangeV2::parse_from_bytes(&e.data)
                .map_err(|err| PartitionError::Raft(err.to_string()))?;
            self.node.apply_conf_change(&cc)
        };
        let conf_state = applied.map_err(raft_err)?;
        tracing::info!(partition = %self.name, index = e.index, voters = ?conf_state.voters, "raft membership changed");
        let state = {
            let mut shared = self.shared.borrow_mut();
            shared.state.record_conf(e.index, conf_state);
            shared.state.clone()
        };
        state.write(&self.dir)
    }

    /// Answers the pending produces that `done` says are complete.
    fn acknowledge(&mut self, done: impl Fn(&Pending) -> bool) {
        if !self.pending.iter().any(&done) {
            return;
        }
        let log_start = self.shared.borrow().log.log_start_offset();
        let mut kept = VecDeque::with_capacity(self.pending.len());
        for p in std::mem::take(&mut self.pending) {
            if done(&p) {
                let result = p
                    .base_offset
                    .map(|base_offset| ProduceAck {
                        base_offset,
                        log_start_offset: log_start,
                        duplicate: p.duplicate,
                    })
                    .ok_or(PartitionError::NotLeader);
                self.effects.push(Effect::Answered {
                    token: p.token,
                    result,
                });
            } else {
                kept.push_back(p);
            }
        }
        self.pending = kept;
    }

    /// Whole batches from the one holding `offset`, below the high watermark.
    pub(crate) fn fetch(&mut self, offset: u64, max_bytes: u32) -> Result<FetchData> {
        let hw = self.high_watermark;
        let visible = self.visible_high_watermark();
        let mut shared = self.shared.borrow_mut();
        let log = &mut shared.log;
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

    /// ListOffsets.
    pub(crate) fn list_offsets(&mut self, query: OffsetQuery) -> Result<TimestampOffsetAnswer> {
        let hw = self.visible_high_watermark();
        let epoch = self.node.raft.term as i32;
        let mut shared = self.shared.borrow_mut();
        let log = &mut shared.log;
        let answer = |timestamp: i64, offset: u64| TimestampOffsetAnswer {
            timestamp,
            offset: Some(offset),
            leader_epoch: epoch,
        };
        let none = TimestampOffsetAnswer {
            timestamp: -1,
            offset: None,
            leader_epoch: epoch,
        };
        Ok(match query {
            OffsetQuery::Earliest => answer(-1, log.log_start_offset()),
            OffsetQuery::Latest => answer(-1, hw),
            OffsetQuery::Timestamp(ts) => match log.offset_for_time(ts)? {
                Some(found) if found.offset < hw => answer(found.timestamp, found.offset),
                _ => none,
            },
            OffsetQuery::MaxTimestamp => match log.max_timestamp()? {
                Some(found) if found.offset < hw => answer(found.timestamp, found.offset),
                _ => none,
            },
        })
    }

    /// OffsetForLeaderEpoch.
    pub(crate) fn epoch_end_offset(&self, epoch: i32) -> Option<(i32, u64)> {
        self.shared.borrow().log.epoch_end_offset(epoch)
    }

    /// Whether raft may count entries persisted only once they are fsynced (the default:
    /// neither `flush.messages` nor `flush.ms` set); otherwise the log's flush policy
    /// decides durability and entries count as persisted once written.
    pub(crate) fn sync_on_commit(&self) -> bool {
        let s = self.shared.borrow();
        let c = s.log.config();
        c.flush_messages.is_none() && c.flush_ms.is_none()
    }

    /// A job that makes everything written so far durable (`None`: it already is).
    pub(crate) fn begin_sync(&mut self) -> Option<cairn_storage::SyncJob> {
        if self.failed.is_some() {
            return None;
        }
        let begun = self.shared.borrow_mut().log.begin_sync();
        match begun {
            Ok(job) => job,
            Err(e) => {
                self.fail(e.into());
                None
            }
        }
    }

    /// Records a sync job's outcome; `true` if what it covered is durable. A failed fsync
    /// fails the replica for good (the log refuses writes).
    pub(crate) fn finish_sync(
        &mut self,
        job: cairn_storage::SyncJob,
        result: cairn_storage::Result<()>,
    ) -> bool {
        let finished = self.shared.borrow_mut().log.finish_sync(job, result);
        match finished {
            Ok(()) => self.failed.is_none(),
            Err(e) => {
                if self.failed.is_none() {
                    self.fail(e.into());
                }
                false
            }
        }
    }

    /// Replaces the log settings.
    pub(crate) fn set_config(&mut self, config: LogConfig) -> Result<()> {
        Ok(self.shared.borrow_mut().log.set_config(config)?)
    }

    /// Bytes in the segment files, and the cleaner's state of a compacted log.
    pub(crate) fn log_stats(&self) -> crate::LogStats {
        let shared = self.shared.borrow();
        crate::LogStats {
            size_bytes: shared.log.size_bytes(),
            cleaner: shared
                .log
                .config()
                .compact
                .then(|| shared.log.cleaner_state()),
        }
    }

    /// Raft's applied, persisted and committed indexes (the simulation's failure report).
    #[cfg(test)]
    pub(crate) fn raft_indexes(&self) -> (u64, u64, u64) {
        let l = &self.node.raft.raft_log;
        (l.applied, l.persisted, l.committed)
    }

    /// Snapshots installed since open.
    #[cfg(test)]
    pub(crate) fn snapshots_installed(&self) -> u64 {
        self.snapshots_installed
    }

    /// The ordinal of the log's first batch (raft index - 1), and the log start offset.
    #[cfg(test)]
    pub(crate) fn log_head(&self) -> (u64, u64) {
        let s = self.shared.borrow();
        (s.log.first_ordinal(), s.log.log_start_offset())
    }

    /// Reads the batches numbered `from..` as they are stored (for tests and checkers).
    #[cfg(test)]
    pub(crate) fn read_stored(&self, from: u64, max_batches: u64) -> Result<bytes::Bytes> {
        let mut shared = self.shared.borrow_mut();
        Ok(shared
            .log
            .read_ordinals(from, max_batches, u32::MAX)?
            .load()?)
    }

    /// Replaces the log's clock (deterministic tests).
    #[cfg(test)]
    pub(crate) fn set_clock(&mut self, clock: cairn_storage::Clock) {
        self.shared.borrow_mut().log.set_clock(clock);
    }

    /// Fails what waits and closes (optionally deleting the partition's directory).
    pub(crate) fn close(&mut self, delete: bool) -> Result<()> {
        for p in std::mem::take(&mut self.pending) {
            self.effects.push(Effect::Answered {
                token: p.token,
                result: Err(PartitionError::Closed),
            });
        }
        let mut shared = self.shared.borrow_mut();
        if delete {
            // Open files stay readable until dropped; nothing is written any more.
            cairn_storage::durable::remove_dir_all(&self.dir)?;
            return Ok(());
        }
        let end = shared.log.log_end_offset();
        shared.producers.write_snapshot(&self.dir, end)?;
        shared.state.write(&self.dir)?;
        shared.log.close_in_place()?;
        Ok(())
    }
}

/// What starting raft over a log found.
struct Started {
    node: RawNode<RaftLog>,
    trailing_control: Option<(u64, u64)>,
    high_watermark: u64,
    term_vote: (u64, u64),
}

/// Starts raft over `shared` (the log and the raft state as persisted): commit clamped to
/// the log (a machine crash under a lenient flush policy can lose committed entries),
/// applied = commit, and a single voter campaigns at once.
fn start_raft(
    name: &str,
    shared: &Rc<RefCell<Shared>>,
    node_id: u64,
    timing: Timing,
) -> Result<Started> {
    let (commit, trailing_control, high_watermark, term_vote, single_voter) = {
        let mut s = shared.borrow_mut();
        let last_index = s.log.next_ordinal();
        if s.state.hard_state.commit > last_index {
            // Raft must not believe in entries the log no longer has.
            tracing::warn!(
                partition = %name, commit = s.state.hard_state.commit, last_index,
                "raft commit index is past the log end after recovery; lowering it"
            );
            s.state.hard_state.commit = last_index;
        }
        if s.state.hard_state.commit < s.log.first_ordinal() {
            // Entries are deleted only once applied, and a snapshot is of committed
            // entries: everything before the log's first entry was committed, whatever the
            // commit index written last says (it is written when convenient).
            s.state.hard_state.commit = s.log.first_ordinal();
        }
        let commit = s.state.hard_state.commit;
        let trailing_control = find_trailing_control(&mut s.log)?;
        let high_watermark = committed_offset(&mut s.log, commit)?;
        let hs = &s.state.hard_state;
        let single_voter = s.state.conf_state.voters == [node_id];
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
        election_tick: timing.election,
        min_election_tick: timing.election,
        max_election_tick: timing.max_election,
        heartbeat_tick: timing.heartbeat,
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
            shared: Rc::clone(shared),
        },
        &logger,
    )
    .map_err(raft_err)?;
    if single_voter {
        // A group of one elects itself at once instead of after an election timeout.
        node.campaign().map_err(raft_err)?;
    }
    Ok(Started {
        node,
        trailing_control,
        high_watermark,
        term_vote,
    })
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
