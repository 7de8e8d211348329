//! Scenario tests of the coordinator through its public API, and the model test.

mod flows;
mod model;
mod offsets;
mod scale;
mod static_members;

use std::collections::HashMap;

use bytes::Bytes;

pub(crate) use crate::group::tests::consumer_metadata;
use crate::{
    Coordinator, CoordinatorConfig, GroupError, GroupState, HeartbeatRequest, JoinRequest,
    JoinResponse, Now, Output, SyncRequest, SyncResponse, Token,
};

pub(crate) const SESSION_MS: i32 = 10_000;
pub(crate) const REBALANCE_MS: i32 = 30_000;
pub(crate) const DELAY_MS: u64 = 3_000;

pub(crate) fn config() -> CoordinatorConfig {
    CoordinatorConfig {
        group_min_session_timeout_ms: 1_000,
        group_max_session_timeout_ms: 60_000,
        group_initial_rebalance_delay_ms: DELAY_MS as i32,
        offsets_retention_ms: 1_000_000,
        ..CoordinatorConfig::default()
    }
}

/// A coordinator, a clock, and the answers it gave, checked to be one per token.
pub(crate) struct Harness {
    pub c: Coordinator,
    pub now: Now,
    next_token: Token,
    joins: HashMap<Token, JoinResponse>,
    syncs: HashMap<Token, SyncResponse>,
    pub stored: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_config(config())
    }

    pub fn with_config(config: CoordinatorConfig) -> Self {
        Harness {
            c: Coordinator::new(config),
            now: Now::new(1_000, 1_700_000_000_000),
            next_token: 0,
            joins: HashMap::new(),
            syncs: HashMap::new(),
            stored: Vec::new(),
        }
    }

    pub fn collect(&mut self) {
        for output in self.c.take_outputs() {
            match output {
                Output::Join { token, response } => {
                    assert!(
                        self.joins.insert(token, response).is_none(),
                        "join token {token} answered twice"
                    );
                }
                Output::Sync { token, response } => {
                    assert!(
                        self.syncs.insert(token, response).is_none(),
                        "sync token {token} answered twice"
                    );
                }
                Output::StoreGroup { key, value, .. } => self
                    .stored
                    .push((key, value.expect("the coordinator stores, never deletes"))),
            }
        }
    }

    /// Moves the clock on and fires what is due.
    pub fn advance(&mut self, ms: u64) {
        self.now = self.now.plus(ms);
        self.c.tick(self.now);
        self.collect();
    }

    pub fn token(&mut self) -> Token {
        self.next_token += 1;
        self.next_token
    }

    pub fn join(&mut self, req: JoinRequest) -> Token {
        let token = self.token();
        self.c.join(self.now, token, req);
        self.collect();
        token
    }

    pub fn sync(&mut self, req: SyncRequest) -> Token {
        let token = self.token();
        self.c.sync(self.now, token, req);
        self.collect();
        token
    }

    pub fn heartbeat(
        &mut self,
        group: &str,
        generation: i32,
        member: &str,
    ) -> Result<(), GroupError> {
        let result = self.c.heartbeat(
            self.now,
            &HeartbeatRequest {
                group_id: group.into(),
                generation_id: generation,
                member_id: member.into(),
                group_instance_id: None,
            },
        );
        self.collect();
        result
    }

    /// The answer to a join, if it came.
    pub fn join_answer(&self, token: Token) -> Option<&JoinResponse> {
        self.joins.get(&token)
    }

    pub fn joined(&self, token: Token) -> &JoinResponse {
        self.joins.get(&token).expect("join answered")
    }

    pub fn sync_answer(&self, token: Token) -> Option<&SyncResponse> {
        self.syncs.get(&token)
    }

    pub fn synced(&self, token: Token) -> &SyncResponse {
        self.syncs.get(&token).expect("sync answered")
    }

    pub fn state(&self, group: &str) -> Option<GroupState> {
        self.c.describe_group(group).map(|d| d.state)
    }

    pub fn member_ids(&self, group: &str) -> Vec<String> {
        self.c
            .describe_group(group)
            .map(|d| d.members.into_iter().map(|m| m.member_id).collect())
            .unwrap_or_default()
    }

    /// Waits out the initial delay (and its extensions) until every join is answered.
    pub fn settle_joins(&mut self, tokens: &[Token]) {
        for _ in 0..20 {
            if tokens.iter().all(|t| self.join_answer(*t).is_some()) {
                return;
            }
            self.advance(DELAY_MS);
        }
        panic!("joins never answered");
    }

    /// A member id through KIP-394's first round trip.
    pub fn member_id(&mut self, group: &str, client: &str) -> String {
        let t = self.join(join_req(group, "", client));
        let answer = self.joined(t);
        assert_eq!(answer.error, Some(GroupError::MemberIdRequired));
        assert!(answer.member_id.starts_with(&format!("{client}-")));
        answer.member_id.clone()
    }

    /// Joins `n` members, waits out the initial delay, syncs with the leader assigning each
    /// member its index; returns the member ids and the generation.
    pub fn stable_group(&mut self, group: &str, n: usize) -> (Vec<String>, i32) {
        let ids: Vec<String> = (0..n)
            .map(|i| self.member_id(group, &format!("c{i}")))
            .collect();
        let tokens: Vec<Token> = ids
            .iter()
            .map(|id| self.join(join_req(group, id, "c")))
            .collect();
        self.settle_joins(&tokens);
        let answers: Vec<JoinResponse> = tokens.iter().map(|t| self.joined(*t).clone()).collect();
        let generation = answers[0].generation_id;
        let leader = answers[0].leader.clone();
        for a in &answers {
            assert_eq!(a.error, None);
            assert_eq!(a.generation_id, generation);
        }
        let assignments: Vec<(String, Bytes)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), Bytes::from(format!("p{i}"))))
            .collect();
        let mut syncs = Vec::new();
        for id in &ids {
            let assignments = if *id == leader {
                assignments.clone()
            } else {
                Vec::new()
            };
            syncs.push(self.sync(sync_req(group, generation, id, assignments)));
        }
        for (i, t) in syncs.iter().enumerate() {
            let answer = self.synced(*t);
            assert_eq!(answer.error, None);
            assert_eq!(answer.assignment, Bytes::from(format!("p{i}")));
        }
        assert_eq!(self.state(group), Some(GroupState::Stable));
        (ids, generation)
    }
}

pub(crate) fn join_req(group: &str, member: &str, client: &str) -> JoinRequest {
    JoinRequest {
        group_id: group.into(),
        member_id: member.into(),
        group_instance_id: None,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), consumer_metadata(&["t"]))],
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        require_known_member_id: true,
        supports_skip_assignment: true,
        client_id: client.into(),
        client_host: "/127.0.0.1".into(),
        reason: None,
    }
}

/// A rejoin with new metadata, which always starts a rebalance.
pub(crate) fn changed_join(group: &str, member: &str) -> JoinRequest {
    let mut req = join_req(group, member, "c");
    req.protocols = vec![("range".into(), consumer_metadata(&["t", "u"]))];
    req
}

pub(crate) fn sync_req(
    group: &str,
    generation: i32,
    member: &str,
    assignments: Vec<(String, Bytes)>,
) -> SyncRequest {
    SyncRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member.into(),
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments,
    }
}
