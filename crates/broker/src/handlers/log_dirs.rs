//! DescribeLogDirs: the one log directory (the data directory) and the size on disk of each
//! partition in it, which consoles and `kafka-log-dirs.sh` read topic sizes from.
//!
//! As Kafka's `ReplicaManager.describeLogDirs`: a null topic list means every partition
//! (internal topics included), named partitions that do not exist are left out, a
//! partition's size is the bytes of its segment files, its offset lag is 0 (Kafka's
//! `max(high watermark - log end, 0)` on a leader) and `is_future_key` is false (no
//! replica moves between directories). v4 adds the volume's total and usable bytes
//! (statvfs: blocks and blocks available to unprivileged users, as Java's `FileStore`).

use std::collections::BTreeMap;
use std::path::Path;

use cairn_protocol::kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use cairn_protocol::kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};
use cairn_protocol::ErrorCode;

use super::{str_bytes, topic_name};
use crate::node::Node;

/// Total and usable bytes of the filesystem holding `dir`; `(-1, -1)` (Kafka's "unknown")
/// if it cannot be asked.
fn volume_bytes(dir: &Path) -> (i64, i64) {
    match rustix::fs::statvfs(dir) {
        Ok(s) => {
            let bytes =
                |blocks: u64| i64::try_from(blocks.saturating_mul(s.f_frsize)).unwrap_or(i64::MAX);
            (bytes(s.f_blocks), bytes(s.f_bavail))
        }
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "statvfs failed");
            (-1, -1)
        }
    }
}

pub(super) async fn describe_log_dirs(
    ctx: &Node,
    req: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    // Topic name -> partitions wanted (None: all of them).
    let wanted: Vec<(String, Option<Vec<i32>>)> = match req.topics {
        None => ctx
            .topics
            .list()
            .iter()
            .map(|t| (t.name.clone(), None))
            .collect(),
        Some(topics) => {
            let mut merged: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for t in topics {
                merged
                    .entry(t.topic.0.as_str().to_string())
                    .or_default()
                    .extend(t.partitions);
            }
            merged.into_iter().map(|(t, ps)| (t, Some(ps))).collect()
        }
    };
    let mut result = DescribeLogDirsResult::default();
    let dir = std::path::absolute(&ctx.config.data_dir).unwrap_or(ctx.config.data_dir.clone());
    result.log_dir = str_bytes(&dir.to_string_lossy());
    for (name, partitions) in wanted {
        let Some(topic) = ctx.topics.get(&name) else {
            continue;
        };
        let indexes: Vec<usize> = match partitions {
            None => (0..topic.partitions.len()).collect(),
            Some(ps) => {
                let mut ps: Vec<usize> = ps
                    .into_iter()
                    .filter_map(|p| usize::try_from(p).ok())
                    .filter(|p| *p < topic.partitions.len())
                    .collect();
                ps.sort_unstable();
                ps.dedup();
                ps
            }
        };
        let mut t = DescribeLogDirsTopic::default();
        t.name = topic_name(&name);
        for i in indexes {
            let handle = &topic.partitions[i];
            let size = match handle.size_bytes().await {
                Ok(size) => size,
                // Closed under us (deleted): as if it were not there.
                Err(e) => {
                    tracing::debug!(partition = handle.name(), error = %e, "no size");
                    continue;
                }
            };
            let mut p = DescribeLogDirsPartition::default();
            p.partition_index = i as i32;
            p.partition_size = i64::try_from(size).unwrap_or(i64::MAX);
            // Kafka: max(high watermark - log end, 0), which is 0 on the leader.
            p.offset_lag = 0;
            p.is_future_key = false;
            t.partitions.push(p);
        }
        if !t.partitions.is_empty() {
            result.topics.push(t);
        }
    }
    let (total, usable) = volume_bytes(&dir);
    result.total_bytes = total;
    result.usable_bytes = usable;
    result.error_code = ErrorCode::None.code();
    let mut resp = DescribeLogDirsResponse::default();
    resp.results = vec![result];
    resp
}
