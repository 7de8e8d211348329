//! Topic and broker configs: describe them with their sources and change them, as
//! DescribeConfigs, AlterConfigs, IncrementalAlterConfigs, CreateTopics and the HTTP API ask.
//! Topic configs are `topic_config`'s; broker configs, their sources and synonyms are
//! `broker_configs`'.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{Node, NodeError};
use crate::broker_configs::{self, BrokerConfigError, Entry, Source, Synonym, View};
use crate::topic_config::{ConfigError, TopicConfigs};

/// One topic config as DescribeConfigs, CreateTopics and the HTTP API show it.
#[derive(Debug, Clone)]
pub(crate) struct TopicEntry {
    pub(crate) name: &'static str,
    pub(crate) value: String,
    pub(crate) source: Source,
    pub(crate) synonyms: Vec<Synonym>,
    /// Whether Cairn acts on it yet.
    pub(crate) effective: bool,
}

/// What a change does to one config (IncrementalAlterConfigs' operations; the legacy
/// AlterConfigs and the HTTP API's PUT are SETs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConfigOp {
    /// Set to this value.
    Set(String),
    /// Remove the value (back to the inherited one).
    Delete,
    /// Add this item to a list config.
    Append(String),
    /// Remove this item from a list config.
    Subtract(String),
    /// An operation code Kafka does not define (refused).
    Unknown(i8),
}

/// A change of one config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigChange {
    pub(crate) name: String,
    pub(crate) op: ConfigOp,
}

impl ConfigChange {
    pub(crate) fn new(name: impl Into<String>, op: ConfigOp) -> ConfigChange {
        ConfigChange {
            name: name.into(),
            op,
        }
    }
}

/// Kafka's rule: a config is named at most once per resource and request.
fn check_distinct(changes: &[ConfigChange]) -> Result<(), NodeError> {
    let mut seen = HashSet::new();
    if changes.iter().all(|c| seen.insert(c.name.as_str())) {
        Ok(())
    } else {
        Err(BrokerConfigError::DuplicateKeys.into())
    }
}

impl Node {
    /// A topic's configs with their sources: an override is TOPIC_CONFIG; an inherited value
    /// has the source of the broker level it comes from (Kafka's `createTopicConfigEntry`),
    /// e.g. DYNAMIC_DEFAULT_BROKER_CONFIG after a cluster-wide change of `log.retention.ms`.
    pub(crate) fn topic_entries(&self, configs: &TopicConfigs) -> Vec<TopicEntry> {
        let defaults = self.topics.defaults();
        let dynamic = self.topics.dynamic_configs();
        let view = View {
            config: &self.config,
            dynamic: &dynamic,
        };
        let kafka_defaults: HashMap<&'static str, String> = TopicConfigs::default()
            .describe(&cairn_storage::LogConfig::default())
            .into_iter()
            .map(|d| (d.name, d.value))
            .collect();
        configs
            .describe(&defaults)
            .into_iter()
            .map(|d| {
                let mut synonyms = Vec::new();
                if d.overridden {
                    synonyms.push(Synonym {
                        name: d.name,
                        value: d.value.clone(),
                        source: Source::Topic,
                    });
                }
                let default = kafka_defaults.get(d.name).map_or("", String::as_str);
                synonyms.extend(view.topic_chain(d.name, default));
                TopicEntry {
                    name: d.name,
                    source: synonyms.first().map_or(Source::Default, |s| s.source),
                    value: d.value,
                    synonyms,
                    effective: d.effective,
                }
            })
            .collect()
    }

    /// The configs of topic `name`.
    pub(crate) fn topic_configs(&self, name: &str) -> Result<Vec<TopicEntry>, NodeError> {
        let topic = self.topic(name)?;
        Ok(self.topic_entries(&topic.configs))
    }

    /// Changes configs of topic `name` (all or nothing) and applies them to its partitions.
    /// `replace`: the changes are the topic's whole set of overrides (the legacy
    /// AlterConfigs).
    pub(crate) async fn alter_topic_configs(
        &self,
        name: &str,
        changes: &[ConfigChange],
        replace: bool,
        validate_only: bool,
    ) -> Result<(), NodeError> {
        check_distinct(changes)?;
        self.topics
            .alter_configs(name, validate_only, move |configs, defaults| {
                if replace {
                    *configs = TopicConfigs::default();
                }
                for c in changes {
                    let name = c.name.as_str();
                    match &c.op {
                        ConfigOp::Set(value) => configs.set(name, value)?,
                        ConfigOp::Delete => configs.delete(name)?,
                        ConfigOp::Append(value) => configs.append(name, value, defaults)?,
                        ConfigOp::Subtract(value) => configs.subtract(name, value, defaults)?,
                        ConfigOp::Unknown(other) => {
                            return Err(ConfigError {
                                name: name.to_string(),
                                reason: format!("unknown operation {other}"),
                            })
                        }
                    }
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// The broker configs of `resource_name` (this node's id, or `""` for the cluster-wide
    /// defaults) with their sources.
    pub(crate) fn broker_configs(&self, resource_name: &str) -> Result<Vec<Entry>, NodeError> {
        let scope = broker_configs::scope_of(resource_name, self.config.node_id)?;
        let dynamic = self.topics.dynamic_configs();
        let view = View {
            config: &self.config,
            dynamic: &dynamic,
        };
        Ok(match scope {
            broker_configs::Scope::Broker => view.broker(),
            broker_configs::Scope::Cluster => view.cluster_defaults(),
        })
    }

    /// Changes the dynamic broker configs of `resource_name` (checked as a whole), persists
    /// them and applies the resulting log defaults to every topic that does not override
    /// them. `replace`: the changes are the resource's whole dynamic set.
    pub(crate) async fn alter_broker_configs(
        &self,
        resource_name: &str,
        changes: &[ConfigChange],
        replace: bool,
        validate_only: bool,
    ) -> Result<(), NodeError> {
        check_distinct(changes)?;
        let scope = broker_configs::scope_of(resource_name, self.config.node_id)?;
        self.topics
            .alter_broker_configs(scope, validate_only, move |values: &mut BTreeMap<_, _>| {
                if replace {
                    values.clear();
                }
                for c in changes {
                    match &c.op {
                        ConfigOp::Set(value) => {
                            values.insert(c.name.clone(), value.clone());
                        }
                        // Kafka removes the value without checking the name.
                        ConfigOp::Delete => {
                            values.remove(&c.name);
                        }
                        ConfigOp::Append(_) => {
                            return Err(BrokerConfigError::NotAList {
                                op: "append",
                                name: c.name.clone(),
                            })
                        }
                        ConfigOp::Subtract(_) => {
                            return Err(BrokerConfigError::NotAList {
                                op: "subtract",
                                name: c.name.clone(),
                            })
                        }
                        ConfigOp::Unknown(other) => {
                            return Err(BrokerConfigError::UnknownOperation(*other))
                        }
                    }
                }
                Ok(())
            })
            .await?;
        Ok(())
    }
}
