//! Byte sources for the record walk of [`crate::records`]: the records of an uncompressed
//! batch in place, or a streaming decompressor behind a fixed buffer and a hard budget.
//!
//! Memory per compressed batch is fixed, whatever sizes the batch declares: the 8 KiB read
//! buffer here, plus the codec's own state — gzip: inflate's 32 KiB window; snappy: the 64 KiB
//! window of [`crate::snappy`]; lz4: liblz4's frame context, at most two 4 MiB blocks (the
//! largest block size the frame format can declare); zstd: the decoder context and a window
//! capped at `2^zstd_window_log_max` bytes. Work is bounded by the budget: decompression stops
//! as soon as more than `max_uncompressed_bytes` have come out.

use std::io::{self, Read};

use crate::records::RecordLimits;
use crate::snappy::SnappyReader;

/// Size of the buffer decompressed bytes pass through; keys and values are skipped through it.
const READ_BUFFER_BYTES: usize = 8 * 1024;

/// The compression codec of a batch (`attributes & 7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Records are stored as they are.
    None,
    /// gzip (RFC 1952), codec 1.
    Gzip,
    /// snappy, xerial-framed or raw, codec 2.
    Snappy,
    /// LZ4 frame format, codec 3.
    Lz4,
    /// Zstandard, codec 4 (Produce v7+, KIP-110).
    Zstd,
}

impl Compression {
    /// The codec for an id in `attributes & 7`; `None` for the undefined ids 5–7.
    pub fn from_id(id: u8) -> Option<Compression> {
        Some(match id {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        })
    }
}

/// Why a source could not deliver bytes.
#[derive(Debug)]
pub(crate) enum SourceError {
    /// More than the budget of decompressed bytes.
    Budget { limit: u64 },
    /// The codec refused the compressed data.
    Codec(io::Error),
}

/// Sequential bytes, consumed once.
pub(crate) trait Source {
    /// The next byte, `None` at the end.
    fn byte(&mut self) -> Result<Option<u8>, SourceError>;
    /// Skips up to `n` bytes; returns how many were skipped (fewer only at the end).
    fn skip(&mut self, n: u64) -> Result<u64, SourceError>;
    /// Whether no bytes are left.
    fn at_end(&mut self) -> Result<bool, SourceError>;
}

/// The records of an uncompressed batch, read in place.
#[derive(Debug)]
pub(crate) struct SliceSource<'a> {
    data: &'a [u8],
}

impl<'a> SliceSource<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        SliceSource { data }
    }
}

impl Source for SliceSource<'_> {
    fn byte(&mut self) -> Result<Option<u8>, SourceError> {
        Ok(self.data.split_first().map(|(&b, rest)| {
            self.data = rest;
            b
        }))
    }

    fn skip(&mut self, n: u64) -> Result<u64, SourceError> {
        let k = usize::try_from(n)
            .unwrap_or(usize::MAX)
            .min(self.data.len());
        self.data = &self.data[k..];
        Ok(k as u64)
    }

    fn at_end(&mut self) -> Result<bool, SourceError> {
        Ok(self.data.is_empty())
    }
}

/// Decompressed bytes of a compressed batch, read through a fixed buffer, at most `budget`.
pub(crate) struct StreamSource<R> {
    reader: R,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    /// Decompressed bytes produced so far.
    total: u64,
    budget: u64,
    eof: bool,
}

