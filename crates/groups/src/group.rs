//! One classic group's state: members, generation, timers and offsets, with the pure helpers
//! the state machine uses (protocol selection, subscriptions, deadlines).
//!
//! The state machine itself lives in `membership` (join, sync, heartbeat, leave, expiry),
//! `rebalance` (the join and sync phases and their timers) and `offsets`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::{Buf, Bytes};
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;

use crate::config::CoordinatorConfig;
use crate::messages::{GroupState, Now, Output, Token};
use crate::records::{GroupMemberValue, GroupValue, OffsetValue, RecordKey};

/// The protocol type of Kafka consumers, whose metadata Cairn can read.
pub(crate) const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// What a call into a group needs from the coordinator: config, clocks, the output queue and
/// the member id sequence.
pub(crate) struct Ctx<'a> {
    pub config: &'a CoordinatorConfig,
    pub outputs: &'a mut Vec<Output>,
    pub now: Now,
    pub member_seq: &'a mut u64,
}

impl Ctx<'_> {
    /// `ms` from now on the monotonic clock; negative durations count as zero.
    pub fn after(&self, ms: i64) -> u64 {
        self.now
            .mono_ms
            .saturating_add(u64::try_from(ms.max(0)).unwrap_or(u64::MAX))
    }
}

/// A member of a group.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// Supported protocols, most preferred first.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    /// A JoinGroup waiting for the join phase to complete.
    pub join_token: Option<Token>,
    /// A SyncGroup waiting for the leader's assignment.
    pub sync_token: Option<Token>,
    /// Joined but not yet through a completed join phase: it may wait for its first answer
    /// only `new_member_join_timeout_ms` (Kafka's `isNew`).
    pub is_new: bool,
    /// When the member expires unless it shows life again.
    pub deadline_ms: u64,
}

impl Member {
    /// The member's metadata for a protocol.
    pub fn metadata(&self, protocol: &str) -> Option<&Bytes> {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m)
    }

    /// Whether the member would join with exactly these protocols and metadata.
    pub fn matches(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(name, _)| name == protocol)
    }

    /// When the member's session expires, `None` while it legitimately waits for an answer
    /// (Kafka's `hasSatisfiedHeartbeat`): a member waiting in a join or sync phase is bounded
    /// by that phase's timeout instead, except a new member, which is bounded by its own.
    pub fn expiry(&self) -> Option<u64> {
        if self.is_new || (self.join_token.is_none() && self.sync_token.is_none()) {
            Some(self.deadline_ms)
        } else {
            None
        }
    }
}

/// The timer of the join phase (Kafka's `DelayedJoin` and `InitialDelayedJoin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinTimer {
    /// The first rebalance of an empty group: it waits `delay_ms` whatever happens, then
    /// again (at most `remaining_ms` in all) while new members keep arriving.
    Initial {
        deadline_ms: u64,
        delay_ms: u64,
        remaining_ms: u64,
    },
    /// Completes when every member has rejoined, or at the deadline without the others.
    Normal { deadline_ms: u64 },
}

impl JoinTimer {
    pub fn deadline(&self) -> u64 {
        match *self {
            JoinTimer::Initial { deadline_ms, .. } | JoinTimer::Normal { deadline_ms } => {
                deadline_ms
            }
        }
    }
}

/// The next thing due in a group, see [`Group::next_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    JoinTimer,
    SyncTimer,
    PendingMemberExpired(String),
    MemberExpired(String),
}

/// A classic group.
#[derive(Debug)]
pub(crate) struct Group {
    pub id: String,
    pub state: GroupState,
    /// When the group entered its state (unix ms), -1 if unknown (old records).
    pub state_timestamp_ms: i64,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    /// Members by id; the order makes every "pick any member" choice deterministic.
    pub members: BTreeMap<String, Member>,
    /// Instance id to member id of static members.
    pub static_members: HashMap<String, String>,
    /// KIP-394 member ids handed out and not yet used, with their expiry.
    pub pending_members: BTreeMap<String, u64>,
    /// Members of the current generation that have not sent SyncGroup yet.
    pub pending_sync: BTreeSet<String>,
    pub sync_deadline_ms: Option<u64>,
    pub join_timer: Option<JoinTimer>,
    /// A new member arrived during the initial delay of generation 0.
    pub new_member_added: bool,
    /// Topics the members subscribe to, for consumer groups whose metadata parsed.
    pub subscribed_topics: Option<BTreeSet<String>>,
    pub offsets: BTreeMap<(String, i32), OffsetValue>,
    /// Where in `__consumer_offsets` the record of each committed offset lies, when the
    /// broker said: a commit written before another is never applied after it (Kafka keeps
    /// the newer by `appendedBatchOffset` too).
    pub offset_positions: BTreeMap<(String, i32), u64>,
}

