//! Members coming and going: JoinGroup, SyncGroup, Heartbeat, LeaveGroup and session expiry,
//! following Kafka's classic `GroupCoordinator` (`handleJoinGroup`, `handleSyncGroup`, ...).
//!
//! Every deferred request is answered exactly once: a token is either answered before the
//! call returns or parked in one member slot (`join_token`, `sync_token`); whatever empties a
//! slot (completion, removal, fencing, a newer request from the same member) answers it.

use bytes::Bytes;

use crate::error::GroupError;
use crate::group::{Ctx, Group, Member};
use crate::messages::{
    GroupState, HeartbeatRequest, JoinRequest, JoinResponse, LeavingMember, Output, SyncRequest,
    SyncResponse, Token,
};
use crate::records::MAX_STRING_BYTES;

/// Longest prefix of a generated member id (the client or instance id), so that the id
/// always fits a Kafka STRING with its suffix.
const MEMBER_ID_PREFIX_MAX_BYTES: usize = 1024;

/// Refuses a join whose strings could not be stored in a group record.
pub(crate) fn check_join_fields(req: &JoinRequest) -> Result<(), GroupError> {
    let strings = [
        req.group_id.as_str(),
        req.member_id.as_str(),
        req.group_instance_id.as_deref().unwrap_or_default(),
        req.client_id.as_str(),
        req.client_host.as_str(),
        req.protocol_type.as_str(),
    ];
    let names = req.protocols.iter().map(|(name, _)| name.as_str());
    if strings
        .into_iter()
        .chain(names)
        .any(|s| s.len() > MAX_STRING_BYTES)
        || req
            .protocols
            .iter()
            .any(|(_, metadata)| i32::try_from(metadata.len()).is_err())
    {
        return Err(GroupError::InvalidRequest);
    }
    Ok(())
}

/// `splitmix64`, a bijection on u64 with good mixing.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Ctx<'_> {
    /// A member id in Kafka's shape, `{client or instance id}-{uuid}`. The low 64 bits of the
    /// "uuid" are a bijection of a sequence number, so ids never repeat within a coordinator;
    /// the seed keeps them apart across restarts.
    fn generate_member_id(&mut self, prefix: &str) -> String {
        *self.member_seq = self.member_seq.wrapping_add(1);
        let seed = self.config.member_id_seed;
        let low = mix(seed.wrapping_add(*self.member_seq));
        let high = mix(low ^ seed.rotate_left(32));
        let mut cut = prefix.len().min(MEMBER_ID_PREFIX_MAX_BYTES);
        while !prefix.is_char_boundary(cut) {
            cut -= 1;
        }
        format!(
            "{}-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            &prefix[..cut],
            high >> 32,
            (high >> 16) & 0xffff,
            high & 0xffff,
            low >> 48,
            low & 0xffff_ffff_ffff
        )
    }
}

pub(crate) fn answer_join(ctx: &mut Ctx<'_>, token: Token, response: JoinResponse) {
    ctx.outputs.push(Output::Join { token, response });
}

pub(crate) fn answer_sync(ctx: &mut Ctx<'_>, token: Token, response: SyncResponse) {
    ctx.outputs.push(Output::Sync { token, response });
}

