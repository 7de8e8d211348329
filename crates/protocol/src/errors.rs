//! The one table from Cairn's errors to the Kafka error codes clients expect.
//!
//! [`ErrorCode`] lists the codes Cairn answers with (names as in Kafka's `Errors.java` and
//! kafka-protocol's [`ResponseError`]); the `From` impls below are the table. Each `match` is
//! exhaustive, so a new error variant does not compile until it is given a code, and the
//! tests pin every variant's code.

use cairn_storage::{BatchError, StorageError};
use kafka_protocol::ResponseError;

use crate::records::RecordError;
use crate::request::RequestError;

/// A Kafka error code Cairn sends. The discriminant is the wire value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i16)]
pub enum ErrorCode {
    /// The server experienced an unexpected error.
    UnknownServerError = -1,
    /// No error.
    None = 0,
    /// The requested offset is outside the log.
    OffsetOutOfRange = 1,
    /// A batch failed its CRC, is truncated, or otherwise corrupt (retriable).
    CorruptMessage = 2,
    /// This broker does not host the topic-partition.
    UnknownTopicOrPartition = 3,
    /// The requested fetch size is invalid.
    InvalidFetchSize = 4,
    /// No leader for the partition right now (election in progress).
    LeaderNotAvailable = 5,
    /// This broker is not the leader (or a replica) of the partition.
    NotLeaderOrFollower = 6,
    /// The request timed out.
    RequestTimedOut = 7,
    /// A batch is larger than `message.max.bytes`.
    MessageTooLarge = 10,
    /// A committed offset's metadata is longer than the broker allows.
    OffsetMetadataTooLarge = 12,
    /// The group coordinator is still loading its state (retriable).
    CoordinatorLoadInProgress = 14,
    /// No group coordinator is available right now (retriable).
    CoordinatorNotAvailable = 15,
    /// This broker is not the coordinator of the group (retriable: find it again).
    NotCoordinator = 16,
    /// The topic name is invalid.
    InvalidTopicException = 17,
    /// A batch is larger than the segment size.
    RecordListTooLarge = 18,
    /// Fewer in-sync replicas than `min.insync.replicas`.
    NotEnoughReplicas = 19,
    /// `acks` is not -1, 0 or 1.
    InvalidRequiredAcks = 21,
    /// The group generation in the request is not the current one.
    IllegalGeneration = 22,
    /// The member's protocols do not match the group's.
    InconsistentGroupProtocol = 23,
    /// The group id is empty or otherwise invalid.
    InvalidGroupId = 24,
    /// The coordinator does not know this member.
    UnknownMemberId = 25,
    /// The session timeout is outside the broker's allowed range.
    InvalidSessionTimeout = 26,
    /// The group is rebalancing: the member must rejoin.
    RebalanceInProgress = 27,
    /// The committed offset data is too large.
    InvalidCommitOffsetSize = 28,
    /// A timestamp is out of the acceptable range.
    InvalidTimestamp = 32,
    /// The API version is not supported.
    UnsupportedVersion = 35,
    /// The topic already exists.
    TopicAlreadyExists = 36,
    /// The partition count is invalid.
    InvalidPartitions = 37,
    /// The replication factor is invalid.
    InvalidReplicationFactor = 38,
    /// The replica assignment is invalid.
    InvalidReplicaAssignment = 39,
    /// A configuration is invalid.
    InvalidConfig = 40,
    /// This broker is not the controller.
    NotController = 41,
    /// The request is malformed.
    InvalidRequest = 42,
    /// The message format (magic) is not supported.
    UnsupportedForMessageFormat = 43,
    /// A policy refused the request.
    PolicyViolation = 44,
    /// A produced sequence number is out of order.
    OutOfOrderSequenceNumber = 45,
    /// A produced sequence number is a duplicate.
    DuplicateSequenceNumber = 46,
    /// The producer's epoch is stale.
    InvalidProducerEpoch = 47,
    /// The producer id is not assigned to the transactional id.
    InvalidProducerIdMapping = 49,
    /// Disk error on the broker.
    KafkaStorageError = 56,
    /// The producer id is unknown.
    UnknownProducerId = 59,
    /// The group still has members.
    NonEmptyGroup = 68,
    /// The group does not exist.
    GroupIdNotFound = 69,
    /// The leader epoch in the request is older than the broker's.
    FencedLeaderEpoch = 74,
    /// The leader epoch in the request is newer than the broker's.
    UnknownLeaderEpoch = 75,
    /// The compression codec is not allowed in this request version.
    UnsupportedCompressionType = 76,
    /// The leader's high watermark has not caught up after an election.
    OffsetNotAvailable = 78,
    /// A new member must rejoin with the member id it was just given (JoinGroup v4+).
    MemberIdRequired = 79,
    /// The group already has the most members allowed.
    GroupMaxSizeReached = 81,
    /// Another member joined with the same group instance id.
    FencedInstanceId = 82,
    /// Offsets of a topic the active group subscribes to cannot be deleted.
    GroupSubscribedToTopic = 86,
    /// A record failed broker-side validation (not retriable).
    InvalidRecord = 87,
    /// This broker does not host the topic ID.
    UnknownTopicId = 100,
}

