//! Topic operations: create, delete, grow and describe topics, as CreateTopics,
//! DeleteTopics, CreatePartitions, Metadata and the HTTP API ask for them.

use std::sync::Arc;

use cairn_partition::PartitionHandle;
use cairn_protocol::ErrorCode;
use uuid::Uuid;

use super::{Node, NodeError};
use crate::cluster;
use crate::topic_config::TopicConfigs;
use crate::topics::{Topic, TopicError, MAX_PARTITIONS};

/// A topic to create, as a client describes it.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewTopic {
    pub(crate) name: String,
    /// `-1`: the broker's `num.partitions` (or the assignments' count).
    pub(crate) partitions: i32,
    /// `-1`: the broker's default (1 on a single node).
    pub(crate) replication_factor: i32,
    /// Replica assignments, `(partition, broker ids)` in partition order; empty for none.
    pub(crate) assignments: Vec<(i32, Vec<i32>)>,
    /// Config overrides; a `None` value is as if unset.
    pub(crate) configs: Vec<(String, Option<String>)>,
}

/// A topic created (or that would be, for `validate_only`).
#[derive(Debug, Clone)]
pub(crate) struct CreatedTopic {
    pub(crate) id: Uuid,
    pub(crate) partitions: i32,
    pub(crate) configs: TopicConfigs,
}

/// One partition as Metadata and the HTTP API describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionView {
    pub(crate) partition: i32,
    /// The leader's node id; `None` while there is none (an election).
    pub(crate) leader: Option<i32>,
    pub(crate) replicas: Vec<i32>,
    pub(crate) isr: Vec<i32>,
    pub(crate) leader_epoch: i32,
    pub(crate) log_start_offset: u64,
    pub(crate) high_watermark: u64,
    pub(crate) log_end_offset: u64,
}

/// A partition with its size on disk.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PartitionDetail {
    pub(crate) view: PartitionView,
    /// Bytes of the partition's segment files; `None` if it closed under us (deleted).
    pub(crate) size_bytes: Option<u64>,
    /// The log cleaner's state of a compacted partition.
    pub(crate) cleaner: Option<cairn_storage::CleanerState>,
    /// New leaders this replica has seen since it opened.
    pub(crate) leader_changes: u64,
}

/// A compacted partition's cleaner state as JSON (the HTTP API and the console).
pub(crate) fn cleaner_json(c: &cairn_storage::CleanerState) -> serde_json::Value {
    serde_json::json!({
        "cleaned_until": c.cleaned_until,
        "dirty_ratio": c.dirty_ratio,
        "last_run": c.last_run.map(|r| serde_json::json!({
            "cleaned_until": r.cleaned_until,
            "segments_rewritten": r.segments_rewritten,
            "bytes_read": r.bytes_read,
            "bytes_before": r.bytes_before,
            "bytes_after": r.bytes_after,
            "records_removed": r.records_removed,
            "duration_ms": r.duration_ms,
        })),
    })
}

fn invalid_replication(n: i32, nodes: usize) -> NodeError {
    let message = if nodes == 1 {
        format!("replication factor {n} is not possible on a single-node cluster (use 1 or -1)")
    } else {
        format!(
            "replication factor {n} is not possible: every partition is replicated on all \
             {nodes} nodes of this cluster (use {nodes} or -1)"
        )
    };
    TopicError::InvalidReplicationFactor(message).into()
}

