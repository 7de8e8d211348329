//! Request and response versions older than kafka-protocol's, read and written here.
//!
//! Kafka 4.0 removed the oldest versions of several APIs (KIP-896) and kafka-protocol 0.18
//! follows it, so it can neither read nor write them. A few of them differ from the first
//! version it knows by a field or two and carry no record batches, so serving them needs no
//! message-format conversion: ListOffsets v0, OffsetCommit v0–v1, DescribeConfigs v0,
//! CreateTopics v0–v1, DeleteTopics v0, OffsetForLeaderEpoch v0–v1 and DescribeLogDirs v0.
//! Produce v0–v2 and Fetch v0–v3 are here too: their records are message sets (formats 0
//! and 1), which `message_sets` converts to and from the v2 batches Cairn stores; this module
//! only reads and writes the requests and responses around them.
//! Old clients still send them (kafka-python negotiating down, Sarama configured for an old
//! `Version`), so Cairn reads and writes them here, into and out of kafka-protocol's own
//! structs: handlers see one type per API whatever the version.
//!
//! Each message is *described once*, as visits to its fields in wire order against the
//! [`Wire`] trait; [`Reader`] and [`Writer`] run the same description, so the two
//! directions cannot disagree (and the client side, used by tests, comes for free). Every
//! version here predates its API's flexible versions: int16-length strings, int32-count
//! arrays, no tagged fields.
//!
//! ```text
//! ListOffsets v0 request     replica_id i32, [topic str, [partition i32, timestamp i64,
//!                            max_num_offsets i32]]
//! ListOffsets v0 response    [topic str, [partition i32, error i16, old_style_offsets [i64]]]
//! OffsetCommit v0 request    group_id str, [topic str, [partition i32, offset i64, metadata str?]]
//! OffsetCommit v1 request    group_id str, generation i32, member_id str,
//!                            [topic str, [partition i32, offset i64, commit_timestamp i64,
//!                            metadata str?]]
//! OffsetCommit v0–v1 resp.   = v2's layout
//! DescribeConfigs v0 req.    = v1 without include_synonyms
//! DescribeConfigs v0 resp.   v1 with is_default (bool) where config_source is, no synonyms
//! CreateTopics v0/v1 req.    = v2 without / with validate_only
//! CreateTopics v0/v1 resp.   [name str, error i16 (, error_message str? in v1)]
//! DeleteTopics v0 request    = v1;  v0 response: [name str, error i16]
//! OffsetForLeaderEpoch v0–v1 [topic str, [partition i32, leader_epoch i32]]
//!   response v0 / v1         [topic str, [error i16, partition i32, (leader_epoch i32,) end i64]]
//! DescribeLogDirs v0         = v1, both ways
//! Produce v0–v2 request      = v3 without transactional_id
//! Produce v0 / v1 response   [topic str, [partition i32, error i16, base_offset i64]]
//!                            (, throttle_time_ms i32 in v1);  v2 response = v3's layout
//! Fetch v0–v3 request        replica_id i32, max_wait_ms i32, min_bytes i32,
//!                            (max_bytes i32 in v3,) [topic str, [partition i32,
//!                            fetch_offset i64, partition_max_bytes i32]]
//! Fetch v0–v3 response       (throttle_time_ms i32 in v1+,) [topic str, [partition i32,
//!                            error i16, high_watermark i64, records bytes?]]
//! ```
//!
//! Fields a legacy version lacks: when writing, one that Kafka's schema marks *ignorable* is
//! dropped and any other holding a non-default value is refused, as kafka-protocol does for
//! the versions it knows; when reading, it keeps its default. The two request fields
//! kafka-protocol's structs have no room for travel beside the body as [`LegacyFields`].

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

mod wire;

use wire::{slot, Reader, Wire, Writer, R};

/// Request fields of old versions that kafka-protocol's structs cannot hold, indexed
/// `[topic][partition]` in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyFields {
    /// ListOffsets v0: how many offsets each partition's answer may hold (Kafka's
    /// `max_num_offsets`).
    ListOffsetsV0 {
        /// `max_num_offsets` per partition.
        max_num_offsets: Vec<Vec<i32>>,
    },
    /// OffsetCommit v1: each partition's commit timestamp (-1: the broker's clock).
    OffsetCommitV1 {
        /// `commit_timestamp` per partition.
        commit_timestamps: Vec<Vec<i64>>,
    },
}

