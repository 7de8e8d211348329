//! The topics of this broker: names, ids, partition handles and configs, persisted.
//!
//! ```text
//! <data_dir>/.cairn/topics/<name>     cairn-topic 1
//!                                     id <uuid>
//!                                     partitions <count>
//!                                     config <key>=<value>      (one line per override)
//!                                     crc32 <...>               (cairn_storage::metafile)
//! <data_dir>/<name>-<partition>/      the partition (log segments, raft state, ...)
//! ```
//!
//! A topic exists once its file does: creation opens the partitions first and writes the file
//! last; deletion removes the file first and the partitions after. Partition directories with
//! no topic file (a crash in between) are deleted at startup. Each step is durable before the
//! next (`cairn_storage::durable`: a partition directory's name is fsynced in the data
//! directory when it is created, a topic file's in `topics/`), so a power cut keeps that
//! order. Admin changes are serialised by one lock; lookups on the request path take a read
//! lock for a map lookup only.
//!
//! The log defaults a topic inherits are the static `[log]` settings with the dynamic broker
//! configs applied (`broker_configs`); the registry owns both, so a dynamic change reaches
//! every partition that does not override it, under the same admin lock as topic changes.
//!
//! In a cluster the same files exist on every node, but the registry does not decide: a
//! change (`create`, `delete`, `add_partitions`, `alter_configs`) is proposed to the metadata
//! quorum (`crate::cluster`), and every node's metadata applier makes it here through the
//! `*_local` operations. Partitions are then raft groups whose voters are every node.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use cairn_partition::{PartitionHandle, PartitionSpec, StorageShards};
use cairn_storage::{durable, metafile, LogConfig, StorageError};
use uuid::Uuid;

use crate::broker_configs::{self, BrokerConfigError, DynamicConfigs, Scope};
use crate::cluster::{self, Cluster, MetadataRecord};
use crate::meta::meta_dir;
use crate::topic_config::{ConfigError, TopicConfigs};
use crate::BrokerError;

/// The longest topic name Kafka accepts.
const MAX_NAME_LEN: usize = 249;
/// Partitions one topic may have (a bound on what one CreateTopics can make the broker open).
pub(crate) const MAX_PARTITIONS: i32 = 10_000;

/// One topic.
#[derive(Debug)]
pub(crate) struct Topic {
    pub(crate) name: String,
    pub(crate) id: Uuid,
    pub(crate) partitions: Vec<PartitionHandle>,
    pub(crate) configs: TopicConfigs,
    /// The effective log settings (defaults + overrides), for request-path checks.
    pub(crate) log: LogConfig,
}

/// Why an admin operation on topics failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TopicError {
    #[error("topic {0} does not exist")]
    Unknown(String),
    #[error("topic {0} already exists")]
    AlreadyExists(String),
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Partition(#[from] cairn_partition::PartitionError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The metadata quorum did not make the change (no controller, a timeout).
    #[error("{message}")]
    Cluster {
        code: cairn_protocol::ErrorCode,
        message: String,
    },
}

