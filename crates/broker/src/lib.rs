//! Cairn's broker: the node layer (topics, partitions, groups, configs and the operations on
//! them) and its two front ends, the Kafka-protocol TCP server and the HTTP API.
//!
//! ```text
//! client ──TCP──► connection task ── frame (protocol::decode_frame, bounded)
//!                   │  parse_request ── unknown API / bad frame: log peer+reason, close
//!                   ├─► one task per request ─► handlers::handle ─┐
//!                   └─◄ responses written in request order        │
//!                       (at most `max_inflight_per_connection`)   ├─► node::Node ─► TopicRegistry
//! HTTP client ──► http (axum; REST Proxy v3/v2 shapes) ───────────┘     ─► PartitionHandle
//!                                                                         (storage shard)
//! ```
//!
//! The broker knows Kafka requests, HTTP and topics; partitions know raft and the log. Both
//! front ends translate into the node layer's operations and never call each other.
//! Everything a client can make the broker hold is bounded: frame size, requests in flight
//! per connection, connections, decompression per batch, partitions per topic, HTTP bodies,
//! requests and waits.
#![warn(missing_docs)]

mod broker_configs;
mod cluster;
mod config;
mod disk;
mod errors;
mod groups;
mod handlers;
mod http;
mod meta;
mod metrics;
mod node;
mod read_buffers;
mod server;
mod topic_config;
mod topics;

pub use broker_configs::broker_name_of_log_setting;
pub use cairn_groups::CoordinatorConfig;
pub use cluster::ClusterSettings;
pub use config::{BrokerConfig, GroupSettings};
pub use http::HttpLimits;
pub use server::Broker;
pub use topic_config::{ConfigError, DescribedConfig, TopicConfigs};

/// What to do about a listener that cannot bind: for an address in use, where to choose
/// another (`flag` names the setting).
fn bind_hint(e: &std::io::Error, flag: &str) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            format!(" (is another broker running there? choose another address with {flag})")
        }
        std::io::ErrorKind::AddrNotAvailable => {
            format!(" (no interface of this machine has that address; set {flag})")
        }
        _ => String::new(),
    }
}

/// Errors that stop the broker from starting or that it reports while stopping.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The listener could not be bound.
    #[error(
        "cannot listen on {addr}: {source}{}",
        bind_hint(source, "--listen or CAIRN_LISTEN")
    )]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP API's listener could not be bound.
    #[error(
        "cannot listen for HTTP on {addr}: {source}{}",
        bind_hint(source, "--http-listen or CAIRN_HTTP_LISTEN (off turns it off)")
    )]
    HttpBind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Storage failed (metadata files, topic files).
    #[error(transparent)]
    Storage(#[from] cairn_storage::StorageError),
    /// A partition failed to open.
    #[error(transparent)]
    Partition(#[from] cairn_partition::PartitionError),
    /// The configuration or the data directory is not usable.
    #[error("{0}")]
    Config(String),
    /// The storage threads could not be started.
    #[error("cannot start storage threads: {0}")]
    Threads(std::io::Error),
}

impl From<topics::TopicError> for BrokerError {
    fn from(e: topics::TopicError) -> Self {
        BrokerError::Config(e.to_string())
    }
}
