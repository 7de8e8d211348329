//! Cairn's segment storage engine: one partition's log of Kafka v2 record batches.
//!
//! The storage crate knows bytes, offsets, files and time; it knows nothing of Kafka
//! requests, raft or the network. Its one door is [`Log`].
//!
//! # On disk
//!
//! ```text
//! <partition dir>/
//!   .lock                                 flock()ed while a Log has the directory open
//!   partition.checkpoint                  log start offset, recovery point, clean-shutdown
//!                                         record (text + CRC-32; see `checkpoint`)
//!   leader-epoch-checkpoint               epoch -> first offset history (see `epoch`)
//!   cleaner.checkpoint                    compacted logs: end of the clean section
//!   <base>.log.cleaned / .log.swap        a clean in progress (see `clean`)
//!   00000000000000000000.log              segment: record batches back to back
//!   00000000000000000000.index            sparse offset index (mmapped, see `index`)
//!   00000000000000000000.timeindex        sparse time index   (mmapped)
//!   00000000000000004096.log              next segment, named by its first offset
//!   ...
//! ```
//!
//! Each `.log` holds Kafka v2 record batches byte for byte as producers sent them (see
//! [`batch`] for the header layout); the log only sets `baseOffset` and
//! `partitionLeaderEpoch`, the two fields outside the batch CRC. A fetch can therefore send
//! file ranges to a socket unchanged.
//!
//! # Durability and the flush policy
//!
//! [`Log::append`] writes the batch into the page cache with one `writev`. From that moment it
//! survives a crash of the process (`kill -9`, panic, OOM kill); it survives a crash of the
//! *machine* (power loss, kernel panic) once it is fsynced, which [`Log::flushed_offset`]
//! reports. When that happens is the flush policy:
//!
//! | setting | data-loss window on power loss |
//! |---|---|
//! | `flush.messages = 1` | none: every append is fsynced before `append` returns |
//! | `flush.messages = N` | up to N-1 records |
//! | `flush.ms = T` (with [`Log::tick`] called every few hundred ms) | about T ms + the tick period |
//! | neither (Kafka's default) | whatever the OS has not written back (Linux: ~30 s by default) |
//! | explicit [`Log::flush`] before acknowledging | none for what was acknowledged |
//! | [`Log::begin_sync`] / [`SyncJob::run`] / [`Log::finish_sync`] before acknowledging | none for what was acknowledged (the fsync runs off the owner's thread) |
//!
//! In every mode, a rolled segment is fsynced in the background right after the roll.
//!
//! Bytes are not enough: a file is reachable after a power cut only if its name is, and a name
//! is durable only once its directory is fsynced. Every create, rename and delete the log's
//! data depends on fsyncs its directory before anything that depends on it is reported
//! durable: the partition directory (in its parent) when [`Log::open`] creates it, segment
//! files at the next flush, checkpoints as they are replaced. [`durable`] is the one place
//! that does this, for the layers above too (data directory, topic files, partition removal).
//!
//! # Recovery
//!
//! See [`recovery`](crate::Log::open): after a clean [`Log::close`] the log reopens without
//! reading data; after a crash the segments past the last fsynced point are scanned batch by
//! batch, indexes rebuilt, and the log cut at the first torn or damaged batch, so a
//! partial or corrupt batch is never served and an fsynced one is never lost.
//!
//! # Memory
//!
//! No per-record or per-batch heap objects: per segment, a few words of metadata; open file
//! handles and index mappings only for the active segment and at most
//! `max_open_segments` sealed ones (LRU); scans use one fixed buffer.
#![warn(missing_docs)]

pub mod batch;
mod checkpoint;
mod clean;
mod config;
pub mod durable;
mod epoch;
mod error;
mod index;
mod log;
pub mod metafile;
mod mmap;
mod read;
mod recovery;
mod retention;
mod scan;
mod segment;
mod sync;

pub use batch::VerifiedBatch;
pub use clean::{
    CleanJob, CleanResult, CleanStats, CleanerSettings, CleanerState, RecordCodec, MAP_ENTRY_BYTES,
};
pub use config::{LogConfig, BROKER_ONLY_NAMES, KAFKA_NAMES};
pub use epoch::EpochEntry;
pub use error::{BatchError, Result, StorageError};
pub use log::{system_clock, AppendInfo, BatchInfo, Clock, Log, TimestampOffset};
pub use read::{FileSlice, LogRead};
pub use retention::{Deletion, RetentionOutcome};
pub use sync::SyncJob;
