//! Reused buffers for Fetch reads.
//!
//! A fetched partition's batches are read from the segment files into a buffer that then
//! travels to the socket as `Bytes` (see `encode_response_chunks`). A fresh buffer per read
//! costs twice per byte before the read itself: zeroing it (Rust hands out initialised
//! memory) and, for the multi-MiB buffers of a busy consumer, the kernel's page faults and
//! page zeroing when the allocator returned the memory in between: together about 14% of the
//! broker's CPU while consuming (docs/benchmarks.md). The pool keeps a few buffers; a read
//! takes one, and the `Bytes` hands it back when its last reference is dropped, i.e. once the
//! response is written. No `unsafe`: a buffer stays initialised from its first use on, and a
//! read overwrites the part it returns.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cairn_storage::LogRead;

/// Buffers kept for reuse, at most.
const MAX_POOLED: usize = 32;
/// Buffers larger than this are not kept (a read that large is rare and would pin memory).
const MAX_POOLED_BYTES: usize = 4 << 20;
/// Bytes kept in the pool, at most: what an idle broker holds on to after a burst.
const MAX_POOLED_TOTAL: usize = 32 << 20;

/// A bounded pool of read buffers, shared by every fetch.
#[derive(Debug, Default)]
pub(crate) struct ReadBuffers {
    free: Mutex<Vec<Vec<u8>>>,
}

impl ReadBuffers {
    /// Loads `read` (see `LogRead::load_into`) into a pooled buffer; the returned `Bytes`
    /// give the buffer back to the pool when dropped.
    pub(crate) fn load(
        self: &Arc<Self>,
        read: &LogRead,
    ) -> Result<Bytes, cairn_storage::StorageError> {
        let total = read.total_bytes() as usize;
        let mut buf = self.take(total);
        let n = match read.load_into(&mut buf[..total]) {
            Ok(n) => n,
            Err(e) => {
                self.give_back(buf);
                return Err(e);
            }
        };
        Ok(Bytes::from_owner(Pooled {
            buf,
            len: n,
            pool: Arc::clone(self),
        }))
    }

    /// A buffer of at least `len` initialised bytes: the smallest pooled one that fits, or a
    /// new one.
    fn take(&self, len: usize) -> Vec<u8> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let fit = free
            .iter()
            .enumerate()
            .filter(|(_, b)| b.len() >= len)
            .min_by_key(|(_, b)| b.len())
            .map(|(i, _)| i);
        match fit {
            Some(i) => free.swap_remove(i),
            None => {
                drop(free);
                vec![0; len]
            }
        }
    }

    fn give_back(&self, buf: Vec<u8>) {
        if buf.len() > MAX_POOLED_BYTES {
            return;
        }
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let held: usize = free.iter().map(Vec::len).sum();
        if free.len() < MAX_POOLED && held + buf.len() <= MAX_POOLED_TOTAL {
            free.push(buf);
        }
    }
}

/// The owner behind a pooled read's `Bytes`.
struct Pooled {
    buf: Vec<u8>,
    len: usize,
    pool: Arc<ReadBuffers>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_and_are_reused_smallest_fit_first() {
        let pool = Arc::new(ReadBuffers::default());
        let a = pool.take(100);
        let b = pool.take(1000);
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        pool.give_back(a);
        pool.give_back(b);
        let c = pool.take(50);
        assert_eq!(c.as_ptr(), pa, "the smallest buffer that fits");
        let d = pool.take(500);
        assert_eq!(d.as_ptr(), pb);
        assert!(d.len() >= 500);
        let e = pool.take(5000);
        assert!(e.len() >= 5000, "a new one when none fits");
    }

    #[test]
    fn the_pool_is_bounded() {
        let pool = ReadBuffers::default();
        for _ in 0..MAX_POOLED + 10 {
            pool.give_back(vec![0; 10]);
        }
        pool.give_back(vec![0; MAX_POOLED_BYTES + 1]);
        let free = pool.free.lock().expect("lock");
        assert_eq!(free.len(), MAX_POOLED);
        assert!(free.iter().all(|b| b.len() <= MAX_POOLED_BYTES));
        drop(free);
        let big = ReadBuffers::default();
        for _ in 0..MAX_POOLED {
            big.give_back(vec![0; MAX_POOLED_BYTES]);
        }
        let held: usize = big.free.lock().expect("lock").iter().map(Vec::len).sum();
        assert!(held <= MAX_POOLED_TOTAL, "{held} bytes held");
    }

    #[test]
    fn dropping_the_bytes_returns_the_buffer() {
        let pool = Arc::new(ReadBuffers::default());
        let bytes = Bytes::from_owner(Pooled {
            buf: vec![7; 64],
            len: 10,
            pool: Arc::clone(&pool),
        });
        assert_eq!(&bytes[..], &[7; 10]);
        let slice = bytes.slice(2..4);
        drop(bytes);
        assert!(
            pool.free.lock().expect("lock").is_empty(),
            "a slice still holds it"
        );
        drop(slice);
        assert_eq!(pool.free.lock().expect("lock").len(), 1);
    }
}