impl Group {
    pub fn new(id: String, wall_ms: i64) -> Self {
        Group {
            id,
            state: GroupState::Empty,
            state_timestamp_ms: wall_ms,
            protocol_type: None,
            protocol_name: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: BTreeMap::new(),
            pending_sync: BTreeSet::new(),
            sync_deadline_ms: None,
            join_timer: None,
            new_member_added: false,
            subscribed_topics: None,
            offsets: BTreeMap::new(),
            offset_positions: BTreeMap::new(),
        }
    }

    pub fn transition(&mut self, state: GroupState, now: Now) {
        self.state = state;
        self.state_timestamp_ms = now.wall_ms;
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader.as_deref() == Some(member_id)
    }

    /// The join phase waits for the longest rebalance timeout of the members.
    pub fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
            .max(0)
    }

    pub fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.join_token.is_some())
    }

    pub fn awaiting_join_count(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.join_token.is_some())
            .count()
    }

    /// Whether a member with this protocol type and protocols may join (Kafka's
    /// `supportsProtocols`): a group without members takes any non-empty type and protocol
    /// list; otherwise the type must match and one protocol must be supported by every member.
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(name, _)| self.members.values().all(|m| m.supports(name)))
    }

    /// The protocol for the next generation: among the protocols every member supports, each
    /// member votes for its most preferred one; most votes wins, ties go to the smallest name
    /// (Kafka leaves ties to hash order).
    pub fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| self.members.values().all(|m| m.supports(name)))
            .collect();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some((name, _)) = member
                .protocols
                .iter()
                .find(|(name, _)| candidates.contains(&name.as_str()))
            {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        // `max_by_key` keeps the last maximum; iterate in reverse name order so that it is the
        // smallest name.
        votes
            .into_iter()
            .rev()
            .max_by_key(|&(_, count)| count)
            .map(|(name, _)| name.to_owned())
    }

    /// The topics the members subscribe to, for a consumer group (Kafka's
    /// `computeSubscribedTopics`); `None` when unknown, which counts as "every topic".
    pub fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            return None;
        }
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for member in self.members.values() {
            topics.extend(subscription_topics(member.metadata(protocol)?)?);
        }
        Some(topics)
    }

    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        self.subscribed_topics
            .as_ref()
            .is_none_or(|topics| topics.contains(topic))
    }

    /// Members in the leader's JoinGroup answer: every member with its metadata for the
    /// selected protocol.
    pub fn member_list(&self) -> Vec<crate::messages::JoinMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members
            .values()
            .map(|m| crate::messages::JoinMember {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                metadata: m.metadata(protocol).cloned().unwrap_or_default(),
            })
            .collect()
    }

    /// The group's metadata record.
    pub fn to_record(&self) -> GroupValue {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol_name.clone(),
            leader: self.leader.clone(),
            current_state_timestamp_ms: self.state_timestamp_ms,
            members: self
                .members
                .values()
                .map(|m| GroupMemberValue {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata(protocol).cloned().unwrap_or_default(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Queues the group's metadata record.
    pub fn store(&self, ctx: &mut Ctx<'_>) {
        let key = RecordKey::Group {
            group: self.id.clone(),
        };
        match (key.encode(), self.to_record().encode()) {
            (Ok(key), Ok(value)) => ctx.outputs.push(Output::StoreGroup {
                group_id: self.id.clone(),
                key,
                value: Some(value),
            }),
            // Every string stored was checked against `MAX_STRING_BYTES` when it entered
            // (see `membership::check_join_fields`), so this is our bug, not the client's.
            (Err(e), _) | (_, Err(e)) => {
                debug_assert!(false, "group {} record does not encode: {e}", self.id)
            }
        }
    }

    /// The earliest thing due: a timer, or a member or pending member expiring.
    pub fn next_event(&self) -> Option<(u64, Event)> {
        let mut best: Option<(u64, Event)> = None;
        let mut consider = |at: u64, event: Event| {
            if best.as_ref().is_none_or(|(b, _)| at < *b) {
                best = Some((at, event));
            }
        };
        if let Some(timer) = &self.join_timer {
            consider(timer.deadline(), Event::JoinTimer);
        }
        if let Some(at) = self.sync_deadline_ms {
            consider(at, Event::SyncTimer);
        }
        for (id, &at) in &self.pending_members {
            consider(at, Event::PendingMemberExpired(id.clone()));
        }
        for member in self.members.values() {
            if let Some(at) = member.expiry() {
                consider(at, Event::MemberExpired(member.id.clone()));
            }
        }
        best
    }

    /// The earliest deadline, without building the event.
    pub fn next_deadline(&self) -> Option<u64> {
        let timers = [self.join_timer.map(|t| t.deadline()), self.sync_deadline_ms];
        timers
            .into_iter()
            .flatten()
            .chain(self.pending_members.values().copied())
            .chain(self.members.values().filter_map(Member::expiry))
            .min()
    }

    /// A group that holds nothing worth keeping: never had a generation or a protocol type,
    /// no members, no member ids handed out, no offsets. It is dropped (a failed first join
    /// must not leave a group behind).
    pub fn is_vacant(&self) -> bool {
        self.state == GroupState::Empty
            && self.generation == 0
            && self.protocol_type.is_none()
            && self.members.is_empty()
            && self.pending_members.is_empty()
            && self.offsets.is_empty()
    }

    /// Whether the group may disappear now that it has lost an offset: empty, with no member
    /// ids handed out and no offsets left (Kafka then marks it Dead and removes it).
    pub fn is_disposable(&self) -> bool {
        self.state == GroupState::Empty
            && self.members.is_empty()
            && self.pending_members.is_empty()
            && self.offsets.is_empty()
    }

    /// Checks the group's invariants; called after every change in debug builds.
    pub fn check_invariants(&self) {
        use GroupState::*;
        assert_eq!(
            self.members.is_empty(),
            self.leader.is_none(),
            "group {}: a leader exactly when there are members",
            self.id
        );
        if let Some(leader) = &self.leader {
            assert!(
                self.members.contains_key(leader),
                "group {}: leader is a member",
                self.id
            );
        }
        match self.state {
            Empty => {
                assert!(
                    self.members.is_empty(),
                    "group {}: Empty has no members",
                    self.id
                );
                assert!(self.join_timer.is_none() && self.sync_deadline_ms.is_none());
            }
            PreparingRebalance => {
                assert!(
                    self.join_timer.is_some(),
                    "group {}: join timer set",
                    self.id
                )
            }
            CompletingRebalance | Stable => {
                assert!(
                    !self.members.is_empty(),
                    "group {}: {:?} has members",
                    self.id,
                    self.state
                );
                assert!(
                    self.protocol_name.is_some(),
                    "group {}: protocol selected",
                    self.id
                );
                assert!(self.join_timer.is_none());
            }
            Dead => panic!("group {}: a Dead group is never kept", self.id),
        }
        for member in self.members.values() {
            if member.join_token.is_some() {
                assert_eq!(
                    self.state, PreparingRebalance,
                    "join waits only while preparing"
                );
            }
            if member.sync_token.is_some() {
                assert_eq!(
                    self.state, CompletingRebalance,
                    "sync waits only while completing"
                );
            }
            if let Some(instance) = &member.instance_id {
                assert_eq!(self.static_members.get(instance), Some(&member.id));
            }
            assert!(!self.pending_members.contains_key(&member.id));
        }
        assert_eq!(
            self.static_members.len(),
            self.members
                .values()
                .filter(|m| m.instance_id.is_some())
                .count(),
            "group {}: static mapping matches members",
            self.id
        );
        for id in &self.pending_sync {
            assert!(self.members.contains_key(id), "pending sync of a member");
        }
        if !self.pending_sync.is_empty() {
            assert!(
                self.sync_deadline_ms.is_some(),
                "pending syncs have a deadline"
            );
            assert!(matches!(self.state, CompletingRebalance | Stable));
        }
    }
}

/// The topics of a `ConsumerProtocolSubscription`, read with its version 0 layout, which
/// every version starts with (as Kafka's `computeSubscribedTopics` does). `None` if it does
/// not parse.
fn subscription_topics(metadata: &Bytes) -> Option<Vec<String>> {
    let mut buf = metadata.clone();
    if buf.remaining() < 6 || buf.get_i16() < 0 {
        return None;
    }
    // kafka-protocol sizes the topic vector by the declared count before reading it
    // (`Vec::with_capacity`), so refuse counts the bytes cannot hold (a topic takes at least
    // its 2-byte length) before handing it client-supplied metadata.
    let count = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let count = usize::try_from(count).unwrap_or(0);
    if count.saturating_mul(2) > buf.remaining() - 4 {
        return None;
    }
    let subscription = ConsumerProtocolSubscription::decode(&mut buf, 0).ok()?;
    Some(subscription.topics.iter().map(|t| t.to_string()).collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    /// A consumer's JoinGroup metadata subscribing to `topics`.
    pub(crate) fn consumer_metadata(topics: &[&str]) -> Bytes {
        let sub = ConsumerProtocolSubscription::default().with_topics(
            topics
                .iter()
                .map(|t| StrBytes::from_string((*t).to_owned()))
                .collect(),
        );
        let mut buf = bytes::BytesMut::new();
        buf.extend_from_slice(&3i16.to_be_bytes());
        sub.encode(&mut buf, 3).expect("encodes");
        buf.freeze()
    }

    #[test]
    fn subscription_topics_parse_and_bound() {
        assert_eq!(
            subscription_topics(&consumer_metadata(&["a", "b"])),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(subscription_topics(&Bytes::from_static(b"\x00")), None);
        // Negative version.
        assert_eq!(
            subscription_topics(&Bytes::from_static(b"\xff\xff\x00\x00\x00\x00")),
            None
        );
        // Two billion topics declared in ten bytes.
        assert_eq!(
            subscription_topics(&Bytes::from_static(
                b"\x00\x00\x7f\xff\xff\xff\x00\x00\x00\x00"
            )),
            None
        );
    }

    fn member(id: &str, protocols: &[&str]) -> Member {
        Member {
            id: id.to_owned(),
            instance_id: None,
            client_id: String::new(),
            client_host: String::new(),
            rebalance_timeout_ms: 1,
            session_timeout_ms: 1,
            protocols: protocols
                .iter()
                .map(|p| ((*p).to_owned(), Bytes::new()))
                .collect(),
            assignment: Bytes::new(),
            join_token: None,
            sync_token: None,
            is_new: false,
            deadline_ms: 0,
        }
    }

    fn group(members: &[(&str, &[&str])]) -> Group {
        let mut g = Group::new("g".into(), 0);
        g.protocol_type = Some("consumer".into());
        for (id, protocols) in members {
            g.members.insert((*id).to_owned(), member(id, protocols));
        }
        g
    }

    #[test]
    fn protocol_selection_votes_among_common_protocols() {
        // "range" is common to all; "roundrobin" is not supported by c, so votes go to the
        // first common protocol of each member.
        let g = group(&[
            ("a", &["roundrobin", "range", "sticky"]),
            ("b", &["sticky", "range"]),
            ("c", &["range", "sticky"]),
        ]);
        // a votes range (roundrobin not common), b votes sticky, c votes range.
        assert_eq!(g.select_protocol().as_deref(), Some("range"));

        let g = group(&[("a", &["x", "y"]), ("b", &["y", "x"])]);
        // One vote each: the tie goes to the smallest name.
        assert_eq!(g.select_protocol().as_deref(), Some("x"));

        let g = group(&[("a", &["x"]), ("b", &["y", "x"]), ("c", &["y", "x"])]);
        assert_eq!(g.select_protocol().as_deref(), Some("x"));

        assert_eq!(group(&[]).select_protocol(), None);
    }

    #[test]
    fn supports_protocols_requires_type_and_a_common_protocol() {
        let p = |names: &[&str]| -> Vec<(String, Bytes)> {
            names
                .iter()
                .map(|n| ((*n).to_owned(), Bytes::new()))
                .collect()
        };
        let empty = group(&[]);
        assert!(empty.supports_protocols("consumer", &p(&["range"])));
        assert!(!empty.supports_protocols("", &p(&["range"])));
        assert!(!empty.supports_protocols("consumer", &[]));
        let g = group(&[("a", &["range", "sticky"]), ("b", &["sticky"])]);
        assert!(g.supports_protocols("consumer", &p(&["sticky"])));
        assert!(!g.supports_protocols("consumer", &p(&["range"])));
        assert!(!g.supports_protocols("connect", &p(&["sticky"])));
    }
}
