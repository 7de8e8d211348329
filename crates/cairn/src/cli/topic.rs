//! `cairn topic create|list|describe|alter|add-partitions|delete`.
//!
//! Administration goes to the bootstrap broker (any broker accepts it); `describe` asks each
//! partition's leader for its log start and high watermark. Confirmations go to stderr,
//! listings and descriptions to stdout.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::anyhow;
use cairn_protocol::kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use cairn_protocol::kafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig,
};
use cairn_protocol::kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use cairn_protocol::kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use cairn_protocol::kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use cairn_protocol::kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use cairn_protocol::kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest,
};
use cairn_protocol::kafka_protocol::protocol::StrBytes;
use cairn_protocol::ErrorCode;

use super::cluster::{topic_name, Cluster, TopicInfo};
use super::conn::Connection;
use super::error_code::{error_name, KafkaError};
use super::offsets::{list_offsets, EARLIEST, LATEST};
use super::{ClientArgs, Output, TopicCommand};

/// `resourceType` of a topic in config requests (Kafka's `ConfigResource.Type.TOPIC`).
pub(crate) const RESOURCE_TOPIC: i8 = 2;
/// `resourceType` of a broker (Kafka's `ConfigResource.Type.BROKER`).
pub(crate) const RESOURCE_BROKER: i8 = 4;
/// `configSource` of a value nobody set (Kafka's `DEFAULT_CONFIG`).
pub(crate) const SOURCE_DEFAULT: i8 = 5;
/// IncrementalAlterConfigs operations (KIP-339).
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

