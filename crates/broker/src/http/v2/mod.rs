//! The data API in the shape of Confluent's REST Proxy v2: produce records to a topic or a
//! partition, and read a partition's records without a consumer instance.
//!
//! ```text
//! POST /topics/{t}                           {"records": [{"key", "value", "partition"?, "headers"?, "timestamp"?}]}
//! POST /topics/{t}/partitions/{p}            {"records": [{"key", "value", "headers"?, "timestamp"?}]}
//!      → 200 {"key_schema_id": null, "value_schema_id": null,
//!             "offsets": [{"partition", "offset", "error_code", "error"}]}   (request order)
//! GET  /topics/{t}/partitions/{p}/records?offset=N | timestamp=MS
//!          [&max_records=500][&max_bytes=1048576][&timeout_ms=1000]
//!      → 200 [{"topic", "key", "value", "partition", "offset", "timestamp", "timestamp_type", "headers"}]
//! ```
//!
//! The embedded format is chosen by the request's `Content-Type` (produce) or `Accept`
//! (consume): [`Format`]. REST Proxy v2's consumer instances (`/consumers/...`), its
//! schema-based formats (avro, protobuf, jsonschema) and its v2 metadata routes are not
//! served; consumer groups are the Kafka protocol's, and metadata is v3's.

mod consume;
mod produce;

use std::sync::Arc;

use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;

use super::error::ApiError;
use super::{HttpLimits, HttpState};

/// The content type of produce answers (REST Proxy v2's).
const V2_JSON: &str = "application/vnd.kafka.v2+json";

pub(crate) fn routes(limits: &HttpLimits) -> Router<Arc<HttpState>> {
    Router::new()
        .route("/topics/{topic_name}", post(produce::to_topic))
        .route(
            "/topics/{topic_name}/partitions/{partition_id}",
            post(produce::to_partition),
        )
        .route(
            "/topics/{topic_name}/partitions/{partition_id}/records",
            get(consume::records),
        )
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(limits.produce_body_bytes))
}

/// How keys and values are embedded in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `application/vnd.kafka.binary.v2+json`: base64 strings (standard alphabet, padded),
    /// the bytes exactly.
    Binary,
    /// `application/vnd.kafka.json.v2+json`: any JSON value, stored as its compact JSON text.
    Json,
    /// `application/vnd.kafka.string.v2+json` (Cairn's): strings, stored as their UTF-8
    /// bytes without JSON quoting; read back as text (invalid UTF-8 replaced by U+FFFD).
    String,
}

impl Format {
    const ALL: [Format; 3] = [Format::Binary, Format::Json, Format::String];

    pub(crate) fn media_type(self) -> &'static str {
        match self {
            Format::Binary => "application/vnd.kafka.binary.v2+json",
            Format::Json => "application/vnd.kafka.json.v2+json",
            Format::String => "application/vnd.kafka.string.v2+json",
        }
    }

    fn from_media_type(media: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.media_type() == media)
    }

    /// The format a produce request's `Content-Type` names (415 otherwise).
    pub(crate) fn of_request(headers: &HeaderMap) -> Result<Format, ApiError> {
        let media = super::body::media_type(headers);
        media
            .as_deref()
            .and_then(Format::from_media_type)
            .ok_or_else(|| {
                super::body::unsupported_media_type(
                    media.as_deref(),
                    &Format::ALL.map(Format::media_type),
                )
            })
    }

    /// The format a consume request's `Accept` asks for: the first it lists that is served;
    /// binary for none, `*/*`, `application/*`, `application/json` or
    /// `application/vnd.kafka.v2+json`; 406 if it lists only others.
    pub(crate) fn of_accept(headers: &HeaderMap) -> Result<Format, ApiError> {
        let Some(accept) = headers.get(header::ACCEPT) else {
            return Ok(Format::Binary);
        };
        let accept = accept.to_str().unwrap_or("");
        for range in accept.split(',') {
            let media = range
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if let Some(f) = Format::from_media_type(&media) {
                return Ok(f);
            }
            if matches!(
                media.as_str(),
                "*/*" | "application/*" | "application/json" | V2_JSON
            ) {
                return Ok(Format::Binary);
            }
        }
        Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            406,
            format!(
                "HTTP 406 Not Acceptable: Accept {accept:?} names no format served here; use {}",
                Format::ALL.map(Format::media_type).join(" or ")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).expect("header"));
        h
    }

    #[test]
    fn formats_follow_content_type_and_accept() {
        let h = headers(
            header::CONTENT_TYPE,
            "application/vnd.kafka.JSON.v2+json; charset=utf-8",
        );
        assert_eq!(Format::of_request(&h).expect("json"), Format::Json);
        let e = Format::of_request(&headers(header::CONTENT_TYPE, "application/json"))
            .expect_err("plain JSON is not a v2 produce type");
        assert_eq!((e.status.as_u16(), e.error_code), (415, 415));
        assert!(Format::of_request(&HeaderMap::new()).is_err());

        assert_eq!(
            Format::of_accept(&HeaderMap::new()).expect("none"),
            Format::Binary
        );
        let h = headers(
            header::ACCEPT,
            "text/html, application/vnd.kafka.string.v2+json;q=0.9, */*",
        );
        assert_eq!(Format::of_accept(&h).expect("string"), Format::String);
        assert_eq!(
            Format::of_accept(&headers(header::ACCEPT, "*/*")).expect("any"),
            Format::Binary
        );
        let e = Format::of_accept(&headers(header::ACCEPT, "text/html")).expect_err("html");
        assert_eq!(e.status.as_u16(), 406);
    }
}
