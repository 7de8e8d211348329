//! Exclusive ownership of a data directory for the life of the process.
//!
//! Two brokers writing one set of segment files would corrupt them, so `serve` holds an
//! advisory lock (`flock(2)`, via `File::try_lock`) on `DIR/.lock` until it stops. The kernel drops the lock when the
//! descriptor closes, so a crashed or `kill -9`ed broker never leaves a stale lock behind,
//! and the file itself is never deleted (deleting it would let a second process lock a new
//! inode while the first still holds the old one). The file records the holder's pid, only
//! to make the "already in use" error useful.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

/// Name of the lock file inside the data directory.
pub const LOCK_FILE: &str = ".lock";

/// A held lock on a data directory; dropping it releases the lock.
#[derive(Debug)]
pub struct DataDirLock {
    file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Locks `dir` (which must exist), or fails at once if another process holds it.
    pub fn acquire(dir: &Path) -> anyhow::Result<DataDirLock> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                // Best effort: the pid only decorates the message.
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim().parse::<u32>() {
                    Ok(pid) => format!(" (pid {pid})"),
                    Err(_) => String::new(),
                };
                bail!(
                    "data directory {} is in use by another cairn process{holder}: \
                     {} is locked",
                    dir.display(),
                    path.display()
                );
            }
            Err(TryLockError::Error(err)) => {
                return Err(err).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .with_context(|| format!("cannot write pid to {}", path.display()))?;
        Ok(DataDirLock { file, path })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Releases the lock. Dropping does the same; this makes the moment explicit in the
    /// shutdown sequence.
    pub fn release(self) {
        drop(self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_until_the_first_is_released() {
        let dir = std::env::temp_dir().join(format!("cairn-lock-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");

        let first = DataDirLock::acquire(&dir).expect("first lock");
        assert_eq!(first.path(), dir.join(LOCK_FILE));
        // flock locks belong to the open file description, so a second open in the same
        // process conflicts just as another process would.
        let err = DataDirLock::acquire(&dir).expect_err("second lock must fail");
        let message = format!("{err:#}");
        assert!(message.contains(&dir.display().to_string()), "{message}");
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );

        first.release();
        let again = DataDirLock::acquire(&dir).expect("lock after release");
        again.release();
        std::fs::remove_dir_all(&dir).expect("remove temp dir");
    }
}
