//! The broker's side of consumer groups: the sans-I/O [`Coordinator`] behind a lock, the
//! clock and timer that drive it, and the `__consumer_offsets` topic that makes it durable.
//!
//! ```text
//! JoinGroup/SyncGroup ─► Groups::join/sync ─► Coordinator (answer later, by token) ─┐
//! Heartbeat/LeaveGroup/... ─► Coordinator (answer now)                             │
//! timer task: tick() at next_deadline() ─► expired sessions, finished rebalances ──┤
//!                                   outputs ◄─────────────────────────────────────┘
//!   Join/Sync answers ─► the waiting request       StoreGroup ─► writer task ─► __consumer_offsets
//! OffsetCommit: validate ─► append records (acks=all) ─► apply   (acknowledged = durable)
//! startup: replay every __consumer_offsets partition into the Coordinator before serving
//! cluster: a partition's groups are loaded when this node becomes its confirmed leader,
//!          unloaded when it stops leading it (`Groups::check` answers NOT_COORDINATOR)
//! ```
//!
//! Records use Kafka's own `__consumer_offsets` layouts (`cairn_groups::records`); a group's
//! records go to partition `abs(hash(group)) % offsets.topic.num.partitions`, as in Kafka,
//! through the same partition/raft path as user data (so they replicate with the cluster).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use cairn_groups::records::{self, RecordKey};
use cairn_groups::{Coordinator, CoordinatorConfig, Now, Output, Token};
use cairn_partition::Acks;
use cairn_protocol::kafka_protocol::protocol::StrBytes;
use cairn_protocol::kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use cairn_protocol::ErrorCode;
use cairn_storage::{batch, VerifiedBatch};
use tokio::sync::{mpsc, oneshot, watch, Notify};

use crate::node::Node;
use crate::topic_config::TopicConfigs;
use crate::topics::{TopicError, TopicRegistry};
use crate::BrokerError;

/// Kafka's internal topic of committed offsets and group metadata.
pub(crate) const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Most bytes one replay read asks a partition for.
const REPLAY_READ_BYTES: u32 = 8 << 20;

/// One `__consumer_offsets` record: key and value (`None`: a tombstone).
pub(crate) type Entry = (Vec<u8>, Option<Vec<u8>>);
/// A group record to store: the group (which places it), the record, and the signal set once
/// it is written (or given up on).
type StoreRequest = (String, Vec<u8>, Option<Vec<u8>>, watch::Sender<bool>);
/// An answer, and the group record that must be written before it is given out.
type GatedAnswer = (Answer, Option<watch::Receiver<bool>>);

/// What a deferred request (JoinGroup, SyncGroup) is finally answered with.
pub(crate) type Answer = Output;

/// The coordinator and the requests waiting on it, under one lock so that an answer is
/// never produced before its waiter is registered.
#[derive(Debug)]
struct Inner {
    coordinator: Coordinator,
    waiters: HashMap<Token, oneshot::Sender<GatedAnswer>>,
}

/// Where this node stands with the groups of one offsets partition (in a cluster).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owned {
    /// This node leads the partition and is replaying it.
    Loading { epoch: i32 },
    /// This node leads the partition, in this leader epoch, and has its groups.
    Loaded { epoch: i32 },
}

/// Consumer groups of this broker.
#[derive(Debug)]
pub(crate) struct Groups {
    inner: Mutex<Inner>,
    /// `None` on a single node, which coordinates every group. In a cluster, the offsets
    /// partitions this node leads and what it has loaded of them: it coordinates exactly
    /// their groups, as a Kafka broker coordinates the groups of the `__consumer_offsets`
    /// partitions it leads.
    owned: Option<Mutex<HashMap<i32, Owned>>>,
    next_token: AtomicU64,
    /// Woken whenever the coordinator may have an earlier deadline.
    wake: Notify,
    /// Group records to persist, in the order the coordinator produced them.
    store: mpsc::UnboundedSender<StoreRequest>,
    store_rx: Mutex<Option<mpsc::UnboundedReceiver<StoreRequest>>>,
    clock: Instant,
    /// Partitions of the offsets topic: `offsets.topic.num.partitions`, or the existing
    /// topic's count (which is what records were placed by).
    partitions: AtomicU32,
    /// `offset.metadata.max.bytes`.
    pub(crate) max_metadata_bytes: usize,
    /// `offsets.retention.check.interval.ms`.
    retention_check: Duration,
    /// Serialises creation of the offsets topic.
    create_lock: tokio::sync::Mutex<()>,
    /// `offsets.topic.segment.bytes`.
    segment_bytes: u32,
}