impl LegacyFields {
    /// ListOffsets v0's `max_num_offsets` of partition `p` of topic `t` (1, Kafka's default,
    /// when absent).
    pub fn max_num_offsets(&self, t: usize, p: usize) -> i32 {
        match self {
            LegacyFields::ListOffsetsV0 { max_num_offsets } => max_num_offsets
                .get(t)
                .and_then(|ps| ps.get(p))
                .copied()
                .unwrap_or(1),
            LegacyFields::OffsetCommitV1 { .. } => 1,
        }
    }

    /// OffsetCommit v1's commit timestamp of partition `p` of topic `t` (-1 when absent).
    pub fn commit_timestamp(&self, t: usize, p: usize) -> i64 {
        match self {
            LegacyFields::OffsetCommitV1 { commit_timestamps } => commit_timestamps
                .get(t)
                .and_then(|ps| ps.get(p))
                .copied()
                .unwrap_or(-1),
            LegacyFields::ListOffsetsV0 { .. } => -1,
        }
    }
}

/// Why a legacy body does not read or write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The body ends inside a field.
    #[error("body ends at byte {at}, inside a field")]
    Truncated {
        /// Position of the field.
        at: usize,
    },
    /// A length or count that is negative (where null is not allowed) or larger than the
    /// bytes left.
    #[error("bad length {length} at byte {at}")]
    BadLength {
        /// Position of the length.
        at: usize,
        /// The declared length.
        length: i64,
    },
    /// A string that is not UTF-8.
    #[error("string at byte {at} is not UTF-8")]
    Utf8 {
        /// Position of the string.
        at: usize,
    },
    /// Writing: a field this version lacks holds a value that cannot be dropped.
    #[error("field {0} is not in this version and is not at its default")]
    NotInVersion(&'static str),
    /// Writing: a string or array longer than its length prefix allows.
    #[error("field too long for its length prefix")]
    TooLong,
    /// Not a version this module reads or writes.
    #[error("not a legacy version")]
    NotLegacy,
    /// kafka-protocol, for a version whose layout is one it knows.
    #[error("{0}")]
    Delegated(String),
}

/// The lowest version of `key` Cairn can read and write: kafka-protocol's, or lower where
/// this module knows the older layout.
pub(crate) fn min_version(key: ApiKey) -> i16 {
    match key {
        ApiKey::Produce
        | ApiKey::Fetch
        | ApiKey::ListOffsets
        | ApiKey::OffsetCommit
        | ApiKey::DescribeConfigs
        | ApiKey::CreateTopics
        | ApiKey::DeleteTopics
        | ApiKey::OffsetForLeaderEpoch
        | ApiKey::DescribeLogDirs => 0,
        other => other.valid_versions().min,
    }
}

/// Whether `version` of `key` is below kafka-protocol's range (and so handled here).
pub(crate) fn is_legacy(key: ApiKey, version: i16) -> bool {
    version < key.valid_versions().min
}

// --- The messages ----------------------------------------------------------------------------

fn produce_request_v0_v2<W: Wire>(w: &mut W, r: &mut ProduceRequest) -> R {
    w.absent("transactional_id", &r.transactional_id, &None)?;
    w.i16(&mut r.acks)?;
    w.i32(&mut r.timeout_ms)?;
    w.array(&mut r.topic_data, |w, _, t| {
        w.str(&mut t.name.0)?;
        w.array(&mut t.partition_data, |w, _, p| {
            w.i32(&mut p.index)?;
            w.nullable_bytes(&mut p.records)
        })
    })
}

