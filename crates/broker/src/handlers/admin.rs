//! Admin APIs: topics, partitions, producer ids, cluster description (configs: `configs`).

use std::collections::HashSet;

use cairn_protocol::kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use cairn_protocol::kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use cairn_protocol::kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use cairn_protocol::kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use cairn_protocol::kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
    CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse, DescribeClusterRequest,
    DescribeClusterResponse, InitProducerIdRequest, InitProducerIdResponse, ProducerId,
};
use cairn_protocol::ErrorCode;

use super::{str_bytes, topic_name};
use crate::node::topics::NewTopic;
use crate::node::{Node, NodeError};
use crate::topic_config::TopicConfigs;

pub(super) async fn create_topics(
    ctx: &Node,
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
                    ctx.topic_entries(&configs)
                        .into_iter()
                        .map(|d| {
                            let mut c = CreatableTopicConfigs::default();
                            c.name = str_bytes(d.name);
                            c.value = Some(str_bytes(&d.value));
                            c.config_source = d.source.id();
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

pub(super) type Refusal = (ErrorCode, String);

fn node_refusal(e: NodeError) -> Refusal {
    (e.code(), e.to_string())
}

async fn create_one(
    ctx: &Node,
    name: &str,
    topic: &cairn_protocol::kafka_protocol::messages::create_topics_request::CreatableTopic,
    validate_only: bool,
) -> Result<(uuid::Uuid, i32, TopicConfigs), Refusal> {
    let new = NewTopic {
        name: name.to_string(),
        partitions: topic.num_partitions,
        replication_factor: i32::from(topic.replication_factor),
        assignments: topic
            .assignments
            .iter()
            .map(|a| {
                (
                    a.partition_index,
                    a.broker_ids.iter().map(|b| b.0).collect(),
                )
            })
            .collect(),
        configs: topic
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.as_str().to_string(),
                    c.value.as_ref().map(|v| v.as_str().to_string()),
                )
            })
            .collect(),
    };
    let created = ctx
        .create_topic(&new, validate_only)
        .await
        .map_err(node_refusal)?;
    Ok((created.id, created.partitions, created.configs))
}

pub(super) async fn delete_topics(
    ctx: &Node,
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
            Some(name) => match ctx.delete_topic(&name).await {
                Ok(deleted_id) => topic_id = deleted_id,
                Err(e) => {
                    r.error_code = e.code().code();
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
    ctx: &Node,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut resp = CreatePartitionsResponse::default();
    for topic in req.topics {
        let mut r = CreatePartitionsTopicResult::default();
        r.name = topic.name.clone();
        let assignments: Vec<Vec<i32>> = topic
            .assignments
            .iter()
            .flatten()
            .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
            .collect();
        let result = ctx
            .add_partitions(
                topic.name.0.as_str(),
                topic.count,
                &assignments,
                req.validate_only,
            )
            .await
            .map_err(node_refusal);
        if let Err((code, message)) = result {
            r.error_code = code.code();
            r.error_message = Some(str_bytes(&message));
        }
        resp.results.push(r);
    }
    resp
}

pub(super) fn init_producer_id(ctx: &Node, req: InitProducerIdRequest) -> InitProducerIdResponse {
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
    ctx: &Node,
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
