//! The `[broker]` table: the node's Kafka broker settings, by Kafka's names, from the TOML
//! file and from `CAIRN_BROKER_*` variables alike.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// The broker settings of a node (Kafka's names in the file and in `CAIRN_BROKER_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerSettings {
    /// `node.id`: this broker's id (Kafka's `node.id`/`broker.id`).
    pub node_id: i32,
    /// `auto.create.topics.enable`: Metadata for an unknown topic creates it.
    pub auto_create_topics: bool,
    /// `num.partitions`: partitions of auto-created topics and of CreateTopics that leave
    /// the count to the broker.
    pub num_partitions: i32,
    /// `socket.request.max.bytes`: the largest request frame accepted.
    pub socket_request_max_bytes: usize,
    /// `max.connections`: client connections served at once.
    pub max_connections: usize,
    /// `fetch.max.bytes`: the most record bytes one Fetch answer carries, whatever the
    /// client asks.
    pub fetch_max_bytes: usize,
    /// `group.min.session.timeout.ms`: the shortest session a group member may ask for.
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`: the longest session a group member may ask for.
    pub group_max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`: how long an empty group waits for more members
    /// before its first rebalance completes.
    pub group_initial_rebalance_delay_ms: i32,
    /// `group.max.size`: members one group may have.
    pub group_max_size: i32,
    /// `offsets.retention.minutes`: how long the offsets of an empty group are kept.
    pub offsets_retention_minutes: i64,
    /// `offsets.retention.check.interval.ms`: how often expired offsets are removed.
    pub offsets_retention_check_interval_ms: u64,
    /// `offsets.topic.num.partitions`: partitions of `__consumer_offsets` (used when the
    /// topic is created).
    pub offsets_topic_num_partitions: u32,
    /// `offset.metadata.max.bytes`: the longest metadata string of a committed offset.
    pub offset_metadata_max_bytes: usize,
    /// `storage.min.free.bytes` (Cairn's own): below this much available space on the data
    /// directory's filesystem, produces are refused with KAFKA_STORAGE_ERROR.
    pub storage_min_free_bytes: u64,
    /// `controller.quorum.voters` (KRaft's name): every node of a cluster as
    /// `id@host:port` (its node-to-node address), comma-separated. Empty: a single node.
    pub controller_quorum_voters: String,
    /// `cluster.listen` (Cairn's own): where this node listens for its peers; its own
    /// entry in `controller.quorum.voters` when unset.
    pub cluster_listen: Option<String>,
    /// `cluster.id`: the id every node of a cluster shares; derived from the voters when
    /// unset.
    pub cluster_id: Option<String>,
    /// `offsets.topic.segment.bytes`: segment size of `__consumer_offsets` (at creation).
    pub offsets_topic_segment_bytes: u32,
    /// `log.cleaner.enable`: compacted topics are cleaned.
    pub log_cleaner_enable: bool,
    /// `log.cleaner.threads`: threads that clean logs.
    pub log_cleaner_threads: usize,
    /// `log.cleaner.dedupe.buffer.size`: memory for the cleaners' key maps (all threads).
    pub log_cleaner_dedupe_buffer_size: usize,
    /// `log.cleaner.io.max.bytes.per.second`: I/O limit of each cleaner (Kafka's default is
    /// unlimited: `Double.MAX_VALUE`; here any value above 2^53).
    pub log_cleaner_io_max_bytes_per_second: Option<u64>,
    /// `log.cleaner.backoff.ms`: how often each compacted log is checked for dirt.
    pub log_cleaner_backoff_ms: u64,
}

impl Default for BrokerSettings {
    fn default() -> Self {
        BrokerSettings {
            node_id: 1,
            auto_create_topics: true,
            num_partitions: 1,
            socket_request_max_bytes: 100 * 1024 * 1024,
            max_connections: 10_000,
            fetch_max_bytes: 57_671_680,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_initial_rebalance_delay_ms: 3_000,
            group_max_size: i32::MAX,
            offsets_retention_minutes: 10_080,
            offsets_retention_check_interval_ms: 600_000,
            offsets_topic_num_partitions: 50,
            offset_metadata_max_bytes: 4096,
            storage_min_free_bytes: 64 << 20,
            controller_quorum_voters: String::new(),
            cluster_listen: None,
            cluster_id: None,
            offsets_topic_segment_bytes: 100 << 20,
            log_cleaner_enable: true,
            log_cleaner_threads: 1,
            log_cleaner_dedupe_buffer_size: 128 << 20,
            log_cleaner_io_max_bytes_per_second: None,
            log_cleaner_backoff_ms: 15_000,
        }
    }
}

