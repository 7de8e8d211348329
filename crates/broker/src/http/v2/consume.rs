//! Stateless consume: `GET /topics/{t}/partitions/{p}/records` reads committed records from
//! an offset or a time, up to `max_records` records and `max_bytes` bytes of keys, values
//! and headers (a first record larger than that still comes, alone), waiting up to
//! `timeout_ms` for a first record if there is none yet. Every parameter is capped
//! (`HttpLimits`), so no request holds more or waits longer than the node allows.
//!
//! The answer is REST Proxy v2's consumer records array, plus each record's timestamp, its
//! type and its headers (values base64). Keys and values are embedded per the `Accept`
//! header ([`Format`]): base64, JSON (a stored value that is not JSON is a 422), or text.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use super::Format;
use crate::http::body::{json_response, path_id, Params, PathParams};
use crate::http::error::{ApiError, JSON_CONVERSION};
use crate::http::HttpState;
use crate::node::read::{ConsumeLimits, ConsumedRecord, StartAt};

/// Defaults: Kafka's `max.poll.records`, 1 MiB, and REST Proxy's
/// `consumer.request.timeout.ms`.
const DEFAULT_MAX_RECORDS: usize = 500;
const DEFAULT_MAX_BYTES: u64 = 1 << 20;
const DEFAULT_TIMEOUT_MS: u64 = 1000;

#[derive(Debug, Serialize)]
struct RecordOut {
    topic: String,
    key: Value,
    value: Value,
    partition: i32,
    offset: i64,
    timestamp: i64,
    timestamp_type: &'static str,
    headers: Vec<HeaderOut>,
}

#[derive(Debug, Serialize)]
struct HeaderOut {
    name: String,
    value: Option<String>,
}

fn base64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A stored key or value embedded in `format`.
fn embed(format: Format, b: Option<Bytes>, what: &str, offset: i64) -> Result<Value, ApiError> {
    let Some(b) = b else { return Ok(Value::Null) };
    Ok(match format {
        Format::Binary => Value::String(base64(&b)),
        Format::String => Value::String(String::from_utf8_lossy(&b).into_owned()),
        Format::Json => serde_json::from_slice(&b).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                JSON_CONVERSION,
                format!(
                    "the {what} of the record at offset {offset} is not JSON ({e}); read it with \
                     Accept: {} or {}",
                    Format::Binary.media_type(),
                    Format::String.media_type()
                ),
            )
        })?,
    })
}

fn record_out(
    format: Format,
    topic: &str,
    partition: i32,
    r: ConsumedRecord,
) -> Result<RecordOut, ApiError> {
    Ok(RecordOut {
        topic: topic.to_string(),
        key: embed(format, r.key, "key", r.offset)?,
        value: embed(format, r.value, "value", r.offset)?,
        partition,
        offset: r.offset,
        timestamp: r.timestamp,
        timestamp_type: if r.log_append_time {
            "LOG_APPEND_TIME"
        } else {
            "CREATE_TIME"
        },
        headers: r
            .headers
            .into_iter()
            .map(|(name, value)| HeaderOut {
                name,
                value: value.map(|v| base64(&v)),
            })
            .collect(),
    })
}

pub(super) async fn records(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams((topic, partition)): PathParams<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let limits = &state.limits;
    let params = Params::parse(
        query.as_deref(),
        &[
            "offset",
            "timestamp",
            "max_records",
            "max_bytes",
            "timeout_ms",
        ],
    )?;
    let partition = path_id("partition_id", &partition)?;
    let format = Format::of_accept(&headers)?;
    let start = match (params.has("offset"), params.has("timestamp")) {
        (true, true) => {
            return Err(ApiError::bad_field(
                "offset",
                "give either offset or timestamp, not both",
            ))
        }
        (false, false) => {
            return Err(ApiError::bad_field(
                "offset",
                "missing: give offset=N or timestamp=MS (ms since the epoch)",
            ))
        }
        (true, false) => {
            StartAt::Offset(params.int("offset", 0u64..=i64::MAX as u64)?.unwrap_or(0))
        }
        (false, true) => StartAt::Timestamp(params.int("timestamp", 0i64..=i64::MAX)?.unwrap_or(0)),
    };
    let max_records = params
        .int("max_records", 1usize..=limits.consume_max_records)?
        .unwrap_or(DEFAULT_MAX_RECORDS.min(limits.consume_max_records));
    let max_bytes = params
        .int("max_bytes", 1u64..=limits.consume_max_bytes)?
        .unwrap_or(DEFAULT_MAX_BYTES.min(limits.consume_max_bytes));
    let max_wait_ms = limits.consume_max_wait.as_millis() as u64;
    let timeout_ms = params
        .int("timeout_ms", 0u64..=max_wait_ms)?
        .unwrap_or(DEFAULT_TIMEOUT_MS.min(max_wait_ms));
    let node = Arc::clone(state.node()?);
    let consumed = node
        .consume(
            &topic,
            partition,
            start,
            ConsumeLimits {
                max_records,
                max_bytes,
                wait: std::time::Duration::from_millis(timeout_ms),
            },
        )
        .await?;
    let out = consumed
        .records
        .into_iter()
        .map(|r| record_out(format, &topic, partition, r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json_response(StatusCode::OK, format.media_type(), &out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_embedded_per_format() {
        let r = || ConsumedRecord {
            offset: 7,
            timestamp: 5,
            log_append_time: false,
            key: None,
            value: Some(Bytes::from_static(b"{\"a\":1}")),
            headers: vec![("h".into(), Some(Bytes::from_static(b"\x00\xff")))],
        };
        let out = record_out(Format::Json, "t", 0, r()).expect("json");
        assert_eq!(out.value, serde_json::json!({"a": 1}));
        assert_eq!(out.key, Value::Null);
        assert_eq!(out.headers[0].value.as_deref(), Some("AP8="));
        let out = record_out(Format::Binary, "t", 0, r()).expect("binary");
        assert_eq!(out.value, Value::String("eyJhIjoxfQ==".into()));
        let out = record_out(Format::String, "t", 0, r()).expect("string");
        assert_eq!(out.value, Value::String("{\"a\":1}".into()));
        let mut bad = r();
        bad.value = Some(Bytes::from_static(b"not json"));
        let e = record_out(Format::Json, "t", 0, bad).expect_err("not JSON");
        assert_eq!((e.status.as_u16(), e.error_code), (422, JSON_CONVERSION));
        assert!(e.message.contains("offset 7"), "{}", e.message);
    }
}
