//! Cairn's Kafka wire layer, without I/O: it turns bytes from a client into typed requests
//! and typed responses back into bytes, and decides whether produced records may be stored.
//! No sockets, files or async runtime: the broker's connection task feeds it bytes and
//! writes out what it returns, so everything here is tested and fuzzed with plain values.
//!
//! A request travels through it like this:
//!
//! ```text
//! socket bytes ─► frame::decode_frame ─► request::parse_request ─► Request { body: RequestKind }
//!                 (size <= max_frame_bytes)   (our version table, shape check
//!                                              against declared lengths, kafka-protocol
//!                                              or, for versions it lacks, `legacy`)
//! Produce records ─► records::validate_produce_records ─► ProducedBatch (zero-copy) ─► storage
//!                    (batch header + CRC via cairn_storage::batch, record walk,
//!                     bounded streaming decompression)
//! handler result ─► errors::ErrorCode ─► response::encode_response ─► socket bytes
//! ```
//!
//! The door: [`decode_frame`], [`parse_request`], [`encode_response`],
//! [`api_versions_response`], [`api_versions_unsupported`], [`validate_produce_records`],
//! [`ErrorCode`], the version table [`SUPPORTED_APIS`], and [`client`] for the CLI.
//! Messages are kafka-protocol's types ([`kafka_protocol::messages`]), re-exported as
//! [`kafka_protocol`] so users need not pin it separately.
//!
//! Everything bounded: frames by `max_frame_bytes`, what a request may make the decoder
//! build by [`RequestLimits`], batches by [`RecordLimits`]; no input panics (property tests
//! feed arbitrary and mutated bytes to every entry point).
#![warn(missing_docs)]

pub mod apis;
mod cleaner_codec;
pub mod client;
mod decompress;
pub mod errors;
pub mod frame;
mod legacy;
pub mod message_sets;
pub mod partitioner;
pub mod records;
pub mod request;
pub mod response;
mod shape;
mod snappy;

pub use apis::{supported, SupportedApi, SUPPORTED_APIS};
pub use cleaner_codec::CleanerCodec;
pub use errors::ErrorCode;
pub use frame::{
    decode_frame, encode_frame, missing_frame_bytes, FrameError, DEFAULT_MAX_FRAME_BYTES,
};
pub use kafka_protocol;
pub use legacy::LegacyFields;
pub use records::{validate_produce_records, ProducedBatch, RecordError, RecordLimits};
pub use request::{parse_request, Request, RequestError, RequestLimits};
pub use response::{
    api_versions_response, api_versions_unsupported, encode_response, encode_response_chunks,
    EncodeError,
};

#[cfg(test)]
mod samples;
