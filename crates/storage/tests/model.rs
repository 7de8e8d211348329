//! Model-based test of the partition log: random sequences of appends, reads, rolls,
//! truncations, `DeleteRecords`, size and time retention, clock moves with `tick`, flushes,
//! clean reopens, process crashes and power cuts are run against a real [`Log`] in a
//! temporary directory and against a plain in-memory model, and the two are compared after
//! every operation.
//!
//! Besides record batches, the log is given marker batches (Cairn's raft entries, which take
//! no offset and share their base offset with the batch after them), so the model checks
//! that offsets stay dense and that batches are told apart by ordinal, not by offset.
//!
//! The model knows batches, offsets, the log start and end and the leader-epoch history. It
//! does not predict where segments roll (that depends on index fill, `segment.ms` and
//! `segment.bytes`); instead it reads the segment bases from the log and checks that they are
//! consistent with it (every base is a batch boundary, nothing readable is missing, the sizes
//! add up), and uses them to predict exactly what size and time retention delete and when
//! `tick` rolls an idle segment.
//!
//! Two kinds of crash: a process crash (the `Log` is dropped; the page cache keeps every
//! write, so nothing may be lost) and a power cut (the `Log` is dropped and then the files are
//! cut back to what was durable: anything at or past [`Log::flushed_offset`] may be lost, so
//! the test tears the segment holding a batch it picks there, at a byte it picks, and deletes
//! or keeps the later segments). After a power cut every batch below the flushed offset must
//! be intact and the log a prefix of the old one; the model forgets the lost tail.
//!
//! `PROPTEST_CASES` overrides the number of cases.

mod common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use cairn_storage::{EpochEntry, Log, LogConfig, RetentionOutcome, StorageError};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

use cairn_storage::batch;
use common::{as_stored, manual_clock, read_all, small_config};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// Where the manual clock starts; batch timestamps start there too, so that time retention
/// and `segment.ms` compare like with like.
const CLOCK_START_MS: i64 = 1_700_000_000_000;
const DEFAULT_CASES: u32 = 1000;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

/// An offset, chosen relative to the state of the model when the operation runs.
#[derive(Debug, Clone, Copy)]
enum Pick {
    /// The log start offset.
    Start,
    /// The log end offset.
    End,
    /// The base offset of a readable batch (the log end if there is none).
    Base(Index),
    /// Any offset in `[log_start, log_end]`.
    Any(Index),
    /// An offset below the log start (0 if the log starts at 0).
    Below(Index),
    /// `log_end + 1 + n`: past the end.
    Past(u64),
}

#[derive(Debug, Clone)]
enum Op {
    Append {
        records: usize,
        value_size: usize,
        /// Added to the model's current timestamp (clamped at 0).
        ts_step: i64,
        epoch_bump: bool,
    },
    /// A marker batch (a raft entry of its own), usually in a new epoch: an election.
    AppendMarker {
        payload_size: usize,
        epoch_bump: bool,
    },
    Read {
        from: Pick,
        max_bytes: u32,
        /// `Some`: `read_bounded` with this end.
        end: Option<Pick>,
    },
    Roll,
    TruncateTo(Pick),
    /// `truncate_to_ordinal` with an ordinal in `[first - 1, next + 1]`.
    TruncateToOrdinal(Index),
    /// `read_ordinals` from an ordinal in `[first, next]`.
    ReadOrdinals {
        from: Index,
        max_batches: u64,
        max_bytes: u32,
    },
    DeleteRecordsBefore(Pick),
    /// `retention.bytes` = the index into `0..size_bytes() + 1024`.
    RetentionBytes(Index),
    /// `retention.ms` chosen so that "now - retention.ms" falls at (`delta` ms from) the
    /// largest timestamp of the segment picked by the index, or past every timestamp.
    RetentionTime {
        segment: Index,
        delta: i64,
    },
    /// Moves the manual clock forward by this many ms, then calls `Log::tick` (which rolls
    /// an active segment that has been open for `segment.ms`).
    AdvanceClock(i64),
    Flush,
    CloseReopen,
    CrashReopen,
    /// Drop the log and cut its files back to what was durable (see the module docs).
    PowerCut(PowerCut),
}

/// How a power cut damages the files: everything from the first lost batch on is gone.
#[derive(Debug, Clone, Copy)]
struct PowerCut {
    /// The first lost batch, among those at or past the flushed offset (or none lost).
    first_lost: Index,
    /// `Some`: the cut falls inside that batch, this many bytes in (a torn write); `None`:
    /// at its start.
    torn: Option<Index>,
    /// The lost bytes read back as zeros (blocks allocated, never written) instead of the file
    /// being shorter (size never updated).
    zero_fill: bool,
    /// After a torn write, later segments survive whole (written back out of order); else
    /// they are gone, as their directory entries were never fsynced.
    keep_later: bool,
    /// A segment that lost all its bytes loses its file too (if it is not the first).
    delete_empty: bool,
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        2 => Just(Pick::Start),
        1 => Just(Pick::End),
        3 => any::<Index>().prop_map(Pick::Base),
        4 => any::<Index>().prop_map(Pick::Any),
        1 => any::<Index>().prop_map(Pick::Below),
        1 => (0u64..3).prop_map(Pick::Past),
    ]
}

