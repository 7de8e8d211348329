//! The one place that maps files into memory; nothing else in Cairn uses `unsafe`.
//!
//! Index files are mapped read-write at a fixed length. The mapping is only ever created over
//! a file this process has locked (the log directory lock), sized with `set_len` before it is
//! mapped, and remapped (never just extended) whenever the length changes.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

use crate::error::{IoContext, Result};

/// Sets the length of `file` from `current` to `len`, allocating the disk blocks of a grown
/// range. A file grown with `set_len` alone is sparse: the first store into one of its
/// mapped pages then needs a block, and on a full filesystem the kernel answers that store
/// with SIGBUS, which kills the process. Allocated up front, a full disk is an `ENOSPC`
/// error here instead, which the caller handles.
fn grow_or_set_len(file: &File, path: &Path, current: u64, len: u64) -> Result<()> {
    if len > current {
        match rustix::fs::fallocate(
            file,
            rustix::fs::FallocateFlags::empty(),
            current,
            len - current,
        ) {
            Ok(()) => return Ok(()),
            // Filesystems without fallocate: sparse, as before.
            Err(e) if e == rustix::io::Errno::OPNOTSUPP => {}
            Err(e) => return Err(std::io::Error::from(e)).ctx("allocate", path),
        }
    }
    file.set_len(len).ctx("resize", path)
}

/// A file mapped read-write over its whole length.
#[derive(Debug)]
pub(crate) struct MappedFile {
    path: PathBuf,
    file: File,
    map: Option<MmapMut>,
    len: u64,
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
            let current = file.metadata().ctx("stat", path)?.len();
            grow_or_set_len(&file, path, current, len)?;
        }
        let len = file.metadata().ctx("stat", path)?.len();
        let mut mapped = MappedFile {
            path: path.to_path_buf(),
            file,
            map: None,
            len,
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
        grow_or_set_len(&self.file, &self.path, self.len, len)?;
        self.len = len;
        self.remap()
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
