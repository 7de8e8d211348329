//! Broker-wide metadata under `<data_dir>/.cairn/`: the cluster id and the producer-id
//! allocator. Small files replaced atomically (`cairn_storage::metafile`).
//!
//! ```text
//! .cairn/cluster        cairn-cluster 1 / cluster_id <22 chars> / node_id <i32>
//! .cairn/producer-ids   cairn-producer-ids 1 / next_block <i64>
//! .cairn/topics/<name>  see crate::topics
//! ```

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cairn_storage::{durable, metafile};

use crate::BrokerError;

/// Producer ids are handed out from blocks of this many, and the end of the current block is
/// persisted before its first id is used, so a restart never reuses an id.
const PRODUCER_ID_BLOCK: i64 = 1000;

/// Directory of the broker's own metadata.
pub(crate) fn meta_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(".cairn")
}

/// The cluster id, created on first start: `wanted` (a cluster's, which every node shares),
/// or 16 random bytes, URL-safe base64 without padding (22 characters), like Kafka's. A data
/// directory of another cluster is refused.
pub(crate) fn cluster_id(
    data_dir: &Path,
    node_id: i32,
    wanted: Option<&str>,
) -> Result<String, BrokerError> {
    let dir = meta_dir(data_dir);
    // Durably: a power cut that took `.cairn` would take every topic with it.
    durable::ensure_dir(&dir)?;
    if let Some(lines) = metafile::read(&dir, "cluster")? {
        if let [magic, id, node] = lines.as_slice() {
            if magic == "cairn-cluster 1" {
                if let (Some(id), Some(stored)) = (
                    id.strip_prefix("cluster_id "),
                    node.strip_prefix("node_id ")
                        .and_then(|n| n.parse::<i32>().ok()),
                ) {
                    if stored != node_id {
                        return Err(BrokerError::Config(format!(
                            "data directory {} belongs to node {stored}, not {node_id}",
                            data_dir.display()
                        )));
                    }
                    if let Some(wanted) = wanted.filter(|w| *w != id) {
                        return Err(BrokerError::Config(format!(
                            "data directory {} belongs to cluster {id}, not {wanted}",
                            data_dir.display()
                        )));
                    }
                    return Ok(id.to_string());
                }
            }
        }
        return Err(BrokerError::Config(format!(
            "unreadable cluster metadata in {}",
            dir.display()
        )));
    }
    let id = match wanted {
        Some(w) => w.to_string(),
        None => base64_url(uuid::Uuid::new_v4().as_bytes()),
    };
    metafile::write(
        &dir,
        "cluster",
        &format!("cairn-cluster 1\ncluster_id {id}\nnode_id {node_id}\n"),
    )?;
    Ok(id)
}

pub(crate) fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    let mut bits = 0u32;
    let mut nbits = 0;
    for &b in bytes {
        bits = (bits << 8) | b as u32;
        nbits += 8;
        while nbits >= 6 {
            nbits -= 6;
            out.push(ALPHABET[((bits >> nbits) & 63) as usize] as char);
        }
    }
    if nbits > 0 {
        out.push(ALPHABET[((bits << (6 - nbits)) & 63) as usize] as char);
    }
    out
}

/// Hands out producer ids (InitProducerId), never the same twice across restarts.
#[derive(Debug)]
pub(crate) struct ProducerIds {
    dir: PathBuf,
    /// Next id to hand out and the end (exclusive) of the persisted block.
    next: Mutex<(i64, i64)>,
    /// Added to every id: 0 on a single node; in a cluster `(node.id + 1) << 40`, so nodes
    /// hand out disjoint ranges without asking each other (a producer id is only ever
    /// compared for equality, by every replica of the partitions it writes to).
    base: i64,
}

/// Bits of a clustered producer id that count; the node's range starts above them.
const PRODUCER_ID_COUNTER_BITS: u32 = 40;

