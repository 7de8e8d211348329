//! Typed errors of the group coordinator and of the `__consumer_offsets` record codecs.
//!
//! [`GroupError`] is what a client is told: each variant is one Kafka error code, mapped in
//! one table ([`GroupError::code`]) that a test pins down. [`RecordError`] is what a damaged or
//! foreign `__consumer_offsets` record is: it never reaches a client.

/// A group request refused, as a Kafka error code (see [`GroupError::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum GroupError {
    /// The server hit an error it cannot describe better (Kafka's `UNKNOWN_SERVER_ERROR`).
    #[error("unexpected server error")]
    UnknownServerError,
    /// The group is being unloaded or deleted; the client should find the coordinator again
    /// and rejoin (`COORDINATOR_NOT_AVAILABLE`).
    #[error("the coordinator is not available for this group")]
    CoordinatorNotAvailable,
    /// This broker no longer coordinates the group (its offsets partition moved to another
    /// leader); the client should find the coordinator again (`NOT_COORDINATOR`).
    #[error("this broker is not the group's coordinator")]
    NotCoordinator,
    /// The generation id is not the group's current one (`ILLEGAL_GENERATION`).
    #[error("the generation id is not the group's current generation")]
    IllegalGeneration,
    /// The member's protocol type or protocols are incompatible with the group's
    /// (`INCONSISTENT_GROUP_PROTOCOL`).
    #[error("the protocol type or protocols are incompatible with the group")]
    InconsistentGroupProtocol,
    /// The group id is empty (`INVALID_GROUP_ID`).
    #[error("the group id is empty or invalid")]
    InvalidGroupId,
    /// The member id is not a member of the group (`UNKNOWN_MEMBER_ID`).
    #[error("the member id is not a member of the group")]
    UnknownMemberId,
    /// The session timeout is outside the broker's allowed range (`INVALID_SESSION_TIMEOUT`).
    #[error("the session timeout is outside the allowed range")]
    InvalidSessionTimeout,
    /// The group is rebalancing; the client must rejoin (`REBALANCE_IN_PROGRESS`).
    #[error("the group is rebalancing")]
    RebalanceInProgress,
    /// A field of the request cannot be stored, e.g. a string longer than a Kafka STRING can
    /// hold (`INVALID_REQUEST`).
    #[error("the request has a field that cannot be stored")]
    InvalidRequest,
    /// The group is not empty (`NON_EMPTY_GROUP`).
    #[error("the group is not empty")]
    NonEmptyGroup,
    /// The group does not exist (`GROUP_ID_NOT_FOUND`).
    #[error("the group does not exist")]
    GroupIdNotFound,
    /// KIP-394: the client must rejoin with the member id given in the response
    /// (`MEMBER_ID_REQUIRED`).
    #[error("a member id is required: rejoin with the member id given")]
    MemberIdRequired,
    /// The group already has its maximum number of members (`GROUP_MAX_SIZE_REACHED`).
    #[error("the group has reached its maximum size")]
    GroupMaxSizeReached,
    /// KIP-345: another member id now holds this group instance id (`FENCED_INSTANCE_ID`).
    #[error("the static member was fenced by a newer member with the same instance id")]
    FencedInstanceId,
    /// The offsets of a topic the group's members subscribe to cannot be deleted
    /// (`GROUP_SUBSCRIBED_TO_TOPIC`).
    #[error("the group is subscribed to this topic")]
    GroupSubscribedToTopic,
}

impl GroupError {
    /// The Kafka protocol error code of this error.
    pub fn code(&self) -> i16 {
        match self {
            GroupError::UnknownServerError => -1,
            GroupError::CoordinatorNotAvailable => 15,
            GroupError::NotCoordinator => 16,
            GroupError::IllegalGeneration => 22,
            GroupError::InconsistentGroupProtocol => 23,
            GroupError::InvalidGroupId => 24,
            GroupError::UnknownMemberId => 25,
            GroupError::InvalidSessionTimeout => 26,
            GroupError::RebalanceInProgress => 27,
            GroupError::InvalidRequest => 42,
            GroupError::NonEmptyGroup => 68,
            GroupError::GroupIdNotFound => 69,
            GroupError::MemberIdRequired => 79,
            GroupError::GroupMaxSizeReached => 81,
            GroupError::FencedInstanceId => 82,
            GroupError::GroupSubscribedToTopic => 86,
        }
    }
}

/// Why a `__consumer_offsets` record could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The record ends before a field does.
    #[error("{field}: needs {needed} bytes, {remaining} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the record.
        remaining: usize,
    },
    /// The key's version is not one this codec knows (0 and 1: offset commit, 2: group
    /// metadata). Kafka 3.5+ writes other versions for KIP-848 groups; a caller replaying a
    /// topic shared with such a broker skips these records.
    #[error("unknown record key version {version}")]
    UnknownKeyVersion {
        /// The version found.
        version: i16,
    },
    /// The value's version is not one this codec reads.
    #[error("unknown {record} value version {version}")]
    UnknownValueVersion {
        /// Which record.
        record: &'static str,
        /// The version found.
        version: i16,
    },
    /// A length field is negative where the field cannot be null, or below -1.
    #[error("{field}: invalid length {length}")]
    InvalidLength {
        /// The field being read.
        field: &'static str,
        /// The length found.
        length: i64,
    },
    /// A string is not UTF-8.
    #[error("{field}: not valid UTF-8")]
    InvalidUtf8 {
        /// The field being read.
        field: &'static str,
    },
    /// Bytes follow the last field.
    #[error("{record}: {count} unexpected bytes after the last field")]
    TrailingBytes {
        /// Which record.
        record: &'static str,
        /// How many bytes are left over.
        count: usize,
    },
    /// A field is too long for its wire type (a STRING holds at most 32767 bytes).
    #[error("{field}: {len} bytes do not fit the field")]
    TooLong {
        /// The field being written.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// The record decodes but describes an impossible group.
    #[error("group record of {group}: {reason}")]
    InvalidGroup {
        /// The group id.
        group: String,
        /// What is wrong.
        reason: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one table of Kafka codes (`org.apache.kafka.common.protocol.Errors`).
    #[test]
    fn codes_match_kafka() {
        let table = [
            (GroupError::UnknownServerError, -1),
            (GroupError::CoordinatorNotAvailable, 15),
            (GroupError::NotCoordinator, 16),
            (GroupError::IllegalGeneration, 22),
            (GroupError::InconsistentGroupProtocol, 23),
            (GroupError::InvalidGroupId, 24),
            (GroupError::UnknownMemberId, 25),
            (GroupError::InvalidSessionTimeout, 26),
            (GroupError::RebalanceInProgress, 27),
            (GroupError::InvalidRequest, 42),
            (GroupError::NonEmptyGroup, 68),
            (GroupError::GroupIdNotFound, 69),
            (GroupError::MemberIdRequired, 79),
            (GroupError::GroupMaxSizeReached, 81),
            (GroupError::FencedInstanceId, 82),
            (GroupError::GroupSubscribedToTopic, 86),
        ];
        for (error, code) in table {
            assert_eq!(error.code(), code, "{error:?}");
        }
    }
}