impl<R> std::fmt::Debug for StreamSource<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSource")
            .field("total", &self.total)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl<R: Read> StreamSource<R> {
    fn new(reader: R, budget: u64) -> Self {
        StreamSource {
            reader,
            buf: vec![0u8; READ_BUFFER_BYTES].into_boxed_slice(),
            pos: 0,
            len: 0,
            total: 0,
            budget,
            eof: false,
        }
    }

    /// Makes at least one buffered byte available; `false` at the end of the stream.
    fn fill(&mut self) -> Result<bool, SourceError> {
        if self.pos < self.len {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        let n = loop {
            match self.reader.read(&mut self.buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(SourceError::Codec(e)),
            }
        };
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        // Reads are at most one buffer, so the budget is overshot by less than 8 KiB before
        // it is noticed.
        self.total = self.total.saturating_add(n as u64);
        if self.total > self.budget {
            return Err(SourceError::Budget { limit: self.budget });
        }
        self.pos = 0;
        self.len = n;
        Ok(true)
    }
}

impl<R: Read> Source for StreamSource<R> {
    fn byte(&mut self) -> Result<Option<u8>, SourceError> {
        if !self.fill()? {
            return Ok(None);
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        Ok(Some(b))
    }

    fn skip(&mut self, n: u64) -> Result<u64, SourceError> {
        let mut skipped = 0u64;
        while skipped < n && self.fill()? {
            let k = ((self.len - self.pos) as u64).min(n - skipped);
            self.pos += k as usize;
            skipped += k;
        }
        Ok(skipped)
    }

    fn at_end(&mut self) -> Result<bool, SourceError> {
        Ok(!self.fill()?)
    }
}

/// A decompressing source over the compressed records `data` of a batch.
pub(crate) fn open<'a>(
    codec: Compression,
    data: &'a [u8],
    limits: &RecordLimits,
) -> Result<StreamSource<Box<dyn Read + 'a>>, SourceError> {
    let reader = decoder(codec, data, limits)?;
    Ok(StreamSource::new(reader, limits.max_uncompressed_bytes))
}

/// A decoder of `codec` over `data` (zstd's window capped by `limits`).
pub(crate) fn decoder<'a>(
    codec: Compression,
    data: &'a [u8],
    limits: &RecordLimits,
) -> Result<Box<dyn Read + 'a>, SourceError> {
    Ok(match codec {
        // Not reached for uncompressed batches (they are walked in place), but harmless.
        Compression::None => Box::new(data),
        // Java's GZIPInputStream reads concatenated members; so does MultiGzDecoder.
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(data)),
        Compression::Snappy => Box::new(SnappyReader::new(data)),
        Compression::Lz4 => Box::new(lz4::Decoder::new(data).map_err(SourceError::Codec)?),
        Compression::Zstd => {
            let mut d =
                zstd::stream::read::Decoder::with_buffer(data).map_err(SourceError::Codec)?;
            // Without this cap a frame header alone could make the decoder allocate a window
            // of up to 128 MiB (zstd's default decoder limit, window log 27).
            d.window_log_max(limits.zstd_window_log_max)
                .map_err(SourceError::Codec)?;
            Box::new(d)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_ids() {
        assert_eq!(Compression::from_id(0), Some(Compression::None));
        assert_eq!(Compression::from_id(4), Some(Compression::Zstd));
        for id in 5..=7 {
            assert_eq!(Compression::from_id(id), None);
        }
    }

    #[test]
    fn stream_source_enforces_the_budget() {
        let data = vec![1u8; 100_000];
        let mut s = StreamSource::new(&data[..], 50_000);
        assert_eq!(s.skip(40_000).ok(), Some(40_000));
        assert!(matches!(
            s.skip(20_000),
            Err(SourceError::Budget { limit: 50_000 })
        ));
        let mut ok = StreamSource::new(&data[..], 100_000);
        assert_eq!(ok.skip(u64::MAX).ok(), Some(100_000));
        assert!(matches!(ok.at_end(), Ok(true)));
        assert!(matches!(ok.byte(), Ok(None)));
    }

    #[test]
    fn slice_source() {
        let mut s = SliceSource::new(b"abc");
        assert!(matches!(s.byte(), Ok(Some(b'a'))));
        assert_eq!(s.skip(5).ok(), Some(2));
        assert!(matches!(s.at_end(), Ok(true)));
    }
}
