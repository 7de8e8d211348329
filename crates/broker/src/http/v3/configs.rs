//! Configs of a topic, of the broker and the cluster-wide broker defaults, in REST Proxy v3's
//! shapes. The same five routes serve each resource:
//!
//! ```text
//! GET    {resource}/configs                                         Kafka{Topic,Broker,Cluster}ConfigList
//! POST   {resource}/configs:alter  {"data": [{"name", "value", "operation"}], "validate_only"}   204
//! GET    {resource}/configs/{name}                                  Kafka{Topic,Broker,Cluster}Config
//! PUT    {resource}/configs/{name} {"value": "..."}                 204
//! DELETE {resource}/configs/{name}                                  204 (back to the inherited value)
//! ```
//!
//! where `{resource}` is `/v3/clusters/{c}/topics/{t}`, `/v3/clusters/{c}/brokers/{b}` or,
//! for the cluster-wide defaults, `/v3/clusters/{c}/broker` (the routes are
//! `/v3/clusters/{c}/broker-configs...`, as in REST Proxy). Changes go through the same node
//! operations as IncrementalAlterConfigs: a batch is checked whole and applied or refused
//! whole; `operation` is `SET` (the default), `DELETE`, `APPEND` or `SUBTRACT`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{no_params, ok, Cluster};
use crate::broker_configs::{Source, Synonym};
use crate::http::body::{JsonBody, PathParams};
use crate::http::error::{ApiError, CONFIG_NOT_FOUND};
use crate::http::HttpState;
use crate::node::configs::{ConfigChange, ConfigOp};
use crate::node::NodeError;

pub(super) fn routes() -> Router<Arc<HttpState>> {
    let mut router = Router::new();
    for resource in [
        "/v3/clusters/{cluster_id}/topics/{topic_name}/configs",
        "/v3/clusters/{cluster_id}/brokers/{broker_id}/configs",
        "/v3/clusters/{cluster_id}/broker-configs",
    ] {
        router = router
            .route(resource, get(list_configs))
            .route(&format!("{resource}:alter"), post(alter_configs))
            .route(
                &format!("{resource}/{{name}}"),
                get(get_config).put(update_config).delete(reset_config),
            );
    }
    router
}

/// Which configs a route is about.
enum Resource {
    Topic(String),
    Broker(i32),
    /// The cluster-wide broker defaults (Kafka's broker resource named "").
    Cluster,
}

/// One config as the answers show it.
struct ConfigView {
    name: &'static str,
    value: String,
    source: Source,
    read_only: bool,
    synonyms: Vec<Synonym>,
}

/// Kafka's name of a config source, as REST Proxy shows it.
fn source_name(source: Source) -> &'static str {
    match source {
        Source::Topic => "DYNAMIC_TOPIC_CONFIG",
        Source::DynamicBroker => "DYNAMIC_BROKER_CONFIG",
        Source::DynamicDefault => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        Source::StaticBroker => "STATIC_BROKER_CONFIG",
        Source::Default => "DEFAULT_CONFIG",
    }
}

impl Cluster {
    /// The resource the path names (its cluster checked by the caller).
    fn resource(&self, path: &HashMap<String, String>) -> Result<Resource, ApiError> {
        if let Some(topic) = path.get("topic_name") {
            // 404 now for an unknown topic, before a body is looked at.
            self.node.topic(topic)?;
            Ok(Resource::Topic(topic.clone()))
        } else if let Some(broker) = path.get("broker_id") {
            Ok(Resource::Broker(self.check_broker(broker)?))
        } else {
            Ok(Resource::Cluster)
        }
    }

    fn configs(&self, resource: &Resource) -> Result<Vec<ConfigView>, ApiError> {
        Ok(match resource {
            Resource::Topic(name) => self
                .node
                .topic_configs(name)?
                .into_iter()
                .map(|e| ConfigView {
                    name: e.name,
                    value: e.value,
                    source: e.source,
                    read_only: false,
                    synonyms: e.synonyms,
                })
                .collect(),
            Resource::Broker(_) | Resource::Cluster => self
                .node
                .broker_configs(&broker_resource_name(resource))?
                .into_iter()
                .map(|e| ConfigView {
                    name: e.name,
                    value: e.value,
                    source: e.source,
                    read_only: e.read_only,
                    synonyms: e.synonyms,
                })
                .collect(),
        })
    }

    fn config_path(&self, resource: &Resource) -> String {
        match resource {
            Resource::Topic(t) => format!("/topics/{t}/configs"),
            Resource::Broker(b) => format!("/brokers/{b}/configs"),
            Resource::Cluster => "/broker-configs".to_string(),
        }
    }

    fn config(&self, resource: &Resource, c: &ConfigView) -> Value {
        let name = c.name;
        let path = format!("{}/{name}", self.config_path(resource));
        let (kind, crn) = match resource {
            Resource::Topic(t) => ("KafkaTopicConfig", format!("/topic={t}/config={name}")),
            Resource::Broker(b) => ("KafkaBrokerConfig", format!("/broker={b}/config={name}")),
            Resource::Cluster => ("KafkaClusterConfig", format!("/broker-config={name}")),
        };
        let mut v = json!({
            "kind": kind,
            "metadata": self.metadata(&path, &crn),
            "cluster_id": self.id(),
            "name": name,
            "value": c.value,
            "is_default": c.source == Source::Default,
            "is_read_only": c.read_only,
            "is_sensitive": false,
            "source": source_name(c.source),
            "synonyms": c.synonyms.iter().map(|s| json!({
                "name": s.name,
                "value": s.value,
                "source": source_name(s.source),
            })).collect::<Vec<_>>(),
        });
        match resource {
            Resource::Topic(t) => v["topic_name"] = json!(t),
            Resource::Broker(b) => v["broker_id"] = json!(b),
            Resource::Cluster => v["config_type"] = json!("BROKER"),
        }
        v
    }

