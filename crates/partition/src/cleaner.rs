//! The log cleaner's threads (`log.cleaner.threads`), shared by every compacted partition.
//!
//! A replica checks its log every `log.cleaner.backoff.ms`; when the log has enough dirty
//! data it prepares a [`CleanJob`] on its shard (cheap), and one of these threads runs it
//! (reads, rewrites and fsyncs segments, throttled by `log.cleaner.io.max.bytes.per.second`);
//! the replica swaps the result in on its shard. Produce and fetch never wait for a clean.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

use cairn_storage::{CleanJob, CleanResult, CleanerSettings};
use tokio::sync::oneshot;

/// The cleaner's broker settings.
#[derive(Debug, Clone)]
pub struct CleanerConfig {
    /// `log.cleaner.enable`: whether compacted logs are cleaned at all.
    pub enabled: bool,
    /// `log.cleaner.threads`.
    pub threads: usize,
    /// `log.cleaner.backoff.ms`: how often each compacted log is checked.
    pub backoff_ms: u64,
    /// `log.cleaner.dedupe.buffer.size` (shared by all threads, as in Kafka), the I/O limit
    /// and the codecs.
    pub settings: CleanerSettings,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            enabled: true,
            threads: 1,
            backoff_ms: 15_000,
            settings: CleanerSettings::default(),
        }
    }
}

type Task = (CleanJob, oneshot::Sender<CleanResult>);

/// The nice value of cleaner threads: cleaning is background work, and on a busy machine
/// it must take the CPU the produce path leaves, not share it (a clean reads and rewrites
/// whole segments at over 1 GB/s, a full core; at the default priority it delayed
/// acks=all produces by up to 20 ms while it ran, on 2 cores).
const CLEANER_NICE: i32 = 19;

/// Gives the calling thread the cleaner's nice value (Linux: per thread). Best effort.
fn lower_priority() {
    let me = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(me), CLEANER_NICE) {
        tracing::debug!(error = %e, "cannot lower the log cleaner's priority");
    }
}

struct Pool {
    tx: Mutex<mpsc::Sender<Task>>,
    backoff_ticks: u64,
    enabled: bool,
}

static POOL: OnceLock<Pool> = OnceLock::new();

fn start(config: CleanerConfig) -> Pool {
    let (tx, rx) = mpsc::channel::<Task>();
    let rx = Arc::new(Mutex::new(rx));
    let threads = config.threads.max(1);
    let mut settings = config.settings.clone();
    settings.dedupe_buffer_bytes = (settings.dedupe_buffer_bytes / threads).max(1);
    for i in 0..threads {
        let rx = Arc::clone(&rx);
        let settings = settings.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("cairn-cleaner-{i}"))
            .spawn(move || {
                lower_priority();
                loop {
                    let next = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((job, done)) = next else { return };
                    let _ = done.send(job.run(&settings));
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a log cleaner thread");
        }
    }
    Pool {
        tx: Mutex::new(tx),
        backoff_ticks: (config.backoff_ms / crate::TICK_MS).max(1),
        enabled: config.enabled,
    }
}

/// Sets the cleaner's settings and starts its threads; the first call wins (later ones, and
/// partitions opened before any, get the defaults). Returns whether this call set them.
pub fn configure(config: CleanerConfig) -> bool {
    let mut set = false;
    POOL.get_or_init(|| {
        set = true;
        start(config)
    });
    set
}

fn pool() -> &'static Pool {
    POOL.get_or_init(|| start(CleanerConfig::default()))
}

/// Whether compacted logs are cleaned, and every how many ticks each is checked.
pub(crate) fn schedule() -> Option<u64> {
    let p = pool();
    p.enabled.then_some(p.backoff_ticks)
}

/// Runs `job` on a cleaner thread; its result arrives on the receiver (which reports an
/// error if the pool is gone).
pub(crate) fn submit(job: CleanJob) -> oneshot::Receiver<CleanResult> {
    let (done, rx) = oneshot::channel();
    if let Ok(tx) = pool().tx.lock() {
        let _ = tx.send((job, done));
    }
    rx
}