impl Group {
    /// Kafka's `validateCurrentMember`: the instance id, if given, must map to this member id;
    /// the member id must be a member.
    pub(crate) fn validate_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), GroupError> {
        if let Some(instance) = instance_id {
            match self.static_members.get(instance) {
                Some(current) if current != member_id => return Err(GroupError::FencedInstanceId),
                Some(_) => {}
                None => return Err(GroupError::UnknownMemberId),
            }
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(GroupError::UnknownMemberId)
        }
    }

    /// Restarts a member's session timer.
    pub(crate) fn touch(&mut self, ctx: &Ctx<'_>, member_id: &str) {
        if let Some(m) = self.members.get_mut(member_id) {
            m.deadline_ms = ctx.after(i64::from(m.session_timeout_ms));
        }
    }

    /// The answer for the current generation to a member that joined without a rebalance.
    fn current_generation(&self, member_id: &str, members: bool, leader: String) -> JoinResponse {
        JoinResponse {
            error: None,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader,
            skip_assignment: false,
            member_id: member_id.to_owned(),
            members: if members {
                self.member_list()
            } else {
                Vec::new()
            },
        }
    }

    /// Kafka's `acceptJoiningMember`: group.max.size counts waiting joiners while preparing
    /// a rebalance (members that do not rejoin will be dropped), members otherwise.
    fn accepts(&self, member_id: &str, max_size: usize) -> bool {
        match self.state {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                self.members
                    .get(member_id)
                    .is_some_and(|m| m.join_token.is_some())
                    || self.awaiting_join_count() < max_size
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.members.contains_key(member_id) || self.members.len() < max_size
            }
        }
    }

    /// A JoinGroup (Kafka's `handleJoinGroup` once the group exists). The group id and
    /// session timeout were checked by the caller.
    pub(crate) fn join(&mut self, ctx: &mut Ctx<'_>, token: Token, req: JoinRequest) {
        let max_size = usize::try_from(ctx.config.group_max_size.max(0)).unwrap_or(usize::MAX);
        // A static member rejoining under a new member id takes its own place: it does not
        // grow the group (Kafka counts it as a new member and can refuse it in a full group).
        let known_static = req
            .group_instance_id
            .as_ref()
            .filter(|_| req.member_id.is_empty())
            .and_then(|instance| self.static_members.get(instance));
        let effective_id = known_static.unwrap_or(&req.member_id);
        if !self.accepts(effective_id, max_size) {
            // Kafka also drops the refused member: in a rebalance, the last ones to rejoin
            // are the ones left out.
            self.pending_members.remove(&req.member_id);
            if self.members.contains_key(&req.member_id) {
                self.remove_member(ctx, &req.member_id, GroupError::GroupMaxSizeReached);
            }
            answer_join(
                ctx,
                token,
                JoinResponse::error("", GroupError::GroupMaxSizeReached),
            );
        } else if req.member_id.is_empty() {
            self.join_new_member(ctx, token, req);
        } else {
            self.join_current_member(ctx, token, req);
        }
        if self.state == GroupState::PreparingRebalance {
            self.maybe_complete_join(ctx);
        }
    }

    fn join_new_member(&mut self, ctx: &mut Ctx<'_>, token: Token, req: JoinRequest) {
        if !self.supports_protocols(&req.protocol_type, &req.protocols) {
            answer_join(
                ctx,
                token,
                JoinResponse::error("", GroupError::InconsistentGroupProtocol),
            );
            return;
        }
        let prefix = req.group_instance_id.as_deref().unwrap_or(&req.client_id);
        let mut new_id = ctx.generate_member_id(prefix);
        // Ids are unique by construction within a coordinator, but a group loaded from the log
        // may hold ids of an earlier run with the same seed.
        while self.members.contains_key(&new_id) || self.pending_members.contains_key(&new_id) {
            new_id = ctx.generate_member_id(prefix);
        }
        match req.group_instance_id.clone() {
            Some(instance) => match self.static_members.get(&instance).cloned() {
                Some(old_id) => self.replace_static_member(ctx, token, &old_id, new_id, req),
                None => self.add_member(ctx, token, new_id, req),
            },
            None if req.require_known_member_id => {
                // KIP-394: hand out the id and wait for the member to come back with it; the
                // join phase waits for it too, until its session timeout.
                let expiry = ctx.after(i64::from(req.session_timeout_ms));
                self.pending_members.insert(new_id.clone(), expiry);
                answer_join(
                    ctx,
                    token,
                    JoinResponse::error(new_id, GroupError::MemberIdRequired),
                );
            }
            None => self.add_member(ctx, token, new_id, req),
        }
    }

    fn join_current_member(&mut self, ctx: &mut Ctx<'_>, token: Token, req: JoinRequest) {
        let member_id = req.member_id.clone();
        if !self.supports_protocols(&req.protocol_type, &req.protocols) {
            let error = GroupError::InconsistentGroupProtocol;
            answer_join(ctx, token, JoinResponse::error(member_id, error));
            return;
        }
        if self.pending_members.contains_key(&member_id) {
            // A pending id is only ever handed to a dynamic member (Kafka throws here).
            if req.group_instance_id.is_some() {
                answer_join(
                    ctx,
                    token,
                    JoinResponse::error(member_id, GroupError::UnknownMemberId),
                );
            } else {
                self.add_member(ctx, token, member_id, req);
            }
            return;
        }
        if let Err(error) = self.validate_member(&member_id, req.group_instance_id.as_deref()) {
            answer_join(ctx, token, JoinResponse::error(member_id, error));
            return;
        }
        let unchanged = self
            .members
            .get(&member_id)
            .is_some_and(|m| m.matches(&req.protocols));
        match self.state {
            GroupState::PreparingRebalance => self.update_member(ctx, token, req),
            GroupState::CompletingRebalance if unchanged => {
                // The member lost its JoinGroup answer: send it again.
                self.touch(ctx, &member_id);
                let is_leader = self.is_leader(&member_id);
                let leader = self.leader.clone().unwrap_or_default();
                let response = self.current_generation(&member_id, is_leader, leader);
                answer_join(ctx, token, response);
            }
            GroupState::Stable if unchanged && !self.is_leader(&member_id) => {
                // A follower with nothing new: no rebalance. (The leader's join forces one,
                // so it can react to metadata changes the coordinator cannot see.)
                self.touch(ctx, &member_id);
                let leader = self.leader.clone().unwrap_or_default();
                let response = self.current_generation(&member_id, false, leader);
                answer_join(ctx, token, response);
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member(ctx, token, req)
            }
            GroupState::Empty | GroupState::Dead => answer_join(
                ctx,
                token,
                JoinResponse::error(member_id, GroupError::UnknownMemberId),
            ),
        }
    }

    /// Kafka's `addMemberAndRebalance`.
    fn add_member(&mut self, ctx: &mut Ctx<'_>, token: Token, id: String, req: JoinRequest) {
        if self.state == GroupState::PreparingRebalance && self.generation == 0 {
            self.new_member_added = true;
        }
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(id.clone());
        }
        if let Some(instance) = &req.group_instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        self.pending_members.remove(&id);
        let member = Member {
            id: id.clone(),
            instance_id: req.group_instance_id,
            client_id: req.client_id,
            client_host: req.client_host,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            session_timeout_ms: req.session_timeout_ms,
            protocols: req.protocols,
            assignment: Bytes::new(),
            join_token: Some(token),
            sync_token: None,
            is_new: true,
            // A new member cannot heartbeat before its first answer; bound its wait instead.
            deadline_ms: ctx.after(i64::from(ctx.config.new_member_join_timeout_ms)),
        };
        self.members.insert(id, member);
        self.maybe_prepare_rebalance(ctx);
    }

    /// Kafka's `updateMemberAndRebalance`: new protocols and timeouts, and a join that waits.
    fn update_member(&mut self, ctx: &mut Ctx<'_>, token: Token, req: JoinRequest) {
        let Some(member) = self.members.get_mut(&req.member_id) else {
            return;
        };
        member.protocols = req.protocols;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.session_timeout_ms = req.session_timeout_ms;
        // A member only has one join in flight; an older one was abandoned by the client
        // (Kafka drops it unanswered). Answering it with a retriable error keeps the rule
        // that every token gets one answer.
        if let Some(old) = member.join_token.replace(token) {
            let error = GroupError::RebalanceInProgress;
            answer_join(ctx, old, JoinResponse::error(req.member_id.clone(), error));
        }
        self.maybe_prepare_rebalance(ctx);
    }

    /// KIP-345: a static member rejoined with an unknown member id; the new id takes the old
    /// one's place (Kafka's `updateStaticMemberAndRebalance`), fencing the old id.
    fn replace_static_member(
        &mut self,
        ctx: &mut Ctx<'_>,
        token: Token,
        old_id: &str,
        new_id: String,
        req: JoinRequest,
    ) {
        let Some(mut member) = self.members.remove(old_id) else {
            return;
        };
        let old_leader = self.leader.clone().unwrap_or_default();
        if let Some(old) = member.join_token.take() {
            let response = JoinResponse::error(old_id, GroupError::FencedInstanceId);
            answer_join(ctx, old, response);
        }
        if let Some(old) = member.sync_token.take() {
            answer_sync(ctx, old, SyncResponse::error(GroupError::FencedInstanceId));
        }
        if self.is_leader(old_id) {
            self.leader = Some(new_id.clone());
        }
        // Kafka leaves the old id in the pending-sync set, which then expires a member that
        // is no longer there and forces a rebalance; the new id inherits the duty instead.
        if self.pending_sync.remove(old_id) {
            self.pending_sync.insert(new_id.clone());
        }
        if let Some(instance) = &member.instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        member.id = new_id.clone();
        member.protocols = req.protocols;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.session_timeout_ms = req.session_timeout_ms;
        member.join_token = Some(token);
        member.deadline_ms = ctx.after(i64::from(req.session_timeout_ms));
        self.members.insert(new_id.clone(), member);

        match self.state {
            GroupState::Stable => {
                if self.select_protocol() != self.protocol_name {
                    // The group's protocol would change: the assignment must be redone.
                    self.maybe_prepare_rebalance(ctx);
                    return;
                }
                // Same protocol: the member keeps its assignment, no rebalance. Persist the new
                // member id before answering.
                self.subscribed_topics = self.compute_subscribed_topics();
                self.store(ctx);
                let is_leader = self.is_leader(&new_id);
                let response = if req.supports_skip_assignment {
                    // JoinGroup v9+: a leader is told so, but must not run the assignor.
                    let leader = self.leader.clone().unwrap_or_default();
                    JoinResponse {
                        skip_assignment: is_leader,
                        ..self.current_generation(&new_id, is_leader, leader)
                    }
                } else {
                    // Older clients: name the old leader id, so a replaced leader acts as a
                    // follower and fetches its stored assignment.
                    self.current_generation(&new_id, false, old_leader)
                };
                if let Some(member) = self.members.get_mut(&new_id) {
                    member.join_token = None;
                }
                answer_join(ctx, token, response);
            }
            // The leader may be assigning to the old id: start over.
            GroupState::CompletingRebalance => self.prepare_rebalance(ctx),
            // The member now waits in the join phase like the others.
            GroupState::PreparingRebalance => {}
            GroupState::Empty | GroupState::Dead => {
                debug_assert!(
                    false,
                    "group {}: a static member in an empty group",
                    self.id
                );
                self.maybe_prepare_rebalance(ctx);
            }
        }
    }

    /// Removes a member, answering whatever it waits on with `error`; the leader passes to the
    /// first remaining member (Kafka's `GroupMetadata.remove`).
    pub(crate) fn remove_member(&mut self, ctx: &mut Ctx<'_>, member_id: &str, error: GroupError) {
        let Some(member) = self.members.remove(member_id) else {
            return;
        };
        if let Some(token) = member.join_token {
            // Kafka answers a removed joiner with an empty member id, so it starts over.
            answer_join(ctx, token, JoinResponse::error("", error));
        }
        if let Some(token) = member.sync_token {
            answer_sync(ctx, token, SyncResponse::error(error));
        }
        if let Some(instance) = &member.instance_id {
            self.static_members.remove(instance);
        }
        if self.is_leader(member_id) {
            self.leader = self.members.keys().next().cloned();
        }
        self.pending_sync.remove(member_id);
        if self.pending_sync.is_empty() {
            self.sync_deadline_ms = None;
        }
    }

    /// Kafka's `removeMemberAndUpdateGroup`: remove, then rebalance or finish the join phase.
    pub(crate) fn remove_member_and_rebalance(&mut self, ctx: &mut Ctx<'_>, member_id: &str) {
        self.remove_member(ctx, member_id, GroupError::UnknownMemberId);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance(ctx)
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(ctx),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// A SyncGroup (Kafka's `doSyncGroup`).
    pub(crate) fn sync(&mut self, ctx: &mut Ctx<'_>, token: Token, req: SyncRequest) {
        if let Err(error) = self.validate_sync(&req) {
            answer_sync(ctx, token, SyncResponse::error(error));
            return;
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => {
                answer_sync(ctx, token, SyncResponse::error(GroupError::UnknownMemberId))
            }
            GroupState::PreparingRebalance => answer_sync(
                ctx,
                token,
                SyncResponse::error(GroupError::RebalanceInProgress),
            ),
            GroupState::CompletingRebalance => {
                if let Some(member) = self.members.get_mut(&req.member_id) {
                    if let Some(old) = member.sync_token.replace(token) {
                        // As with joins: a member has one sync in flight; answer the older.
                        answer_sync(
                            ctx,
                            old,
                            SyncResponse::error(GroupError::RebalanceInProgress),
                        );
                    }
                }
                self.synced(&req.member_id);
                if self.is_leader(&req.member_id) {
                    self.complete_sync(ctx, req.assignments);
                }
            }
            GroupState::Stable => {
                self.synced(&req.member_id);
                self.touch(ctx, &req.member_id);
                let assignment = self
                    .members
                    .get(&req.member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                answer_sync(ctx, token, self.sync_success(assignment));
            }
        }
    }

    fn validate_sync(&self, req: &SyncRequest) -> Result<(), GroupError> {
        self.validate_member(&req.member_id, req.group_instance_id.as_deref())?;
        if req.generation_id != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        let mismatch = |asked: &Option<String>, ours: &Option<String>| {
            asked.is_some() && asked.as_deref() != ours.as_deref()
        };
        if mismatch(&req.protocol_type, &self.protocol_type)
            || mismatch(&req.protocol_name, &self.protocol_name)
        {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        Ok(())
    }

    pub(crate) fn sync_success(&self, assignment: Bytes) -> SyncResponse {
        SyncResponse {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment,
        }
    }

    /// The member sent its SyncGroup for this generation.
    fn synced(&mut self, member_id: &str) {
        self.pending_sync.remove(member_id);
        if self.pending_sync.is_empty() {
            self.sync_deadline_ms = None;
        }
    }

    /// A Heartbeat (Kafka's `handleHeartbeat`): refreshes the session of a valid member.
    pub(crate) fn heartbeat(
        &mut self,
        ctx: &mut Ctx<'_>,
        req: &HeartbeatRequest,
    ) -> Result<(), GroupError> {
        self.validate_member(&req.member_id, req.group_instance_id.as_deref())?;
        if req.generation_id != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => Err(GroupError::UnknownMemberId),
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.touch(ctx, &req.member_id);
                Ok(())
            }
            GroupState::PreparingRebalance => {
                // The member is alive; the error tells it to rejoin.
                self.touch(ctx, &req.member_id);
                Err(GroupError::RebalanceInProgress)
            }
        }
    }

    /// One member of a LeaveGroup (Kafka's `handleLeaveGroup`).
    pub(crate) fn leave(
        &mut self,
        ctx: &mut Ctx<'_>,
        leaving: &LeavingMember,
    ) -> Result<(), GroupError> {
        let instance = leaving.group_instance_id.as_deref();
        if leaving.member_id.is_empty() {
            // An administrator removing a static member by its instance id.
            let id = instance
                .and_then(|i| self.static_members.get(i))
                .cloned()
                .ok_or(GroupError::UnknownMemberId)?;
            self.remove_member_and_rebalance(ctx, &id);
        } else if self.pending_members.remove(&leaving.member_id).is_some() {
            if self.state == GroupState::PreparingRebalance {
                self.maybe_complete_join(ctx);
            }
        } else {
            self.validate_member(&leaving.member_id, instance)?;
            self.remove_member_and_rebalance(ctx, &leaving.member_id);
        }
        Ok(())
    }

    /// A member expired: its session, or a new member's wait for its first answer.
    pub(crate) fn expire_member(&mut self, ctx: &mut Ctx<'_>, member_id: &str) {
        self.remove_member_and_rebalance(ctx, member_id);
    }

    /// A KIP-394 member id that was never used expired.
    pub(crate) fn expire_pending_member(&mut self, ctx: &mut Ctx<'_>, member_id: &str) {
        self.pending_members.remove(member_id);
        if self.state == GroupState::PreparingRebalance {
            self.maybe_complete_join(ctx);
        }
    }

    /// Answers every waiting request with `error` (the group is going away).
    pub(crate) fn fail_all_waiting(&mut self, outputs: &mut Vec<Output>, error: GroupError) {
        for member in self.members.values_mut() {
            if let Some(token) = member.join_token.take() {
                outputs.push(Output::Join {
                    token,
                    response: JoinResponse::error(member.id.clone(), error),
                });
            }
            if let Some(token) = member.sync_token.take() {
                outputs.push(Output::Sync {
                    token,
                    response: SyncResponse::error(error),
                });
            }
        }
    }
}
