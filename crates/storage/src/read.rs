//! Results of reads: byte ranges of whole batches in segment files.
//!
//! A [`LogRead`] is a list of [`FileSlice`]s, each a range of one segment file holding whole
//! batches. The slices keep their file open (`Arc<File>`), so a segment deleted by retention
//! after the read is still readable through them. [`LogRead::load_into`] copies the bytes out
//! and verifies them, so damaged data is reported, never served.
//!
//! **Verify once.** Every batch is CRC-checked once per process before it is served: batches
//! appended by this process were checked by `append`, batches a recovery scan read were
//! checked by it, and the rest — segments written by an earlier run — are checked (framing,
//! CRC-32C, increasing offsets) by the first load that reaches them, which advances the
//! segment's `verified_until` watermark. Re-checking bytes this process already checked would
//! cost about a fifth of a page-cache read on every fetch and catch nothing new; damage that
//! appears on disk while the process runs and after a batch was checked is, as in Kafka, left
//! to the clients' own CRC checks.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use crate::batch;
use crate::error::{Result, StorageError};
use crate::scan::read_full_at;

/// A range of one segment file holding whole batches.
#[derive(Debug, Clone)]
pub struct FileSlice {
    pub(crate) file: Arc<File>,
    pub(crate) path: Arc<Path>,
    pub(crate) verified_until: Arc<AtomicU64>,
    pub(crate) position: u64,
    pub(crate) len: u64,
    pub(crate) first_offset: u64,
    pub(crate) next_offset: u64,
}

impl FileSlice {
    /// The open segment file (for `sendfile` and the like).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Path of the segment file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Byte position of the range in the file.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Length of the range in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the range is empty (never true for a slice in a [`LogRead`]).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Base offset of the first batch in the range.
    pub fn first_offset(&self) -> u64 {
        self.first_offset
    }

    /// The offset after the last batch in the range.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }
}

/// The outcome of [`crate::Log::read`].
#[derive(Debug, Clone, Default)]
pub struct LogRead {
    /// Ranges of whole batches, in offset order (possibly across segments).
    pub slices: Vec<FileSlice>,
    /// The log end offset when the read was made.
    pub log_end_offset: u64,
    /// The log start offset when the read was made.
    pub log_start_offset: u64,
}

impl LogRead {
    /// Total bytes in all slices.
    pub fn total_bytes(&self) -> u64 {
        self.slices.iter().map(|s| s.len).sum()
    }

    /// Whether nothing was read (the offset is at the end, or at the bound).
    pub fn is_empty(&self) -> bool {
        self.slices.is_empty()
    }

    /// The offset after the last batch returned, if any.
    pub fn next_offset(&self) -> Option<u64> {
        self.slices.last().map(|s| s.next_offset)
    }

    /// Copies the batches into a new buffer; see [`LogRead::load_into`].
    pub fn load(&self) -> Result<Bytes> {
        let mut buf = vec![0; self.total_bytes() as usize];
        let good = self.load_into(&mut buf)?;
        buf.truncate(good);
        Ok(Bytes::from(buf))
    }

    /// Copies the batches into `buf[..n]` and returns `n`, the length of the valid prefix.
    /// `buf` must hold at least [`LogRead::total_bytes`]; a caller that reuses one buffer
    /// (page-aligned, ideally) pays no per-read allocation or zeroing. Batches not yet checked
    /// by this process are verified (framing, CRC-32C, increasing offsets): if one fails, the
    /// batches before it are returned and the damage is logged; if the very first batch fails,
    /// the error is returned, naming the segment file and byte position.
    pub fn load_into(&self, buf: &mut [u8]) -> Result<usize> {
        let total = self.total_bytes() as usize;
        if buf.len() < total {
            return Err(StorageError::BufferTooSmall {
                needed: total as u64,
                given: buf.len() as u64,
            });
        }
        let mut at = 0usize;
        for s in &self.slices {
            let got = read_full_at(
                &s.file,
                &s.path,
                &mut buf[at..at + s.len as usize],
                s.position,
            )?;
            if got < s.len as usize {
                return Err(StorageError::Corrupt {
                    path: s.path.to_path_buf(),
                    position: s.position + got as u64,
                    reason: "segment file is shorter than the range read (truncated underneath)"
                        .into(),
                });
            }
            at += s.len as usize;
        }
        self.verify(&buf[..total])
    }

    /// Length of the valid prefix of `buf` (the slices, back to back). Slices wholly below
    /// their segment's watermark are trusted; the others are checked batch by batch and, when
    /// they continue the checked prefix, advance the watermark.
    fn verify(&self, buf: &[u8]) -> Result<usize> {
        let mut start = 0usize;
        let mut expected_min: Option<u64> = None;
        for s in &self.slices {
            let end = s.position + s.len;
            if end <= s.verified_until.load(Ordering::Relaxed) {
                expected_min = Some(s.next_offset);
                start += s.len as usize;
                continue;
            }
            let bytes = &buf[start..start + s.len as usize];
            let mut batches = batch::iter_batches(bytes, u32::MAX);
            let mut failure = None;
            while let Some(item) = batches.next() {
                match item {
                    Ok((at, h, _)) => {
                        let base = h.base_offset as u64;
                        if h.base_offset < 0 || expected_min.is_some_and(|m| base < m) {
                            failure = Some((
                                at,
                                format!("batch base offset {} goes backwards", h.base_offset),
                            ));
                            break;
                        }
                        expected_min = Some(h.next_offset() as u64);
                    }
                    // The iterator stops before a bad batch: its position is the failure's.
                    Err(e) => failure = Some((batches.position(), e.to_string())),
                }
            }
            if let Some((at, reason)) = failure {
                let position = s.position + at as u64;
                if start + at == 0 {
                    return Err(StorageError::Corrupt {
                        path: s.path.to_path_buf(),
                        position,
                        reason,
                    });
                }
                tracing::error!(path = %s.path.display(), position, %reason, "corrupt batch in read; serving only the batches before it");
                return Ok(start + at);
            }
            // Checked: extend the watermark if this range continues it.
            let _ = s
                .verified_until
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
                    (s.position <= w && w < end).then_some(end)
                });
            start += s.len as usize;
        }
        Ok(start)
    }
}
