//! Log compaction (`cleanup.policy=compact`): keep the latest record of every key.
//!
//! # What a clean does
//!
//! The log is split at `cleaned_until` (persisted in `cleaner.checkpoint`): below it, the
//! *clean* section holds at most one record per key; from it to the end of the sealed,
//! fsynced, committed segments, the *dirty* section. A clean
//!
//! 1. **maps** the dirty section: key hash (128-bit xxh3) → offset of the key's latest
//!    record, in a map bounded by `log.cleaner.dedupe.buffer.size`. When the map is full the
//!    pass stops at that batch: the rest stays dirty for the next pass;
//! 2. **rewrites** every sealed segment up to where the map reached, clean section included
//!    (a newer value can supersede a key there too), dropping each record whose key has a
//!    later record in the map, records without a key (Kafka refuses them on compacted topics
//!    and its cleaner drops them), and tombstones (null values) whose batch is older than
//!    `delete.retention.ms`;
//! 3. **swaps** each rewritten segment in, crash-safely (below), and moves `cleaned_until`.
//!
//! # Every batch stays
//!
//! The partition log is also the raft log, and a batch's ordinal is its raft entry number.
//! So a clean never removes or merges a batch: a batch that loses records is rebuilt with
//! the same header (base offset, `lastOffsetDelta`, timestamps, producer id, epoch and base
//! sequence, attributes) and the kept records byte for byte (a record's offset and timestamp
//! are deltas from the header, which does not change); a batch that loses all of them stays
//! as an empty batch (a 61-byte header, `recordsCount` 0), as Kafka keeps the last batch of
//! each producer. Offsets, ordinals, segment boundaries and the idempotent-producer state
//! (read from headers) are therefore unchanged, and a follower fetching a cleaned range gets
//! valid entries at the same raft indexes. Control and marker batches are copied unchanged.
//! The cost: 61 bytes per batch whose records are all gone.
//!
//! # What may be cleaned
//!
//! Only whole sealed segments that are fsynced (below the recovery point) and below the
//! caller's bound — the high watermark of a replicated log: a record that raft could still
//! truncate must never make an older value of its key disappear. `min.compaction.lag.ms`
//! holds back segments with newer records; a clean starts once the dirty share of the
//! cleanable bytes reaches `min.cleanable.dirty.ratio`, or when dirty data is older than
//! `max.compaction.lag.ms`.
//!
//! # Off the owner's thread
//!
//! [`Log::begin_clean`] (owner, cheap) picks the segments and takes their file handles;
//! [`CleanJob::run`] (any thread) reads them and writes `<base>.log.cleaned` and
//! `<base>.index.cleaned`, fsynced; [`Log::finish_clean`] (owner, a few renames) swaps them
//! in. Appends, fetches and retention go on meanwhile: sealed files never change, reads
//! already handed out keep the old file open, and a segment deleted or a log truncated
//! meanwhile makes `finish_clean` drop that part of the work.
//!
//! # Crash-safe swap
//!
//! ```text
//! run:     write <base>.log.cleaned + <base>.index.cleaned, fsync both
//! finish:  rename <base>.log.cleaned -> <base>.log.swap (every segment), fsync dir  <- commit
//!          rename the replaced files (and a merge's later members) to *.deleted
//!          rename <base>.index.cleaned -> <base>.index (a merge: also .timeindex),
//!          <base>.log.swap -> <base>.log; fsync dir; write cleaner.checkpoint;
//!          a background thread unlinks the *.deleted files
//! open:    *.cleaned, *.deleted      -> deleted (before the commit: roll back)
//!          <base>.log.swap           -> delete <base>.index and .timeindex, rename to
//!                                       <base>.log, delete the segments inside its range
//!                                       (roll forward; indexes are rebuilt from the log)
//! ```
//!
//! A merge folds a run of consecutive cleaned segments that fit `segment.bytes` into the
//! first (`<first>.log.cleaned` holds them all, with offset and time indexes built from
//! the members'): batches and ordinals are unchanged, the later members' files go.
//!
//! A crash at any point leaves every segment wholly old or wholly cleaned, never a mix
//! within a segment; either is a valid state of the log (the cleaned one only lacks records
//! that a later record of the same key supersedes).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::batch::{
    self, get_varint as varint, BatchHeader, ATTR_COMPRESSION_MASK, HEADER_LEN, LOG_OVERHEAD,
};
use crate::checkpoint::sync_dir;
use crate::error::{IoContext, Result, StorageError};
use crate::log::Log;
use crate::scan::read_full_at;
use crate::segment::{file_name, Segment, INDEX_EXT, LOG_EXT, TIME_INDEX_EXT};

/// Suffix of a segment file a clean is writing (deleted by recovery).
pub(crate) const CLEANED_SUFFIX: &str = "cleaned";
/// Suffix of a cleaned segment whose swap committed (completed by recovery).
pub(crate) const SWAP_SUFFIX: &str = "swap";
/// Suffix of a file a swap replaced, waiting to be unlinked (deleted by recovery).
pub(crate) const DELETED_SUFFIX: &str = "deleted";
/// Name of the file holding `cleaned_until`.
const CHECKPOINT: &str = "cleaner.checkpoint";
/// Bytes of dedupe buffer one map entry is counted at: a 16-byte hash, an 8-byte offset and
/// the hash table's own overhead.
pub const MAP_ENTRY_BYTES: usize = 32;
/// A merged segment is fsynced every this many bytes as it is written.
const SYNC_EVERY_BYTES: usize = 1 << 20;
/// Read buffer of a clean (batches larger than this are read whole).
const READ_BUFFER_BYTES: usize = 1 << 20;

/// Compression codecs for batches the cleaner must rewrite. Storage knows no codec itself;
/// without one, compressed batches are kept as they are (their keys neither supersede nor
/// are superseded), which loses nothing and compacts less.
pub trait RecordCodec: Send + Sync + std::fmt::Debug {
    /// The records of a batch compressed with codec `codec` (`attributes & 7`), at most
    /// `max_bytes` of them.
    fn decompress(
        &self,
        codec: u8,
        compressed: &[u8],
        max_bytes: usize,
    ) -> std::result::Result<Vec<u8>, String>;
    /// `records` compressed with codec `codec`.
    fn compress(&self, codec: u8, records: &[u8]) -> std::result::Result<Vec<u8>, String>;
}

