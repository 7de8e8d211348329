//! The metadata quorum: topics as a replicated log, applied on every node.
//!
//! ```text
//!   CreateTopics on any node ─► Cluster::propose ─► controller (the metadata group's leader):
//!        check against its image, append one record (acks=all)
//!   every node: applier ─► reads committed records in order ─► Image ─► TopicRegistry
//!        (opens, grows, reconfigures and deletes its replicas to match)
//! ```
//!
//! The log is the raft group `__cluster_metadata-0` (group 0), kept under
//! `.cairn/cluster-metadata/` without retention. Each record is one record batch whose value
//! is a [`MetadataRecord`] in JSON. A change is answered once it is committed and applied on
//! the node that asked (so the client's next Metadata there shows it); the others apply it
//! as they catch up. Proposals are serialised on the controller, which first applies
//! everything committed before it, so its checks see every earlier change (a new controller
//! included).
//!
//! At start, a node replays its committed metadata log into the image before it changes any
//! topic, and only then reconciles: topics the image has and the node lacks are created,
//! topics the log deleted are deleted — a topic file whose id the image does not know yet is
//! left alone (the log may be behind), never deleted for being absent.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_partition::Acks;
use cairn_protocol::ErrorCode;
use cairn_storage::{batch, VerifiedBatch};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Cluster;
use crate::node::Node;
use crate::topic_config::TopicConfigs;
use crate::topics::TopicError;

/// Most bytes one read of the metadata log asks for.
const READ_BYTES: u32 = 1 << 20;

/// One change to the cluster's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum MetadataRecord {
    /// A topic, its partitions and its config overrides.
    CreateTopic {
        name: String,
        id: Uuid,
        partitions: i32,
        configs: BTreeMap<String, String>,
    },
    /// The topic with this id goes, data and all.
    DeleteTopic { name: String, id: Uuid },
    /// The topic grows to `partitions`.
    AddPartitions {
        name: String,
        id: Uuid,
        partitions: i32,
    },
    /// The topic's config overrides become `configs` (all of them).
    SetTopicConfigs {
        name: String,
        id: Uuid,
        configs: BTreeMap<String, String>,
    },
}

/// Why a metadata change was not made, as the controller says it (it crosses the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub(crate) struct ProposeError {
    /// The Kafka error code for it.
    pub(crate) code: i16,
    pub(crate) message: String,
}

impl ProposeError {
    pub(crate) fn no_controller() -> ProposeError {
        ProposeError {
            code: ErrorCode::NotController.code(),
            message: "no controller is available (the metadata quorum has no leader)".into(),
        }
    }

    pub(crate) fn timeout(message: &str) -> ProposeError {
        ProposeError {
            code: ErrorCode::RequestTimedOut.code(),
            message: message.into(),
        }
    }

    fn refused(code: ErrorCode, message: String) -> ProposeError {
        ProposeError {
            code: code.code(),
            message,
        }
    }

    /// Worth asking again (the controller is changing).
    pub(crate) fn retriable(&self) -> bool {
        self.code == ErrorCode::NotController.code()
            || self.code == ErrorCode::NotLeaderOrFollower.code()
    }

    /// The Kafka error code.
    pub(crate) fn error_code(&self) -> ErrorCode {
        ErrorCode::from_code(self.code).unwrap_or(ErrorCode::UnknownServerError)
    }
}

impl From<ProposeError> for TopicError {
    fn from(e: ProposeError) -> TopicError {
        match e.error_code() {
            ErrorCode::TopicAlreadyExists => TopicError::AlreadyExists(e.message),
            ErrorCode::UnknownTopicOrPartition => TopicError::Unknown(e.message),
            ErrorCode::InvalidPartitions => TopicError::InvalidPartitions(e.message),
            code => TopicError::Cluster {
                code,
                message: e.message,
            },
        }
    }
}

