//! The driver of one replica on a storage shard: commands in from the broker, the core's
//! effects out.
//!
//! [`Replica`] owns a [`ReplicaCore`] and everything that is I/O to it: the reply channels of
//! waiting produces (the core knows them by token), the watch of the partition's state, the
//! raft messages to peers (through its [`Outbox`], encoded; a group of one has none) and the
//! durability of log writes. By default a ready counts as persisted only once fsynced: at the
//! end of each turn the replica hands a sync job to its shard's syncer (`crate::syncer`)
//! and goes on; when it completes, every ready before it is reported at once (group
//! commit). A topic that sets `flush.messages` or `flush.ms` opts out: its log applies that
//! policy as it writes, and a ready counts as persisted as soon as it is in the log (Kafka's
//! page-cache acknowledgement, with the loss window those settings imply).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use cairn_storage::{LogConfig, VerifiedBatch};
use protobuf::Message as _;
use raft::prelude::Message;
use tokio::sync::{oneshot, watch};

use crate::core::{Effect, ReplicaCore, Timing, Token};
use crate::error::Result;
use crate::syncer::{self, SyncDone};
use crate::{
    Acks, FetchData, OffsetQuery, PartitionState, ProduceAck, Replicas, TimestampOffsetAnswer,
};

/// Commands from the rest of the broker to a partition's owner task.
#[derive(Debug)]
pub(crate) enum Command {
    Produce {
        batches: Vec<VerifiedBatch>,
        acks: Acks,
        reply: oneshot::Sender<Result<ProduceAck>>,
    },
    Fetch {
        offset: u64,
        max_bytes: u32,
        reply: oneshot::Sender<Result<FetchData>>,
    },
    ListOffsets {
        query: OffsetQuery,
        reply: oneshot::Sender<Result<TimestampOffsetAnswer>>,
    },
    EpochEndOffset {
        epoch: i32,
        reply: oneshot::Sender<Result<Option<(i32, u64)>>>,
    },
    DeleteRecords {
        before: Option<u64>,
        reply: oneshot::Sender<Result<u64>>,
    },
    SetConfig {
        config: LogConfig,
        reply: oneshot::Sender<Result<()>>,
    },
    LogStats {
        reply: oneshot::Sender<Result<crate::LogStats>>,
    },
    Close {
        delete: bool,
        reply: oneshot::Sender<Result<()>>,
    },
    /// A raft message from a peer, encoded.
    Step(Vec<u8>),
    /// Peer (raft id) is down: its address refused a connection.
    PeerDown(u64),
    /// Hand the leadership to a follower (graceful shutdown, leader balancing).
    TransferLeadership {
        to: Option<u64>,
        reply: oneshot::Sender<Result<Option<u64>>>,
    },
}

/// What a replica publishes: its state, and who replicates it.
#[derive(Debug)]
pub(crate) struct Receivers {
    pub(crate) state: watch::Receiver<PartitionState>,
    pub(crate) replicas: watch::Receiver<Replicas>,
}

/// Where a replica's raft messages to peers go: `(to, encoded message)`. Called on the
/// storage shard's thread, so it must not block (queue, and drop when full: raft resends).
pub type Outbox = Arc<dyn Fn(u64, Vec<u8>) + Send + Sync>;

/// Where the core's answer for a token goes.
#[derive(Debug)]
enum Reply {
    Produce(oneshot::Sender<Result<ProduceAck>>),
    /// DeleteRecords: the log start after the deletion.
    DeleteRecords(oneshot::Sender<Result<u64>>),
}

/// Work done off the shard that the replica takes back.
#[derive(Debug)]
pub(crate) enum Background {
    /// A sync of readies up to the number finished (`None`: the syncer is gone).
    Synced(u64, Option<SyncDone>),
    /// A log clean ran (`None`: the cleaner is gone).
    Cleaned(Option<cairn_storage::CleanResult>),
}

/// A partition replica and its I/O.
pub(crate) struct Replica {
    core: ReplicaCore,
    replies: HashMap<Token, Reply>,
    next_token: Token,
    state_tx: watch::Sender<PartitionState>,
    replicas_tx: watch::Sender<Replicas>,
    outbox: Option<Outbox>,
    /// The newest ready written but not yet covered by a sync.
    unsynced: Option<u64>,
    /// The sync in flight: the newest ready it covers, and where its outcome arrives.
    syncing: Option<(u64, oneshot::Receiver<SyncDone>)>,
    /// The log clean in flight on a cleaner thread (`crate::cleaner`).
    cleaning: Option<oneshot::Receiver<cairn_storage::CleanResult>>,
    /// Ticks since the log was last checked for cleaning.
    ticks_since_clean_check: u64,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("core", &self.core)
            .field("waiting", &self.replies.len())
            .finish_non_exhaustive()
    }
}

