//! The node layer: this node's shared state and the operations on it, below the protocol
//! front ends.
//!
//! ```text
//!   Kafka listener (server, handlers) ──┐
//!                                       ├──► Node ──► TopicRegistry ──► PartitionHandle
//!   HTTP API (http) ────────────────────┘       ├──► Groups (coordinator, __consumer_offsets)
//!                                               └──► DiskGuard, broker configs, cluster id
//! ```
//!
//! A [`Node`] holds what both front ends serve: the topics and their partitions, the consumer
//! groups, the broker configs (owned by the registry), the disk guard, the cluster id and the
//! producer-id allocator. Its operations take and return plain values (names, offsets,
//! records, [`NodeError`]s), never Kafka request or response structs, so the Kafka handlers
//! and the HTTP API are thin translators over the same code: a topic created over HTTP goes
//! through the same checks as a CreateTopics request, a record produced over HTTP through the
//! same validation and produce rules as a Produce request.

pub(crate) mod configs;
mod error;
pub(crate) mod groups;
pub(crate) mod produce;
pub(crate) mod read;
pub(crate) mod topics;

use std::sync::Arc;
use std::time::Duration;

use cairn_partition::{PartitionHandle, StorageShards};
use cairn_protocol::ErrorCode;
use tokio::sync::watch;

use crate::cluster::Cluster;
use crate::config::BrokerConfig;
use crate::disk::DiskGuard;
use crate::groups::{self as group_state, Groups};
use crate::meta::{self, ProducerIds};
use crate::read_buffers::ReadBuffers;
use crate::topics::{Topic, TopicRegistry};
use crate::BrokerError;

pub(crate) use error::NodeError;

/// This node's shared state: what every front end serves.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) config: BrokerConfig,
    pub(crate) topics: TopicRegistry,
    pub(crate) cluster_id: String,
    pub(crate) producer_ids: ProducerIds,
    pub(crate) groups: Groups,
    /// Set once the node stops: long waits (fetches, consumes) end on it.
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Reused buffers for reads (Fetch, HTTP consume).
    pub(crate) read_buffers: Arc<ReadBuffers>,
    /// The data directory's free space: produces are refused while it is full.
    pub(crate) disk: Arc<DiskGuard>,
    /// This node's part of a cluster; `None` on a single node.
    pub(crate) cluster: Option<Arc<Cluster>>,
    /// Counters for `/metrics`.
    pub(crate) metrics: crate::metrics::Metrics,
    /// Messages from peers, until the router takes them (`spawn_tasks`).
    inbound: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<cairn_cluster::Inbound>>>,
}

/// How often the data directory's free space is checked.
const DISK_CHECK_INTERVAL: Duration = Duration::from_secs(1);