pub(crate) async fn run(client: &ClientArgs, command: &TopicCommand) -> anyhow::Result<()> {
    let mut cluster = Cluster::connect(client).await?;
    let timeout_ms = i32::try_from(client.timeout_ms).unwrap_or(i32::MAX);
    match command {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
            if_not_exists,
        } => {
            let response = cluster
                .admin()
                .call(|v| {
                    create_topics_request(
                        v,
                        name,
                        *partitions,
                        *replication_factor,
                        configs,
                        timeout_ms,
                    )
                })
                .await?;
            let result = response
                .topics
                .iter()
                .find(|t| t.name.0.as_str() == name)
                .ok_or_else(|| anyhow!("the broker's CreateTopics answer left out topic {name}"))?;
            match KafkaError::check(result.error_code, result.error_message.as_ref()) {
                Ok(()) => {
                    eprintln!("created topic {name}");
                    warn_unused(&mut cluster, name, configs.iter().map(|(k, _)| k.as_str())).await;
                }
                Err(e) if *if_not_exists && e.code == ErrorCode::TopicAlreadyExists.code() => {
                    eprintln!("topic {name} already exists");
                }
                Err(e) => return Err(anyhow!(e).context(format!("cannot create topic {name}"))),
            }
        }
        TopicCommand::List { all, output } => {
            let mut topics: Vec<TopicInfo> = cluster
                .metadata(None)
                .await?
                .into_iter()
                .filter(|t| *all || !t.internal)
                .collect();
            topics.sort_by(|a, b| a.name.cmp(&b.name));
            match output {
                Output::Table => {
                    let mut out = String::new();
                    for t in &topics {
                        out.push_str(&t.name);
                        out.push('\n');
                    }
                    print!("{out}");
                }
                Output::Json => {
                    let list: Vec<serde_json::Value> = topics
                        .iter()
                        .map(|t| {
                            serde_json::json!({
                                "name": t.name,
                                "partitions": t.partitions.len(),
                                "internal": t.internal,
                            })
                        })
                        .collect();
                    println!("{}", serde_json::Value::Array(list));
                }
            }
        }
        TopicCommand::Describe { names, output } => {
            let mut text = String::new();
            let mut json = Vec::new();
            for name in names {
                let topic = cluster.topic(name).await?;
                let indexes: Vec<i32> = topic.partitions.iter().map(|p| p.index).collect();
                let starts = list_offsets(&mut cluster, &topic, &indexes, EARLIEST).await?;
                let ends = list_offsets(&mut cluster, &topic, &indexes, LATEST).await?;
                let response = cluster
                    .admin()
                    .call(|v| describe_configs_request(v, RESOURCE_TOPIC, name))
                    .await?;
                let result = response
                    .results
                    .first()
                    .ok_or_else(|| anyhow!("the broker's DescribeConfigs answer is empty"))?;
                KafkaError::check(result.error_code, result.error_message.as_ref()).map_err(
                    |e| anyhow!(e).context(format!("cannot describe the configs of topic {name}")),
                )?;
                match output {
                    Output::Table => {
                        text.push_str(&format_description(&topic, &starts, &ends, &result.configs))
                    }
                    Output::Json => {
                        json.push(describe_json(&topic, &starts, &ends, &result.configs))
                    }
                }
            }
            match output {
                Output::Table => print!("{text}"),
                Output::Json => println!("{}", serde_json::Value::Array(json)),
            }
        }
        TopicCommand::Alter {
            name,
            configs,
            delete_configs,
        } => {
            alter_configs(
                cluster.admin(),
                RESOURCE_TOPIC,
                name,
                configs,
                delete_configs,
            )
            .await
            .map_err(|e| e.context(format!("cannot alter topic {name}")))?;
            eprintln!("altered configs of topic {name}");
            warn_unused(&mut cluster, name, configs.iter().map(|(k, _)| k.as_str())).await;
        }
        TopicCommand::AddPartitions { name, partitions } => {
            let response = cluster
                .admin()
                .call(|v| create_partitions_request(v, name, *partitions, timeout_ms))
                .await?;
            let result = response
                .results
                .iter()
                .find(|t| t.name.0.as_str() == name)
                .ok_or_else(|| anyhow!("the broker's CreatePartitions answer left out {name}"))?;
            KafkaError::check(result.error_code, result.error_message.as_ref()).map_err(|e| {
                anyhow!(e).context(format!("cannot add partitions to topic {name}"))
            })?;
            eprintln!("topic {name} now has {partitions} partitions");
        }
        TopicCommand::Delete { names, if_exists } => {
            let mut failed = Vec::new();
            for name in names {
                if let Err(e) = delete_one(&mut cluster, name, *if_exists, timeout_ms).await {
                    eprintln!("cannot delete topic {name}: {e:#}");
                    failed.push(name.as_str());
                }
            }
            if !failed.is_empty() {
                return Err(anyhow!(
                    "{} of {} topic(s) not deleted: {}",
                    failed.len(),
                    names.len(),
                    failed.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// What a broker's DescribeConfigs documentation says of a config it stores and describes
/// but does not act on (Cairn's wording; Kafka acts on all of its topic configs).
const NOT_ACTED_ON: &str = "does not act on it yet";

/// Warns (stderr) about each of `keys` that the broker says it stores but does not act on
/// yet, asking DescribeConfigs for their documentation (v3+). Best effort: a broker that
/// cannot say gets no warning.
async fn warn_unused<'a>(cluster: &mut Cluster, topic: &str, keys: impl Iterator<Item = &'a str>) {
    let keys: Vec<&str> = keys.collect();
    if keys.is_empty() {
        return;
    }
    let answer = cluster
        .admin()
        .call(|v| {
            let mut request = describe_configs_request(v, RESOURCE_TOPIC, topic);
            if let Some(r) = request.resources.first_mut() {
                r.configuration_keys = Some(keys.iter().map(|k| str_bytes(k)).collect());
            }
            request.include_documentation = v >= 3;
            request
        })
        .await;
    let Ok(response) = answer else { return };
    for c in response.results.iter().flat_map(|r| &r.configs) {
        if c.documentation
            .as_ref()
            .is_some_and(|d| d.contains(NOT_ACTED_ON))
        {
            eprintln!(
                "warning: {} is stored and described, but this broker does not act on it yet",
                c.name.as_str()
            );
        }
    }
}

/// IncrementalAlterConfigs of one resource: sets `set`, removes `delete`.
pub(crate) async fn alter_configs(
    conn: &mut Connection,
    resource_type: i8,
    name: &str,
    set: &[(String, String)],
    delete: &[String],
) -> anyhow::Result<()> {
    let response = conn
        .call(|v| incremental_alter_configs_request(v, resource_type, name, set, delete))
        .await?;
    let result = response
        .responses
        .first()
        .ok_or_else(|| anyhow!("the broker's IncrementalAlterConfigs answer is empty"))?;
    KafkaError::check(result.error_code, result.error_message.as_ref()).map_err(anyhow::Error::new)
}

async fn delete_one(
    cluster: &mut Cluster,
    name: &str,
    if_exists: bool,
    timeout_ms: i32,
) -> anyhow::Result<()> {
    let response = cluster
        .admin()
        .call(|v| delete_topics_request(v, name, timeout_ms))
        .await?;
    let result = match response.responses.as_slice() {
        [only] => only,
        many => many
            .iter()
            .find(|r| r.name.as_ref().is_some_and(|n| n.0.as_str() == name))
            .ok_or_else(|| anyhow!("the broker's DeleteTopics answer left out {name}"))?,
    };
    match KafkaError::check(result.error_code, result.error_message.as_ref()) {
        Ok(()) => eprintln!("deleted topic {name}"),
        Err(e) if if_exists && e.code == ErrorCode::UnknownTopicOrPartition.code() => {
            eprintln!("topic {name} does not exist");
        }
        Err(e) => return Err(anyhow!(e)),
    }
    Ok(())
}

/// A topic's description as JSON: name, partition count, replication factor, config
/// overrides, and per partition leader, epoch, offsets, replicas and in-sync replicas.
fn describe_json(
    topic: &TopicInfo,
    starts: &BTreeMap<i32, Result<i64, KafkaError>>,
    ends: &BTreeMap<i32, Result<i64, KafkaError>>,
    configs: &[DescribeConfigsResourceResult],
) -> serde_json::Value {
    let overrides: serde_json::Map<String, serde_json::Value> = configs
        .iter()
        .filter(|c| c.config_source != SOURCE_DEFAULT)
        .map(|c| {
            let value = if c.is_sensitive {
                serde_json::Value::Null
            } else {
                c.value.as_ref().map(|v| v.to_string()).into()
            };
            (c.name.to_string(), value)
        })
        .collect();
    let offset = |map: &BTreeMap<i32, Result<i64, KafkaError>>, index: i32| match map.get(&index) {
        Some(Ok(offset)) => serde_json::Value::from(*offset),
        _ => serde_json::Value::Null,
    };
    let partitions: Vec<serde_json::Value> = topic
        .partitions
        .iter()
        .map(|p| {
            serde_json::json!({
                "partition": p.index,
                "leader": (p.leader >= 0).then_some(p.leader),
                "leader_epoch": p.leader_epoch,
                "log_start_offset": offset(starts, p.index),
                "high_watermark": offset(ends, p.index),
                "replicas": p.replicas,
                "isr": p.isr,
                "error": p.error.as_ref().map(|e| e.to_string()),
            })
        })
        .collect();
    serde_json::json!({
        "name": topic.name,
        "partition_count": topic.partitions.len(),
        "replication_factor": topic.partitions.first().map_or(0, |p| p.replicas.len()),
        "configs": overrides,
        "partitions": partitions,
    })
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

pub(crate) fn create_topics_request(
    _version: i16,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &[(String, String)],
    timeout_ms: i32,
) -> CreateTopicsRequest {
    let topic = CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(partitions)
        .with_replication_factor(replication_factor)
        .with_configs(
            configs
                .iter()
                .map(|(key, value)| {
                    CreatableTopicConfig::default()
                        .with_name(str_bytes(key))
                        .with_value(Some(str_bytes(value)))
                })
                .collect(),
        );
    CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(timeout_ms)
}

pub(crate) fn delete_topics_request(
    version: i16,
    name: &str,
    timeout_ms: i32,
) -> DeleteTopicsRequest {
    let request = DeleteTopicsRequest::default().with_timeout_ms(timeout_ms);
    // v6 (KIP-516) replaced the list of names by a list of {name, topic id}.
    if version >= 6 {
        request.with_topics(vec![
            DeleteTopicState::default().with_name(Some(topic_name(name)))
        ])
    } else {
        request.with_topic_names(vec![topic_name(name)])
    }
}

pub(crate) fn create_partitions_request(
    _version: i16,
    name: &str,
    count: i32,
    timeout_ms: i32,
) -> CreatePartitionsRequest {
    CreatePartitionsRequest::default()
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(topic_name(name))
            .with_count(count)
            .with_assignments(None)])
        .with_timeout_ms(timeout_ms)
}

pub(crate) fn incremental_alter_configs_request(
    _version: i16,
    resource_type: i8,
    name: &str,
    set: &[(String, String)],
    delete: &[String],
) -> IncrementalAlterConfigsRequest {
    let sets = set.iter().map(|(key, value)| {
        AlterableConfig::default()
            .with_name(str_bytes(key))
            .with_config_operation(OP_SET)
            .with_value(Some(str_bytes(value)))
    });
    let deletes = delete.iter().map(|key| {
        AlterableConfig::default()
            .with_name(str_bytes(key))
            .with_config_operation(OP_DELETE)
            .with_value(None)
    });
    IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(str_bytes(name))
        .with_configs(sets.chain(deletes).collect())])
}

pub(crate) fn describe_configs_request(
    _version: i16,
    resource_type: i8,
    name: &str,
) -> DescribeConfigsRequest {
    DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(str_bytes(name))
        // null: every config of the resource.
        .with_configuration_keys(None)])
}

