//! Storage shards (threads with a single-threaded runtime) and the owner task of each
//! partition.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use cairn_storage::{LogConfig, VerifiedBatch};
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{PartitionError, Result};
use crate::replica::{Command, Outbox, Replica};
use crate::{
    Acks, FetchData, OffsetQuery, PartitionSpec, PartitionState, ProduceAck, Replicas,
    TimestampOffsetAnswer, TICK_MS,
};

/// Commands a partition's channel holds before senders wait (backpressure, not a heap).
const COMMAND_QUEUE: usize = 1024;
/// Commands handled back to back before the owner yields to its timer.
const COMMANDS_PER_TURN: usize = 64;

type Job = Box<dyn FnOnce() + Send>;

/// Threads that own partitions. Each runs a single-threaded tokio runtime and a `LocalSet`;
/// partitions are spread over them round-robin. Blocking file I/O happens here, never on the
/// network runtime.
#[derive(Debug)]
pub struct StorageShards {
    senders: Mutex<Vec<mpsc::UnboundedSender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next: AtomicUsize,
}

impl StorageShards {
    /// Starts `count` shard threads (at least one).
    pub fn new(count: usize) -> std::io::Result<StorageShards> {
        let mut senders = Vec::new();
        let mut threads = Vec::new();
        for i in 0..count.max(1) {
            let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let thread = std::thread::Builder::new()
                .name(format!("cairn-storage-{i}"))
                .spawn(move || {
                    let local = tokio::task::LocalSet::new();
                    local.block_on(&runtime, async move {
                        while let Some(job) = rx.recv().await {
                            job();
                        }
                    });
                    // Let the owner tasks finish closing their partitions.
                    runtime.block_on(local);
                })?;
            senders.push(tx);
            threads.push(thread);
        }
        Ok(StorageShards {
            senders: Mutex::new(senders),
            threads: Mutex::new(threads),
            next: AtomicUsize::new(0),
        })
    }

    fn spawn(&self, job: Job) -> Result<()> {
        let senders = self.senders.lock().map_err(|_| PartitionError::Closed)?;
        if senders.is_empty() {
            return Err(PartitionError::Closed);
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % senders.len();
        senders[i].send(job).map_err(|_| PartitionError::Closed)
    }

    /// Stops accepting partitions and waits for the shard threads, which end once every
    /// partition on them has closed (close them first; dropping every handle also closes).
    pub fn shutdown(&self) {
        if let Ok(mut senders) = self.senders.lock() {
            senders.clear();
        }
        let threads = self
            .threads
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for t in threads {
            let _ = t.join();
        }
    }
}

/// A queued produce; [`PendingProduce::wait`] resolves once it is acknowledged.
#[derive(Debug)]
pub struct PendingProduce {
    rx: oneshot::Receiver<Result<ProduceAck>>,
}

impl PendingProduce {
    /// Waits for the acknowledgement.
    pub async fn wait(self) -> Result<ProduceAck> {
        self.rx.await.map_err(|_| PartitionError::Closed)?
    }
}

/// A handle on a partition's owner task. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PartitionHandle {
    name: Arc<str>,
    commands: mpsc::Sender<Command>,
    state: watch::Receiver<PartitionState>,
    replicas: watch::Receiver<Replicas>,
}

async fn owner_loop(mut replica: Replica, mut commands: mpsc::Receiver<Command>) {
    let mut timer = tokio::time::interval(Duration::from_millis(TICK_MS));
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            biased;
            done = replica.background_done() => replica.background(done),
            cmd = commands.recv() => {
                let Some(cmd) = cmd else {
                    // Every handle is gone: close cleanly.
                    let (reply, _) = oneshot::channel();
                    replica.handle(Command::Close { delete: false, reply });
                    return;
                };
                if !replica.handle(cmd) {
                    return;
                }
                for _ in 0..COMMANDS_PER_TURN {
                    match commands.try_recv() {
                        Ok(cmd) => {
                            if !replica.handle(cmd) {
                                return;
                            }
                        }
                        Err(_) => break,
                    }
                }
            }
            _ = timer.tick() => replica.tick(),
        }
        replica.start_sync();
    }
}

impl PartitionHandle {
    /// Opens (creating or recovering) a partition on one of `shards` and starts its owner.
    pub async fn open(shards: &StorageShards, spec: PartitionSpec) -> Result<PartitionHandle> {
        Self::open_replicated(shards, spec, None).await
    }

    /// As [`PartitionHandle::open`], for a replica of a group with peers: its raft messages
    /// go to `outbox`, and the peers' arrive through [`PartitionHandle::step`].
    pub async fn open_replicated(
        shards: &StorageShards,
        spec: PartitionSpec,
        outbox: Option<Outbox>,
    ) -> Result<PartitionHandle> {
        let (ready_tx, ready_rx) = oneshot::channel();
        let name: Arc<str> = Arc::from(spec.name.as_str());
        shards.spawn(Box::new(move || {
            tokio::task::spawn_local(async move {
                let opened = Replica::open(
                    spec.name,
                    &spec.dir,
                    spec.log,
                    spec.node_id,
                    spec.voters,
                    outbox,
                );
                match opened {
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                    Ok((replica, receivers)) => {
                        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
                        if ready_tx.send(Ok((tx, receivers))).is_ok() {
                            owner_loop(replica, rx).await;
                        }
                    }
                }
            });
        }))?;
        let (commands, receivers) = ready_rx.await.map_err(|_| PartitionError::Closed)??;
        Ok(PartitionHandle {
            name,
            commands,
            state: receivers.state,
            replicas: receivers.replicas,
        })
    }

