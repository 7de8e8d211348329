//! The wire shape of each request Cairn serves, checked before kafka-protocol decodes it.
//!
//! kafka-protocol sizes every array with `Vec::with_capacity(declared count)` *before*
//! reading its elements, so a 30-byte body declaring a 2^31-element array makes it reserve
//! 2^31 elements (tens of GiB: an abort, or a huge reservation). This module walks a body
//! along its schema first — every field, array, string and tagged field, exactly as the
//! generated decoders of kafka-protocol 0.18 read them — and refuses it unless
//!
//! * every array count, string and byte length fits in the bytes that remain,
//! * the request holds at most `max_elements` array elements in all (so the structs
//!   kafka-protocol then builds, at most ~128 bytes each, stay bounded by configuration,
//!   not by how small an element can be on the wire),
//! * it holds at most `max_unknown_tagged_fields` tagged fields Cairn does not know (each
//!   costs a B-tree node, ~400 bytes, for as little as 3 wire bytes),
//! * and it ends exactly where the walk ends.
//!
//! The walk never allocates. Where kafka-protocol would read differently (a varint with
//! bits beyond 32, a known tagged field whose declared size disagrees with its contents),
//! the walk is stricter, so whenever it accepts, kafka-protocol reads the same structure.
//! `tests` checks every schema against kafka-protocol's encoder for every advertised version.
//!
//! The request header is walked here too ([`header`]) rather than by kafka-protocol, whose
//! header decoder keeps every tagged field in a map, with no bound on their number.

use kafka_protocol::messages::ApiKey;

/// Limits on what one request may make the decoder build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Most array elements (at every nesting level together) in one request.
    pub max_elements: u32,
    /// Most tagged fields Cairn does not know, in one request.
    pub max_unknown_tagged_fields: u32,
}

/// Default [`RequestLimits::max_elements`]: 2^20, ample for a Produce or Fetch touching
/// thousands of partitions, and at most ~128 MiB of decoded structs.
pub const DEFAULT_MAX_REQUEST_ELEMENTS: u32 = 1 << 20;

/// Default [`RequestLimits::max_unknown_tagged_fields`]: real clients send none in the
/// versions Cairn serves; a few may appear as the protocol grows.
pub const DEFAULT_MAX_UNKNOWN_TAGGED_FIELDS: u32 = 1024;

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_elements: DEFAULT_MAX_REQUEST_ELEMENTS,
            max_unknown_tagged_fields: DEFAULT_MAX_UNKNOWN_TAGGED_FIELDS,
        }
    }
}

/// Why a request body does not fit its schema. `at` is a byte position in the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// The body ends inside a field.
    #[error("body ends at byte {at}, inside a field")]
    Truncated {
        /// Position of the field.
        at: usize,
    },
    /// A length or count below -1.
    #[error("negative length {length} at byte {at}")]
    NegativeLength {
        /// Position of the length.
        at: usize,
        /// The declared length.
        length: i64,
    },
    /// A length or count larger than the bytes left.
    #[error("length {length} at byte {at} exceeds the {remaining} bytes left")]
    LengthExceedsFrame {
        /// Position of the length.
        at: usize,
        /// The declared length or count.
        length: u64,
        /// Bytes left after it.
        remaining: usize,
    },
    /// A varint longer than 5 bytes or wider than 32 bits.
    #[error("malformed varint at byte {at}")]
    Varint {
        /// Position of the varint.
        at: usize,
    },
    /// A known tagged field whose size disagrees with its contents.
    #[error("tagged field {tag} at byte {at} declares {declared} bytes but holds {actual}")]
    TaggedFieldSize {
        /// Position of the field.
        at: usize,
        /// Its tag.
        tag: u32,
        /// Its declared size.
        declared: u64,
        /// The size of its contents.
        actual: usize,
    },
    /// More array elements than `max_elements`.
    #[error("request holds more than {max} array elements")]
    TooManyElements {
        /// The configured limit.
        max: u32,
    },
    /// More unknown tagged fields than `max_unknown_tagged_fields`.
    #[error("request holds more than {max} unknown tagged fields")]
    TooManyTaggedFields {
        /// The configured limit.
        max: u32,
    },
    /// Bytes after the end of the body.
    /// No schema for this API (a table entry without a shape: a bug, refused safely).
    #[error("no wire shape known for {api_key:?}")]
    NoShape {
        /// The API.
        api_key: ApiKey,
    },
}