/// `topic describe`'s output, in the shape of Kafka's `kafka-topics.sh --describe`: one
/// line for the topic (with its non-default configs), then one per partition. Unknown
/// values print as `-`; a partition whose offsets could not be read says why.
fn format_description(
    topic: &TopicInfo,
    starts: &BTreeMap<i32, Result<i64, KafkaError>>,
    ends: &BTreeMap<i32, Result<i64, KafkaError>>,
    configs: &[DescribeConfigsResourceResult],
) -> String {
    let mut overrides: Vec<String> = configs
        .iter()
        .filter(|c| c.config_source != SOURCE_DEFAULT)
        .map(|c| {
            let value = match (&c.value, c.is_sensitive) {
                (_, true) => "[hidden]",
                (Some(value), false) => value.as_str(),
                (None, false) => "",
            };
            format!("{}={value}", c.name.as_str())
        })
        .collect();
    overrides.sort();
    let replication_factor = topic.partitions.first().map_or(0, |p| p.replicas.len());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Topic: {}\tPartitionCount: {}\tReplicationFactor: {replication_factor}\tConfigs: {}",
        topic.name,
        topic.partitions.len(),
        overrides.join(",")
    );
    let offset = |map: &BTreeMap<i32, Result<i64, KafkaError>>, index: i32| match map.get(&index) {
        Some(Ok(offset)) => offset.to_string(),
        _ => "-".to_string(),
    };
    let list = |nodes: &[i32]| {
        nodes
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    for p in &topic.partitions {
        let leader = if p.leader < 0 {
            "none".to_string()
        } else {
            p.leader.to_string()
        };
        let _ = write!(
            out,
            "\tPartition: {}\tLeader: {leader}\tLeaderEpoch: {}\tLogStartOffset: {}\tHighWatermark: {}\tReplicas: {}\tIsr: {}",
            p.index,
            p.leader_epoch,
            offset(starts, p.index),
            offset(ends, p.index),
            list(&p.replicas),
            list(&p.isr),
        );
        let error = p
            .error
            .as_ref()
            .or_else(|| starts.get(&p.index).and_then(|r| r.as_ref().err()))
            .or_else(|| ends.get(&p.index).and_then(|r| r.as_ref().err()));
        if let Some(e) = error {
            let _ = write!(out, "\tError: {}", error_name(e.code));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::cluster::PartitionInfo;

    #[test]
    fn description_shows_partitions_offsets_and_overrides() {
        let topic = TopicInfo {
            name: "orders".into(),
            internal: false,
            error: None,
            partitions: vec![
                PartitionInfo {
                    index: 0,
                    leader: 1,
                    leader_epoch: 3,
                    replicas: vec![1],
                    isr: vec![1],
                    error: None,
                },
                PartitionInfo {
                    index: 1,
                    leader: -1,
                    leader_epoch: -1,
                    replicas: vec![1],
                    isr: vec![],
                    error: Some(KafkaError {
                        code: 5,
                        message: None,
                    }),
                },
            ],
        };
        let starts = BTreeMap::from([
            (0, Ok(5)),
            (
                1,
                Err(KafkaError {
                    code: 5,
                    message: None,
                }),
            ),
        ]);
        let ends = BTreeMap::from([(0, Ok(42))]);
        let config = |name: &str, value: &str, source: i8, sensitive: bool| {
            DescribeConfigsResourceResult::default()
                .with_name(str_bytes(name))
                .with_value(Some(str_bytes(value)))
                .with_config_source(source)
                .with_is_sensitive(sensitive)
        };
        let configs = [
            config("segment.bytes", "1073741824", SOURCE_DEFAULT, false),
            config("retention.ms", "1000", 1, false),
            config("cleanup.policy", "delete", 4, false),
            config("secret", "x", 1, true),
        ];
        assert_eq!(
            format_description(&topic, &starts, &ends, &configs),
            "Topic: orders\tPartitionCount: 2\tReplicationFactor: 1\t\
             Configs: cleanup.policy=delete,retention.ms=1000,secret=[hidden]\n\
             \tPartition: 0\tLeader: 1\tLeaderEpoch: 3\tLogStartOffset: 5\tHighWatermark: 42\tReplicas: 1\tIsr: 1\n\
             \tPartition: 1\tLeader: none\tLeaderEpoch: -1\tLogStartOffset: -\tHighWatermark: -\tReplicas: 1\tIsr: \tError: LEADER_NOT_AVAILABLE\n"
        );
    }
}
