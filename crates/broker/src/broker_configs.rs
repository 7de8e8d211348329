//! Kafka's broker configs (the BROKER config resource): what DescribeConfigs shows, which of
//! them change at run time, and the dynamic values, persisted.
//!
//! Precedence, highest first, as Kafka's (`DynamicBrokerConfig`): a per-broker dynamic value
//! (resource name = this node's id), a cluster-wide dynamic default (resource name `""`),
//! the static value (cairn.toml, `CAIRN_*`, flags), the built-in default. DescribeConfigs
//! reports the winner's source and, when asked, the whole chain as synonyms.
//!
//! Dynamic: the log defaults that topics without an override inherit, under Kafka's broker
//! names (`log.retention.ms` is the default of `retention.ms`, ...; Kafka's
//! `ServerTopicConfigSynonyms`), which Kafka updates cluster-wide (`DynamicLogConfig`). A
//! change applies at once to every partition that does not override it. Everything else is
//! read-only, as in Kafka (`node.id`, `auto.create.topics.enable`, `num.partitions`,
//! `socket.request.max.bytes`, the group and offsets settings), or read-only in Cairn though
//! Kafka can change it: `max.connections` and `advertised.listeners`, which the listener
//! takes at start-up.
//!
//! ```text
//! <data_dir>/.cairn/broker-configs   cairn-broker-configs 1
//!                                    broker <name>=<value>     (per broker: this node)
//!                                    default <name>=<value>    (cluster-wide defaults)
//!                                    crc32 <...>               (cairn_storage::metafile)
//! ```
//!
//! The file is replaced whole (write, fsync, rename, fsync the directory) before a change
//! takes effect, so a restart finds every change that was acknowledged. A damaged file or an
//! entry that is no longer valid is ignored with a warning, as Kafka ignores invalid dynamic
//! configs at start-up (`DynamicBrokerConfig.removeInvalidConfigs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use cairn_storage::{metafile, LogConfig, StorageError};

use crate::config::BrokerConfig;

const FILE: &str = "broker-configs";
const MAGIC: &str = "cairn-broker-configs 1";

/// Kafka's config sources, as DescribeConfigs numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Topic = 1,
    DynamicBroker = 2,
    DynamicDefault = 3,
    StaticBroker = 4,
    Default = 5,
}

impl Source {
    pub(crate) fn id(self) -> i8 {
        self as i8
    }
}

/// The level a dynamic value is set at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// This broker (resource name = its node id).
    Broker,
    /// Every broker without its own value (resource name `""`).
    Cluster,
}

/// Kafka's broker name for each log setting Cairn applies, with the topic config it is the
/// default of (Kafka's `ServerTopicConfigSynonyms`, first synonym). These are the dynamic
/// broker configs.
const LOG_SETTINGS: [(&str, &str); 12] = [
    ("log.segment.bytes", "segment.bytes"),
    ("log.roll.ms", "segment.ms"),
    ("log.index.size.max.bytes", "segment.index.bytes"),
    ("log.index.interval.bytes", "index.interval.bytes"),
    ("log.retention.bytes", "retention.bytes"),
    ("log.retention.ms", "retention.ms"),
    ("log.flush.interval.messages", "flush.messages"),
    ("log.flush.interval.ms", "flush.ms"),
    ("message.max.bytes", "max.message.bytes"),
    ("log.cleaner.delete.retention.ms", "delete.retention.ms"),
    ("log.cleaner.min.compaction.lag.ms", "min.compaction.lag.ms"),
    ("log.cleaner.max.compaction.lag.ms", "max.compaction.lag.ms"),
];

/// Kafka's broker names of the topic configs Cairn keeps without acting on them, for the
/// synonyms of a topic's configs (their value is always Kafka's default here).
const STORED_SYNONYMS: [(&str, &str); 10] = [
    ("cleanup.policy", "log.cleanup.policy"),
    ("compression.type", "compression.type"),
    ("file.delete.delay.ms", "log.segment.delete.delay.ms"),
    ("message.timestamp.type", "log.message.timestamp.type"),
    (
        "message.timestamp.before.max.ms",
        "log.message.timestamp.before.max.ms",
    ),
    (
        "message.timestamp.after.max.ms",
        "log.message.timestamp.after.max.ms",
    ),
    (
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
    ),
    ("min.insync.replicas", "min.insync.replicas"),
    ("preallocate", "log.preallocate"),
    (
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
    ),
];