/// The `[broker]` keys, in the order the README lists them.
pub(super) const BROKER_KEYS: [&str; 24] = [
    "node.id",
    "auto.create.topics.enable",
    "num.partitions",
    "socket.request.max.bytes",
    "max.connections",
    "fetch.max.bytes",
    "group.min.session.timeout.ms",
    "group.max.session.timeout.ms",
    "group.initial.rebalance.delay.ms",
    "group.max.size",
    "offsets.retention.minutes",
    "offsets.retention.check.interval.ms",
    "offsets.topic.num.partitions",
    "offsets.topic.segment.bytes",
    "offset.metadata.max.bytes",
    "storage.min.free.bytes",
    "controller.quorum.voters",
    "cluster.listen",
    "cluster.id",
    "log.cleaner.enable",
    "log.cleaner.threads",
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.io.max.bytes.per.second",
    "log.cleaner.backoff.ms",
];

/// `auto.create.topics.enable` -> `AUTO_CREATE_TOPICS_ENABLE`, after `CAIRN_BROKER_`.
pub(super) fn env_suffix(name: &str) -> String {
    name.to_ascii_uppercase().replace('.', "_")
}

fn int<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
    value: &str,
    min: T,
    max: T,
) -> Result<T, String> {
    match value.trim().parse::<T>() {
        Ok(v) if v >= min && v <= max => Ok(v),
        _ => Err(format!("must be an integer from {min} to {max}")),
    }
}

fn boolean(value: &str) -> Result<bool, String> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("must be true or false".into()),
    }
}

impl BrokerSettings {
    /// Sets `name` from its text form; `Err` says what the value must be.
    pub(super) fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        match name {
            "node.id" => self.node_id = int(value, 0, i32::MAX - 1)?,
            "auto.create.topics.enable" => self.auto_create_topics = boolean(value)?,
            "offsets.topic.segment.bytes" => {
                self.offsets_topic_segment_bytes = int(value, 1024, i32::MAX as u32)?
            }
            "log.cleaner.enable" => self.log_cleaner_enable = boolean(value)?,
            "log.cleaner.threads" => self.log_cleaner_threads = int(value, 1, 64)?,
            "log.cleaner.dedupe.buffer.size" => {
                self.log_cleaner_dedupe_buffer_size = int(value, 1 << 16, 1 << 40)?
            }
            "log.cleaner.io.max.bytes.per.second" => {
                // Kafka's value is a double; its default (Double.MAX_VALUE) means no limit.
                let v: f64 = value
                    .trim()
                    .parse()
                    .ok()
                    .filter(|v: &f64| *v >= 1.0)
                    .ok_or("must be a number of bytes per second, at least 1")?;
                self.log_cleaner_io_max_bytes_per_second = (v < 9.0e15).then_some(v as u64);
            }
            "log.cleaner.backoff.ms" => self.log_cleaner_backoff_ms = int(value, 1, u64::MAX / 2)?,
            "num.partitions" => self.num_partitions = int(value, 1, 10_000)?,
            "socket.request.max.bytes" => {
                self.socket_request_max_bytes = int(value, 1024, i32::MAX as usize)?
            }
            "max.connections" => self.max_connections = int(value, 1, 1_000_000)?,
            "fetch.max.bytes" => self.fetch_max_bytes = int(value, 1024, i32::MAX as usize)?,
            "group.min.session.timeout.ms" => {
                self.group_min_session_timeout_ms = int(value, 0, i32::MAX)?
            }
            "group.max.session.timeout.ms" => {
                self.group_max_session_timeout_ms = int(value, 0, i32::MAX)?
            }
            "group.initial.rebalance.delay.ms" => {
                self.group_initial_rebalance_delay_ms = int(value, 0, i32::MAX)?
            }
            "group.max.size" => self.group_max_size = int(value, 1, i32::MAX)?,
            "offsets.retention.minutes" => {
                self.offsets_retention_minutes = int(value, 1, i64::MAX / 60_000)?
            }
            "offsets.retention.check.interval.ms" => {
                self.offsets_retention_check_interval_ms = int(value, 1, u64::MAX / 2)?
            }
            "offsets.topic.num.partitions" => {
                self.offsets_topic_num_partitions = int(value, 1, 10_000)?
            }
            "offset.metadata.max.bytes" => {
                self.offset_metadata_max_bytes = int(value, 0, i32::MAX as usize)?
            }
            "storage.min.free.bytes" => self.storage_min_free_bytes = int(value, 0, u64::MAX / 2)?,
            "controller.quorum.voters" => {
                if !value.trim().is_empty() {
                    cairn_broker::ClusterSettings::parse_voters(value)?;
                }
                self.controller_quorum_voters = value.trim().to_string();
            }
            "cluster.listen" => {
                let addr = value.trim();
                addr.parse::<std::net::SocketAddr>()
                    .map_err(|e| format!("must be IP:PORT ({e})"))?;
                self.cluster_listen = Some(addr.to_string());
            }
            "cluster.id" => {
                let id = value.trim();
                if id.is_empty()
                    || id.len() > 64
                    || !id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return Err("must be 1 to 64 characters of letters, digits, '-' and '_'".into());
                }
                self.cluster_id = Some(id.to_string());
            }
            _ => {
                return Err(format!(
                    "is not a broker setting (known: {})",
                    BROKER_KEYS.join(", ")
                ))
            }
        }
        Ok(())
    }
}

