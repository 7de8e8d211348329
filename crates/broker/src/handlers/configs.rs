//! Config APIs for topics and the broker: DescribeConfigs, AlterConfigs (the legacy API: it
//! replaces a resource's whole set of dynamic configs) and IncrementalAlterConfigs.
//!
//! Both alter APIs first check each resource as Kafka's broker does
//! (`ConfigAdminManager.preprocess`): a resource named twice, a config named twice in one
//! resource and a null value (except for DELETE) are INVALID_REQUEST. Topic configs are
//! `topic_config`'s; broker configs, their sources and synonyms are `broker_configs`'.

use std::collections::HashSet;

use cairn_protocol::kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use cairn_protocol::kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use cairn_protocol::kafka_protocol::protocol::StrBytes;
use cairn_protocol::ErrorCode;

use super::admin::Refusal;
use super::str_bytes;
use crate::broker_configs::{BrokerConfigError, Source, Synonym};
use crate::errors::broker_config_error;
use crate::node::configs::{ConfigChange, ConfigOp};
use crate::node::Node;

/// Kafka's config resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// Kafka's config types (DescribeConfigs v3+).
const TYPE_BOOLEAN: i8 = 1;
const TYPE_STRING: i8 = 2;
const TYPE_LONG: i8 = 5;
/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

fn config_type(value: &str) -> i8 {
    if value.parse::<i64>().is_ok() {
        TYPE_LONG
    } else if value == "true" || value == "false" {
        TYPE_BOOLEAN
    } else {
        TYPE_STRING
    }
}

fn broker_refusal(e: BrokerConfigError) -> Refusal {
    (broker_config_error(&e), e.to_string())
}

/// How DescribeConfigs writes entries at the request's version.
struct Style {
    version: i16,
    synonyms: bool,
    docs: bool,
}

impl Style {
    fn entry(
        &self,
        name: &str,
        value: &str,
        source: Source,
        read_only: bool,
        synonyms: &[Synonym],
        doc: Option<&str>,
    ) -> DescribeConfigsResourceResult {
        let mut c = DescribeConfigsResourceResult::default();
        c.name = str_bytes(name);
        c.value = Some(str_bytes(value));
        c.read_only = read_only;
        c.config_source = source.id();
        if self.synonyms {
            c.synonyms = synonyms
                .iter()
                .map(|s| {
                    let mut y = DescribeConfigsSynonym::default();
                    y.name = str_bytes(s.name);
                    y.value = Some(str_bytes(&s.value));
                    y.source = s.source.id();
                    y
                })
                .collect();
        }
        if self.version >= 3 {
            c.config_type = config_type(value);
        }
        if self.docs {
            c.documentation = doc.map(str_bytes);
        }
        c
    }
}

pub(super) fn describe_configs(
    ctx: &Node,
    version: i16,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let style = Style {
        version,
        synonyms: version >= 1 && req.include_synonyms,
        docs: version >= 3 && req.include_documentation,
    };
    let mut resp = DescribeConfigsResponse::default();
    for resource in req.resources {
        let mut r = DescribeConfigsResult::default();
        r.resource_type = resource.resource_type;
        r.resource_name = resource.resource_name.clone();
        // Null or empty: every config (Kafka's `ConfigHelper.describeConfigs`).
        let wanted = |name: &str| match &resource.configuration_keys {
            Some(keys) if !keys.is_empty() => keys.iter().any(|k| k.as_str() == name),
            _ => true,
        };
        match resource.resource_type {
            RESOURCE_TOPIC => match ctx.topics.get(resource.resource_name.as_str()) {
                Some(topic) => {
                    r.configs = ctx
                        .topic_entries(&topic.configs)
                        .iter()
                        .filter(|e| wanted(e.name))
                        .map(|e| {
                            let doc = (!e.effective).then_some(
                                "Stored and described like Kafka's; Cairn does not act on it yet.",
                            );
                            style.entry(e.name, &e.value, e.source, false, &e.synonyms, doc)
                        })
                        .collect();
                }
                None => {
                    r.error_code = ErrorCode::UnknownTopicOrPartition.code();
                    r.error_message = Some(str_bytes("unknown topic"));
                }
            },
            RESOURCE_BROKER => {
                let entries = ctx.broker_configs(resource.resource_name.as_str());
                match entries {
                    Ok(entries) => {
                        r.configs = entries
                            .iter()
                            .filter(|e| wanted(e.name))
                            .map(|e| {
                                style.entry(
                                    e.name,
                                    &e.value,
                                    e.source,
                                    e.read_only,
                                    &e.synonyms,
                                    None,
                                )
                            })
                            .collect();
                    }
                    Err(e) => {
                        r.error_code = e.code().code();
                        r.error_message = Some(str_bytes(&e.to_string()));
                    }
                }
            }
            other => {
                r.error_code = ErrorCode::InvalidRequest.code();
                r.error_message = Some(str_bytes(&format!("Unsupported resource type: {other}")));
            }
        }
        resp.results.push(r);
    }
    resp
}

