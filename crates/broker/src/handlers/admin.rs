//! Admin APIs: topics, partitions, configs, producer ids, cluster description.

use std::collections::HashSet;

use cairn_protocol::kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use cairn_protocol::kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use cairn_protocol::kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use cairn_protocol::kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use cairn_protocol::kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use cairn_protocol::kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use cairn_protocol::kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
    CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse, DescribeClusterRequest,
    DescribeClusterResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, InitProducerIdRequest,
    InitProducerIdResponse, ProducerId,
};
use cairn_protocol::ErrorCode;

use super::{str_bytes, topic_name};
use crate::errors::topic_error;
use crate::server::Ctx;
use crate::topic_config::{DescribedConfig, TopicConfigs};
use crate::topics::{TopicError, MAX_PARTITIONS};

/// Kafka's config resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// Kafka's config sources.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
/// Kafka's config types (DescribeConfigs v3+).
const TYPE_BOOLEAN: i8 = 1;
const TYPE_STRING: i8 = 2;
const TYPE_LONG: i8 = 5;

fn config_type(value: &str) -> i8 {
    if value.parse::<i64>().is_ok() {
        TYPE_LONG
    } else if value == "true" || value == "false" {
        TYPE_BOOLEAN
    } else {
        TYPE_STRING
    }
}

pub(super) async fn create_topics(
    ctx: &Ctx,
    version: i16,
    req: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut resp = CreateTopicsResponse::default();
    let mut seen = HashSet::new();
    let duplicates: HashSet<String> = req
        .topics
        .iter()
        .map(|t| t.name.0.as_str().to_string())
        .filter(|n| !seen.insert(n.clone()))
        .collect();
    for topic in req.topics {
        let name = topic.name.0.as_str().to_string();
        let mut r = CreatableTopicResult::default();
        r.name = topic.name.clone();
        r.num_partitions = -1;
        r.replication_factor = -1;
        let result = if duplicates.contains(&name) {
            Err((
                ErrorCode::InvalidRequest,
                format!("topic {name} appears more than once in the request"),
            ))
        } else {
            create_one(ctx, &name, &topic, req.validate_only).await
        };
        match result {
            Ok((topic_id, partitions, configs)) if version >= 5 => {
                if version >= 7 {
                    r.topic_id = topic_id;
                }
                r.num_partitions = partitions;
                r.replication_factor = 1;
                r.configs = Some(
                    configs
                        .describe(ctx.topics.defaults())
                        .into_iter()
                        .map(|d| {
                            let mut c = CreatableTopicConfigs::default();
                            c.name = str_bytes(d.name);
                            c.value = Some(str_bytes(&d.value));
                            c.config_source = if d.overridden {
                                SOURCE_TOPIC
                            } else {
                                SOURCE_DEFAULT
                            };
                            c
                        })
                        .collect(),
                );
            }
            Ok(_) => {}
            Err((code, message)) => {
                tracing::debug!(topic = %name, error = ?code, %message, "create topic refused");
                r.error_code = code.code();
                r.error_message = Some(str_bytes(&message));
            }
        }
        resp.topics.push(r);
    }
    resp
}

type Refusal = (ErrorCode, String);

fn refusal(e: TopicError) -> Refusal {
    (topic_error(&e), e.to_string())
}

async fn create_one(
    ctx: &Ctx,
    name: &str,
    topic: &cairn_protocol::kafka_protocol::messages::create_topics_request::CreatableTopic,
    validate_only: bool,
) -> Result<(uuid::Uuid, i32, TopicConfigs), Refusal> {
    let node = ctx.config.node_id;
    // One broker: a replication factor above 1 cannot be met.
    if topic.replication_factor > 1
        || topic.replication_factor == 0
        || topic.replication_factor < -1
    {
        return Err(refusal(TopicError::InvalidReplicationFactor(format!(
            "replication factor {} is not possible on a single-node cluster (use 1 or -1)",
            topic.replication_factor
        ))));
    }
    let partitions = if topic.assignments.is_empty() {
        match topic.num_partitions {
            -1 => ctx.config.num_partitions,
            n => n,
        }
    } else {
        if topic.num_partitions != -1 || topic.replication_factor != -1 {
            return Err((
                ErrorCode::InvalidRequest,
                "replica assignments exclude num_partitions and replication_factor".into(),
            ));
        }
        for (i, a) in topic.assignments.iter().enumerate() {
            if a.partition_index != i as i32
                || a.broker_ids.iter().map(|b| b.0).collect::<Vec<_>>() != [node]
            {
                return Err((
                    ErrorCode::InvalidReplicaAssignment,
                    format!(
                        "partition {} must be assigned to broker {node} alone",
                        a.partition_index
                    ),
                ));
            }
        }
        topic.assignments.len() as i32
    };
    if partitions > MAX_PARTITIONS {
        return Err(refusal(TopicError::InvalidPartitions(format!(
            "number of partitions must be at most {MAX_PARTITIONS}"
        ))));
    }
    let configs = TopicConfigs::from_pairs(
        topic
            .configs
            .iter()
            .map(|c| (c.name.as_str(), c.value.as_ref().map(|v| v.as_str()))),
    )
    .map_err(|e| refusal(e.into()))?;
    let created = ctx
        .topics
        .create(name, partitions, configs, validate_only)
        .await
        .map_err(refusal)?;
    Ok((created.id, partitions, created.configs.clone()))
}