fn produce_response_v0_v1<W: Wire>(w: &mut W, version: i16, r: &mut ProduceResponse) -> R {
    w.array(&mut r.responses, |w, _, t| {
        w.str(&mut t.name.0)?;
        // log_append_time_ms (v2+), log_start_offset (v5+) and the v8+ error details are
        // ignorable.
        w.array(&mut t.partition_responses, |w, _, p| {
            w.i32(&mut p.index)?;
            w.i16(&mut p.error_code)?;
            w.i64(&mut p.base_offset)
        })
    })?;
    // throttle_time_ms is v1+ (ignorable).
    if version >= 1 {
        w.i32(&mut r.throttle_time_ms)?;
    }
    Ok(())
}

fn fetch_request_v0_v3<W: Wire>(w: &mut W, version: i16, r: &mut FetchRequest) -> R {
    w.i32(&mut r.replica_id.0)?;
    w.i32(&mut r.max_wait_ms)?;
    w.i32(&mut r.min_bytes)?;
    if version >= 3 {
        w.i32(&mut r.max_bytes)?;
    } else {
        // No response limit before v3 (max_bytes is ignorable): "as much as there is".
        r.max_bytes = i32::MAX;
    }
    // isolation_level (v4+) is ignorable: read-uncommitted, which is all Cairn serves.
    w.array(&mut r.topics, |w, _, t| {
        w.str(&mut t.topic.0)?;
        w.array(&mut t.partitions, |w, _, p| {
            w.i32(&mut p.partition)?;
            // current_leader_epoch (v9+) is not checked when absent.
            p.current_leader_epoch = -1;
            w.i64(&mut p.fetch_offset)?;
            w.i32(&mut p.partition_max_bytes)
        })
    })
}

fn fetch_response_v0_v3<W: Wire>(w: &mut W, version: i16, r: &mut FetchResponse) -> R {
    if version >= 1 {
        w.i32(&mut r.throttle_time_ms)?;
    }
    // error_code and session_id (v7+), last_stable_offset, log_start_offset and
    // aborted_transactions (v4+/v5+) are ignorable.
    w.array(&mut r.responses, |w, _, t| {
        w.str(&mut t.topic.0)?;
        w.array(&mut t.partitions, |w, _, p| {
            w.i32(&mut p.partition_index)?;
            w.i16(&mut p.error_code)?;
            w.i64(&mut p.high_watermark)?;
            w.nullable_bytes(&mut p.records)
        })
    })
}

fn list_offsets_request_v0<W: Wire>(
    w: &mut W,
    r: &mut ListOffsetsRequest,
    max: &mut Vec<Vec<i32>>,
) -> R {
    w.i32(&mut r.replica_id.0)?;
    w.absent("isolation_level", &r.isolation_level, &0)?;
    // current_leader_epoch (v4+) and timeout_ms (v10+) are ignorable: dropped.
    w.array(&mut r.topics, |w, ti, t| {
        w.str(&mut t.name.0)?;
        let maxes = slot(max, ti, Vec::new());
        w.array(&mut t.partitions, |w, pi, p| {
            w.i32(&mut p.partition_index)?;
            w.i64(&mut p.timestamp)?;
            w.i32(slot(maxes, pi, 1))
        })
    })
}

fn list_offsets_response_v0<W: Wire>(w: &mut W, r: &mut ListOffsetsResponse) -> R {
    // throttle_time_ms (v2+) is ignorable.
    w.array(&mut r.topics, |w, _, t| {
        w.str(&mut t.name.0)?;
        w.array(&mut t.partitions, |w, _, p| {
            w.i32(&mut p.partition_index)?;
            w.i16(&mut p.error_code)?;
            w.absent("timestamp", &p.timestamp, &-1)?;
            w.absent("leader_epoch", &p.leader_epoch, &-1)?;
            // v0 answers a list (at most `max_num_offsets` long); Cairn's holds the one
            // offset v1 would answer, or nothing for -1. Reading keeps the first.
            let mut offsets = if p.offset >= 0 {
                vec![p.offset]
            } else {
                Vec::new()
            };
            w.array(&mut offsets, |w, _, o| w.i64(o))?;
            if w.reading() {
                p.offset = offsets.first().copied().unwrap_or(-1);
            }
            Ok(())
        })
    })
}