/// A topic as the metadata log describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicMeta {
    pub(crate) id: Uuid,
    pub(crate) partitions: i32,
    pub(crate) configs: BTreeMap<String, String>,
}

/// The cluster's metadata as applied so far.
#[derive(Debug, Default)]
pub(crate) struct Image {
    pub(crate) topics: HashMap<String, TopicMeta>,
    /// Ids of topics the log deleted (so a node that missed the deletion deletes its copy).
    deleted: HashSet<Uuid>,
}

impl Image {
    /// The controller's check of a change against everything committed before it.
    fn check(&self, record: &MetadataRecord) -> Result<(), ProposeError> {
        let existing = |name: &str, id: &Uuid| match self.topics.get(name) {
            Some(t) if t.id == *id => Ok(t),
            _ => Err(ProposeError::refused(
                ErrorCode::UnknownTopicOrPartition,
                format!("topic {name} does not exist"),
            )),
        };
        match record {
            MetadataRecord::CreateTopic { name, .. } => match self.topics.contains_key(name) {
                true => Err(ProposeError::refused(
                    ErrorCode::TopicAlreadyExists,
                    format!("topic {name} already exists"),
                )),
                false => Ok(()),
            },
            MetadataRecord::DeleteTopic { name, id }
            | MetadataRecord::SetTopicConfigs { name, id, .. } => existing(name, id).map(|_| ()),
            MetadataRecord::AddPartitions {
                name,
                id,
                partitions,
            } => {
                let t = existing(name, id)?;
                if *partitions <= t.partitions {
                    return Err(ProposeError::refused(
                        ErrorCode::InvalidPartitions,
                        format!(
                            "topic {name} has {} partitions; the new count {partitions} must be larger",
                            t.partitions
                        ),
                    ));
                }
                Ok(())
            }
        }
    }

    fn apply(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::CreateTopic {
                name,
                id,
                partitions,
                configs,
            } => {
                self.topics.insert(
                    name.clone(),
                    TopicMeta {
                        id: *id,
                        partitions: *partitions,
                        configs: configs.clone(),
                    },
                );
            }
            MetadataRecord::DeleteTopic { name, id } => {
                if self.topics.get(name).is_some_and(|t| t.id == *id) {
                    self.topics.remove(name);
                }
                self.deleted.insert(*id);
            }
            MetadataRecord::AddPartitions {
                name,
                id,
                partitions,
            } => {
                if let Some(t) = self.topics.get_mut(name).filter(|t| t.id == *id) {
                    t.partitions = t.partitions.max(*partitions);
                }
            }
            MetadataRecord::SetTopicConfigs { name, id, configs } => {
                if let Some(t) = self.topics.get_mut(name).filter(|t| t.id == *id) {
                    t.configs = configs.clone();
                }
            }
        }
    }

    fn record_name(record: &MetadataRecord) -> &str {
        match record {
            MetadataRecord::CreateTopic { name, .. }
            | MetadataRecord::DeleteTopic { name, .. }
            | MetadataRecord::AddPartitions { name, .. }
            | MetadataRecord::SetTopicConfigs { name, .. } => name,
        }
    }
}

fn encode(record: &MetadataRecord) -> Result<VerifiedBatch, ProposeError> {
    let value = serde_json::to_vec(record).map_err(|e| ProposeError {
        code: ErrorCode::UnknownServerError.code(),
        message: format!("cannot encode a metadata record: {e}"),
    })?;
    let b = batch::build_batch(crate::groups::wall_ms(), &[&value]);
    VerifiedBatch::new(Bytes::from(b), u32::MAX).map_err(|e| ProposeError {
        code: ErrorCode::UnknownServerError.code(),
        message: format!("cannot build a metadata batch: {e}"),
    })
}