/// Kafka's name for error `code` as `Errors.java` spells it (`NOT_LEADER_OR_FOLLOWER`;
/// `NONE` for 0), or `None` for a code kafka-protocol does not know.
pub fn error_name(code: i16) -> Option<String> {
    match ResponseError::try_from_code(code) {
        None => Some("NONE".to_string()),
        Some(ResponseError::Unknown(_)) => None,
        // kafka-protocol names each code after Errors.java in CamelCase.
        Some(known) => Some(screaming_snake(&known.to_string())),
    }
}

/// `NotLeaderOrFollower` → `NOT_LEADER_OR_FOLLOWER`.
fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    let mut previous: Option<char> = None;
    for c in camel.chars() {
        if c.is_ascii_uppercase()
            && previous.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit())
        {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
        previous = Some(c);
    }
    out
}

impl ErrorCode {
    /// Every code, for lookups and tests.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::UnknownServerError,
        ErrorCode::None,
        ErrorCode::OffsetOutOfRange,
        ErrorCode::CorruptMessage,
        ErrorCode::UnknownTopicOrPartition,
        ErrorCode::InvalidFetchSize,
        ErrorCode::LeaderNotAvailable,
        ErrorCode::NotLeaderOrFollower,
        ErrorCode::RequestTimedOut,
        ErrorCode::MessageTooLarge,
        ErrorCode::OffsetMetadataTooLarge,
        ErrorCode::CoordinatorLoadInProgress,
        ErrorCode::CoordinatorNotAvailable,
        ErrorCode::NotCoordinator,
        ErrorCode::InvalidTopicException,
        ErrorCode::RecordListTooLarge,
        ErrorCode::NotEnoughReplicas,
        ErrorCode::InvalidRequiredAcks,
        ErrorCode::IllegalGeneration,
        ErrorCode::InconsistentGroupProtocol,
        ErrorCode::InvalidGroupId,
        ErrorCode::UnknownMemberId,
        ErrorCode::InvalidSessionTimeout,
        ErrorCode::RebalanceInProgress,
        ErrorCode::InvalidCommitOffsetSize,
        ErrorCode::InvalidTimestamp,
        ErrorCode::UnsupportedVersion,
        ErrorCode::TopicAlreadyExists,
        ErrorCode::InvalidPartitions,
        ErrorCode::InvalidReplicationFactor,
        ErrorCode::InvalidReplicaAssignment,
        ErrorCode::InvalidConfig,
        ErrorCode::NotController,
        ErrorCode::InvalidRequest,
        ErrorCode::UnsupportedForMessageFormat,
        ErrorCode::PolicyViolation,
        ErrorCode::OutOfOrderSequenceNumber,
        ErrorCode::DuplicateSequenceNumber,
        ErrorCode::InvalidProducerEpoch,
        ErrorCode::InvalidProducerIdMapping,
        ErrorCode::KafkaStorageError,
        ErrorCode::UnknownProducerId,
        ErrorCode::NonEmptyGroup,
        ErrorCode::GroupIdNotFound,
        ErrorCode::FencedLeaderEpoch,
        ErrorCode::UnknownLeaderEpoch,
        ErrorCode::UnsupportedCompressionType,
        ErrorCode::OffsetNotAvailable,
        ErrorCode::MemberIdRequired,
        ErrorCode::GroupMaxSizeReached,
        ErrorCode::FencedInstanceId,
        ErrorCode::GroupSubscribedToTopic,
        ErrorCode::InvalidRecord,
        ErrorCode::UnknownTopicId,
    ];

    /// The wire value.
    pub const fn code(self) -> i16 {
        self as i16
    }

    /// The code with wire value `code`, if Cairn uses it.
    pub fn from_code(code: i16) -> Option<ErrorCode> {
        Self::ALL.iter().copied().find(|c| c.code() == code)
    }

    /// kafka-protocol's view of the code (`None` for [`ErrorCode::None`]), for its
    /// retriability and description.
    pub fn response_error(self) -> Option<ResponseError> {
        ResponseError::try_from_code(self.code())
    }
}

