//! Results of reads: byte ranges of whole batches in segment files.
//!
//! A [`LogRead`] is a list of [`FileSlice`]s, each a range of one segment file holding whole
//! batches. The slices keep their file open (`Arc<File>`), so a segment deleted by retention
//! after the read is still readable through them. A server can hand a slice to `sendfile(2)`
//! as is; [`LogRead::load`] instead copies the bytes out *and re-verifies every batch*
//! (framing, CRC-32C, increasing offsets), so damaged data is reported, never served.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::batch;
use crate::error::{Result, StorageError};
use crate::scan::read_full_at;

/// A range of one segment file holding whole batches.
#[derive(Debug, Clone)]
pub struct FileSlice {
    pub(crate) file: Arc<File>,
    pub(crate) path: Arc<Path>,
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

    /// Copies the batches into one buffer, verifying each batch's framing and CRC-32C and that
    /// base offsets increase. If a batch fails, the batches before it are returned and the
    /// damage is logged; if the very first batch fails, the error is returned, naming the
    /// segment file and byte position.
    pub fn load(&self) -> Result<Bytes> {
        let mut buf = BytesMut::zeroed(self.total_bytes() as usize);
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
        let good = self.verify(&buf)?;
        buf.truncate(good);
        Ok(buf.freeze())
    }

    /// Length of the valid prefix of `buf` (the slices, back to back).
    fn verify(&self, buf: &[u8]) -> Result<usize> {
        let mut start = 0usize;
        let mut expected_min: Option<u64> = None;
        for s in &self.slices {
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
                        expected_min = Some(h.last_offset() as u64 + 1);
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
            start += s.len as usize;
        }
        Ok(start)
    }
}