/// A field type, as far as the walk needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ty {
    Bool,
    I8,
    I16,
    I32,
    I64,
    Uuid,
    /// STRING, or COMPACT_STRING in flexible versions; nullable or not.
    Str,
    /// BYTES, or COMPACT_BYTES in flexible versions; nullable or not.
    Bytes,
    /// ARRAY / COMPACT_ARRAY of the element type; nullable or not.
    Array(&'static Ty),
    /// A nested struct: its fields, then (flexible versions) its tagged fields.
    Struct(&'static [Field]),
}

/// A field present in versions `min..=max`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    ty: Ty,
    min: i16,
    max: i16,
}

const fn f(ty: Ty, min: i16, max: i16) -> Field {
    Field { ty, min, max }
}

const N: i16 = i16::MAX;

/// A tagged field kafka-protocol decodes (rather than keeping as unknown bytes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tagged {
    tag: u32,
    ty: Ty,
    min: i16,
}

/// The schema of one request body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub(crate) key: ApiKey,
    pub(crate) flexible_from: i16,
    fields: &'static [Field],
    /// Known tagged fields of the top-level struct (no nested struct of a supported version
    /// has any that kafka-protocol decodes rather than refuses).
    tagged: &'static [Tagged],
}

use Ty::{Bool, Bytes, Str, Uuid, I16, I32, I64, I8};

// Field lists follow kafka-protocol 0.18's generated decoders (and Kafka's JSON schemas).
const METADATA_TOPIC: &[Field] = &[f(Uuid, 10, N), f(Str, 0, N)];
const METADATA: &[Field] = &[
    f(Ty::Array(&Ty::Struct(METADATA_TOPIC)), 0, N),
    f(Bool, 4, N),  // allow_auto_topic_creation
    f(Bool, 8, 10), // include_cluster_authorized_operations
    f(Bool, 8, N),  // include_topic_authorized_operations
];

const PRODUCE_PARTITION: &[Field] = &[f(I32, 0, N), f(Bytes, 0, N)];
const PRODUCE_TOPIC: &[Field] = &[
    f(Str, 0, 12),
    f(Uuid, 13, N),
    f(Ty::Array(&Ty::Struct(PRODUCE_PARTITION)), 0, N),
];
const PRODUCE: &[Field] = &[
    f(Str, 3, N), // transactional_id
    f(I16, 0, N), // acks
    f(I32, 0, N), // timeout_ms
    f(Ty::Array(&Ty::Struct(PRODUCE_TOPIC)), 0, N),
];

const FETCH_PARTITION: &[Field] = &[
    f(I32, 0, N),  // partition
    f(I32, 9, N),  // current_leader_epoch
    f(I64, 0, N),  // fetch_offset
    f(I32, 12, N), // last_fetched_epoch
    f(I64, 5, N),  // log_start_offset
    f(I32, 0, N),  // partition_max_bytes
];
const FETCH_TOPIC: &[Field] = &[
    f(Str, 0, 12),
    f(Uuid, 13, N),
    f(Ty::Array(&Ty::Struct(FETCH_PARTITION)), 0, N),
];
const FORGOTTEN_TOPIC: &[Field] = &[f(Str, 7, 12), f(Uuid, 13, N), f(Ty::Array(&I32), 7, N)];
const FETCH: &[Field] = &[
    f(I32, 0, 14), // replica_id
    f(I32, 0, N),  // max_wait_ms
    f(I32, 0, N),  // min_bytes
    f(I32, 3, N),  // max_bytes
    f(I8, 4, N),   // isolation_level
    f(I32, 7, N),  // session_id
    f(I32, 7, N),  // session_epoch
    f(Ty::Array(&Ty::Struct(FETCH_TOPIC)), 0, N),
    f(Ty::Array(&Ty::Struct(FORGOTTEN_TOPIC)), 7, N),
    f(Str, 11, N), // rack_id
];
const FETCH_TAGGED: &[Tagged] = &[Tagged {
    tag: 0, // cluster_id
    ty: Str,
    min: 12,
}];