impl Node {
    /// Opens the data directory: metadata, every topic's partitions (recovering them after a
    /// crash) and the consumer groups (replayed from `__consumer_offsets`). On `Ok` the node
    /// can serve; nothing is listening yet.
    pub(crate) async fn open(
        config: BrokerConfig,
        shards: Arc<StorageShards>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Node, BrokerError> {
        let dir = config.data_dir.clone();
        // Its name durable too (even if it existed): every topic lives under it.
        cairn_storage::durable::ensure_dir(&dir)?;
        if config.node_id < 0 {
            return Err(BrokerError::Config(format!(
                "node.id must not be negative, got {}",
                config.node_id
            )));
        }
        let wanted_cluster_id = config.cluster.as_ref().map(|c| {
            c.cluster_id
                .clone()
                .unwrap_or_else(|| c.derived_cluster_id())
        });
        let cluster_id = meta::cluster_id(&dir, config.node_id, wanted_cluster_id.as_deref())?;
        let producer_ids =
            ProducerIds::open(&dir, config.cluster.as_ref().map(|_| config.node_id))?;
        // Before the partitions open: on a full disk this frees the ballast they need to
        // write their checkpoints, and says once what is full.
        let disk = Arc::new(DiskGuard::new(&dir, config.storage_min_free_bytes));
        disk.check();
        let raft_id = config.node_id as u64 + 1;
        let (cluster, inbound) = match &config.cluster {
            Some(settings) => {
                let (c, inbound) = Cluster::start(
                    settings,
                    config.node_id,
                    &cluster_id,
                    config.advertise.clone(),
                    &dir,
                    &shards,
                )
                .await?;
                (Some(c), Some(inbound))
            }
            None => (None, None),
        };
        let topics =
            TopicRegistry::load(&dir, shards, config.log.clone(), raft_id, cluster.clone()).await?;
        let groups = Groups::new(&config.groups, config.cluster.is_some());
        group_state::load(&topics, &groups).await?;
        Ok(Node {
            config,
            topics,
            cluster_id,
            producer_ids,
            groups,
            shutdown,
            read_buffers: Arc::default(),
            disk,
            cluster,
            metrics: crate::metrics::Metrics::new(),
            inbound: std::sync::Mutex::new(inbound),
        })
    }

    /// Starts the node's background work: the group coordinator's timer, the group-record
    /// writer, offsets expiry and the free-space check. It ends when the node shuts down.
    pub(crate) fn spawn_tasks(self: &Arc<Self>) {
        group_state::spawn_tasks(Arc::clone(self), self.shutdown.clone());
        spawn_disk_watch(Arc::clone(&self.disk), self.shutdown.clone());
        if let Some(cluster) = &self.cluster {
            let inbound = self.inbound.lock().ok().and_then(|mut i| i.take());
            if let Some(inbound) = inbound {
                cluster.spawn_tasks(inbound, self.shutdown.clone());
            }
            tokio::spawn(crate::cluster::metadata::run_applier(
                Arc::clone(self),
                Arc::clone(cluster),
            ));
            tokio::spawn(crate::cluster::balance_leaders(
                Arc::clone(self),
                Arc::clone(cluster),
                self.shutdown.clone(),
            ));
        }
    }

    /// The brokers clients can use: this node, and in a cluster every live peer, as
    /// (node id, host, port).
    pub(crate) fn brokers(&self) -> Vec<(i32, String, u16)> {
        match &self.cluster {
            Some(c) => c.live_brokers(),
            None => vec![(
                self.config.node_id,
                self.config.advertise.0.clone(),
                self.config.advertise.1,
            )],
        }
    }

    /// The controller's node id (this node on a single node; the metadata quorum's leader in
    /// a cluster, if there is one now).
    pub(crate) fn controller(&self) -> Option<i32> {
        match &self.cluster {
            Some(c) => c.controller(),
            None => Some(self.config.node_id),
        }
    }

    /// Every node of the cluster (this one alone on a single node), ascending: the
    /// replicas of every partition.
    pub(crate) fn node_ids(&self) -> Vec<i32> {
        match &self.cluster {
            Some(c) => c
                .voters
                .iter()
                .map(|v| crate::cluster::node_id(*v))
                .collect(),
            None => vec![self.config.node_id],
        }
    }

    /// The host and port of node `id`, if it is live.
    pub(crate) fn endpoint(&self, id: i32) -> Option<(String, u16)> {
        self.brokers()
            .into_iter()
            .find(|(b, _, _)| *b == id)
            .map(|(_, host, port)| (host, port))
    }

    /// Whether the node is stopping.
    pub(crate) fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// The partition `index` of `topic`, or the Kafka error for it.
    pub(crate) fn partition(
        &self,
        topic: &str,
        index: i32,
    ) -> Result<(Arc<Topic>, PartitionHandle), ErrorCode> {
        let t = self
            .topics
            .get(topic)
            .ok_or(ErrorCode::UnknownTopicOrPartition)?;
        let p = usize::try_from(index)
            .ok()
            .and_then(|i| t.partitions.get(i))
            .cloned()
            .ok_or(ErrorCode::UnknownTopicOrPartition)?;
        Ok((t, p))
    }

    /// [`Node::partition`] for requests only the leader answers (Fetch, ListOffsets,
    /// OffsetForLeaderEpoch, DeleteRecords): in a cluster, a replica that is not the
    /// confirmed leader answers NOT_LEADER_OR_FOLLOWER, so the client looks the leader up.
    pub(crate) fn leader_partition(
        &self,
        topic: &str,
        index: i32,
    ) -> Result<(Arc<Topic>, PartitionHandle), ErrorCode> {
        let (t, p) = self.partition(topic, index)?;
        if self.cluster.is_some() && !p.state().is_leader {
            return Err(ErrorCode::NotLeaderOrFollower);
        }
        Ok((t, p))
    }

    /// Like [`Node::partition`], telling an unknown topic from an unknown partition.
    pub(crate) fn find_partition(
        &self,
        topic: &str,
        index: i32,
    ) -> Result<(Arc<Topic>, PartitionHandle), NodeError> {
        let t = self
            .topics
            .get(topic)
            .ok_or_else(|| NodeError::UnknownTopic(topic.to_string()))?;
        let p = usize::try_from(index)
            .ok()
            .and_then(|i| t.partitions.get(i))
            .cloned()
            .ok_or_else(|| NodeError::UnknownPartition {
                topic: topic.to_string(),
                partition: index,
            })?;
        Ok((t, p))
    }
}

/// Checks the free space every second until shutdown.
fn spawn_disk_watch(disk: Arc<DiskGuard>, mut shutdown: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(DISK_CHECK_INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = shutdown.changed() => return,
            }
            let disk = Arc::clone(&disk);
            // statvfs and ballast writes are file system calls: off the network threads.
            let _ = tokio::task::spawn_blocking(move || disk.check()).await;
        }
    });
}
