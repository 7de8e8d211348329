//! A node of a multi-node cluster: the node-to-node transport, the routing of raft messages
//! to partitions, what nodes tell each other (their Kafka endpoints, that they are alive),
//! and the metadata quorum (`metadata`).
//!
//! ```text
//!             peers ◄──► Transport ──► router ──► group 0: the metadata replica
//!                                             ├─► group g: the replica of one partition
//!                                             └─► CONTROL: Hello (endpoints, liveness),
//!                                                          Propose / Proposed (to the controller)
//! ```
//!
//! Every node of `controller.quorum.voters` is a voter of the metadata raft group and — in
//! this first version of the cluster — a replica of every partition: a topic's partitions
//! are raft groups whose voters are all the nodes. Raft ids are node ids + 1 (raft reserves
//! 0), and the transport knows nodes by their raft ids. A partition's raft group id is
//! derived from its topic's id and its index ([`group_id`]), so every node routes the same
//! messages to the same replica without asking anyone.
//!
//! A single node (no voters configured) has none of this: its partitions are groups of one.

pub(crate) mod metadata;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use cairn_cluster::{Inbound, PeerRefused, Transport, TransportConfig};
use cairn_partition::{Outbox, PartitionHandle, PartitionSpec, StorageShards};
use cairn_storage::LogConfig;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use uuid::Uuid;

use crate::meta::meta_dir;
use crate::BrokerError;

pub(crate) use metadata::{Image, MetadataRecord, ProposeError};

/// The metadata quorum's raft group.
pub(crate) const METADATA_GROUP: u64 = 0;
/// Node-to-node control messages (not a raft group).
pub(crate) const CONTROL_GROUP: u64 = u64::MAX;
/// How often a node tells its peers it is alive, and where its Kafka listener is.
const HELLO_EVERY: Duration = Duration::from_millis(500);
/// A peer not heard from for this long is left out of Metadata's broker list.
const PEER_TIMEOUT: Duration = Duration::from_secs(6);
/// How often a node offers the partitions it leads to their preferred leaders (Kafka's
/// `leader.imbalance.check.interval.seconds`, shorter: a transfer here costs milliseconds).
const LEADER_BALANCE_EVERY: Duration = Duration::from_secs(5);

/// A cluster's settings (`controller.quorum.voters` and friends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// `controller.quorum.voters`: every node of the cluster by node id, with the address of
    /// its node-to-node listener (`1@host:port,2@host:port,...`).
    pub voters: BTreeMap<i32, SocketAddr>,
    /// Where this node listens for peers; its own entry in `voters` when unset.
    pub listen: Option<SocketAddr>,
    /// `cluster.id`, shared by every node; derived from `voters` when unset.
    pub cluster_id: Option<String>,
}

impl ClusterSettings {
    /// Parses `controller.quorum.voters` (`id@host:port` separated by commas; the hosts
    /// must be IP addresses or names that resolve now).
    pub fn parse_voters(text: &str) -> Result<BTreeMap<i32, SocketAddr>, String> {
        let mut voters = BTreeMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, addr) = entry
                .split_once('@')
                .ok_or_else(|| format!("{entry:?}: expected id@host:port"))?;
            let id: i32 = id
                .trim()
                .parse()
                .ok()
                .filter(|id| (0..i32::MAX).contains(id))
                .ok_or_else(|| format!("{entry:?}: the node id must be a non-negative integer"))?;
            let addr = resolve(addr.trim()).map_err(|e| format!("{entry:?}: {e}"))?;
            if voters.insert(id, addr).is_some() {
                return Err(format!("node {id} is listed twice"));
            }
        }
        if voters.is_empty() {
            return Err("no voters".to_string());
        }
        Ok(voters)
    }

    /// The cluster id every node derives from the same voters (when `cluster.id` is unset):
    /// 16 bytes of two FNV-1a hashes of the canonical voter list, base64url (22 characters,
    /// like Kafka's). Stable across releases, unlike the standard library's hasher.
    pub fn derived_cluster_id(&self) -> String {
        let canonical: String = self
            .voters
            .iter()
            .map(|(id, addr)| format!("{id}@{addr},"))
            .collect();
        let fnv = |seed: u64| {
            canonical.bytes().fold(seed, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
            })
        };
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&fnv(0xcbf2_9ce4_8422_2325).to_be_bytes());
        bytes[8..].copy_from_slice(&fnv(0x6c62_272e_07bb_0142).to_be_bytes());
        crate::meta::base64_url(&bytes)
    }
}