/// Settings of the cleaner that are the broker's, not a topic's.
#[derive(Debug, Clone)]
pub struct CleanerSettings {
    /// `log.cleaner.dedupe.buffer.size` (per cleaning thread): bounds the key map of one pass
    /// ([`MAP_ENTRY_BYTES`] per key).
    pub dedupe_buffer_bytes: usize,
    /// `log.cleaner.io.max.bytes.per.second`: read plus written bytes per second of one
    /// clean; `None` is unthrottled (Kafka's default).
    pub io_max_bytes_per_second: Option<u64>,
    /// Codecs for compressed batches.
    pub codec: Option<Arc<dyn RecordCodec>>,
}

impl Default for CleanerSettings {
    fn default() -> Self {
        CleanerSettings {
            dedupe_buffer_bytes: 128 << 20,
            io_max_bytes_per_second: None,
            codec: None,
        }
    }
}

/// What one clean did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    /// The new end of the clean section.
    pub cleaned_until: u64,
    /// Segments replaced by a cleaned copy.
    pub segments_rewritten: usize,
    /// Bytes read (map pass and rewrite pass).
    pub bytes_read: u64,
    /// Bytes of the segments rewritten, before.
    pub bytes_before: u64,
    /// Bytes of the segments rewritten, after.
    pub bytes_after: u64,
    /// Records removed.
    pub records_removed: u64,
    /// Wall time of the run.
    pub duration_ms: u64,
}

/// The cleaner's view of a log, for `topic describe` and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CleanerState {
    /// Offsets below this were cleaned.
    pub cleaned_until: u64,
    /// Dirty bytes over all bytes of sealed segments (what `min.cleanable.dirty.ratio` is
    /// compared with).
    pub dirty_ratio: f64,
    /// The last completed clean.
    pub last_run: Option<CleanStats>,
}

/// A sealed segment a clean reads.
#[derive(Debug)]
struct JobSegment {
    base: u64,
    /// The offset after the segment.
    next: u64,
    file: Arc<File>,
    path: PathBuf,
    size: u64,
    entries: u64,
}

/// A clean prepared by [`Log::begin_clean`], to be [run](CleanJob::run) on any thread.
#[derive(Debug)]
pub struct CleanJob {
    dir: PathBuf,
    segments: Vec<JobSegment>,
    dirty_start: u64,
    clean_end: u64,
    now_ms: i64,
    delete_retention_ms: u64,
    truncations: u64,
    /// `segment.bytes`: runs of small cleaned segments are merged up to this size.
    segment_bytes: u64,
}

/// A segment written by a clean, waiting to be swapped in.
#[derive(Debug)]
struct Cleaned {
    base: u64,
    entries: u64,
    size_after: u64,
    /// The segments this one replaces, with their batch counts: itself, and for a merge
    /// the later segments folded into it.
    members: Vec<(u64, u64)>,
    /// A merge wrote its own time index (`<base>.timeindex.cleaned`).
    time_index: bool,
}

/// The outcome of [`CleanJob::run`], for [`Log::finish_clean`].
#[derive(Debug)]
pub struct CleanResult {
    dir: PathBuf,
    truncations: u64,
    outcome: Result<(Vec<Cleaned>, CleanStats)>,
    /// Test hook: stop `finish_clean` after this many file operations, as a crash would.
    crash_after: Option<usize>,
}

impl CleanResult {
    /// Test hook: makes [`Log::finish_clean`] stop after `ops` renames or directory fsyncs
    /// and fail, leaving the files as a crash at that point would.
    #[doc(hidden)]
    pub fn crash_after(mut self, ops: usize) -> CleanResult {
        self.crash_after = Some(ops);
        self
    }
}

fn suffixed(dir: &Path, base: u64, ext: &str, suffix: &str) -> PathBuf {
    dir.join(format!("{}.{suffix}", file_name(base, ext)))
}

fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a cleaner file");
        }
    }
}

/// The hash map's hasher: keys are already 128-bit xxh3 hashes, so their low bits serve.
#[derive(Debug, Default)]
struct LowBits(u64);

impl Hasher for LowBits {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ *b as u64;
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

type OffsetMap = HashMap<u128, u64, BuildHasherDefault<LowBits>>;

fn key_hash(key: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(key)
}

/// One record of a batch's (uncompressed) records: where it lies and what the cleaner needs.
struct RecordView<'a> {
    /// The record's bytes, length prefix included.
    range: std::ops::Range<usize>,
    offset_delta: i64,
    key: Option<&'a [u8]>,
    tombstone: bool,
}

/// Parses `count` records from `records`; `None` if they do not parse.
fn parse_records(records: &[u8], count: i32) -> Option<Vec<RecordView<'_>>> {
    let mut out = Vec::with_capacity(count.max(0) as usize);
    let mut at = 0usize;
    for _ in 0..count {
        let start = at;
        let len = usize::try_from(varint(records, &mut at)?).ok()?;
        let end = at.checked_add(len)?;
        if end > records.len() {
            return None;
        }
        let body = &records[..end];
        let mut p = at + 1; // attributes
        varint(body, &mut p)?; // timestampDelta
        let offset_delta = varint(body, &mut p)?;
        let key_len = varint(body, &mut p)?;
        let key = if key_len < 0 {
            None
        } else {
            let k = body.get(p..p.checked_add(key_len as usize)?)?;
            p += key_len as usize;
            Some(k)
        };
        let value_len = varint(body, &mut p)?;
        out.push(RecordView {
            range: start..end,
            offset_delta,
            key,
            tombstone: value_len < 0,
        });
        at = end;
    }
    Some(out)
}

/// A batch's records, decompressed if needed; `None` if they cannot be had (a codec is
/// missing or fails), in which case the batch is kept as it is.
fn batch_records<'a>(
    batch: &'a [u8],
    h: &BatchHeader,
    codec: Option<&dyn RecordCodec>,
    max_bytes: usize,
) -> Option<std::borrow::Cow<'a, [u8]>> {
    let body = batch.get(HEADER_LEN..)?;
    if h.compression() == 0 {
        return Some(std::borrow::Cow::Borrowed(body));
    }
    match codec?.decompress(h.compression(), body, max_bytes) {
        Ok(v) => Some(std::borrow::Cow::Owned(v)),
        Err(e) => {
            tracing::warn!(base_offset = h.base_offset, error = %e, "cleaner cannot decompress a batch; keeping it as it is");
            None
        }
    }
}