fn offset_commit_request_v0_v1<W: Wire>(
    w: &mut W,
    version: i16,
    r: &mut OffsetCommitRequest,
    stamps: &mut Vec<Vec<i64>>,
) -> R {
    w.str(&mut r.group_id.0)?;
    // v0 has no generation or member id (both ignorable): a "simple" commit.
    if version >= 1 {
        w.i32(&mut r.generation_id_or_member_epoch)?;
        w.str(&mut r.member_id)?;
    }
    w.absent("group_instance_id", &r.group_instance_id, &None)?;
    // retention_time_ms (v2–v4) and committed_leader_epoch (v6+) are ignorable.
    w.array(&mut r.topics, |w, ti, t| {
        w.str(&mut t.name.0)?;
        let topic_stamps = slot(stamps, ti, Vec::new());
        w.array(&mut t.partitions, |w, pi, p| {
            w.i32(&mut p.partition_index)?;
            w.i64(&mut p.committed_offset)?;
            if version == 1 {
                w.i64(slot(topic_stamps, pi, -1))?;
            }
            w.nullable_str(&mut p.committed_metadata)
        })
    })
}

fn describe_configs_request_v0<W: Wire>(w: &mut W, r: &mut DescribeConfigsRequest) -> R {
    w.array(&mut r.resources, |w, _, res| {
        w.i8(&mut res.resource_type)?;
        w.str(&mut res.resource_name)?;
        w.nullable_array(&mut res.configuration_keys, |w, _, k| w.str(k))
    })?;
    w.absent("include_synonyms", &r.include_synonyms, &false)?;
    w.absent("include_documentation", &r.include_documentation, &false)
}

/// Kafka's `ConfigSource` ids that v0's `is_default` stands for.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
const SOURCE_UNKNOWN: i8 = 0;

fn describe_configs_response_v0<W: Wire>(w: &mut W, r: &mut DescribeConfigsResponse) -> R {
    w.i32(&mut r.throttle_time_ms)?;
    w.array(&mut r.results, |w, _, res| {
        w.i16(&mut res.error_code)?;
        w.nullable_str(&mut res.error_message)?;
        w.i8(&mut res.resource_type)?;
        w.str(&mut res.resource_name)?;
        let resource_type = res.resource_type;
        w.array(&mut res.configs, |w, _, c| {
            w.str(&mut c.name)?;
            w.nullable_str(&mut c.value)?;
            w.bool(&mut c.read_only)?;
            // v0's is_default is "the source is DEFAULT_CONFIG" (Kafka wrote it so); reading
            // maps it back as Java's client does (DescribeConfigsResponse, version 0).
            let mut is_default = c.config_source == SOURCE_DEFAULT;
            w.bool(&mut is_default)?;
            if w.reading() {
                c.config_source = match (is_default, resource_type) {
                    (true, _) => SOURCE_DEFAULT,
                    (false, 4) => SOURCE_STATIC_BROKER,
                    (false, 2) => SOURCE_TOPIC,
                    (false, _) => SOURCE_UNKNOWN,
                };
            }
            // synonyms (v1+), config_type and documentation (v3+) are ignorable.
            w.bool(&mut c.is_sensitive)
        })
    })
}

fn create_topics_request_v0_v1<W: Wire>(w: &mut W, version: i16, r: &mut CreateTopicsRequest) -> R {
    w.array(&mut r.topics, |w, _, t| {
        w.str(&mut t.name.0)?;
        w.i32(&mut t.num_partitions)?;
        w.i16(&mut t.replication_factor)?;
        w.array(&mut t.assignments, |w, _, a| {
            w.i32(&mut a.partition_index)?;
            w.array(&mut a.broker_ids, |w, _, b| w.i32(&mut b.0))
        })?;
        w.array(&mut t.configs, |w, _, c| {
            w.str(&mut c.name)?;
            w.nullable_str(&mut c.value)
        })
    })?;
    w.i32(&mut r.timeout_ms)?;
    if version >= 1 {
        w.bool(&mut r.validate_only)
    } else {
        w.absent("validate_only", &r.validate_only, &false)
    }
}