fn resolve(addr: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    addr.to_socket_addrs()
        .map_err(|e| format!("cannot resolve {addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr} resolves to nothing"))
}

/// A node's raft id (raft reserves 0).
pub(crate) fn raft_id(node_id: i32) -> u64 {
    u64::try_from(node_id).unwrap_or(0) + 1
}

/// The node id of a raft id.
pub(crate) fn node_id(raft_id: u64) -> i32 {
    i32::try_from(raft_id.saturating_sub(1)).unwrap_or(-1)
}

/// The raft group of partition `partition` of the topic with id `topic`: the same on every
/// node. 64 bits of a random v4 UUID plus the index: two partitions collide only if two
/// topics' ids fall within 10,000 of each other in 2^64.
pub(crate) fn group_id(topic: Uuid, partition: i32) -> u64 {
    let mut high = [0u8; 8];
    high.copy_from_slice(&topic.as_bytes()[..8]);
    let g = u64::from_be_bytes(high).wrapping_add(u64::try_from(partition).unwrap_or(0));
    match g {
        METADATA_GROUP | CONTROL_GROUP => g ^ 2,
        g => g,
    }
}

/// What nodes say to each other outside raft (JSON in the CONTROL group).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Control {
    /// "I am alive, and clients reach me here" (every [`HELLO_EVERY`]).
    Hello {
        node_id: i32,
        host: String,
        port: u16,
    },
    /// A metadata change for the controller to commit.
    Propose { id: u64, record: MetadataRecord },
    /// The controller's answer: the change's offset in the metadata log, or why not.
    Proposed {
        id: u64,
        result: Result<u64, ProposeError>,
    },
    /// "Which consumer groups do you coordinate?" (a cluster-wide group list: the console).
    GroupsAsk { id: u64 },
    /// The answer: the groups as the node's `/v1/status` shows them (a JSON array).
    Groups { id: u64, groups: serde_json::Value },
}

/// What a node answers [`Control::GroupsAsk`] with: its own groups, as JSON.
pub(crate) type GroupSource = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// The node's [`GroupSource`], set once the node exists (the cluster starts before it).
#[derive(Default)]
struct GroupSourceSlot(std::sync::OnceLock<GroupSource>);

impl std::fmt::Debug for GroupSourceSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "GroupSource(set)"
        } else {
            "GroupSource(unset)"
        })
    }
}

/// A peer as its Hellos describe it.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) host: String,
    pub(crate) port: u16,
    seen: Instant,
}

/// The raft groups of this node's replicas, for the router.
#[derive(Debug, Default)]
pub(crate) struct Routes {
    groups: RwLock<HashMap<u64, PartitionHandle>>,
}

impl Routes {
    pub(crate) fn insert(&self, group: u64, handle: PartitionHandle) {
        if let Ok(mut g) = self.groups.write() {
            g.insert(group, handle);
        }
    }

    pub(crate) fn remove(&self, group: u64) {
        if let Ok(mut g) = self.groups.write() {
            g.remove(&group);
        }
    }

    fn get(&self, group: u64) -> Option<PartitionHandle> {
        self.groups.read().ok()?.get(&group).cloned()
    }