const LIST_OFFSETS_PARTITION: &[Field] = &[
    f(I32, 0, N), // partition_index
    f(I32, 4, N), // current_leader_epoch
    f(I64, 0, N), // timestamp
    f(I32, 0, 0), // max_num_offsets
];
const LIST_OFFSETS_TOPIC: &[Field] = &[
    f(Str, 0, N),
    f(Ty::Array(&Ty::Struct(LIST_OFFSETS_PARTITION)), 0, N),
];
const LIST_OFFSETS: &[Field] = &[
    f(I32, 0, N), // replica_id
    f(I8, 2, N),  // isolation_level
    f(Ty::Array(&Ty::Struct(LIST_OFFSETS_TOPIC)), 0, N),
    f(I32, 10, N), // timeout_ms
];

const API_VERSIONS: &[Field] = &[f(Str, 3, N), f(Str, 3, N)];

const CREATABLE_ASSIGNMENT: &[Field] = &[f(I32, 0, N), f(Ty::Array(&I32), 0, N)];
const CREATABLE_CONFIG: &[Field] = &[f(Str, 0, N), f(Str, 0, N)];
const CREATABLE_TOPIC: &[Field] = &[
    f(Str, 0, N), // name
    f(I32, 0, N), // num_partitions
    f(I16, 0, N), // replication_factor
    f(Ty::Array(&Ty::Struct(CREATABLE_ASSIGNMENT)), 0, N),
    f(Ty::Array(&Ty::Struct(CREATABLE_CONFIG)), 0, N),
];
const CREATE_TOPICS: &[Field] = &[
    f(Ty::Array(&Ty::Struct(CREATABLE_TOPIC)), 0, N),
    f(I32, 0, N),  // timeout_ms
    f(Bool, 1, N), // validate_only
];

const DELETE_TOPIC_STATE: &[Field] = &[f(Str, 6, N), f(Uuid, 6, N)];
const DELETE_TOPICS: &[Field] = &[
    f(Ty::Array(&Ty::Struct(DELETE_TOPIC_STATE)), 6, N),
    f(Ty::Array(&Str), 0, 5), // topic_names
    f(I32, 0, N),             // timeout_ms
];

const DELETE_RECORDS_PARTITION: &[Field] = &[f(I32, 0, N), f(I64, 0, N)];
const DELETE_RECORDS_TOPIC: &[Field] = &[
    f(Str, 0, N),
    f(Ty::Array(&Ty::Struct(DELETE_RECORDS_PARTITION)), 0, N),
];
const DELETE_RECORDS: &[Field] = &[
    f(Ty::Array(&Ty::Struct(DELETE_RECORDS_TOPIC)), 0, N),
    f(I32, 0, N), // timeout_ms
];

const INIT_PRODUCER_ID: &[Field] = &[
    f(Str, 0, N), // transactional_id
    f(I32, 0, N), // transaction_timeout_ms
    f(I64, 3, N), // producer_id
    f(I16, 3, N), // producer_epoch
];

const OFFSET_FOR_LEADER_EPOCH_PARTITION: &[Field] = &[f(I32, 0, N), f(I32, 2, N), f(I32, 0, N)];
const OFFSET_FOR_LEADER_EPOCH_TOPIC: &[Field] = &[
    f(Str, 0, N),
    f(
        Ty::Array(&Ty::Struct(OFFSET_FOR_LEADER_EPOCH_PARTITION)),
        0,
        N,
    ),
];
const OFFSET_FOR_LEADER_EPOCH: &[Field] = &[
    f(I32, 3, N), // replica_id
    f(Ty::Array(&Ty::Struct(OFFSET_FOR_LEADER_EPOCH_TOPIC)), 0, N),
];

const DESCRIBE_CONFIGS_RESOURCE: &[Field] = &[
    f(I8, 0, N),
    f(Str, 0, N),
    f(Ty::Array(&Str), 0, N), // configuration_keys
];
const DESCRIBE_CONFIGS: &[Field] = &[
    f(Ty::Array(&Ty::Struct(DESCRIBE_CONFIGS_RESOURCE)), 0, N),
    f(Bool, 1, N), // include_synonyms
    f(Bool, 3, N), // include_documentation
];