pub(super) async fn delete_topics(
    ctx: &Ctx,
    version: i16,
    req: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let mut resp = DeleteTopicsResponse::default();
    // v0–v5 name topics in `topic_names`; v6 in `topics` (by name or id).
    let mut targets: Vec<(Option<String>, uuid::Uuid)> = req
        .topic_names
        .iter()
        .map(|n| (Some(n.0.as_str().to_string()), uuid::Uuid::nil()))
        .collect();
    targets.extend(req.topics.iter().map(|t| {
        (
            t.name.as_ref().map(|n| n.0.as_str().to_string()),
            t.topic_id,
        )
    }));
    for (name, id) in targets {
        let mut r = DeletableTopicResult::default();
        let name = name.or_else(|| ctx.topics.get_by_id(id).map(|t| t.name.clone()));
        r.name = name.as_deref().map(topic_name);
        let mut topic_id = id;
        match name {
            None => r.error_code = ErrorCode::UnknownTopicId.code(),
            Some(name) => match ctx.topics.delete(&name).await {
                Ok(deleted_id) => topic_id = deleted_id,
                Err(e) => {
                    r.error_code = topic_error(&e).code();
                    if version >= 5 {
                        r.error_message = Some(str_bytes(&e.to_string()));
                    }
                }
            },
        }
        if version >= 6 {
            r.topic_id = topic_id;
        }
        resp.responses.push(r);
    }
    resp
}

pub(super) async fn create_partitions(
    ctx: &Ctx,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut resp = CreatePartitionsResponse::default();
    let node = ctx.config.node_id;
    for topic in req.topics {
        let mut r = CreatePartitionsTopicResult::default();
        r.name = topic.name.clone();
        let bad_assignment = topic
            .assignments
            .iter()
            .flatten()
            .any(|a| a.broker_ids.iter().map(|b| b.0).collect::<Vec<_>>() != [node]);
        let result = if bad_assignment {
            Err((
                ErrorCode::InvalidReplicaAssignment,
                format!("partitions must be assigned to broker {node} alone"),
            ))
        } else {
            ctx.topics
                .add_partitions(topic.name.0.as_str(), topic.count, req.validate_only)
                .await
                .map_err(refusal)
        };
        if let Err((code, message)) = result {
            r.error_code = code.code();
            r.error_message = Some(str_bytes(&message));
        }
        resp.results.push(r);
    }
    resp
}

fn described(
    d: &DescribedConfig,
    source: i8,
    read_only: bool,
    version: i16,
    with_docs: bool,
) -> DescribeConfigsResourceResult {
    let mut c = DescribeConfigsResourceResult::default();
    c.name = str_bytes(d.name);
    c.value = Some(str_bytes(&d.value));
    c.read_only = read_only;
    c.config_source = source;
    if version >= 3 {
        c.config_type = config_type(&d.value);
    }
    if with_docs && !d.effective {
        c.documentation = Some(str_bytes(
            "Stored and described like Kafka's; Cairn does not act on it yet.",
        ));
    }
    c
}

/// The broker's settings as Kafka names them, all static (set at start-up).
fn broker_configs(ctx: &Ctx) -> Vec<DescribedConfig> {
    let c = &ctx.config;
    let log = &c.log;
    let limit = |v: Option<u64>| v.map_or("-1".to_string(), |v| v.to_string());
    let entries: Vec<(&'static str, String)> = vec![
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
        ("socket.request.max.bytes", c.max_frame_bytes.to_string()),
        ("message.max.bytes", log.max_batch_bytes.to_string()),
        ("log.segment.bytes", log.segment_bytes.to_string()),
        ("log.roll.ms", log.segment_ms.to_string()),
        (
            "log.index.size.max.bytes",
            log.segment_index_bytes.to_string(),
        ),
        (
            "log.index.interval.bytes",
            log.index_interval_bytes.to_string(),
        ),
        ("log.retention.bytes", limit(log.retention_bytes)),
        ("log.retention.ms", limit(log.retention_ms)),
        ("log.flush.interval.messages", limit(log.flush_messages)),
        ("log.flush.interval.ms", limit(log.flush_ms)),
        ("default.replication.factor", "1".to_string()),
    ];
    entries
        .into_iter()
        .map(|(name, value)| DescribedConfig {
            name,
            value,
            overridden: false,
            effective: true,
        })
        .collect()
}

