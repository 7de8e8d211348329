//! Deterministic simulation of a raft group of replica cores: one thread, a seeded network
//! that loses, duplicates, delays and reorders messages and cuts links, crashes and
//! restarts of replicas (a process crash: the files stay), client produces with acks=all
//! and DeleteRecords, and retention (by size, or of everything, depending on the seed) with
//! small segments, so followers that fall behind the leader's first entry catch up through
//! snapshots. Every failure prints its seed; `CAIRN_SIM_SEED=N` replays exactly that run.
//!
//! Checked after every step:
//! - **election safety**: at most one leader per term;
//! - **log matching of what is committed**: every replica's committed prefix is the same
//!   batches, byte for byte (so offsets agree too), and no committed entry ever changes;
//! - **high watermarks never go back** on a replica (between its restarts), **nor log starts**;
//!
//! and at the end, once the network is healed and every replica runs: every replica has the
//! same log start, at least the largest one a DeleteRecords was acknowledged with; every
//! acknowledged produce at or after it is in the committed log, exactly once, at the offset
//! it was acknowledged with; and Kafka offsets are dense (markers take none).
//!
//! `CAIRN_SIM_SEEDS` (default 40) and `CAIRN_SIM_STEPS` (default 3000) make longer runs
//! (`scripts/soak-sim`).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use cairn_storage::batch::{self, iter_batches};
use cairn_storage::{LogConfig, VerifiedBatch};
use raft::prelude::Message;

use crate::core::{Effect, ReplicaCore, Timing, Token};
use crate::Acks;

const NODES: u64 = 3;

/// splitmix64: small, seedable, good enough to pick actions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

struct Sim {
    seed: u64,
    rng: Rng,
    dirs: Vec<tempfile::TempDir>,
    nodes: Vec<Option<ReplicaCore>>,
    /// Messages in flight: (to, message).
    network: VecDeque<(u64, Message)>,
    /// Readies written but not yet reported durable: (node, ready number). A driver may
    /// make writes durable late (group commit); raft must hold votes and append answers
    /// until then.
    unpersisted: VecDeque<(u64, u64)>,
    /// Cut links (both directions).
    cut: HashSet<(u64, u64)>,
    clock: Arc<AtomicI64>,
    next_token: Token,
    /// Token -> (payload id of a produce or target of a DeleteRecords, node asked).
    waiting: HashMap<Token, (Ask, u64)>,
    /// The largest log start a DeleteRecords was acknowledged with.
    acked_log_start: u64,
    deletes_acked: usize,
    /// Acknowledged payload ids with their base offsets.
    acked: Vec<(u64, u64)>,
    next_payload: u64,
    /// The idempotent producer's batch being sent (payload, sequence) until one attempt
    /// is acknowledged; attempts may overlap (a client that timed out retries while the
    /// first attempt is still in flight) and go to any node.
    idempotent: Option<(u64, i32)>,
    /// Batches of the idempotent producer acknowledged so far (its next sequence).
    idempotent_acked: i32,
    leaders: BTreeMap<u64, u64>,
    /// The committed log as first seen: raft index - 1 -> stored batch (`None`: deleted
    /// on every replica before the checker saw it committed).
    committed: Vec<Option<Bytes>>,
    high_watermarks: Vec<u64>,
    log_starts: Vec<u64>,
    snapshots_installed: usize,
}

/// What a client asked for.
#[derive(Debug, Clone, Copy)]
enum Ask {
    Produce(u64),
    /// A batch of the idempotent producer: payload id and sequence number.
    Idempotent(u64, i32),
    DeleteRecords,
}

/// The simulation's idempotent producer (its batches carry this id, epoch 0).
const PRODUCER_ID: i64 = 7;

fn timing(id: u64) -> Timing {
    // Distinct, fixed election timeouts (max = min + 1: raft-rs draws no random number),
    // so the seed alone decides who campaigns first.
    let election = 10 + 3 * id as usize;
    Timing {
        election,
        max_election: election + 1,
        heartbeat: 2,
    }
}