const CREATE_PARTITIONS_ASSIGNMENT: &[Field] = &[f(Ty::Array(&I32), 0, N)];
const CREATE_PARTITIONS_TOPIC: &[Field] = &[
    f(Str, 0, N),
    f(I32, 0, N), // count
    f(Ty::Array(&Ty::Struct(CREATE_PARTITIONS_ASSIGNMENT)), 0, N),
];
const CREATE_PARTITIONS: &[Field] = &[
    f(Ty::Array(&Ty::Struct(CREATE_PARTITIONS_TOPIC)), 0, N),
    f(I32, 0, N),  // timeout_ms
    f(Bool, 0, N), // validate_only
];

const ALTERABLE_CONFIG: &[Field] = &[f(Str, 0, N), f(I8, 0, N), f(Str, 0, N)];
const ALTER_CONFIGS_RESOURCE: &[Field] = &[
    f(I8, 0, N),
    f(Str, 0, N),
    f(Ty::Array(&Ty::Struct(ALTERABLE_CONFIG)), 0, N),
];
const INCREMENTAL_ALTER_CONFIGS: &[Field] = &[
    f(Ty::Array(&Ty::Struct(ALTER_CONFIGS_RESOURCE)), 0, N),
    f(Bool, 0, N), // validate_only
];

const ALTER_CONFIGS_ENTRY: &[Field] = &[f(Str, 0, N), f(Str, 0, N)];
const LEGACY_ALTER_CONFIGS_RESOURCE: &[Field] = &[
    f(I8, 0, N),
    f(Str, 0, N),
    f(Ty::Array(&Ty::Struct(ALTER_CONFIGS_ENTRY)), 0, N),
];
const ALTER_CONFIGS: &[Field] = &[
    f(Ty::Array(&Ty::Struct(LEGACY_ALTER_CONFIGS_RESOURCE)), 0, N),
    f(Bool, 0, N), // validate_only
];

const DESCRIBE_LOG_DIRS_TOPIC: &[Field] = &[f(Str, 0, N), f(Ty::Array(&I32), 0, N)];
const DESCRIBE_LOG_DIRS: &[Field] = &[f(Ty::Array(&Ty::Struct(DESCRIBE_LOG_DIRS_TOPIC)), 0, N)];

const DESCRIBE_CLUSTER: &[Field] = &[f(Bool, 0, N), f(I8, 1, N), f(Bool, 2, N)];

const OFFSET_COMMIT_PARTITION: &[Field] = &[
    f(I32, 0, N), // partition_index
    f(I64, 0, N), // committed_offset
    f(I32, 6, N), // committed_leader_epoch
    f(I64, 1, 1), // commit_timestamp
    f(Str, 0, N), // committed_metadata
];
const OFFSET_COMMIT_TOPIC: &[Field] = &[
    f(Str, 0, N),
    f(Ty::Array(&Ty::Struct(OFFSET_COMMIT_PARTITION)), 0, N),
];
const OFFSET_COMMIT: &[Field] = &[
    f(Str, 0, N), // group_id
    f(I32, 1, N), // generation_id_or_member_epoch
    f(Str, 1, N), // member_id
    f(Str, 7, N), // group_instance_id
    f(I64, 2, 4), // retention_time_ms
    f(Ty::Array(&Ty::Struct(OFFSET_COMMIT_TOPIC)), 0, N),
];

const OFFSET_FETCH_TOPIC: &[Field] = &[f(Str, 0, 7), f(Ty::Array(&I32), 0, 7)];
const OFFSET_FETCH_GROUP_TOPIC: &[Field] = &[f(Str, 8, N), f(Ty::Array(&I32), 8, N)];
const OFFSET_FETCH_GROUP: &[Field] = &[
    f(Str, 8, N), // group_id
    f(Str, 9, N), // member_id
    f(I32, 9, N), // member_epoch
    f(Ty::Array(&Ty::Struct(OFFSET_FETCH_GROUP_TOPIC)), 8, N),
];
const OFFSET_FETCH: &[Field] = &[
    f(Str, 0, 7), // group_id
    f(Ty::Array(&Ty::Struct(OFFSET_FETCH_TOPIC)), 0, 7),
    f(Ty::Array(&Ty::Struct(OFFSET_FETCH_GROUP)), 8, N),
    f(Bool, 7, N), // require_stable
];

const FIND_COORDINATOR: &[Field] = &[
    f(Str, 0, 3),             // key
    f(I8, 1, N),              // key_type
    f(Ty::Array(&Str), 4, N), // coordinator_keys
];

