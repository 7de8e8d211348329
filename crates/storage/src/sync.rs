//! Asynchronous syncs: making what was appended durable without blocking the log's owner.
//!
//! [`Log::flush`] fsyncs in place. An owner that keeps appending while the disk works (a raft
//! replica that reports entries persisted only once they are on disk, and must not stall its
//! partition for an fsync) splits it in three:
//!
//! ```text
//!   owner thread                         any thread
//!   job = log.begin_sync()   ──job──►    job.run()        fdatasync the active segment,
//!   ... more appends ...                                  fsync the directory if it changed
//!   log.finish_sync(job, result) ◄──result──
//! ```
//!
//! Everything appended before `begin_sync` is durable once `run` succeeds: the job holds
//! the active segment's file (a rolled segment is fsynced by its own background flush,
//! which `finish_sync` waits for). `finish_sync` then advances the recovery point to the
//! end captured at `begin_sync` — unless the log was truncated in between (what it covered
//! may be gone) — and marks the directory clean only if nothing changed it since. A failed
//! fsync fails the log: the pages it could not write may already be dropped from the page
//! cache, so a retry could report data durable that is not (Postgres's "fsyncgate").

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use crate::checkpoint::sync_dir;
use crate::error::{IoContext, Result};
use crate::log::Log;

/// An fsync of everything a [`Log`] held when [`Log::begin_sync`] made it. See the module
/// docs.
#[derive(Debug)]
pub struct SyncJob {
    end_offset: u64,
    log_file: (PathBuf, Arc<File>),
    dir: Option<PathBuf>,
    dir_changes: u64,
    truncations: u64,
}

impl SyncJob {
    /// The log end offset the job makes durable.
    pub fn end_offset(&self) -> u64 {
        self.end_offset
    }

    /// Does the fsyncs (blocking): the active segment's data, then the directory if
    /// segment files were created or deleted.
    pub fn run(&self) -> Result<()> {
        let (path, file) = &self.log_file;
        file.sync_data().ctx("fsync", path)?;
        if let Some(dir) = &self.dir {
            sync_dir(dir)?;
        }
        Ok(())
    }
}

impl Log {
    /// A job that makes everything appended so far durable, or `None` when it already is.
    pub fn begin_sync(&mut self) -> Result<Option<SyncJob>> {
        self.check_usable()?;
        let end = self.log_end_offset();
        if self.recovery_point >= end && !self.dir_dirty {
            return Ok(None);
        }
        Ok(Some(SyncJob {
            end_offset: end,
            log_file: self.active.log_sync_handle(),
            dir: self.dir_dirty.then(|| self.dir.clone()),
            dir_changes: self.dir_changes,
            truncations: self.truncations,
        }))
    }

    /// Records the outcome of `job` (run anywhere). On success the recovery point covers
    /// what the job did (waiting for rolled segments' background flushes first); an error
    /// fails the log and is returned.
    pub fn finish_sync(&mut self, job: SyncJob, result: Result<()>) -> Result<()> {
        if let Err(e) = result {
            return self.fail(e);
        }
        self.check_usable()?;
        self.poll_flushes(true)?;
        if job.dir.is_some() && job.dir_changes == self.dir_changes {
            self.dir_dirty = false;
        }
        if job.truncations == self.truncations {
            let end = job.end_offset.min(self.log_end_offset());
            if end > self.recovery_point {
                self.recovery_point = end;
                self.unflushed_messages = 0;
                self.oldest_unflushed_ms = None;
            }
        }
        self.maybe_checkpoint()
    }
}
