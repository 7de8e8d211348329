//! Produce over HTTP: the records of a request become Kafka v2 record batches (uncompressed,
//! no producer id, create time = the record's `timestamp` or now), one or more per
//! partition, and each batch goes through the node's produce path with acks=all, exactly as
//! a Produce request's batch would (validation, `max.message.bytes`, timestamps and
//! LogAppendTime, the disk guard). The answer lists each record's partition and offset, or
//! its error, in request order.
//!
//! Everything that can be checked before anything is written is checked first (the body,
//! the topic, every partition, every base64 string), so a malformed request writes nothing.
//! Kafka errors of a batch (a record over `max.message.bytes`, a full disk) are per record,
//! as REST Proxy reports them: `error_code` 50002, or 50003 when retrying may succeed, and
//! `error` naming the Kafka error.
//!
//! Partitioning, when the record names no partition: keyed records go where Kafka's
//! producers put them (`murmur2(key) % partitions`); the records without a key of one
//! request stick to one partition (as Kafka's sticky partitioner does per batch), chosen
//! round-robin across requests.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use cairn_partition::Acks;
use cairn_protocol::kafka_protocol::protocol::StrBytes;
use cairn_protocol::kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use cairn_protocol::partitioner::partition_for_key;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Format, V2_JSON};
use crate::groups::wall_ms;
use crate::http::body::{json_response, parse_json, path_id, read_body, Params, PathParams};
use crate::http::error::{kafka_name, retriable, ApiError, KAFKA_ERROR, KAFKA_RETRIABLE};
use crate::http::HttpState;
use crate::node::produce::ProduceRefusal;
use crate::node::Node;

/// A v2 batch's header (61 bytes) plus room for rounding.
const BATCH_OVERHEAD: usize = 64;
/// The most a record's framing adds to its key, value and headers in a v2 batch: its
/// length, attributes, timestamp and offset deltas, key and value lengths and header count
/// are varints (at most 5 or 10 bytes each).
const RECORD_OVERHEAD: usize = 40;
/// Likewise per header (name and value lengths).
const HEADER_OVERHEAD: usize = 10;