const JOIN_GROUP_PROTOCOL: &[Field] = &[f(Str, 0, N), f(Bytes, 0, N)];
const JOIN_GROUP: &[Field] = &[
    f(Str, 0, N), // group_id
    f(I32, 0, N), // session_timeout_ms
    f(I32, 1, N), // rebalance_timeout_ms
    f(Str, 0, N), // member_id
    f(Str, 5, N), // group_instance_id
    f(Str, 0, N), // protocol_type
    f(Ty::Array(&Ty::Struct(JOIN_GROUP_PROTOCOL)), 0, N),
    f(Str, 8, N), // reason
];

const HEARTBEAT: &[Field] = &[
    f(Str, 0, N), // group_id
    f(I32, 0, N), // generation_id
    f(Str, 0, N), // member_id
    f(Str, 3, N), // group_instance_id
];

const LEAVE_GROUP_MEMBER: &[Field] = &[
    f(Str, 3, N), // member_id
    f(Str, 3, N), // group_instance_id
    f(Str, 5, N), // reason
];
const LEAVE_GROUP: &[Field] = &[
    f(Str, 0, N), // group_id
    f(Str, 0, 2), // member_id
    f(Ty::Array(&Ty::Struct(LEAVE_GROUP_MEMBER)), 3, N),
];

const SYNC_GROUP_ASSIGNMENT: &[Field] = &[f(Str, 0, N), f(Bytes, 0, N)];
const SYNC_GROUP: &[Field] = &[
    f(Str, 0, N), // group_id
    f(I32, 0, N), // generation_id
    f(Str, 0, N), // member_id
    f(Str, 3, N), // group_instance_id
    f(Str, 5, N), // protocol_type
    f(Str, 5, N), // protocol_name
    f(Ty::Array(&Ty::Struct(SYNC_GROUP_ASSIGNMENT)), 0, N),
];

const DESCRIBE_GROUPS: &[Field] = &[
    f(Ty::Array(&Str), 0, N), // groups
    f(Bool, 3, N),            // include_authorized_operations
];

const LIST_GROUPS: &[Field] = &[
    f(Ty::Array(&Str), 4, N), // states_filter
    f(Ty::Array(&Str), 5, N), // types_filter
];

const DELETE_GROUPS: &[Field] = &[f(Ty::Array(&Str), 0, N)];

const OFFSET_DELETE_PARTITION: &[Field] = &[f(I32, 0, N)];
const OFFSET_DELETE_TOPIC: &[Field] = &[
    f(Str, 0, N),
    f(Ty::Array(&Ty::Struct(OFFSET_DELETE_PARTITION)), 0, N),
];
const OFFSET_DELETE: &[Field] = &[
    f(Str, 0, N), // group_id
    f(Ty::Array(&Ty::Struct(OFFSET_DELETE_TOPIC)), 0, N),
];

const fn shape(key: ApiKey, flexible_from: i16, fields: &'static [Field]) -> Shape {
    Shape {
        key,
        flexible_from,
        fields,
        tagged: &[],
    }
}

