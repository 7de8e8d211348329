//! Idempotent producer state of one partition (KIP-98), sans I/O.
//!
//! For each producer id the partition remembers the newest epoch and the last
//! [`BATCHES_PER_PRODUCER`] batches written (first and last sequence, offsets), as Kafka does.
//! A new batch is then one of:
//! - a *duplicate* of a remembered batch (a retry after a lost acknowledgement): it is not
//!   written again, and is acknowledged with the original offsets;
//! - *in order*: its first sequence follows the last batch's last sequence (wrapping at
//!   `i32::MAX`), or it starts a new epoch at sequence 0;
//! - refused: an older epoch (`INVALID_PRODUCER_EPOCH`, the producer was fenced) or a gap
//!   (`OUT_OF_ORDER_SEQUENCE_NUMBER`).
//!
//! The state is derived from the log (batch headers carry producer id, epoch and sequences),
//! so it is rebuilt on open by replaying headers from the last snapshot (`producer-state`,
//! written every few thousand batches and on close) to the log end.
//!
//! ```text
//! producer-state:   cairn-producer-state 1
//!                   offset <log offset the state is complete up to (exclusive)>
//!                   <producer id> <epoch> <first seq>:<last seq>:<base offset>:<last offset> ...
//!                   crc32 <8 hex digits>
//! ```

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use cairn_storage::batch::BatchHeader;

use crate::error::{ProducerError, Result};

/// Batches remembered per producer for duplicate detection (Kafka's value, which is also the
/// most a producer keeps in flight with idempotence enabled).
pub const BATCHES_PER_PRODUCER: usize = 5;

const FILE: &str = "producer-state";

/// A batch remembered for duplicate detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMeta {
    /// First sequence number.
    pub first_sequence: i32,
    /// Last sequence number.
    pub last_sequence: i32,
    /// Offset of the first record.
    pub base_offset: u64,
    /// Offset of the last record.
    pub last_offset: u64,
}

/// What the sequence check concluded about a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Not an idempotent batch, or the next one in order: write it.
    Append,
    /// Already written: acknowledge with these offsets, write nothing.
    Duplicate(BatchMeta),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMeta>,
}

/// Sequence state of all producers writing to one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

fn last_sequence(h: &BatchHeader) -> i32 {
    // Sequences wrap from i32::MAX to 0 (Kafka's DefaultRecordBatch.incrementSequence).
    ((h.base_sequence as i64 + h.last_offset_delta as i64) % (i32::MAX as i64 + 1)) as i32
}

