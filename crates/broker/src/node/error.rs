//! Why a node operation failed: the node's own lookups by name, and the Kafka error code of
//! everything else (the codes come from the one table in `crate::errors` and
//! `cairn_protocol::errors`). The Kafka handlers put [`NodeError::code`] in their responses;
//! the HTTP API maps it to a status (`http::error`).

use cairn_partition::PartitionError;
use cairn_protocol::ErrorCode;

use crate::broker_configs::BrokerConfigError;
use crate::errors::{broker_config_error, partition_error, topic_error};
use crate::topics::TopicError;

/// A node operation refused or failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NodeError {
    /// No topic by that name.
    #[error("topic {0} does not exist")]
    UnknownTopic(String),
    /// The topic exists, the partition does not.
    #[error("topic {topic} has no partition {partition}")]
    UnknownPartition { topic: String, partition: i32 },
    /// No consumer group by that id.
    #[error("consumer group {0} does not exist")]
    UnknownGroup(String),
    /// The group has no member by that id.
    #[error("consumer group {group} has no member {member}")]
    UnknownMember { group: String, member: String },
    /// No config by that name on the resource.
    #[error("{resource} has no config {name}")]
    UnknownConfig { resource: String, name: String },
    /// Refused or failed with this Kafka error code.
    #[error("{message}")]
    Kafka { code: ErrorCode, message: String },
}

impl NodeError {
    /// A refusal with a Kafka error code.
    pub(crate) fn kafka(code: ErrorCode, message: impl Into<String>) -> NodeError {
        NodeError::Kafka {
            code,
            message: message.into(),
        }
    }

    /// The Kafka error code a client of the Kafka protocol gets for it.
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            NodeError::UnknownTopic(_) | NodeError::UnknownPartition { .. } => {
                ErrorCode::UnknownTopicOrPartition
            }
            NodeError::UnknownGroup(_) => ErrorCode::GroupIdNotFound,
            NodeError::UnknownMember { .. } => ErrorCode::UnknownMemberId,
            NodeError::UnknownConfig { .. } => ErrorCode::InvalidConfig,
            NodeError::Kafka { code, .. } => *code,
        }
    }
}

impl From<TopicError> for NodeError {
    fn from(e: TopicError) -> NodeError {
        match e {
            TopicError::Unknown(name) => NodeError::UnknownTopic(name),
            e => NodeError::kafka(topic_error(&e), e.to_string()),
        }
    }
}

impl From<PartitionError> for NodeError {
    fn from(e: PartitionError) -> NodeError {
        NodeError::kafka(partition_error(&e), e.to_string())
    }
}

impl From<BrokerConfigError> for NodeError {
    fn from(e: BrokerConfigError) -> NodeError {
        NodeError::kafka(broker_config_error(&e), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_and_refusals_have_kafka_codes() {
        assert_eq!(
            NodeError::from(TopicError::Unknown("t".into())).code(),
            ErrorCode::UnknownTopicOrPartition
        );
        assert!(matches!(
            NodeError::from(TopicError::Unknown("t".into())),
            NodeError::UnknownTopic(t) if t == "t"
        ));
        assert_eq!(
            NodeError::from(TopicError::AlreadyExists("t".into())).code(),
            ErrorCode::TopicAlreadyExists
        );
        assert_eq!(
            NodeError::UnknownPartition {
                topic: "t".into(),
                partition: 3
            }
            .code(),
            ErrorCode::UnknownTopicOrPartition
        );
        assert_eq!(
            NodeError::UnknownGroup("g".into()).code(),
            ErrorCode::GroupIdNotFound
        );
        assert_eq!(
            NodeError::from(PartitionError::Closed).code(),
            ErrorCode::NotLeaderOrFollower
        );
    }
}