/// The settings of [`Groups`] (from the broker configuration).
#[derive(Debug, Clone)]
pub struct GroupSettings {
    /// The coordinator's own settings (session bounds, initial rebalance delay, group size,
    /// offsets retention).
    pub coordinator: CoordinatorConfig,
    /// `offsets.topic.num.partitions` (Kafka default 50).
    pub offsets_topic_partitions: u32,
    /// `offset.metadata.max.bytes` (Kafka default 4096).
    pub offset_metadata_max_bytes: usize,
    /// `offsets.retention.check.interval.ms` (Kafka default 600000).
    pub retention_check_interval_ms: u64,
    /// `offsets.topic.segment.bytes` (Kafka default 100 MiB): the offsets topic's
    /// `segment.bytes` when it is created; compaction cleans sealed segments only.
    pub offsets_topic_segment_bytes: u32,
}

impl Default for GroupSettings {
    fn default() -> Self {
        GroupSettings {
            coordinator: CoordinatorConfig::default(),
            offsets_topic_partitions: 50,
            offset_metadata_max_bytes: 4096,
            retention_check_interval_ms: 600_000,
            offsets_topic_segment_bytes: 100 << 20,
        }
    }
}

/// Wall-clock milliseconds since the Unix epoch (commit timestamps, retention).
pub(crate) fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Groups {
    /// The groups of a node; `clustered` when it is part of a cluster (its groups are then
    /// the ones of the offsets partitions it leads).
    pub(crate) fn new(settings: &GroupSettings, clustered: bool) -> Groups {
        let (store, store_rx) = mpsc::unbounded_channel();
        Groups {
            owned: clustered.then(|| Mutex::new(HashMap::new())),
            inner: Mutex::new(Inner {
                coordinator: Coordinator::new(settings.coordinator.clone()),
                waiters: HashMap::new(),
            }),
            next_token: AtomicU64::new(1),
            wake: Notify::new(),
            store,
            store_rx: Mutex::new(Some(store_rx)),
            clock: Instant::now(),
            partitions: AtomicU32::new(settings.offsets_topic_partitions.max(1)),
            max_metadata_bytes: settings.offset_metadata_max_bytes,
            retention_check: Duration::from_millis(settings.retention_check_interval_ms.max(1)),
            create_lock: tokio::sync::Mutex::new(()),
            segment_bytes: settings.offsets_topic_segment_bytes,
        }
    }

    /// The coordinator's clocks: monotonic milliseconds since the broker started (timeouts)
    /// and wall-clock milliseconds (stored timestamps).
    pub(crate) fn now(&self) -> Now {
        Now::new(self.clock.elapsed().as_millis() as u64, wall_ms())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock is a bug; the state is still the best there is.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the coordinator, then routes what it produced.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Coordinator, Now) -> R) -> R {
        let now = self.now();
        let mut inner = self.lock();
        let r = f(&mut inner.coordinator, now);
        self.route(&mut inner);
        drop(inner);
        self.wake.notify_one();
        r
    }

    /// Read-only access to the coordinator.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Coordinator) -> R) -> R {
        f(&self.lock().coordinator)
    }

    /// Hands out what the coordinator produced. Its group records come before the answers
    /// that depend on them (a SyncGroup answer carries the assignment the record stores), so
    /// answers after a record wait until it is written, as Kafka's do.
    fn route(&self, inner: &mut Inner) {
        let mut gate: Option<watch::Receiver<bool>> = None;
        for out in inner.coordinator.take_outputs() {
            match out {
                Output::StoreGroup {
                    group_id,
                    key,
                    value,
                } => {
                    let (done, written) = watch::channel(false);
                    let _ = self.store.send((group_id, key, value, done));
                    gate = Some(written);
                }
                answer @ (Output::Join { .. } | Output::Sync { .. }) => {
                    let token = match &answer {
                        Output::Join { token, .. } | Output::Sync { token, .. } => *token,
                        Output::StoreGroup { .. } => continue,
                    };
                    if let Some(tx) = inner.waiters.remove(&token) {
                        // The client may have gone; nothing to do then.
                        let _ = tx.send((answer, gate.clone()));
                    }
                }
            }
        }
    }

    /// Starts a deferred request: `start` hands the coordinator the token; the answer
    /// arrives when the coordinator produces it.
    pub(crate) async fn deferred(
        &self,
        start: impl FnOnce(&mut Coordinator, Now, Token),
    ) -> Option<Answer> {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let now = self.now();
            let mut inner = self.lock();
            inner.waiters.insert(token, tx);
            start(&mut inner.coordinator, now, token);
            self.route(&mut inner);
        }
        self.wake.notify_one();
        let (answer, gate) = rx.await.ok()?;
        if let Some(mut written) = gate {
            // Err: the writer is gone (shutdown); answer anyway.
            let _ = written.wait_for(|done| *done).await;
        }
        Some(answer)
    }

    /// The offsets-topic partition of `group_id`.
    pub(crate) fn partition_for(&self, group_id: &str) -> i32 {
        records::partition_for(group_id, self.partitions.load(Ordering::Relaxed))
    }

    fn owned(&self) -> Option<MutexGuard<'_, HashMap<i32, Owned>>> {
        self.owned
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Whether this node coordinates `group_id` now: always on a single node; in a cluster
    /// once it leads the group's offsets partition and has loaded it
    /// (COORDINATOR_LOAD_IN_PROGRESS while it loads, NOT_COORDINATOR otherwise — the client
    /// asks FindCoordinator again).
    pub(crate) fn check(&self, group_id: &str) -> Result<(), ErrorCode> {
        let Some(owned) = self.owned() else {
            return Ok(());
        };
        match owned.get(&self.partition_for(group_id)) {
            Some(Owned::Loaded { .. }) => Ok(()),
            Some(Owned::Loading { .. }) => Err(ErrorCode::CoordinatorLoadInProgress),
            None => Err(ErrorCode::NotCoordinator),
        }
    }

    /// Forgets the groups of offsets partition `partition` (their waiting requests are
    /// answered NOT_COORDINATOR).
    fn unload_partition(&self, partition: i32) -> usize {
        let count = self.partitions.load(Ordering::Relaxed);
        self.with(|c, _| c.unload(|g| records::partition_for(g, count) == partition))
    }
}

