//! Sequential, checksum-verifying scan of a segment file with a fixed-size buffer.
//!
//! Used by recovery and index rebuilds. Memory is bounded by [`SCAN_BUFFER_BYTES`] whatever the
//! file holds: a batch larger than the buffer has its CRC computed in pieces, and a corrupt
//! length field can at worst make the scan stop, never allocate.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::batch::{self, BatchHeader, HEADER_LEN};
use crate::error::{IoContext, Result};

/// Size of the scan buffer.
pub(crate) const SCAN_BUFFER_BYTES: usize = 1 << 20;

/// What the scan found next.
#[derive(Debug)]
pub(crate) enum Scanned {
    /// A valid batch at byte `position`.
    Batch { position: u64, header: BatchHeader },
    /// Bytes at `position` are not a valid batch; the scan stops here.
    Invalid { position: u64, reason: String },
}

/// Scanner over `[start, end)` of one file.
#[derive(Debug)]
pub(crate) struct Scanner<'a> {
    file: &'a File,
    path: &'a Path,
    pos: u64,
    end: u64,
    buf: Vec<u8>,
    buf_start: u64,
    buf_len: usize,
    done: bool,
}

/// Reads at `pos` until `out` is full or end of file; returns the bytes read.
pub(crate) fn read_full_at(file: &File, path: &Path, out: &mut [u8], pos: u64) -> Result<usize> {
    let mut got = 0;
    while got < out.len() {
        let n = file
            .read_at(&mut out[got..], pos + got as u64)
            .ctx("read", path)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(file: &'a File, path: &'a Path, start: u64, end: u64) -> Scanner<'a> {
        Scanner {
            file,
            path,
            pos: start,
            end,
            buf: vec![
                0;
                SCAN_BUFFER_BYTES
                    .min((end.saturating_sub(start)) as usize)
                    .max(HEADER_LEN)
            ],
            buf_start: start,
            buf_len: 0,
            done: false,
        }
    }

    /// Makes `[at, at + need)` resident in the buffer, reading from `at`; returns the bytes
    /// available from `at` (fewer than `need` only at end of file).
    fn fill(&mut self, at: u64, need: usize) -> Result<usize> {
        let buf_end = self.buf_start + self.buf_len as u64;
        if at >= self.buf_start && at + need as u64 <= buf_end {
            return Ok((buf_end - at) as usize);
        }
        let want = (self.buf.len() as u64).min(self.end - at) as usize;
        let got = read_full_at(self.file, self.path, &mut self.buf[..want], at)?;
        self.buf_start = at;
        self.buf_len = got;
        Ok(got)
    }

    fn slice(&self, at: u64, len: usize) -> &[u8] {
        let from = (at - self.buf_start) as usize;
        &self.buf[from..from + len]
    }

    /// The next batch, or `None` at the end of the range.
    pub(crate) fn next_batch(&mut self) -> Result<Option<Scanned>> {
        if self.done || self.pos >= self.end {
            return Ok(None);
        }
        let pos = self.pos;
        let invalid = |this: &mut Self, reason: String| {
            this.done = true;
            Ok(Some(Scanned::Invalid {
                position: pos,
                reason,
            }))
        };
        if self.end - pos < HEADER_LEN as u64 {
            return invalid(
                self,
                format!(
                    "{} trailing bytes are too few for a batch header",
                    self.end - pos
                ),
            );
        }
        if self.fill(pos, HEADER_LEN)? < HEADER_LEN {
            return invalid(self, "file ends inside a batch header".to_string());
        }
        let header = match batch::parse_header(self.slice(pos, HEADER_LEN)) {
            Ok(h) => h,
            Err(e) => return invalid(self, e.to_string()),
        };
        if let Err(e) = batch::check_header(&header, u32::MAX) {
            return invalid(self, e.to_string());
        }
        let total = header.total_len();
        if pos + total > self.end {
            return invalid(
                self,
                format!("batch of {total} bytes runs past the end of the file"),
            );
        }
        // CRC-32C over bytes 21..total, streamed through the buffer.
        let mut crc = 0u32;
        let mut at = pos + 21;
        let stop = pos + total;
        while at < stop {
            let avail = self.fill(at, 1)?;
            if avail == 0 {
                return invalid(self, "file ends inside a batch".to_string());
            }
            let take = avail.min((stop - at) as usize);
            crc = crc32c::crc32c_append(crc, self.slice(at, take));
            at += take as u64;
        }
        if crc != header.crc {
            return invalid(
                self,
                format!(
                    "CRC32C mismatch: header {:#010x}, data {crc:#010x}",
                    header.crc
                ),
            );
        }
        self.pos = stop;
        Ok(Some(Scanned::Batch {
            position: pos,
            header,
        }))
    }
}
