//! The `__consumer_offsets` records: Apache Kafka's own binary layout, so that Kafka's tooling
//! (`kafka-console-consumer --formatter ...GroupMetadataManager$OffsetsMessageFormatter`,
//! `kafka-dump-log --offsets-decoder`) can read Cairn's topic, and Cairn can load Kafka's.
//!
//! Every record of the topic is a key and a value (or no value: a *tombstone*, which deletes
//! the key once the topic is compacted and, when replayed, deletes the state it names). Both
//! start with a big-endian `i16` version. The schemas are Kafka's `OffsetCommitKey.json`,
//! `OffsetCommitValue.json`, `GroupMetadataKey.json` and `GroupMetadataValue.json`
//! (`group-coordinator/src/main/resources/common/message/`); versions 0-3 are non-flexible:
//!
//! ```text
//! STRING          i16 length N >= 0, then N bytes of UTF-8
//! NULLABLE_STRING i16 length, -1 = null
//! BYTES           i32 length N >= 0, then N bytes
//! ARRAY           i32 count, then the elements back to back
//! all integers big-endian
//!
//! key   version 0|1  OffsetCommitKey    group STRING, topic STRING, partition i32
//!       version 2    GroupMetadataKey   group STRING
//!
//! OffsetCommitValue (written: v3; read: v0-v3)
//!   v0  offset i64, metadata STRING, commit_timestamp i64
//!   v1  offset i64, metadata STRING, commit_timestamp i64, expire_timestamp i64
//!   v2  offset i64, metadata STRING, commit_timestamp i64
//!   v3  offset i64, leader_epoch i32, metadata STRING, commit_timestamp i64
//!
//! GroupMetadataValue (written: v3; read: v0-v3)
//!   protocol_type STRING, generation i32, protocol NULLABLE_STRING, leader NULLABLE_STRING,
//!   [v2+] current_state_timestamp i64,
//!   members ARRAY of:
//!     member_id STRING, [v3+] group_instance_id NULLABLE_STRING, client_id STRING,
//!     client_host STRING, [v1+] rebalance_timeout i32, session_timeout i32,
//!     subscription BYTES, assignment BYTES
//! ```
//!
//! Kafka writes version 1 of an offset value only when the commit carried an explicit
//! expiration (OffsetCommit v2-v4 with a retention time, dropped by KIP-211 in Kafka 2.1).
//! Cairn reads such records but ignores the expiration: retention follows the group's rules.
//!
//! A record is written whole by the log (it is one record of a CRC-checked batch), so a torn
//! write never reaches this codec; it still treats every input as hostile: decoding is bounded
//! (no allocation is sized by a declared count larger than the bytes that remain), rejects
//! trailing bytes, and returns a [`RecordError`] instead of panicking.

use bytes::Bytes;

use crate::error::RecordError;

/// Longest string a Kafka STRING field holds, in bytes.
pub const MAX_STRING_BYTES: usize = i16::MAX as usize;

/// Key version written for offset commits.
const OFFSET_KEY_VERSION: i16 = 1;
/// Key version of group metadata.
const GROUP_KEY_VERSION: i16 = 2;
/// Offset value version written.
const OFFSET_VALUE_VERSION: i16 = 3;
/// Group value version written.
const GROUP_VALUE_VERSION: i16 = 3;

/// The key of a `__consumer_offsets` record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKey {
    /// A committed offset (`OffsetCommitKey`, version 0 or 1).
    Offset {
        /// The group id.
        group: String,
        /// The topic name.
        topic: String,
        /// The partition index.
        partition: i32,
    },
    /// A group's metadata (`GroupMetadataKey`, version 2).
    Group {
        /// The group id.
        group: String,
    },
}

impl RecordKey {
    /// The group this key belongs to.
    pub fn group(&self) -> &str {
        match self {
            RecordKey::Offset { group, .. } | RecordKey::Group { group } => group,
        }
    }

    /// Encodes the key (offset keys as version 1, group keys as version 2).
    pub fn encode(&self) -> Result<Vec<u8>, RecordError> {
        let mut w = Writer::default();
        match self {
            RecordKey::Offset {
                group,
                topic,
                partition,
            } => {
                w.i16(OFFSET_KEY_VERSION);
                w.string("group", group)?;
                w.string("topic", topic)?;
                w.i32(*partition);
            }
            RecordKey::Group { group } => {
                w.i16(GROUP_KEY_VERSION);
                w.string("group", group)?;
            }
        }
        Ok(w.0)
    }