fn payload_batch(id: u64) -> VerifiedBatch {
    let value = format!("payload-{id}");
    let b = batch::build_batch(1_000 + id as i64, &[value.as_bytes()]);
    VerifiedBatch::new(Bytes::from(b), u32::MAX).expect("a valid batch")
}

/// A batch of the idempotent producer: sequence `seq`, the payload as its value.
fn idempotent_batch(payload: u64, seq: i32) -> VerifiedBatch {
    let value = format!("payload-{payload}");
    let mut b = batch::build_batch(1_000 + payload as i64, &[value.as_bytes()]);
    b[43..51].copy_from_slice(&PRODUCER_ID.to_be_bytes());
    b[51..53].copy_from_slice(&0i16.to_be_bytes());
    b[53..57].copy_from_slice(&seq.to_be_bytes());
    let crc = batch::compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    VerifiedBatch::new(Bytes::from(b), u32::MAX).expect("a valid batch")
}

/// The payload id a stored data batch carries.
fn payload_of(stored: &[u8]) -> Option<u64> {
    let value = batch::first_record_value(stored)?;
    std::str::from_utf8(value)
        .ok()?
        .strip_prefix("payload-")?
        .parse()
        .ok()
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let clock = Arc::new(AtomicI64::new(1_700_000_000_000));
        let mut sim = Sim {
            seed,
            rng: Rng(seed),
            dirs: Vec::new(),
            nodes: Vec::new(),
            network: VecDeque::new(),
            unpersisted: VecDeque::new(),
            cut: HashSet::new(),
            clock,
            next_token: 0,
            waiting: HashMap::new(),
            acked_log_start: 0,
            deletes_acked: 0,
            acked: Vec::new(),
            next_payload: 0,
            idempotent: None,
            idempotent_acked: 0,
            leaders: BTreeMap::new(),
            committed: Vec::new(),
            high_watermarks: vec![0; NODES as usize],
            log_starts: vec![0; NODES as usize],
            snapshots_installed: 0,
        };
        for _ in 0..NODES {
            let dir = tempfile::tempdir_in(shm()).expect("tempdir");
            sim.dirs.push(dir);
            sim.nodes.push(None);
        }
        for id in 1..=NODES {
            sim.start(id);
        }
        sim
    }

    fn start(&mut self, id: u64) {
        let dir = self.dirs[(id - 1) as usize].path().join("p");
        let mut core = ReplicaCore::open(
            format!("sim-{id}"),
            &dir,
            LogConfig {
                segment_bytes: 4096,
                segment_index_bytes: 1024,
                // Every record is from 1970: retention by time removes everything.
                retention_ms: (self.seed % 3 == 2).then_some(1),
                retention_bytes: (self.seed % 3 == 1).then_some(8192),
                retention_check_interval_ms: 1000,
                ..LogConfig::default()
            },
            id,
            (1..=NODES).collect(),
            timing(id),
        )
        .unwrap_or_else(|e| panic!("seed {}: node {id} does not open: {e}", self.seed));
        let clock = Arc::clone(&self.clock);
        core.set_clock(Arc::new(move || clock.load(Ordering::SeqCst)));
        self.high_watermarks[(id - 1) as usize] = core.state().high_watermark;
        self.nodes[(id - 1) as usize] = Some(core);
        self.drain(id);
    }

    fn node(&mut self, id: u64) -> Option<&mut ReplicaCore> {
        self.nodes[(id - 1) as usize].as_mut()
    }

    /// Carries out a node's effects: messages onto the network, persistence reported at
    /// once or later (a process crash keeps the page cache either way), answers recorded.
    fn drain(&mut self, id: u64) {
        loop {
            let Some(core) = self.node(id) else { return };
            let effects = core.take_effects();
            if effects.is_empty() {
                break;
            }
            for effect in effects {
                match effect {
                    Effect::Send(m) => self.network.push_back((m.to, m)),
                    Effect::Persist { number } => {
                        // In order: a ready is reported only after the ones before it.
                        let behind = self.unpersisted.iter().any(|(node, _)| *node == id);
                        if behind || self.rng.chance(30) {
                            self.unpersisted.push_back((id, number));
                        } else if let Some(core) = self.node(id) {
                            core.persisted(number);
                        }
                    }
                    Effect::Answered { token, result } => {
                        let Some((ask, _)) = self.waiting.remove(&token) else {
                            continue;
                        };
                        match (ask, result) {
                            (Ask::Produce(payload), Ok(ack)) => {
                                self.acked.push((payload, ack.base_offset))
                            }
                            (Ask::Idempotent(payload, seq), Ok(ack)) => {
                                self.acked.push((payload, ack.base_offset));
                                if seq == self.idempotent_acked {
                                    self.idempotent_acked += 1;
                                    self.idempotent = None;
                                }
                            }
                            (Ask::DeleteRecords, Ok(ack)) => {
                                self.deletes_acked += 1;
                                self.acked_log_start =
                                    self.acked_log_start.max(ack.log_start_offset);
                            }
                            (ask, Err(e)) => {
                                if std::env::var("CAIRN_SIM_DEBUG").is_ok() {
                                    eprintln!("{ask:?} refused: {e}");
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn step(&mut self) {
        let roll = self.rng.below(100);
        let id = 1 + self.rng.below(NODES);
        match roll {
            0..=24 => {
                if let Some(core) = self.node(id) {
                    core.tick();
                    core.run();
                }
                self.clock.fetch_add(100, Ordering::SeqCst);
            }
            25..=79 => {
                for _ in 0..1 + self.rng.below(4) {
                    self.deliver();
                }
            }
            80..=91 => {
                // Clients find the leader through metadata, mostly; sometimes they are wrong.
                let leader = self
                    .nodes
                    .iter()
                    .flatten()
                    .find(|c| c.is_leader())
                    .map(ReplicaCore::id);
                let to = match leader {
                    Some(l) if self.rng.chance(80) => l,
                    _ => id,
                };
                if roll == 91 && self.rng.chance(50) {
                    self.delete_records(to);
                } else if self.rng.chance(30) {
                    self.produce_idempotent(to);
                } else {
                    self.produce(to);
                }
            }
            92..=93 => {
                // A late group commit: one fsync makes every outstanding ready of a node
                // durable, reported once with the newest number.
                if let Some(&(node, _)) = self.unpersisted.front() {
                    let newest = self
                        .unpersisted
                        .iter()
                        .filter(|(n, _)| *n == node)
                        .map(|(_, number)| *number)
                        .max();
                    self.unpersisted.retain(|(n, _)| *n != node);
                    if let (Some(number), Some(core)) = (newest, self.node(node)) {
                        core.persisted(number);
                    }
                }
            }
            94..=95 => {
                // Reorder: move a random message to the back.
                if !self.network.is_empty() {
                    let i = self.rng.below(self.network.len() as u64) as usize;
                    if let Some(m) = self.network.remove(i) {
                        self.network.push_back(m);
                    }
                }
            }
            96 => {
                let other = 1 + self.rng.below(NODES);
                if other != id {
                    let link = (id.min(other), id.max(other));
                    if !self.cut.remove(&link) {
                        self.cut.insert(link);
                        // A false "down" (the driver says it only when a port refuses, but
                        // safety must not depend on it being right).
                        if self.rng.chance(30) {
                            if let Some(core) = self.node(id) {
                                core.peer_down(other);
                                core.run();
                            }
                        }
                    }
                }
            }
            97 => {
                // A process crash (0.3% of steps): what was written stays; what waited is
                // never answered.
                if self.rng.chance(30) && self.nodes[(id - 1) as usize].is_some() {
                    if let Some(core) = self.nodes[(id - 1) as usize].take() {
                        self.snapshots_installed += core.snapshots_installed() as usize;
                    }
                    self.unpersisted.retain(|(node, _)| *node != id);
                    let mine: Vec<Token> = self
                        .waiting
                        .iter()
                        .filter(|(_, (_, on))| *on == id)
                        .map(|(t, _)| *t)
                        .collect();
                    for t in mine {
                        self.waiting.remove(&t);
                    }
                    // The crashed node's port refuses connections: peers usually hear it.
                    for other in (1..=NODES).filter(|o| *o != id) {
                        if self.rng.chance(70) {
                            if let Some(core) = self.node(other) {
                                core.peer_down(id);
                                core.run();
                            }
                        }
                    }
                }
            }
            _ => {
                if self.nodes[(id - 1) as usize].is_none() {
                    self.start(id);
                }
            }
        }
        for id in 1..=NODES {
            self.drain(id);
        }
        self.check();
    }

    fn deliver(&mut self) {
        let Some((to, m)) = self.network.pop_front() else {
            return;
        };
        let from = m.from;
        if self.rng.chance(5) {
            return; // lost
        }
        if self.rng.chance(3) {
            self.network.push_back((to, m.clone())); // duplicated
        }
        if self.cut.contains(&(from.min(to), from.max(to))) {
            return;
        }
        if let Some(core) = self.node(to) {
            core.step(m);
            core.run();
        }
    }

    fn produce(&mut self, id: u64) {
        let token = self.next_token;
        self.next_token += 1;
        let payload = self.next_payload;
        self.next_payload += 1;
        let Some(core) = self.nodes[(id - 1) as usize].as_mut() else {
            return;
        };
        self.waiting.insert(token, (Ask::Produce(payload), id));
        if std::env::var("CAIRN_SIM_DEBUG").is_ok() && core.is_leader() {
            eprintln!("propose {payload} on leader {id} term {}", core.term());
        }
        core.propose(token, vec![payload_batch(payload)], Acks::All);
        core.run();
    }

    /// An attempt of the idempotent producer's current batch (a new batch once the last
    /// one was acknowledged).
    fn produce_idempotent(&mut self, id: u64) {
        let (payload, seq) = match self.idempotent {
            Some(current) => current,
            None => {
                let current = (self.next_payload, self.idempotent_acked);
                self.next_payload += 1;
                self.idempotent = Some(current);
                current
            }
        };
        let token = self.next_token;
        self.next_token += 1;
        let Some(core) = self.nodes[(id - 1) as usize].as_mut() else {
            return;
        };
        self.waiting
            .insert(token, (Ask::Idempotent(payload, seq), id));
        core.propose(token, vec![idempotent_batch(payload, seq)], Acks::All);
        core.run();
    }

    /// DeleteRecords up to somewhere between the log start and the high watermark (or to
    /// the high watermark, as Kafka's -1 asks).
    fn delete_records(&mut self, id: u64) {
        let token = self.next_token;
        self.next_token += 1;
        let pick = self.rng.next();
        let Some(core) = self.nodes[(id - 1) as usize].as_mut() else {
            return;
        };
        let state = core.state();
        let before = match pick % 3 {
            0 => None,
            _ => Some(
                state.log_start_offset + pick % (state.high_watermark - state.log_start_offset + 1),
            ),
        };
        self.waiting.insert(token, (Ask::DeleteRecords, id));
        core.delete_records(token, before);
        core.run();
    }

    fn fail(&self, what: String) -> ! {
        panic!(
            "seed {}: {what}\nreplay with CAIRN_SIM_SEED={}",
            self.seed, self.seed
        );
    }

    fn check(&mut self) {
        for i in 0..NODES as usize {
            let Some(core) = self.nodes[i].as_mut() else {
                continue;
            };
            let id = core.id();
            let state = core.state();
            if core.is_leader() {
                let term = core.term();
                if let Some(&other) = self.leaders.get(&term) {
                    if other != id {
                        let what = format!("two leaders in term {term}: {other} and {id}");
                        self.fail(what);
                    }
                } else {
                    self.leaders.insert(term, id);
                }
            }
            if state.high_watermark < self.high_watermarks[i] {
                let what = format!(
                    "node {id}'s high watermark went back from {} to {}",
                    self.high_watermarks[i], state.high_watermark
                );
                self.fail(what);
            }
            self.high_watermarks[i] = state.high_watermark;
            if state.log_start_offset < self.log_starts[i] {
                let what = format!(
                    "node {id}'s log start went back from {} to {}",
                    self.log_starts[i], state.log_start_offset
                );
                self.fail(what);
            }
            self.log_starts[i] = state.log_start_offset;
            if state.log_start_offset > state.high_watermark {
                let what = format!("node {id}'s log start is past its high watermark: {state:?}");
                self.fail(what);
            }
            let commit = core.commit_index();
            let (first, _) = core.log_head();
            let stored = core
                .read_stored(first, commit.saturating_sub(first))
                .unwrap_or_else(|e| panic!("seed {}: node {id} cannot read: {e}", self.seed));
            let mut index = first;
            for item in iter_batches(&stored, u32::MAX) {
                let (_, _, b) = item.unwrap_or_else(|e| {
                    panic!("seed {}: node {id} stored a bad batch: {e}", self.seed)
                });
                while self.committed.len() as u64 <= index {
                    self.committed.push(None);
                }
                match &self.committed[index as usize] {
                    Some(seen) if seen[..] != *b => {
                        let what = format!(
                            "node {id}'s committed entry {} differs from the one committed before",
                            index + 1
                        );
                        self.fail(what);
                    }
                    Some(_) => {}
                    None => self.committed[index as usize] = Some(Bytes::copy_from_slice(b)),
                }
                index += 1;
            }
            if index < commit {
                let what = format!(
                    "node {id} committed {commit} entries but stores up to {index} (from {first})"
                );
                self.fail(what);
            }
        }
    }

    /// Heals the network, starts every replica and runs without faults until they agree.
    fn settle(&mut self) {
        self.cut.clear();
        for id in 1..=NODES {
            if self.nodes[(id - 1) as usize].is_none() {
                self.start(id);
            }
        }
        for _ in 0..20_000 {
            while let Some((node, number)) = self.unpersisted.pop_front() {
                if let Some(core) = self.node(node) {
                    core.persisted(number);
                }
            }
            if let Some((to, m)) = self.network.pop_front() {
                if let Some(core) = self.node(to) {
                    core.step(m);
                    core.run();
                }
            } else {
                for id in 1..=NODES {
                    if let Some(core) = self.node(id) {
                        core.tick();
                        core.run();
                    }
                }
                self.clock.fetch_add(100, Ordering::SeqCst);
            }
            for id in 1..=NODES {
                self.drain(id);
            }
            let has_leader = self.nodes.iter().flatten().any(ReplicaCore::is_leader);
            // Everything written is committed and applied, everywhere.
            let indexes: Vec<(u64, u64, u64)> = self
                .nodes
                .iter()
                .flatten()
                .map(|c| c.raft_indexes())
                .collect();
            let done = indexes.windows(2).all(|w| w[0] == w[1])
                && indexes.iter().all(|(a, p, c)| a == p && p == c);
            if has_leader && done && self.network.is_empty() && self.unpersisted.is_empty() {
                break;
            }
        }
        self.check();
        let commits: Vec<u64> = self
            .nodes
            .iter()
            .flatten()
            .map(|c| c.commit_index())
            .collect();
        if !commits.windows(2).all(|w| w[0] == w[1]) {
            self.fail(format!(
                "replicas never agreed on a commit index: {commits:?}"
            ));
        }
        let starts: Vec<u64> = self
            .nodes
            .iter()
            .flatten()
            .map(|c| c.state().log_start_offset)
            .collect();
        if !starts.windows(2).all(|w| w[0] == w[1]) || starts[0] < self.acked_log_start {
            for c in self.nodes.iter().flatten() {
                eprintln!(
                    "node {}: raft {:?} head {:?} state {:?} commit {} snapshots {}",
                    c.id(),
                    c.raft_indexes(),
                    c.log_head(),
                    c.state(),
                    c.commit_index(),
                    c.snapshots_installed()
                );
            }
            self.fail(format!(
                "log starts {starts:?} disagree or are below the acknowledged {}",
                self.acked_log_start
            ));
        }
    }

    /// Every acknowledged produce is committed exactly once, at its acknowledged offset;
    /// offsets are dense.
    fn check_acknowledged(&self) {
        let mut at: HashMap<u64, Vec<u64>> = HashMap::new();
        // Unknown after an entry the checker never saw.
        let mut next_offset = Some(0u64);
        for b in &self.committed {
            let Some(b) = b else {
                next_offset = None;
                continue;
            };
            let h = batch::parse_header(b).expect("a stored header");
            if next_offset.is_some_and(|next| h.base_offset as u64 != next) {
                self.fail(format!(
                    "offsets are not dense: a batch at {} after {next_offset:?}",
                    h.base_offset
                ));
            }
            next_offset = Some(h.next_offset() as u64);
            if let Some(payload) = payload_of(b) {
                at.entry(payload).or_default().push(h.base_offset as u64);
            }
        }
        let log_start = self
            .nodes
            .iter()
            .flatten()
            .map(|c| c.state().log_start_offset)
            .min()
            .unwrap_or(0);
        if let Some((payload, offsets)) = at.iter().find(|(_, offsets)| offsets.len() > 1) {
            self.fail(format!(
                "payload {payload} is committed more than once, at {offsets:?}"
            ));
        }
        for (payload, offset) in &self.acked {
            if *offset < log_start {
                continue; // deleted since
            }
            match at.get(payload).map(Vec::as_slice) {
                Some([found]) if found == offset => {}
                other => self.fail(format!(
                    "payload {payload} was acknowledged at offset {offset} but is committed at {other:?}"
                )),
            }
        }
    }
}

fn shm() -> std::path::PathBuf {
    let p = std::path::Path::new("/dev/shm");
    if p.is_dir() {
        p.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// What one run exercised.
#[derive(Debug, Default)]
struct Exercised {
    acked: usize,
    /// Batches of the idempotent producer acknowledged (each after one or more attempts).
    idempotent_acked: usize,
    committed: usize,
    deletes_acked: usize,
    snapshots: usize,
}

fn run(seed: u64, steps: u64) -> Exercised {
    let mut sim = Sim::new(seed);
    for i in 0..steps {
        sim.step();
        if std::env::var("CAIRN_SIM_DEBUG").is_ok() && i % 300 == 0 {
            let leaders: Vec<u64> = sim
                .nodes
                .iter()
                .flatten()
                .filter(|c| c.is_leader())
                .map(|c| c.id())
                .collect();
            let up: Vec<u64> = sim.nodes.iter().flatten().map(|c| c.id()).collect();
            eprintln!(
                "step {i}: network {} leaders {leaders:?} up {up:?} cut {:?}",
                sim.network.len(),
                sim.cut
            );
        }
    }
    sim.settle();
    sim.check_acknowledged();
    if std::env::var("CAIRN_SIM_DEBUG").is_ok() {
        eprintln!(
            "seed {seed}: terms with a leader {}, last term {:?}, still waiting {}",
            sim.leaders.len(),
            sim.leaders.keys().last(),
            sim.waiting.len()
        );
    }
    let snapshots = sim.snapshots_installed
        + sim
            .nodes
            .iter()
            .flatten()
            .map(|c| c.snapshots_installed() as usize)
            .sum::<usize>();
    Exercised {
        acked: sim.acked.len(),
        idempotent_acked: sim.idempotent_acked as usize,
        committed: sim.committed.len(),
        deletes_acked: sim.deletes_acked,
        snapshots,
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn replicas_agree_under_message_loss_partitions_and_crashes() {
    let steps = env("CAIRN_SIM_STEPS", 3000);
    if let Ok(seed) = std::env::var("CAIRN_SIM_SEED") {
        let seed = seed.parse().expect("CAIRN_SIM_SEED is a number");
        eprintln!("seed {seed}: {:?}", run(seed, steps));
        return;
    }
    let seeds = env("CAIRN_SIM_SEEDS", 40);
    let mut total = Exercised::default();
    for seed in 0..seeds {
        let r = run(seed, steps);
        total.acked += r.acked;
        total.idempotent_acked += r.idempotent_acked;
        total.committed += r.committed;
        total.deletes_acked += r.deletes_acked;
        total.snapshots += r.snapshots;
    }
    eprintln!("{seeds} seeds: {total:?}");
    // The simulation must exercise something: produces and deletions get acknowledged,
    // followers catch up through snapshots.
    assert!(
        total.acked as u64 > seeds * 10 && total.idempotent_acked as u64 > seeds * 3,
        "only {} produces ({} idempotent batches) acknowledged over {seeds} seeds",
        total.acked,
        total.idempotent_acked
    );
    assert!(
        total.deletes_acked as u64 > seeds && total.snapshots as u64 >= seeds / 10,
        "too few deletions ({}) or snapshots ({}) over {seeds} seeds",
        total.deletes_acked,
        total.snapshots
    );
}

/// Ticks until some node other than `old` leads, ticking every live node once per round and
/// delivering every message at once (no loss).
fn rounds_to_new_leader(sim: &mut Sim, old: u64) -> usize {
    for round in 1..=200 {
        for id in 1..=NODES {
            if let Some(core) = sim.node(id) {
                core.tick();
                core.run();
            }
        }
        for _ in 0..10_000 {
            while let Some((node, number)) = sim.unpersisted.pop_front() {
                if let Some(core) = sim.node(node) {
                    core.persisted(number);
                }
            }
            for id in 1..=NODES {
                sim.drain(id);
            }
            let Some((to, m)) = sim.network.pop_front() else {
                break;
            };
            if let Some(core) = sim.node(to) {
                core.step(m);
                core.run();
            }
        }
        if sim
            .nodes
            .iter()
            .flatten()
            .any(|c| c.is_leader() && c.id() != old)
        {
            return round;
        }
    }
    panic!("no new leader within 200 rounds");
}

#[test]
fn followers_of_a_node_that_is_down_campaign_early() {
    for tell in [false, true] {
        let mut sim = Sim::new(1);
        let leader = loop {
            if let Some(l) = sim.nodes.iter().flatten().find(|c| c.is_leader()) {
                break l.id();
            }
            rounds_to_new_leader(&mut sim, 0);
        };
        let (_, old_timeout) = (leader, timing(leader).election);
        // A few rounds of heartbeats, then the leader's process dies.
        for _ in 0..3 {
            for id in 1..=NODES {
                if let Some(core) = sim.node(id) {
                    core.tick();
                    core.run();
                }
                sim.drain(id);
            }
            while let Some((to, m)) = sim.network.pop_front() {
                if let Some(core) = sim.node(to) {
                    core.step(m);
                    core.run();
                }
            }
        }
        sim.nodes[(leader - 1) as usize] = None;
        sim.network.clear();
        if tell {
            for id in (1..=NODES).filter(|i| *i != leader) {
                if let Some(core) = sim.node(id) {
                    core.peer_down(leader);
                    core.run();
                }
            }
        }
        let rounds = rounds_to_new_leader(&mut sim, leader);
        let shortest = (1..=NODES)
            .filter(|i| *i != leader)
            .map(|i| timing(i).election)
            .min()
            .unwrap_or(old_timeout);
        if tell {
            // The lowest surviving id campaigns at once: elected before the next tick.
            assert!(
                rounds <= 1,
                "told the leader is down, a new one took {rounds} ticks"
            );
        } else {
            assert!(
                rounds >= shortest - 3,
                "without the news a new leader took only {rounds} ticks (timeout {shortest})"
            );
        }
    }
}