/// Kafka's broker config name for the `[log]` setting (topic config) `topic_name`, if Cairn
/// has one: how `cairn.toml`'s `[log]` keys are reported as static broker configs.
pub fn broker_name_of_log_setting(topic_name: &str) -> Option<&'static str> {
    LOG_SETTINGS
        .iter()
        .chain(&STATIC_LOG_SETTINGS)
        .find(|(_, t)| *t == topic_name)
        .map(|(b, _)| *b)
}

/// `[log]` settings that are read-only broker configs in Kafka (no topic config).
const STATIC_LOG_SETTINGS: [(&str, &str); 1] = [(
    "log.retention.check.interval.ms",
    "retention.check.interval.ms",
)];

/// The topic config a dynamic broker config is the default of.
fn topic_name_of(broker_name: &str) -> Option<&'static str> {
    LOG_SETTINGS
        .iter()
        .find(|(b, _)| *b == broker_name)
        .map(|(_, t)| *t)
}

/// A log setting's value in Kafka's form (`-1` for "no limit").
fn log_value(log: &LogConfig, topic_name: &str) -> String {
    log.kafka_settings()
        .into_iter()
        .find(|(n, _)| *n == topic_name)
        .map_or_else(String::new, |(_, v)| v.to_string())
}

/// The read-only broker configs and their values in `c`.
fn static_values(c: &BrokerConfig) -> Vec<(&'static str, String)> {
    let g = &c.groups;
    vec![
        ("node.id", c.node_id.to_string()),
        (
            "advertised.listeners",
            format!("PLAINTEXT://{}:{}", c.advertise.0, c.advertise.1),
        ),
        (
            "auto.create.topics.enable",
            c.auto_create_topics.to_string(),
        ),
        ("num.partitions", c.num_partitions.to_string()),
        ("default.replication.factor", "1".to_string()),
        ("socket.request.max.bytes", c.max_frame_bytes.to_string()),
        ("max.connections", c.max_connections.to_string()),
        ("fetch.max.bytes", c.fetch_max_bytes.to_string()),
        (
            "group.min.session.timeout.ms",
            g.coordinator.group_min_session_timeout_ms.to_string(),
        ),
        (
            "group.max.session.timeout.ms",
            g.coordinator.group_max_session_timeout_ms.to_string(),
        ),
        (
            "group.initial.rebalance.delay.ms",
            g.coordinator.group_initial_rebalance_delay_ms.to_string(),
        ),
        ("group.max.size", g.coordinator.group_max_size.to_string()),
        (
            "offsets.retention.minutes",
            (g.coordinator.offsets_retention_ms / 60_000).to_string(),
        ),
        (
            "offsets.retention.check.interval.ms",
            g.retention_check_interval_ms.to_string(),
        ),
        (
            "offsets.topic.num.partitions",
            g.offsets_topic_partitions.to_string(),
        ),
        (
            "offsets.topic.segment.bytes",
            g.offsets_topic_segment_bytes.to_string(),
        ),
        (
            "offset.metadata.max.bytes",
            g.offset_metadata_max_bytes.to_string(),
        ),
        (
            "log.retention.check.interval.ms",
            c.log.retention_check_interval_ms.to_string(),
        ),
        ("log.cleaner.enable", c.cleaner.enabled.to_string()),
        ("log.cleaner.threads", c.cleaner.threads.to_string()),
        (
            "log.cleaner.dedupe.buffer.size",
            c.cleaner.settings.dedupe_buffer_bytes.to_string(),
        ),
        (
            "log.cleaner.io.max.bytes.per.second",
            c.cleaner
                .settings
                .io_max_bytes_per_second
                .map_or_else(|| f64::MAX.to_string(), |v| v.to_string()),
        ),
        ("log.cleaner.backoff.ms", c.cleaner.backoff_ms.to_string()),
        // Cairn's own (Redpanda's storage_min_free_bytes): see `disk`.
        (
            "storage.min.free.bytes",
            c.storage_min_free_bytes.to_string(),
        ),
    ]
}

