//! Parsing a request frame into a typed request.
//!
//! ```text
//! byte  width  field            (request header v1; v2 adds tagged fields after client_id)
//!    0      2  api_key          int16
//!    2      2  api_version      int16
//!    4      4  correlation_id   int32, echoed in the response
//!    8      -  client_id        nullable STRING (int16 length), even in header v2
//!    -      -  tagged fields    header v2 only
//!    -      -  body             the API's request at api_version
//! ```
//!
//! The first 8 bytes are the same in every header version, so they are read raw first and
//! every error after them carries the correlation id — the broker can always answer, and
//! an unsupported ApiVersions request gets its prescribed v0 reply
//! ([`crate::response::api_versions_unsupported`]).
//!
//! Decoding order: our version table ([`crate::apis`]), then the header (walked by `shape`,
//! not kafka-protocol, to bound its tagged fields), then the body's shape against its declared lengths and the [`RequestLimits`] (`shape`),
//! and only then kafka-protocol's decoder, which allocates by declared counts (or, for the
//! versions older than kafka-protocol's, [`crate::legacy`]); finally the whole body must have
//! been consumed.
//!
//! A version outside the table is refused. ApiVersions gets its prescribed answer; any other
//! API cannot be answered in a version the broker does not speak, so the connection closes,
//! as Apache Kafka closes it (`SocketServer` refuses a request whose version is not enabled),
//! and [`RequestError::RefusedVersion`] says in one line which client sent what and what it
//! should upgrade to.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestKind};

use crate::apis;
use crate::legacy::{self, LegacyFields};
use crate::shape;
pub use crate::shape::{
    RequestLimits, ShapeError, DEFAULT_MAX_REQUEST_ELEMENTS, DEFAULT_MAX_UNKNOWN_TAGGED_FIELDS,
};

/// A decoded request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The API.
    pub api_key: ApiKey,
    /// Its version, within Cairn's advertised range.
    pub api_version: i16,
    /// Echoed in the response.
    pub correlation_id: i32,
    /// The client's self-chosen id, if any.
    pub client_id: Option<String>,
    /// The request body.
    pub body: RequestKind,
    /// Fields of an old version that `body` has no room for (ListOffsets v0's
    /// `max_num_offsets`, OffsetCommit v1's commit timestamps); `None` otherwise.
    pub legacy: Option<LegacyFields>,
    /// Bytes that followed the body in the frame and were ignored, as Apache Kafka ignores
    /// them (librdkafka 2.x pads its all-topics Metadata request with three); for logging.
    pub trailing_bytes: usize,
}

/// Why a frame is not a request Cairn can serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Fewer than the 8 bytes every request header starts with.
    #[error("request frame of {len} bytes is shorter than a request header")]
    Truncated {
        /// The frame's length.
        len: usize,
    },
    /// An API key Cairn does not serve (unknown to Kafka, or not in [`apis::SUPPORTED_APIS`]).
    /// Kafka closes the connection on these.
    #[error("api key {api_key} is not served (correlation id {correlation_id})")]
    UnknownApiKey {
        /// The raw api key.
        api_key: i16,
        /// The request's correlation id.
        correlation_id: i32,
    },
    /// An ApiVersions request of a version Cairn does not serve: the protocol prescribes a
    /// v0 answer with error 35 (see [`crate::response::api_versions_unsupported`]).
    #[error("{api_key:?} v{api_version} is not supported (correlation id {correlation_id})")]
    UnsupportedVersion {
        /// The API (ApiVersions).
        api_key: ApiKey,
        /// The requested version.
        api_version: i16,
        /// The request's correlation id.
        correlation_id: i32,
    },
    /// A request of any other API at a version outside the range Cairn advertises. No answer
    /// can be written in a version the broker does not speak, so the connection is closed,
    /// as Kafka does; the message names the client and what it should upgrade to.
    #[error(
        "{api_key:?} v{api_version} from client.id {client:?} is not served (Cairn serves \
         v{min}-v{max}; correlation id {correlation_id}): {advice}",
        client = client_id.as_deref().unwrap_or(""),
        advice = refusal_advice(*max, *api_version)
    )]
    RefusedVersion {
        /// The API.
        api_key: ApiKey,
        /// The requested version.
        api_version: i16,
        /// The request's correlation id.
        correlation_id: i32,
        /// The client's `client.id`, if its header could be read.
        client_id: Option<String>,
        /// Lowest version served.
        min: i16,
        /// Highest version served.
        max: i16,
    },
    /// The header or body does not decode, or bytes follow the body.
    #[error(
        "malformed {api_key:?} v{api_version} request (correlation id {correlation_id}): {reason}"
    )]
    Malformed {
        /// The API.
        api_key: ApiKey,
        /// The requested version.
        api_version: i16,
        /// The request's correlation id.
        correlation_id: i32,
        /// What is wrong.
        reason: MalformedReason,
    },
}

