use super::*;
use crate::records::{Compression, RecordFault};
use std::path::PathBuf;

/// Every code agrees with kafka-protocol's table, by name and value.
#[test]
fn codes_match_kafka_protocol() {
    for &c in ErrorCode::ALL {
        assert_eq!(ErrorCode::from_code(c.code()), Some(c));
        match c.response_error() {
            None => assert_eq!(c, ErrorCode::None),
            Some(r) => {
                assert_eq!(r.code(), c.code());
                assert_eq!(
                    format!("{c:?}"),
                    format!("{r:?}"),
                    "name of code {}",
                    c.code()
                );
            }
        }
    }
    assert_eq!(ErrorCode::from_code(9999), None);
}

/// `ALL` lists every variant: adding one without listing it fails to compile here.
#[test]
fn all_is_complete() {
    fn listed(c: ErrorCode) -> bool {
        match c {
            ErrorCode::UnknownServerError
            | ErrorCode::None
            | ErrorCode::OffsetOutOfRange
            | ErrorCode::CorruptMessage
            | ErrorCode::UnknownTopicOrPartition
            | ErrorCode::InvalidFetchSize
            | ErrorCode::LeaderNotAvailable
            | ErrorCode::NotLeaderOrFollower
            | ErrorCode::RequestTimedOut
            | ErrorCode::MessageTooLarge
            | ErrorCode::OffsetMetadataTooLarge
            | ErrorCode::CoordinatorLoadInProgress
            | ErrorCode::CoordinatorNotAvailable
            | ErrorCode::NotCoordinator
            | ErrorCode::InvalidTopicException
            | ErrorCode::RecordListTooLarge
            | ErrorCode::NotEnoughReplicas
            | ErrorCode::InvalidRequiredAcks
            | ErrorCode::IllegalGeneration
            | ErrorCode::InconsistentGroupProtocol
            | ErrorCode::InvalidGroupId
            | ErrorCode::UnknownMemberId
            | ErrorCode::InvalidSessionTimeout
            | ErrorCode::RebalanceInProgress
            | ErrorCode::InvalidCommitOffsetSize
            | ErrorCode::InvalidTimestamp
            | ErrorCode::UnsupportedVersion
            | ErrorCode::TopicAlreadyExists
            | ErrorCode::InvalidPartitions
            | ErrorCode::InvalidReplicationFactor
            | ErrorCode::InvalidReplicaAssignment
            | ErrorCode::InvalidConfig
            | ErrorCode::NotController
            | ErrorCode::InvalidRequest
            | ErrorCode::UnsupportedForMessageFormat
            | ErrorCode::PolicyViolation
            | ErrorCode::OutOfOrderSequenceNumber
            | ErrorCode::DuplicateSequenceNumber
            | ErrorCode::InvalidProducerEpoch
            | ErrorCode::InvalidProducerIdMapping
            | ErrorCode::KafkaStorageError
            | ErrorCode::UnknownProducerId
            | ErrorCode::NonEmptyGroup
            | ErrorCode::GroupIdNotFound
            | ErrorCode::FencedLeaderEpoch
            | ErrorCode::UnknownLeaderEpoch
            | ErrorCode::UnsupportedCompressionType
            | ErrorCode::OffsetNotAvailable
            | ErrorCode::MemberIdRequired
            | ErrorCode::GroupMaxSizeReached
            | ErrorCode::FencedInstanceId
            | ErrorCode::GroupSubscribedToTopic
            | ErrorCode::InvalidRecord
            | ErrorCode::UnknownTopicId => ErrorCode::ALL.contains(&c),
        }
    }
    assert!(ErrorCode::ALL.iter().all(|&c| listed(c)));
    assert_eq!(ErrorCode::ALL.len(), 54);
}

