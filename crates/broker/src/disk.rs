//! The data directory's free space, watched so that a full disk loses nothing and does not
//! stop the node.
//!
//! Once the filesystem holding the data directory has less than `storage.min.free.bytes`
//! available, producers are refused at once with KAFKA_STORAGE_ERROR (before anything is
//! written), while reads, retention, DeleteRecords and DeleteTopics go on: deleting needs a
//! little space too (the log start is checkpointed before files go), which the margin keeps.
//! When space returns (those deletions, or the operator freeing some), writes resume by
//! themselves at the next check. The space is read every second by a background task and,
//! on the produce path, whenever the last reading is over 100 ms old (one `statvfs`), so a
//! fast producer cannot write far past the margin between two checks.
//!
//! A *ballast* file (`.cairn/ballast`, a quarter of the margin, at most 64 MiB) holds space in
//! reserve against a disk that something else filled completely: when the available space
//! drops below its size, it is deleted, so the node can still start (opening a partition
//! writes its checkpoints) and delete; it is written again once the disk has room. This is
//! CockroachDB's emergency ballast, managed by the node itself. Redpanda refuses writes below
//! `storage_min_free_bytes` the same way; Kafka has neither and fails the log directory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// The produce path reads the free space again when the last reading is this old.
const STALE_AFTER_MS: u64 = 100;

/// What the guard found at its last check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Space {
    /// Bytes an unprivileged writer may still use on the filesystem.
    pub(crate) available: u64,
    /// The filesystem's size.
    pub(crate) total: u64,
}

/// The free-space watch of one data directory.
#[derive(Debug)]
pub(crate) struct DiskGuard {
    dir: PathBuf,
    ballast: PathBuf,
    min_free_bytes: u64,
    ballast_bytes: u64,
    full: AtomicBool,
    last: Mutex<Option<Space>>,
    /// When `last` was read, in ms since `epoch`.
    last_ms: AtomicU64,
    epoch: Instant,
}

/// Reads the space of the filesystem holding `dir`.
pub(crate) fn space_of(dir: &Path) -> std::io::Result<Space> {
    let s = rustix::fs::statvfs(dir).map_err(std::io::Error::from)?;
    Ok(Space {
        available: s.f_bavail.saturating_mul(s.f_frsize),
        total: s.f_blocks.saturating_mul(s.f_frsize),
    })
}

impl DiskGuard {
    /// A guard for `dir` (which must exist) with `min_free_bytes` of margin (0: never full).
    pub(crate) fn new(dir: &Path, min_free_bytes: u64) -> DiskGuard {
        DiskGuard {
            dir: dir.to_path_buf(),
            ballast: dir.join(".cairn").join("ballast"),
            min_free_bytes,
            ballast_bytes: (min_free_bytes / 4).min(64 << 20),
            full: AtomicBool::new(false),
            last: Mutex::new(None),
            last_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Why produces are refused now, if they are (reading the space again if the last
    /// reading is stale).
    pub(crate) fn full_reason(&self) -> Option<String> {
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        if self.min_free_bytes > 0
            && now_ms.saturating_sub(self.last_ms.load(Ordering::Relaxed)) >= STALE_AFTER_MS
        {
            self.observe();
        }
        if !self.full.load(Ordering::Relaxed) {
            return None;
        }
        let last = self.last.lock().ok().and_then(|l| *l);
        Some(match last {
            Some(s) => format!(
                "the filesystem of the data directory {} is full: {} bytes available, {} \
                 needed (storage.min.free.bytes); delete records or topics, or free space",
                self.dir.display(),
                s.available,
                self.min_free_bytes
            ),
            None => format!(
                "the filesystem of the data directory {} is full",
                self.dir.display()
            ),
        })
    }

    /// Looks at the free space now: enters or leaves the full state (with one log line
    /// each), and deletes or writes the ballast. For the background task.
    pub(crate) fn check(&self) {
        let Some(space) = self.observe() else {
            return;
        };
        let ballast_present = self.ballast.exists();
        let was_full = self.full.load(Ordering::Relaxed);
        if was_full && space.available >= self.min_free_bytes + self.ballast_bytes {
            // Hysteresis: the ballast goes back first, and writes resume with the whole margin.
            self.write_ballast();
            self.full.store(false, Ordering::Relaxed);
            tracing::info!(
                dir = %self.dir.display(),
                available_bytes = space.available,
                "the data directory's filesystem has space again; produce requests are accepted"
            );
        } else if !was_full && !ballast_present && space.available >= self.min_free_bytes {
            self.write_ballast();
        }
    }

    /// Reads the free space and enters the full state (one log line) if it is short; gives
    /// up the ballast if even that is short. Cheap enough for the produce path.
    fn observe(&self) -> Option<Space> {
        if self.min_free_bytes == 0 {
            return None;
        }
        self.last_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        let space = match space_of(&self.dir) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot read the free space of the data directory");
                return None;
            }
        };
        if let Ok(mut last) = self.last.lock() {
            *last = Some(space);
        }
        if space.available < self.ballast_bytes && self.ballast.exists() {
            match std::fs::remove_file(&self.ballast) {
                Ok(()) => tracing::warn!(
                    path = %self.ballast.display(), bytes = self.ballast_bytes,
                    "the disk is nearly out of space; deleted the ballast file so the node can still write its checkpoints and delete data"
                ),
                Err(e) => {
                    tracing::warn!(path = %self.ballast.display(), error = %e, "cannot delete the ballast file")
                }
            }
        }
        if space.available < self.min_free_bytes && !self.full.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                dir = %self.dir.display(),
                available_bytes = space.available,
                total_bytes = space.total,
                needed_bytes = self.min_free_bytes,
                "the data directory's filesystem is full: produce requests are refused with KAFKA_STORAGE_ERROR until it has storage.min.free.bytes available again (reads, retention, DeleteRecords and DeleteTopics go on)"
            );
        }
        Some(space)
    }

    /// Writes the ballast file with its blocks allocated (not a sparse file).
    fn write_ballast(&self) {
        if self.ballast_bytes == 0 || self.ballast.exists() {
            return;
        }
        let result = (|| -> std::io::Result<()> {
            let tmp = self.ballast.with_extension("tmp");
            let f = std::fs::File::create(&tmp)?;
            rustix::fs::fallocate(
                &f,
                rustix::fs::FallocateFlags::empty(),
                0,
                self.ballast_bytes,
            )
            .map_err(std::io::Error::from)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.ballast)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(self.ballast.with_extension("tmp"));
            tracing::warn!(path = %self.ballast.display(), error = %e, "cannot write the ballast file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ballast_is_written_and_a_huge_margin_means_full() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join(".cairn")).expect("mkdir");
        let roomy = DiskGuard::new(dir.path(), 4 << 20);
        roomy.check();
        assert!(roomy.full_reason().is_none());
        let ballast = dir.path().join(".cairn/ballast");
        assert_eq!(std::fs::metadata(&ballast).expect("ballast").len(), 1 << 20);
        // A margin larger than any disk: full at once, with a reason naming the setting.
        let greedy = DiskGuard::new(dir.path(), u64::MAX / 2);
        greedy.check();
        let reason = greedy.full_reason().expect("full");
        assert!(reason.contains("storage.min.free.bytes"), "{reason}");
        // The ballast is far smaller than what is available, so it stays.
        assert!(ballast.exists());
    }
}