impl Replica {
    /// Opens (recovering if needed) the replica in `dir`. `voters` is the initial raft
    /// membership for a new replica (just this node, for a single-node broker).
    pub(crate) fn open(
        name: String,
        dir: &Path,
        config: LogConfig,
        node_id: u64,
        voters: Vec<u64>,
        outbox: Option<Outbox>,
    ) -> Result<(Replica, Receivers)> {
        let core = ReplicaCore::open(name, dir, config, node_id, voters, Timing::default())?;
        let (state_tx, state_rx) = watch::channel(core.state());
        let (replicas_tx, replicas_rx) = watch::channel(core.replicas());
        let mut replica = Replica {
            core,
            replies: HashMap::new(),
            next_token: 0,
            state_tx,
            replicas_tx,
            outbox,
            unsynced: None,
            syncing: None,
            cleaning: None,
            ticks_since_clean_check: 0,
        };
        replica.drive();
        // What opening wrote (a group of one's election) is made durable here, inline: a
        // single node's partitions then lead, confirmed, as soon as they are open.
        replica.sync_now();
        Ok((
            replica,
            Receivers {
                state: state_rx,
                replicas: replicas_rx,
            },
        ))
    }

    /// Carries out the core's effects until it has none left, then publishes the state.
    fn drive(&mut self) {
        loop {
            let effects = self.core.take_effects();
            if effects.is_empty() {
                break;
            }
            // The state first: a producer that reads it after its acknowledgement must see
            // its records below the high watermark.
            self.publish();
            for effect in effects {
                match effect {
                    Effect::Send(m) => match (&self.outbox, m.write_to_bytes()) {
                        (Some(outbox), Ok(bytes)) => outbox(m.to, bytes),
                        (Some(_), Err(e)) => {
                            tracing::error!(error = %e, "cannot encode a raft message")
                        }
                        (None, _) => {
                            tracing::debug!(to = m.to, kind = ?m.get_msg_type(), "no outbox: dropping a raft message");
                        }
                    },
                    Effect::Persist { number } if self.core.sync_on_commit() => {
                        self.unsynced = Some(number);
                    }
                    // The log applied the flush policy as it wrote: what the policy
                    // promises is already true.
                    Effect::Persist { number } => self.core.persisted(number),
                    Effect::Answered { token, result } => match self.replies.remove(&token) {
                        Some(Reply::Produce(reply)) => {
                            let _ = reply.send(result);
                        }
                        Some(Reply::DeleteRecords(reply)) => {
                            let _ = reply.send(result.map(|ack| ack.log_start_offset));
                        }
                        None => {}
                    },
                }
            }
        }
        self.publish();
    }

    fn publish(&self) {
        let state = self.core.state();
        let mut leadership_changed = false;
        self.state_tx.send_if_modified(|s| {
            let changed = *s != state;
            leadership_changed = (s.is_leader, s.leader_id) != (state.is_leader, state.leader_id);
            *s = state;
            changed
        });
        if leadership_changed {
            self.publish_replicas();
        }
    }

    /// The voters and the in-sync set (on every tick, and when leadership changes).
    fn publish_replicas(&self) {
        let replicas = self.core.replicas();
        self.replicas_tx.send_if_modified(|r| {
            let changed = *r != replicas;
            *r = replicas;
            changed
        });
    }

    /// End of a turn: if readies wait for a sync and none is in flight, start one (or, when
    /// everything is durable already, report them persisted now).
    pub(crate) fn start_sync(&mut self) {
        if self.syncing.is_some() {
            return;
        }
        let Some(number) = self.unsynced.take() else {
            return;
        };
        match self.core.begin_sync() {
            Some(job) => self.syncing = Some((number, syncer::submit(job))),
            None => {
                self.core.persisted(number);
                self.drive();
            }
        }
    }