fn create_topics_response_v0_v1<W: Wire>(
    w: &mut W,
    version: i16,
    r: &mut CreateTopicsResponse,
) -> R {
    // throttle_time_ms (v2+) is ignorable.
    w.array(&mut r.topics, |w, _, t| {
        w.str(&mut t.name.0)?;
        w.i16(&mut t.error_code)?;
        // error_message is v1+ and ignorable; topic_id (v7+), num_partitions,
        // replication_factor and configs (v5+) too.
        if version >= 1 {
            w.nullable_str(&mut t.error_message)?;
        }
        Ok(())
    })
}

fn delete_topics_request_v0<W: Wire>(w: &mut W, r: &mut DeleteTopicsRequest) -> R {
    w.absent("topics", &r.topics.is_empty(), &true)?;
    w.array(&mut r.topic_names, |w, _, n| w.str(&mut n.0))?;
    w.i32(&mut r.timeout_ms)
}

fn delete_topics_response_v0<W: Wire>(w: &mut W, r: &mut DeleteTopicsResponse) -> R {
    // throttle_time_ms (v1+), error_message (v5+) and topic_id (v6+) are ignorable.
    w.array(&mut r.responses, |w, _, t| {
        // The name is nullable only from v6 (topics named by id).
        let mut name = match (&t.name, w.reading()) {
            (Some(n), _) => n.0.clone(),
            (None, true) => StrBytes::default(),
            (None, false) => return Err(WireError::NotInVersion("name (null)")),
        };
        w.str(&mut name)?;
        if w.reading() {
            t.name = Some(TopicName(name));
        }
        w.i16(&mut t.error_code)
    })
}

fn offset_for_leader_epoch_request_v0_v1<W: Wire>(
    w: &mut W,
    r: &mut OffsetForLeaderEpochRequest,
) -> R {
    // replica_id (v3+) and current_leader_epoch (v2+) are ignorable.
    w.array(&mut r.topics, |w, _, t| {
        w.str(&mut t.topic.0)?;
        w.array(&mut t.partitions, |w, _, p| {
            w.i32(&mut p.partition)?;
            w.i32(&mut p.leader_epoch)
        })
    })
}

fn offset_for_leader_epoch_response_v0_v1<W: Wire>(
    w: &mut W,
    version: i16,
    r: &mut OffsetForLeaderEpochResponse,
) -> R {
    // throttle_time_ms (v2+) is ignorable.
    w.array(&mut r.topics, |w, _, t| {
        w.str(&mut t.topic.0)?;
        w.array(&mut t.partitions, |w, _, p| {
            w.i16(&mut p.error_code)?;
            w.i32(&mut p.partition)?;
            // v0 answers no epoch (leader_epoch is v1+ and ignorable).
            if version >= 1 {
                w.i32(&mut p.leader_epoch)?;
            }
            w.i64(&mut p.end_offset)
        })
    })
}

// --- Entry points ----------------------------------------------------------------------------

/// The kafka-protocol version with the same wire layout, where there is one.
fn same_layout(key: ApiKey, version: i16, request: bool) -> Option<i16> {
    match (key, version, request) {
        // v1 only changed how the broker throttles (KIP-219).
        (ApiKey::DescribeLogDirs, 0, _) => Some(1),
        // The responses of v0–v2 are identical; v3 added the throttle time.
        (ApiKey::OffsetCommit, 0 | 1, false) => Some(2),
        // The request is unchanged from v0 to v1 (v1 changed the response only).
        (ApiKey::DeleteTopics, 0, true) => Some(1),
        // v3 changed the request only (transactional_id).
        (ApiKey::Produce, 2, false) => Some(3),
        _ => None,
    }
}

