//! `cairn cluster status`: the cluster at a glance, from one Metadata answer — brokers, the
//! controller, partition leaders per broker, and the partitions that are under-replicated
//! (fewer in-sync replicas than replicas) or offline (no leader).

use std::collections::BTreeMap;

use super::cluster::{metadata_request, topic_infos, Cluster};
use super::ClientArgs;

/// Prints the status.
pub(crate) async fn run(client: &ClientArgs) -> anyhow::Result<()> {
    let mut cluster = Cluster::connect(client).await?;
    let response = cluster
        .admin()
        .call(|version| metadata_request(version, None))
        .await?;
    let cluster_id = response
        .cluster_id
        .as_ref()
        .map_or_else(|| "-".to_string(), |c| c.to_string());
    let controller = response.controller_id.0;
    let mut brokers: Vec<(i32, String)> = response
        .brokers
        .iter()
        .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
        .collect();
    brokers.sort();
    let topics = topic_infos(response);
    println!("cluster {cluster_id}");
    println!(
        "controller: {}",
        if controller >= 0 {
            format!("node {controller}")
        } else {
            "none (no metadata quorum leader)".to_string()
        }
    );
    let mut led: BTreeMap<i32, usize> = BTreeMap::new();
    let mut under = Vec::new();
    let mut offline = Vec::new();
    let mut total = 0usize;
    for t in &topics {
        for p in &t.partitions {
            total += 1;
            if p.leader < 0 {
                offline.push(format!("{}-{}", t.name, p.index));
                continue;
            }
            *led.entry(p.leader).or_default() += 1;
            if p.isr.len() < p.replicas.len() {
                under.push(format!(
                    "{}-{} (leader {}, replicas {:?}, in sync {:?})",
                    t.name, p.index, p.leader, p.replicas, p.isr
                ));
            }
        }
    }
    println!("brokers ({}):", brokers.len());
    for (id, addr) in &brokers {
        let role = if *id == controller {
            ", controller"
        } else {
            ""
        };
        println!(
            "  node {id} at {addr}: leads {} partition(s){role}",
            led.get(id).copied().unwrap_or(0)
        );
    }
    println!(
        "topics: {}, partitions: {total}, under-replicated: {}, offline: {}",
        topics.len(),
        under.len(),
        offline.len()
    );
    for p in &under {
        println!("  under-replicated: {p}");
    }
    for p in &offline {
        println!("  offline: {p}");
    }
    Ok(())
}
