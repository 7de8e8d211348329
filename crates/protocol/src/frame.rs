//! Kafka framing: every request and response is one frame, a 4-byte length prefix and a body.
//!
//! ```text
//! byte  width  field
//!    0      4  size    int32, big-endian: bytes that follow (the prefix excluded); never < 0
//!    4   size  body    request:  header (api key, version, correlation id, ...) + request body
//!                      response: header (correlation id [+ tagged fields]) + response body
//! ```
//!
//! The size is checked against `max_frame_bytes` (Kafka's `socket.request.max.bytes`) as soon
//! as its 4 bytes are in, before anything is reserved or allocated for the body: a client
//! cannot make the broker allocate more than the limit by declaring a large frame. Nor does
//! [`decode_frame`] reserve the declared size up front: a client that declares 100 MiB and
//! sends 10 bytes costs 10 bytes of buffer, not 100 MiB; the I/O shell's reads grow the
//! buffer as bytes actually arrive.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Width of the length prefix.
pub const LENGTH_PREFIX_BYTES: usize = 4;

/// Kafka's default `socket.request.max.bytes`: 100 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 100 * 1024 * 1024;

/// Why a frame cannot be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The declared size exceeds the configured limit; the connection must be closed (Kafka
    /// closes it too: the rest of the stream cannot be resynchronised).
    #[error("frame of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Declared body size.
        size: usize,
        /// The configured `max_frame_bytes`.
        max: usize,
    },
    /// The declared size is negative.
    #[error("frame declares a negative size {size}")]
    Negative {
        /// The declared size.
        size: i32,
    },
    /// A body to be written does not fit the int32 size prefix.
    #[error("frame body of {size} bytes does not fit a 4-byte size prefix")]
    BodyTooLarge {
        /// Body size in bytes.
        size: usize,
    },
}

/// Takes one whole frame off the front of `buf`, without its length prefix.
///
/// Returns `Ok(None)` while fewer bytes than the frame needs are buffered (nothing is
/// consumed), `Ok(Some(body))` once the frame is complete (prefix and body are consumed; the
/// body shares `buf`'s allocation), and an error for a negative size or one above
/// `max_frame_bytes`, decided from the prefix alone.
pub fn decode_frame(
    buf: &mut BytesMut,
    max_frame_bytes: usize,
) -> Result<Option<Bytes>, FrameError> {
    let Some(size) = declared_size(buf, max_frame_bytes)? else {
        return Ok(None);
    };
    if buf.len() - LENGTH_PREFIX_BYTES < size {
        return Ok(None);
    }
    buf.advance(LENGTH_PREFIX_BYTES);
    Ok(Some(buf.split_to(size).freeze()))
}

/// How many more bytes the frame at the front of `buf` needs to be complete: 0 while its
/// size prefix is not in, once it is complete, or when the prefix is invalid (negative or
/// above `max_frame_bytes`, which [`decode_frame`] reports). The I/O shell uses it to reserve
/// room for a large frame in one step.
pub fn missing_frame_bytes(buf: &[u8], max_frame_bytes: usize) -> usize {
    match declared_size(buf, max_frame_bytes) {
        Ok(Some(size)) => (LENGTH_PREFIX_BYTES + size).saturating_sub(buf.len()),
        Ok(None) | Err(_) => 0,
    }
}

/// The body size the frame at the front of `buf` declares, checked against the limit;
/// `None` while the prefix is not all in.
fn declared_size(buf: &[u8], max_frame_bytes: usize) -> Result<Option<usize>, FrameError> {
    let Some(&prefix) = buf.first_chunk::<LENGTH_PREFIX_BYTES>() else {
        return Ok(None);
    };
    let declared = i32::from_be_bytes(prefix);
    let size = usize::try_from(declared).map_err(|_| FrameError::Negative { size: declared })?;
    if size > max_frame_bytes {
        return Err(FrameError::TooLarge {
            size,
            max: max_frame_bytes,
        });
    }
    Ok(Some(size))
}

/// Starts a frame at the end of `buf`: appends a 4-byte placeholder for the size and returns
/// its position, to be passed to [`finish_frame`] once the body is written after it.
pub fn begin_frame(buf: &mut BytesMut) -> usize {
    let at = buf.len();
    buf.put_i32(0);
    at
}

/// Patches the size prefix written by [`begin_frame`] at `at` to cover everything after it.
pub fn finish_frame(buf: &mut BytesMut, at: usize) -> Result<(), FrameError> {
    let body_start = at.saturating_add(LENGTH_PREFIX_BYTES);
    // A broken `at` is our own bug, but a wrong prefix would desynchronise the peer's stream:
    // fail loudly in tests, refuse in release.
    debug_assert!(
        body_start <= buf.len(),
        "finish_frame: prefix position {at} past the buffer end {}",
        buf.len()
    );
    let size = buf.len().saturating_sub(body_start);
    let declared = i32::try_from(size).map_err(|_| FrameError::BodyTooLarge { size })?;
    match buf.get_mut(at..body_start) {
        Some(prefix) => {
            prefix.copy_from_slice(&declared.to_be_bytes());
            Ok(())
        }
        None => Err(FrameError::BodyTooLarge { size }),
    }
}