/// Why a broker config change is refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BrokerConfigError {
    /// Not a broker config Cairn knows. (Kafka keeps unknown names as custom configs; Cairn
    /// refuses them, so a misspelt name is not silently kept, as with its config file.)
    #[error(
        "unknown broker config {0}; the dynamic broker configs are {list}",
        list = dynamic_names()
    )]
    Unknown(String),
    /// Configs that need a restart (Kafka's message; KAFKA-13609 keeps the code
    /// INVALID_REQUEST).
    #[error(
        "Cannot update these configs dynamically: {names} (read-only: set them in \
         cairn.toml or CAIRN_BROKER_*/CAIRN_LOG_* and restart)",
        names = .0.join(", ")
    )]
    ReadOnly(Vec<String>),
    /// A value the config does not accept.
    #[error("Invalid value {value} for configuration {name}: {reason}")]
    InvalidValue {
        name: String,
        value: String,
        reason: String,
    },
    /// A null value where one is needed (Kafka's message).
    #[error("Null value not supported for : {}", .0.join(", "))]
    NullValue(Vec<String>),
    /// A name given twice in one resource (Kafka's message).
    #[error("Error due to duplicate config keys")]
    DuplicateKeys,
    /// APPEND or SUBTRACT on a config that is not a list (Kafka's message).
    #[error("Config value {op} is not allowed for config key: {name}")]
    NotAList { op: &'static str, name: String },
    /// An unknown IncrementalAlterConfigs operation.
    #[error("Unknown operations type {0}")]
    UnknownOperation(i8),
    /// The resource name is not this broker (Kafka's messages).
    #[error("{0}")]
    WrongBroker(String),
    /// Persisting the change failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Applying the new defaults to a partition failed.
    #[error(transparent)]
    Partition(#[from] cairn_partition::PartitionError),
}

fn dynamic_names() -> String {
    LOG_SETTINGS
        .iter()
        .map(|(b, _)| *b)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The scope a BROKER resource name stands for: `""` is the cluster-wide default, else it
/// must be this node's id (Kafka's `ConfigAdminManager.validateResourceNameIsCurrentNodeId`).
pub(crate) fn scope_of(resource_name: &str, node_id: i32) -> Result<Scope, BrokerConfigError> {
    if resource_name.is_empty() {
        return Ok(Scope::Cluster);
    }
    match resource_name.parse::<i32>() {
        Ok(id) if id == node_id => Ok(Scope::Broker),
        Ok(_) => Err(BrokerConfigError::WrongBroker(format!(
            "Unexpected broker id, expected {node_id} or empty string, but received \
             {resource_name}"
        ))),
        Err(_) => Err(BrokerConfigError::WrongBroker(format!(
            "Broker id must be an integer, but it is: {resource_name}"
        ))),
    }
}

/// A dynamic value in the form it is kept and shown: the integer it parses to.
fn normalize(name: &str, value: &str) -> Result<String, BrokerConfigError> {
    let invalid = |reason: String| BrokerConfigError::InvalidValue {
        name: name.to_string(),
        value: value.to_string(),
        reason,
    };
    let Some(topic_name) = topic_name_of(name) else {
        return Err(BrokerConfigError::Unknown(name.to_string()));
    };
    let number: i64 = value
        .trim()
        .parse()
        .map_err(|_| invalid("not an integer".to_string()))?;
    let mut probe = LogConfig::default();
    probe.set_kafka(topic_name, number).map_err(invalid)?;
    probe.validate().map_err(|e| invalid(e.to_string()))?;
    Ok(number.to_string())
}

/// Checks a whole new set of dynamic values for one scope and returns it normalized:
/// unknown names first, then every read-only one at once (Kafka lists them all), then
/// values.
pub(crate) fn check_all(
    proposed: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, BrokerConfigError> {
    let read_only: BTreeSet<&'static str> = static_values(&BrokerConfig::new(
        Default::default(),
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    ))
    .into_iter()
    .map(|(n, _)| n)
    .collect();
    let mut refused = Vec::new();
    for name in proposed.keys() {
        if read_only.contains(name.as_str()) {
            refused.push(name.clone());
        } else if topic_name_of(name).is_none() {
            return Err(BrokerConfigError::Unknown(name.clone()));
        }
    }
    if !refused.is_empty() {
        return Err(BrokerConfigError::ReadOnly(refused));
    }
    proposed
        .iter()
        .map(|(n, v)| Ok((n.clone(), normalize(n, v)?)))
        .collect()
}

/// The dynamic values: per broker and cluster-wide.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DynamicConfigs {
    broker: BTreeMap<String, String>,
    cluster: BTreeMap<String, String>,
}

