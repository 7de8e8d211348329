//! [`Coordinator`]: the door of the crate. It owns every group, routes each request to its
//! group, keeps the index of the groups' deadlines, and queues the outputs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::config::CoordinatorConfig;
use crate::error::GroupError;
use crate::group::{Ctx, Group};
use crate::membership::check_join_fields;
use crate::messages::{
    GroupDescription, GroupListing, GroupState, HeartbeatRequest, JoinRequest, JoinResponse,
    LeavingMember, MemberDescription, Now, Output, SyncRequest, SyncResponse, Token,
};

/// A sans-I/O Kafka classic group coordinator for the groups of one broker.
///
/// It reads no clock and does no I/O: the caller passes [`Now`] in, calls
/// [`tick`](Coordinator::tick) at [`next_deadline`](Coordinator::next_deadline), drains
/// [`take_outputs`](Coordinator::take_outputs) after every call (answers to deferred requests,
/// records to write), and [`replay`](Coordinator::replay)s `__consumer_offsets` on startup.
#[derive(Debug)]
pub struct Coordinator {
    pub(crate) config: CoordinatorConfig,
    pub(crate) groups: BTreeMap<String, Group>,
    pub(crate) outputs: Vec<Output>,
    /// Each group's earliest deadline, ordered, so `tick` and `next_deadline` touch only the
    /// groups that are due.
    timers: BTreeSet<(u64, String)>,
    timer_of: HashMap<String, u64>,
    member_seq: u64,
}