/// In a cluster: keeps the loaded groups equal to those of the offsets partitions this node
/// leads. A partition whose leadership this node gained (a new leader epoch) is replayed
/// from its log start to its high watermark — the commit index, which as a confirmed
/// leader includes everything any earlier leader acknowledged — before its groups are
/// served; one it lost is unloaded at once.
async fn follow_leadership(ctx: Arc<Node>, mut shutdown: watch::Receiver<bool>) {
    let groups = &ctx.groups;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = shutdown.changed() => return,
        }
        let Some(topic) = ctx.topics.get(OFFSETS_TOPIC) else {
            continue;
        };
        groups
            .partitions
            .store(topic.partitions.len().max(1) as u32, Ordering::Relaxed);
        for (p, handle) in topic.partitions.iter().enumerate() {
            let p = p as i32;
            let state = handle.state();
            let now = groups.owned().and_then(|o| o.get(&p).copied());
            if !state.is_leader {
                if now.is_some() {
                    if let Some(mut o) = groups.owned() {
                        o.remove(&p);
                    }
                    let unloaded = groups.unload_partition(p);
                    tracing::info!(
                        partition = p,
                        groups = unloaded,
                        "no longer coordinating the groups of {OFFSETS_TOPIC}-{p}"
                    );
                }
                continue;
            }
            if now
                == Some(Owned::Loaded {
                    epoch: state.leader_epoch,
                })
            {
                continue;
            }
            let epoch = state.leader_epoch;
            if let Some(mut o) = groups.owned() {
                o.insert(p, Owned::Loading { epoch });
            }
            groups.unload_partition(p);
            match load_partition(groups, p, handle).await {
                Ok(records) => {
                    let still = handle.state();
                    if let Some(mut o) = groups.owned() {
                        if still.is_leader && still.leader_epoch == epoch {
                            o.insert(p, Owned::Loaded { epoch });
                            tracing::info!(
                                partition = p,
                                epoch,
                                records,
                                "coordinating the groups of {OFFSETS_TOPIC}-{p}"
                            );
                        } else {
                            o.remove(&p);
                        }
                    }
                }
                Err(e) => {
                    // Tried again on the next turn.
                    tracing::warn!(partition = p, error = %e, "cannot load the groups of {OFFSETS_TOPIC}-{p}");
                    if let Some(mut o) = groups.owned() {
                        o.remove(&p);
                    }
                    groups.unload_partition(p);
                }
            }
        }
    }
}