/// Reads a segment's batches in order, each CRC-checked.
struct BatchReader<'a> {
    file: &'a File,
    path: &'a Path,
    size: u64,
    pos: u64,
    buf: Vec<u8>,
    buf_start: u64,
    buf_len: usize,
}

impl<'a> BatchReader<'a> {
    fn new(seg: &'a JobSegment) -> BatchReader<'a> {
        BatchReader {
            file: &seg.file,
            path: &seg.path,
            size: seg.size,
            pos: 0,
            buf: vec![0; READ_BUFFER_BYTES.min(seg.size as usize).max(HEADER_LEN)],
            buf_start: 0,
            buf_len: 0,
        }
    }

    /// Makes `[at, at + len)` resident; false at end of file.
    fn fill(&mut self, at: u64, len: usize) -> Result<bool> {
        let end = self.buf_start + self.buf_len as u64;
        if at >= self.buf_start && at + len as u64 <= end {
            return Ok(true);
        }
        if self.buf.len() < len {
            self.buf.resize(len, 0);
        }
        let want = (self.buf.len() as u64).min(self.size - at) as usize;
        let got = read_full_at(self.file, self.path, &mut self.buf[..want], at)?;
        self.buf_start = at;
        self.buf_len = got;
        Ok(got >= len)
    }

    /// The next batch: its position, header and bytes.
    fn next_batch(&mut self) -> Result<Option<(u64, BatchHeader, &[u8])>> {
        if self.pos >= self.size {
            return Ok(None);
        }
        let at = self.pos;
        let corrupt = |reason: String| StorageError::Corrupt {
            path: self.path.to_path_buf(),
            position: at,
            reason,
        };
        if !self.fill(at, HEADER_LEN)? {
            return Err(corrupt("file ends inside a batch header".into()));
        }
        let from = (at - self.buf_start) as usize;
        let h = batch::parse_header(&self.buf[from..from + HEADER_LEN])
            .map_err(|e| corrupt(e.to_string()))?;
        let total = h.total_len();
        if total > self.size - at || total < HEADER_LEN as u64 {
            return Err(corrupt(format!("batch of {total} bytes runs past the end")));
        }
        if !self.fill(at, total as usize)? {
            return Err(corrupt("file ends inside a batch".into()));
        }
        let from = (at - self.buf_start) as usize;
        let bytes = &self.buf[from..from + total as usize];
        let computed = batch::compute_crc(bytes);
        if computed != h.crc {
            return Err(corrupt(format!(
                "CRC-32C mismatch: header {:#010x}, data {computed:#010x}",
                h.crc
            )));
        }
        self.pos = at + total;
        Ok(Some((at, h, bytes)))
    }
}

/// Holds a clean to `log.cleaner.io.max.bytes.per.second`.
struct Throttle {
    limit: Option<u64>,
    started: Instant,
    bytes: u64,
}

impl Throttle {
    fn account(&mut self, bytes: u64) {
        self.bytes += bytes;
        let Some(limit) = self.limit.filter(|l| *l > 0) else {
            return;
        };
        let due = Duration::from_secs_f64(self.bytes as f64 / limit as f64);
        let elapsed = self.started.elapsed();
        if due > elapsed {
            std::thread::sleep((due - elapsed).min(Duration::from_secs(1)));
        }
    }
}

/// Which records of one batch survive, and the rebuilt batch if any record goes.
struct Filter<'m> {
    map: &'m OffsetMap,
    now_ms: i64,
    delete_retention_ms: u64,
    codec: Option<&'m dyn RecordCodec>,
    max_bytes: usize,
}

impl Filter<'_> {
    /// `Ok(None)`: keep the batch as it is; `Ok(Some((bytes, removed)))`: the rebuilt batch.
    fn apply(&self, bytes: &[u8], h: &BatchHeader) -> Result<Option<(Vec<u8>, u64)>> {
        if h.is_control() || h.records_count == 0 {
            return Ok(None);
        }
        let Some(records) = batch_records(bytes, h, self.codec, self.max_bytes) else {
            return Ok(None);
        };
        let Some(views) = parse_records(&records, h.records_count) else {
            tracing::warn!(
                base_offset = h.base_offset,
                "cleaner cannot parse a batch's records; keeping it as it is"
            );
            return Ok(None);
        };
        let expired = h.max_timestamp >= 0
            && h.max_timestamp
                .saturating_add(self.delete_retention_ms as i64)
                <= self.now_ms;
        let base = h.base_offset;
        let keep = |r: &RecordView<'_>| {
            let Some(key) = r.key else { return false };
            let offset = base.saturating_add(r.offset_delta) as u64;
            let latest = self.map.get(&key_hash(key)).is_none_or(|l| offset >= *l);
            latest && !(r.tombstone && expired)
        };
        let kept: Vec<&RecordView<'_>> = views.iter().filter(|r| keep(r)).collect();
        if kept.len() == views.len() {
            return Ok(None);
        }
        let mut plain = Vec::with_capacity(records.len());
        for r in &kept {
            plain.extend_from_slice(&records[r.range.clone()]);
        }
        let mut attributes = h.attributes;
        let body = if kept.is_empty() {
            // No records: no compressed stream to decode either.
            attributes &= !ATTR_COMPRESSION_MASK;
            Vec::new()
        } else if h.compression() == 0 {
            plain
        } else {
            match self.codec.map(|c| c.compress(h.compression(), &plain)) {
                Some(Ok(c)) => c,
                Some(Err(e)) => {
                    tracing::warn!(base_offset = h.base_offset, error = %e, "cleaner cannot recompress a batch; keeping it as it is");
                    return Ok(None);
                }
                None => return Ok(None),
            }
        };
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.extend_from_slice(&bytes[..HEADER_LEN]);
        out.extend_from_slice(&body);
        let length = (out.len() - LOG_OVERHEAD) as i32;
        out[batch::LENGTH_AT..batch::LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
        out[batch::ATTRIBUTES_AT..batch::ATTRIBUTES_AT + 2]
            .copy_from_slice(&attributes.to_be_bytes());
        out[batch::RECORDS_COUNT_AT..batch::RECORDS_COUNT_AT + 4]
            .copy_from_slice(&(kept.len() as i32).to_be_bytes());
        let crc = batch::compute_crc(&out);
        out[batch::CRC_AT..batch::CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        Ok(Some((out, (views.len() - kept.len()) as u64)))
    }
}

