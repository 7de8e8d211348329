//! Committed offsets: commit validation, OffsetDelete, and retention (KIP-211).
//!
//! The coordinator never writes: the broker validates a commit here, writes the offset
//! record durably, then applies it; deletions and expirations are tombstones the broker
//! writes before applying them (directly or by replaying them).

use crate::error::GroupError;
use crate::group::{Ctx, Group, CONSUMER_PROTOCOL_TYPE};
use crate::messages::{GroupState, Now, Output};
use crate::records::{OffsetValue, RecordKey};
use crate::Coordinator;

impl Group {
    /// Kafka's `validateOffsetCommit` followed by `doCommitOffsets`' state check.
    fn validate_offset_commit(
        &mut self,
        ctx: &mut Ctx<'_>,
        generation_id: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), GroupError> {
        if generation_id < 0 && self.state == GroupState::Empty {
            // An admin client or a consumer without group management (`assign()`): allowed
            // while nobody uses the group.
            return Ok(());
        }
        if generation_id >= 0 || !member_id.is_empty() || instance_id.is_some() {
            self.validate_member(member_id, instance_id)?;
            if generation_id != self.generation {
                return Err(GroupError::IllegalGeneration);
            }
        } else {
            // Group management is in use: only its members commit.
            return Err(GroupError::UnknownMemberId);
        }
        match self.state {
            GroupState::Stable | GroupState::PreparingRebalance => {
                // While preparing, the commit is still welcome (the consumer commits before it
                // rejoins); the heartbeat tells it about the rebalance.
                self.touch(ctx, member_id);
                Ok(())
            }
            // The member has its generation but not its assignment yet.
            GroupState::CompletingRebalance => Err(GroupError::RebalanceInProgress),
            GroupState::Empty | GroupState::Dead => Err(GroupError::UnknownMemberId),
        }
    }

    /// The offsets that may be deleted now (Kafka's `removeExpiredOffsets`).
    fn expired_offsets(&self, wall_ms: i64, retention_ms: i64) -> Vec<&(String, i32)> {
        let expired = |base_ms: i64| wall_ms.saturating_sub(base_ms) >= retention_ms;
        let state_ms = Some(self.state_timestamp_ms).filter(|&t| t >= 0);
        match (self.protocol_type.as_deref(), self.state) {
            // No consumer left: retention counts from when the group became empty.
            (Some(_), GroupState::Empty) => self
                .offsets
                .iter()
                .filter(|(_, v)| expired(state_ms.unwrap_or(v.commit_timestamp_ms)))
                .map(|(k, _)| k)
                .collect(),
            // KIP-496: a stable consumer group drops offsets of topics it no longer reads.
            (Some(CONSUMER_PROTOCOL_TYPE), GroupState::Stable) => match &self.subscribed_topics {
                Some(topics) => self
                    .offsets
                    .iter()
                    .filter(|((topic, _), v)| {
                        !topics.contains(topic) && expired(v.commit_timestamp_ms)
                    })
                    .map(|(k, _)| k)
                    .collect(),
                None => Vec::new(),
            },
            // Offsets only (simple consumers, admin commits): each from its commit.
            (None, _) => self
                .offsets
                .iter()
                .filter(|(_, v)| expired(v.commit_timestamp_ms))
                .map(|(k, _)| k)
                .collect(),
            _ => Vec::new(),
        }
    }
}