/// The coordinator of `group`: the node leading its offsets partition (this node on a single
/// node), with its endpoint; `None` while that partition has no leader.
pub(crate) fn coordinator_of(ctx: &Node, group: &str) -> Option<(i32, String, u16)> {
    if ctx.cluster.is_none() {
        let (host, port) = ctx.config.advertise.clone();
        return Some((ctx.config.node_id, host, port));
    }
    let index = ctx.groups.partition_for(group);
    let (topic, handle) = ctx.partition(OFFSETS_TOPIC, index).ok()?;
    let view = ctx.partition_view(topic.id, index.max(0) as usize, &handle);
    let leader = view.leader?;
    let (host, port) = ctx.endpoint(leader)?;
    Some((leader, host, port))
}

/// Creates `__consumer_offsets` if it does not exist yet (as Kafka does on the first
/// FindCoordinator).
pub(crate) async fn ensure_offsets_topic(ctx: &Node) -> Result<(), ErrorCode> {
    if ctx.topics.get(OFFSETS_TOPIC).is_some() {
        return Ok(());
    }
    let _creating = ctx.groups.create_lock.lock().await;
    if ctx.topics.get(OFFSETS_TOPIC).is_some() {
        return Ok(());
    }
    // Kafka's settings for the topic: compacted (never trimmed by time or size: that would
    // drop the only record of a commit that was never repeated), with
    // `offsets.topic.segment.bytes` segments.
    let segment_bytes = ctx.groups.segment_bytes.to_string();
    let configs = TopicConfigs::from_pairs([
        ("cleanup.policy", Some("compact")),
        ("segment.bytes", Some(segment_bytes.as_str())),
    ])
    .map_err(|e| {
        tracing::error!(error = %e, "cannot configure the offsets topic");
        ErrorCode::CoordinatorNotAvailable
    })?;
    match ctx
        .topics
        .create(
            OFFSETS_TOPIC,
            ctx.groups.partitions.load(Ordering::Relaxed) as i32,
            configs,
            false,
        )
        .await
    {
        Ok(_) | Err(TopicError::AlreadyExists(_)) => {
            tracing::info!(
                partitions = ctx.groups.partitions.load(Ordering::Relaxed),
                "created the offsets topic {OFFSETS_TOPIC}"
            );
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot create the offsets topic {OFFSETS_TOPIC}");
            Err(ErrorCode::CoordinatorNotAvailable)
        }
    }
}

/// One record batch (uncompressed, no producer id) of `__consumer_offsets` records.
fn offsets_batch(entries: &[Entry]) -> Result<Bytes, ErrorCode> {
    let now = wall_ms();
    let records: Vec<Record> = entries
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // No producer id: base sequence -1. kafka-protocol starts a new batch where
            // `offset - sequence` changes, so the sequence follows the offset.
            sequence: (i as i32).wrapping_sub(1),
            timestamp: now,
            key: Some(Bytes::copy_from_slice(key)),
            value: value.as_deref().map(Bytes::copy_from_slice),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| {
        tracing::error!(error = %e, "cannot encode an offsets batch");
        ErrorCode::UnknownServerError
    })?;
    Ok(buf.freeze())
}

/// Appends records to `__consumer_offsets` partition `partition` and waits until they are
/// committed (acks=all): on `Ok` they survive a crash. Answers the offset of the first record
/// (the others follow it in order); 0 when there was nothing to write.
pub(crate) async fn append(
    ctx: &Node,
    partition: i32,
    entries: &[Entry],
) -> Result<u64, ErrorCode> {
    if entries.is_empty() {
        return Ok(0);
    }
    ensure_offsets_topic(ctx).await?;
    let (_, handle) = ctx
        .partition(OFFSETS_TOPIC, partition)
        .map_err(|_| ErrorCode::CoordinatorNotAvailable)?;
    let batch = VerifiedBatch::new(offsets_batch(entries)?, u32::MAX).map_err(|e| {
        tracing::error!(error = %e, "an offsets batch of our own is invalid");
        ErrorCode::UnknownServerError
    })?;
    handle
        .produce(vec![batch], Acks::All)
        .await
        .map(|ack| ack.base_offset)
        .map_err(|e| {
            tracing::warn!(partition, error = %e, "cannot write to the offsets topic");
            match e {
                cairn_partition::PartitionError::NotLeader => ErrorCode::NotCoordinator,
                _ => ErrorCode::CoordinatorNotAvailable,
            }
        })
}