fn ts_step() -> impl Strategy<Value = i64> {
    prop_oneof![
        12 => 0i64..1_000,
        3 => -5_000i64..0,
        // Past `segment.ms` (one week): rolls the segment by time.
        1 => Just(8 * DAY_MS),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        16 => (1usize..=5, 0usize..300, ts_step(), prop::bool::weighted(0.15)).prop_map(
            |(records, value_size, ts_step, epoch_bump)| Op::Append {
                records,
                value_size,
                ts_step,
                epoch_bump,
            }
        ),
        4 => (0usize..40, prop::bool::weighted(0.8)).prop_map(|(payload_size, epoch_bump)| {
            Op::AppendMarker { payload_size, epoch_bump }
        }),
        6 => (
            pick(),
            prop_oneof![1 => 1u32..600, 2 => 1u32..20_000],
            prop_oneof![3 => Just(None), 1 => pick().prop_map(Some)],
        )
            .prop_map(|(from, max_bytes, end)| Op::Read { from, max_bytes, end }),
        1 => Just(Op::Roll),
        1 => pick().prop_map(Op::TruncateTo),
        1 => any::<Index>().prop_map(Op::TruncateToOrdinal),
        3 => (any::<Index>(), 1u64..12, prop_oneof![1 => 1u32..600, 2 => 1u32..20_000])
            .prop_map(|(from, max_batches, max_bytes)| Op::ReadOrdinals { from, max_batches, max_bytes }),
        1 => pick().prop_map(Op::DeleteRecordsBefore),
        1 => any::<Index>().prop_map(Op::RetentionBytes),
        1 => (any::<Index>(), -1i64..=1).prop_map(|(segment, delta)| Op::RetentionTime { segment, delta }),
        2 => prop_oneof![
            3 => 0i64..5_000,
            1 => Just(60 * 60 * 1000),
            1 => Just(DAY_MS),
            // Past `segment.ms` (one week): `tick` rolls a non-empty active segment.
            2 => Just(8 * DAY_MS),
        ]
        .prop_map(Op::AdvanceClock),
        1 => Just(Op::Flush),
        1 => Just(Op::CloseReopen),
        2 => Just(Op::CrashReopen),
        2 => (
            any::<Index>(),
            prop_oneof![1 => Just(None), 2 => any::<Index>().prop_map(Some)],
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(first_lost, torn, zero_fill, keep_later, delete_empty)| {
                Op::PowerCut(PowerCut { first_lost, torn, zero_fill, keep_later, delete_empty })
            }),
    ]
}

