//! Model test: simulated consumers that behave like Kafka's (join, assign round-robin if
//! leader, sync, heartbeat, commit) interleaved with random trouble (time jumps, crashes,
//! leaves, restarts, static restarts, duplicate joins, stale syncs and heartbeats).
//!
//! Checked all along: every token is answered at most once (and, at the end, exactly once);
//! generations never decrease; within a generation no partition is handed to two owners; a
//! dynamic member silent for its session timeout is gone; states agree with members. At the
//! end, with every live client behaving, the group must settle: Stable, exactly the live
//! clients as members, each holding a share of the current generation, the shares disjoint
//! and covering every partition.
//!
//! Commits carry distinct offsets and the position of their record in `__consumer_offsets`,
//! sometimes acknowledged late (after a newer commit of the same partition was applied, which
//! must then win). After every operation the committed offsets read back (OffsetFetch's
//! `committed_offset`/`committed_offsets`) must be exactly the model's, and at the end so must
//! those of a fresh coordinator that replayed every record written (group records and offset
//! records, in log order).
//!
//! Failing cases are kept in `model.proptest-regressions` beside this file and rerun first.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use proptest::prelude::*;

use super::scale::{decode_partitions, round_robin};
use super::*;
use crate::{Coordinator, LeavingMember, OffsetValue, RecordKey};

const GROUP: &str = "model";
const PARTITIONS: u32 = 12;
const REBALANCE_TIMEOUT_MS: i32 = 20_000;
/// Longest step of simulated time, so heartbeats keep their rhythm.
const MAX_STEP_MS: u64 = 500;
/// How long the group has to settle once the trouble stops.
const SETTLE_MS: u64 = 10 * 60 * 1000;

#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    Crash(usize),
    Leave(usize),
    Restart(usize),
    DuplicateJoin(usize),
    StaleSync(usize),
    StaleHeartbeat(usize),
    /// A commit by the client; `true`: its record precedes the newest one already applied to
    /// that partition (its acknowledgement arrives late), so it must not be applied.
    Commit(usize, bool),
    /// The client stops polling for a while (a long batch): its heartbeats go on, but it
    /// does not rejoin when told to, like a consumer past `max.poll.interval.ms`.
    Stall(usize, u64),
}

