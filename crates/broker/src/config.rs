//! The broker's settings. Names follow Kafka's broker configs where one exists.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use cairn_storage::LogConfig;

pub use crate::groups::GroupSettings;
use crate::http::HttpLimits;

/// Settings of one broker node.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `node.id`: this broker's id in metadata responses (Kafka's first broker is 0 or 1;
    /// Cairn's default is 1). Its raft id is `node_id + 1` (raft ids must be non-zero).
    pub node_id: i32,
    /// Where topics live: `<data_dir>/<topic>-<partition>/` and `<data_dir>/.cairn/`.
    pub data_dir: PathBuf,
    /// The address the Kafka listener binds.
    pub listen: SocketAddr,
    /// The address the HTTP API binds; `None`: no HTTP API.
    pub http_listen: Option<SocketAddr>,
    /// The HTTP API's limits.
    pub http: HttpLimits,
    /// Host and port clients are told to connect to (Kafka's `advertised.listeners`).
    pub advertise: (String, u16),
    /// `auto.create.topics.enable`: Metadata for an unknown topic creates it (Kafka default
    /// true).
    pub auto_create_topics: bool,
    /// `num.partitions`: partitions of an auto-created topic, and of a CreateTopics request
    /// that leaves the count to the broker (Kafka default 1).
    pub num_partitions: i32,
    /// `socket.request.max.bytes`: the largest request frame accepted; checked before the
    /// frame is buffered (Kafka default 100 MiB).
    pub max_frame_bytes: usize,
    /// `max.connections`: concurrent client connections; further ones wait in the accept
    /// queue (Kafka's default is unlimited; Cairn's is 10 000).
    pub max_connections: usize,
    /// `fetch.max.bytes`: the most record bytes one Fetch answer carries, whatever the
    /// client's `max_bytes` (Kafka default 55 MiB); as with a client's limit, the first
    /// partition with data still gets one whole batch.
    pub fetch_max_bytes: usize,
    /// Requests one connection may have in flight before the broker stops reading from it
    /// (responses are sent in request order).
    pub max_inflight_per_connection: usize,
    /// Largest amount of decompressed data validation reads from one produced batch.
    pub max_uncompressed_batch_bytes: u64,
    /// Log settings of topics that do not override them (`[log]` in `cairn.toml`).
    pub log: LogConfig,
    /// Threads that own partitions (their file I/O never runs on the network runtime).
    pub storage_threads: usize,
    /// Consumer groups: `group.*`, `offsets.*` and `offset.metadata.max.bytes`.
    pub groups: GroupSettings,
    /// `storage.min.free.bytes` (not a Kafka setting; Redpanda's `storage_min_free_bytes`):
    /// below this much available space on the data directory's filesystem, produce
    /// requests are refused with KAFKA_STORAGE_ERROR until space returns. 0 disables it.
    pub storage_min_free_bytes: u64,
    /// Kafka broker config names (`num.partitions`, `log.retention.ms`, ...) that were set
    /// explicitly (file, environment or flag): DescribeConfigs reports them as
    /// STATIC_BROKER_CONFIG, the others as DEFAULT_CONFIG. `[log]` keys are listed under
    /// their broker names ([`crate::broker_name_of_log_setting`]).
    pub static_configs: BTreeSet<String>,
    /// A node of a cluster (`controller.quorum.voters` and friends); `None`: a single node.
    pub cluster: Option<crate::ClusterSettings>,
    /// The log cleaner (`log.cleaner.*`), which compacts topics with
    /// `cleanup.policy=compact`. Process-wide: the first broker of a process sets it.
    pub cleaner: cairn_partition::CleanerConfig,
}

impl BrokerConfig {
    /// Defaults for a broker on `data_dir` listening on `listen`.
    pub fn new(data_dir: PathBuf, listen: SocketAddr) -> BrokerConfig {
        BrokerConfig {
            node_id: 1,
            data_dir,
            listen,
            http_listen: None,
            http: HttpLimits::default(),
            advertise: (listen.ip().to_string(), listen.port()),
            auto_create_topics: true,
            num_partitions: 1,
            max_frame_bytes: cairn_protocol::DEFAULT_MAX_FRAME_BYTES,
            max_connections: 10_000,
            fetch_max_bytes: 57_671_680,
            max_inflight_per_connection: 64,
            max_uncompressed_batch_bytes: 64 << 20,
            log: LogConfig::default(),
            storage_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            groups: GroupSettings::default(),
            storage_min_free_bytes: 64 << 20,
            static_configs: BTreeSet::new(),
            cluster: None,
            cleaner: cairn_partition::CleanerConfig::default(),
        }
    }
}