    /// The partition's name (`topic-partition`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current state.
    pub fn state(&self) -> PartitionState {
        *self.state.borrow()
    }

    /// Who replicates the partition (voters; on the leader, those in sync).
    pub fn replicas(&self) -> Replicas {
        self.replicas.borrow().clone()
    }

    /// A receiver that wakes when the state changes (long-polling fetches wait on it).
    pub fn watch(&self) -> watch::Receiver<PartitionState> {
        self.state.clone()
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Command) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| PartitionError::Closed)?;
        rx.await.map_err(|_| PartitionError::Closed)?
    }

    /// Appends validated record batches; resolves per `acks` (see [`Acks`]).
    pub async fn produce(&self, batches: Vec<VerifiedBatch>, acks: Acks) -> Result<ProduceAck> {
        self.enqueue_produce(batches, acks).await?.wait().await
    }

    /// Queues a produce on the partition and returns what to wait on for its
    /// acknowledgement. Batches queued by one caller are appended in the order it queued
    /// them: a connection queues its requests in request order, then waits concurrently.
    pub async fn enqueue_produce(
        &self,
        batches: Vec<VerifiedBatch>,
        acks: Acks,
    ) -> Result<PendingProduce> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Produce {
                batches,
                acks,
                reply,
            })
            .await
            .map_err(|_| PartitionError::Closed)?;
        Ok(PendingProduce { rx })
    }

    /// Whole batches from the one holding `offset`, below the high watermark.
    pub async fn fetch(&self, offset: u64, max_bytes: u32) -> Result<FetchData> {
        self.call(|reply| Command::Fetch {
            offset,
            max_bytes,
            reply,
        })
        .await
    }

    /// ListOffsets.
    pub async fn list_offsets(&self, query: OffsetQuery) -> Result<TimestampOffsetAnswer> {
        self.call(|reply| Command::ListOffsets { query, reply })
            .await
    }

    /// OffsetForLeaderEpoch: the largest epoch at or below `epoch` and where it ended.
    pub async fn epoch_end_offset(&self, epoch: i32) -> Result<Option<(i32, u64)>> {
        self.call(|reply| Command::EpochEndOffset { epoch, reply })
            .await
    }

    /// DeleteRecords: moves the log start to `before` (the high watermark if `None`);
    /// returns the new log start.
    pub async fn delete_records(&self, before: Option<u64>) -> Result<u64> {
        self.call(|reply| Command::DeleteRecords { before, reply })
            .await
    }

    /// Replaces the log settings.
    pub async fn set_config(&self, config: LogConfig) -> Result<()> {
        self.call(|reply| Command::SetConfig { config, reply })
            .await
    }

    /// Bytes in the partition's segment files (DescribeLogDirs' partition size).
    pub async fn size_bytes(&self) -> Result<u64> {
        Ok(self.log_stats().await?.size_bytes)
    }

    /// Bytes in the partition's segment files and, for a compacted log, the cleaner's state.
    pub async fn log_stats(&self) -> Result<crate::LogStats> {
        self.call(|reply| Command::LogStats { reply }).await
    }

    /// Hands a peer's raft message (encoded) to the replica. Never waits: with the command
    /// queue full the message is dropped (raft resends) and `false` returned.
    pub fn step(&self, message: Vec<u8>) -> bool {
        self.commands.try_send(Command::Step(message)).is_ok()
    }

    /// Tells the replica that peer `peer` (a raft id) is down: its address refused a
    /// connection. A follower of that peer then campaigns within half an election timeout
    /// instead of waiting out a whole one. Never waits (dropped when the queue is full: the
    /// normal election timeout still applies).
    pub fn peer_down(&self, peer: u64) -> bool {
        self.commands.try_send(Command::PeerDown(peer)).is_ok()
    }

    /// Starts handing this replica's leadership to follower `to` (a raft id), or with `None`
    /// to its most caught-up follower; answers the follower's raft id, or `None` if it does
    /// not lead, has no active follower, or `to` lacks committed entries. The state watch
    /// shows when the leadership has gone.
    pub async fn transfer_leadership(&self, to: Option<u64>) -> Result<Option<u64>> {
        self.call(|reply| Command::TransferLeadership { to, reply })
            .await
    }

    /// Flushes and closes the partition.
    pub async fn close(&self) -> Result<()> {
        self.call(|reply| Command::Close {
            delete: false,
            reply,
        })
        .await
    }

    /// Closes the partition and deletes its directory.
    pub async fn delete(&self) -> Result<()> {
        self.call(|reply| Command::Close {
            delete: true,
            reply,
        })
        .await
    }
}
