//! Consumer groups as operators see them: list, describe (members, their assignments,
//! committed offsets and lag) and delete, for ListGroups, DescribeGroups, DeleteGroups and
//! the HTTP API. The group protocol itself (JoinGroup, SyncGroup, commits) is the
//! coordinator's (`crate::groups`, `cairn_groups`).

use bytes::{Buf, Bytes};
use cairn_groups::records::RecordKey;
use cairn_groups::{GroupDescription, GroupListing, GroupState, MemberDescription};

use super::{Node, NodeError};
use crate::groups::{self as group_state, encoded};

/// The protocol type of consumers (Kafka's `ConsumerProtocol`), whose assignments Cairn can
/// read.
const CONSUMER_PROTOCOL: &str = "consumer";

/// One member with the partitions it is assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemberDetail {
    pub(crate) member: MemberDescription,
    /// `(topic, partition)`, sorted; empty unless the group is Stable and speaks the
    /// consumer protocol.
    pub(crate) assignment: Vec<(String, i32)>,
}

/// A partition a group has committed an offset for, with its lag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionLag {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) committed_offset: i64,
    /// The partition's high watermark (what consumers can read up to); `None` if the
    /// partition no longer exists.
    pub(crate) log_end_offset: Option<u64>,
    /// `log_end_offset - committed_offset`, never below 0 (Kafka's tools' rule).
    pub(crate) lag: Option<i64>,
    /// The member assigned the partition, if one is.
    pub(crate) member_id: Option<String>,
}

/// A group with its members, assignments and committed offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupDetail {
    pub(crate) description: GroupDescription,
    pub(crate) members: Vec<MemberDetail>,
    /// By topic and partition.
    pub(crate) offsets: Vec<PartitionLag>,
}

impl GroupDetail {
    /// The member with id `member_id`.
    pub(crate) fn member(&self, member_id: &str) -> Option<&MemberDetail> {
        self.members
            .iter()
            .find(|m| m.member.member_id == member_id)
    }

    /// Whether the group only stores offsets (no protocol type: admin commits, `assign()`).
    pub(crate) fn is_simple(&self) -> bool {
        self.description.protocol_type.is_empty()
    }
}

/// A consumer-protocol assignment (`ConsumerProtocolAssignment` v0–v3, which differ in
/// nothing the assignment holds: an i16 version, then an array of topics, each a string and
/// an array of i32 partitions, then user data) as sorted `(topic, partition)` pairs. Empty
/// bytes (a member that has not synced yet) assign nothing. The bytes are a client's: every
/// count is checked against what is left before anything is allocated by it.
pub(crate) fn decode_assignment(bytes: &[u8]) -> Result<Vec<(String, i32)>, String> {
    let mut buf = Bytes::copy_from_slice(bytes);
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    let truncated = || "the assignment is truncated".to_string();
    if buf.remaining() < 2 {
        return Err(truncated());
    }
    let version = buf.get_i16();
    if version < 0 {
        return Err(format!("the assignment has version {version}"));
    }
    if buf.remaining() < 4 {
        return Err(truncated());
    }
    let topics = buf.get_i32();
    // Each topic takes at least 6 bytes (string length, partition count).
    if topics < 0 || topics as usize > buf.remaining() / 6 {
        return Err(format!("the assignment claims {topics} topics"));
    }
    let mut out = Vec::new();
    for _ in 0..topics {
        if buf.remaining() < 2 {
            return Err(truncated());
        }
        let len = buf.get_i16();
        if len < 0 || len as usize > buf.remaining() {
            return Err(truncated());
        }
        let name = String::from_utf8_lossy(&buf.split_to(len as usize)).into_owned();
        if buf.remaining() < 4 {
            return Err(truncated());
        }
        let count = buf.get_i32();
        if count < 0 || count as usize > buf.remaining() / 4 {
            return Err(format!(
                "the assignment claims {count} partitions of {name}"
            ));
        }
        for _ in 0..count {
            out.push((name.clone(), buf.get_i32()));
        }
    }
    // User data and later versions' fields follow; nothing Cairn shows.
    out.sort();
    out.dedup();
    Ok(out)
}

impl Node {
    /// The groups whose state is in `states` (all for none), by group id.
    pub(crate) fn list_groups(&self, states: &[GroupState]) -> Vec<GroupListing> {
        let mut groups = self.groups.read(|c| c.list_groups(states));
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        groups
    }

