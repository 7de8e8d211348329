//! The client side, for the `cairn` CLI and tests: encode a request frame, decode a response.
//!
//! Trust: [`decode_response`] hands the body to kafka-protocol's decoder, which reserves
//! memory for every array by its declared count before reading it. The response frame is
//! bounded (`max_frame_bytes` on the client's reads), but its counts are not checked the way
//! [`crate::request`] checks requests, so a hostile *broker* could make the client reserve
//! far more than the frame. Use it against brokers you operate (the CLI against Cairn).

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::apis;
use crate::frame::{begin_frame, finish_frame};
use crate::legacy;
use crate::response::EncodeError;

/// Why a response frame does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// `api_version` is not a version Cairn can read for `api_key` (kafka-protocol's or an
    /// older one `legacy` knows).
    #[error("{api_key:?} v{api_version} is not a decodable version")]
    UnsupportedVersion {
        /// The API.
        api_key: ApiKey,
        /// The version.
        api_version: i16,
    },
    /// The response header does not decode.
    #[error("response header: {detail}")]
    Header {
        /// kafka-protocol's message.
        detail: String,
    },
    /// The body does not decode.
    #[error("{api_key:?} v{api_version} response body: {detail}")]
    Body {
        /// The API.
        api_key: ApiKey,
        /// The version.
        api_version: i16,
        /// kafka-protocol's message.
        detail: String,
    },
    /// Bytes follow the body.
    #[error("{count} bytes follow the response body")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
}

/// A whole request frame: length prefix, request header (of the version `api_key` and
/// `api_version` call for) and `body` encoded at `api_version`.
pub fn encode_request(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    client_id: Option<&str>,
    body: &RequestKind,
) -> Result<BytesMut, EncodeError> {
    let valid = api_key.valid_versions();
    if !(legacy::min_version(api_key)..=valid.max).contains(&api_version) {
        return Err(EncodeError::UnsupportedVersion {
            api_key,
            api_version,
        });
    }
    if apis::request_kind_key(body).is_some_and(|k| k != api_key) {
        return Err(EncodeError::BodyMismatch { api_key });
    }
    let encode_err = |detail: String| EncodeError::Encode {
        api_key,
        api_version,
        detail,
    };
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(api_version)
        .with_correlation_id(correlation_id)
        .with_client_id(client_id.map(|s| StrBytes::from_string(s.to_owned())));
    let mut buf = BytesMut::new();
    let at = begin_frame(&mut buf);
    header
        .encode(&mut buf, api_key.request_header_version(api_version))
        .map_err(|e| encode_err(format!("{e:#}")))?;
    if legacy::is_legacy(api_key, api_version) {
        legacy::encode_request(api_key, api_version, body, &mut buf)
            .map_err(|e| encode_err(e.to_string()))?;
    } else {
        body.encode(&mut buf, api_version)
            .map_err(|e| encode_err(format!("{e:#}")))?;
    }
    finish_frame(&mut buf, at)?;
    Ok(buf)
}

/// Decodes a response frame (without its length prefix) answering a request of `api_key`
/// at `api_version`; returns its correlation id and body. See the module docs on trust.
///
/// An ApiVersions response that does not decode at `api_version` is tried again as v0: a
/// broker answers an ApiVersions version it does not support with a v0 error response
/// (Java's `ApiVersionsResponse.parse` falls back the same way).
pub fn decode_response(
    frame: Bytes,
    api_key: ApiKey,
    api_version: i16,
) -> Result<(i32, ResponseKind), DecodeError> {
    let valid = api_key.valid_versions();
    if !(legacy::min_version(api_key)..=valid.max).contains(&api_version) {
        return Err(DecodeError::UnsupportedVersion {
            api_key,
            api_version,
        });
    }
    let mut buf = frame;
    let header = ResponseHeader::decode(&mut buf, api_key.response_header_version(api_version))
        .map_err(|e| DecodeError::Header {
            detail: format!("{e:#}"),
        })?;
    let body = match decode_body(buf.clone(), api_key, api_version) {
        Err(_) if api_key == ApiKey::ApiVersions && api_version > 0 => decode_body(buf, api_key, 0),
        result => result,
    }?;
    Ok((header.correlation_id, body))
}

fn decode_body(
    mut buf: Bytes,
    api_key: ApiKey,
    api_version: i16,
) -> Result<ResponseKind, DecodeError> {
    let body = if legacy::is_legacy(api_key, api_version) {
        legacy::decode_response(api_key, api_version, &mut buf).map_err(|e| DecodeError::Body {
            api_key,
            api_version,
            detail: e.to_string(),
        })?
    } else {
        ResponseKind::decode(api_key, &mut buf, api_version).map_err(|e| DecodeError::Body {
            api_key,
            api_version,
            detail: format!("{e:#}"),
        })?
    };
    if buf.has_remaining() {
        return Err(DecodeError::TrailingBytes {
            count: buf.remaining(),
        });
    }
    Ok(body)
}

#[cfg(test)]
mod tests;