/// The largest `node.id` a cluster member may have: its producer-id range must fit an i64.
pub(crate) const MAX_CLUSTER_NODE_ID: i32 = (1 << (62 - PRODUCER_ID_COUNTER_BITS)) - 2;

impl ProducerIds {
    /// The allocator of a node; `cluster_node` is `Some(node.id)` in a cluster.
    pub(crate) fn open(
        data_dir: &Path,
        cluster_node: Option<i32>,
    ) -> Result<ProducerIds, BrokerError> {
        let base = match cluster_node {
            None => 0,
            Some(node) if (0..=MAX_CLUSTER_NODE_ID).contains(&node) => {
                (i64::from(node) + 1) << PRODUCER_ID_COUNTER_BITS
            }
            Some(node) => {
                return Err(BrokerError::Config(format!(
                    "node.id {node} is too large for a cluster (at most {MAX_CLUSTER_NODE_ID})"
                )))
            }
        };
        let dir = meta_dir(data_dir);
        let start = match metafile::read(&dir, "producer-ids")? {
            Some(lines) => match lines.as_slice() {
                [magic, next] if magic == "cairn-producer-ids 1" => next
                    .strip_prefix("next_block ")
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| BrokerError::Config("unreadable producer-ids file".into()))?,
                _ => return Err(BrokerError::Config("unreadable producer-ids file".into())),
            },
            None => 0,
        };
        Ok(ProducerIds {
            dir,
            next: Mutex::new((start, start)),
            base,
        })
    }

    /// A fresh producer id.
    pub(crate) fn allocate(&self) -> Result<i64, BrokerError> {
        let mut next = self
            .next
            .lock()
            .map_err(|_| BrokerError::Config("producer id allocator poisoned".into()))?;
        if next.0 >= next.1 {
            let end = next.0 + PRODUCER_ID_BLOCK;
            metafile::write(
                &self.dir,
                "producer-ids",
                &format!("cairn-producer-ids 1\nnext_block {end}\n"),
            )?;
            next.1 = end;
        }
        let id = next.0;
        next.0 += 1;
        Ok(self.base + id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_id_is_stable_and_producer_ids_never_repeat() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = cluster_id(dir.path(), 1, None).expect("create");
        assert_eq!(id.len(), 22);
        assert_eq!(cluster_id(dir.path(), 1, None).expect("reread"), id);
        assert_eq!(
            cluster_id(dir.path(), 1, Some(&id)).expect("same cluster"),
            id
        );
        assert!(
            cluster_id(dir.path(), 2, None).is_err(),
            "another node's directory"
        );
        assert!(
            cluster_id(dir.path(), 1, Some("another-cluster")).is_err(),
            "another cluster's directory"
        );
        let fresh = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            cluster_id(fresh.path(), 3, Some("shared-id")).expect("create"),
            "shared-id",
            "a cluster's nodes share the id they were given"
        );
        let ids = ProducerIds::open(dir.path(), None).expect("open");
        let a: Vec<i64> = (0..3).map(|_| ids.allocate().expect("id")).collect();
        assert_eq!(a, vec![0, 1, 2]);
        let ids = ProducerIds::open(dir.path(), None).expect("reopen");
        assert!(
            ids.allocate().expect("id") >= 1000,
            "a restart starts a new block"
        );
        // In a cluster every node has its own range.
        let other = tempfile::tempdir().expect("tempdir");
        cluster_id(other.path(), 0, None).expect("a second node's directory");
        let n0 = ProducerIds::open(other.path(), Some(0)).expect("node 0");
        let n1 = ProducerIds::open(dir.path(), Some(1)).expect("node 1");
        let (a, b) = (n0.allocate().expect("id"), n1.allocate().expect("id"));
        assert_eq!(a, 1 << 40);
        assert!((2 << 40..3 << 40).contains(&b), "{b}");
        assert!(ProducerIds::open(dir.path(), Some(MAX_CLUSTER_NODE_ID + 1)).is_err());
    }
}
