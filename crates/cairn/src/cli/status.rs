//! `cairn cluster info|health`: the cluster at a glance, from one Metadata answer — brokers,
//! the controller, partition leaders per broker, and the partitions that are
//! under-replicated (fewer in-sync replicas than replicas) or offline (no leader).
//!
//! `health` judges: healthy when there is a controller, every node named as a replica is
//! among the live brokers, and no partition is offline or under-replicated. It exits
//! non-zero when not, so scripts and probes can use it (`cairn cluster health && deploy`).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::bail;

use super::cluster::{metadata_request, topic_infos, Cluster};
use super::ClientArgs;

/// What one Metadata answer says about the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    pub cluster_id: String,
    /// -1: none.
    pub controller: i32,
    /// Live brokers: (node id, host:port), ascending.
    pub brokers: Vec<(i32, String)>,
    /// Partitions each broker leads.
    pub led: BTreeMap<i32, usize>,
    pub topics: usize,
    pub partitions: usize,
    pub under_replicated: Vec<String>,
    pub offline: Vec<String>,
    /// Nodes named as replicas that are not among the live brokers.
    pub down: Vec<i32>,
}

async fn summary(client: &ClientArgs) -> anyhow::Result<Summary> {
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
    let live: BTreeSet<i32> = brokers.iter().map(|(id, _)| *id).collect();
    let topics = topic_infos(response);
    let mut s = Summary {
        cluster_id,
        controller,
        brokers,
        led: BTreeMap::new(),
        topics: topics.len(),
        partitions: 0,
        under_replicated: Vec::new(),
        offline: Vec::new(),
        down: Vec::new(),
    };
    let mut down = BTreeSet::new();
    for t in &topics {
        for p in &t.partitions {
            s.partitions += 1;
            down.extend(p.replicas.iter().filter(|r| !live.contains(r)));
            if p.leader < 0 {
                s.offline.push(format!("{}-{}", t.name, p.index));
                continue;
            }
            *s.led.entry(p.leader).or_default() += 1;
            if p.isr.len() < p.replicas.len() {
                s.under_replicated.push(format!(
                    "{}-{} (leader {}, replicas {:?}, in sync {:?})",
                    t.name, p.index, p.leader, p.replicas, p.isr
                ));
            }
        }
    }
    s.down = down.into_iter().collect();
    Ok(s)
}

/// `cluster info`: prints the summary.
pub(crate) async fn info(client: &ClientArgs) -> anyhow::Result<()> {
    print!("{}", format_info(&summary(client).await?));
    Ok(())
}

/// `cluster health`: prints the verdict and its reasons; an error when unhealthy.
pub(crate) async fn health(client: &ClientArgs) -> anyhow::Result<()> {
    let s = summary(client).await?;
    let problems = problems(&s);
    println!(
        "healthy: {}",
        if problems.is_empty() { "yes" } else { "no" }
    );
    println!(
        "controller: {}",
        if s.controller >= 0 {
            s.controller.to_string()
        } else {
            "none".to_string()
        }
    );
    println!(
        "live brokers: {:?}",
        s.brokers.iter().map(|(id, _)| *id).collect::<Vec<_>>()
    );
    println!("down brokers: {:?}", s.down);
    println!("offline partitions: {}", s.offline.len());
    println!("under-replicated partitions: {}", s.under_replicated.len());
    if !problems.is_empty() {
        bail!("the cluster is unhealthy: {}", problems.join("; "));
    }
    Ok(())
}

/// Why the cluster is not healthy; empty when it is.
pub(crate) fn problems(s: &Summary) -> Vec<String> {
    let mut out = Vec::new();
    if s.controller < 0 {
        out.push("no controller (the metadata quorum has no leader)".to_string());
    }
    if !s.down.is_empty() {
        out.push(format!(
            "node(s) {:?} hold replicas but are not live",
            s.down
        ));
    }
    if !s.offline.is_empty() {
        out.push(format!(
            "{} partition(s) without a leader, e.g. {}",
            s.offline.len(),
            s.offline[0]
        ));
    }
    if !s.under_replicated.is_empty() {
        out.push(format!(
            "{} under-replicated partition(s), e.g. {}",
            s.under_replicated.len(),
            s.under_replicated[0]
        ));
    }
    out
}

pub(crate) fn format_info(s: &Summary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "cluster {}", s.cluster_id);
    let _ = writeln!(
        out,
        "controller: {}",
        if s.controller >= 0 {
            format!("node {}", s.controller)
        } else {
            "none (no metadata quorum leader)".to_string()
        }
    );
    let _ = writeln!(out, "brokers ({}):", s.brokers.len());
    for (id, addr) in &s.brokers {
        let role = if *id == s.controller {
            ", controller"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  node {id} at {addr}: leads {} partition(s){role}",
            s.led.get(id).copied().unwrap_or(0)
        );
    }
    let _ = writeln!(
        out,
        "topics: {}, partitions: {}, under-replicated: {}, offline: {}",
        s.topics,
        s.partitions,
        s.under_replicated.len(),
        s.offline.len()
    );
    for p in &s.under_replicated {
        let _ = writeln!(out, "  under-replicated: {p}");
    }
    for p in &s.offline {
        let _ = writeln!(out, "  offline: {p}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> Summary {
        Summary {
            cluster_id: "c".into(),
            controller: 1,
            brokers: vec![(1, "a:1".into()), (2, "b:2".into())],
            led: BTreeMap::from([(1, 2), (2, 1)]),
            topics: 1,
            partitions: 3,
            under_replicated: Vec::new(),
            offline: Vec::new(),
            down: Vec::new(),
        }
    }

    #[test]
    fn health_names_each_problem() {
        assert!(problems(&healthy()).is_empty());
        let mut s = healthy();
        s.controller = -1;
        s.down = vec![3];
        s.offline = vec!["t-0".into()];
        s.under_replicated = vec!["t-1 (leader 1, replicas [1, 3], in sync [1])".into()];
        let p = problems(&s);
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p[1].contains("[3]") && p[2].contains("t-0") && p[3].contains("t-1"));
        let text = format_info(&s);
        assert!(
            text.contains("controller: none") && text.contains("offline: t-0"),
            "{text}"
        );
    }
}
