//! Streaming snappy decompression in a fixed 64 KiB window, for validating produced batches.
//!
//! Kafka producers write snappy in one of two framings, told apart as Kafka's Java consumer
//! (snappy-java's `SnappyInputStream`) and kafka-protocol tell them apart:
//!
//! ```text
//! xerial (Java clients):  82 'S' 'N' 'A' 'P' 'P' 'Y' 00 | 00000001 | 00000001   16-byte header
//!                         then chunks: [int32 BE compressed length][raw snappy block] ...
//! raw (librdkafka):       one raw snappy block
//! raw block:              varint uncompressed length, then elements:
//!                         tag & 3 = 0  literal  (length-1 in tag>>2, or in 1-4 following bytes)
//!                                   1  copy, 1-byte offset (len 4-11, offset 11 bits)
//!                                   2  copy, 2-byte LE offset (len 1-64)
//!                                   3  copy, 4-byte LE offset (len 1-64)
//! ```
//!
//! A raw block can be as large as the whole batch, and the `snap` crate decodes a block only
//! into a buffer of its declared uncompressed size: a hostile block declaring 4 GiB would
//! need 4 GiB. This decoder instead streams the output through a 64 KiB ring of recent bytes,
//! so memory is 64 KiB whatever the block declares. The price is that a copy reaching back
//! more than 64 KiB is refused; no snappy encoder emits one (the C++ library, its C port in
//! librdkafka, snappy-java which wraps the C++ library, `snap` and Go's encoder all compress
//! 64 KiB fragments independently, so offsets stay below 65536).

use std::io;

/// How far back a copy may reach.
pub(crate) const WINDOW_BYTES: usize = 64 * 1024;

const XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";

/// Why a snappy stream is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SnappyError {
    #[error("snappy stream is empty")]
    Empty,
    #[error("snappy stream truncated")]
    Truncated,
    #[error("snappy uncompressed-length varint is malformed")]
    BadLength,
    #[error("snappy copy with offset {offset} at output byte {produced}")]
    BadOffset { offset: usize, produced: u64 },
    #[error("snappy copy reaches back {offset} bytes, beyond the {WINDOW_BYTES}-byte window")]
    OffsetBeyondWindow { offset: usize },
    #[error("snappy block produces more than its declared {declared} bytes")]
    Overrun { declared: u64 },
    #[error("snappy block has bytes after its declared {declared} bytes of output")]
    TrailingInput { declared: u64 },
}

impl From<SnappyError> for io::Error {
    fn from(e: SnappyError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    /// Between elements.
    Tag,
    Literal {
        remaining: usize,
    },
    Copy {
        remaining: usize,
        offset: usize,
        done: usize,
    },
}

#[derive(Debug)]
struct Block<'a> {
    input: &'a [u8],
    declared: u64,
    produced: u64,
    op: Op,
}

/// A `Read` of the decompressed bytes of a whole snappy stream (either framing).
#[derive(Debug)]
pub(crate) struct SnappyReader<'a> {
    /// Input not yet handed to a block (xerial chunks still to come).
    rest: &'a [u8],
    xerial: bool,
    started: bool,
    block: Option<Block<'a>>,
    window: Box<[u8]>,
}

impl<'a> SnappyReader<'a> {
    /// A reader over one compressed stream; framing is detected from its first bytes.
    pub(crate) fn new(data: &'a [u8]) -> Self {
        let xerial = data.starts_with(XERIAL_HEADER);
        let rest = if xerial {
            &data[XERIAL_HEADER.len()..]
        } else {
            data
        };
        SnappyReader {
            rest,
            xerial,
            started: false,
            block: None,
            window: vec![0u8; WINDOW_BYTES].into_boxed_slice(),
        }
    }

    /// Opens the next block, or returns `Ok(false)` at the end of the stream.
    fn next_block(&mut self) -> Result<bool, SnappyError> {
        let input = if self.xerial {
            if self.rest.is_empty() {
                return Ok(false);
            }
            let Some((len, tail)) = self.rest.split_first_chunk::<4>() else {
                return Err(SnappyError::Truncated);
            };
            let len = u32::from_be_bytes(*len) as usize;
            if len > tail.len() {
                return Err(SnappyError::Truncated);
            }
            let (chunk, after) = tail.split_at(len);
            self.rest = after;
            chunk
        } else {
            if self.started {
                return Ok(false);
            }
            if self.rest.is_empty() {
                return Err(SnappyError::Empty);
            }
            std::mem::take(&mut self.rest)
        };
        self.started = true;
        let (declared, input) = read_length(input)?;
        self.block = Some(Block {
            input,
            declared,
            produced: 0,
            op: Op::Tag,
        });
        Ok(true)
    }
}

/// The uncompressed-length preamble: a little-endian base-128 varint of at most 32 bits.
fn read_length(input: &[u8]) -> Result<(u64, &[u8]), SnappyError> {
    let mut value: u64 = 0;
    for (i, &b) in input.iter().enumerate().take(5) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if value > u64::from(u32::MAX) {
                return Err(SnappyError::BadLength);
            }
            return Ok((value, &input[i + 1..]));
        }
    }
    Err(if input.len() < 5 {
        SnappyError::Truncated
    } else {
        SnappyError::BadLength
    })
}