impl CleanJob {
    /// The offset the clean would reach if its key map held every key.
    pub fn clean_end(&self) -> u64 {
        self.clean_end
    }

    /// Maps the dirty section, writes the cleaned segments beside the originals and fsyncs
    /// them. Blocking file I/O: run it off the log owner's thread.
    pub fn run(self, settings: &CleanerSettings) -> CleanResult {
        let dir = self.dir.clone();
        let truncations = self.truncations;
        let outcome = self.run_inner(settings);
        if outcome.is_err() {
            // Leave nothing behind; recovery would delete them anyway.
            for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .ends_with(CLEANED_SUFFIX)
                {
                    remove_quietly(&entry.path());
                }
            }
        }
        CleanResult {
            dir,
            truncations,
            outcome,
            crash_after: None,
        }
    }

    fn run_inner(self, settings: &CleanerSettings) -> Result<(Vec<Cleaned>, CleanStats)> {
        let started = Instant::now();
        let mut throttle = Throttle {
            limit: settings.io_max_bytes_per_second,
            started,
            bytes: 0,
        };
        let codec = settings.codec.as_deref();
        let capacity = (settings.dedupe_buffer_bytes / MAP_ENTRY_BYTES).max(1);
        let max_bytes = self
            .segments
            .iter()
            .map(|s| s.size)
            .max()
            .unwrap_or(0)
            .clamp(1 << 20, 1 << 30) as usize;
        let mut stats = CleanStats::default();
        let mut map = OffsetMap::default();
        let mut clean_end = self.clean_end;

        // 1. The key map of the dirty section, up to where it fills.
        'map: for seg in self.segments.iter().filter(|s| s.next > self.dirty_start) {
            let mut reader = BatchReader::new(seg);
            while let Some((_, h, bytes)) = reader.next_batch()? {
                if (h.next_offset() as u64) <= self.dirty_start {
                    continue;
                }
                if h.base_offset as u64 >= clean_end {
                    break 'map;
                }
                if map.len() >= capacity && h.offset_span() > 0 {
                    clean_end = h.base_offset as u64;
                    break 'map;
                }
                stats.bytes_read += bytes.len() as u64;
                throttle.account(bytes.len() as u64);
                if h.is_control() || h.records_count == 0 {
                    continue;
                }
                let Some(records) = batch_records(bytes, &h, codec, max_bytes) else {
                    continue;
                };
                let Some(views) = parse_records(&records, h.records_count) else {
                    continue;
                };
                for r in views {
                    if let Some(key) = r.key {
                        let offset = h.base_offset.saturating_add(r.offset_delta) as u64;
                        map.insert(key_hash(key), offset);
                    }
                }
            }
        }

        // 2. Rewrite every segment below that point.
        let filter = Filter {
            map: &map,
            now_ms: self.now_ms,
            delete_retention_ms: self.delete_retention_ms,
            codec,
            max_bytes,
        };
        // Per segment below the clean end: its cleaned copy, if any record went.
        let mut outs: Vec<(&JobSegment, Option<Cleaned>)> = Vec::new();
        for seg in self.segments.iter().filter(|s| s.base < clean_end) {
            let log_path = suffixed(&self.dir, seg.base, LOG_EXT, CLEANED_SUFFIX);
            let index_path = suffixed(&self.dir, seg.base, INDEX_EXT, CLEANED_SUFFIX);
            let log_file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&log_path)
                .ctx("create", &log_path)?;
            let mut out = BufWriter::with_capacity(READ_BUFFER_BYTES, &log_file);
            let mut index = Vec::with_capacity(seg.entries as usize * 8);
            let mut written = 0u64;
            let mut removed = 0u64;
            let mut reader = BatchReader::new(seg);
            while let Some((_, h, bytes)) = reader.next_batch()? {
                stats.bytes_read += bytes.len() as u64;
                let rebuilt = match h.base_offset as u64 >= clean_end {
                    true => None,
                    false => filter.apply(bytes, &h)?,
                };
                let data: &[u8] = match &rebuilt {
                    Some((b, n)) => {
                        removed += n;
                        b
                    }
                    None => bytes,
                };
                let rel = u32::try_from(h.base_offset as u64 - seg.base).map_err(|_| {
                    StorageError::Corrupt {
                        path: seg.path.clone(),
                        position: written,
                        reason: "relative offset past u32".into(),
                    }
                })?;
                let position = u32::try_from(written).map_err(|_| StorageError::Corrupt {
                    path: seg.path.clone(),
                    position: written,
                    reason: "cleaned segment past 4 GiB".into(),
                })?;
                index.extend_from_slice(&rel.to_be_bytes());
                index.extend_from_slice(&position.to_be_bytes());
                out.write_all(data).ctx("write", &log_path)?;
                written += data.len() as u64;
                throttle.account((bytes.len() + data.len()) as u64);
            }
            out.flush().ctx("write", &log_path)?;
            drop(out);
            let entries = (index.len() / 8) as u64;
            if removed == 0 || entries != seg.entries {
                if entries != seg.entries {
                    tracing::warn!(path = %seg.path.display(), entries, expected = seg.entries, "segment changed under the cleaner; skipping it");
                }
                remove_quietly(&log_path);
                outs.push((seg, None));
                continue;
            }
            // Not fsynced yet: most are merged into another file right away (step 3).
            let mut index_file = File::create(&index_path).ctx("create", &index_path)?;
            index_file.write_all(&index).ctx("write", &index_path)?;
            stats.records_removed += removed;
            stats.bytes_before += seg.size;
            stats.bytes_after += written;
            outs.push((
                seg,
                Some(Cleaned {
                    base: seg.base,
                    entries,
                    size_after: written,
                    members: vec![(seg.base, entries)],
                    time_index: false,
                }),
            ));
        }

        // 3. Merge runs of consecutive small segments (at least one of them cleaned now).
        let mut cleaned = Vec::new();
        let mut i = 0;
        while i < outs.len() {
            let first = outs[i].0;
            let mut end = i + 1;
            let mut size = after_size(&outs[i]);
            while end < outs.len()
                && size + after_size(&outs[end]) <= self.segment_bytes
                && outs[end].0.next - first.base <= u32::MAX as u64
            {
                size += after_size(&outs[end]);
                end += 1;
            }
            let run = &mut outs[i..end];
            let worth = run.len() > 1 && run.iter().any(|(_, c)| c.is_some());
            match worth.then(|| self.merge(run)).transpose()? {
                Some(Some(merged)) => cleaned.push(merged),
                _ => cleaned.extend(run.iter_mut().filter_map(|(_, c)| c.take())),
            }
            i = end;
        }
        // What will be swapped in reaches the disk first (a merge fsynced its own files).
        for c in cleaned.iter().filter(|c| !c.time_index) {
            for ext in [LOG_EXT, INDEX_EXT] {
                let path = suffixed(&self.dir, c.base, ext, CLEANED_SUFFIX);
                File::open(&path)
                    .and_then(|f| f.sync_all())
                    .ctx("fsync", &path)?;
            }
        }
        stats.bytes_after = cleaned.iter().map(|c| c.size_after).sum();
        stats.bytes_before = outs
            .iter()
            .filter(|(s, _)| {
                cleaned
                    .iter()
                    .any(|c| c.members.iter().any(|m| m.0 == s.base))
            })
            .map(|(s, _)| s.size)
            .sum();
        stats.cleaned_until = clean_end;
        stats.segments_rewritten = cleaned.len();
        stats.duration_ms = started.elapsed().as_millis() as u64;
        Ok((cleaned, stats))
    }
}