/// Kafka's topic-name rule: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub(crate) fn validate_name(name: &str) -> Result<(), TopicError> {
    let bad = |reason| TopicError::InvalidName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name == "." || name == ".." {
        return Err(bad("'.' and '..' are not allowed"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(bad("longer than 249 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(bad(
            "only ASCII letters, digits, '.', '_' and '-' are allowed",
        ));
    }
    Ok(())
}

/// All topics.
#[derive(Debug)]
pub(crate) struct TopicRegistry {
    data_dir: PathBuf,
    topics_dir: PathBuf,
    shards: Arc<StorageShards>,
    /// The `[log]` settings the node started with.
    static_defaults: LogConfig,
    /// What topics inherit: `static_defaults` with the dynamic broker configs applied.
    defaults: RwLock<LogConfig>,
    dynamic: RwLock<DynamicConfigs>,
    raft_id: u64,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    admin: tokio::sync::Mutex<()>,
    /// Set on a node of a cluster: changes go through the metadata quorum.
    cluster: Option<Arc<Cluster>>,
}

fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
    move |source| StorageError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

impl TopicRegistry {
    /// Loads every topic and opens its partitions; deletes partition directories that belong
    /// to no topic.
    pub(crate) async fn load(
        data_dir: &Path,
        shards: Arc<StorageShards>,
        defaults: LogConfig,
        raft_id: u64,
        cluster: Option<Arc<Cluster>>,
    ) -> Result<TopicRegistry, BrokerError> {
        let topics_dir = meta_dir(data_dir).join("topics");
        durable::ensure_dir(&topics_dir)?;
        let dynamic = DynamicConfigs::load(&meta_dir(data_dir))?;
        let effective = dynamic.log_defaults(&defaults);
        let registry = TopicRegistry {
            data_dir: data_dir.to_path_buf(),
            topics_dir: topics_dir.clone(),
            shards,
            static_defaults: defaults,
            defaults: RwLock::new(effective),
            dynamic: RwLock::new(dynamic),
            raft_id,
            topics: RwLock::new(HashMap::new()),
            admin: tokio::sync::Mutex::new(()),
            cluster,
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&topics_dir).map_err(io("list", &topics_dir))? {
            let entry = entry.map_err(io("list", &topics_dir))?;
            if let Some(name) = entry.file_name().to_str() {
                if !name.ends_with(".tmp") && validate_name(name).is_ok() {
                    names.push(name.to_string());
                }
            }
        }
        names.sort();
        let started = std::time::Instant::now();
        let (mut topics, mut partitions_opened) = (0usize, 0usize);
        for name in names {
            let Some((id, count, configs)) = registry.read_topic_file(&name)? else {
                tracing::warn!(topic = %name, "ignoring an unreadable topic file");
                continue;
            };
            let partitions = registry
                .open_partitions(&name, id, &configs, 0..count)
                .await?;
            let log = configs
                .log_config(&registry.defaults())
                .map_err(|e| BrokerError::Config(format!("topic {name}: {e}")))?;
            topics += 1;
            partitions_opened += partitions.len();
            registry.insert(Topic {
                name: name.clone(),
                id,
                partitions,
                configs,
                log,
            });
        }
        // One line for every partition's log (each is logged at debug), as the issue asked
        // of start-up: a few lines with counts, not one per partition.
        tracing::info!(
            topics,
            partitions = partitions_opened,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "topics loaded"
        );
        registry.remove_orphans()?;
        Ok(registry)
    }

    fn insert(&self, topic: Topic) {
        if let Ok(mut map) = self.topics.write() {
            map.insert(topic.name.clone(), Arc::new(topic));
        }
    }

    fn remove_orphans(&self) -> Result<(), BrokerError> {
        let known: Vec<(String, usize)> = self
            .list()
            .iter()
            .map(|t| (t.name.clone(), t.partitions.len()))
            .collect();
        for entry in std::fs::read_dir(&self.data_dir).map_err(io("list", &self.data_dir))? {
            let entry = entry.map_err(io("list", &self.data_dir))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let Some((topic, partition)) = name.rsplit_once('-') else {
                continue;
            };
            let Ok(partition) = partition.parse::<usize>() else {
                continue;
            };
            if !entry.path().is_dir() || validate_name(topic).is_err() {
                continue;
            }
            let owned = known.iter().any(|(t, n)| t == topic && partition < *n);
            if !owned {
                tracing::warn!(dir = %entry.path().display(), "deleting a partition directory that belongs to no topic");
                durable::remove_dir_all(&entry.path())?;
            }
        }
        Ok(())
    }

    fn read_topic_file(
        &self,
        name: &str,
    ) -> Result<Option<(Uuid, i32, TopicConfigs)>, BrokerError> {
        let Some(lines) = metafile::read(&self.topics_dir, name)? else {
            return Ok(None);
        };
        let parse = || -> Option<(Uuid, i32, TopicConfigs)> {
            let (magic, rest) = lines.split_first()?;
            if magic != "cairn-topic 1" {
                return None;
            }
            let id = Uuid::parse_str(rest.first()?.strip_prefix("id ")?).ok()?;
            let count = rest.get(1)?.strip_prefix("partitions ")?.parse().ok()?;
            let mut configs = TopicConfigs::default();
            for line in &rest[2..] {
                let (k, v) = line.strip_prefix("config ")?.split_once('=')?;
                configs.set(k, v).ok()?;
            }
            Some((id, count, configs))
        };
        Ok(parse())
    }

    fn write_topic_file(
        &self,
        name: &str,
        id: Uuid,
        count: usize,
        configs: &TopicConfigs,
    ) -> Result<(), StorageError> {
        let mut body = format!("cairn-topic 1\nid {id}\npartitions {count}\n");
        for (k, v) in configs.overrides() {
            body.push_str(&format!("config {k}={v}\n"));
        }
        metafile::write(&self.topics_dir, name, &body)
    }

    async fn open_partitions(
        &self,
        name: &str,
        id: Uuid,
        configs: &TopicConfigs,
        range: std::ops::Range<i32>,
    ) -> Result<Vec<PartitionHandle>, TopicError> {
        let log = configs.log_config(&self.defaults())?;
        let opening = range.map(|p| {
            let partition = format!("{name}-{p}");
            let dir = partition_dir(&self.data_dir, name, p);
            let log = log.clone();
            async move {
                match &self.cluster {
                    Some(c) => {
                        c.open_replica(&self.shards, partition, dir, log, id, p)
                            .await
                    }
                    None => {
                        PartitionHandle::open(
                            &self.shards,
                            PartitionSpec {
                                name: partition,
                                dir,
                                log,
                                node_id: self.raft_id,
                                voters: vec![self.raft_id],
                            },
                        )
                        .await
                    }
                }
            }
        });
        let opened = futures_util::future::join_all(opening).await;
        Ok(opened.into_iter().collect::<Result<Vec<_>, _>>()?)
    }

    /// The topic named `name`.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().ok()?.get(name).cloned()
    }

    /// The topic with id `id`.
    pub(crate) fn get_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .ok()?
            .values()
            .find(|t| t.id == id)
            .cloned()
    }

    /// Every topic, by name.
    pub(crate) fn list(&self) -> Vec<Arc<Topic>> {
        let mut v: Vec<Arc<Topic>> = self
            .topics
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The log settings topics inherit (static `[log]` plus dynamic broker configs).
    pub(crate) fn defaults(&self) -> LogConfig {
        match self.defaults.read() {
            Ok(d) => d.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The dynamic broker configs in force.
    pub(crate) fn dynamic_configs(&self) -> DynamicConfigs {
        match self.dynamic.read() {
            Ok(d) => d.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the dynamic broker configs of `scope` with what `change` makes of them
    /// (checked as a whole), persists them, and applies the resulting log defaults to the
    /// partitions of every topic that does not override them. With `validate_only`, only
    /// checks.
    pub(crate) async fn alter_broker_configs(
        &self,
        scope: Scope,
        validate_only: bool,
        change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), BrokerConfigError>,
    ) -> Result<(), BrokerConfigError> {
        let _admin = self.admin.lock().await;
        let mut dynamic = self.dynamic_configs();
        let mut values = dynamic.scope(scope).clone();
        change(&mut values)?;
        dynamic.set_scope(scope, broker_configs::check_all(&values)?);
        let defaults = dynamic.log_defaults(&self.static_defaults);
        // Overrides and defaults are each valid, and every check is per setting, so every
        // topic's combination is too; check anyway rather than fail half-way.
        let mut changed = Vec::new();
        for topic in self.list() {
            let log = topic.configs.log_config(&defaults).map_err(|e| {
                BrokerConfigError::InvalidValue {
                    name: e.name.clone(),
                    value: String::new(),
                    reason: format!("topic {}: {}", topic.name, e.reason),
                }
            })?;
            if log != topic.log {
                changed.push((topic, log));
            }
        }
        if validate_only {
            return Ok(());
        }
        dynamic.save(&meta_dir(&self.data_dir))?;
        if let Ok(mut d) = self.dynamic.write() {
            *d = dynamic;
        }
        if let Ok(mut d) = self.defaults.write() {
            *d = defaults;
        }
        for (topic, log) in changed {
            for p in &topic.partitions {
                p.set_config(log.clone()).await?;
            }
            self.insert(Topic {
                name: topic.name.clone(),
                id: topic.id,
                partitions: topic.partitions.clone(),
                configs: topic.configs.clone(),
                log,
            });
        }
        tracing::info!(?scope, "dynamic broker configs changed");
        Ok(())
    }

    /// Creates a topic (or only checks that it could be, with `validate_only`).
    pub(crate) async fn create(
        &self,
        name: &str,
        partitions: i32,
        configs: TopicConfigs,
        validate_only: bool,
    ) -> Result<Arc<Topic>, TopicError> {
        validate_name(name)?;
        if !(1..=MAX_PARTITIONS).contains(&partitions) {
            return Err(TopicError::InvalidPartitions(format!(
                "number of partitions must be between 1 and {MAX_PARTITIONS}, got {partitions}"
            )));
        }
        let _admin = self.admin.lock().await;
        // Under the admin lock: a dynamic change of the defaults cannot slip in between.
        let log = configs.log_config(&self.defaults())?;
        if self.get(name).is_some() {
            return Err(TopicError::AlreadyExists(name.to_string()));
        }
        let id = Uuid::new_v4();
        if validate_only {
            return Ok(Arc::new(Topic {
                name: name.to_string(),
                id,
                partitions: Vec::new(),
                configs,
                log,
            }));
        }
        if let Some(c) = &self.cluster {
            drop(_admin);
            let record = MetadataRecord::CreateTopic {
                name: name.to_string(),
                id,
                partitions,
                configs: configs.overrides().clone(),
            };
            c.propose(record).await?;
            return self
                .get(name)
                .ok_or_else(|| TopicError::Unknown(name.to_string()));
        }
        let handles = self
            .open_partitions(name, id, &configs, 0..partitions)
            .await?;
        self.write_topic_file(name, id, handles.len(), &configs)?;
        let topic = Topic {
            name: name.to_string(),
            id,
            partitions: handles,
            configs,
            log,
        };
        self.insert(topic);
        tracing::info!(topic = name, partitions, "topic created");
        self.get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))
    }

    /// Creates this node's copy of a topic the metadata log created (nothing if it has it).
    pub(crate) async fn create_local(
        &self,
        name: &str,
        id: Uuid,
        partitions: i32,
        configs: TopicConfigs,
    ) -> Result<Arc<Topic>, TopicError> {
        let _admin = self.admin.lock().await;
        if let Some(t) = self.get(name) {
            return Ok(t);
        }
        let log = configs.log_config(&self.defaults())?;
        let handles = self
            .open_partitions(name, id, &configs, 0..partitions)
            .await?;
        self.write_topic_file(name, id, handles.len(), &configs)?;
        self.insert(Topic {
            name: name.to_string(),
            id,
            partitions: handles,
            configs,
            log,
        });
        tracing::info!(topic = name, partitions, %id, "topic created (from the metadata log)");
        self.get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))
    }

    /// Deletes a topic and its data.
    pub(crate) async fn delete(&self, name: &str) -> Result<Uuid, TopicError> {
        if let Some(c) = &self.cluster {
            let topic = self
                .get(name)
                .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
            c.propose(MetadataRecord::DeleteTopic {
                name: name.to_string(),
                id: topic.id,
            })
            .await?;
            return Ok(topic.id);
        }
        self.delete_local(name).await
    }

    /// Deletes this node's copy of a topic and its data.
    pub(crate) async fn delete_local(&self, name: &str) -> Result<Uuid, TopicError> {
        let _admin = self.admin.lock().await;
        let topic = self
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        // Durably before the partitions go: a topic file that came back after a power cut
        // would bring the topic back empty.
        durable::remove_file(&self.topics_dir.join(name))?;
        if let Ok(mut map) = self.topics.write() {
            map.remove(name);
        }
        for (i, p) in topic.partitions.iter().enumerate() {
            if let Some(c) = &self.cluster {
                c.forget_replica(cluster::group_id(topic.id, i as i32));
            }
            if let Err(e) = p.delete().await {
                tracing::warn!(partition = p.name(), error = %e, "deleting partition");
            }
        }
        tracing::info!(topic = name, "topic deleted");
        Ok(topic.id)
    }

    /// Grows a topic to `count` partitions.
    pub(crate) async fn add_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let _admin = self.admin.lock().await;
        let topic = self
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let current = topic.partitions.len() as i32;
        if count <= current {
            return Err(TopicError::InvalidPartitions(format!(
                "topic {name} has {current} partitions; the new count {count} must be larger"
            )));
        }
        if count > MAX_PARTITIONS {
            return Err(TopicError::InvalidPartitions(format!(
                "number of partitions must be at most {MAX_PARTITIONS}"
            )));
        }
        if validate_only {
            return Ok(());
        }
        if let Some(c) = &self.cluster {
            drop(_admin);
            return Ok(c
                .propose(MetadataRecord::AddPartitions {
                    name: name.to_string(),
                    id: topic.id,
                    partitions: count,
                })
                .await?);
        }
        drop(_admin);
        self.add_partitions_local(name, count).await
    }

    /// Grows this node's copy of a topic to `count` partitions.
    pub(crate) async fn add_partitions_local(
        &self,
        name: &str,
        count: i32,
    ) -> Result<(), TopicError> {
        let _admin = self.admin.lock().await;
        let topic = self
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let current = topic.partitions.len() as i32;
        if count <= current {
            return Ok(());
        }
        let added = self
            .open_partitions(name, topic.id, &topic.configs, current..count)
            .await?;
        let mut partitions = topic.partitions.clone();
        partitions.extend(added);
        self.write_topic_file(name, topic.id, partitions.len(), &topic.configs)?;
        self.insert(Topic {
            name: name.to_string(),
            id: topic.id,
            partitions,
            configs: topic.configs.clone(),
            log: topic.log.clone(),
        });
        tracing::info!(topic = name, partitions = count, "partitions added");
        Ok(())
    }

    /// Changes a topic's configs with `change` (all or nothing) and applies them to its logs.
    pub(crate) async fn alter_configs(
        &self,
        name: &str,
        validate_only: bool,
        change: impl FnOnce(&mut TopicConfigs, &LogConfig) -> Result<(), ConfigError>,
    ) -> Result<(), TopicError> {
        let _admin = self.admin.lock().await;
        let topic = self
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let defaults = self.defaults();
        let mut configs = topic.configs.clone();
        change(&mut configs, &defaults)?;
        let log = configs.log_config(&defaults)?;
        if validate_only {
            return Ok(());
        }
        if let Some(c) = &self.cluster {
            drop(_admin);
            return Ok(c
                .propose(MetadataRecord::SetTopicConfigs {
                    name: name.to_string(),
                    id: topic.id,
                    configs: configs.overrides().clone(),
                })
                .await?);
        }
        self.apply_configs(&topic, configs, log).await
    }

    /// Sets this node's copy of a topic's config overrides to `configs`.
    pub(crate) async fn set_configs_local(
        &self,
        name: &str,
        configs: TopicConfigs,
    ) -> Result<(), TopicError> {
        let _admin = self.admin.lock().await;
        let topic = self
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let log = configs.log_config(&self.defaults())?;
        self.apply_configs(&topic, configs, log).await
    }

    async fn apply_configs(
        &self,
        topic: &Topic,
        configs: TopicConfigs,
        log: LogConfig,
    ) -> Result<(), TopicError> {
        let name = topic.name.as_str();
        self.write_topic_file(name, topic.id, topic.partitions.len(), &configs)?;
        for p in &topic.partitions {
            p.set_config(log.clone()).await?;
        }
        let log = log.clone();
        self.insert(Topic {
            name: name.to_string(),
            id: topic.id,
            partitions: topic.partitions.clone(),
            configs,
            log,
        });
        Ok(())
    }

    /// Closes every partition (flushing them).
    pub(crate) async fn close_all(&self) {
        let topics = self.list();
        if let Ok(mut map) = self.topics.write() {
            map.clear();
        }
        let closing = topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| async move {
                if let Err(e) = p.close().await {
                    tracing::warn!(partition = p.name(), error = %e, "closing partition");
                }
            });
        futures_util::future::join_all(closing).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        for ok in ["a", "orders.v1", "A_b-9", &"x".repeat(249)] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a b", "a/b", "ü", &"x".repeat(250)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