/// REST Proxy v2's produce request (the schema fields are accepted and ignored, as REST
/// Proxy ignores them for the binary and JSON formats).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProduceRequest {
    records: Vec<ProduceRecord>,
    #[serde(default, rename = "key_schema")]
    _key_schema: Option<IgnoredAny>,
    #[serde(default, rename = "key_schema_id")]
    _key_schema_id: Option<IgnoredAny>,
    #[serde(default, rename = "value_schema")]
    _value_schema: Option<IgnoredAny>,
    #[serde(default, rename = "value_schema_id")]
    _value_schema_id: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProduceRecord {
    #[serde(default)]
    key: Option<Value>,
    #[serde(default)]
    value: Option<Value>,
    partition: Option<i32>,
    /// v3's header shape: `{"name": "...", "value": "<base64>" | null}`.
    #[serde(default)]
    headers: Vec<HeaderIn>,
    /// Create time in ms since the epoch; now if absent.
    timestamp: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderIn {
    name: String,
    value: Option<String>,
}

/// REST Proxy v2's `PartitionOffset`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
struct PartitionOffset {
    partition: Option<i32>,
    offset: Option<i64>,
    error_code: Option<u32>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct ProduceResponse {
    key_schema_id: Option<i32>,
    value_schema_id: Option<i32>,
    offsets: Vec<PartitionOffset>,
}

/// A record ready to encode, with its index in the request.
#[derive(Debug)]
struct Prepared {
    index: usize,
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: Vec<(String, Option<Bytes>)>,
    timestamp: i64,
}

impl Prepared {
    fn estimated_bytes(&self) -> usize {
        let len = |b: &Option<Bytes>| b.as_ref().map_or(0, Bytes::len);
        RECORD_OVERHEAD
            + len(&self.key)
            + len(&self.value)
            + self
                .headers
                .iter()
                .map(|(k, v)| HEADER_OVERHEAD + k.len() + len(v))
                .sum::<usize>()
    }
}

/// The bytes of a key or value in `format`; `field` names it in errors.
fn embedded(format: Format, v: Option<Value>, field: &str) -> Result<Option<Bytes>, ApiError> {
    let Some(v) = v else { return Ok(None) };
    match (format, v) {
        (_, Value::Null) => Ok(None),
        (Format::Json, v) => serde_json::to_vec(&v)
            .map(|b| Some(Bytes::from(b)))
            .map_err(|e| ApiError::bad_field(field, e)),
        (Format::Binary, Value::String(s)) => base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map(|b| Some(Bytes::from(b)))
            .map_err(|e| ApiError::bad_field(field, format!("not valid base64: {e}"))),
        (Format::String, Value::String(s)) => Ok(Some(Bytes::from(s))),
        (Format::Binary, _) => Err(ApiError::bad_field(
            field,
            "must be a base64 string or null (Content-Type is the binary format)",
        )),
        (Format::String, _) => Err(ApiError::bad_field(
            field,
            "must be a string or null (Content-Type is the string format)",
        )),
    }
}

pub(super) async fn to_topic(
    State(state): State<Arc<HttpState>>,
    PathParams((topic,)): PathParams<(String,)>,
    RawQuery(query): RawQuery,
    req: Request,
) -> Result<Response, ApiError> {
    produce(&state, topic, None, query, req).await
}

pub(super) async fn to_partition(
    State(state): State<Arc<HttpState>>,
    PathParams((topic, partition)): PathParams<(String, String)>,
    RawQuery(query): RawQuery,
    req: Request,
) -> Result<Response, ApiError> {
    let partition = path_id("partition_id", &partition)?;
    produce(&state, topic, Some(partition), query, req).await
}

async fn produce(
    state: &HttpState,
    topic: String,
    partition: Option<i32>,
    query: Option<String>,
    req: Request,
) -> Result<Response, ApiError> {
    Params::parse(query.as_deref(), &[])?;
    let node = Arc::clone(state.node()?);
    let format = Format::of_request(req.headers())?;
    // 404 before the body is read: nothing of an unknown topic is worth parsing.
    let t = node.topic(&topic)?;
    if let Some(p) = partition {
        node.find_partition(&topic, p)?;
    }
    let body_bytes = declared_length(req.headers())
        .unwrap_or(state.limits.produce_body_bytes)
        .min(state.limits.produce_body_bytes)
        .max(1);
    // Bounds the memory of concurrent produces: bodies wait their turn here.
    let permits = u32::try_from(body_bytes).unwrap_or(u32::MAX);
    let _budget = state
        .produce_bytes
        .acquire_many(permits)
        .await
        .map_err(|_| ApiError::not_ready("the node is shutting down"))?;
    let body = read_body(req).await?;
    let request: ProduceRequest = parse_json(&body)?;
    drop(body);
    if request.records.is_empty() {
        return Err(ApiError::bad_field(
            "records",
            "must hold at least one record",
        ));
    }
    let partitions = t.partitions.len() as i32;
    let sticky =
        (state.next_sticky.fetch_add(1, Ordering::Relaxed) % partitions.max(1) as usize) as i32;
    let now = wall_ms();
    let mut by_partition: BTreeMap<i32, Vec<Prepared>> = BTreeMap::new();
    for (index, record) in request.records.into_iter().enumerate() {
        let field = |name: &str| format!("records[{index}].{name}");
        let key = embedded(format, record.key, &field("key"))?;
        let value = embedded(format, record.value, &field("value"))?;
        let target = match (partition, record.partition) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_field(
                    &field("partition"),
                    "not allowed when the partition is in the path",
                ))
            }
            (Some(p), None) => p,
            (None, Some(p)) => {
                if !(0..partitions).contains(&p) {
                    return Err(crate::node::NodeError::UnknownPartition {
                        topic: topic.clone(),
                        partition: p,
                    }
                    .into());
                }
                p
            }
            (None, None) => match &key {
                Some(k) => partition_for_key(k, partitions.max(1)),
                None => sticky,
            },
        };
        let mut headers: Vec<(String, Option<Bytes>)> = Vec::with_capacity(record.headers.len());
        for (h, header) in record.headers.into_iter().enumerate() {
            if headers.iter().any(|(name, _)| *name == header.name) {
                return Err(ApiError::bad_field(
                    &field(&format!("headers[{h}].name")),
                    format!(
                        "header {:?} appears twice; a record keeps one value per header name here",
                        header.name
                    ),
                ));
            }
            let value = match header.value {
                None => None,
                Some(v) => Some(Bytes::from(
                    base64::engine::general_purpose::STANDARD
                        .decode(v.as_bytes())
                        .map_err(|e| {
                            ApiError::bad_field(
                                &field(&format!("headers[{h}].value")),
                                format!("not valid base64: {e}"),
                            )
                        })?,
                )),
            };
            headers.push((header.name, value));
        }
        by_partition.entry(target).or_default().push(Prepared {
            index,
            key,
            value,
            headers,
            timestamp: record.timestamp.unwrap_or(now),
        });
    }
    let count = by_partition.values().map(Vec::len).sum();
    let max_batch_bytes = t.log.max_batch_bytes as usize;
    let sends = by_partition.into_iter().map(|(p, records)| {
        let node = Arc::clone(&node);
        let topic = topic.clone();
        async move { send_partition(&node, &topic, p, records, max_batch_bytes).await }
    });
    let mut offsets = vec![
        PartitionOffset {
            partition: None,
            offset: None,
            error_code: None,
            error: None,
        };
        count
    ];
    for results in futures_util::future::join_all(sends).await {
        for (index, result) in results {
            offsets[index] = result;
        }
    }
    Ok(json_response(
        StatusCode::OK,
        V2_JSON,
        &ProduceResponse {
            key_schema_id: None,
            value_schema_id: None,
            offsets,
        },
    ))
}

