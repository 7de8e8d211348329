//! The cluster as the CLI sees it: one bootstrap connection (for metadata and admin
//! requests, which any broker accepts), the brokers Metadata lists, and connections to
//! partition leaders, opened when first needed (Produce, Fetch and ListOffsets must reach
//! the leader). A leader advertised at the bootstrap address shares its connection.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use cairn_protocol::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use cairn_protocol::kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use cairn_protocol::kafka_protocol::protocol::StrBytes;
use cairn_protocol::ErrorCode;

use super::conn::Connection;
use super::error_code::KafkaError;
use super::ClientArgs;

/// Pause between Metadata requests while waiting for partition leaders.
const LEADER_WAIT_BACKOFF: Duration = Duration::from_millis(100);

/// A topic as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicInfo {
    pub name: String,
    pub internal: bool,
    /// Topic-level error, e.g. UNKNOWN_TOPIC_OR_PARTITION.
    pub error: Option<KafkaError>,
    /// Sorted by index.
    pub partitions: Vec<PartitionInfo>,
}

/// One partition as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionInfo {
    pub index: i32,
    /// Node id of the leader, -1 when there is none.
    pub leader: i32,
    /// -1 when the broker does not say (Metadata before v7).
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub error: Option<KafkaError>,
}

impl TopicInfo {
    /// The partition with `index`.
    pub fn partition(&self, index: i32) -> anyhow::Result<&PartitionInfo> {
        self.partitions
            .iter()
            .find(|p| p.index == index)
            .ok_or_else(|| {
                anyhow!(
                    "topic {} has {} partition(s); there is no partition {index}",
                    self.name,
                    self.partitions.len()
                )
            })
    }

    /// `partitions` grouped by leader node id.
    pub fn by_leader(&self, partitions: &[i32]) -> anyhow::Result<BTreeMap<i32, Vec<i32>>> {
        let mut groups: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for &index in partitions {
            let leader = self.partition(index)?.leader;
            if leader < 0 {
                bail!("partition {index} of {} has no leader", self.name);
            }
            groups.entry(leader).or_default().push(index);
        }
        Ok(groups)
    }
}

/// Connections to a cluster.
#[derive(Debug)]
pub(crate) struct Cluster {
    bootstrap: Connection,
    /// `host:port` of each broker, from the latest Metadata.
    brokers: BTreeMap<i32, String>,
    leaders: BTreeMap<i32, Connection>,
    timeout: Duration,
    /// Metadata requests ask the broker to create missing topics.
    auto_create: bool,
}