impl Cluster {
    /// On the controller: checks `record` against everything committed before it and
    /// appends it; returns its offset once committed.
    pub(crate) async fn propose_here(&self, record: MetadataRecord) -> Result<u64, ProposeError> {
        let _one_at_a_time = self.proposing.lock().await;
        let state = self.metadata.state();
        if !state.is_leader {
            return Err(ProposeError::no_controller());
        }
        // Everything committed before this change is applied first (a new controller may
        // not have applied its predecessor's last changes yet).
        let mut applied = self.applied.subscribe();
        let caught_up = tokio::time::timeout(Duration::from_secs(5), async {
            applied
                .wait_for(|a| *a >= state.high_watermark)
                .await
                .is_ok()
        })
        .await;
        if caught_up != Ok(true) {
            return Err(ProposeError::no_controller());
        }
        if let Ok(image) = self.image.read() {
            image.check(&record)?;
        }
        let batch = encode(&record)?;
        match self.metadata.produce(vec![batch], Acks::All).await {
            Ok(ack) => {
                tracing::info!(
                    offset = ack.base_offset,
                    ?record,
                    "metadata change committed"
                );
                Ok(ack.base_offset)
            }
            Err(cairn_partition::PartitionError::NotLeader) => Err(ProposeError::no_controller()),
            Err(e) => Err(ProposeError {
                code: crate::errors::partition_error(&e).code(),
                message: format!("cannot append to the metadata log: {e}"),
            }),
        }
    }

    fn set_applied(&self, offset: u64) {
        self.applied.send_if_modified(|a| {
            let moved = offset > *a;
            *a = (*a).max(offset);
            moved
        });
    }
}