/// The schema of every request in [`crate::apis::SUPPORTED_APIS`] (a test keeps them in
/// step), with the first flexible version of each.
pub(crate) const SHAPES: &[Shape] = &[
    shape(ApiKey::Produce, 9, PRODUCE),
    Shape {
        key: ApiKey::Fetch,
        flexible_from: 12,
        fields: FETCH,
        tagged: FETCH_TAGGED,
    },
    shape(ApiKey::ListOffsets, 6, LIST_OFFSETS),
    shape(ApiKey::Metadata, 9, METADATA),
    shape(ApiKey::OffsetCommit, 8, OFFSET_COMMIT),
    shape(ApiKey::OffsetFetch, 6, OFFSET_FETCH),
    shape(ApiKey::FindCoordinator, 3, FIND_COORDINATOR),
    shape(ApiKey::JoinGroup, 6, JOIN_GROUP),
    shape(ApiKey::Heartbeat, 4, HEARTBEAT),
    shape(ApiKey::LeaveGroup, 4, LEAVE_GROUP),
    shape(ApiKey::SyncGroup, 4, SYNC_GROUP),
    shape(ApiKey::DescribeGroups, 5, DESCRIBE_GROUPS),
    shape(ApiKey::ListGroups, 3, LIST_GROUPS),
    shape(ApiKey::ApiVersions, 3, API_VERSIONS),
    shape(ApiKey::CreateTopics, 5, CREATE_TOPICS),
    shape(ApiKey::DeleteTopics, 4, DELETE_TOPICS),
    shape(ApiKey::DeleteRecords, 2, DELETE_RECORDS),
    shape(ApiKey::InitProducerId, 2, INIT_PRODUCER_ID),
    shape(ApiKey::OffsetForLeaderEpoch, 4, OFFSET_FOR_LEADER_EPOCH),
    shape(ApiKey::DescribeConfigs, 4, DESCRIBE_CONFIGS),
    shape(ApiKey::AlterConfigs, 2, ALTER_CONFIGS),
    shape(ApiKey::DescribeLogDirs, 2, DESCRIBE_LOG_DIRS),
    shape(ApiKey::CreatePartitions, 2, CREATE_PARTITIONS),
    shape(ApiKey::DeleteGroups, 2, DELETE_GROUPS),
    shape(
        ApiKey::IncrementalAlterConfigs,
        1,
        INCREMENTAL_ALTER_CONFIGS,
    ),
    // Never flexible.
    shape(ApiKey::OffsetDelete, N, OFFSET_DELETE),
    shape(ApiKey::DescribeCluster, 0, DESCRIBE_CLUSTER),
];

/// Where the request header starting `frame` ends, and its client id's bytes.
///
/// Header v1: `api_key`, `api_version`, `correlation_id`, `client_id` (nullable STRING);
/// header v2 adds tagged fields, none of which Cairn knows (they are skipped, counted against
/// `max_unknown_tagged_fields`). The client id stays a non-compact STRING in v2.
pub(crate) fn header<'a>(
    frame: &'a [u8],
    header_version: i16,
    limits: &RequestLimits,
) -> Result<(Option<&'a [u8]>, usize), ShapeError> {
    const FIXED: usize = 8;
    let mut w = Walk {
        buf: frame,
        pos: FIXED.min(frame.len()),
        version: header_version,
        flexible: false,
        elements_left: 0,
        max_elements: 0,
        unknown_tags_left: limits.max_unknown_tagged_fields,
        max_unknown_tags: limits.max_unknown_tagged_fields,
    };
    if frame.len() < FIXED {
        return Err(ShapeError::Truncated { at: frame.len() });
    }
    let client_id = match w.length(false)? {
        None => None,
        Some(n) => {
            let start = w.pos;
            w.take(n)?;
            frame.get(start..w.pos)
        }
    };
    if header_version >= 2 {
        w.flexible = true;
        w.tagged_fields(&[])?;
    }
    Ok((client_id, w.pos))
}

/// Checks that `body` (the bytes after the request header) starts with the shape of `key`
/// at `version` within `limits`; returns where that shape ends (bytes after it are ignored,
/// as Kafka does).
pub(crate) fn check(
    key: ApiKey,
    version: i16,
    body: &[u8],
    limits: &RequestLimits,
) -> Result<usize, ShapeError> {
    let Some(shape) = SHAPES.iter().find(|s| s.key == key) else {
        return Err(ShapeError::NoShape { api_key: key });
    };
    let mut w = Walk {
        buf: body,
        pos: 0,
        version,
        flexible: version >= shape.flexible_from,
        elements_left: limits.max_elements,
        max_elements: limits.max_elements,
        unknown_tags_left: limits.max_unknown_tagged_fields,
        max_unknown_tags: limits.max_unknown_tagged_fields,
    };
    w.fields(shape.fields)?;
    if w.flexible {
        w.tagged_fields(shape.tagged)?;
    }
    // Bytes after the body are left alone, as Apache Kafka does (its parser never checks
    // that a request body used the whole frame): librdkafka 2.x pads its all-topics
    // Metadata request with three such bytes. The frame length still bounds them.
    Ok(w.pos)
}

struct Walk<'a> {
    buf: &'a [u8],
    pos: usize,
    version: i16,
    flexible: bool,
    elements_left: u32,
    max_elements: u32,
    unknown_tags_left: u32,
    max_unknown_tags: u32,
}