/// The request's declared body length, if it has one.
fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Encodes one partition's records in batches of at most `max_batch_bytes` and produces
/// them in order; returns each record's answer by its index in the request.
async fn send_partition(
    node: &Node,
    topic: &str,
    partition: i32,
    records: Vec<Prepared>,
    max_batch_bytes: usize,
) -> Vec<(usize, PartitionOffset)> {
    let mut out = Vec::with_capacity(records.len());
    for chunk in chunks(&records, max_batch_bytes) {
        let result = match encode_batch(chunk) {
            Ok(batch) => node.produce(topic, partition, batch, Acks::All).await,
            Err(refusal) => Err(refusal),
        };
        for (i, r) in chunk.iter().enumerate() {
            let answer = match &result {
                Ok(appended) => PartitionOffset {
                    partition: Some(partition),
                    offset: Some(appended.base_offset as i64 + i as i64),
                    error_code: None,
                    error: None,
                },
                Err(refusal) => PartitionOffset {
                    partition: None,
                    offset: None,
                    error_code: Some(if retriable(refusal.code) {
                        KAFKA_RETRIABLE
                    } else {
                        KAFKA_ERROR
                    }),
                    error: Some(match &refusal.message {
                        Some(m) => format!("{}: {m}", kafka_name(refusal.code)),
                        None => kafka_name(refusal.code),
                    }),
                },
            };
            out.push((r.index, answer));
        }
    }
    out
}

/// `records` cut into runs whose encoded batches stay within `max_batch_bytes` (a record
/// larger than that alone makes a run, which the produce path then refuses as Kafka does).
fn chunks(records: &[Prepared], max_batch_bytes: usize) -> Vec<&[Prepared]> {
    let budget = max_batch_bytes.saturating_sub(BATCH_OVERHEAD).max(1);
    let mut out = Vec::new();
    let (mut start, mut size) = (0, 0usize);
    for (i, r) in records.iter().enumerate() {
        let bytes = r.estimated_bytes();
        if i > start && size + bytes > budget {
            out.push(&records[start..i]);
            start = i;
            size = 0;
        }
        size += bytes;
    }
    if start < records.len() {
        out.push(&records[start..]);
    }
    out
}

/// One uncompressed v2 batch of `records` (no producer id, create times).
fn encode_batch(records: &[Prepared]) -> Result<Bytes, ProduceRefusal> {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut headers = cairn_protocol::kafka_protocol::indexmap::IndexMap::new();
            for (k, v) in &r.headers {
                headers.insert(StrBytes::from_string(k.clone()), v.clone());
            }
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // No producer id: base sequence -1. kafka-protocol starts a new batch where
                // `offset - sequence` changes, so the sequence follows the offset.
                sequence: (i as i32).wrapping_sub(1),
                timestamp: r.timestamp,
                key: r.key.clone(),
                value: r.value.clone(),
                headers,
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| {
        ProduceRefusal::from((
            cairn_protocol::ErrorCode::InvalidRecord,
            Some(format!("cannot encode the records: {e}")),
        ))
    })?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(index: usize, value_len: usize) -> Prepared {
        Prepared {
            index,
            key: None,
            value: Some(Bytes::from(vec![b'x'; value_len])),
            headers: vec![("h".into(), Some(Bytes::from_static(b"v")))],
            timestamp: 1_700_000_000_000,
        }
    }

    #[test]
    fn batches_stay_within_the_limit_and_are_valid() {
        let records: Vec<Prepared> = (0..50).map(|i| record(i, 100)).collect();
        let limit = 1024;
        let runs = chunks(&records, limit);
        assert!(runs.len() > 1);
        assert_eq!(runs.iter().map(|r| r.len()).sum::<usize>(), 50);
        for run in runs {
            let batch = encode_batch(run).expect("encodes");
            assert!(batch.len() <= limit, "{} > {limit}", batch.len());
            let header = cairn_storage::batch::validate(&batch, u32::MAX).expect("one valid batch");
            assert_eq!(header.records_count as usize, run.len());
            assert_eq!(header.total_len() as usize, batch.len());
        }
        // A record larger than the limit is a run of its own.
        let big = [record(0, 10), record(1, 5000), record(2, 10)];
        let runs = chunks(&big, limit);
        assert_eq!(runs.iter().map(|r| r.len()).collect::<Vec<_>>(), [1, 1, 1]);
    }

    #[test]
    fn embedded_values_follow_the_format() {
        let b = |v: Value| embedded(Format::Binary, Some(v), "records[0].value");
        assert_eq!(
            b(Value::String("aGk=".into())).expect("base64"),
            Some(Bytes::from_static(b"hi"))
        );
        let e = b(Value::String("a!".into())).expect_err("bad base64");
        assert!(
            e.message.starts_with("records[0].value: not valid base64"),
            "{}",
            e.message
        );
        assert!(b(serde_json::json!(5)).is_err());
        assert_eq!(b(Value::Null).expect("null"), None);
        let j = embedded(Format::Json, Some(serde_json::json!({"a": [1, "x"]})), "v");
        assert_eq!(
            j.expect("json"),
            Some(Bytes::from_static(br#"{"a":[1,"x"]}"#))
        );
        let s = embedded(Format::String, Some(Value::String("é".into())), "v");
        assert_eq!(s.expect("string"), Some(Bytes::from("é")));
        assert!(embedded(Format::String, Some(serde_json::json!(1)), "v").is_err());
    }
}
