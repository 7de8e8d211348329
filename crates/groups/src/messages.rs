//! The coordinator's requests, answers and outputs: plain Rust values, not wire messages.
//! The broker converts each Kafka request version to and from these.

use std::fmt;

use bytes::Bytes;

use crate::error::GroupError;

/// A caller-chosen id of a deferred request (JoinGroup, SyncGroup). The coordinator answers
/// each token exactly once, with an [`Output`] carrying it.
pub type Token = u64;

/// The caller's clocks at the moment of a call: the coordinator reads no clock of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic milliseconds, for timeouts and deadlines.
    pub mono_ms: u64,
    /// Unix milliseconds, for the timestamps that are stored (when a group changed state).
    pub wall_ms: i64,
}

impl Now {
    /// Both clocks.
    pub fn new(mono_ms: u64, wall_ms: i64) -> Self {
        Now { mono_ms, wall_ms }
    }

    /// Both clocks `ms` later.
    pub fn plus(self, ms: u64) -> Self {
        Now {
            mono_ms: self.mono_ms.saturating_add(ms),
            wall_ms: self
                .wall_ms
                .saturating_add(i64::try_from(ms).unwrap_or(i64::MAX)),
        }
    }
}

/// A JoinGroup request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// The group id.
    pub group_id: String,
    /// The member id; empty on a member's first join.
    pub member_id: String,
    /// The static member's instance id (KIP-345, JoinGroup v5+).
    pub group_instance_id: Option<String>,
    /// The protocol type (`"consumer"` for consumers).
    pub protocol_type: String,
    /// The protocols the member supports, most preferred first, each with its metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// The session timeout.
    pub session_timeout_ms: i32,
    /// The rebalance timeout (the consumer's `max.poll.interval.ms`; JoinGroup v0 has none:
    /// pass the session timeout).
    pub rebalance_timeout_ms: i32,
    /// KIP-394 (JoinGroup v4+): a new dynamic member is given a member id and asked to
    /// rejoin with it before it enters the group.
    pub require_known_member_id: bool,
    /// KIP-814 (JoinGroup v9+): the client understands `skip_assignment`.
    pub supports_skip_assignment: bool,
    /// The client id of the request header.
    pub client_id: String,
    /// The client's host, as Kafka shows it (`/127.0.0.1`).
    pub client_host: String,
    /// Why the member joins (JoinGroup v8+), for logs.
    pub reason: Option<String>,
}

/// One member in the leader's JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinMember {
    /// The member id.
    pub member_id: String,
    /// The static member's instance id.
    pub group_instance_id: Option<String>,
    /// The member's metadata for the selected protocol.
    pub metadata: Bytes,
}

/// The answer to a JoinGroup request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResponse {
    /// The error, `None` for success.
    pub error: Option<GroupError>,
    /// The generation joined; -1 on error.
    pub generation_id: i32,
    /// The group's protocol type (JoinGroup v7+).
    pub protocol_type: Option<String>,
    /// The selected protocol.
    pub protocol_name: Option<String>,
    /// The leader's member id; empty on error.
    pub leader: String,
    /// KIP-814: the leader must not run the assignor (a static leader rejoined a stable
    /// group); it syncs and receives its stored assignment.
    pub skip_assignment: bool,
    /// The member's id (new or confirmed); on error the id sent, or empty.
    pub member_id: String,
    /// All members with their metadata, for the leader; empty for followers.
    pub members: Vec<JoinMember>,
}

impl JoinResponse {
    /// A failed join.
    pub(crate) fn error(member_id: impl Into<String>, error: GroupError) -> Self {
        JoinResponse {
            error: Some(error),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            member_id: member_id.into(),
            members: Vec::new(),
        }
    }
}

/// A SyncGroup request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    /// The group id.
    pub group_id: String,
    /// The generation the member joined.
    pub generation_id: i32,
    /// The member id.
    pub member_id: String,
    /// The static member's instance id.
    pub group_instance_id: Option<String>,
    /// The protocol type the member expects (SyncGroup v5+).
    pub protocol_type: Option<String>,
    /// The protocol the member expects (SyncGroup v5+).
    pub protocol_name: Option<String>,
    /// The leader's assignment: member id and its assignment. Empty from followers.
    pub assignments: Vec<(String, Bytes)>,
}

/// The answer to a SyncGroup request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResponse {
    /// The error, `None` for success.
    pub error: Option<GroupError>,
    /// The group's protocol type (SyncGroup v5+); `None` on error.
    pub protocol_type: Option<String>,
    /// The selected protocol (SyncGroup v5+); `None` on error.
    pub protocol_name: Option<String>,
    /// The member's assignment; empty on error.
    pub assignment: Bytes,
}

