//! ListOffsets: each partition's offset for a timestamp, or its log start ([`EARLIEST`]) or
//! high watermark ([`LATEST`], read_uncommitted), asked of the partition's leader.

use std::collections::BTreeMap;

use anyhow::anyhow;
use cairn_protocol::kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsTopic,
};
use cairn_protocol::kafka_protocol::messages::{BrokerId, ListOffsetsRequest};
use cairn_protocol::ErrorCode;

use super::cluster::{topic_name, Cluster, TopicInfo};
use super::error_code::KafkaError;

/// The log start offset.
pub(crate) const EARLIEST: i64 = -2;
/// The high watermark (the end of what a read_uncommitted consumer may read).
pub(crate) const LATEST: i64 = -1;

/// ListOffsets for each of `partitions` at `timestamp` (or [`EARLIEST`]/[`LATEST`]).
/// A timestamp after every record yields offset -1, as in Kafka. Per-partition errors are
/// returned, not raised, so `topic describe` can show them next to the others.
pub(crate) async fn list_offsets(
    cluster: &mut Cluster,
    topic: &TopicInfo,
    partitions: &[i32],
    timestamp: i64,
) -> anyhow::Result<BTreeMap<i32, Result<i64, KafkaError>>> {
    let mut offsets = BTreeMap::new();
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for &index in partitions {
        let leader = topic.partition(index)?.leader;
        if leader < 0 {
            offsets.insert(index, Err(no_leader()));
        } else {
            by_leader.entry(leader).or_default().push(index);
        }
    }
    for (leader, indexes) in by_leader {
        let asked: Vec<(i32, i64)> = indexes.iter().map(|&i| (i, timestamp)).collect();
        let conn = cluster.leader(leader).await?;
        let response = conn
            .call(|version| list_offsets_request(version, &topic.name, &asked))
            .await?;
        for t in response
            .topics
            .iter()
            .filter(|t| t.name.0.as_str() == topic.name)
        {
            for p in &t.partitions {
                if !indexes.contains(&p.partition_index) {
                    continue;
                }
                let result = KafkaError::check(p.error_code, None).map(|()| p.offset);
                offsets.insert(p.partition_index, result);
            }
        }
        for index in indexes {
            offsets.entry(index).or_insert_with(|| {
                Err(KafkaError {
                    code: ErrorCode::UnknownServerError.code(),
                    message: Some("the broker's ListOffsets answer left this partition out".into()),
                })
            });
        }
    }
    Ok(offsets)
}

/// Like [`list_offsets`], failing on the first partition with an error.
pub(crate) async fn list_offsets_or_fail(
    cluster: &mut Cluster,
    topic: &TopicInfo,
    partitions: &[i32],
    timestamp: i64,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    list_offsets(cluster, topic, partitions, timestamp)
        .await?
        .into_iter()
        .map(|(index, result)| {
            result.map(|offset| (index, offset)).map_err(|e| {
                anyhow!(e).context(format!(
                    "cannot look up offsets of partition {index} of {}",
                    topic.name
                ))
            })
        })
        .collect()
}

fn no_leader() -> KafkaError {
    KafkaError {
        code: ErrorCode::LeaderNotAvailable.code(),
        message: None,
    }
}

/// A consumer's ListOffsets (replica id -1, read_uncommitted) for `(partition, timestamp)`s.
pub(crate) fn list_offsets_request(
    _version: i16,
    topic: &str,
    partitions: &[(i32, i64)],
) -> ListOffsetsRequest {
    let mut request = ListOffsetsRequest::default();
    // -1: an ordinary consumer, not a follower replica.
    request.replica_id = BrokerId(-1);
    request.isolation_level = 0;
    request.topics = vec![ListOffsetsTopic::default()
        .with_name(topic_name(topic))
        .with_partitions(
            partitions
                .iter()
                .map(|&(index, timestamp)| {
                    ListOffsetsPartition::default()
                        .with_partition_index(index)
                        .with_timestamp(timestamp)
                })
                .collect(),
        )];
    request
}