/// Splits `n` little-endian bytes off the front of `input`.
fn take_le(input: &mut &[u8], n: usize) -> Result<usize, SnappyError> {
    if input.len() < n {
        return Err(SnappyError::Truncated);
    }
    let (bytes, rest) = input.split_at(n);
    *input = rest;
    Ok(bytes
        .iter()
        .rev()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b)))
}

impl Block<'_> {
    /// Parses the next element's tag into `self.op`.
    fn read_tag(&mut self) -> Result<(), SnappyError> {
        let Some((&tag, rest)) = self.input.split_first() else {
            return Err(SnappyError::Truncated);
        };
        self.input = rest;
        let (len, offset) = match tag & 3 {
            0 => {
                let short = usize::from(tag >> 2);
                let len = if short < 60 {
                    short + 1
                } else {
                    take_le(&mut self.input, short - 59)?.saturating_add(1)
                };
                if len > self.input.len() {
                    return Err(SnappyError::Truncated);
                }
                (len, None)
            }
            1 => {
                let low = take_le(&mut self.input, 1)?;
                (
                    4 + usize::from((tag >> 2) & 7),
                    Some((usize::from(tag >> 5) << 8) | low),
                )
            }
            2 => (
                1 + usize::from(tag >> 2),
                Some(take_le(&mut self.input, 2)?),
            ),
            _ => (
                1 + usize::from(tag >> 2),
                Some(take_le(&mut self.input, 4)?),
            ),
        };
        if self.produced.saturating_add(len as u64) > self.declared {
            return Err(SnappyError::Overrun {
                declared: self.declared,
            });
        }
        self.op = match offset {
            None => Op::Literal { remaining: len },
            Some(offset) => {
                if offset == 0 || offset as u64 > self.produced {
                    return Err(SnappyError::BadOffset {
                        offset,
                        produced: self.produced,
                    });
                }
                if offset > WINDOW_BYTES {
                    return Err(SnappyError::OffsetBeyondWindow { offset });
                }
                Op::Copy {
                    remaining: len,
                    offset,
                    done: 0,
                }
            }
        };
        Ok(())
    }
}