/// One resource of either alter API, reduced to what the checks need.
struct Resource<'a> {
    resource_type: i8,
    name: &'a str,
    /// (config name, operation (SET for the legacy API), value)
    ops: Vec<(&'a str, i8, Option<&'a str>)>,
}

/// Kafka's per-resource checks before anything is changed.
fn preprocess(resource: &Resource<'_>, duplicated: bool) -> Result<(), Refusal> {
    let invalid = |m: String| Err((ErrorCode::InvalidRequest, m));
    if duplicated {
        return invalid("Each resource must appear at most once.".into());
    }
    let mut seen = HashSet::new();
    if !resource.ops.iter().all(|(name, _, _)| seen.insert(*name)) {
        return Err(broker_refusal(BrokerConfigError::DuplicateKeys));
    }
    let nulls: Vec<String> = resource
        .ops
        .iter()
        .filter(|(_, op, value)| *op != OP_DELETE && value.is_none())
        .map(|(name, _, _)| name.to_string())
        .collect();
    if !nulls.is_empty() {
        return Err(broker_refusal(BrokerConfigError::NullValue(nulls)));
    }
    if resource.resource_type != RESOURCE_TOPIC && resource.resource_type != RESOURCE_BROKER {
        return invalid(format!("Unknown resource type {}", resource.resource_type));
    }
    Ok(())
}

/// Which resources of a request appear more than once (by type and name).
fn duplicated<'a>(resources: impl Iterator<Item = (i8, &'a str)>) -> HashSet<(i8, &'a str)> {
    let mut seen = HashSet::new();
    resources.filter(|r| !seen.insert(*r)).collect()
}

/// Applies one checked resource; `replace` is the legacy API's "this is the whole set".
async fn alter_one(
    ctx: &Node,
    resource: &Resource<'_>,
    replace: bool,
    validate_only: bool,
) -> Result<(), Refusal> {
    let changes: Vec<ConfigChange> = resource
        .ops
        .iter()
        .map(|(name, op, value)| {
            let value = value.unwrap_or_default().to_string();
            let op = match *op {
                OP_SET => ConfigOp::Set(value),
                OP_DELETE => ConfigOp::Delete,
                OP_APPEND => ConfigOp::Append(value),
                OP_SUBTRACT => ConfigOp::Subtract(value),
                other => ConfigOp::Unknown(other),
            };
            ConfigChange::new(*name, op)
        })
        .collect();
    let result = if resource.resource_type == RESOURCE_TOPIC {
        ctx.alter_topic_configs(resource.name, &changes, replace, validate_only)
            .await
    } else {
        ctx.alter_broker_configs(resource.name, &changes, replace, validate_only)
            .await
    };
    result.map_err(|e| (e.code(), e.to_string()))
}

fn set_error(code: &mut i16, message: &mut Option<StrBytes>, result: Result<(), Refusal>) {
    if let Err((c, m)) = result {
        tracing::debug!(error = ?c, message = %m, "config change refused");
        *code = c.code();
        *message = Some(str_bytes(&m));
    }
}

pub(super) async fn alter_configs(ctx: &Node, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let twice = duplicated(
        req.resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    let mut resp = AlterConfigsResponse::default();
    for resource in &req.resources {
        let checked = Resource {
            resource_type: resource.resource_type,
            name: resource.resource_name.as_str(),
            ops: resource
                .configs
                .iter()
                .map(|c| {
                    (
                        c.name.as_str(),
                        OP_SET,
                        c.value.as_ref().map(|v| v.as_str()),
                    )
                })
                .collect(),
        };
        let mut r = alter_configs_response::AlterConfigsResourceResponse::default();
        r.resource_type = resource.resource_type;
        r.resource_name = resource.resource_name.clone();
        let dup = twice.contains(&(checked.resource_type, checked.name));
        let result = match preprocess(&checked, dup) {
            Ok(()) => alter_one(ctx, &checked, true, req.validate_only).await,
            Err(e) => Err(e),
        };
        set_error(&mut r.error_code, &mut r.error_message, result);
        resp.responses.push(r);
    }
    resp
}

pub(super) async fn incremental_alter_configs(
    ctx: &Node,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let twice = duplicated(
        req.resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    let mut resp = IncrementalAlterConfigsResponse::default();
    for resource in &req.resources {
        let checked = Resource {
            resource_type: resource.resource_type,
            name: resource.resource_name.as_str(),
            ops: resource
                .configs
                .iter()
                .map(|c| {
                    (
                        c.name.as_str(),
                        c.config_operation,
                        c.value.as_ref().map(|v| v.as_str()),
                    )
                })
                .collect(),
        };
        let mut r = incremental_alter_configs_response::AlterConfigsResourceResponse::default();
        r.resource_type = resource.resource_type;
        r.resource_name = resource.resource_name.clone();
        let dup = twice.contains(&(checked.resource_type, checked.name));
        let result = match preprocess(&checked, dup) {
            Ok(()) => alter_one(ctx, &checked, false, req.validate_only).await,
            Err(e) => Err(e),
        };
        set_error(&mut r.error_code, &mut r.error_message, result);
        resp.responses.push(r);
    }
    resp
}
