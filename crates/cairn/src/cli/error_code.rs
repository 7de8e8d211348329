//! Kafka error codes as users know them: by the names in Kafka's `Errors.java`
//! (`TOPIC_ALREADY_EXISTS`), which is what the Kafka tools print and what people search for.

use std::fmt;

use cairn_protocol::kafka_protocol::protocol::StrBytes;
use cairn_protocol::ErrorCode;

/// A non-zero error code from a response, with the broker's message when it sent one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KafkaError {
    pub code: i16,
    pub message: Option<String>,
}

impl KafkaError {
    /// `Ok` for code 0, else the error.
    pub fn check(code: i16, message: Option<&StrBytes>) -> Result<(), KafkaError> {
        if code == 0 {
            return Ok(());
        }
        Err(KafkaError {
            code,
            message: message
                .map(|m| m.trim().to_string())
                .filter(|m| !m.is_empty()),
        })
    }

    /// The error means "ask someone else, or ask again shortly": leadership is moving, so
    /// the request was not applied and may be retried after fresh metadata.
    pub fn is_leader_change(&self) -> bool {
        [
            ErrorCode::LeaderNotAvailable,
            ErrorCode::NotLeaderOrFollower,
            ErrorCode::FencedLeaderEpoch,
            ErrorCode::UnknownLeaderEpoch,
        ]
        .iter()
        .any(|c| c.code() == self.code)
    }
}

impl fmt::Display for KafkaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&error_name(self.code))?;
        match &self.message {
            // Kafka's messages often repeat the name's meaning but carry the specifics
            // (which topic, which limit), so both are shown.
            Some(message) => write!(f, ": {message}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for KafkaError {}

/// Kafka's name for `code` (`UNKNOWN_TOPIC_OR_PARTITION`), or `error code N` for a code
/// this client does not know.
pub(crate) fn error_name(code: i16) -> String {
    cairn_protocol::errors::error_name(code).unwrap_or_else(|| format!("error code {code}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_kafka() {
        for (code, name) in [
            (-1, "UNKNOWN_SERVER_ERROR"),
            (0, "NONE"),
            (1, "OFFSET_OUT_OF_RANGE"),
            (3, "UNKNOWN_TOPIC_OR_PARTITION"),
            (6, "NOT_LEADER_OR_FOLLOWER"),
            (17, "INVALID_TOPIC_EXCEPTION"),
            (35, "UNSUPPORTED_VERSION"),
            (36, "TOPIC_ALREADY_EXISTS"),
            (37, "INVALID_PARTITIONS"),
            (40, "INVALID_CONFIG"),
            (56, "KAFKA_STORAGE_ERROR"),
            (87, "INVALID_RECORD"),
            (i16::MAX, "error code 32767"),
        ] {
            assert_eq!(error_name(code), name, "code {code}");
        }
    }

    #[test]
    fn display_and_check() {
        assert_eq!(KafkaError::check(0, None), Ok(()));
        let message = StrBytes::from_static_str("Topic 't' already exists.");
        let err = KafkaError::check(36, Some(&message)).expect_err("36 is an error");
        assert_eq!(
            err.to_string(),
            "TOPIC_ALREADY_EXISTS: Topic 't' already exists."
        );
        let blank = StrBytes::from_static_str(" ");
        let err = KafkaError::check(3, Some(&blank)).expect_err("3 is an error");
        assert_eq!(err.to_string(), "UNKNOWN_TOPIC_OR_PARTITION");
        assert!(!err.is_leader_change());
        assert!(KafkaError::check(6, None)
            .expect_err("6")
            .is_leader_change());
    }
}