fn op(clients: usize) -> impl Strategy<Value = Op> {
    let c = 0..clients;
    prop_oneof![
        6 => (0u64..8_000).prop_map(Op::Advance),
        1 => c.clone().prop_map(Op::Crash),
        1 => c.clone().prop_map(Op::Leave),
        2 => c.clone().prop_map(Op::Restart),
        1 => c.clone().prop_map(Op::DuplicateJoin),
        1 => c.clone().prop_map(Op::StaleSync),
        1 => c.clone().prop_map(Op::StaleHeartbeat),
        2 => (c.clone(), prop::bool::weighted(0.3)).prop_map(|(i, late)| Op::Commit(i, late)),
        1 => (c, 0u64..60_000).prop_map(|(i, ms)| Op::Stall(i, ms)),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    NeedJoin,
    Joining(Token),
    Syncing(Token),
    Stable,
}

#[derive(Debug)]
struct Client {
    instance: Option<String>,
    session_ms: i32,
    alive: bool,
    incarnation: u32,
    member_id: String,
    phase: Phase,
    generation: i32,
    next_heartbeat: u64,
    /// The share received in a Sync answer, with its generation.
    assignment: Option<(i32, Vec<u32>)>,
    /// Not polling until then: heartbeats only.
    stalled_until: u64,
}

#[derive(Debug, Clone)]
enum Sent {
    Join,
    Sync {
        generation: i32,
        owner: String,
    },
    /// Probes whose answer only matters for the invariants.
    StaleSync,
}

#[derive(Debug)]
struct TokenInfo {
    client: usize,
    incarnation: u32,
    member_id: String,
    sent: Sent,
}

/// What the model knows of a dynamic member id, to check session expiry.
#[derive(Debug, Default)]
struct Track {
    session_ms: u64,
    last_contact: u64,
    outstanding: usize,
}

struct Model {
    h: Harness,
    clients: Vec<Client>,
    tokens: HashMap<Token, TokenInfo>,
    answered: BTreeSet<Token>,
    tracks: HashMap<String, Track>,
    /// generation -> partition -> owner (instance id or member id).
    owners: BTreeMap<i32, BTreeMap<u32, String>>,
    last_generation: i32,
    /// Dynamic members listed to a leader, and members answered, per generation: a join
    /// phase lists only members that rejoined in it.
    listed: BTreeMap<i32, BTreeSet<String>>,
    joined: BTreeMap<i32, BTreeSet<String>>,
    /// What OffsetFetch must return: partition -> (offset, position of its record).
    committed: BTreeMap<u32, (i64, u64)>,
    /// The offset records written, with their positions in `__consumer_offsets`.
    offset_records: Vec<(u64, Vec<u8>, Vec<u8>)>,
    /// Position of the next record; even, so that a late commit fits in before a newer one.
    next_position: u64,
    /// Offset of the next commit: every commit names a different one.
    next_offset: i64,
}

impl Model {
    fn new(sessions: &[i32], statics: usize) -> Self {
        let clients = sessions
            .iter()
            .enumerate()
            .map(|(i, &session_ms)| Client {
                instance: (i < statics).then(|| format!("instance-{i}")),
                session_ms,
                alive: true,
                incarnation: 0,
                member_id: String::new(),
                phase: Phase::NeedJoin,
                generation: -1,
                next_heartbeat: 0,
                assignment: None,
                stalled_until: 0,
            })
            .collect();
        Model {
            h: Harness::new(),
            clients,
            tokens: HashMap::new(),
            answered: BTreeSet::new(),
            tracks: HashMap::new(),
            owners: BTreeMap::new(),
            last_generation: 0,
            listed: BTreeMap::new(),
            joined: BTreeMap::new(),
            committed: BTreeMap::new(),
            offset_records: Vec::new(),
            next_position: 2,
            next_offset: 100,
        }
    }

    fn now(&self) -> u64 {
        self.h.now.mono_ms
    }

    fn contact(&mut self, member_id: &str, session_ms: i32, dynamic: bool) {
        if member_id.is_empty() || !dynamic {
            return;
        }
        let now = self.now();
        let track = self.tracks.entry(member_id.to_owned()).or_default();
        track.session_ms = u64::try_from(session_ms).unwrap_or(0);
        track.last_contact = now;
    }

    fn join_request(&self, i: usize) -> JoinRequest {
        let c = &self.clients[i];
        JoinRequest {
            group_id: GROUP.into(),
            member_id: c.member_id.clone(),
            group_instance_id: c.instance.clone(),
            session_timeout_ms: c.session_ms,
            rebalance_timeout_ms: REBALANCE_TIMEOUT_MS,
            require_known_member_id: c.instance.is_none(),
            ..join_req(GROUP, "", &format!("client-{i}"))
        }
    }

    fn send_join(&mut self, i: usize) {
        let req = self.join_request(i);
        let token = self.h.token();
        let c = &self.clients[i];
        self.tokens.insert(
            token,
            TokenInfo {
                client: i,
                incarnation: c.incarnation,
                member_id: c.member_id.clone(),
                sent: Sent::Join,
            },
        );
        let (member_id, session, dynamic) =
            (c.member_id.clone(), c.session_ms, c.instance.is_none());
        self.contact(&member_id, session, dynamic);
        if let Some(t) = self.tracks.get_mut(&member_id) {
            t.outstanding += 1;
        }
        self.clients[i].phase = Phase::Joining(token);
        self.h.c.join(self.h.now, token, req);
        self.deliver();
    }

    fn send_sync(
        &mut self,
        i: usize,
        generation: i32,
        assignments: Vec<(String, bytes::Bytes)>,
        stale: bool,
    ) {
        let c = &self.clients[i];
        let req = SyncRequest {
            group_instance_id: c.instance.clone(),
            ..sync_req(GROUP, generation, &c.member_id, assignments)
        };
        let token = self.h.token();
        let owner = c.instance.clone().unwrap_or_else(|| c.member_id.clone());
        self.tokens.insert(
            token,
            TokenInfo {
                client: i,
                incarnation: c.incarnation,
                member_id: c.member_id.clone(),
                sent: if stale {
                    Sent::StaleSync
                } else {
                    Sent::Sync { generation, owner }
                },
            },
        );
        let (member_id, session, dynamic) =
            (c.member_id.clone(), c.session_ms, c.instance.is_none());
        self.contact(&member_id, session, dynamic);
        if let Some(t) = self.tracks.get_mut(&member_id) {
            t.outstanding += 1;
        }
        if !stale {
            self.clients[i].phase = Phase::Syncing(token);
        }
        self.h.c.sync(self.h.now, token, req);
        self.deliver();
    }

    fn heartbeat(&mut self, i: usize, generation: i32) -> Result<(), GroupError> {
        let c = &self.clients[i];
        let req = HeartbeatRequest {
            group_id: GROUP.into(),
            generation_id: generation,
            member_id: c.member_id.clone(),
            group_instance_id: c.instance.clone(),
        };
        let (member_id, session, dynamic) =
            (c.member_id.clone(), c.session_ms, c.instance.is_none());
        self.contact(&member_id, session, dynamic);
        let result = self.h.c.heartbeat(self.h.now, &req);
        self.deliver();
        result
    }

    /// Routes the coordinator's outputs to the clients, checking exactly-once on the way.
    fn deliver(&mut self) {
        for output in self.h.c.take_outputs() {
            let (token, join, sync) = match output {
                Output::Join { token, response } => (token, Some(response), None),
                Output::Sync { token, response } => (token, None, Some(response)),
                Output::StoreGroup { .. } => continue,
            };
            assert!(self.answered.insert(token), "token {token} answered twice");
            let info = self.tokens.get(&token).expect("answers only tokens sent");
            let (i, incarnation, member_id, sent) = (
                info.client,
                info.incarnation,
                info.member_id.clone(),
                info.sent.clone(),
            );
            let now = self.now();
            if let Some(t) = self.tracks.get_mut(&member_id) {
                t.outstanding -= 1;
                t.last_contact = now;
            }
            if let (Sent::Sync { generation, owner }, Some(answer)) = (&sent, &sync) {
                if answer.error.is_none() {
                    let owners = self.owners.entry(*generation).or_default();
                    for p in decode_partitions(&answer.assignment) {
                        let previous = owners.entry(p).or_insert_with(|| owner.clone());
                        assert_eq!(
                            previous, owner,
                            "generation {generation}: partition {p} given to two owners"
                        );
                    }
                }
            }
            if matches!(sent, Sent::StaleSync) {
                let answer = sync.as_ref().expect("a sync answer");
                assert!(answer.error.is_some(), "a stale sync succeeded: {answer:?}");
            }
            let client = &self.clients[i];
            let current = client.alive
                && client.incarnation == incarnation
                && matches!(client.phase, Phase::Joining(t) | Phase::Syncing(t) if t == token);
            if let Some(answer) = &join {
                if answer.error.is_none() {
                    let generation = answer.generation_id;
                    self.joined
                        .entry(generation)
                        .or_default()
                        .insert(answer.member_id.clone());
                    let dynamic = answer
                        .members
                        .iter()
                        .filter(|m| m.group_instance_id.is_none())
                        .map(|m| m.member_id.clone());
                    self.listed.entry(generation).or_default().extend(dynamic);
                    // A new member id learnt from an answer starts its track now.
                    if client.instance.is_none() {
                        let session = client.session_ms;
                        self.contact(&answer.member_id.clone(), session, true);
                    }
                }
            }
            if !current {
                continue;
            }
            match (join, sync) {
                (Some(answer), _) => self.on_join(i, answer),
                (_, Some(answer)) => self.on_sync(i, answer),
                _ => {}
            }
        }
    }

    fn on_join(&mut self, i: usize, answer: JoinResponse) {
        let c = &mut self.clients[i];
        match answer.error {
            None => {
                c.member_id = answer.member_id.clone();
                c.generation = answer.generation_id;
                c.next_heartbeat = self.h.now.mono_ms + heartbeat_interval(c.session_ms);
                let assignments = if answer.leader == c.member_id && !answer.skip_assignment {
                    let members: Vec<String> =
                        answer.members.iter().map(|m| m.member_id.clone()).collect();
                    round_robin(&members, PARTITIONS)
                } else {
                    Vec::new()
                };
                self.send_sync(i, answer.generation_id, assignments, false);
            }
            Some(GroupError::MemberIdRequired) => {
                c.member_id = answer.member_id;
                c.phase = Phase::NeedJoin;
            }
            Some(GroupError::UnknownMemberId) => {
                c.member_id.clear();
                c.phase = Phase::NeedJoin;
            }
            Some(GroupError::FencedInstanceId) => c.alive = false,
            Some(GroupError::RebalanceInProgress) => c.phase = Phase::NeedJoin,
            Some(other) => panic!("client {i}: unexpected join error {other:?}"),
        }
    }

    fn on_sync(&mut self, i: usize, answer: SyncResponse) {
        let c = &mut self.clients[i];
        match answer.error {
            None => {
                c.phase = Phase::Stable;
                c.assignment = Some((c.generation, decode_partitions(&answer.assignment)));
            }
            Some(GroupError::UnknownMemberId) => {
                c.member_id.clear();
                c.phase = Phase::NeedJoin;
            }
            Some(GroupError::FencedInstanceId) => c.alive = false,
            Some(GroupError::RebalanceInProgress | GroupError::IllegalGeneration) => {
                c.phase = Phase::NeedJoin
            }
            Some(other) => panic!("client {i}: unexpected sync error {other:?}"),
        }
    }

    /// Every live client does what a consumer would at this moment.
    fn clients_act(&mut self) {
        for i in 0..self.clients.len() {
            if !self.clients[i].alive {
                continue;
            }
            let stalled = self.h.now.mono_ms < self.clients[i].stalled_until;
            match self.clients[i].phase {
                Phase::NeedJoin if stalled => {}
                Phase::NeedJoin => self.send_join(i),
                Phase::Joining(_) => {}
                Phase::Syncing(_) | Phase::Stable => {
                    let c = &self.clients[i];
                    if self.h.now.mono_ms < c.next_heartbeat {
                        continue;
                    }
                    let generation = c.generation;
                    let result = self.heartbeat(i, generation);
                    let c = &mut self.clients[i];
                    c.next_heartbeat = self.h.now.mono_ms + heartbeat_interval(c.session_ms);
                    match result {
                        Ok(()) => {}
                        // Told to rejoin, but busy: it will notice on a later heartbeat.
                        Err(GroupError::RebalanceInProgress) if stalled => {}
                        Err(GroupError::RebalanceInProgress | GroupError::IllegalGeneration) => {
                            c.phase = Phase::NeedJoin
                        }
                        Err(GroupError::UnknownMemberId) => {
                            c.member_id.clear();
                            c.phase = Phase::NeedJoin;
                        }
                        Err(GroupError::FencedInstanceId) => c.alive = false,
                        Err(other) => panic!("client {i}: unexpected heartbeat error {other:?}"),
                    }
                }
            }
        }
    }

    /// Moves time on by `ms` in steps no longer than `MAX_STEP_MS` that stop at every
    /// coordinator deadline, checking the invariants after each.
    fn advance(&mut self, ms: u64, mut stop: impl FnMut(&mut Model) -> bool) -> bool {
        let target = self.now() + ms;
        loop {
            self.clients_act();
            self.check();
            if stop(self) {
                return true;
            }
            if self.now() >= target {
                return false;
            }
            let mut next = (self.now() + MAX_STEP_MS).min(target);
            if let Some(deadline) = self.h.c.next_deadline() {
                next = next.min(deadline.max(self.now()));
            }
            let step = next - self.now();
            self.h.now = self.h.now.plus(step);
            self.h.c.tick(self.h.now);
            self.deliver();
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Advance(ms) => {
                self.advance(ms, |_| false);
            }
            Op::Crash(i) => self.clients[i].alive = false,
            Op::Leave(i) => {
                let c = &self.clients[i];
                if c.alive && !c.member_id.is_empty() {
                    let leaving = [LeavingMember {
                        member_id: c.member_id.clone(),
                        group_instance_id: c.instance.clone(),
                    }];
                    let (member_id, session, dynamic) =
                        (c.member_id.clone(), c.session_ms, c.instance.is_none());
                    self.contact(&member_id, session, dynamic);
                    let _ = self.h.c.leave(self.h.now, GROUP, &leaving);
                    self.deliver();
                }
                self.clients[i].alive = false;
            }
            Op::Restart(i) => {
                // A new process: a static member keeps its instance id, nothing else.
                let c = &mut self.clients[i];
                c.alive = true;
                c.incarnation += 1;
                c.member_id.clear();
                c.phase = Phase::NeedJoin;
                c.generation = -1;
                c.assignment = None;
            }
            Op::DuplicateJoin(i) => {
                if self.clients[i].alive && matches!(self.clients[i].phase, Phase::Joining(_)) {
                    self.send_join(i);
                }
            }
            Op::StaleSync(i) => {
                let c = &self.clients[i];
                if c.alive && !c.member_id.is_empty() && c.generation > 0 {
                    self.send_sync(i, c.generation - 1, Vec::new(), true);
                }
            }
            Op::StaleHeartbeat(i) => {
                let c = &self.clients[i];
                if c.alive && !c.member_id.is_empty() && c.generation > 0 {
                    let result = self.heartbeat(i, c.generation - 1);
                    assert!(result.is_err(), "a stale heartbeat succeeded");
                }
            }
            Op::Stall(i, ms) => self.clients[i].stalled_until = self.now() + ms,
            Op::Commit(i, late) => {
                let c = &self.clients[i];
                if c.alive && c.phase == Phase::Stable {
                    let (member_id, session, dynamic) =
                        (c.member_id.clone(), c.session_ms, c.instance.is_none());
                    let (generation, instance) = (c.generation, c.instance.clone());
                    let partition = c
                        .assignment
                        .as_ref()
                        .and_then(|(_, share)| share.first().copied())
                        .unwrap_or(0);
                    self.contact(&member_id, session, dynamic);
                    let ok = self.h.c.validate_offset_commit(
                        self.h.now,
                        GROUP,
                        generation,
                        &member_id,
                        instance.as_deref(),
                    );
                    if ok.is_ok() {
                        self.commit(partition, late);
                    }
                    self.deliver();
                }
            }
        }
        self.check();
    }

    /// Writes and applies an offset commit of `partition` (validated by the caller), as the
    /// broker does: the record goes to `__consumer_offsets` at some position, then the
    /// coordinator applies it, unless a record after it was applied first.
    fn commit(&mut self, partition: u32, late: bool) {
        let offset = self.next_offset;
        self.next_offset += 1;
        let newest = self.committed.get(&partition).map(|&(_, at)| at);
        let position = match newest {
            // Written before the newest applied commit, acknowledged after it.
            Some(at) if late => at - 1,
            _ => {
                self.next_position += 2;
                self.next_position
            }
        };
        let value = OffsetValue {
            offset,
            leader_epoch: -1,
            metadata: format!("commit at {position}"),
            commit_timestamp_ms: self.h.now.wall_ms,
        };
        let key = RecordKey::Offset {
            group: GROUP.into(),
            topic: "t".into(),
            partition: i32::try_from(partition).unwrap_or(0),
        };
        self.offset_records.push((
            position,
            key.encode().expect("encode an offset key"),
            value.encode().expect("encode an offset value"),
        ));
        let applied = self.h.c.apply_offset_commit(
            GROUP,
            "t",
            i32::try_from(partition).unwrap_or(0),
            value,
            Some(position),
        );
        let expected = newest.is_none_or(|at| position > at);
        assert_eq!(
            applied, expected,
            "commit of partition {partition} at position {position} (newest applied: {newest:?})"
        );
        if expected {
            self.committed.insert(partition, (offset, position));
        }
    }

    /// OffsetFetch on `c` returns exactly the model's committed offsets.
    fn check_offsets(&self, c: &Coordinator, what: &str) {
        let fetched: BTreeMap<u32, i64> = c
            .committed_offsets(GROUP)
            .into_iter()
            .map(|(topic, partition, value)| {
                assert_eq!(
                    topic, "t",
                    "{what}: an offset of a topic nobody committed to"
                );
                (u32::try_from(partition).unwrap_or(u32::MAX), value.offset)
            })
            .collect();
        let expected: BTreeMap<u32, i64> = self
            .committed
            .iter()
            .map(|(&p, &(offset, _))| (p, offset))
            .collect();
        assert_eq!(fetched, expected, "{what}: committed offsets");
        for p in 0..PARTITIONS {
            let one = c
                .committed_offset(GROUP, "t", i32::try_from(p).unwrap_or(0))
                .map(|v| v.offset);
            assert_eq!(
                one,
                expected.get(&p).copied(),
                "{what}: offset of partition {p}"
            );
        }
    }

    /// A new coordinator loads `__consumer_offsets` (group records and offset records, in log
    /// order) and must know the same committed offsets.
    fn check_replay(&self) {
        let mut replayed = Coordinator::new(config());
        for (key, value) in &self.h.stored {
            replayed
                .replay(self.h.now, key, Some(value))
                .expect("replay a group record");
        }
        let mut records: Vec<&(u64, Vec<u8>, Vec<u8>)> = self.offset_records.iter().collect();
        records.sort_by_key(|(position, _, _)| *position);
        for (_, key, value) in records {
            replayed
                .replay(self.h.now, key, Some(value))
                .expect("replay an offset record");
        }
        self.check_offsets(&replayed, "after replay");
    }

    fn check(&mut self) {
        self.check_offsets(&self.h.c, "live");
        let Some(d) = self.h.c.describe_group(GROUP) else {
            return;
        };
        assert!(
            d.generation_id >= self.last_generation,
            "generation went back from {} to {}",
            self.last_generation,
            d.generation_id
        );
        self.last_generation = d.generation_id;
        for (generation, listed) in &self.listed {
            let joined = self.joined.get(generation);
            for id in listed {
                assert!(
                    joined.is_some_and(|j| j.contains(id)),
                    "generation {generation}: {id} listed to the leader without rejoining"
                );
            }
        }
        match d.state {
            GroupState::Empty => assert!(d.members.is_empty(), "Empty with members"),
            GroupState::Stable | GroupState::CompletingRebalance => {
                assert!(!d.members.is_empty(), "{} without members", d.state)
            }
            GroupState::PreparingRebalance => {}
            GroupState::Dead => panic!("a Dead group is listed"),
        }
        let now = self.now();
        for (id, track) in &self.tracks {
            if track.outstanding == 0 && now >= track.last_contact + track.session_ms {
                assert!(
                    !d.members.iter().any(|m| &m.member_id == id),
                    "member {id} silent since {} (session {} ms) still in the group at {now}",
                    track.last_contact,
                    track.session_ms
                );
            }
        }
    }

    /// The group has settled around the live clients.
    fn settled(&self) -> bool {
        let live: BTreeSet<&str> = self
            .clients
            .iter()
            .filter(|c| c.alive)
            .map(|c| c.member_id.as_str())
            .collect();
        let Some(d) = self.h.c.describe_group(GROUP) else {
            return live.is_empty();
        };
        if live.is_empty() {
            return d.state == GroupState::Empty;
        }
        let members: BTreeSet<&str> = d.members.iter().map(|m| m.member_id.as_str()).collect();
        if d.state != GroupState::Stable || members != live {
            return false;
        }
        let mut covered = BTreeSet::new();
        for c in self.clients.iter().filter(|c| c.alive) {
            match &c.assignment {
                Some((generation, share))
                    if c.phase == Phase::Stable && *generation == d.generation_id =>
                {
                    for p in share {
                        assert!(covered.insert(*p), "partition {p} held twice");
                    }
                }
                _ => return false,
            }
        }
        assert_eq!(covered, (0..PARTITIONS).collect::<BTreeSet<u32>>());
        true
    }
}

fn heartbeat_interval(session_ms: i32) -> u64 {
    u64::try_from(session_ms / 4).unwrap_or(1).max(1)
}

fn run(sessions: Vec<i32>, statics: usize, ops: Vec<Op>) {
    let mut m = Model::new(&sessions, statics);
    m.advance(0, |_| false);
    for op in &ops {
        m.apply(op);
    }
    let settled = m.advance(SETTLE_MS, |m| m.settled());
    assert!(
        settled,
        "not settled: {:?}\nclients: {:#?}",
        m.h.c.describe_group(GROUP),
        m.clients
    );
    let sent: BTreeSet<Token> = m.tokens.keys().copied().collect();
    assert_eq!(sent, m.answered, "every token answered exactly once");
    m.check_offsets(&m.h.c, "at the end");
    m.check_replay();
}

proptest! {
    #![proptest_config(ProptestConfig {
        // Beside this file: src/tests/model.proptest-regressions, committed with the fix.
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn consumers_under_trouble_settle(
        sessions in proptest::collection::vec(6_000i32..15_000, 1..6),
        statics in 0usize..3,
        ops in proptest::collection::vec(op(6), 0..60),
    ) {
        let n = sessions.len();
        let ops: Vec<Op> = ops
            .into_iter()
            .filter(|op| match op {
                Op::Crash(i) | Op::Leave(i) | Op::Restart(i) | Op::DuplicateJoin(i)
                | Op::StaleSync(i) | Op::StaleHeartbeat(i) | Op::Commit(i, _)
                | Op::Stall(i, _) => *i < n,
                Op::Advance(_) => true,
            })
            .collect();
        run(sessions, statics.min(n), ops);
    }
}

#[test]
fn a_quiet_group_settles() {
    run(vec![10_000, 10_000, 10_000], 1, vec![Op::Advance(60_000)]);
}