/// A whole frame (size prefix + `body`) in a new buffer.
pub fn encode_frame(body: &[u8]) -> Result<BytesMut, FrameError> {
    let mut buf = BytesMut::with_capacity(LENGTH_PREFIX_BYTES + body.len());
    let at = begin_frame(&mut buf);
    buf.put_slice(body);
    finish_frame(&mut buf, at)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {

    #[test]
    fn missing_frame_bytes_counts_what_the_frame_still_needs() {
        assert_eq!(missing_frame_bytes(&[0, 0, 0], 100), 0, "no prefix yet");
        assert_eq!(missing_frame_bytes(&[0, 0, 0, 10, 1, 2], 100), 8);
        assert_eq!(
            missing_frame_bytes(&[0, 0, 0, 2, 1, 2, 3], 100),
            0,
            "complete"
        );
        assert_eq!(missing_frame_bytes(&[0, 0, 1, 0], 100), 0, "over the limit");
        assert_eq!(
            missing_frame_bytes(&[0xff, 0xff, 0xff, 0xff], 100),
            0,
            "negative"
        );
    }
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn waits_for_prefix_and_body() {
        let mut buf = BytesMut::from(&[0u8, 0, 0][..]);
        assert_eq!(decode_frame(&mut buf, 100), Ok(None));
        buf.put_u8(3);
        assert_eq!(decode_frame(&mut buf, 100), Ok(None));
        buf.put_slice(b"ab");
        assert_eq!(decode_frame(&mut buf, 100), Ok(None));
        assert_eq!(buf.len(), 6, "nothing consumed while incomplete");
        buf.put_slice(b"cde");
        let frame = decode_frame(&mut buf, 100).expect("ok").expect("complete");
        assert_eq!(&frame[..], b"abc");
        assert_eq!(&buf[..], b"de", "the next frame's bytes stay");
    }

    #[test]
    fn two_frames_back_to_back() {
        let mut buf = encode_frame(b"one").expect("encode");
        buf.extend_from_slice(&encode_frame(b"").expect("encode"));
        buf.extend_from_slice(&encode_frame(b"three").expect("encode"));
        let got: Vec<Bytes> =
            std::iter::from_fn(|| decode_frame(&mut buf, 10).expect("valid")).collect();
        assert_eq!(
            got,
            vec![
                Bytes::from_static(b"one"),
                Bytes::new(),
                Bytes::from_static(b"three")
            ]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn size_is_checked_before_the_body_arrives() {
        // Only the prefix is buffered: the limit still applies, and nothing was reserved.
        let mut buf = BytesMut::new();
        buf.put_i32(i32::MAX);
        let cap = buf.capacity();
        assert_eq!(
            decode_frame(&mut buf, DEFAULT_MAX_FRAME_BYTES),
            Err(FrameError::TooLarge {
                size: i32::MAX as usize,
                max: DEFAULT_MAX_FRAME_BYTES
            })
        );
        assert_eq!(buf.capacity(), cap);
        let mut ok = BytesMut::new();
        ok.put_i32(1000);
        assert_eq!(decode_frame(&mut ok, 1000), Ok(None));
        assert!(ok.capacity() < 1000, "declared size is not reserved");
    }

    #[test]
    fn negative_size_is_refused() {
        let mut buf = BytesMut::new();
        buf.put_i32(-1);
        assert_eq!(
            decode_frame(&mut buf, 10),
            Err(FrameError::Negative { size: -1 })
        );
        let mut min = BytesMut::new();
        min.put_i32(i32::MIN);
        assert_eq!(
            decode_frame(&mut min, 10),
            Err(FrameError::Negative { size: i32::MIN })
        );
    }

    #[test]
    fn in_place_frame_patches_the_prefix() {
        let mut buf = BytesMut::from(&b"xx"[..]);
        let at = begin_frame(&mut buf);
        buf.put_slice(b"hello");
        finish_frame(&mut buf, at).expect("fits");
        assert_eq!(&buf[..], b"xx\0\0\0\x05hello");
    }

    proptest! {
        /// Fuzz: arbitrary bytes never panic, never yield a frame over the limit, and whatever
        /// is decoded re-encodes to the bytes consumed.
        #[test]
        fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..64), max in 0usize..40) {
            let mut buf = BytesMut::from(&data[..]);
            let mut consumed = 0;
            while let Ok(Some(frame)) = decode_frame(&mut buf, max) {
                prop_assert!(frame.len() <= max);
                let again = encode_frame(&frame).expect("small");
                prop_assert_eq!(&again[..], &data[consumed..consumed + again.len()]);
                consumed += again.len();
            }
        }
    }
}