/// Reads every record of the offsets topic (if it exists) into the coordinator. Runs before
/// the listener accepts anything. In a cluster it does nothing: each partition is loaded when
/// this node becomes its leader (`follow_leadership`).
pub(crate) async fn load(topics: &TopicRegistry, groups: &Groups) -> Result<(), BrokerError> {
    if groups.owned.is_some() {
        return Ok(());
    }
    let Some(topic) = topics.get(OFFSETS_TOPIC) else {
        return Ok(());
    };
    groups
        .partitions
        .store(topic.partitions.len().max(1) as u32, Ordering::Relaxed);
    let started = Instant::now();
    let mut count = 0u64;
    for (p, handle) in topic.partitions.iter().enumerate() {
        count += load_partition(groups, p as i32, handle).await?;
    }
    tracing::info!(
        records = count,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "loaded consumer groups from {OFFSETS_TOPIC}"
    );
    Ok(())
}

/// Replays offsets partition `p` from its log start to its high watermark into the
/// coordinator; answers how many records it read.
async fn load_partition(
    groups: &Groups,
    p: i32,
    handle: &cairn_partition::PartitionHandle,
) -> Result<u64, BrokerError> {
    let mut count = 0u64;
    let mut offset = handle.state().log_start_offset;
    loop {
        let data = match handle.fetch(offset, REPLAY_READ_BYTES).await {
            Ok(d) => d,
            Err(e) => {
                return Err(BrokerError::Config(format!(
                    "cannot read {OFFSETS_TOPIC}-{p} at offset {offset}: {e}"
                )))
            }
        };
        if offset >= data.high_watermark {
            break;
        }
        let bytes = data.read.load()?;
        if bytes.is_empty() {
            break;
        }
        let mut next = offset;
        for item in batch::iter_batches(&bytes, u32::MAX) {
            let (at, header, b) = item.map_err(|e| {
                BrokerError::Config(format!("corrupt batch in {OFFSETS_TOPIC}-{p}: {e}"))
            })?;
            next = header.next_offset() as u64;
            if header.is_control() {
                continue;
            }
            let mut one = bytes.slice(at..at + b.len());
            let set = match RecordBatchDecoder::decode(&mut one) {
                Ok(set) => set,
                Err(e) => {
                    tracing::warn!(partition = p, offset = header.base_offset, error = %e, "skipping an undecodable offsets batch");
                    continue;
                }
            };
            // One lock (and one routing of outputs) per batch, not per record.
            groups.with(|c, now| {
                for record in &set.records {
                    let Some(key) = &record.key else { continue };
                    if let Err(e) = c.replay(now, key, record.value.as_deref()) {
                        tracing::warn!(partition = p, offset = record.offset, error = %e, "skipping an unreadable offsets record");
                    }
                    count += 1;
                }
            });
        }
        if next <= offset {
            break;
        }
        offset = next;
    }
    Ok(count)
}

