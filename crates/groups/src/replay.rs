//! Loading `__consumer_offsets`: records applied in log order, tombstones deleting (Kafka's
//! `GroupMetadataManager.doLoadGroupsAndOffsets` and `onGroupLoaded`).

use std::collections::{BTreeMap, HashMap};

use crate::error::{GroupError, RecordError};
use crate::group::{Ctx, Group, Member};
use crate::messages::{GroupState, Now};
use crate::records::{GroupValue, OffsetValue, RecordKey};
use crate::Coordinator;

impl Coordinator {
    /// Applies one `__consumer_offsets` record (`value` `None`: a tombstone), on startup in
    /// log order, and after the broker wrote tombstones for
    /// [`expired_offsets`](Coordinator::expired_offsets).
    ///
    /// A group record restores the group as Stable (Empty without members) with its members,
    /// generation, protocol, leader and assignments; each member's session starts at `now`,
    /// so members that do not heartbeat expire. A group tombstone removes an Empty group (its
    /// offsets, if any are left, stay as a group without protocol type, as Kafka loads them);
    /// a group with members ignores it, since its newer state will be written again.
    /// Keys of unknown versions are [`RecordError::UnknownKeyVersion`]: a caller sharing the
    /// topic with a Kafka broker's KIP-848 records skips them.
    pub fn replay(
        &mut self,
        now: Now,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), RecordError> {
        match (RecordKey::decode(key)?, value) {
            (
                RecordKey::Offset {
                    group,
                    topic,
                    partition,
                },
                Some(value),
            ) => {
                let value = OffsetValue::decode(value)?;
                self.apply_offset_commit(&group, &topic, partition, value, None);
            }
            (
                RecordKey::Offset {
                    group,
                    topic,
                    partition,
                },
                None,
            ) => {
                // Whatever the tombstone empties was already written off: nothing to emit.
                self.remove_offset(&group, &topic, partition);
            }
            (RecordKey::Group { group }, Some(value)) => {
                let value = GroupValue::decode(value)?;
                let loaded = load_group(&group, value, now)?;
                self.install_group(now, loaded);
            }
            (RecordKey::Group { group }, None) => self.drop_group_metadata(&group, now),
        }
        Ok(())
    }

    /// Puts a loaded group in place of the current one, keeping the current one's offsets.
    fn install_group(&mut self, now: Now, mut loaded: Group) {
        let id = loaded.id.clone();
        if let Some(mut old) = self.groups.remove(&id) {
            // Replay is meant for loading; should it replace a live group, whatever waits in
            // it is answered as by a coordinator that lost the group.
            old.fail_all_waiting(&mut self.outputs, GroupError::CoordinatorNotAvailable);
            loaded.offsets = old.offsets;
            loaded.offset_positions = old.offset_positions;
        }
        self.groups.insert(id.clone(), loaded);
        let max_size = usize::try_from(self.config.group_max_size.max(0)).unwrap_or(usize::MAX);
        self.with_group(now, &id, |group, ctx: &mut Ctx<'_>| {
            if group.members.len() > max_size {
                // group.max.size was lowered: rebalance, so the members that rejoin last
                // are refused (Kafka's `onGroupLoaded`).
                group.prepare_rebalance(ctx);
            }
        });
    }

    fn drop_group_metadata(&mut self, group_id: &str, now: Now) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        if !group.members.is_empty() || group.state != GroupState::Empty {
            return;
        }
        if group.offsets.is_empty() {
            self.groups.remove(group_id);
        } else {
            let offsets = std::mem::take(&mut group.offsets);
            let positions = std::mem::take(&mut group.offset_positions);
            *group = Group::new(group_id.to_owned(), now.wall_ms);
            group.offsets = offsets;
            group.offset_positions = positions;
        }
        self.settle(group_id);
    }
}

/// A group as its record describes it (Kafka's `readGroupMessageValue` and `loadGroup`).
fn load_group(id: &str, value: GroupValue, now: Now) -> Result<Group, RecordError> {
    let invalid = |reason| RecordError::InvalidGroup {
        group: id.to_owned(),
        reason,
    };
    let mut group = Group::new(id.to_owned(), value.current_state_timestamp_ms);
    group.generation = value.generation;
    group.protocol_type = Some(value.protocol_type).filter(|t| !t.is_empty());
    group.protocol_name = value.protocol;
    if value.members.is_empty() {
        return Ok(group);
    }
    let protocol = group
        .protocol_name
        .clone()
        .ok_or_else(|| invalid("members but no protocol"))?;
    let mut members = BTreeMap::new();
    let mut static_members = HashMap::new();
    for m in value.members {
        if let Some(instance) = &m.group_instance_id {
            if static_members
                .insert(instance.clone(), m.member_id.clone())
                .is_some()
            {
                return Err(invalid("two members with one instance id"));
            }
        }
        let member = Member {
            id: m.member_id.clone(),
            instance_id: m.group_instance_id,
            client_id: m.client_id,
            client_host: m.client_host,
            // Version 0 had no rebalance timeout: Kafka uses the session timeout.
            rebalance_timeout_ms: if m.rebalance_timeout_ms < 0 {
                m.session_timeout_ms
            } else {
                m.rebalance_timeout_ms
            },
            session_timeout_ms: m.session_timeout_ms,
            protocols: vec![(protocol.clone(), m.subscription)],
            assignment: m.assignment,
            join_token: None,
            sync_token: None,
            is_new: false,
            deadline_ms: now
                .mono_ms
                .saturating_add(u64::try_from(m.session_timeout_ms.max(0)).unwrap_or(0)),
        };
        if members.insert(m.member_id, member).is_some() {
            return Err(invalid("two members with one member id"));
        }
    }
    group.leader = value
        .leader
        .filter(|l| members.contains_key(l))
        .or_else(|| members.keys().next().cloned());
    group.members = members;
    group.static_members = static_members;
    group.state = GroupState::Stable;
    group.subscribed_topics = group.compute_subscribed_topics();
    Ok(group)
}
