//! Errors of the HTTP API: every one is a JSON body `{"error_code": N, "message": "..."}`
//! with the HTTP status that fits, as Confluent's REST Proxy answers. `error_code` is the
//! status times 100 plus a number telling errors of one status apart (REST Proxy's own where
//! it has one: 40002, 40401, 40402, 40405, 40903, 50002, 50003, 50302), or the bare status
//! for generic HTTP errors (an unknown route, a body too large, a wrong content type). The
//! table in the README's "HTTP API" section lists them all; [`status_of`] is the mapping
//! from the node's errors, tested below.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cairn_protocol::ErrorCode;
use serde::Serialize;

use crate::node::NodeError;

/// The request (body, query or path) is malformed: not JSON, a field missing or of the
/// wrong type, a bad base64 string, a bad query parameter. The message names the field.
pub(crate) const BAD_REQUEST: u32 = 40001;
/// The broker refused a value (Kafka's INVALID_CONFIG, INVALID_PARTITIONS, ...; REST Proxy's
/// `KAFKA_BAD_REQUEST_ERROR_CODE`).
pub(crate) const KAFKA_BAD_REQUEST: u32 = 40002;
/// An offset outside the partition's log (Kafka's OFFSET_OUT_OF_RANGE).
pub(crate) const OFFSET_OUT_OF_RANGE: u32 = 40003;
/// REST Proxy's codes for an unknown topic and partition.
pub(crate) const TOPIC_NOT_FOUND: u32 = 40401;
pub(crate) const PARTITION_NOT_FOUND: u32 = 40402;
/// An unknown config name.
pub(crate) const CONFIG_NOT_FOUND: u32 = 40404;
/// REST Proxy's code for an unknown consumer group.
pub(crate) const GROUP_NOT_FOUND: u32 = 40405;
/// An unknown consumer (group member).
pub(crate) const CONSUMER_NOT_FOUND: u32 = 40406;
/// An unknown broker id.
pub(crate) const BROKER_NOT_FOUND: u32 = 40407;
/// The thing to create already exists (REST Proxy answers 400 40002 for a topic that
/// exists; Cairn says 409, the status for a conflict).
pub(crate) const ALREADY_EXISTS: u32 = 40902;
/// The resource is in a state that does not allow it (a group with members; REST Proxy's
/// `ILLEGAL_STATE_ERROR_CODE`).
pub(crate) const ILLEGAL_STATE: u32 = 40903;
/// A stored record cannot be shown in the asked format (not JSON; REST Proxy's
/// `JSON_CONVERSION_ERROR_CODE`).
pub(crate) const JSON_CONVERSION: u32 = 42203;
/// A Kafka error that retrying will not fix, and one that it may (REST Proxy's codes).
pub(crate) const KAFKA_ERROR: u32 = 50002;
pub(crate) const KAFKA_RETRIABLE: u32 = 50003;
/// The request did not finish within the node's request timeout.
pub(crate) const TIMED_OUT: u32 = 50301;
/// The node is starting (recovering logs, loading groups) or stopping.
pub(crate) const NOT_READY: u32 = 50302;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) error_code: u32,
    pub(crate) message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error_code: u32,
    message: &'a str,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, error_code: u32, message: impl Into<String>) -> Self {
        ApiError {
            status,
            error_code,
            message: message.into(),
        }
    }

    /// 400 for a malformed request; `field` names what is wrong (`records[2].value`,
    /// `offset`).
    pub(crate) fn bad_field(field: &str, problem: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            BAD_REQUEST,
            format!("{field}: {problem}"),
        )
    }

    /// The generic error of a status (an unknown route, a body too large, ...).
    pub(crate) fn status(status: StatusCode) -> Self {
        let message = match status {
            StatusCode::NOT_FOUND => "HTTP 404 Not Found: no such route".to_string(),
            StatusCode::METHOD_NOT_ALLOWED => {
                "HTTP 405 Method Not Allowed: this route does not take that method".to_string()
            }
            StatusCode::PAYLOAD_TOO_LARGE => {
                "HTTP 413 Payload Too Large: the request body is larger than this route accepts \
                 (produce: http_max_request_bytes; other routes: 1 MiB)"
                    .to_string()
            }
            StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => {
                return Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    TIMED_OUT,
                    "the request did not finish within the node's request timeout",
                )
            }
            s => format!(
                "HTTP {} {}",
                s.as_u16(),
                s.canonical_reason().unwrap_or("error")
            ),
        };
        Self::new(status, u32::from(status.as_u16()), message)
    }

    /// The node is not serving yet (or any more).
    pub(crate) fn not_ready(why: &str) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, NOT_READY, why)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&Body {
            error_code: self.error_code,
            message: &self.message,
        })
        .unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// The Kafka error's name as Kafka spells it (`MESSAGE_TOO_LARGE`), for messages.