/// The background tasks: the coordinator's timer, the group-record writer and offsets
/// expiry. They end when the broker shuts down.
pub(crate) fn spawn_tasks(ctx: Arc<Node>, mut shutdown: watch::Receiver<bool>) {
    let timer_ctx = Arc::clone(&ctx);
    let mut timer_shutdown = shutdown.clone();
    tokio::spawn(async move {
        let groups = &timer_ctx.groups;
        loop {
            let deadline = groups.read(|c| c.next_deadline());
            let sleep = async {
                match deadline {
                    Some(at) => {
                        let at = groups.clock + Duration::from_millis(at);
                        tokio::time::sleep_until(at.into()).await
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = sleep => {}
                _ = groups.wake.notified() => {}
                _ = timer_shutdown.changed() => break,
            }
            // Not `with`: that would wake this loop again at once.
            let now = groups.now();
            let mut inner = groups.lock();
            inner.coordinator.tick(now);
            groups.route(&mut inner);
        }
    });

    let store_rx = ctx
        .groups
        .store_rx
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    if let Some(mut rx) = store_rx {
        let writer_ctx = Arc::clone(&ctx);
        let mut writer_shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                // Ends with the broker (the sender lives in `Node`, which this task holds).
                let next = tokio::select! {
                    next = rx.recv() => next,
                    _ = writer_shutdown.changed() => None,
                };
                let Some((group_id, key, value, done)) = next else {
                    break;
                };
                let partition = writer_ctx.groups.partition_for(&group_id);
                if let Err(code) = append(&writer_ctx, partition, &[(key, value)]).await {
                    tracing::warn!(group = %group_id, ?code, "cannot store group metadata");
                }
                // Written or not, the answers waiting on it go out (a member that loses its
                // group record to a crash rejoins; it must not wait forever).
                let _ = done.send(true);
            }
        });
    }

    if ctx.groups.owned.is_some() {
        tokio::spawn(follow_leadership(Arc::clone(&ctx), shutdown.clone()));
    }

    tokio::spawn(async move {
        let period = ctx.groups.retention_check;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = shutdown.changed() => break,
            }
            expire_offsets(&ctx).await;
        }
    });
}

/// Writes tombstones for expired offsets (and emptied groups), then applies them.
pub(crate) async fn expire_offsets(ctx: &Node) {
    let expired = ctx.groups.read(|c| c.expired_offsets(wall_ms()));
    if expired.is_empty() {
        return;
    }
    let mut by_partition: HashMap<i32, Vec<Entry>> = HashMap::new();
    for key in &expired {
        let group = match key {
            RecordKey::Offset { group, .. } | RecordKey::Group { group } => group,
        };
        let Some(key) = encoded(key) else { continue };
        by_partition
            .entry(ctx.groups.partition_for(group))
            .or_default()
            .push((key, None));
    }
    let mut removed = 0usize;
    for (partition, entries) in by_partition {
        if append(ctx, partition, &entries).await.is_ok() {
            ctx.groups.with(|c, now| {
                for (key, _) in &entries {
                    let _ = c.replay(now, key, None);
                }
            });
            removed += entries.len();
        }
    }
    tracing::info!(removed, "expired committed offsets");
}

/// A record key's bytes; `None` (logged) for one that cannot be written, which only
/// strings longer than Kafka's 32767-byte limit are.
pub(crate) fn encoded(key: &RecordKey) -> Option<Vec<u8>> {
    key.encode()
        .map_err(|e| tracing::warn!(error = %e, "cannot encode an offsets record key"))
        .ok()
}

