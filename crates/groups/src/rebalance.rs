//! The two phases of a rebalance and their timers (Kafka's `prepareRebalance`,
//! `DelayedJoin`/`InitialDelayedJoin`, `onCompleteJoin`, `DelayedSync`).
//!
//! ```text
//!            first join                 all rejoined / rebalance timeout
//!   Empty ─────────────► Preparing ──────────────────────────────────► Completing
//!     ▲   (initial delay) Rebalance ◄──┐                                Rebalance
//!     │                      │         │ join by leader / new member,      │ leader's
//!     └──────────────────────┘         │ member gone, sync timeout         │ SyncGroup
//!        nobody left at completion     └──────────── Stable ◄──────────────┘
//! ```
//!
//! Timers are deadlines on the caller's monotonic clock; `Coordinator::tick` fires them.

use bytes::Bytes;

use crate::error::GroupError;
use crate::group::{Ctx, Event, Group, JoinTimer};
use crate::membership::{answer_join, answer_sync};
use crate::messages::{GroupState, JoinResponse, SyncResponse};

/// Shortest timer, so a timeout of 0 (a client may send one) fires on a later tick instead of
/// spinning in the current one.
const MIN_TIMER_MS: i64 = 1;

impl Group {
    /// Starts a rebalance if the state allows one (Kafka's `maybePrepareRebalance`).
    pub(crate) fn maybe_prepare_rebalance(&mut self, ctx: &mut Ctx<'_>) {
        if matches!(
            self.state,
            GroupState::Empty | GroupState::Stable | GroupState::CompletingRebalance
        ) {
            self.prepare_rebalance(ctx);
        }
    }

    /// Enters PreparingRebalance (Kafka's `prepareRebalance`).
    pub(crate) fn prepare_rebalance(&mut self, ctx: &mut Ctx<'_>) {
        if self.state == GroupState::CompletingRebalance {
            // The assignment being made is void: members waiting for it must rejoin.
            for member in self.members.values_mut() {
                member.assignment = Bytes::new();
                if let Some(token) = member.sync_token.take() {
                    answer_sync(
                        ctx,
                        token,
                        SyncResponse::error(GroupError::RebalanceInProgress),
                    );
                    member.deadline_ms = ctx.after(i64::from(member.session_timeout_ms));
                }
            }
        }
        self.pending_sync.clear();
        self.sync_deadline_ms = None;
        let rebalance_timeout = self.rebalance_timeout_ms();
        self.join_timer = Some(if self.state == GroupState::Empty {
            // The first members of a group usually start together: wait a little for the
            // others rather than rebalance once per arrival.
            let delay = i64::from(ctx.config.group_initial_rebalance_delay_ms).max(MIN_TIMER_MS);
            self.new_member_added = false;
            JoinTimer::Initial {
                deadline_ms: ctx.after(delay),
                delay_ms: u64::try_from(delay).unwrap_or(0),
                remaining_ms: u64::try_from((rebalance_timeout - delay).max(0)).unwrap_or(0),
            }
        } else {
            JoinTimer::Normal {
                deadline_ms: ctx.after(rebalance_timeout.max(MIN_TIMER_MS)),
            }
        });
        self.transition(GroupState::PreparingRebalance, ctx.now);
        self.maybe_complete_join(ctx);
    }

    /// Completes the join phase early when every member (and every member id handed out) has
    /// joined; the initial delay always runs its course.
    pub(crate) fn maybe_complete_join(&mut self, ctx: &mut Ctx<'_>) {
        if self.state == GroupState::PreparingRebalance
            && matches!(self.join_timer, Some(JoinTimer::Normal { .. }))
            && self.all_members_joined()
        {
            self.complete_join(ctx);
        }
    }

    /// The join timer fired.
    fn on_join_timer(&mut self, ctx: &mut Ctx<'_>) {
        match self.join_timer {
            Some(JoinTimer::Initial {
                deadline_ms,
                delay_ms,
                remaining_ms,
            }) if self.new_member_added && remaining_ms > 0 => {
                // Members are still arriving: wait once more, within the rebalance timeout.
                // Counted from the deadline rather than from this (possibly late) tick, so the
                // whole wait never exceeds the rebalance timeout.
                self.new_member_added = false;
                let configured =
                    u64::try_from(ctx.config.group_initial_rebalance_delay_ms.max(1)).unwrap_or(1);
                let delay = configured.min(remaining_ms);
                self.join_timer = Some(JoinTimer::Initial {
                    deadline_ms: deadline_ms.saturating_add(delay),
                    delay_ms: delay,
                    remaining_ms: remaining_ms.saturating_sub(delay_ms),
                });
            }
            _ => self.complete_join(ctx),
        }
    }