pub(super) fn describe_configs(
    ctx: &Ctx,
    version: i16,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let mut resp = DescribeConfigsResponse::default();
    let with_docs = version >= 3 && req.include_documentation;
    for resource in req.resources {
        let mut r = DescribeConfigsResult::default();
        r.resource_type = resource.resource_type;
        r.resource_name = resource.resource_name.clone();
        let wanted = |name: &str| {
            resource
                .configuration_keys
                .as_ref()
                .is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
        };
        match resource.resource_type {
            RESOURCE_TOPIC => match ctx.topics.get(resource.resource_name.as_str()) {
                Some(topic) => {
                    r.configs = topic
                        .configs
                        .describe(ctx.topics.defaults())
                        .iter()
                        .filter(|d| wanted(d.name))
                        .map(|d| {
                            described(
                                d,
                                if d.overridden {
                                    SOURCE_TOPIC
                                } else {
                                    SOURCE_DEFAULT
                                },
                                false,
                                version,
                                with_docs,
                            )
                        })
                        .collect();
                }
                None => {
                    r.error_code = ErrorCode::UnknownTopicOrPartition.code();
                    r.error_message = Some(str_bytes("unknown topic"));
                }
            },
            RESOURCE_BROKER => {
                let name = resource.resource_name.as_str();
                if name.is_empty() || name == ctx.config.node_id.to_string() {
                    r.configs = broker_configs(ctx)
                        .iter()
                        .filter(|d| wanted(d.name))
                        .map(|d| described(d, SOURCE_STATIC_BROKER, true, version, with_docs))
                        .collect();
                } else {
                    r.error_code = ErrorCode::InvalidRequest.code();
                    r.error_message = Some(str_bytes(&format!("no broker {name} in this cluster")));
                }
            }
            other => {
                r.error_code = ErrorCode::InvalidRequest.code();
                r.error_message = Some(str_bytes(&format!(
                    "resource type {other} is not supported"
                )));
            }
        }
        resp.results.push(r);
    }
    resp
}

/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

pub(super) async fn incremental_alter_configs(
    ctx: &Ctx,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut resp = IncrementalAlterConfigsResponse::default();
    for resource in req.resources {
        let mut r = AlterConfigsResourceResponse::default();
        r.resource_type = resource.resource_type;
        r.resource_name = resource.resource_name.clone();
        let result = match resource.resource_type {
            RESOURCE_TOPIC => {
                let ops: Vec<(String, i8, Option<String>)> = resource
                    .configs
                    .iter()
                    .map(|c| {
                        (
                            c.name.as_str().to_string(),
                            c.config_operation,
                            c.value.as_ref().map(|v| v.as_str().to_string()),
                        )
                    })
                    .collect();
                ctx.topics
                    .alter_configs(
                        resource.resource_name.as_str(),
                        req.validate_only,
                        move |configs, defaults| {
                            for (name, op, value) in &ops {
                                let value = value.as_deref().unwrap_or("");
                                match *op {
                                    OP_SET => configs.set(name, value)?,
                                    OP_DELETE => configs.delete(name)?,
                                    OP_APPEND => configs.append(name, value, defaults)?,
                                    OP_SUBTRACT => configs.subtract(name, value, defaults)?,
                                    other => {
                                        return Err(crate::ConfigError {
                                            name: name.clone(),
                                            reason: format!("unknown operation {other}"),
                                        })
                                    }
                                }
                            }
                            Ok(())
                        },
                    )
                    .await
                    .map_err(refusal)
            }
            RESOURCE_BROKER => Err((
                ErrorCode::InvalidRequest,
                "broker configs are static in Cairn: set them in cairn.toml or CAIRN_* and restart"
                    .into(),
            )),
            other => Err((
                ErrorCode::InvalidRequest,
                format!("resource type {other} is not supported"),
            )),
        };
        if let Err((code, message)) = result {
            r.error_code = code.code();
            r.error_message = Some(str_bytes(&message));
        }
        resp.responses.push(r);
    }
    resp
}

pub(super) fn init_producer_id(ctx: &Ctx, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let mut resp = InitProducerIdResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    if req.transactional_id.is_some() {
        // Transactions come later; an idempotent producer sends no transactional id.
        resp.error_code = ErrorCode::InvalidRequest.code();
        return resp;
    }
    // KIP-360: a producer that knows its id asks for a bumped epoch.
    if req.producer_id.0 >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX - 1 {
        resp.producer_id = req.producer_id;
        resp.producer_epoch = req.producer_epoch + 1;
        return resp;
    }
    match ctx.producer_ids.allocate() {
        Ok(id) => {
            resp.producer_id = ProducerId(id);
            resp.producer_epoch = 0;
        }
        Err(e) => {
            tracing::error!(error = %e, "allocating a producer id");
            resp.error_code = ErrorCode::KafkaStorageError.code();
        }
    }
    resp
}

pub(super) fn describe_cluster(
    ctx: &Ctx,
    version: i16,
    req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let mut resp = DescribeClusterResponse::default();
    if version >= 1 {
        resp.endpoint_type = req.endpoint_type;
    }
    resp.cluster_id = str_bytes(&ctx.cluster_id);
    resp.controller_id = BrokerId(ctx.config.node_id);
    let mut b = DescribeClusterBroker::default();
    b.broker_id = BrokerId(ctx.config.node_id);
    b.host = str_bytes(&ctx.config.advertise.0);
    b.port = ctx.config.advertise.1 as i32;
    resp.brokers = vec![b];
    if req.include_cluster_authorized_operations {
        resp.cluster_authorized_operations = super::CLUSTER_OPERATIONS;
    }
    resp
}