/// `StrBytes` of a string.
pub(crate) fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Broker, BrokerConfig};
    use cairn_groups::records::OffsetValue;

    fn config(dir: &std::path::Path, retention_ms: i64) -> BrokerConfig {
        let mut c = BrokerConfig::new(dir.to_path_buf(), "127.0.0.1:0".parse().expect("addr"));
        c.groups.offsets_topic_partitions = 2;
        c.groups.coordinator.offsets_retention_ms = retention_ms;
        c
    }

    async fn commit(ctx: &Node, group: &str, offset: i64) {
        let key = RecordKey::Offset {
            group: group.into(),
            topic: "t".into(),
            partition: 0,
        };
        let value = OffsetValue {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: wall_ms(),
        };
        let entries = [(
            key.encode().expect("key"),
            Some(value.encode().expect("value")),
        )];
        append(ctx, ctx.groups.partition_for(group), &entries)
            .await
            .expect("append");
        ctx.groups
            .with(|c, _| c.apply_offset_commit(group, "t", 0, value, None));
    }

    fn committed(ctx: &Node, group: &str) -> Option<i64> {
        ctx.groups
            .read(|c| c.committed_offset(group, "t", 0).map(|v| v.offset))
    }

    /// A SyncGroup answer goes out only once the generation's group record is written: a
    /// broker stopped right after the answer (its record writer stops with it, dropping
    /// anything unwritten) still knows the group, member and assignment after a restart.
    #[tokio::test]
    async fn sync_answers_after_the_group_record_is_written() {
        use cairn_groups::{JoinRequest, SyncRequest};
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = config(dir.path(), 7 * 24 * 3_600_000);
        c.groups.coordinator.group_initial_rebalance_delay_ms = 0;
        let broker = Broker::start(c.clone()).await.expect("start");
        let ctx = broker.ctx();
        ensure_offsets_topic(&ctx).await.expect("offsets topic");
        let join = JoinRequest {
            group_id: "g".into(),
            member_id: String::new(),
            group_instance_id: None,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"sub"))],
            session_timeout_ms: 30_000,
            rebalance_timeout_ms: 30_000,
            require_known_member_id: false,
            supports_skip_assignment: false,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            reason: None,
        };
        let Some(Output::Join { response, .. }) = ctx
            .groups
            .deferred(|co, now, token| co.join(now, token, join))
            .await
        else {
            panic!("no join answer");
        };
        assert!(response.error.is_none(), "{:?}", response.error);
        let member = response.member_id.clone();
        let sync = SyncRequest {
            group_id: "g".into(),
            generation_id: response.generation_id,
            member_id: member.clone(),
            group_instance_id: None,
            protocol_type: None,
            protocol_name: None,
            assignments: vec![(member.clone(), Bytes::from_static(b"assignment"))],
        };
        let Some(Output::Sync {
            response: synced, ..
        }) = ctx
            .groups
            .deferred(|co, now, token| co.sync(now, token, sync))
            .await
        else {
            panic!("no sync answer");
        };
        assert!(synced.error.is_none(), "{:?}", synced.error);
        drop(ctx);
        broker.shutdown().await;

        let broker = Broker::start(c).await.expect("restart");
        let ctx = broker.ctx();
        let described = ctx.groups.read(|co| co.describe_group("g")).expect("group");
        assert_eq!(described.generation_id, response.generation_id);
        assert_eq!(described.members.len(), 1);
        assert_eq!(described.members[0].member_id, member);
        assert_eq!(&described.members[0].assignment[..], b"assignment");
        drop(ctx);
        broker.shutdown().await;
    }

    /// Commits are replayed from `__consumer_offsets` on restart; expired ones are
    /// tombstoned, gone at once and still gone after the next restart.
    #[tokio::test]
    async fn commits_survive_restart_and_expiry_removes_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = Broker::start(config(dir.path(), 7 * 24 * 3_600_000))
            .await
            .expect("start");
        let ctx = broker.ctx();
        commit(&ctx, "kept", 41).await;
        commit(&ctx, "kept", 42).await;
        commit(&ctx, "expiring", 7).await;
        drop(ctx);
        broker.shutdown().await;

        // Retention of 1 ms: after the restart, both groups' offsets are expired.
        let broker = Broker::start(config(dir.path(), 1)).await.expect("restart");
        let ctx = broker.ctx();
        assert_eq!(committed(&ctx, "kept"), Some(42), "the last commit wins");
        assert_eq!(committed(&ctx, "expiring"), Some(7));
        tokio::time::sleep(Duration::from_millis(5)).await;
        expire_offsets(&ctx).await;
        assert_eq!(committed(&ctx, "kept"), None);
        assert_eq!(committed(&ctx, "expiring"), None);
        drop(ctx);
        broker.shutdown().await;

        let broker = Broker::start(config(dir.path(), 7 * 24 * 3_600_000))
            .await
            .expect("restart again");
        let ctx = broker.ctx();
        assert_eq!(committed(&ctx, "kept"), None, "tombstones are replayed too");
        assert_eq!(committed(&ctx, "expiring"), None);
        drop(ctx);
        broker.shutdown().await;
    }

    /// Several records make one valid batch (the partition appends exactly one per call),
    /// and they read back as written, tombstones included.
    #[test]
    fn offsets_batch_is_one_valid_batch() {
        let entries: Vec<Entry> = vec![
            (b"k1".to_vec(), Some(b"v1".to_vec())),
            (b"k2".to_vec(), None),
            (b"k3".to_vec(), Some(b"v3".to_vec())),
        ];
        let bytes = offsets_batch(&entries).expect("encode");
        let header = batch::validate(&bytes, u32::MAX).expect("one valid batch");
        assert_eq!(header.total_len(), bytes.len() as u64);
        assert_eq!((header.records_count, header.base_sequence), (3, -1));
        let set = RecordBatchDecoder::decode(&mut bytes.clone()).expect("decode");
        let read: Vec<Entry> = set
            .records
            .into_iter()
            .map(|r| (r.key.expect("key").to_vec(), r.value.map(|v| v.to_vec())))
            .collect();
        assert_eq!(read, entries);
    }
}