/// Applies the committed metadata log on this node, from its start, for as long as the node
/// runs: first a replay into the image up to what is committed now, then one reconciliation
/// of every topic, then record by record.
pub(crate) async fn run_applier(node: Arc<Node>, cluster: Arc<Cluster>) {
    let mut state = cluster.metadata.watch();
    let mut shutdown = node.shutdown.clone();
    let mut next = 0u64;
    let mut replaying = true;
    // What is committed locally at start: replayed without touching topics.
    let startup_end = cluster.metadata.state().high_watermark;
    loop {
        let hw = state.borrow_and_update().high_watermark;
        if next < hw {
            match read_records(&cluster, next).await {
                Ok((records, after)) => {
                    for record in records {
                        if let Ok(mut image) = cluster.image.write() {
                            image.apply(&record);
                        }
                        if !replaying {
                            reconcile(&node, &cluster, Image::record_name(&record)).await;
                        }
                    }
                    next = after.max(next);
                }
                Err(e) => {
                    tracing::warn!(offset = next, error = %e, "cannot read the metadata log; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
        }
        if replaying && next >= startup_end {
            replaying = false;
            reconcile_all(&node, &cluster).await;
            tracing::info!(offset = next, "metadata log replayed");
        }
        if !replaying {
            cluster.set_applied(next);
        }
        if next < state.borrow().high_watermark {
            continue;
        }
        tokio::select! {
            changed = state.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}

/// The records of the committed batches from `offset`, and the offset after them.
async fn read_records(
    cluster: &Cluster,
    offset: u64,
) -> Result<(Vec<MetadataRecord>, u64), String> {
    let start = cluster.metadata.state().log_start_offset;
    let data = cluster
        .metadata
        .fetch(offset.max(start), READ_BYTES)
        .await
        .map_err(|e| e.to_string())?;
    let bytes = data.read.load().map_err(|e| e.to_string())?;
    let mut records = Vec::new();
    let mut next = offset;
    for item in batch::iter_batches(&bytes, u32::MAX) {
        let (_, header, b) = item.map_err(|e| e.to_string())?;
        next = header.next_offset() as u64;
        if header.is_control() {
            continue;
        }
        let Some(value) = batch::first_record_value(b) else {
            tracing::warn!(
                offset = header.base_offset,
                "skipping a metadata batch without a value"
            );
            continue;
        };
        match serde_json::from_slice(value) {
            Ok(record) => records.push(record),
            Err(e) => {
                tracing::error!(offset = header.base_offset, error = %e, "skipping an unreadable metadata record")
            }
        }
    }
    Ok((records, next))
}

async fn reconcile_all(node: &Node, cluster: &Cluster) {
    let mut names: HashSet<String> = node.topics.list().iter().map(|t| t.name.clone()).collect();
    if let Ok(image) = cluster.image.read() {
        names.extend(image.topics.keys().cloned());
    }
    for name in names {
        reconcile(node, cluster, &name).await;
    }
}

/// Makes this node's copy of topic `name` what the image says.
async fn reconcile(node: &Node, cluster: &Cluster, name: &str) {
    let (wanted, deleted) = match cluster.image.read() {
        Ok(image) => (
            image.topics.get(name).cloned(),
            node.topics
                .get(name)
                .is_some_and(|t| image.deleted.contains(&t.id)),
        ),
        Err(_) => return,
    };
    let local = node.topics.get(name);
    let result: Result<(), TopicError> = async {
        match (wanted, local) {
            (None, Some(_)) if deleted => node.topics.delete_local(name).await.map(|_| ()),
            (None, Some(t)) => {
                tracing::debug!(topic = name, id = %t.id, "topic not in the metadata log applied so far; kept");
                Ok(())
            }
            (None, None) => Ok(()),
            (Some(m), local) => {
                let local = match local {
                    Some(t) if t.id != m.id => {
                        node.topics.delete_local(name).await?;
                        None
                    }
                    other => other,
                };
                let configs = TopicConfigs::from_pairs(
                    m.configs.iter().map(|(k, v)| (k.as_str(), Some(v.as_str()))),
                )?;
                match local {
                    None => node
                        .topics
                        .create_local(name, m.id, m.partitions, configs)
                        .await
                        .map(|_| ()),
                    Some(t) => {
                        if (t.partitions.len() as i32) < m.partitions {
                            node.topics.add_partitions_local(name, m.partitions).await?;
                        }
                        if t.configs.overrides() != configs.overrides() {
                            node.topics.set_configs_local(name, configs).await?;
                        }
                        Ok(())
                    }
                }
            }
        }
    }
    .await;
    if let Err(e) = result {
        tracing::error!(topic = name, error = %e, "cannot apply the metadata log to this node's topic");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(name: &str, id: u128, partitions: i32) -> MetadataRecord {
        MetadataRecord::CreateTopic {
            name: name.into(),
            id: Uuid::from_u128(id),
            partitions,
            configs: BTreeMap::new(),
        }
    }

    #[test]
    fn the_image_checks_and_applies_changes() {
        let mut image = Image::default();
        let a = create("a", 1, 2);
        image.check(&a).expect("new");
        image.apply(&a);
        assert_eq!(
            image.check(&create("a", 9, 1)).map_err(|e| e.error_code()),
            Err(ErrorCode::TopicAlreadyExists)
        );
        let grow = |n| MetadataRecord::AddPartitions {
            name: "a".into(),
            id: Uuid::from_u128(1),
            partitions: n,
        };
        assert_eq!(
            image.check(&grow(2)).map_err(|e| e.error_code()),
            Err(ErrorCode::InvalidPartitions)
        );
        image.check(&grow(5)).expect("larger");
        image.apply(&grow(5));
        assert_eq!(image.topics["a"].partitions, 5);
        let wrong_id = MetadataRecord::DeleteTopic {
            name: "a".into(),
            id: Uuid::from_u128(2),
        };
        assert!(image.check(&wrong_id).is_err());
        let delete = MetadataRecord::DeleteTopic {
            name: "a".into(),
            id: Uuid::from_u128(1),
        };
        image.apply(&delete);
        assert!(image.topics.is_empty());
        assert!(image.deleted.contains(&Uuid::from_u128(1)));
        // JSON round trip, as the log stores it.
        let json = serde_json::to_vec(&a).expect("encode");
        assert_eq!(
            serde_json::from_slice::<MetadataRecord>(&json).expect("decode"),
            a
        );
    }
}