impl RequestError {
    /// The correlation id to answer with, when the frame had one.
    pub fn correlation_id(&self) -> Option<i32> {
        match self {
            RequestError::Truncated { .. } => None,
            RequestError::UnknownApiKey { correlation_id, .. }
            | RequestError::UnsupportedVersion { correlation_id, .. }
            | RequestError::RefusedVersion { correlation_id, .. }
            | RequestError::Malformed { correlation_id, .. } => Some(*correlation_id),
        }
    }
}

/// What is wrong with a malformed request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedReason {
    /// The request header is cut short or holds too many tagged fields.
    #[error("header: {0}")]
    Header(ShapeError),
    /// The body does not fit its schema or the request limits (checked before decoding).
    #[error("body: {0}")]
    Shape(ShapeError),
    /// kafka-protocol refused the body.
    #[error("body: {detail}")]
    Body {
        /// kafka-protocol's message.
        detail: String,
    },
}

/// Parses one request frame (without its length prefix) with the default [`RequestLimits`].
pub fn parse_request(frame: Bytes) -> Result<Request, RequestError> {
    parse_request_with_limits(frame, &RequestLimits::default())
}

/// Parses one request frame (without its length prefix).
pub fn parse_request_with_limits(
    frame: Bytes,
    limits: &RequestLimits,
) -> Result<Request, RequestError> {
    let Some(&[k0, k1, v0, v1, c0, c1, c2, c3]) = frame.first_chunk::<8>() else {
        return Err(RequestError::Truncated { len: frame.len() });
    };
    let raw_key = i16::from_be_bytes([k0, k1]);
    let api_version = i16::from_be_bytes([v0, v1]);
    let correlation_id = i32::from_be_bytes([c0, c1, c2, c3]);

    let Some((api_key, (min, max))) = ApiKey::try_from(raw_key)
        .ok()
        .and_then(|k| apis::supported(k).map(|range| (k, range)))
    else {
        return Err(RequestError::UnknownApiKey {
            api_key: raw_key,
            correlation_id,
        });
    };
    if !(min..=max).contains(&api_version) {
        if api_key == ApiKey::ApiVersions {
            return Err(RequestError::UnsupportedVersion {
                api_key,
                api_version,
                correlation_id,
            });
        }
        // Header v1 and v2 both start with the client id, so it reads the same whatever the
        // version; a header that does not read only costs the log its client id.
        let client_id = shape::header(&frame, 1, limits)
            .ok()
            .and_then(|(id, _)| id)
            .map(|b| String::from_utf8_lossy(b).into_owned());
        return Err(RequestError::RefusedVersion {
            api_key,
            api_version,
            correlation_id,
            client_id,
            min,
            max,
        });
    }
    let malformed = |reason: MalformedReason| RequestError::Malformed {
        api_key,
        api_version,
        correlation_id,
        reason,
    };

    let (client_id, body_at) =
        shape::header(&frame, api_key.request_header_version(api_version), limits)
            .map_err(|e| malformed(MalformedReason::Header(e)))?;
    // Java decodes the client id leniently (invalid UTF-8 becomes U+FFFD); so does Cairn.
    let client_id = client_id.map(|b| String::from_utf8_lossy(b).into_owned());
    let body_len = shape::check(api_key, api_version, &frame[body_at..], limits)
        .map_err(|e| malformed(MalformedReason::Shape(e)))?;
    let trailing_bytes = frame.len() - body_at - body_len;
    let mut buf = frame.slice(body_at..body_at + body_len);
    let (body, legacy) = if legacy::is_legacy(api_key, api_version) {
        legacy::decode_request(api_key, api_version, &mut buf).map_err(|e| {
            malformed(MalformedReason::Body {
                detail: e.to_string(),
            })
        })?
    } else {
        let body = RequestKind::decode(api_key, &mut buf, api_version).map_err(|e| {
            malformed(MalformedReason::Body {
                detail: format!("{e:#}"),
            })
        })?;
        (body, None)
    };
    if buf.has_remaining() {
        // The schema walk and kafka-protocol disagree on where the body ends.
        return Err(malformed(MalformedReason::Body {
            detail: format!("{} bytes of the body left undecoded", buf.remaining()),
        }));
    }
    Ok(Request {
        api_key,
        api_version,
        correlation_id,
        client_id,
        body,
        legacy,
        trailing_bytes,
    })
}

/// What a client sending an unserved version should do, for the log line that precedes
/// closing its connection.
fn refusal_advice(max: i16, version: i16) -> String {
    if version > max {
        return format!(
            "the client should use ApiVersions and fall back to v{max} (it may be newer than \
             Cairn)"
        );
    }
    "Kafka 4 refuses it as well (KIP-896); upgrade to a client that speaks the Kafka 2.1 \
     protocol or newer (Java 2.1+, librdkafka 1.0+, kafka-python 2.0.2+, Sarama 1.30+)"
        .to_string()
}

#[cfg(test)]
mod tests;
