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
//! and only then kafka-protocol's decoder, which allocates by declared counts; finally the
//! whole frame must have been consumed.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestKind};

use crate::apis;
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
    /// A version outside the range Cairn advertises for the API.
    #[error("{api_key:?} v{api_version} is not supported (correlation id {correlation_id})")]
    UnsupportedVersion {
        /// The API.
        api_key: ApiKey,
        /// The requested version.
        api_version: i16,
        /// The request's correlation id.
        correlation_id: i32,
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
        return Err(RequestError::UnsupportedVersion {
            api_key,
            api_version,
            correlation_id,
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
    let body = RequestKind::decode(api_key, &mut buf, api_version).map_err(|e| {
        malformed(MalformedReason::Body {
            detail: format!("{e:#}"),
        })
    })?;
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
        trailing_bytes,
    })
}

#[cfg(test)]
mod tests;