    fn all(&self) -> Vec<PartitionHandle> {
        self.groups
            .read()
            .map(|g| g.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// This node's part of the cluster.
#[derive(Debug)]
pub(crate) struct Cluster {
    pub(crate) node_id: i32,
    /// This node's raft id.
    pub(crate) me: u64,
    /// Every node's raft id, ascending: the voters of every group.
    pub(crate) voters: Vec<u64>,
    transport: Arc<Transport>,
    routes: Arc<Routes>,
    peers: Mutex<HashMap<i32, Peer>>,
    advertise: (String, u16),
    /// The metadata quorum's replica on this node.
    pub(crate) metadata: PartitionHandle,
    /// The metadata image and what has been applied of the log.
    pub(crate) image: RwLock<Image>,
    /// Offset after the last metadata record applied on this node.
    applied: watch::Sender<u64>,
    next_rpc: AtomicU64,
    rpcs: Mutex<HashMap<u64, oneshot::Sender<Result<u64, ProposeError>>>>,
    /// Serialises proposals on the controller (check against the image, then append).
    proposing: tokio::sync::Mutex<()>,
    group_source: GroupSourceSlot,
    /// Peers' answers awaited by [`Cluster::peer_groups`], by request id.
    group_asks: Mutex<HashMap<u64, oneshot::Sender<serde_json::Value>>>,
}

/// The raft ids of partition `partition` of topic `topic` in Kafka's replica order: the
/// first is the preferred leader, the one that should lead whenever it is in sync. The
/// voters in ascending order, rotated to start at a place derived from the topic id and
/// moving one node per partition, so the leaders of a topic's partitions (and of all topics)
/// spread evenly, as Kafka's preferred replicas do. `voters` must be sorted.
pub(crate) fn replica_order(voters: &[u64], topic: Uuid, partition: i32) -> Vec<u64> {
    if voters.is_empty() {
        return Vec::new();
    }
    let n = voters.len() as u128;
    let start = ((topic.as_u128() % n + partition.max(0) as u128) % n) as usize;
    voters[start..]
        .iter()
        .chain(&voters[..start])
        .copied()
        .collect()
}

/// The preferred leader: the first of [`replica_order`].
pub(crate) fn preferred_leader(voters: &[u64], topic: Uuid, partition: i32) -> Option<u64> {
    replica_order(voters, topic, partition).first().copied()
}

/// Leader balancing: every [`LEADER_BALANCE_EVERY`], each partition this node leads whose
/// preferred leader is another node holding every committed entry is handed to it (raft
/// leader transfer, refused by the partition if that node lags). Without it, leaders pile
/// up on whichever nodes stayed up through restarts.
pub(crate) async fn balance_leaders(
    node: Arc<crate::node::Node>,
    cluster: Arc<Cluster>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut voters = cluster.voters.clone();
    voters.sort_unstable();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(LEADER_BALANCE_EVERY) => {}
            _ = shutdown.changed() => return,
        }
        let mut moved = 0usize;
        for topic in node.topics.list() {
            for (p, handle) in topic.partitions.iter().enumerate() {
                if !handle.state().is_leader {
                    continue;
                }
                let Some(preferred) = preferred_leader(&voters, topic.id, p as i32) else {
                    continue;
                };
                if preferred == cluster.me {
                    continue;
                }
                if !handle.replicas().in_sync.contains(&preferred) {
                    tracing::debug!(
                        partition = handle.name(),
                        preferred,
                        "preferred leader not in sync"
                    );
                    continue;
                }
                match handle.transfer_leadership(Some(preferred)).await {
                    Ok(Some(_)) => moved += 1,
                    other => tracing::debug!(
                        partition = handle.name(),
                        preferred,
                        ?other,
                        "preferred leader not taken"
                    ),
                }
            }
        }
        if moved > 0 {
            tracing::info!(
                partitions = moved,
                "handed partitions to their preferred leaders"
            );
        }
    }
}

impl Cluster {
    /// Starts the transport and opens the metadata replica. Partitions are opened later (by
    /// the topic registry, through [`Cluster::open_replica`]).
    pub(crate) async fn start(
        settings: &ClusterSettings,
        node_id: i32,
        cluster_id: &str,
        advertise: (String, u16),
        data_dir: &std::path::Path,
        shards: &StorageShards,
    ) -> Result<(Arc<Cluster>, mpsc::Receiver<Inbound>), BrokerError> {
        let me = raft_id(node_id);
        let Some(own) = settings.voters.get(&node_id) else {
            return Err(BrokerError::Config(format!(
                "node.id {node_id} is not among controller.quorum.voters ({})",
                settings
                    .voters
                    .keys()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let listen = settings.listen.unwrap_or(*own);
        let peers = settings
            .voters
            .iter()
            .map(|(id, addr)| (raft_id(*id), *addr))
            .collect();
        let config = TransportConfig::new(me, cluster_id, listen, peers);
        let (transport, inbound) = Transport::start(config)
            .await
            .map_err(|e| BrokerError::Config(e.to_string()))?;
        let transport = Arc::new(transport);
        let voters: Vec<u64> = settings.voters.keys().map(|id| raft_id(*id)).collect();
        let routes = Arc::new(Routes::default());
        let metadata = open_replicated(
            shards,
            &transport,
            &routes,
            PartitionSpec {
                name: "__cluster_metadata-0".to_string(),
                dir: meta_dir(data_dir).join("cluster-metadata"),
                log: metadata_log_config(),
                node_id: me,
                voters: voters.clone(),
            },
            METADATA_GROUP,
        )
        .await
        .map_err(|e| BrokerError::Config(format!("cannot open the metadata log: {e}")))?;
        tracing::info!(
            node_id,
            %listen,
            voters = ?settings.voters,
            "cluster node started; metadata quorum of {} voters",
            voters.len()
        );
        let (applied, _) = watch::channel(0);
        Ok((
            Arc::new(Cluster {
                node_id,
                me,
                voters,
                transport,
                routes,
                peers: Mutex::new(HashMap::new()),
                advertise,
                metadata,
                image: RwLock::new(Image::default()),
                applied,
                next_rpc: AtomicU64::new(1),
                rpcs: Mutex::new(HashMap::new()),
                proposing: tokio::sync::Mutex::new(()),
                group_source: GroupSourceSlot::default(),
                group_asks: Mutex::new(HashMap::new()),
            }),
            inbound,
        ))
    }

    /// Opens a replica of one partition of a replicated topic (every node is a voter).
    pub(crate) async fn open_replica(
        &self,
        shards: &StorageShards,
        name: String,
        dir: std::path::PathBuf,
        log: LogConfig,
        topic: Uuid,
        partition: i32,
    ) -> Result<PartitionHandle, cairn_partition::PartitionError> {
        let mut voters = self.voters.clone();
        voters.sort_unstable();
        let spec = PartitionSpec {
            name,
            dir,
            log,
            node_id: self.me,
            // The preferred leader first: a new group elects it first.
            voters: replica_order(&voters, topic, partition),
        };
        let group = group_id(topic, partition);
        open_replicated(shards, &self.transport, &self.routes, spec, group).await
    }

    /// A replica closed or deleted: raft messages for its group are dropped from now on.
    pub(crate) fn forget_replica(&self, group: u64) {
        self.routes.remove(group);
    }

    /// Closes the metadata replica and forgets every route (the node is stopping; its
    /// partitions are closed by the topic registry).
    /// Graceful shutdown: hands every leadership this node holds (the metadata partition's
    /// and `partitions`') to a caught-up follower, as Kafka's controlled shutdown moves
    /// leaders away first, and waits until it leads nothing or `limit` has passed. Clients
    /// meanwhile get NOT_LEADER_OR_FOLLOWER (retriable) and find the new leaders.
    pub(crate) async fn hand_off_leaderships(
        &self,
        partitions: Vec<PartitionHandle>,
        limit: std::time::Duration,
    ) {
        let started = tokio::time::Instant::now();
        let mut all = partitions;
        all.push(self.metadata.clone());
        let mut asked = 0usize;
        loop {
            let leading: Vec<&PartitionHandle> =
                all.iter().filter(|h| h.state().is_leader).collect();
            if leading.is_empty() {
                tracing::info!(
                    partitions = asked,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "handed every leadership over"
                );
                return;
            }
            if started.elapsed() >= limit {
                tracing::warn!(
                    still_leading = leading.len(),
                    "leaderships not handed over in time; they move after an election timeout"
                );
                return;
            }
            for h in &leading {
                // Asked again each round: raft gives a transfer up after an election
                // timeout, and a repeated request to the same follower changes nothing.
                if let Ok(Some(_)) = h.transfer_leadership(None).await {
                    asked += 1;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    pub(crate) async fn close(&self) {
        if let Err(e) = self.metadata.close().await {
            tracing::warn!(error = %e, "closing the metadata log");
        }
        if let Ok(mut g) = self.routes.groups.write() {
            g.clear();
        }
    }

    /// The controller: the node leading the metadata quorum, if known.
    pub(crate) fn controller(&self) -> Option<i32> {
        let s = self.metadata.state();
        (s.leader_id != 0).then(|| node_id(s.leader_id))
    }

    /// The nodes clients can use now: this one, and every peer heard from recently, with
    /// their Kafka endpoints, by node id.
    pub(crate) fn live_brokers(&self) -> Vec<(i32, String, u16)> {
        let mut out = vec![(self.node_id, self.advertise.0.clone(), self.advertise.1)];
        if let Ok(peers) = self.peers.lock() {
            for (id, p) in peers.iter() {
                if p.seen.elapsed() < PEER_TIMEOUT {
                    out.push((*id, p.host.clone(), p.port));
                }
            }
        }
        out.sort();
        out
    }

    /// Sets what this node tells peers about its consumer groups (once; later calls are
    /// ignored).
    pub(crate) fn set_group_source(&self, source: GroupSource) {
        let _ = self.group_source.0.set(source);
    }

    /// The consumer groups every live peer coordinates, as each answered within `wait` (a
    /// peer that does not answer in time is left out): JSON objects, in no particular order.
    pub(crate) async fn peer_groups(&self, wait: Duration) -> Vec<serde_json::Value> {
        let peers: Vec<i32> = self
            .live_brokers()
            .into_iter()
            .map(|(id, _, _)| id)
            .filter(|id| *id != self.node_id)
            .collect();
        let mut waiting = Vec::with_capacity(peers.len());
        for peer in peers {
            let id = self.next_rpc.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = oneshot::channel();
            if let Ok(mut asks) = self.group_asks.lock() {
                asks.insert(id, tx);
            }
            self.send_control(raft_id(peer), &Control::GroupsAsk { id });
            waiting.push((id, rx));
        }
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = Vec::new();
        for (id, rx) in waiting {
            if let Ok(Ok(serde_json::Value::Array(groups))) =
                tokio::time::timeout_at(deadline, rx).await
            {
                out.extend(groups);
            }
            if let Ok(mut asks) = self.group_asks.lock() {
                asks.remove(&id);
            }
        }
        out
    }

    /// Whether node `id` is this one or a peer heard from recently.
    pub(crate) fn is_live(&self, id: i32) -> bool {
        id == self.node_id
            || self
                .peers
                .lock()
                .ok()
                .and_then(|p| p.get(&id).map(|p| p.seen.elapsed() < PEER_TIMEOUT))
                .unwrap_or(false)
    }

    /// Starts the router of inbound messages and the Hellos; both end at shutdown.
    pub(crate) fn spawn_tasks(
        self: &Arc<Self>,
        mut inbound: mpsc::Receiver<Inbound>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let router = Arc::clone(self);
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let m = tokio::select! {
                    m = inbound.recv() => m,
                    _ = stop.changed() => return,
                };
                let Some(m) = m else { return };
                if m.group == CONTROL_GROUP {
                    router.control(m.from, &m.message);
                } else if let Some(h) = router.routes.get(m.group) {
                    h.step(m.message);
                }
            }
        });
        // A peer whose port refuses connections is down: its followers campaign early.
        let mut refused = self.transport.refused_peers();
        let routes = Arc::clone(&self.routes);
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    e = refused.recv() => e,
                    _ = stop.changed() => return,
                };
                match event {
                    Ok(PeerRefused { peer }) => {
                        for h in routes.all() {
                            h.peer_down(peer);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        let hello = Arc::clone(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(HELLO_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    _ = shutdown.changed() => return,
                }
                let message = Control::Hello {
                    node_id: hello.node_id,
                    host: hello.advertise.0.clone(),
                    port: hello.advertise.1,
                };
                for to in hello.voters.iter().copied().filter(|v| *v != hello.me) {
                    hello.send_control(to, &message);
                }
            }
        });
    }

    fn send_control(&self, to: u64, message: &Control) {
        match serde_json::to_vec(message) {
            Ok(bytes) => {
                self.transport.send(to, CONTROL_GROUP, bytes);
            }
            Err(e) => tracing::error!(error = %e, "cannot encode a control message"),
        }
    }

    fn control(self: &Arc<Self>, from: u64, bytes: &[u8]) {
        let message: Control = match serde_json::from_slice(bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(from, error = %e, "dropping an undecodable control message");
                return;
            }
        };
        match message {
            Control::Hello {
                node_id,
                host,
                port,
            } => {
                if raft_id(node_id) != from {
                    tracing::warn!(from, node_id, "a Hello names another node; ignored");
                    return;
                }
                if let Ok(mut peers) = self.peers.lock() {
                    let fresh = !peers.contains_key(&node_id);
                    peers.insert(
                        node_id,
                        Peer {
                            host,
                            port,
                            seen: Instant::now(),
                        },
                    );
                    if fresh {
                        tracing::info!(node_id, "peer is up");
                    }
                }
            }
            Control::Propose { id, record } => {
                let cluster = Arc::clone(self);
                tokio::spawn(async move {
                    let result = cluster.propose_here(record).await;
                    cluster.send_control(from, &Control::Proposed { id, result });
                });
            }
            Control::Proposed { id, result } => {
                let waiting = self.rpcs.lock().ok().and_then(|mut r| r.remove(&id));
                if let Some(tx) = waiting {
                    let _ = tx.send(result);
                }
            }
            Control::GroupsAsk { id } => {
                let groups = self
                    .group_source
                    .0
                    .get()
                    .map_or_else(|| serde_json::Value::Array(Vec::new()), |source| source());
                self.send_control(from, &Control::Groups { id, groups });
            }
            Control::Groups { id, groups } => {
                let waiting = self.group_asks.lock().ok().and_then(|mut a| a.remove(&id));
                if let Some(tx) = waiting {
                    let _ = tx.send(groups);
                }
            }
        }
    }

    /// Hands `record` to the controller (this node, or over the transport) and returns once
    /// it is committed and applied on this node too.
    pub(crate) async fn propose(
        self: &Arc<Self>,
        record: MetadataRecord,
    ) -> Result<(), ProposeError> {
        const TIMEOUT: Duration = Duration::from_secs(15);
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let offset = loop {
            let state = self.metadata.state();
            let attempt = if state.is_leader {
                self.propose_here(record.clone()).await
            } else if state.leader_id != 0 {
                self.propose_remote(state.leader_id, record.clone(), deadline)
                    .await
            } else {
                Err(ProposeError::no_controller())
            };
            match attempt {
                Ok(offset) => break offset,
                Err(e) if e.retriable() && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e),
            }
        };
        self.wait_applied(offset + 1, deadline).await
    }

    async fn propose_remote(
        &self,
        leader: u64,
        record: MetadataRecord,
        deadline: tokio::time::Instant,
    ) -> Result<u64, ProposeError> {
        let id = self.next_rpc.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut r) = self.rpcs.lock() {
            r.insert(id, tx);
        }
        self.send_control(leader, &Control::Propose { id, record });
        // A lost message or a controller that changed: give up on this attempt after a
        // while and ask again (the caller retries).
        let wait = tokio::time::timeout_at(
            deadline.min(tokio::time::Instant::now() + Duration::from_secs(3)),
            rx,
        )
        .await;
        if let Ok(mut r) = self.rpcs.lock() {
            r.remove(&id);
        }
        match wait {
            Ok(Ok(result)) => result,
            _ => Err(ProposeError::no_controller()),
        }
    }

    /// Waits until this node applied the metadata log up to `offset` (exclusive).
    async fn wait_applied(
        &self,
        offset: u64,
        deadline: tokio::time::Instant,
    ) -> Result<(), ProposeError> {
        let mut applied = self.applied.subscribe();
        let reached = tokio::time::timeout_at(deadline, async {
            applied.wait_for(|a| *a >= offset).await.is_ok()
        })
        .await;
        match reached {
            Ok(true) => Ok(()),
            _ => Err(ProposeError::timeout(
                "the change committed but this node has not applied it yet",
            )),
        }
    }
}

/// The metadata log keeps everything (no retention: it is the cluster's history).
fn metadata_log_config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 20,
        retention_ms: None,
        retention_bytes: None,
        ..LogConfig::default()
    }
}

async fn open_replicated(
    shards: &StorageShards,
    transport: &Arc<Transport>,
    routes: &Arc<Routes>,
    spec: PartitionSpec,
    group: u64,
) -> Result<PartitionHandle, cairn_partition::PartitionError> {
    let t = Arc::clone(transport);
    let outbox: Outbox = Arc::new(move |to, bytes| {
        t.send(to, group, bytes);
    });
    let handle = PartitionHandle::open_replicated(shards, spec, Some(outbox)).await?;
    routes.insert(group, handle.clone());
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voters_parse_and_derive_one_cluster_id() {
        let v =
            ClusterSettings::parse_voters("1@127.0.0.1:19091, 2@127.0.0.1:19092,3@127.0.0.1:19093")
                .expect("valid");
        assert_eq!(v.len(), 3);
        assert_eq!(v[&2], "127.0.0.1:19092".parse().expect("addr"));
        for bad in [
            "",
            "x@127.0.0.1:1",
            "1@",
            "1@127.0.0.1:1,1@127.0.0.1:2",
            "-1@127.0.0.1:1",
        ] {
            assert!(ClusterSettings::parse_voters(bad).is_err(), "{bad}");
        }
        let a = ClusterSettings {
            voters: v.clone(),
            listen: None,
            cluster_id: None,
        };
        let b = ClusterSettings {
            voters: v,
            listen: Some("0.0.0.0:1".parse().expect("addr")),
            cluster_id: None,
        };
        assert_eq!(a.derived_cluster_id(), b.derived_cluster_id());
        assert_eq!(a.derived_cluster_id().len(), 22);
    }

    #[test]
    fn preferred_leaders_spread_evenly() {
        let voters = [2, 3, 4];
        let t = Uuid::from_u128(7);
        // 7 % 3 = 1: partition 0 starts at the second voter, then one further each.
        let leaders: Vec<u64> = (0..6)
            .filter_map(|p| preferred_leader(&voters, t, p))
            .collect();
        assert_eq!(leaders, vec![3, 4, 2, 3, 4, 2]);
        let mut per_node = std::collections::HashMap::new();
        for topic in 0..100u128 {
            for p in 0..3 {
                let l = preferred_leader(&voters, Uuid::from_u128(topic * 7919), p).expect("one");
                *per_node.entry(l).or_insert(0) += 1;
            }
        }
        assert_eq!(
            per_node.values().copied().collect::<Vec<i32>>(),
            vec![100; 3]
        );
        assert_eq!(preferred_leader(&[], t, 0), None);
        assert_eq!(replica_order(&voters, t, 0), vec![3, 4, 2]);
        assert_eq!(replica_order(&voters, t, 2), vec![2, 3, 4]);
    }

    #[test]
    fn group_ids_are_stable_and_never_reserved() {
        let t = Uuid::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        assert_eq!(group_id(t, 3), 0x0123_4567_89ab_cdef + 3);
        assert_ne!(group_id(t, 0), group_id(t, 1));
        let zero = Uuid::from_u128(0);
        assert_ne!(group_id(zero, 0), METADATA_GROUP);
        let max = Uuid::from_u128(u128::MAX);
        assert_ne!(group_id(max, 0), CONTROL_GROUP);
    }
}