/// Reads a request body of a legacy `version` of `key` from `buf` (advancing it past the
/// body).
pub(crate) fn decode_request(
    key: ApiKey,
    version: i16,
    buf: &mut Bytes,
) -> Result<(RequestKind, Option<LegacyFields>), WireError> {
    if let Some(same) = same_layout(key, version, true) {
        return RequestKind::decode(key, buf, same)
            .map(|b| (b, None))
            .map_err(|e| WireError::Delegated(format!("{e:#}")));
    }
    let len = buf.len();
    let mut r = Reader {
        buf: buf.clone(),
        len,
    };
    let decoded = match (key, version) {
        (ApiKey::Produce, 0..=2) => {
            let mut b = ProduceRequest::default();
            produce_request_v0_v2(&mut r, &mut b)?;
            (RequestKind::Produce(b), None)
        }
        (ApiKey::Fetch, 0..=3) => {
            let mut b = FetchRequest::default();
            fetch_request_v0_v3(&mut r, version, &mut b)?;
            (RequestKind::Fetch(b), None)
        }
        (ApiKey::ListOffsets, 0) => {
            let mut b = ListOffsetsRequest::default();
            let mut max = Vec::new();
            list_offsets_request_v0(&mut r, &mut b, &mut max)?;
            let legacy = LegacyFields::ListOffsetsV0 {
                max_num_offsets: max,
            };
            (RequestKind::ListOffsets(b), Some(legacy))
        }
        (ApiKey::OffsetCommit, 0 | 1) => {
            let mut b = OffsetCommitRequest::default();
            let mut stamps = Vec::new();
            offset_commit_request_v0_v1(&mut r, version, &mut b, &mut stamps)?;
            let legacy = (version == 1).then_some(LegacyFields::OffsetCommitV1 {
                commit_timestamps: stamps,
            });
            (RequestKind::OffsetCommit(b), legacy)
        }
        (ApiKey::DescribeConfigs, 0) => {
            let mut b = DescribeConfigsRequest::default();
            describe_configs_request_v0(&mut r, &mut b)?;
            (RequestKind::DescribeConfigs(b), None)
        }
        (ApiKey::CreateTopics, 0 | 1) => {
            let mut b = CreateTopicsRequest::default();
            create_topics_request_v0_v1(&mut r, version, &mut b)?;
            (RequestKind::CreateTopics(b), None)
        }
        (ApiKey::DeleteTopics, 0) => {
            let mut b = DeleteTopicsRequest::default();
            delete_topics_request_v0(&mut r, &mut b)?;
            (RequestKind::DeleteTopics(b), None)
        }
        (ApiKey::OffsetForLeaderEpoch, 0 | 1) => {
            let mut b = OffsetForLeaderEpochRequest::default();
            offset_for_leader_epoch_request_v0_v1(&mut r, &mut b)?;
            (RequestKind::OffsetForLeaderEpoch(b), None)
        }
        _ => return Err(WireError::NotLegacy),
    };
    buf.advance(len - r.buf.len());
    Ok(decoded)
}

/// Writes a request body of a legacy `version` of `key` (the client side: tests, tools).
pub(crate) fn encode_request(
    key: ApiKey,
    version: i16,
    body: &RequestKind,
    buf: &mut BytesMut,
) -> R {
    if let Some(same) = same_layout(key, version, true) {
        return body
            .encode(buf, same)
            .map_err(|e| WireError::Delegated(format!("{e:#}")));
    }
    let mut w = Writer { buf };
    match (body.clone(), version) {
        (RequestKind::Produce(mut b), 0..=2) => produce_request_v0_v2(&mut w, &mut b),
        (RequestKind::Fetch(mut b), 0..=3) => fetch_request_v0_v3(&mut w, version, &mut b),
        (RequestKind::ListOffsets(mut b), 0) => {
            list_offsets_request_v0(&mut w, &mut b, &mut Vec::new())
        }
        (RequestKind::OffsetCommit(mut b), 0 | 1) => {
            offset_commit_request_v0_v1(&mut w, version, &mut b, &mut Vec::new())
        }
        (RequestKind::DescribeConfigs(mut b), 0) => describe_configs_request_v0(&mut w, &mut b),
        (RequestKind::CreateTopics(mut b), 0 | 1) => {
            create_topics_request_v0_v1(&mut w, version, &mut b)
        }
        (RequestKind::DeleteTopics(mut b), 0) => delete_topics_request_v0(&mut w, &mut b),
        (RequestKind::OffsetForLeaderEpoch(mut b), 0 | 1) => {
            offset_for_leader_epoch_request_v0_v1(&mut w, &mut b)
        }
        _ => Err(WireError::NotLegacy),
    }
}

