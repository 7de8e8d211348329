//! Durable changes to the namespace: creating, renaming and removing files and directories so
//! that the change survives a power cut, not only a process crash.
//!
//! POSIX makes a file's *contents* durable at its `fsync`, but the *name* that reaches it — the
//! entry in its directory — only at an `fsync` of that directory; a new directory's name needs
//! its parent fsynced in turn. Until then a power cut can take the name, and with it data that
//! was itself fsynced (ext4 and XFS usually keep such names through their journals; other file
//! systems, and POSIX, promise nothing). Every create, rename and delete that acknowledged data
//! depends on goes through this module, which fsyncs what must be fsynced, in order:
//!
//! | operation | what is fsynced, in order |
//! |---|---|
//! | [`create_dir_all`] | each newly made directory, then its parent (bottom up) |
//! | [`ensure_dir`] | the same, or if the directory existed, it and its parent |
//! | [`create_file`] | the directory holding the new file |
//! | [`write_atomically`] | the temporary file, then (after the rename) the directory |
//! | [`rename`] | the file, then (after the rename) the target directory and the source one |
//! | [`remove_file`], [`remove_dir_all`] | the directory that held the removed entry |
//!
//! Segment files are the one exception: the log creates them without waiting and fsyncs their
//! directory at its next flush, before it reports anything in them as flushed (`Log`'s
//! `dir_dirty`), so one directory fsync covers a roll's three new files. Files nothing depends
//! on after a crash (the `.lock` files) are created plainly.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::Path;

use crate::error::{IoContext, Result, StorageError};

/// fsyncs a directory, making the creations, renames and removals in it durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .ctx("open", dir)?
        .sync_all()
        .ctx("fsync", dir)
}

/// fsyncs the directory holding `path`.
fn sync_parent(path: &Path) -> Result<()> {
    match path.parent() {
        // A relative path with one component lives in the working directory.
        Some(p) if p.as_os_str().is_empty() => sync_dir(Path::new(".")),
        Some(p) => sync_dir(p),
        // The root has no parent to name it.
        None => Ok(()),
    }
}

/// Creates `dir` and any missing parents, durably: every directory this call creates is
/// fsynced, and so is the directory that names it. Returns whether anything was created.
///
/// A directory that already exists is left as it is; see [`ensure_dir`] for one that an
/// earlier process may have created without making it durable.
pub fn create_dir_all(dir: &Path) -> Result<bool> {
    let mut missing = Vec::new();
    let mut at = dir;
    loop {
        match fs::metadata(at) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => {
                return Err(StorageError::Io {
                    op: "create directory",
                    path: at.to_path_buf(),
                    source: std::io::Error::new(ErrorKind::AlreadyExists, "not a directory"),
                })
            }
            Err(e) if e.kind() == ErrorKind::NotFound => missing.push(at),
            Err(e) => return Err(e).ctx("stat", at),
        }
        match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => at = p,
            _ => break,
        }
    }
    if missing.is_empty() {
        return Ok(false);
    }
    for new in missing.iter().rev() {
        match fs::create_dir(new) {
            Ok(()) => {}
            // Made at the same moment by someone else: it exists, which is what we want, and
            // it is made durable below all the same.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).ctx("create directory", new),
        }
    }
    // Bottom up: each new directory (which names the one below it), then the existing
    // directory that names the topmost new one.
    for new in &missing {
        sync_dir(new)?;
    }
    if let Some(top) = missing.last() {
        sync_parent(top)?;
    }
    Ok(true)
}

/// [`create_dir_all`], and if `dir` already existed, fsyncs it and its parent all the same: an
/// earlier process may have created it and died before it could (a `kill -9` between the two
/// steps), and the page cache would keep showing it until a power cut takes it. For the few
/// directories a process owns for its whole life (a broker's data directory), at start.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    if !create_dir_all(dir)? {
        sync_dir(dir)?;
        sync_parent(dir)?;
    }
    Ok(())
}

/// Creates (or truncates) the file `path` for writing and makes its name durable.
pub fn create_file(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .ctx("create", path)?;
    sync_parent(path)?;
    Ok(file)
}

/// Replaces `dir/name` with `body`, atomically and durably: written to `<name>.tmp`, fsynced,
/// renamed over `name`, and the directory fsynced. A crash leaves the old file or the new one,
/// never a mix; a power cut after this returns leaves the new one.
pub fn write_atomically(dir: &Path, name: &str, body: &[u8]) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut f = File::create(&tmp).ctx("create", &tmp)?;
    f.write_all(body).ctx("write", &tmp)?;
    f.sync_all().ctx("fsync", &tmp)?;
    drop(f);
    fs::rename(&tmp, &path).ctx("rename", &path)?;
    sync_dir(dir)
}

/// Renames `from` to `to` durably: the file's contents are fsynced first (so the new name
/// never names bytes that could still be lost), then, after the rename, the directory of `to`
/// and, if it differs, that of `from` (so the old name does not come back).
pub fn rename(from: &Path, to: &Path) -> Result<()> {
    File::open(from)
        .ctx("open", from)?
        .sync_all()
        .ctx("fsync", from)?;
    fs::rename(from, to).ctx("rename", to)?;
    sync_parent(to)?;
    if from.parent() != to.parent() {
        sync_parent(from)?;
    }
    Ok(())
}

/// Removes the file `path` and makes the removal durable.
pub fn remove_file(path: &Path) -> Result<()> {
    fs::remove_file(path).ctx("remove", path)?;
    sync_parent(path)
}

/// Removes the directory `dir` with everything in it and makes the removal durable (its
/// name is gone from its parent; what was inside goes with it).
pub fn remove_dir_all(dir: &Path) -> Result<()> {
    fs::remove_dir_all(dir).ctx("remove", dir)?;
    sync_parent(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_dir_all_makes_every_missing_level() {
        let base = tempfile::tempdir().expect("tempdir");
        let deep = base.path().join("a/b/c");
        assert!(create_dir_all(&deep).expect("create"));
        assert!(deep.is_dir());
        assert!(!create_dir_all(&deep).expect("again"), "nothing new");
        ensure_dir(&deep).expect("ensure an existing directory");
        ensure_dir(&base.path().join("x/y")).expect("ensure a new one");
        assert!(base.path().join("x/y").is_dir());
        let file = base.path().join("a/f");
        fs::write(&file, b"x").expect("write");
        let err = create_dir_all(&file).expect_err("a file is in the way");
        assert!(err.to_string().contains("a/f"), "{err}");
    }

    #[test]
    fn file_operations_round_trip() {
        let base = tempfile::tempdir().expect("tempdir");
        let dir = base.path();
        let mut f = create_file(&dir.join("new")).expect("create");
        f.write_all(b"one").expect("write");
        drop(f);
        create_dir_all(&dir.join("sub")).expect("mkdir");
        rename(&dir.join("new"), &dir.join("sub/moved")).expect("rename");
        assert_eq!(fs::read(dir.join("sub/moved")).expect("read"), b"one");
        assert!(!dir.join("new").exists());
        write_atomically(dir, "cp", b"two").expect("replace");
        write_atomically(dir, "cp", b"three").expect("replace");
        assert_eq!(fs::read(dir.join("cp")).expect("read"), b"three");
        assert!(!dir.join("cp.tmp").exists());
        remove_file(&dir.join("cp")).expect("remove");
        remove_dir_all(&dir.join("sub")).expect("remove dir");
        assert_eq!(fs::read_dir(dir).expect("list").count(), 0);
        let err = remove_file(&dir.join("cp")).expect_err("gone");
        assert!(err.to_string().contains("cp"), "{err}");
    }
}
