//! Cairn's partition replicas: one raft group per partition, whose raft log *is* the
//! partition's storage log.
//!
//! A partition is owned by one task running on a *storage shard* — a thread with its own
//! single-threaded tokio runtime — so the blocking file I/O of the log never stalls the
//! network runtime, and nothing but that task touches the log or the raft node (no locks).
//! The rest of the broker holds a [`PartitionHandle`]: a bounded command channel to the owner
//! and a watch of the partition's [`PartitionState`] (high watermark, log start and end,
//! leader epoch), which long-polling fetches wait on.
//!
//! ```text
//!  network runtime                      storage shard thread (current-thread runtime)
//!  ───────────────                      ─────────────────────────────────────────────
//!  PartitionHandle ──Command (bounded)──► owner task: Replica (driver: replies, watch, I/O)
//!        ▲                                        │ inputs ▲ effects
//!        │                                        ▼        │
//!        │                                  ReplicaCore { RawNode<RaftLog>, Log,
//!        │                                                ProducerStates, pending produces }
//!        └──────── watch<PartitionState> ◄──────────┘
//! ```
//!
//! The core is a state machine without network, timers or reply channels (see `core`), so
//! several replicas run in one thread in a deterministic simulation (`sim`, in tests).
//!
//! Raft (tikv `raft`): entry index = batch ordinal + 1, entry term = the batch's leader epoch;
//! a produced batch is proposed, appended to the log once, committed (immediately, for a
//! group of one) and the high watermark becomes the offset after the last committed entry.
//! `pre_vote` and `check_quorum` are on; term and vote are persisted before they matter.
//! Idempotent producer state is rebuilt from the log on open, from a periodic snapshot on.
#![warn(missing_docs)]

mod cleaner;
mod core;
mod error;
mod producers;
mod raft_log;
mod raft_state;
mod replica;
#[cfg(test)]
mod sim;
mod syncer;
mod task;

use std::path::PathBuf;

pub use cleaner::{configure as configure_cleaner, CleanerConfig};
pub use error::{PartitionError, ProducerError, Result};
pub use producers::{BatchMeta, ProducerStates, SequenceCheck, BATCHES_PER_PRODUCER};
pub use raft_log::is_raft_control;
pub use replica::Outbox;
pub use task::{PartitionHandle, PendingProduce, StorageShards};

use cairn_storage::{LogConfig, LogRead};

/// What a partition's log holds on disk (DescribeLogDirs, metrics, the HTTP status).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogStats {
    /// Bytes in the segment files.
    pub size_bytes: u64,
    /// The log cleaner's state, for a compacted log.
    pub cleaner: Option<cairn_storage::CleanerState>,
}

/// Period of a partition's timer (raft ticks, flush/roll housekeeping), in milliseconds.
pub const TICK_MS: u64 = 100;

/// A produce request's acknowledgement mode (Kafka's `acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `acks=0`: no response is expected.
    None,
    /// `acks=1`: acknowledged once in the leader's log.
    Leader,
    /// `acks=all` (`-1`): acknowledged once committed (the high watermark passed it).
    All,
}

impl Acks {
    /// The mode for Kafka's `acks` value, `None` if it is not one of 0, 1, -1.
    pub fn from_kafka(acks: i16) -> Option<Acks> {
        match acks {
            0 => Some(Acks::None),
            1 => Some(Acks::Leader),
            -1 => Some(Acks::All),
            _ => None,
        }
    }
}

/// The acknowledgement of a produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceAck {
    /// Offset of the first record of the first batch.
    pub base_offset: u64,
    /// The log start offset at the time.
    pub log_start_offset: u64,
    /// The batch was a retry of one already written (idempotent producer): nothing new was
    /// written and `base_offset` is the original one.
    pub duplicate: bool,
}

/// The result of a fetch: whole batches below the high watermark.
#[derive(Debug, Clone, Default)]
pub struct FetchData {
    /// The batches (file ranges, loaded by the caller).
    pub read: LogRead,
    /// The high watermark when the read was made.
    pub high_watermark: u64,
    /// The log start offset when the read was made.
    pub log_start_offset: u64,
}

/// What ListOffsets asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetQuery {
    /// The log start offset (Kafka's `-2`).
    Earliest,
    /// The high watermark (Kafka's `-1`).
    Latest,
    /// The first offset whose batch has a timestamp at or after this one.
    Timestamp(i64),
    /// The offset of the batch with the largest timestamp (Kafka's `-3`, KIP-734).
    MaxTimestamp,
}

/// The answer to a ListOffsets query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffsetAnswer {
    /// The timestamp found, or -1.
    pub timestamp: i64,
    /// The offset found; `None` when no record qualifies (Kafka answers -1).
    pub offset: Option<u64>,
    /// The current leader epoch.
    pub leader_epoch: i32,
}

/// A partition's externally visible state, published after every change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionState {
    /// Offset after the last committed record: consumers read below it.
    pub high_watermark: u64,
    /// The first readable offset.
    pub log_start_offset: u64,
    /// The offset the next record gets.
    pub log_end_offset: u64,
    /// The current raft term, which is the Kafka leader epoch.
    pub leader_epoch: i32,
    /// Whether this replica leads the partition, confirmed: an entry of its own term has
    /// committed, so its high watermark is at least every earlier leader's (a new leader's
    /// is not until then, and clients must never see it go back).
    pub is_leader: bool,
    /// The raft id of the leader this replica knows of (itself included, confirmed or
    /// not); 0 while it knows none.
    pub leader_id: u64,
    /// How many times this replica has seen a new leader since it opened (the first one
    /// included): elections and hand-overs.
    pub leader_changes: u64,
}

/// Who replicates a partition, as its replica sees it (published when it changes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replicas {
    /// The raft voters (Kafka's replicas), by raft id, ascending.
    pub voters: Vec<u64>,
    /// On the leader: the voters caught up and streaming (raft progress in the replicate
    /// state and heard from within 1.5 s, the longest election timeout), itself included —
    /// Kafka's ISR.
    /// Elsewhere empty (only the leader knows).
    pub in_sync: Vec<u64>,
}

/// How to open a partition.
#[derive(Debug, Clone)]
pub struct PartitionSpec {
    /// Name for logs and errors (`topic-partition`).
    pub name: String,
    /// The partition's directory (log segments, raft state, producer state).
    pub dir: PathBuf,
    /// Log settings.
    pub log: LogConfig,
    /// This node's raft id (non-zero).
    pub node_id: u64,
    /// The raft voters of a newly created partition (just `node_id` on a single node), the
    /// preferred leader first: a new group of several elects it first.
    pub voters: Vec<u64>,
}