/// Writes a response body of a legacy `version` of `key`.
pub(crate) fn encode_response(
    key: ApiKey,
    version: i16,
    body: &ResponseKind,
    buf: &mut BytesMut,
) -> R {
    if let Some(same) = same_layout(key, version, false) {
        return body
            .encode(buf, same)
            .map_err(|e| WireError::Delegated(format!("{e:#}")));
    }
    let mut w = Writer { buf };
    // The descriptions visit `&mut` fields (reading fills them); writing works on a copy
    // (records are `Bytes`: the copy shares them).
    match (body.clone(), version) {
        (ResponseKind::Produce(mut b), 0 | 1) => produce_response_v0_v1(&mut w, version, &mut b),
        (ResponseKind::Fetch(mut b), 0..=3) => fetch_response_v0_v3(&mut w, version, &mut b),
        (ResponseKind::ListOffsets(mut b), 0) => list_offsets_response_v0(&mut w, &mut b),
        (ResponseKind::DescribeConfigs(mut b), 0) => describe_configs_response_v0(&mut w, &mut b),
        (ResponseKind::CreateTopics(mut b), 0 | 1) => {
            create_topics_response_v0_v1(&mut w, version, &mut b)
        }
        (ResponseKind::DeleteTopics(mut b), 0) => delete_topics_response_v0(&mut w, &mut b),
        (ResponseKind::OffsetForLeaderEpoch(mut b), 0 | 1) => {
            offset_for_leader_epoch_response_v0_v1(&mut w, version, &mut b)
        }
        _ => Err(WireError::NotLegacy),
    }
}

/// Reads a response body of a legacy `version` of `key` (the client side), advancing `buf`.
pub(crate) fn decode_response(
    key: ApiKey,
    version: i16,
    buf: &mut Bytes,
) -> Result<ResponseKind, WireError> {
    if let Some(same) = same_layout(key, version, false) {
        return ResponseKind::decode(key, buf, same)
            .map_err(|e| WireError::Delegated(format!("{e:#}")));
    }
    let len = buf.len();
    let mut r = Reader {
        buf: buf.clone(),
        len,
    };
    let decoded = match (key, version) {
        (ApiKey::Produce, 0 | 1) => {
            let mut b = ProduceResponse::default();
            produce_response_v0_v1(&mut r, version, &mut b)?;
            ResponseKind::Produce(b)
        }
        (ApiKey::Fetch, 0..=3) => {
            let mut b = FetchResponse::default();
            fetch_response_v0_v3(&mut r, version, &mut b)?;
            ResponseKind::Fetch(b)
        }
        (ApiKey::ListOffsets, 0) => {
            let mut b = ListOffsetsResponse::default();
            list_offsets_response_v0(&mut r, &mut b)?;
            ResponseKind::ListOffsets(b)
        }
        (ApiKey::DescribeConfigs, 0) => {
            let mut b = DescribeConfigsResponse::default();
            describe_configs_response_v0(&mut r, &mut b)?;
            ResponseKind::DescribeConfigs(b)
        }
        (ApiKey::CreateTopics, 0 | 1) => {
            let mut b = CreateTopicsResponse::default();
            create_topics_response_v0_v1(&mut r, version, &mut b)?;
            ResponseKind::CreateTopics(b)
        }
        (ApiKey::DeleteTopics, 0) => {
            let mut b = DeleteTopicsResponse::default();
            delete_topics_response_v0(&mut r, &mut b)?;
            ResponseKind::DeleteTopics(b)
        }
        (ApiKey::OffsetForLeaderEpoch, 0 | 1) => {
            let mut b = OffsetForLeaderEpochResponse::default();
            offset_for_leader_epoch_response_v0_v1(&mut r, version, &mut b)?;
            ResponseKind::OffsetForLeaderEpoch(b)
        }
        _ => return Err(WireError::NotLegacy),
    };
    buf.advance(len - r.buf.len());
    Ok(decoded)
}

#[cfg(test)]
mod tests;
