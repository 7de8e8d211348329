//! Cairn's node-to-node layer. Today: the transport — TCP with length-prefixed, versioned
//! bincode frames, one connection per ordered node pair, the raft messages of every
//! partition batched per peer, bounded queues, reconnection with backoff, and refusal of
//! peers of another cluster. The Kafka protocol is never used between nodes.
//!
//! The transport carries opaque messages per raft group (a partition); it knows nothing of
//! raft, partitions or Kafka. Its door: [`Transport`], [`TransportConfig`], [`Inbound`], and
//! the wire format in [`frame`].
#![warn(missing_docs)]

pub mod frame;
mod transport;

pub use transport::{Inbound, PeerRefused, Transport, TransportConfig, TransportError};