    /// Makes every written ready durable now, on this thread (at open, before serving).
    fn sync_now(&mut self) {
        while let Some(number) = self.unsynced.take() {
            let durable = match self.core.begin_sync() {
                Some(job) => {
                    let result = job.run();
                    self.core.finish_sync(job, result)
                }
                None => true,
            };
            if durable {
                self.core.persisted(number);
            }
            self.drive();
        }
    }

    /// A sync finished: the readies it covered are persisted (or the replica failed).
    pub(crate) fn synced(&mut self, number: u64, done: Option<SyncDone>) {
        self.syncing = None;
        let durable = match done {
            Some((job, result)) => self.core.finish_sync(job, result),
            None => false,
        };
        if durable {
            self.core.persisted(number);
        }
        self.drive();
        self.start_sync();
    }

    /// A token for an answer the core will give later.
    fn token(&mut self, reply: Reply) -> Token {
        let token = self.next_token;
        self.next_token += 1;
        self.replies.insert(token, reply);
        token
    }

    /// Handles one command; returns `false` once the replica has closed.
    pub(crate) fn handle(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::Produce {
                batches,
                acks,
                reply,
            } => {
                let token = self.token(Reply::Produce(reply));
                self.core.propose(token, batches, acks);
                self.core.run();
            }
            Command::Fetch {
                offset,
                max_bytes,
                reply,
            } => {
                let _ = reply.send(self.core.fetch(offset, max_bytes));
            }
            Command::ListOffsets { query, reply } => {
                let _ = reply.send(self.core.list_offsets(query));
            }
            Command::EpochEndOffset { epoch, reply } => {
                let _ = reply.send(Ok(self.core.epoch_end_offset(epoch)));
            }
            Command::DeleteRecords { before, reply } => {
                let token = self.token(Reply::DeleteRecords(reply));
                self.core.delete_records(token, before);
                self.core.run();
            }
            Command::SetConfig { config, reply } => {
                let _ = reply.send(self.core.set_config(config));
            }
            Command::LogStats { reply } => {
                let _ = reply.send(Ok(self.core.log_stats()));
            }
            Command::Close { delete, reply } => {
                let closed = self.core.close(delete);
                self.drive();
                let _ = reply.send(closed);
                return false;
            }
            Command::TransferLeadership { to, reply } => {
                let target = self.core.transfer_leadership(to);
                self.core.run();
                let _ = reply.send(Ok(target));
            }
            Command::PeerDown(peer) => self.core.peer_down(peer),
            Command::Step(bytes) => match Message::parse_from_bytes(&bytes) {
                Ok(m) => {
                    self.core.step(m);
                    self.core.run();
                }
                Err(e) => tracing::warn!(error = %e, "dropping an undecodable raft message"),
            },
        }
        self.drive();
        true
    }

    /// Timer: raft ticks and the log's housekeeping.
    pub(crate) fn tick(&mut self) {
        self.core.tick();
        self.core.run();
        self.drive();
        self.publish_replicas();
        self.maybe_clean();
    }

    /// Every `log.cleaner.backoff.ms`, unless a clean is in flight: hands the log's clean,
    /// if it needs one, to a cleaner thread.
    fn maybe_clean(&mut self) {
        let Some(every) = crate::cleaner::schedule() else {
            return;
        };
        self.ticks_since_clean_check += 1;
        if self.cleaning.is_some() || self.ticks_since_clean_check < every {
            return;
        }
        self.ticks_since_clean_check = 0;
        if let Some(job) = self.core.begin_clean() {
            self.cleaning = Some(crate::cleaner::submit(job));
        }
    }

    /// Resolves when the sync or the clean in flight is done (never if neither is).
    pub(crate) async fn background_done(&mut self) -> Background {
        let clean = async {
            match self.cleaning.as_mut() {
                Some(rx) => rx.await.ok(),
                None => std::future::pending().await,
            }
        };
        let sync = async {
            match self.syncing.as_mut() {
                Some((number, rx)) => {
                    let number = *number;
                    (number, rx.await.ok())
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            (number, done) = sync => Background::Synced(number, done),
            result = clean => Background::Cleaned(result),
        }
    }

    /// Handles what [`Replica::background_done`] resolved with.
    pub(crate) fn background(&mut self, done: Background) {
        match done {
            Background::Synced(number, done) => self.synced(number, done),
            Background::Cleaned(result) => {
                self.cleaning = None;
                if let Some(result) = result {
                    self.core.finish_clean(result);
                }
            }
        }
    }
}