impl SyncResponse {
    /// A failed sync.
    pub(crate) fn error(error: GroupError) -> Self {
        SyncResponse {
            error: Some(error),
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// A Heartbeat request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatRequest {
    /// The group id.
    pub group_id: String,
    /// The generation the member is in.
    pub generation_id: i32,
    /// The member id.
    pub member_id: String,
    /// The static member's instance id.
    pub group_instance_id: Option<String>,
}

/// One member leaving in a LeaveGroup request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeavingMember {
    /// The member id; empty when an administrator removes a static member by instance id.
    pub member_id: String,
    /// The static member's instance id.
    pub group_instance_id: Option<String>,
}

/// What the coordinator asks the broker to do, drained with
/// [`Coordinator::take_outputs`](crate::Coordinator::take_outputs) in the order produced.
///
/// A [`Output::StoreGroup`] comes before the answers that depend on it (the SyncGroup answers
/// carrying the assignment it stores, a static member's JoinGroup answer): like Kafka, a
/// broker writes it durably before sending those answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The answer to a JoinGroup request.
    Join {
        /// The request's token.
        token: Token,
        /// The answer.
        response: JoinResponse,
    },
    /// The answer to a SyncGroup request.
    Sync {
        /// The request's token.
        token: Token,
        /// The answer.
        response: SyncResponse,
    },
    /// The group's metadata changed (a generation got its assignment, the group became empty,
    /// a static member was replaced): write this record to `__consumer_offsets`. A tombstone
    /// (`value` `None`) when an OffsetDelete removed the group's last offset; the other group
    /// tombstones the broker writes itself (DeleteGroups, the keys of
    /// [`Coordinator::expired_offsets`](crate::Coordinator::expired_offsets)).
    StoreGroup {
        /// The group id.
        group_id: String,
        /// The record key ([`RecordKey::Group`](crate::RecordKey::Group), encoded).
        key: Vec<u8>,
        /// The record value ([`GroupValue`](crate::GroupValue), encoded); `None`: a tombstone.
        value: Option<Vec<u8>>,
    },
}

/// The state of a classic group, with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members (offsets may remain).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Assigned.
    Stable,
    /// Gone: what DescribeGroups reports for an unknown group.
    Dead,
}

impl GroupState {
    /// All states, in Kafka's order.
    pub const ALL: [GroupState; 5] = [
        GroupState::Empty,
        GroupState::PreparingRebalance,
        GroupState::CompletingRebalance,
        GroupState::Stable,
        GroupState::Dead,
    ];

    /// Kafka's name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// The state with this name, ignoring case (ListGroups v4 filters compare so).
    pub fn parse(name: &str) -> Option<GroupState> {
        GroupState::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One group in a ListGroups answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// The group id.
    pub group_id: String,
    /// The protocol type, empty for groups that only store offsets.
    pub protocol_type: String,
    /// The state.
    pub state: GroupState,
}

/// A DescribeGroups answer for a known group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub group_id: String,
    /// The state.
    pub state: GroupState,
    /// The protocol type, empty for groups that only store offsets.
    pub protocol_type: String,
    /// The selected protocol while Stable, `None` otherwise (Kafka answers "").
    pub protocol_name: Option<String>,
    /// The generation id.
    pub generation_id: i32,
    /// The leader's member id.
    pub leader: Option<String>,
    /// The members.
    pub members: Vec<MemberDescription>,
}

/// One member of a [`GroupDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// The member id.
    pub member_id: String,
    /// The static member's instance id.
    pub group_instance_id: Option<String>,
    /// The client id.
    pub client_id: String,
    /// The client's host.
    pub client_host: String,
    /// The member's metadata for the selected protocol; empty unless the group is Stable.
    pub metadata: Bytes,
    /// The member's assignment; empty unless the group is Stable.
    pub assignment: Bytes,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_are_kafkas_and_parse_ignores_case() {
        for state in GroupState::ALL {
            assert_eq!(GroupState::parse(state.as_str()), Some(state));
            assert_eq!(
                GroupState::parse(&state.as_str().to_lowercase()),
                Some(state)
            );
            assert_eq!(state.to_string(), state.as_str());
        }
        assert_eq!(
            GroupState::parse("completingrebalance"),
            Some(GroupState::CompletingRebalance)
        );
        assert_eq!(GroupState::parse("AwaitingSync"), None);
        assert_eq!(GroupState::parse(""), None);
    }

    #[test]
    fn now_plus_saturates() {
        let now = Now::new(u64::MAX - 1, i64::MAX - 1);
        assert_eq!(now.plus(5), Now::new(u64::MAX, i64::MAX));
    }
}