    /// Decodes a key of any version Kafka's classic coordinator writes (0, 1, 2).
    pub fn decode(bytes: &[u8]) -> Result<RecordKey, RecordError> {
        let mut r = Reader::new(bytes);
        let key = match r.i16("key version")? {
            0 | 1 => RecordKey::Offset {
                group: r.string("group")?,
                topic: r.string("topic")?,
                partition: r.i32("partition")?,
            },
            2 => RecordKey::Group {
                group: r.string("group")?,
            },
            version => return Err(RecordError::UnknownKeyVersion { version }),
        };
        r.finish("key")?;
        Ok(key)
    }
}

/// A committed offset: the value of an offset commit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    /// The committed offset (the next record the group will consume).
    pub offset: i64,
    /// The leader epoch of the last consumed record, -1 for none.
    pub leader_epoch: i32,
    /// Client metadata stored with the offset.
    pub metadata: String,
    /// When the offset was committed (unix milliseconds).
    pub commit_timestamp_ms: i64,
}

impl OffsetValue {
    /// Encodes the value as version 3.
    pub fn encode(&self) -> Result<Vec<u8>, RecordError> {
        let mut w = Writer::default();
        w.i16(OFFSET_VALUE_VERSION);
        w.i64(self.offset);
        w.i32(self.leader_epoch);
        w.string("metadata", &self.metadata)?;
        w.i64(self.commit_timestamp_ms);
        Ok(w.0)
    }

    /// Decodes a value of version 0 to 3.
    pub fn decode(bytes: &[u8]) -> Result<OffsetValue, RecordError> {
        let mut r = Reader::new(bytes);
        let version = r.i16("offset value version")?;
        if !(0..=3).contains(&version) {
            return Err(RecordError::UnknownValueVersion {
                record: "offset commit",
                version,
            });
        }
        let offset = r.i64("offset")?;
        let leader_epoch = if version >= 3 {
            r.i32("leader_epoch")?
        } else {
            -1
        };
        let metadata = r.string("metadata")?;
        let commit_timestamp_ms = r.i64("commit_timestamp")?;
        if version == 1 {
            // The pre-KIP-211 explicit expiration: read past, not used.
            r.i64("expire_timestamp")?;
        }
        r.finish("offset commit value")?;
        Ok(OffsetValue {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp_ms,
        })
    }
}

/// A group's metadata: the value of a group metadata record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    /// The protocol type (`"consumer"` for consumers; empty for none).
    pub protocol_type: String,
    /// The generation id.
    pub generation: i32,
    /// The selected protocol (the assignor's name), `None` when the group is empty.
    pub protocol: Option<String>,
    /// The leader's member id, `None` when the group is empty.
    pub leader: Option<String>,
    /// When the group entered its current state (unix milliseconds), -1 if unknown
    /// (records before version 2).
    pub current_state_timestamp_ms: i64,
    /// The members, each with its metadata for the selected protocol and its assignment.
    pub members: Vec<GroupMemberValue>,
}

/// One member in a [`GroupValue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMemberValue {
    /// The member id.
    pub member_id: String,
    /// The static member's instance id (KIP-345), from version 3.
    pub group_instance_id: Option<String>,
    /// The client id.
    pub client_id: String,
    /// The client's host.
    pub client_host: String,
    /// The rebalance timeout; -1 in version 0 records, which did not have it.
    pub rebalance_timeout_ms: i32,
    /// The session timeout.
    pub session_timeout_ms: i32,
    /// The member's metadata for the selected protocol.
    pub subscription: Bytes,
    /// The member's assignment.
    pub assignment: Bytes,
}

impl GroupValue {
    /// Encodes the value as version 3.
    pub fn encode(&self) -> Result<Vec<u8>, RecordError> {
        let mut w = Writer::default();
        w.i16(GROUP_VALUE_VERSION);
        w.string("protocol_type", &self.protocol_type)?;
        w.i32(self.generation);
        w.nullable_string("protocol", self.protocol.as_deref())?;
        w.nullable_string("leader", self.leader.as_deref())?;
        w.i64(self.current_state_timestamp_ms);
        w.array_len("members", self.members.len())?;
        for m in &self.members {
            w.string("member_id", &m.member_id)?;
            w.nullable_string("group_instance_id", m.group_instance_id.as_deref())?;
            w.string("client_id", &m.client_id)?;
            w.string("client_host", &m.client_host)?;
            w.i32(m.rebalance_timeout_ms);
            w.i32(m.session_timeout_ms);
            w.bytes("subscription", &m.subscription)?;
            w.bytes("assignment", &m.assignment)?;
        }
        Ok(w.0)
    }