impl Coordinator {
    /// A coordinator with no groups.
    pub fn new(config: CoordinatorConfig) -> Self {
        Coordinator {
            config,
            groups: BTreeMap::new(),
            outputs: Vec::new(),
            timers: BTreeSet::new(),
            timer_of: HashMap::new(),
            member_seq: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    /// Runs `f` on an existing group, then settles it (see [`Coordinator::settle`]).
    pub(crate) fn with_group<R>(
        &mut self,
        now: Now,
        group_id: &str,
        f: impl FnOnce(&mut Group, &mut Ctx<'_>) -> R,
    ) -> Option<R> {
        let group = self.groups.get_mut(group_id)?;
        let mut ctx = Ctx {
            config: &self.config,
            outputs: &mut self.outputs,
            now,
            member_seq: &mut self.member_seq,
        };
        let result = f(group, &mut ctx);
        self.settle(group_id);
        Some(result)
    }

    /// After a change to a group: drop it if it holds nothing, re-index its deadline, and (in
    /// debug builds) check its invariants.
    pub(crate) fn settle(&mut self, group_id: &str) {
        if self.groups.get(group_id).is_some_and(Group::is_vacant) {
            self.groups.remove(group_id);
        }
        if let Some(old) = self.timer_of.remove(group_id) {
            self.timers.remove(&(old, group_id.to_owned()));
        }
        if let Some(group) = self.groups.get(group_id) {
            if cfg!(debug_assertions) {
                group.check_invariants();
            }
            if let Some(deadline) = group.next_deadline() {
                self.timers.insert((deadline, group_id.to_owned()));
                self.timer_of.insert(group_id.to_owned(), deadline);
            }
        }
    }

    fn answer_join(&mut self, token: Token, member_id: String, error: GroupError) {
        self.outputs.push(Output::Join {
            token,
            response: JoinResponse::error(member_id, error),
        });
    }

    /// A JoinGroup. The answer comes as an [`Output::Join`] with `token`: at once (errors,
    /// KIP-394's MEMBER_ID_REQUIRED, a member of a stable group with nothing new) or when the
    /// join phase completes.
    pub fn join(&mut self, now: Now, token: Token, request: JoinRequest) {
        if request.group_id.is_empty() {
            return self.answer_join(token, request.member_id, GroupError::InvalidGroupId);
        }
        if check_join_fields(&request).is_err() {
            return self.answer_join(token, request.member_id, GroupError::InvalidRequest);
        }
        let session = request.session_timeout_ms;
        if session < self.config.group_min_session_timeout_ms
            || session > self.config.group_max_session_timeout_ms
        {
            return self.answer_join(token, request.member_id, GroupError::InvalidSessionTimeout);
        }
        if !self.groups.contains_key(&request.group_id) {
            // Only a member's first join creates a group; a member id for a group that does
            // not exist is stale.
            if !request.member_id.is_empty() {
                return self.answer_join(token, request.member_id, GroupError::UnknownMemberId);
            }
            let id = request.group_id.clone();
            self.groups.insert(id.clone(), Group::new(id, now.wall_ms));
        }
        let group_id = request.group_id.clone();
        self.with_group(now, &group_id, |group, ctx| group.join(ctx, token, request));
    }

    /// A SyncGroup. The answer comes as an [`Output::Sync`] with `token`: at once, or for
    /// followers when the leader's assignment arrives.
    pub fn sync(&mut self, now: Now, token: Token, request: SyncRequest) {
        let error = if request.group_id.is_empty() {
            GroupError::InvalidGroupId
        } else if self.groups.contains_key(&request.group_id) {
            let group_id = request.group_id.clone();
            self.with_group(now, &group_id, |group, ctx| group.sync(ctx, token, request));
            return;
        } else {
            GroupError::UnknownMemberId
        };
        self.outputs.push(Output::Sync {
            token,
            response: SyncResponse::error(error),
        });
    }

    /// A Heartbeat: `Ok` keeps the member's session alive; errors tell it to rejoin
    /// (REBALANCE_IN_PROGRESS, which still counts as a heartbeat) or start over.
    pub fn heartbeat(&mut self, now: Now, request: &HeartbeatRequest) -> Result<(), GroupError> {
        if request.group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        self.with_group(now, &request.group_id, |group, ctx| {
            group.heartbeat(ctx, request)
        })
        .unwrap_or(Err(GroupError::UnknownMemberId))
    }

    /// A LeaveGroup: removes each member (by member id, or a static member by instance id
    /// when the member id is empty) and rebalances. One result per member, in order; the
    /// outer error is the request's.
    pub fn leave(
        &mut self,
        now: Now,
        group_id: &str,
        members: &[LeavingMember],
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let results = self.with_group(now, group_id, |group, ctx| {
            members.iter().map(|m| group.leave(ctx, m)).collect()
        });
        Ok(results.unwrap_or_else(|| vec![Err(GroupError::UnknownMemberId); members.len()]))
    }

    /// Fires every timer due at `now`: session expiries, the end of join phases, sync
    /// timeouts, unused member ids.
    pub fn tick(&mut self, now: Now) {
        let due: Vec<String> = self
            .timers
            .iter()
            .take_while(|(deadline, _)| *deadline <= now.mono_ms)
            .map(|(_, id)| id.clone())
            .collect();
        for group_id in due {
            self.with_group(now, &group_id, |group, ctx| group.fire_due(ctx));
        }
    }

    /// The earliest monotonic time at which [`tick`](Coordinator::tick) has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        self.timers.first().map(|(deadline, _)| *deadline)
    }

    /// Drains the queued outputs, oldest first.
    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    /// ListGroups: the groups whose state is in `states` (all when empty), by group id.
    pub fn list_groups(&self, states: &[GroupState]) -> Vec<GroupListing> {
        self.groups
            .values()
            .filter(|g| states.is_empty() || states.contains(&g.state))
            .map(|g| GroupListing {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state,
            })
            .collect()
    }

    /// DescribeGroups for one group; `None` for an unknown group (Kafka answers it with state
    /// "Dead" and no members). Like Kafka, member metadata and assignments are shown only
    /// while the group is Stable.
    pub fn describe_group(&self, group_id: &str) -> Option<GroupDescription> {
        let group = self.groups.get(group_id)?;
        let stable = group.state == GroupState::Stable;
        let protocol = group.protocol_name.clone().filter(|_| stable);
        let protocol_name = protocol.clone();
        let members = group
            .members
            .values()
            .map(|m| MemberDescription {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: protocol
                    .as_deref()
                    .and_then(|p| m.metadata(p).cloned())
                    .unwrap_or_default(),
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Default::default()
                },
            })
            .collect();
        Some(GroupDescription {
            group_id: group.id.clone(),
            state: group.state,
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol_name,
            generation_id: group.generation,
            leader: group.leader.clone(),
            members,
        })
    }

    /// DeleteGroups, first step: whether the group may be deleted: it exists
    /// (GROUP_ID_NOT_FOUND) and is Empty (NON_EMPTY_GROUP). The broker then tombstones every
    /// offset ([`committed_offsets`](Coordinator::committed_offsets)) and the group record,
    /// and calls [`apply_delete_group`](Coordinator::apply_delete_group).
    pub fn validate_delete_group(&self, group_id: &str) -> Result<(), GroupError> {
        let group = self
            .groups
            .get(group_id)
            .ok_or(GroupError::GroupIdNotFound)?;
        if group.state != GroupState::Empty {
            return Err(GroupError::NonEmptyGroup);
        }
        Ok(())
    }

    /// Forgets every group whose id `unload` selects, as Kafka does when this broker stops
    /// leading the groups' offsets partition: their waiting requests are answered
    /// NOT_COORDINATOR (the client finds the new coordinator and rejoins there) and nothing
    /// is written. Returns how many groups went.
    pub fn unload(&mut self, unload: impl Fn(&str) -> bool) -> usize {
        let ids: Vec<String> = self
            .groups
            .keys()
            .filter(|id| unload(id))
            .cloned()
            .collect();
        for id in &ids {
            if let Some(mut group) = self.groups.remove(id) {
                group.fail_all_waiting(&mut self.outputs, GroupError::NotCoordinator);
            }
            self.settle(id);
        }
        ids.len()
    }

    /// DeleteGroups, last step: removes the group and its offsets. Should a member have joined
    /// since the validation, its waiting requests are answered COORDINATOR_NOT_AVAILABLE
    /// (Kafka's answer for a group that just died), so the client looks the coordinator up
    /// again and rejoins.
    pub fn apply_delete_group(&mut self, group_id: &str) {
        if let Some(mut group) = self.groups.remove(group_id) {
            group.fail_all_waiting(&mut self.outputs, GroupError::CoordinatorNotAvailable);
        }
        self.settle(group_id);
    }
}