/// One instance of every `BatchError` variant with its code. The exhaustive match makes a
/// new variant fail to compile until it is added here (and to the table).
fn batch_cases() -> Vec<(BatchError, ErrorCode)> {
    let cases = vec![
        (
            BatchError::Truncated {
                available: 1,
                needed: 61,
            },
            ErrorCode::CorruptMessage,
        ),
        (
            BatchError::LengthTooSmall {
                declared: 1,
                min: 49,
            },
            ErrorCode::CorruptMessage,
        ),
        (
            BatchError::TooLarge { size: 2, max: 1 },
            ErrorCode::MessageTooLarge,
        ),
        (
            BatchError::LengthMismatch {
                declared: 1,
                actual: 2,
            },
            ErrorCode::CorruptMessage,
        ),
        (BatchError::BadMagic { magic: 3 }, ErrorCode::CorruptMessage),
        (
            BatchError::CrcMismatch {
                stored: 1,
                computed: 2,
            },
            ErrorCode::CorruptMessage,
        ),
        (
            BatchError::NegativeLastOffsetDelta(-1),
            ErrorCode::InvalidRecord,
        ),
        (
            BatchError::BadRecordCount { count: 5, span: 1 },
            ErrorCode::InvalidRecord,
        ),
        (
            BatchError::BadTimestamps { base: -5, max: 0 },
            ErrorCode::InvalidTimestamp,
        ),
        (
            BatchError::OffsetOverflow {
                base: i64::MAX,
                delta: 1,
            },
            ErrorCode::InvalidRecord,
        ),
    ];
    for (e, _) in &cases {
        match e {
            BatchError::Truncated { .. }
            | BatchError::LengthTooSmall { .. }
            | BatchError::TooLarge { .. }
            | BatchError::LengthMismatch { .. }
            | BatchError::BadMagic { .. }
            | BatchError::CrcMismatch { .. }
            | BatchError::NegativeLastOffsetDelta(_)
            | BatchError::BadRecordCount { .. }
            | BatchError::BadTimestamps { .. }
            | BatchError::OffsetOverflow { .. } => {}
        }
    }
    cases
}

#[test]
fn batch_errors() {
    let cases = batch_cases();
    assert_eq!(cases.len(), 10, "one case per variant");
    for (e, code) in &cases {
        assert_eq!(ErrorCode::from(e), *code, "{e}");
    }
}

#[test]
fn storage_errors() {
    let io = || std::io::Error::other("disk on fire");
    let mut cases = vec![
        (
            StorageError::Io {
                op: "write",
                path: PathBuf::from("x"),
                source: io(),
            },
            ErrorCode::KafkaStorageError,
        ),
        (
            StorageError::Corrupt {
                path: PathBuf::from("x"),
                position: 1,
                reason: "bad".into(),
            },
            ErrorCode::KafkaStorageError,
        ),
        (
            StorageError::OffsetOutOfRange {
                offset: 9,
                log_start: 0,
                log_end: 5,
            },
            ErrorCode::OffsetOutOfRange,
        ),
        (
            StorageError::OrdinalOutOfRange {
                ordinal: 9,
                first: 0,
                next: 5,
            },
            ErrorCode::UnknownServerError,
        ),
        (
            StorageError::EpochRegression {
                epoch: 1,
                latest: 2,
            },
            ErrorCode::NotLeaderOrFollower,
        ),
        (
            StorageError::InvalidConfig {
                reason: "segment.bytes".into(),
            },
            ErrorCode::InvalidConfig,
        ),
        (
            StorageError::BufferTooSmall {
                needed: 2,
                given: 1,
            },
            ErrorCode::UnknownServerError,
        ),
        (
            StorageError::Locked {
                path: PathBuf::from("x"),
            },
            ErrorCode::KafkaStorageError,
        ),
    ];
    for (b, code) in batch_cases() {
        cases.push((StorageError::InvalidBatch(b), code));
    }
    for (e, code) in &cases {
        match e {
            StorageError::Io { .. }
            | StorageError::Corrupt { .. }
            | StorageError::InvalidBatch(_)
            | StorageError::OffsetOutOfRange { .. }
            | StorageError::OrdinalOutOfRange { .. }
            | StorageError::EpochRegression { .. }
            | StorageError::InvalidConfig { .. }
            | StorageError::BufferTooSmall { .. }
            | StorageError::Locked { .. } => {}
        }
        assert_eq!(ErrorCode::from(e), *code, "{e}");
    }
}

