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

/// The cluster id, created on first start: 16 random bytes, URL-safe base64 without padding
/// (22 characters), like Kafka's.
pub(crate) fn cluster_id(data_dir: &Path, node_id: i32) -> Result<String, BrokerError> {
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
                    return Ok(id.to_string());
                }
            }
        }
        return Err(BrokerError::Config(format!(
            "unreadable cluster metadata in {}",
            dir.display()
        )));
    }
    let id = base64_url(uuid::Uuid::new_v4().as_bytes());
    metafile::write(
        &dir,
        "cluster",
        &format!("cairn-cluster 1\ncluster_id {id}\nnode_id {node_id}\n"),
    )?;
    Ok(id)
}

fn base64_url(bytes: &[u8]) -> String {
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
}

impl ProducerIds {
    pub(crate) fn open(data_dir: &Path) -> Result<ProducerIds, BrokerError> {
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
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_id_is_stable_and_producer_ids_never_repeat() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = cluster_id(dir.path(), 1).expect("create");
        assert_eq!(id.len(), 22);
        assert_eq!(cluster_id(dir.path(), 1).expect("reread"), id);
        assert!(
            cluster_id(dir.path(), 2).is_err(),
            "another node's directory"
        );
        let ids = ProducerIds::open(dir.path()).expect("open");
        let a: Vec<i64> = (0..3).map(|_| ids.allocate().expect("id")).collect();
        assert_eq!(a, vec![0, 1, 2]);
        let ids = ProducerIds::open(dir.path()).expect("reopen");
        assert!(
            ids.allocate().expect("id") >= 1000,
            "a restart starts a new block"
        );
    }
}
