//! Metadata: brokers (this one, and in a cluster every live node), topics and their
//! partitions with leaders and replicas, with auto-creation.

use std::sync::Arc;

use cairn_protocol::kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use cairn_protocol::kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use cairn_protocol::ErrorCode;
use uuid::Uuid;

use super::{str_bytes, topic_name};
use crate::errors::topic_error;
use crate::node::Node;
use crate::topic_config::TopicConfigs;
use crate::topics::{validate_name, Topic, TopicError};

pub(super) async fn metadata(ctx: &Node, version: i16, req: MetadataRequest) -> MetadataResponse {
    let mut resp = MetadataResponse::default();
    resp.brokers = ctx
        .brokers()
        .into_iter()
        .map(|(id, host, port)| {
            let mut broker = MetadataResponseBroker::default();
            broker.node_id = BrokerId(id);
            broker.host = str_bytes(&host);
            broker.port = i32::from(port);
            broker
        })
        .collect();
    if version >= 2 {
        resp.cluster_id = Some(str_bytes(&ctx.cluster_id));
    }
    if version >= 1 {
        resp.controller_id = BrokerId(ctx.controller().unwrap_or(-1));
    }
    // No authorizer: everything is allowed, and Kafka says so when asked (v8+; the
    // cluster field only up to v10). Leaving the "not requested" value confuses clients that
    // asked (kafka-python's admin client decodes it as operation 31).
    if (8..=10).contains(&version) && req.include_cluster_authorized_operations {
        resp.cluster_authorized_operations = super::CLUSTER_OPERATIONS;
    }
    let topic_operations = (version >= 8 && req.include_topic_authorized_operations)
        .then_some(super::TOPIC_OPERATIONS);

    let all = match &req.topics {
        None => true,
        // Before v1 an empty list meant "all topics".
        Some(list) => list.is_empty() && version == 0,
    };
    if all {
        resp.topics = ctx
            .topics
            .list()
            .iter()
            .map(|t| describe(ctx, t, version))
            .collect();
        set_operations(&mut resp, topic_operations);
        return resp;
    }
    // Kafka's rule: auto-create only if the broker allows it and, from v4, the client asks.
    let auto_create =
        ctx.config.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
    for requested in req.topics.unwrap_or_default() {
        let Some(name) = requested.name.as_ref().map(|n| n.0.as_str().to_string()) else {
            // Lookup by topic id (v10+).
            let topic = ctx.topics.get_by_id(requested.topic_id);
            resp.topics.push(match topic {
                Some(t) => describe(ctx, &t, version),
                None => error_topic(None, requested.topic_id, ErrorCode::UnknownTopicId, version),
            });
            continue;
        };
        let found = match ctx.topics.get(&name) {
            Some(t) => Ok(t),
            None if validate_name(&name).is_err() => Err(ErrorCode::InvalidTopicException),
            None if auto_create => auto_create_topic(ctx, &name).await,
            None => Err(ErrorCode::UnknownTopicOrPartition),
        };
        resp.topics.push(match found {
            Ok(t) => describe(ctx, &t, version),
            Err(code) => error_topic(Some(&name), Uuid::nil(), code, version),
        });
    }
    set_operations(&mut resp, topic_operations);
    resp
}

fn set_operations(resp: &mut MetadataResponse, operations: Option<i32>) {
    if let Some(ops) = operations {
        for t in resp.topics.iter_mut().filter(|t| t.error_code == 0) {
            t.topic_authorized_operations = ops;
        }
    }
}

async fn auto_create_topic(ctx: &Node, name: &str) -> Result<Arc<Topic>, ErrorCode> {
    let partitions = ctx.config.num_partitions.max(1);
    match ctx
        .topics
        .create(name, partitions, TopicConfigs::default(), false)
        .await
    {
        Ok(t) => Ok(t),
        // Created concurrently by another request: fine.
        Err(TopicError::AlreadyExists(_)) => ctx
            .topics
            .get(name)
            .ok_or(ErrorCode::UnknownTopicOrPartition),
        Err(e) => {
            tracing::warn!(topic = name, error = %e, "auto-creating topic");
            Err(topic_error(&e))
        }
    }
}

fn error_topic(
    name: Option<&str>,
    id: Uuid,
    code: ErrorCode,
    version: i16,
) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.error_code = code.code();
    t.name = name.map(topic_name);
    if version >= 10 {
        t.topic_id = id;
    }
    t
}

fn describe(ctx: &Node, topic: &Topic, version: i16) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.name = Some(topic_name(&topic.name));
    t.is_internal = Node::is_internal(&topic.name);
    if version >= 10 {
        t.topic_id = topic.id;
    }
    t.partitions = topic
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let view = ctx.partition_view(topic.id, i, p);
            let mut m = MetadataResponsePartition::default();
            m.partition_index = view.partition;
            if version >= 7 {
                m.leader_epoch = view.leader_epoch;
            }
            m.replica_nodes = view.replicas.into_iter().map(BrokerId).collect();
            m.isr_nodes = view.isr.into_iter().map(BrokerId).collect();
            match view.leader {
                Some(leader) => m.leader_id = BrokerId(leader),
                None => {
                    m.error_code = ErrorCode::LeaderNotAvailable.code();
                    m.leader_id = BrokerId(-1);
                }
            }
            m
        })
        .collect();
    t
}