pub(crate) fn kafka_name(code: ErrorCode) -> String {
    let debug = format!("{code:?}");
    let mut out = String::with_capacity(debug.len() + 4);
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Whether retrying may succeed (kafka-protocol's table, Kafka's `RetriableException`s).
pub(crate) fn retriable(code: ErrorCode) -> bool {
    code.response_error().is_some_and(|e| e.is_retriable())
}

/// The status and error code of a Kafka error code.
pub(crate) fn status_of(code: ErrorCode) -> (StatusCode, u32) {
    match code {
        ErrorCode::UnknownTopicOrPartition => (StatusCode::NOT_FOUND, TOPIC_NOT_FOUND),
        ErrorCode::GroupIdNotFound => (StatusCode::NOT_FOUND, GROUP_NOT_FOUND),
        ErrorCode::UnknownMemberId => (StatusCode::NOT_FOUND, CONSUMER_NOT_FOUND),
        ErrorCode::TopicAlreadyExists => (StatusCode::CONFLICT, ALREADY_EXISTS),
        ErrorCode::NonEmptyGroup => (StatusCode::CONFLICT, ILLEGAL_STATE),
        ErrorCode::OffsetOutOfRange => (StatusCode::BAD_REQUEST, OFFSET_OUT_OF_RANGE),
        ErrorCode::InvalidTopicException
        | ErrorCode::InvalidPartitions
        | ErrorCode::InvalidReplicationFactor
        | ErrorCode::InvalidReplicaAssignment
        | ErrorCode::InvalidConfig
        | ErrorCode::InvalidRequest
        | ErrorCode::PolicyViolation
        | ErrorCode::InvalidRecord
        | ErrorCode::InvalidTimestamp
        | ErrorCode::MessageTooLarge
        | ErrorCode::RecordListTooLarge
        | ErrorCode::UnsupportedVersion => (StatusCode::BAD_REQUEST, KAFKA_BAD_REQUEST),
        c if retriable(c) => (StatusCode::INTERNAL_SERVER_ERROR, KAFKA_RETRIABLE),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, KAFKA_ERROR),
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> ApiError {
        let message = e.to_string();
        let (status, code) = match &e {
            NodeError::UnknownTopic(_) => (StatusCode::NOT_FOUND, TOPIC_NOT_FOUND),
            NodeError::UnknownPartition { .. } => (StatusCode::NOT_FOUND, PARTITION_NOT_FOUND),
            NodeError::UnknownGroup(_) => (StatusCode::NOT_FOUND, GROUP_NOT_FOUND),
            NodeError::UnknownMember { .. } => (StatusCode::NOT_FOUND, CONSUMER_NOT_FOUND),
            NodeError::UnknownConfig { .. } => (StatusCode::NOT_FOUND, CONFIG_NOT_FOUND),
            NodeError::Kafka { code, .. } => status_of(*code),
        };
        let message = match &e {
            // Say which Kafka error it was, as REST Proxy's messages (the exception's) do.
            NodeError::Kafka { code, .. } => format!("{}: {message}", kafka_name(*code)),
            _ => message,
        };
        ApiError::new(status, code, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_errors_map_to_statuses_and_rest_proxy_codes() {
        let cases = [
            (ErrorCode::UnknownTopicOrPartition, 404, 40401),
            (ErrorCode::GroupIdNotFound, 404, 40405),
            (ErrorCode::TopicAlreadyExists, 409, 40902),
            (ErrorCode::NonEmptyGroup, 409, 40903),
            (ErrorCode::InvalidConfig, 400, 40002),
            (ErrorCode::InvalidPartitions, 400, 40002),
            (ErrorCode::InvalidReplicationFactor, 400, 40002),
            (ErrorCode::InvalidTopicException, 400, 40002),
            (ErrorCode::OffsetOutOfRange, 400, 40003),
            (ErrorCode::NotLeaderOrFollower, 500, 50003),
            (ErrorCode::KafkaStorageError, 500, 50003),
            (ErrorCode::UnknownServerError, 500, 50002),
        ];
        for (code, status, error_code) in cases {
            let (s, c) = status_of(code);
            assert_eq!((s.as_u16(), c), (status, error_code), "{code:?}");
        }
    }

    #[test]
    fn node_errors_say_what_is_missing() {
        let e = ApiError::from(NodeError::UnknownPartition {
            topic: "t".into(),
            partition: 7,
        });
        assert_eq!((e.status.as_u16(), e.error_code), (404, 40402));
        assert_eq!(e.message, "topic t has no partition 7");
        let e = ApiError::from(NodeError::kafka(
            ErrorCode::InvalidConfig,
            "retention.ms: bad",
        ));
        assert_eq!((e.status.as_u16(), e.error_code), (400, 40002));
        assert_eq!(e.message, "INVALID_CONFIG: retention.ms: bad");
        assert_eq!(kafka_name(ErrorCode::MessageTooLarge), "MESSAGE_TOO_LARGE");
        assert_eq!(
            kafka_name(ErrorCode::KafkaStorageError),
            "KAFKA_STORAGE_ERROR"
        );
    }

    #[test]
    fn generic_statuses_keep_their_number() {
        for status in [
            StatusCode::NOT_FOUND,
            StatusCode::METHOD_NOT_ALLOWED,
            StatusCode::PAYLOAD_TOO_LARGE,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ] {
            let e = ApiError::status(status);
            assert_eq!(e.status, status);
            assert_eq!(e.error_code, u32::from(status.as_u16()));
        }
        let e = ApiError::status(StatusCode::REQUEST_TIMEOUT);
        assert_eq!((e.status.as_u16(), e.error_code), (503, TIMED_OUT));
    }
}