/// Reads the `[broker]` table onto the defaults. Quoted Kafka names (`"num.partitions" = 3`)
/// and unquoted dotted keys (`num.partitions = 3`, a TOML sub-table) are read alike.
pub(super) fn deserialize_broker_table<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BrokerSettings, D::Error> {
    use serde::de::Error as _;
    let table = toml::Table::deserialize(deserializer)?;
    let mut flat = BTreeMap::new();
    flatten(&mut flat, "", table);
    let mut settings = BrokerSettings::default();
    for (name, value) in flat {
        let text = match &value {
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::String(s) => s.clone(),
            other => {
                return Err(D::Error::custom(format!(
                    "[broker] \"{name}\" must be an integer, a boolean or a string, not a {}",
                    other.type_str()
                )))
            }
        };
        settings
            .set(&name, &text)
            .map_err(|reason| D::Error::custom(format!("[broker] \"{name}\" = {text} {reason}")))?;
    }
    Ok(settings)
}

fn flatten(out: &mut BTreeMap<String, toml::Value>, prefix: &str, table: toml::Table) {
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => flatten(out, &name, inner),
            value => {
                out.insert(name, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_validate() {
        let mut s = BrokerSettings::default();
        for (name, value) in [
            ("node.id", "3"),
            ("auto.create.topics.enable", "false"),
            ("num.partitions", "6"),
            ("socket.request.max.bytes", "2048"),
            ("max.connections", "10"),
            ("group.initial.rebalance.delay.ms", "0"),
            ("offsets.topic.num.partitions", "4"),
        ] {
            s.set(name, value).expect("valid");
        }
        assert_eq!(
            s,
            BrokerSettings {
                node_id: 3,
                auto_create_topics: false,
                num_partitions: 6,
                socket_request_max_bytes: 2048,
                max_connections: 10,
                group_initial_rebalance_delay_ms: 0,
                offsets_topic_num_partitions: 4,
                ..BrokerSettings::default()
            }
        );
        assert!(s.set("offsets.topic.num.partitions", "0").is_err());
        assert!(s.set("num.partitions", "0").is_err());
        assert!(s.set("auto.create.topics.enable", "yes").is_err());
        assert!(s.set("no.such", "1").is_err());
        assert_eq!(
            env_suffix("auto.create.topics.enable"),
            "AUTO_CREATE_TOPICS_ENABLE"
        );
    }
}
