//! Cairn's consumer groups: a sans-I/O Kafka *classic* group coordinator and the
//! `__consumer_offsets` record formats.
//!
//! The crate knows groups, members, generations, assignments and committed offsets; it knows
//! nothing of sockets, files, clocks, tokio or the Kafka wire format of requests. Its door is
//! [`Coordinator`]: the broker owns one (behind a mutex), converts JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, OffsetDelete, ListGroups,
//! DescribeGroups and DeleteGroups requests into calls on it, and turns its [`Output`]s into
//! responses and records.
//!
//! ```text
//!   broker ──join/sync(token)──► Coordinator ──Output::Join/Sync(token)──► responses
//!          ──heartbeat/leave───►  (groups,   ──Output::StoreGroup────────► __consumer_offsets
//!          ──tick(now)─────────►   timers,
//!          ◄─next_deadline()───    offsets)  ◄──replay(key, value)─────── __consumer_offsets
//! ```
//!
//! * Time comes in as [`Now`] (monotonic milliseconds for timeouts, unix milliseconds for
//!   stored timestamps); the broker calls [`Coordinator::tick`] at
//!   [`Coordinator::next_deadline`].
//! * JoinGroup and SyncGroup are deferred: each carries a caller-chosen [`Token`] and is
//!   answered exactly once by an [`Output`], possibly before the call returns.
//! * Writes are the broker's: offsets are validated, written, then applied; group metadata
//!   changes come out as [`Output::StoreGroup`]; deletions and expirations are keys the broker
//!   tombstones. On startup the broker [`replay`](Coordinator::replay)s the topic.
//!
//! Semantics follow Apache Kafka's classic coordinator (`GroupCoordinator.scala` of Kafka 3.x,
//! `ClassicGroup` of 4.x), including KIP-345 static membership, KIP-394 member ids,
//! KIP-211 offset retention and KIP-814 `skip_assignment`; each deliberate difference is
//! explained in a comment where it is made.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod config;
mod coordinator;
mod error;
mod group;
mod membership;
mod messages;
mod offsets;
mod rebalance;
pub mod records;
mod replay;

#[cfg(test)]
mod tests;

pub use config::CoordinatorConfig;
pub use coordinator::Coordinator;
pub use error::{GroupError, RecordError};
pub use messages::{
    GroupDescription, GroupListing, GroupState, HeartbeatRequest, JoinMember, JoinRequest,
    JoinResponse, LeavingMember, MemberDescription, Now, Output, SyncRequest, SyncResponse, Token,
};
pub use records::{partition_for, GroupMemberValue, GroupValue, OffsetValue, RecordKey};