/// Small segments, dense and small indexes (so they fill up and roll segments), few open
/// sealed segments (so reads go through the LRU), sometimes `flush.messages`.
fn config() -> impl Strategy<Value = LogConfig> {
    (
        2048u32..=8192,
        64u32..=512,
        2usize..=4,
        160u32..=1024,
        prop_oneof![3 => Just(None), 1 => (1u64..8).prop_map(Some)],
    )
        .prop_map(
            |(
                segment_bytes,
                index_interval_bytes,
                max_open_segments,
                segment_index_bytes,
                flush_messages,
            )| LogConfig {
                segment_bytes,
                index_interval_bytes,
                max_open_segments,
                segment_index_bytes,
                flush_messages,
                ..small_config()
            },
        )
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct MBatch {
    /// The batch's number in the log (its raft entry number).
    ordinal: u64,
    base: u64,
    /// The offset after the batch: `base` for a marker.
    next: u64,
    marker: bool,
    epoch: i32,
    max_ts: i64,
    /// The bytes as stored (`as_stored`).
    bytes: Vec<u8>,
}

#[derive(Debug)]
struct Model {
    /// Batches still on disk, oldest first. Those wholly below `log_start` can no longer be
    /// read but occupy their segment until it is deleted; they are dropped once the first
    /// segment base of the log passes them.
    batches: Vec<MBatch>,
    log_start: u64,
    log_end: u64,
    /// The leader-epoch history, maintained by the same rules as Kafka's epoch cache.
    epochs: Vec<EpochEntry>,
    /// Epoch for the next append: never decreases (so it is always >= the log's latest).
    epoch: i32,
    /// Ordinal the next appended batch gets.
    next_ordinal: u64,
    ts: i64,
    seed: u8,
    /// The manual clock the log reads.
    now: Arc<AtomicI64>,
    /// Clock time of the active segment's first append, or of the reopen or truncation that
    /// left it non-empty (`None` while it is empty): `tick` rolls it `segment.ms` later.
    active_since: Option<i64>,
}

impl Model {
    fn new(now: Arc<AtomicI64>) -> Model {
        Model {
            batches: Vec::new(),
            log_start: 0,
            log_end: 0,
            epochs: Vec::new(),
            epoch: 0,
            next_ordinal: 0,
            ts: CLOCK_START_MS,
            seed: 0,
            now,
            active_since: None,
        }
    }

    /// `Log::truncate_to(offset)`: the batch holding `offset` and all later ones go; at or
    /// below the log start the log is emptied and restarts at `offset`.
    fn truncate_to(&mut self, offset: u64) {
        if offset >= self.log_end {
            return;
        }
        let i = self.containing(offset);
        self.next_ordinal = self.batches.get(i).map_or(self.next_ordinal, |b| b.ordinal);
        if offset <= self.log_start {
            self.batches.clear();
            self.log_start = offset;
            self.log_end = offset;
            self.epochs.clear();
        } else {
            self.cut_at(i);
        }
    }

    /// Removes batch `i` (of those on disk) and every later one.
    fn cut_at(&mut self, i: usize) {
        let new_end = self.batches[i].base;
        self.next_ordinal = self.batches[i].ordinal;
        self.batches.truncate(i);
        self.log_end = new_end;
        // The cut may fall below a log start inside the cut batch; the start then
        // follows it down (as Kafka's truncateTo does).
        self.log_start = self.log_start.min(new_end);
        self.epochs_to_end(self.next_ordinal);
    }

    /// Index of the batch holding `offset` (or the first one after it), past the marker
    /// batches at `offset`.
    fn containing(&self, offset: u64) -> usize {
        self.batches.partition_point(|b| b.next <= offset)
    }

    /// The readable batches: from the one holding the log start.
    fn live(&self) -> &[MBatch] {
        &self.batches[self.containing(self.log_start)..]
    }

    fn resolve(&self, p: Pick) -> u64 {
        let (start, end) = (self.log_start, self.log_end);
        match p {
            Pick::Start => start,
            Pick::End => end,
            Pick::Base(i) => {
                let live = self.live();
                if live.is_empty() {
                    end
                } else {
                    live[i.index(live.len())].base
                }
            }
            Pick::Any(i) => start + i.index((end - start + 1) as usize) as u64,
            Pick::Below(i) => {
                if start == 0 {
                    0
                } else {
                    i.index(start as usize) as u64
                }
            }
            Pick::Past(n) => end + 1 + n,
        }
    }

    fn push_epoch(&mut self, epoch: i32, start_offset: u64, start_ordinal: u64) {
        if self.epochs.last().is_some_and(|l| epoch <= l.epoch) {
            return;
        }
        self.epochs.push(EpochEntry {
            epoch,
            start_offset,
            start_ordinal,
        });
    }

    /// The oldest batch on disk is now the one numbered `first_ordinal`: forget older epochs
    /// but the one in force there.
    fn epochs_from_start(&mut self, first_ordinal: u64) {
        let first_kept = self
            .epochs
            .partition_point(|e| e.start_ordinal <= first_ordinal);
        if first_kept > 1 {
            self.epochs.drain(..first_kept - 1);
        }
    }

    /// The log was cut before batch `next_ordinal`: forget epochs starting there or later.
    fn epochs_to_end(&mut self, next_ordinal: u64) {
        self.epochs.retain(|e| e.start_ordinal < next_ordinal);
    }

    /// Ordinal of the oldest batch on disk.
    fn first_ordinal(&self) -> u64 {
        self.batches
            .first()
            .map_or(self.next_ordinal, |b| b.ordinal)
    }

    /// On open the log drops the epochs past its end and those that ended before its oldest
    /// batch on disk: the history covers exactly the batches stored, which recovery checks
    /// against it.
    fn reopened(&mut self, first_ordinal: u64) {
        self.epochs_to_end(self.next_ordinal);
        self.epochs_from_start(first_ordinal);
    }

    /// OffsetForLeaderEpoch: the largest epoch at or below `epoch` and where it ended.
    fn epoch_end_offset(&self, epoch: i32) -> Option<(i32, u64)> {
        let i = self.epochs.partition_point(|e| e.epoch <= epoch);
        let found = self.epochs.get(i.checked_sub(1)?)?;
        let end = self
            .epochs
            .get(i)
            .map_or(self.log_end, |next| next.start_offset);
        Some((found.epoch, end))
    }

    fn epoch_for(&self, offset: u64) -> Option<i32> {
        let i = self.epochs.partition_point(|e| e.start_offset <= offset);
        i.checked_sub(1).map(|i| self.epochs[i].epoch)
    }

    /// What `read_bounded(from, max_bytes, end)` returns for an in-range `from`: whole
    /// batches from the one holding `from` (past markers at `from`), none holding an offset
    /// at or past `end` and no marker at `end`, as many as fit in `max_bytes` but at least
    /// one (KIP-74).
    fn expected_read(&self, from: u64, max_bytes: u32, end: u64) -> &[MBatch] {
        let end = end.min(self.log_end);
        let first = self.containing(from);
        let mut total = 0u64;
        let mut n = 0;
        for b in &self.batches[first..] {
            if b.next > end || b.base >= end {
                break;
            }
            let len = b.bytes.len() as u64;
            if n > 0 && total + len > max_bytes as u64 {
                break;
            }
            total += len;
            n += 1;
        }
        &self.batches[first..first + n]
    }

    fn now(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }

    /// The batch numbered `ordinal` was just appended: if it opened the active segment, the
    /// segment's age counts from now.
    fn note_append(&mut self, log: &Log, ordinal: u64) {
        if log.segment_base_ordinals().last() == Some(&ordinal) {
            self.active_since = Some(self.now());
        }
    }

    /// The log re-derived its roll clock (truncation): a non-empty active segment counts its
    /// age from now.
    fn reset_roll_clock(&mut self, log: &Log) {
        self.reset_roll_clock_at(log, self.now());
    }

    fn reset_roll_clock_at(&mut self, log: &Log, now: i64) {
        let active_first = log.segment_base_ordinals().last().copied();
        self.active_since = (active_first < Some(self.next_ordinal)).then_some(now);
    }

    /// The batches of each segment whose first batches are numbered `ordinals`.
    fn segment_batches(&self, ordinals: &[u64]) -> Vec<&[MBatch]> {
        ordinals
            .iter()
            .enumerate()
            .map(|(i, &first)| {
                let next = ordinals.get(i + 1).copied().unwrap_or(u64::MAX);
                let from = self.batches.partition_point(|b| b.ordinal < first);
                let to = self.batches.partition_point(|b| b.ordinal < next);
                &self.batches[from..to]
            })
            .collect()
    }

    /// Sizes of the segments whose first batches are numbered `ordinals` (the log's), from
    /// the batches they hold.
    fn segment_sizes(&self, ordinals: &[u64]) -> Vec<u64> {
        ordinals
            .iter()
            .enumerate()
            .map(|(i, &first)| {
                let next = ordinals.get(i + 1).copied().unwrap_or(u64::MAX);
                self.batches
                    .iter()
                    .filter(|b| b.ordinal >= first && b.ordinal < next)
                    .map(|b| b.bytes.len() as u64)
                    .sum()
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

fn open(dir: &std::path::Path, config: &LogConfig, clock: &cairn_storage::Clock) -> Log {
    let mut log = Log::open(dir, config.clone()).expect("open log");
    log.set_clock(clock.clone());
    log
}

/// Offsets, epochs and the segment layout against the model, after every operation. Drops
/// from the model the unreadable batches whose segments are gone.
fn check_state(log: &mut Log, m: &mut Model, config: &LogConfig) -> Result<(), TestCaseError> {
    prop_assert_eq!(log.log_start_offset(), m.log_start, "log start");
    prop_assert_eq!(log.next_ordinal(), m.next_ordinal, "next ordinal");
    prop_assert_eq!(log.log_end_offset(), m.log_end, "log end");
    prop_assert!(log.log_start_offset() <= log.log_end_offset());
    prop_assert!(log.flushed_offset() <= m.log_end, "flushed past the end");

    prop_assert_eq!(log.epochs(), &m.epochs[..], "epoch history");
    prop_assert_eq!(log.latest_epoch(), m.epochs.last().map(|e| e.epoch));
    for e in m.epochs.iter().map(|e| e.epoch).chain([-1, m.epoch + 1]) {
        for epoch in [e, e + 1] {
            prop_assert_eq!(
                log.epoch_end_offset(epoch),
                m.epoch_end_offset(epoch),
                "epoch_end_offset({})",
                epoch
            );
        }
    }
    let live = m.live();
    let step = (live.len() / 8).max(1);
    for (i, b) in live.iter().enumerate() {
        if b.marker || (i % step != 0 && i + 1 != live.len()) {
            continue;
        }
        for o in [b.base.max(m.log_start), b.next - 1] {
            prop_assert_eq!(log.epoch_at(o), Some(b.epoch), "epoch at {}", o);
            prop_assert_eq!(m.epoch_for(o), Some(b.epoch), "model epoch at {}", o);
        }
    }

    let bases = log.segment_bases();
    let ordinals = log.segment_base_ordinals();
    prop_assert_eq!(bases.len(), log.segment_count());
    prop_assert_eq!(ordinals.len(), bases.len());
    prop_assert!(bases.windows(2).all(|w| w[0] < w[1]), "bases {:?}", bases);
    prop_assert!(
        ordinals.windows(2).all(|w| w[0] < w[1]),
        "ordinals {:?}",
        ordinals
    );
    prop_assert!(
        bases[0] <= m.log_start,
        "first segment {} starts past the log start {}",
        bases[0],
        m.log_start
    );
    // Batches of deleted segments leave the model; they all lay below the first segment.
    let gone = m.batches.partition_point(|b| b.ordinal < ordinals[0]);
    for b in &m.batches[..gone] {
        prop_assert!(
            b.next <= bases[0],
            "batch {} was deleted with its segment but reaches past {}",
            b.ordinal,
            bases[0]
        );
    }
    m.batches.drain(..gone);
    prop_assert_eq!(log.first_ordinal(), m.first_ordinal(), "first ordinal");
    // Every segment starts with a batch and is named by its base offset (an empty active
    // segment by the log end).
    for (i, (&base, &ordinal)) in bases.iter().zip(&ordinals).enumerate() {
        match m.batches.binary_search_by_key(&ordinal, |b| b.ordinal) {
            Ok(j) => prop_assert_eq!(m.batches[j].base, base, "segment {} base", i),
            Err(_) => prop_assert!(
                i + 1 == bases.len() && ordinal == m.next_ordinal && base == m.log_end,
                "segment {} (base {}, ordinal {}) starts at no batch",
                i,
                base,
                ordinal
            ),
        }
    }
    let step = (m.batches.len() / 6).max(1);
    for (i, b) in m.batches.iter().enumerate() {
        if i % step != 0 && i + 1 != m.batches.len() {
            continue;
        }
        let info = log
            .batch_at_ordinal(b.ordinal)
            .map_err(|e| TestCaseError::fail(format!("batch_at_ordinal({}): {e}", b.ordinal)))?;
        prop_assert_eq!(
            (info.base_offset, info.next_offset, info.leader_epoch),
            (b.base, b.next, b.epoch),
            "batch_at_ordinal({})",
            b.ordinal
        );
        if !b.marker {
            prop_assert_eq!(
                log.ordinal_of_offset(b.next - 1)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?,
                b.ordinal
            );
        }
    }
    prop_assert!(
        matches!(
            log.batch_at_ordinal(m.next_ordinal),
            Err(StorageError::OrdinalOutOfRange { .. })
        ),
        "batch_at_ordinal past the end"
    );
    let sizes = m.segment_sizes(&ordinals);
    prop_assert_eq!(log.size_bytes(), sizes.iter().sum::<u64>(), "size_bytes");
    for (base, size) in bases.iter().zip(&sizes) {
        prop_assert!(
            *size <= config.segment_bytes as u64,
            "segment {} holds {} bytes > segment.bytes",
            base,
            size
        );
    }
    Ok(())
}

/// Everything readable reads back as the model has it, batch by batch: every batch by
/// ordinal, and the record batches by offset.
fn check_content(log: &mut Log, m: &Model) -> Result<(), TestCaseError> {
    let live = m.live();
    let mut stored = Vec::new();
    if let Some(first) = live.first() {
        let mut ordinal = first.ordinal;
        while ordinal < m.next_ordinal {
            let r = log
                .read_ordinals(ordinal, u64::MAX, 64 * 1024)
                .map_err(|e| TestCaseError::fail(format!("read_ordinals({ordinal}): {e}")))?;
            let bytes = r
                .load()
                .map_err(|e| TestCaseError::fail(format!("load: {e}")))?;
            let before = stored.len();
            for item in batch::iter_batches(&bytes, u32::MAX) {
                let (_, h, b) = item.map_err(|e| TestCaseError::fail(e.to_string()))?;
                stored.push((h, b.to_vec()));
            }
            prop_assert!(
                stored.len() > before,
                "read_ordinals({}) read nothing",
                ordinal
            );
            ordinal += (stored.len() - before) as u64;
        }
    }
    prop_assert_eq!(stored.len(), live.len(), "number of stored batches");
    for ((h, bytes), b) in stored.iter().zip(live) {
        prop_assert_eq!(h.base_offset as u64, b.base);
        prop_assert_eq!(h.next_offset() as u64, b.next);
        prop_assert_eq!(h.is_marker(), b.marker);
        prop_assert_eq!(h.partition_leader_epoch, b.epoch);
        prop_assert_eq!(h.max_timestamp, b.max_ts);
        prop_assert!(bytes == &b.bytes, "bytes of batch {} differ", b.ordinal);
    }
    let records: Vec<_> = read_all(log, m.log_start)
        .into_iter()
        .filter(|(h, _)| !h.is_marker())
        .collect();
    let want: Vec<&MBatch> = live.iter().filter(|b| !b.marker).collect();
    prop_assert_eq!(
        records.len(),
        want.len(),
        "number of record batches read by offset"
    );
    for ((_, bytes), b) in records.iter().zip(want) {
        prop_assert!(bytes == &b.bytes, "bytes of batch {} differ", b.ordinal);
    }
    Ok(())
}

fn check_read(
    log: &mut Log,
    m: &Model,
    from: u64,
    max_bytes: u32,
    end: Option<u64>,
) -> Result<(), TestCaseError> {
    let result = match end {
        None => log.read(from, max_bytes),
        Some(end) => log.read_bounded(from, max_bytes, end),
    };
    if from < m.log_start || from > m.log_end {
        match result {
            Err(StorageError::OffsetOutOfRange {
                offset,
                log_start,
                log_end,
            }) => {
                prop_assert_eq!((offset, log_start, log_end), (from, m.log_start, m.log_end));
            }
            other => prop_assert!(false, "read({}) out of range gave {:?}", from, other),
        }
        return Ok(());
    }
    let r = result.map_err(|e| TestCaseError::fail(format!("read({from}): {e}")))?;
    let want = m.expected_read(from, max_bytes, end.unwrap_or(u64::MAX));
    prop_assert_eq!(r.log_start_offset, m.log_start);
    prop_assert_eq!(r.log_end_offset, m.log_end);
    let want_len: u64 = want.iter().map(|b| b.bytes.len() as u64).sum();
    prop_assert_eq!(
        r.total_bytes(),
        want_len,
        "bytes read from {} (max {}, end {:?}); batches wanted {:?}",
        from,
        max_bytes,
        end,
        want.iter()
            .map(|b| (b.base, b.bytes.len()))
            .collect::<Vec<_>>()
    );
    prop_assert_eq!(r.next_offset(), want.last().map(|b| b.next));
    prop_assert_eq!(r.is_empty(), want.is_empty());
    if let Some(first) = r.slices.first() {
        prop_assert_eq!(first.first_offset(), want[0].base);
    }
    for s in &r.slices {
        prop_assert!(!s.is_empty());
    }
    for w in r.slices.windows(2) {
        prop_assert_eq!(
            w[0].next_offset(),
            w[1].first_offset(),
            "slices are contiguous"
        );
    }
    let loaded = r
        .load()
        .map_err(|e| TestCaseError::fail(format!("load of read({from}): {e}")))?;
    let expected: Vec<u8> = want.iter().flat_map(|b| b.bytes.iter().copied()).collect();
    prop_assert_eq!(loaded.len(), expected.len());
    prop_assert!(loaded[..] == expected[..], "read({}) bytes differ", from);
    if let Some(end) = end {
        for b in want {
            prop_assert!(b.next <= end && b.base < end);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------------------------

/// Applies one operation that keeps the same `Log` to both the log and the model.
fn apply(log: &mut Log, m: &mut Model, op: &Op, config: &LogConfig) -> Result<(), TestCaseError> {
    match *op {
        Op::Append {
            records,
            value_size,
            ts_step,
            epoch_bump,
        } => {
            m.ts = (m.ts + ts_step).max(0);
            if epoch_bump {
                m.epoch += 1;
            }
            let original = common::batch(m.ts, records, value_size, m.seed);
            m.seed = m.seed.wrapping_add(37);
            let info = log
                .append(&original, m.epoch)
                .map_err(|e| TestCaseError::fail(format!("append: {e}")))?;
            let base = m.log_end;
            let next = base + records as u64;
            prop_assert_eq!(
                (
                    info.ordinal,
                    info.base_offset,
                    info.next_offset,
                    info.max_timestamp
                ),
                (m.next_ordinal, base, next, m.ts)
            );
            if config.flush_messages.is_some_and(|n| records as u64 >= n) {
                prop_assert_eq!(log.flushed_offset(), next, "flush.messages");
            }
            m.push_epoch(m.epoch, base, m.next_ordinal);
            m.note_append(log, info.ordinal);
            m.batches.push(MBatch {
                ordinal: m.next_ordinal,
                base,
                next,
                marker: false,
                epoch: m.epoch,
                max_ts: m.ts,
                bytes: as_stored(&original, base, m.epoch),
            });
            m.log_end = next;
            m.next_ordinal += 1;
        }
        Op::AppendMarker {
            payload_size,
            epoch_bump,
        } => {
            if epoch_bump {
                m.epoch += 1;
            }
            let payload = vec![m.seed; payload_size];
            m.seed = m.seed.wrapping_add(11);
            let original = batch::marker::build(batch::control::RAFT_NOOP, &payload);
            let info = log
                .append(&original, m.epoch)
                .map_err(|e| TestCaseError::fail(format!("append marker: {e}")))?;
            let base = m.log_end;
            prop_assert_eq!(
                (
                    info.ordinal,
                    info.base_offset,
                    info.next_offset,
                    info.max_timestamp
                ),
                (m.next_ordinal, base, base, -1)
            );
            if config.flush_messages == Some(1) {
                prop_assert_eq!(log.flushed_offset(), base, "flush.messages");
            }
            m.push_epoch(m.epoch, base, m.next_ordinal);
            m.note_append(log, info.ordinal);
            m.batches.push(MBatch {
                ordinal: m.next_ordinal,
                base,
                next: base,
                marker: true,
                epoch: m.epoch,
                max_ts: -1,
                bytes: as_stored(&original, base, m.epoch),
            });
            m.next_ordinal += 1;
        }
        Op::Read {
            from,
            max_bytes,
            end,
        } => {
            let from = m.resolve(from);
            let end = end.map(|p| m.resolve(p));
            check_read(log, m, from, max_bytes, end)?;
        }
        Op::Roll => {
            log.roll()
                .map_err(|e| TestCaseError::fail(format!("roll: {e}")))?;
            prop_assert_eq!(log.segment_bases().last().copied(), Some(m.log_end));
        }
        Op::TruncateTo(p) => {
            let offset = m.resolve(p);
            log.truncate_to(offset)
                .map_err(|e| TestCaseError::fail(format!("truncate_to({offset}): {e}")))?;
            if offset < m.log_end {
                m.truncate_to(offset);
                m.reset_roll_clock(log);
            }
        }
        Op::TruncateToOrdinal(i) => {
            let first = log.first_ordinal();
            let low = first.saturating_sub(1);
            let ordinal = low + i.index((m.next_ordinal + 2 - low) as usize) as u64;
            let first_base = log.segment_bases()[0];
            log.truncate_to_ordinal(ordinal)
                .map_err(|e| TestCaseError::fail(format!("truncate_to_ordinal({ordinal}): {e}")))?;
            let truncated = ordinal < m.next_ordinal;
            if ordinal >= m.next_ordinal {
                // No-op.
            } else if ordinal <= first {
                m.batches.clear();
                m.log_start = first_base;
                m.log_end = first_base;
                m.epochs.clear();
                m.next_ordinal = ordinal;
            } else {
                m.cut_at((ordinal - first) as usize);
                prop_assert_eq!(m.next_ordinal, ordinal);
            }
            if truncated {
                m.reset_roll_clock(log);
            }
        }
        Op::ReadOrdinals {
            from,
            max_batches,
            max_bytes,
        } => {
            let first = log.first_ordinal();
            let from = first + from.index((m.next_ordinal - first + 1) as usize) as u64;
            let read = log
                .read_ordinals(from, max_batches, max_bytes)
                .map_err(|e| TestCaseError::fail(format!("read_ordinals({from}): {e}")))?;
            let mut expected: Vec<u8> = Vec::new();
            let mut taken = 0u64;
            for b in &m.batches[(from - first) as usize..] {
                if taken == max_batches
                    || (taken > 0 && expected.len() + b.bytes.len() > max_bytes as usize)
                {
                    break;
                }
                expected.extend_from_slice(&b.bytes);
                taken += 1;
            }
            let loaded = read
                .load()
                .map_err(|e| TestCaseError::fail(format!("load: {e}")))?;
            prop_assert!(
                loaded[..] == expected[..],
                "read_ordinals({}, {}, {}) returned {} bytes, expected {}",
                from,
                max_batches,
                max_bytes,
                loaded.len(),
                expected.len()
            );
            if taken > 0 {
                let last = &m.batches[(from - first + taken - 1) as usize];
                prop_assert_eq!(read.next_offset(), Some(last.next));
            }
        }
        Op::DeleteRecordsBefore(p) => {
            let offset = m.resolve(p);
            let start_before = m.log_start;
            let before = log.segment_bases();
            let result = log.delete_records_before(offset);
            if offset > m.log_end {
                prop_assert!(
                    matches!(result, Err(StorageError::OffsetOutOfRange { .. })),
                    "delete_records_before({}) past the end gave {:?}",
                    offset,
                    result
                );
            } else {
                result.map_err(|e| {
                    TestCaseError::fail(format!("delete_records_before({offset}): {e}"))
                })?;
                if offset > m.log_start {
                    m.log_start = offset;
                }
                // Only whole segments below the new start went (and the active segment may
                // have been rolled when everything was deleted).
                let after = log.segment_bases();
                let kept: Vec<u64> = after
                    .iter()
                    .copied()
                    .filter(|b| before.contains(b))
                    .collect();
                prop_assert!(
                    before.ends_with(&kept),
                    "segments {:?} -> {:?}",
                    before,
                    after
                );
                // The epoch history keeps covering every batch still on disk; it is trimmed
                // when the oldest segment goes.
                if after[0] != before[0] {
                    m.epochs_from_start(log.first_ordinal());
                }
                if offset > start_before {
                    prop_assert!(
                        after.get(1).is_none_or(|&b| b > offset),
                        "a segment wholly below {} survived: {:?}",
                        offset,
                        after
                    );
                }
            }
        }
        Op::RetentionBytes(i) => {
            let size = log.size_bytes();
            let limit = i.index(size as usize + 1024) as u64;
            let bases = log.segment_bases();
            let ordinals = log.segment_base_ordinals();
            let sizes = m.segment_sizes(&ordinals);
            // First, segments wholly below the log start hold nothing readable and go.
            // Then Kafka's rule: delete the oldest sealed segment while what would remain
            // is still at least retention.bytes.
            let mut total = size;
            let mut deleted = 0;
            while deleted + 1 < bases.len() && bases[deleted + 1] <= m.log_start {
                total -= sizes[deleted];
                deleted += 1;
            }
            while deleted + 1 < bases.len() && total - sizes[deleted] >= limit {
                total -= sizes[deleted];
                deleted += 1;
            }
            let current = log.config().clone();
            log.set_config(LogConfig {
                retention_bytes: Some(limit),
                ..current.clone()
            })
            .map_err(|e| TestCaseError::fail(format!("set_config: {e}")))?;
            let outcome = log
                .apply_retention()
                .map_err(|e| TestCaseError::fail(format!("apply_retention: {e}")))?;
            log.set_config(current)
                .map_err(|e| TestCaseError::fail(format!("set_config: {e}")))?;
            prop_assert_eq!(
                outcome,
                RetentionOutcome {
                    segments_deleted: deleted,
                    bytes_deleted: size - total,
                },
                "retention.bytes {} over segments {:?} of sizes {:?}",
                limit,
                bases,
                sizes
            );
            prop_assert_eq!(log.segment_bases(), bases[deleted..].to_vec());
            prop_assert_eq!(log.size_bytes(), total);
            if deleted > 0 {
                m.log_start = m.log_start.max(bases[deleted]);
                m.epochs_from_start(ordinals[deleted]);
            }
        }
        Op::RetentionTime { segment, delta } => retention_by_time(log, m, segment, delta)?,
        Op::AdvanceClock(ms) => {
            let now = m.now.fetch_add(ms, Ordering::SeqCst) + ms;
            let bases = log.segment_bases();
            let ordinals = log.segment_base_ordinals();
            let (active_base, active_ordinal) =
                (bases[bases.len() - 1], ordinals[ordinals.len() - 1]);
            // `segment.ms` after the active segment's first append (or reopen), a tick rolls
            // it, if it holds an offset (a segment of markers alone cannot be sealed).
            let rolls = m.next_ordinal > active_ordinal
                && m.log_end > active_base
                && m.active_since
                    .is_some_and(|since| now - since >= config.segment_ms as i64);
            log.tick()
                .map_err(|e| TestCaseError::fail(format!("tick: {e}")))?;
            let (mut want_bases, mut want_ordinals) = (bases, ordinals);
            if rolls {
                want_bases.push(m.log_end);
                want_ordinals.push(m.next_ordinal);
            }
            prop_assert_eq!(
                log.segment_bases(),
                want_bases,
                "segments after tick (rolls: {})",
                rolls
            );
            prop_assert_eq!(log.segment_base_ordinals(), want_ordinals);
        }
        Op::Flush => {
            log.flush()
                .map_err(|e| TestCaseError::fail(format!("flush: {e}")))?;
            prop_assert_eq!(log.flushed_offset(), m.log_end);
        }
        Op::CloseReopen | Op::CrashReopen | Op::PowerCut(_) => unreachable!("handled by run"),
    }
    Ok(())
}

/// `apply_retention` with `retention.ms` alone (and the deletion of segments wholly below the
/// log start), predicted from the batches' timestamps and the segment layout.
fn retention_by_time(
    log: &mut Log,
    m: &mut Model,
    segment: Index,
    delta: i64,
) -> Result<(), TestCaseError> {
    let bases = log.segment_bases();
    let ordinals = log.segment_base_ordinals();
    let segments = m.segment_batches(&ordinals);
    let newest: Vec<Option<i64>> = segments
        .iter()
        .map(|bs| bs.iter().filter(|b| !b.marker).map(|b| b.max_ts).max())
        .collect();
    let sizes: Vec<u64> = segments
        .iter()
        .map(|bs| bs.iter().map(|b| b.bytes.len() as u64).sum())
        .collect();
    let sealed = bases.len() - 1;
    // Only a segment holding an offset is sealed, so every sealed segment has a record and a
    // timestamp: retention never falls back to a file's modification time, which the model
    // cannot know.
    for (base, t) in bases.iter().zip(&newest[..sealed]) {
        prop_assert!(t.is_some(), "sealed segment {} holds no timestamp", base);
    }
    // "Now - retention.ms" at (delta from) a segment's newest timestamp, or past them all.
    let now = m.now();
    let stamps: Vec<i64> = newest.iter().flatten().copied().collect();
    let threshold = match stamps.get(segment.index(stamps.len() + 1)) {
        Some(t) => t + delta,
        None => stamps.iter().max().map_or(now, |t| t + 1),
    };
    let retention_ms = (now - threshold).max(0) as u64;
    let expired_before = now - retention_ms as i64;
    // Oldest first, sealed segments whose newest batch expired go; when only the active
    // segment is left and all of it expired, it is rolled and goes too (if it holds an offset).
    let expired = |i: usize| newest[i].is_some_and(|t| t < expired_before);
    let mut deleted = 0;
    while deleted < sealed && expired(deleted) {
        deleted += 1;
    }
    let all_gone = deleted == sealed && expired(sealed) && m.log_end > bases[sealed];
    let mut start = m.log_start;
    let (want_bases, want_ordinals) = if all_gone {
        start = m.log_end;
        (vec![m.log_end], vec![m.next_ordinal])
    } else {
        if deleted > 0 {
            start = start.max(bases[deleted]);
        }
        // Then the segments wholly below the log start.
        while deleted < sealed && bases[deleted + 1] <= start {
            deleted += 1;
        }
        (bases[deleted..].to_vec(), ordinals[deleted..].to_vec())
    };
    let gone = deleted + usize::from(all_gone);
    let current = log.config().clone();
    log.set_config(LogConfig {
        retention_ms: Some(retention_ms),
        retention_bytes: None,
        ..current.clone()
    })
    .map_err(|e| TestCaseError::fail(format!("set_config: {e}")))?;
    let outcome = log
        .apply_retention()
        .map_err(|e| TestCaseError::fail(format!("apply_retention: {e}")))?;
    log.set_config(current)
        .map_err(|e| TestCaseError::fail(format!("set_config: {e}")))?;
    prop_assert_eq!(
        outcome,
        RetentionOutcome {
            segments_deleted: gone,
            bytes_deleted: sizes[..gone].iter().sum(),
        },
        "retention.ms {} (expired before {}) over segments {:?} with newest timestamps {:?}",
        retention_ms,
        expired_before,
        bases,
        newest
    );
    prop_assert_eq!(log.segment_bases(), want_bases);
    prop_assert_eq!(log.segment_base_ordinals(), want_ordinals.clone());
    if gone > 0 {
        m.log_start = start;
        m.epochs_from_start(want_ordinals[0]);
    }
    Ok(())
}

fn system_now() -> i64 {
    cairn_storage::system_clock()()
}

/// Path of a segment file.
fn segment_file(dir: &std::path::Path, base: u64, ext: &str) -> std::path::PathBuf {
    dir.join(format!("{base:020}.{ext}"))
}

fn remove_segment(dir: &std::path::Path, base: u64) -> Result<(), TestCaseError> {
    for ext in ["log", "index", "timeindex"] {
        let path = segment_file(dir, base, ext);
        std::fs::remove_file(&path)
            .map_err(|e| TestCaseError::fail(format!("remove {}: {e}", path.display())))?;
    }
    Ok(())
}

/// Overwrites `path` with zeros from `from` to its end (its length unchanged).
fn zero_from(path: &std::path::Path, from: u64) -> Result<(), TestCaseError> {
    use std::os::unix::fs::FileExt;
    let fail = |e: std::io::Error| TestCaseError::fail(format!("zero {}: {e}", path.display()));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(fail)?;
    let len = f.metadata().map_err(fail)?.len();
    if len > from {
        f.write_all_at(&vec![0; (len - from) as usize], from)
            .map_err(fail)?;
    }
    Ok(())
}

/// A power cut: drops the log (as a crash would), then cuts its files back as `cut` says,
/// never below what was durable, and makes the model the log that must come back. Returns
/// the flushed offset at the time of the cut.
fn power_cut(log: Log, m: &mut Model, cut: PowerCut) -> Result<u64, TestCaseError> {
    let flushed = log.flushed_offset();
    let dir = log.dir().to_path_buf();
    let bases = log.segment_bases();
    let ordinals = log.segment_base_ordinals();
    drop(log);
    // Every batch below the flushed offset was fsynced (a marker at it may not have been), and
    // so were the segments before the one holding it: recovery trusts them without a scan.
    let holding_flushed = bases.partition_point(|&b| b <= flushed).max(1) - 1;
    let durable = m.batches.partition_point(|b| b.base < flushed).max(
        m.batches
            .partition_point(|b| b.ordinal < ordinals[holding_flushed]),
    );
    let i = durable + cut.first_lost.index(m.batches.len() - durable + 1);
    let Some(lost) = m.batches.get(i).cloned() else {
        return Ok(flushed); // nothing lost this time
    };
    let s = ordinals.partition_point(|&o| o <= lost.ordinal) - 1;
    let in_segment: u64 = m.batches[..i]
        .iter()
        .filter(|b| b.ordinal >= ordinals[s])
        .map(|b| b.bytes.len() as u64)
        .sum();
    // Zeros only tear a batch if they overwrite something that was not zero already.
    let last_nonzero = lost.bytes.iter().rposition(|&b| b != 0).unwrap_or(0);
    let torn = cut.torn.map_or(0, |t| {
        let room = if cut.zero_fill {
            last_nonzero + 1
        } else {
            lost.bytes.len()
        };
        t.index(room) as u64
    });
    let pos = in_segment + torn;
    let log_path = segment_file(&dir, bases[s], "log");
    let removed = pos == 0 && s > 0 && cut.delete_empty && bases[s] > flushed;
    if removed {
        // Created after the last flush: its directory entry was never fsynced.
        remove_segment(&dir, bases[s])?;
    } else {
        if cut.zero_fill {
            zero_from(&log_path, pos)?;
        } else {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&log_path)
                .map_err(|e| TestCaseError::fail(format!("open {}: {e}", log_path.display())))?;
            f.set_len(pos)
                .map_err(|e| TestCaseError::fail(format!("cut {}: {e}", log_path.display())))?;
        }
        // The segment holds unflushed data, so recovery rebuilds its indexes: their pages
        // may never have been written back.
        for ext in ["index", "timeindex"] {
            zero_from(&segment_file(&dir, bases[s], ext), 0)?;
        }
    }
    // Later segments: gone, or (when the cut above leaves an invalid batch for recovery to
    // find) still there whole, written back before the earlier data was.
    let cut_is_visible = !removed && (cut.zero_fill || torn > 0);
    if !(cut.keep_later && cut_is_visible) {
        for &base in &bases[s + 1..] {
            remove_segment(&dir, base)?;
        }
    }
    // The log comes back holding the batches before the lost one. If its start had been
    // moved past them (DeleteRecords), it comes back empty at its start.
    if m.log_start > lost.base {
        m.batches.clear();
        m.log_end = m.log_start;
        m.epochs.clear();
        m.next_ordinal = lost.ordinal;
    } else {
        m.cut_at(i);
    }
    Ok(flushed)
}

fn run(config: &LogConfig, ops: &[Op]) -> Result<(), TestCaseError> {
    let dir = common::tempdir();
    let (clock, now) = manual_clock(CLOCK_START_MS);
    let mut log = open(dir.path(), config, &clock);
    let mut m = Model::new(now);
    check_state(&mut log, &mut m, config)?;
    for (n, op) in ops.iter().enumerate() {
        let context = |e: TestCaseError| TestCaseError::fail(format!("after op #{n} {op:?}: {e}"));
        log = match op {
            Op::CloseReopen => {
                log.close()
                    .map_err(|e| TestCaseError::fail(format!("close: {e}")))
                    .map_err(context)?;
                open(dir.path(), config, &clock)
            }
            Op::CrashReopen => {
                // A process crash: the page cache keeps every write, so nothing may be lost.
                drop(log);
                open(dir.path(), config, &clock)
            }
            Op::PowerCut(cut) => {
                let flushed = power_cut(log, &mut m, *cut).map_err(context)?;
                let log = open(dir.path(), config, &clock);
                prop_assert!(
                    log.log_end_offset() >= flushed,
                    "after op #{} {:?}: log end {} below the flushed offset {}",
                    n,
                    op,
                    log.log_end_offset(),
                    flushed
                );
                log
            }
            _ => {
                apply(&mut log, &mut m, op, config).map_err(context)?;
                log
            }
        };
        let reopened = matches!(op, Op::CloseReopen | Op::CrashReopen | Op::PowerCut(_));
        if reopened {
            m.reopened(log.first_ordinal());
            // `Log::open` dates the active segment by the system clock (the manual one is set
            // after it, and `set_clock` does not re-date it). The manual clock runs years
            // behind the system's (it starts in 2023 and moves at most a few hundred days),
            // so the reopened segment never comes of age by `tick` before its next roll.
            prop_assert!(
                m.now() + 365 * DAY_MS < system_now(),
                "the system clock is behind"
            );
            m.reset_roll_clock_at(&log, system_now());
        }
        // Every roll leaves an empty active segment, which has no age.
        if log.segment_base_ordinals().last() == Some(&m.next_ordinal) {
            m.active_since = None;
        }
        check_state(&mut log, &mut m, config).map_err(context)?;
        if reopened {
            prop_assert_eq!(log.flushed_offset(), m.log_end);
        }
        if !matches!(op, Op::Append { .. } | Op::Read { .. }) {
            check_content(&mut log, &m).map_err(context)?;
        }
    }
    check_content(&mut log, &m)?;
    log.close()
        .map_err(|e| TestCaseError::fail(format!("final close: {e}")))?;
    let mut log = open(dir.path(), config, &clock);
    m.reopened(log.first_ordinal());
    check_state(&mut log, &mut m, config)?;
    check_content(&mut log, &m)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn log_behaves_like_its_model(
        config in config(),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        run(&config, &ops)?;
    }
}

/// Regression (found by the model test): `delete_records_before` used to drop the leader
/// epochs that ended before the new log start while their batches stayed in the first
/// segment; after a crash, recovery found no epoch for them and cut the log there.
#[test]
fn recovery_keeps_batches_below_log_start_of_a_trimmed_epoch() {
    let dir = common::tempdir();
    let mut log = Log::open(dir.path(), small_config()).expect("open");
    log.append(&common::batch(1_000, 1, 0, 0), 0)
        .expect("append"); // offset 0, epoch 0
    log.append(&common::batch(1_000, 1, 0, 1), 1)
        .expect("append"); // offset 1, epoch 1
    log.delete_records_before(1).expect("delete records"); // epoch history: [(1, 1)]
    log.flush().expect("flush"); // offset 1 is even fsynced
    drop(log); // process crash
    let mut log = Log::open(dir.path(), small_config()).expect("reopen");
    assert_eq!(log.log_start_offset(), 1);
    assert_eq!(log.log_end_offset(), 2, "the batch at offset 1 was lost");
    assert_eq!(read_all(&mut log, 1).len(), 1);
}

/// Regression (found by the model test): `truncate_to(offset)` with the log start inside the
/// batch holding `offset` cut at that batch's base, below the log start, and left the log
/// start above the log end, so every later read failed with OffsetOutOfRange.
#[test]
fn truncate_into_the_batch_holding_the_log_start() {
    let dir = common::tempdir();
    let mut log = Log::open(dir.path(), small_config()).expect("open");
    log.append(&common::batch(1_000, 1, 0, 0), 0)
        .expect("append"); // offset 0
    log.append(&common::batch(1_000, 3, 0, 1), 0)
        .expect("append"); // offsets 1..=3
    log.delete_records_before(2).expect("delete records"); // log start 2, inside 1..=3
    log.truncate_to(3).expect("truncate"); // 3 > log start: not the "empty the log" case
    assert!(
        log.log_start_offset() <= log.log_end_offset(),
        "log start {} > log end {}",
        log.log_start_offset(),
        log.log_end_offset()
    );
    let info = log
        .append(&common::batch(1_000, 1, 0, 2), 0)
        .expect("append");
    let r = log
        .read(info.base_offset, 1 << 20)
        .expect("the new batch is readable");
    assert_eq!(r.slices[0].first_offset(), info.base_offset);
}