impl Walk<'_> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: u64) -> Result<(), ShapeError> {
        if n > self.remaining() as u64 {
            return Err(ShapeError::Truncated { at: self.pos });
        }
        self.pos += n as usize;
        Ok(())
    }

    fn fixed<const W: usize>(&mut self) -> Result<[u8; W], ShapeError> {
        let Some(bytes) = self.buf.get(self.pos..self.pos + W) else {
            return Err(ShapeError::Truncated { at: self.pos });
        };
        let mut a = [0u8; W];
        a.copy_from_slice(bytes);
        self.pos += W;
        Ok(a)
    }

    /// An UNSIGNED_VARINT. kafka-protocol reads at most 5 bytes and keeps the low 32 bits;
    /// anything it would truncate is refused here, so both read the same value.
    fn uvarint(&mut self) -> Result<u32, ShapeError> {
        let at = self.pos;
        let mut value: u32 = 0;
        for i in 0..5 {
            let [b] = self.fixed::<1>()?;
            if i == 4 && b > 0x0f {
                return Err(ShapeError::Varint { at });
            }
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ShapeError::Varint { at })
    }

    /// A length or count: `None` for null (-1), refused below -1 or beyond the bytes left
    /// (every element and byte takes at least one byte of the body).
    fn length(&mut self, wide: bool) -> Result<Option<u64>, ShapeError> {
        let at = self.pos;
        let n: i64 = if self.flexible {
            i64::from(self.uvarint()?) - 1
        } else if wide {
            i64::from(i32::from_be_bytes(self.fixed::<4>()?))
        } else {
            i64::from(i16::from_be_bytes(self.fixed::<2>()?))
        };
        if n == -1 {
            return Ok(None);
        }
        let Ok(n) = u64::try_from(n) else {
            return Err(ShapeError::NegativeLength { at, length: n });
        };
        if n > self.remaining() as u64 {
            return Err(ShapeError::LengthExceedsFrame {
                at,
                length: n,
                remaining: self.remaining(),
            });
        }
        Ok(Some(n))
    }

    fn fields(&mut self, fields: &[Field]) -> Result<(), ShapeError> {
        for field in fields {
            if (field.min..=field.max).contains(&self.version) {
                self.value(field.ty)?;
            }
        }
        Ok(())
    }

    fn value(&mut self, ty: Ty) -> Result<(), ShapeError> {
        match ty {
            Bool | I8 => self.take(1),
            I16 => self.take(2),
            I32 => self.take(4),
            I64 => self.take(8),
            Uuid => self.take(16),
            Str => {
                let n = self.length(false)?;
                self.take(n.unwrap_or(0))
            }
            Bytes => {
                let n = self.length(true)?;
                self.take(n.unwrap_or(0))
            }
            Ty::Array(elem) => {
                let count = self.length(true)?.unwrap_or(0);
                // `length` bounded count by the bytes left, so this fits u32 for any frame
                // under 4 GiB; saturate rather than assume.
                let count32 = u32::try_from(count).unwrap_or(u32::MAX);
                if count32 > self.elements_left {
                    return Err(ShapeError::TooManyElements {
                        max: self.max_elements,
                    });
                }
                self.elements_left -= count32;
                for _ in 0..count {
                    self.value(*elem)?;
                }
                Ok(())
            }
            Ty::Struct(fields) => {
                self.fields(fields)?;
                if self.flexible {
                    self.tagged_fields(&[])?;
                }
                Ok(())
            }
        }
    }

    fn tagged_fields(&mut self, known: &[Tagged]) -> Result<(), ShapeError> {
        let count = self.uvarint()?;
        for _ in 0..count {
            let at = self.pos;
            let tag = self.uvarint()?;
            let size = u64::from(self.uvarint()?);
            match known.iter().find(|k| k.tag == tag && self.version >= k.min) {
                // kafka-protocol decodes a known field from the stream and ignores `size`:
                // insist they agree, so both land on the same next byte.
                Some(k) => {
                    let start = self.pos;
                    self.value(k.ty)?;
                    let actual = self.pos - start;
                    if actual as u64 != size {
                        return Err(ShapeError::TaggedFieldSize {
                            at,
                            tag,
                            declared: size,
                            actual,
                        });
                    }
                }
                None => {
                    if self.unknown_tags_left == 0 {
                        return Err(ShapeError::TooManyTaggedFields {
                            max: self.max_unknown_tags,
                        });
                    }
                    self.unknown_tags_left -= 1;
                    self.take(size)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