    /// Ends the join phase (Kafka's `onCompleteJoin`): dynamic members that did not rejoin
    /// are dropped (static ones keep their place until their session expires), the next
    /// generation starts and every joiner is answered, the leader with the member list.
    pub(crate) fn complete_join(&mut self, ctx: &mut Ctx<'_>) {
        self.join_timer = None;
        let absent: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_token.is_none() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in &absent {
            self.remove_member(ctx, id, GroupError::UnknownMemberId);
        }
        if !self.members.is_empty() && !self.elect_joined_leader() {
            // Only static members that have not rejoined are left: wait for them (or for
            // their sessions to expire) one more rebalance timeout.
            self.join_timer = Some(JoinTimer::Normal {
                deadline_ms: ctx.after(self.rebalance_timeout_ms().max(MIN_TIMER_MS)),
            });
            return;
        }

        self.generation = self.generation.wrapping_add(1);
        self.pending_sync.clear();
        self.sync_deadline_ms = None;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.subscribed_topics = self.compute_subscribed_topics();
            self.transition(GroupState::Empty, ctx.now);
            self.store(ctx);
            return;
        }
        self.protocol_name = self.select_protocol();
        debug_assert!(
            self.protocol_name.is_some(),
            "group {}: joins are refused unless a protocol is common to all members",
            self.id
        );
        if self.protocol_name.is_none() {
            // Unreachable; keep the group usable anyway with the leader's favourite.
            self.protocol_name = self
                .leader
                .as_ref()
                .and_then(|l| self.members.get(l))
                .and_then(|m| m.protocols.first())
                .map(|(name, _)| name.clone());
        }
        self.subscribed_topics = self.compute_subscribed_topics();
        self.transition(GroupState::CompletingRebalance, ctx.now);

        let leader = self.leader.clone().unwrap_or_default();
        let leader_members = self.member_list();
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let Some(member) = self.members.get_mut(&id) else {
                continue;
            };
            if let Some(token) = member.join_token.take() {
                let response = JoinResponse {
                    error: None,
                    generation_id: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    leader: leader.clone(),
                    skip_assignment: false,
                    member_id: id.clone(),
                    members: if id == leader {
                        leader_members.clone()
                    } else {
                        Vec::new()
                    },
                };
                answer_join(ctx, token, response);
            }
            member.deadline_ms = ctx.after(i64::from(member.session_timeout_ms));
            member.is_new = false;
            self.pending_sync.insert(id);
        }
        // Every member must sync within the rebalance timeout, or it is removed and the group
        // rebalances without it (Kafka's `DelayedSync`, KAFKA-12890: a leader that never syncs
        // must not leave the group stuck in CompletingRebalance).
        self.sync_deadline_ms = Some(ctx.after(self.rebalance_timeout_ms().max(MIN_TIMER_MS)));
    }

    /// Keeps the leader if it rejoined, else picks the first member that did (Kafka's
    /// `maybeElectNewJoinedLeader`); false if nobody rejoined.
    fn elect_joined_leader(&mut self) -> bool {
        let Some(leader) = &self.leader else {
            return false;
        };
        if self
            .members
            .get(leader)
            .is_some_and(|m| m.join_token.is_some())
        {
            return true;
        }
        match self.members.values().find(|m| m.join_token.is_some()) {
            Some(joined) => {
                self.leader = Some(joined.id.clone());
                true
            }
            None => false,
        }
    }

    /// The leader's SyncGroup: store the assignment (members it left out get an empty one),
    /// become Stable, and answer every member waiting for it.
    pub(crate) fn complete_sync(&mut self, ctx: &mut Ctx<'_>, assignments: Vec<(String, Bytes)>) {
        for member in self.members.values_mut() {
            member.assignment = Bytes::new();
        }
        for (id, assignment) in assignments {
            if let Some(member) = self.members.get_mut(&id) {
                member.assignment = assignment;
            }
        }
        self.transition(GroupState::Stable, ctx.now);
        self.store(ctx);
        let waiting: Vec<(u64, Bytes)> = self
            .members
            .values_mut()
            .filter_map(|m| {
                let token = m.sync_token.take()?;
                m.deadline_ms = ctx.after(i64::from(m.session_timeout_ms));
                Some((token, m.assignment.clone()))
            })
            .collect();
        for (token, assignment) in waiting {
            answer_sync(ctx, token, self.sync_success(assignment));
        }
    }

    /// The sync timer fired: members of this generation that never synced are removed and the
    /// group rebalances (Kafka's `onExpirePendingSync`).
    fn on_sync_timer(&mut self, ctx: &mut Ctx<'_>) {
        self.sync_deadline_ms = None;
        if !matches!(
            self.state,
            GroupState::CompletingRebalance | GroupState::Stable
        ) || self.pending_sync.is_empty()
        {
            self.pending_sync.clear();
            return;
        }
        let laggards: Vec<String> = std::mem::take(&mut self.pending_sync).into_iter().collect();
        for id in &laggards {
            self.remove_member(ctx, id, GroupError::UnknownMemberId);
        }
        self.prepare_rebalance(ctx);
    }

    /// Fires everything due at `ctx.now`, earliest first. Each event removes something or
    /// moves a timer past `now`, so this ends; the bound only guards that argument.
    pub(crate) fn fire_due(&mut self, ctx: &mut Ctx<'_>) {
        let bound = 4 * (self.members.len() + self.pending_members.len()) + 8;
        for _ in 0..bound {
            match self.next_event() {
                Some((at, event)) if at <= ctx.now.mono_ms => match event {
                    Event::JoinTimer => self.on_join_timer(ctx),
                    Event::SyncTimer => self.on_sync_timer(ctx),
                    Event::PendingMemberExpired(id) => self.expire_pending_member(ctx, &id),
                    Event::MemberExpired(id) => self.expire_member(ctx, &id),
                },
                _ => return,
            }
        }
        debug_assert!(
            self.next_event().is_none_or(|(at, _)| at > ctx.now.mono_ms),
            "group {}: events keep coming due at {}",
            self.id,
            ctx.now.mono_ms
        );
    }
}