    /// Decodes a value of version 0 to 3.
    pub fn decode(bytes: &[u8]) -> Result<GroupValue, RecordError> {
        let mut r = Reader::new(bytes);
        let version = r.i16("group value version")?;
        if !(0..=3).contains(&version) {
            return Err(RecordError::UnknownValueVersion {
                record: "group metadata",
                version,
            });
        }
        let protocol_type = r.string("protocol_type")?;
        let generation = r.i32("generation")?;
        let protocol = r.nullable_string("protocol")?;
        let leader = r.nullable_string("leader")?;
        let current_state_timestamp_ms = if version >= 2 {
            r.i64("current_state_timestamp")?
        } else {
            -1
        };
        // Smallest member: four empty strings (2 bytes each), the session timeout and two
        // empty byte arrays (4 bytes each).
        let count = r.array_len("members", 2 * 4 + 4 * 3)?;
        let mut members = Vec::with_capacity(count);
        for _ in 0..count {
            let member_id = r.string("member_id")?;
            let group_instance_id = if version >= 3 {
                r.nullable_string("group_instance_id")?
            } else {
                None
            };
            let client_id = r.string("client_id")?;
            let client_host = r.string("client_host")?;
            let rebalance_timeout_ms = if version >= 1 {
                r.i32("rebalance_timeout")?
            } else {
                -1
            };
            let session_timeout_ms = r.i32("session_timeout")?;
            let subscription = r.bytes("subscription")?;
            let assignment = r.bytes("assignment")?;
            members.push(GroupMemberValue {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                rebalance_timeout_ms,
                session_timeout_ms,
                subscription,
                assignment,
            });
        }
        r.finish("group metadata value")?;
        Ok(GroupValue {
            protocol_type,
            generation,
            protocol,
            leader,
            current_state_timestamp_ms,
            members,
        })
    }
}

/// The `__consumer_offsets` partition that holds a group: Kafka's
/// `Utils.abs(groupId.hashCode()) % partitions`, with Java's `String.hashCode` over UTF-16 code
/// units and `Utils.abs(i) = i & 0x7fffffff`. `partitions` is `offsets.topic.num.partitions`;
/// 0 is treated as 1 (there is no partition to pick from otherwise).
pub fn partition_for(group_id: &str, partitions: u32) -> i32 {
    let hash = group_id.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    let abs = hash & 0x7fff_ffff;
    // `abs` is non-negative, so the remainder fits an i32 whatever `partitions` is.
    let partitions = i64::from(partitions.max(1));
    i32::try_from(i64::from(abs) % partitions).unwrap_or(0)
}

/// Big-endian writer of Kafka's non-flexible types.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn i16(&mut self, v: i16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    fn string(&mut self, field: &'static str, s: &str) -> Result<(), RecordError> {
        let len = i16::try_from(s.len()).map_err(|_| RecordError::TooLong {
            field,
            len: s.len(),
        })?;
        self.i16(len);
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }

    fn nullable_string(&mut self, field: &'static str, s: Option<&str>) -> Result<(), RecordError> {
        match s {
            Some(s) => self.string(field, s),
            None => {
                self.i16(-1);
                Ok(())
            }
        }
    }

    fn bytes(&mut self, field: &'static str, b: &[u8]) -> Result<(), RecordError> {
        let len = i32::try_from(b.len()).map_err(|_| RecordError::TooLong {
            field,
            len: b.len(),
        })?;
        self.i32(len);
        self.0.extend_from_slice(b);
        Ok(())
    }

    fn array_len(&mut self, field: &'static str, len: usize) -> Result<(), RecordError> {
        let len = i32::try_from(len).map_err(|_| RecordError::TooLong { field, len })?;
        self.i32(len);
        Ok(())
    }
}

