//! Group commit: the fsyncs of a storage shard's partitions, off the shard's thread.
//!
//! A replica whose entries count as persisted only once they are on disk (the default flush
//! policy) does not fsync inline: at the end of each turn it hands its log's
//! [`SyncJob`] to its shard's syncer thread and goes on serving (appends, fetches); when the
//! job is done, every ready written before it counts as persisted at once. While one job
//! runs, the next accumulates, so a partition makes one fsync per disk round trip however
//! many produces arrive. The syncer takes every job waiting when it wakes and runs them
//! concurrently, so the file system can fold their journal commits into one (ext4 and XFS
//! commit concurrent fsyncs together).

use std::cell::RefCell;
use std::sync::mpsc;

use cairn_storage::{Result as StorageResult, SyncJob};
use tokio::sync::oneshot;

/// A finished job and its outcome.
pub(crate) type SyncDone = (SyncJob, StorageResult<()>);

struct Request {
    job: SyncJob,
    done: oneshot::Sender<SyncDone>,
}

/// Jobs run at once, at most (the rest wait for the next round).
const MAX_CONCURRENT: usize = 16;

thread_local! {
    /// This shard thread's syncer, started on first use; dropping it (the shard thread
    /// ending) stops the syncer thread.
    static SYNCER: RefCell<Option<mpsc::Sender<Request>>> = const { RefCell::new(None) };
}

fn start() -> Option<mpsc::Sender<Request>> {
    let (tx, rx) = mpsc::channel::<Request>();
    let name = std::thread::current()
        .name()
        .map_or_else(|| "cairn-sync".to_string(), |n| format!("{n}-sync"));
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        while let Ok(first) = rx.recv() {
            let mut round = vec![first];
            while round.len() < MAX_CONCURRENT {
                match rx.try_recv() {
                    Ok(r) => round.push(r),
                    Err(_) => break,
                }
            }
            run_round(round);
        }
    });
    match spawned {
        Ok(_) => Some(tx),
        Err(e) => {
            tracing::warn!(error = %e, "cannot start a sync thread; partitions fsync inline");
            None
        }
    }
}

fn run_round(round: Vec<Request>) {
    if round.len() == 1 {
        for r in round {
            let result = r.job.run();
            let _ = r.done.send((r.job, result));
        }
        return;
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = round
            .into_iter()
            .map(|r| {
                s.spawn(move || {
                    let result = r.job.run();
                    let _ = r.done.send((r.job, result));
                })
            })
            .collect();
        for h in handles {
            let _ = h.join();
        }
    });
}

/// Hands `job` to this shard's syncer; the receiver gets it back with its outcome. Without
/// a syncer thread the job runs here and now.
pub(crate) fn submit(job: SyncJob) -> oneshot::Receiver<SyncDone> {
    let (done, rx) = oneshot::channel();
    let request = Request { job, done };
    let refused = SYNCER.with(|cell| {
        let mut syncer = cell.borrow_mut();
        if syncer.is_none() {
            *syncer = start();
        }
        match syncer.as_ref() {
            Some(tx) => tx.send(request).err().map(|e| e.0),
            None => Some(request),
        }
    });
    if let Some(r) = refused {
        let result = r.job.run();
        let _ = r.done.send((r.job, result));
    }
    rx
}
