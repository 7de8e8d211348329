//! Encoding responses into whole frames, and the ApiVersions answers.
//!
//! ```text
//! byte  width  field
//!    0      4  size             frame length prefix (see `frame`)
//!    4      4  correlation_id   from the request
//!    8      -  tagged fields    response header v1 only (flexible versions; never ApiVersions)
//!    -      -  body             the API's response at the request's version
//! ```
//!
//! Two ApiVersions facts shape this module (see `shared/DEPENDENCIES.md`):
//!
//! * An ApiVersions request at a version Cairn does not support is answered with error 35
//!   (`UNSUPPORTED_VERSION`) and the supported list, *always* in the v0 body format with a v0
//!   header (Kafka's `RequestContext` does the same), so the client can read it whatever
//!   version it tried; librdkafka then retries with v0.
//! * librdkafka 2.0.x (Debian's kcat) mis-skips tagged fields in an ApiVersions v3 response.
//!   Apache Kafka writes a tagged field only when it carries a value, and so does
//!   kafka-protocol 0.18 (`SupportedFeatures`, `FinalizedFeaturesEpoch`,
//!   `FinalizedFeatures` and `ZkMigrationReady` are skipped at their defaults): the body of
//!   [`api_versions_response`] ends with a zero tagged-field count, pinned by a byte-level
//!   test, so no post-processing is needed.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;

use crate::apis::{self, SUPPORTED_APIS};
use crate::errors::ErrorCode;
use crate::frame::{begin_frame, finish_frame, FrameError};
use crate::legacy;

/// Why a message could not be encoded. All of these are bugs of the caller or of Cairn,
/// never of a peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A version outside what Cairn advertises (responses) or kafka-protocol knows (requests).
    #[error("{api_key:?} v{api_version} is not an encodable version")]
    UnsupportedVersion {
        /// The API.
        api_key: ApiKey,
        /// The version asked for.
        api_version: i16,
    },
    /// The body is not a message of `api_key`.
    #[error("body is not a {api_key:?} message")]
    BodyMismatch {
        /// The API the caller named.
        api_key: ApiKey,
    },
    /// kafka-protocol refused to encode the message (e.g. a field not representable in
    /// that version).
    #[error("encoding {api_key:?} v{api_version}: {detail}")]
    Encode {
        /// The API.
        api_key: ApiKey,
        /// The version.
        api_version: i16,
        /// kafka-protocol's message.
        detail: String,
    },
    /// The encoded message does not fit a frame.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// A whole response frame: length prefix, response header of the version `api_key` and
/// `api_version` call for, and `body` encoded at `api_version`.
pub fn encode_response(
    correlation_id: i32,
    api_key: ApiKey,
    api_version: i16,
    body: &ResponseKind,
) -> Result<BytesMut, EncodeError> {
    if !apis::is_supported(api_key, api_version) {
        return Err(EncodeError::UnsupportedVersion {
            api_key,
            api_version,
        });
    }
    if apis::response_kind_key(body) != Some(api_key) {
        return Err(EncodeError::BodyMismatch { api_key });
    }
    let encode_err = |e: String| EncodeError::Encode {
        api_key,
        api_version,
        detail: e,
    };
    let mut buf = BytesMut::new();
    let at = begin_frame(&mut buf);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, api_key.response_header_version(api_version))
        .map_err(|e| encode_err(format!("{e:#}")))?;
    if legacy::is_legacy(api_key, api_version) {
        legacy::encode_response(api_key, api_version, body, &mut buf)
            .map_err(|e| encode_err(e.to_string()))?;
    } else {
        body.encode(&mut buf, api_version)
            .map_err(|e| encode_err(format!("{e:#}")))?;
    }
    finish_frame(&mut buf, at)?;
    Ok(buf)
}

/// The ApiVersions response Cairn sends: no error, no throttle, every API of
/// [`SUPPORTED_APIS`] with its range, and no feature fields (so no tagged fields in v3).
pub fn api_versions_response(api_version: i16) -> ApiVersionsResponse {
    debug_assert!(
        apis::is_supported(ApiKey::ApiVersions, api_version),
        "ApiVersions v{api_version} is answered by api_versions_unsupported"
    );
    let mut response = ApiVersionsResponse::default();
    response.error_code = ErrorCode::None.code();
    response.throttle_time_ms = 0;
    response.api_keys = SUPPORTED_APIS
        .iter()
        .map(|a| {
            ApiVersion::default()
                .with_api_key(a.key as i16)
                .with_min_version(a.min)
                .with_max_version(a.max)
        })
        .collect();
    response
}

/// The whole frame answering an ApiVersions request of an unsupported version: error 35
/// with the full supported list, in the v0 body format behind a v0 header.
///
/// Hand-encoded (the v0 layout is fixed and tiny) so it cannot fail; a test checks it
/// byte for byte against kafka-protocol's encoding.
pub fn api_versions_unsupported(correlation_id: i32) -> BytesMut {
    // v0 body: error_code int16, api_keys ARRAY(int32 count) of {api_key, min, max: int16}.
    let mut buf = BytesMut::with_capacity(4 + 4 + 2 + 4 + SUPPORTED_APIS.len() * 6);
    let at = begin_frame(&mut buf);
    buf.put_i32(correlation_id);
    buf.put_i16(ErrorCode::UnsupportedVersion.code());
    buf.put_i32(SUPPORTED_APIS.len() as i32);
    for a in SUPPORTED_APIS {
        buf.put_i16(a.key as i16);
        buf.put_i16(a.min);
        buf.put_i16(a.max);
    }
    // A few dozen bytes always fit an int32 prefix.
    let patched = finish_frame(&mut buf, at);
    debug_assert!(patched.is_ok(), "tiny frame must fit: {patched:?}");
    buf
}

mod chunked;
#[cfg(test)]
mod tests;

pub use chunked::encode_response_chunks;