    /// Group `group_id` with its members, their assignments, and its committed offsets with
    /// the lag of each partition.
    pub(crate) fn group(&self, group_id: &str) -> Result<GroupDetail, NodeError> {
        let (description, committed) = self
            .groups
            .read(|c| (c.describe_group(group_id), c.committed_offsets(group_id)));
        let description =
            description.ok_or_else(|| NodeError::UnknownGroup(group_id.to_string()))?;
        let members: Vec<MemberDetail> = description
            .members
            .iter()
            .map(|m| {
                let assignment = if description.protocol_type == CONSUMER_PROTOCOL {
                    decode_assignment(&m.assignment).unwrap_or_else(|e| {
                        tracing::debug!(group = group_id, member = %m.member_id, error = %e, "unreadable assignment");
                        Vec::new()
                    })
                } else {
                    Vec::new()
                };
                MemberDetail {
                    member: m.clone(),
                    assignment,
                }
            })
            .collect();
        let owner = |topic: &str, partition: i32| {
            members
                .iter()
                .find(|m| {
                    m.assignment
                        .iter()
                        .any(|(t, p)| t == topic && *p == partition)
                })
                .map(|m| m.member.member_id.clone())
        };
        let mut offsets: Vec<PartitionLag> = committed
            .into_iter()
            .map(|(topic, partition, value)| {
                let log_end_offset = self
                    .partition(&topic, partition)
                    .ok()
                    .map(|(_, h)| h.state().high_watermark);
                let lag = log_end_offset
                    .map(|end| (i64::try_from(end).unwrap_or(i64::MAX) - value.offset).max(0));
                PartitionLag {
                    member_id: owner(&topic, partition),
                    topic,
                    partition,
                    committed_offset: value.offset,
                    log_end_offset,
                    lag,
                }
            })
            .collect();
        offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(GroupDetail {
            description,
            members,
            offsets,
        })
    }

    /// Deletes an empty group: tombstones for its offsets and its metadata, then forgets it.
    /// GROUP_ID_NOT_FOUND for an unknown group, NON_EMPTY_GROUP while it has members.
    pub(crate) async fn delete_group(&self, group: &str) -> Result<(), NodeError> {
        self.groups.check(group).map_err(|code| {
            NodeError::kafka(
                code,
                format!("this node does not coordinate group {group} now"),
            )
        })?;
        let offsets = self.groups.read(|c| {
            c.validate_delete_group(group)
                .map(|()| c.committed_offsets(group))
        });
        let offsets = offsets.map_err(|e| match e {
            cairn_groups::GroupError::GroupIdNotFound => NodeError::UnknownGroup(group.into()),
            e => NodeError::kafka(
                cairn_protocol::ErrorCode::from_code(e.code())
                    .unwrap_or(cairn_protocol::ErrorCode::UnknownServerError),
                format!("cannot delete consumer group {group}: {e}"),
            ),
        })?;
        let mut entries: Vec<group_state::Entry> = offsets
            .into_iter()
            .filter_map(|(topic, partition, _)| {
                let key = RecordKey::Offset {
                    group: group.to_string(),
                    topic,
                    partition,
                };
                Some((encoded(&key)?, None))
            })
            .collect();
        let group_key = RecordKey::Group {
            group: group.to_string(),
        };
        if let Some(key) = encoded(&group_key) {
            entries.push((key, None));
        }
        let partition = self.groups.partition_for(group);
        group_state::append(self, partition, &entries)
            .await
            .map_err(|code| {
                NodeError::kafka(code, format!("cannot delete consumer group {group}"))
            })?;
        self.groups.with(|c, _| c.apply_delete_group(group));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn assignment(version: i16, topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut b = Vec::new();
        b.put_i16(version);
        b.put_i32(topics.len() as i32);
        for (t, ps) in topics {
            b.put_i16(t.len() as i16);
            b.put_slice(t.as_bytes());
            b.put_i32(ps.len() as i32);
            for p in *ps {
                b.put_i32(*p);
            }
        }
        b.put_i32(-1); // null user data
        b
    }

    #[test]
    fn assignments_decode_sorted_and_bounded() {
        let bytes = assignment(3, &[("b", &[1, 0]), ("a", &[2])]);
        assert_eq!(
            decode_assignment(&bytes).expect("decodes"),
            vec![("a".into(), 2), ("b".into(), 0), ("b".into(), 1)]
        );
        assert_eq!(decode_assignment(&[]).expect("empty"), Vec::new());
        // Counts larger than the bytes are refused before any allocation by them.
        let mut huge = Vec::new();
        huge.put_i16(0);
        huge.put_i32(i32::MAX);
        assert!(decode_assignment(&huge).is_err());
        let mut huge = assignment(0, &[("t", &[])]);
        huge.truncate(2 + 4 + 2 + 1);
        huge.put_i32(1 << 30);
        assert!(decode_assignment(&huge).is_err());
        assert!(decode_assignment(&bytes[..bytes.len() - 9]).is_err());
        assert!(decode_assignment(&[0]).is_err());
    }
}