/// A segment's size once this clean is swapped in.
fn after_size((seg, cleaned): &(&JobSegment, Option<Cleaned>)) -> u64 {
    cleaned.as_ref().map_or(seg.size, |c| c.size_after)
}

/// Index entries (8 bytes each) of a segment file set, checked against its batch count.
fn read_entries(path: &Path, width: usize) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) if b.len() % width == 0 => Ok(Some(b)),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).ctx("read", path),
    }
}

impl CleanJob {
    /// Writes the segments of `run` (each cleaned copy, or the original) as one segment
    /// named after the first: `<first>.log.cleaned` with its offset and time indexes.
    /// `None` (nothing written) if an index of a member cannot be trusted.
    fn merge(&self, run: &mut [(&JobSegment, Option<Cleaned>)]) -> Result<Option<Cleaned>> {
        let first = run[0].0.base;
        let log_path = suffixed(&self.dir, first, LOG_EXT, "merging.tmp");
        let file = File::create(&log_path).ctx("create", &log_path)?;
        let mut out = BufWriter::with_capacity(READ_BUFFER_BYTES, &file);
        let (mut index, mut times) = (Vec::new(), Vec::new());
        let (mut position, mut entries, mut newest) = (0u64, 0u64, i64::MIN);
        let mut synced = 0u64;
        for (seg, c) in run.iter() {
            let (data, index_path) = match c {
                Some(_) => (
                    suffixed(&self.dir, seg.base, LOG_EXT, CLEANED_SUFFIX),
                    suffixed(&self.dir, seg.base, INDEX_EXT, CLEANED_SUFFIX),
                ),
                None => (
                    seg.path.clone(),
                    self.dir.join(file_name(seg.base, INDEX_EXT)),
                ),
            };
            let time_path = self.dir.join(file_name(seg.base, TIME_INDEX_EXT));
            let (Some(member_index), Some(member_times)) =
                (read_entries(&index_path, 8)?, read_entries(&time_path, 12)?)
            else {
                drop(out);
                remove_quietly(&log_path);
                return Ok(None);
            };
            let count = c.as_ref().map_or(seg.entries, |c| c.entries);
            if member_index.len() as u64 != count * 8 {
                drop(out);
                remove_quietly(&log_path);
                return Ok(None);
            }
            let shift = seg.base - first;
            for e in member_index.chunks_exact(8) {
                let rel = u32::from_be_bytes([e[0], e[1], e[2], e[3]]) as u64 + shift;
                let pos = u32::from_be_bytes([e[4], e[5], e[6], e[7]]) as u64 + position;
                index.extend_from_slice(&(rel as u32).to_be_bytes());
                index.extend_from_slice(&(pos as u32).to_be_bytes());
            }
            for e in member_times.chunks_exact(12) {
                let mut ts = [0u8; 8];
                ts.copy_from_slice(&e[..8]);
                let ts = i64::from_be_bytes(ts);
                if ts > newest {
                    newest = ts;
                    let rel = u32::from_be_bytes([e[8], e[9], e[10], e[11]]) as u64 + shift;
                    times.extend_from_slice(&ts.to_be_bytes());
                    times.extend_from_slice(&(rel as u32).to_be_bytes());
                }
            }
            // Copied in pieces, each fsynced: one fsync of the whole file at the end makes
            // one journal commit that holds every other fsync on the file system (produces'
            // group commits) behind it for as long as the data takes to write.
            let mut src = File::open(&data).ctx("open", &data)?;
            let mut buf = vec![0u8; SYNC_EVERY_BYTES];
            loop {
                let n = src.read(&mut buf).ctx("read", &data)?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n]).ctx("write", &log_path)?;
                position += n as u64;
                if position - synced >= SYNC_EVERY_BYTES as u64 {
                    out.flush().ctx("write", &log_path)?;
                    file.sync_data().ctx("fsync", &log_path)?;
                    synced = position;
                }
            }
            entries += count;
        }
        out.flush().ctx("write", &log_path)?;
        drop(out);
        file.sync_all().ctx("fsync", &log_path)?;
        for (name, bytes) in [(INDEX_EXT, &index), (TIME_INDEX_EXT, &times)] {
            let path = suffixed(&self.dir, first, name, CLEANED_SUFFIX);
            let mut f = File::create(&path).ctx("create", &path)?;
            f.write_all(bytes).ctx("write", &path)?;
            f.sync_all().ctx("fsync", &path)?;
        }
        // The members' own cleaned copies are in the merged one now.
        for (seg, c) in run.iter_mut() {
            if c.take().is_some() && seg.base != first {
                remove_quietly(&suffixed(&self.dir, seg.base, LOG_EXT, CLEANED_SUFFIX));
                remove_quietly(&suffixed(&self.dir, seg.base, INDEX_EXT, CLEANED_SUFFIX));
            }
        }
        let final_path = suffixed(&self.dir, first, LOG_EXT, CLEANED_SUFFIX);
        fs::rename(&log_path, &final_path).ctx("rename", &log_path)?;
        Ok(Some(Cleaned {
            base: first,
            entries,
            size_after: position,
            members: run.iter().map(|(s, _)| (s.base, s.entries)).collect(),
            time_index: true,
        }))
    }
}