impl From<ErrorCode> for i16 {
    fn from(c: ErrorCode) -> i16 {
        c.code()
    }
}

impl From<&BatchError> for ErrorCode {
    fn from(e: &BatchError) -> Self {
        match e {
            // Framing and checksum failures: the bytes are not what the producer built.
            BatchError::Truncated { .. }
            | BatchError::LengthTooSmall { .. }
            | BatchError::LengthMismatch { .. }
            | BatchError::BadMagic { .. }
            | BatchError::CrcMismatch { .. } => ErrorCode::CorruptMessage,
            // Kafka's RecordTooLargeException for a batch over message.max.bytes.
            BatchError::TooLarge { .. } => ErrorCode::MessageTooLarge,
            // Well-formed bytes with impossible contents: LogValidator's
            // InvalidRecordException ("invalid offset range", "inconsistent count").
            BatchError::NegativeLastOffsetDelta(_)
            | BatchError::BadRecordCount { .. }
            | BatchError::OffsetOverflow { .. } => ErrorCode::InvalidRecord,
            // Kafka's InvalidTimestampException.
            BatchError::BadTimestamps { .. } => ErrorCode::InvalidTimestamp,
        }
    }
}

impl From<&StorageError> for ErrorCode {
    fn from(e: &StorageError) -> Self {
        match e {
            // The disk failed us, not the client: Kafka's KAFKA_STORAGE_ERROR makes clients
            // refresh metadata and retry, possibly elsewhere.
            StorageError::Io { .. }
            | StorageError::Corrupt { .. }
            | StorageError::Locked { .. } => ErrorCode::KafkaStorageError,
            StorageError::InvalidBatch(b) => ErrorCode::from(b),
            StorageError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            // The log holds a newer epoch than the append's: this replica is no longer the
            // leader it thought it was; the client refreshes metadata and finds the new one.
            StorageError::EpochRegression { .. } => ErrorCode::NotLeaderOrFollower,
            StorageError::InvalidConfig { .. } => ErrorCode::InvalidConfig,
            // Raft-index lookups and caller-sized buffers: only a broker bug puts these in
            // front of a client.
            StorageError::OrdinalOutOfRange { .. } | StorageError::BufferTooSmall { .. } => {
                ErrorCode::UnknownServerError
            }
        }
    }
}

impl From<&RecordError> for ErrorCode {
    fn from(e: &RecordError) -> Self {
        match e {
            RecordError::UnsupportedMagic { .. } => ErrorCode::UnsupportedForMessageFormat,
            RecordError::TruncatedBatch { .. }
            | RecordError::LegacyMessage { .. }
            | RecordError::UnknownCompression { .. }
            | RecordError::Decompression { .. } => ErrorCode::CorruptMessage,
            RecordError::Batch { source, .. } => ErrorCode::from(source),
            // Not retriable: resending the same bytes cannot help (see `records`).
            RecordError::NoBatches
            | RecordError::ControlBatch { .. }
            | RecordError::RecordCount { .. }
            | RecordError::MissingSequence { .. }
            | RecordError::MultipleBatches { .. }
            | RecordError::DecompressionBomb { .. }
            | RecordError::InvalidRecord { .. }
            | RecordError::TrailingBytes { .. } => ErrorCode::InvalidRecord,
            RecordError::CompressionNotAllowed { .. } => ErrorCode::UnsupportedCompressionType,
        }
    }
}

impl From<&RequestError> for ErrorCode {
    fn from(e: &RequestError) -> Self {
        match e {
            RequestError::UnsupportedVersion { .. } | RequestError::RefusedVersion { .. } => {
                ErrorCode::UnsupportedVersion
            }
            // Kafka closes the connection on these; the code is for logs and metrics.
            RequestError::Truncated { .. }
            | RequestError::UnknownApiKey { .. }
            | RequestError::Malformed { .. } => ErrorCode::InvalidRequest,
        }
    }
}

#[cfg(test)]
mod tests;
