//! The one place that maps files into memory; nothing else in Cairn uses `unsafe`.
//!
//! Index files are mapped read-write at a fixed length. The mapping is only ever created over
//! a file this process has locked (the log directory lock), sized with `set_len` before it is
//! mapped, and remapped (never just extended) whenever the length changes.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

use crate::error::{IoContext, Result};

/// Disk blocks of a mapped file are allocated this many bytes at a time (see
/// [`MappedFile::ensure_allocated`]).
const ALLOCATE_CHUNK_BYTES: u64 = 64 * 1024;

/// A file mapped read-write over its whole length.
#[derive(Debug)]
pub(crate) struct MappedFile {
    path: PathBuf,
    file: File,
    map: Option<MmapMut>,
    len: u64,
    /// Bytes `[0, allocated)` have disk blocks (allocated by this process).
    allocated: u64,
}

impl MappedFile {
    /// Opens (creating if absent) `path`, sets its length to `len` if given, and maps it.
    pub(crate) fn open(path: &Path, len: Option<u64>) -> Result<MappedFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .ctx("open", path)?;
        if let Some(len) = len {
            file.set_len(len).ctx("resize", path)?;
        }
        let len = file.metadata().ctx("stat", path)?.len();
        let mut mapped = MappedFile {
            path: path.to_path_buf(),
            file,
            map: None,
            len,
            allocated: 0,
        };
        mapped.remap()?;
        Ok(mapped)
    }

    fn remap(&mut self) -> Result<()> {
        self.map = None;
        if self.len == 0 {
            return Ok(());
        }
        // SAFETY: the mapping covers exactly the file's current length (set or read just
        // before). The file lives in a log directory that this process holds an exclusive
        // lock on (`Log::open`), so no cooperating process truncates it under us; within the
        // process only `MappedFile` changes its length, and it drops the mapping first.
        let map = unsafe { MmapMut::map_mut(&self.file) }.ctx("mmap", &self.path)?;
        self.map = Some(map);
        Ok(())
    }

    /// Current length of the file and the mapping.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The mapped bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// The mapped bytes, writable.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        self.map.as_deref_mut().unwrap_or(&mut [])
    }

    /// Changes the file's length and remaps it. Bytes past the old length read as zero.
    pub(crate) fn resize(&mut self, len: u64) -> Result<()> {
        self.map = None;
        self.file.set_len(len).ctx("resize", &self.path)?;
        self.len = len;
        self.allocated = self.allocated.min(len);
        self.remap()
    }

    /// Makes sure bytes `[0, end)` have disk blocks before they are written through the
    /// mapping. A file grown with `set_len` is sparse (index files are preallocated to
    /// `segment.index.bytes` that way, costing nothing until used), and the first store into
    /// a page without a block needs one: on a full filesystem the kernel answers that store
    /// with SIGBUS, which kills the process. Allocated here first, a full disk is an
    /// `ENOSPC` error instead, before anything was written.
    pub(crate) fn ensure_allocated(&mut self, end: u64) -> Result<()> {
        let end = end.min(self.len);
        if end <= self.allocated {
            return Ok(());
        }
        let target = end
            .div_ceil(ALLOCATE_CHUNK_BYTES)
            .saturating_mul(ALLOCATE_CHUNK_BYTES)
            .min(self.len);
        let flags = rustix::fs::FallocateFlags::KEEP_SIZE;
        match rustix::fs::fallocate(&self.file, flags, self.allocated, target - self.allocated) {
            Ok(()) => {}
            // A filesystem without fallocate: writes stay as they were (sparse).
            Err(e) if e == rustix::io::Errno::OPNOTSUPP => {}
            Err(e) => return Err(std::io::Error::from(e)).ctx("allocate", &self.path),
        }
        self.allocated = target;
        Ok(())
    }

    /// Writes dirty pages back and fsyncs the file (length included).
    pub(crate) fn sync(&self) -> Result<()> {
        if let Some(map) = &self.map {
            map.flush().ctx("msync", &self.path)?;
        }
        self.file.sync_all().ctx("fsync", &self.path)
    }

    /// A second handle on the file, for syncing from another thread.
    pub(crate) fn try_clone_file(&self) -> Result<File> {
        self.file.try_clone().ctx("dup", &self.path)
    }
}