/// Bytes a replaced segment file is shortened by per step before it is unlinked.
const RELEASE_STEP_BYTES: u64 = 8 << 20;
/// Pause between two steps: files are released at about 400 MB/s.
const RELEASE_PAUSE: Duration = Duration::from_millis(20);
/// How long the deleter waits for reads still holding a replaced file (fetches being
/// sent) before it unlinks it whole instead.
const READERS_WAIT: Duration = Duration::from_secs(60);

/// Closes the replaced segments and unlinks their `.deleted` files on a thread of their
/// own; open deletes any that a crash (or a failure to start the thread) leaves.
///
/// A large file freed at once makes one journal transaction that every fsync on the file
/// system (produces' group commits) waits behind, so a replaced segment's `.log` is given
/// back a step at a time — but only once no read holds it any more (its last handle is
/// the deleter's), since shortening a file under a reader would hand it a torn batch.
/// Files whose handles are not at hand (segments closed earlier) are simply unlinked.
fn delete_in_background(dir: PathBuf, closed: Vec<Segment>, doomed: Vec<PathBuf>) {
    let spawned = std::thread::Builder::new()
        .name("cairn-clean-delete".into())
        .spawn(move || {
            let held: Vec<(PathBuf, Arc<File>)> = closed
                .iter()
                .map(|seg| {
                    let aside = suffixed(&dir, seg.base(), LOG_EXT, DELETED_SUFFIX);
                    (aside, Arc::clone(seg.file()))
                })
                .collect();
            drop(closed);
            for (path, file) in &held {
                let deadline = Instant::now() + READERS_WAIT;
                while Arc::strong_count(file) > 1 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                }
                if Arc::strong_count(file) == 1 {
                    // Sealed segments are open read-only: shorten through a new handle.
                    if let Ok(w) = OpenOptions::new().write(true).open(path) {
                        release_gradually(&w);
                    }
                }
            }
            drop(held);
            for path in &doomed {
                remove_quietly(path);
            }
            if let Err(e) = sync_dir(&dir) {
                tracing::warn!(error = %e, "cannot fsync a partition directory after a log clean");
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no thread to delete replaced segments; the next open deletes them");
    }
}

/// Shortens a file no one else reads a step at a time, down to nothing.
fn release_gradually(file: &File) {
    let mut len = file.metadata().map_or(0, |m| m.len());
    while len > 0 {
        len = len.saturating_sub(RELEASE_STEP_BYTES);
        if file.set_len(len).is_err() {
            return;
        }
        std::thread::sleep(RELEASE_PAUSE);
    }
}

/// Reads `cleaned_until` from `dir`'s cleaner checkpoint (0 if there is none).
pub(crate) fn read_checkpoint(dir: &Path) -> u64 {
    match crate::metafile::read(dir, CHECKPOINT) {
        Ok(Some(lines)) => lines
            .iter()
            .find_map(|l| l.strip_prefix("cleaned_until "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

/// Completes or rolls back swaps a crash interrupted (see the module docs). Called by open
/// before segments are listed.
pub(crate) fn recover_swaps(dir: &Path) -> Result<()> {
    let mut swaps = Vec::new();
    let mut leftovers = Vec::new();
    for entry in fs::read_dir(dir).ctx("list", dir)? {
        let entry = entry.ctx("list", dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(&format!(".{CLEANED_SUFFIX}"))
            || name.ends_with(&format!(".{DELETED_SUFFIX}"))
        {
            leftovers.push(entry.path());
        } else if let Some(stem) = name.strip_suffix(&format!(".{LOG_EXT}.{SWAP_SUFFIX}")) {
            if let Ok(base) = stem.parse::<u64>() {
                swaps.push(base);
            }
        } else if name.ends_with(&format!(".{SWAP_SUFFIX}")) {
            leftovers.push(entry.path());
        }
    }
    if swaps.is_empty() && leftovers.is_empty() {
        return Ok(());
    }
    for path in &leftovers {
        tracing::info!(path = %path.display(), "removing a file of an unfinished log clean");
        match fs::remove_file(path) {
            // A background deletion of an earlier run of this process got there first.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other.ctx("remove", path)?,
        }
    }
    for &base in &swaps {
        let swap = suffixed(dir, base, LOG_EXT, SWAP_SUFFIX);
        let log = dir.join(file_name(base, LOG_EXT));
        tracing::info!(path = %log.display(), "completing an interrupted log clean");
        // Both indexes are rebuilt from the new file (a merge's time index covers more).
        for ext in [INDEX_EXT, TIME_INDEX_EXT] {
            let path = dir.join(file_name(base, ext));
            match fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).ctx("remove", &path)
                }
                _ => {}
            }
        }
        fs::rename(&swap, &log).ctx("rename", &swap)?;
    }
    // A merged segment replaces the segments after it up to its end: drop what is left
    // of them.
    for &base in &swaps {
        let end = end_offset(&dir.join(file_name(base, LOG_EXT)))?;
        for entry in fs::read_dir(dir).ctx("list", dir)? {
            let entry = entry.ctx("list", dir)?;
            let name = entry.file_name();
            let Some(other) = name
                .to_str()
                .and_then(|n| n.strip_suffix(&format!(".{LOG_EXT}")))
                .and_then(|stem| stem.parse::<u64>().ok())
            else {
                continue;
            };
            if other > base && other < end {
                tracing::info!(
                    base = other,
                    "removing a segment merged by an interrupted log clean"
                );
                Segment::delete_files(dir, other)?;
            }
        }
    }
    sync_dir(dir)
}

/// The offset after the last batch of a segment file, from its batch headers (0 if it
/// holds none or its first header is unreadable; a torn tail ends the walk).
fn end_offset(path: &Path) -> Result<u64> {
    let file = File::open(path).ctx("open", path)?;
    let size = file.metadata().ctx("stat", path)?.len();
    let (mut pos, mut end) = (0u64, 0u64);
    let mut header = [0u8; HEADER_LEN];
    while pos + HEADER_LEN as u64 <= size {
        if read_full_at(&file, path, &mut header, pos)? < HEADER_LEN {
            break;
        }
        let Ok(h) = batch::parse_header(&header) else {
            break;
        };
        end = end.max(h.next_offset().max(0) as u64);
        pos += h.total_len().max(HEADER_LEN as u64);
    }
    Ok(end)
}

impl Log {
    /// The cleaner's state: clean section, dirty ratio, last run.
    pub fn cleaner_state(&self) -> CleanerState {
        let (clean, dirty) = self.clean_dirty_bytes(self.active.base());
        CleanerState {
            cleaned_until: self.cleaned_until,
            dirty_ratio: ratio(dirty, clean),
            last_run: self.last_clean,
        }
    }

    /// Bytes of sealed segments below `limit` in the clean and the dirty section.
    fn clean_dirty_bytes(&self, limit: u64) -> (u64, u64) {
        let (mut clean, mut dirty) = (0, 0);
        for (&base, slot) in &self.sealed {
            let next = self.next_base_after(base);
            if next > limit {
                break;
            }
            if next <= self.log_start_offset {
                continue;
            }
            match next <= self.cleaned_until {
                true => clean += slot.size,
                false => dirty += slot.size,
            }
        }
        (clean, dirty)
    }

    /// Prepares a clean if the log is compacted and enough of it is dirty; `bound` is the
    /// first offset that may not be cleaned yet (the high watermark of a replicated log).
    /// `None` if there is nothing to do now.
    pub fn begin_clean(&mut self, bound: u64) -> Result<Option<CleanJob>> {
        if !self.config.compact {
            return Ok(None);
        }
        self.check_usable()?;
        let now = self.now_ms();
        let mut limit = bound.min(self.recovery_point).min(self.active.base());
        let bases: Vec<u64> = self.sealed.keys().copied().collect();
        let min_lag = self.config.min_compaction_lag_ms as i64;
        let mut forced = false;
        for &base in &bases {
            let next = self.next_base_after(base);
            if next > limit || next <= self.log_start_offset {
                continue;
            }
            let newest = self.segment_max_timestamp(base)?.map(|(ts, _)| ts);
            if min_lag > 0 && newest.is_some_and(|ts| ts > now.saturating_sub(min_lag)) {
                limit = base;
                break;
            }
            let max_lag = self.config.max_compaction_lag_ms.min(i64::MAX as u64) as i64;
            if next > self.cleaned_until
                && newest.is_some_and(|ts| ts < now.saturating_sub(max_lag))
            {
                forced = true;
            }
        }
        let (clean, dirty) = self.clean_dirty_bytes(limit);
        if dirty == 0 {
            return Ok(None);
        }
        if !forced && ratio(dirty, clean) < self.config.min_cleanable_dirty_ratio() {
            return Ok(None);
        }
        let mut segments = Vec::new();
        for &base in &bases {
            let next = self.next_base_after(base);
            if next > limit {
                break;
            }
            if next <= self.log_start_offset {
                continue;
            }
            let entries = self.sealed.get(&base).map_or(0, |s| s.entries);
            let seg = self.segment(base)?;
            segments.push(JobSegment {
                base,
                next,
                file: Arc::clone(seg.file()),
                path: seg.paths().log.to_path_buf(),
                size: seg.size(),
                entries,
            });
        }
        let Some(clean_end) = segments.last().map(|s| s.next) else {
            return Ok(None);
        };
        let first = segments.first().map_or(0, |s| s.base);
        Ok(Some(CleanJob {
            dir: self.dir.clone(),
            segments,
            dirty_start: self.cleaned_until.max(first),
            clean_end,
            now_ms: now,
            delete_retention_ms: self.config.delete_retention_ms,
            truncations: self.truncations,
            segment_bytes: self.config.segment_bytes as u64,
        }))
    }

    /// Swaps in what [`CleanJob::run`] wrote (see the module docs for the crash-safe
    /// order). Segments deleted meanwhile are skipped; a truncation meanwhile drops the whole
    /// clean. Returns what the clean did, or `None` if nothing was swapped in.
    pub fn finish_clean(&mut self, result: CleanResult) -> Result<Option<CleanStats>> {
        let CleanResult {
            dir,
            truncations,
            outcome,
            crash_after,
        } = result;
        let (cleaned, mut stats) = match outcome {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "log clean failed");
                return Err(e);
            }
        };
        let discard = |c: &Cleaned| {
            remove_quietly(&suffixed(&dir, c.base, LOG_EXT, CLEANED_SUFFIX));
            remove_quietly(&suffixed(&dir, c.base, INDEX_EXT, CLEANED_SUFFIX));
            remove_quietly(&suffixed(&dir, c.base, TIME_INDEX_EXT, CLEANED_SUFFIX));
        };
        if dir != self.dir || truncations != self.truncations || self.failed.is_some() {
            cleaned.iter().for_each(discard);
            return Ok(None);
        }
        let mut ops = crash_after;
        let mut step = |op: &'static str| -> Result<()> {
            match ops.as_mut() {
                Some(0) => Err(StorageError::Io {
                    op,
                    path: dir.clone(),
                    source: std::io::Error::other("injected crash"),
                }),
                Some(n) => {
                    *n -= 1;
                    Ok(())
                }
                None => Ok(()),
            }
        };
        let mut swapped = Vec::new();
        for c in cleaned {
            // Every segment it replaces is still there, as it was (retention may have
            // deleted some meanwhile).
            let intact = c.members.iter().all(|(base, entries)| {
                self.sealed.get(base).is_some_and(|s| s.entries == *entries)
            });
            if !intact {
                discard(&c);
                continue;
            }
            step("rename cleaned segment")?;
            let from = suffixed(&dir, c.base, LOG_EXT, CLEANED_SUFFIX);
            let to = suffixed(&dir, c.base, LOG_EXT, SWAP_SUFFIX);
            if let Err(e) = fs::rename(&from, &to).ctx("rename", &from) {
                discard(&c);
                swapped.iter().for_each(|c: &Cleaned| {
                    remove_quietly(&suffixed(&dir, c.base, LOG_EXT, SWAP_SUFFIX));
                    remove_quietly(&suffixed(&dir, c.base, INDEX_EXT, CLEANED_SUFFIX));
                });
                return Err(e);
            }
            swapped.push(c);
        }
        // Nothing to swap (no record went) still moves the clean section: it was mapped.
        if !swapped.is_empty() {
            step("fsync directory")?;
            if let Err(e) = sync_dir(&dir) {
                return self.fail(e);
            }
            // Committed: from here a crash completes the swap on open.
            // Replaced files step aside as `.deleted` (unlinked off this thread: freeing a
            // large file's blocks can take long) before the new ones take their names, so a
            // crash never leaves a merged segment beside the segments it holds.
            let mut doomed: Vec<PathBuf> = Vec::new();
            let mut closed: Vec<Segment> = Vec::new();
            for c in &swapped {
                step("move replaced files aside")?;
                let mut aside = || -> Result<()> {
                    for (base, _) in &c.members {
                        for ext in [LOG_EXT, INDEX_EXT, TIME_INDEX_EXT] {
                            if *base == c.base && ext == TIME_INDEX_EXT && !c.time_index {
                                continue; // still this segment's time index
                            }
                            let path = dir.join(file_name(*base, ext));
                            let to = suffixed(&dir, *base, ext, DELETED_SUFFIX);
                            match fs::rename(&path, &to) {
                                Ok(()) => doomed.push(to),
                                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                                Err(e) => return Err(e).ctx("rename", &path),
                            }
                        }
                    }
                    Ok(())
                };
                if let Err(e) = aside() {
                    return self.fail(e);
                }
            }
            if swapped.iter().any(|c| c.members.len() > 1) {
                // A merge's later members must be gone for good before the merged file takes
                // its name: a file system that reordered the renames could otherwise show
                // both after a crash (the `.swap` that tells open to drop them being gone).
                step("fsync directory")?;
                if let Err(e) = sync_dir(&dir) {
                    return self.fail(e);
                }
            }
            for c in &swapped {
                step("swap cleaned segment")?;
                let index = dir.join(file_name(c.base, INDEX_EXT));
                let log = dir.join(file_name(c.base, LOG_EXT));
                let times = dir.join(file_name(c.base, TIME_INDEX_EXT));
                let renamed = fs::rename(suffixed(&dir, c.base, INDEX_EXT, CLEANED_SUFFIX), &index)
                    .ctx("rename", &index)
                    .and_then(|()| match c.time_index {
                        true => fs::rename(
                            suffixed(&dir, c.base, TIME_INDEX_EXT, CLEANED_SUFFIX),
                            &times,
                        )
                        .ctx("rename", &times),
                        false => Ok(()),
                    })
                    .and_then(|()| {
                        fs::rename(suffixed(&dir, c.base, LOG_EXT, SWAP_SUFFIX), &log)
                            .ctx("rename", &log)
                    });
                if let Err(e) = renamed {
                    return self.fail(e);
                }
                for (base, _) in &c.members[1..] {
                    if let Some(seg) = self.sealed.remove(base).and_then(|s| s.segment) {
                        closed.push(seg);
                    }
                }
                if let Some(slot) = self.sealed.get_mut(&c.base) {
                    slot.size = c.size_after;
                    slot.entries = c.entries;
                    closed.extend(slot.segment.take());
                    slot.verified_until = Arc::new(AtomicU64::new(0));
                    if c.time_index {
                        slot.max_timestamp = None;
                    }
                }
                self.open_lru
                    .retain(|b| !c.members.iter().any(|(m, _)| m == b));
            }
            // The renames need no fsync of their own: a crash before the directory reaches
            // the disk finds the `.swap` files and completes the swap. The deleter fsyncs
            // it, off the shard's thread.
            step("swap done")?;
            delete_in_background(dir.clone(), closed, doomed);
        }
        self.set_cleaned_until(self.cleaned_until.max(stats.cleaned_until))?;
        stats.segments_rewritten = swapped.len();
        self.last_clean = Some(stats);
        Ok(Some(stats))
    }

    /// Moves the end of the clean section and records it, without fsyncs: they would
    /// stall every partition of the owner's shard, and losing the record costs nothing but
    /// work (a crash that takes it, or leaves it torn — its CRC then fails and it reads as
    /// 0, — only makes the next clean map more than it must).
    pub(crate) fn set_cleaned_until(&mut self, offset: u64) -> Result<()> {
        self.cleaned_until = offset;
        let body = crate::checkpoint::seal(format!("cleaned_until {offset}\n"));
        let tmp = self.dir.join(format!("{CHECKPOINT}.tmp"));
        let path = self.dir.join(CHECKPOINT);
        fs::write(&tmp, body).ctx("write", &tmp)?;
        fs::rename(&tmp, &path).ctx("rename", &tmp)
    }

    /// Runs a whole clean on this thread (tests and tools; the broker runs
    /// [`CleanJob::run`] on a cleaner thread).
    pub fn clean_now(
        &mut self,
        bound: u64,
        settings: &CleanerSettings,
    ) -> Result<Option<CleanStats>> {
        match self.begin_clean(bound)? {
            None => Ok(None),
            Some(job) => self.finish_clean(job.run(settings)),
        }
    }
}

fn ratio(dirty: u64, clean: u64) -> f64 {
    match dirty + clean {
        0 => 0.0,
        total => dirty as f64 / total as f64,
    }
}