impl Coordinator {
    /// OffsetCommit, first step: may this member commit now? On success the broker writes the
    /// offset records, then calls [`apply_offset_commit`](Coordinator::apply_offset_commit).
    /// A commit from a member refreshes its session.
    ///
    /// `generation_id < 0` with no member id is a commit without group management (an admin
    /// client, a consumer using `assign()`): allowed while the group has no members, and for
    /// groups that do not exist yet; a commit from a generation `>= 0` to a group that does
    /// not exist is ILLEGAL_GENERATION. Members must be known (UNKNOWN_MEMBER_ID), hold their
    /// instance id (FENCED_INSTANCE_ID) and be in the current generation (ILLEGAL_GENERATION);
    /// while the group completes a rebalance, REBALANCE_IN_PROGRESS.
    pub fn validate_offset_commit(
        &mut self,
        now: Now,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> Result<(), GroupError> {
        self.with_group(now, group_id, |group, ctx| {
            group.validate_offset_commit(ctx, generation_id, member_id, group_instance_id)
        })
        .unwrap_or(if generation_id < 0 {
            Ok(())
        } else {
            Err(GroupError::IllegalGeneration)
        })
    }

    /// Stores a committed offset (after the broker wrote it, or when replaying). A group that
    /// does not exist is created, Empty and without protocol type.
    ///
    /// `position` is where the commit's record lies in `__consumer_offsets` (`None` when
    /// replaying, which goes in log order anyway): commits are applied in the order they
    /// were written, so a commit whose record precedes the one already applied is dropped,
    /// however late its acknowledgement arrives. Returns whether it was applied.
    pub fn apply_offset_commit(
        &mut self,
        group_id: &str,
        topic: &str,
        partition: i32,
        value: OffsetValue,
        position: Option<u64>,
    ) -> bool {
        let group = self
            .groups
            .entry(group_id.to_owned())
            .or_insert_with(|| Group::new(group_id.to_owned(), value.commit_timestamp_ms));
        let key = (topic.to_owned(), partition);
        let newer = match (position, group.offset_positions.get(&key)) {
            (Some(p), Some(&applied)) => p > applied,
            _ => true,
        };
        if newer {
            match position {
                Some(p) => group.offset_positions.insert(key.clone(), p),
                None => group.offset_positions.remove(&key),
            };
            group.offsets.insert(key, value);
        }
        self.settle(group_id);
        newer
    }

    /// The committed offset of a partition.
    pub fn committed_offset(
        &self,
        group_id: &str,
        topic: &str,
        partition: i32,
    ) -> Option<&OffsetValue> {
        self.groups
            .get(group_id)?
            .offsets
            .get(&(topic.to_owned(), partition))
    }

    /// Every committed offset of a group, by topic and partition.
    pub fn committed_offsets(&self, group_id: &str) -> Vec<(String, i32, OffsetValue)> {
        self.groups
            .get(group_id)
            .map(|g| {
                g.offsets
                    .iter()
                    .map(|((topic, partition), v)| (topic.clone(), *partition, v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// OffsetDelete, first step (Kafka's `handleDeleteOffsets`), for `topics` given as
    /// (topic, partitions): the group must exist (GROUP_ID_NOT_FOUND); an Empty group's
    /// offsets may all go; a consumer group with members keeps the offsets of topics a member
    /// subscribes to (GROUP_SUBSCRIBED_TO_TOPIC); any other group with members refuses
    /// (NON_EMPTY_GROUP). Results are per topic, per partition, in the order asked. The broker
    /// tombstones the `Ok` partitions, then calls
    /// [`apply_offset_delete`](Coordinator::apply_offset_delete) for each.
    pub fn validate_offset_delete(
        &self,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
    ) -> Result<Vec<Vec<Result<(), GroupError>>>, GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let group = self
            .groups
            .get(group_id)
            .ok_or(GroupError::GroupIdNotFound)?;
        let empty = group.state == GroupState::Empty;
        if !empty && group.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            return Err(GroupError::NonEmptyGroup);
        }
        Ok(topics
            .iter()
            .map(|(topic, partitions)| {
                let result = if !empty && group.is_subscribed_to(topic) {
                    Err(GroupError::GroupSubscribedToTopic)
                } else {
                    Ok(())
                };
                vec![result; partitions.len()]
            })
            .collect())
    }

    /// Removes a committed offset after the broker wrote its tombstone. An Empty group left
    /// without offsets disappears, as in Kafka; if it ever had a generation, its group record
    /// is tombstoned too (an [`Output::StoreGroup`](crate::Output::StoreGroup) without value).
    pub fn apply_offset_delete(&mut self, group_id: &str, topic: &str, partition: i32) {
        if let Some(generation) = self.remove_offset(group_id, topic, partition) {
            if generation > 0 {
                let key = RecordKey::Group {
                    group: group_id.to_owned(),
                };
                if let Ok(key) = key.encode() {
                    self.outputs.push(Output::StoreGroup {
                        group_id: group_id.to_owned(),
                        key,
                        value: None,
                    });
                }
            }
        }
    }

    /// Removes an offset; if that leaves an Empty group with nothing, removes the group and
    /// returns its generation.
    pub(crate) fn remove_offset(
        &mut self,
        group_id: &str,
        topic: &str,
        partition: i32,
    ) -> Option<i32> {
        let group = self.groups.get_mut(group_id)?;
        let key = (topic.to_owned(), partition);
        group.offsets.remove(&key);
        group.offset_positions.remove(&key);
        let gone = group.is_disposable().then_some(group.generation);
        if gone.is_some() {
            self.groups.remove(group_id);
        }
        self.settle(group_id);
        gone
    }

    /// Retention (Kafka's `cleanupGroupMetadata`, KIP-211): the keys to tombstone at `wall_ms`.
    /// A group with a protocol type keeps its offsets while it has members, and loses them
    /// all `offsets_retention_ms` after it became Empty (a Stable consumer group also loses
    /// those of topics it no longer subscribes to, KIP-496); a group without protocol type
    /// loses each offset `offsets_retention_ms` after its commit. An Empty group left with no
    /// offsets is removed: its group key comes last. The broker writes the tombstones, then
    /// replays them.
    pub fn expired_offsets(&self, wall_ms: i64) -> Vec<RecordKey> {
        let mut keys = Vec::new();
        for group in self.groups.values() {
            let expired = group.expired_offsets(wall_ms, self.config.offsets_retention_ms);
            let emptied = expired.len() == group.offsets.len();
            keys.extend(
                expired
                    .into_iter()
                    .map(|(topic, partition)| RecordKey::Offset {
                        group: group.id.clone(),
                        topic: topic.clone(),
                        partition: *partition,
                    }),
            );
            if emptied
                && group.state == GroupState::Empty
                && group.members.is_empty()
                // A member id just handed out (KIP-394) will be used in a moment.
                && group.pending_members.is_empty()
            {
                keys.push(RecordKey::Group {
                    group: group.id.clone(),
                });
            }
        }
        keys
    }
}