impl DynamicConfigs {
    /// The values set at `scope`.
    pub(crate) fn scope(&self, scope: Scope) -> &BTreeMap<String, String> {
        match scope {
            Scope::Broker => &self.broker,
            Scope::Cluster => &self.cluster,
        }
    }

    /// Replaces the values set at `scope` (checked with [`check_all`] first).
    pub(crate) fn set_scope(&mut self, scope: Scope, values: BTreeMap<String, String>) {
        match scope {
            Scope::Broker => self.broker = values,
            Scope::Cluster => self.cluster = values,
        }
    }

    /// The log defaults topics inherit: `static_log` with the cluster-wide values applied,
    /// then the per-broker ones. An entry that does not apply (possible only for a file
    /// written by another version) is skipped with a warning.
    pub(crate) fn log_defaults(&self, static_log: &LogConfig) -> LogConfig {
        let mut log = static_log.clone();
        for (name, value) in self.cluster.iter().chain(&self.broker) {
            let mut next = log.clone();
            let applied = topic_name_of(name)
                .zip(value.parse::<i64>().ok())
                .is_some_and(|(t, v)| next.set_kafka(t, v).is_ok() && next.validate().is_ok());
            if applied {
                log = next;
            } else {
                tracing::warn!(config = %name, %value, "ignoring a dynamic broker config that does not apply");
            }
        }
        log
    }

    fn encode(&self) -> String {
        let mut body = format!("{MAGIC}\n");
        for (name, value) in &self.broker {
            body.push_str(&format!("broker {name}={value}\n"));
        }
        for (name, value) in &self.cluster {
            body.push_str(&format!("default {name}={value}\n"));
        }
        body
    }

    /// Reads the lines of the file; entries that do not parse or check are skipped with a
    /// warning.
    fn decode(lines: &[String]) -> DynamicConfigs {
        let mut out = DynamicConfigs::default();
        let Some((magic, entries)) = lines.split_first() else {
            return out;
        };
        if magic != MAGIC {
            tracing::warn!(format = %magic, "ignoring dynamic broker configs of an unknown format");
            return out;
        }
        for line in entries {
            let parsed = line.split_once(' ').and_then(|(level, entry)| {
                let (name, value) = entry.split_once('=')?;
                let scope = match level {
                    "broker" => Scope::Broker,
                    "default" => Scope::Cluster,
                    _ => return None,
                };
                let value = normalize(name, value).ok()?;
                Some((scope, name.to_string(), value))
            });
            match parsed {
                Some((Scope::Broker, name, value)) => {
                    out.broker.insert(name, value);
                }
                Some((Scope::Cluster, name, value)) => {
                    out.cluster.insert(name, value);
                }
                None => tracing::warn!(%line, "ignoring an invalid dynamic broker config"),
            }
        }
        out
    }

    /// The values persisted in `meta_dir`; none if there is no file.
    pub(crate) fn load(meta_dir: &Path) -> Result<DynamicConfigs, StorageError> {
        Ok(metafile::read(meta_dir, FILE)?
            .map(|lines| DynamicConfigs::decode(&lines))
            .unwrap_or_default())
    }

    /// Persists the values in `meta_dir`, durably, replacing what was there.
    pub(crate) fn save(&self, meta_dir: &Path) -> Result<(), StorageError> {
        metafile::write(meta_dir, FILE, &self.encode())
    }
}

/// One synonym of a config: a name at one level and its value there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Synonym {
    pub(crate) name: &'static str,
    pub(crate) value: String,
    pub(crate) source: Source,
}

/// One broker config as DescribeConfigs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) name: &'static str,
    pub(crate) value: String,
    pub(crate) source: Source,
    pub(crate) read_only: bool,
    /// Every level that sets it, highest precedence first (the first is the winner).
    pub(crate) synonyms: Vec<Synonym>,
}