/// Bounded big-endian reader of Kafka's non-flexible types.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], RecordError> {
        if n > self.buf.len() {
            return Err(RecordError::Truncated {
                field,
                needed: n,
                remaining: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], RecordError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(field, N)?);
        Ok(out)
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }

    fn utf8(field: &'static str, raw: &[u8]) -> Result<String, RecordError> {
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| RecordError::InvalidUtf8 { field })
    }

    fn string(&mut self, field: &'static str) -> Result<String, RecordError> {
        self.nullable_string(field)?
            .ok_or(RecordError::InvalidLength { field, length: -1 })
    }

    fn nullable_string(&mut self, field: &'static str) -> Result<Option<String>, RecordError> {
        let len = self.i16(field)?;
        if len == -1 {
            return Ok(None);
        }
        let n = usize::try_from(len).map_err(|_| RecordError::InvalidLength {
            field,
            length: i64::from(len),
        })?;
        Self::utf8(field, self.take(field, n)?).map(Some)
    }

    fn bytes(&mut self, field: &'static str) -> Result<Bytes, RecordError> {
        let len = self.i32(field)?;
        let n = usize::try_from(len).map_err(|_| RecordError::InvalidLength {
            field,
            length: i64::from(len),
        })?;
        // `take` checks `n` against the bytes left before anything is copied.
        Ok(Bytes::copy_from_slice(self.take(field, n)?))
    }

    /// An array count, refused when even elements of `min_element_bytes` each could not fit
    /// in what is left: the count never sizes an allocation beyond the input.
    fn array_len(
        &mut self,
        field: &'static str,
        min_element_bytes: usize,
    ) -> Result<usize, RecordError> {
        let count = self.i32(field)?;
        let n = usize::try_from(count).map_err(|_| RecordError::InvalidLength {
            field,
            length: i64::from(count),
        })?;
        let needed = n.saturating_mul(min_element_bytes.max(1));
        if needed > self.buf.len() {
            return Err(RecordError::Truncated {
                field,
                needed,
                remaining: self.buf.len(),
            });
        }
        Ok(n)
    }

    fn finish(&self, record: &'static str) -> Result<(), RecordError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(RecordError::TrailingBytes {
                record,
                count: self.buf.len(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn member(id: &str, instance: Option<&str>) -> GroupMemberValue {
        GroupMemberValue {
            member_id: id.to_owned(),
            group_instance_id: instance.map(str::to_owned),
            client_id: "client".to_owned(),
            client_host: "/127.0.0.1".to_owned(),
            rebalance_timeout_ms: 300_000,
            session_timeout_ms: 45_000,
            subscription: Bytes::from_static(b"\x00\x01sub"),
            assignment: Bytes::from_static(b"\x00\x01assign"),
        }
    }

    #[test]
    fn offset_key_layout_is_kafkas() {
        let key = RecordKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 7,
        };
        let bytes = key.encode().expect("valid");
        assert_eq!(bytes, b"\x00\x01\x00\x01g\x00\x01t\x00\x00\x00\x07");
        assert_eq!(RecordKey::decode(&bytes).expect("valid"), key);
        // Version 0 keys (Kafka before 0.10) have the same fields.
        assert_eq!(
            RecordKey::decode(b"\x00\x00\x00\x01g\x00\x01t\x00\x00\x00\x07").expect("valid"),
            key
        );
    }

    #[test]
    fn group_key_layout_is_kafkas() {
        let key = RecordKey::Group {
            group: "grp".into(),
        };
        let bytes = key.encode().expect("valid");
        assert_eq!(bytes, b"\x00\x02\x00\x03grp");
        assert_eq!(RecordKey::decode(&bytes).expect("valid"), key);
        assert_eq!(key.group(), "grp");
    }

    #[test]
    fn offset_value_v3_layout_is_kafkas() {
        let value = OffsetValue {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp_ms: 1000,
        };
        let bytes = value.encode().expect("valid");
        let mut expected = vec![0, 3];
        expected.extend_from_slice(&42i64.to_be_bytes());
        expected.extend_from_slice(&3i32.to_be_bytes());
        expected.extend_from_slice(b"\x00\x01m");
        expected.extend_from_slice(&1000i64.to_be_bytes());
        assert_eq!(bytes, expected);
        assert_eq!(OffsetValue::decode(&bytes).expect("valid"), value);
    }

    #[test]
    fn offset_value_old_versions_decode() {
        let mut v0 = vec![0, 0];
        v0.extend_from_slice(&5i64.to_be_bytes());
        v0.extend_from_slice(b"\x00\x02md");
        v0.extend_from_slice(&77i64.to_be_bytes());
        let mut v2 = v0.clone();
        v2[1] = 2;
        let expected = OffsetValue {
            offset: 5,
            leader_epoch: -1,
            metadata: "md".into(),
            commit_timestamp_ms: 77,
        };
        assert_eq!(OffsetValue::decode(&v0).expect("valid"), expected);
        assert_eq!(OffsetValue::decode(&v2).expect("valid"), expected);

        let mut v1 = v0.clone();
        v1[1] = 1;
        v1.extend_from_slice(&99i64.to_be_bytes());
        assert_eq!(OffsetValue::decode(&v1).expect("valid"), expected);
        // Version 1 without its expiration is truncated.
        let mut short = v0.clone();
        short[1] = 1;
        assert!(OffsetValue::decode(&short).is_err());
    }

    #[test]
    fn group_value_round_trips_and_old_versions_decode() {
        let value = GroupValue {
            protocol_type: "consumer".into(),
            generation: 5,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp_ms: 1234,
            members: vec![member("m1", None), member("m2", Some("i2"))],
        };
        let bytes = value.encode().expect("valid");
        assert_eq!(&bytes[..2], &[0, 3]);
        assert_eq!(GroupValue::decode(&bytes).expect("valid"), value);

        // Version 0: no timestamp, no rebalance timeout, no instance id.
        let mut v0 = vec![0, 0];
        v0.extend_from_slice(b"\x00\x08consumer");
        v0.extend_from_slice(&5i32.to_be_bytes());
        v0.extend_from_slice(b"\x00\x05range");
        v0.extend_from_slice(b"\xff\xff");
        v0.extend_from_slice(&1i32.to_be_bytes());
        v0.extend_from_slice(b"\x00\x02m1\x00\x01c\x00\x01h");
        v0.extend_from_slice(&10_000i32.to_be_bytes());
        v0.extend_from_slice(&2i32.to_be_bytes());
        v0.extend_from_slice(b"su");
        v0.extend_from_slice(&0i32.to_be_bytes());
        let decoded = GroupValue::decode(&v0).expect("valid");
        assert_eq!(decoded.current_state_timestamp_ms, -1);
        assert_eq!(decoded.leader, None);
        assert_eq!(decoded.members.len(), 1);
        let m = &decoded.members[0];
        assert_eq!(m.rebalance_timeout_ms, -1);
        assert_eq!(m.session_timeout_ms, 10_000);
        assert_eq!(m.group_instance_id, None);
        assert_eq!(&m.subscription[..], b"su");
        assert!(m.assignment.is_empty());
    }

    #[test]
    fn malformed_inputs_are_typed_errors() {
        assert!(matches!(
            RecordKey::decode(&[]),
            Err(RecordError::Truncated { .. })
        ));
        assert_eq!(
            RecordKey::decode(b"\x00\x03\x00\x01g"),
            Err(RecordError::UnknownKeyVersion { version: 3 })
        );
        assert!(matches!(
            RecordKey::decode(b"\x00\x02\x00\x05ab"),
            Err(RecordError::Truncated { field: "group", .. })
        ));
        assert!(matches!(
            RecordKey::decode(b"\x00\x02\xff\xffx"),
            Err(RecordError::InvalidLength { .. })
        ));
        assert!(matches!(
            RecordKey::decode(b"\x00\x02\x00\x01\xff"),
            Err(RecordError::InvalidUtf8 { .. })
        ));
        assert!(matches!(
            RecordKey::decode(b"\x00\x02\x00\x01gX"),
            Err(RecordError::TrailingBytes { count: 1, .. })
        ));
        assert!(matches!(
            OffsetValue::decode(b"\x00\x04"),
            Err(RecordError::UnknownValueVersion { version: 4, .. })
        ));
        // A group value that declares two billion members in a few bytes.
        let mut huge = vec![0, 3, 0, 0];
        huge.extend_from_slice(&0i32.to_be_bytes());
        huge.extend_from_slice(b"\xff\xff\xff\xff");
        huge.extend_from_slice(&0i64.to_be_bytes());
        huge.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            GroupValue::decode(&huge),
            Err(RecordError::Truncated {
                field: "members",
                ..
            })
        ));
        // Negative array and bytes lengths.
        let mut neg = huge.clone();
        let at = neg.len() - 4;
        neg[at..].copy_from_slice(&(-2i32).to_be_bytes());
        assert!(matches!(
            GroupValue::decode(&neg),
            Err(RecordError::InvalidLength { .. })
        ));
    }

    #[test]
    fn every_truncation_of_valid_records_is_an_error() {
        let group = GroupValue {
            protocol_type: "consumer".into(),
            generation: 1,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp_ms: 9,
            members: vec![member("m1", Some("i"))],
        }
        .encode()
        .expect("valid");
        for cut in 0..group.len() {
            assert!(GroupValue::decode(&group[..cut]).is_err(), "cut at {cut}");
        }
        let offset = OffsetValue {
            offset: 1,
            leader_epoch: 0,
            metadata: "x".into(),
            commit_timestamp_ms: 2,
        }
        .encode()
        .expect("valid");
        for cut in 0..offset.len() {
            assert!(OffsetValue::decode(&offset[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn over_long_strings_are_refused_on_encode() {
        let key = RecordKey::Group {
            group: "x".repeat(MAX_STRING_BYTES + 1),
        };
        assert!(matches!(key.encode(), Err(RecordError::TooLong { .. })));
        let key = RecordKey::Group {
            group: "x".repeat(MAX_STRING_BYTES),
        };
        assert_eq!(
            RecordKey::decode(&key.encode().expect("valid")).expect("valid"),
            key
        );
    }

    /// Values computed with Java's `String.hashCode` semantics.
    #[test]
    fn partition_for_matches_java_hash_code() {
        assert_eq!(partition_for("", 50), 0);
        assert_eq!(partition_for("a", 1000), 97);
        assert_eq!(partition_for("hello", 1 << 30), 99_162_322);
        assert_eq!(partition_for("hello", 50), 22);
        assert_eq!(partition_for("group", 1 << 30), 98_629_247);
        assert_eq!(partition_for("group", 50), 47);
        assert_eq!(partition_for("my-consumer-group", 50), 13);
        assert_eq!(partition_for("console-consumer-12345", 50), 6);
        // Non-ASCII: one UTF-16 unit per BMP char, a surrogate pair for the emoji.
        assert_eq!(partition_for("\u{e9}t\u{e9}", 50), 42);
        assert_eq!(partition_for("\u{1F600}", 50), 49);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE; Utils.abs maps it to 0.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert_eq!(partition_for("anything", 0), 0);
    }

    fn arb_member() -> impl Strategy<Value = GroupMemberValue> {
        (
            ".{0,8}",
            proptest::option::of(".{0,8}"),
            ".{0,8}",
            ".{0,8}",
            any::<i32>(),
            any::<i32>(),
            proptest::collection::vec(any::<u8>(), 0..16),
            proptest::collection::vec(any::<u8>(), 0..16),
        )
            .prop_map(
                |(id, inst, client, host, rt, st, sub, asg)| GroupMemberValue {
                    member_id: id,
                    group_instance_id: inst,
                    client_id: client,
                    client_host: host,
                    rebalance_timeout_ms: rt,
                    session_timeout_ms: st,
                    subscription: Bytes::from(sub),
                    assignment: Bytes::from(asg),
                },
            )
    }

    proptest! {
        #[test]
        fn group_values_round_trip(
            protocol_type in ".{0,10}",
            generation in any::<i32>(),
            protocol in proptest::option::of(".{0,10}"),
            leader in proptest::option::of(".{0,10}"),
            ts in any::<i64>(),
            members in proptest::collection::vec(arb_member(), 0..5),
        ) {
            let value = GroupValue {
                protocol_type, generation, protocol, leader,
                current_state_timestamp_ms: ts, members,
            };
            let bytes = value.encode().expect("valid");
            prop_assert_eq!(GroupValue::decode(&bytes).expect("valid"), value);
        }

        #[test]
        fn offset_records_round_trip(
            group in ".{0,10}", topic in ".{0,10}", partition in any::<i32>(),
            offset in any::<i64>(), epoch in any::<i32>(), metadata in ".{0,20}",
            ts in any::<i64>(),
        ) {
            let key = RecordKey::Offset { group, topic, partition };
            prop_assert_eq!(RecordKey::decode(&key.encode().expect("valid")).expect("valid"), key);
            let value = OffsetValue {
                offset, leader_epoch: epoch, metadata, commit_timestamp_ms: ts,
            };
            prop_assert_eq!(OffsetValue::decode(&value.encode().expect("valid")).expect("valid"), value);
        }

        /// Arbitrary bytes never panic any decoder.
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = RecordKey::decode(&bytes);
            let _ = OffsetValue::decode(&bytes);
            let _ = GroupValue::decode(&bytes);
        }
    }
}
