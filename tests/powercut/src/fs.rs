//! The FUSE shell around the [`Model`]: answers the kernel's requests, keeps each file's bytes
//! in two files on the real disk, and tells the model what happened.
//!
//! ```text
//! <objects>/<ino>.live      the file as processes see it (every write lands here)
//! <objects>/<ino>.durable   the file as of its last fsync (updated from .live at each fsync,
//!                           by the model's SyncPlan: only the ranges written since)
//! ```
//!
//! Directory entries live only in the model. The kernel's page cache sits in front of the
//! mount as for any file system: `write(2)` reaches us at once (no writeback cache is asked
//! for), pages dirtied through a shared mapping (Cairn's index files) reach us when the kernel
//! writes them back (at the latest at `msync`/`fsync`, which is also when they must be
//! durable). `fsync`/`fdatasync` arrive as FSYNC after the kernel has written the file's dirty
//! pages, `fsync` of a directory as FSYNCDIR. `flock` is handled by the kernel.
//!
//! One thread serves every request, so requests are applied in the order the kernel sent them.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::model::{FsError, Ino, Kind, Meta, Model, SyncPlan};

/// How long the kernel may cache names and attributes. Every change goes through this mount,
/// so the kernel's cache never goes stale; the value only bounds memory.
const TTL: Duration = Duration::from_secs(1);

/// Copy buffer for bringing a durable copy up to date.
const COPY_CHUNK_BYTES: usize = 1 << 20;

/// Paths of a file's two copies.
pub(crate) fn object_path(objects: &Path, ino: Ino, durable: bool) -> PathBuf {
    let kind = if durable { "durable" } else { "live" };
    objects.join(format!("{ino}.{kind}"))
}

/// Everything the file system holds, behind one lock (one thread serves the mount; the lock
/// lets the main thread cut and read the model).
#[derive(Debug)]
pub(crate) struct Shell {
    pub(crate) model: Model,
    objects: PathBuf,
    /// Open files: handle -> (inode, its live copy).
    files: HashMap<u64, (Ino, File)>,
    /// Open directories: handle -> the entries as of opendir (so readdir offsets stay stable).
    dirs: HashMap<u64, Vec<(Ino, FileType, OsString)>>,
    next_handle: u64,
    times: HashMap<Ino, SystemTime>,
    trace: bool,
}

/// The mounted file system.
#[derive(Debug, Clone)]
pub(crate) struct PowerCutFs {
    shell: Arc<Mutex<Shell>>,
}

impl PowerCutFs {
    pub(crate) fn new(model: Model, objects: PathBuf, trace: bool) -> PowerCutFs {
        PowerCutFs {
            shell: Arc::new(Mutex::new(Shell {
                model,
                objects,
                files: HashMap::new(),
                dirs: HashMap::new(),
                next_handle: 1,
                times: HashMap::new(),
                trace,
            })),
        }
    }

    /// The shell, for the main thread (a cut) and for each request.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Shell> {
        // A panic while serving one request must not stop the cut that follows it.
        self.shell.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn errno(e: FsError) -> Errno {
    match e {
        FsError::NotFound => Errno::ENOENT,
        FsError::Exists => Errno::EEXIST,
        FsError::NotDir => Errno::ENOTDIR,
        FsError::IsDir => Errno::EISDIR,
        FsError::NotEmpty => Errno::ENOTEMPTY,
        FsError::Invalid => Errno::EINVAL,
    }
}

fn io_errno(e: &io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_i32)
}

fn file_type(kind: Kind) -> FileType {
    match kind {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
    }
}

impl Shell {
    fn trace(&self, what: std::fmt::Arguments<'_>) {
        if self.trace {
            eprintln!("powercut: {what}");
        }
    }