fn next_sequence(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

impl ProducerStates {
    /// Number of producers tracked.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether no producer is tracked.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Checks a batch against the producer's state without changing it.
    pub fn check(&self, h: &BatchHeader) -> Result<SequenceCheck, ProducerError> {
        if h.producer_id < 0 {
            return Ok(SequenceCheck::Append);
        }
        let first = h.base_sequence;
        let Some(entry) = self.producers.get(&h.producer_id) else {
            // A producer this partition has never seen must start at sequence 0.
            return if first == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(ProducerError::OutOfOrderSequence {
                    producer_id: h.producer_id,
                    epoch: h.producer_epoch,
                    first_sequence: first,
                    expected: 0,
                })
            };
        };
        if h.producer_epoch < entry.epoch {
            return Err(ProducerError::InvalidProducerEpoch {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                current: entry.epoch,
            });
        }
        if h.producer_epoch > entry.epoch {
            return if first == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(ProducerError::OutOfOrderSequence {
                    producer_id: h.producer_id,
                    epoch: h.producer_epoch,
                    first_sequence: first,
                    expected: 0,
                })
            };
        }
        let last = last_sequence(h);
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_sequence == first && b.last_sequence == last)
        {
            return Ok(SequenceCheck::Duplicate(*dup));
        }
        let expected = entry
            .batches
            .back()
            .map_or(0, |b| next_sequence(b.last_sequence));
        if first != expected {
            return Err(ProducerError::OutOfOrderSequence {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                first_sequence: first,
                expected,
            });
        }
        Ok(SequenceCheck::Append)
    }

    /// Records a batch written at `base_offset` (as the log assigned it). Batches of
    /// non-idempotent producers are ignored.
    pub fn record(&mut self, h: &BatchHeader, base_offset: u64) {
        if h.producer_id < 0 || h.is_control() {
            return;
        }
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch != entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(BatchMeta {
            first_sequence: h.base_sequence,
            last_sequence: last_sequence(h),
            base_offset,
            last_offset: base_offset + h.last_offset_delta as u64,
        });
        while entry.batches.len() > BATCHES_PER_PRODUCER {
            entry.batches.pop_front();
        }
    }

    /// Forgets batches at or after `offset` (the log was truncated there), and producers left
    /// with none.
    pub fn truncate_to(&mut self, offset: u64) {
        self.producers.retain(|_, e| {
            e.batches.retain(|b| b.base_offset < offset);
            !e.batches.is_empty()
        });
    }

    /// Writes the state, complete up to (excluding) `offset`, to `dir/producer-state`.
    pub fn write_snapshot(&self, dir: &Path, offset: u64) -> Result<()> {
        Ok(cairn_storage::metafile::write(
            dir,
            FILE,
            &self.encode(offset),
        )?)
    }

    /// The state as the lines of a `producer-state` file (without its checksum line): also
    /// what a raft snapshot carries to a follower.
    pub fn encode(&self, offset: u64) -> String {
        let mut body = format!("cairn-producer-state 1\noffset {offset}\n");
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort();
        for id in ids {
            let e = &self.producers[id];
            body.push_str(&format!("{id} {}", e.epoch));
            for b in &e.batches {
                body.push_str(&format!(
                    " {}:{}:{}:{}",
                    b.first_sequence, b.last_sequence, b.base_offset, b.last_offset
                ));
            }
            body.push('\n');
        }
        body
    }

    /// The state [`ProducerStates::encode`] wrote and the offset it is complete up to.
    pub fn decode(body: &str) -> Option<(ProducerStates, u64)> {
        let lines: Vec<String> = body.lines().map(str::to_string).collect();
        Self::parse(&lines)
    }

    /// The snapshot in `dir` and the offset it is complete up to; `None` if there is none
    /// (or it is damaged, which is logged): the state is then rebuilt from the whole log.
    pub fn read_snapshot(dir: &Path) -> Result<Option<(ProducerStates, u64)>> {
        let Some(lines) = cairn_storage::metafile::read(dir, FILE)? else {
            return Ok(None);
        };
        let parsed = Self::parse(&lines);
        if parsed.is_none() {
            tracing::warn!(dir = %dir.display(), "ignoring unparsable producer-state snapshot");
        }
        Ok(parsed)
    }

    fn parse(lines: &[String]) -> Option<(ProducerStates, u64)> {
        let (magic, rest) = lines.split_first()?;
        if magic != "cairn-producer-state 1" {
            return None;
        }
        let (offset, rest) = rest.split_first()?;
        let offset = offset.strip_prefix("offset ")?.parse().ok()?;
        let mut producers = HashMap::new();
        for line in rest {
            let mut fields = line.split(' ');
            let id: i64 = fields.next()?.parse().ok()?;
            let epoch: i16 = fields.next()?.parse().ok()?;
            let mut batches = VecDeque::new();
            for f in fields {
                let v: Vec<&str> = f.split(':').collect();
                let [first, last, base, last_off] = v.as_slice() else {
                    return None;
                };
                batches.push_back(BatchMeta {
                    first_sequence: first.parse().ok()?,
                    last_sequence: last.parse().ok()?,
                    base_offset: base.parse().ok()?,
                    last_offset: last_off.parse().ok()?,
                });
            }
            producers.insert(id, ProducerEntry { epoch, batches });
        }
        Some((ProducerStates { producers }, offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_storage::batch;

    fn header(pid: i64, epoch: i16, seq: i32, records: i32) -> BatchHeader {
        let mut h = batch::parse_header(&batch::build_batch(0, &[b"x"])).expect("header");
        h.producer_id = pid;
        h.producer_epoch = epoch;
        h.base_sequence = seq;
        h.last_offset_delta = records - 1;
        h.records_count = records;
        h
    }

    #[test]
    fn sequences_duplicates_and_epochs() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check(&header(-1, -1, -1, 3)), Ok(SequenceCheck::Append));
        assert!(matches!(
            s.check(&header(7, 0, 5, 1)),
            Err(ProducerError::OutOfOrderSequence { expected: 0, .. })
        ));
        let b0 = header(7, 0, 0, 3);
        assert_eq!(s.check(&b0), Ok(SequenceCheck::Append));
        s.record(&b0, 100);
        let b1 = header(7, 0, 3, 2);
        assert_eq!(s.check(&b1), Ok(SequenceCheck::Append));
        s.record(&b1, 103);
        // A retry of either batch is a duplicate with the original offsets.
        assert!(matches!(
            s.check(&b0),
            Ok(SequenceCheck::Duplicate(BatchMeta {
                base_offset: 100,
                last_offset: 102,
                ..
            }))
        ));
        assert!(matches!(
            s.check(&b1),
            Ok(SequenceCheck::Duplicate(BatchMeta {
                base_offset: 103,
                ..
            }))
        ));
        // A gap is out of order; an older epoch is fenced; a new epoch restarts at 0.
        assert!(matches!(
            s.check(&header(7, 0, 6, 1)),
            Err(ProducerError::OutOfOrderSequence { expected: 5, .. })
        ));
        assert!(matches!(
            s.check(&header(7, 1, 3, 1)),
            Err(ProducerError::OutOfOrderSequence { expected: 0, .. })
        ));
        s.record(&header(7, 1, 0, 1), 200);
        assert!(matches!(
            s.check(&header(7, 0, 5, 1)),
            Err(ProducerError::InvalidProducerEpoch { current: 1, .. })
        ));
        // Only the last five batches are remembered.
        for (seq, offset) in (1..7).zip(201..) {
            let h = header(7, 1, seq, 1);
            assert_eq!(s.check(&h), Ok(SequenceCheck::Append));
            s.record(&h, offset);
        }
        assert!(
            s.check(&header(7, 1, 1, 1)).is_err(),
            "evicted batch is no longer a duplicate"
        );
        assert!(matches!(
            s.check(&header(7, 1, 6, 1)),
            Ok(SequenceCheck::Duplicate(_))
        ));
    }

    #[test]
    fn sequence_wraps_at_i32_max() {
        let mut s = ProducerStates::default();
        s.producers.insert(
            9,
            ProducerEntry {
                epoch: 0,
                batches: VecDeque::from([BatchMeta {
                    first_sequence: i32::MAX - 1,
                    last_sequence: i32::MAX,
                    base_offset: 0,
                    last_offset: 1,
                }]),
            },
        );
        assert_eq!(s.check(&header(9, 0, 0, 1)), Ok(SequenceCheck::Append));
        let straddling = header(9, 0, i32::MAX, 3);
        assert_eq!(last_sequence(&straddling), 1);
    }

    #[test]
    fn truncate_and_snapshot_round_trip() {
        let mut s = ProducerStates::default();
        s.record(&header(1, 0, 0, 2), 10);
        s.record(&header(1, 0, 2, 2), 12);
        s.record(&header(2, 3, 0, 1), 20);
        let dir = tempfile::tempdir().expect("tempdir");
        s.write_snapshot(dir.path(), 21).expect("write");
        let (loaded, offset) = ProducerStates::read_snapshot(dir.path())
            .expect("read")
            .expect("present");
        assert_eq!((loaded.clone(), offset), (s.clone(), 21));
        s.truncate_to(12);
        assert_eq!(s.len(), 1);
        assert!(matches!(
            s.check(&header(1, 0, 2, 2)),
            Ok(SequenceCheck::Append)
        ));
    }
}