fn list(ids: &[i32]) -> String {
    ids.iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Node {
    /// Whether `name` is one of the broker's own topics.
    pub(crate) fn is_internal(name: &str) -> bool {
        name == crate::groups::OFFSETS_TOPIC
    }

    /// Creates a topic (or only checks that it could be, with `validate_only`), with
    /// CreateTopics' rules.
    pub(crate) async fn create_topic(
        &self,
        topic: &NewTopic,
        validate_only: bool,
    ) -> Result<CreatedTopic, NodeError> {
        // Every node replicates every partition: the replication factor is the node count.
        let nodes = self.node_ids();
        let rf = topic.replication_factor;
        if rf != -1 && rf != nodes.len() as i32 {
            return Err(invalid_replication(rf, nodes.len()));
        }
        let partitions = if topic.assignments.is_empty() {
            match topic.partitions {
                -1 => self.config.num_partitions,
                n => n,
            }
        } else {
            if topic.partitions != -1 || rf != -1 {
                return Err(NodeError::kafka(
                    ErrorCode::InvalidRequest,
                    "replica assignments exclude num_partitions and replication_factor",
                ));
            }
            for (i, (partition, brokers)) in topic.assignments.iter().enumerate() {
                let mut sorted = brokers.clone();
                sorted.sort_unstable();
                if *partition != i as i32 || sorted != nodes {
                    return Err(NodeError::kafka(
                        ErrorCode::InvalidReplicaAssignment,
                        format!(
                            "partition {partition} must be assigned to every broker ({})",
                            list(&nodes)
                        ),
                    ));
                }
            }
            topic.assignments.len() as i32
        };
        if partitions > MAX_PARTITIONS {
            return Err(TopicError::InvalidPartitions(format!(
                "number of partitions must be at most {MAX_PARTITIONS}"
            ))
            .into());
        }
        let configs = TopicConfigs::from_pairs(
            topic
                .configs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_deref())),
        )
        .map_err(TopicError::from)?;
        let created = self
            .topics
            .create(&topic.name, partitions, configs, validate_only)
            .await?;
        Ok(CreatedTopic {
            id: created.id,
            partitions,
            configs: created.configs.clone(),
        })
    }

    /// Deletes a topic and its data; returns its id.
    pub(crate) async fn delete_topic(&self, name: &str) -> Result<Uuid, NodeError> {
        Ok(self.topics.delete(name).await?)
    }

    /// Grows a topic to `count` partitions. `assignments` (broker ids of each new
    /// partition, if the client gave them) must name this node alone.
    pub(crate) async fn add_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: &[Vec<i32>],
        validate_only: bool,
    ) -> Result<(), NodeError> {
        let nodes = self.node_ids();
        let every = |a: &Vec<i32>| {
            let mut sorted = a.clone();
            sorted.sort_unstable();
            sorted == nodes
        };
        if !assignments.iter().all(every) {
            return Err(NodeError::kafka(
                ErrorCode::InvalidReplicaAssignment,
                format!(
                    "partitions must be assigned to every broker ({})",
                    list(&nodes)
                ),
            ));
        }
        Ok(self
            .topics
            .add_partitions(name, count, validate_only)
            .await?)
    }

    /// The topic named `name`.
    pub(crate) fn topic(&self, name: &str) -> Result<Arc<Topic>, NodeError> {
        self.topics
            .get(name)
            .ok_or_else(|| NodeError::UnknownTopic(name.to_string()))
    }

    /// A partition's leadership and offsets, from its published state (no round trip to its
    /// owner). Replicas are in Kafka's order: the preferred leader first.
    pub(crate) fn partition_view(
        &self,
        topic: Uuid,
        index: usize,
        handle: &PartitionHandle,
    ) -> PartitionView {
        let node = self.config.node_id;
        let state = handle.state();
        if let Some(c) = &self.cluster {
            let replicas = handle.replicas();
            let mut raft_voters = replicas.voters.clone();
            raft_voters.sort_unstable();
            let voters: Vec<i32> = cluster::replica_order(&raft_voters, topic, index as i32)
                .into_iter()
                .map(cluster::node_id)
                .collect();
            // The leader as this replica knows it; itself only once confirmed (its high
            // watermark is then complete).
            let leader = match state.leader_id {
                0 => None,
                l if l == c.me && !state.is_leader => None,
                l => Some(cluster::node_id(l)),
            };
            // Only the leader knows who is in sync; elsewhere, the live replicas.
            let isr = if state.is_leader {
                replicas
                    .in_sync
                    .iter()
                    .map(|r| cluster::node_id(*r))
                    .collect()
            } else {
                voters.iter().copied().filter(|v| c.is_live(*v)).collect()
            };
            return PartitionView {
                partition: index as i32,
                leader,
                replicas: voters,
                isr,
                leader_epoch: state.leader_epoch,
                log_start_offset: state.log_start_offset,
                high_watermark: state.high_watermark,
                log_end_offset: state.log_end_offset,
            };
        }
        PartitionView {
            partition: index as i32,
            leader: state.is_leader.then_some(node),
            replicas: vec![node],
            isr: if state.is_leader {
                vec![node]
            } else {
                Vec::new()
            },
            leader_epoch: state.leader_epoch,
            log_start_offset: state.log_start_offset,
            high_watermark: state.high_watermark,
            log_end_offset: state.log_end_offset,
        }
    }

    /// Every partition of `topic` with its size on disk (asked of each partition's owner).
    pub(crate) async fn partition_details(&self, topic: &Topic) -> Vec<PartitionDetail> {
        let sizes = topic.partitions.iter().map(|h| async move {
            h.log_stats()
                .await
                .map_err(|e| tracing::debug!(partition = h.name(), error = %e, "no size"))
                .ok()
        });
        let sizes = futures_util::future::join_all(sizes).await;
        topic
            .partitions
            .iter()
            .zip(sizes)
            .enumerate()
            .map(|(i, (h, stats))| PartitionDetail {
                view: self.partition_view(topic.id, i, h),
                size_bytes: stats.map(|s| s.size_bytes),
                cleaner: stats.and_then(|s| s.cleaner),
                leader_changes: h.state().leader_changes,
            })
            .collect()
    }
}
