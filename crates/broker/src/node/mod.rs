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
        let cluster_id = meta::cluster_id(&dir, config.node_id)?;
        let producer_ids = ProducerIds::open(&dir)?;
        // Before the partitions open: on a full disk this frees the ballast they need to
        // write their checkpoints, and says once what is full.
        let disk = Arc::new(DiskGuard::new(&dir, config.storage_min_free_bytes));
        disk.check();
        let raft_id = config.node_id as u64 + 1;
        let topics = TopicRegistry::load(&dir, shards, config.log.clone(), raft_id).await?;
        let groups = Groups::new(&config.groups);
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
        })
    }

    /// Starts the node's background work: the group coordinator's timer, the group-record
    /// writer, offsets expiry and the free-space check. It ends when the node shuts down.
    pub(crate) fn spawn_tasks(self: &Arc<Self>) {
        group_state::spawn_tasks(Arc::clone(self), self.shutdown.clone());
        spawn_disk_watch(Arc::clone(&self.disk), self.shutdown.clone());
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