impl io::Read for SnappyReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut written = 0;
        while written < out.len() {
            let Some(block) = self.block.as_mut() else {
                if self.next_block()? {
                    continue;
                }
                break;
            };
            let space = out.len() - written;
            let at = (block.produced % WINDOW_BYTES as u64) as usize;
            match block.op {
                Op::Tag => {
                    if block.produced == block.declared {
                        if !block.input.is_empty() {
                            return Err(SnappyError::TrailingInput {
                                declared: block.declared,
                            }
                            .into());
                        }
                        self.block = None;
                        continue;
                    }
                    block.read_tag()?;
                    continue;
                }
                Op::Literal { remaining } => {
                    // Never across the ring's end, so the window write is one slice.
                    let n = remaining.min(space).min(WINDOW_BYTES - at);
                    let (bytes, rest) = block.input.split_at(n);
                    block.input = rest;
                    self.window[at..at + n].copy_from_slice(bytes);
                    out[written..written + n].copy_from_slice(bytes);
                    block.op = if n == remaining {
                        Op::Tag
                    } else {
                        Op::Literal {
                            remaining: remaining - n,
                        }
                    };
                    block.produced += n as u64;
                    written += n;
                }
                Op::Copy {
                    remaining,
                    offset,
                    done,
                } => {
                    // A copy may overlap its own output (offset < length repeats a pattern).
                    // Bytes `done` into the copy, any multiple of `offset` up to `done + offset`
                    // also points at an equal byte, so the step doubles as the copy proceeds;
                    // a chunk no longer than the step never reads what it writes.
                    let step = if done + offset <= WINDOW_BYTES {
                        (done + offset) / offset * offset
                    } else {
                        WINDOW_BYTES / offset * offset
                    };
                    let from = (at + WINDOW_BYTES - step) % WINDOW_BYTES;
                    let n = remaining
                        .min(space)
                        .min(step)
                        .min(WINDOW_BYTES - at)
                        .min(WINDOW_BYTES - from);
                    self.window.copy_within(from..from + n, at);
                    out[written..written + n].copy_from_slice(&self.window[at..at + n]);
                    block.op = if n == remaining {
                        Op::Tag
                    } else {
                        Op::Copy {
                            remaining: remaining - n,
                            offset,
                            done: done + n,
                        }
                    };
                    block.produced += n as u64;
                    written += n;
                }
            }
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Read;

    fn decode_all(data: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut r = SnappyReader::new(data);
        // Odd-sized reads exercise resuming in the middle of literals and copies.
        let mut buf = [0u8; 7];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    fn xerial(blocks: &[&[u8]]) -> Vec<u8> {
        let mut out = XERIAL_HEADER.to_vec();
        for b in blocks {
            let c = snap::raw::Encoder::new().compress_vec(b).expect("compress");
            out.extend_from_slice(&(c.len() as u32).to_be_bytes());
            out.extend_from_slice(&c);
        }
        out
    }

    #[test]
    fn raw_round_trip_with_long_runs_and_repeats() {
        let mut data = vec![0u8; 300_000];
        data.extend((0..200_000u32).map(|i| (i % 251) as u8));
        data.extend_from_slice(b"tail");
        let c = snap::raw::Encoder::new()
            .compress_vec(&data)
            .expect("compress");
        assert!(c.len() < data.len() / 10);
        assert_eq!(decode_all(&c).expect("valid"), data);
    }

    #[test]
    fn xerial_round_trip() {
        let a = vec![7u8; 40_000];
        let b: Vec<u8> = (0..32_768u32).map(|i| (i * 31 % 256) as u8).collect();
        assert_eq!(
            decode_all(&xerial(&[&a, &b])).expect("valid"),
            [a, b].concat()
        );
        assert_eq!(
            decode_all(XERIAL_HEADER).expect("no chunks"),
            Vec::<u8>::new()
        );
    }

    #[test]
    fn hostile_streams_are_refused() {
        // Declares 4 GiB, holds nothing: no allocation by the declared size, just an error.
        assert!(decode_all(&[0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        assert!(decode_all(&[]).is_err());
        // Length 3, literal of 4.
        assert!(decode_all(&[3, 3 << 2, b'a', b'b', b'c', b'd']).is_err());
        // Copy before any output.
        assert!(decode_all(&[4, 0b0000_0001, 1]).is_err());
        // Copy with offset 0.
        assert!(decode_all(&[5, 0, b'a', 0b0000_0001, 0]).is_err());
        // Length 1, literal "a", then a stray byte.
        assert!(decode_all(&[1, 0, b'a', 9]).is_err());
        // Length 2, literal "a" only.
        assert!(decode_all(&[2, 0, b'a']).is_err());
        // Xerial chunk length past the end.
        let mut x = XERIAL_HEADER.to_vec();
        x.extend_from_slice(&100u32.to_be_bytes());
        assert!(decode_all(&x).is_err());
        // A copy reaching past the window: a literal of 65 537 bytes, then offset 65 537.
        let total: u32 = 65_537 + 4;
        let mut s = Vec::new();
        let mut v = total;
        while v >= 0x80 {
            s.push((v as u8) | 0x80);
            v >>= 7;
        }
        s.push(v as u8);
        s.push(62 << 2); // literal whose length-1 follows in 3 bytes
        s.extend_from_slice(&65_536u32.to_le_bytes()[..3]);
        s.extend(std::iter::repeat_n(1u8, 65_537));
        s.push(3 | (3 << 2)); // copy with a 4-byte offset, length 4
        s.extend_from_slice(&65_537u32.to_le_bytes());
        assert!(matches!(
            decode_all(&s).map_err(|e| e.to_string()),
            Err(m) if m.contains("window")
        ));
    }

    /// A copy reaching back exactly the window size is still served, across the ring's end.
    #[test]
    fn copy_of_exactly_the_window() {
        let first: Vec<u8> = (0..WINDOW_BYTES as u32).map(|i| (i % 253) as u8).collect();
        let total = (WINDOW_BYTES + 64) as u32;
        let mut s = Vec::new();
        let mut v = total;
        while v >= 0x80 {
            s.push((v as u8) | 0x80);
            v >>= 7;
        }
        s.push(v as u8);
        s.push(61 << 2); // literal whose length-1 follows in 2 bytes
        s.extend_from_slice(&((WINDOW_BYTES - 1) as u16).to_le_bytes());
        s.extend_from_slice(&first);
        s.push(3 | (63 << 2)); // copy with a 4-byte offset, length 64
        s.extend_from_slice(&(WINDOW_BYTES as u32).to_le_bytes());
        let out = decode_all(&s).expect("valid");
        assert_eq!(&out[..WINDOW_BYTES], &first[..]);
        assert_eq!(&out[WINDOW_BYTES..], &first[..64]);
    }

    proptest! {
        /// Round trip against the `snap` encoder on data with many repeats.
        #[test]
        fn matches_snap(parts in proptest::collection::vec((any::<u8>(), 1usize..3000, 1usize..40), 0..40)) {
            let mut data = Vec::new();
            for (b, run, period) in parts {
                data.extend((0..run).map(|i| b.wrapping_add((i % period) as u8)));
            }
            let c = snap::raw::Encoder::new().compress_vec(&data).expect("compress");
            prop_assert_eq!(decode_all(&c).expect("valid"), data);
        }

        /// Fuzz: arbitrary bytes never panic, and never decode to more than the declared size.
        #[test]
        fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(out) = decode_all(&data) {
                if let Ok(expected) = snap::raw::decompress_len(&data) {
                    prop_assert_eq!(out.len(), expected);
                }
            }
            let mut x = XERIAL_HEADER.to_vec();
            x.extend_from_slice(&data);
            let _ = decode_all(&x);
        }
    }
}