#[test]
fn record_errors() {
    let io = || std::io::Error::other("bad data");
    let cases = vec![
        (RecordError::NoBatches, ErrorCode::InvalidRecord),
        (
            RecordError::TruncatedBatch {
                position: 0,
                available: 3,
                needed: 61,
            },
            ErrorCode::CorruptMessage,
        ),
        (
            RecordError::UnsupportedMagic {
                position: 0,
                magic: 1,
            },
            ErrorCode::UnsupportedForMessageFormat,
        ),
        (
            RecordError::Batch {
                position: 0,
                source: BatchError::TooLarge { size: 2, max: 1 },
            },
            ErrorCode::MessageTooLarge,
        ),
        (
            RecordError::Batch {
                position: 0,
                source: BatchError::CrcMismatch {
                    stored: 1,
                    computed: 2,
                },
            },
            ErrorCode::CorruptMessage,
        ),
        (
            RecordError::ControlBatch { position: 0 },
            ErrorCode::InvalidRecord,
        ),
        (
            RecordError::RecordCount {
                position: 0,
                count: 0,
                last_offset_delta: 0,
            },
            ErrorCode::InvalidRecord,
        ),
        (
            RecordError::MissingSequence {
                position: 0,
                producer_id: 1,
                base_sequence: -1,
            },
            ErrorCode::InvalidRecord,
        ),
        (
            RecordError::MultipleBatches { producer_id: 1 },
            ErrorCode::InvalidRecord,
        ),
        (
            RecordError::UnknownCompression {
                position: 0,
                codec: 5,
            },
            ErrorCode::CorruptMessage,
        ),
        (
            RecordError::Decompression {
                position: 0,
                codec: Compression::Gzip,
                source: io(),
            },
            ErrorCode::CorruptMessage,
        ),
        (
            RecordError::DecompressionBomb {
                position: 0,
                codec: Compression::Zstd,
                limit: 1,
            },
            ErrorCode::InvalidRecord,
        ),
        (
            RecordError::InvalidRecord {
                position: 0,
                index: 0,
                fault: RecordFault::Truncated,
            },
            ErrorCode::InvalidRecord,
        ),
        (
            RecordError::TrailingBytes { position: 0 },
            ErrorCode::InvalidRecord,
        ),
        (
            RecordError::LegacyMessage {
                position: 0,
                reason: "bad CRC".into(),
            },
            ErrorCode::CorruptMessage,
        ),
        (
            RecordError::CompressionNotAllowed {
                codec: Compression::Zstd,
                api_version: 6,
            },
            ErrorCode::UnsupportedCompressionType,
        ),
    ];
    for (e, code) in &cases {
        match e {
            RecordError::NoBatches
            | RecordError::TruncatedBatch { .. }
            | RecordError::UnsupportedMagic { .. }
            | RecordError::Batch { .. }
            | RecordError::ControlBatch { .. }
            | RecordError::RecordCount { .. }
            | RecordError::MissingSequence { .. }
            | RecordError::MultipleBatches { .. }
            | RecordError::UnknownCompression { .. }
            | RecordError::Decompression { .. }
            | RecordError::DecompressionBomb { .. }
            | RecordError::InvalidRecord { .. }
            | RecordError::TrailingBytes { .. }
            | RecordError::LegacyMessage { .. }
            | RecordError::CompressionNotAllowed { .. } => {}
        }
        assert_eq!(ErrorCode::from(e), *code, "{e}");
    }
}

#[test]
fn request_errors() {
    let cases = vec![
        (
            RequestError::Truncated { len: 3 },
            ErrorCode::InvalidRequest,
        ),
        (
            RequestError::UnknownApiKey {
                api_key: 999,
                correlation_id: 1,
            },
            ErrorCode::InvalidRequest,
        ),
        (
            RequestError::UnsupportedVersion {
                api_key: kafka_protocol::messages::ApiKey::Produce,
                api_version: 99,
                correlation_id: 1,
            },
            ErrorCode::UnsupportedVersion,
        ),
        (
            RequestError::RefusedVersion {
                api_key: kafka_protocol::messages::ApiKey::Produce,
                api_version: 2,
                correlation_id: 1,
                client_id: Some("old".into()),
                min: 3,
                max: 12,
            },
            ErrorCode::UnsupportedVersion,
        ),
        (
            RequestError::Malformed {
                api_key: kafka_protocol::messages::ApiKey::Produce,
                api_version: 9,
                correlation_id: 1,
                reason: crate::request::MalformedReason::Body {
                    detail: "bad".into(),
                },
            },
            ErrorCode::InvalidRequest,
        ),
    ];
    for (e, code) in &cases {
        match e {
            RequestError::Truncated { .. }
            | RequestError::UnknownApiKey { .. }
            | RequestError::UnsupportedVersion { .. }
            | RequestError::RefusedVersion { .. }
            | RequestError::Malformed { .. } => {}
        }
        assert_eq!(ErrorCode::from(e), *code, "{e}");
    }
}