    fn attr(&self, ino: Ino) -> Result<FileAttr, Errno> {
        let node = self.model.node(ino).map_err(errno)?;
        let time = self
            .times
            .get(&ino)
            .copied()
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let size = node.size();
        Ok(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: time,
            mtime: time,
            ctime: time,
            crtime: time,
            kind: file_type(node.kind()),
            perm: (node.meta.mode & 0o7777) as u16,
            nlink: match node.kind() {
                Kind::Dir => 2,
                Kind::File => node.links,
            },
            uid: node.meta.uid,
            gid: node.meta.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    fn handle(&mut self) -> u64 {
        let h = self.next_handle;
        self.next_handle += 1;
        h
    }

    fn open_live(&self, ino: Ino, create: bool) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(create)
            .open(object_path(&self.objects, ino, false))
    }

    /// The live copy behind an open handle (the handle the kernel names, or a fresh one for a
    /// write-back the kernel sends without a handle of ours).
    fn with_live<T>(
        &self,
        ino: Ino,
        fh: FileHandle,
        f: impl FnOnce(&File) -> io::Result<T>,
    ) -> io::Result<T> {
        match self.files.get(&fh.0) {
            Some((owner, file)) if *owner == ino => f(file),
            _ => f(&self.open_live(ino, false)?),
        }
    }

    fn apply(&self, ino: Ino, plan: &SyncPlan) -> io::Result<()> {
        let durable = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(object_path(&self.objects, ino, true))?;
        durable.set_len(plan.keep)?;
        durable.set_len(plan.size)?;
        if plan.ranges.is_empty() {
            return Ok(());
        }
        let live = File::open(object_path(&self.objects, ino, false))?;
        let mut buf = vec![0u8; COPY_CHUNK_BYTES];
        for range in &plan.ranges {
            let mut at = range.start;
            while at < range.end {
                let n = (range.end - at).min(COPY_CHUNK_BYTES as u64) as usize;
                live.read_exact_at(&mut buf[..n], at)?;
                durable.write_all_at(&buf[..n], at)?;
                at += n as u64;
            }
        }
        Ok(())
    }

    fn new_meta(req: &Request, mode: u32, umask: u32) -> Meta {
        Meta {
            mode: mode & !umask & 0o7777,
            uid: req.uid(),
            gid: req.gid(),
        }
    }
}

impl Filesystem for PowerCutFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let shell = self.lock();
        match shell
            .model
            .lookup(parent.0, name)
            .map_err(errno)
            .and_then(|ino| shell.attr(ino))
        {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.lock().attr(ino.0) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut shell = self.lock();
        let ino = ino.0;
        let result = (|| -> Result<FileAttr, Errno> {
            let mut meta = shell.model.node(ino).map_err(errno)?.meta;
            if let Some(size) = size {
                shell
                    .with_live(ino, fh.unwrap_or(FileHandle(0)), |f| f.set_len(size))
                    .map_err(|e| io_errno(&e))?;
                shell.model.set_size(ino, size).map_err(errno)?;
                shell.trace(format_args!("truncate {ino} to {size}"));
                shell.times.insert(ino, SystemTime::now());
            }
            meta.mode = mode.map_or(meta.mode, |m| m & 0o7777);
            meta.uid = uid.unwrap_or(meta.uid);
            meta.gid = gid.unwrap_or(meta.gid);
            shell.model.set_meta(ino, meta).map_err(errno)?;
            if let Some(t) = mtime {
                let t = match t {
                    TimeOrNow::SpecificTime(t) => t,
                    TimeOrNow::Now => SystemTime::now(),
                };
                shell.times.insert(ino, t);
            }
            shell.attr(ino)
        })();
        match result {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let mut shell = self.lock();
        let meta = Shell::new_meta(req, mode, umask);
        match shell.model.mkdir(parent.0, name, meta) {
            Ok(ino) => {
                shell.times.insert(ino, SystemTime::now());
                shell.trace(format_args!("mkdir {ino} = {}/{name:?}", parent.0));
                match shell.attr(ino) {
                    Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
                    Err(e) => reply.error(e),
                }
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let mut shell = self.lock();
        let meta = Shell::new_meta(req, mode, umask);
        let ino = match shell.model.create(parent.0, name, meta) {
            Ok(ino) => ino,
            Err(e) => return reply.error(errno(e)),
        };
        let file = match shell.open_live(ino, true) {
            Ok(f) => f,
            Err(e) => {
                // Keep the namespace as it was: the name must not outlive a failed create.
                let _ = shell.model.unlink(parent.0, name);
                return reply.error(io_errno(&e));
            }
        };
        shell.times.insert(ino, SystemTime::now());
        shell.trace(format_args!("create {ino} = {}/{name:?}", parent.0));
        let fh = shell.handle();
        shell.files.insert(fh, (ino, file));
        match shell.attr(ino) {
            Ok(attr) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(fh),
                FopenFlags::FOPEN_KEEP_CACHE,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut shell = self.lock();
        match shell.model.unlink(parent.0, name) {
            Ok(()) => {
                shell.trace(format_args!("unlink {}/{name:?}", parent.0));
                reply.ok()
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut shell = self.lock();
        match shell.model.rmdir(parent.0, name) {
            Ok(()) => {
                shell.trace(format_args!("rmdir {}/{name:?}", parent.0));
                reply.ok()
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        new_parent: INodeNo,
        new_name: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if !(flags - RenameFlags::RENAME_NOREPLACE).is_empty() {
            // RENAME_EXCHANGE and RENAME_WHITEOUT: not needed by Cairn, so not modelled.
            return reply.error(Errno::EINVAL);
        }
        let no_replace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        let mut shell = self.lock();
        match shell
            .model
            .rename(parent.0, name, new_parent.0, new_name, no_replace)
        {
            Ok(()) => {
                shell.trace(format_args!(
                    "rename {}/{name:?} -> {}/{new_name:?}",
                    parent.0, new_parent.0
                ));
                reply.ok()
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let mut shell = self.lock();
        match shell.model.node(ino.0).map(|n| n.kind()) {
            Ok(Kind::File) => {}
            Ok(Kind::Dir) => return reply.error(Errno::EISDIR),
            Err(e) => return reply.error(errno(e)),
        }
        match shell.open_live(ino.0, false) {
            Ok(file) => {
                let fh = shell.handle();
                shell.files.insert(fh, (ino.0, file));
                // Only this mount changes the files, so cached pages never go stale.
                reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE)
            }
            Err(e) => reply.error(io_errno(&e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let shell = self.lock();
        let mut buf = vec![0u8; size as usize];
        let result = shell.with_live(ino.0, fh, |f| {
            let mut filled = 0;
            while filled < buf.len() {
                match f.read_at(&mut buf[filled..], offset + filled as u64)? {
                    0 => break,
                    n => filled += n,
                }
            }
            Ok(filled)
        });
        match result {
            Ok(n) => reply.data(&buf[..n]),
            Err(e) => reply.error(io_errno(&e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut shell = self.lock();
        if let Err(e) = shell.with_live(ino.0, fh, |f| f.write_all_at(data, offset)) {
            return reply.error(io_errno(&e));
        }
        match shell.model.wrote(ino.0, offset, data.len() as u64) {
            Ok(()) => {
                shell.times.insert(ino.0, SystemTime::now());
                reply.written(data.len() as u32)
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2) makes nothing durable.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.lock().files.remove(&fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        // fdatasync and fsync keep the same here: the bytes and the size (POSIX's fdatasync
        // keeps what is needed to read the data back, which includes the size).
        let mut shell = self.lock();
        let plan = match shell.model.sync_file(ino.0) {
            Ok(plan) => plan,
            Err(e) => return reply.error(errno(e)),
        };
        if let Some(plan) = plan {
            if let Err(e) = shell.apply(ino.0, &plan) {
                eprintln!("powercut: fsync of inode {}: {e}", ino.0);
                return reply.error(io_errno(&e));
            }
            shell.trace(format_args!(
                "{} {} ({} bytes, {} ranges)",
                if datasync { "fdatasync" } else { "fsync" },
                ino.0,
                plan.size,
                plan.ranges.len()
            ));
        }
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let mut shell = self.lock();
        let listing = shell.model.entries(ino.0).and_then(|entries| {
            let parent = shell.model.parent(ino.0)?;
            let mut all = vec![
                (ino.0, FileType::Directory, OsString::from(".")),
                (parent, FileType::Directory, OsString::from("..")),
            ];
            all.extend(
                entries
                    .into_iter()
                    .map(|(name, child, kind)| (child, file_type(kind), name)),
            );
            Ok(all)
        });
        match listing {
            Ok(all) => {
                let fh = shell.handle();
                shell.dirs.insert(fh, all);
                reply.opened(FileHandle(fh), FopenFlags::empty())
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let shell = self.lock();
        let Some(entries) = shell.dirs.get(&fh.0) else {
            return reply.error(Errno::EBADF);
        };
        for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
            // The offset handed out is where the next call resumes.
            if reply.add(INodeNo(*ino), i as u64 + 1, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.lock().dirs.remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut shell = self.lock();
        match shell.model.sync_dir(ino.0) {
            Ok(()) => {
                shell.trace(format_args!("fsync dir {}", ino.0));
                reply.ok()
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // Plenty of room: the test's data lives on the real disk under the state directory.
        reply.statfs(1 << 28, 1 << 27, 1 << 27, 1 << 24, 1 << 23, 4096, 255, 4096);
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }
}