    async fn alter(
        &self,
        resource: &Resource,
        changes: &[ConfigChange],
        validate_only: bool,
    ) -> Result<(), ApiError> {
        match resource {
            Resource::Topic(t) => {
                self.node
                    .alter_topic_configs(t, changes, false, validate_only)
                    .await?
            }
            Resource::Broker(_) | Resource::Cluster => {
                self.node
                    .alter_broker_configs(
                        &broker_resource_name(resource),
                        changes,
                        false,
                        validate_only,
                    )
                    .await?
            }
        }
        Ok(())
    }
}

/// Kafka's broker resource name: the node id, or "" for the cluster-wide defaults.
fn broker_resource_name(resource: &Resource) -> String {
    match resource {
        Resource::Broker(b) => b.to_string(),
        _ => String::new(),
    }
}

fn open(
    state: &HttpState,
    headers: &HeaderMap,
    path: &HashMap<String, String>,
) -> Result<(Cluster, Resource), ApiError> {
    let cluster_id = path.get("cluster_id").map_or("", String::as_str);
    let cluster = Cluster::open(state, headers, cluster_id)?;
    let resource = cluster.resource(path)?;
    Ok((cluster, resource))
}

async fn list_configs(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams(path): PathParams<HashMap<String, String>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let (cluster, resource) = open(&state, &headers, &path)?;
    let data = cluster
        .configs(&resource)?
        .iter()
        .map(|c| cluster.config(&resource, c))
        .collect();
    let kind = match resource {
        Resource::Topic(_) => "KafkaTopicConfigList",
        Resource::Broker(_) => "KafkaBrokerConfigList",
        Resource::Cluster => "KafkaClusterConfigList",
    };
    Ok(ok(&cluster.list(
        kind,
        &cluster.config_path(&resource),
        data,
    )))
}

async fn get_config(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams(path): PathParams<HashMap<String, String>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let (cluster, resource) = open(&state, &headers, &path)?;
    let name = path.get("name").map_or("", String::as_str);
    let configs = cluster.configs(&resource)?;
    let Some(c) = configs.iter().find(|c| c.name == name) else {
        return Err(unknown_config(&cluster, &resource, name));
    };
    Ok(ok(&cluster.config(&resource, c)))
}

fn unknown_config(cluster: &Cluster, resource: &Resource, name: &str) -> ApiError {
    let what = match resource {
        Resource::Topic(t) => format!("topic {t}"),
        Resource::Broker(b) => format!("broker {b}"),
        Resource::Cluster => format!("cluster {}", cluster.id()),
    };
    let e = ApiError::from(NodeError::UnknownConfig {
        resource: what,
        name: name.to_string(),
    });
    debug_assert_eq!(e.error_code, CONFIG_NOT_FOUND);
    e
}

/// REST Proxy v3's `UpdateConfigRequestData`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateConfig {
    value: Option<String>,
}

async fn update_config(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams(path): PathParams<HashMap<String, String>>,
    RawQuery(query): RawQuery,
    JsonBody(body): JsonBody<UpdateConfig>,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let (cluster, resource) = open(&state, &headers, &path)?;
    let name = path.get("name").map_or("", String::as_str);
    let Some(value) = body.value else {
        return Err(ApiError::bad_field(
            "value",
            "must be a string (DELETE the config to reset it)",
        ));
    };
    let change = ConfigChange::new(name, ConfigOp::Set(value));
    cluster.alter(&resource, &[change], false).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn reset_config(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams(path): PathParams<HashMap<String, String>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let (cluster, resource) = open(&state, &headers, &path)?;
    let name = path.get("name").map_or("", String::as_str);
    if !cluster.configs(&resource)?.iter().any(|c| c.name == name) {
        return Err(unknown_config(&cluster, &resource, name));
    }
    let change = ConfigChange::new(name, ConfigOp::Delete);
    cluster.alter(&resource, &[change], false).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// REST Proxy v3's `AlterConfigBatchRequestData`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlterBatch {
    data: Vec<AlterEntry>,
    #[serde(default)]
    validate_only: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlterEntry {
    name: String,
    value: Option<String>,
    operation: Option<String>,
}

async fn alter_configs(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    PathParams(path): PathParams<HashMap<String, String>>,
    RawQuery(query): RawQuery,
    JsonBody(body): JsonBody<AlterBatch>,
) -> Result<Response, ApiError> {
    no_params(&query)?;
    let (cluster, resource) = open(&state, &headers, &path)?;
    let mut changes = Vec::with_capacity(body.data.len());
    for (i, entry) in body.data.into_iter().enumerate() {
        let operation = entry.operation.as_deref().unwrap_or("SET");
        let value = |op: &str| {
            entry.value.clone().ok_or_else(|| {
                ApiError::bad_field(&format!("data[{i}].value"), format!("{op} needs a value"))
            })
        };
        let op = match operation.to_ascii_uppercase().as_str() {
            "SET" => ConfigOp::Set(value("SET")?),
            "DELETE" => ConfigOp::Delete,
            "APPEND" => ConfigOp::Append(value("APPEND")?),
            "SUBTRACT" => ConfigOp::Subtract(value("SUBTRACT")?),
            other => {
                return Err(ApiError::bad_field(
                    &format!("data[{i}].operation"),
                    format!("{other:?} is not SET, DELETE, APPEND or SUBTRACT"),
                ))
            }
        };
        changes.push(ConfigChange::new(entry.name, op));
    }
    cluster
        .alter(&resource, &changes, body.validate_only)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