impl Cluster {
    /// Connects to the first reachable bootstrap server.
    pub async fn connect(client: &ClientArgs) -> anyhow::Result<Cluster> {
        let timeout = client.timeout();
        let addrs: Vec<&str> = client
            .bootstrap_server
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .collect();
        let mut errors = Vec::new();
        for addr in &addrs {
            match Connection::open(addr, timeout).await {
                Ok(bootstrap) => {
                    return Ok(Cluster {
                        bootstrap,
                        brokers: BTreeMap::new(),
                        leaders: BTreeMap::new(),
                        timeout,
                        auto_create: false,
                    })
                }
                Err(e) => errors.push(e),
            }
        }
        match errors.len() {
            0 => bail!("no bootstrap server given (--bootstrap-server HOST:PORT)"),
            1 => Err(errors.remove(0)),
            _ => bail!(
                "cannot connect to any bootstrap server: {}",
                errors
                    .iter()
                    .map(|e| format!("{e:#}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }
    }

    /// The connection for requests any broker answers (metadata, topic administration).
    pub fn admin(&mut self) -> &mut Connection {
        &mut self.bootstrap
    }

    /// From now on, ask the broker to create topics that do not exist (when its
    /// `auto.create.topics.enable` allows), as producers do.
    pub fn set_auto_create(&mut self, on: bool) {
        self.auto_create = on;
    }

    /// Metadata for the named topics (all topics when `None`); creates none unless
    /// [`Cluster::set_auto_create`].
    pub async fn metadata(&mut self, topics: Option<&[&str]>) -> anyhow::Result<Vec<TopicInfo>> {
        let create = self.auto_create;
        let response = self
            .bootstrap
            .call(|version| {
                let mut request = metadata_request(version, topics);
                if version >= 4 && create && topics.is_some() {
                    request.allow_auto_topic_creation = true;
                }
                request
            })
            .await?;
        self.remember_brokers(&response);
        Ok(topic_infos(response))
    }

    /// Metadata of one topic; fails if the topic has an error (e.g. does not exist).
    pub async fn topic(&mut self, name: &str) -> anyhow::Result<TopicInfo> {
        let topic = self
            .metadata(Some(&[name]))
            .await?
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| anyhow!("the broker's metadata does not mention topic {name}"))?;
        if let Some(e) = &topic.error {
            return Err(anyhow!(e.clone()).context(format!("topic {name}")));
        }
        Ok(topic)
    }

    /// Metadata of one topic once `partitions` (all when `None`) have leaders, waiting up
    /// to `--timeout-ms` (a new topic's partitions elect their first leader in a moment).
    pub async fn topic_with_leaders(
        &mut self,
        name: &str,
        partitions: Option<&[i32]>,
    ) -> anyhow::Result<TopicInfo> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let topic = match self.topic(name).await {
                Ok(topic) => topic,
                Err(e) if is_leader_wait(&e) && Instant::now() < deadline => {
                    tokio::time::sleep(LEADER_WAIT_BACKOFF).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let wanted: Vec<i32> = match partitions {
                Some(list) => list.to_vec(),
                None => topic.partitions.iter().map(|p| p.index).collect(),
            };
            let mut missing = None;
            for &index in &wanted {
                let partition = topic.partition(index)?;
                match &partition.error {
                    Some(e) if !e.is_leader_change() => {
                        return Err(
                            anyhow!(e.clone()).context(format!("partition {index} of {name}"))
                        );
                    }
                    _ if partition.leader < 0 || partition.error.is_some() => {
                        missing = Some(index);
                        break;
                    }
                    _ => {}
                }
            }
            match missing {
                None => return Ok(topic),
                Some(index) if Instant::now() >= deadline => bail!(
                    "partition {index} of {name} has no leader after {} ms",
                    self.timeout.as_millis()
                ),
                Some(_) => tokio::time::sleep(LEADER_WAIT_BACKOFF).await,
            }
        }
    }

    /// The node id of the broker the bootstrap connection reaches, by its address in the
    /// latest Metadata.
    pub fn bootstrap_node(&self) -> Option<i32> {
        self.brokers
            .iter()
            .find(|(_, addr)| addr.as_str() == self.bootstrap.addr())
            .or_else(|| self.brokers.iter().next())
            .map(|(id, _)| *id)
    }

    /// The connection to broker `node`, opened on first use.
    pub async fn leader(&mut self, node: i32) -> anyhow::Result<&mut Connection> {
        let Some(addr) = self.brokers.get(&node).cloned() else {
            bail!("broker {node} is not in the cluster metadata");
        };
        if addr == self.bootstrap.addr() {
            return Ok(&mut self.bootstrap);
        }
        if !self.leaders.contains_key(&node) {
            let conn = Connection::open(&addr, self.timeout)
                .await
                .with_context(|| format!("broker {node} (advertised as {addr})"))?;
            self.leaders.insert(node, conn);
        }
        self.leaders
            .get_mut(&node)
            .ok_or_else(|| anyhow!("internal error: lost the connection to broker {node}"))
    }

    fn remember_brokers(&mut self, response: &MetadataResponse) {
        self.brokers = response
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
            .collect();
        // A broker that moved gets a new connection when next needed.
        let brokers = &self.brokers;
        self.leaders
            .retain(|node, conn| brokers.get(node).is_some_and(|addr| addr == conn.addr()));
    }
}

/// Whether a metadata error means "no leader yet, ask again".
fn is_leader_wait(e: &anyhow::Error) -> bool {
    e.downcast_ref::<KafkaError>()
        .is_some_and(|k| k.code == ErrorCode::LeaderNotAvailable.code())
}

/// A Kafka topic name.
pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// Metadata for `topics` (all when `None`), never asking the broker to create a topic.
pub(crate) fn metadata_request(version: i16, topics: Option<&[&str]>) -> MetadataRequest {
    let mut request = MetadataRequest::default();
    request.topics = match topics {
        Some(names) => Some(
            names
                .iter()
                .map(|name| MetadataRequestTopic::default().with_name(Some(topic_name(name))))
                .collect(),
        ),
        // v0 has no null list: an empty one means "all topics".
        None if version == 0 => Some(Vec::new()),
        None => None,
    };
    // v0-v3 cannot say "don't create" (the field is new in v4); the broker's
    // auto.create.topics.enable decides there.
    if version >= 4 {
        request.allow_auto_topic_creation = false;
    }
    request
}

pub(crate) fn topic_infos(response: MetadataResponse) -> Vec<TopicInfo> {
    response
        .topics
        .into_iter()
        .filter_map(|t| {
            let name = t.name?.0.to_string();
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .into_iter()
                .map(|p| PartitionInfo {
                    index: p.partition_index,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.iter().map(|n| n.0).collect(),
                    isr: p.isr_nodes.iter().map(|n| n.0).collect(),
                    error: KafkaError::check(p.error_code, None).err(),
                })
                .collect();
            partitions.sort_by_key(|p| p.index);
            Some(TopicInfo {
                name,
                internal: t.is_internal,
                error: KafkaError::check(t.error_code, None).err(),
                partitions,
            })
        })
        .collect()
}