/// What DescribeConfigs needs to know about the broker's configs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a> {
    pub(crate) config: &'a BrokerConfig,
    pub(crate) dynamic: &'a DynamicConfigs,
}

impl View<'_> {
    fn defaults(&self) -> BrokerConfig {
        let c = self.config;
        let mut d = BrokerConfig::new(c.data_dir.clone(), c.listen);
        // `advertised.listeners` defaults to the listen address.
        d.advertise = (c.listen.ip().to_string(), c.listen.port());
        if c.listen.port() == 0 {
            d.advertise.1 = c.advertise.1;
        }
        d
    }

    /// The chain of levels setting the log setting `name` (Kafka's `configSynonyms`).
    fn log_chain(&self, name: &'static str, topic_name: &str) -> Vec<Synonym> {
        let mut chain = Vec::new();
        let dynamic = [
            (self.dynamic.scope(Scope::Broker), Source::DynamicBroker),
            (self.dynamic.scope(Scope::Cluster), Source::DynamicDefault),
        ];
        for (values, source) in dynamic {
            if let Some(value) = values.get(name) {
                chain.push(Synonym {
                    name,
                    value: value.clone(),
                    source,
                });
            }
        }
        if self.config.static_configs.contains(name) {
            chain.push(Synonym {
                name,
                value: log_value(&self.config.log, topic_name),
                source: Source::StaticBroker,
            });
        }
        chain.push(Synonym {
            name,
            value: log_value(&LogConfig::default(), topic_name),
            source: Source::Default,
        });
        chain
    }

    fn entry(name: &'static str, read_only: bool, synonyms: Vec<Synonym>) -> Option<Entry> {
        let first = synonyms.first()?;
        Some(Entry {
            name,
            value: first.value.clone(),
            source: first.source,
            read_only,
            synonyms,
        })
    }

    /// Every broker config, for the resource named by this node's id.
    pub(crate) fn broker(&self) -> Vec<Entry> {
        let defaults = static_values(&self.defaults());
        let mut out: Vec<Entry> = static_values(self.config)
            .into_iter()
            .zip(defaults)
            .filter_map(|((name, value), (_, default))| {
                let mut chain = Vec::new();
                if self.config.static_configs.contains(name) {
                    chain.push(Synonym {
                        name,
                        value: value.clone(),
                        source: Source::StaticBroker,
                    });
                }
                // Without a static value, the value in force is the default (the advertised
                // address follows the listen address).
                chain.push(Synonym {
                    name,
                    value: if chain.is_empty() { value } else { default },
                    source: Source::Default,
                });
                Self::entry(name, true, chain)
            })
            .collect();
        out.extend(
            LOG_SETTINGS
                .iter()
                .filter_map(|(name, topic)| Self::entry(name, false, self.log_chain(name, topic))),
        );
        out.sort_by_key(|e| e.name);
        out
    }

    /// The cluster-wide dynamic defaults, for the resource named `""`: only the configs set
    /// at that level, with only that level as synonym (as Kafka describes it).
    pub(crate) fn cluster_defaults(&self) -> Vec<Entry> {
        LOG_SETTINGS
            .iter()
            .filter_map(|(name, _)| {
                let value = self.dynamic.scope(Scope::Cluster).get(*name)?;
                let chain = vec![Synonym {
                    name,
                    value: value.clone(),
                    source: Source::DynamicDefault,
                }];
                Self::entry(name, false, chain)
            })
            .collect()
    }

    /// The broker levels behind the topic config `topic_name` (its synonyms after the topic's
    /// own value): the source of a value the topic inherits is the first of them.
    pub(crate) fn topic_chain(&self, topic_name: &str, default: &str) -> Vec<Synonym> {
        if let Some(name) = broker_name_of_log_setting(topic_name) {
            return self.log_chain(name, topic_name);
        }
        STORED_SYNONYMS
            .iter()
            .find(|(t, _)| *t == topic_name)
            .map(|(_, name)| {
                vec![Synonym {
                    name,
                    value: default.to_string(),
                    source: Source::Default,
                }]
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
